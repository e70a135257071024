import { fromRaw, type ServerError } from "./errors";

/** What the app keeps of a session: the access token, in memory only. */
export interface AccessToken {
  token: string;
  expiresAt: string;
  user: { id: string; email: string };
}

export type AuthResult = { ok: true; session: AccessToken } | { ok: false; errors: ServerError[] };

async function post(path: string, body?: unknown, token?: string): Promise<AuthResult> {
  let response: Response;
  try {
    response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body ?? {}),
    });
  } catch {
    return { ok: false, errors: [{ message: "The server cannot be reached. Check your connection and try again.", code: "NETWORK" }] };
  }
  const payload = (await response.json().catch(() => null)) as
    | { session?: AccessToken | null; errors?: { message: string; extensions?: Record<string, unknown> }[] }
    | null;
  if (payload?.session) return { ok: true, session: payload.session };
  const errors = fromRaw(payload?.errors);
  return {
    ok: false,
    errors: errors.length > 0 ? errors : [{ message: `unexpected answer (${response.status})`, code: "INTERNAL" }],
  };
}

export const login = (email: string, password: string) => post("/api/auth/login", { email, password });

/** The second step of a log-in answered SECOND_FACTOR_REQUIRED. */
export const secondFactor = (challenge: string, code: string) =>
  post("/api/auth/second-factor", { challenge, code });

export const register = (email: string, password: string, teamName?: string) =>
  post("/api/auth/register", { email, password, teamName: teamName || null });

// A refresh token is single use and reusing a spent one ends the session, so a
// tab never has two refreshes in flight, and tabs take turns (Web Locks): each
// then spends the cookie the previous one left.
let inFlight: Promise<AuthResult> | null = null;

export function refresh(): Promise<AuthResult> {
  if (inFlight) return inFlight;
  const run = () => post("/api/auth/refresh");
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  const started: Promise<AuthResult> = locks
    ? (locks.request("haunted-refresh", run) as unknown as Promise<AuthResult>)
    : run();
  const pending = started.finally(() => {
    inFlight = null;
  });
  inFlight = pending;
  return pending;
}

export async function logout(token: string | null): Promise<void> {
  await post("/api/auth/logout", {}, token ?? undefined);
}
