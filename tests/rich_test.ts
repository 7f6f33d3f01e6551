/**
 * Rich messaging in the core, under a fake clock: replies, scheduled messages (with two hubs on
 * one store), files, private groups and contacts.
 */
import assert from "node:assert/strict";
import { SCHEDULE_CLAIM_MS, type StoredMessage } from "../server/store/store.ts";
import { KvStore } from "../server/store/kv_store.ts";
import { FakeClock, login, makeHub, seedAdmin } from "./_helpers.ts";

async function* bytes(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield p;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("replies: a reply carries what it answers, replies are listed, and only within the same chat", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "message", message: "Who is coming tonight?" });
  await hub.whenStored();
  const q = alice.peer.of("message")[0]!;
  await hub.receive(bob.id, { type: "message", message: "me!", reply_to: q.id });
  await hub.request("Alice", { type: "message", message: "great", reply_to: q.id });
  await hub.whenStored();
  const answer = alice.peer.of("message").find((m) => m.message === "me!")!;
  assert.deepEqual(answer.reply_to, {
    id: q.id,
    from_username: "Alice",
    message: "Who is coming tonight?",
  });
  await hub.receive(bob.id, { type: "replies", id: q.id });
  assert.deepEqual(bob.peer.of("replies")[0]!.messages.map((m) => m.message), ["me!", "great"]);
  // A reply must be in the chat of the message it answers.
  await hub.receive(bob.id, {
    type: "private",
    target_username: "Alice",
    message: "psst",
    reply_to: q.id,
  });
  assert.equal(bob.peer.of("error")[0]!.code, "no_such_message");
  // Someone who cannot read the chat cannot list its replies.
  await hub.receive(alice.id, { type: "create_group", room: "secret" });
  await hub.receive(alice.id, { type: "message", message: "hidden" });
  await hub.whenStored();
  const hidden = alice.peer.of("message").find((m) => m.message === "hidden")!;
  await hub.receive(bob.id, { type: "replies", id: hidden.id });
  assert.equal(bob.peer.of("error")[1]!.code, "no_such_message");
});

Deno.test("scheduled: goes out at its time, can be listed and cancelled, and is refused in the past", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const at = (ms: number) => new Date(clock.now() + ms).toISOString();
  await hub.receive(alice.id, { type: "schedule", message: "in a minute", at: at(60_000) });
  await hub.receive(alice.id, {
    type: "schedule",
    message: "cancel me",
    at: at(60_000),
    target_username: "Bob",
  });
  await hub.receive(alice.id, { type: "schedule", message: "too late", at: at(-1) });
  assert.match(alice.peer.of("error")[0]!.message, /is in the past/);
  const [first, second] = alice.peer.of("scheduled").map((f) => f.entry);
  assert.equal(first!.chat, "general");
  assert.equal(second!.chat, "@Bob");
  await hub.receive(alice.id, { type: "scheduled" });
  assert.deepEqual(alice.peer.of("scheduled_list")[0]!.entries.map((e) => e.message), [
    "in a minute",
    "cancel me",
  ]);
  await hub.receive(alice.id, { type: "cancel_scheduled", id: second!.id });
  assert.equal(alice.peer.of("scheduled_cancelled")[0]!.id, second!.id);
  await hub.receive(bob.id, { type: "cancel_scheduled", id: first!.id });
  assert.equal(bob.peer.of("error")[0]!.code, "no_such_message", "only the author can cancel");
  clock.advance(59_999);
  assert.equal(await hub.runScheduled(), 0);
  clock.advance(1);
  assert.equal(await hub.runScheduled(), 1);
  await hub.whenStored();
  assert.deepEqual(bob.peer.of("message").map((m) => m.message), ["in a minute"]);
  assert.equal(bob.peer.of("private").length, 0, "the cancelled one never arrives");
  clock.advance(3600_000);
  assert.equal(await hub.runScheduled(), 0);
  await hub.receive(alice.id, { type: "cancel_scheduled", id: first!.id });
  assert.match(alice.peer.of("error").at(-1)!.message, /was sent or cancelled/);
});

