/**
 * Arrival and departure notices ("alice joined the chat", "alice left the chat"; IRC's JOIN on
 * return and QUIT) go to everyone online. A client connecting and disconnecting in a loop put two
 * lines a cycle on every screen; so each user's notices come from an allowance, as joins and
 * leaves of rooms do: PRESENCE_BURST at once (reconnects after network blips stay told at once),
 * then one every PRESENCE_REFILL_MS. A change past the allowance is told when the allowance comes
 * back, as it then stands (nothing, if the user is back where the others last heard).
 * @module
 */

import { type Allowance, type Left, tokensAt } from "./allowance.ts";
import type { Core } from "./core.ts";
import type { UserState } from "./state.ts";

/** Notices a user's arrivals and departures may give at once. */
export const PRESENCE_BURST = 6;
/** How fast the allowance comes back. */
export const PRESENCE_REFILL_MS = 10_000;
const PRESENCE: Allowance = { burst: PRESENCE_BURST, refillMs: PRESENCE_REFILL_MS };

/** A user's allowance, and what the others were last told. */
export interface PresenceTold extends Left {
  /** Told online (true) or offline (false). */
  online: boolean;
  /** A change waits for the allowance. */
  pending: boolean;
  /** What the user said as they left, for a departure told late. */
  farewell?: string | undefined;
}

/** Tells everyone that `u` arrived or left, now or when the allowance comes back. */
export function noticePresence(
  core: Core,
  u: UserState,
  online: boolean,
  farewell?: string,
): void {
  const now = core.clock.now();
  const s = core.presenceNotices.get(u);
  const tokens = tokensAt(PRESENCE, s, now);
  if (tokens < 1) {
    core.presenceNotices.set(u, { tokens, at: now, online: s!.online, pending: true, farewell });
    return;
  }
  publishPresence(core, u, online, farewell);
  core.presenceNotices.set(u, { tokens: tokens - 1, at: now, online, pending: false });
}

/** Tells the changes that waited, as they stand; forgets allowances back in full (housekeeping). */
export function flushPresenceNotices(core: Core): void {
  const now = core.clock.now();
  for (const [u, s] of core.presenceNotices) {
    const tokens = tokensAt(PRESENCE, s, now);
    if (s.pending && tokens >= 1) {
      const online = u.conns.size > 0 || core.presence.elsewhere(u.record.name);
      if (online === s.online) {
        core.presenceNotices.set(u, { ...s, tokens, at: now, pending: false });
      } else {
        publishPresence(core, u, online, s.farewell);
        core.presenceNotices.set(u, { tokens: tokens - 1, at: now, online, pending: false });
      }
    } else if (!s.pending && tokens >= PRESENCE_BURST) core.presenceNotices.delete(u);
  }
}

function publishPresence(core: Core, u: UserState, online: boolean, farewell?: string): void {
  const name = u.record.name;
  core.publish({
    kind: "everyone",
    frame: online
      ? { ...core.system(`${name} joined the chat`), event: "online", username: name }
      : {
        ...core.system(`${name} left the chat${farewell ? ` (${farewell})` : ""}`),
        event: "offline",
        username: name,
        ...(farewell ? { reason: farewell } : {}),
      },
    except: name,
  });
}
