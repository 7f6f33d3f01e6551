/**
 * The field readers of the validating decoder (protocol/decode.ts): each takes one field of a
 * parsed frame, checks its type and range, and says in a `ProtocolError` what to send instead.
 * @module
 */

import { charCount, CONTROL_RE, ProtocolError, validateMessageText } from "./frames.ts";
import { MAX_LOOKUP_NAMES, MAX_NAME_CHARS, MAX_PASSWORD_CHARS } from "./limits.ts";

export type Json = Record<string, unknown>;

export function field(obj: Json, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

export function reqString(obj: Json, name: string, type: string): string {
  const v = field(obj, name);
  if (v === undefined || v === null) {
    throw new ProtocolError("missing_field", `"${type}" needs a "${name}" string field`);
  }
  if (typeof v !== "string") {
    throw new ProtocolError("bad_field", `"${name}" must be a string, got ${typeName(v)}`);
  }
  return v;
}

export function optString(obj: Json, name: string, type: string): string | undefined {
  const v = field(obj, name);
  return v === undefined || v === null ? undefined : reqString(obj, name, type);
}

export function optInt(obj: Json, name: string, min: number, max: number): number | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ProtocolError("bad_field", `"${name}" must be a whole number from ${min} to ${max}`);
  }
  return v;
}

/** A place in a chat: a message's sequence number (from `min`), or its id. */
export function seqOrId(obj: Json, name: string, min: number): number | string | undefined {
  const v = field(obj, name);
  if (typeof v === "string" && ULID_RE.test(v)) return v;
  if (typeof v === "string" || typeof v === "number" && !Number.isInteger(v)) {
    throw new ProtocolError(
      "bad_field",
      `"${name}" must be a message's seq (a whole number from ${min}) or its id`,
    );
  }
  return optInt(obj, name, min, Number.MAX_SAFE_INTEGER);
}

/**
 * A list of up to MAX_LOOKUP_NAMES names to look up. Not checked as names a user could take: one
 * no user has (an IRC nick with brackets, say) is simply not found.
 */
export function nameList(obj: Json, name: string): string[] | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null) return undefined;
  const bad = `"${name}" must be a list of 1 to ${MAX_LOOKUP_NAMES} names`;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LOOKUP_NAMES) {
    throw new ProtocolError("bad_field", bad);
  }
  for (const n of v) {
    if (typeof n !== "string" || n === "" || charCount(n) > MAX_NAME_CHARS) {
      throw new ProtocolError("bad_field", bad);
    }
  }
  return v as string[];
}

export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

export function password(obj: Json, type: string, required: boolean): string | undefined {
  const p = required ? reqString(obj, "password", type) : optString(obj, "password", type);
  if (p !== undefined && charCount(p) > MAX_PASSWORD_CHARS) {
    throw new ProtocolError(
      "too_long",
      `The password is longer than ${MAX_PASSWORD_CHARS} characters`,
    );
  }
  return p;
}

/** A true/false field; absent (or null, as for strings) unless `required`; else refused. */
export function bool(obj: Json, name: string, required = false): boolean | undefined {
  const v = field(obj, name);
  if (!required && (v === undefined || v === null)) return undefined;
  if (typeof v !== "boolean") {
    throw new ProtocolError("bad_field", `"${name}" must be true or false`);
  }
  return v;
}

/** `"notice": true` marks a message as a notice (IRC's NOTICE); false or absent: an ordinary one. */
export function noticeOf(obj: Json): { notice?: true } {
  return bool(obj, "notice") ? { notice: true } : {};
}

export function text(obj: Json, type: string): string {
  return validateMessageText(reqString(obj, "message", type));
}

/** A ULID, as message, file and log entry ids are. */
export const ULID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const MAX_REASON_CHARS = 500;

export function optId(obj: Json, name: string, type: string, required = false): string | undefined {
  const id = required ? reqString(obj, name, type) : optString(obj, name, type);
  if (id !== undefined && !ULID_RE.test(id)) {
    throw new ProtocolError("bad_field", `"${name}" must be an id (a 26-character ULID)`);
  }
  return id;
}

export function linkToken(obj: Json, type: string): string {
  const token = reqString(obj, "token", type);
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(token)) {
    throw new ProtocolError(
      "bad_field",
      '"token" must be an invite link token (letters, digits, "_" and "-")',
    );
  }
  return token;
}

/** A short free text (a reason, an away message): at most 500 characters, no control characters. */
export function optReason(obj: Json, type: string, name = "reason"): string | undefined {
  const reason = optString(obj, name, type);
  if (reason === undefined) return undefined;
  if (charCount(reason) > MAX_REASON_CHARS) {
    throw new ProtocolError("too_long", `"${name}" is longer than ${MAX_REASON_CHARS} characters`);
  }
  if (CONTROL_RE.test(reason)) {
    throw new ProtocolError("bad_field", `"${name}" contains control characters`);
  }
  return reason;
}

export function optSince(obj: Json, type: string): string | undefined {
  const since = optString(obj, "since", type);
  if (since !== undefined && !ULID_RE.test(since)) {
    throw new ProtocolError("bad_field", '"since" must be a message id (a 26-character ULID)');
  }
  return since;
}
