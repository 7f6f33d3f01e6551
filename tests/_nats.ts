/**
 * A real `nats-server` (Debian's package; `.ci/run` installs it) on a free port, for the
 * cluster tests: started, stopped and started again on the same port (a NATS outage).
 * @module
 */

/** Whether nats-server is installed here. */
export function natsServerInstalled(): boolean {
  try {
    new Deno.Command("nats-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

/** A running nats-server; `restart()` stops it and starts it again on the same port. */
export class NatsServer {
  readonly port: number;
  #child: Deno.ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
  }

  /** The server's URL for `--cluster`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts nats-server on a free loopback port and waits until it accepts connections. */
  static async start(): Promise<NatsServer> {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const s = new NatsServer(port);
    await s.up();
    return s;
  }

  /** Starts the process (again) and waits for its port. */
  async up(): Promise<void> {
    this.#child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(this.port)],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 100; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`nats-server did not listen on ${this.port}`);
  }

  /** Stops the process. */
  async down(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}
