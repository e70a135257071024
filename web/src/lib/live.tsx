"use client";

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
import { io, type Socket } from "socket.io-client";
import { useClient } from "urql";
import { graphql } from "@/gql";
import { useSession } from "./session";

export interface LiveNotification {
  id: string;
  type: string;
  title: string;
  body?: string | null;
  createdAt: string;
  readAt?: string | null;
}

type Listener = (notification: LiveNotification) => void;

interface LiveContextValue {
  connected: boolean;
  /** Counts connections: a page re-reads what it shows when it changes. */
  connections: number;
  /** Whether the connection was up once and is now down (the banner shows). */
  lost: boolean;
  unread: number | null;
  refreshUnread: () => void;
  onNotification: (listener: Listener) => () => void;
}

const LiveContext = createContext<LiveContextValue | null>(null);

/** The id of the last notification this tab has seen: `since` after a reconnect. */
export const LAST_NOTIFICATION_KEY = "haunted.lastNotification";

export function readLastNotification(): string | null {
  try {
    return sessionStorage.getItem(LAST_NOTIFICATION_KEY);
  } catch {
    return null;
  }
}

function saveLastNotification(id: string): void {
  try {
    sessionStorage.setItem(LAST_NOTIFICATION_KEY, id);
  } catch {
    /* storage may be unavailable */
  }
}

const UnreadQuery = graphql(`
  query Unread {
    unreadCount
    notifications(first: 1) {
      id
    }
  }
`);

/** One Socket.IO connection per tab: live notifications, the unread count, the banner. */
export function LiveProvider({ children }: { children: ReactNode }) {
  const client = useClient();
  const { token, refreshNow, unauthenticated } = useSession();
  const [connected, setConnected] = useState(false);
  const [connections, setConnections] = useState(0);
  const [lost, setLost] = useState(false);
  const [unread, setUnread] = useState<number | null>(null);
  const listeners = useRef(new Set<Listener>());
  const socketRef = useRef<Socket | null>(null);

  const refreshUnread = useCallback(() => {
    void client
      .query(UnreadQuery, {}, { requestPolicy: "network-only" })
      .toPromise()
      .then(({ data }) => {
        if (!data) return;
        setUnread(data.unreadCount);
        // The first connection of a tab starts after the newest notification.
        const newest = data.notifications[0]?.id;
        if (newest && !readLastNotification()) saveLastNotification(newest);
      });
  }, [client]);

  useEffect(() => {
    let cancelled = false;
    let socket: Socket | null = null;
    let retriedAuth = false;
    const start = async () => {
      // Learn the newest notification first, so `since` covers what arrives meanwhile.
      const { data } = await client.query(UnreadQuery, {}, { requestPolicy: "network-only" }).toPromise();
      if (cancelled) return;
      if (data) {
        setUnread(data.unreadCount);
        const newest = data.notifications[0]?.id;
        if (newest && !readLastNotification()) saveLastNotification(newest);
      }
      socket = io({
        path: "/socket.io/",
        transports: ["websocket"],
        auth: (callback) => {
          const since = readLastNotification();
          callback(since ? { token: token(), since } : { token: token() });
        },
      });
      socketRef.current = socket;
      socket.on("connect", () => {
        retriedAuth = false;
        setConnected(true);
        setConnections((count) => count + 1);
        setLost(false);
        refreshUnread();
      });
      socket.on("disconnect", (reason) => {
        setConnected(false);
        setLost(true);
        // The server ended it (session revoked): no automatic retry, so ask again.
        if (reason === "io server disconnect") {
          void refreshNow().then((ok) => (ok ? socket?.connect() : unauthenticated()));
        }
      });
      socket.on("connect_error", (error) => {
        setConnected(false);
        setLost(true);
        if (error.message === "unauthorized") {
          if (retriedAuth) {
            unauthenticated();
            return;
          }
          retriedAuth = true;
          void refreshNow().then((ok) => (ok ? socket?.connect() : unauthenticated()));
        }
      });
      socket.on("notification", (notification: LiveNotification) => {
        saveLastNotification(notification.id);
        listeners.current.forEach((listener) => listener(notification));
        refreshUnread();
      });
    };
    void start();
    return () => {
      cancelled = true;
      socket?.disconnect();
      socketRef.current = null;
    };
  }, [client, token, refreshNow, unauthenticated, refreshUnread]);

  const onNotification = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const value = useMemo(
    () => ({ connected, connections, lost, unread, refreshUnread, onNotification }),
    [connected, connections, lost, unread, refreshUnread, onNotification],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): LiveContextValue {
  const value = useContext(LiveContext);
  if (!value) throw new Error("useLive outside LiveProvider");
  return value;
}
