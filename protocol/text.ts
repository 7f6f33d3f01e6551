/**
 * The human side of the protocol: slash commands parsed into client frames, and server frames
 * rendered as readable lines. The telnet/netcat mode of the server and the terminal client both
 * use this module, so a person sees the same commands and the same output on either.
 * @module
 */

import {
  type ClientFrame,
  farewell,
  type MessageFrame,
  type Mode,
  ProtocolError,
  type ServerFrame,
  validateMessageText,
  validateRoomName,
  validateUsername,
} from "./frames.ts";
import { decodeClientValue, validateChatAddress } from "./decode.ts";

/** What a typed line means. */
export type ParsedLine =
  | { kind: "frame"; frame: ClientFrame }
  | { kind: "help" }
  | { kind: "admin_help" }
  | { kind: "quit"; farewell?: string }
  | { kind: "empty" }
  | { kind: "error"; message: string };

/** Context that changes how a line is read: a pending session request makes `y`/`n` an answer. */
export interface ParseContext {
  pendingSessionFrom?: string | undefined;
  /**
   * Whether the user is in a private session: `/exit` ends it then, and otherwise (false)
   * leaves the chat, as the second assignment means it. Unknown: it ends the session.
   */
  inSession?: boolean;
  /** The time relative schedules (`+10m`, `18:30`) count from; default the system clock. */
  now?: number;
}

/**
 * Reads when a scheduled message should go: `+90s`, `+10m`, `+2h`, `+1d`, `HH:MM` (local time,
 * today or tomorrow) or an ISO date and time. Returns an ISO string.
 */
