"use client";

import {
  Client,
  Provider,
  cacheExchange,
  fetchExchange,
  mapExchange,
  subscriptionExchange,
} from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { useMemo, type ReactNode } from "react";
import { useSession } from "./session";

function wsUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}/graphql`;
}

/** One GraphQL client per signed-in user: HTTP for queries, graphql-transport-ws for subscriptions. */
export function GraphQLProvider({ children }: { children: ReactNode }) {
  const { session, token, unauthenticated, refreshNow } = useSession();
  const userId = session?.user.id ?? null;
  const client = useMemo(() => {
    let ws: WsClient | null = null;
    const socket = () => {
      ws ??= createWsClient({
        url: wsUrl(),
        lazy: true,
        retryAttempts: Number.POSITIVE_INFINITY,
        connectionParams: () => {
          const current = token();
          return current ? { authorization: `Bearer ${current}` } : {};
        },
      });
      return ws;
    };
    return new Client({
      url: "/graphql",
      preferGetMethod: false,
      requestPolicy: "cache-and-network",
      fetchOptions: (): RequestInit => {
        const current = token();
        const headers: Record<string, string> = current ? { Authorization: `Bearer ${current}` } : {};
        return { headers };
      },
      exchanges: [
        cacheExchange,
        mapExchange({
          onError(error) {
            // The access token may have lapsed (a laptop asleep past its refresh):
            // the refresh cookie decides whether the session is really over.
            if (error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
              void refreshNow().then((ok) => {
                if (!ok) unauthenticated();
              });
            }
          },
        }),
        fetchExchange,
        subscriptionExchange({
          forwardSubscription(request) {
            const input = { ...request, query: request.query ?? "" };
            return {
              subscribe(sink) {
                const dispose = socket().subscribe(input, sink);
                return { unsubscribe: dispose };
              },
            };
          },
        }),
      ],
    });
    // A new user gets a new client (and cache); `token` reads the latest token.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [userId]);
  return <Provider value={client}>{children}</Provider>;
}
