import { expect, screenshot, signUp, test, uniqueEmail } from "./fixtures";

test("test checkout to Pro, and the plan shown", async ({ page }) => {
  await signUp(page, uniqueEmail("buyer"), "Buyers");
  await expect(page.getByText("Current plan: Free")).toBeVisible();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Billing" }).click();
  await expect(page.getByRole("heading", { name: "Billing", level: 1 })).toBeVisible();
  for (const plan of ["Free", "Pro", "Team"]) {
    await expect(page.getByRole("heading", { name: plan, exact: true })).toBeVisible();
  }
  await expect(page.getByText("Current plan: Free")).toBeVisible();
  await expect(page.getByRole("button", { name: "Choose Free" })).toHaveCount(0);
  await screenshot(page, "billing");

  await page.getByRole("button", { name: "Choose Pro" }).click();
  // The gateway's offline test checkout, then back on the web app.
  await page.getByRole("button", { name: "Confirm test payment" }).click();
  await expect(page).toHaveURL(/\/app\/billing\?checkout=success$/);
  await expect(page.getByText("Current plan: Pro")).toBeVisible();
  await expect(page.getByRole("button", { name: "Choose Pro" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Choose Team" })).toBeVisible();
  await screenshot(page, "billing-pro");

  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByText("Current plan: Pro")).toBeVisible();
  await expect(page.getByText("Your subscription is active")).toBeVisible();
  await screenshot(page, "overview-pro");
});
