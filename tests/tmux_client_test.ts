/**
 * The terminal client as a person uses it: the real `chat connect` in a real terminal (tmux,
 * from Debian), typed into key by key, its screen read back.
 */
import assert from "node:assert/strict";
import { startServer } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function installed(): boolean {
  try {
    new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** One tmux server of its own (its own socket), with one window running a command. */
class Terminal implements AsyncDisposable {
  readonly #socket = `chat-test-${crypto.randomUUID().slice(0, 8)}`;

  async #tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.#socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    return new TextDecoder().decode(out.stdout);
  }

  /** Starts `command` in a 100×30 terminal. */
  async start(command: string[], env: Record<string, string> = {}): Promise<void> {
    const exports = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    await this.#tmux(
      "new-session",
      "-d",
      "-x",
      "100",
      "-y",
      "30",
      "-s",
      "t",
      "env",
      ...exports,
      ...command,
    );
  }

  /** Types text (literally), then the named keys (Enter, Up, …). */
  async type(text: string, ...keys: string[]): Promise<void> {
    if (text) await this.#tmux("send-keys", "-t", "t", "-l", text);
    for (const k of keys) await this.#tmux("send-keys", "-t", "t", k);
  }

  /** What the terminal shows now. */
  screen(): Promise<string> {
    return this.#tmux("capture-pane", "-p", "-t", "t");
  }

  /** Waits until the screen matches; fails with the screen after 8 s. */
  async waitFor(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 8000;
    let screen = "";
    while (Date.now() < deadline) {
      screen = await this.screen();
      if (pattern.test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the screen never showed ${pattern}:\n${screen}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#tmux("kill-server").catch(() => "");
  }
}

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
