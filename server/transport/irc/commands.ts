/**
 * The IRC commands a registered client may send, as a table: each turns its parameters into the
 * frame every wire sends (`join`, `message`, `history`, …) or answers at once with a numeric.
 * What comes back is turned into IRC by `connection.ts`, which also owns registration (CAP,
 * SASL, PASS, NICK, USER) and the connection. As the hub's command table is for frames, this is
 * the one place to look for what an IRC command does.
 * @module
 */

import { ULID_RE } from "../../../protocol/fields.ts";
import { charCount, type MessageFrame } from "../../../protocol/frames.ts";
import { MAX_LOOKUP_NAMES, MAX_NAME_CHARS } from "../../../protocol/limits.ts";
import type { IrcMessage } from "./lines.ts";
import { typedKey } from "./labels.ts";
import { plainText } from "./lines.ts";
import { channelInfoNumerics } from "./replies.ts";
import { GENERAL } from "../../core/hub.ts";

/** What a request sent with a ref was, to turn its answer (or error) into the right numerics. */
export type Asked =
  | { kind: "join"; channel: string }
  | { kind: "part"; channel: string; reason: string | undefined }
  /** A PRIVMSG or NOTICE to one target; `key` knows its echo (`typedKey`). */
  | { kind: "send"; target: string; notice: boolean; key: string }
  | { kind: "names"; channel: string }
  | { kind: "who"; channel: string }
  | { kind: "channel_info"; channel: string; reply: "topic" | "mode" }
  | { kind: "whois"; nick: string }
  | { kind: "list"; only: string[] | undefined }
  | { kind: "who_user"; nick: string }
  | { kind: "online"; reply: "ison" | "userhost" }
  | { kind: "lusers" }
  | { kind: "invite"; nick: string; channel: string }
  | { kind: "kick"; nick: string; channel: string | undefined }
  | { kind: "away"; away: boolean }
  | { kind: "history"; target: string; sub: string; into: MessageFrame[][] }
  | { kind: "other"; command: string };

/** What a command may do on its connection. */
export interface IrcSession {
  /** The server's name, as in prefixes. */
  readonly server: string;
  /** The client's nick (fixed once registered). */
  readonly nick: string;
  /** Sends a frame to the hub, remembering what it was asked for; settles when it is handled. */
  ask(frame: Record<string, unknown>, asked: Asked): Promise<void>;
  numeric(code: string, text: string): void;
  line(text: string): void;
  notice(text: string): void;
  /** Whether this client is on a channel (`#room`, any case). */
  isOn(channel: string): boolean;
  /** The channels this client is on (`#room`). */
  channelsOn(): string[];
  /** Notes a message this client sent (to tell its echo from others' without echo-message). */
  sent(key: string): void;
  /** Sends the message of the day (375/372/376, or 422). */
  motd(): void;
  /** Sends NAMES of the channels a JOIN just joined (part of the JOIN's answer). */
  namesDue(): Promise<void>;
  /** Sends messages as a `chathistory` batch for `target` (an empty one says there are none). */
  historyBatch(target: string, messages: MessageFrame[]): void;
}

type Command = (s: IrcSession, p: string[], m: IrcMessage) => Promise<void> | void;

/** Channels here start with #; anything else is refused with 403. */
function channels(s: IrcSession, list: string | undefined): string[] {
  return (list ?? "").split(",").filter((ch) => {
    if (ch === "") return false;
    if (ch.startsWith("#")) return true;
    s.numeric("403", `${ch} :Channels here start with #`);
    return false;
  });
}

const privmsg: Command = async (s, p, m) => {
  const notice = m.command === "NOTICE";
  const target = p[0];
  const text = plainText(p[1]);
  if (!target) return notice ? undefined : s.numeric("411", `:No recipient given (${m.command})`);
  if (text === undefined || text.trim() === "") {
    return notice ? undefined : s.numeric("412", ":No text to send");
  }
  // A CTCP request (VERSION, PING, DCC…) is for a client program, not a message to keep: only
  // ACTION (/me) is relayed. A NOTICE (a CTCP answer) is never answered.
  const action = text.startsWith("\x01ACTION ");
  if (text.startsWith("\x01") && !action) {
    if (notice) return;
    const ctcp = text.slice(1).replaceAll("\x01", "").split(" ")[0]!.toUpperCase();
    return s.numeric("404", `${target} :CTCP ${ctcp} is not relayed here: only ACTION (/me) is`);
  }
  if (target.toLowerCase() === "chatserv") return await services(s, text);
  const body = action
    // deno-lint-ignore no-control-regex
    ? `* ${text.slice(8).replace(/\x01$/, "")}`
    : text;
  for (const t of target.split(",")) {
    const kind = notice ? { notice: true } : {};
    const frame = t.startsWith("#")
      ? { type: "message", room: t.slice(1), message: body, ...kind }
      : { type: "private", target_username: t, message: body, ...kind };
    const key = typedKey(t, body);
    s.sent(key);
    await s.ask(frame, { kind: "send", target: t, notice, key });
  }
};

