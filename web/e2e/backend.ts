/**
 * The real backend of the end-to-end run: `haunted dev` from the repository's
 * .venv on free ports, with a throwaway data directory. Its process id lives in
 * a state file, so a journey can restart it and teardown can stop it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export const REPO = path.resolve(__dirname, "..", "..");
const STATE_FILE = path.join(__dirname, ".backend.json");

export interface BackendState {
  pid: number;
  dataDir: string;
  gatewayPort: number;
  kafkaPort: number;
  webPort: number;
}

export function ports(): { gatewayPort: number; kafkaPort: number; webPort: number; mailPort: number } {
  const read = (name: string) => {
    const value = Number(process.env[name]);
    if (!value) throw new Error(`${name} is not set: run the end-to-end tests through scripts/web-test.sh`);
    return value;
  };
  return {
    gatewayPort: read("E2E_GATEWAY_PORT"),
    kafkaPort: read("E2E_KAFKA_PORT"),
    webPort: read("E2E_WEB_PORT"),
    mailPort: read("E2E_MAIL_PORT"),
  };
}

export const webOrigin = () => `http://127.0.0.1:${ports().webPort}`;
export const gatewayOrigin = () => `http://127.0.0.1:${ports().gatewayPort}`;

function environment(dataDir: string): NodeJS.ProcessEnv {
  const { gatewayPort, kafkaPort, webPort, mailPort } = ports();
  const web = `http://127.0.0.1:${webPort}`;
  return {
    ...process.env,
    HAUNTED_ENV: "dev",
    HAUNTED_HOST: "127.0.0.1",
    HAUNTED_PORT: String(gatewayPort),
    HAUNTED_EMBEDDED_KAFKA_PORT: String(kafkaPort),
    HAUNTED_DATA_DIR: dataDir,
    HAUNTED_DATABASE_URL: `sqlite+aiosqlite:///${dataDir}/haunted.db`,
    // Sessions live in Redis: a real one, so they outlive a gateway restart.
    HAUNTED_REDIS_URL: process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/15",
    // Analytics answers are cached for minutes by default: a journey asks right after tracking.
    HAUNTED_ANALYTICS_CACHE_TTL_S: "0",
    HAUNTED_WEB_PORT: String(webPort),
    // The dev mail catcher, and the web app's pages as the links' base.
    HAUNTED_MAIL_CATCHER_PORT: String(mailPort),
    HAUNTED_MAIL_LINK_BASE_URL: web,
    HAUNTED_WEB_PUBLIC_URL: web,
    HAUNTED_BILLING_PUBLIC_URL: web,
    // The offline test checkout (dev only), as `make dev` turns it on.
    HAUNTED_BILLING_LOCAL_CHECKOUT: "true",
    HAUNTED_CORS_ORIGINS: JSON.stringify([web]),
    // Every journey logs in from this one address.
    HAUNTED_AUTH_RATE_LIMIT_PER_IP: "1000/minute",
    HAUNTED_AUTH_RATE_LIMIT_PER_ACCOUNT: "100/minute",
    HAUNTED_BCRYPT_ROUNDS: "4",
    HAUNTED_LOG_JSON: "false",
    HAUNTED_LOG_LEVEL: "WARNING",
  };
}

async function waitReady(url: string, timeoutMs: number, pid: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      throw new Error(`haunted dev exited before it was ready (see its log)`);
    }
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms`);
}

export async function startGateway(dataDir?: string): Promise<BackendState> {
  const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), "haunted-e2e-"));
  const log = openSync(path.join(dir, "haunted.log"), "a");
  const child = spawn(path.join(REPO, ".venv", "bin", "haunted"), ["dev"], {
    cwd: REPO,
    env: environment(dir),
    stdio: ["ignore", log, log],
    detached: true,
  });
  child.unref();
  if (!child.pid) throw new Error("could not start haunted dev");
  const state: BackendState = { pid: child.pid, dataDir: dir, ...ports() };
  writeFileSync(STATE_FILE, JSON.stringify(state));
  await waitReady(`${gatewayOrigin()}/readyz`, 120_000, child.pid);
  return state;
}

export function readState(): BackendState {
  return JSON.parse(readFileSync(STATE_FILE, "utf8")) as BackendState;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the gateway (and its embedded broker) and waits until it is gone. */
export async function stopGateway(state: BackendState): Promise<void> {
  if (!alive(state.pid)) return;
  process.kill(-state.pid, "SIGTERM");
  const deadline = Date.now() + 30_000;
  while (alive(state.pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (alive(state.pid)) process.kill(-state.pid, "SIGKILL");
}

/** Stops the running gateway; `startGateway(state.dataDir)` brings it back on the same data. */
export async function stopRunningGateway(): Promise<BackendState> {
  const state = readState();
  await stopGateway(state);
  return state;
}

export async function teardown(): Promise<void> {
  if (!existsSync(STATE_FILE)) return;
  const state = readState();
  await stopGateway(state);
  if (process.env.E2E_KEEP_DATA) {
    console.log(`haunted dev data kept in ${state.dataDir}`);
  } else {
    rmSync(state.dataDir, { recursive: true, force: true });
  }
  rmSync(STATE_FILE, { force: true });
}
