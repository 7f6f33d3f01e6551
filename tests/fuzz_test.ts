/**
 * Fuzzing in the test suite, short: a thousand generated bad frames per wire against the real
 * server. `deno task stress` runs the same with 100,000 per wire.
 */
import assert from "node:assert/strict";
import { fuzz } from "../bench/fuzz.ts";
import { startServer } from "./_helpers.ts";

Deno.test("fuzz: bad frames on every wire get errors, never a crash; the canary keeps chatting; memory stays bounded", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_fuzz_" });
  const server = await startServer({
    data: `${dir}/chat.kv`,
    args: ["--rate-limit", "0", "--private-rate-limit", "0"],
  });
  try {
    const result = await fuzz({
      tcpPort: server.tcpPort,
      httpPort: server.httpPort,
      ircPort: server.ircPort,
      perWire: 1000,
      seed: 42,
      serverPid: server.pid,
    });
    for (const [wire, n] of Object.entries(result.frames)) {
      assert.ok(n >= 1000, `${wire}: ${n} frames`);
    }
    assert.ok(result.errorsSeen > 1000, `the server answered with errors (${result.errorsSeen})`);
    // Each wire's parser was reached, not only its first bytes (on the text wire most bad lines
    // are just messages, so it is not counted here).
    for (const wire of ["tcp-json", "jim", "irc", "ws"] as const) {
      const errors = result.errorsByWire[wire] ?? 0;
      assert.ok(errors >= 100, `${wire}: ${errors} error answers`);
    }
    assert.equal(result.canaryRounds, 4);
    assert.ok(
      result.rssPeakMb - result.rssStartMb < 150,
      `memory grew from ${result.rssStartMb} to ${result.rssPeakMb} MB`,
    );
    // Bad input is the client's fault: answered, never logged as the server's error.
    assert.doesNotMatch(server.stderr(), /Uncaught|panicked| ERROR /);
    assert.ok(
      Object.keys(result.httpStatuses).some((s) => s.startsWith("4")),
      `raw HTTP statuses: ${JSON.stringify(result.httpStatuses)}`,
    );
  } finally {
    assert.equal(await server.stop(), 0, "and it still shuts down cleanly");
    await Deno.remove(dir, { recursive: true });
  }
});
