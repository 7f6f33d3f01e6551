/**
 * The real server as a child process on free ports, for the tests (tests/_helpers.ts re-exports
 * it) and the long runs (bench/crash.ts, bench/stress.ts): `main.ts serve --tcp-port 0
 * --http-port 0`, ready once both "listening" lines are out.
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running `main.ts serve` child process. */
export interface ServerProcess {
  /** The server's process id (the deno process itself). */
  pid: number;
  tcpPort: number;
  httpPort: number;
  /** The IRC port (0 when started with --irc-port off). */
  ircPort: number;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** `deno run -A main.ts serve` on free ports with a data file, then `extra` (later flags win). */
export function serveArgs(data: string, extra: string[] = []): string[] {
  return ["run", "-A", MAIN, ...serveFlags(data, extra)];
}

/** `serve` and its flags for free ports and a data file, then `extra` (for any `chat` binary). */
export function serveFlags(data: string, extra: string[] = []): string[] {
  return [
    "serve",
    "--tcp-port",
    "0",
    "--http-port",
    "0",
    "--irc-port",
    "0",
    "--data",
    data,
    "--log-level",
    "warn",
    ...extra,
  ];
}

/** Starts `main.ts serve` on free ports with the given data file and extra flags. */
export async function startServer(
  options: { data: string; args?: string[]; env?: Record<string, string> },
): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: serveArgs(options.data, options.args),
    stdout: "piped",
    stderr: "piped",
    env: options.env ?? {},
  }).spawn();
  let stderrText = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (c) => void (stderrText += c) }),
  );
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdoutText = "";
  let tcpPort: number | null = null;
  let httpPort: number | null = null;
  const args = options.args ?? [];
  const ircOff = args.some((a, i) => a === "--irc-port" && args[i + 1] === "off");
  let ircPort: number | null = ircOff ? 0 : null;
  const deadline = Date.now() + 15_000;
  while (tcpPort === null || httpPort === null || ircPort === null) {
    const { value, done } = await withTimeout(lines.read(), deadline - Date.now(), "server start");
    if (done) throw new Error(`server exited before listening:\n${stdoutText}\n${stderrText}`);
    stdoutText += value;
    const tcp = stdoutText.match(/tcp listening on [^\s]+:(\d+)/);
    const http = stdoutText.match(/http listening on [^\s]+:(\d+)/);
    if (http) httpPort = Number(http[1]);
    if (tcp) tcpPort = Number(tcp[1]);
    const irc = stdoutText.match(/irc listening on [^\s]+:(\d+)/);
    if (irc) ircPort = Number(irc[1]);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const stdoutDone = (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })();
  let exited: Promise<number> | null = null;
  return {
    pid: child.pid,
    tcpPort,
    httpPort,
    ircPort,
    stderr: () => stderrText,
    stop(signal: Deno.Signal = "SIGTERM") {
      exited ??= (async () => {
        try {
          child.kill(signal);
        } catch { /* already gone */ }
        const status = await child.status;
        await Promise.all([stdoutDone, stderrDone]);
        return status.code;
      })();
      return exited;
    },
  };
}

/**
 * Puts an admin "Root" (password "root-password") into a data file through the real
 * `chat user add`, before a server is started on it.
 */
export async function addRootAdmin(data: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "user",
      "add",
      "Root",
      "--admin",
      "--password",
      "root-password",
      "--data",
      data,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`user add Root: ${new TextDecoder().decode(out.stderr)}`);
}

/** Resolves with `p`, or rejects after `ms` naming what was awaited; the timer never outlives the call. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${what}`)),
          Math.max(ms, 0),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
