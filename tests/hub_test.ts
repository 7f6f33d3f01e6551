import assert from "node:assert/strict";
import { PRESENCE_BURST, PRESENCE_REFILL_MS } from "../server/core/presence_notices.ts";
import { POST_WINDOW } from "../server/core/commands.ts";
import { CURSOR_SAVES_PER_TICK } from "../server/core/cursors.ts";
import { MEMBERSHIP_BURST } from "../server/core/rooms.ts";
import { KvStore } from "../server/store/kv_store.ts";
import type { Cursor } from "../server/store/store.ts";
import { FakeClock, FakePeer, login, makeHub } from "./_helpers.ts";

Deno.test("Hub: a guest says hello and gets welcome, greeting and the history of general", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const { peer } = await login(hub, "Alice");
  const [welcome, greeting, history] = peer.frames;
  assert.deepEqual(welcome, {
    type: "welcome",
    username: "Alice",
    registered: false,
    admin: false,
    mode: { kind: "room", room: "general" },
    rooms: ["general"],
    online_users: 1,
    timestamp: "2026-01-15T14:30:00.000Z",
  });
  assert.equal(greeting?.type, "system");
  assert.match((greeting as { message: string }).message, /Welcome to the chat, Alice!/);
  assert.deepEqual(history, {
    type: "history",
    chat: "general",
    reason: "join",
    messages: [],
    has_more: false,
  });
});

Deno.test("Hub: frames before hello are refused with not_logged_in, and the connection goes on", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const peer = new FakePeer();
  const id = hub.connect(peer);
  await hub.receive(id, { type: "message", message: "hi", ref: "r1" });
  assert.deepEqual(peer.of("error")[0], {
    type: "error",
    code: "not_logged_in",
    message: 'Say who you are first: {"username":"YourName"}',
    ref: "r1",
  });
  await hub.receive(id, { type: "hello", username: "Alice" });
  assert.equal(peer.of("welcome").length, 1);
});

Deno.test("Hub: a room message reaches every member once, stamped by the clock, and is acked to its sender after storage", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  clock.advance(60_000);
  await hub.receive(alice.id, { type: "message", message: "hello", ref: "m1" });
  // Nothing is delivered or acked before the write commits.
  assert.equal(alice.peer.of("ack").length, 0);
  await hub.whenStored();
  const msg = {
    type: "message",
    room: "general",
    from_username: "Alice",
    message: "hello",
    seq: 1,
    timestamp: "2026-01-15T14:31:00.000Z",
  };
  for (const p of [alice.peer, bob.peer]) {
    const got = p.of("message");
    assert.equal(got.length, 1);
    assert.deepEqual({ ...got[0], id: undefined }, { ...msg, id: undefined });
  }
  const ack = alice.peer.of("ack")[0]!;
  assert.equal(ack.ref, "m1");
  assert.equal(ack.seq, 1);
  assert.equal(ack.chat, "general");
  assert.equal(ack.id, alice.peer.of("message")[0]!.id);
  assert.equal(bob.peer.of("ack").length, 0);
});

Deno.test("Hub: online and offline notices go to others with the online count", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const online = alice.peer.of("system").find((f) => f.event === "online");
  assert.equal(online?.username, "Bob");
  assert.equal(online?.online_users, 2);
  assert.equal(bob.peer.of("system").filter((f) => f.event === "online").length, 0);
  hub.disconnect(bob.id);
  const offline = alice.peer.of("system").find((f) => f.event === "offline");
  assert.equal(offline?.username, "Bob");
  assert.equal(offline?.online_users, 1);
  assert.equal(hub.onlineUsers, 1);
});

Deno.test("Hub: a private message reaches both ends only, and waits for an offline recipient", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const carol = await login(hub, "Carol");
  await hub.receive(alice.id, { type: "private", target_username: "bob", message: "psst" });
  await hub.whenStored();
  for (const p of [alice.peer, bob.peer]) {
    const f = p.of("private");
    assert.equal(f.length, 1);
    assert.equal(f[0]!.from_username, "Alice");
    assert.equal(
      f[0]!.to_username,
      "Bob",
      "lookup is case-insensitive and answers with the real name",
    );
  }
  assert.equal(carol.peer.of("private").length, 0);
  assert.equal(alice.peer.of("ack")[0]!.chat, "@Bob");

  // Bob goes away; two more arrive; on his return they are replayed once.
  hub.disconnect(bob.id);
  await hub.receive(alice.id, {
    type: "private",
    target_username: "Bob",
    message: "are you there?",
  });
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "call me" });
  await hub.whenStored();
  await hub.housekeeping();
  const back = await login(hub, "Bob");
  const unread = back.peer.of("history").find((h) => h.reason === "unread");
  assert.ok(unread, "unread replay arrives");
  assert.equal(unread.chat, "@Alice");
  assert.equal(unread.unread, 2);
  assert.deepEqual(unread.messages.map((m) => m.message), ["are you there?", "call me"]);
  hub.disconnect(back.id);
  await hub.housekeeping();
  const again = await login(hub, "Bob");
  assert.equal(
    again.peer.of("history").filter((h) => h.reason === "unread").length,
    0,
    "read messages are not replayed",
  );
});

