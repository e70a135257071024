import { createHmac } from "node:crypto";
import { expect, gatewayGraphql, logIn, logOut, screenshot, signUp, test, uniqueEmail, PASSWORD } from "./fixtures";

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

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) from a base32 secret, as authenticator apps compute it. */
function totp(secret: string, at = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g)!.map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30_000)));
  const digest = createHmac("sha1", key).update(counter).digest();
  const offset = digest[digest.length - 1] & 0xf;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

test("a log-in with a second factor asks for the code", async ({ page }) => {
  const email = uniqueEmail("guarded");
  const { register } = await gatewayGraphql<{ register: { token: string } }>(
    "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { token } }",
    { e: email, p: PASSWORD },
  );
  const { enrolTwoFactor } = await gatewayGraphql<{ enrolTwoFactor: { secret: string } }>(
    "mutation { enrolTwoFactor { secret uri } }",
    {},
    register.token,
  );
  const { confirmTwoFactor: recoveryCodes } = await gatewayGraphql<{ confirmTwoFactor: string[] }>(
    "mutation($c: String!) { confirmTwoFactor(code: $c) }",
    { c: totp(enrolTwoFactor.secret) },
    register.token,
  );

  await logIn(page, email);
  const code = page.getByLabel("Authentication code", { exact: true });
  await expect(code).toBeFocused();
  await screenshot(page, "login-second-factor");
  await code.fill(recoveryCodes[0]);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/app$/);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
});
