/**
 * Moderation and limits in the core, under a fake clock: quotas, reports and mutes, message
 * lifetime, admin commands, closed registration and the audit trail.
 */
import assert from "node:assert/strict";
import { ADMIN_TYPES, type ClientFrame } from "../protocol/frames.ts";
import type { IndexRow } from "../server/store/kv_index.ts";
import { FakeClock, FakePeer, login, makeHub, seedAdmin, TEST_HASHER } from "./_helpers.ts";

const HOUR = 3600_000;

Deno.test("quota: the 20th message in the hour is accepted, the 21st refused, and accepted again when the window allows", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), {
    rateLimit: { count: 20, windowMs: HOUR },
  });
  const { hub, clock } = ctx;
  const phone = await login(hub, "Alice");
  const laptop = await login(hub, "Alice");
  // Spread over two devices and REST: one quota per user.
  for (let i = 1; i <= 20; i++) {
    if (i % 3 === 0) await hub.request("Alice", { type: "message", message: `m${i}` });
    else await hub.receive(i % 2 ? phone.id : laptop.id, { type: "message", message: `m${i}` });
    if (i === 1) clock.advance(60_000); // the first message is a minute older than the rest
  }
  await hub.whenStored();
  assert.equal([...phone.peer.of("error"), ...laptop.peer.of("error")].length, 0, "20 accepted");
  await hub.receive(phone.id, { type: "message", message: "21st", ref: "x" });
  const refused = phone.peer.of("error")[0]!;
  assert.equal(refused.code, "rate_limited");
  assert.equal(refused.ref, "x");
  const firstAt = Date.UTC(2026, 0, 15, 14, 30);
  assert.match(
    refused.message,
    /20 messages to rooms per 1h; the next one is accepted at 2026-01-15T15:30:00.000Z/,
  );
  await assert.rejects(
    hub.request("Alice", { type: "message", message: "via rest" }),
    /rate_limited|next one/,
  );
  await hub.receive(phone.id, { type: "status" });
  assert.deepEqual(phone.peer.of("status")[0]!.quota, {
    limit: 20,
    window_s: 3600,
    remaining: 0,
    next_at: new Date(firstAt + HOUR).toISOString(),
  });
  // One millisecond before the first message leaves the window: still refused.
  clock.t = firstAt + HOUR - 1;
  await hub.receive(phone.id, { type: "message", message: "too soon" });
  assert.equal(phone.peer.of("error").length, 2);
  clock.t = firstAt + HOUR;
  await hub.receive(phone.id, { type: "message", message: "now fine" });
  await hub.whenStored();
  assert.equal(phone.peer.of("error").length, 2);
  assert.ok(phone.peer.of("message").some((m) => m.message === "now fine"));
  // Private messages have their own limit and are not counted against rooms.
  await login(hub, "Bob");
  await hub.receive(phone.id, { type: "private", target_username: "Bob", message: "dm is fine" });
  await hub.whenStored();
  assert.equal(phone.peer.of("error").length, 2);
});

Deno.test("quota: private messages have their own, looser limit", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), {
    privateRateLimit: { count: 30, windowMs: 60_000 },
  });
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  await login(hub, "Bob");
  for (let i = 0; i < 30; i++) {
    await hub.receive(alice.id, { type: "private", target_username: "Bob", message: `p${i}` });
  }
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "31st" });
  await hub.whenStored();
  const err = alice.peer.of("error")[0]!;
  assert.equal(err.code, "rate_limited");
  assert.match(err.message, /30 private messages per 1m/);
  clock.advance(60_000);
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "later" });
  await hub.whenStored();
  assert.equal(alice.peer.of("error").length, 1);
});

