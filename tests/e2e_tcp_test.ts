/**
 * End to end over raw TCP: the real `main.ts serve` in a child process, a temp KV file, and
 * clients speaking JSON lines and plain text the way programs and people do.
 */
import assert from "node:assert/strict";
import { MAX_LINE_BYTES } from "../protocol/limits.ts";
import {
  JsonClient,
  LineClient,
  startServer,
  WAIT_MS,
  withServer,
  withTimeout,
  WsClient,
} from "./_helpers.ts";

Deno.test("e2e tcp: two JSON users talk with the seed protocol's frames, unchanged", async () => {
  await using server = await withServer();
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  const bob = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  await alice.type("system", (f) => f.event === "online" && f.username === "Bob");
  await alice.send({ type: "message", message: "Привет всем!" });
  const got = await bob.type("message", (m) => m.message === "Привет всем!");
  assert.equal(got.from_username, "Alice");
  assert.equal(got.room, "general");
  assert.match(got.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, "a ULID");
  assert.ok(Math.abs(Date.parse(got.timestamp) - Date.now()) < 60_000, "a server timestamp");
  await alice.type("ack");

  await bob.send({ type: "users" });
  const list = await bob.type("users_list");
  assert.deepEqual(list.users, ["Alice", "Bob"]);
  await bob.send({ type: "private", target_username: "Alice", message: "Привет! Как дела?" });
  const pm = await alice.type("private");
  assert.equal(pm.from_username, "Bob");
  assert.equal(pm.message, "Привет! Как дела?");
  await Promise.all([alice.close(), bob.close()]);
});

Deno.test("e2e tcp: a program that writes json.dumps(frame) with no newline, back to back or indented, is served as a JSON client", async () => {
  await using server = await withServer();
  const bob = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  // Python's sock.send(json.dumps({...}).encode()): no newline, then silence while it waits.
  const py = await LineClient.connect(server.tcpPort);
  const enc = new TextEncoder();
  await py.sendBytes(enc.encode(JSON.stringify({ username: "Alice" })));
  await py.until(() => py.lines.some((l) => l.includes('"type":"welcome"')), "the welcome");
  assert.ok(!py.tail.includes("nickname") && !py.lines.some((l) => l.includes("nickname")));
  await py.sendBytes(enc.encode(JSON.stringify({ type: "message", message: "Привет всем!" })));
  assert.equal(
    (await bob.type("message", (m) => m.from_username === "Alice")).message,
    "Привет всем!",
  );
  // Two objects in one write, then one pretty-printed over several lines, cut mid-object.
  await py.sendBytes(enc.encode(
    JSON.stringify({ type: "private", target_username: "Bob", message: "one" }) +
      JSON.stringify({ type: "private", target_username: "Bob", message: "two" }),
  ));
  assert.equal((await bob.type("private", (m) => m.message === "one")).from_username, "Alice");
  await bob.type("private", (m) => m.message === "two");
  const pretty = JSON.stringify({ type: "message", message: "indented" }, null, 4);
  await py.sendBytes(enc.encode(pretty.slice(0, 12)));
  await new Promise((r) => setTimeout(r, 50));
  await py.sendBytes(enc.encode(pretty.slice(12)));
  await bob.type("message", (m) => m.message === "indented");
  // Still answered line by line when a line cannot be JSON.
  await py.sendBytes(enc.encode("{oops\n"));
  await py.until(() => py.lines.some((l) => l.includes('"code":"bad_json"')), "bad_json");
  await py.sendBytes(enc.encode(JSON.stringify({ type: "users" })));
  await py.until(() => py.lines.some((l) => l.includes('"type":"users_list"')), "the user list");
  await Promise.all([py.close(), bob.close()]);
});

