/** Test helpers for the IRC listener: a raw IRC connection, and a server with its IRC port. */
import { type ServerProcess, startServer, WAIT_MS, withTimeout } from "./_helpers.ts";

/** A raw IRC connection: sends lines, waits for lines matching a pattern. */
export class Irc {
  readonly lines: string[] = [];
  #conn: Deno.Conn;
  #taken = 0;
  #syncs = 0;
  #wake: (() => void) | null = null;
  closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    void (async () => {
      const buf = new Uint8Array(65536);
      let rest = "";
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          rest += new TextDecoder().decode(buf.subarray(0, n));
          let i;
          while ((i = rest.indexOf("\r\n")) >= 0) {
            this.lines.push(rest.slice(0, i));
            rest = rest.slice(i + 2);
          }
          this.#wake?.();
        }
      } catch { /* closed */ }
      this.closed = true;
      this.#wake?.();
    })();
  }

  static async connect(port: number): Promise<Irc> {
    return new Irc(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(...lines: string[]): Promise<void> {
    await this.#conn.write(new TextEncoder().encode(lines.map((l) => l + "\r\n").join("")));
  }

  /** The next line (after those taken) matching `pattern`. */
  async line(pattern: RegExp): Promise<string> {
    const find = () => this.lines.findIndex((l, i) => i >= this.#taken && pattern.test(l));
    await withTimeout(
      (async () => {
        while (find() < 0 && !this.closed) await new Promise<void>((r) => (this.#wake = r));
      })(),
      WAIT_MS,
      `a line matching ${pattern}; got:\n${this.lines.slice(-12).join("\n")}`,
    );
    const i = find();
    if (i < 0) throw new Error(`closed before ${pattern}:\n${this.lines.join("\n")}`);
    this.#taken = i + 1;
    return this.lines[i]!;
  }

  /**
   * Sends a PING and waits for its PONG: what the server answered to the lines sent before has
   * arrived by then (it answers a connection's lines in order). Returns those answers.
   */
  async sync(): Promise<string[]> {
    const token = `sync${++this.#syncs}`;
    const from = this.#taken;
    await this.send(`PING :${token}`);
    await this.line(new RegExp(` PONG \\S+ :${token}$`));
    return this.lines.slice(from, this.#taken - 1);
  }

  /** Registers as `nick` with IRCv3 capabilities (space-separated), as clients negotiate them. */
  static withCaps(port: number, nick: string, caps: string, ...before: string[]): Promise<Irc> {
    return Irc.registered(port, nick, "CAP LS 302", `CAP REQ :${caps}`, "CAP END", ...before);
  }

  /** Registers as `nick` and waits for the end of the welcome (MOTD). */
  static async registered(port: number, nick: string, ...before: string[]): Promise<Irc> {
    const c = await Irc.connect(port);
    await c.send(...before, `NICK ${nick}`, `USER ${nick} 0 * :${nick}`);
    await c.line(/ (376|422) /);
    return c;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

export async function withIrcServer(fn: (s: ServerProcess) => Promise<void>, args: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "chat_irc_" });
  const server = await startServer({ data: `${dir}/chat.kv`, args });
  try {
    await fn(server);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
