import { defineConfig, devices } from "@playwright/test";

// Ports come from scripts/web-test.sh, which also built the app for that gateway.
const webPort = Number(process.env.E2E_WEB_PORT || 0);
const gatewayPort = Number(process.env.E2E_GATEWAY_PORT || 0);

export default defineConfig({
  testDir: "./e2e",
  outputDir: "./test-results",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: process.env.CI ? "line" : [["list"]],
  globalSetup: "./e2e/global-setup.ts",
  globalTeardown: "./e2e/global-teardown.ts",
  use: {
    baseURL: `http://127.0.0.1:${webPort}`,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        // Debian's chromium: Playwright downloads no browser.
        launchOptions: { executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium" },
      },
    },
  ],
  webServer: {
    // The production artifact: the standalone server `next build` wrote.
    command: "node .next/standalone/server.js",
    url: `http://127.0.0.1:${webPort}/login`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "ignore",
    stderr: "pipe",
    env: {
      HAUNTED_GATEWAY_URL: `http://127.0.0.1:${gatewayPort}`,
      HOSTNAME: "127.0.0.1",
      PORT: String(webPort),
      NEXT_TELEMETRY_DISABLED: "1",
    },
  },
});
