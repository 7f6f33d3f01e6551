/**
 * IRC text: parsing a client's line, and writing a server's lines with the IRCv3 tags a client
 * asked for. Pure functions; the connection (irc/connection.ts) uses them.
 * @module
 */

import type { MessageFrame } from "../../../protocol/frames.ts";

/** A parsed IRC line. */
export interface IrcMessage {
  tags: Record<string, string>;
  command: string;
  params: string[];
}

/** Parses one IRC line (without CRLF); null for an empty one. */
export function parseIrc(line: string): IrcMessage | null {
  let rest = line.trimStart();
  const tags: Record<string, string> = {};
  if (rest.startsWith("@")) {
    const end = rest.indexOf(" ");
    for (const t of rest.slice(1, end < 0 ? undefined : end).split(";")) {
      const eq = t.indexOf("=");
      if (t) tags[eq < 0 ? t : t.slice(0, eq)] = eq < 0 ? "" : t.slice(eq + 1);
    }
    rest = end < 0 ? "" : rest.slice(end + 1).trimStart();
  }
  if (rest.startsWith(":")) {
    const end = rest.indexOf(" ");
    rest = end < 0 ? "" : rest.slice(end + 1).trimStart();
  }
  if (!rest) return null;
  const params: string[] = [];
  while (rest) {
    if (rest.startsWith(":")) {
      params.push(rest.slice(1));
      break;
    }
    const end = rest.indexOf(" ");
    if (end < 0) {
      params.push(rest);
      break;
    }
    params.push(rest.slice(0, end));
    rest = rest.slice(end + 1).trimStart();
  }
  const command = params.shift()!.toUpperCase();
  return { tags, command, params };
}

/** One IRC line with the tags the client asked for (server-time, message-tags, batch). */
export function tagged(
  text: string,
  tags: Record<string, string>,
  caps: ReadonlySet<string>,
): string {
  const kept = Object.entries(tags).filter(([k]) =>
    k === "time"
      ? caps.has("server-time")
      : k === "batch"
      ? caps.has("batch")
      : caps.has("message-tags")
  );
  const prefix = kept.length ? "@" + kept.map(([k, v]) => `${k}=${v}`).join(";") + " " : "";
  return prefix + text + "\r\n";
}

/** A message as PRIVMSG (or NOTICE) lines, one per line of text; a file as its download link. */
export function messageLines(
  m: MessageFrame,
  target: string,
  server: string,
  caps: ReadonlySet<string>,
  batch?: string,
): string {
  const tags: Record<string, string> = { time: m.timestamp, msgid: m.id };
  if (batch) tags.batch = batch;
  let text = m.message;
  if (m.file) text += ` [file ${m.file.name}: GET /api/v1/files/${m.file.id}]`;
  const from = `${m.from_username}!${m.from_username}@${server}`;
  const command = m.notice ? "NOTICE" : "PRIVMSG";
  return text.split("\n").map((l) => tagged(`:${from} ${command} ${target} :${l}`, tags, caps))
    .join("");
}

/** A line without its tags: 512 bytes with CRLF (RFC 1459). */
const MAX_BODY_BYTES = 510;
/** A client's tags, without the "@" and the space after them (IRCv3 message-tags). */
const MAX_CLIENT_TAG_BYTES = 4094;
/** Past this many characters without a newline, the line is too long whatever it holds. */
const MAX_LINE = MAX_BODY_BYTES + MAX_CLIENT_TAG_BYTES + 2;
const encoder = new TextEncoder();

/**
 * Splits what a client sends into lines (CRLF or a bare LF). A line past IRC's limits comes out
 * as `null`, to be answered 417; one too long to hold comes out once, as soon as it is, and its
 * rest up to the next newline is dropped: a client cannot make the server hold more than a line.
 */
export class LineReader {
  #pending = "";
  /** Inside a line already given out as too long. */
  #skipping = false;
  #decoder = new TextDecoder();

  /** The lines `bytes` completes, in order (null: a line too long). */
  *feed(bytes: Uint8Array): Generator<string | null> {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    let i;
    while ((i = this.#pending.indexOf("\n")) >= 0) {
      const line = this.#pending.slice(0, i).replace(/\r$/, "");
      this.#pending = this.#pending.slice(i + 1);
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      yield tooLong(line) ? null : line;
    }
    if (this.#pending.length > MAX_LINE) {
      if (!this.#skipping) yield null;
      this.#skipping = true;
      this.#pending = "";
    }
  }
}

/** Whether a client's line is past IRC's limits: 510 bytes without its tags, 4094 of tags. */
export function tooLong(line: string): boolean {
  if (!line.startsWith("@")) return overBytes(line, MAX_BODY_BYTES);
  const end = line.indexOf(" ");
  if (end < 0) return overBytes(line.slice(1), MAX_CLIENT_TAG_BYTES);
  return overBytes(line.slice(1, end), MAX_CLIENT_TAG_BYTES) ||
    overBytes(line.slice(end + 1), MAX_BODY_BYTES);
}

/** Whether `text` takes more than `limit` bytes in UTF-8 (encoded only when it could). */
function overBytes(text: string, limit: number): boolean {
  if (text.length * 3 <= limit) return false;
  if (text.length > limit) return true;
  return encoder.encode(text).length > limit;
}

/** A line (with its CRLF) with one more tag in front. */
export function withTag(line: string, t: string): string {
  return line.startsWith("@") ? `@${t};${line.slice(1)}` : `@${t} ${line}`;
}

/**
 * IRC's formatting codes: bold, colour (`^C4,1`), hex colour, reset, monospace, reverse, italics,
 * strikethrough, underline. They mean nothing on the chat's other wires, and the core refuses
 * control characters, so they are taken out of what an IRC client says: a bold word from irssi is
 * a word everywhere.
 */
const FORMATTING =
  // deno-lint-ignore no-control-regex
  /\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-f]{6}(?:,[0-9a-f]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/gi;

/** What an IRC client said, without its formatting codes. */
export function plainText(text: string): string;
export function plainText(text: string | undefined): string | undefined;
export function plainText(text: string | undefined): string | undefined {
  return text === undefined ? text : text.replace(FORMATTING, "");
}

/** A chat as the core names it ("books", "@bob") as an IRC target ("#books", "bob"). */
export function ircTarget(chat: string): string {
  return chat.startsWith("@") ? chat.slice(1) : `#${chat}`;
}
