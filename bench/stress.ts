/**
 * `deno task stress [--short] [--seed N]`: the long runs against the real server. First the fuzz:
 * 100,000 generated bad frames per wire (1,000 with --short), with what was sent and the server's
 * memory.
 * Then the crash loop: 100 rounds of SIGKILL while two writers send 5,000 messages each (3 rounds
 * of 1,000 with --short), and the data checked after the last restart. Last, the scheduled-message
 * crash loop: 30 rounds (3 with --short) of 300 messages falling due while the server is stopped
 * by SIGKILL or SIGTERM; each must be sent exactly once. Exits 1 on any failure.
 * @module
 */

import { parseArgs } from "node:util";
import { crashLoop } from "./crash.ts";
import { fuzz } from "./fuzz.ts";
import { scheduledCrashLoop } from "./scheduled_crash.ts";
import { startServer } from "../tests/_server_process.ts";

const args = parseArgs({
  args: Deno.args,
  options: { short: { type: "boolean" }, seed: { type: "string" } },
}).values;
const short = args.short === true;
/** Printed with the fuzz results: `--seed N` replays a run (the fuzz and both crash loops). */
const seed = args.seed === undefined ? Date.now() % 100_000 : Number(args.seed);
const dir = await Deno.makeTempDir({ prefix: "chat_stress_" });
const server = await startServer({
  data: `${dir}/chat.kv`,
  args: ["--rate-limit", "0", "--private-rate-limit", "0", "--log-level", "error"],
});
const started = performance.now();
try {
  const result = await fuzz({
    tcpPort: server.tcpPort,
    httpPort: server.httpPort,
    ircPort: server.ircPort,
    perWire: short ? 1000 : 100_000,
    seed,
    serverPid: server.pid,
  });
  console.log(
    JSON.stringify(
      { seed, ...result, seconds: Math.round((performance.now() - started) / 1000) },
      null,
      1,
    ),
  );
} finally {
  const code = await server.stop("SIGTERM");
  await Deno.remove(dir, { recursive: true });
  if (code !== 0) {
    console.error(`the server exited with ${code}:\n${server.stderr()}`);
    Deno.exit(1);
  }
}

const crash = await crashLoop({
  rounds: short ? 3 : 100,
  perRound: short ? 1000 : 5000,
  seed,
  log: (line) => console.error(line),
});
console.log(JSON.stringify({ crashLoop: crash }, null, 1));
if (crash.problems.length > 0) Deno.exit(1);

const scheduled = await scheduledCrashLoop({
  rounds: short ? 3 : 30,
  perRound: short ? 50 : 300,
  seed,
});
console.log(JSON.stringify({ scheduledCrashLoop: scheduled }, null, 1));
if (scheduled.problems.length > 0) Deno.exit(1);
