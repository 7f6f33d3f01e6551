/**
 * The OpenAPI 3.1 description of every HTTP route: s3's API, `/api/v1`, `/ws` and health.
 * A test checks it against the routes the app really serves.
 * @module
 */

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str = { type: "string" };
const int = { type: "integer" };

interface Op {
  method: "get" | "post" | "put" | "delete";
  path: string;
  summary: string;
  auth?: boolean;
  body?: Schema;
  ok: { status: number; schema?: Schema; description?: string };
  errors: number[];
  params?: Array<
    { name: string; in: "path" | "query" | "header"; description: string; schema?: Schema }
  >;
  tag: string;
}

const paging = [
  {
    name: "limit",
    in: "query" as const,
    description: "1 to 200 messages (default: the server's --history)",
    schema: int,
  },
  {
    name: "before",
    in: "query" as const,
    description: "only messages with seq below this",
    schema: int,
  },
  {
    name: "after",
    in: "query" as const,
    description: "only messages with seq above this",
    schema: int,
  },
];
const messageBody = { type: "object", required: ["message"], properties: { message: str } };

const OPS: Op[] = [
  {
    tag: "health",
    method: "get",
    path: "/healthz",
    summary: "Liveness and a few counters",
    ok: { status: 200, schema: ref("Health") },
    errors: [],
  },
  {
    tag: "health",
    method: "get",
    path: "/api/v1/openapi.json",
    summary: "This document",
    ok: { status: 200 },
    errors: [],
  },
  {
    tag: "console",
    method: "get",
    path: "/",
    summary: "The web console (chat and admin)",
    ok: { status: 200, description: "HTML" },
    errors: [],
  },
  {
    tag: "console",
    method: "get",
    path: "/app.js",
    summary: "The console's script",
    ok: { status: 200, description: "JavaScript" },
    errors: [404],
  },
  {
    tag: "health",
    method: "get",
    path: "/metrics",
    summary:
      "Prometheus metrics: connections by transport, messages, deliveries, errors, KV commits and latency",
    ok: { status: 200, description: "text/plain; version=0.0.4" },
    errors: [],
  },
  // s3
  {
    tag: "s3",
    method: "post",
    path: "/connect",
    summary: "Log in, or register a new login, and get a token",
    body: {
      type: "object",
      required: ["login", "password"],
      properties: { login: str, password: str },
    },
    ok: { status: 200, schema: ref("S3Token") },
    errors: [400, 401, 409],
  },
  {
    tag: "s3",
    method: "get",
    path: "/status",
    summary: "The user, their chats with members and unread counts, and who is online",
    auth: true,
    ok: { status: 200, schema: ref("S3Status") },
    errors: [401],
  },
  {
    tag: "s3",
    method: "post",
    path: "/send",
    summary: "Send a message to general",
    auth: true,
    body: messageBody,
    ok: { status: 201, schema: ref("Ack") },
    errors: [400, 401, 403, 413, 429],
  },
  {
    tag: "s3",
    method: "post",
    path: "/send_to",
    summary: "Send a private message",
    auth: true,
    body: {
      type: "object",
      required: ["user_login", "message"],
      properties: { user_login: str, message: str },
    },
    ok: { status: 201, schema: ref("Ack") },
    errors: [400, 401, 404, 413, 429],
  },
  {
    tag: "s3",
    method: "post",
    path: "/chats/{chat}/messages",
    summary:
      "Up to 20 unread messages of a chat (`main` or `general`, a room, or `@user`); advances the read cursor",
    auth: true,
    params: [{
      name: "chat",
      in: "path",
      description: "room name, `main` for general, or `@user`",
    }],
    ok: { status: 200, schema: ref("S3Messages") },
    errors: [401, 403, 404],
  },
  // v1 session
  {
    tag: "session",
    method: "post",
    path: "/api/v1/session",
    summary: "Log in (or register an unclaimed name) and get a token",
    body: {
      type: "object",
      required: ["username", "password"],
      properties: { username: str, password: str },
    },
    ok: { status: 201, schema: ref("Token") },
    errors: [400, 401, 409],
  },
  {
    tag: "session",
    method: "get",
    path: "/api/v1/session",
    summary: "Who you are: the status frame",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  {
    tag: "session",
    method: "delete",
    path: "/api/v1/session",
    summary: "Log out: revoke this token",
    auth: true,
    ok: { status: 204, description: "revoked" },
    errors: [401],
  },
  // users
  {
    tag: "users",
    method: "get",
    path: "/api/v1/users",
    summary: "Users with online state (users_list frame)",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  {
    tag: "users",
    method: "get",
    path: "/api/v1/users/{user}",
    summary: "One user's online state",
    auth: true,
    params: [{ name: "user", in: "path", description: "user name" }],
    ok: { status: 200, schema: ref("UserEntry") },
    errors: [401, 404],
  },
  // rooms
  {
    tag: "rooms",
    method: "get",
    path: "/api/v1/rooms",
    summary: "Rooms with member and online counts (rooms_list frame)",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  {
    tag: "rooms",
    method: "post",
    path: "/api/v1/rooms",
    summary: "Create a room and join it (201), or join an existing one (200)",
    auth: true,
    body: { type: "object", required: ["name"], properties: { name: str } },
    ok: { status: 201, schema: ref("Frame") },
    errors: [400, 401],
  },
  ...(["join", "leave"] as const).map((what): Op => ({
    tag: "rooms",
    method: "post",
    path: `/api/v1/rooms/{room}/${what}`,
    summary: what === "join"
      ? "Join a room (joined frame)"
      : "Leave a room (left frame); general cannot be left",
    auth: true,
    params: [{ name: "room", in: "path", description: "room name" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: what === "join" ? [400, 401] : [401, 403, 404],
  })),
  {
    tag: "rooms",
    method: "get",
    path: "/api/v1/rooms/{room}/members",
    summary: "Members of a room with online state",
    auth: true,
    params: [{ name: "room", in: "path", description: "room name" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: [401, 404],
  },
  // messages
  {
    tag: "messages",
    method: "get",
    path: "/api/v1/rooms/{room}/messages",
    summary: "Messages of a room, oldest first, paged by seq (history frame)",
    auth: true,
    params: [{ name: "room", in: "path", description: "room name" }, ...paging],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 403, 404],
  },
  {
    tag: "messages",
    method: "post",
    path: "/api/v1/rooms/{room}/messages",
    summary: "Send a message to a room you are in",
    auth: true,
    params: [{ name: "room", in: "path", description: "room name" }],
    body: messageBody,
    ok: { status: 201, schema: ref("Ack") },
    errors: [400, 401, 403, 404, 413, 429],
  },
  {
    tag: "messages",
    method: "get",
    path: "/api/v1/private/{user}/messages",
    summary: "Your private chat with a user, oldest first, paged by seq (history frame)",
    auth: true,
    params: [{ name: "user", in: "path", description: "the other user" }, ...paging],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 404],
  },
  {
    tag: "messages",
    method: "post",
    path: "/api/v1/private/{user}/messages",
    summary: "Send a private message (kept for the user if offline)",
    auth: true,
    params: [{ name: "user", in: "path", description: "the other user" }],
    body: messageBody,
    ok: { status: 201, schema: ref("Ack") },
    errors: [400, 401, 404, 413, 429],
  },
  {
    tag: "messages",
    method: "get",
    path: "/api/v1/unread",
    summary: "Unread counts per chat (unread_counts frame)",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  {
    tag: "messages",
    method: "post",
    path: "/api/v1/chats/{chat}/read",
    summary: "Unread messages of a chat (room or @user), advancing the read cursor (history frame)",
    auth: true,
    params: [{ name: "chat", in: "path", description: "room name or `@user`" }, paging[0]!],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 403, 404],
  },
  // sessions
  {
    tag: "sessions",
    method: "post",
    path: "/api/v1/sessions",
    summary: "Ask a user for a private session (needs a live WebSocket or SSE connection of yours)",
    auth: true,
    body: { type: "object", required: ["username"], properties: { username: str } },
    ok: { status: 202, description: "request sent" },
    errors: [400, 401, 403, 404, 409],
  },
  ...(["accept", "reject"] as const).map((what): Op => ({
    tag: "sessions",
    method: "post",
    path: `/api/v1/sessions/{user}/${what}`,
    summary: `${what === "accept" ? "Accept" : "Reject"} a session request from a user`,
    auth: true,
    params: [{ name: "user", in: "path", description: "who asked" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: [401, 403, 404, 409],
  })),
  {
    tag: "sessions",
    method: "delete",
    path: "/api/v1/sessions",
    summary: "End your private session",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401, 404],
  },
  // files
  {
    tag: "files",
    method: "post",
    path: "/api/v1/files",
    summary:
      "Upload a file (raw body, Content-Type = its type) to a room (?room=) or a user (?to=); announced as a message",
    auth: true,
    params: [
      { name: "name", in: "query", description: "the file name (or an X-Filename header)" },
      { name: "room", in: "query", description: "the room to send it to (default general)" },
      { name: "to", in: "query", description: "the user to send it to, privately" },
    ],
    ok: { status: 201, schema: ref("Ack") },
    errors: [400, 401, 403, 404, 413],
  },
  {
    tag: "files",
    method: "get",
    path: "/api/v1/files/{id}",
    summary: "Download a file: its bytes with its type and name; members of its chat only",
    auth: true,
    params: [{ name: "id", in: "path", description: "file id (from the message's file.id)" }],
    ok: { status: 200, description: "the file's bytes" },
    errors: [401, 403, 404],
  },
  // replies and scheduled
  {
    tag: "messages",
    method: "get",
    path: "/api/v1/messages/{id}/replies",
    summary: "The replies to a message (replies frame)",
    auth: true,
    params: [{ name: "id", in: "path", description: "message id" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 404],
  },
  {
    tag: "scheduled",
    method: "post",
    path: "/api/v1/scheduled",
    summary: "Schedule a message for later (to `room`, or privately to `username`)",
    auth: true,
    body: {
      type: "object",
      required: ["message", "at"],
      properties: {
        message: str,
        at: { type: "string", format: "date-time" },
        room: str,
        username: str,
      },
    },
    ok: { status: 201, schema: ref("Scheduled") },
    errors: [400, 401, 403, 404],
  },
  {
    tag: "scheduled",
    method: "get",
    path: "/api/v1/scheduled",
    summary: "Your pending scheduled messages",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  {
    tag: "scheduled",
    method: "delete",
    path: "/api/v1/scheduled/{id}",
    summary: "Cancel a scheduled message before it goes",
    auth: true,
    params: [{ name: "id", in: "path", description: "scheduled message id" }],
    ok: { status: 204, description: "cancelled" },
    errors: [400, 401, 404],
  },
  // groups
  {
    tag: "groups",
    method: "post",
    path: "/api/v1/groups",
    summary: "Create a private group chat (you own it)",
    auth: true,
    body: { type: "object", required: ["name"], properties: { name: str } },
    ok: { status: 201, schema: ref("Frame") },
    errors: [400, 401, 409],
  },
  {
    tag: "groups",
    method: "post",
    path: "/api/v1/groups/{room}/invites",
    summary: "Invite a user to your group (they accept or decline)",
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }],
    body: { type: "object", required: ["username"], properties: { username: str } },
    ok: { status: 201, schema: ref("System") },
    errors: [400, 401, 403, 404],
  },
  ...(["accept", "decline"] as const).map((what): Op => ({
    tag: "groups",
    method: "post",
    path: `/api/v1/invites/{room}/${what}`,
    summary: what === "accept" ? "Accept an invite (joined frame)" : "Decline an invite",
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }],
    ok: { status: 200, schema: ref(what === "accept" ? "Frame" : "System") },
    errors: [401, 404],
  })),
  {
    tag: "groups",
    method: "post",
    path: "/api/v1/groups/{room}/links",
    summary: "Make an invite link (a token); whoever uses it asks you to let them in",
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }],
    ok: { status: 201, schema: ref("Frame") },
    errors: [401, 403, 404],
  },
  {
    tag: "groups",
    method: "delete",
    path: "/api/v1/groups/{room}/links/{token}",
    summary: "Revoke an invite link",
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }, {
      name: "token",
      in: "path",
      description: "link token",
    }],
    ok: { status: 200, schema: ref("System") },
    errors: [400, 401, 403, 404],
  },
  {
    tag: "groups",
    method: "post",
    path: "/api/v1/links/{token}/join",
    summary:
      "Ask to join a group with an invite link (202: waiting for the owner; 200: already a member)",
    auth: true,
    params: [{ name: "token", in: "path", description: "link token" }],
    ok: { status: 202, schema: ref("System") },
    errors: [400, 401, 404],
  },
  ...(["approve", "refuse"] as const).map((what): Op => ({
    tag: "groups",
    method: "post",
    path: `/api/v1/groups/{room}/requests/{user}/${what}`,
    summary: `${what === "approve" ? "Let in" : "Refuse"} someone who asked to join with a link`,
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }, {
      name: "user",
      in: "path",
      description: "who asked",
    }],
    ok: { status: 200, schema: ref("System") },
    errors: [401, 403, 404],
  })),
  {
    tag: "groups",
    method: "delete",
    path: "/api/v1/groups/{room}/members/{user}",
    summary: "Remove a member from your group",
    auth: true,
    params: [{ name: "room", in: "path", description: "group name" }, {
      name: "user",
      in: "path",
      description: "the member",
    }],
    ok: { status: 200, schema: ref("System") },
    errors: [400, 401, 403, 404],
  },
  // contacts
  {
    tag: "contacts",
    method: "get",
    path: "/api/v1/contacts",
    summary: "Your contacts with online state",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401],
  },
  ...(["put", "delete"] as const).map((method): Op => ({
    tag: "contacts",
    method,
    path: "/api/v1/contacts/{user}",
    summary: method === "put" ? "Add a contact" : "Remove a contact",
    auth: true,
    params: [{ name: "user", in: "path", description: "the user" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 404],
  })),
  // moderation
  {
    tag: "moderation",
    method: "post",
    path: "/api/v1/users/{user}/report",
    summary:
      "Report a user; reports from --reports-to-mute distinct users mute them for --mute-for",
    auth: true,
    params: [{ name: "user", in: "path", description: "who to report" }],
    body: { type: "object", properties: { reason: str } },
    ok: { status: 200, schema: ref("System") },
    errors: [400, 401, 404],
  },
  {
    tag: "moderation",
    method: "delete",
    path: "/api/v1/messages/{id}",
    summary: "Delete a message (its author or an admin); everyone who can see it is told",
    auth: true,
    params: [{ name: "id", in: "path", description: "message id (ULID)" }],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 403, 404],
  },
  {
    tag: "admin",
    method: "post",
    path: "/api/v1/admin/users",
    summary: "Create an account (admins; works with --registration closed)",
    auth: true,
    body: {
      type: "object",
      required: ["username", "password"],
      properties: { username: str, password: str, admin: { type: "boolean" } },
    },
    ok: { status: 201, schema: ref("System") },
    errors: [400, 401, 403, 409],
  },
  ...(["kick", "mute", "ban"] as const).map((what): Op => ({
    tag: "admin",
    method: "post",
    path: `/api/v1/admin/users/{user}/${what}`,
    summary: {
      kick: "Close every connection of a user",
      mute: "Mute a user (can read, cannot send) for `minutes` (default --mute-for)",
      ban: "Ban a user (cannot log in; tokens revoked) for `minutes`, or for good",
    }[what],
    auth: true,
    params: [{ name: "user", in: "path", description: "the user" }],
    body: {
      type: "object",
      properties: { reason: str, ...(what === "kick" ? {} : { minutes: int }) },
    },
    ok: { status: 200, schema: ref("System") },
    errors: [400, 401, 403, 404],
  })),
  ...(["mute", "ban"] as const).map((what): Op => ({
    tag: "admin",
    method: "delete",
    path: `/api/v1/admin/users/{user}/${what}`,
    summary: what === "mute" ? "Unmute a user" : "Unban a user",
    auth: true,
    params: [{ name: "user", in: "path", description: "the user" }],
    ok: { status: 200, schema: ref("System") },
    errors: [401, 403, 404],
  })),
  {
    tag: "admin",
    method: "get",
    path: "/api/v1/admin/connections",
    summary: "Every connection: user, transport, IP, connected since, last seen",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401, 403],
  },
  {
    tag: "admin",
    method: "get",
    path: "/api/v1/admin/reports",
    summary: "Open reports and muted users",
    auth: true,
    ok: { status: 200, schema: ref("Frame") },
    errors: [401, 403],
  },
  {
    tag: "admin",
    method: "get",
    path: "/api/v1/admin/audit",
    summary: "Audit trail, newest first: reports, mutes, bans, kicks, deletions, accounts",
    auth: true,
    params: [
      { name: "limit", in: "query", description: "1 to 200 entries (default 50)", schema: int },
      { name: "before", in: "query", description: "entries older than this entry id" },
    ],
    ok: { status: 200, schema: ref("Frame") },
    errors: [400, 401, 403],
  },
  // live
  {
    tag: "live",
    method: "get",
    path: "/api/v1/events",
    summary:
      "Server-Sent Events: every frame as one event; stored messages carry their id, so Last-Event-ID resumes",
    auth: true,
    params: [
      {
        name: "token",
        in: "query",
        description: "the token, for EventSource clients that cannot set headers",
      },
      { name: "Last-Event-ID", in: "header", description: "resume after this message id" },
      { name: "since", in: "query", description: "same as Last-Event-ID" },
    ],
    ok: { status: 200, description: "text/event-stream" },
    errors: [400, 401],
  },
  {
    tag: "live",
    method: "get",
    path: "/ws",
    summary:
      "WebSocket carrying the TCP JSON frames (several per message, newline-separated); log in with ?token= or a hello/auth frame",
    params: [
      { name: "token", in: "query", description: "log in at once with a token" },
      { name: "since", in: "query", description: "resume after this message id" },
    ],
    ok: { status: 101, description: "switching protocols" },
    errors: [400, 401],
  },
];