Deno.test("reports: the third distinct reporter mutes for 4 hours; a repeat or self report does not count", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const troll = await login(hub, "Troll");
  const second = await login(hub, "Troll");
  const [a, b, c] = [await login(hub, "A"), await login(hub, "B"), await login(hub, "C")];
  await hub.receive(troll.id, { type: "report", username: "Troll" });
  assert.equal(troll.peer.of("error")[0]!.code, "bad_field");
  await hub.receive(a.id, { type: "report", username: "troll", reason: "spam" });
  await hub.receive(a.id, { type: "report", username: "Troll", reason: "spam again" });
  assert.match(a.peer.of("system").at(-1)!.message, /You already reported Troll; 1 of 3/);
  await hub.receive(b.id, { type: "report", username: "Troll" });
  await hub.receive(troll.id, { type: "message", message: "still talking" });
  await hub.whenStored();
  assert.equal(troll.peer.of("error").length, 1, "two reporters do not mute");
  const mutedAt = clock.now();
  await hub.receive(c.id, { type: "report", username: "Troll" });
  assert.match(
    c.peer.of("system").at(-1)!.message,
    /Troll is now muted until 2026-01-15T18:30:00.000Z/,
  );
  assert.match(
    troll.peer.of("system").at(-1)!.message,
    /You are muted until 2026-01-15T18:30:00.000Z/,
  );
  // Muted on every device and over REST; reading still works.
  await hub.receive(second.id, { type: "message", message: "from the other device" });
  await hub.receive(troll.id, { type: "private", target_username: "A", message: "psst" });
  await assert.rejects(hub.request("Troll", { type: "message", message: "rest" }), /muted until/);
  const errors = [...troll.peer.of("error"), ...second.peer.of("error")].filter((e) =>
    e.code === "muted"
  );
  assert.equal(errors.length, 2);
  assert.match(
    errors[0]!.message,
    /You are muted until 2026-01-15T18:30:00.000Z; you can still read/,
  );
  await hub.receive(troll.id, { type: "history" });
  assert.equal(troll.peer.of("history").at(-1)!.reason, "request");
  // A reconnect does not lift it.
  const again = await login(hub, "Troll");
  await hub.receive(again.id, { type: "message", message: "new connection" });
  assert.equal(again.peer.of("error")[0]!.code, "muted");
  await hub.receive(again.id, { type: "status" });
  assert.equal(again.peer.of("status")[0]!.muted_until, "2026-01-15T18:30:00.000Z");
  // It ends after 4 hours to the millisecond, and the count starts again.
  clock.t = mutedAt + 4 * HOUR - 1;
  await hub.receive(again.id, { type: "message", message: "almost" });
  assert.equal(again.peer.of("error").length, 2);
  clock.t = mutedAt + 4 * HOUR;
  await hub.receive(again.id, { type: "message", message: "free again" });
  await hub.whenStored();
  assert.equal(again.peer.of("error").length, 2);
  await hub.receive(a.id, { type: "report", username: "Troll" });
  await hub.receive(b.id, { type: "report", username: "Troll" });
  await hub.receive(again.id, { type: "message", message: "two new reports only" });
  await hub.whenStored();
  assert.equal(again.peer.of("error").length, 2, "old reports were cleared by the mute");
  await hub.receive(c.id, { type: "report", username: "Troll" });
  await hub.receive(again.id, { type: "message", message: "muted again" });
  assert.equal(again.peer.of("error").at(-1)!.code, "muted");
});