Deno.test("Hub: private messages to yourself or to nobody are refused with a reason", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  await hub.receive(alice.id, { type: "private", target_username: "Alice", message: "me" });
  await hub.receive(alice.id, { type: "private", target_username: "Ghost", message: "boo" });
  const errors = alice.peer.of("error");
  assert.equal(errors[0]!.code, "bad_field");
  assert.equal(errors[1]!.code, "no_such_user");
  assert.match(errors[1]!.message, /There is no user "Ghost"/);
});

Deno.test("Hub: register claims a name; from then on hello needs the right password", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  await hub.receive(alice.id, { type: "register", password: "123" });
  assert.equal(alice.peer.of("error")[0]!.code, "bad_field", "too short");
  await hub.receive(alice.id, { type: "register", password: "correct horse" });
  assert.match(alice.peer.of("system").at(-1)!.message, /now registered/);

  const noPw = await login(hub, "Alice");
  assert.equal(noPw.peer.of("error")[0]!.code, "password_required");
  assert.equal(noPw.peer.of("welcome").length, 0);
  const wrong = await login(hub, "alice", "wrong horse");
  assert.equal(wrong.peer.of("error")[0]!.code, "bad_password");
  const right = await login(hub, "alice", "correct horse");
  const welcome = right.peer.of("welcome")[0]!;
  assert.equal(welcome.username, "Alice");
  assert.equal(welcome.registered, true);
});

Deno.test("Hub: hello with a password on a free name registers it", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const dave = await login(hub, "Dave", "secret-pw");
  assert.equal(dave.peer.of("welcome")[0]!.registered, true);
  const again = await login(hub, "Dave");
  assert.equal(again.peer.of("error")[0]!.code, "password_required");
});

Deno.test("Hub: one user on two connections sees what they send and receive on both", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const phone = await login(hub, "Alice");
  const laptop = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  assert.equal(hub.onlineUsers, 2);
  await hub.receive(phone.id, { type: "message", message: "from phone" });
  await hub.receive(bob.id, { type: "private", target_username: "Alice", message: "to alice" });
  await hub.receive(phone.id, { type: "private", target_username: "Bob", message: "from alice" });
  await hub.whenStored();
  for (const p of [phone.peer, laptop.peer]) {
    assert.deepEqual(p.of("message").map((m) => m.message), ["from phone"]);
    assert.deepEqual(p.of("private").map((m) => m.message), ["to alice", "from alice"]);
  }
  assert.equal(phone.peer.of("ack").length, 2, "acks go to the sending connection only");
  assert.equal(laptop.peer.of("ack").length, 0);
  // Joining a room on one device shows on the other.
  await hub.receive(laptop.id, { type: "join", room: "games" });
  assert.equal(phone.peer.of("joined")[0]!.room, "games");
  assert.deepEqual(
    phone.peer.of("joined")[0]!.mode,
    { kind: "room", room: "general" },
    "the other device stays where it was",
  );
  hub.disconnect(phone.id);
  assert.equal(
    bob.peer.of("system").filter((f) => f.event === "offline").length,
    0,
    "still online on the laptop",
  );
});

Deno.test("Hub: sessions: request, accept, plain text goes to the partner, exit ends it for both", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const carol = await login(hub, "Carol");
  await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  assert.equal(bob.peer.of("session_request")[0]!.from_username, "Alice");
  await hub.receive(carol.id, {
    type: "session_response",
    target_username: "Alice",
    accepted: true,
  });
  assert.equal(carol.peer.of("error")[0]!.code, "no_session_request");
  await hub.receive(bob.id, { type: "session_response", target_username: "Alice", accepted: true });
  for (const [p, other] of [[alice.peer, "Bob"], [bob.peer, "Alice"]] as const) {
    const acc = p.of("session_accepted")[0]!;
    assert.equal(acc.from_username, "Alice");
    assert.equal(acc.to_username, "Bob");
    assert.deepEqual(acc.mode, { kind: "session", with: other });
  }
  await hub.receive(alice.id, { type: "status" });
  assert.equal(alice.peer.of("status")[0]!.session, "Bob");
  await hub.receive(alice.id, { type: "message", message: "just us" });
  await hub.whenStored();
  assert.equal(bob.peer.of("private")[0]!.message, "just us");
  assert.equal(carol.peer.of("private").length + carol.peer.of("message").length, 0);
  // A third user cannot barge in.
  await hub.receive(carol.id, { type: "session_request", target_username: "Bob" });
  assert.equal(carol.peer.of("error").at(-1)!.code, "session_conflict");
  await hub.receive(bob.id, { type: "session_end" });
  for (const p of [alice.peer, bob.peer]) {
    assert.deepEqual(p.of("session_ended")[0]!.mode, { kind: "room", room: "general" });
  }
  await hub.receive(alice.id, { type: "message", message: "back in general" });
  await hub.whenStored();
  assert.equal(carol.peer.of("message")[0]!.message, "back in general");
});

