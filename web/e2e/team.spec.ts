import { alerts, expect, screenshot, signUp, test, uniqueEmail, PASSWORD } from "./fixtures";

test("invite a member, accepted in a second browser, then a role change and removal", async ({
  page,
  newUserPage,
  expectNetworkErrors,
}) => {
  // A used invite and a refused demotion are provoked on purpose (answered 400 by
  // gateways that predate GraphQL-over-HTTP's 200 for application/json).
  expectNetworkErrors();
  const owner = uniqueEmail("owner");
  const member = uniqueEmail("member");
  await signUp(page, owner, "Difference Engines");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Team" }).click();
  await expect(page.getByRole("heading", { name: "Team" })).toBeVisible();
  const members = page.getByRole("table", { name: "Members" });
  await expect(members.getByRole("rowheader", { name: owner })).toBeVisible();

  await page.getByRole("button", { name: "Invite member" }).click();
  const dialog = page.getByRole("dialog", { name: "Invite member" });
  await dialog.getByLabel("Email", { exact: true }).fill(member);
  await dialog.getByRole("combobox", { name: "Role" }).selectOption("viewer");
  await dialog.getByRole("button", { name: "Send invite" }).click();
  const link = await dialog.getByLabel("Invite link", { exact: true }).inputValue();
  expect(link).toMatch(/\/invite\/hi_/);
  await screenshot(page, "team-invite");
  await dialog.getByRole("button", { name: "Done" }).click();
  const pending = page.getByRole("table", { name: "Pending invites" });
  await expect(pending.getByRole("rowheader", { name: member })).toBeVisible();

  // A second invite, revoked: its link stops working.
  const mistaken = uniqueEmail("mistaken");
  await page.getByRole("button", { name: "Invite member" }).click();
  await dialog.getByLabel("Email", { exact: true }).fill(mistaken);
  await dialog.getByRole("button", { name: "Send invite" }).click();
  const revokedLink = await dialog.getByLabel("Invite link", { exact: true }).inputValue();
  await dialog.getByRole("button", { name: "Done" }).click();
  await page.getByRole("button", { name: `Revoke ${mistaken}` }).click();
  await expect(pending.getByRole("rowheader", { name: mistaken })).toHaveCount(0);

  // The invitee, in another browser: the link first asks them to sign in.
  const other = await newUserPage();
  await other.goto(link);
  await expect(other.getByText("Difference Engines")).toBeVisible();
  await expect(other.getByText("viewer")).toBeVisible();
  await screenshot(other, "invite");
  await other.getByRole("button", { name: "Accept invite" }).click();
  await expect(other).toHaveURL(/\/login\?next=/);
  await other.getByRole("link", { name: "Create an account" }).click();
  await other.getByLabel("Email", { exact: true }).fill(member);
  await other.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await other.getByRole("button", { name: "Create account" }).click();
  await expect(other).toHaveURL(/\/invite\/hi_/);
  await other.getByRole("button", { name: "Accept invite" }).click();
  await expect(other).toHaveURL(/\/app\/team$/);
  // Two teams now: the switcher shows, on the team just joined.
  await expect(other.getByRole("combobox", { name: "Team" })).toBeVisible();
  await expect(other.getByRole("table", { name: "Members" }).getByRole("rowheader", { name: owner })).toBeVisible();

  // A used link says so, and so does a revoked one.
  await other.goto(link);
  await expect(alerts(other)).toHaveText("this invite was already used");
  await other.goto(revokedLink);
  await expect(alerts(other)).toHaveText("this invite was revoked");

  // The owner sees the new member (no longer pending) and makes them an admin.
  await page.reload();
  await expect(pending.getByRole("rowheader", { name: member })).toHaveCount(0);
  const role = page.getByRole("combobox", { name: `Role for ${member}` });
  await expect(role).toHaveValue("viewer");
  await role.selectOption("admin");
  await expect(page.getByRole("status").filter({ hasText: `${member} is now admin.` })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("combobox", { name: `Role for ${member}` })).toHaveValue("admin");
  await screenshot(page, "team");

  // The last owner cannot be demoted: the server's message, as it is.
  await page.getByRole("combobox", { name: `Role for ${owner}` }).selectOption("member");
  await expect(alerts(page)).toContainText(/owner/);

  await page.getByRole("button", { name: `Remove ${member}` }).click();
  await expect(page.getByRole("button", { name: `Remove ${member}` })).toHaveCount(0);
});
