import assert from "node:assert/strict";
import fc from "fast-check";
import { KvStore } from "../server/store/kv_store.ts";
import type { StoredMessage } from "../server/store/store.ts";
import { TailCache } from "../server/store/tail_cache.ts";

function msg(chat: string, seq: number, expiresAt?: number): StoredMessage {
  return {
    id: `id${chat}${seq}`,
    chat,
    seq,
    from: "Alice",
    text: `m${seq}`,
    ts: 1000 + seq,
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

const seqs = (ms: StoredMessage[] | null) => ms?.map((m) => m.seq) ?? null;

Deno.test("TailCache: a filled tail answers the last page, follows appends, and says when it cannot", () => {
  const cache = new TailCache(5, 10);
  assert.equal(cache.last("r", 3, 0), null, "nothing cached yet");
  cache.fill("r", [1, 2, 3, 4, 5].map((s) => msg("r", s)), cache.version("r"), false);
  assert.deepEqual(seqs(cache.last("r", 3, 0)), [3, 4, 5]);
  assert.equal(cache.last("r", 6, 0), null, "more than it keeps");
  cache.appended(msg("r", 6));
  assert.deepEqual(seqs(cache.last("r", 5, 0)), [2, 3, 4, 5, 6]);
  // A number that is not the next one: another writer; the tail is dropped, not patched.
  cache.appended(msg("r", 8));
  assert.equal(cache.last("r", 1, 0), null);
});

Deno.test("TailCache: a short chat is complete; expired messages are skipped; a read older than a write does not fill", () => {
  const cache = new TailCache(5, 10);
  cache.fill("r", [msg("r", 1), msg("r", 2, 50)], cache.version("r"), true);
  assert.deepEqual(seqs(cache.last("r", 5, 10)), [1, 2], "all there is");
  assert.deepEqual(seqs(cache.last("r", 5, 60)), [1], "2 expired at 50");
  const before = cache.version("s");
  cache.appended(msg("s", 1)); // committed while the read of "s" was under way
  cache.fill("s", [], before, true);
  assert.equal(cache.last("s", 1, 0), null, "the stale read was not kept");
  cache.forget("r");
  assert.equal(cache.last("r", 1, 0), null);
});

Deno.test("TailCache: the least recently read chat goes first", () => {
  const cache = new TailCache(5, 2);
  cache.fill("a", [msg("a", 1)], 0, true);
  cache.fill("b", [msg("b", 1)], 0, true);
  cache.last("a", 1, 0); // a is used: b is now the oldest
  cache.fill("c", [msg("c", 1)], 0, true);
  assert.equal(cache.size, 2);
  assert.notEqual(cache.last("a", 1, 0), null);
  assert.equal(cache.last("b", 1, 0), null);
});

Deno.test("TailCache against a model: whatever it answers is the chat's newest live messages", () => {
  type Op =
    | { kind: "append"; expires: boolean }
    | { kind: "foreign" }
    | { kind: "delete"; pick: number }
    | { kind: "read"; limit: number; now: number };
  const op = fc.oneof(
    fc.record({ kind: fc.constant("append" as const), expires: fc.boolean() }),
    fc.record({ kind: fc.constant("foreign" as const) }),
    fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }),
    fc.record({
      kind: fc.constant("read" as const),
      limit: fc.integer({ min: 1, max: 8 }),
      now: fc.integer({ min: 0, max: 200 }),
    }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const cache = new TailCache(6, 4);
      const all: StoredMessage[] = []; // what the store holds
      let seq = 0;
      const newest = (limit: number, now: number) =>
        all.filter((m) => m.expiresAt === undefined || m.expiresAt > now).slice(-limit);
      for (const o of ops) {
        if (o.kind === "append") {
          const m = msg("r", ++seq, o.expires ? seq * 5 : undefined);
          all.push(m);
          cache.appended(m);
        } else if (o.kind === "foreign") {
          // A number taken elsewhere (which a sole writer never sees), then one of ours: the
          // gap must drop the tail.
          all.push(msg("r", ++seq));
          const m = msg("r", ++seq);
          all.push(m);
          cache.appended(m);
        } else if (o.kind === "delete" && all.length > 0) {
          all.splice(o.pick % all.length, 1);
          cache.forget("r");
        } else if (o.kind === "read") {
          const got = cache.last("r", o.limit, o.now);
          if (got === null) {
            // What the store does on a miss: read the newest `keep`, fill.
            cache.fill("r", all.slice(-cache.keep), cache.version("r"), all.length < cache.keep);
          } else {
            assert.deepEqual(seqs(got), seqs(newest(o.limit, o.now)));
          }
        }
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("KvStore: the last page served from memory is what KV holds, through appends, deletes and expiry", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  // The same data read straight from KV every time (a cluster node's store has no tail cache).
  const truth = new KvStore(kv, { soleWriter: false });
  const check = async (limit: number, now: number) =>
    assert.deepEqual(
      seqs(await store.listMessages("r", { limit, now })),
      seqs(await truth.listMessages("r", { limit, now })),
      `limit ${limit} at ${now}`,
    );
  await check(20, 0);
  for (let i = 1; i <= 70; i++) {
    await store.appendMessage({
      id: `m${String(i).padStart(3, "0")}`,
      chat: "r",
      from: "Alice",
      text: `m${i}`,
      ts: i,
      ...(i % 7 === 0 ? { expiresAt: 500 } : {}),
    });
    if (i % 9 === 0) await check(20, 100);
  }
  for (const id of ["m070", "m065", "m040"]) {
    await store.deleteMessage((await store.getMessage(id))!);
    await check(20, 100);
    await check(5, 600);
  }
  await check(50, 100);
  await check(51, 100);
  await check(20, 600);
});