Deno.test("scheduled: two hubs on one store send a due message exactly once", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  await using one = await makeHub(kv, clock);
  const alice = await login(one.hub, "Alice");
  for (let i = 0; i < 20; i++) {
    const at = new Date(clock.now() + 1000).toISOString();
    await one.hub.receive(alice.id, { type: "schedule", message: `s${i}`, at });
  }
  // A second process on the same store, racing for the same due messages. (Only the claim is
  // shared: chat traffic itself has one writer, which assigns ids and order in memory.)
  const watchOne = await login(one.hub, "Watcher");
  await one.hub.whenStored();
  await using two = await makeHub(kv, clock);
  const watchTwo = await login(two.hub, "Watcher");
  clock.advance(1000);
  const [a, b] = await Promise.all([one.hub.runScheduled(), two.hub.runScheduled()]);
  await one.hub.whenStored();
  await two.hub.whenStored();
  assert.equal(a + b, 20, `sent ${a} + ${b}`);
  const sent = [...watchOne.peer.of("message"), ...watchTwo.peer.of("message")].map((m) =>
    m.message
  ).sort();
  assert.deepEqual(sent, Array.from({ length: 20 }, (_, i) => `s${i}`).sort(), "each exactly once");
});

Deno.test("scheduled: a muted author's message does not go out, and they are told why", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { reportsToMute: 1 });
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, {
    type: "schedule",
    message: "later",
    at: new Date(clock.now() + 5000).toISOString(),
  });
  await hub.receive(bob.id, { type: "report", username: "Alice" });
  clock.advance(5000);
  await hub.runScheduled();
  const err = alice.peer.of("error").at(-1)!;
  assert.equal(err.code, "muted");
  assert.match(err.message, /Your scheduled message \w+ could not be sent: You are muted/);
});

Deno.test("files: stored in chunks, announced with name, size and type, downloaded byte for byte by members only", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { maxFileSize: 200_000 });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const data = new Uint8Array(150_001);
  for (let i = 0; i < data.length; i += 65_536) {
    crypto.getRandomValues(data.subarray(i, i + 65_536));
  }
  const ack = await hub.uploadFile(
    "Alice",
    { name: "photo.jpg", mime: "image/jpeg" },
    bytes(data.subarray(0, 70_000), data.subarray(70_000)),
  );
  assert.equal(ack.type, "ack");
  await hub.whenStored();
  const msg = bob.peer.of("message").find((m) => m.file)!;
  assert.deepEqual({ ...msg.file, id: undefined }, {
    id: undefined,
    name: "photo.jpg",
    size: 150_001,
    mime: "image/jpeg",
  });
  assert.match(msg.message, /sent a file: photo.jpg \(146.5 KB, image\/jpeg\)/);
  const chunks = await Array.fromAsync(kv.list({ prefix: ["file_chunks", msg.file!.id] }));
  assert.equal(chunks.length, 3, "60 KB chunks under KV's 64 KiB value limit");
  const { file, chunks: stream } = await hub.openFile("Bob", msg.file!.id);
  assert.equal(file.name, "photo.jpg");
  assert.deepEqual(await collect(stream), data);
  // Private files: only the two ends; rooms: only members.
  await login(hub, "Carol");
  await hub.uploadFile(
    "Alice",
    { name: "dm.txt", mime: "text/plain", to: "Bob" },
    bytes(new TextEncoder().encode("hi")),
  );
  await hub.whenStored();
  const dm = bob.peer.of("private").find((m) => m.file)!;
  // Not hers to see: answered as if it did not exist.
  await assert.rejects(hub.openFile("Carol", dm.file!.id), /There is no file/);
  assert.equal((await hub.openFile("Bob", dm.file!.id)).file.size, 2);
  await hub.receive(alice.id, { type: "create_group", room: "team" });
  await assert.rejects(
    hub.uploadFile("Bob", { name: "x", mime: "", room: "team" }, bytes(new Uint8Array(1))),
    /There is no room #team/,
  );
  // Too large: refused on the declared size, and while streaming when none was declared.
  await assert.rejects(
    hub.uploadFile("Alice", { name: "big", mime: "", size: 200_001 }, bytes()),
    /limit is 195.3 KB/,
  );
  await assert.rejects(
    hub.uploadFile(
      "Alice",
      { name: "big", mime: "" },
      bytes(new Uint8Array(150_000), new Uint8Array(50_001)),
    ),
    (e: { code?: string }) => e.code === "too_long",
  );
  const leftovers = await Array.fromAsync(kv.list({ prefix: ["file_chunks"] }));
  assert.equal(leftovers.length, 4, "a refused upload leaves no chunks behind");
});

