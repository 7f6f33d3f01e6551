/**
 * The HTTP app on Hono: every route is declared once (api_*.ts, ops.ts) with its schemas and
 * statuses, mounted here, and described by the OpenAPI document generated from the same
 * declarations. Route handlers only translate HTTP to hub calls; every rule lives in the core.
 * Errors become statuses in one place (`onError`).
 * @module
 */

import { type Context, Hono } from "hono";
import { type ErrorCode, ProtocolError } from "../../../protocol/frames.ts";
import { HEARTBEAT_MS } from "../../../protocol/limits.ts";
import { ChatError } from "../../core/errors.ts";
import type { Hub } from "../../core/hub.ts";
import { createLogger, type Logger } from "../../log.ts";
import { accountRoutes } from "./api_account.ts";
import { basicRoutes } from "./api_basic.ts";
import { fileRoutes } from "./api_files.ts";
import { liveRoutes } from "./api_live.ts";
import { messageRoutes } from "./api_messages.ts";
import { moderationRoutes } from "./api_moderation.ts";
import { roomRoutes } from "./api_rooms.ts";
import type { Env } from "./context.ts";
import { type ClusterHealth, opsRoutes, type StoreStatsSource } from "./ops.ts";
import { honoPath, mount, openApiDocument, type RouteSpec } from "./route.ts";

/** HTTP status for each error code: the one place codes become statuses. */
export const STATUS: Record<ErrorCode, 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 503> = {
  bad_json: 400,
  bad_frame: 400,
  unknown_type: 400,
  missing_field: 400,
  bad_field: 400,
  bad_name: 400,
  too_long: 413,
  not_logged_in: 401,
  password_required: 401,
  bad_password: 401,
  already_logged_in: 409,
  name_taken: 409,
  session_conflict: 409,
  no_such_user: 404,
  no_such_room: 404,
  no_such_message: 404,
  no_session_request: 404,
  not_member: 403,
  forbidden: 403,
  muted: 403,
  banned: 403,
  rate_limited: 429,
  too_slow: 503,
  not_stored: 503,
  internal: 500,
};

/** What the HTTP app needs besides the hub. */
export interface HttpOptions {
  log: Logger;
  /** When the server started (epoch ms), for /healthz. */
  startedAt: number;
  /** The heartbeat (HEARTBEAT_MS by default): WebSocket pings, SSE keepalive comments. */
  heartbeatMs?: number;
  /** Store counters for /metrics (commits and their latency). */
  storeStats?: StoreStatsSource;
  /** Whether the store answers, for /healthz. */
  storeReachable?: () => Promise<boolean>;
  /** Cluster mode: this node's view of the cluster, for /healthz. */
  cluster?: () => ClusterHealth;
  /** A bearer token that may read /metrics besides admins' tokens. */
  metricsToken?: string;
  /** Web origins besides the server's own whose pages may use /ws and state-changing routes. */
  allowedOrigins?: string[];
  /** Time a WebSocket has to log in (LOGIN_TIMEOUT_MS by default). */
  loginTimeoutMs?: number;
}

/**
 * What every answer carries: no sniffing, no framing by other sites, scripts and connections
 * only from this origin (the console's one inline thing is its stylesheet).
 */
const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy": "default-src 'self'; script-src 'self'; " +
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

/**
 * Refuses a browser request from a page of another site that would change something (or open
 * the WebSocket): a page elsewhere must not create accounts or chat as its visitor. Programs
 * send no Origin and are not affected; the console is same-origin.
 */
function checkOrigin(c: Context<Env>, allowed: Set<string>): void {
  const origin = c.req.header("origin");
  if (origin === undefined) return;
  const upgrade = c.req.header("upgrade")?.toLowerCase() === "websocket";
  if (c.req.method === "GET" && !upgrade) return;
  if (c.req.method === "HEAD" || c.req.method === "OPTIONS") return;
  const host = c.req.header("host");
  let sameHost = false;
  try {
    sameHost = host !== undefined && new URL(origin).host === host;
  } catch { /* "null" or garbage: not the same host */ }
  if (sameHost || allowed.has(origin)) return;
  throw new ChatError(
    "forbidden",
    `Requests from pages on ${origin} are refused: the server's admin can allow it with --allowed-origins`,
  );
}

const DOC_OPTIONS: HttpOptions = { log: createLogger("silent"), startedAt: 0 };

/** Every route of the app, declared once. */
export function allRoutes(options: HttpOptions = DOC_OPTIONS): RouteSpec[] {
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const specs: RouteSpec[] = [];
  let document: Record<string, unknown> | null = null;
  specs.push(
    ...opsRoutes({
      startedAt: options.startedAt,
      heartbeatMs,
      storeStats: options.storeStats,
      storeReachable: options.storeReachable,
      cluster: options.cluster,
      metricsToken: options.metricsToken ?? "",
      document: () => (document ??= openApiDocument(specs)),
    }),
    ...basicRoutes,
    ...accountRoutes,
    ...roomRoutes,
    ...messageRoutes,
    ...moderationRoutes,
    ...fileRoutes,
    ...liveRoutes({ log: options.log, heartbeatMs, loginTimeoutMs: options.loginTimeoutMs }),
  );
  return specs;
}

/** Method, path (Hono style, `:param`) and whether a token is needed, of every declared route. */
export function documentedRoutes(): Array<{ method: string; path: string; auth: boolean }> {
  return allRoutes().map((r) => ({
    method: r.method.toUpperCase(),
    path: honoPath(r.path),
    auth: r.auth === true,
  }));
}