function parseWhen(when: string, now: number): string {
  const rel = when.match(/^\+(\d+)(s|m|h|d)$/);
  if (rel) {
    const unit =
      { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[rel[2] as "s" | "m" | "h" | "d"];
    return new Date(now + Number(rel[1]) * unit).toISOString();
  }
  const hm = when.match(/^(\d{1,2}):(\d\d)$/);
  if (hm && Number(hm[1]) < 24 && Number(hm[2]) < 60) {
    const d = new Date(now);
    d.setHours(Number(hm[1]), Number(hm[2]), 0, 0);
    if (d.getTime() <= now) d.setDate(d.getDate() + 1);
    return d.toISOString();
  }
  if (/^\d{4}-\d\d-\d\dT/.test(when) && !Number.isNaN(Date.parse(when))) {
    return new Date(when).toISOString();
  }
  throw new ProtocolError(
    "bad_field",
    `"${when}" is not a time: use +10m, +2h, 18:30 or an ISO time`,
  );
}

/** One line per command, with an example, for `/help`. */
export const HELP_LINES: readonly string[] = [
  "Commands (plain text goes to where the prompt says):",
  "  /users                      who is online, e.g. /users",
  "  /away [WORDS]               say you are away (others see your words); /away alone: back",
  "  /rooms  (/get_chats)        rooms with member and online counts",
  "  /join ROOM  (/chats ROOM)   join or create a room and talk there, e.g. /join games",
  "  /leave [ROOM [REASON]]      leave a room, saying why (everyone stays in general)",
  "  /private NAME TEXT          one private message, e.g. /private Bob hi there",
  "  /send NAME|#ROOM TEXT       send to a user or a room, e.g. /send #games gg",
  "  /session NAME               ask NAME for a private session (they answer y or n)",
  "  /accept NAME, /reject NAME  answer a session request (or just y / n)",
  "  /exit                       end the private session (outside one: leave the chat)",
  "  /history [ROOM|@NAME] [N]   earlier messages, e.g. /history @Bob, or before message N",
  "  /unread [ROOM|@NAME]        unread counts, or read a chat's unread messages",
  "  /members ROOM               who is in a room, e.g. /members general",
  "  /status                     who you are, where you are, your rooms",
  "  /register PASSWORD          claim your name with a password",
  "  /reply ID TEXT              answer a message (/history shows ids)",
  "  /replies ID                 the answers to a message",
  "  /schedule WHEN TEXT         send later: WHEN is +10m, +2h, 18:30 or an ISO time",
  "  /scheduled, /cancel ID      your pending scheduled messages; cancel one",
  "  /group NAME                 create a private group chat",
  "  /invite GROUP NAME          invite someone (they /join GROUP to accept, /decline GROUP)",
  "  /link GROUP, /unlink GROUP TOKEN   make or revoke an invite link",
  "  /joinlink TOKEN             ask to join a group with a link (the owner decides)",
  "  /approve GROUP NAME, /refuse GROUP NAME, /remove GROUP NAME   owner's decisions",
  "  /contacts, /addcontact NAME, /delcontact NAME   your contacts",
  "  /token                      a token for the HTTP API (files: curl with ?token=)",
  "  /report NAME [REASON]       report abuse (also /ban NAME); 3 reports mute for 4 hours",
  "  /delete MESSAGE_ID          delete your message (admins: any message)",
  "  /admin help                 admin commands (admins only)",
  "  /help  (/rules)             this list",
  "  /quit                       leave the chat",
];

/** Admin commands under `/admin`, with examples. */
export const ADMIN_HELP_LINES: readonly string[] = [
  "Admin commands:",
  "  /admin kick NAME [REASON]             close all of NAME's connections",
  "  /admin mute NAME [MINUTES] [REASON]   NAME can read but not send (default: the server's mute time)",
  "  /admin unmute NAME",
  "  /admin ban NAME [MINUTES] [REASON]    NAME cannot log in (no MINUTES: for good)",
  "  /admin unban NAME",
  "  /admin connections                    every connection: user, transport, IP, since, last seen",
  "  /admin clients                        every account, last visit first: when and from where",
  "  /admin log [WORDS]                     the live service log; with words, search what was logged",
  "  /admin reports                        open reports and muted users",
  "  /admin audit [N]                      the last N moderation actions",
  "  /admin adduser NAME PASSWORD [admin]  create an account",
  "  /admin stats                          online, connections by wire, messages per minute, uptime",
];

/** Parses one line typed by a person into a frame or a local action. */
export function parseLine(line: string, ctx: ParseContext = {}): ParsedLine {
  const trimmed = line.trim();
  if (trimmed === "") return { kind: "empty" };
  try {
    if (ctx.pendingSessionFrom !== undefined && /^(y|yes|n|no)$/i.test(trimmed)) {
      return frame({
        type: "session_response",
        target_username: ctx.pendingSessionFrom,
        accepted: /^y/i.test(trimmed),
      });
    }
    // "//text" sends "/text" as a message.
    if (trimmed.startsWith("//")) {
      return frame({ type: "message", message: validateMessageText(line.trim().slice(1)) });
    }
    if (!trimmed.startsWith("/")) {
      return frame({ type: "message", message: validateMessageText(line.trimEnd()) });
    }
    const [word = "", ...rest] = trimmed.slice(1).split(/\s+/);
    const arg = (i: number, what: string): string => {
      const v = rest[i];
      if (v === undefined) {
        throw new ProtocolError("missing_field", `/${word} needs ${what}: /help shows examples`);
      }
      return v;
    };
    // A name cannot hold spaces: extra words mean a mistake, not something to drop silently.
    const only = (n: number, what: string): void => {
      if (rest.length > n) {
        throw new ProtocolError(
          "bad_field",
          `/${word} takes ${what}, without spaces: /help shows examples`,
        );
      }
    };
    const tail = (i: number): string => {
      const m = trimmed.match(new RegExp(`^/\\S+(?:\\s+\\S+){${i}}\\s+(.*)$`, "s"));
      if (!m) {
        throw new ProtocolError("missing_field", `/${word} needs a message: /help shows examples`);
      }
      return validateMessageText(m[1]!);
    };
    switch (word.toLowerCase()) {
      case "help":
      case "rules":
      case "?":
        return { kind: "help" };
      case "quit":
      case "close": {
        const said = farewell(rest.join(" "));
        return said === undefined ? { kind: "quit" } : { kind: "quit", farewell: said };
      }
      case "away": {
        const words = rest.length > 0 ? tail(0) : "";
        return frame({ type: "away", ...(words ? { message: words } : {}) });
      }
      case "users":
      case "who":
        return frame({ type: "users" });
      case "rooms":
      case "get_chats":
        return frame({ type: "rooms" });
      case "join":
      case "chats":
        only(1, "one room name");
        return frame({ type: "join", room: validateRoomName(arg(0, "a room name")) });
      case "leave": {
        // "/leave", "/leave books", "/leave books see you": what follows the room is the reason.
        if (rest[0] === undefined) return frame({ type: "leave" });
        const reason = rest.length > 1 ? tail(1) : "";
        return frame({
          type: "leave",
          room: validateRoomName(rest[0]),
          ...(reason ? { reason } : {}),
        });
      }
      case "private":
      case "msg":
        return frame({
          type: "private",
          target_username: validateUsername(arg(0, "a user name")),
          message: tail(1),
        });
      case "send": {
        const to = arg(0, "a user or #room");
        if (to.startsWith("#") || to.toLowerCase() === "general") {
          return frame({ type: "message", room: validateRoomName(to), message: tail(1) });
        }
        return frame({ type: "private", target_username: validateUsername(to), message: tail(1) });
      }
      case "session":
        only(1, "one user name");
        return frame({
          type: "session_request",
          target_username: validateUsername(arg(0, "a user name")),
        });
      case "accept":
      case "reject":
        only(1, "one user name");
        return frame({
          type: "session_response",
          target_username: validateUsername(arg(0, "the name of who asked")),
          accepted: word.toLowerCase() === "accept",
        });
      case "exit":
        if (ctx.inSession === false) return { kind: "quit" };
        return frame({ type: "session_end" });
      case "status":
        return frame({ type: "status" });
      case "unread":
        only(1, "at most one chat");
        return frame(
          rest[0] === undefined
            ? { type: "unread_counts" }
            : { type: "unread", chat: validateChatAddress(rest[0]) },
        );
      case "report":
      case "ban": {
        // The seeds' /ban NAME is a report: three of them mute the user.
        const username = validateUsername(arg(0, "a user name"));
        const reason = rest.length > 1 ? tail(1) : undefined;
        return frame({ type: "report", username, ...(reason === undefined ? {} : { reason }) });
      }
      case "delete":
        only(1, "one message id");
        return frame({ type: "delete_message", id: arg(0, "a message id") });
      case "admin":
        return parseAdmin(rest, tail);
      case "reply":
        return frame(
          {
            type: "message",
            reply_to: arg(0, "a message id"),
            message: tail(1),
          },
        );
      case "replies":
        only(1, "one message id");
        return frame({ type: "replies", id: arg(0, "a message id") });
      case "schedule": {
        const at = parseWhen(
          arg(0, "when to send it (+10m, 18:30 or an ISO time)"),
          ctx.now ?? Date.now(),
        );
        return frame({ type: "schedule", at, message: tail(1) });
      }
      case "scheduled":
        return frame({ type: "scheduled" });
      case "cancel":
        only(1, "one scheduled message id");
        return frame(
          { type: "cancel_scheduled", id: arg(0, "a scheduled message id") },
        );
      case "group":
        only(1, "one group name");
        return frame({ type: "create_group", room: validateRoomName(arg(0, "a group name")) });
      case "invite":
      case "approve":
      case "refuse":
      case "remove": {
        only(2, "a group and a user name");
        const room = validateRoomName(arg(0, "a group name"));
        const username = validateUsername(arg(1, "a user name"));
        if (word === "invite") return frame({ type: "invite", room, username });
        if (word === "remove") return frame({ type: "remove_member", room, username });
        return frame({ type: "join_decision", room, username, approved: word === "approve" });
      }
      case "decline":
        only(1, "one group name");
        return frame({
          type: "invite_response",
          room: validateRoomName(arg(0, "a group name")),
          accepted: false,
        });
      case "link":
        only(1, "one group name");
        return frame({ type: "create_link", room: validateRoomName(arg(0, "a group name")) });
      case "unlink":
        only(2, "a group and a link token");
        return frame(
          {
            type: "revoke_link",
            room: arg(0, "a group name"),
            token: arg(1, "the link token"),
          },
        );
      case "joinlink":
        only(1, "one link token");
        return frame({ type: "join_link", token: arg(0, "a link token") });
      case "contacts":
        return frame({ type: "contacts" });
      case "addcontact":
      case "delcontact":
        only(1, "one user name");
        return frame({
          type: word === "addcontact" ? "add_contact" : "remove_contact",
          username: validateUsername(arg(0, "a user name")),
        });
      case "token":
        return frame({ type: "token" });
      case "members":
        only(1, "one room name");
        return frame({ type: "members", room: validateRoomName(arg(0, "a room name")) });
      case "ping":
        return frame({ type: "ping" });
      case "register":
        only(1, "one password");
        return frame({ type: "register", password: arg(0, "a password") });
      case "history": {
        only(2, "a chat and a message number");
        let chat: string | undefined;
        let before: number | undefined;
        for (const a of rest) {
          if (/^\d+$/.test(a)) before = Number(a);
          else chat = validateChatAddress(a);
        }
        return frame({
          type: "history",
          ...(chat === undefined ? {} : { chat }),
          ...(before === undefined ? {} : { before }),
        });
      }
      default:
        return { kind: "error", message: `Unknown command /${word}: /help lists the commands` };
    }
  } catch (error) {
    if (error instanceof ProtocolError) return { kind: "error", message: error.message };
    throw error;
  }
}

function parseAdmin(rest: string[], tail: (i: number) => string): ParsedLine {
  const [sub = "help", name, third] = rest;
  const need = () => {
    if (name === undefined) {
      throw new ProtocolError("missing_field", `/admin ${sub} needs a user name: /admin help`);
    }
    return validateUsername(name);
  };
  // "/admin mute NAME 30 spamming": an optional number of minutes, then the reason.
  const minutesAndReason = () => {
    const minutes = third !== undefined && /^\d+$/.test(third) ? Number(third) : undefined;
    const from = minutes === undefined ? 2 : 3;
    const reason = rest.length > from ? tail(from) : undefined;
    return {
      ...(minutes === undefined ? {} : { minutes }),
      ...(reason === undefined ? {} : { reason }),
    };
  };
  const reasonOnly = () => (rest.length > 2 ? { reason: tail(2) } : {});
  switch (sub.toLowerCase()) {
    case "help":
      return { kind: "admin_help" };
    case "kick":
      return frame({ type: "kick", username: need(), ...reasonOnly() });
    case "mute":
      return frame({ type: "mute", username: need(), ...minutesAndReason() });
    case "ban":
      return frame({ type: "ban", username: need(), ...minutesAndReason() });
    case "unmute":
      return frame({ type: "unmute", username: need(), ...reasonOnly() });
    case "unban":
      return frame({ type: "unban", username: need(), ...reasonOnly() });
    case "connections":
      return frame({ type: "connections" });
    case "clients":
      return frame({ type: "clients" });
    case "stats":
      return frame({ type: "stats" });
    case "log": {
      // `/admin log` follows the live log; `/admin log WORDS` searches what was logged.
      const query = rest.length > 1 ? tail(1).trim() : "";
      return frame(query ? { type: "log_search", query } : { type: "log_subscribe" });
    }
    case "reports":
      return frame({ type: "reports" });
    case "audit":
      return frame({ type: "audit", ...(name ? { limit: Number(name) } : {}) });
    case "adduser":
      if (third === undefined) {
        throw new ProtocolError("missing_field", "/admin adduser needs NAME PASSWORD [admin]");
      }
      return frame(
        {
          type: "create_user",
          username: need(),
          password: third,
          admin: rest[3] === "admin",
        },
      );
    default:
      return { kind: "error", message: `Unknown admin command "${sub}": /admin help lists them` };
  }
}

/** A typed line's frame, through the validating decoder every wire uses (names, text, sizes). */
function frame(f: object): ParsedLine {
  return { kind: "frame", frame: decodeClientValue(f) };
}

/** The prompt that shows where plain text goes. */
export function promptFor(mode: Mode): string {
  if (mode.kind === "session") return `[private: ${mode.with}]> `;
  return mode.room === "general" ? "[general]> " : `[#${mode.room}]> `;
}

/** Formats an ISO timestamp as local HH:MM. */
export function clock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "--:--";
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** An ISO time for people: HH:MM today, the date too otherwise ("Nov 28 14:05"). */
export function when(iso: string, now = Date.now()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "--:--";
  if (d.toDateString() === new Date(now).toDateString()) return clock(iso);
  const month = d.toLocaleString("en", { month: "short" });
  return `${month} ${d.getDate()}${
    d.getFullYear() === new Date(now).getFullYear() ? "" : ` ${d.getFullYear()}`
  } ${clock(iso)}`;
}

/**
 * The server's own sentences carry times as UTC ISO ("muted until 2026-11-29T15:06:20.703Z");
 * a person reads them as chat lines show time: local `HH:MM`, with the date when not today.
 * Only for server-made text (notices, errors), never for what users wrote.
 */
export function humanTimes(text: string, now = Date.now()): string {
  return text.replace(
    /(until )?\b(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z)\b/g,
    (_, until: string | undefined, iso: string) =>
      iso.startsWith("9999-") ? "for good" : `${until ?? ""}${when(iso, now)}`,
  );
}

/** Unread messages of one chat a person is shown at login; /history pages back to the rest. */
export const UNREAD_LINES = 20;

/** Lines of one message a text wire shows; the rest is summed up (/history has it all). */
export const MAX_TEXT_LINES = 20;

/** Continuation lines are indented (never at column 0, where they could pass for a notice). */
function indent(text: string): string {
  const lines = text.split("\n");
  const shown = lines.length > MAX_TEXT_LINES
    ? [...lines.slice(0, MAX_TEXT_LINES), `… ${lines.length - MAX_TEXT_LINES} more lines`]
    : lines;
  return shown.join("\n    ");
}

/**
 * Control characters (C0 but tab and newline, DEL, C1 such as the 8-bit CSI U+009B) and
 * bidirectional overrides, which would drive a terminal or reorder what it shows.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A frame whose every string is safe on a terminal: unsafe characters become "?", and newlines
 * stay only in message text (where `indent` keeps them off column 0); anywhere else (a reason, a
 * file name or type, an audit detail) a newline is a space, so nobody can forge a line.
 */
function safeFrame(value: unknown, multiline = false): unknown {
  if (typeof value === "string") {
    const clean = value.replace(UNSAFE, "?");
    return multiline ? clean : clean.replace(/\n/g, " ");
  }
  if (Array.isArray(value)) return value.map((v) => safeFrame(v));
  if (typeof value !== "object" || value === null) return value;
  const isMessage = "type" in value && (value.type === "message" || value.type === "private");
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = safeFrame(v, isMessage && k === "message");
  }
  return out;
}