Deno.test("Hub: asking again while a request is pending puts nothing more on their screen; requests count as private messages", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, undefined, {
    privateRateLimit: { count: 3, windowMs: 60_000 },
  });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const carol = await login(hub, "Carol");
  const dan = await login(hub, "Dan");
  const eve = await login(hub, "Eve");
  for (let i = 0; i < 5; i++) {
    await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  }
  assert.equal(bob.peer.of("session_request").length, 1, "one question, however often asked");
  assert.match(alice.peer.of("system").at(-1)!.message, /You already asked Bob; waiting/);
  assert.equal(alice.peer.of("error").length, 0);
  // Bob says no; asking again is a new question, and counts again.
  await hub.receive(bob.id, {
    type: "session_response",
    target_username: "Alice",
    accepted: false,
  });
  await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  assert.equal(bob.peer.of("session_request").length, 2);
  await hub.receive(alice.id, { type: "session_request", target_username: "Carol" });
  assert.equal(carol.peer.of("session_request").length, 1);
  // The fourth question in the window is over the private quota (3 a minute here).
  await hub.receive(alice.id, { type: "session_request", target_username: "Dan" });
  assert.equal(dan.peer.of("session_request").length, 0);
  assert.equal(alice.peer.of("error").at(-1)!.code, "rate_limited");
  ctx.clock.advance(60_000);
  await hub.receive(alice.id, { type: "session_request", target_username: "Eve" });
  assert.equal(eve.peer.of("session_request").length, 1);
});

Deno.test("Hub: a rejected session tells both sides and changes no mode", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  await hub.receive(bob.id, {
    type: "session_response",
    target_username: "Alice",
    accepted: false,
  });
  for (const p of [alice.peer, bob.peer]) {
    const rej = p.of("session_rejected")[0]!;
    assert.equal(rej.from_username, "Alice");
    assert.deepEqual(rej.mode, { kind: "room", room: "general" });
  }
  await hub.receive(bob.id, { type: "session_response", target_username: "Alice", accepted: true });
  assert.equal(bob.peer.of("error")[0]!.code, "no_session_request", "a request is answered once");
});

Deno.test("Hub: a session ends when the partner goes offline, and a request to an offline user is refused", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  await hub.receive(bob.id, { type: "session_response", target_username: "Alice", accepted: true });
  hub.disconnect(bob.id);
  assert.match(alice.peer.of("session_ended")[0]!.message, /Bob went offline/);
  await hub.receive(alice.id, { type: "session_request", target_username: "Bob" });
  assert.match(alice.peer.of("error")[0]!.message, /Bob is offline/);
});

Deno.test("Hub: rooms: join creates, members see each other, counts are right, general cannot be left", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "join", room: "games" });
  assert.deepEqual(alice.peer.of("joined")[0]!.mode, { kind: "room", room: "games" });
  await hub.receive(alice.id, { type: "message", message: "anyone?" });
  await hub.whenStored();
  assert.equal(bob.peer.of("message").length, 0, "not a member, not delivered");
  await hub.receive(bob.id, { type: "message", room: "games", message: "sneaky" });
  assert.equal(bob.peer.of("error")[0]!.code, "not_member");
  await hub.receive(bob.id, { type: "join", room: "games" });
  const history = bob.peer.of("history").find((h) => h.chat === "games")!;
  assert.deepEqual(history.messages.map((m) => m.message), ["anyone?"]);
  assert.equal(alice.peer.of("system").find((f) => f.event === "joined")?.username, "Bob");
  await hub.receive(bob.id, { type: "rooms" });
  const rooms = bob.peer.of("rooms_list")[0]!.rooms;
  assert.deepEqual(rooms, [
    { name: "games", members: 2, online: 2, joined: true, private: false, owner: null },
    { name: "general", members: 2, online: 2, joined: true, private: false, owner: null },
  ]);
  await hub.receive(bob.id, { type: "leave" });
  assert.deepEqual(bob.peer.of("left")[0]!.mode, { kind: "room", room: "general" });
  await hub.receive(bob.id, { type: "leave", room: "general" });
  assert.equal(bob.peer.of("error").at(-1)!.code, "forbidden");
  await hub.receive(bob.id, { type: "leave", room: "nowhere" });
  assert.equal(bob.peer.of("error").at(-1)!.code, "no_such_room");
});

Deno.test("Hub: history pages backwards with before and limit", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  for (let i = 1; i <= 30; i++) await hub.receive(alice.id, { type: "message", message: `m${i}` });
  await hub.whenStored();
  await hub.receive(alice.id, { type: "history", limit: 5 });
  let page = alice.peer.of("history").at(-1)!;
  assert.deepEqual(page.messages.map((m) => m.message), ["m26", "m27", "m28", "m29", "m30"]);
  assert.equal(page.has_more, true);
  await hub.receive(alice.id, { type: "history", chat: "general", before: 3, limit: 5 });
  page = alice.peer.of("history").at(-1)!;
  assert.deepEqual(page.messages.map((m) => m.message), ["m1", "m2"]);
  assert.equal(page.has_more, false);
  await hub.receive(alice.id, { type: "history", chat: "@Nobody" });
  assert.equal(alice.peer.of("error")[0]!.code, "no_such_user");
});

