import { afterLogin } from "./LoginForm";

it("goes back to the page wanted, if it is the app's or an invite", () => {
  expect(afterLogin("/app/billing")).toBe("/app/billing");
  expect(afterLogin("/invite/hi_abc")).toBe("/invite/hi_abc");
  expect(afterLogin("//evil.example/app")).toBe("/app");
  expect(afterLogin("/login")).toBe("/app");
  expect(afterLogin(null)).toBe("/app");
});