Deno.test("files: follow the message lifetime", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { messageTtlMs: 3600_000 });
  const { hub, clock } = ctx;
  await login(hub, "Alice");
  await hub.uploadFile("Alice", { name: "a.txt", mime: "text/plain" }, bytes(new Uint8Array(10)));
  await hub.whenStored();
  const id = (await Array.fromAsync(kv.list<{ id: string }>({ prefix: ["files"] })))[0]!.value.id;
  clock.advance(3600_000);
  await assert.rejects(hub.openFile("Alice", id), /no file/);
  await hub.housekeeping();
  assert.equal((await Array.fromAsync(kv.list({ prefix: ["file_chunks"] }))).length, 0);
});

Deno.test("groups: invite and accept; a link only asks and waits for the owner; non-members are refused everything", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const owner = await login(hub, "Owner");
  const friend = await login(hub, "Friend");
  const stranger = await login(hub, "Stranger");
  await hub.receive(owner.id, { type: "create_group", room: "club" });
  assert.equal(owner.peer.of("joined")[0]!.created, true);
  await hub.receive(owner.id, { type: "message", message: "members only" });
  await hub.whenStored();
  const secret = owner.peer.of("message")[0]!;

  // Invisible and closed to a non-member.
  await hub.receive(stranger.id, { type: "rooms" });
  assert.equal(stranger.peer.of("rooms_list")[0]!.rooms.some((r) => r.name === "club"), false);
  const refusals: Array<Parameters<typeof hub.receive>[1]> = [
    { type: "join", room: "club" },
    { type: "history", chat: "club" },
    { type: "message", room: "club", message: "let me in" },
    { type: "members", room: "club" },
    { type: "replies", id: secret.id },
    { type: "invite", room: "club", username: "Stranger" },
    { type: "create_link", room: "club" },
  ];
  for (const f of refusals) await hub.receive(stranger.id, f);
  // Every answer is the one a group that does not exist gets: nothing is learned of it.
  assert.deepEqual(stranger.peer.of("error").map((e) => e.code), [
    "no_such_room",
    "no_such_room",
    "no_such_room",
    "no_such_room",
    "no_such_message",
    "no_such_room",
    "no_such_room",
  ]);
  assert.equal(
    stranger.peer.of("error").some((e) => /Owner|private group:/.test(e.message)),
    false,
    "neither its owner nor that it is a group",
  );
  assert.equal(stranger.peer.of("message").length, 0);

  // Invite: the friend is told, and accepts by joining.
  await hub.receive(owner.id, { type: "invite", room: "club", username: "Friend" });
  assert.equal(friend.peer.of("invite")[0]!.from_username, "Owner");
  await hub.receive(friend.id, { type: "join", room: "club" });
  assert.equal(friend.peer.of("joined")[0]!.room, "club");
  assert.deepEqual(friend.peer.of("history").at(-1)!.messages.map((m) => m.message), [
    "members only",
  ]);

  // Link: the stranger asks, nothing happens until the owner decides.
  await hub.receive(owner.id, { type: "create_link", room: "club" });
  const token = owner.peer.of("link")[0]!.token;
  await hub.receive(stranger.id, { type: "join_link", token });
  assert.match(stranger.peer.of("system").at(-1)!.message, /Asked the owner of #club/);
  assert.deepEqual(owner.peer.of("join_request")[0], {
    ...owner.peer.of("join_request")[0],
    room: "club",
    username: "Stranger",
  });
  await hub.receive(stranger.id, { type: "history", chat: "club" });
  assert.equal(stranger.peer.of("error").at(-1)!.code, "no_such_room", "still waiting");
  await hub.receive(friend.id, {
    type: "join_decision",
    room: "club",
    username: "Stranger",
    approved: true,
  });
  assert.equal(friend.peer.of("error").at(-1)!.code, "forbidden", "only the owner decides");
  await hub.receive(owner.id, {
    type: "join_decision",
    room: "club",
    username: "Stranger",
    approved: true,
  });
  assert.equal(stranger.peer.of("joined").at(-1)!.room, "club");
  await hub.receive(owner.id, { type: "members", room: "club" });
  assert.deepEqual(owner.peer.of("members")[0]!.members.map((m) => m.username), [
    "Friend",
    "Owner",
    "Stranger",
  ]);

  // Removal and a revoked link.
  await hub.receive(owner.id, { type: "remove_member", room: "club", username: "Stranger" });
  assert.equal(stranger.peer.of("left").at(-1)!.room, "club");
  await hub.receive(owner.id, { type: "revoke_link", room: "club", token });
  await hub.receive(stranger.id, { type: "join_link", token });
  assert.equal(stranger.peer.of("error").at(-1)!.code, "no_such_room");
  // A refused request.
  await hub.receive(owner.id, { type: "create_link", room: "club" });
  await hub.receive(stranger.id, { type: "join_link", token: owner.peer.of("link")[1]!.token });
  await hub.receive(owner.id, {
    type: "join_decision",
    room: "club",
    username: "Stranger",
    approved: false,
  });
  assert.match(stranger.peer.of("system").at(-1)!.message, /request to join #club was refused/);
  // The owner leaving hands the group on.
  await hub.receive(owner.id, { type: "leave", room: "club" });
  await hub.receive(friend.id, { type: "rooms" });
  assert.equal(
    friend.peer.of("rooms_list")[0]!.rooms.find((r) => r.name === "club")!.owner,
    "Friend",
  );
});

Deno.test("groups: inviting again, or asking again by link, while one waits puts nothing more on screen; both count as private messages", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, undefined, {
    privateRateLimit: { count: 3, windowMs: 60_000 },
  });
  const { hub } = ctx;
  const owner = await login(hub, "Owner");
  const friend = await login(hub, "Friend");
  const pal = await login(hub, "Pal");
  const asker = await login(hub, "Asker");
  await hub.receive(owner.id, { type: "create_group", room: "club" });
  for (let i = 0; i < 4; i++) {
    await hub.receive(owner.id, { type: "invite", room: "club", username: "Friend" });
  }
  assert.equal(friend.peer.of("invite").length, 1, "one invite, however often sent");
  assert.match(owner.peer.of("system").at(-1)!.message, /Friend is invited to #club already/);
  await hub.receive(owner.id, { type: "invite", room: "club", username: "Pal" });
  assert.equal(pal.peer.of("invite").length, 1);
  // A link: the owner is asked once, however often the asker clicks.
  await hub.receive(owner.id, { type: "create_link", room: "club" });
  const token = owner.peer.of("link")[0]!.token;
  for (let i = 0; i < 4; i++) await hub.receive(asker.id, { type: "join_link", token });
  assert.equal(owner.peer.of("join_request").length, 1);
  assert.equal(asker.peer.of("error").length, 0);
  // The owner's third notice of the minute (two invites, then this) was the last: over quota.
  const late = await login(hub, "Late");
  await hub.receive(owner.id, { type: "invite", room: "club", username: "Late" });
  assert.equal(late.peer.of("invite").length, 1);
  const later = await login(hub, "Later");
  await hub.receive(owner.id, { type: "invite", room: "club", username: "Later" });
  assert.equal(later.peer.of("invite").length, 0);
  assert.equal(owner.peer.of("error").at(-1)!.code, "rate_limited");
});