Deno.test("reports survive a restart", async () => {
  const dir = await Deno.makeTempDir();
  try {
    {
      await using kv = await Deno.openKv(`${dir}/chat.kv`);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      await login(hub, "Troll");
      for (const name of ["A", "B"]) {
        await hub.receive((await login(hub, name)).id, { type: "report", username: "Troll" });
      }
    }
    {
      await using kv = await Deno.openKv(`${dir}/chat.kv`);
      await using ctx = await makeHub(kv);
      const { hub } = ctx;
      const troll = await login(hub, "Troll");
      const c = await login(hub, "C");
      await hub.receive(c.id, { type: "report", username: "Troll" });
      await hub.receive(troll.id, { type: "message", message: "x" });
      assert.equal(troll.peer.of("error")[0]!.code, "muted");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lifetime: a message is visible before its lifetime and gone after it, everywhere, and swept from storage", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { messageTtlMs: HOUR });
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  await hub.receive(alice.id, { type: "message", message: "ephemeral" });
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "ephemeral dm" });
  await hub.whenStored();
  const id = alice.peer.of("message")[0]!.id;
  hub.disconnect(bob.id);
  await hub.housekeeping();
  clock.advance(HOUR - 1);
  await hub.receive(alice.id, { type: "history" });
  assert.deepEqual(alice.peer.of("history").at(-1)!.messages.map((m) => m.message), ["ephemeral"]);
  clock.advance(1);
  await hub.receive(alice.id, { type: "history" });
  assert.deepEqual(alice.peer.of("history").at(-1)!.messages, [], "gone from history");
  await hub.receive(alice.id, { type: "history", chat: "@Bob", after: 0 });
  assert.deepEqual(alice.peer.of("history").at(-1)!.messages, [], "gone from paging");
  const back = await login(hub, "Bob");
  assert.deepEqual(
    back.peer.of("history").flatMap((h) => h.messages),
    [],
    "gone from unread replay and join history",
  );
  await hub.receive(back.id, { type: "delete_message", id });
  assert.equal(back.peer.of("error")[0]!.code, "no_such_message");
  const resumed = await login(hub, "Carol");
  assert.deepEqual(resumed.peer.of("history").flatMap((h) => h.messages), []);
  // Storage: still there until the sweep (KV expiry is best effort), then removed.
  const before = await Array.fromAsync(kv.list({ prefix: ["messages"] }));
  assert.equal(before.length, 2);
  await hub.housekeeping();
  const after = await Array.fromAsync(kv.list({ prefix: ["messages"] }));
  assert.equal(after.length, 0);
  assert.equal(await ctx.store.getMessage(id), null);
  const indexed = await Array.fromAsync(kv.list<IndexRow>({ prefix: ["message_index"] }));
  assert.deepEqual(indexed.flatMap((r) => r.value.entries), [], "out of the index too");
  // Sequence numbers go on after a sweep.
  await hub.receive(alice.id, { type: "message", message: "next" });
  await hub.whenStored();
  assert.equal(alice.peer.of("ack").at(-1)!.seq, 2);
});

Deno.test("lifetime 0 keeps messages", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { messageTtlMs: 0 });
  const { hub, clock } = ctx;
  const alice = await login(hub, "Alice");
  await hub.receive(alice.id, { type: "message", message: "forever" });
  await hub.whenStored();
  clock.advance(365 * 24 * HOUR);
  await hub.housekeeping();
  await hub.receive(alice.id, { type: "history" });
  assert.deepEqual(alice.peer.of("history").at(-1)!.messages.map((m) => m.message), ["forever"]);
});

const adminFrames: ClientFrame[] = [
  { type: "kick", username: "Bob" },
  { type: "mute", username: "Bob", minutes: 5 },
  { type: "unmute", username: "Bob" },
  { type: "ban", username: "Bob" },
  { type: "unban", username: "Bob" },
  { type: "connections" },
  { type: "clients" },
  { type: "log_search" },
  { type: "audit" },
  { type: "reports" },
  { type: "create_user", username: "Eve", password: "secret-pw" },
  { type: "stats" },
  { type: "log_subscribe" },
];

Deno.test("admin: every admin command is refused to a non-admin, on a connection and over REST", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  assert.deepEqual(
    new Set(adminFrames.map((f) => f.type)),
    ADMIN_TYPES,
    "the list covers every admin command",
  );
  const mallory = await login(hub, "Mallory");
  await login(hub, "Bob");
  for (const frame of adminFrames) {
    await hub.receive(mallory.id, frame);
    const err = mallory.peer.of("error").at(-1)!;
    assert.equal(err.code, "forbidden", frame.type);
    assert.match(err.message, new RegExp(`Only admins can use "${frame.type}"`));
    await assert.rejects(
      hub.request("Mallory", frame),
      (e: { code?: string }) => e.code === "forbidden",
    );
  }
  assert.equal(mallory.peer.of("error").length, adminFrames.length);
});

