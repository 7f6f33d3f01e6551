/**
 * Away: a user says they are not at the keyboard, with a few words ("lunch, back at 2"). Others
 * see it in the user list and when they write to them privately (their ack says so); it lasts
 * until the user says they are back or their last connection closes. Kept in memory on every
 * node (a cluster's nodes are told), not in the store: it is presence, not history.
 * @module
 */

import { exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import type { UserState } from "./state.ts";

/*
 * Others are told of a user's away changes at most once per `config.awayNoticeMs` (10 s by
 * default, `--away-notices`). Every change reaches everyone online, so a client toggling away in
 * a loop would put a notice on every screen per toggle; a change inside the window is told when
 * it ends (housekeeping), as it then stands.
 */

/**
 * `away`: with a message, marks the user away; without one, back. Every device is told, and
 * so is everyone online (as presence notices are, and not in chats of thousands: see
 * `LocalDelivery`), so user lists stay right without asking again (IRC: `away-notify`).
 */
export function awayCommand(call: UserCall, frame: { message?: string }) {
  const { core, user: u } = call;
  if (setAway(core, u, frame.message ?? null)) noticeAway(core, u);
  const said = core.system(
    u.away === null
      ? "You are back: others no longer see you as away"
      : `You are away: others see "${u.away}" (/away alone says you are back)`,
  );
  core.publish({ kind: "user", user: u.record.name, frame: said, ...exceptAsker(call) });
  return said;
}

/** Tells everyone of the user's away now, or when the window since the last notice ends. */
function noticeAway(core: Core, u: UserState): void {
  const now = core.clock.now();
  const last = core.awayNotices.get(u);
  if (last && now - last.at < core.config.awayNoticeMs) {
    last.pending = true;
    return;
  }
  publishAway(core, u);
  core.awayNotices.set(u, { told: u.away, at: now, pending: false });
}

/** Tells what changed inside a notice window once it is over; forgets windows that passed. */
export function flushAwayNotices(core: Core): void {
  const now = core.clock.now();
  for (const [u, last] of core.awayNotices) {
    if (now - last.at < core.config.awayNoticeMs) continue;
    const online = u.conns.size > 0 || core.presence.elsewhere(u.record.name);
    // Back to what was told (away and back within the window), or gone: nothing to tell.
    if (last.pending && online && u.away !== last.told) {
      publishAway(core, u);
      core.awayNotices.set(u, { told: u.away, at: now, pending: false });
    } else core.awayNotices.delete(u);
  }
}

function publishAway(core: Core, u: UserState): void {
  const name = u.record.name;
  core.publish({
    kind: "everyone",
    frame: {
      ...core.system(u.away === null ? `${name} is back` : `${name} is away: ${u.away}`),
      event: "away",
      username: name,
      ...(u.away === null ? {} : { away: u.away }),
    },
    except: name,
  });
}

/** Sets or clears a user's away message here and on the other nodes; returns whether it changed. */
export function setAway(core: Core, u: UserState, message: string | null): boolean {
  if (u.away === message) return false;
  u.away = message;
  core.publish({ kind: "shared", change: { type: "away", user: u.record.name, message } });
  return true;
}
