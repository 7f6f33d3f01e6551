/**
 * The zod schemas of the HTTP API: names, ids, bodies and answers. They mirror the frame
 * rules in protocol/frames.ts (which still validates every frame the routes build), so a
 * request the document calls valid is one the core accepts.
 * @module
 */

import { ULID_RE } from "../../../protocol/fields.ts";
import { z } from "zod";
import { charCount } from "../../../protocol/frames.ts";
import {
  MAX_MESSAGE_CHARS,
  MAX_NAME_CHARS,
  MAX_PAGE,
  MAX_PASSWORD_CHARS,
} from "../../../protocol/limits.ts";

/** The pattern of user names (letters, digits, `_`, `.`, `-`), as protocol/frames.ts checks it. */
const USERNAME_PATTERN = `^[\\p{L}\\p{N}_.-]{1,${MAX_NAME_CHARS}}$`;
/** The pattern of room names; a leading `#` is allowed and dropped. */
const ROOM_PATTERN = `^#?[\\p{L}\\p{N}_-]{1,${MAX_NAME_CHARS}}$`;

/** A user name. */
export const Username = z.string().regex(new RegExp(USERNAME_PATTERN, "u"), {
  error: `use 1 to ${MAX_NAME_CHARS} letters, digits, "_", "." or "-"`,
}).meta({ description: "a user name (any case matches)", example: "alice" });

/** A room name. */
export const RoomName = z.string().regex(new RegExp(ROOM_PATTERN, "u"), {
  error: `use 1 to ${MAX_NAME_CHARS} letters, digits, "_" or "-"`,
}).meta({ description: "a room name, optionally with a leading #", example: "general" });

/**
 * A chat address: a room, or `@user` for the private chat with a user. A bare name that is no
 * room is a user's (`bob`, `j.doe`): the core looks for the room first.
 */
export const ChatAddress = z.string().regex(
  new RegExp(
    `^(#?[\\p{L}\\p{N}_-]{1,${MAX_NAME_CHARS}}|@?[\\p{L}\\p{N}_.-]{1,${MAX_NAME_CHARS}})$`,
    "u",
  ),
  { error: "a room name, or @name for a private chat" },
).meta({
  description: "a room, or @user (or a bare name that is no room) for your private chat with them",
  example: "general",
});

/** A message or entry id. */
export const Ulid = z.string().regex(ULID_RE, {
  error: "an id is 26 characters (a ULID), as in a message's id",
}).meta({ description: "a ULID", example: "01JDZ3K6Q9V7C8W2X4Y5Z6A7B8" });

/** An invite link token. */
export const LinkToken = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, {
  error: 'an invite link token: 8 to 64 letters, digits, "_" and "-"',
});

const CONTROL = /[^\P{Cc}\t\n]/u;

/** Message text: not blank, at most MAX_MESSAGE_CHARS characters, no control characters. */
export const MessageText = z.string().superRefine((s, ctx) => {
  if (s.trim().length === 0) {
    ctx.addIssue({ code: "custom", message: "is empty: type some text to send" });
  } else if (charCount(s) > MAX_MESSAGE_CHARS) {
    ctx.addIssue({
      code: "custom",
      message: `is longer than ${MAX_MESSAGE_CHARS} characters: split it up`,
      params: { code: "too_long" },
    });
  } else if (CONTROL.test(s)) {
    ctx.addIssue({
      code: "custom",
      message: "contains control characters: send plain text (tabs and newlines are fine)",
    });
  }
}).meta({
  description:
    `1 to ${MAX_MESSAGE_CHARS} characters, not blank, no control characters but tab and newline`,
  minLength: 1,
  maxLength: MAX_MESSAGE_CHARS,
  pattern:
    "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*\\S[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$",
  example: "hello",
});

/**
 * A string of `min` to `max` characters, counted as JSON Schema counts them (code points, as
 * protocol/frames.ts does), not in UTF-16 units as zod's `.max()` would.
 */