Deno.test("admin: kick, mute, ban, unban, delete and the audit trail", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const root = await login(hub, "Root", "root-password");
  assert.equal(root.peer.of("welcome")[0]!.admin, true);
  const bob1 = await login(hub, "Bob");
  const bob2 = await login(hub, "Bob");
  const carol = await login(hub, "Carol");

  await hub.receive(root.id, { type: "kick", username: "Bob", reason: "cool off" });
  for (const b of [bob1, bob2]) {
    assert.equal(b.peer.of("bye")[0]!.reason, "You were kicked by Root: cool off");
    assert.equal(b.peer.closed, "You were kicked by Root: cool off");
    hub.disconnect(b.id);
  }
  assert.ok(root.peer.of("system").some((f) => f.message === "Kicked Bob (2 connections)"));

  const bob = await login(hub, "Bob");
  await hub.receive(root.id, { type: "mute", username: "Bob", minutes: 30, reason: "language" });
  await hub.receive(bob.id, { type: "message", message: "x" });
  assert.match(bob.peer.of("error")[0]!.message, /muted until 2026-01-15T15:00:00.000Z/);
  await hub.receive(root.id, { type: "unmute", username: "Bob" });
  await hub.receive(bob.id, { type: "message", message: "hello again" });
  await hub.whenStored();
  const msg = carol.peer.of("message").find((m) => m.message === "hello again")!;

  // Deleting: Carol may not, Bob (the author) or an admin may; everyone sees it go.
  await hub.receive(carol.id, { type: "delete_message", id: msg.id });
  assert.equal(carol.peer.of("error")[0]!.code, "forbidden");
  await hub.receive(root.id, { type: "delete_message", id: msg.id });
  for (const p of [root.peer, bob.peer, carol.peer]) {
    const gone = p.of("message_deleted")[0]!;
    assert.deepEqual([gone.id, gone.chat, gone.seq, gone.by], [msg.id, "general", msg.seq, "Root"]);
  }
  await hub.receive(root.id, { type: "history" });
  assert.equal(root.peer.of("history").at(-1)!.messages.some((m) => m.id === msg.id), false);

  await hub.receive(root.id, { type: "ban", username: "Bob", reason: "repeat offender" });
  assert.match(bob.peer.of("bye")[0]!.reason, /banned for good: repeat offender/);
  hub.disconnect(bob.id);
  const tryAgain = await login(hub, "Bob");
  assert.equal(tryAgain.peer.of("error")[0]!.code, "banned");
  assert.equal(tryAgain.peer.of("welcome").length, 0);
  await hub.receive(root.id, { type: "unban", username: "Bob" });
  assert.equal((await login(hub, "Bob")).peer.of("welcome").length, 1);

  await hub.receive(root.id, { type: "connections" });
  const conns = root.peer.of("connections_list")[0]!.connections;
  // The refused login attempt is still connected, not logged in: admins see it too.
  assert.deepEqual(conns.map((c) => c.username).sort(), ["Bob", "Carol", "Root", null]);
  assert.equal(conns[0]!.transport, "tcp-json");

  clock.advance(1000);
  await hub.receive(carol.id, { type: "report", username: "Bob", reason: "rude" });
  await hub.receive(root.id, { type: "reports" });
  assert.deepEqual(root.peer.of("reports_list")[0]!.reports, [{
    username: "Bob",
    reporters: ["Carol"],
    muted_until: null,
  }]);
  await hub.receive(root.id, { type: "audit" });
  const audit = root.peer.of("audit_log")[0]!.entries;
  assert.deepEqual(
    audit.map((e) => [e.actor, e.action, e.target, e.reason]),
    [
      ["Carol", "report", "Bob", "rude"],
      ["Root", "unban", "Bob", ""],
      ["Root", "ban", "Bob", "repeat offender"],
      ["Root", "delete", "Bob", ""],
      ["Root", "unmute", "Bob", ""],
      ["Root", "mute", "Bob", "language"],
      ["Root", "kick", "Bob", "cool off"],
    ],
  );
  assert.match(audit[3]!.detail!, /general#\d+: hello again/);
  await hub.receive(root.id, { type: "audit", limit: 2, before: audit[1]!.id });
  assert.deepEqual(root.peer.of("audit_log")[1]!.entries.map((e) => e.action), ["ban", "delete"]);
});

