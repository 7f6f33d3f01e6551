/**
 * One interval timer per period, shared by every connection that checks something on it (the
 * TCP heartbeat), instead of one timer each: a timer per connection cost a Timeout object, its
 * closure and a runtime timer entry for every idle connection (~0.3 KB of heap each).
 * @module
 */

/** Something checked on every tick of its period. */
export interface Ticking {
  tick(): void;
}

const tickers = new Map<number, { timer: ReturnType<typeof setInterval>; members: Set<Ticking> }>();

/** Calls `member.tick()` every `ms` until the returned function is called. */
export function every(ms: number, member: Ticking): () => void {
  let ticker = tickers.get(ms);
  if (!ticker) {
    const members = new Set<Ticking>();
    const timer = setInterval(() => {
      // A member may leave (or another join) during its tick: iterate over a copy.
      for (const m of [...members]) m.tick();
    }, ms);
    ticker = { timer, members };
    tickers.set(ms, ticker);
  }
  ticker.members.add(member);
  const t = ticker;
  return () => {
    if (!t.members.delete(member) || t.members.size > 0) return;
    clearInterval(t.timer);
    if (tickers.get(ms) === t) tickers.delete(ms);
  };
}