Deno.test("groups: invites and requests wait for offline users and survive a restart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    {
      await using kv = await Deno.openKv(`${dir}/chat.kv`);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      const owner = await login(hub, "Owner");
      await login(hub, "Friend").then((f) => hub.disconnect(f.id));
      await hub.receive(owner.id, { type: "create_group", room: "club" });
      await hub.receive(owner.id, { type: "invite", room: "club", username: "Friend" });
      await hub.receive(owner.id, { type: "create_link", room: "club" });
      const token = owner.peer.of("link")[0]!.token;
      hub.disconnect(owner.id);
      const asker = await login(hub, "Asker");
      await hub.receive(asker.id, { type: "join_link", token });
    }
    {
      await using kv = await Deno.openKv(`${dir}/chat.kv`);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      const friend = await login(hub, "Friend");
      assert.equal(friend.peer.of("invite")[0]!.room, "club");
      const owner = await login(hub, "Owner");
      assert.equal(owner.peer.of("join_request")[0]!.username, "Asker");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("contacts: add, remove, online state; a private message from a stranger adds them", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await login(hub, "Carol").then((c) => hub.disconnect(c.id));
  await hub.receive(alice.id, { type: "add_contact", username: "carol" });
  assert.deepEqual(alice.peer.of("contacts_list").at(-1)!.contacts, [{
    username: "Carol",
    online: false,
  }]);
  await hub.receive(alice.id, { type: "add_contact", username: "Ghost" });
  assert.equal(alice.peer.of("error")[0]!.code, "no_such_user");
  await hub.receive(bob.id, {
    type: "private",
    target_username: "Alice",
    message: "hello stranger",
  });
  await hub.whenStored();
  assert.deepEqual(alice.peer.of("contacts_list").at(-1)!.contacts, [
    { username: "Bob", online: true },
    { username: "Carol", online: false },
  ]);
  assert.deepEqual(bob.peer.of("contacts_list").at(-1)!.contacts, [{
    username: "Alice",
    online: true,
  }]);
  await hub.receive(alice.id, { type: "remove_contact", username: "Carol" });
  await hub.receive(alice.id, { type: "contacts" });
  assert.deepEqual(alice.peer.of("contacts_list").at(-1)!.contacts, [{
    username: "Bob",
    online: true,
  }]);
});

