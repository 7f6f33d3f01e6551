/**
 * Read cursors: the last message of each chat a user has been shown. Kept in memory while the
 * user is online or busy, saved in batches by `Hub.housekeeping`, forgotten after a minute idle.
 * @module
 */

import type { Core } from "./core.ts";
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

/** Saves every changed cursor. */
export async function flushCursors(core: Core): Promise<void> {
  const users = [...core.dirtyUsers];
  core.dirtyUsers.clear();
  await flushCursorsOf(core, users);
}

/** Saves the changed cursors of some users. */
export async function flushCursorsOf(core: Core, users: UserState[]): Promise<void> {
  const entries = [];
  for (const u of users) {
    for (const chat of u.dirty) {
      const seq = u.cursors?.get(chat);
      if (seq !== undefined) entries.push({ user: u.record.name, chat, seq });
    }
    u.dirty.clear();
    core.dirtyUsers.delete(u);
  }
  await core.store.saveCursors(entries);
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
