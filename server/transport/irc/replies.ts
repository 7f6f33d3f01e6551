/**
 * What the chat's answers look like in IRC: the numerics of a welcome, NAMES and WHO, LIST and
 * WHOIS, and the numeric (or FAIL line, or notice) a refused command gets. Pure functions of the
 * answer: `connection.ts` sends what they return.
 * @module
 */

import { MAX_NAME_CHARS } from "../../../protocol/limits.ts";
import type { ServerFrame } from "../../../protocol/frames.ts";
import type { Asked } from "./commands.ts";

/** A numeric reply: its code and text (the client's nick is put before the text on the wire). */
export type Numeric = [code: string, text: string];

/** RPL_WELCOME to RPL_ISUPPORT, then the message of the day (or ERR_NOMOTD). */
export function welcomeNumerics(
  server: string,
  mask: string,
  motd: string[] | undefined,
): Numeric[] {
  const out: Numeric[] = [
    ["001", `:Welcome to the chat, ${mask}`],
    ["002", `:Your host is ${server}, running chat`],
    ["003", `:This server keeps history: /join a channel to read what you missed`],
    ["004", `${server} chat i nt`],
    [
      "005",
      `CHANTYPES=# CHANNELLEN=64 NICKLEN=${MAX_NAME_CHARS} CASEMAPPING=ascii PREFIX= ` +
      `CHANMODES=,,,nt NETWORK=chat CHATHISTORY=100 MSGREFTYPES=msgid ` +
      `:are supported by this server`,
    ],
  ];
  return [...out, ...motdNumerics(server, motd)];
}

/** The message of the day (375/372/376), or ERR_NOMOTD. */
export function motdNumerics(server: string, motd: string[] | undefined): Numeric[] {
  if (!motd?.length) return [["422", ":MOTD File is missing"]];
  return [
    ["375", `:- ${server} message of the day`],
    ...motd.map((l): Numeric => ["372", `:- ${l}`]),
    ["376", ":End of /MOTD command"],
  ];
}

/**
 * LUSERS: the chat's online users (every wire, every node) as this one server's clients. All are
 * invisible (+i, as MODE says); 265/266 carry no counts of their own, which RFC 2812 allows.
 */
export function lusersNumerics(online: number): Numeric[] {
  return [
    ["251", `:There are 0 users and ${online} invisible on 1 servers`],
    ["255", `:I have ${online} clients and 0 servers`],
    ["265", `:Current local users: ${online}`],
    ["266", `:Current global users: ${online}`],
  ];
}

/**
 * ISON (303) or USERHOST (302): those of the users found who are online, as the chat spells them;
 * USERHOST marks each here (`+`) or away (`-`).
 */
export function onlineNumeric(
  reply: "ison" | "userhost",
  users: Array<{ username: string; online: boolean; away?: string }>,
  server: string,
): Numeric {
  const found = users.filter((u) => u.online);
  if (reply === "ison") return ["303", `:${found.map((u) => u.username).join(" ")}`];
  const hosts = found.map((u) =>
    `${u.username}=${u.away === undefined ? "+" : "-"}${u.username}@${server}`
  );
  return ["302", `:${hosts.join(" ")}`];
}

/** WHO for one nick: a 352 line if they are online, then the end. */
export function whoUserNumerics(
  server: string,
  asked: string,
  user: { username: string; online: boolean; away?: string } | undefined,
): Numeric[] {
  const end: Numeric = ["315", `${asked} :End of /WHO list`];
  if (!user?.online) return [end];
  const n = user.username;
  const here = user.away === undefined ? "H" : "G";
  return [["352", `* ${n} ${server} ${server} ${n} ${here} :0 ${n}`], end];
}

/**
 * A channel's online members: WHO lines when WHO asked (`H`ere, or `G`one while away), else
 * NAMES in lines of 20.
 */
export function memberNumerics(
  server: string,
  room: string,
  online: Array<{ username: string; away?: string }>,
  who: boolean,
): Numeric[] {
  const channel = `#${room}`;
  if (who) {
    return [
      ...online.map(({ username: n, away }): Numeric => [
        "352",
        `${channel} ${n} ${server} ${server} ${n} ${away === undefined ? "H" : "G"} :0 ${n}`,
      ]),
      ["315", `${channel} :End of /WHO list`],
    ];
  }
  const names = online.map((m) => m.username);
  const out: Numeric[] = [];
  for (let i = 0; i < names.length; i += 20) {
    out.push(["353", `= ${channel} :${names.slice(i, i + 20).join(" ")}`]);
  }
  return [...out, ["366", `${channel} :End of /NAMES list`]];
}