Deno.test("scheduled: a message claimed by a process that died before storing it is sent once by the next", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  // The first process stops for good between claiming the due message and storing it.
  class DiesBeforeCommit extends KvStore {
    override appendMessage(): Promise<StoredMessage> {
      return new Promise(() => {});
    }
  }
  const first = await makeHub(kv, clock, { store: new DiesBeforeCommit(kv) });
  const alice = await login(first.hub, "Alice");
  await first.hub.receive(alice.id, {
    type: "schedule",
    message: "exactly once",
    at: new Date(clock.now() + 1000).toISOString(),
  });
  clock.advance(1000);
  void first.hub.runScheduled();
  // Its claim is fresh: a second process leaves the message alone for now...
  await new Promise((r) => setTimeout(r, 50));
  await using second = await makeHub(kv, clock);
  assert.equal(await second.hub.runScheduled(), 0);
  // ...and takes it over once the claim has gone stale.
  clock.advance(SCHEDULE_CLAIM_MS);
  assert.equal(await second.hub.runScheduled(), 1);
  await second.hub.whenStored();
  assert.equal(await second.hub.runScheduled(), 0);
  const stored = await second.store.listMessages("general", { limit: 10 });
  assert.deepEqual(stored.map((m) => m.text), ["exactly once"]);
});

Deno.test("scheduled: a banned author's scheduled message does not go out", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const root = await login(hub, "Root", "root-password");
  const mallory = await login(hub, "Mallory");
  await hub.receive(mallory.id, {
    type: "schedule",
    message: "after my ban",
    at: new Date(clock.now() + 5000).toISOString(),
  });
  await hub.receive(root.id, { type: "ban", username: "Mallory" });
  clock.advance(5000);
  assert.equal(await hub.runScheduled(), 0);
  await hub.whenStored();
  assert.equal(root.peer.of("message").some((m) => m.message === "after my ban"), false);
  assert.equal((await ctx.store.listScheduledOf("Mallory")).length, 0, "and it is gone");
});

Deno.test("files: an upload the quota refuses stores no byte", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), {
    rateLimit: { count: 1, windowMs: 3600_000 },
  });
  const { hub } = ctx;
  await login(hub, "Alice");
  await hub.request("Alice", { type: "message", message: "my one message this hour" });
  await assert.rejects(
    hub.uploadFile(
      "Alice",
      { name: "big.bin", mime: "application/octet-stream" },
      bytes(
        new Uint8Array(100_000),
      ),
    ),
    /You can send 1 messages to rooms per 1h/,
  );
  await hub.whenStored();
  await ctx.store.flush();
  const chunks = [];
  for await (const e of kv.list({ prefix: ["file_chunks"] })) chunks.push(e.key);
  const files = [];
  for await (const e of kv.list({ prefix: ["files"] })) files.push(e.key);
  assert.deepEqual([chunks.length, files.length], [0, 0]);
});
