import assert from "node:assert/strict";
import { KvStore } from "../server/store/kv_store.ts";
import { ConflictError, type StoredMessage } from "../server/store/store.ts";

function msg(chat: string, seq: number): StoredMessage {
  return { id: `id${seq}`, chat, seq, from: "Alice", text: `m${seq}`, ts: 1000 + seq };
}

Deno.test("KvStore.appendMessage() commits a burst in few atomic batches and keeps every message", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  await Promise.all(
    Array.from({ length: 1000 }, (_, i) => store.appendMessage(msg("general", i + 1))),
  );
  assert.ok(store.stats.commits <= 5, `1000 appends took ${store.stats.commits} commits`);
  const all = await store.listMessages("general", { limit: 1000 });
  assert.equal(all.length, 1000);
  assert.deepEqual(all.slice(0, 3).map((m) => m.seq), [1, 2, 3]);
  const snap = await store.load();
  assert.equal(snap.seqs.get("general"), 1000);
});

Deno.test("KvStore.listMessages() pages by before and after in ascending order", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  for (let i = 1; i <= 10; i++) await store.appendMessage(msg("r", i));
  await store.appendMessage(msg("other", 1));
  const seqs = async (o: { limit: number; before?: number; after?: number }) =>
    (await store.listMessages("r", o)).map((m) => m.seq);
  assert.deepEqual(await seqs({ limit: 3 }), [8, 9, 10]);
  assert.deepEqual(await seqs({ limit: 3, before: 8 }), [5, 6, 7]);
  assert.deepEqual(await seqs({ limit: 3, before: 2 }), [1]);
  assert.deepEqual(await seqs({ limit: 3, after: 4 }), [5, 6, 7]);
  assert.deepEqual(await seqs({ limit: 3, after: 10 }), []);
  assert.deepEqual(
    await seqs({ limit: 100 }),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "other chats do not leak in",
  );
});

Deno.test("KvStore.createUser() refuses an existing name with ConflictError", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  const user = { name: "Alice", passwordHash: null, admin: false, createdAt: 1 };
  await store.createUser(user);
  await assert.rejects(store.createUser(user), ConflictError);
});

Deno.test("KvStore keeps members and cursors, and load() returns them", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  await store.createChat({ id: "games", kind: "room", createdAt: 1, createdBy: "Alice" });
  await store.addMember("games", "Alice", 4);
  await store.addMember("games", "Bob", 0);
  await store.saveCursors([{ user: "Alice", chat: "games", seq: 9 }]);
  assert.deepEqual(await store.getCursors("Alice"), new Map([["games", 9]]));
  await store.removeMember("games", "Bob");
  assert.deepEqual(await store.getCursors("Bob"), new Map());
  const snap = await store.load();
  assert.deepEqual(snap.members, [{ chat: "games", user: "Alice" }]);
  assert.deepEqual(snap.chats.map((c) => c.id), ["games"]);
});

Deno.test("KvStore rejects every write of a failed batch, and later writes still commit", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  kv.close();
  await assert.rejects(store.appendMessage(msg("r", 1)));
  await using kv2 = await Deno.openKv(":memory:");
  const store2 = new KvStore(kv2);
  await store2.appendMessage(msg("r", 1));
  assert.equal((await store2.listMessages("r", { limit: 5 })).length, 1);
});