Deno.test("admin: a ban with minutes ends by itself; bans revoke tokens and stop REST logins", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const root = await login(hub, "Root", "root-password");
  const session = await hub.login("Bob", "bob-password");
  await hub.receive(root.id, { type: "ban", username: "Bob", minutes: 60 });
  await assert.rejects(
    hub.authenticate(session.token),
    (e: { code?: string }) => e.code === "not_logged_in",
  );
  await assert.rejects(
    hub.login("Bob", "bob-password"),
    (e: { code?: string; message: string }) =>
      e.code === "banned" && /until 2026-01-15T15:30:00.000Z/.test(e.message),
  );
  clock.advance(60 * 60_000);
  const again = await hub.login("Bob", "bob-password");
  assert.equal(await hub.authenticate(again.token), "Bob");
});

Deno.test("registration closed: no guests, no self-registration; an admin creates accounts", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv, new FakeClock(), { registration: "closed" });
  const { hub } = ctx;
  const guest = await login(hub, "Guest");
  assert.equal(guest.peer.of("error")[0]!.code, "forbidden");
  assert.match(guest.peer.of("error")[0]!.message, /Registration is closed: ask an admin/);
  const claim = await login(hub, "Dave", "dave-password");
  assert.equal(claim.peer.of("error")[0]!.code, "forbidden");
  await assert.rejects(hub.login("Dave", "dave-password"), /Registration is closed/);
  const root = await login(hub, "Root", "root-password");
  await hub.receive(root.id, { type: "create_user", username: "Dave", password: "dave-password" });
  assert.match(root.peer.of("system").at(-1)!.message, /Created user Dave/);
  await hub.receive(root.id, { type: "create_user", username: "dave", password: "other-password" });
  assert.equal(root.peer.of("error")[0]!.code, "name_taken");
  assert.equal((await login(hub, "Dave", "dave-password")).peer.of("welcome").length, 1);
});

Deno.test("logins: the guesser is slowed per account and address; the owner elsewhere still gets in", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  await hub.login("Alice", "alice-password");
  const refused = (e: { code?: string }) => e.code === "bad_password";
  const slowed = (pattern: RegExp) => (e: { code?: string; message: string }) =>
    e.code === "rate_limited" && pattern.test(e.message);
  // A few typos are free; then each wrong password makes that address wait twice as long.
  for (let i = 0; i < 3; i++) {
    await assert.rejects(hub.login("Alice", "wrong-guess", "10.0.0.1"), refused);
  }
  await assert.rejects(
    hub.login("Alice", "alice-password", "10.0.0.1"),
    slowed(/Too many wrong passwords for Alice from your address: try again in 1 s/),
  );
  clock.advance(1000);
  await assert.rejects(hub.login("Alice", "wrong-guess", "10.0.0.1"), refused);
  clock.advance(2000);
  await assert.rejects(hub.login("Alice", "wrong-guess", "10.0.0.1"), refused);
  // Five failures for the account: the failing address waits out the window...
  clock.advance(4000);
  await assert.rejects(
    hub.login("Alice", "alice-password", "10.0.0.1"),
    slowed(/Too many failed logins for Alice: try again after/),
  );
  // ...but the owner, from an address that never failed, gets in with the right password.
  assert.equal((await hub.login("Alice", "alice-password", "10.0.0.2")).username, "Alice");
  const viaHello = await login(hub, "Alice", "alice-password");
  assert.equal(viaHello.peer.of("welcome").length, 1, "and over a live connection too");
  // Per address: 20 failures across accounts hold back that address only.
  for (let i = 0; i < 20; i++) {
    const name = `user${i}`;
    await hub.login(name, "right-password");
    await assert.rejects(hub.login(name, "wrong-password", "10.9.9.9"));
  }
  await hub.login("fresh", "fresh-password");
  await assert.rejects(hub.login("fresh", "fresh-password", "10.9.9.9"), /from your address/);
  assert.equal((await hub.login("fresh", "fresh-password", "10.1.1.1")).username, "fresh");
});

Deno.test("logins: 40 guesses at once for one account check one password, and every refusal is an answer", async () => {
  await using kv = await Deno.openKv(":memory:");
  let checked = 0;
  const counting = {
    ...TEST_HASHER,
    verify: (p: string, h: string) => (checked++, TEST_HASHER.verify(p, h)),
  };
  await using ctx = await makeHub(kv, new FakeClock(), { passwords: counting });
  const { hub } = ctx;
  await hub.login("Alice", "alice-password");
  checked = 0;
  const results = await Promise.allSettled(
    Array.from({ length: 40 }, () => hub.login("Alice", "a-guess", "10.0.0.7")),
  );
  assert.equal(checked, 1, "one password checked, the others refused while it was");
  for (const r of results) {
    assert.equal(r.status, "rejected");
    const code = (r as PromiseRejectedResult).reason.code;
    assert.ok(code === "bad_password" || code === "rate_limited", `refused with ${code}`);
  }
});

