/**
 * The terminal client as a person uses it: the real `chat connect` in a real terminal (tmux,
 * from Debian), typed into key by key, its screen read back.
 */
import assert from "node:assert/strict";
import { startServer } from "./_helpers.ts";
import { Terminal, tmuxInstalled as installed } from "./_tmux.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function userCli(args: string[], stdin: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "user", ...args],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test({
  name:
    "terminal client in tmux: flags after --, a half-typed line survives, a re-login password is hidden and kept out of history",
  ignore: !installed(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tmux_" });
    const data = `${dir}/chat.kv`;
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await userCli(["add", "Alice", "--data", data], "old-password\n");
    let server = await startServer({ data, args: ["--tcp-port", String(port)] });
    try {
      await using term = new Terminal();
      // The flags come after "--", as `deno task connect -- Alice --port N` passes them.
      await term.start([
        "deno",
        "run",
        "-A",
        MAIN,
        "connect",
        "--",
        "Alice",
        "--port",
        String(port),
      ], {
        NO_COLOR: "1",
        CHAT_RECONNECT_MS: "300",
      });
      await term.waitFor(/Password for Alice:\s*$/m);
      await term.type("old-password", "Enter");
      await term.waitFor(/Logged in as Alice/);
      await term.type("hello everyone", "Enter");
      await term.waitFor(/#general Alice: hello everyone/);

      // A half-typed line stays on the input line while others talk.
      await term.type("half typed");
      const bob = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "connect", "Bob", "--port", String(port), "--send", "hi Alice"],
        stdout: "null",
        stderr: "null",
      });
      assert.equal((await bob.output()).code, 0);
      let screen = await term.waitFor(/#general Bob: hi Alice/);
      const lines = screen.trimEnd().split("\n");
      assert.match(lines.at(-1)!, /\]> half typed$/, screen);

      // The password changes while the server is down; the client comes back, asks, hides it.
      await server.stop();
      await userCli(["passwd", "alice", "--data", data], "new-password\n");
      server = await startServer({ data, args: ["--tcp-port", String(port)] });
      await term.waitFor(/Wrong password\.[\s\S]*Password for Alice:\s*$/m);
      await term.type("new-password", "Enter");
      screen = await term.waitFor(/Reconnected\./);
      assert.doesNotMatch(screen, /new-password/, "the password was shown");
      // The half-typed line is back; Up brings back what was sent, never the password.
      assert.match(screen.trimEnd().split("\n").at(-1)!, /\]> half typed$/, screen);
      await term.type("", "C-u", "Up");
      screen = await term.waitFor(/\]> hello everyone$/m);
      await term.type("", "Up");
      screen = await term.screen();
      assert.doesNotMatch(screen, /new-password/);
      assert.doesNotMatch(screen, /old-password/);
      await term.type("", "C-u");
      await term.type("/quit", "Enter");
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "terminal client in tmux: started without a name, it asks for one, visibly",
  ignore: !installed(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tmux_" });
    const server = await startServer({ data: `${dir}/chat.kv` });
    try {
      await using term = new Terminal();
      await term.start(["deno", "run", "-A", MAIN, "connect", "--port", String(server.tcpPort)], {
        NO_COLOR: "1",
      });
      // The question stays on screen (the line editor once painted its prompt over it).
      await term.waitFor(/^Your name:\s*$/m);
      await term.type("Zed");
      await term.waitFor(/^Your name: Zed$/m);
      await term.type("", "Enter");
      await term.waitFor(/Logged in as Zed/);
      await term.type("/quit", "Enter");
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function telnetInstalled(): boolean {
  try {
    new Deno.Command("telnet", { args: ["-?"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "telnet in tmux: the real telnet program, character at a time, logs in with a hidden password (a typo taken back with Backspace) and chats",
  ignore: !installed() || !telnetInstalled(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_tmux_" });
    const data = `${dir}/chat.kv`;
    await userCli(["add", "Alice", "--data", data], "wonderland\n");
    const server = await startServer({ data });
    try {
      await using term = new Terminal();
      await term.start(["telnet", "127.0.0.1", String(server.tcpPort)]);
      await term.waitFor(/Enter your nickname:/);
      // Character at a time, as PuTTY and Windows' telnet are: Enter arrives as CR NUL and
      // Backspace as DEL, for the server to apply.
      await term.type("", "C-]");
      await term.waitFor(/^telnet>/m);
      await term.type("mode character", "Enter");
      await term.type("Alice", "Enter");
      await term.waitFor(/Password for Alice:/);
      // Echo is off (the server said WILL ECHO): the typo and its correction stay off screen.
      await term.type("wonderlamd", "BSpace", "BSpace");
      await term.type("nd", "Enter");
      const screen = await term.waitFor(/Logged in as Alice \(registered\)/);
      assert.doesNotMatch(screen, /wonderla/, "the password was not shown");
      await term.type("hello from telnet", "Enter");
      await term.waitFor(/#general Alice: hello from telnet/);
      await term.type("/users", "Enter");
      await term.waitFor(/Online \(1\): Alice/);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
