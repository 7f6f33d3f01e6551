/**
 * The console's state and the pure reducer over server frames: `reduce(state, frame)` returns
 * the next state and the follow-up requests to send, and sends nothing itself.
 * @module
 */

import type {
  AuditEntry,
  ClientEntry,
  ClientFrame,
  ConnectionEntry,
  LogEntry,
  MessageFrame,
  RoomEntry,
  ScheduledEntry,
  ServerFrame,
  UserEntry,
} from "../protocol/frames.ts";

/** The server's welcome: who we are. */
export type Welcome = Extract<ServerFrame, { type: "welcome" }>;
type Stats = Extract<ServerFrame, { type: "stats" }>;

/** Everything the console shows, kept in one object so every frame is one small update. */
export interface State {
  me: Welcome | null;
  connected: boolean;
  chat: string;
  messages: Record<string, MessageFrame[]>;
  hasMore: Record<string, boolean>;
  unread: Record<string, number>;
  rooms: RoomEntry[];
  users: UserEntry[];
  contacts: Array<{ username: string; online: boolean }>;
  scheduled: ScheduledEntry[];
  sessionFrom: string[];
  invites: Array<{ room: string; from: string }>;
  requests: Array<{ room: string; username: string }>;
  links: Array<{ room: string; token: string }>;
  notices: string[];
  errors: string[];
  // Admin.
  stats: Stats | null;
  connections: ConnectionEntry[];
  clients: ClientEntry[];
  reports: Array<{ username: string; reporters: string[]; muted_until: string | null }>;
  audit: AuditEntry[];
  /** Whether older audit entries than the page shown exist. */
  auditMore: boolean;
  log: LogEntry[];
}

/** The state before the first frame. */
export const initial: State = {
  me: null,
  connected: false,
  chat: "general",
  messages: {},
  hasMore: {},
  unread: {},
  rooms: [],
  users: [],
  contacts: [],
  scheduled: [],
  sessionFrom: [],
  invites: [],
  requests: [],
  links: [],
  notices: [],
  errors: [],
  stats: null,
  connections: [],
  clients: [],
  reports: [],
  audit: [],
  auditMore: false,
  log: [],
};

/** The chat a message belongs to, as this user names it. */
/** A user's entry with their away words set, or cleared when there are none. */
function withAway(u: UserEntry, away: string | undefined): UserEntry {
  const { away: _, ...rest } = u;
  return away === undefined ? rest : { ...rest, away };
}

function chatOf(m: MessageFrame, me: string): string {
  if (m.type === "message") return m.room;
  return "@" + (m.from_username === me ? m.to_username : m.from_username);
}

/** Merges messages into a chat's list by seq, without duplicates. */
export function merge(list: MessageFrame[] = [], add: MessageFrame[]): MessageFrame[] {
  const bySeq = new Map(list.map((m) => [m.seq, m]));
  for (const m of add) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The next state after a frame, and what to ask the server for because of it. */
export interface Step {
  state: State;
  requests: ClientFrame[];
}

/** What a frame changes, and what it makes the console ask for next. */
export function reduce(s: State, f: ServerFrame): Step {
  const next = (change: Partial<State>, requests: ClientFrame[] = []): Step => ({
    state: { ...s, ...change },
    requests,
  });
  switch (f.type) {
    case "welcome":
      return next({ me: f }, [
        { type: "rooms" },
        { type: "users" },
        { type: "contacts" },
        { type: "scheduled" },
        { type: "unread_counts" },
        ...(f.admin ? [{ type: "stats" } as const, { type: "log_subscribe" } as const] : []),
      ]);
    case "message":
    case "private": {
      const chat = chatOf(f, s.me?.username ?? "");
      return next({
        messages: { ...s.messages, [chat]: merge(s.messages[chat], [f]) },
        unread: chat === s.chat ? s.unread : { ...s.unread, [chat]: (s.unread[chat] ?? 0) + 1 },
      });
    }
    case "history":
      return next({
        messages: { ...s.messages, [f.chat]: merge(s.messages[f.chat], f.messages) },
        hasMore: f.reason === "unread" ? s.hasMore : { ...s.hasMore, [f.chat]: f.has_more },
        unread: f.reason === "unread" && f.chat !== s.chat
          ? { ...s.unread, [f.chat]: (s.unread[f.chat] ?? 0) + f.messages.length }
          : s.unread,
      });
    case "message_deleted":
      return next({
        messages: {
          ...s.messages,
          [f.chat]: (s.messages[f.chat] ?? []).filter((m) => m.id !== f.id),
        },
      });
    case "unread_counts":
      return next({
        unread: Object.fromEntries(
          f.chats.filter((c) => c.chat !== s.chat).map((c) => [c.chat, c.unread]),
        ),
      });
    case "rooms_list":
      return next({ rooms: f.rooms });
    case "users_list":
      return next({ users: f.all });
    case "contacts_list":
      return next({ contacts: f.contacts });
    case "scheduled_list":
      return next({ scheduled: f.entries });
    case "scheduled":
      return next({
        scheduled: [...s.scheduled, f.entry].sort((a, b) => a.at.localeCompare(b.at)),
      });
    case "scheduled_cancelled":
      return next({ scheduled: s.scheduled.filter((e) => e.id !== f.id) });
    case "system": {
      const requests: ClientFrame[] = [];
      if (f.event === "online" || f.event === "offline") requests.push({ type: "users" });
      if (f.event === "joined" || f.event === "left") requests.push({ type: "rooms" });
      const users = f.event === "away"
        ? s.users.map((u) => u.username === f.username ? withAway(u, f.away) : u)
        : s.users;
      return next({ notices: [...s.notices.slice(-4), f.message], users }, requests);
    }
    case "joined":
      return next({ chat: f.room }, [{ type: "rooms" }]);
    case "left":
      return next({ chat: s.chat === f.room ? "general" : s.chat }, [{ type: "rooms" }]);
    case "session_request":
      return next({ sessionFrom: [...new Set([...s.sessionFrom, f.from_username])] });
    case "session_accepted":
    case "session_rejected":
    case "session_ended":
      return next({ notices: [...s.notices.slice(-4), f.message] });
    case "invite":
      return next({
        invites: [...s.invites.filter((i) => i.room !== f.room), {
          room: f.room,
          from: f.from_username,
        }],
      });
    case "join_request":
      return next({ requests: [...s.requests, { room: f.room, username: f.username }] });
    case "link":
      return next({ links: [...s.links, { room: f.room, token: f.token }] });
    case "error":
      return next({ errors: [...s.errors.slice(-2), f.message] });
    case "bye":
      return next({ errors: [...s.errors.slice(-2), f.reason] });
    case "stats":
      return next({ stats: f });
    case "connections_list":
      return next({ connections: f.connections });
    case "clients_list":
      return next({ clients: f.clients });
    case "reports_list":
      return next({ reports: f.reports });
    case "audit_log":
      return next({ audit: f.entries, auditMore: f.has_more });
    case "log":
      return next({ log: [...s.log, ...f.entries].slice(-200) });
    default:
      return { state: s, requests: [] };
  }
}
