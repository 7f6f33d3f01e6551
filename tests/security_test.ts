/**
 * Authorization, path by path: non-members, muted, banned and expired-token users are refused
 * everywhere they should be, and private messages never reach a third user.
 */
import assert from "node:assert/strict";
import type { ClientFrame } from "../protocol/frames.ts";
import { FakePeer, login, makeHub, seedAdmin } from "./_helpers.ts";

async function* bytes(b: Uint8Array): AsyncIterable<Uint8Array> {
  yield b;
}

Deno.test("security: a non-member of a private group is refused on every read and write path", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const owner = await login(hub, "Owner");
  await hub.receive(owner.id, { type: "create_group", room: "vault" });
  await hub.receive(owner.id, { type: "message", room: "vault", message: "secret" });
  await hub.whenStored();
  const secret = owner.peer.of("message").find((m) => m.message === "secret")!;
  await hub.uploadFile(
    "Owner",
    { name: "plan.txt", mime: "text/plain", room: "vault" },
    bytes(new Uint8Array(3)),
  );
  await hub.whenStored();
  const fileId = owner.peer.of("message").find((m) => m.file)!.file!.id;
  await hub.login("Outsider", "outsider-pw");
  const outsider = await login(hub, "Outsider", "outsider-pw");
  const paths: Array<[string, ClientFrame]> = [
    ["join by name", { type: "join", room: "vault" }],
    ["history", { type: "history", chat: "vault" }],
    ["history paging", { type: "history", chat: "vault", after: 0 }],
    ["unread", { type: "unread", chat: "vault" }],
    ["post", { type: "message", room: "vault", message: "x" }],
    ["reply", { type: "message", message: "x", reply_to: secret.id }],
    ["replies", { type: "replies", id: secret.id }],
    ["members", { type: "members", room: "vault" }],
    ["invite", { type: "invite", room: "vault", username: "Outsider" }],
    ["link", { type: "create_link", room: "vault" }],
    ["remove", { type: "remove_member", room: "vault", username: "Owner" }],
    ["delete", { type: "delete_message", id: secret.id }],
    ["schedule", {
      type: "schedule",
      room: "vault",
      message: "x",
      at: new Date(Date.UTC(2026, 0, 15, 15)).toISOString(),
    }],
  ];
  for (const [what, frame] of paths) {
    const before = outsider.peer.of("error").length;
    await hub.receive(outsider.id, frame);
    assert.equal(outsider.peer.of("error").length, before + 1, `${what} was not refused`);
    await assert.rejects(hub.request("Outsider", frame), `${what} over REST was not refused`);
  }
  await assert.rejects(hub.openFile("Outsider", fileId), /There is no file/);
  await assert.rejects(
    hub.uploadFile("Outsider", { name: "x", mime: "", room: "vault" }, bytes(new Uint8Array(1))),
    /There is no room #vault/,
  );
  await hub.receive(outsider.id, { type: "rooms" });
  assert.equal(outsider.peer.of("rooms_list")[0]!.rooms.some((r) => r.name === "vault"), false);
  assert.equal(
    outsider.peer.frames.some((f) => JSON.stringify(f).includes("secret")),
    false,
    "nothing leaked",
  );
});

Deno.test("security: private messages reach only their two ends, in every read path", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const alice = await login(hub, "Alice");
  const bob = await login(hub, "Bob");
  const carol = await login(hub, "Carol");
  await hub.receive(alice.id, { type: "private", target_username: "Bob", message: "for Bob only" });
  await hub.uploadFile("Alice", { name: "dm.bin", mime: "", to: "Bob" }, bytes(new Uint8Array(2)));
  await hub.whenStored();
  const dm = bob.peer.of("private")[0]!;
  const file = bob.peer.of("private").find((m) => m.file)!.file!;
  // Carol reads everything she can reach.
  const reads: ClientFrame[] = [
    { type: "history", chat: "@Alice" },
    { type: "history", chat: "@Bob" },
    { type: "history" },
    { type: "unread", chat: "@Alice" },
    { type: "unread_counts" },
    { type: "status" },
    { type: "replies", id: dm.id },
  ];
  for (const f of reads) await hub.receive(carol.id, f);
  await hub.receive(carol.id, { type: "delete_message", id: dm.id });
  // What is not hers is answered as what does not exist: ids tell her nothing.
  assert.equal(carol.peer.of("error").at(-1)!.code, "no_such_message");
  await assert.rejects(hub.openFile("Carol", file.id), /There is no file/);
  // A resume from the very beginning replays only Carol's own chats.
  const resumed = await login(hub, "Carol");
  hub.disconnect(resumed.id);
  const again = new FakePeer();
  const id = hub.connect(again);
  await hub.receive(id, { type: "hello", username: "Carol", since: "00000000000000000000000000" });
  for (const frames of [carol.peer.frames, again.frames]) {
    assert.equal(
      JSON.stringify(frames).includes("for Bob only"),
      false,
      "a private message leaked to Carol",
    );
    assert.equal(JSON.stringify(frames).includes(file.id), false, "a private file leaked to Carol");
  }
});

