import { expect, logIn, logOut, screenshot, signUp, test, uniqueEmail, PASSWORD } from "./fixtures";

test("sign up, log out, log in, and a wrong password's message", async ({ page }) => {
  const email = uniqueEmail("ada");
  await page.goto("/signup");
  await screenshot(page, "signup");
  await signUp(page, email, "Analytical Engines");
  await expect(page.getByText(email).first()).toBeVisible();
  await expect(page.getByText(/^Current plan: /)).toBeVisible();
  await screenshot(page, "overview");

  // A reload keeps the session (the refresh cookie brings a new access token).
  await page.reload();
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();

  await logOut(page);
  await screenshot(page, "login");
  // After log-out the app is closed: the page wanted is kept for later.
  await page.goto("/app/team");
  await expect(page).toHaveURL(/\/login\?next=%2Fapp%2Fteam$/);

  await logIn(page, email, "not the password");
  // The server's message, as it is, in role "alert".
  await expect(page.getByRole("alert").filter({ hasText: "invalid email or password" })).toBeVisible();
  await expect(page).toHaveURL(/\/login/);

  // Password reset: the same confirmation whatever the address.
  await page.getByRole("link", { name: "Forgot password?" }).click();
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByRole("button", { name: "Send reset link" }).click();
  await expect(page.getByText(/If an account uses that address/)).toBeVisible();
  await screenshot(page, "forgot-password");

  await logIn(page, email, PASSWORD);
  await expect(page).toHaveURL(/\/app$/);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
});
