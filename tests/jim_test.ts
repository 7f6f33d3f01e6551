/**
 * A JIM client (seed 004), written from the assignment's description, against the real server:
 * it logs in with the challenge (the password never crosses the wire), exchanges messages with a
 * WebSocket user, learns a contact is offline, manages contacts, lists users and exits. Objects
 * go out back to back without newlines, as the course's clients send them.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac, scrypt } from "node:crypto";
import { jimHints } from "../server/transport/tcp/jim.ts";
import {
  BARE_JSON_MAX_WAITING,
  ObjectOutput,
  PACE_GAP_MS,
  PACED_MAX_WAITING,
  PacedWrites,
} from "../server/transport/tcp/paced_writes.ts";
import { coreHintsWithCommands, tokenFor, withServer, WsClient } from "./_helpers.ts";

type Jim = Record<string, unknown>;

/** A raw-socket JIM client. */
class JimClient {
  readonly received: Jim[] = [];
  #conn: Deno.Conn;
  #rest = "";
  #reading: Promise<void>;
  closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  static async connect(port: number): Promise<JimClient> {
    return new JimClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of this.#conn.readable) {
        this.#rest += dec.decode(chunk, { stream: true });
        // Objects may come back to back: take each complete one.
        let depth = 0, start = 0, inString = false, esc = false;
        for (let i = 0; i < this.#rest.length; i++) {
          const c = this.#rest[i]!;
          if (inString) {
            if (esc) esc = false;
            else if (c === "\\") esc = true;
            else if (c === '"') inString = false;
          } else if (c === '"') inString = true;
          else if (c === "{" && depth++ === 0) start = i;
          else if (c === "}" && --depth === 0) {
            this.received.push(JSON.parse(this.#rest.slice(start, i + 1)));
            this.#rest = this.#rest.slice(i + 1);
            i = -1;
          }
        }
      }
    } catch { /* closed */ }
    this.closed = true;
  }

  send(obj: Jim): Promise<number> {
    return this.#conn.write(new TextEncoder().encode(JSON.stringify(obj)));
  }

