/**
 * Rich messaging end to end on the real server: replies, scheduled messages (across a restart),
 * 5 MB files, private groups and contacts, each over at least two wires.
 */
import assert from "node:assert/strict";
import type { ServerFrame } from "../protocol/frames.ts";
import {
  api,
  JsonClient,
  LineClient,
  startServer,
  tokenFor,
  withServer,
  WsClient,
} from "./_helpers.ts";

const MB5 = 5 * 1024 * 1024;

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, i + 65_536));
  return out;
}

Deno.test("e2e replies: answered over TCP, shown in text with what it answers, listed over REST", async () => {
  await using server = await withServer();
  const base = server.base;
  const alice = await JsonClient.connect(server.tcpPort, {
    username: "Alice",
    password: "Alice-password",
  });
  const bob = await LineClient.connect(server.tcpPort);
  await bob.send("Bob");
  await bob.line("Logged in as Bob");
  await alice.send({ type: "message", message: "Pizza or sushi?" });
  const q = await alice.type("message", (m) => m.message === "Pizza or sushi?");
  await bob.send(`/reply ${q.id} sushi, obviously`);
  const reply = await alice.type("message", (m) => m.message === "sushi, obviously");
  assert.deepEqual(reply.reply_to, {
    id: q.id,
    from_username: "Alice",
    message: "Pizza or sushi?",
  });
  await bob.line(/#general Bob \(↪ Alice: Pizza or sushi\?\): sushi, obviously/);
  const t = await tokenFor(base, "Alice");
  const list = await api(base, "GET", `/api/v1/messages/${q.id}/replies`, t);
  assert.deepEqual(list.json.messages.map((m: { message: string }) => m.message), [
    "sushi, obviously",
  ]);
  const viaRest = await api(base, "POST", "/api/v1/rooms/general/messages", t, {
    message: "ok",
    reply_to: reply.id,
  });
  assert.equal(viaRest.status, 201);
  assert.equal(
    (await api(base, "POST", "/api/v1/rooms/general/messages", t, {
      message: "x",
      reply_to: "01M81MNGFKSHK6S1K51BNS5FK4",
    })).status,
    404,
  );
  await Promise.all([alice.close(), bob.close()]);
});

Deno.test("e2e scheduled: scheduled over REST and TCP, one cancelled, the rest arrive on time, even across a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_sched_" });
  const data = `${dir}/chat.kv`;
  try {
    let server = await startServer({ data });
    let base = `http://127.0.0.1:${server.httpPort}`;
    const t = await tokenFor(base, "Alice");
    const inSecs = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const soon = await api(base, "POST", "/api/v1/scheduled", t, {
      message: "soon",
      at: inSecs(1),
    });
    assert.equal(soon.status, 201);
    const cancelled = await api(base, "POST", "/api/v1/scheduled", t, {
      message: "never",
      at: inSecs(1),
    });
    assert.equal(
      (await api(base, "DELETE", `/api/v1/scheduled/${cancelled.json.id}`, t)).status,
      204,
    );
    assert.equal(
      (await api(base, "DELETE", `/api/v1/scheduled/${cancelled.json.id}`, t)).status,
      404,
    );
    assert.equal(
      (await api(base, "POST", "/api/v1/scheduled", t, { message: "x", at: "yesterday" })).status,
      400,
    );
    const tcp = await JsonClient.connect(server.tcpPort, { username: "Bob" });
    await tcp.send({
      type: "schedule",
      message: "after the restart",
      at: inSecs(4),
      target_username: "Alice",
    });
    const entry = (await tcp.type("scheduled")).entry;
    assert.equal(entry.chat, "@Alice");
    const listed = await api(base, "GET", "/api/v1/scheduled", t);
    assert.deepEqual(listed.json.entries.map((e: { message: string }) => e.message), ["soon"]);

    const got = await tcp.type("message", (m) => m.message === "soon");
    const late = Date.now() - Date.parse(soon.json.at);
    assert.ok(late < 1000, `sent ${late} ms after its time`);
    await tcp.close();
    assert.equal(await server.stop(), 0);
    assert.equal(got.from_username, "Alice");

    server = await startServer({ data });
    base = `http://127.0.0.1:${server.httpPort}`;
    try {
      const alice = await JsonClient.connect(server.tcpPort, {
        username: "Alice",
        password: "Alice-password",
      });
      const pm = await alice.frame((f) =>
        (f.type === "private" && f.message === "after the restart") ||
        (f.type === "history" && f.messages.some((m) => m.message === "after the restart"))
      );
      assert.ok(pm);
      const history = await api(
        base,
        "GET",
        "/api/v1/rooms/general/messages",
        await tokenFor(base, "Alice"),
      );
      assert.deepEqual(
        history.json.messages.map((m: { message: string }) => m.message),
        ["soon"],
        "the cancelled one never went out",
      );
      await alice.close();
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e files: 5 MB round-trips byte for byte; 5 MB + 1 is refused; TCP users see it and fetch it with a token", async () => {
  await using server = await withServer();
  const base = server.base;
  const tcp = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  const ws = await WsClient.open(`${base.replace("http", "ws")}/ws`);
  ws.send({ username: "Carol" });
  await ws.type("welcome");
  const t = await tokenFor(base, "Alice");
  const data = randomBytes(MB5);
  const up = await fetch(
    `${base}/api/v1/files?room=general&name=${encodeURIComponent("отчёт 2026.bin")}`,
    {
      method: "POST",
      headers: { authorization: `Bearer ${t}`, "content-type": "application/octet-stream" },
      body: data,
    },
  );
  assert.equal(up.status, 201, await up.clone().text());
  const ann = await tcp.type("message", (m) => m.file !== undefined);
  assert.deepEqual({ ...ann.file, id: "" }, {
    id: "",
    name: "отчёт 2026.bin",
    size: MB5,
    mime: "application/octet-stream",
  });
  assert.equal((await ws.type("message", (m) => m.file !== undefined)).file!.id, ann.file!.id);

  // Bob on TCP asks for a token and downloads over HTTP.
  await tcp.send({ type: "token" });
  const tok = await tcp.type("token");
  assert.equal(tok.http_port, server.httpPort);
  const down = await fetch(`${base}/api/v1/files/${ann.file!.id}?token=${tok.token}`);
  assert.equal(down.status, 200);
  assert.equal(down.headers.get("content-type"), "application/octet-stream");
  assert.match(
    down.headers.get("content-disposition")!,
    /attachment; filename=".*"; filename\*=UTF-8''%D0%BE%D1%82/,
  );
  const back = new Uint8Array(await down.arrayBuffer());
  assert.equal(back.length, MB5);
  assert.deepEqual(back, data, "byte for byte");

  // One byte over: refused with 413 from the declared length, before the body is read.
  const over = await fetch(`${base}/api/v1/files?name=big.bin`, {
    method: "POST",
    headers: { authorization: `Bearer ${t}` },
    body: new Uint8Array(MB5 + 1),
  });
  assert.equal(over.status, 413);
  assert.equal((await over.json()).error.code, "too_long");
  // And when the client does not declare a length (a stream), as soon as it passes the limit.
  const streamed = await fetch(`${base}/api/v1/files?name=big.bin`, {
    method: "POST",
    headers: { authorization: `Bearer ${t}` },
    body: ReadableStream.from((function* () {
      for (let i = 0; i < 6; i++) yield new Uint8Array(1024 * 1024);
    })()),
  });
  assert.equal(streamed.status, 413);
  await streamed.body?.cancel();
  assert.equal((await api(base, "GET", `/api/v1/files/${ann.file!.id}`)).status, 401);
  await Promise.all([tcp.close(), ws.close()]);
});

