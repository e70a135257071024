import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { alerts, apiToken, expect, gatewayGraphql, PASSWORD, screenshot, signUp, test, uniqueEmail } from "./fixtures";

test("a streamed prompt: tokens as they come, then the usage", async ({ page }) => {
  await signUp(page, uniqueEmail("prompter"), "Prompters");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Playground" }).click();
  await expect(page.getByRole("heading", { name: "Playground" })).toBeVisible();
  await page.getByRole("combobox", { name: "Prompt" }).selectOption("summarize");
  await expect(page.getByLabel("text", { exact: true })).toBeVisible();
  await expect(page.getByLabel("sentences", { exact: true })).toHaveValue("3");

  // Bad input is caught next to its field, and nothing runs.
  await page.getByLabel("sentences", { exact: true }).fill("two");
  await page.getByRole("button", { name: "Run" }).click();
  await expect(page.getByText("Enter a whole number")).toBeVisible();

  await page.getByLabel("sentences", { exact: true }).fill("2");
  await page.getByLabel("text", { exact: true }).fill("The analytical engine weaves algebraic patterns as the Jacquard loom weaves flowers.");
  await page.getByRole("button", { name: "Run" }).click();
  const answer = page.getByRole("region", { name: "Answer" });
  await expect(answer).toHaveAttribute("aria-live", "polite");
  await expect(answer).not.toBeEmpty();
  await expect(page.getByText(/\d+ tokens \(\d+ prompt, \d+ completion\)/)).toBeVisible();
  await expect(page.getByText(/^Quota: [\d,]+ of [\d,]+ tokens used/)).toBeVisible();
  await screenshot(page, "playground");
});

