import { cookies } from "next/headers";
import { NextResponse, type NextRequest } from "next/server";
import { gatewayRequest, type GatewayAnswer } from "@/lib/gateway-server";

// The refresh token never reaches the page's JavaScript: these handlers take it
// from the gateway's answer, keep it in an httpOnly cookie and spend it here.
const COOKIE = "haunted_refresh";
const COOKIE_PATH = "/api/auth";
const MAX_AGE_S = 30 * 24 * 3600;

const PAYLOAD = "token expiresAt refreshToken user { id email }";
const OPERATIONS = {
  login: `mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { ${PAYLOAD} } }`,
  register: `mutation Register($email: String!, $password: String!, $teamName: String) { register(email: $email, password: $password, teamName: $teamName) { ${PAYLOAD} } }`,
  secondFactor: `mutation SecondFactor($challenge: String!, $code: String!) { loginSecondFactor(challenge: $challenge, code: $code) { ${PAYLOAD} } }`,
  refresh: `mutation Refresh($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { ${PAYLOAD} } }`,
  logout: "mutation Logout { logout }",
} as const;

interface Payload {
  token: string;
  expiresAt: string;
  refreshToken: string;
  user: { id: string; email: string };
}

function isLocal(request: NextRequest): boolean {
  const host = request.nextUrl.hostname;
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
}

function withSession(request: NextRequest, answer: GatewayAnswer, field: string): NextResponse {
  const payload = answer.data?.[field] as Payload | null | undefined;
  if (!payload) {
    const response = NextResponse.json({ session: null, errors: answer.errors ?? [] });
    // A refused refresh token is spent or revoked: drop it.
    if (field === "refreshToken") response.cookies.delete({ name: COOKIE, path: COOKIE_PATH });
    return response;
  }
  const response = NextResponse.json({
    session: { token: payload.token, expiresAt: payload.expiresAt, user: payload.user },
  });
  response.cookies.set({
    name: COOKIE,
    value: payload.refreshToken,
    httpOnly: true,
    sameSite: "strict",
    secure: !isLocal(request),
    path: COOKIE_PATH,
    maxAge: MAX_AGE_S,
  });
  return response;
}

async function body(request: NextRequest): Promise<Record<string, unknown>> {
  const parsed: unknown = await request.json().catch(() => ({}));
  return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : {};
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

export async function POST(request: NextRequest, context: RouteContext<"/api/auth/[action]">) {
  const { action } = await context.params;
  switch (action) {
    case "login": {
      const input = await body(request);
      const answer = await gatewayRequest(request, OPERATIONS.login, {
        email: text(input.email),
        password: text(input.password),
      });
      return withSession(request, answer, "login");
    }
    case "second-factor": {
      const input = await body(request);
      const answer = await gatewayRequest(request, OPERATIONS.secondFactor, {
        challenge: text(input.challenge),
        code: text(input.code),
      });
      return withSession(request, answer, "loginSecondFactor");
    }
    case "register": {
      const input = await body(request);
      const answer = await gatewayRequest(request, OPERATIONS.register, {
        email: text(input.email),
        password: text(input.password),
        teamName: text(input.teamName) || null,
      });
      return withSession(request, answer, "register");
    }
    case "refresh": {
      const refreshToken = (await cookies()).get(COOKIE)?.value;
      if (!refreshToken) {
        return NextResponse.json({
          session: null,
          errors: [{ message: "not signed in", extensions: { code: "UNAUTHENTICATED" } }],
        });
      }
      const answer = await gatewayRequest(request, OPERATIONS.refresh, { refreshToken });
      return withSession(request, answer, "refreshToken");
    }
    case "logout": {
      const token = request.headers.get("authorization")?.replace(/^Bearer\s+/i, "");
      const answer = token ? await gatewayRequest(request, OPERATIONS.logout, {}, token) : {};
      const response = NextResponse.json({ session: null, errors: answer.errors ?? [] });
      response.cookies.delete({ name: COOKIE, path: COOKIE_PATH });
      return response;
    }
    default:
      return NextResponse.json({ errors: [{ message: "no such action" }] }, { status: 404 });
  }
}
