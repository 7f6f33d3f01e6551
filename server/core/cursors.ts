/**
 * Read cursors: the last message of each chat a user has been shown. Kept in memory while the
 * user is online or busy, saved in batches by `Hub.housekeeping`, forgotten after a minute idle.
 * @module
 */

import type { Core } from "./core.ts";
import type { Cursor } from "../store/store.ts";
import type { UserState } from "./state.ts";

/** How long an offline user's read cursors stay cached after their last use. */
const CURSOR_IDLE_MS = 60_000;

/** Marks a user busy: their cursor cache is not evicted while a command of theirs runs. */
export function use(core: Core, u: UserState): void {
  u.busy++;
  u.lastUsed = core.clock.now();
}

/** Ends what `use` began. */
export function release(core: Core, u: UserState): void {
  u.busy--;
  u.lastUsed = core.clock.now();
}

/** Runs `work` with the user marked busy. */
export async function whileBusy<T>(core: Core, u: UserState, work: () => Promise<T>): Promise<T> {
  use(core, u);
  try {
    return await work();
  } finally {
    release(core, u);
  }
}

/** Loads a user's cursors; call only while the user is marked busy. */
export async function loadCursors(core: Core, u: UserState): Promise<void> {
  if (u.cursors) return;
  const cursors = await core.store.getCursors(u.record.name);
  // Another command of the same user may have loaded them meanwhile: keep that copy.
  if (!u.cursors) {
    u.cursors = cursors;
    core.cursorCache.add(u);
  }
}

/** Moves a user's cursor in a chat forward to `seq` (never back). */
export function advance(core: Core, u: UserState, chat: string, seq: number): void {
  if (!u.cursors) return;
  if ((u.cursors.get(chat) ?? 0) >= seq) return;
  u.cursors.set(chat, seq);
  u.dirty.add(chat);
  core.dirtyUsers.add(u);
}

/**
 * Read cursors saved per housekeeping tick (once a second), at most, and how many go into one
 * write. Messages commit in the same group commit as cursor saves, in order: 10,000 readers in
 * 1,000 rooms move 10,000 cursors a second, and saving them all at once put ~11 full batches (900
 * mutations each) ahead of the next message: its p99 went from 22-44 ms to 218-251 ms (1,000
 * messages/s, bench section 6). Saved a share a tick, oldest changes first, in small writes one
 * after another, no message waits behind more than one small part.
 */
export const CURSOR_SAVES_PER_TICK = 1000;
const CURSOR_SAVE_PART = 100;

/**
 * Saves changed cursors, oldest changes first. With a `limit` (housekeeping), up to about that
 * many, in parts of CURSOR_SAVE_PART written one after another; without (shutdown), all at once.
 */
export async function flushCursors(core: Core, limit?: number): Promise<void> {
  if (limit === undefined) return await flushCursorsOf(core, [...core.dirtyUsers]);
  const users: UserState[] = [];
  let count = 0;
  // A Set keeps insertion order, and a user stays where it was until saved: oldest first.
  for (const u of core.dirtyUsers) {
    if (count >= limit) break;
    users.push(u);
    count += u.dirty.size;
  }
  const entries = takeDirty(core, users);
  for (let i = 0; i < entries.length; i += CURSOR_SAVE_PART) {
    await core.store.saveCursors(entries.slice(i, i + CURSOR_SAVE_PART));
  }
}

/** Saves the changed cursors of some users. */
export async function flushCursorsOf(core: Core, users: UserState[]): Promise<void> {
  await core.store.saveCursors(takeDirty(core, users));
}

/** The changed cursors of some users, which no longer count as changed. */
function takeDirty(core: Core, users: UserState[]): Cursor[] {
  const entries: Cursor[] = [];
  for (const u of users) {
    for (const chat of u.dirty) {
      const seq = u.cursors?.get(chat);
      if (seq !== undefined) entries.push({ user: u.record.name, chat, seq });
    }
    u.dirty.clear();
    core.dirtyUsers.delete(u);
  }
  return entries;
}

/** Forgets the cursors of users idle for a while with no connection (reloaded on next use). */
export function evictIdleCursors(core: Core): void {
  const now = core.clock.now();
  for (const u of core.cursorCache) {
    if (
      u.conns.size === 0 && u.busy === 0 && u.dirty.size === 0 &&
      now - u.lastUsed > CURSOR_IDLE_MS
    ) {
      u.cursors = null;
      core.cursorCache.delete(u);
    }
  }
}
