/**
 * Slow readers on the WebSocket wire against the real server: one that stops reading is dropped
 * once its queue passes the bound, and the room keeps flowing for everyone else. The TCP side is
 * tested in tcp_transport_test.ts.
 */
import assert from "node:assert/strict";
import { JsonClient, rawWebSocket, startServer } from "./_helpers.ts";

Deno.test("e2e slow readers: a WebSocket that stops reading is dropped at its bound; the room goes on", async () => {
  const server = await startServer({ data: ":memory:", args: ["--rate-limit", "0"] });
  const sleepy = await rawWebSocket(server.httpPort, { username: "Sleepy" });
  const writer = await JsonClient.connect(server.tcpPort, { username: "Writer" });
  try {
    // 6,000 messages of 3,900 characters: 23 MB, well past the 4 MiB bound and what the kernel's
    // socket buffers can hold for a reader that reads nothing.
    const text = "x".repeat(3900);
    const total = 6000;
    for (let i = 0; i < total; i++) {
      await writer.send({ type: "message", message: text, ref: String(i) });
      // Keep at most 500 unacknowledged, as a polite client does.
      if (i % 500 === 499) await writer.type("ack", (a) => a.ref === String(i - 250));
    }
    await writer.type("system", (f) => f.event === "offline" && f.username === "Sleepy");
    // The writer's own stream went on to the end.
    await writer.type("ack", (a) => a.ref === String(total - 1));
    assert.match(server.stderr(), /dropping slow websocket reader/);
  } finally {
    try {
      sleepy.close();
    } catch { /* closed by the server */ }
    await writer.close();
    assert.equal(await server.stop(), 0);
  }
});
