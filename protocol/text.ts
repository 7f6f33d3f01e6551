/**
 * The human side of the protocol: slash commands parsed into client frames (here), and server
 * frames rendered as readable lines (`text_render.ts`, re-exported). The telnet/netcat mode of the
 * server and the terminal client both use this module, so a person sees the same commands and the
 * same output on either.
 * @module
 */

import {
  type ClientFrame,
  farewell,
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
  /**
   * The rooms the user is in (lower case, no `#`): `/send NAME TEXT` to one of them goes to the
   * room, as rooms made with `/chats NAME` are named without a `#` (the first assignment's
   * `/send`). Unknown: only `#ROOM` and `general` are rooms.
   */
  rooms?: ReadonlySet<string>;
}

/**
 * The rooms a person's session is in, kept from the frames it is sent (the welcome's list, then
 * `joined` and `left`, which reach every connection of the user), for `ParseContext.rooms`.
 */
export class JoinedRooms {
  readonly names: Set<string> = new Set();

  /** Follows one server frame. */
  follow(f: ServerFrame): void {
    if (f.type === "welcome") {
      this.names.clear();
      for (const room of f.rooms) this.names.add(room.toLowerCase());
    } else if (f.type === "joined") this.names.add(f.room.toLowerCase());
    else if (f.type === "left") this.names.delete(f.room.toLowerCase());
  }
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
  "  /send NAME|ROOM TEXT        send to a user or a room you are in, e.g. /send games gg",
  "  /notice NAME|#ROOM TEXT     the same as a notice (no one should answer it: bots, alerts)",
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
      case "send":
      case "notice": {
        // A notice is a message no program should answer (IRC's NOTICE): bots say things so.
        const to = arg(0, "a user or #room");
        const notice = word.toLowerCase() === "notice" ? { notice: true as const } : {};
        const bare = to.toLowerCase();
        if (to.startsWith("#") || bare === "general" || ctx.rooms?.has(bare)) {
          return frame({
            type: "message",
            room: validateRoomName(to),
            message: tail(1),
            ...notice,
          });
        }
        return frame({
          type: "private",
          target_username: validateUsername(to),
          message: tail(1),
          ...notice,
        });
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

export {
  clock,
  humanTimes,
  MAX_TEXT_LINES,
  promptFor,
  renderFrame,
  UNREAD_LINES,
  when,
} from "./text_render.ts";