const ERROR_TEXT: Record<number, string> = {
  400: "bad input",
  401: "missing, unknown or expired token; wrong password",
  403: "not allowed (not a member, muted, banned, ...)",
  404: "no such user, room or request",
  409: "conflict (name taken, session conflict)",
  408: "the request body stopped arriving (--header-timeout); the connection is closed",
  413: "body or message too long",
  429: "rate limited",
};

/** Method, path (Hono style, `:param`) and whether a token is needed, of every documented route. */
export function documentedRoutes(): Array<{ method: string; path: string; auth: boolean }> {
  return OPS.map((op) => ({
    method: op.method.toUpperCase(),
    path: op.path.replace(/\{(\w+)\}/g, ":$1"),
    auth: op.auth === true,
  }));
}

/** Returns the OpenAPI document. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPS) {
    const responses: Record<string, unknown> = {
      [op.ok.status]: {
        description: op.ok.description ?? "ok",
        ...(op.ok.schema ? { content: { "application/json": { schema: op.ok.schema } } } : {}),
      },
    };
    // Any request with a body can stall (http_server.ts's body deadline).
    const errors = op.method === "post" || op.method === "put"
      ? [...new Set([...op.errors, 408])].sort()
      : op.errors;
    for (const e of errors) {
      responses[e] = {
        description: ERROR_TEXT[e],
        content: { "application/json": { schema: ref("Error") } },
      };
    }
    (paths[op.path] ??= {})[op.method] = {
      tags: [op.tag],
      summary: op.summary,
      ...(op.auth ? { security: [{ bearer: [] }, { s3: [] }] } : {}),
      ...(op.params
        ? {
          parameters: op.params.map((p) => ({
            name: p.name,
            in: p.in,
            required: p.in === "path",
            description: p.description,
            schema: p.schema ?? str,
          })),
        }
        : {}),
      ...(op.body
        ? { requestBody: { required: true, content: { "application/json": { schema: op.body } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "chat",
      version: "1",
      description:
        "REST, WebSocket and SSE access to the chat. Frames are described in docs/protocol.md.",
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer TOKEN" },
        s3: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "Authorization: TOKEN (s3 style)",
        },
      },
      schemas: {
        Error: {
          type: "object",
          required: ["error"],
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: str, message: str },
            },
          },
        },
        Token: {
          type: "object",
          properties: {
            token: str,
            username: str,
            expires_at: { type: "string", format: "date-time" },
          },
        },
        S3Token: {
          type: "object",
          properties: {
            token: str,
            login: str,
            expires_at: { type: "string", format: "date-time" },
          },
        },
        Ack: {
          type: "object",
          properties: {
            id: str,
            seq: int,
            chat: str,
            timestamp: { type: "string", format: "date-time" },
          },
        },
        UserEntry: {
          type: "object",
          properties: {
            username: str,
            online: { type: "boolean" },
            registered: { type: "boolean" },
            connections: int,
          },
        },
        Frame: {
          type: "object",
          required: ["type"],
          properties: { type: str },
          description: "A server frame; see docs/protocol.md",
        },
        System: { type: "object", properties: { message: str, timestamp: str, online_users: int } },
        Scheduled: {
          type: "object",
          properties: {
            id: str,
            chat: str,
            message: str,
            at: { type: "string", format: "date-time" },
          },
        },
        Health: {
          type: "object",
          properties: { status: str, uptime_s: int, connections: int, online_users: int },
        },
        S3Status: {
          type: "object",
          properties: {
            user: { type: "object", properties: { login: str, registered: { type: "boolean" } } },
            chats: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  name: str,
                  members: { type: "array", items: str },
                  member_count: int,
                  unread: int,
                },
              },
            },
            online: { type: "array", items: str },
            online_count: int,
          },
        },
        S3Messages: {
          type: "object",
          properties: {
            chat: str,
            messages: { type: "array", items: ref("Frame") },
            unread_left: int,
          },
        },
      },
    },
  };
}
