import assert from "node:assert/strict";
import { GroupCommit, lastPerKey } from "../server/store/group_commit.ts";
import { KvStore } from "../server/store/kv_store.ts";
import { ConflictError, type StoredMessage } from "../server/store/store.ts";
import { FakeClock, fakeUlid, login, makeHub } from "./_helpers.ts";

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

Deno.test("GroupCommit: a batch's writes settle once the next batch is handed to KV, so acks overlap the next commit", async () => {
  await using kv = await Deno.openKv(":memory:");
  const events: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let commits = 0;
  // The KV handle, with its commits recorded and the first one held until the test opens it.
  const spied = new Proxy(kv, {
    get(target, prop) {
      if (prop === "atomic") {
        return () => {
          const atomic = target.atomic();
          const commit = atomic.commit.bind(atomic);
          atomic.commit = async () => {
            events.push(`commit ${++commits}`);
            if (commits === 1) await gate;
            return await commit();
          };
          return atomic;
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const writer = new GroupCommit(spied, () => performance.now(), (chat) => ["seq", chat]);
  const first = writer.write([{ type: "set", key: ["a"], value: 1 }]).then(() =>
    events.push("a settled")
  );
  while (commits === 0) await new Promise((r) => setTimeout(r, 1));
  const second = writer.write([{ type: "set", key: ["b"], value: 2 }]).then(() =>
    events.push("b settled")
  );
  open();
  await Promise.all([first, second]);
  assert.deepEqual(events, ["commit 1", "commit 2", "a settled", "b settled"]);
  assert.equal((await kv.get(["b"])).value, 2);
});

Deno.test('lastPerKey(): one write per key, the last one, in order; sums all kept; 1 and "1" differ', () => {
  const batch = [
    { mutations: [{ type: "set", key: ["seq", "a"], value: 1 } as const] },
    {
      mutations: [
        { type: "set", key: ["m", 1], value: "x" } as const,
        { type: "set", key: ["m", "1"], value: "y" } as const,
        { type: "sum", key: ["n"], value: new Deno.KvU64(1n) } as const,
        { type: "set", key: ["seq", "a"], value: 2 } as const,
      ],
    },
    {
      mutations: [
        { type: "sum", key: ["n"], value: new Deno.KvU64(1n) } as const,
        { type: "delete", key: ["m", 1] } as const,
      ],
    },
  ];
  const out = lastPerKey(batch);
  assert.deepEqual(out.map((m) => [m.type, ...m.key]), [
    ["set", "m", "1"],
    ["sum", "n"],
    ["set", "seq", "a"],
    ["sum", "n"],
    ["delete", "m", 1],
  ]);
  assert.equal((out[2] as { value: number }).value, 2);
});

Deno.test("KvStore: a burst in one chat, its counter written once per commit, ends at the last sequence", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  await Promise.all(
    Array.from({ length: 300 }, (_, i) => store.appendMessage(msg("general", i + 1))),
  );
  assert.equal((await kv.get<number>(["chat_seq", "general"])).value, 300);
  assert.equal((await store.load()).seqs.get("general"), 300);
});

Deno.test("KvStore: a store whose cached counter another store moved numbers its message again, counted", async () => {
  await using kv = await Deno.openKv(":memory:");
  const a = new KvStore(kv);
  const b = new KvStore(kv);
  const draft = (id: string) => ({ id, chat: "general", from: "Alice", text: id, ts: 1 });
  assert.equal((await a.appendMessage(draft("a1"))).seq, 1); // a caches the counter at 1
  assert.equal((await b.appendMessage(draft("b1"))).seq, 2);
  assert.equal((await b.appendMessage(draft("b2"))).seq, 3);
  const again = await a.appendMessage(draft("a2"));
  assert.equal(again.seq, 4);
  assert.equal(a.stats.sequenceConflicts, 1);
  const all = await a.listMessages("general", { limit: 10 });
  assert.deepEqual(all.map((m) => [m.seq, m.id]), [[1, "a1"], [2, "b1"], [3, "b2"], [4, "a2"]]);
});

Deno.test("KvStore: three processes appending to one chat on one KV file give every message its own number", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/shared.kv`;
  try {
    // Created first, so the three do not race to create the file itself.
    (await Deno.openKv(file)).close();
    const per = 200;
    const runs = await Promise.all(["a", "b", "c"].map((name) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("./fixtures/append_process.ts", import.meta.url).pathname,
          file,
          name,
          String(per),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output()
    ));
    for (const r of runs) assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    await using kv = await Deno.openKv(file);
    const store = new KvStore(kv);
    const all = await store.listMessages("general", { limit: 1000 });
    assert.equal(all.length, 3 * per);
    assert.deepEqual(all.map((m) => m.seq), Array.from({ length: 3 * per }, (_, i) => i + 1));
    assert.equal(new Set(all.map((m) => m.id)).size, 3 * per);
    // Each found by id: the processes' index rows sit side by side, none overwrote another's.
    for (const m of all) assert.deepEqual(await store.getMessage(m.id), m);
    // Each process's own messages are numbered in the order it sent them.
    for (const name of ["a", "b", "c"]) {
      const ids = all.filter((m) => m.from === name).map((m) => m.id);
      assert.deepEqual(ids, [...ids].sort());
    }
    assert.equal((await store.load()).seqs.get("general"), 3 * per);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

Deno.test("KvStore: saves 5,000 cursors at once (more than one atomic holds), every one of them", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  const cursors = Array.from(
    { length: 5000 },
    (_, i) => ({ user: `u${i}`, chat: "general", seq: 7 }),
  );
  await store.saveCursors(cursors);
  for (const i of [0, 999, 1000, 4999]) {
    assert.equal((await store.getCursors(`u${i}`)).get("general"), 7, `cursor of u${i}`);
  }
});

Deno.test("Hub: the read positions of 5,000 online members of one room survive a restart", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  {
    await using ctx = await makeHub(kv, clock);
    const { hub } = ctx;
    const members = [];
    for (let i = 0; i < 5000; i++) members.push(await login(hub, `m${i}`));
    await hub.receive(members[0]!.id, { type: "message", message: "seen by all" });
    await hub.whenStored();
    await hub.housekeeping();
    await ctx.store.flush();
  }
  await using after = await makeHub(kv, clock);
  for (const name of ["m1", "m2500", "m4999"]) {
    const counts = (await after.hub.request(name, { type: "unread_counts" }))[0];
    assert.deepEqual(counts?.type === "unread_counts" && counts.chats, [], `${name} has no unread`);
  }
});

Deno.test("KvStore.sweepOrphanChunks() removes old uploads that never got a file record, and nothing else", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  const hour = 3600_000;
  const now = Date.UTC(2026, 10, 29, 12);
  const orphan = fakeUlid(now - 2 * hour, 1);
  const finished = fakeUlid(now - 2 * hour, 2);
  const uploading = fakeUlid(now - 60_000, 3);
  for (const id of [orphan, finished, uploading]) {
    for (let i = 0; i < 3; i++) await store.putFileChunk(id, i, new Uint8Array([i]));
  }
  await store.putFile({
    id: finished,
    name: "a.txt",
    mime: "text/plain",
    size: 3,
    chunks: 3,
    chat: "general",
    uploader: "Alice",
    createdAt: now - 2 * hour,
  });
  assert.equal(await store.sweepOrphanChunks(now - hour), 1);
  const left = new Set<string>();
  for await (const e of kv.list({ prefix: ["file_chunks"] })) left.add(String(e.key[1]));
  assert.deepEqual([...left].sort(), [finished, uploading].sort());
});

Deno.test("KvStore pages: before, after and newest equal a filter of the chat, whatever expired or was deleted", async () => {
  // Pages read exactly `limit` rows per KV batch, so a page with expired or deleted rows in it
  // needs further batches: against a model, every page is still the first `limit` live ones.
  const fc = (await import("fast-check")).default;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.constantFrom("live", "expired", "deleted"), { minLength: 1, maxLength: 90 }),
      fc.array(
        fc.record({
          kind: fc.constantFrom("before", "after", "newest"),
          at: fc.integer({ min: 0, max: 95 }),
          limit: fc.integer({ min: 1, max: 40 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      async (states, reads) => {
        await using kv = await Deno.openKv(":memory:");
        // A cluster node's store: no tail cache, every page is a KV read.
        const store = new KvStore(kv, { soleWriter: false });
        const now = 10_000;
        const all = states.map((state, i) => ({
          ...msg("general", i + 1),
          ...(state === "expired"
            ? { expiresAt: now - 1 }
            : state === "live" && i % 3 === 0
            ? { expiresAt: now + 1 }
            : {}),
        }));
        await Promise.all(all.map((m) => store.appendMessage(m)));
        for (const [i, state] of states.entries()) {
          if (state === "deleted") await store.deleteMessage(all[i]!);
        }
        const live = all.filter((m, i) =>
          states[i] !== "deleted" && (m.expiresAt ?? now + 1) > now
        );
        for (const { kind, at, limit } of reads) {
          const page = await store.listMessages("general", {
            limit,
            now,
            ...(kind === "before" ? { before: at } : kind === "after" ? { after: at } : {}),
          });
          const expected = kind === "before"
            ? live.filter((m) => m.seq < at).slice(-limit)
            : kind === "after"
            ? live.filter((m) => m.seq > at).slice(0, limit)
            : live.slice(-limit);
          assert.deepEqual(
            page.map((m) => m.seq),
            expected.map((m) => m.seq),
            `${kind} ${at} ×${limit}`,
          );
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("KvStore.listScheduledOf() reads every record of a user past getMany's 10 keys, in due order, without the removed", async () => {
  await using kv = await Deno.openKv(":memory:");
  const store = new KvStore(kv);
  // 25 for Alice due in reverse order of making (so the sort is what orders them), one for Bob.
  for (let i = 0; i < 25; i++) {
    await store.putScheduled({
      id: `s${String(i).padStart(2, "0")}`,
      user: "Alice",
      room: "general",
      to: null,
      text: `t${i}`,
      dueAt: 10_000 - i,
      createdAt: 1,
    });
  }
  await store.putScheduled({
    id: "bob1",
    user: "Bob",
    room: "general",
    to: null,
    text: "b",
    dueAt: 5,
    createdAt: 1,
  });
  assert.equal(await store.removeScheduled("s07", 2), "removed");
  const mine = await store.listScheduledOf("Alice");
  assert.equal(mine.length, 24);
  assert.deepEqual(mine.map((r) => r.dueAt), [...mine.map((r) => r.dueAt)].sort((a, b) => a - b));
  assert.equal(mine[0]!.text, "t24");
  assert.ok(!mine.some((r) => r.id === "s07" || r.user !== "Alice"));
});
