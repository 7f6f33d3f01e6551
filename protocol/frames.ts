/**
 * The wire vocabulary: every frame a client may send and every frame the server sends, and the
 * rules of names and text; protocol/decode.ts is the validating decoder. TCP JSON lines,
 * WebSocket and the REST bodies all speak these frames.
 * @module
 */

import { MAX_MESSAGE_CHARS, MAX_NAME_CHARS } from "./limits.ts";

/** Stable error codes carried by `error` frames and REST error bodies. */
export type ErrorCode =
  | "bad_json"
  | "bad_frame"
  | "unknown_type"
  | "missing_field"
  | "bad_field"
  | "too_long"
  | "not_logged_in"
  | "already_logged_in"
  | "password_required"
  | "bad_password"
  | "bad_name"
  | "name_taken"
  | "no_such_user"
  | "no_such_room"
  | "not_member"
  | "no_such_message"
  | "session_conflict"
  | "no_session_request"
  | "forbidden"
  | "muted"
  | "banned"
  | "rate_limited"
  | "too_slow"
  | "not_stored"
  | "internal";

/** Bad input from a peer: carries a stable code and a sentence a person can act on. */
export class ProtocolError extends Error {
  /** The stable code sent to the peer. */
  readonly code: ErrorCode;
  /** Creates a protocol error with its code. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** Where a user's plain messages go: a room, or the partner of a private session. */
export type Mode = { kind: "room"; room: string } | { kind: "session"; with: string };

/** Optional correlation id a client may put on any frame; replies to that frame carry it back. */
interface Ref {
  ref?: string;
}

/** Frames a client sends. */
export type ClientFrame =
  & Ref
  & (
    | {
      type: "hello";
      username: string;
      password?: string;
      proof?: string;
      since?: string;
      unique?: boolean;
    }
    | { type: "challenge"; username: string }
    | { type: "auth"; token: string; since?: string }
    | { type: "register"; password: string }
    | { type: "message"; message: string; room?: string; reply_to?: string; notice?: boolean }
    | {
      type: "private";
      target_username: string;
      message: string;
      reply_to?: string;
      notice?: boolean;
    }
    | { type: "session_request"; target_username: string }
    | { type: "session_response"; target_username: string; accepted: boolean }
    | { type: "session_end" }
    | { type: "users"; username?: string; usernames?: string[]; after?: string; limit?: number }
    | { type: "away"; message?: string }
    | { type: "quit"; reason?: string }
    | { type: "rooms"; after?: string; limit?: number }
    | { type: "join"; room: string }
    | { type: "leave"; room?: string; reason?: string }
    | {
      type: "history";
      chat?: string;
      /** A message's seq, or its id: the page ends before it, starts after it, or centres on it. */
      before?: number | string;
      after?: number | string;
      around?: number | string;
      limit?: number;
    }
    | { type: "unread"; chat: string; limit?: number }
    | { type: "unread_counts" }
    | { type: "members"; room: string }
    | { type: "status" }
    | { type: "ping" }
    | { type: "pong" }
    | { type: "report"; username: string; reason?: string }
    | { type: "delete_message"; id: string }
    | { type: "replies"; id: string }
    | { type: "schedule"; message: string; at: string; room?: string; target_username?: string }
    | { type: "scheduled" }
    | { type: "cancel_scheduled"; id: string }
    | { type: "create_group"; room: string }
    | { type: "invite"; room: string; username: string }
    | { type: "invite_response"; room: string; accepted: boolean }
    | { type: "create_link"; room: string }
    | { type: "revoke_link"; room: string; token: string }
    | { type: "join_link"; token: string }
    | { type: "join_decision"; room: string; username: string; approved: boolean }
    | { type: "remove_member"; room: string; username: string }
    | { type: "contacts" }
    | { type: "add_contact"; username: string }
    | { type: "remove_contact"; username: string }
    | { type: "token" }
    | AdminFrame
  );

/** Frames only admins may send. */
export type AdminFrame =
  | { type: "kick"; username: string; reason?: string }
  | { type: "mute"; username: string; minutes?: number; reason?: string }
  | { type: "unmute"; username: string; reason?: string }
  | { type: "ban"; username: string; minutes?: number; reason?: string }
  | { type: "unban"; username: string; reason?: string }
  | { type: "connections" }
  | { type: "clients"; limit?: number }
  | { type: "audit"; limit?: number; before?: string }
  | { type: "reports" }
  | { type: "create_user"; username: string; password: string; admin?: boolean }
  | { type: "stats" }
  | { type: "log_subscribe" }
  | { type: "log_search"; query?: string; before?: string; limit?: number };

/** The `type` values of admin frames. */
export const ADMIN_TYPES: ReadonlySet<string> = new Set([
  "kick",
  "mute",
  "unmute",
  "ban",
  "unban",
  "connections",
  "clients",
  "audit",
  "reports",
  "create_user",
  "stats",
  "log_subscribe",
  "log_search",
]);

/** The `type` values of client frames. */
export type ClientFrameType = ClientFrame["type"];

/** What a client needs to derive the login key from its password (challenge logins: JIM). */
export interface KdfParams {
  kdf: "scrypt";
  N: number;
  r: number;
  p: number;
  /** Base64. */
  salt: string;
  key_bytes: number;
}

/** A room message as it travels on the wire (live, in history and in unread replay). */
export interface RoomMessageFrame {
  type: "message";
  id: string;
  seq: number;
  room: string;
  from_username: string;
  message: string;
  timestamp: string;
  reply_to?: ReplyRef;
  file?: FileRef;
  /** A notice (IRC's NOTICE): automatic clients (bots) never answer one. */
  notice?: true;
}

/** The message a reply answers: its id, author and the start of its text. */
export interface ReplyRef {
  id: string;
  from_username: string;
  message: string;
}

/** A file announced in a message; download it from `GET /api/v1/files/{id}`. */
export interface FileRef {
  id: string;
  name: string;
  size: number;
  mime: string;
}

/** A message waiting to be sent at `at`. */
export interface ScheduledEntry {
  id: string;
  chat: string;
  message: string;
  at: string;
}

/** A private message as it travels on the wire. */
export interface PrivateMessageFrame {
  type: "private";
  id: string;
  seq: number;
  from_username: string;
  to_username: string;
  message: string;
  timestamp: string;
  reply_to?: ReplyRef;
  file?: FileRef;
  /** A notice (IRC's NOTICE): automatic clients (bots) never answer one. */
  notice?: true;
}

/** Either kind of stored chat message. */
export type MessageFrame = RoomMessageFrame | PrivateMessageFrame;

/** One user in a `users_list`. */
export interface UserEntry {
  username: string;
  online: boolean;
  registered: boolean;
  connections: number;
  /** What the user said when they went away, while they are. */
  away?: string;
}

/** A chat the user is in, for `status`: its members (at most 200 names) and unread count. */
export interface ChatSummary {
  chat: string;
  kind: "room" | "private";
  members: string[];
  member_count: number;
  unread: number;
}

/** One open connection, for admins. */
/** An account in the admin's clients table: who it is, when and from where it was last here. */
export interface ClientEntry {
  username: string;
  registered: boolean;
  admin: boolean;
  online: boolean;
  connections: number;
  last_seen: string | null;
  last_ip: string | null;
  muted_until: string | null;
  banned_until: string | null;
}

/** A connection in the admin's connections table. */
export interface ConnectionEntry {
  id: number;
  username: string | null;
  transport: string;
  ip: string;
  connected_at: string;
  last_seen: string;
  /** The cluster node that holds it (cluster mode only); ids are per node. */
  node?: string;
}

/** One audit record: who did what to whom, when and why. */
export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: "report" | "mute" | "unmute" | "ban" | "unban" | "kick" | "delete" | "create_user";
  target: string;
  reason: string;
  detail?: string;
}