/**
 * Renders one stored message as a line: `[14:30] #general Alice: hi` or
 * `[14:30] >> Alice → Bob: hi`; a reply shows what it answers, a file where to get it.
 */
function renderMessage(m: MessageFrame, options: { ids?: boolean } = {}): string {
  const who = m.type === "private"
    ? `>> ${m.from_username} → ${m.to_username}`
    : `#${m.room} ${m.from_username}`;
  const notice = m.notice ? " (notice)" : "";
  const reply = m.reply_to
    ? ` (↪ ${m.reply_to.from_username}: ${shorten(m.reply_to.message)})`
    : "";
  const file = m.file ? `\n    file: GET /api/v1/files/${m.file.id}` : "";
  const id = options.ids ? `  [${m.id}]` : "";
  return `[${clock(m.timestamp)}] ${who}${notice}${reply}: ${indent(m.message)}${file}${id}`;
}

function shorten(text: string): string {
  const line = text.replace(/\s+/g, " ");
  return line.length > 40 ? line.slice(0, 40) + "…" : line;
}

function modeText(mode: Mode): string {
  return mode.kind === "session" ? `private session with ${mode.with}` : `#${mode.room}`;
}

/**
 * Renders a server frame as text for a person, or null for frames a person need not see
 * (acks: the message itself comes back as a line).
 */