Deno.test("e2e tcp: a program sending objects with no newline gets ours one per read (seed 000's recv() and json.loads()); past 8 waiting, a stream", async () => {
  await using server = await withServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  // The assignment's client: a thread doing json.loads(sock.recv(4096).decode()) in a loop.
  const reads: Array<{ type: string; message?: string }> = [];
  const privates = () => reads.filter((o) => o.type === "private");
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    while (privates().length < 4) {
      const n = await conn.read(buf);
      if (n === null) break;
      reads.push(JSON.parse(dec.decode(buf.subarray(0, n)))); // "Extra data" would throw here
      await new Promise((r) => setTimeout(r, 2)); // printing it
    }
  })();
  await conn.write(enc.encode(JSON.stringify({ username: "Alice" })));
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Wanda" });
  await web.until(() => web.frames.some((f) => f.type === "welcome"), "Wanda's welcome");
  // Four messages handled in one turn: a newline-reading client would get them in one write.
  web.sendRaw(
    Array.from(
      { length: 4 },
      (_, i) => JSON.stringify({ type: "private", target_username: "Alice", message: `m${i}` }),
    ).join("\n"),
  );
  await reading;
  // Every read was one object (JSON.parse above), the login's answers first.
  assert.deepEqual(reads.slice(0, 3).map((o) => o.type), ["welcome", "system", "history"]);
  assert.deepEqual(privates().map((o) => o.message), ["m0", "m1", "m2", "m3"]);

  // More than such a client could take (a bare-object generator in a busy room: 20 at once,
  // past the 8 that may wait): all of it arrives, in order, as a stream of lines.
  web.sendRaw(
    Array.from(
      { length: 20 },
      (_, i) => JSON.stringify({ type: "private", target_username: "Alice", message: `b${i}` }),
    ).join("\n"),
  );
  let text = "";
  await withTimeout(
    (async () => {
      const buf = new Uint8Array(65536);
      while (!text.includes('"b19"')) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += dec.decode(buf.subarray(0, n));
      }
    })(),
    WAIT_MS,
    "the 20th message",
  );
  const burst = text.split("\n").filter((l) => l.includes('"private"')).map((l) =>
    JSON.parse(l).message
  );
  assert.deepEqual(burst, Array.from({ length: 20 }, (_, i) => `b${i}`));
  conn.close();
  await web.close();
});

Deno.test("e2e tcp: a person on netcat is asked for a nickname, chats in text, and sees the mode in the prompt", async () => {
  await using server = await withServer();
  const person = await LineClient.connect(server.tcpPort);
  // Says nothing at first: the server greets after a short silence.
  await person.until(() => person.tail.includes("Enter your nickname:"), "the nickname prompt");
  await person.send("Carol");
  await person.line(/Logged in as Carol \(guest/);
  await person.until(() => person.tail.endsWith("[general]> "), "the general prompt");

  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  await person.line(/\* Alice joined the chat \(2 online\)/);
  await alice.send({ type: "message", message: "hi Carol" });
  await person.line(/^\[\d\d:\d\d\] #general Alice: hi Carol$/);
  await person.send("hello Alice");
  assert.equal(
    (await alice.type("message", (m) => m.message === "hello Alice")).from_username,
    "Carol",
  );
  await person.send("/users");
  await person.line("Online (2): Alice, Carol");
  await person.send("/private Alice just for you");
  assert.equal((await alice.type("private")).message, "just for you");
  await person.send("/join games");
  await person.line("You are in #games");
  await person.until(() => person.tail.endsWith("[#games]> "), "the #games prompt");
  await person.send("/dance");
  await person.line("! Unknown command /dance: /help lists the commands");
  await person.send("/help");
  await person.line("/session NAME");
  await person.send("/quit");
  await person.closedByServer();
  await alice.type("system", (f) => f.event === "offline" && f.username === "Carol");
  await Promise.all([person.close(), alice.close()]);
});

Deno.test("e2e tcp: /send NAME TEXT reaches a room the person is in by its bare name, as /chats names it", async () => {
  await using server = await withServer();
  const person = await LineClient.connect(server.tcpPort);
  await person.send("Carol");
  await person.line("Logged in as Carol");
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  await alice.send({ type: "join", room: "dev" });
  await alice.type("joined");
  await person.send("/chats dev");
  await person.line("You are in #dev");
  await person.send("/chats books");
  await person.line("You are in #books");
  await person.send("/send dev is the build green?");
  const m = await alice.type("message", (f) => f.message === "is the build green?");
  assert.equal(m.room, "dev");
  // A room joined on the user's other connection counts too (its `joined` reaches this one).
  const other = await JsonClient.connect(server.tcpPort, { username: "Carol" });
  await alice.send({ type: "join", room: "ops" });
  await alice.type("joined");
  await other.send({ type: "join", room: "ops" });
  await other.type("joined");
  await person.line("You are in #ops");
  await person.send("/send Ops deploying now");
  assert.equal((await alice.type("message", (f) => f.message === "deploying now")).room, "ops");
  // Once left, the name is a user's again: there is no user "dev".
  await person.send("/leave dev");
  await person.line("You left #dev");
  await person.send("/send dev anyone?");
  await person.line('! There is no user "dev"');
  await Promise.all([person.close(), alice.close(), other.close()]);
});

Deno.test("e2e tcp: text sessions are asked with y/n; accept and reject reach both sides", async () => {
  await using server = await withServer();
  const bob = await LineClient.connect(server.tcpPort);
  await bob.send("Bob");
  await bob.line("Logged in as Bob");
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });

  await alice.send({ type: "session_request", target_username: "Bob" });
  await bob.line("Alice wants to start a private session with you (y/n). Answer y or n.");
  await bob.send("n");
  await alice.type("session_rejected");
  await bob.line("private session declined");

  await alice.send({ type: "session_request", target_username: "Bob" });
  await bob.line("Alice wants to start a private session");
  await bob.send("y");
  const accepted = await alice.type("session_accepted");
  assert.deepEqual(accepted.mode, { kind: "session", with: "Bob" });
  await bob.until(() => bob.tail.endsWith("[private: Alice]> "), "the session prompt");
  await bob.send("only you can read this");
  const pm = await alice.type("private");
  assert.equal(pm.message, "only you can read this");
  await alice.send({ type: "message", message: "same here" });
  await bob.line(">> Alice → Bob: same here");
  await bob.send("/exit");
  await alice.type("session_ended");
  await bob.until(() => bob.tail.endsWith("[general]> "), "the room prompt again");
  await Promise.all([bob.close(), alice.close()]);
});

