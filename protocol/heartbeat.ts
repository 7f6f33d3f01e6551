/**
 * The heartbeat rule, one for every side that keeps one: the server for its TCP peers, the
 * terminal client and the console for the server. A side checks a few times a beat how long the
 * other has been silent; it probes once per beat of silence (at one beat, at two) and takes the
 * other for gone after three.
 * @module
 */

/** How often a side looks, per beat: a dead peer is found within 3¼ beats of its last word. */
export const HEARTBEAT_CHECKS_PER_BEAT = 4;
/** The `ref` of a client's own heartbeat pings, so their pongs are not shown to anyone. */
export const HEARTBEAT_REF = "heartbeat";

/**
 * What a check finds after `silenceMs` without a word from the other side, `probesSent` probes
 * having gone out since it last spoke: whether it is gone, and whether a probe is due.
 */
export function heartbeatDue(
  silenceMs: number,
  beatMs: number,
  probesSent: number,
): { gone: boolean; probe: boolean } {
  return {
    gone: silenceMs >= 3 * beatMs,
    probe: silenceMs >= beatMs && probesSent < Math.floor(silenceMs / beatMs),
  };
}
