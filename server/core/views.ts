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
export function userEntry(u: UserState): UserEntry {
  return {
    username: u.record.name,
    online: u.conns.size > 0,
    registered: u.record.passwordHash !== null,
    connections: u.conns.size,
  };
}

/** `users`: online users first, then the rest, at most 500. */
export function usersCommand(call: UserCall) {
  const { core } = call;
  const all: UserEntry[] = [...core.users.values()]
    .map(userEntry)
    .sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username))
    .slice(0, 500);
  return {
    type: "users_list" as const,
    users: all.filter((e) => e.online).map((e) => e.username),
    all,
    online_users: core.onlineUsers,
    timestamp: core.ts(),
  };
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
    online_users: core.onlineUsers,
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
    online_users: core.onlineUsers,
    connections: core.conns.size,
    by_transport: byTransport,
    messages_total: core.stats.messages,
    messages_last_minute: lastMinute,
    uptime_s: Math.round((core.clock.now() - core.startedAt) / 1000),
    timestamp: core.ts(),
  };
}
