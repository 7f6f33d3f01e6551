/**
 * `deno task compile` builds dist/chat, a single binary with serve, connect and user and the
 * console embedded; this test runs it. `deno compile` needs a Deno runtime binary that this
 * machine cannot download, so the test runs only when DENORT_BIN points at one.
 */
import assert from "node:assert/strict";
import { serveFlags } from "./_server_process.ts";

const denort = Deno.env.get("DENORT_BIN");
const ROOT = new URL("../", import.meta.url).pathname;

Deno.test({
  name: denort
    ? "compile: dist/chat serves TCP and HTTP (with the console) and has connect and user"
    : "compile: single binary (skipped: DENORT_BIN is not set, and the runtime download deno compile needs is unreachable here)",
  ignore: !denort,
  async fn() {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(build.code, 0, new TextDecoder().decode(build.stderr));
    const bin = `${ROOT}dist/chat`;
    const help = await new Deno.Command(bin, { args: ["--help"], stdout: "piped" }).output();
    assert.match(
      new TextDecoder().decode(help.stdout),
      /chat serve[\s\S]*chat connect[\s\S]*chat user/,
    );
    const dir = await Deno.makeTempDir();
    const server = new Deno.Command(bin, {
      args: serveFlags(`${dir}/chat.kv`),
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!/http listening on [^\s]+:(\d+)/.test(out)) out += (await reader.read()).value ?? "";
      const port = out.match(/http listening on [^\s]+:(\d+)/)![1];
      const page = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      assert.match(page, /<script type="module" src="\/app.js">/);
      const js = await fetch(`http://127.0.0.1:${port}/app.js`);
      assert.equal(js.status, 200, "the console bundle is embedded");
      await js.body?.cancel();
      await reader.cancel();
    } finally {
      server.kill("SIGTERM");
      await server.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
