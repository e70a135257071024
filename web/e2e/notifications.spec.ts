import { startGateway, stopRunningGateway } from "./backend";
import { apiToken, buyPlan, expect, gatewayGraphql, logIn, PASSWORD, screenshot, signUp, test, uniqueEmail } from "./fixtures";

test("a notification arrives live in a second browser", async ({ page, newUserPage }) => {
  const email = uniqueEmail("watcher");
  await signUp(page, email, "Watchers");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Notifications" }).click();
  await expect(page.getByRole("heading", { name: "Notifications" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Notifications", exact: true })).toBeVisible();

  // The same user in another browser buys Pro: the first one hears of it at once.
  const other = await newUserPage();
  await logIn(other, email);
  await expect(other).toHaveURL(/\/app$/);
  await other.goto("/app/billing");
  await other.getByRole("button", { name: "Choose Pro" }).click();
  await other.getByRole("button", { name: "Confirm test payment" }).click();
  await expect(other.getByText("Current plan: Pro")).toBeVisible();

  const list = page.getByRole("list", { name: "Notifications" });
  const item = list.getByRole("listitem").filter({ hasText: "Your subscription is active" });
  await expect(item).toBeVisible();
  await expect(page.getByRole("button", { name: "Notifications (1 unread)" })).toBeVisible();
  await expect(other.getByRole("button", { name: "Notifications (1 unread)" })).toBeVisible();
  await screenshot(page, "notifications");

  await item.getByRole("button", { name: "Mark read" }).click();
  await expect(item.getByRole("button", { name: "Mark read" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Notifications", exact: true })).toBeVisible();
});

test("after a gateway restart the tab reconnects by itself and misses no notification", async ({
  page,
  expectNetworkErrors,
}) => {
  // The gateway goes away on purpose: refused connections are expected.
  expectNetworkErrors();
  const email = uniqueEmail("restart");
  await signUp(page, email, "Restarters");
  await page.goto("/app/notifications");
  await expect(page.getByRole("heading", { name: "Notifications" })).toBeVisible();
  const token = await apiToken(email);
  const items = page.getByRole("list", { name: "Notifications" }).getByRole("listitem");

  // A first notification, live: the tab now knows where it is (`since`).
  await buyPlan(token, "pro");
  await expect(items.filter({ hasText: "Your subscription is active" })).toHaveCount(1);

  // Someone invites this user meanwhile; the invite is accepted while the tab is away.
  const inviter = await gatewayGraphql<{ register: { token: string } }>(
    "mutation($e: String!, $p: String!) { register(email: $e, password: $p, teamName: \"Inviters\") { token } }",
    { e: uniqueEmail("inviter"), p: PASSWORD },
  );
  const me = await gatewayGraphql<{ me: { memberships: { team: { id: string } }[] } }>(
    "{ me { memberships { team { id } } } }",
    {},
    inviter.register.token,
  );
  const invite = await gatewayGraphql<{ inviteMember: { token: string } }>(
    "mutation($t: ID!, $e: String!) { inviteMember(teamId: $t, email: $e, role: \"member\") { token } }",
    { t: me.me.memberships[0].team.id, e: email },
    inviter.register.token,
  );

  const banner = page.getByRole("status").filter({ hasText: "Connection lost" });
  const state = await stopRunningGateway();
  try {
    await expect(banner).toBeVisible();
    await screenshot(page, "connection-lost");
  } finally {
    await startGateway(state.dataDir); // the journeys after this one need it
  }
  // Made while the tab most likely still waits to reconnect: `since` brings it.
  await gatewayGraphql("mutation($t: String!) { acceptInvite(token: $t) { role } }", { t: invite.inviteMember.token }, token);

  await expect(banner).toHaveCount(0, { timeout: 30_000 });
  await expect(items.filter({ hasText: "You joined a team" })).toHaveCount(1);
  await expect(items.filter({ hasText: "Your subscription is active" })).toHaveCount(1);
  await expect(page.getByRole("button", { name: "Notifications (2 unread)" })).toBeVisible();
});