export function chars(
  min: number,
  max: number,
  meta: { description?: string; example?: string; pattern?: RegExp; rule?: string } = {},
) {
  const { pattern, rule, ...doc } = meta;
  return z.string().superRefine((s, ctx) => {
    const n = charCount(s);
    if (n < min) ctx.addIssue({ code: "custom", message: "must not be empty" });
    else if (n > max) {
      ctx.addIssue({
        code: "custom",
        message: `is longer than ${max} characters`,
        params: { code: "too_long" },
      });
    } else if (pattern && !pattern.test(s)) {
      ctx.addIssue({ code: "custom", message: `is not valid: ${rule ?? "see the document"}` });
    }
  }).meta({
    minLength: min,
    maxLength: max,
    ...(pattern ? { pattern: pattern.source } : {}),
    ...doc,
  });
}

/** A password as sent to log in (rules for new passwords are the core's). */
export const Password = chars(1, MAX_PASSWORD_CHARS, { example: "wonderland" });

/** A moderation reason. */
export const Reason = chars(0, 500, {
  pattern: /^[^\p{Cc}]*$/u,
  rule: "no control characters",
  description: "why, for the audit trail",
});

/** A page size. */
export const Limit = z.coerce.number().int().min(1).max(MAX_PAGE);

/** A sequence number. */
export const Seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Minutes of a mute or ban. */
export const Minutes = z.number().int().min(1).max(366 * 24 * 60);

// ------------------------------------------------------------------ answers

const Timestamp = z.string().meta({ format: "date-time" });

/** A mode: where a connection's plain lines go. */
const Mode = z.union([
  z.object({ kind: z.literal("room"), room: z.string() }),
  z.object({ kind: z.literal("session"), with: z.string() }),
]);

/** A message as the API shows it. */
export const MessageFrame = z.object({
  type: z.enum(["message", "private"]),
  id: z.string(),
  seq: z.number().int(),
  from_username: z.string(),
  room: z.string().optional(),
  to_username: z.string().optional(),
  message: z.string(),
  timestamp: Timestamp,
  reply_to: z.object({ id: z.string(), from_username: z.string(), message: z.string() })
    .optional(),
  file: z.object({ id: z.string(), name: z.string(), size: z.number().int(), mime: z.string() })
    .optional(),
  notice: z.literal(true).optional(),
});

/** The answer to a stored message. */
export const Ack = z.object({
  id: z.string(),
  seq: z.number().int(),
  chat: z.string(),
  timestamp: Timestamp,
  offline: z.boolean().optional().meta({
    description: "a private message to someone offline: stored, delivered when they connect",
  }),
  away: z.string().optional().meta({
    description: "a private message to someone away: what they said when they went",
  }),
});

/** A login token. */
export const Token = z.object({ token: z.string(), username: z.string(), expires_at: Timestamp });

/** A notice: what happened, for people. */
export const System = z.object({
  type: z.literal("system").optional(),
  message: z.string(),
  timestamp: Timestamp,
  online_users: z.number().int(),
});

/** A page of a chat. */
export const History = z.object({
  type: z.literal("history"),
  chat: z.string(),
  reason: z.string(),
  messages: z.array(MessageFrame),
  has_more: z.boolean(),
  unread: z.number().int().optional(),
});

/** A user in lists. */
export const UserEntry = z.object({
  username: z.string(),
  online: z.boolean(),
  registered: z.boolean(),
  connections: z.number().int(),
  away: z.string().optional().meta({ description: "what the user said when they went away" }),
});

/** `joined`: you are in a room. */
export const Joined = z.object({
  type: z.literal("joined"),
  room: z.string(),
  created: z.boolean(),
  mode: Mode,
  timestamp: Timestamp,
});

/** `left`. */
export const Left = z.object({
  type: z.literal("left"),
  room: z.string(),
  mode: Mode,
  timestamp: Timestamp,
});

/** A session outcome. */
export const SessionOutcome = z.object({
  type: z.enum(["session_accepted", "session_rejected", "session_ended"]),
  from_username: z.string(),
  to_username: z.string(),
  message: z.string(),
  mode: Mode,
  timestamp: Timestamp,
});

