/**
 * Graceful shutdown: on SIGINT or SIGTERM the server stops accepting, tells every client,
 * stores what it acknowledged, closes KV and exits 0 within 5 seconds.
 */
import assert from "node:assert/strict";
import { JsonClient, startServer, WsClient } from "./_helpers.ts";

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`shutdown on ${signal}: clients are told, acknowledged messages are kept, exit 0 within 5 s`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "chat_shutdown_" });
    const data = `${dir}/chat.kv`;
    try {
      const server = await startServer({ data, args: ["--rate-limit", "0"] });
      const tcp = await JsonClient.connect(server.tcpPort, {
        username: "Alice",
        password: "alice-password",
      });
      const ws = await WsClient.open(`ws://127.0.0.1:${server.httpPort}/ws`);
      ws.send({ username: "Bob" });
      await ws.type("welcome");
      // A burst right before the signal: whatever was acked must survive.
      for (let i = 0; i < 200; i++) {
        await tcp.send({ type: "message", message: `last words ${i}`, ref: String(i) });
      }
      await tcp.type("ack", (a) => a.ref === "199");
      const started = performance.now();
      const code = await server.stop(signal);
      const took = performance.now() - started;
      assert.equal(code, 0);
      assert.ok(took < 5000, `exited after ${Math.round(took)} ms`);
      assert.equal((await tcp.type("bye")).reason, "server shutting down");
      await ws.type("bye");
      await Promise.all([tcp.close(), ws.close()]);

      const again = await startServer({ data });
      try {
        const t = (await (await fetch(`http://127.0.0.1:${again.httpPort}/connect`, {
          method: "POST",
          body: JSON.stringify({ login: "Alice", password: "alice-password" }),
        })).json()).token;
        const page = await (await fetch(
          `http://127.0.0.1:${again.httpPort}/api/v1/rooms/general/messages?limit=200`,
          {
            headers: { authorization: `Bearer ${t}` },
          },
        )).json();
        assert.equal(page.messages.length, 200, "every acknowledged message is there");
        assert.equal(page.messages.at(-1).message, "last words 199");
      } finally {
        await again.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
