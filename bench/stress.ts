/**
 * `deno task stress [--short]`: the long runs against the real server. First the fuzz: 100,000
 * generated bad frames per wire (1,000 with --short), with what was sent and the server's memory.
 * Then the crash loop: 100 rounds of SIGKILL while two writers send 5,000 messages each (3 rounds
 * of 1,000 with --short), and the data checked after the last restart. Exits 1 on any failure.
 * @module
 */

import { parseArgs } from "node:util";
import { crashLoop } from "./crash.ts";
import { fuzz } from "./fuzz.ts";

const short =
  parseArgs({ args: Deno.args, options: { short: { type: "boolean" } } }).values.short === true;
const ROOT = new URL("../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "chat_stress_" });
const port = () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = (l.addr as Deno.NetAddr).port;
  l.close();
  return p;
};
const tcp = port();
const http = port();
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    `${ROOT}main.ts`,
    "serve",
    "--tcp-port",
    String(tcp),
    "--http-port",
    String(http),
    "--data",
    `${dir}/chat.kv`,
    "--rate-limit",
    "0",
    "--private-rate-limit",
    "0",
    "--log-level",
    "error",
  ],
  stdout: "null",
  stderr: "inherit",
}).spawn();
for (let i = 0; i < 100; i++) {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: tcp })).close();
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const started = performance.now();
try {
  const result = await fuzz({
    tcpPort: tcp,
    httpPort: http,
    perWire: short ? 1000 : 100_000,
    seed: Date.now() % 100_000,
    serverPid: child.pid,
  });
  console.log(
    JSON.stringify(
      { ...result, seconds: Math.round((performance.now() - started) / 1000) },
      null,
      1,
    ),
  );
} finally {
  child.kill("SIGTERM");
  const status = await child.status;
  await Deno.remove(dir, { recursive: true });
  if (status.code !== 0) {
    console.error(`the server exited with ${status.code}`);
    Deno.exit(1);
  }
}

const crash = await crashLoop({
  rounds: short ? 3 : 100,
  perRound: short ? 1000 : 5000,
  seed: Date.now() % 100_000,
  log: (line) => console.error(line),
});
console.log(JSON.stringify({ crashLoop: crash }, null, 1));
if (crash.problems.length > 0) Deno.exit(1);
