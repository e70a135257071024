import "server-only";

/** The gateway as route handlers reach it (server side, read at run time). */
export function gatewayUrl(): string {
  return (process.env.HAUNTED_GATEWAY_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
}

export interface GatewayAnswer {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

/** One GraphQL request to the gateway, on behalf of the browser that made `request`. */
export async function gatewayRequest(
  request: Request,
  query: string,
  variables: Record<string, unknown>,
  token?: string | null,
): Promise<GatewayAnswer> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  // The gateway records the device and address of a session and rate-limits per
  // address: pass on the browser's, not this server's.
  const agent = request.headers.get("user-agent");
  if (agent) headers["User-Agent"] = agent;
  const forwarded = request.headers.get("x-forwarded-for");
  if (forwarded) headers["X-Forwarded-For"] = forwarded;
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(`${gatewayUrl()}/graphql`, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
      cache: "no-store",
    });
    return (await response.json()) as GatewayAnswer;
  } catch {
    return {
      errors: [
        { message: "The server cannot be reached. Try again in a moment.", extensions: { code: "NETWORK" } },
      ],
    };
  }
}
