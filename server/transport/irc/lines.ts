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
