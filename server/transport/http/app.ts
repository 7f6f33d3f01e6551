/**
 * The HTTP app on Hono: every route is declared once (api_*.ts, ops.ts) with its schemas and
 * statuses, mounted here, and described by the OpenAPI document generated from the same
 * declarations. Route handlers only translate HTTP to hub calls; every rule lives in the core.
 * Errors become statuses in one place (`onError`).
 * @module
 */

import { Hono } from "hono";
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
import { opsRoutes, type StoreStatsSource } from "./ops.ts";
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
      document: () => (document ??= openApiDocument(specs)),
    }),
    ...basicRoutes,
    ...accountRoutes,
    ...roomRoutes,
    ...messageRoutes,
    ...moderationRoutes,
    ...fileRoutes,
    ...liveRoutes({ log: options.log, heartbeatMs }),
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

/** Builds the Hono app over a hub. */
export function createHttpApp(hub: Hub, options: HttpOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { log } = options;
  app.onError((error, c) => {
    if (error instanceof ChatError || error instanceof ProtocolError) {
      return c.json({ error: { code: error.code, message: error.message } }, STATUS[error.code]);
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
  app.notFound((c) =>
    c.json({
      error: {
        code: "not_found",
        message: `No route ${c.req.method} ${c.req.path}: see /api/v1/openapi.json`,
      },
    }, 404)
  );
  mount(app, hub, allRoutes(options));
  return app;
}