Deno.test("Hub: history pages before, after or around a message given by its id or its seq", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  await login(hub, "Bob");
  for (let i = 1; i <= 10; i++) await hub.receive(alice.id, { type: "message", message: `m${i}` });
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "x" });
  await hub.whenStored();
  const ids = alice.peer.of("ack").map((a) => a.id);
  assert.equal(ids.length, 11);
  const page = async (fields: Record<string, unknown>) => {
    const ref = `p${Math.random()}`;
    await hub.receive(alice.id, { type: "history", chat: "general", limit: 3, ref, ...fields });
    const answer = alice.peer.frames.find((f) => "ref" in f && f.ref === ref)!;
    if (answer.type === "error") return answer.code;
    assert.equal(answer.type, "history");
    return answer.type === "history" ? answer.messages.map((m) => m.message) : [];
  };
  assert.deepEqual(await page({ before: ids[4] }), ["m2", "m3", "m4"]);
  assert.deepEqual(await page({ after: ids[4] }), ["m6", "m7", "m8"]);
  // Around: the message, and half the page either side (the older side first).
  assert.deepEqual(await page({ around: ids[4] }), ["m4", "m5", "m6"]);
  assert.deepEqual(await page({ around: 5, limit: 1 }), ["m5"]);
  assert.deepEqual(await page({ around: ids[0], limit: 4 }), ["m1", "m2", "m3"]);
  assert.deepEqual(await page({ around: ids[9] }), ["m9", "m10"]);
  // An id of another chat, or none at all: no such message here.
  assert.equal(await page({ before: ids[10] }), "no_such_message");
  assert.equal(await page({ around: "01JDZ3K6Q9V7C8W2X4Y5Z6A7B8" }), "no_such_message");
});

Deno.test("Hub: a returning user gets general's history with everything unread since they left", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { historySize: 3 });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "message", message: "seen" });
  await hub.whenStored();
  hub.disconnect(bob.id);
  for (let i = 1; i <= 5; i++) {
    await hub.receive(alice.id, { type: "message", message: `missed ${i}` });
  }
  await hub.whenStored();
  await hub.housekeeping();
  const back = await login(hub, "Bob");
  const h = back.peer.of("history")[0]!;
  assert.equal(h.unread, 5);
  assert.deepEqual(h.messages.map((m) => m.message), [
    "missed 1",
    "missed 2",
    "missed 3",
    "missed 4",
    "missed 5",
  ]);
  hub.disconnect(back.id);
  await hub.housekeeping();
  const again = await login(hub, "Bob");
  const h2 = again.peer.of("history")[0]!;
  assert.equal(h2.unread, undefined);
  assert.equal(h2.messages.length, 3, "only the usual history size once everything is read");
});