/**
 * KICK #channel nick [:reason] and KILL nick [:reason]: the admins' kick (the user's connections
 * are closed). Refused: 482 for a KICK (not a channel operator, as IRC says), 481 for a KILL.
 */
const kick: Command = (s, p, m) => {
  const onChannel = m.command === "KICK";
  const nick = onChannel ? p[1] : p[0];
  if (!nick) return s.numeric("461", `${m.command} :Not enough parameters`);
  const reason = plainText((onChannel ? p[2] : p[1]) ?? "");
  return s.ask({ type: "kick", username: nick, reason }, {
    kind: "kick",
    nick,
    channel: onChannel ? p[0] : undefined,
  });
};

/** The commands of a registered client, by name. */
export const IRC_COMMANDS: Record<string, Command> = {
  JOIN: async (s, p) => {
    if (!p[0]) return s.numeric("461", "JOIN :Not enough parameters (JOIN #channel)");
    // RFC 2812: JOIN 0 leaves every channel (all but #general, which everyone stays in).
    if (p[0] === "0") {
      for (const ch of s.channelsOn()) {
        if (ch === `#${GENERAL}`) continue;
        await s.ask({ type: "leave", room: ch.slice(1) }, {
          kind: "part",
          channel: ch,
          reason: undefined,
        });
      }
      return;
    }
    for (const ch of channels(s, p[0])) {
      // Already on it: nothing (as IRC servers do), not a second JOIN and history replay.
      if (s.isOn(ch)) continue;
      await s.ask({ type: "join", room: ch.slice(1) }, { kind: "join", channel: ch });
      await s.namesDue();
    }
  },
  PART: async (s, p) => {
    if (!p[0]) return s.numeric("461", "PART :Not enough parameters (PART #channel)");
    const reason = plainText(p[1])?.trim() || undefined;
    for (const ch of (p[0] ?? "").split(",").filter(Boolean)) {
      await s.ask(
        { type: "leave", room: ch.replace(/^#/, ""), ...(reason ? { reason } : {}) },
        { kind: "part", channel: ch, reason },
      );
    }
  },
  PRIVMSG: privmsg,
  NOTICE: privmsg,
  NAMES: async (s, p) => {
    if (!p[0]) return s.numeric("366", "* :End of /NAMES list");
    for (const channel of p[0].split(",").filter(Boolean)) {
      await s.ask({ type: "members", room: channel.replace(/^#/, "") }, { kind: "names", channel });
    }
  },
  WHO: (s, p) => {
    const mask = p[0] ?? "";
    if (mask.startsWith("#")) {
      return s.ask({ type: "members", room: mask.slice(1) }, { kind: "who", channel: mask });
    }
    if (!mask || /[*?]/.test(mask)) return s.numeric("315", `${mask || "*"} :End of /WHO list`);
    return s.ask({ type: "users", username: mask }, { kind: "who_user", nick: mask });
  },
  WHOIS: (s, p) => {
    const nick = p.at(-1) ?? "";
    if (!nick) return s.numeric("431", ":No nickname given (WHOIS nick)");
    return s.ask({ type: "users", username: nick }, { kind: "whois", nick });
  },
  LIST: (s, p) => {
    const only = p[0] && !p[0].startsWith(">") && !p[0].startsWith("<")
      ? p[0].split(",").map((c) => c.replace(/^#/, "").toLowerCase())
      : undefined;
    return s.ask({ type: "rooms" }, { kind: "list", only });
  },
  ISON: (s, p) => online(s, p.join(" ").split(" "), "ison"),
  USERHOST: (s, p) => online(s, p.slice(0, 5), "userhost"),
  LUSERS: (s) => s.ask({ type: "status" }, { kind: "lusers" }),
  MOTD: (s) => s.motd(),
  VERSION: (s) => s.numeric("351", `chat ${s.server} :chat on Deno ${Deno.version.deno}`),
  TIME: (s) => s.numeric("391", `${s.server} :${new Date().toISOString()}`),
  ADMIN: (s) => s.numeric("423", `${s.server} :No administrative info: ask in #general`),
  INFO: (s) => {
    s.numeric(
      "371",
      ":chat: one server for TCP, telnet, JIM, IRC, WebSocket, SSE and HTTP clients",
    );
    s.numeric("374", ":End of /INFO list");
  },
  HELP: (s) => {
    for (const l of HELP) s.numeric("705", `* :${l}`);
    s.numeric("706", "* :End of /HELP");
  },
  WHOWAS: (s, p) => {
    if (!p[0]) return s.numeric("431", ":No nickname given");
    s.numeric("406", `${p[0]} :There was no such nickname (WHOIS tells of offline users)`);
    s.numeric("369", `${p[0]} :End of WHOWAS`);
  },
  LINKS: (s) => s.numeric("365", `* :End of /LINKS list`),
  STATS: (s, p) => s.numeric("219", `${p[0] ?? "*"} :End of /STATS report`),
  INVITE: (s, p) => {
    const [nick, channel] = p;
    if (!nick || !channel) {
      return s.numeric("461", "INVITE :Not enough parameters (INVITE nick #group)");
    }
    return s.ask({ type: "invite", room: channel.replace(/^#/, ""), username: nick }, {
      kind: "invite",
      nick,
      channel,
    });
  },
  CHATHISTORY: (s, p) => chathistory(s, p),
  TOPIC: (s, p) => {
    if (!p[0]) return s.numeric("461", "TOPIC :Not enough parameters");
    if (p[1] !== undefined) return s.numeric("482", `${p[0]} :Topics are not kept here`);
    return channelInfo(s, p[0], "topic");
  },
  MODE: (s, p) => {
    const [target, change] = p;
    if (!target) return s.numeric("461", "MODE :Not enough parameters");
    if (target.startsWith("#")) {
      if (change === undefined) return channelInfo(s, target, "mode");
      if (/^[+-]?b$/.test(change) && p.length === 2) {
        return s.numeric("368", `${target} :End of channel ban list`);
      }
      return s.numeric("482", `${target} :Channel modes cannot be changed here`);
    }
    if (target.toLowerCase() !== s.nick.toLowerCase()) {
      return s.numeric("502", ":Cannot view or change modes of other users");
    }
    // User modes: everyone is +i here; asking to change them (irssi asks +i) changes nothing.
    s.numeric("221", "+i");
  },
  AWAY: (s, p) => {
    const message = plainText(p[0])?.trim() || undefined;
    return s.ask({ type: "away", ...(message ? { message } : {}) }, {
      kind: "away",
      away: !!message,
    });
  },
  KICK: kick,
  KILL: kick,
};

/** HELP: what this server's IRC side understands. */
const HELP = [
  "Channels are the chat's rooms: JOIN #room creates one. PRIVMSG #room or a nick talks.",
  "CHATHISTORY LATEST #room * 50 reads history; /msg ChatServ HELP for reports and sessions.",
  "Also: PART NAMES WHO WHOIS LIST INVITE TOPIC MODE AWAY ISON USERHOST LUSERS MOTD QUIT.",
];

/**
 * TOPIC and MODE of a channel: `331` (no topics here) and `324 +nt`, for a channel that exists
 * (asked of the hub unless the client is on it: `403` if there is none).
 */
function channelInfo(s: IrcSession, channel: string, reply: "topic" | "mode") {
  if (!s.isOn(channel)) {
    return s.ask({ type: "members", room: channel.replace(/^#/, "") }, {
      kind: "channel_info",
      channel,
      reply,
    });
  }
  for (const [code, text] of channelInfoNumerics(channel, reply)) s.numeric(code, text);
}

/**
 * ISON and USERHOST: which of these nicks are online, looked up by name (a list of all users
 * stops at 500). ISON's nicks may come in one parameter, space-separated (RFC 2812 allows both).
 */
function online(s: IrcSession, nicks: string[], reply: "ison" | "userhost") {
  const wanted = nicks.flatMap((n) => n.split(" ")).filter(Boolean)
    .filter((n) => charCount(n) <= MAX_NAME_CHARS).slice(0, MAX_LOOKUP_NAMES);
  if (wanted.length === 0) {
    if (nicks.some(Boolean)) return s.numeric(reply === "ison" ? "303" : "302", ":");
    return s.numeric("461", `${reply.toUpperCase()} :Not enough parameters`);
  }
  return s.ask({ type: "users", usernames: wanted }, { kind: "online", reply });
}

/**
 * `CHATHISTORY LATEST|BEFORE|AFTER|AROUND target (*|msgid=ID) limit` and
 * `CHATHISTORY BETWEEN target msgid=A msgid=B limit`, over the same history as every wire. A
 * msgid names any message of the chat, shown on this connection or not (before a reconnect, on
 * another device): BEFORE, AFTER and AROUND page by it; LATEST and BETWEEN, which trim a page by
 * sequence number, look its number up first. Each page is read with the `history` frame and sent
 * as one batch: LATEST after a msgid is the newest `limit` after it; BETWEEN excludes both ends
 * and, read backwards (A after B), is the newest `limit` before A; AROUND centres the page on the
 * message.
 */
async function chathistory(s: IrcSession, p: string[]): Promise<void> {
  const verb = (p[0] ?? "").toUpperCase();
  const target = p[1] ?? "";
  const between = verb === "BETWEEN";
  const limitText = (between ? p[4] : p[3]) ?? "50";
  const fail = (code: string, text: string) =>
    s.line(`:${s.server} FAIL CHATHISTORY ${code} ${verb || "*"} ${target || "*"} :${text}`);
  const limit = Math.min(100, Math.max(1, Number(limitText) || 50));
  const chat = target.startsWith("#") ? target.slice(1) : target ? "@" + target : "";
  if (!chat) return fail("INVALID_PARAMS", "CHATHISTORY needs a channel or a nick");
  const read = async (
    page: { before?: number | string; after?: number | string; around?: string; limit?: number },
  ) => {
    const into: MessageFrame[][] = [];
    await s.ask({ type: "history", chat, limit, ...page }, {
      kind: "history",
      target,
      sub: verb,
      into,
    });
    return into[0];
  };
  const noSuch = (ref: string) =>
    fail("INVALID_MSGREFID", `No message ${ref} here: give msgid= of one of this chat's, or *`);
  const ids: Array<string | undefined> = [];
  for (const ref of between ? [p[2] ?? "", p[3] ?? ""] : [p[2] ?? ""]) {
    if (ref === "*" && !between) {
      ids.push(undefined);
      continue;
    }
    const id = ref.startsWith("msgid=") ? ref.slice(6) : "";
    if (!ULID_RE.test(id)) return noSuch(ref || "*");
    ids.push(id);
  }
  /** A message's seq, where a page must be trimmed by it (undefined: a FAIL has been sent). */
  const seqOf = async (id: string): Promise<number | undefined> => {
    const found = await read({ around: id, limit: 1 });
    const seq = found?.find((m) => m.id === id)?.seq;
    if (found && seq === undefined) noSuch(`msgid=${id}`);
    return seq;
  };
  const [at, other] = ids;
  let page: MessageFrame[] | undefined;
  if (verb === "LATEST") {
    const after = at === undefined ? 0 : await seqOf(at);
    if (after === undefined) return;
    page = (await read({}))?.filter((m) => m.seq > after);
  } else if (verb === "BEFORE" && at) page = await read({ before: at });
  else if (verb === "AFTER" && at) page = await read({ after: at });
  else if (verb === "AROUND" && at) page = await read({ around: at });
  else if (between && at && other) {
    const from = await seqOf(at);
    const to = from === undefined ? undefined : await seqOf(other);
    if (from === undefined || to === undefined) return;
    page = from < to
      ? (await read({ after: from }))?.filter((m) => m.seq < to)
      : (await read({ before: from }))?.filter((m) => m.seq > to);
  } else {
    return fail(
      "INVALID_PARAMS",
      "LATEST, BEFORE, AFTER or AROUND with msgid= (or * for LATEST), or BETWEEN with two msgid=",
    );
  }
  // Refused (no such chat, not yours to read): the FAIL has been sent.
  if (page !== undefined) s.historyBatch(target, page);
}

/**
 * `/msg ChatServ REPORT nick`, `SESSION nick`, `ACCEPT nick`, `REJECT nick`, `END`,
 * `REGISTER password`, `HELP`: what IRC has no command for.
 */
async function services(s: IrcSession, text: string): Promise<void> {
  const [verb = "", arg = ""] = text.trim().split(/\s+/);
  const command = verb.toUpperCase();
  switch (command) {
    case "SESSION":
      return await s.ask({ type: "session_request", target_username: arg }, {
        kind: "other",
        command,
      });
    case "END":
      return await s.ask({ type: "session_end" }, { kind: "other", command });
    case "REGISTER":
      // The password is the rest of the line (it may hold spaces), as text mode's /register.
      return await s.ask({ type: "register", password: text.trim().slice(verb.length).trim() }, {
        kind: "other",
        command,
      });
    case "REPORT":
      return await s.ask({ type: "report", username: arg }, { kind: "other", command: "REPORT" });
    case "ACCEPT":
    case "REJECT":
      return s.ask(
        {
          type: "session_response",
          target_username: arg,
          accepted: verb.toUpperCase() === "ACCEPT",
        },
        { kind: "other", command: verb },
      );
    default:
      s.notice(
        "ChatServ: REPORT nick (three reports mute); SESSION nick, ACCEPT nick, REJECT nick, END " +
          "(a private session); REGISTER password (claim your nick)",
      );
  }
}