test("analytics numbers after tracking, and a funnel", async ({ page }) => {
  const email = uniqueEmail("analyst");
  await signUp(page, email, "Analysts");
  const token = await apiToken(email);
  for (let i = 0; i < 3; i += 1) {
    await gatewayGraphql("mutation { track(name: \"report.exported\") }", {}, token);
  }
  await page.goto("/app/analytics");
  await expect(page.getByRole("heading", { name: "Analytics" })).toBeVisible();
  const counts = page.getByRole("table", { name: "Event counts" });
  // Events are counted by a consumer: ask again until they are in.
  await expect(async () => {
    await page.reload();
    await expect(counts.getByRole("row", { name: /report\.exported/ })).toContainText("3", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole("figure", { name: "Active users" })).toBeVisible();
  await expect(page.getByRole("figure", { name: "LLM usage" })).toBeVisible();

  await page.getByLabel("Steps", { exact: true }).fill("user.registered\nreport.exported");
  await page.getByRole("button", { name: "Show funnel" }).click();
  const funnel = page.getByRole("table", { name: "Funnel" });
  await expect(funnel.getByRole("row", { name: /report\.exported/ })).toContainText("100%");
  await screenshot(page, "analytics");
});

test("the flags shown with their state", async ({ page }) => {
  await signUp(page, uniqueEmail("flagger"), "Flaggers");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Flags" }).click();
  const flags = page.getByRole("table", { name: "Flags" });
  await expect(flags.getByRole("row", { name: /checkout-button/ }).getByRole("cell").first()).toHaveText("On");
  await expect(flags.getByRole("row", { name: /maintenance-banner/ }).getByRole("cell").first()).toHaveText("Off");
  await expect(flags.getByRole("row", { name: /new-dashboard/ }).getByRole("cell").first()).toHaveText("Off");
  await screenshot(page, "flags");
});

test("an API key created and shown once, then revoked; sessions listed; password changed; a webhook endpoint added, rotated, deleted", async ({
  page,
  expectNetworkErrors,
}) => {
  // A wrong current password is refused on purpose.
  expectNetworkErrors();
  await signUp(page, uniqueEmail("keyholder"), "Key holders");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  await expect(page.getByRole("heading", { name: "Settings" })).toBeVisible();
  const sessions = page.getByRole("table", { name: "Sessions" });
  await expect(sessions.getByRole("rowheader")).toHaveCount(1);
  await expect(sessions.getByRole("button", { name: /^Revoke / })).toHaveCount(0); // the current one

  await page.getByRole("button", { name: "Create API key" }).click();
  const dialog = page.getByRole("dialog", { name: "Create API key" });
  await dialog.getByLabel("Name", { exact: true }).fill("ci-key");
  await dialog.getByRole("checkbox", { name: "analytics:read" }).check();
  await dialog.getByRole("button", { name: "Create" }).click();
  const key = await dialog.getByLabel("New API key", { exact: true }).inputValue();
  expect(key.length).toBeGreaterThan(20);
  await screenshot(page, "settings-key");
  await dialog.getByRole("button", { name: "Done" }).click();

  const keys = page.getByRole("table", { name: "API keys" });
  await expect(keys.getByRole("rowheader", { name: "ci-key" })).toBeVisible();
  await expect(page.getByText(key)).toHaveCount(0); // shown once
  await page.getByRole("button", { name: "Create API key" }).click();
  await expect(dialog.getByLabel("New API key", { exact: true })).toHaveCount(0);
  await dialog.getByRole("button", { name: "Close" }).click();
  await screenshot(page, "settings");

  // Change password: a wrong current one is refused with the server's message.
  await page.getByRole("button", { name: "Change password" }).click();
  const change = page.getByRole("dialog", { name: "Change password" });
  await change.getByLabel("Current password", { exact: true }).fill("not it");
  await change.getByLabel("New password", { exact: true }).fill("an even better passphrase");
  await change.getByRole("button", { name: "Save password" }).click();
  await expect(alerts(change)).not.toHaveCount(0);
  await change.getByLabel("Current password", { exact: true }).fill(PASSWORD);
  await change.getByRole("button", { name: "Save password" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Password changed." })).toBeVisible();

  // The key works until it is revoked.
  const asKey = (k: string) => gatewayGraphql("{ eventCounts { name count } }", {}, k);
  await asKey(key);
  await page.getByRole("button", { name: "Revoke ci-key" }).click();
  await expect(keys.getByRole("rowheader", { name: "ci-key" })).toHaveCount(0);
  await expect(asKey(key)).rejects.toThrow(/UNAUTHENTICATED/);

  // A webhook endpoint: dev allows http and loopback, so a receiver on a free local port will do.
  const receiver = createServer((_request, response) => response.writeHead(204).end());
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const add = page.getByRole("dialog", { name: "Add endpoint" });
    await add.getByLabel("URL", { exact: true }).fill(url);
    await add.getByRole("checkbox", { name: "team.member_added" }).check();
    await add.getByRole("checkbox", { name: "invoice.paid" }).check();
    await add.getByRole("button", { name: "Create" }).click();
    const secret = await add.getByLabel("Signing secret", { exact: true }).inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{20,}$/);
    await screenshot(page, "settings-webhook");
    await add.getByRole("button", { name: "Done" }).click();
    const webhooks = page.getByRole("table", { name: "Webhooks" });
    const row = webhooks.getByRole("row").filter({ has: page.getByRole("rowheader", { name: url }) });
    await expect(row).toContainText("invoice.paid, team.member_added");
    await expect(page.getByText(secret)).toHaveCount(0); // shown once

    // A rotation shows the new secret, once.
    await page.getByRole("button", { name: `Rotate secret ${url}` }).click();
    const rotated = page.getByRole("dialog", { name: "New signing secret" });
    const next = await rotated.getByLabel("Signing secret", { exact: true }).inputValue();
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(secret);
    await rotated.getByRole("button", { name: "Done" }).click();
    await expect(page.getByText(next)).toHaveCount(0);

    await page.getByRole("button", { name: `Delete ${url}` }).click();
    await expect(webhooks.getByRole("rowheader", { name: url })).toHaveCount(0);
    await expect(page.getByRole("status").filter({ hasText: `Webhook endpoint ${url} deleted.` })).toBeVisible();
  } finally {
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

test("the audit log lists what happened in the team, newest first", async ({ page }) => {
  await signUp(page, uniqueEmail("auditor"), "Auditors");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
  await expect(page.getByRole("heading", { name: "Audit log", level: 1 })).toBeVisible();
  const log = page.getByRole("table", { name: "Audit log", exact: true });
  // The log is projected from the event stream by a consumer: read again until it is in.
  await expect(async () => {
    await page.reload();
    await expect(log.getByRole("row").filter({ hasText: "team.created" })).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await screenshot(page, "audit");
});

const PAGES = [
  ["Overview", "/app"],
  ["Team", "/app/team"],
  ["Billing", "/app/billing"],
  ["Analytics", "/app/analytics"],
  ["Playground", "/app/llm"],
  ["Flags", "/app/flags"],
  ["Notifications", "/app/notifications"],
  ["Activity", "/app/activity"],
  ["Settings", "/app/settings"],
  ["Audit log", "/app/audit"],
] as const;

test("every page at 375 px wide, by keyboard, with the live activity feed", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  const email = uniqueEmail("phone");
  await signUp(page, email, "Phones");
  for (const [heading, path] of PAGES) {
    await page.goto(path);
    await expect(page.getByRole("heading", { name: heading, level: 1 })).toBeVisible();
    await expect(page.getByRole("progressbar")).toHaveCount(0);
    // Nothing wider than the screen.
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width, `${path} scrolls sideways`).toBeLessThanOrEqual(375);
    await screenshot(page, `${path.replaceAll("/", "-").slice(1)}-375`);
  }

  // By keyboard: skip link first, then the menu opens the navigation.
  await page.goto("/app/activity");
  await expect(page.getByRole("heading", { name: "Activity" })).toBeVisible();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("button", { name: "Menu", exact: true })).toBeFocused();
  await page.keyboard.press("Enter");
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "Team" })).toBeVisible();

  // The events subscription: a log-in elsewhere shows up as it happens.
  // The subscription starts with the page: log in elsewhere until one shows.
  const loggedIn = page.getByRole("list", { name: "Live events" }).getByRole("listitem").filter({ hasText: "user.logged_in" });
  await expect(async () => {
    await apiToken(email);
    await expect(loggedIn.first()).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await screenshot(page, "activity");

  // The account menu by keyboard.
  await page.getByRole("button", { name: "Account menu" }).focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("menuitem", { name: "Log out" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("button", { name: "Account menu" })).toBeFocused();
});
