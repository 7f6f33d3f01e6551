/**
 * Crash safety: kill -9 the server while 10,000 messages are being sent, restart it on the same
 * data, and check that every acknowledged message is there exactly once, in order, and that
 * read cursors are consistent.
 */
import assert from "node:assert/strict";
import { checkRecovery, crashLoop } from "../bench/crash.ts";
import { startServer } from "./_helpers.ts";

const enc = new TextEncoder();

Deno.test("crash: after kill -9 mid-stream, every acked message survives exactly once and in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_crash_" });
  const data = `${dir}/chat.kv`;
  try {
    let server = await startServer({ data, args: ["--rate-limit", "0", "--message-ttl", "0"] });
    // A reader whose cursor moves as messages are delivered live.
    const reader = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
    await reader.write(enc.encode('{"username":"Reader","password":"reader-password"}\n'));
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
    await conn.write(enc.encode('{"username":"Writer"}\n'));
    const acked = new Map<number, string>(); // n -> message id
    let killed = false;
    const reading = (async () => {
      const dec = new TextDecoder();
      let rest = "";
      try {
        for await (const chunk of conn.readable) {
          rest += dec.decode(chunk, { stream: true });
          let i;
          while ((i = rest.indexOf("\n")) >= 0) {
            const line = rest.slice(0, i);
            rest = rest.slice(i + 1);
            if (!line.startsWith('{"type":"ack"')) continue;
            const f = JSON.parse(line);
            acked.set(Number(f.ref), f.id);
            // Pull the plug once a few thousand are through, with more still in flight.
            if (acked.size === 3000 && !killed) {
              killed = true;
              await server.stop("SIGKILL");
            }
          }
        }
      } catch { /* the server died */ }
    })();
    for (let i = 0; i < 10_000; i += 250) {
      let chunk = "";
      for (let k = i; k < i + 250; k++) {
        chunk += JSON.stringify({ type: "message", message: `m${k}`, ref: String(k) }) + "\n";
      }
      try {
        await conn.write(enc.encode(chunk));
      } catch {
        break; // the server is gone
      }
    }
    await reading;
    try {
      reader.close();
    } catch { /* already closed */ }
    assert.ok(killed, "the server was killed mid-stream");
    assert.ok(
      acked.size >= 3000 && acked.size < 10_000,
      `acked ${acked.size}: the kill must land mid-stream`,
    );

    server = await startServer({ data, args: ["--rate-limit", "0", "--message-ttl", "0"] });
    try {
      const base = `http://127.0.0.1:${server.httpPort}`;
      const token = (await (await fetch(`${base}/connect`, {
        method: "POST",
        body: JSON.stringify({ login: "Reader", password: "reader-password" }),
      })).json()).token;
      // Read the whole room back, page by page.
      const stored: Array<{ id: string; seq: number; message: string }> = [];
      let after = 0;
      while (true) {
        const page =
          await (await fetch(`${base}/api/v1/rooms/general/messages?after=${after}&limit=200`, {
            headers: { authorization: `Bearer ${token}` },
          })).json();
        stored.push(...page.messages);
        if (page.messages.length < 200) break;
        after = page.messages.at(-1).seq;
      }
      const texts = stored.map((m) => m.message);
      assert.equal(new Set(texts).size, texts.length, "no message is stored twice");
      const ids = new Set(stored.map((m) => m.id));
      for (const [n, id] of acked) assert.ok(ids.has(id), `acked message m${n} (${id}) was lost`);
      // In order: sequence numbers increase with the order the writer sent them.
      const sent = stored.map((m) => Number(m.message.slice(1)));
      assert.deepEqual(sent, [...sent].sort((a, b) => a - b), "stored in the order sent");
      assert.deepEqual(
        stored.map((m) => m.seq),
        stored.map((_, i) => stored[0]!.seq + i),
        "no gaps in sequence numbers",
      );
      // Cursors: the reader's unread count is consistent (never negative, never beyond the room).
      const counts = await (await fetch(`${base}/api/v1/unread`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      const general = counts.chats.find((c: { chat: string }) => c.chat === "general")?.unread ?? 0;
      assert.ok(general >= 0 && general <= stored.length, `unread ${general} of ${stored.length}`);
      // The server goes on: new messages get the next sequence numbers.
      const next = await (await fetch(`${base}/send`, {
        method: "POST",
        headers: { authorization: token },
        body: JSON.stringify({ message: "after the crash" }),
      })).json();
      assert.equal(next.seq, stored.at(-1)!.seq + 1);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("crash loop (short): repeated kill -9 under two writers loses and repeats nothing acknowledged", async () => {
  const result = await crashLoop({ rounds: 3, perRound: 1000, seed: 7 });
  assert.deepEqual(result.problems, []);
  assert.equal(result.rounds, 3);
  // Each round was cut mid-stream: some acknowledged, not all.
  assert.ok(result.acked > 0 && result.acked < 6000, `acked ${result.acked} of 6000`);
  assert.ok(result.recovered >= result.acked);
});

Deno.test("checkRecovery() finds a lost, a repeated and a reordered message, and a sequence gap", () => {
  const stored = (texts: string[], seqs?: number[]) =>
    texts.map((message, i) => ({ id: `id-${message}`, seq: seqs?.[i] ?? i + 1, message }));
  const acked = new Map([["t0.0", "id-t0.0"], ["t0.1", "id-t0.1"], ["w0.0", "id-w0.0"]]);
  assert.deepEqual(checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1", "t0.2"])), []);
  assert.match(checkRecovery(acked, stored(["t0.0", "w0.0"])).join(), /t0\.1 .* is missing/);
  assert.match(
    checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1", "t0.1"])).join(),
    /stored twice: t0\.1/,
  );
  assert.match(
    checkRecovery(acked, stored(["t0.1", "w0.0", "t0.0"])).join(),
    /t0\.0 stored after t0\.1/,
  );
  assert.match(
    checkRecovery(acked, stored(["t1.0", "t0.0", "t0.1", "w0.0"])).join(),
    /t0\.0 stored after t1\.0/,
  );
  assert.match(
    checkRecovery(acked, stored(["t0.0", "w0.0", "t0.1"], [1, 2, 4])).join(),
    /sequence gap: 2 then 4/,
  );
});
