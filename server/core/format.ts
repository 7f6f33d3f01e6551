/**
 * Small pure helpers the core's modules share: times and sizes for people, chat ids, tokens,
 * and the wire form of a stored message.
 * @module
 */

import type { MessageFrame } from "../../protocol/frames.ts";
import type { StoredMessage } from "../store/store.ts";

/** Returns the chat id of the private conversation between two users. */
export function dmId(a: string, b: string): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

let isoSecond = Number.NaN;
let isoPrefix = "";

/**
 * An epoch-ms time as an ISO string, as `Date.prototype.toISOString` gives it. Every ack and
 * delivered message carries one: the "YYYY-MM-DDTHH:MM:SS." part is kept per second instead of
 * a `Date` made for each (3% of the server's time at ingest).
 */
export function iso(ms: number): string {
  const whole = Math.trunc(ms);
  const second = Math.floor(whole / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    isoSecond = second;
  }
  const milli = whole - second * 1000;
  return isoPrefix + (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli + "Z";
}

/** Formats a byte count for people: "512 B", "12.3 KB", "5.0 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Formats a window length for people: "1h", "30m", "45s". */
export function duration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** 32 random bytes, base64url: login tokens and invite links. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** The hex SHA-256 of a text (tokens are stored only as this). */
export async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Turns a stored message into its wire frame. */
export function toFrame(m: StoredMessage): MessageFrame {
  const extra = {
    ...(m.replyTo
      ? { reply_to: { id: m.replyTo.id, from_username: m.replyTo.from, message: m.replyTo.text } }
      : {}),
    ...(m.file ? { file: m.file } : {}),
    ...(m.notice ? { notice: true as const } : {}),
  };
  if (m.to !== undefined) {
    return {
      type: "private",
      id: m.id,
      seq: m.seq,
      from_username: m.from,
      to_username: m.to,
      message: m.text,
      timestamp: iso(m.ts),
      ...extra,
    };
  }
  return {
    type: "message",
    id: m.id,
    seq: m.seq,
    room: m.chat,
    from_username: m.from,
    message: m.text,
    timestamp: iso(m.ts),
    ...extra,
  };
}