Deno.test("e2e tcp: joining a room shows its last messages; a returning user gets what they missed", async () => {
  await using server = await withServer({ args: ["--rate-limit", "0"] });
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  await alice.send({ type: "join", room: "books" });
  for (let i = 1; i <= 25; i++) await alice.send({ type: "message", message: `book ${i}` });
  await alice.type("ack", (a) => a.seq === 25);
  const bob = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  await bob.send({ type: "join", room: "books" });
  const h = await bob.type("history", (f) => f.chat === "books");
  assert.equal(h.messages.length, 20);
  assert.equal(h.messages[0]!.message, "book 6");
  assert.equal(h.has_more, true);
  await bob.close();
  await alice.type("system", (f) => f.event === "offline");

  await alice.send({ type: "message", message: "missed in books" });
  await alice.send({ type: "private", target_username: "Bob", message: "missed privately" });
  await alice.type("ack", (a) => a.chat === "@Bob");
  const back = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  const books = await back.type("history", (f) => f.reason === "unread" && f.chat === "books");
  assert.deepEqual(books.messages.map((m) => m.message), ["missed in books"]);
  const dm = await back.type("history", (f) => f.reason === "unread" && f.chat === "@Alice");
  assert.deepEqual(dm.messages.map((m) => m.message), ["missed privately"]);
  await back.close();
  await alice.type("system", (f) => f.event === "offline");
  const again = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  await again.send({ type: "ping" });
  await again.type("pong");
  assert.equal(
    again.has((f) => f.type === "history" && f.reason === "unread"),
    false,
    "nothing replayed twice",
  );
  await Promise.all([again.close(), alice.close()]);
});

Deno.test("e2e tcp: one user on two connections, one JSON and one text, stays in sync", async () => {
  await using server = await withServer();
  const phone = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  const laptop = await LineClient.connect(server.tcpPort);
  await laptop.send("Alice");
  await laptop.line("Logged in as Alice");
  const bob = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  await bob.send({ type: "private", target_username: "Alice", message: "to both devices" });
  await phone.type("private", (m) => m.message === "to both devices");
  await laptop.line(">> Bob → Alice: to both devices");
  await laptop.send("typed on the laptop");
  await phone.type("message", (m) => m.message === "typed on the laptop");
  await bob.type("message", (m) => m.message === "typed on the laptop");
  await phone.send({ type: "status" });
  assert.equal((await phone.type("status")).connections, 2);
  await Promise.all([phone.close(), laptop.close(), bob.close()]);
});

