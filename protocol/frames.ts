/**
 * The wire vocabulary: every frame a client may send and every frame the server sends, with the
 * validating decoder. TCP JSON lines, WebSocket and the REST bodies all speak these frames.
 * @module
 */

import {
  MAX_MESSAGE_CHARS,
  MAX_NAME_CHARS,
  MAX_PAGE,
  MAX_PASSWORD_CHARS,
  MAX_REF_CHARS,
} from "./limits.ts";

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
    | { type: "hello"; username: string; password?: string; proof?: string; since?: string }
    | { type: "challenge"; username: string }
    | { type: "auth"; token: string; since?: string }
    | { type: "register"; password: string }
    | { type: "message"; message: string; room?: string; reply_to?: string }
    | { type: "private"; target_username: string; message: string; reply_to?: string }
    | { type: "session_request"; target_username: string }
    | { type: "session_response"; target_username: string; accepted: boolean }
    | { type: "session_end" }
    | { type: "users"; username?: string; after?: string; limit?: number }
    | { type: "rooms"; after?: string; limit?: number }
    | { type: "join"; room: string }
    | { type: "leave"; room?: string }
    | { type: "history"; chat?: string; before?: number; after?: number; limit?: number }
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
}

/** Either kind of stored chat message. */
export type MessageFrame = RoomMessageFrame | PrivateMessageFrame;