/** LIST: every room with its online and member counts. */
export function listNumerics(
  rooms: Array<{ name: string; online: number; members: number }>,
): Numeric[] {
  return [
    ["321", "Channel :Users  Name"],
    ...rooms.map((r): Numeric => [
      "322",
      `#${r.name} ${r.online} :${r.members} ${r.members === 1 ? "member" : "members"}`,
    ]),
    ["323", ":End of /LIST"],
  ];
}

/**
 * WHOIS: the user if there is one (311, 312, 330 for a registered account, 301 while away or
 * offline), else ERR_NOSUCHNICK.
 */
export function whoisNumerics(
  server: string,
  asked: string,
  user: { username: string; online: boolean; registered: boolean; away?: string } | undefined,
): Numeric[] {
  if (!user) return [["401", `${asked} :No such nick`], ["318", `${asked} :End of /WHOIS list`]];
  const n = user.username;
  const away = user.away ?? (user.online ? undefined : "offline (messages wait for them)");
  return [
    ["311", `${n} ${n} ${server} * :${n}`],
    ["312", `${n} ${server} :chat`],
    ...(user.registered ? [["330", `${n} ${n} :is logged in as`] as Numeric] : []),
    ...(away === undefined ? [] : [["301", `${n} :${away}`] as Numeric]),
    ["318", `${asked} :End of /WHOIS list`],
  ];
}

/**
 * A frame that answers a query this client asked (`asked`), as numerics: NAMES and WHO (members),
 * LIST, WHOIS, WHO nick, ISON and USERHOST (users), LUSERS (status), AWAY and INVITE (their
 * system replies); null for any other frame.
 */
export function queryNumerics(
  server: string,
  f: ServerFrame,
  asked: Asked | undefined,
): Numeric[] | null {
  switch (f.type) {
    case "members":
      if (asked?.kind === "channel_info") return channelInfoNumerics(asked.channel, asked.reply);
      return memberNumerics(
        server,
        f.room,
        f.members.filter((m) => m.online),
        asked?.kind === "who",
      );
    case "rooms_list": {
      const only = asked?.kind === "list" ? asked.only : undefined;
      return listNumerics(only ? f.rooms.filter((r) => only.includes(r.name)) : f.rooms);
    }
    case "users_list":
      if (asked?.kind === "online") {
        return [onlineNumeric(asked.reply, f.all, server)];
      }
      if (asked?.kind === "who_user") return whoUserNumerics(server, asked.nick, f.all[0]);
      return whoisNumerics(
        server,
        asked?.kind === "whois" ? asked.nick : f.all[0]?.username ?? "*",
        f.all[0],
      );
    case "status":
      return asked?.kind === "lusers" ? lusersNumerics(f.online_users) : null;
    case "system":
      if (asked?.kind === "away") {
        return [
          asked.away
            ? ["306", ":You have been marked as being away"]
            : ["305", ":You are no longer marked as being away"],
        ];
      }
      if (asked?.kind === "invite") {
        return [["341", `${asked.nick} #${asked.channel.replace(/^#/, "")}`]];
      }
      return null;
    default:
      return null;
  }
}

/** TOPIC and MODE of a channel that exists: no topics are kept; the modes everyone has. */
export function channelInfoNumerics(channel: string, reply: "topic" | "mode"): Numeric[] {
  return [reply === "topic" ? ["331", `${channel} :No topic is set`] : ["324", `${channel} +nt`]];
}

/** How a registered client is told a command was refused. */
export type Refused = { numeric: Numeric } | { line: string } | { notice: string } | null;

/**
 * A refusal (an `error` frame) as IRC, by what was asked: 401/403/404 for a message, FAIL for
 * CHATHISTORY, 403/442/401/481 for the rest, a notice otherwise; nothing for a NOTICE (RFC 2812:
 * a NOTICE is never answered).
 */
