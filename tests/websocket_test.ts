/**
 * The WebSocket framing (server/transport/websocket.ts) over real sockets, driven by a raw
 * client that writes frames byte by byte as a hostile one would: the size limit holds from a
 * frame's header, before its payload is read; RFC 6455's rules for clients are enforced; pings,
 * the closing handshake and the idle deadline work. The last test runs the real server.
 */
import assert from "node:assert/strict";
import { clientFrameHead } from "../bench/fuzz_inputs.ts";
import { createLogger } from "../server/log.ts";
import { type HttpHandler, serveHttp } from "../server/transport/http_server.ts";
import { startServer, withTimeout } from "./_helpers.ts";

const log = createLogger("silent");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A server whose sockets echo text, count what they got, and report how they ended. */
function echoServer(options: { maxMessageBytes?: number; idleTimeoutMs?: number } = {}) {
  const events: string[] = [];
  const handler: HttpHandler = (_request, info) => {
    const { socket, response } = info.upgradeWebSocket({
      maxMessageBytes: options.maxMessageBytes ?? 1000,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
    });
    socket.onmessage = (data) => {
      events.push(typeof data === "string" ? `text ${data.length}` : `binary ${data.length}`);
      if (data === "close me") return socket.close(1008, "as asked");
      void socket.send(typeof data === "string" ? `echo ${data}` : data);
    };
    socket.onoversize = (limit) => events.push(`oversize ${limit}`);
    socket.onclose = (code) => events.push(`closed ${code}`);
    return response;
  };
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, handler, {
    log,
    headerTimeoutMs: 5000,
  });
  return { port: server.addr.port, events, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** A client frame: FIN (unless `more`), opcode, masked (unless `unmasked`), with the length given. */
function frame(
  opcode: number,
  payload: Uint8Array,
  options: { more?: boolean; unmasked?: boolean; declared?: number } = {},
): Uint8Array {
  const key = [0x12, 0x34, 0x56, 0x78];
  const head = clientFrameHead(
    (options.more ? 0 : 0x80) | opcode,
    options.declared ?? payload.length,
    options.unmasked ? null : key,
  );
  const body = options.unmasked ? payload : payload.map((b, i) => b ^ key[i & 3]!);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** A raw WebSocket client: the handshake, then frames in and out. */
class RawClient {
  #buf = new Uint8Array(0);
  private constructor(readonly conn: Deno.Conn) {}

  static async open(port: number, path = "/"): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    // RFC 6455 §1.3's example key, whose answer is known.
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    await conn.write(encoder.encode(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const client = new RawClient(conn);
    const head = await client.#until((b) => decoder.decode(b).indexOf("\r\n\r\n"));
    const text = decoder.decode(client.#take(head + 4));
    assert.match(text, /^HTTP\/1\.1 101/);
    assert.ok(
      text.toLowerCase().includes("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
      text,
    );
    return client;
  }

  send(bytes: Uint8Array): Promise<number> {
    return this.conn.write(bytes);
  }

  /** The next server frame, or null when the connection ends. */
  async next(ms = 3000): Promise<{ opcode: number; payload: Uint8Array } | null> {
    const need = (b: Uint8Array) => {
      if (b.length < 2) return -1;
      let n = b[1]! & 0x7f;
      let at = 2;
      if (n === 126) {
        if (b.length < 4) return -1;
        n = (b[2]! << 8) | b[3]!;
        at = 4;
      } else if (n === 127) {
        if (b.length < 10) return -1;
        n = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        at = 10;
      }
      return b.length >= at + n ? at + n : -1;
    };
    const total = await this.#until(need, ms).catch(() => -1);
    if (total < 0) return null;
    const bytes = this.#take(total);
    const n = bytes[1]! & 0x7f;
    const at = n === 126 ? 4 : n === 127 ? 10 : 2;
    return { opcode: bytes[0]! & 0x0f, payload: bytes.subarray(at) };
  }

  /** The close code of the next close frame (other frames skipped), or null if none came. */
  async closeCode(ms = 3000): Promise<number | null> {
    while (true) {
      const f = await this.next(ms);
      if (f === null) return null;
      if (f.opcode === 8) return (f.payload[0]! << 8) | f.payload[1]!;
    }
  }

  /** Whether the server ended the connection within `ms`. */
  async ended(ms = 3000): Promise<boolean> {
    const buf = new Uint8Array(65536);
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const n = await withTimeout(this.conn.read(buf), until - Date.now(), "end")
        .catch((e) => (String(e).includes("end") ? "timeout" : null));
      if (n === "timeout") return false;
      if (n === null) return true;
    }
    return false;
  }

  async #until(found: (b: Uint8Array) => number, ms = 3000): Promise<number> {
    const until = Date.now() + ms;
    while (true) {
      const at = found(this.#buf);
      if (at >= 0) return at;
      const chunk = new Uint8Array(65536);
      const n = await withTimeout(this.conn.read(chunk), until - Date.now(), "a frame");
      if (n === null) throw new Error("closed");
      const merged = new Uint8Array(this.#buf.length + n);
      merged.set(this.#buf);
      merged.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = merged;
    }
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

Deno.test("websocket: a message declared over the limit is refused from its header, its payload unread", async () => {
  await using s = echoServer({ maxMessageBytes: 1000 });
  const c = await RawClient.open(s.port);
  try {
    // 60 MB declared, 1 KB sent: the answer comes without waiting for the rest.
    await c.send(frame(1, new Uint8Array(1024).fill(97), { declared: 60_000_000 }));
    assert.equal(await c.closeCode(), 1009);
    assert.deepEqual(s.events.slice(0, 1), ["oversize 1000"]);
    assert.ok(!s.events.some((e) => e.startsWith("text")), "a part of the message was delivered");
  } finally {
    c.close();
  }
});

Deno.test("websocket: the limit counts UTF-8 bytes, and fragments count together", async () => {
  await using s = echoServer({ maxMessageBytes: 1000 });
  // 400 two-byte characters are 800 bytes: allowed; 600 are 1,200: refused.
  const a = await RawClient.open(s.port);
  await a.send(frame(1, encoder.encode("é".repeat(400))));
  const echo = await a.next();
  assert.equal(decoder.decode(echo!.payload), `echo ${"é".repeat(400)}`);
  await a.send(frame(1, encoder.encode("é".repeat(600))));
  assert.equal(await a.closeCode(), 1009);
  a.close();
  // Three fragments of 400 bytes: the third passes the limit.
  const b = await RawClient.open(s.port);
  const part = new Uint8Array(400).fill(98);
  await b.send(frame(1, part, { more: true }));
  await b.send(frame(0, part, { more: true }));
  await b.send(frame(0, part));
  assert.equal(await b.closeCode(), 1009);
  b.close();
  // Two fragments of 400 make one message of 800.
  const c = await RawClient.open(s.port);
  await c.send(frame(1, part, { more: true }));
  await c.send(frame(0, part));
  assert.equal((await c.next())!.payload.length, "echo ".length + 800);
  c.close();
});

Deno.test("websocket: frames a client may not send end the connection with the RFC's code", async () => {
  await using s = echoServer();
  const cases: Array<[string, Uint8Array, number]> = [
    ["unmasked", frame(1, encoder.encode("hi"), { unmasked: true }), 1002],
    [
      "reserved bit",
      (() => {
        const f = frame(1, encoder.encode("hi"));
        f[0]! |= 0x40;
        return f;
      })(),
      1002,
    ],
    ["unknown opcode", frame(3, encoder.encode("hi")), 1002],
    ["continuation first", frame(0, encoder.encode("hi")), 1002],
    ["long ping", frame(9, new Uint8Array(200)), 1002],
    ["bad UTF-8", frame(1, new Uint8Array([0xc3, 0x28])), 1007],
    // What the Autobahn test suite sends (its sections 4, 5 and 7), as RFC 6455 has it.
    ["reserved control opcode", frame(11, new Uint8Array(0)), 1002],
    ["fragmented ping", frame(9, encoder.encode("hi"), { more: true }), 1002],
    [
      "a new message inside a fragmented one",
      concat(frame(1, encoder.encode("one"), { more: true }), frame(1, encoder.encode("two"))),
      1002,
    ],
    ["close with a 1-byte payload", frame(8, new Uint8Array([0x03])), 1002],
    ["close with code 1005", frame(8, new Uint8Array([0x03, 0xed])), 1002],
    ["close with code 999", frame(8, new Uint8Array([0x03, 0xe7])), 1002],
    ["close with code 5000", frame(8, new Uint8Array([0x13, 0x88])), 1002],
    [
      "close reason not UTF-8",
      frame(
        8,
        new Uint8Array([
          0x03,
          0xe8,
          0xce,
          0xba,
          0xe1,
          0xbd,
          0xb9,
          0xcf,
          0x83,
          0xce,
          0xbc,
          0xce,
          0xb5,
          0xed,
          0xa0,
          0x80,
        ]),
      ),
      1007,
    ],
    [
      "bad UTF-8 across fragments",
      concat(
        frame(1, new Uint8Array([0xce, 0xba]), { more: true }),
        frame(0, new Uint8Array([0xed, 0xa0, 0x80])),
      ),
      1007,
    ],
  ];
  for (const [what, bytes, code] of cases) {
    const c = await RawClient.open(s.port);
    await c.send(bytes);
    assert.equal(await c.closeCode(), code, what);
    assert.ok(await c.ended(), `${what}: the connection stayed open`);
    c.close();
  }
});

Deno.test("websocket: pings are answered, the closing handshake is echoed, binary is passed on", async () => {
  await using s = echoServer();
  const c = await RawClient.open(s.port);
  await c.send(frame(9, encoder.encode("are you there")));
  const pong = await c.next();
  assert.equal(pong?.opcode, 10);
  assert.equal(decoder.decode(pong!.payload), "are you there");
  await c.send(frame(2, new Uint8Array([1, 2, 3])));
  assert.deepEqual([...(await c.next())!.payload], [1, 2, 3]);
  await c.send(frame(8, new Uint8Array([0x0f, 0xa0, ...encoder.encode("bye")])));
  assert.equal(await c.closeCode(), 4000);
  assert.ok(await c.ended(), "the server did not hang up after the closing handshake");
  c.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(s.events.includes("closed 4000"), s.events.join());
});

Deno.test("websocket: a ping between two fragments is answered at once, and the message is whole (Autobahn 5.6)", async () => {
  await using s = echoServer();
  const c = await RawClient.open(s.port);
  await c.send(frame(1, encoder.encode("frag"), { more: true }));
  await c.send(frame(9, encoder.encode("mid")));
  const pong = await c.next();
  assert.equal(pong?.opcode, 10);
  assert.equal(decoder.decode(pong!.payload), "mid");
  await c.send(frame(0, encoder.encode("ment")));
  assert.equal(decoder.decode((await c.next())!.payload), "echo fragment");
  c.close();
});

Deno.test("websocket: a client that never answers the server's close frame is hung up on", async () => {
  await using s = echoServer();
  const c = await RawClient.open(s.port);
  await c.send(frame(1, encoder.encode("close me")));
  assert.equal(await c.closeCode(), 1008);
  // The client never sends its close frame: the server ends the connection by itself.
  const t0 = Date.now();
  assert.ok(await c.ended(4000), "the connection stayed open");
  assert.ok(Date.now() - t0 < 3500, `hung up after ${Date.now() - t0} ms`);
  c.close();
});

Deno.test("websocket: a silent client is pinged, then dropped; one that answers stays", async () => {
  await using s = echoServer({ idleTimeoutMs: 400 });
  const silent = await RawClient.open(s.port);
  const ping = await silent.next();
  assert.equal(ping?.opcode, 9, "no ping came");
  assert.ok(await silent.ended(2000), "a silent client was never dropped");
  silent.close();
  // A real client answers pings on its own.
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`);
  try {
    await withTimeout(new Promise((r) => (ws.onopen = r)), 3000, "open");
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(ws.readyState, WebSocket.OPEN, "a client answering pings was dropped");
  } finally {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  }
});

Deno.test("e2e websocket: the server refuses a 60 MB message from its header and says why", async () => {
  const server = await startServer({ data: ":memory:" });
  try {
    const c = await RawClient.open(server.httpPort, "/ws");
    await c.send(frame(1, encoder.encode('{"type":"hello","username":"big"}')));
    // 64 KiB of a declared 60 MB; the rest never comes, and need not.
    await c.send(frame(1, new Uint8Array(65536).fill(32), { declared: 60_000_000 }));
    const texts: string[] = [];
    let code: number | null = null;
    while (code === null) {
      const f = await c.next(5000);
      if (f === null) break;
      if (f.opcode === 1) texts.push(decoder.decode(f.payload));
      if (f.opcode === 8) code = (f.payload[0]! << 8) | f.payload[1]!;
    }
    assert.equal(code, 1009);
    assert.match(texts.join("\n"), /"type":"bye","code":"too_long".*longer than 65536 bytes/);
    c.close();
    // The answer came while 59.9 MB of the message were never sent: none of it was awaited.
    const metrics = await (await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).json();
    assert.equal(metrics.status, "ok");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});