Deno.test("Hub: state survives a restart on the same store: users, rooms, messages, cursors", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/chat.kv`;
  try {
    {
      await using kv = await Deno.openKv(path);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      const alice = await login(hub, "Alice", "alice-pw");
      const bob = await login(hub, "Bob");
      await hub.receive(alice.id, { type: "join", room: "games" });
      await hub.receive(alice.id, { type: "message", message: "before restart" });
      await hub.whenStored();
      hub.disconnect(bob.id);
      await hub.receive(alice.id, {
        type: "private",
        target_username: "Bob",
        message: "while you were out",
      });
      await hub.close();
    }
    {
      await using kv = await Deno.openKv(path);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      const noPw = await login(hub, "Alice");
      assert.equal(noPw.peer.of("error")[0]!.code, "password_required");
      const alice = await login(hub, "Alice", "alice-pw");
      assert.deepEqual(alice.peer.of("welcome")[0]!.rooms, ["games", "general"]);
      const bob = await login(hub, "Bob");
      const unread = bob.peer.of("history").find((h) => h.reason === "unread")!;
      assert.deepEqual(unread.messages.map((m) => m.message), ["while you were out"]);
      await hub.receive(alice.id, { type: "history", chat: "games" });
      assert.deepEqual(alice.peer.of("history").at(-1)!.messages.map((m) => m.message), [
        "before restart",
      ]);
      await hub.receive(alice.id, { type: "message", room: "games", message: "after restart" });
      await hub.whenStored();
      assert.equal(alice.peer.of("ack")[0]!.seq, 2, "sequence numbers continue");
      await hub.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Hub: replies to a connection keep the order of its commands", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  alice.peer.clear();
  // Not awaited one by one: a client that pipelines its commands.
  const a = hub.receive(alice.id, { type: "message", message: "first" });
  const b = hub.receive(alice.id, { type: "status" });
  await Promise.all([a, b]);
  await hub.whenStored();
  assert.deepEqual(alice.peer.frames.map((f) => f.type), ["message", "ack", "status"]);
});

Deno.test("Hub: reconnecting while the last disconnect's cursors are being saved loses nothing", async () => {
  await using kv = await Deno.openKv(":memory:");
  // A store whose cursor saves wait for the test to let them through.
  let release: () => void = () => {};
  let arrived!: Promise<void>;
  let arrive!: () => void;
  const expectSave = () => (arrived = new Promise((r) => (arrive = r)));
  class GatedStore extends KvStore {
    gated = true;
    override async saveCursors(cursors: Cursor[]): Promise<void> {
      await super.saveCursors(cursors);
      if (!this.gated) return;
      // Written; the caller hears so only when the test says.
      const gate = new Promise<void>((r) => (release = r));
      arrive();
      await gate;
    }
  }
  const store = new GatedStore(kv);
  await using ctx = await makeHub(kv, new FakeClock(), { store });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  let bob = await login(hub, "Bob");
  // The save may finish at any point of the next login: try every offset of a few microtask hops.
  for (let hops = 0; hops < 20; hops++) {
    await hub.receive(alice.id, { type: "private", target_username: "Bob", message: `m${hops}` });
    await hub.whenStored();
    expectSave();
    hub.disconnect(bob.id);
    const saving = hub.whenStored();
    await arrived;
    release();
    for (let i = 0; i < hops; i++) await Promise.resolve();
    bob = await login(hub, "Bob");
    await saving;
    assert.deepEqual(bob.peer.of("error"), [], `offset ${hops}`);
    assert.equal(bob.peer.of("welcome").length, 1);
    assert.equal(
      bob.peer.of("history").filter((h) => h.reason === "unread").length,
      0,
      "m was delivered live",
    );
  }
  store.gated = false; // let the final close save without waiting
});

Deno.test("Hub: an idle offline user's cursors leave memory after a minute and come back from the store", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "seen" });
  await hub.whenStored();
  hub.disconnect(bob.id);
  await hub.housekeeping();
  assert.equal(hub.cursorsCached("Bob"), true, "kept while recently used");
  clock.advance(61_000);
  await hub.housekeeping();
  assert.equal(hub.cursorsCached("Bob"), false);
  assert.equal(hub.cursorsCached("Alice"), true, "online users keep theirs");
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "unseen" });
  await hub.whenStored();
  const back = await login(hub, "Bob");
  const unread = back.peer.of("history").filter((h) => h.reason === "unread");
  assert.deepEqual(unread.flatMap((h) => h.messages.map((m) => m.message)), ["unseen"]);
});

Deno.test("Hub: a REST sender's own message is read for them, but never skips earlier unread ones", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  await hub.login("Rest", "password1");
  await hub.request("Rest", { type: "message", message: "mine first" });
  let counts = (await hub.request("Rest", { type: "unread_counts" }))[0] as { chats: unknown[] };
  assert.deepEqual(counts.chats, [], "nothing unread: the only new message is its own");
  const live = await login(hub, "Live");
  await hub.receive(live.id, { type: "message", message: "from live" });
  await hub.whenStored();
  await hub.request("Rest", { type: "message", message: "mine second" });
  counts = (await hub.request("Rest", { type: "unread_counts" }))[0] as { chats: unknown[] };
  assert.deepEqual(counts.chats, [{ chat: "general", unread: 2 }]);
  const page = (await hub.request("Rest", { type: "unread", chat: "general" }))[0] as {
    messages: Array<{ message: string }>;
  };
  assert.deepEqual(page.messages.map((m) => m.message), ["from live", "mine second"]);
});

Deno.test("Hub: a message that arrives while a connection's history is being read comes after that history", async () => {
  await using kv = await Deno.openKv(":memory:");
  let gate: Promise<void> | null = null;
  let open!: () => void;
  let reading!: () => void;
  const readingP = new Promise<void>((r) => (reading = r));
  class SlowHistory extends KvStore {
    override async listMessages(
      chat: string,
      o: { limit: number; before?: number; after?: number },
    ) {
      const page = await super.listMessages(chat, o);
      if (gate) {
        reading();
        await gate;
      }
      return page;
    }
  }
  await using ctx = await makeHub(kv, new FakeClock(), { store: new SlowHistory(kv) });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  await hub.receive(alice.id, { type: "message", message: "old" });
  await hub.whenStored();
  gate = new Promise((r) => (open = r));
  const bob = new FakePeer();
  const bobId = hub.connect(bob);
  const hello = hub.receive(bobId, { type: "hello", username: "Bob" });
  await readingP; // Bob is online, his history read is in progress
  await hub.receive(alice.id, { type: "message", message: "new" });
  await hub.whenStored();
  assert.equal(bob.of("message").length, 0, "held back during the replay");
  gate = null;
  open();
  await hello;
  const order = bob.frames.map((f) =>
    f.type === "history" ? `history:${f.messages.map((m) => m.message)}` : f.type
  );
  assert.deepEqual(order, ["welcome", "system", "history:old", "message"]);
  assert.equal(bob.of("message")[0]!.message, "new");
});

Deno.test("Hub: a connection with POST_WINDOW messages waiting for their commit is not taken more frames until half are acked", async () => {
  await using kv = await Deno.openKv(":memory:");
  // A store whose message commits wait for the test to let them through, one by one.
  const held: (() => void)[] = [];
  let holding = false;
  class HeldCommits extends KvStore {
    override async appendMessage(...args: Parameters<KvStore["appendMessage"]>) {
      if (holding) await new Promise<void>((r) => held.push(r));
      return await super.appendMessage(...args);
    }
  }
  await using ctx = await makeHub(kv, new FakeClock(), { store: new HeldCommits(kv) });
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  holding = true;
  const settled: boolean[] = [];
  const received = Array.from({ length: POST_WINDOW + 1 }, (_, i) => {
    settled.push(false);
    return hub.receive(alice.id, { type: "message", message: `m${i}` }).then(() => {
      settled[i] = true;
    });
  });
  await Promise.all(received.slice(0, POST_WINDOW - 1));
  await new Promise((r) => setTimeout(r, 10));
  // The frame that fills the window is handled, but the reader is told to wait; so is the next.
  assert.equal(held.length, POST_WINDOW + 1, "every frame was handled and is being stored");
  assert.equal(settled[POST_WINDOW - 1], false, "the frame that filled the window waits");
  assert.equal(settled[POST_WINDOW], false);
  // Acks of fewer than half the window do not let the reader go on...
  for (const release of held.splice(0, POST_WINDOW / 2)) release();
  for (let i = 0; i < 200 && alice.peer.of("ack").length < POST_WINDOW / 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(alice.peer.of("ack").length, POST_WINDOW / 2);
  assert.equal(settled[POST_WINDOW], false, `${POST_WINDOW / 2 + 1} still waiting`);
  // ...one more does, and every message is acked in the end.
  held.shift()!();
  await Promise.all(received);
  holding = false;
  for (const release of held.splice(0)) release();
  await hub.whenStored();
  assert.equal(alice.peer.of("ack").length, POST_WINDOW + 1);
});

Deno.test("Hub: housekeeping saves read cursors a share at a time, oldest first, in small writes one after another", async () => {
  await using kv = await Deno.openKv(":memory:");
  // A store that records each cursor save: its size and how many were under way at once.
  const saves: number[] = [];
  let open = 0;
  let mostOpen = 0;
  class CountingStore extends KvStore {
    override async saveCursors(cursors: Cursor[]): Promise<void> {
      saves.push(cursors.length);
      mostOpen = Math.max(mostOpen, ++open);
      try {
        await super.saveCursors(cursors);
      } finally {
        open--;
      }
    }
  }
  const store = new CountingStore(kv);
  await using ctx = await makeHub(kv, new FakeClock(), { store });
  const { hub } = ctx;
  const members = [];
  for (let i = 0; i < 2500; i++) members.push(await login(hub, `r${i}`));
  await hub.receive(members[0]!.id, { type: "message", message: "seen by all" });
  await hub.whenStored();
  const savedAt = async (seq: number) => {
    await ctx.store.flush();
    const rows = await Array.fromAsync(kv.list<number>({ prefix: ["cursors"] }));
    return rows.filter((r) => r.value === seq).map((r) => String(r.key[1]));
  };
  const seq = members[0]!.peer.of("ack")[0]!.seq;
  saves.length = 0;
  await hub.housekeeping();
  const first = await savedAt(seq);
  assert.equal(first.length, CURSOR_SAVES_PER_TICK, "one share in a tick");
  assert.ok(saves.every((n) => n <= 100), `parts of at most 100: ${saves}`);
  assert.equal(mostOpen, 1, "one part at a time");
  // Oldest changes first: the readers were reached in the order they joined.
  const order = (name: string) => Number(name.slice(1));
  assert.ok(Math.max(...first.map(order)) < 1100, "the first to change are the first saved");
  await hub.housekeeping();
  await hub.housekeeping();
  assert.equal((await savedAt(seq)).length, 2500, "every cursor within three ticks");
});

Deno.test("Hub: a guest gone past the grace period who left nothing behind is forgotten, here and in the store; others stay", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  {
    await using ctx = await makeHub(kv, clock);
    const { hub, store } = ctx;
    const watcher = await login(hub, "Watcher", "watcher-password");
    const ghost = await login(hub, "Ghost");
    await hub.receive(ghost.id, { type: "message", room: "general", message: "boo" });
    const friend = await login(hub, "Friend");
    await hub.receive(friend.id, { type: "private", target_username: "Watcher", message: "hi" });
    const roomer = await login(hub, "Roomer");
    await hub.receive(roomer.id, { type: "join", room: "games" });
    const reported = await login(hub, "Reported");
    await hub.receive(watcher.id, { type: "report", username: "Reported", reason: "spam" });
    await hub.whenStored();
    for (const c of [ghost, friend, roomer, reported]) hub.disconnect(c.id);
    const names = async () => {
      await hub.receive(watcher.id, { type: "users", ref: `u${clock.now()}` });
      return watcher.peer.of("users_list").at(-1)!.all.map((u) => u.username).sort();
    };
    // Within the grace period nothing is forgotten.
    clock.advance(9 * 60_000);
    await hub.housekeeping();
    assert.ok((await names()).includes("Ghost"));
    clock.advance(2 * 60_000);
    await hub.housekeeping();
    assert.deepEqual(await names(), ["Friend", "Reported", "Roomer", "Watcher"]);
    assert.equal(await store.getUser("Ghost"), null, "the record is gone from the store");
    assert.notEqual(await store.getUser("Friend"), null);
    // What the guest said stays in the history, under their name.
    await hub.receive(watcher.id, { type: "history", chat: "general", ref: "h1" });
    const history = watcher.peer.of("history").find((h) => h.ref === "h1")!;
    assert.ok(history.messages.some((m) => m.type === "message" && m.from_username === "Ghost"));
    // The name is free: whoever takes it is a new guest.
    const again = await login(hub, "ghost");
    assert.equal(again.peer.of("welcome")[0]?.username, "ghost");
    hub.disconnect(again.id);
  }
  // A restart loads the guests that are left and forgets those idle long enough.
  clock.advance(11 * 60_000);
  await using ctx = await makeHub(kv, clock);
  await ctx.hub.housekeeping();
  assert.equal(await ctx.store.getUser("ghost"), null, "forgotten after a restart too");
  assert.notEqual(await ctx.store.getUser("Roomer"), null);
  assert.notEqual(await ctx.store.getUser("Watcher"), null);
});

Deno.test("Hub: a guest who says the name while it is being forgotten gets in once the old rows are gone, and keeps the new record", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock, store } = ctx;
  const first = await login(hub, "Echo");
  hub.disconnect(first.id);
  await hub.whenStored();
  clock.advance(11 * 60_000);
  // The store's delete is held until the name is said again.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const deleteUsers = store.deleteUsers.bind(store);
  store.deleteUsers = async (names) => {
    await gate;
    await deleteUsers(names);
  };
  const housekeeping = hub.housekeeping();
  await new Promise((r) => setTimeout(r, 10));
  const again = login(hub, "Echo");
  await new Promise((r) => setTimeout(r, 10));
  release();
  await housekeeping;
  const { peer } = await again;
  assert.equal(peer.of("welcome")[0]?.username, "Echo");
  await hub.whenStored();
  assert.notEqual(await store.getUser("Echo"), null, "the new guest's record is there");
});

Deno.test("Hub: others hear of a user's away changes at most once per window; what changed inside it is told as it stands at the end", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const told = () =>
    alice.peer.of("system").filter((f) => f.event === "away").map((f) => f.away ?? "(back)");
  await hub.receive(bob.id, { type: "away", message: "lunch" });
  assert.deepEqual(told(), ["lunch"]);
  // Back and away again at once: the others hear nothing more yet, though the state is right.
  await hub.receive(bob.id, { type: "away" });
  await hub.receive(bob.id, { type: "away", message: "meeting" });
  await hub.receive(bob.id, { type: "away" });
  await hub.receive(bob.id, { type: "away", message: "meeting" });
  assert.deepEqual(told(), ["lunch"]);
  await hub.receive(alice.id, { type: "users", username: "Bob", ref: "u1" });
  assert.equal(alice.peer.of("users_list").at(-1)!.all[0]!.away, "meeting");
  clock.advance(5_000);
  await hub.housekeeping();
  assert.deepEqual(told(), ["lunch"], "not before the window ends");
  clock.advance(5_000);
  await hub.housekeeping();
  assert.deepEqual(told(), ["lunch", "meeting"], "the state at the end of the window");
  // Away and back inside a window: nothing to tell at its end.
  await hub.receive(bob.id, { type: "away" });
  await hub.receive(bob.id, { type: "away", message: "meeting" });
  clock.advance(10_000);
  await hub.housekeeping();
  assert.deepEqual(told(), ["lunch", "meeting"]);
  // The window has passed: the next change is told at once.
  clock.advance(10_000);
  await hub.housekeeping();
  await hub.receive(bob.id, { type: "away" });
  assert.deepEqual(told(), ["lunch", "meeting", "(back)"]);
});

Deno.test("Hub: arrival and departure notices come from an allowance; a connect loop past it is told once it comes back, as it stands", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const told = () =>
    alice.peer.of("system").filter((f) => f.username === "Bob").map((f) => f.event);
  // Twenty connect-disconnect cycles at once: the first PRESENCE_BURST changes are told.
  for (let i = 0; i < 20; i++) {
    const bob = await login(hub, "Bob");
    hub.disconnect(bob.id);
  }
  assert.equal(told().length, PRESENCE_BURST);
  assert.deepEqual(told().slice(0, 2), ["online", "offline"]);
  // Bob ends offline, as the others last heard: nothing more to tell when the allowance is back.
  clock.advance(PRESENCE_REFILL_MS);
  await hub.housekeeping();
  assert.equal(told().length, PRESENCE_BURST);
  // One notice of allowance is back: he arrives (told at once), then leaves past the allowance.
  const bob = await login(hub, "Bob");
  assert.equal(told().at(-1), "online");
  const before = told().length;
  hub.disconnect(bob.id);
  await hub.housekeeping();
  assert.equal(told().length, before, "not before the allowance comes back");
  clock.advance(PRESENCE_REFILL_MS);
  await hub.housekeeping();
  assert.equal(told().at(-1), "offline", "told as it stands once the allowance is back");
  assert.equal(told().length, before + 1);
  // Once the allowance is full again, notices are told at once.
  clock.advance(PRESENCE_REFILL_MS * PRESENCE_BURST);
  await hub.housekeeping();
  await login(hub, "Bob");
  assert.equal(told().at(-1), "online");
  assert.equal(told().length, before + 2);
});

Deno.test("Hub: joins and leaves come from an allowance (each tells the whole room): a loop is refused with when to try again", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const owner = await login(hub, "Owner");
  await hub.receive(owner.id, { type: "join", room: "busy" });
  const looper = await login(hub, "Looper");
  for (let i = 0; i < MEMBERSHIP_BURST / 2; i++) {
    await hub.receive(looper.id, { type: "join", room: "busy" });
    await hub.receive(looper.id, { type: "leave", room: "busy" });
  }
  assert.equal(looper.peer.of("error").length, 0, "a burst of joins and leaves goes through");
  await hub.receive(looper.id, { type: "join", room: "busy", ref: "j" });
  const refused = looper.peer.of("error").find((e) => e.ref === "j")!;
  assert.equal(refused.code, "rate_limited");
  assert.match(refused.message, /too fast: try again in 2 s/);
  const notices = owner.peer.of("system").filter((f) => f.username === "Looper" && f.room);
  assert.equal(notices.length, MEMBERSHIP_BURST, "the room heard each change that went through");
  // The allowance comes back with time.
  clock.advance(2_000);
  await hub.receive(looper.id, { type: "join", room: "busy", ref: "j2" });
  assert.equal(looper.peer.of("joined").at(-1)?.ref, "j2");
  // Joining a room nobody is in (creating it) is capped on its own, not by this allowance.
  await hub.receive(looper.id, { type: "join", room: "fresh", ref: "j3" });
  assert.equal(looper.peer.of("joined").at(-1)?.ref, "j3");
});

Deno.test("join: a room another process made on the shared store, not yet told here, is joined, not made again", async () => {
  await using kv = await Deno.openKv(":memory:");
  // Two cores on one store and no broker between them: node B never hears of A's room.
  await using a = await makeHub(kv);
  await using b = await makeHub(kv);
  const alice = await login(a.hub, "Alice");
  await a.hub.receive(alice.id, { type: "join", room: "books" });
  assert.equal(alice.peer.of("joined")[0]!.created, true);
  const bob = await login(b.hub, "Bob");
  await b.hub.receive(bob.id, { type: "join", room: "books" });
  const joined = bob.peer.of("joined")[0]!;
  assert.equal(joined.created, false, "node B made the room again");
  assert.equal((await b.store.getChat("books"))!.createdBy, "Alice");
});

Deno.test("Hub: users with usernames answers for those names only, wherever they fall in the whole list", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  // More online users than the unpaged list shows (500): "Zed" falls past its end.
  for (let i = 0; i < 505; i++) await login(hub, `user${String(i).padStart(3, "0")}`);
  const zed = await login(hub, "Zed");
  await hub.receive(zed.id, { type: "away", message: "out" });
  await hub.receive(alice.id, { type: "users", ref: "all" });
  const all = alice.peer.of("users_list").find((f) => f.ref === "all")!;
  assert.equal(all.all.length, 500);
  assert.ok(!all.users.includes("Zed"), "past the unpaged list's end");
  await hub.receive(alice.id, {
    type: "users",
    usernames: ["zed", "nobody", "user504", "ZED", "alice"],
    ref: "some",
  });
  const some = alice.peer.of("users_list").find((f) => f.ref === "some")!;
  // Those that exist, once each, in the order asked, as the chat spells them.
  assert.deepEqual(some.all.map((u) => [u.username, u.online, u.away]), [
    ["Zed", true, "out"],
    ["user504", true, undefined],
    ["Alice", true, undefined],
  ]);
  assert.deepEqual(some.users, ["Zed", "user504", "Alice"]);
});

Deno.test("Hub: users joining a new room at the same moment all end up in the one room, and all hear it", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const users = [];
  for (let i = 0; i < 8; i++) users.push(await login(hub, `joiner${i}`));
  await Promise.all(users.map((x) => hub.receive(x.id, { type: "join", room: "fresh" })));
  const created = users.map((x) => x.peer.of("joined").at(-1)!.created);
  assert.equal(created.filter(Boolean).length, 1, "made once");
  await hub.receive(users[0]!.id, { type: "message", room: "fresh", message: "all here?" });
  await hub.whenStored();
  for (const x of users) {
    assert.ok(
      x.peer.of("message").some((m) => m.message === "all here?"),
      `${x.peer.of("welcome")[0]!.username} heard it`,
    );
  }
});
