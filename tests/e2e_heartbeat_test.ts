/**
 * Heartbeats against the real server (`--heartbeat 200ms`): a WebSocket peer whose machine
 * vanished (it answers no ping) and a TCP JSON client that stopped answering are closed and their
 * users go offline, while peers that answer stay. Telnet TIMING-MARK probes are tested in
 * tcp_transport_test.ts.
 */
import assert from "node:assert/strict";
import { JsonClient, startServer, withTimeout, WsClient } from "./_helpers.ts";

const encoder = new TextEncoder();

/**
 * A WebSocket client made by hand, so that it can play dead: it does the handshake, says hello
 * in one masked frame, and from then on neither reads nor answers pings (Deno's own WebSocket
 * would answer them).
 */
async function deadWebSocket(port: number, hello: unknown): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buf = new Uint8Array(1024);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await withTimeout(conn.read(buf), 3000, "the upgrade");
    if (n === null) throw new Error(`closed during the upgrade: ${head}`);
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  assert.match(head, /^HTTP\/1\.1 101/);
  const payload = encoder.encode(JSON.stringify(hello));
  assert.ok(payload.length < 126);
  const mask = [1, 2, 3, 4];
  const frame = new Uint8Array(6 + payload.length);
  frame.set([0x81, 0x80 | payload.length, ...mask]);
  payload.forEach((b, i) => (frame[6 + i] = b ^ mask[i % 4]!));
  await conn.write(frame);
  return conn;
}

Deno.test("e2e heartbeat: dead WebSocket and TCP peers are closed and go offline; live ones stay", async () => {
  const server = await startServer({ data: ":memory:", args: ["--heartbeat", "200ms"] });
  const wsBase = `ws://127.0.0.1:${server.httpPort}`;
  const watcher = await WsClient.open(`${wsBase}/ws`);
  try {
    watcher.send({ username: "Watcher" });
    await watcher.type("welcome");

    const ghost = await deadWebSocket(server.httpPort, { username: "Ghost" });
    await watcher.type("system", (f) => f.event === "online" && f.username === "Ghost");
    const t0 = Date.now();
    await watcher.type("system", (f) => f.event === "offline" && f.username === "Ghost");
    const wsMs = Date.now() - t0;
    ghost.close();
    // Deno pings after 1.5 beats of silence and closes after 3: about 600 ms here.
    assert.ok(wsMs < 2000, `the dead WebSocket went offline after ${wsMs} ms`);

    // A TCP JSON client that answered a ping once, then fell silent.
    const tcp = await JsonClient.connect(server.tcpPort, { username: "Faded" });
    await tcp.type("ping");
    await tcp.send({ type: "pong" });
    const t1 = Date.now();
    await tcp.closedByServer();
    await watcher.type("system", (f) => f.event === "offline" && f.username === "Faded");
    assert.ok(Date.now() - t1 < 2000, `the silent TCP client went after ${Date.now() - t1} ms`);

    // The watcher, whose WebSocket answers pings by itself, has outlived many beats.
    watcher.send({ type: "status" });
    assert.equal((await watcher.type("status")).username, "Watcher");
  } finally {
    await watcher.close();
    assert.equal(await server.stop(), 0);
  }
});
