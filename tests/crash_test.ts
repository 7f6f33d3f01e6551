/**
 * Crash safety, with the crash loop of bench/crash.ts: the real server is killed with SIGKILL
 * while a TCP JSON and a WebSocket writer send, restarted on the same data, and the room checked:
 * every acknowledged message there exactly once, in the order sent, no sequence gaps, read cursors
 * consistent. `deno task stress` runs 100 rounds.
 */
import assert from "node:assert/strict";
import { checkRecovery, crashLoop } from "../bench/crash.ts";
import { scheduledCrashLoop } from "../bench/scheduled_crash.ts";

Deno.test("crash: kill -9 while 10,000 messages are being sent; every acked one survives once, in order", async () => {
  // One round: a TCP and a WebSocket writer send 5,000 each; the kill lands at a random point.
  const result = await crashLoop({ rounds: 1, perRound: 5000, seed: 3 });
  assert.deepEqual(result.problems, []);
  assert.ok(
    result.acked > 0 && result.acked < 10_000,
    `acked ${result.acked}: the kill must land mid-stream`,
  );
  assert.ok(result.recovered >= result.acked, `recovered ${result.recovered} of ${result.acked}`);
});

Deno.test("crash loop (short): repeated kill -9 under two writers loses and repeats nothing acknowledged", async () => {
  const result = await crashLoop({ rounds: 3, perRound: 1000, seed: 7 });
  assert.deepEqual(result.problems, []);
  assert.equal(result.rounds, 3);
  // Each round was cut mid-stream: some acknowledged, not all.
  assert.ok(result.acked > 0 && result.acked < 6000, `acked ${result.acked} of 6000`);
  assert.ok(result.recovered >= result.acked);
});

Deno.test("checkRecovery() finds a lost, a repeated and a reordered message, and a sequence gap", () => {
  const stored = (texts: string[], seqs?: number[]) =>
    texts.map((message, i) => ({ id: `id-${message}`, seq: seqs?.[i] ?? i + 1, message }));
  const acked = new Map([["t0.0", "id-t0.0"], ["t0.1", "id-t0.1"], ["w0.0", "id-w0.0"]]);
  assert.deepEqual(checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1", "t0.2"])), []);
  assert.match(checkRecovery(acked, stored(["t0.0", "w0.0"])).join(), /t0\.1 .* is missing/);
  assert.match(
    checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1", "t0.1"])).join(),
    /stored twice: t0\.1/,
  );
  assert.match(
    checkRecovery(acked, stored(["t0.1", "w0.0", "t0.0"])).join(),
    /t0\.0 stored after t0\.1/,
  );
  assert.match(
    checkRecovery(acked, stored(["t1.0", "t0.0", "t0.1", "w0.0"])).join(),
    /t0\.0 stored after t1\.0/,
  );
  assert.match(
    checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1"], [1, 2, 4])).join(),
    /sequence gap: 2 then 4/,
  );
});

Deno.test("scheduled crash loop (short): stopped by SIGKILL or SIGTERM while messages fall due, each is sent exactly once", async () => {
  const result = await scheduledCrashLoop({ rounds: 2, perRound: 40, seed: 5 });
  assert.deepEqual(result.problems, []);
  assert.equal(result.stored, 80);
  assert.equal(result.kills + result.terms, 2);
});
