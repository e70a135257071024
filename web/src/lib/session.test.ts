import { loginPath, refreshDelayMs } from "./session";

describe("silent refresh", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("refreshes a minute before a long-lived token expires", () => {
    expect(refreshDelayMs("2026-01-01T01:00:00Z", now)).toBe(59 * 60_000);
  });
  it("refreshes at 90% of a short lifetime, and never sooner than a second", () => {
    expect(refreshDelayMs("2026-01-01T00:00:50Z", now)).toBe(45_000);
    expect(refreshDelayMs("2025-12-31T00:00:00Z", now)).toBe(1_000);
  });
});

describe("log-in path", () => {
  it("keeps the app page that was wanted", () => {
    expect(loginPath("/app/team")).toBe("/login?next=%2Fapp%2Fteam");
    expect(loginPath("https://evil.example/app")).toBe("/login");
    expect(loginPath(null)).toBe("/login");
  });
});