/** One user in a `users_list`. */
export interface UserEntry {
  username: string;
  online: boolean;
  registered: boolean;
  connections: number;
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
      event?: "online" | "offline" | "joined" | "left" | "info";
      username?: string;
      room?: string;
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
// C0 controls except tab and newline, DEL and the C1 block: terminal escapes and NUL stay out.
const CONTROL_RE = /[^\P{Cc}\t\n]/u;

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
function printable(text: string): string {
  const cut = text.length > 40 ? text.slice(0, 40) + "…" : text;
  return cut.replace(/\p{Cc}/gu, "?");
}

type Json = Record<string, unknown>;

function field(obj: Json, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

function reqString(obj: Json, name: string, type: string): string {
  const v = field(obj, name);
  if (v === undefined || v === null) {
    throw new ProtocolError("missing_field", `"${type}" needs a "${name}" string field`);
  }
  if (typeof v !== "string") {
    throw new ProtocolError("bad_field", `"${name}" must be a string, got ${typeName(v)}`);
  }
  return v;
}

function optString(obj: Json, name: string, type: string): string | undefined {
  const v = field(obj, name);
  return v === undefined || v === null ? undefined : reqString(obj, name, type);
}

function optInt(obj: Json, name: string, min: number, max: number): number | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ProtocolError("bad_field", `"${name}" must be a whole number from ${min} to ${max}`);
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function password(obj: Json, type: string, required: boolean): string | undefined {
  const p = required ? reqString(obj, "password", type) : optString(obj, "password", type);
  if (p !== undefined && charCount(p) > MAX_PASSWORD_CHARS) {
    throw new ProtocolError(
      "too_long",
      `The password is longer than ${MAX_PASSWORD_CHARS} characters`,
    );
  }
  return p;
}

function text(obj: Json, type: string): string {
  return validateMessageText(reqString(obj, "message", type));
}

/** Decodes one client frame from parsed JSON, validating every field. */
export function decodeClientValue(value: unknown): ClientFrame {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad_frame", `A frame must be a JSON object, got ${typeName(value)}`);
  }
  const obj = value as Json;
  let type = field(obj, "type");
  // The seed protocol's hello is a bare {"username": ...} with no type.
  if (type === undefined && field(obj, "username") !== undefined) type = "hello";
  if (type === undefined) {
    throw new ProtocolError(
      "missing_field",
      'A frame needs a "type" field, e.g. {"type":"message","message":"hi"}',
    );
  }
  if (typeof type !== "string") {
    throw new ProtocolError("bad_field", `"type" must be a string, got ${typeName(type)}`);
  }
  const refValue = optString(obj, "ref", type);
  if (refValue !== undefined && refValue.length > MAX_REF_CHARS) {
    throw new ProtocolError("too_long", `"ref" is longer than ${MAX_REF_CHARS} characters`);
  }
  const ref = refValue === undefined ? {} : { ref: refValue };
  switch (type) {
    case "hello": {
      const username = validateUsername(reqString(obj, "username", type));
      const pw = password(obj, type, false);
      const proof = optString(obj, "proof", type);
      if (proof !== undefined && !/^[A-Za-z0-9+/]{1,200}={0,2}$/.test(proof)) {
        throw new ProtocolError(
          "bad_field",
          '"proof" must be a base64 HMAC (see docs/protocol.md)',
        );
      }
      const since = optSince(obj, type);
      return {
        type,
        username,
        ...(pw === undefined ? {} : { password: pw }),
        ...(proof === undefined ? {} : { proof }),
        ...(since === undefined ? {} : { since }),
        ...ref,
      };
    }
    case "challenge":
      return { type, username: validateUsername(reqString(obj, "username", type)), ...ref };
    case "auth": {
      const token = reqString(obj, "token", type);
      if (token.length > 200) {
        throw new ProtocolError("too_long", '"token" is longer than 200 characters');
      }
      const since = optSince(obj, type);
      return { type, token, ...(since === undefined ? {} : { since }), ...ref };
    }
    case "unread": {
      const chat = validateChatAddress(reqString(obj, "chat", type));
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      return { type, chat, ...(limit === undefined ? {} : { limit }), ...ref };
    }
    case "members":
      return { type, room: validateRoomName(reqString(obj, "room", type)), ...ref };
    case "register":
      return { type, password: password(obj, type, true)!, ...ref };
    case "message": {
      const message = text(obj, type);
      const room = optString(obj, "room", type);
      const reply = optId(obj, "reply_to", type);
      return {
        type,
        message,
        ...(room === undefined ? {} : { room: validateRoomName(room) }),
        ...(reply === undefined ? {} : { reply_to: reply }),
        ...ref,
      };
    }
    case "private": {
      const target = validateUsername(reqString(obj, "target_username", type));
      const reply = optId(obj, "reply_to", type);
      return {
        type,
        target_username: target,
        message: text(obj, type),
        ...(reply === undefined ? {} : { reply_to: reply }),
        ...ref,
      };
    }
    case "replies":
    case "cancel_scheduled":
      return { type, id: optId(obj, "id", type, true)!, ...ref };
    case "schedule": {
      const message = text(obj, type);
      const at = reqString(obj, "at", type);
      if (Number.isNaN(Date.parse(at)) || !/^\d{4}-\d\d-\d\dT/.test(at)) {
        throw new ProtocolError(
          "bad_field",
          '"at" must be an ISO date and time, e.g. 2026-11-22T18:30:00Z',
        );
      }
      const room = optString(obj, "room", type);
      const target = optString(obj, "target_username", type);
      if (room !== undefined && target !== undefined) {
        throw new ProtocolError("bad_field", 'Give "room" or "target_username", not both');
      }
      return {
        type,
        message,
        at,
        ...(room === undefined ? {} : { room: validateRoomName(room) }),
        ...(target === undefined ? {} : { target_username: validateUsername(target) }),
        ...ref,
      };
    }
    case "create_group":
    case "create_link":
      return { type, room: validateRoomName(reqString(obj, "room", type)), ...ref };
    case "invite":
    case "remove_member":
      return {
        type,
        room: validateRoomName(reqString(obj, "room", type)),
        username: validateUsername(reqString(obj, "username", type)),
        ...ref,
      };
    case "invite_response": {
      const accepted = field(obj, "accepted");
      if (typeof accepted !== "boolean") {
        throw new ProtocolError("bad_field", '"accepted" must be true or false');
      }
      return { type, room: validateRoomName(reqString(obj, "room", type)), accepted, ...ref };
    }
    case "join_decision": {
      const approved = field(obj, "approved");
      if (typeof approved !== "boolean") {
        throw new ProtocolError("bad_field", '"approved" must be true or false');
      }
      return {
        type,
        room: validateRoomName(reqString(obj, "room", type)),
        username: validateUsername(reqString(obj, "username", type)),
        approved,
        ...ref,
      };
    }
    case "revoke_link":
      return {
        type,
        room: validateRoomName(reqString(obj, "room", type)),
        token: linkToken(obj, type),
        ...ref,
      };
    case "join_link":
      return { type, token: linkToken(obj, type), ...ref };
    case "add_contact":
    case "remove_contact":
      return { type, username: validateUsername(reqString(obj, "username", type)), ...ref };
    case "contacts":
    case "scheduled":
    case "token":
      return { type, ...ref };
    case "session_request":
      return {
        type,
        target_username: validateUsername(reqString(obj, "target_username", type)),
        ...ref,
      };
    case "session_response": {
      const target = validateUsername(reqString(obj, "target_username", type));
      const accepted = field(obj, "accepted");
      if (typeof accepted !== "boolean") {
        throw new ProtocolError("bad_field", '"accepted" must be true or false');
      }
      return { type, target_username: target, accepted, ...ref };
    }
    case "join":
      return { type, room: validateRoomName(reqString(obj, "room", type)), ...ref };
    case "leave": {
      const room = optString(obj, "room", type);
      return { type, ...(room === undefined ? {} : { room: validateRoomName(room) }), ...ref };
    }
    case "history": {
      const chat = optString(obj, "chat", type);
      const before = optInt(obj, "before", 1, Number.MAX_SAFE_INTEGER);
      const after = optInt(obj, "after", 0, Number.MAX_SAFE_INTEGER);
      if (before !== undefined && after !== undefined) {
        throw new ProtocolError("bad_field", 'Give "before" or "after", not both');
      }
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      return {
        type,
        ...(chat === undefined ? {} : { chat: validateChatAddress(chat) }),
        ...(before === undefined ? {} : { before }),
        ...(after === undefined ? {} : { after }),
        ...(limit === undefined ? {} : { limit }),
        ...ref,
      };
    }
    case "report": {
      const reason = optReason(obj, type);
      return {
        type,
        username: validateUsername(reqString(obj, "username", type)),
        ...(reason === undefined ? {} : { reason }),
        ...ref,
      };
    }
    case "kick":
    case "unmute":
    case "unban": {
      const reason = optReason(obj, type);
      return {
        type,
        username: validateUsername(reqString(obj, "username", type)),
        ...(reason === undefined ? {} : { reason }),
        ...ref,
      };
    }
    case "mute":
    case "ban": {
      const reason = optReason(obj, type);
      const minutes = optInt(obj, "minutes", 1, 366 * 24 * 60);
      return {
        type,
        username: validateUsername(reqString(obj, "username", type)),
        ...(minutes === undefined ? {} : { minutes }),
        ...(reason === undefined ? {} : { reason }),
        ...ref,
      };
    }
    case "delete_message": {
      const id = reqString(obj, "id", type);
      if (!ULID_RE.test(id)) {
        throw new ProtocolError("bad_field", '"id" must be a message id (a 26-character ULID)');
      }
      return { type, id, ...ref };
    }
    case "audit": {
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      const before = optString(obj, "before", type);
      if (before !== undefined && !ULID_RE.test(before)) {
        throw new ProtocolError(
          "bad_field",
          '"before" must be an audit entry id (a 26-character ULID)',
        );
      }
      return {
        type,
        ...(limit === undefined ? {} : { limit }),
        ...(before === undefined ? {} : { before }),
        ...ref,
      };
    }
    case "create_user": {
      const admin = field(obj, "admin");
      if (admin !== undefined && typeof admin !== "boolean") {
        throw new ProtocolError("bad_field", '"admin" must be true or false');
      }
      return {
        type,
        username: validateUsername(reqString(obj, "username", type)),
        password: password(obj, type, true)!,
        ...(admin === undefined ? {} : { admin }),
        ...ref,
      };
    }
    case "users":
    case "rooms": {
      const after = optString(obj, "after", type);
      if (after !== undefined && charCount(after) > MAX_NAME_CHARS) {
        throw new ProtocolError("bad_field", `"after" must be a name from the previous page`);
      }
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      const username = type === "users" ? optString(obj, "username", type) : undefined;
      return {
        type,
        ...(username === undefined ? {} : { username: validateUsername(username) }),
        ...(after === undefined ? {} : { after }),
        ...(limit === undefined ? {} : { limit }),
        ...ref,
      };
    }
    case "log_search": {
      const query = optString(obj, "query", type);
      if (query !== undefined && charCount(query) > 200) {
        throw new ProtocolError("too_long", '"query" is longer than 200 characters');
      }
      const before = optString(obj, "before", type);
      if (before !== undefined && !ULID_RE.test(before)) {
        throw new ProtocolError("bad_field", '"before" must be a log entry id (a ULID)');
      }
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      return {
        type,
        ...(query === undefined ? {} : { query }),
        ...(before === undefined ? {} : { before }),
        ...(limit === undefined ? {} : { limit }),
        ...ref,
      };
    }
    case "clients": {
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      return { type, ...(limit === undefined ? {} : { limit }), ...ref };
    }
    case "connections":
    case "reports":
    case "stats":
    case "log_subscribe":
    case "session_end":
    case "unread_counts":
    case "status":
    case "pong":
    case "ping":
      return { type, ...ref };
    default:
      throw new ProtocolError(
        "unknown_type",
        `Unknown frame type "${printable(type)}": see docs/protocol.md for the list`,
      );
  }
}

const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const MAX_REASON_CHARS = 500;

function optId(obj: Json, name: string, type: string, required = false): string | undefined {
  const id = required ? reqString(obj, name, type) : optString(obj, name, type);
  if (id !== undefined && !ULID_RE.test(id)) {
    throw new ProtocolError("bad_field", `"${name}" must be an id (a 26-character ULID)`);
  }
  return id;
}

function linkToken(obj: Json, type: string): string {
  const token = reqString(obj, "token", type);
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(token)) {
    throw new ProtocolError(
      "bad_field",
      '"token" must be an invite link token (letters, digits, "_" and "-")',
    );
  }
  return token;
}