/** One line of the live service log admins can watch. */
export interface LogEntry {
  /** The entry's id (a ULID), to page back from; absent on entries made before it was kept. */
  id?: string;
  at: string;
  kind: "connect" | "login" | "disconnect" | "message" | "moderation" | "error" | "account";
  text: string;
}

/** The public-room quota as `status` shows it. */
export interface QuotaState {
  limit: number;
  window_s: number;
  remaining: number;
  /** When the next slot frees up (ISO), if none is free now. */
  next_at: string | null;
}

/** One room in a `rooms_list`. */
export interface RoomEntry {
  name: string;
  members: number;
  online: number;
  joined: boolean;
  /** A private group chat (listed only to its members). */
  private: boolean;
  owner: string | null;
}

/** How a private session request ended up: `from_username` asked `to_username`. */
export interface SessionOutcome<
  T extends "session_accepted" | "session_rejected" | "session_ended",
> {
  type: T;
  from_username: string;
  to_username: string;
  message: string;
  mode: Mode;
  timestamp: string;
}

/** Frames the server sends. */
export type ServerFrame =
  & Ref
  & (
    | {
      type: "welcome";
      username: string;
      registered: boolean;
      admin: boolean;
      mode: Mode;
      rooms: string[];
      online_users: number;
      timestamp: string;
    }
    | {
      type: "system";
      message: string;
      timestamp: string;
      online_users: number;
      event?: "online" | "offline" | "joined" | "left" | "away" | "info";
      username?: string;
      room?: string;
      /** For "left" and "offline": what the user said as they left, if anything. */
      reason?: string;
      /** For "away": what the user said as they went away; absent when they are back. */
      away?: string;
    }
    | MessageFrame
    | {
      type: "ack";
      id: string;
      seq: number;
      chat: string;
      timestamp: string;
      /** A private message to someone offline: stored, delivered when they connect. */
      offline?: boolean;
      /** A private message to someone away: what they said when they went. */
      away?: string;
    }
    | { type: "error"; code: ErrorCode; message: string }
    | {
      type: "users_list";
      users: string[];
      all: UserEntry[];
      online_users: number;
      timestamp: string;
      /** With `after`/`limit`: the name to ask `after` for the next page, or null at the end. */
      next?: string | null;
    }
    | { type: "rooms_list"; rooms: RoomEntry[]; timestamp: string; next?: string | null }
    | { type: "joined"; room: string; created: boolean; mode: Mode; timestamp: string }
    | { type: "left"; room: string; mode: Mode; timestamp: string }
    | { type: "mode"; mode: Mode; timestamp: string }
    | {
      type: "history";
      chat: string;
      reason: "join" | "unread" | "request" | "resume";
      messages: MessageFrame[];
      has_more: boolean;
      unread?: number;
    }
    | { type: "session_request"; from_username: string; message: string; timestamp: string }
    | SessionOutcome<"session_accepted">
    | SessionOutcome<"session_rejected">
    | SessionOutcome<"session_ended">
    | {
      type: "status";
      username: string;
      registered: boolean;
      mode: Mode;
      rooms: string[];
      session: string | null;
      admin: boolean;
      muted_until: string | null;
      quota: QuotaState | null;
      chats: ChatSummary[];
      connections: number;
      online_users: number;
      timestamp: string;
    }
    | { type: "unread_counts"; chats: Array<{ chat: string; unread: number }>; timestamp: string }
    | { type: "members"; room: string; members: UserEntry[]; timestamp: string }
    | {
      type: "message_deleted";
      id: string;
      chat: string;
      seq: number;
      by: string;
      timestamp: string;
    }
    | { type: "connections_list"; connections: ConnectionEntry[]; timestamp: string }
    | { type: "clients_list"; clients: ClientEntry[]; timestamp: string }
    | { type: "audit_log"; entries: AuditEntry[]; has_more: boolean }
    | {
      type: "reports_list";
      reports: Array<{ username: string; reporters: string[]; muted_until: string | null }>;
      timestamp: string;
    }
    | { type: "replies"; id: string; messages: MessageFrame[] }
    | { type: "scheduled"; entry: ScheduledEntry }
    | { type: "scheduled_list"; entries: ScheduledEntry[] }
    | { type: "scheduled_cancelled"; id: string }
    | { type: "invite"; room: string; from_username: string; timestamp: string }
    | { type: "link"; room: string; token: string; timestamp: string }
    | { type: "join_request"; room: string; username: string; timestamp: string }
    | {
      type: "contacts_list";
      contacts: Array<{ username: string; online: boolean }>;
      timestamp: string;
    }
    | { type: "token"; token: string; expires_at: string; http_port: number | null }
    | {
      type: "stats";
      online_users: number;
      connections: number;
      by_transport: Record<string, number>;
      messages_total: number;
      messages_last_minute: number;
      uptime_s: number;
      timestamp: string;
    }
    | { type: "log"; entries: LogEntry[] }
    | { type: "log_page"; entries: LogEntry[]; has_more: boolean }
    | { type: "pong"; timestamp: string }
    | ({ type: "challenge"; username: string; nonce: string } & KdfParams)
    | { type: "ping"; timestamp: string }
    | { type: "bye"; reason: string; code?: ErrorCode }
  );