Deno.test("limits: connections per address, rooms per user", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { maxConnectionsPerIp: 2 });
  const { hub } = ctx;
  assert.equal(hub.admit("127.0.0.1"), null);
  await login(hub, "A");
  await login(hub, "B");
  assert.match(hub.admit("127.0.0.1")!, /Too many connections from 127.0.0.1 \(the limit is 2\)/);
  assert.equal(hub.admit("10.0.0.1"), null, "other addresses are not affected");
  const c = await login(hub, "C");
  for (let i = 1; i < 200; i++) await hub.receive(c.id, { type: "join", room: `room${i}` });
  assert.equal(c.peer.of("error").length, 0, "200 rooms, general included");
  await hub.receive(c.id, { type: "join", room: "one-too-many" });
  assert.match(c.peer.of("error")[0]!.message, /You are in 200 rooms already/);
});

Deno.test("reports: three guests cannot mute an admin; with --reports-from registered, guests' reports do not count", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  {
    await using ctx = await makeHub(kv);
    const { hub } = ctx;
    const root = await login(hub, "Root", "root-password");
    for (const name of ["g1", "g2", "g3"]) {
      const g = await login(hub, name);
      await hub.receive(g.id, { type: "report", username: "Root" });
      assert.match(g.peer.of("system").at(-1)!.message, /reports do not mute admins/);
    }
    await hub.receive(root.id, { type: "message", message: "still talking" });
    await hub.whenStored();
    assert.equal(root.peer.of("ack").length, 1);
  }
  await using strict = await makeHub(kv, new FakeClock(), { reportsFrom: "registered" });
  const guest = await login(strict.hub, "drive-by");
  await login(strict.hub, "Target");
  await strict.hub.receive(guest.id, { type: "report", username: "Target" });
  assert.match(guest.peer.of("error").at(-1)!.message, /only registered users' reports count/);
});

Deno.test("rooms: creation is capped per user and hour; an empty, unused public room is forgotten; lists page to the end", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), { roomsPerHour: 10 });
  const { hub, clock } = ctx;
  const g = await login(hub, "Churner");
  // join + leave: each room is forgotten again, but each creation counts.
  for (let i = 0; i < 10; i++) {
    await hub.receive(g.id, { type: "join", room: `r${i}` });
    await hub.receive(g.id, { type: "leave", room: `r${i}` });
  }
  await hub.receive(g.id, { type: "join", room: "one-more" });
  assert.match(g.peer.of("error").at(-1)!.message, /You can create 10 rooms an hour/);
  await hub.receive(g.id, { type: "rooms" });
  assert.deepEqual(g.peer.of("rooms_list").at(-1)!.rooms.map((r) => r.name), ["general"]);
  clock.advance(3600_000);
  await hub.receive(g.id, { type: "join", room: "one-more" });
  assert.equal(g.peer.of("joined").at(-1)!.room, "one-more");
  // A room something was said in stays when its last member leaves.
  await hub.receive(g.id, { type: "message", room: "one-more", message: "hello?" });
  await hub.receive(g.id, { type: "leave", room: "one-more" });
  await hub.receive(g.id, { type: "rooms" });
  assert.ok(g.peer.of("rooms_list").at(-1)!.rooms.some((r) => r.name === "one-more"));
  // 600 users: the first list stops at 500, pages reach every one, and any one can be looked up.
  for (let i = 0; i < 600; i++) await hub.login(`u${String(i).padStart(3, "0")}`, "password1");
  const all = (await hub.run("Churner", { type: "users" })).all;
  assert.equal(all.length, 500);
  const seen: string[] = [];
  let after: string | undefined;
  do {
    const page = await hub.run("Churner", {
      type: "users",
      limit: 200,
      ...(after ? { after } : {}),
    });
    seen.push(...page.all.map((u) => u.username));
    after = page.next ?? undefined;
  } while (after);
  assert.equal(seen.length, 601);
  const one = await hub.run("Churner", { type: "users", username: "u599" });
  assert.deepEqual(one.all.map((u) => u.username), ["u599"]);
});

