/**
 * The human side of the protocol, output: server frames rendered as readable lines, the prompt,
 * and times as a person reads them. The telnet/netcat mode of the server and the terminal client
 * both use it (through `text.ts`), so a person sees the same output on either.
 * @module
 */

import type { MessageFrame, Mode, ServerFrame } from "./frames.ts";

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
      // A guest is told what that means, and how to claim the name, in the welcome notice after.
      return `* Logged in as ${f.username}${f.admin ? " (admin)" : ""} (${
        f.registered ? "registered" : "guest"
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
        `* Rooms: ${f.rooms.map((r) => "#" + r).join(", ")}. ${f.online_users} ${
          f.online_users === 1 ? "user" : "users"
        } online.`,
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
