/**
 * The one outbound queue: writes paced at WRITES_PER_TURN per event-loop turn across
 * connections (the regression guard for Deno's 128-writes-per-turn budget), batching of what
 * queued during a write, the byte bound, and goodbyes.
 */
import assert from "node:assert/strict";
import {
  FlushScheduler,
  OutboundQueue,
  type Wire,
  WRITES_PER_TURN,
} from "../server/transport/outbound.ts";

/** A wire that records every write and can hold writes in flight. */
function fakeWire(log: string[][], options: { async?: boolean; backlog?: number } = {}) {
  const wire: Wire<string> & { slowCalls: number; release: () => void } = {
    slowCalls: 0,
    release: () => {},
    size: (s) => s.length,
    join: (parts) => parts.join(""),
    write(chunk) {
      log.push([chunk]);
      if (!options.async) return;
      return new Promise<void>((resolve) => (wire.release = resolve));
    },
    backlog: () => options.backlog ?? 0,
    slow() {
      wire.slowCalls++;
    },
    failed() {},
  };
  return wire;
}

/** Lets every microtask run, but no macrotask. */
async function microtasksOnly(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

Deno.test("OutboundQueue: a fan-out to 1,000 connections starts at most WRITES_PER_TURN writes before yielding", async () => {
  const scheduler = new FlushScheduler();
  const writes: string[][] = [];
  const queues = Array.from(
    { length: 1000 },
    () => new OutboundQueue(fakeWire(writes), 1 << 20, scheduler),
  );
  for (const q of queues) q.push("m");
  assert.equal(writes.length, 0, "nothing is written synchronously");
  await microtasksOnly();
  // Counted by the wire itself, not the scheduler: the first turn wrote exactly one budget.
  assert.equal(writes.length, WRITES_PER_TURN);
  await microtasksOnly();
  assert.equal(writes.length, WRITES_PER_TURN, "the rest waits for a later turn");
  while (writes.length < 1000) await new Promise((r) => setTimeout(r, 0));
  assert.equal(writes.length, 1000);
  assert.ok(scheduler.stats.turns >= Math.ceil(1000 / WRITES_PER_TURN));
  assert.equal(scheduler.stats.maxWritesInTurn, WRITES_PER_TURN);
});

Deno.test("OutboundQueue: what queues while a write is in flight goes out as one write after it", async () => {
  const scheduler = new FlushScheduler();
  const writes: string[][] = [];
  const wire = fakeWire(writes, { async: true });
  const q = new OutboundQueue(wire, 1 << 20, scheduler);
  q.push("a");
  await microtasksOnly();
  assert.deepEqual(writes, [["a"]]);
  q.push("b");
  q.push("c");
  await microtasksOnly();
  assert.equal(writes.length, 1, "one write in flight at a time");
  assert.equal(q.queuedBytes, 3);
  wire.release();
  await microtasksOnly();
  assert.deepEqual(writes, [["a"], ["bc"]]);
  wire.release();
  await q.drained();
  assert.equal(q.idle, true);
});

Deno.test("OutboundQueue: a reader past the bound is handed to the wire as slow; its goodbye still goes out", async () => {
  const scheduler = new FlushScheduler();
  const writes: string[][] = [];
  const wire = fakeWire(writes, { async: true });
  const q = new OutboundQueue(wire, 10, scheduler);
  q.push("12345");
  await microtasksOnly();
  q.push("1234");
  assert.equal(wire.slowCalls, 0, "5 in flight + 4 queued is within 10");
  q.push("xx");
  assert.equal(wire.slowCalls, 1, "5 in flight + 6 queued is not");
  q.finish("bye", { forgetBacklog: true });
  q.push("ignored");
  wire.release();
  await microtasksOnly();
  wire.release();
  await q.drained();
  assert.deepEqual(writes, [["12345"], ["bye"]]);
});

Deno.test("OutboundQueue: what the wire still holds counts against the bound at write time", async () => {
  const scheduler = new FlushScheduler();
  const writes: string[][] = [];
  const wire = fakeWire(writes, { backlog: 8 });
  const q = new OutboundQueue(wire, 10, scheduler);
  q.push("abc");
  await microtasksOnly();
  assert.equal(wire.slowCalls, 1);
  assert.deepEqual(writes, []);
});
