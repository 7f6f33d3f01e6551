/**
 * `deno task stress [--short]`: the long runs: 100,000 generated bad frames per wire against
 * the real server (1,000 with --short), printing what was sent and the server's memory.
 * @module
 */

import { parseArgs } from "node:util";
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
