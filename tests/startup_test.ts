/** Starting the server: what it refuses, in one line and exit code 1, before anything listens. */
import assert from "node:assert/strict";
import { DataLease } from "../server/store/lease.ts";
import { api, startServer, withServer } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs `main.ts serve` on free ports and waits for it to exit (it should refuse to start). */
async function serveExpectingRefusal(data: string): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve", "--tcp-port", "0", "--http-port", "0", "--data", data],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("startup: a second server on a data file a live server holds refuses in one line, naming the holder", async () => {
  await using first = await withServer();
  const second = await serveExpectingRefusal(first.data);
  assert.equal(second.code, 1, second.stderr);
  const lines = second.stderr.trim().split("\n");
  assert.equal(lines.length, 1, second.stderr);
  assert.match(
    lines[0]!,
    new RegExp(
      `^chat: .*chat\\.kv is in use by a chat server \\(pid ${first.pid} on .*\\): stop it first`,
    ),
  );
  // The first one is untouched and serving.
  assert.equal((await api(first.base, "GET", "/healthz")).status, 200);
});

Deno.test("startup: a stale lease (its server died without releasing it) is taken over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_lease_" });
  const data = `${dir}/chat.kv`;
  const kv = await Deno.openKv(data);
  await new DataLease(kv).put(
    { pid: 999999, hostname: "gone", at: Date.now() - 60_000, id: "dead" },
    120_000,
  );
  kv.close();
  const server = await startServer({ data });
  try {
    const health = await api(`http://127.0.0.1:${server.httpPort}`, "GET", "/healthz");
    assert.equal(health.status, 200);
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
