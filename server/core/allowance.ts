/**
 * Allowances (token buckets) for things each user may do in bursts but not in loops: joins and
 * leaves of rooms, arrival and departure notices. `burst` at once, one more back every
 * `refillMs`; what a user has left is kept as `{ tokens, at }` only while it is not full.
 * @module
 */

/** How much at once, and how fast it comes back. */
export interface Allowance {
  readonly burst: number;
  readonly refillMs: number;
}

/** What a user had left at a time. */
export interface Left {
  tokens: number;
  at: number;
}

/** What is left at `now`, from what was left before (full when nothing was ever taken). */
export function tokensAt(a: Allowance, left: Left | undefined, now: number): number {
  if (left === undefined) return a.burst;
  return Math.min(a.burst, left.tokens + (now - left.at) / a.refillMs);
}
