/**
 * Journeys fail on uncaught page exceptions and on errors the app logs itself.
 * Network errors (a refused request, a restarted gateway) count only when the
 * journey did not provoke them: it says so with `expectNetworkErrors()`.
 */
import { test as base, expect, type Browser, type BrowserContext, type Locator, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import path from "node:path";

const SCREENSHOTS = path.join(__dirname, "screenshots");

const NETWORK_ERROR = [
  /^Failed to load resource/,
  /WebSocket connection to .* failed/,
  /net::ERR_/,
];

interface Watch {
  problems: string[];
  allowNetwork: boolean;
}

function watch(page: Page, state: Watch, label: string): void {
  page.on("pageerror", (error) => state.problems.push(`${label}: uncaught ${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    if (state.allowNetwork && NETWORK_ERROR.some((pattern) => pattern.test(text))) return;
    const where = message.location().url;
    state.problems.push(`${label}: console error: ${text}${where ? ` (${where})` : ""}`);
  });
}

interface Fixtures {
  /** The journey restarts the gateway or refuses on purpose: network errors are expected. */
  expectNetworkErrors: () => void;
  /** A second browser (another user), watched the same way. */
  newUserPage: () => Promise<Page>;
  watchState: Watch;
}

export const test = base.extend<Fixtures>({
  watchState: async ({}, use) => {
    await use({ problems: [], allowNetwork: false });
  },
  page: async ({ page, watchState }, use) => {
    watch(page, watchState, "page");
    await use(page);
    expect(watchState.problems, "the app logged errors or threw").toEqual([]);
  },
  expectNetworkErrors: async ({ watchState }, use) => {
    await use(() => {
      watchState.allowNetwork = true;
    });
  },
  newUserPage: async ({ browser, watchState }, use) => {
    const contexts: BrowserContext[] = [];
    await use(async () => {
      const context = await (browser as Browser).newContext();
      contexts.push(context);
      const page = await context.newPage();
      watch(page, watchState, `context ${contexts.length + 1}`);
      return page;
    });
    await Promise.all(contexts.map((context) => context.close()));
  },
});

export { expect };

let counter = 0;
/** A fresh address per journey: the backend lives for the whole run. */
export function uniqueEmail(name: string): string {
  counter += 1;
  return `${name}-${Date.now().toString(36)}-${counter}@example.com`;
}

export const PASSWORD = "correct horse battery staple";

/** The app's own alerts (Next's route announcer has role "alert" too, always empty). */
export function alerts(page: Page | Locator) {
  return page.getByRole("alert").filter({ hasText: /\S/ });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export async function signUp(page: Page, email: string, teamName = ""): Promise<void> {
  await page.goto("/signup");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  if (teamName) await page.getByLabel("Team name", { exact: true }).fill(teamName);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/app$/);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
}

export async function logIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

export async function logOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Account menu" }).click();
  await page.getByRole("menuitem", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
}

/** A GraphQL request straight to the gateway, as an outside client would make it. */
export async function gatewayGraphql<T = Record<string, unknown>>(
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<T> {
  const { gatewayOrigin } = await import("./backend");
  const response = await fetch(`${gatewayOrigin()}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (body.errors || !body.data) throw new Error(`GraphQL refused: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export async function apiToken(email: string, password = PASSWORD): Promise<string> {
  const data = await gatewayGraphql<{ login: { token: string } }>(
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
    { e: email, p: password },
  );
  return data.login.token;
}

/** A test checkout to `planId`, completed as the buyer's browser would (no UI). */
export async function buyPlan(token: string, planId: string): Promise<void> {
  const { gatewayOrigin } = await import("./backend");
  const data = await gatewayGraphql<{ createCheckoutSession: { url: string } }>(
    "mutation($p: ID!) { createCheckoutSession(planId: $p) { url } }",
    { p: planId },
    token,
  );
  const page = new URL(data.createCheckoutSession.url);
  const response = await fetch(`${gatewayOrigin()}${page.pathname}`, { method: "POST", redirect: "manual" });
  if (response.status !== 303) throw new Error(`test checkout answered ${response.status}`);
}