/** Your status. */
export const Status = z.object({
  type: z.literal("status"),
  username: z.string(),
  registered: z.boolean(),
  mode: Mode,
  rooms: z.array(z.string()),
  session: z.string().nullable(),
  admin: z.boolean(),
  muted_until: Timestamp.nullable(),
  quota: z.object({
    limit: z.number().int(),
    window_s: z.number().int(),
    remaining: z.number().int(),
    next_at: Timestamp.nullable(),
  }).nullable(),
  chats: z.array(z.object({
    chat: z.string(),
    kind: z.enum(["room", "private"]),
    members: z.array(z.string()),
    member_count: z.number().int(),
    unread: z.number().int(),
  })),
  connections: z.number().int(),
  online_users: z.number().int(),
  timestamp: Timestamp,
});

/** The users list. */
export const UsersList = z.object({
  type: z.literal("users_list"),
  users: z.array(z.string()),
  all: z.array(UserEntry),
  online_users: z.number().int(),
  timestamp: Timestamp,
  next: z.string().nullable().optional(),
});

/** The rooms list. */
export const RoomsList = z.object({
  type: z.literal("rooms_list"),
  rooms: z.array(z.object({
    name: z.string(),
    members: z.number().int(),
    online: z.number().int(),
    joined: z.boolean(),
    private: z.boolean(),
    owner: z.string().nullable(),
  })),
  timestamp: Timestamp,
  next: z.string().nullable().optional(),
});

/** A room's members. */
export const Members = z.object({
  type: z.literal("members"),
  room: z.string(),
  members: z.array(UserEntry),
  timestamp: Timestamp,
});

/** Unread counts. */
export const UnreadCounts = z.object({
  type: z.literal("unread_counts"),
  chats: z.array(z.object({ chat: z.string(), unread: z.number().int() })),
  timestamp: Timestamp,
});

/** A scheduled message. */
export const ScheduledEntry = z.object({
  id: z.string(),
  chat: z.string(),
  message: z.string(),
  at: Timestamp,
});

/** Contacts. */
export const ContactsList = z.object({
  type: z.literal("contacts_list"),
  contacts: z.array(z.object({ username: z.string(), online: z.boolean() })),
  timestamp: Timestamp,
});

/** A deleted message. */
export const MessageDeleted = z.object({
  type: z.literal("message_deleted"),
  id: z.string(),
  chat: z.string(),
  seq: z.number().int(),
  by: z.string(),
  timestamp: Timestamp,
});

/** Every connection, for admins. */
export const ConnectionsList = z.object({
  type: z.literal("connections_list"),
  connections: z.array(z.object({
    id: z.number().int(),
    username: z.string().nullable(),
    transport: z.string(),
    ip: z.string(),
    connected_at: Timestamp,
    last_seen: Timestamp,
    node: z.string().optional().describe("the cluster node holding it (cluster mode only)"),
  })),
  timestamp: Timestamp,
});

/** Every account, last visit first. */
export const ClientsList = z.object({
  type: z.literal("clients_list"),
  clients: z.array(z.object({
    username: z.string(),
    registered: z.boolean(),
    admin: z.boolean(),
    online: z.boolean(),
    connections: z.number().int(),
    last_seen: Timestamp.nullable(),
    last_ip: z.string().nullable(),
    muted_until: Timestamp.nullable(),
    banned_until: Timestamp.nullable(),
  })),
  timestamp: Timestamp,
});

/** Open reports and mutes. */
export const ReportsList = z.object({
  type: z.literal("reports_list"),
  reports: z.array(z.object({
    username: z.string(),
    reporters: z.array(z.string()),
    muted_until: Timestamp.nullable(),
  })),
  timestamp: Timestamp,
});

/** A page of the audit trail. */
export const AuditLog = z.object({
  type: z.literal("audit_log"),
  entries: z.array(z.object({
    id: z.string(),
    at: Timestamp,
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    reason: z.string(),
    detail: z.string().optional(),
  })),
  has_more: z.boolean(),
});

/** An invite link. */
export const Link = z.object({ room: z.string(), token: z.string(), timestamp: Timestamp });