Deno.test("security: muted, banned and expired-token users are refused where they should be", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedAdmin(kv);
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const root = await login(hub, "Root", "root-password");
  const muted = await login(hub, "Muted", "muted-password");
  await hub.receive(root.id, { type: "mute", username: "Muted" });
  const sends: ClientFrame[] = [
    { type: "message", message: "x" },
    { type: "private", target_username: "Root", message: "x" },
  ];
  for (const f of sends) {
    await hub.receive(muted.id, f);
    assert.equal(muted.peer.of("error").at(-1)!.code, "muted");
    await assert.rejects(hub.request("Muted", f), /muted/);
  }
  await assert.rejects(
    hub.uploadFile("Muted", { name: "x", mime: "" }, bytes(new Uint8Array(1))),
    /muted/,
  );
  await hub.receive(muted.id, { type: "history" });
  assert.equal(muted.peer.of("history").at(-1)!.reason, "request", "reading still works");

  const session = await hub.login("Banned", "banned-password");
  await hub.receive(root.id, { type: "ban", username: "Banned" });
  await assert.rejects(hub.authenticate(session.token), /unknown or expired/, "tokens revoked");
  await assert.rejects(hub.login("Banned", "banned-password"), /banned/);
  const tries = await login(hub, "Banned", "banned-password");
  assert.equal(tries.peer.of("error")[0]!.code, "banned");
  const peer = new FakePeer();
  const conn = hub.connect(peer);
  await hub.receive(conn, { type: "auth", token: session.token });
  assert.equal(peer.of("error")[0]!.code, "not_logged_in");

  const expiring = await hub.login("Later", "later-password");
  clock.advance(7 * 24 * 3600_000);
  await assert.rejects(hub.authenticate(expiring.token), /unknown or expired/);
  const p2 = new FakePeer();
  const c2 = hub.connect(p2);
  await hub.receive(c2, { type: "auth", token: expiring.token });
  assert.equal(p2.of("error")[0]!.code, "not_logged_in");
});

Deno.test("security: logging out closes the live connections that logged in with that token, and only those", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  const first = await hub.login("Alice", "alice-password");
  const second = await hub.login("Alice", "alice-password");
  const peers = [new FakePeer("ws"), new FakePeer("ws"), new FakePeer("sse")];
  const ids = peers.map((p) => hub.connect(p));
  await hub.receive(ids[0]!, { type: "auth", token: first.token });
  await hub.receive(ids[1]!, { type: "auth", token: second.token });
  await hub.attach(ids[2]!, "Alice", undefined, first.token);
  assert.deepEqual(peers.map((p) => p.of("welcome").length), [1, 1, 1]);
  await hub.logout(first.token);
  assert.match(peers[0]!.closed ?? "", /You logged out/);
  assert.match(peers[2]!.closed ?? "", /You logged out/);
  assert.equal(peers[1]!.closed, null, "another device's token still works");
  await assert.rejects(hub.authenticate(first.token), /unknown or expired/);
});

Deno.test("security: look-alike names are one name: Cyrillic, fullwidth and case variants reach the same account and room", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub } = ctx;
  await hub.login("Alice", "alice-password");
  await hub.login("root", "root-password1");
  // Cyrillic А, then fullwidth letters: the existing accounts, with their passwords.
  await assert.rejects(hub.login("\u0410lice", "another-password"), /Wrong password for Alice/);
  assert.equal((await hub.login("\u0410lice", "alice-password")).username, "Alice");
  const full = await login(hub, "ｒｏｏｔ", "root-password1");
  assert.equal(full.peer.of("welcome")[0]!.username, "root");
  const o = await login(hub, "r\u043eot");
  assert.equal(o.peer.of("error")[0]!.code, "password_required", "rоot with a Cyrillic о is root");
  // Rooms: a look-alike of general is general; a group cannot take a look-alike name.
  const a = await login(hub, "Alice", "alice-password");
  await hub.receive(a.id, { type: "join", room: "g\u0435neral" });
  assert.equal(a.peer.of("joined")[0]!.room, "general");
  await hub.receive(a.id, { type: "create_group", room: "ｇｅｎｅｒａｌ" });
  assert.match(a.peer.of("error").at(-1)!.message, /looks like #general/);
  await hub.receive(a.id, { type: "rooms" });
  assert.deepEqual(a.peer.of("rooms_list").at(-1)!.rooms.map((r) => r.name), ["general"]);
});

Deno.test("guests: the name's risk is said at login, other connections hear of a newcomer and of a registration, and an abandoned name starts afresh", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const first = await login(hub, "Gus");
  assert.match(
    first.peer.of("system")[0]!.message,
    /Gus is a guest name: anyone may log in with it/,
  );
  const second = await login(hub, "Gus");
  assert.match(
    first.peer.of("system").at(-1)!.message,
    /Another connection now uses your guest name Gus \(over tcp-json from 127\.0\.0\.1\)/,
  );
  await hub.receive(second.id, { type: "register", password: "gus-password" });
  assert.match(
    first.peer.of("system").at(-1)!.message,
    /Gus was just registered from another connection/,
  );
  // A guest who leaves: past the grace period, whoever takes the name does not get its mail.
  const bob = await login(hub, "Bob");
  const wren = await login(hub, "Wren");
  await hub.receive(bob.id, { type: "private", target_username: "Wren", message: "for Wren only" });
  await hub.whenStored();
  hub.disconnect(wren.id);
  await hub.whenStored();
  clock.advance(11 * 60_000);
  const taker = await login(hub, "Wren");
  assert.equal(JSON.stringify(taker.peer.frames).includes("for Wren only"), false, "not replayed");
  await hub.receive(taker.id, { type: "history", chat: "@Bob" });
  assert.deepEqual(taker.peer.of("history").at(-1)!.messages, [], "not in history either");
});

Deno.test("guests: with --guests off every name needs a password, and a new one registers with it", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv, undefined, { guests: "off" });
  const { hub } = ctx;
  const anon = await login(hub, "Nobody");
  assert.equal(anon.peer.of("error")[0]!.code, "password_required");
  assert.match(anon.peer.of("error")[0]!.message, /This server has no guests/);
  const member = await login(hub, "Member", "member-password");
  assert.equal(member.peer.of("welcome")[0]!.registered, true);
});
