/**
 * The HTTP wire on Hono: s3's REST API at its exact paths, a resource API under `/api/v1`,
 * WebSocket at `/ws`, Server-Sent Events at `/api/v1/events`, health and the OpenAPI
 * document. Route handlers only translate HTTP to hub calls; every rule lives in the core.
 * @module
 */

import { type Context, Hono } from "hono";
import {
  decodeClientValue,
  type ErrorCode,
  ProtocolError,
  type ServerFrame,
} from "../../protocol/frames.ts";
import { HEARTBEAT_MS, MAX_LINE_BYTES } from "../../protocol/limits.ts";
import { ChatError } from "../core/errors.ts";
import { formatSize, GENERAL, type Hub } from "../core/hub.ts";
import type { Logger } from "../log.ts";
import { CONSOLE_MISSING, consoleBundle, consoleHtml } from "./console.ts";
import type { ConnectionInfo } from "./http_server.ts";
import { openApiDocument } from "./openapi.ts";
import { openEventStream } from "./sse.ts";
import { serveWebSocket } from "./ws.ts";

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
  storeStats?: () => {
    commits: number;
    mutations: number;
    commitMsTotal: number;
    commitMsMax: number;
  };
}

type Env = {
  Variables: { user: string; token: string };
  // What the listener (http_server.ts) passes as the second argument; absent under
  // app.request() in tests.
  Bindings: Partial<ConnectionInfo>;
};

function ipOf(c: Context<Env>): string {
  return (c.env as Partial<ConnectionInfo> | undefined)?.remoteAddr?.hostname ?? "";
}

/** The token from `Authorization: Bearer X`, `Authorization: X` (s3) or `?token=X`. */
function tokenOf(c: Context<Env>): string | undefined {
  const header = c.req.header("authorization");
  if (header) return header.replace(/^Bearer\s+/i, "").trim();
  return c.req.query("token") ?? undefined;
}