  /** Waits for the next received object matching `test`, taking it. */
  async next(test: (o: Jim) => boolean, what: string): Promise<Jim> {
    for (let i = 0; i < 250; i++) {
      const at = this.received.findIndex(test);
      if (at >= 0) return this.received.splice(at, 1)[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${what}; got ${JSON.stringify(this.received)}`);
  }

  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }
}

/** The key the server's hash holds, derived from the password as the challenge says. */
function proof(password: string, challenge: Jim): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(
      password,
      Buffer.from(String(challenge.salt), "base64"),
      Number(challenge.key_bytes),
      { N: Number(challenge.N), r: Number(challenge.r), p: Number(challenge.p), maxmem: 1 << 30 },
      (err, key) => {
        if (err) return reject(err);
        resolve(createHmac("sha256", key).update(String(challenge.bin)).digest("base64"));
      },
    );
  });
}

Deno.test("jim: a seed-004 client logs in by challenge, chats with a WebSocket user, hears 'client not online', manages contacts and exits", async () => {
  await using server = await withServer();
  // The admin registers clients (seed 004); here an open server registers on first login.
  await tokenFor(server.base, "Jimmy");
  await tokenFor(server.base, "Offline");
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Wanda" });
  await web.until(() => web.frames.some((f) => f.type === "welcome"), "Wanda's welcome");

  const jim = await JimClient.connect(server.tcpPort);
  await jim.send({
    action: "presence",
    time: Date.now() / 1000,
    user: { account_name: "Jimmy", status: "online" },
  });
  const challenge = await jim.next((o) => o.response === 511, "the 511 challenge");
  assert.equal(challenge.kdf, "scrypt");
  assert.equal(typeof challenge.bin, "string");
  // A wrong password is refused, and a new presence asks again.
  await jim.send({ response: 511, bin: await proof("not-the-password", challenge) });
  assert.equal((await jim.next((o) => o.response === 400, "the refusal")).response, 400);
  await jim.send({ action: "presence", time: Date.now() / 1000, user: { account_name: "Jimmy" } });
  const again = await jim.next((o) => o.response === 511, "a second challenge");
  await jim.send({ response: 511, bin: await proof("Jimmy-password", again) });
  await jim.next((o) => o.response === 200, "the 200 of the login");

  // JIM → WebSocket, and back.
  await jim.send({
    action: "msg",
    time: Date.now() / 1000,
    from: "Jimmy",
    to: "Wanda",
    message: "hi Wanda",
  });
  await jim.next((o) => o.response === 200, "the 200 of the message");
  await web.until(
    () => web.frames.some((f) => f.type === "private" && f.message === "hi Wanda"),
    "Wanda gets it",
  );
  web.send({ type: "private", target_username: "Jimmy", message: "hello JIM" });
  const incoming = await jim.next((o) => o.action === "msg", "Wanda's message");
  assert.deepEqual([incoming.from, incoming.to, incoming.message], ["Wanda", "Jimmy", "hello JIM"]);
  assert.equal(typeof incoming.time, "number");

  // To someone offline: stored, and the sender is told.
  await jim.send({ action: "msg", time: 0, from: "Jimmy", to: "Offline", message: "later" });
  const notOnline = await jim.next((o) => o.response === 400, "client not online");
  assert.equal(notOnline.error, "client not online");

  // Contacts: Wanda came by messaging; add and remove one; list users.
  await jim.send({ action: "get_contacts", time: 0, user_login: "Jimmy" });
  const contacts = await jim.next((o) => o.response === 202, "the contacts");
  assert.deepEqual((contacts.data_list as string[]).sort(), ["Offline", "Wanda"]);
  await jim.send({ action: "add", time: 0, user_id: "Wanda", user_login: "Jimmy" });
  await jim.next((o) => o.response === 200, "added");
  await jim.send({ action: "del", time: 0, user_id: "Offline", user_login: "Jimmy" });
  await jim.next((o) => o.response === 200, "removed");
  await jim.send({ action: "get_contacts", time: 0 });
  assert.deepEqual((await jim.next((o) => o.response === 202, "contacts")).data_list, ["Wanda"]);
  await jim.send({ action: "get_users", time: 0 });
  const users = (await jim.next((o) => o.response === 202, "users")).data_list as string[];
  for (const name of ["Jimmy", "Offline", "Wanda"]) assert.ok(users.includes(name), name);

  // The offline user gets the message on login, on any wire.
  const later = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  later.send({ type: "hello", username: "Offline", password: "Offline-password" });
  await later.until(
    () => JSON.stringify(later.frames).includes('"message":"later"'),
    "the stored message",
  );

  await jim.send({ action: "exit", time: 0 });
  for (let i = 0; i < 100 && !jim.closed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(jim.closed, true, "exit ends the connection");
  await jim.close();
  await web.close();
  await later.close();
});

Deno.test("jim: join and leave rooms, hear the rooms joined (only those), a guest name is one client's, hints in JIM's actions, quit", async () => {
  await using server = await withServer();
  const presence = (name: string) => ({
    action: "presence",
    time: Date.now() / 1000,
    type: "status",
    user: { account_name: name, status: "here" },
  });
  const ann = await JimClient.connect(server.tcpPort);
  await ann.send(presence("Ann"));
  await ann.next((o) => o.response === 200, "Ann's login");
  // Presence again (a keepalive, or the answer to a probe) is fine; another name is not.
  await ann.send(presence("Ann"));
  await ann.next((o) => o.response === 200, "Ann's presence again");
  await ann.send(presence("Someone"));
  assert.match(
    String((await ann.next((o) => o.response === 400, "another name")).error),
    /already logged in as Ann/,
  );
  // The same guest name from a second client is refused: it would be Ann's conversations.
  const impostor = await JimClient.connect(server.tcpPort);
  await impostor.send(presence("Ann"));
  const taken = await impostor.next((o) => o.response === 400, "the name in use");
  assert.match(String(taken.error), /in use/);
  await impostor.close();

  // Hints name JIM's actions, not the slash commands people type.
  await ann.send({ action: "msg", time: 0, from: "Ann", to: "#lobby", message: "anyone?" });
  const noRoom = await ann.next((o) => o.response === 400, "no such room");
  assert.match(String(noRoom.error), /\{"action":"join","room":"#lobby"\} creates it/);
  await ann.send({ action: "join", time: 0, room: "#lobby" });
  await ann.next((o) => o.response === 200 && o.alert === "joined #lobby", "Ann joined");

  const bo = await JimClient.connect(server.tcpPort);
  await bo.send(presence("Bo"));
  await bo.next((o) => o.response === 200, "Bo's login");
  await bo.send({ action: "join", time: 0, room: "lobby" });
  await bo.next((o) => o.response === 200, "Bo joined");

  // A WebSocket user in the same room, and in #general where neither JIM client listens.
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Wes" });
  await web.until(() => web.frames.some((f) => f.type === "welcome"), "Wes's welcome");
  web.send({ type: "join", room: "lobby" });
  await web.until(() => web.frames.some((f) => f.type === "joined"), "Wes joined");
  // Bo joins #quiet from a WebSocket too: its JIM connection did not ask, so it stays quiet.
  const boWeb = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  boWeb.send({ type: "hello", username: "Bo" });
  await boWeb.until(() => boWeb.frames.some((f) => f.type === "welcome"), "Bo on the web");
  boWeb.send({ type: "join", room: "quiet" });
  await boWeb.until(() => boWeb.frames.some((f) => f.type === "joined"), "Bo joined #quiet");
  web.send({ type: "join", room: "quiet" });
  web.send({ type: "message", room: "quiet", message: "psst in quiet" });
  web.send({ type: "message", room: "general", message: "general chatter" });
  web.send({ type: "message", room: "lobby", message: "hello lobby" });

  const heard = await bo.next(
    (o) => o.action === "msg" && o.message === "hello lobby",
    "Wes in #lobby",
  );
  assert.deepEqual([heard.from, heard.to], ["Wes", "#lobby"]);
  await ann.next((o) => o.action === "msg" && o.message === "hello lobby", "Ann hears it too");
  await ann.send({ action: "msg", time: 0, from: "Ann", to: "#lobby", message: "hi from JIM" });
  await ann.next((o) => o.response === 200, "Ann's message accepted");
  await bo.next((o) => o.message === "hi from JIM", "Bo hears Ann");
  await web.until(
    () => web.frames.some((f) => f.type === "message" && f.message === "hi from JIM"),
    "Wes hears Ann",
  );

  // After leaving, Bo hears the room no more; Ann still does.
  await bo.send({ action: "leave", time: 0, room: "#lobby" });
  await bo.next((o) => o.response === 200 && o.alert === "left #lobby", "Bo left");
  web.send({ type: "message", room: "lobby", message: "after Bo left" });
  await ann.next((o) => o.message === "after Bo left", "Ann hears the room");
  // A private message to Bo goes behind it: once it arrives, nothing of the room came before.
  web.send({ type: "private", target_username: "Bo", message: "just you" });
  await bo.next((o) => o.message === "just you", "Bo's private message");
  const roomTraffic = bo.received.filter((o) => o.action === "msg");
  assert.deepEqual(roomTraffic, [], "no #general, no #quiet, and no #lobby after leaving");
  await boWeb.close();
  assert.ok(!ann.received.some((o) => o.message === "general chatter"), "#general not forwarded");

  // A join without a room says how; "quit" ends the connection as "exit" does.
  await bo.send({ action: "join", time: 0 });
  const how = await bo.next((o) => o.response === 400, "join without a room");
  assert.match(String(how.error), /"room"/);
  await bo.send({ action: "quit", time: 0 });
  for (let i = 0; i < 100 && !bo.closed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(bo.closed, true, "quit ends the connection");
  await bo.close();
  await ann.close();
  await web.close();
});

Deno.test("jim: every hint the core gives in slash commands reads as a JIM action", async () => {
  const hints = [
    'Say who you are first: {"username":"YourName"}',
    ...(await coreHintsWithCommands()),
  ];
  assert.ok(hints.length >= 10, `found ${hints.length} hints`);
  for (const hint of hints) {
    const jim = jimHints(hint);
    assert.ok(!/\/(join|users)\b/.test(jim), jim);
    assert.ok(!jim.includes('"username"'), jim);
  }
  assert.equal(
    jimHints("There is no room #x: /join x creates it"),
    'There is no room #x: {"action":"join","room":"#x"} creates it',
  );
});

Deno.test('jim: a client written from the course\'s code ("message", "mess_text") is answered in that spelling', async () => {
  await using server = await withServer();
  // The course's later clients send a public key at presence: that alone says which spelling.
  const keyed = await JimClient.connect(server.tcpPort);
  await keyed.send({ action: "presence", time: 1, user: { account_name: "Kira", pubkey: "KEY" } });
  await keyed.next((o) => o.response === 200, "Kira's login");
  // An earlier one says it with its first message.
  const plain = await JimClient.connect(server.tcpPort);
  await plain.send({ action: "presence", time: 1, user: { account_name: "Pavel" } });
  await plain.next((o) => o.response === 200, "Pavel's login");
  await plain.send({ action: "message", time: 2, from: "Pavel", to: "Kira", mess_text: "privet" });
  await plain.next((o) => o.response === 200, "Pavel's message accepted");
  const atKira = await keyed.next((o) => o.action === "message", "Pavel's message at Kira");
  assert.deepEqual([atKira.from, atKira.to, atKira.mess_text], ["Pavel", "Kira", "privet"]);
  assert.equal(atKira.message, undefined);
  await keyed.send({ action: "message", time: 3, from: "Kira", to: "Pavel", mess_text: "hi" });
  const atPavel = await plain.next((o) => o.action === "message", "Kira's answer at Pavel");
  assert.equal(atPavel.mess_text, "hi");
  await keyed.close();
  await plain.close();
});

Deno.test("jim: objects go out one per write, as the course's clients read them (one recv(), one json.loads())", async () => {
  await using server = await withServer();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  // The course's client: send() an object, then recv() and json.loads() once per object.
  const reads: unknown[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    while (reads.length < 6) {
      const n = await conn.read(buf);
      if (n === null) break;
      reads.push(JSON.parse(dec.decode(buf.subarray(0, n)))); // "Extra data" would throw here
      await new Promise((r) => setTimeout(r, 2)); // printing it
    }
  })();
  await conn.write(
    enc.encode(JSON.stringify({ action: "presence", user: { account_name: "Kurs" } })),
  );
  const web = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  web.send({ type: "hello", username: "Wanda" });
  await web.until(() => web.frames.some((f) => f.type === "welcome"), "Wanda's welcome");
  // Five messages handled in one turn: they used to leave in one write.
  web.sendRaw(
    Array.from(
      { length: 5 },
      (_, i) => JSON.stringify({ type: "private", target_username: "Kurs", message: `m${i}` }),
    ).join("\n"),
  );
  await reading;
  assert.equal(reads.length, 6);
  assert.deepEqual(
    reads.slice(1).map((o) => (o as { message: string }).message),
    ["m0", "m1", "m2", "m3", "m4"],
  );
  conn.close();
  await web.close();
});

Deno.test("PacedWrites: the first object at once, the rest PACE_GAP_MS apart, in order; too many waiting is a slow reader", async () => {
  const writes: Array<{ at: number; text: string }> = [];
  const start = performance.now();
  let overflowed = -1;
  const out = new PacedWrites(
    (b) => writes.push({ at: performance.now() - start, text: new TextDecoder().decode(b) }),
    (n) => (overflowed = n),
    { maxBytes: 1 << 20 },
  );
  for (const t of ["a", "b", "c"]) out.add(new TextEncoder().encode(t));
  assert.deepEqual(writes.map((w) => w.text), ["a"]);
  await new Promise((r) => setTimeout(r, PACE_GAP_MS * 4));
  assert.deepEqual(writes.map((w) => w.text), ["a", "b", "c"]);
  for (let i = 1; i < writes.length; i++) {
    assert.ok(writes[i]!.at - writes[i - 1]!.at >= PACE_GAP_MS - 2, JSON.stringify(writes));
  }
  // The first goes at once (the gap has passed), 500 wait, the next is one too many.
  for (let i = 0; i <= PACED_MAX_WAITING + 1; i++) out.add(new Uint8Array(1));
  assert.equal(overflowed, PACED_MAX_WAITING + 1, "the bytes that would have waited");
  assert.equal(out.waiting, 0, "what waited is forgotten with the reader");
  out.stop();
});

Deno.test("PacedWrites: what waits is bounded in bytes too (the connection's outbound bound)", () => {
  const now = 1_000;
  const written: number[] = [];
  let overflowed = -1;
  const out = new PacedWrites((b) => written.push(b.length), (n) => (overflowed = n), {
    maxBytes: 10,
    now: () => now,
  });
  out.add(new Uint8Array(4)); // written at once
  out.add(new Uint8Array(4)); // waits: 4 bytes
  out.add(new Uint8Array(4)); // waits: 8 bytes
  assert.deepEqual(written, [4]);
  assert.equal(out.waiting, 2);
  out.add(new Uint8Array(4)); // 12 bytes would wait: a slow reader
  assert.equal(overflowed, 12);
  assert.equal(out.waiting, 0);
  out.stop();
});

Deno.test("ObjectOutput: bare-object JSON clients are paced until a newline or until they fall 8 behind; JIM clients always", () => {
  const enc = new TextEncoder();
  const line = (t: string) => enc.encode(t + "\n");
  const pushed: string[] = [];
  const make = () =>
    new ObjectOutput((b) => pushed.push(new TextDecoder().decode(b).trim()), () => {}, 1 << 20);

  // A newline client: everything straight to the queue.
  const lines = make();
  lines.noteRead(enc.encode('{"username":"a"}\n'));
  for (const t of ["1", "2", "3"]) lines.write(line(t));
  assert.deepEqual(pushed.splice(0), ["1", "2", "3"]);

  // A bare-object client: the first at once, the rest wait their turn...
  const bare = make();
  bare.noteRead(enc.encode('{"username":"b"}'));
  for (const t of ["1", "2", "3"]) bare.write(line(t));
  assert.deepEqual(pushed.splice(0), ["1"]);
  // ...until it sends a newline: what waited goes at once, and the rest straight on.
  bare.noteRead(enc.encode('{"type":"ping"}\n'));
  bare.write(line("4"));
  assert.deepEqual(pushed.splice(0), ["2", "3", "4"]);

  // Falling BARE_JSON_MAX_WAITING behind ends pacing for good, in order.
  const busy = make();
  busy.noteRead(enc.encode("{}"));
  const n = BARE_JSON_MAX_WAITING + 3;
  for (let i = 0; i < n; i++) busy.write(line(String(i)));
  assert.deepEqual(pushed.splice(0), Array.from({ length: n }, (_, i) => String(i)));
  busy.noteRead(enc.encode("{}"));
  busy.write(line("after"));
  assert.deepEqual(pushed.splice(0), ["after"], "never paced again");

  // JIM: paced whatever its reads end in.
  const jim = make();
  jim.jim();
  jim.noteRead(enc.encode('{"action":"presence"}\n'));
  for (const t of ["1", "2"]) jim.write(line(t));
  jim.noteRead(enc.encode('{"action":"msg"}\n'));
  assert.deepEqual(pushed.splice(0), ["1"], "a newline does not end a JIM client's pacing");
  for (const o of [bare, busy, jim]) o.stop();
});