const USERNAME_RE = /^[\p{L}\p{N}_.-]+$/u;
const ROOM_RE = /^[\p{L}\p{N}_-]+$/u;
/** C0 controls except tab and newline, DEL and the C1 block: terminal escapes and NUL stay out. */
export const CONTROL_RE = /[^\P{Cc}\t\n]/u;

/**
 * Characters as people (and JSON Schema's maxLength) count them: code points, so an emoji is
 * one character, not two UTF-16 units.
 */
export function charCount(text: string): number {
  // What `[...text].length` gives (a lone surrogate is one character), without an iterator: every
  // message is counted, and the iterator was 1% of the server's time at ingest.
  let n = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) (n--, i++);
    }
  }
  return n;
}

/** The UTF-8 size of a string, without encoding it. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) (n += 4, i++);
    else n += 3;
  }
  return n;
}

/** Checks a user name and returns it, or throws `ProtocolError("bad_name")` saying what is allowed. */
export function validateUsername(name: string): string {
  if (name.length === 0 || charCount(name) > MAX_NAME_CHARS || !USERNAME_RE.test(name)) {
    throw new ProtocolError(
      "bad_name",
      `"${
        printable(name)
      }" is not a valid name: use 1 to ${MAX_NAME_CHARS} letters, digits, "_", "." or "-"`,
    );
  }
  return name;
}

