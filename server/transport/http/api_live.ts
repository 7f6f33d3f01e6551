/**
 * Live connections over HTTP: the WebSocket, Server-Sent Events, and private sessions (which
 * need one of those to be live).
 * @module
 */

import { z } from "zod";
import { HEARTBEAT_MS, MAX_LINE_BYTES } from "../../../protocol/limits.ts";
import { ChatError } from "../../core/errors.ts";
import type { Logger } from "../../log.ts";
import { openEventStream } from "../sse.ts";
import { validKey } from "../websocket_frames.ts";
import { serveWebSocket } from "../ws.ts";
import { frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import { chars, SessionOutcome, Ulid, Username } from "./schemas.ts";
import { ProtocolError } from "../../../protocol/frames.ts";

/** What the live routes need besides the hub. */
export interface LiveOptions {
  log: Logger;
  heartbeatMs?: number;
  /** Time a WebSocket has to log in (LOGIN_TIMEOUT_MS by default). */
  loginTimeoutMs?: number | undefined;
}

const Resume = Ulid.optional().meta({ description: "resume after this message id" });

/** Session, SSE and WebSocket routes. */
export function liveRoutes(options: LiveOptions): RouteSpec[] {
  const { log } = options;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  return [
    route({
      method: "post",
      path: "/api/v1/sessions",
      tag: "sessions",
      summary:
        "Ask a user for a private session (needs a live WebSocket or SSE connection of yours)",
      auth: true,
      body: z.strictObject({ username: Username }),
      ok: {
        202: {
          description: "request sent",
          schema: z.object({ requested: z.string() }),
        },
      },
      errors: [404, 409],
      async handle({ hub, user, ip, body, c }) {
        await hub.run(user, frame("session_request", { target_username: body.username }), ip);
        return c.json({ requested: body.username }, 202);
      },
    }),
    ...(["accept", "reject"] as const).map((what) =>
      route({
        method: "post",
        path: `/api/v1/sessions/{user}/${what}`,
        tag: "sessions",
        summary: `${what === "accept" ? "Accept" : "Reject"} a session request from a user`,
        auth: true,
        params: z.object({ user: Username }),
        ok: { 200: { description: "the outcome", schema: SessionOutcome } },
        errors: [404, 409],
        async handle({ hub, user, ip, params, c }) {
          const f = frame("session_response", {
            target_username: params.user,
            accepted: what === "accept",
          });
          return c.json(await hub.run(user, f, ip));
        },
      })
    ),
    route({
      method: "delete",
      path: "/api/v1/sessions",
      tag: "sessions",
      summary: "End your private session",
      auth: true,
      ok: { 200: { description: "the session_ended frame", schema: SessionOutcome } },
      errors: [404],
      async handle({ hub, user, ip, c }) {
        return c.json(await hub.run(user, frame("session_end"), ip));
      },
    }),
    route({
      method: "get",
      path: "/api/v1/events",
      tag: "live",
      summary:
        "Server-Sent Events: every frame as one event; stored messages carry their id, so Last-Event-ID resumes",
      auth: true,
      query: z.object({
        token: z.string().optional().meta({
          description: "the token, for EventSource clients that cannot set headers",
        }),
        since: Resume,
      }),
      headers: [{ name: "Last-Event-ID", description: "resume after this message id" }],
      ok: { 200: { description: "the event stream", mediaType: "text/event-stream" } },
      errors: [429],
      handle({ hub, user, token, ip, query, c }) {
        const since = resumePoint(c.req.header("last-event-id")) ?? query.since;
        const refusal = hub.admit(ip);
        if (refusal) throw new ChatError("rate_limited", refusal);
        return openEventStream(hub, { user, token, since, ip, log, keepaliveMs: heartbeatMs });
      },
    }),
    route({
      method: "get",
      path: "/ws",
      tag: "live",
      summary:
        "WebSocket carrying the TCP JSON frames (several per message, newline-separated); log in with ?token= or a hello/auth frame",
      query: z.object({
        token: chars(1, 200, { description: "log in at once with a token" }).optional(),
        since: Resume,
      }),
      ok: { 101: { description: "switching protocols" } },
      errors: [401, 403, 429],
      async handle({ hub, ip, query, c }) {
        if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
          throw new ProtocolError(
            "bad_frame",
            "GET /ws is a WebSocket endpoint: connect with a WebSocket client",
          );
        }
        // A bad token is refused before the upgrade, with a status a client can read.
        const user = query.token === undefined ? undefined : await hub.authenticate(query.token);
        // RFC 6455: a GET, and a key of 16 bytes in base64 (any other key, a 400 here, not the
        // upgrade's own refusal: that one is the listener's TypeError, a 500).
        if (c.req.method !== "GET") {
          throw new ProtocolError("bad_frame", "A WebSocket upgrade is a GET request, not HEAD");
        }
        if (
          !validKey(c.req.header("sec-websocket-key") ?? null) ||
          c.req.header("sec-websocket-version") !== "13"
        ) {
          throw new ProtocolError(
            "bad_frame",
            "A WebSocket upgrade needs Sec-WebSocket-Key (16 bytes in base64) and " +
              "Sec-WebSocket-Version: 13",
          );
        }
        const refusal = hub.admit(ip);
        if (refusal) throw new ChatError("rate_limited", refusal);
        const upgrade = c.env?.upgradeWebSocket;
        if (!upgrade) throw new Error("GET /ws needs chat's HTTP listener (http_server.ts)");
        // The socket pings after half the idle timeout of silence and drops after the whole of
        // it; a message over the line limit is refused from its frame header, unread.
        const { socket, response } = upgrade({
          idleTimeoutMs: 3 * heartbeatMs,
          maxMessageBytes: MAX_LINE_BYTES,
        });
        serveWebSocket(hub, socket, {
          ip,
          user,
          token: query.token,
          since: user ? query.since : undefined,
          log,
          ...(options.loginTimeoutMs === undefined
            ? {}
            : { loginTimeoutMs: options.loginTimeoutMs }),
        });
        return response;
      },
    }),
  ];
}

/** A Last-Event-ID header as a resume point: a message id, or nothing. */
function resumePoint(header: string | undefined): string | undefined {
  if (header === undefined || header === "") return undefined;
  const parsed = Ulid.safeParse(header);
  if (!parsed.success) {
    throw new ProtocolError(
      "bad_field",
      '"Last-Event-ID" must be a message id (a 26-character ULID)',
    );
  }
  return parsed.data;
}
