"use client";

import { usePathname, useRouter } from "next/navigation";
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import * as authClient from "./auth-client";
import type { AccessToken } from "./auth-client";

/** signedOut: never signed in or the session ended; loggedOut: the user chose to. */
type Status = "loading" | "signedIn" | "signedOut" | "loggedOut";

interface SessionContextValue {
  status: Status;
  session: AccessToken | null;
  /** The current access token (memory only), for exchanges and sockets. */
  token: () => string | null;
  signedIn: (session: AccessToken) => void;
  logOut: () => Promise<void>;
  /** The server refused the token: back to log-in, keeping the page wanted. */
  unauthenticated: () => void;
  /** Spends the refresh cookie now; false when the session is over. */
  refreshNow: () => Promise<boolean>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

// Refresh a minute before expiry (at 90% of a lifetime under ten minutes).
export function refreshDelayMs(expiresAt: string, now: number = Date.now()): number {
  const left = new Date(expiresAt).getTime() - now;
  const delay = left > 600_000 ? left - 60_000 : left * 0.9;
  return Math.max(1_000, Math.min(delay, 2 ** 31 - 1));
}

export function loginPath(wanted: string | null): string {
  return wanted && wanted.startsWith("/app") ? `/login?next=${encodeURIComponent(wanted)}` : "/login";
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Status>("loading");
  const [session, setSession] = useState<AccessToken | null>(null);
  const tokenRef = useRef<string | null>(null);
  const router = useRouter();
  const pathname = usePathname();
  const pathRef = useRef(pathname);
  useEffect(() => {
    pathRef.current = pathname;
  }, [pathname]);

  const apply = useCallback((next: AccessToken | null) => {
    tokenRef.current = next?.token ?? null;
    setSession(next);
    setStatus(next ? "signedIn" : "signedOut");
  }, []);

  const settle = useCallback(
    (result: authClient.AuthResult): boolean => {
      if (result.ok) {
        apply(result.session);
        return true;
      }
      // A network error keeps the session: the next attempt may succeed.
      if (result.errors.some((e) => e.code === "NETWORK")) {
        if (tokenRef.current === null) setStatus("signedOut");
        return tokenRef.current !== null;
      }
      apply(null);
      return false;
    },
    [apply],
  );

  const refreshNow = useCallback(() => authClient.refresh().then(settle), [settle]);

  // After a reload the access token is gone: the refresh cookie brings it back.
  useEffect(() => {
    authClient.refresh().then(settle, () => undefined);
  }, [settle]);

  // Silent refresh before expiry.
  useEffect(() => {
    if (!session) return;
    const timer = setTimeout(() => void refreshNow(), refreshDelayMs(session.expiresAt));
    return () => clearTimeout(timer);
  }, [session, refreshNow]);

  const token = useCallback(() => tokenRef.current, []);

  const unauthenticated = useCallback(() => {
    apply(null);
    router.replace(loginPath(pathRef.current));
  }, [apply, router]);

  const logOut = useCallback(async () => {
    // Leave the app first: its socket closes before the server ends the session,
    // so nothing mistakes the log-out for an expired session.
    const token = tokenRef.current;
    tokenRef.current = null;
    setSession(null);
    setStatus("loggedOut");
    try {
      sessionStorage.clear();
    } catch {
      /* storage may be unavailable */
    }
    await authClient.logout(token);
    router.replace("/login");
  }, [router]);

  const value = useMemo<SessionContextValue>(
    () => ({
      status,
      session,
      token,
      signedIn: apply,
      logOut,
      unauthenticated,
      refreshNow,
    }),
    [status, session, token, apply, logOut, unauthenticated, refreshNow],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionContextValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error("useSession outside SessionProvider");
  return value;
}