/** Reads a JSON object body of at most MAX_LINE_BYTES, refusing more before reading it all. */
async function jsonBody(
  c: Context<Env>,
  options: { optional?: boolean } = {},
): Promise<Record<string, unknown>> {
  const declared = Number(c.req.header("content-length") ?? "0");
  const tooLong = () =>
    new ProtocolError("too_long", `The body is larger than ${MAX_LINE_BYTES} bytes: send less`);
  if (declared > MAX_LINE_BYTES) throw tooLong();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (c.req.raw.body) {
    const reader = c.req.raw.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > MAX_LINE_BYTES) {
        await reader.cancel();
        throw tooLong();
      }
      chunks.push(value);
    }
  }
  const bytes = new Uint8Array(size);
  let off = 0;
  for (const ch of chunks) {
    bytes.set(ch, off);
    off += ch.length;
  }
  // Deno gives a body-less POST an empty stream, not a null body: judge by the bytes.
  if (options.optional && size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (cause) {
    throw new ProtocolError("bad_json", 'The body is not valid JSON: send e.g. {"message":"hi"}', {
      cause,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad_frame", "The body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** A JSON object body that may be left out entirely (then `{}`). */
function optionalBody(c: Context<Env>): Promise<Record<string, unknown>> {
  return jsonBody(c, { optional: true });
}

/** A path parameter (Hono's typing loses them behind shared middleware). */
function param(c: Context<Env>, name: string): string {
  const v = c.req.param(name);
  if (v === undefined) throw new ProtocolError("missing_field", `The path needs a ${name}`);
  return v;
}

function intQuery(c: Context<Env>, name: string): number | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) {
    throw new ProtocolError("bad_field", `"${name}" must be a whole number, got "${v}"`);
  }
  return Number(v);
}

function pick<K extends ServerFrame["type"]>(
  frames: ServerFrame[],
  type: K,
): Extract<ServerFrame, { type: K }> {
  const f = frames.find((x) => x.type === type);
  if (!f) throw new ChatError("internal", `The server did not answer with "${type}"`);
  return f as Extract<ServerFrame, { type: K }>;
}

/** Validates a resume point (a message id) with the same decoder as the `auth` frame. */
function resumePoint(token: string, since: string | undefined): string | undefined {
  if (since === undefined || since === "") return undefined;
  const frame = decodeClientValue({ type: "auth", token, since });
  return frame.type === "auth" ? frame.since : undefined;
}

/** Builds the Hono app over a hub. */
export function createHttpApp(hub: Hub, options: HttpOptions): Hono<Env> {
  const app = new Hono<Env>();
  const { log } = options;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;

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

  const auth = async (c: Context<Env>, next: () => Promise<void>) => {
    const token = tokenOf(c);
    if (!token) {
      throw new ChatError(
        "not_logged_in",
        "Send your token: Authorization: Bearer TOKEN (get one from POST /connect)",
      );
    }
    c.set("user", await hub.authenticate(token));
    c.set("token", token);
    await next();
  };
  const run = (c: Context<Env>, frame: Record<string, unknown>): Promise<ServerFrame[]> =>
    hub.request(c.get("user"), decodeClientValue(frame), ipOf(c));
  const ackBody = (frames: ServerFrame[]) => {
    const { type: _t, ref: _r, ...ack } = pick(frames, "ack");
    return ack;
  };

  // ------------------------------------------------------------ health, docs
  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      uptime_s: Math.round((Date.now() - options.startedAt) / 1000),
      connections: hub.connections,
      online_users: hub.onlineUsers,
    }));
  app.get("/api/v1/openapi.json", (c) => c.json(openApiDocument()));

  // ------------------------------------------------------------ console and metrics
  app.get(
    "/",
    async (c) => c.html((await consoleBundle()) ? consoleHtml(heartbeatMs) : CONSOLE_MISSING),
  );
  app.get("/app.js", async (c) => {
    const js = await consoleBundle();
    if (!js) return c.text("not built: deno task build:web", 404);
    return c.body(js as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "no-cache",
    });
  });
  app.get("/metrics", (c) => {
    const st = hub.statsFrame();
    const store = options.storeStats?.();
    const lines = [
      "# HELP chat_connections Open connections by transport.",
      "# TYPE chat_connections gauge",
      ...Object.entries({ "tcp-json": 0, "tcp-text": 0, ws: 0, sse: 0, ...st.by_transport })
        .map(([t, n]) => `chat_connections{transport="${t}"} ${n}`),
      "# HELP chat_online_users Users with at least one connection.",
      "# TYPE chat_online_users gauge",
      `chat_online_users ${st.online_users}`,
      "# HELP chat_messages_total Messages stored since start.",
      "# TYPE chat_messages_total counter",
      `chat_messages_total ${st.messages_total}`,
      "# HELP chat_deliveries_total Frames delivered to connections since start.",
      "# TYPE chat_deliveries_total counter",
      `chat_deliveries_total ${hub.stats.deliveries}`,
      "# HELP chat_errors_total Internal errors since start.",
      "# TYPE chat_errors_total counter",
      `chat_errors_total ${hub.stats.errors}`,
      "# HELP chat_uptime_seconds Seconds since start.",
      "# TYPE chat_uptime_seconds gauge",
      `chat_uptime_seconds ${st.uptime_s}`,
    ];
    if (store) {
      lines.push(
        "# HELP chat_kv_commits_total Deno KV commits (each a group of writes).",
        "# TYPE chat_kv_commits_total counter",
        `chat_kv_commits_total ${store.commits}`,
        "# HELP chat_kv_mutations_total Deno KV mutations committed.",
        "# TYPE chat_kv_mutations_total counter",
        `chat_kv_mutations_total ${store.mutations}`,
        "# HELP chat_kv_commit_seconds_sum Time spent in KV commits.",
        "# TYPE chat_kv_commit_seconds_sum counter",
        `chat_kv_commit_seconds_sum ${(store.commitMsTotal / 1000).toFixed(6)}`,
        "# HELP chat_kv_commit_seconds_max Slowest KV commit.",
        "# TYPE chat_kv_commit_seconds_max gauge",
        `chat_kv_commit_seconds_max ${(store.commitMsMax / 1000).toFixed(6)}`,
      );
    }
    return c.text(lines.join("\n") + "\n", 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });

  // ------------------------------------------------------------ s3's API, at its exact paths
  app.post("/connect", async (c) => {
    const body = await jsonBody(c);
    const login = body.login;
    const password = body.password;
    if (typeof login !== "string" || typeof password !== "string") {
      throw new ProtocolError("missing_field", 'Send {"login": "...", "password": "..."}');
    }
    const session = await hub.login(login, password, ipOf(c));
    return c.json({
      token: session.token,
      login: session.username,
      expires_at: new Date(session.expiresAt).toISOString(),
    });
  });
  app.get("/status", auth, async (c) => {
    const status = pick(await run(c, { type: "status" }), "status");
    const users = pick(await run(c, { type: "users" }), "users_list");
    return c.json({
      user: { login: status.username, registered: status.registered },
      chats: status.chats.map((ch) => ({
        name: ch.chat,
        members: ch.members,
        member_count: ch.member_count,
        unread: ch.unread,
      })),
      online: users.users,
      online_count: users.online_users,
    });
  });
  app.post("/send", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(
      ackBody(await run(c, { type: "message", room: GENERAL, message: body.message })),
      201,
    );
  });
  app.post("/send_to", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(
      ackBody(
        await run(c, { type: "private", target_username: body.user_login, message: body.message }),
      ),
      201,
    );
  });
  app.post("/chats/:chat/messages", auth, async (c) => {
    // s3 calls the common chat "main"; here it is "general".
    const name = param(c, "chat");
    const chat = name === "main" ? GENERAL : name;
    const h = pick(await run(c, { type: "unread", chat, limit: 20 }), "history");
    return c.json({
      chat: h.chat,
      messages: h.messages,
      unread_left: Math.max(0, (h.unread ?? 0) - h.messages.length),
    });
  });

  // ------------------------------------------------------------ /api/v1
  const v1 = new Hono<Env>();
  v1.post("/session", async (c) => {
    const body = await jsonBody(c);
    if (typeof body.username !== "string" || typeof body.password !== "string") {
      throw new ProtocolError("missing_field", 'Send {"username": "...", "password": "..."}');
    }
    const s = await hub.login(body.username, body.password, ipOf(c));
    return c.json({
      token: s.token,
      username: s.username,
      expires_at: new Date(s.expiresAt).toISOString(),
    }, 201);
  });
  v1.get("/session", auth, async (c) => c.json(pick(await run(c, { type: "status" }), "status")));
  v1.delete("/session", auth, async (c) => {
    await hub.logout(c.get("token"));
    return c.body(null, 204);
  });
  v1.get("/users", auth, async (c) => c.json(pick(await run(c, { type: "users" }), "users_list")));
  v1.get("/users/:user", auth, async (c) => {
    const name = param(c, "user");
    const list = pick(await run(c, { type: "users" }), "users_list");
    const entry = list.all.find((u) => u.username.toLowerCase() === name.toLowerCase());
    if (!entry) throw new ChatError("no_such_user", `There is no user "${name}"`);
    return c.json(entry);
  });
  v1.get("/rooms", auth, async (c) => c.json(pick(await run(c, { type: "rooms" }), "rooms_list")));
  v1.post("/rooms", auth, async (c) => {
    const body = await jsonBody(c);
    const joined = pick(await run(c, { type: "join", room: body.name }), "joined");
    return c.json(joined, joined.created ? 201 : 200);
  });
  v1.post(
    "/rooms/:room/join",
    auth,
    async (c) => c.json(pick(await run(c, { type: "join", room: param(c, "room") }), "joined")),
  );
  v1.post(
    "/rooms/:room/leave",
    auth,
    async (c) => c.json(pick(await run(c, { type: "leave", room: param(c, "room") }), "left")),
  );
  v1.get(
    "/rooms/:room/members",
    auth,
    async (c) => c.json(pick(await run(c, { type: "members", room: param(c, "room") }), "members")),
  );
  const page = (c: Context<Env>, chat: string) => ({
    type: "history",
    chat,
    limit: intQuery(c, "limit"),
    before: intQuery(c, "before"),
    after: intQuery(c, "after"),
  });
  v1.get(
    "/rooms/:room/messages",
    auth,
    async (c) => c.json(pick(await run(c, page(c, param(c, "room"))), "history")),
  );
  v1.post("/rooms/:room/messages", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(
      ackBody(
        await run(c, {
          type: "message",
          room: param(c, "room"),
          message: body.message,
          reply_to: body.reply_to,
        }),
      ),
      201,
    );
  });
  v1.get(
    "/private/:user/messages",
    auth,
    async (c) => c.json(pick(await run(c, page(c, "@" + param(c, "user"))), "history")),
  );
  v1.post("/private/:user/messages", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(
      ackBody(
        await run(c, {
          type: "private",
          target_username: param(c, "user"),
          message: body.message,
          reply_to: body.reply_to,
        }),
      ),
      201,
    );
  });
  v1.get(
    "/unread",
    auth,
    async (c) => c.json(pick(await run(c, { type: "unread_counts" }), "unread_counts")),
  );
  v1.post("/chats/:chat/read", auth, async (c) => {
    const frame = { type: "unread", chat: param(c, "chat"), limit: intQuery(c, "limit") };
    return c.json(pick(await run(c, frame), "history"));
  });
  v1.post("/sessions", auth, async (c) => {
    const body = await jsonBody(c);
    await run(c, { type: "session_request", target_username: body.username });
    return c.json({ requested: body.username }, 202);
  });
  const answer = (accepted: boolean) => async (c: Context<Env>) => {
    const frames = await run(c, {
      type: "session_response",
      target_username: param(c, "user"),
      accepted,
    });
    return c.json(pick(frames, accepted ? "session_accepted" : "session_rejected"));
  };
  v1.post("/sessions/:user/accept", auth, answer(true));
  v1.post("/sessions/:user/reject", auth, answer(false));
  v1.delete(
    "/sessions",
    auth,
    async (c) => c.json(pick(await run(c, { type: "session_end" }), "session_ended")),
  );
  v1.get("/events", auth, (c) => {
    const since = resumePoint(
      c.get("token"),
      c.req.header("last-event-id") ?? c.req.query("since"),
    );
    const refusal = hub.admit(ipOf(c));
    if (refusal) throw new ChatError("rate_limited", refusal);
    return openEventStream(hub, {
      token: c.get("token"),
      since,
      ip: ipOf(c),
      log,
      keepaliveMs: heartbeatMs,
    });
  });
  // ------------------------------------------------------------ moderation
  const sys = (frames: ServerFrame[]) => {
    const { type: _t, ref: _r, ...rest } = pick(frames, "system");
    return rest;
  };
  v1.post("/users/:user/report", auth, async (c) => {
    const body = await optionalBody(c);
    return c.json(
      sys(await run(c, { type: "report", username: param(c, "user"), reason: body.reason })),
    );
  });
  v1.delete(
    "/messages/:id",
    auth,
    async (c) =>
      c.json(pick(await run(c, { type: "delete_message", id: param(c, "id") }), "message_deleted")),
  );
  v1.post("/admin/users", auth, async (c) => {
    const body = await jsonBody(c);
    const frame = {
      type: "create_user",
      username: body.username,
      password: body.password,
      admin: body.admin,
    };
    return c.json(sys(await run(c, frame)), 201);
  });
  for (const action of ["kick", "mute", "ban"] as const) {
    v1.post(`/admin/users/:user/${action}`, auth, async (c) => {
      const body = await optionalBody(c);
      const frame = {
        type: action,
        username: param(c, "user"),
        reason: body.reason,
        minutes: body.minutes,
      };
      return c.json(
        sys(await run(c, action === "kick" ? { ...frame, minutes: undefined } : frame)),
      );
    });
  }
  for (const action of ["mute", "ban"] as const) {
    v1.delete(`/admin/users/:user/${action}`, auth, async (c) => {
      const frame = { type: action === "mute" ? "unmute" : "unban", username: param(c, "user") };
      return c.json(sys(await run(c, frame)));
    });
  }
  v1.get(
    "/admin/connections",
    auth,
    async (c) => c.json(pick(await run(c, { type: "connections" }), "connections_list")),
  );
  v1.get(
    "/admin/reports",
    auth,
    async (c) => c.json(pick(await run(c, { type: "reports" }), "reports_list")),
  );
  v1.get("/admin/audit", auth, async (c) => {
    const frame = {
      type: "audit",
      limit: intQuery(c, "limit"),
      before: c.req.query("before") || undefined,
    };
    return c.json(pick(await run(c, frame), "audit_log"));
  });

  // ------------------------------------------------------------ files
  v1.post("/files", auth, async (c) => {
    const declared = c.req.header("content-length");
    const size = declared === undefined ? undefined : Number(declared);
    // Too large is refused before the body is read: the declared length is enough.
    if (size !== undefined && size > hub.maxFileSize) {
      throw new ChatError(
        "too_long",
        `The file is ${formatSize(size)}; the limit is ${formatSize(hub.maxFileSize)}`,
      );
    }
    const name = c.req.query("name") ?? c.req.header("x-filename") ?? "";
    if (!name) {
      throw new ProtocolError(
        "missing_field",
        "Name the file: ?name=report.pdf (or an X-Filename header)",
      );
    }
    const room = c.req.query("room");
    const to = c.req.query("to");
    if (room !== undefined && to !== undefined) {
      throw new ProtocolError("bad_field", 'Give "room" or "to", not both');
    }
    const body = c.req.raw.body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    const ack = await hub.uploadFile(c.get("user"), {
      name: decodeURIComponent(name),
      mime: (c.req.header("content-type") ?? "application/octet-stream").split(";")[0]!.trim(),
      ...(size === undefined ? {} : { size }),
      ...(room === undefined ? {} : { room }),
      ...(to === undefined ? {} : { to }),
    }, body);
    const { type: _t, ref: _r, ...rest } = ack as Extract<ServerFrame, { type: "ack" }>;
    return c.json(rest, 201);
  });
  v1.get("/files/:id", auth, async (c) => {
    const { file, chunks } = await hub.openFile(c.get("user"), param(c, "id"));
    const stream = ReadableStream.from(chunks);
    const ascii = file.name.replace(/[^\x20-\x7e]|["\\]/g, "_");
    return new Response(stream, {
      headers: {
        "content-type": file.mime,
        "content-length": String(file.size),
        "content-disposition": `attachment; filename="${ascii}"; filename*=UTF-8''${
          encodeURIComponent(file.name)
        }`,
        "x-content-type-options": "nosniff",
      },
    });
  });

  // ------------------------------------------------------------ replies and scheduled messages
  v1.get(
    "/messages/:id/replies",
    auth,
    async (c) => c.json(pick(await run(c, { type: "replies", id: param(c, "id") }), "replies")),
  );
  v1.post("/scheduled", auth, async (c) => {
    const body = await jsonBody(c);
    const frame = {
      type: "schedule",
      message: body.message,
      at: body.at,
      room: body.room,
      target_username: body.username,
    };
    return c.json(pick(await run(c, frame), "scheduled").entry, 201);
  });
  v1.get(
    "/scheduled",
    auth,
    async (c) => c.json(pick(await run(c, { type: "scheduled" }), "scheduled_list")),
  );
  v1.delete("/scheduled/:id", auth, async (c) => {
    await run(c, { type: "cancel_scheduled", id: param(c, "id") });
    return c.body(null, 204);
  });

  // ------------------------------------------------------------ private group chats
  v1.post("/groups", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(pick(await run(c, { type: "create_group", room: body.name }), "joined"), 201);
  });
  v1.post("/groups/:room/invites", auth, async (c) => {
    const body = await jsonBody(c);
    return c.json(
      sys(await run(c, { type: "invite", room: param(c, "room"), username: body.username })),
      201,
    );
  });
  v1.post(
    "/invites/:room/accept",
    auth,
    async (c) =>
      c.json(
        pick(
          await run(c, { type: "invite_response", room: param(c, "room"), accepted: true }),
          "joined",
        ),
      ),
  );
  v1.post(
    "/invites/:room/decline",
    auth,
    async (c) =>
      c.json(
        sys(await run(c, { type: "invite_response", room: param(c, "room"), accepted: false })),
      ),
  );
  v1.post("/groups/:room/links", auth, async (c) => {
    const { type: _t, ref: _r, ...link } = pick(
      await run(c, { type: "create_link", room: param(c, "room") }),
      "link",
    );
    return c.json(link, 201);
  });
  v1.delete(
    "/groups/:room/links/:token",
    auth,
    async (c) =>
      c.json(
        sys(
          await run(c, { type: "revoke_link", room: param(c, "room"), token: param(c, "token") }),
        ),
      ),
  );
  v1.post("/links/:token/join", auth, async (c) => {
    const frames = await run(c, { type: "join_link", token: param(c, "token") });
    const joined = frames.find((f) => f.type === "joined");
    return joined ? c.json(joined) : c.json(sys(frames), 202);
  });
  for (const [action, approved] of [["approve", true], ["refuse", false]] as const) {
    v1.post(`/groups/:room/requests/:user/${action}`, auth, async (c) => {
      const frame = {
        type: "join_decision",
        room: param(c, "room"),
        username: param(c, "user"),
        approved,
      };
      return c.json(sys(await run(c, frame)));
    });
  }
  v1.delete(
    "/groups/:room/members/:user",
    auth,
    async (c) =>
      c.json(
        sys(
          await run(c, {
            type: "remove_member",
            room: param(c, "room"),
            username: param(c, "user"),
          }),
        ),
      ),
  );

  // ------------------------------------------------------------ contacts
  v1.get(
    "/contacts",
    auth,
    async (c) => c.json(pick(await run(c, { type: "contacts" }), "contacts_list")),
  );
  v1.put(
    "/contacts/:user",
    auth,
    async (c) =>
      c.json(
        pick(await run(c, { type: "add_contact", username: param(c, "user") }), "contacts_list"),
      ),
  );
  v1.delete(
    "/contacts/:user",
    auth,
    async (c) =>
      c.json(
        pick(await run(c, { type: "remove_contact", username: param(c, "user") }), "contacts_list"),
      ),
  );

  app.route("/api/v1", v1);

  // ------------------------------------------------------------ WebSocket
  app.get("/ws", async (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new ProtocolError(
        "bad_frame",
        "GET /ws is a WebSocket endpoint: connect with a WebSocket client",
      );
    }
    const token = c.req.query("token");
    // A bad token is refused before the upgrade, with a status a client can read.
    if (token !== undefined) await hub.authenticate(token);
    const since = token === undefined ? undefined : resumePoint(token, c.req.query("since"));
    // Deno closes the request's connection info once upgraded: read the address first.
    const ip = ipOf(c);
    const refusal = hub.admit(ip);
    if (refusal) throw new ChatError("rate_limited", refusal);
    // Deno pings after half the idle timeout of silence and closes after the whole of it.
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, {
      idleTimeout: (3 * heartbeatMs) / 1000,
    });
    serveWebSocket(hub, socket, { ip, token, since, log });
    // The connection counts against its address until the socket is really closed.
    (c.env as Partial<ConnectionInfo> | undefined)?.hold?.(
      new Promise((resolve) => socket.addEventListener("close", resolve)),
    );
    return response;
  });

  return app;
}
