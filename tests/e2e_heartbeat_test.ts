/**
 * Heartbeats against the real server (`--heartbeat 200ms`): a WebSocket peer whose machine
 * vanished (it answers no ping) and a TCP JSON client that stopped answering are closed and their
 * users go offline, while peers that answer stay. Telnet TIMING-MARK probes are tested in
 * tcp_transport_test.ts.
 */
import assert from "node:assert/strict";
import { JsonClient, rawWebSocket, startServer, WsClient } from "./_helpers.ts";

Deno.test("e2e heartbeat: dead WebSocket and TCP peers are closed and go offline; live ones stay", async () => {
  const server = await startServer({ data: ":memory:", args: ["--heartbeat", "200ms"] });
  const wsBase = `ws://127.0.0.1:${server.httpPort}`;
  const watcher = await WsClient.open(`${wsBase}/ws`);
  try {
    watcher.send({ username: "Watcher" });
    await watcher.type("welcome");

    const ghost = await rawWebSocket(server.httpPort, { username: "Ghost" });
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
