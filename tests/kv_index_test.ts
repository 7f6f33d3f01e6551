/**
 * Finding messages by id (server/store/kv_index.ts): index rows per batch and millisecond, a
 * model-based check of lookups through writes and deletions, old per-message rows, and that a
 * batch writes a few index rows rather than one per message.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { ulidFactory } from "../server/ids.ts";
import {
  INDEX_ROW_ENTRIES,
  type IndexRow,
  indexRows,
  messageById,
  unindex,
} from "../server/store/kv_index.ts";
import { keys } from "../server/store/keys.ts";
import { KvStore } from "../server/store/kv_store.ts";
import type { StoredMessage } from "../server/store/store.ts";

async function indexRowsIn(kv: Deno.Kv): Promise<Deno.KvEntry<IndexRow>[]> {
  return await Array.fromAsync(kv.list<IndexRow>({ prefix: ["message_index"] }));
}

Deno.test("every message is found by id through writes and deletions, and nothing else is", async () => {
  const CHATS = ["general", "dm:alice:bob", "café"];
  // A batch: messages made over a few milliseconds, each in one of the chats.
  const batch = fc.array(
    fc.record({ dt: fc.integer({ min: 0, max: 2 }), chat: fc.integer({ min: 0, max: 2 }) }),
    { minLength: 1, maxLength: 260 },
  );
  const step = fc.oneof(
    batch.map((messages) => ({ kind: "write" as const, messages })),
    fc.array(fc.nat(), { maxLength: 30 }).map((picks) => ({ kind: "delete" as const, picks })),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
      await using kv = await Deno.openKv(":memory:");
      let now = 1_790_000_000_000;
      const next = ulidFactory();
      const seqs = new Map<string, number>();
      const live = new Map<string, StoredMessage>();
      const deleted: string[] = [];
      for (const s of steps) {
        if (s.kind === "write") {
          const messages: StoredMessage[] = [];
          for (const m of s.messages) {
            now += m.dt;
            const chat = CHATS[m.chat]!;
            const seq = (seqs.get(chat) ?? 0) + 1;
            seqs.set(chat, seq);
            messages.push({ id: next(now), chat, seq, from: "a", text: "t", ts: now });
          }
          const mutations: Deno.KvMutation[] = messages.map((m) => ({
            type: "set",
            key: keys.message(m.chat, m.seq),
            value: m,
          }));
          mutations.push(...indexRows(messages.map(({ id, chat, seq }) => ({ id, chat, seq }))));
          assert.ok((await kv.atomic().mutate(...mutations).commit()).ok);
          for (const m of messages) live.set(m.id, m);
        } else {
          const ids = [...live.keys()];
          const doomed = [...new Set(s.picks.map((p) => ids[p % Math.max(1, ids.length)]!))]
            .filter((id) => id !== undefined);
          for (const id of doomed) {
            const m = live.get(id)!;
            await kv.delete(keys.message(m.chat, m.seq));
            live.delete(id);
            deleted.push(id);
          }
          await unindex(kv, doomed);
        }
      }
      for (const [id, m] of live) assert.deepEqual(await messageById(kv, id), m);
      for (const id of deleted) assert.equal(await messageById(kv, id), null);
      assert.equal(await messageById(kv, next(now)), null, "an id never stored");
      assert.equal(await messageById(kv, "not a ulid"), null);
      // Rows hold what is live and no more, each within its size.
      const indexed: string[] = [];
      for (const row of await indexRowsIn(kv)) {
        const e = row.value.entries;
        assert.ok(e.length > 0 && e.length <= 3 * INDEX_ROW_ENTRIES, `row of ${e.length / 3}`);
        for (let i = 0; i < e.length; i += 3) indexed.push(e[i] as string);
      }
      assert.deepEqual(indexed.sort(), [...live.keys()].sort());
    }),
    { numRuns: 60 },
  );
});

Deno.test("indexRows(): one row per millisecond of a batch, split at its size, living as its longest message", () => {
  const next = ulidFactory();
  const at = (ms: number, n: number, expireIn?: number) =>
    Array.from({ length: n }, (_, i) => ({
      id: next(ms),
      chat: "general",
      seq: i + 1,
      ...(expireIn === undefined ? {} : { expireIn }),
    }));
  const rows = indexRows([
    ...at(1000, 3, 5000),
    ...at(1001, INDEX_ROW_ENTRIES + 1, 7000),
  ]);
  assert.deepEqual(rows.map((r) => (r as { key: Deno.KvKey }).key.slice(0, 2)), [
    ["message_index", 1000],
    ["message_index", 1001],
    ["message_index", 1001],
  ]);
  assert.deepEqual(rows.map((r) => (r as { expireIn?: number }).expireIn), [5000, 7000, 7000]);
  // A message kept for ever keeps its row for ever.
  const mixed = indexRows([...at(2000, 1, 5000), ...at(2000, 1)]);
  assert.equal((mixed[0] as { expireIn?: number }).expireIn, undefined);
  assert.equal((mixed[0] as { value: IndexRow }).value.expireIn, undefined);
});

Deno.test("KvStore: a burst writes a few index rows, not a row per message, and finds every message", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  const next = ulidFactory();
  const now = 1_790_000_000_000;
  const sent = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    store.appendMessage({
      id: next(now + Math.floor(i / 50)),
      chat: "general",
      from: "Alice",
      text: `m${i}`,
      ts: now,
    })));
  // 300 messages over 6 milliseconds: 6 index rows, one counter per commit.
  const rows = await indexRowsIn(kv);
  assert.equal(rows.length, 6);
  assert.ok(
    store.stats.mutations <= 300 + 6 + 2 * store.stats.commits,
    `${store.stats.mutations} mutations for 300 messages in ${store.stats.commits} commits`,
  );
  assert.equal((await Array.fromAsync(kv.list({ prefix: ["message_ids"] }))).length, 0);
  for (const m of [sent[0]!, sent[149]!, sent[299]!]) {
    assert.deepEqual(await store.getMessage(m.id), m);
  }
  // Deleted: gone from the index too; its neighbours stay.
  await store.deleteMessage(sent[149]!);
  assert.equal(await store.getMessage(sent[149]!.id), null);
  assert.deepEqual(await store.getMessage(sent[148]!.id), sent[148]);
  const left = (await indexRowsIn(kv)).flatMap((r) => r.value.entries);
  assert.ok(!left.includes(sent[149]!.id));
  assert.equal(left.length, 3 * 299);
});

Deno.test("KvStore: messages stored with a row per id (before the per-batch index) are found and deleted", async () => {
  await using kv = await Deno.openKv(":memory:");
  const old: StoredMessage = {
    id: "01JOLDOLDOLDOLDOLDOLDOLDOL",
    chat: "general",
    seq: 7,
    from: "Alice",
    text: "from an older version",
    ts: 1,
  };
  await kv.atomic()
    .set(keys.message("general", 7), old)
    .set(keys.messageId(old.id), ["general", 7])
    .commit();
  const store = new KvStore(kv);
  assert.deepEqual(await store.getMessage(old.id), old);
  await store.deleteMessage(old);
  assert.equal(await store.getMessage(old.id), null);
  assert.equal((await kv.get(keys.messageId(old.id))).versionstamp, null);
});

Deno.test("messageById(): an index entry whose message is gone or is another message finds nothing", async () => {
  await using kv = await Deno.openKv(":memory:");
  const next = ulidFactory();
  const a = next(5000);
  const b = next(5000);
  await kv.atomic()
    .mutate(...indexRows([{ id: a, chat: "general", seq: 1 }, { id: b, chat: "general", seq: 2 }]))
    // Seq 2 holds another message (as after a crash between a deletion and its unindex).
    .set(keys.message("general", 2), { id: "someone else", chat: "general", seq: 2 })
    .commit();
  assert.equal(await messageById(kv, a), null);
  assert.equal(await messageById(kv, b), null);
});
