import { bellLabel } from "./AppShell";

it("names the bell with the unread count only while there is unread mail", () => {
  expect(bellLabel(null)).toBe("Notifications");
  expect(bellLabel(0)).toBe("Notifications");
  expect(bellLabel(3)).toBe("Notifications (3 unread)");
});
