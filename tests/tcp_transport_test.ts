/**
 * The TCP transport in-process, on a real socket: behaviour that needs a knob the CLI does not
 * expose, such as a small outbound queue limit.
 */
import assert from "node:assert/strict";
import { createLogger } from "../server/log.ts";
import { serveTcp, type TcpOptions } from "../server/transport/tcp/listener.ts";
import { JsonClient, makeHub, withTimeout } from "./_helpers.ts";

/** The TCP transport on a free port over an in-memory hub; disposing stops it all in order. */
async function tcpServer(options: Partial<TcpOptions> = {}) {
  const kv = await Deno.openKv(":memory:");
  const { hub } = await makeHub(kv);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tcp = serveTcp(hub, listener, { log: createLogger("silent"), ...options });
  return {
    hub,
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      tcp.close();
      await hub.close();
      await tcp.finished;
      kv.close();
    },
  };
}

Deno.test("tcp: a reader that stops reading is dropped with a reason, and the room keeps flowing", async () => {
  let dropped!: () => void;
  const droppedP = new Promise<void>((r) => (dropped = r));
  const log = createLogger("warn", (line) => {
    if (line.includes("dropping slow tcp reader")) dropped();
  });
  await using server = await tcpServer({ log, maxOutboundBytes: 2 * 1024 * 1024 });
  const { port } = server;

  const slow = await Deno.connect({ hostname: "127.0.0.1", port });
  await slow.write(new TextEncoder().encode('{"username":"Sleepy"}\n'));
  const fast = await JsonClient.connect(port, { username: "Reader" });
  const sender = await JsonClient.connect(port, { username: "Writer" });
  await fast.type("system", (f) => f.event === "online" && f.username === "Writer");

  // Send until the server gives up on the sleeper (kernel buffers absorb a few MB first).
  const text = "x".repeat(4000);
  let sent = 0;
  let isDropped = false;
  void droppedP.then(() => (isDropped = true));
  while (!isDropped && sent < 8000) {
    for (let i = 0; i < 100; i++) await sender.send({ type: "message", message: text });
    sent += 100;
    const last = sent;
    await sender.type("ack", (a) => a.seq === last);
  }
  assert.ok(isDropped, `the slow reader was not dropped after ${sent} messages`);
  await fast.type("message", (m) => m.seq === sent);
  assert.equal(
    fast.frames.filter((f) => f.type === "message").length,
    sent,
    "the fast reader got every message",
  );
  assert.equal(sender.frames.some((f) => f.type === "bye"), false, "the sender was not dropped");

  // The sleeper wakes up: it finds the goodbye, with the reason, at the end of what it can read.
  let tail = "";
  const decoder = new TextDecoder();
  await withTimeout(
    (async () => {
      for await (const chunk of slow.readable) tail = (tail + decoder.decode(chunk)).slice(-500);
    })(),
    5000,
    "the slow reader's connection to end",
  );
  assert.match(tail, /"type":"bye","code":"too_slow"/);

  await Promise.all([fast.close(), sender.close()]);
});

Deno.test("tcp: a connection that trickles bytes and never logs in is closed at the login deadline", async () => {
  await using server = await tcpServer({
    loginTimeoutMs: 300,
    greetingDelayMs: 5000,
  });
  const { port } = server;
  const slow = await Deno.connect({ hostname: "127.0.0.1", port });
  // A slowloris: a byte at a time, never a full line.
  for (const b of '{"user') {
    await slow.write(new TextEncoder().encode(b));
  }
  let text = "";
  await withTimeout(
    (async () => {
      for await (const chunk of slow.readable) text += new TextDecoder().decode(chunk);
    })(),
    3000,
    "the server to close the slow connection",
  );
  assert.match(text, /"code":"too_slow","reason":"You did not log in in time/);
  // A prompt login is not affected.
  const ok = await JsonClient.connect(port, { username: "Quick" });
  await new Promise((r) => setTimeout(r, 400));
  await ok.send({ type: "ping" });
  await ok.type("pong");
  await ok.close();
});

Deno.test("tcp: heartbeats find a client that stopped answering, and leave alone one that never did", async () => {
  await using server = await tcpServer({ heartbeatMs: 100 });
  const { port } = server;
  const watcher = await JsonClient.connect(port, { username: "Watcher" });
  // A heartbeat-capable client: answers the first ping, then its machine "vanishes" (silence).
  const capable = await JsonClient.connect(port, { username: "Capable" });
  await capable.type("ping");
  await capable.send({ type: "pong" });
  // A seed-protocol client: never answers (and saying "pong" in the room is no answer).
  const legacy = await JsonClient.connect(port, { username: "Legacy" });
  await legacy.send({ type: "message", message: "pong" });
  await legacy.type("ping");
  await capable.closedByServer();
  await watcher.type("system", (f) => f.event === "offline" && f.username === "Capable");
  // Legacy is still there, several heartbeats later.
  await legacy.type("ping");
  await legacy.type("ping");
  await legacy.send({ type: "status" });
  assert.equal((await legacy.type("status")).username, "Legacy");
  assert.equal(
    watcher.has((f) => f.type === "system" && f.event === "offline" && f.username === "Legacy"),
    false,
  );
  await Promise.all([watcher.close(), capable.close(), legacy.close()]);
});

/** A raw TCP peer that keeps every byte it receives, for telnet-level checks. */
async function rawPeer(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let received = new Uint8Array(0);
  let closed = false;
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      const next = new Uint8Array(received.length + n);
      next.set(received);
      next.set(buf.subarray(0, n), received.length);
      received = next;
    }
    closed = true;
  })();
  return {
    write: (bytes: Uint8Array | string) =>
      conn.write(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes),
    received: () => received,
    closed: () => closed,
    async until(what: string, test: () => boolean) {
      const deadline = Date.now() + 5000;
      while (!test()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      try {
        conn.close();
      } catch { /* closed by the server */ }
      await reading;
    },
  };
}