Deno.test("e2e tcp: hello with unique refuses a guest name in use, and still lets the name in later", async () => {
  await using server = await withServer();
  const first = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  const second = await JsonClient.connect(server.tcpPort);
  await second.send({ type: "hello", username: "alice", unique: true });
  const refused = await second.type("error");
  assert.equal(refused.code, "name_taken");
  assert.match(refused.message, /Alice is in use by another connection/);
  // Once the first connection is gone, the same hello gets in.
  await first.close();
  let welcome = false;
  for (let i = 0; i < 50 && !welcome; i++) {
    await second.send({ type: "hello", username: "alice", unique: true });
    const answer = await second.frame((f) => f.type === "welcome" || f.type === "error");
    welcome = answer.type === "welcome";
    if (!welcome) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(welcome, "the name was let in once its connection had gone");
  await second.close();
});

Deno.test("e2e tcp: registered names need their password, on JSON and on text", async () => {
  await using server = await withServer();
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  await alice.send({ type: "register", password: "wonderland" });
  await alice.type("system", (f) => /now registered/.test(f.message));
  const intruder = await JsonClient.connect(server.tcpPort);
  await intruder.send({ username: "Alice" });
  assert.equal((await intruder.type("error")).code, "password_required");
  await intruder.send({ username: "Alice", password: "nope-nope" });
  assert.equal((await intruder.type("error")).code, "bad_password");
  assert.equal(intruder.has((f) => f.type === "welcome"), false);

  const person = await LineClient.connect(server.tcpPort);
  await person.send("Alice");
  await person.until(() => person.tail.includes("Password for Alice:"), "the password prompt");
  await person.send("guess-1");
  await person.line("! Wrong password.");
  await person.send("wonderland");
  await person.line("Logged in as Alice (registered)");
  await Promise.all([alice.close(), intruder.close(), person.close()]);
});

Deno.test("e2e tcp: a telnet client in character mode (Enter as CR NUL, or CR alone, CR LF cut between reads, Backspace sent as typed) is read line by line; arrow keys are dropped", async () => {
  await using server = await withServer();
  const alice = await JsonClient.connect(server.tcpPort, { username: "Alice" });
  await alice.send({ type: "register", password: "wonderland" });
  await alice.type("system", (f) => /now registered/.test(f.message));
  const person = await LineClient.connect(server.tcpPort);
  const enc = new TextEncoder();
  await person.sendBytes(enc.encode("Alice\r\0"));
  await person.until(() => person.tail.includes("Password for Alice:"), "the password prompt");
  // With echo off the client is in character mode: CR NUL again, and a typo taken back with
  // Backspace (DEL) arrives as it was typed.
  await person.sendBytes(enc.encode("wonderlamd\x7f\x7fnd\r\0"));
  await person.line("Logged in as Alice (registered)");
  await person.sendBytes(enc.encode("one\rtwo\r"));
  await alice.type("message", (m) => m.message === "one");
  await alice.type("message", (m) => m.message === "two");
  // CR at the end of one read and LF at the start of the next: one line end, no empty line.
  await person.sendBytes(enc.encode("three\r"));
  await alice.type("message", (m) => m.message === "three");
  await new Promise((r) => setTimeout(r, 30));
  await person.sendBytes(enc.encode("\nfour\r\n"));
  await alice.type("message", (m) => m.message === "four");
  await person.send("/users");
  await person.line("Online (1): Alice");
  await person.sendBytes(enc.encode("typo\b\b\b\bfive\r\0"));
  await alice.type("message", (m) => m.message === "five");
  // Arrow keys, Home and Alt-x in a line-mode terminal arrive as escape sequences: dropped.
  await person.sendBytes(enc.encode("si\x1b[D\x1b[Cx\x1bOH\x1b[1;5C\x1bx\r\n"));
  await alice.type("message", (m) => m.message === "six");
  const texts = alice.frames.filter((f) => f.type === "message").map((f) => f.message);
  assert.deepEqual(texts, ["one", "two", "three", "four", "five", "six"]);
  await Promise.all([alice.close(), person.close()]);
});

Deno.test("e2e tcp: bad frames get error frames and the connection keeps working; an oversized line closes only that connection", async () => {
  await using server = await withServer();
  const bystander = await JsonClient.connect(server.tcpPort, { username: "Bystander" });
  const c = await JsonClient.connect(server.tcpPort, { username: "Clumsy" });
  await c.sendRaw("{not json");
  assert.equal((await c.type("error")).code, "bad_json");
  await c.sendRaw("[1,2,3]");
  assert.equal((await c.type("error")).code, "bad_frame");
  await c.send({ type: "teleport" });
  assert.equal((await c.type("error")).code, "unknown_type");
  await c.send({ type: "message", message: 42 });
  const wrong = await c.type("error");
  assert.equal(wrong.code, "bad_field");
  assert.match(wrong.message, /"message" must be a string/);
  await c.send({ type: "private", target_username: "Nobody", message: "x", ref: "r9" });
  const nobody = await c.type("error");
  assert.equal(nobody.code, "no_such_user");
  assert.equal(nobody.ref, "r9");
  await c.send({ type: "message", message: "still here" });
  await bystander.type("message", (m) => m.message === "still here");

  const big = await LineClient.connect(server.tcpPort);
  await big.sendBytes(
    new TextEncoder().encode(
      `{"username":"Big"}\n{"type":"message","message":"${"x".repeat(MAX_LINE_BYTES + 10)}"}\n`,
    ),
  );
  await big.closedByServer();
  assert.ok(
    big.lines.some((l) => l.includes('"code":"too_long"')),
    "told why before being closed",
  );
  await c.send({ type: "message", message: "others unaffected" });
  await bystander.type("message", (m) => m.message === "others unaffected");
  await Promise.all([bystander.close(), c.close(), big.close()]);
});

Deno.test("e2e tcp: a restart on the same KV file keeps users, rooms, messages and read cursors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_e2e_" });
  const data = `${dir}/chat.kv`;
  try {
    let server = await startServer({ data });
    const alice = await JsonClient.connect(server.tcpPort, {
      username: "Alice",
      password: "alice-pass",
    });
    const bob = await JsonClient.connect(server.tcpPort, { username: "Bob" });
    await alice.send({ type: "join", room: "plans" });
    await alice.send({ type: "message", message: "kept across restarts" });
    await alice.type("ack");
    await bob.close();
    await alice.type("system", (f) => f.event === "offline");
    await alice.send({ type: "private", target_username: "Bob", message: "for later" });
    await alice.type("ack", (a) => a.chat === "@Bob");
    await alice.close();
    assert.equal(await server.stop("SIGTERM"), 0, "graceful shutdown exits 0");

    server = await startServer({ data });
    try {
      const again = await JsonClient.connect(server.tcpPort);
      await again.send({ username: "Alice" });
      assert.equal((await again.type("error")).code, "password_required", "the account survived");
      await again.send({ username: "Alice", password: "alice-pass" });
      const welcome = await again.type("welcome");
      assert.deepEqual(welcome.rooms, ["general", "plans"]);
      await again.send({ type: "history", chat: "plans" });
      assert.deepEqual(
        (await again.type("history", (h) => h.chat === "plans")).messages.map((m) => m.message),
        ["kept across restarts"],
      );
      const bob2 = await JsonClient.connect(server.tcpPort, { username: "Bob" });
      const unread = await bob2.type("history", (h) => h.reason === "unread");
      assert.deepEqual(unread.messages.map((m) => m.message), ["for later"]);
      await Promise.all([again.close(), bob2.close()]);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e tcp: a script that half-closes after its last line still gets its ack", async () => {
  await using server = await withServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
  await conn.write(
    new TextEncoder().encode(
      '{"username":"Bot"}\n{"type":"message","message":"fire and forget","ref":"1"}\n',
    ),
  );
  await conn.closeWrite();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of conn.readable) text += decoder.decode(chunk, { stream: true });
  const frames = text.trim().split("\n").map((l) => JSON.parse(l));
  const ack = frames.find((f) => f.type === "ack");
  assert.ok(ack, `no ack in:\n${text}`);
  assert.equal(ack.ref, "1");
});