Deno.test("quota: guests at one address share the quota, so new names do not multiply it; registered users and loopback keep their own", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, new FakeClock(), {
    rateLimit: { count: 3, windowMs: 3600_000 },
  });
  const { hub } = ctx;
  for (const name of ["g1", "g2", "g3", "g4", "local", "Reggie"]) await login(hub, name);
  await hub.request("Reggie", { type: "register", password: "reggie-password" });
  for (const name of ["g1", "g2", "g3"]) {
    await hub.request(name, { type: "message", message: `from ${name}` }, "10.0.0.5");
  }
  await assert.rejects(
    hub.request("g4", { type: "message", message: "a fourth name" }, "10.0.0.5"),
    /Guests at your address can send 3 messages to rooms per 1h together/,
  );
  // Another address, loopback (exempt by default) and a registered name are not held back.
  await hub.request("g4", { type: "message", message: "elsewhere" }, "10.0.0.6");
  for (let i = 0; i < 3; i++) {
    await hub.request("local", { type: "message", message: `l${i}` }, "127.0.0.1");
  }
  await hub.request("Reggie", { type: "message", message: "mine" }, "10.0.0.5");
});

Deno.test("admin clients: every account, last visit first, with when and from where, across a restart", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  const clock = new FakeClock();
  {
    await using ctx = await makeHub(kv, clock);
    const { hub } = ctx;
    for (const [name, ip] of [["Early", "10.0.0.1"], ["Late", "10.0.0.2"]] as const) {
      const peer = new FakePeer();
      Object.defineProperty(peer, "ip", { value: ip });
      const id = hub.connect(peer);
      await hub.receive(id, { type: "hello", username: name });
      clock.advance(60_000);
      hub.disconnect(id);
      await hub.whenStored();
    }
  }
  await using ctx = await makeHub(kv, clock);
  const root = await login(ctx.hub, "Root", "root-password");
  await ctx.hub.receive(root.id, { type: "ban", username: "Early" });
  await ctx.hub.receive(root.id, { type: "clients" });
  const list = root.peer.of("clients_list")[0]!.clients;
  assert.deepEqual(list.map((c) => c.username), ["Root", "Late", "Early"]);
  const late = list[1]!;
  assert.equal(late.online, false);
  assert.equal(late.last_ip, "10.0.0.2");
  assert.ok(late.last_seen);
  assert.equal(list[2]!.banned_until, "9999-12-31T23:59:59.999Z", "banned for good while offline");
});

Deno.test("service log: every message, login and error is logged whether or not an admin watches, and searched after a restart", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  const clock = new FakeClock();
  {
    await using ctx = await makeHub(kv, clock);
    const { hub } = ctx;
    const alice = await login(hub, "Alice");
    await login(hub, "Bob");
    await hub.receive(alice.id, {
      type: "private",
      target_username: "Bob",
      message: "secret words",
    });
    await hub.receive(alice.id, { type: "message", message: "hi all" });
    await hub.whenStored();
    await hub.housekeeping();
  }
  // (The test's ids count from 1 in each hub: a later time keeps them apart.)
  clock.advance(1000);
  await using ctx = await makeHub(kv, clock);
  const root = await login(ctx.hub, "Root", "root-password");
  await ctx.hub.receive(root.id, { type: "log_search", query: "alice" });
  const page = root.peer.of("log_page")[0]!;
  const texts = page.entries.map((e) => `${e.kind}: ${e.text}`);
  assert.ok(texts.includes("message: Alice → #general (6 B)"), texts.join("\n"));
  assert.ok(texts.includes("message: Alice → Bob (12 B)"), texts.join("\n"));
  assert.ok(texts.some((t) => t.startsWith("login: Alice logged in")), texts.join("\n"));
  assert.equal(JSON.stringify(page).includes("secret words"), false, "sizes, never the text");
});
