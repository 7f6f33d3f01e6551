/**
 * The terminal client (`main.ts connect`) against the real server, driven through its stdin and
 * stdout in the TTY-less mode a script or a test gets.
 */
import assert from "node:assert/strict";
import { startServer, WAIT_MS, withServer, withTimeout } from "./_helpers.ts";
import { NatsServer, natsServerInstalled } from "./_nats.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running `chat connect` with piped stdin and stdout. */
class ClientProcess {
  readonly lines: string[] = [];
  #child: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #taken = 0;
  #waiters = new Set<() => void>();
  #done: Promise<void>;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "connect", ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...env },
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    const out = this.#child.stdout.pipeThrough(new TextDecoderStream());
    this.#done = (async () => {
      let buf = "";
      for await (const chunk of out) {
        buf += chunk;
        const parts = buf.split("\n");
        buf = parts.pop()!;
        this.lines.push(...parts);
        for (const w of [...this.#waiters]) w();
      }
      if (buf) this.lines.push(buf);
      for (const w of [...this.#waiters]) w();
    })();
    void this.#child.stderr.cancel();
  }

  async type(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
  }

  /** Waits for a line (after the last one taken) matching `pattern`. */
  async line(pattern: RegExp | string): Promise<string> {
    const test = (
      l: string,
    ) => (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l));
    const find = () => this.lines.findIndex((l, i) => i >= this.#taken && test(l));
    let i = find();
    if (i < 0) {
      let wake!: () => void;
      const check = () => {
        if (find() >= 0) wake();
      };
      try {
        await withTimeout(
          new Promise<void>((r) => ((wake = r), this.#waiters.add(check))),
          WAIT_MS,
          `a line matching ${pattern}`,
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}; client printed:\n${this.lines.join("\n")}`);
      } finally {
        this.#waiters.delete(check);
      }
      i = find();
    }
    this.#taken = i + 1;
    return this.lines[i]!;
  }

  /** Closes stdin (the client quits) and waits for the exit code. */
  async quit(): Promise<number> {
    try {
      await this.#stdin.close();
    } catch { /* already closed */ }
    const status = await this.#child.status;
    await this.#done;
    return status.code;
  }
}

Deno.test("client: two clients talk, privately too, and see where their typing goes", async () => {
  await using server = await withServer();
  const port = server.tcpPort;
  const alice = new ClientProcess(["Alice", "--port", String(port)]);
  await alice.line("Logged in as Alice");
  // Once (the server's welcome notice), not also in the client's own words.
  await alice.line("Alice is a guest name: anyone may log in with it");
  assert.equal(
    alice.lines.filter((l) => l.includes("/register")).length,
    1,
    alice.lines.join("\n"),
  );
  const bob = new ClientProcess(["Bob", "--port", String(port)]);
  await bob.line("Logged in as Bob");
  await alice.line("Bob joined the chat");
  await alice.type("hi Bob!");
  await bob.line(/#general Alice: hi Bob!/);
  await bob.type("/private Alice just between us");
  await alice.line(">> Bob → Alice: just between us");
  await bob.type("/join games");
  await bob.line("You are in #games. Plain text now goes to #games.");
  await alice.type("/help");
  await alice.line("/upload PATH");
  // /quit with words: the others are told them as Alice leaves, and the client ends by itself.
  await alice.type("/quit off to lunch");
  await bob.line("Alice left the chat (off to lunch)");
  assert.equal(await alice.quit(), 0);
  assert.equal(await bob.quit(), 0);
});

Deno.test("client: a session is requested and accepted with y", async () => {
  await using server = await withServer();
  const port = server.tcpPort;
  const alice = new ClientProcess(["Alice", "--port", String(port)]);
  await alice.line("Logged in as Alice");
  const bob = new ClientProcess(["Bob", "--port", String(port)]);
  await bob.line("Logged in as Bob");
  await alice.type("/session Bob");
  await bob.line("Alice wants to start a private session with you (y/n). Answer y or n.");
  await bob.type("y");
  await alice.line("Private session between Alice and Bob started");
  await bob.line("Private session between Alice and Bob started");
  await alice.type("only you");
  await bob.line(">> Alice → Bob: only you");
  await bob.type("/exit");
  await alice.line("Bob ended the private session");
  await Promise.all([alice.quit(), bob.quit()]);
});

Deno.test("client: a file is sent with /upload and saved with /download", async () => {
  await using server = await withServer();
  const port = server.tcpPort;
  const dir = server.dir;
  const src = `${dir}/report.txt`;
  const content = "quarterly numbers\n".repeat(5000);
  await Deno.writeTextFile(src, content);
  const alice = new ClientProcess(["Alice", "--port", String(port)]);
  await alice.line("Logged in as Alice");
  const bob = new ClientProcess(["Bob", "--port", String(port), "--downloads", `${dir}/down`]);
  await bob.line("Logged in as Bob");
  await alice.type(`/upload ${src} @Bob`);
  await alice.line(`Sent report.txt (${content.length} bytes).`);
  await bob.line(/>> Alice → Bob: sent a file: report.txt/);
  const id = (await bob.line(/file: GET \/api\/v1\/files\//)).match(/files\/(\w+)/)![1]!;
  await bob.type(`/download ${id}`);
  await bob.line(`Saved ${dir}/down/report.txt`);
  assert.equal(await Deno.readTextFile(`${dir}/down/report.txt`), content);
  await alice.type("/download 01M81PAC79BGCW5HY6NRZQBKPD");
  await alice.line(/! There is no file/);
  await Promise.all([alice.quit(), bob.quit()]);
});

Deno.test("client: --send exits 0 only once the message is stored, and 1 with the reason otherwise", async () => {
  await using server = await withServer();
  const port = server.tcpPort;
  const watcher = new ClientProcess(["Watcher", "--port", String(port)]);
  await watcher.line("Logged in as Watcher");
  // -H and -p, as the second assignment's client.py takes them.
  const ok = new ClientProcess([
    "-H",
    "127.0.0.1",
    "-p",
    String(port),
    "Bot",
    "--send",
    "deploy finished",
  ]);
  assert.match(await ok.line(/Stored as \w+ in general/), /Stored as/);
  assert.equal(await ok.quit(), 0);
  await watcher.line("#general Bot: deploy finished");
  const bad = new ClientProcess([
    "Bot",
    "--port",
    String(port),
    "--send",
    "hello",
    "--to",
    "Ghost",
  ]);
  await bad.line(/! There is no user "Ghost"/);
  assert.equal(await bad.quit(), 1);
  assert.equal(
    bad.lines.filter((l) => l.includes("Ghost")).length,
    1,
    "the reason, once, and nothing else",
  );
  await watcher.quit();
});

Deno.test("client: survives a server restart, reconnects by itself and shows what it missed", async () => {
  // A fixed port, so the restarted server is where the client looks for it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const dir = await Deno.makeTempDir({ prefix: "chat_client_" });
  const data = `${dir}/chat.kv`;
  try {
    let server = await startServer({ data, args: ["--tcp-port", String(port)] });
    // Its first retry comes after 2 s, so Bob's message surely lands while it is away.
    const alice = new ClientProcess(["Alice", "--port", String(port)], {
      CHAT_RECONNECT_MS: "2000",
    });
    await alice.line("Logged in as Alice");
    await alice.type("before the restart");
    await alice.line("#general Alice: before the restart");
    await server.stop();
    await alice.line("Connection lost; reconnecting");
    server = await startServer({ data, args: ["--tcp-port", String(port)] });
    try {
      // Bob talks while Alice is still waiting to reconnect.
      const bob = new ClientProcess(["Bob", "--port", String(port), "--send", "you missed this"]);
      assert.equal(await bob.quit(), 0);
      await alice.line("* Reconnected.");
      await alice.line("#general Bob: you missed this");
      await alice.line("* 1 message arrived while you were away.");
      await alice.type("back again");
      await alice.line("#general Alice: back again");
      assert.equal(await alice.quit(), 0);
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "client: given a cluster's nodes, it moves to the next one when its node dies, and misses nothing",
  ignore: !natsServerInstalled(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_client_" });
    const data = `${dir}/chat.kv`;
    await using nats = await NatsServer.start();
    const nodes = await Promise.all(
      ["n1", "n2"].map((node) =>
        startServer({ data, args: ["--cluster", nats.url, "--node", node] })
      ),
    );
    try {
      const hosts = nodes.map((n) => `127.0.0.1:${n.tcpPort}`).join(",");
      const alice = new ClientProcess(["Alice", "--host", hosts], { CHAT_RECONNECT_MS: "300" });
      await alice.line("Logged in as Alice");
      await nodes[0]!.stop("SIGKILL");
      await alice.line("Connection lost; reconnecting");
      const bob = new ClientProcess([
        "Bob",
        "--host",
        `127.0.0.1:${nodes[1]!.tcpPort}`,
        "--send",
        "sent while you moved",
      ]);
      assert.equal(await bob.quit(), 0);
      await alice.line(`Now connected to 127.0.0.1:${nodes[1]!.tcpPort}`);
      await alice.line("#general Bob: sent while you moved");
      await alice.type("from the other node");
      await alice.line("#general Alice: from the other node");
      assert.equal(await alice.quit(), 0);
    } finally {
      await Promise.all(nodes.map((n) => n.stop().catch(() => 0)));
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("client: a server that stops answering is taken for gone after three beats, and the client reconnects", async () => {
  // A stand-in server that welcomes and then plays dead: it reads, never writes again.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const received: string[][] = [];
  const ended: boolean[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      const n = received.push([]) - 1;
      ended.push(false);
      void (async () => {
        let welcomed = false;
        let rest = "";
        for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
          rest += chunk;
          const lines = rest.split("\n");
          rest = lines.pop()!;
          received[n]!.push(...lines);
          if (!welcomed && lines.length > 0) {
            welcomed = true;
            const welcome = {
              type: "welcome",
              username: "Alice",
              registered: false,
              admin: false,
              mode: { kind: "room", room: "general" },
              rooms: ["general"],
              online_users: 1,
              timestamp: new Date().toISOString(),
            };
            await conn.write(new TextEncoder().encode(JSON.stringify(welcome) + "\n"));
          }
        }
        ended[n] = true;
      })().catch(() => (ended[n] = true));
    }
  })();
  const alice = new ClientProcess(["Alice", "--port", String(port)], {
    CHAT_HEARTBEAT_MS: "200",
    CHAT_RECONNECT_MS: "100",
  });
  try {
    await alice.line("Logged in as Alice");
    const t0 = Date.now();
    await alice.line("Connection lost; reconnecting");
    const after = Date.now() - t0;
    assert.ok(after >= 500 && after < 2000, `taken for gone after ${after} ms (3 beats: 600)`);
    // Before giving up it asked twice, and it hung up itself.
    const pings = received[0]!.filter((l) => l.includes('"ping"'));
    assert.ok(pings.length >= 2, `pings sent: ${pings.length}`);
    for (let i = 0; i < 100 && !ended[0]; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(ended[0], "the client did not close the dead connection");
    await alice.line("* Reconnected.");
    assert.equal(received.length >= 2, true);
  } finally {
    await alice.quit();
    listener.close();
    await serving.catch(() => {});
  }
});

Deno.test("client: heartbeats keep a quiet connection to a live server, and their pongs stay off screen", async () => {
  await using server = await withServer();
  const tcpPort = server.tcpPort;
  const alice = new ClientProcess(["Alice", "--port", String(tcpPort)], {
    CHAT_HEARTBEAT_MS: "200",
  });
  await alice.line("Logged in as Alice");
  // Eight beats of silence in the room: the client pings, the server answers.
  await new Promise((r) => setTimeout(r, 1600));
  await alice.type("still here");
  await alice.line("#general Alice: still here");
  assert.equal(alice.lines.some((l) => l.includes("Connection lost")), false);
  assert.equal(alice.lines.some((l) => l.includes("pong")), false);
  assert.equal(await alice.quit(), 0);
});