export function renderFrame(frame: ServerFrame): string | null {
  // What other users wrote is made safe first, in every field, whatever the frame.
  const f = safeFrame(frame) as ServerFrame;
  switch (f.type) {
    case "welcome":
      return `* Logged in as ${f.username}${f.admin ? " (admin)" : ""} (${
        f.registered ? "registered" : "guest: /register PASSWORD claims the name"
      }). ` +
        `${f.online_users} online. You are in ${modeText(f.mode)}. /help lists commands.`;
    case "system":
      return `[${clock(f.timestamp)}] * ${humanTimes(f.message)}` +
        (f.event === "online" || f.event === "offline" ? ` (${f.online_users} online)` : "");
    case "message":
    case "private":
      return renderMessage(f);
    case "ack":
      if (f.offline) return `* ${f.chat.slice(1)} is offline: they will get it when they connect`;
      return f.away === undefined ? null : `* ${f.chat.slice(1)} is away: ${f.away}`;
    case "error":
      return `! ${humanTimes(f.message)}`;
    case "users_list": {
      const offline = f.all.filter((u) => !u.online).map((u) => u.username);
      const here = f.all.filter((u) => u.online)
        .map((u) => u.away === undefined ? u.username : `${u.username} (away: ${u.away})`);
      return `* Online (${f.online_users}): ${here.join(", ") || "nobody"}` +
        (offline.length > 0 ? `\n* Offline: ${offline.join(", ")}` : "");
    }
    case "rooms_list":
      return ["* Rooms:"].concat(
        f.rooms.map((r) =>
          `  #${r.name}  ${r.members} members, ${r.online} online${
            r.private ? `, private (owner ${r.owner})` : ""
          }${r.joined ? "  (joined)" : ""}`
        ),
      ).join("\n");
    case "joined":
      return `* You are in #${f.room}. Plain text now goes to ${modeText(f.mode)}.`;
    case "left":
      return `* You left #${f.room}. Plain text now goes to ${modeText(f.mode)}.`;
    case "mode":
      return `* Plain text now goes to ${modeText(f.mode)}.`;
    case "history": {
      if (f.messages.length === 0) {
        return f.reason === "request" ? `* No messages in ${chatName(f.chat)}.` : null;
      }
      // People are shown at most the newest UNREAD_LINES unread messages of a chat, and told
      // how to page back (the second assignment: "at most 20 lines"); programs get them all.
      const missed = f.reason === "unread" || f.reason === "resume";
      const shown = missed ? f.messages.slice(-UNREAD_LINES) : f.messages;
      const hidden = f.messages.length - shown.length;
      const head = missed
        ? `--- ${f.unread ?? f.messages.length} unread in ${chatName(f.chat)}${
          hidden > 0 ? `, the last ${shown.length} here` : ""
        } ---`
        : `--- ${chatName(f.chat)}: ${f.messages.length} earlier message${
          f.messages.length === 1 ? "" : "s"
        }${f.unread ? `, ${f.unread} unread` : ""} ---`;
      const more = f.has_more || hidden > 0
        ? `\n--- older: /history ${f.chat} ${shown[0]!.seq} ---`
        : "";
      return [head, ...shown.map((m) => renderMessage(m, { ids: f.reason === "request" }))]
        .join("\n") + more + "\n--- end ---";
    }
    case "session_request":
      return `[${clock(f.timestamp)}] ? ${f.message}. Answer y or n.`;
    case "session_accepted":
    case "session_rejected":
    case "session_ended":
      return `[${clock(f.timestamp)}] * ${f.message}`;
    case "status":
      return [
        `* You are ${f.username} (${
          f.registered ? "registered" : "guest"
        }), on ${f.connections} connection${f.connections === 1 ? "" : "s"}.`,
        `* Plain text goes to ${modeText(f.mode)}.${
          f.session ? ` Private session with ${f.session}.` : ""
        }`,
        `* Rooms: ${f.rooms.map((r) => "#" + r).join(", ")}. ${f.online_users} users online.`,
        ...(f.muted_until ? [`* You are muted until ${when(f.muted_until)}.`] : []),
        ...(f.quota
          ? [
            `* Quota: ${f.quota.remaining} of ${f.quota.limit} messages left this ${
              f.quota.window_s / 60
            } minutes${f.quota.next_at ? `; next at ${f.quota.next_at}` : ""}.`,
          ]
          : []),
        ...(f.admin ? ["* You are an admin: /admin help."] : []),
      ].join("\n");
    case "unread_counts":
      return f.chats.length === 0
        ? "* Nothing unread."
        : "* Unread: " + f.chats.map((c) => `${chatName(c.chat)} ${c.unread}`).join(", ");
    case "members":
      return `* Members of #${f.room} (${f.members.length}): ` +
        f.members.map((m) => m.username + (m.online ? "" : " (offline)")).join(", ");
    case "message_deleted":
      return `[${clock(f.timestamp)}] * Message ${f.seq} in ${
        chatName(f.chat)
      } was deleted by ${f.by}`;
    case "connections_list":
      return [`* Connections (${f.connections.length}):`].concat(
        f.connections.map((c) =>
          `  #${c.id} ${c.username ?? "(not logged in)"}  ${c.transport}  ${c.ip}  since ${
            clock(c.connected_at)
          }, last seen ${clock(c.last_seen)}`
        ),
      ).join("\n");
    case "clients_list":
      return [`* Clients, last visit first (${f.clients.length}):`].concat(
        f.clients.map((c) =>
          `  ${c.username}${c.admin ? " (admin)" : ""}${c.registered ? "" : " (guest)"}  ${
            c.online
              ? `online (${c.connections})`
              : `last seen ${c.last_seen ? when(c.last_seen) : "never"}`
          }  ${c.last_ip ?? "-"}${c.banned_until ? `  banned until ${when(c.banned_until)}` : ""}${
            c.muted_until ? `  muted until ${when(c.muted_until)}` : ""
          }`
        ),
      ).join("\n");
    case "audit_log":
      return f.entries.length === 0
        ? "* The audit log is empty."
        : ["* Audit (newest first):"].concat(
          f.entries.map((e) =>
            `  ${e.at.slice(0, 16).replace("T", " ")}  ${e.actor} ${e.action} ${e.target}${
              e.reason ? `: ${e.reason}` : ""
            }${e.detail ? ` (${e.detail})` : ""}`
          ),
        ).join("\n");
    case "reports_list":
      return f.reports.length === 0 ? "* No open reports, nobody muted." : ["* Reports:"].concat(
        f.reports.map((x) =>
          `  ${x.username}: ${x.reporters.length} report${x.reporters.length === 1 ? "" : "s"}${
            x.reporters.length ? ` (${x.reporters.join(", ")})` : ""
          }${x.muted_until ? `, muted until ${when(x.muted_until)}` : ""}`
        ),
      ).join("\n");
    case "replies":
      return f.messages.length === 0 ? `* No replies to ${f.id}.` : [
        `--- replies to ${f.id} ---`,
        ...f.messages.map((m) => renderMessage(m, { ids: true })),
        "--- end ---",
      ]
        .join("\n");
    case "scheduled":
      return `* Scheduled for ${f.entry.at} to ${chatName(f.entry.chat)}: ${
        shorten(f.entry.message)
      } ` +
        `(id ${f.entry.id}; /cancel ${f.entry.id})`;
    case "scheduled_list":
      return f.entries.length === 0 ? "* Nothing scheduled." : ["* Scheduled:"].concat(
        f.entries.map((e) => `  ${e.at}  ${chatName(e.chat)}: ${shorten(e.message)}  (id ${e.id})`),
      ).join("\n");
    case "scheduled_cancelled":
      return `* Cancelled scheduled message ${f.id}.`;
    case "invite":
      return `[${
        clock(f.timestamp)
      }] ? ${f.from_username} invites you to the private group #${f.room}: ` +
        `/join ${f.room} to accept, /decline ${f.room} to say no.`;
    case "link":
      return `* Invite link for #${f.room}: /joinlink ${f.token}  (revoke: /unlink ${f.room} ${f.token})`;
    case "join_request":
      return `[${clock(f.timestamp)}] ? ${f.username} asks to join #${f.room}: ` +
        `/approve ${f.room} ${f.username} or /refuse ${f.room} ${f.username}`;
    case "contacts_list":
      return f.contacts.length === 0
        ? "* No contacts yet: /addcontact NAME"
        : `* Contacts: ${
          f.contacts.map((c) => c.username + (c.online ? " (online)" : "")).join(", ")
        }`;
    case "token":
      return `* Token (valid until ${when(f.expires_at)}): ${f.token}` +
        (f.http_port
          ? `\n* e.g. curl -O -J "http://HOST:${f.http_port}/api/v1/files/ID?token=${f.token}"`
          : "");
    case "stats":
      return `* ${f.online_users} online on ${f.connections} connections (${
        Object.entries(f.by_transport).map(([t, n]) => `${t} ${n}`).join(", ") || "none"
      }); ${f.messages_last_minute} messages in the last minute, ${f.messages_total} since start; up ${f.uptime_s} s`;
    case "log":
      return f.entries.map((e) => `[${clock(e.at)}] log ${e.kind}: ${e.text}`).join("\n") || null;
    case "log_page":
      return f.entries.length === 0
        ? "* Nothing in the service log matches."
        : ["* Service log, newest first:"].concat(
          f.entries.map((e) => `  [${when(e.at)}] ${e.kind}: ${e.text}`),
        ).join("\n");
    case "pong":
      return `* pong ${f.timestamp}`;
    case "ping":
    case "challenge":
      return null;
    case "bye":
      return `* Disconnected: ${f.reason}`;
  }
}

function chatName(chat: string): string {
  return chat.startsWith("@") ? `your private chat with ${chat.slice(1)}` : `#${chat}`;
}
