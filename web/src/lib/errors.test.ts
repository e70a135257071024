import { errorText, fromRaw, hasCode } from "./errors";

describe("server errors", () => {
  it("keeps the message, code, field and retry delay of each error", () => {
    const errors = fromRaw([
      { message: "email is taken", extensions: { code: "CONFLICT", field: "email" } },
      { message: "too many login attempts; retry in 30 s", extensions: { code: "RATE_LIMITED", retryAfter: 30 } },
      { message: 42 as unknown as string, extensions: null },
    ]);
    expect(errors).toEqual([
      { message: "email is taken", code: "CONFLICT", field: "email", retryAfter: undefined },
      { message: "too many login attempts; retry in 30 s", code: "RATE_LIMITED", field: undefined, retryAfter: 30 },
      { message: "unexpected error", code: undefined, field: undefined, retryAfter: undefined },
    ]);
    expect(hasCode(errors, "RATE_LIMITED")).toBe(true);
    expect(hasCode(errors, "FORBIDDEN")).toBe(false);
  });

  it("says when a rate-limited request may be tried again", () => {
    const now = new Date("2026-01-01T10:00:00Z");
    const text = errorText({ message: "slow down", code: "RATE_LIMITED", retryAfter: 90 }, now);
    const at = new Date("2026-01-01T10:01:30Z").toLocaleTimeString();
    expect(text).toBe(`slow down (you can try again at ${at})`);
    expect(errorText({ message: "no such plan", code: "NOT_FOUND" }, now)).toBe("no such plan");
  });
});