Deno.test("e2e tcp: quit says goodbye with the user's words, on JSON and WebSocket; the others are told them", async () => {
  await using server = await withServer();
  const watcher = await JsonClient.connect(server.tcpPort, { username: "Watcher" });
  const leaver = await JsonClient.connect(server.tcpPort, { username: "Leaver" });
  await watcher.type("system", (f) => f.event === "online" && f.username === "Leaver");
  await leaver.send({ type: "quit", reason: "  off to lunch  ", ref: "q1" });
  const bye = await leaver.type("bye");
  assert.equal(bye.ref, "q1");
  assert.match(bye.reason, /off to lunch/);
  await leaver.closedByServer();
  const told = await watcher.type(
    "system",
    (f) => f.event === "offline" && f.username === "Leaver",
  );
  assert.equal(told.reason, "off to lunch");

  // The same frame over a WebSocket; words with control characters are refused, and it stays.
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Webber" });
  await web.type("welcome");
  await watcher.type("system", (f) => f.event === "online" && f.username === "Webber");
  web.send({ type: "quit", reason: "bad\u0007words" });
  assert.equal((await web.type("error")).code, "bad_field");
  web.send({ type: "quit", reason: "see you" });
  await web.type("bye");
  await web.until(() => web.closed, "the server to close the WebSocket");
  const told2 = await watcher.type(
    "system",
    (f) => f.event === "offline" && f.username === "Webber",
  );
  assert.equal(told2.reason, "see you");

  // Before logging in, quit just closes.
  const early = await JsonClient.connect(server.tcpPort);
  await early.send({ type: "quit" });
  await early.type("bye");
  await early.closedByServer();
  await watcher.close();
  await web.close();
});