/** The OpenAPI document of every route. */
export function apiDocument(): Record<string, unknown> {
  return openApiDocument(allRoutes());
}

/** Whether an error means the request's bytes were bad or cut, not that the server failed. */
function isBadRequestStream(error: unknown): boolean {
  return error instanceof Deno.errors.Http || error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.UnexpectedEof ||
    (error instanceof TypeError && /body|chunk/i.test(error.message));
}

/**
 * The core's hints name the commands people type (`/join games`, `/users`); an HTTP client is
 * told the route instead, as a JIM client is told its action (`jimHints`).
 */
export function httpHints(message: string): string {
  return message
    .replace(
      /\/join #?([^\s:]+) (creates (?:it|the room)|first|to read it)/g,
      "POST /api/v1/rooms/$1/join $2",
    )
    .replace(/\/join another room/g, "join another room (POST /api/v1/rooms/NAME/join)")
    .replace(/anyone can \/join it/g, "anyone can join it (POST /api/v1/rooms/NAME/join)")
    .replace(/\/users (lists|still)/g, "GET /api/v1/users $1")
    .replace(/\/rooms lists/g, "GET /api/v1/rooms lists")
    .replace(/\/leave one first/g, "leave one first (POST /api/v1/rooms/NAME/leave)")
    .replace(/\/leave it\b/g, "leave it (POST /api/v1/rooms/NAME/leave)")
    .replace(/\/exit it first/g, "end it first (DELETE /api/v1/sessions)")
    .replace(/\/private (\S+) TEXT/g, "POST /send_to")
    .replace(/\/register( PASSWORD)?/g, "POST /connect with your login and a password");
}

/** Builds the Hono app over a hub. */
export function createHttpApp(hub: Hub, options: HttpOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { log } = options;
  app.onError((error, c) => {
    if (error instanceof ChatError || error instanceof ProtocolError) {
      const message = httpHints(error.message);
      return c.json({ error: { code: error.code, message } }, STATUS[error.code]);
    }
    // The request body stalled (http_server.ts's deadline): the connection is closed after this.
    if (error instanceof Deno.errors.TimedOut) {
      return c.json(
        {
          error: { code: "too_slow", message: "The request body stopped arriving: send it again" },
        },
        408,
        { connection: "close" },
      );
    }
    // The request itself could not be read (a malformed chunked body, a client gone mid-body):
    // the client's fault, answered as such, never logged as a server error.
    if (isBadRequestStream(error)) {
      return c.json(
        {
          error: {
            code: "bad_frame",
            message: "The request body could not be read (malformed encoding?): send it again",
          },
        },
        400,
        { connection: "close" },
      );
    }
    log.error("http handler failed", { path: c.req.path, error });
    return c.json({
      error: {
        code: "internal",
        message: "Something went wrong on the server; it was logged. Try again.",
      },
    }, 500);
  });
  const routes = allRoutes(options);
  const methodsOf = routeMethods(routes);
  app.notFound((c) => {
    // A path that exists with other methods is 405 with the ones it has (RFC 9110 §15.5.6).
    const allow = methodsOf(c.req.path);
    if (allow.length > 0 && !allow.includes(c.req.method)) {
      return c.json(
        {
          error: {
            code: "method_not_allowed",
            message: `${c.req.path} takes ${allow.join(", ")}, not ${c.req.method}`,
          },
        },
        405,
        { allow: allow.join(", ") },
      );
    }
    return c.json({
      error: {
        code: "not_found",
        message: `No route ${c.req.method} ${c.req.path}: see /api/v1/openapi.json`,
      },
    }, 404);
  });
  const allowed = new Set(options.allowedOrigins ?? []);
  app.use("*", async (c, next) => {
    // A page of an origin let in with --allowed-origins is let read the answers too (CORS);
    // its browser first asks (a preflight) what a path takes.
    const origin = c.req.header("origin");
    const cors = origin !== undefined && allowed.has(origin);
    if (cors && c.req.method === "OPTIONS" && c.req.header("access-control-request-method")) {
      return c.body(null, 204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": methodsOf(c.req.path).join(", "),
        "access-control-allow-headers": CORS_HEADERS,
        "access-control-max-age": "600",
        vary: "origin",
      });
    }
    checkOrigin(c, allowed);
    await next();
    if (c.res.status === 101) return;
    if (cors) {
      c.res.headers.set("access-control-allow-origin", origin);
      c.res.headers.append("vary", "origin");
    }
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!c.res.headers.has(name)) c.res.headers.set(name, value);
    }
  });
  mount(app, hub, routes);
  return app;
}

/** The request headers the routes read, which an allowed origin's page may send. */
const CORS_HEADERS = "authorization, content-type, x-filename";

/** The methods each path is declared with (GET brings HEAD, as Hono answers it). */
function routeMethods(routes: RouteSpec[]): (path: string) => string[] {
  const declared = routes.map((r) => ({
    method: r.method.toUpperCase(),
    parts: r.path.split("/"),
  }));
  // A declared part `{name}` matches any one part of the path; the others match themselves.
  const matches = (parts: string[], path: string[]) =>
    parts.length === path.length &&
    parts.every((p, i) => p === path[i] || (p.startsWith("{") && path[i] !== ""));
  return (path) => {
    const asked = path.split("/");
    const methods = new Set<string>();
    for (const r of declared) {
      if (!matches(r.parts, asked)) continue;
      methods.add(r.method);
      if (r.method === "GET") methods.add("HEAD");
    }
    return [...methods].sort();
  };
}