export function refusal(
  server: string,
  code: string,
  said: string,
  asked: Asked | undefined,
): Refused {
  const message = ircHints(said);
  const target = asked && "channel" in asked
    ? asked.channel
    : asked && "target" in asked
    ? asked.target
    : "*";
  if (asked?.kind === "send") {
    if (asked.notice) return null;
    const n = code === "no_such_user" ? "401" : code === "no_such_room" ? "403" : "404";
    return { numeric: [n, `${target} :${message}`] };
  }
  // NAMES and WHO of a channel that does not exist (or that one may not see) are just their end.
  if (asked?.kind === "names") return { numeric: ["366", `${asked.channel} :End of /NAMES list`] };
  if (asked?.kind === "who") return { numeric: ["315", `${asked.channel} :End of /WHO list`] };
  if (asked?.kind === "history") {
    const sub = asked.sub || "*";
    const fail = code === "no_such_message" ? "INVALID_MSGREFID" : "INVALID_TARGET";
    return { line: `:${server} FAIL CHATHISTORY ${fail} ${sub} ${asked.target} :${message}` };
  }
  if (asked?.kind === "kick") {
    if (code === "no_such_user") return { numeric: ["401", `${asked.nick} :${message}`] };
    if (code === "forbidden") {
      // The core names its own command ("kick"): say the one the IRC user typed.
      const said = message.replace('"kick"', asked.channel ? "KICK" : "KILL");
      return {
        numeric: asked.channel ? ["482", `${asked.channel} :${said}`] : ["481", `:${said}`],
      };
    }
  }
  if (code === "no_such_room") return { numeric: ["403", `${target} :${message}`] };
  if (code === "bad_name" && asked && "channel" in asked) {
    return { numeric: ["403", `${target} :${message}`] };
  }
  if (code === "not_member") return { numeric: ["442", `${target} :${message}`] };
  if (code === "no_such_user") return { numeric: ["401", `${target} :${message}`] };
  if (code === "forbidden" && asked?.kind === "other") return { numeric: ["481", `:${message}`] };
  if (code === "forbidden" && asked?.kind === "invite") {
    return { numeric: ["482", `${target} :${message}`] };
  }
  return { notice: message };
}

/**
 * The core's hints name the commands people type in text mode; an IRC client is told its own
 * (`/msg`, `/part`, `/list`, `/names`: what irssi and WeeChat take) or ChatServ's.
 */
export function ircHints(message: string): string {
  return message
    .replace(/\/users (lists|still)/g, "/names #general $1")
    .replace(/\/private (\S+) TEXT/g, "/msg $1 TEXT")
    .replace(/\/leave (one|it)\b/g, "/part $1")
    .replace(/\/rooms lists/g, "/list lists")
    .replace(/\/exit (it|ends it)\b/g, "/msg ChatServ END $1")
    .replace(/\/register( PASSWORD)?/g, "/msg ChatServ REGISTER PASSWORD");
}

/**
 * A `system` frame on IRC: presence and membership as the lines IRC has for them (JOIN, PART,
 * QUIT; AWAY for clients that asked for away-notify; a user back online JOINs each channel
 * `shared` names, as their QUIT took them out of every one), or null: say its text as a notice.
 */
export function systemLines(
  f: Extract<ServerFrame, { type: "system" }>,
  mask: (nick: string) => string,
  options: { awayNotify: boolean; shared: (who: string) => string[] },
): string[] | null {
  const who = f.username;
  // Away: a client that did not ask for away-notify learns it from WHO, WHOIS and 301.
  if (f.event === "away") {
    if (!who || !options.awayNotify) return [];
    return [`:${mask(who)} AWAY${f.away === undefined ? "" : ` :${f.away}`}`];
  }
  if (!who) return null;
  switch (f.event) {
    case "joined":
      return f.room ? [`:${mask(who)} JOIN #${f.room}`] : null;
    case "left":
      return f.room ? [`:${mask(who)} PART #${f.room}${f.reason ? ` :${f.reason}` : ""}`] : null;
    case "offline":
      return [`:${mask(who)} QUIT :${f.reason ?? "left the chat"}`];
    case "online":
      return options.shared(who).map((room) => `:${mask(who)} JOIN #${room}`);
    default:
      return null;
  }
}
