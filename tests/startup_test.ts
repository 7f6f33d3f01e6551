/** Starting the server: what it refuses, in one line and exit code 1, before anything listens. */
import assert from "node:assert/strict";
import { DataLease } from "../server/store/lease.ts";
import { api, startServer, withServer } from "./_helpers.ts";
import { serveArgs } from "./_server_process.ts";

/** Runs `main.ts serve` (free ports unless `args` say) and waits for it to exit: it should refuse. */
async function serveExpectingRefusal(
  data: string,
  args: string[] = [],
): Promise<{ code: number; stderr: string; stdout: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs(data, args),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/** Exit code 1, one plain line on stderr matching `pattern`, and nothing said to listen. */
function assertOneLine(r: { code: number; stderr: string; stdout: string }, pattern: RegExp) {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, not:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(r.stderr, /\x1b\[|^\s+at /m);
  assert.doesNotMatch(r.stdout, /listening/, r.stdout);
}

Deno.test("startup: a busy TCP port, or only a busy HTTP or IRC port, stops the start in one line with nothing listening", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_start_" });
  try {
    using busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (busy.addr as Deno.NetAddr).port;
    const tcp = await serveExpectingRefusal(`${dir}/a.kv`, ["--tcp-port", String(port)]);
    assertOneLine(tcp, new RegExp(`^chat: the TCP port ${port} is in use .*--tcp-port`));
    const http = await serveExpectingRefusal(`${dir}/b.kv`, ["--http-port", String(port)]);
    assertOneLine(http, new RegExp(`^chat: the HTTP port ${port} is in use .*--http-port`));
    const irc = await serveExpectingRefusal(`${dir}/c.kv`, ["--irc-port", String(port)]);
    assertOneLine(irc, new RegExp(`^chat: the IRC port ${port} is in use .*--irc-port`));
    // The data file was let go: a server starts on it at once.
    const again = await startServer({ data: `${dir}/b.kv` });
    try {
      assert.equal(
        (await api(`http://127.0.0.1:${again.httpPort}`, "GET", "/healthz")).status,
        200,
      );
    } finally {
      await again.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startup: a --data that cannot be a data file is refused in one line saying what to give", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_start_" });
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    assertOneLine(
      await serveExpectingRefusal(`${dir}/file/chat.kv`),
      /^chat: cannot make the folder for .*file\/chat\.kv \(.*\): give --data a file path/,
    );
    await Deno.mkdir(`${dir}/folder.kv`);
    assertOneLine(
      await serveExpectingRefusal(`${dir}/folder.kv`),
      /^chat: .*folder\.kv is a folder, not a data file: give --data/,
    );
    assertOneLine(
      await serveExpectingRefusal("/proc/chat/chat.kv"),
      /^chat: cannot make the folder for \/proc\/chat\/chat\.kv/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

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