function optReason(obj: Json, type: string): string | undefined {
  const reason = optString(obj, "reason", type);
  if (reason === undefined) return undefined;
  if (charCount(reason) > MAX_REASON_CHARS) {
    throw new ProtocolError("too_long", `"reason" is longer than ${MAX_REASON_CHARS} characters`);
  }
  if (CONTROL_RE.test(reason)) {
    throw new ProtocolError("bad_field", '"reason" contains control characters');
  }
  return reason;
}

function optSince(obj: Json, type: string): string | undefined {
  const since = optString(obj, "since", type);
  if (since !== undefined && !ULID_RE.test(since)) {
    throw new ProtocolError("bad_field", '"since" must be a message id (a 26-character ULID)');
  }
  return since;
}

/** Validates a chat address: a room name, or `@user` for the private chat with that user. */
export function validateChatAddress(address: string): string {
  if (address.startsWith("@")) return "@" + validateUsername(address.slice(1));
  return validateRoomName(address);
}

/**
 * The `ref` of a line that failed to decode, when it is JSON with a usable `ref`, so the error
 * can be matched to the request; undefined otherwise.
 */
export function refOfLine(line: string): string | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== "object" || value === null || !("ref" in value)) return undefined;
    const ref = value.ref;
    return typeof ref === "string" && ref.length <= MAX_REF_CHARS ? ref : undefined;
  } catch {
    return undefined;
  }
}

/** Parses and decodes one JSON text line into a client frame. */
export function decodeClientFrame(line: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new ProtocolError(
      "bad_json",
      'That line is not valid JSON: send one JSON object per line, e.g. {"type":"message","message":"hi"}',
      { cause },
    );
  }
  return decodeClientValue(value);
}

/** Encodes a server frame as one JSON line without the newline. */
export function encodeFrame(frame: ServerFrame | ClientFrame): string {
  return JSON.stringify(frame);
}