function countProbes(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xff && bytes[i + 1] === 253 && bytes[i + 2] === 6) n++;
  }
  return n;
}

Deno.test("tcp: telnet clients get TIMING-MARK heartbeats and are dropped when they stop answering; netcat users get no telnet bytes", async () => {
  await using server = await tcpServer({
    heartbeatMs: 100,
    greetingDelayMs: 50,
  });
  const { port } = server;
  const watcher = await JsonClient.connect(port, { username: "Watcher" });
  // A telnet program: it negotiates (IAC WILL NAWS) and ends lines with CR LF.
  const telnet = await rawPeer(port);
  await telnet.write(new Uint8Array([0xff, 251, 31]));
  await telnet.until(
    "the greeting",
    () => new TextDecoder().decode(telnet.received()).includes("nickname"),
  );
  await telnet.write("Teller\r\n");
  await watcher.type("system", (f) => f.event === "online" && f.username === "Teller");
  await telnet.until("a TIMING-MARK probe", () => countProbes(telnet.received()) >= 1);
  // Its telnet client answers (WONT TM), as telnet programs do on their own.
  await telnet.write(new Uint8Array([0xff, 252, 6]));
  // A person on netcat: plain lines, no telnet.
  const netcat = await rawPeer(port);
  await netcat.until(
    "the greeting",
    () => new TextDecoder().decode(netcat.received()).includes("nickname"),
  );
  await netcat.write("Catter\n");
  await watcher.type("system", (f) => f.event === "online" && f.username === "Catter");
  // Then the telnet user's machine vanishes: no more answers. Within 3¼ beats it is closed.
  const t0 = Date.now();
  await telnet.until("the server to close the silent telnet client", () => telnet.closed());
  assert.ok(Date.now() - t0 < 1000, `closed after ${Date.now() - t0} ms`);
  await watcher.type("system", (f) => f.event === "offline" && f.username === "Teller");
  assert.ok(countProbes(telnet.received()) >= 2, "probed again before being dropped");
  // The netcat user, silent all along, was never sent a telnet byte and is still online.
  assert.equal(netcat.received().includes(0xff), false, "netcat got telnet bytes");
  assert.equal(netcat.closed(), false);
  const before = netcat.received().length;
  await netcat.write("/users\n");
  await netcat.until(
    "an answer to /users",
    () => new TextDecoder().decode(netcat.received().subarray(before)).includes("Watcher"),
  );
  assert.equal(
    watcher.has((f) => f.type === "system" && f.event === "offline" && f.username === "Catter"),
    false,
  );
  await Promise.all([watcher.close(), telnet.close(), netcat.close()]);
});

Deno.test("tcp: a person's password is typed with telnet echo off, and echo comes back after it", async () => {
  await using server = await tcpServer({ greetingDelayMs: 50 });
  await server.hub.login("Alice", "alice-password");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const received: number[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      received.push(...buf.subarray(0, n));
    }
  })();
  const seen = (bytes: number[]) => {
    for (let i = 0; i + bytes.length <= received.length; i++) {
      if (bytes.every((b, j) => received[i + j] === b)) return i;
    }
    return -1;
  };
  const text = () => new TextDecoder().decode(new Uint8Array(received.filter((b) => b < 0x80)));
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 250 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ok(), `${what}; got ${JSON.stringify(text())}`);
  };
  await conn.write(new TextEncoder().encode("Alice\r\n"));
  await until("the password prompt", () => text().includes("Password for Alice:"));
  const off = seen([0xff, 0xfb, 0x01]);
  assert.ok(off >= 0, "IAC WILL ECHO before the password");
  assert.equal(seen([0xff, 0xfc, 0x01]), -1, "echo stays off while it is typed");
  await conn.write(new TextEncoder().encode("alice-password\r\n"));
  await until("the welcome", () => text().includes("Welcome to the chat, Alice"));
  const on = seen([0xff, 0xfc, 0x01]);
  assert.ok(on > off, "IAC WONT ECHO once the password is in");
  conn.close();
  await reading;
});

Deno.test("tcp: a program greeted as a person because it was slow to start still gets JSON or JIM from its first object", async () => {
  await using server = await tcpServer({ greetingDelayMs: 50 });
  /** Connects, waits for the greeting a silent peer gets, then sends `first`; returns what follows. */
  const lateClient = async (first: string, until: (text: string) => boolean) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    let text = "";
    const reading = (async () => {
      const buf = new Uint8Array(4096);
      while (true) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    })();
    const wait = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 250 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(ok(), `${what}; got ${JSON.stringify(text)}`);
    };
    await wait("the greeting", () => text.includes("Enter your nickname"));
    const greeting = text.length;
    await conn.write(new TextEncoder().encode(first));
    await wait("an answer in the program's own protocol", () => until(text.slice(greeting)));
    conn.close();
    await reading;
    return text.slice(greeting);
  };
  const json = await lateClient(
    '{"type":"hello","username":"Slowpoke"}\n',
    (t) => t.includes("\n"),
  );
  assert.equal(JSON.parse(json.split("\n")[0]!).type, "welcome", json);
  // A JIM client sends its objects with no newline.
  const jim = await lateClient(
    '{"action":"presence","time":1,"user":{"account_name":"Slowjim"}}',
    (t) => t.includes("}"),
  );
  assert.equal(JSON.parse(jim.trim().split("\n")[0]!).response, 200, jim);
  // A person who types a name after the greeting stays in text mode.
  const person = await lateClient("Typist\r\n", (t) => t.includes("Typist"));
  assert.ok(!person.trimStart().startsWith("{"), person);
});
