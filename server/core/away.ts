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

/**
 * `away`: with a message, marks the user away; without one, back. Every device is told, and
 * so is everyone online (as presence notices are, and not in chats of thousands: see
 * `LocalDelivery`), so user lists stay right without asking again (IRC: `away-notify`).
 */
export function awayCommand(call: UserCall, frame: { message?: string }) {
  const { core, user: u } = call;
  if (setAway(core, u, frame.message ?? null)) {
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
  const said = core.system(
    u.away === null
      ? "You are back: others no longer see you as away"
      : `You are away: others see "${u.away}" (/away alone says you are back)`,
  );
  core.publish({ kind: "user", user: u.record.name, frame: said, ...exceptAsker(call) });
  return said;
}

/** Sets or clears a user's away message here and on the other nodes; returns whether it changed. */
export function setAway(core: Core, u: UserState, message: string | null): boolean {
  if (u.away === message) return false;
  u.away = message;
  core.publish({ kind: "shared", change: { type: "away", user: u.record.name, message } });
  return true;
}
