import { deviceName } from "./device";

it("names a session's device from its User-Agent", () => {
  expect(
    deviceName("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
  ).toBe("Chrome on Linux");
  expect(deviceName("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1")).toBe(
    "Safari on iOS",
  );
  expect(deviceName("curl/8.5.0")).toBe("curl");
  expect(deviceName(null)).toBe("Unknown device");
});
