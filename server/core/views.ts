/**
 * Read-only views: a user's status, the users list, counters.
 * @module
 */

import type { ChatSummary, ServerFrame, UserEntry } from "../../protocol/frames.ts";
import type { UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { iso } from "./format.ts";
import { mutedUntil, quotaState } from "./moderation.ts";
import type { UserState } from "./state.ts";

/** How a user appears in lists. */
export function userEntry(core: Core, u: UserState): UserEntry {
  return {
    username: u.record.name,
    online: core.isOnline(u),
    registered: u.record.passwordHash !== null,
    connections: u.conns.size,
    ...(u.away !== null ? { away: u.away } : {}),
  };
}

/** How many users `users` lists when no page is asked for. */
const USERS_FIRST_PAGE = 500;

/**
 * `users`: online users first, then the rest, at most 500; or one user (`username`), or those of a
 * list that exist (`usernames`, up to 100: IRC's ISON, a client's contact list); or a page
 * by name (`after`, `limit`) whose `next` asks for the following one, so every user is reachable.
 */
export function usersCommand(
  call: UserCall,
  frame: { username?: string; usernames?: string[]; after?: string; limit?: number } = {},
): Extract<ServerFrame, { type: "users_list" }> {
  const { core } = call;
  let all: UserEntry[];
  let next: { next: string | null } | Record<string, never> = {};
  if (frame.username !== undefined) {
    const u = core.findUser(frame.username);
    all = u ? [userEntry(core, u)] : [];
  } else if (frame.usernames !== undefined) {
    // Those that exist, once each, in the order asked (IRC's ISON and USERHOST answer so).
    const found = new Set<UserState>();
    for (const name of frame.usernames) {
      const u = core.findUser(name);
      if (u) found.add(u);
    }
    all = [...found].map((u) => userEntry(core, u));
  } else if (frame.after !== undefined || frame.limit !== undefined) {
    const page = pageByName([...core.users.keys()], frame.after, frame.limit);
    all = page.names.map((n) => userEntry(core, core.users.get(n)!));
    next = { next: page.next };
  } else {
    all = [...core.users.values()]
      .map((x) => userEntry(core, x))
      .sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username))
      .slice(0, USERS_FIRST_PAGE);
  }
  return {
    type: "users_list",
    users: all.filter((e) => e.online).map((e) => e.username),
    all,
    online_users: core.onlineCount(),
    timestamp: core.ts(),
    ...next,
  };
}

/** A page of names in code-point order after `after`, and the name to continue after. */
export function pageByName(
  names: string[],
  after: string | undefined,
  limit = 100,
): { names: string[]; next: string | null } {
  const sorted = names.filter((n) => after === undefined || n > after).sort();
  const page = sorted.slice(0, limit);
  return { names: page, next: sorted.length > limit ? page.at(-1)! : null };
}

function chatSummaries(core: Core, u: UserState): ChatSummary[] {
  const out: ChatSummary[] = [];
  for (const chat of u.chats) {
    const unread = Math.max(0, (core.seqs.get(chat) ?? 0) - (u.cursors?.get(chat) ?? 0));
    const room = core.rooms.get(chat);
    if (room) {
      const names = [...room.members].slice(0, 200).map((m) => m.record.name).sort();
      out.push({ chat, kind: "room", members: names, member_count: room.members.size, unread });
    } else {
      const address = core.address(u, chat);
      const names = [u.record.name, address.slice(1)].sort();
      out.push({ chat: address, kind: "private", members: names, member_count: 2, unread });
    }
  }
  return out.sort((a, b) => a.chat.localeCompare(b.chat));
}

/** `status`: who you are, where you are, your chats with unread counts, your quota. */
export function statusCommand(call: UserCall) {
  const { core, user: u } = call;
  const muted = mutedUntil(core, u);
  return {
    type: "status" as const,
    username: u.record.name,
    registered: u.record.passwordHash !== null,
    mode: core.mode(call.view, u),
    rooms: core.roomsOf(u),
    session: u.session?.record.name ?? null,
    admin: u.record.admin,
    muted_until: muted === null ? null : iso(muted),
    quota: quotaState(core, u),
    chats: chatSummaries(core, u),
    connections: u.conns.size,
    online_users: core.onlineCount(),
    timestamp: core.ts(),
  };
}

/** Counters for admins and /metrics. */
export function statsFrame(core: Core): Extract<ServerFrame, { type: "stats" }> {
  const byTransport: Record<string, number> = {};
  for (const c of core.conns.values()) {
    byTransport[c.peer.transport] = (byTransport[c.peer.transport] ?? 0) + 1;
  }
  const nowS = Math.floor(core.clock.now() / 1000);
  let lastMinute = 0;
  for (const [second, count] of core.minute) if (second > nowS - 60) lastMinute += count;
  return {
    type: "stats",
    online_users: core.onlineCount(),
    connections: core.conns.size,
    by_transport: byTransport,
    messages_total: core.stats.messages,
    messages_last_minute: lastMinute,
    uptime_s: Math.round((core.clock.now() - core.startedAt) / 1000),
    timestamp: core.ts(),
  };
}
