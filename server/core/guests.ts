/**
 * Idle guests are forgotten. Anyone can make a guest by saying a new name, and each one used to
 * stay for good: ~2 KB of memory and ~1 KB of store per name (measured: 25,000 names from one
 * address over loopback in 12 s, 75 → 130 MB of settled RSS and 23 MB of KV file), loaded again
 * at every start. A guest who has been gone for the guest grace period (after which its name
 * starts afresh anyway: the next one to take it does not see its private messages) and left
 * nothing anyone else could see is removed from memory and from the store. What they said in
 * rooms stays in the history, under their name. Kept: registered users; guests with rooms other
 * than `general`, contacts, invites, a session or requests, a request to join a group, a mute, a
 * ban or reports against them (a sanction must outlast the name's owner stepping out), or
 * scheduled messages to send.
 * @module
 */

import { skeleton } from "../../protocol/names.ts";
import type { Core } from "./core.ts";
import { GENERAL, type UserState } from "./state.ts";

/** At most this many guests are forgotten per housekeeping tick (their rows in one write). */
export const GUESTS_FORGOTTEN_PER_TICK = 2_000;
/** At most this many idle guests are looked at per tick, forgotten or not. */
const GUESTS_EXAMINED_PER_TICK = 10_000;

/** Queues a guest who just went offline (or was loaded offline) to be forgotten once idle. */
export function queueIdleGuest(core: Core, u: UserState): void {
  if (u.record.passwordHash !== null) return;
  // A Set keeps insertion order: moved to the end, the queue stays ordered by going offline.
  core.idleGuests.delete(u);
  core.idleGuests.add(u);
}

/** When the user was last seen (went offline), or made, if never. */
export function goneSince(u: UserState): number {
  return u.record.lastSeen ?? u.record.createdAt;
}

/** When the guest was last seen or last did anything (a REST call counts). */
function idleSince(u: UserState): number {
  return Math.max(goneSince(u), u.lastUsed);
}

/** Whether forgetting the guest now would lose nothing anyone could see or rely on. */
function leftNothing(core: Core, u: UserState, now: number, asking: Set<string>): boolean {
  const r = u.record;
  return r.passwordHash === null && !r.admin && u.conns.size === 0 && u.busy === 0 &&
    !core.presence.elsewhere(r.name) &&
    [...u.chats].every((chat) => chat === GENERAL) &&
    u.contacts.size === 0 && u.invites.size === 0 && u.session === null &&
    u.requestsIn.size === 0 && u.requestsOut.size === 0 && u.dirty.size === 0 &&
    (r.mutedUntil ?? 0) <= now && (r.bannedUntil ?? 0) <= now && !core.reports.has(r.name) &&
    !asking.has(r.name);
}

/**
 * Forgets guests idle past the grace period who left nothing behind, oldest first, up to
 * GUESTS_FORGOTTEN_PER_TICK; returns how many. Guests who did leave something are dropped
 * from the queue (they come back to it when they next go offline).
 */
export async function forgetIdleGuests(core: Core): Promise<number> {
  const now = core.clock.now();
  const cutoff = now - core.config.guestGraceMs;
  const chosen: UserState[] = [];
  const usedLater: UserState[] = [];
  let examined = 0;
  // Who asked to join a private group through a link: the owner has yet to decide.
  let asking: Set<string> | null = null;
  for (const u of core.idleGuests) {
    if (chosen.length >= GUESTS_FORGOTTEN_PER_TICK || examined++ >= GUESTS_EXAMINED_PER_TICK) {
      break;
    }
    // Back online, or registered meanwhile: queued again at their next going offline.
    if (u.conns.size > 0 || u.record.passwordHash !== null) {
      core.idleGuests.delete(u);
      continue;
    }
    // The queue is in order of going offline: everyone after this one went later.
    if (goneSince(u) > cutoff) break;
    if (idleSince(u) > cutoff) {
      usedLater.push(u);
      continue;
    }
    core.idleGuests.delete(u);
    asking ??= askingToJoin(core);
    if (leftNothing(core, u, now, asking)) chosen.push(u);
  }
  for (const u of usedLater) queueIdleGuest(core, u);
  if (chosen.length === 0) return 0;
  // A scheduled message is sent as its author: they stay until it has gone.
  const scheduled = await Promise.all(
    chosen.map((u) => core.store.listScheduledOf(u.record.name)),
  );
  const gone = chosen.filter((u, i) =>
    scheduled[i]!.length === 0 && u.conns.size === 0 && u.busy === 0 &&
    core.users.get(u.record.name) === u
  );
  for (const u of gone) forgetHere(core, u);
  const names = gone.map((u) => u.record.name);
  const deleting = core.store.deleteUsers(names);
  // A guest taking one of these names meanwhile is created after the delete, not before it.
  for (const name of names) core.forgetting.set(skeleton(name), deleting);
  try {
    await deleting;
  } finally {
    for (const name of names) {
      if (core.forgetting.get(skeleton(name)) === deleting) core.forgetting.delete(skeleton(name));
    }
  }
  core.stats.guestsForgotten += gone.length;
  return gone.length;
}

function askingToJoin(core: Core): Set<string> {
  const names = new Set<string>();
  for (const room of core.rooms.values()) for (const name of room.requests.keys()) names.add(name);
  return names;
}

/** Removes a user from this process's memory (the store is the caller's). */
export function forgetHere(core: Core, u: UserState): void {
  const name = u.record.name;
  core.users.delete(name);
  if (core.lowerNames.get(skeleton(name)) === name) core.lowerNames.delete(skeleton(name));
  for (const chat of u.chats) {
    const room = core.rooms.get(chat);
    room?.members.delete(u);
    room?.online.delete(u);
  }
  core.idleGuests.delete(u);
  core.cursorCache.delete(u);
  core.dirtyUsers.delete(u);
  core.awayNotices.delete(u);
  core.presenceNotices.delete(u);
  core.roomMoves.delete(u);
}