/** Checks a room name and returns it in lower case, or throws `ProtocolError("bad_name")`. */
export function validateRoomName(name: string): string {
  const room = name.startsWith("#") ? name.slice(1) : name;
  if (room.length === 0 || charCount(room) > MAX_NAME_CHARS || !ROOM_RE.test(room)) {
    throw new ProtocolError(
      "bad_name",
      `"${
        printable(name)
      }" is not a valid room name: use 1 to ${MAX_NAME_CHARS} letters, digits, "_" or "-"`,
    );
  }
  return room.toLowerCase();
}

/**
 * What a user says as they leave (an IRC QUIT, a typed "/quit see you"): trimmed and at most
 * 200 characters; nothing if it is blank or has control characters (the connection is closing,
 * so there is no one to tell what was wrong).
 */
export function farewell(text: string | undefined): string | undefined {
  const t = text?.trim();
  if (!t || CONTROL_RE.test(t)) return undefined;
  return [...t].slice(0, 200).join("");
}

/** Checks message text: not blank, not too long, no control characters. */
export function validateMessageText(text: string): string {
  if (text.trim().length === 0) {
    throw new ProtocolError("bad_field", "The message is empty: type some text to send");
  }
  const chars = charCount(text);
  if (chars > MAX_MESSAGE_CHARS) {
    throw new ProtocolError(
      "too_long",
      `The message has ${chars} characters; the limit is ${MAX_MESSAGE_CHARS}: split it up`,
    );
  }
  if (CONTROL_RE.test(text)) {
    throw new ProtocolError(
      "bad_field",
      "The message contains control characters: send plain text (tabs and newlines are fine)",
    );
  }
  return text;
}

/** Shortens and escapes untrusted text for use inside an error sentence. */
export function printable(text: string): string {
  const cut = text.length > 40 ? text.slice(0, 40) + "…" : text;
  return cut.replace(/\p{Cc}/gu, "?");
}

/** Encodes a server frame as one JSON line without the newline. */
export function encodeFrame(frame: ServerFrame | ClientFrame): string {
  return JSON.stringify(frame);
}
