/**
 * The validating decoder: one client frame from a JSON line or a parsed value, every field
 * checked (type, range, the name and text rules of protocol/frames.ts), or a `ProtocolError`
 * whose sentence says what to send instead. Every wire decodes through it: TCP JSON lines,
 * WebSocket, JIM and REST bodies, IRC and telnet after their own translation.
 * @module
 */

import {
  charCount,
  type ClientFrame,
  farewell,
  printable,
  ProtocolError,
  validateRoomName,
  validateUsername,
} from "./frames.ts";
import {
  bool,
  field,
  type Json,
  linkToken,
  nameList,
  noticeOf,
  optId,
  optInt,
  optReason,
  optSince,
  optString,
  password,
  reqString,
  seqOrId,
  text,
  typeName,
  ULID_RE,
} from "./fields.ts";
import { MAX_NAME_CHARS, MAX_PAGE, MAX_REF_CHARS } from "./limits.ts";

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
      const unique = bool(obj, "unique");
      return {
        type,
        username,
        ...(pw === undefined ? {} : { password: pw }),
        ...(proof === undefined ? {} : { proof }),
        ...(since === undefined ? {} : { since }),
        ...(unique === true ? { unique } : {}),
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
        ...noticeOf(obj),
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
        ...noticeOf(obj),
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
      const accepted = bool(obj, "accepted", true)!;
      return { type, room: validateRoomName(reqString(obj, "room", type)), accepted, ...ref };
    }
    case "join_decision": {
      const approved = bool(obj, "approved", true)!;
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
      const accepted = bool(obj, "accepted", true)!;
      return { type, target_username: target, accepted, ...ref };
    }
    case "join":
      return { type, room: validateRoomName(reqString(obj, "room", type)), ...ref };
    case "leave": {
      const room = optString(obj, "room", type);
      const reason = optReason(obj, type)?.trim();
      return {
        type,
        ...(room === undefined ? {} : { room: validateRoomName(room) }),
        ...(reason ? { reason } : {}),
        ...ref,
      };
    }
    case "history": {
      const chat = optString(obj, "chat", type);
      const before = seqOrId(obj, "before", 1);
      const after = seqOrId(obj, "after", 0);
      const around = seqOrId(obj, "around", 1);
      if ([before, after, around].filter((x) => x !== undefined).length > 1) {
        throw new ProtocolError("bad_field", 'Give one of "before", "after" or "around"');
      }
      const limit = optInt(obj, "limit", 1, MAX_PAGE);
      return {
        type,
        ...(chat === undefined ? {} : { chat: validateChatAddress(chat) }),
        ...(before === undefined ? {} : { before }),
        ...(after === undefined ? {} : { after }),
        ...(around === undefined ? {} : { around }),
        ...(limit === undefined ? {} : { limit }),
        ...ref,
      };
    }
    case "report":
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
      const usernames = type === "users" ? nameList(obj, "usernames") : undefined;
      return {
        type,
        ...(username === undefined ? {} : { username: validateUsername(username) }),
        ...(usernames === undefined ? {} : { usernames }),
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
    case "away": {
      // Up to a reason's length, no control characters; blank or absent: back.
      const message = optReason(obj, type, "message")?.trim();
      return { type, ...(message ? { message } : {}), ...ref };
    }
    case "quit": {
      // What the others are told as the user goes (trimmed, at most 200 characters).
      const reason = farewell(optReason(obj, type));
      return { type, ...(reason ? { reason } : {}), ...ref };
    }
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

/**
 * Validates a chat address: a room name, or `@user` for the private chat with that user. A bare
 * name no room could have (`j.doe`: rooms have no dots) is a user's; a bare name that could be
 * either is a room when there is one, else a user (the core decides).
 */
export function validateChatAddress(address: string): string {
  if (address.startsWith("@")) return "@" + validateUsername(address.slice(1));
  if (!address.startsWith("#") && address.includes(".")) return "@" + validateUsername(address);
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