Deno.test("e2e groups: a non-member is refused everywhere; an invite over REST is accepted in text; a link join waits for the owner", async () => {
  await using server = await withServer();
  const base = server.base;
  const owner = await JsonClient.connect(server.tcpPort, {
    username: "Owner",
    password: "Owner-password",
  });
  const ownerToken = await tokenFor(base, "Owner");
  await owner.send({ type: "create_group", room: "club" });
  assert.equal((await owner.type("joined")).created, true);
  await owner.send({ type: "message", message: "members only" });
  await owner.type("ack");
  const up = await fetch(`${base}/api/v1/files?room=club&name=plan.txt`, {
    method: "POST",
    headers: { authorization: `Bearer ${ownerToken}`, "content-type": "text/plain" },
    body: "the plan",
  });
  const fileAck = await up.json();
  assert.equal(up.status, 201);
  const fileId = (await owner.type("message", (m) => m.file !== undefined)).file!.id;

  // A stranger: TCP and REST both refuse, and the group is not even listed.
  const stranger = await JsonClient.connect(server.tcpPort, { username: "Stranger" });
  const st = await tokenFor(base, "Stranger");
  for (
    const f of [
      { type: "join", room: "club" },
      { type: "history", chat: "club" },
      { type: "message", room: "club", message: "hi?" },
      { type: "members", room: "club" },
    ]
  ) {
    await stranger.send(f);
    assert.equal((await stranger.type("error")).code, "no_such_room", f.type);
  }
  // Over REST too: a 404, the same as for a room that does not exist.
  assert.equal((await api(base, "GET", "/api/v1/rooms/club/messages", st)).status, 404);
  assert.equal(
    (await api(base, "POST", "/api/v1/rooms/club/messages", st, { message: "x" })).status,
    404,
  );
  assert.equal((await api(base, "GET", "/api/v1/rooms/club/members", st)).status, 404);
  assert.equal((await api(base, "POST", "/api/v1/rooms/club/join", st)).status, 404);
  assert.equal((await api(base, "GET", `/api/v1/files/${fileId}`, st)).status, 404);
  const rooms = await api(base, "GET", "/api/v1/rooms", st);
  assert.equal(rooms.json.rooms.some((r: { name: string }) => r.name === "club"), false);
  assert.ok(fileAck.id);

  // Invite over REST; the friend, on telnet, accepts with /join.
  const friend = await LineClient.connect(server.tcpPort);
  await friend.send("Friend");
  await friend.line("Logged in as Friend");
  assert.equal(
    (await api(base, "POST", "/api/v1/groups/club/invites", ownerToken, { username: "Friend" }))
      .status,
    201,
  );
  await friend.line("Owner invites you to the private group #club");
  await friend.send("/join club");
  await friend.line("You are in #club");
  await friend.line("#club Owner: members only");

  // A link: the stranger asks over REST, the owner sees the request on TCP and approves in REST.
  const link = await api(base, "POST", "/api/v1/groups/club/links", ownerToken);
  assert.equal(link.status, 201);
  const ask = await api(base, "POST", `/api/v1/links/${link.json.token}/join`, st);
  assert.equal(ask.status, 202);
  assert.match(ask.json.message, /Asked the owner of #club/);
  assert.equal((await owner.type("join_request")).username, "Stranger");
  assert.equal(
    (await api(base, "GET", "/api/v1/rooms/club/messages", st)).status,
    404,
    "still waiting",
  );
  assert.equal(
    (await api(base, "POST", "/api/v1/groups/club/requests/Stranger/approve", ownerToken)).status,
    200,
  );
  await stranger.type("joined", (f) => f.room === "club");
  const msgs = await api(base, "GET", "/api/v1/rooms/club/messages", st);
  assert.equal(msgs.status, 200);
  const dl = await fetch(`${base}/api/v1/files/${fileId}`, {
    headers: { authorization: `Bearer ${st}` },
  });
  assert.equal(dl.status, 200, "now a member: may download");
  assert.equal(await dl.text(), "the plan");
  assert.equal(
    (await api(base, "DELETE", "/api/v1/groups/club/members/Stranger", ownerToken)).status,
    200,
  );
  assert.equal(
    (await api(base, "GET", "/api/v1/rooms/club/messages", st)).status,
    404,
    "removed",
  );
  assert.equal(
    (await api(base, "DELETE", `/api/v1/groups/club/links/${link.json.token}`, ownerToken))
      .status,
    200,
  );
  assert.equal(
    (await api(base, "POST", `/api/v1/links/${link.json.token}/join`, st)).status,
    404,
  );
  await Promise.all([owner.close(), stranger.close(), friend.close()]);
});

Deno.test("e2e contacts: added over TCP and REST, with online state; a private message adds the sender", async () => {
  await using server = await withServer();
  const base = server.base;
  const alice = await JsonClient.connect(server.tcpPort, {
    username: "Alice",
    password: "Alice-password",
  });
  const bob = await LineClient.connect(server.tcpPort);
  await bob.send("Bob");
  await bob.line("Logged in as Bob");
  const t = await tokenFor(base, "Alice");
  assert.deepEqual((await api(base, "GET", "/api/v1/contacts", t)).json.contacts, []);
  await bob.send("/private Alice hi, remember me?");
  const list = await alice.type("contacts_list");
  assert.deepEqual(list.contacts, [{ username: "Bob", online: true }]);
  await bob.line("Contacts: Alice (online)");
  await JsonClient.connect(server.tcpPort, { username: "Carol" }).then((c) => c.close());
  const added = await api(base, "PUT", "/api/v1/contacts/Carol", t);
  assert.deepEqual(added.json.contacts, [{ username: "Bob", online: true }, {
    username: "Carol",
    online: false,
  }]);
  await alice.type(
    "contacts_list",
    (f: ServerFrame & { type: "contacts_list" }) => f.contacts.length === 2,
  );
  assert.equal((await api(base, "PUT", "/api/v1/contacts/Ghost", t)).status, 404);
  await bob.send("/delcontact Alice");
  await bob.line("No contacts yet");
  await Promise.all([alice.close(), bob.close()]);
});
