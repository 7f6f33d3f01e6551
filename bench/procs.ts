/**
 * The benchmark's processes: the servers it starts (the chat, ngircd, nats-server), the load
 * generator it drives them with, and what a row costs them (CPU and memory from /proc).
 * @module
 */

/** Where a run keeps its files, how it logs, which generator it uses, and row tags. */
export interface Bench {
  /** The repository's root, ending in `/`. */
  root: string;
  /** A temp directory for KV files and configs, removed at the end. */
  dir: string;
  log(line: string): void;
  generator: Generator;
  /** A fresh tag: rows never share user names or rooms. */
  tag(): string;
}

/** The load generator: its name for the report and how to start it. */
export interface Generator {
  name: string;
  cmd: string;
  prefix: string[];
}

/** A started server. */
export interface Proc {
  child: Deno.ChildProcess;
  pid: number;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** The last lines it wrote to stderr (why it stopped, when it did). */
  stderrTail(): string;
  stop(): Promise<void>;
}

/** A chat server with its three listeners. */
export interface ChatServer {
  proc: Proc;
  tcp: number;
  http: number;
  irc: number;
}

/** One generator row's result (the JSON line bench/loadgen.c prints), with the server's cost. */
export type LoadResult = Record<string, number | string>;
export type Measured = LoadResult & { cpu_s: number; per_cpu_s: number; rss_mb: number };

/**
 * The C generator (bench/loadgen.c) when a compiler is there, else the Deno one: the Deno
 * generator needs more than a core to read 1,000 sockets at 200 msg/s and added hundreds of
 * milliseconds to ngircd's p99.
 */
export async function findGenerator(
  root: string,
  dir: string,
  log: (line: string) => void,
): Promise<Generator> {
  const exe = `${dir}/loadgen`;
  try {
    const out = await new Deno.Command("cc", {
      args: ["-O2", "-o", exe, `${root}bench/loadgen.c`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.code === 0) return { name: "C (bench/loadgen.c)", cmd: exe, prefix: [] };
    log(`cc failed, using bench/load.ts: ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
  } catch {
    log("no C compiler (apt-get install -y gcc): using bench/load.ts");
  }
  return {
    name: "Deno (bench/load.ts; no C compiler here)",
    cmd: Deno.execPath(),
    prefix: ["run", "-A", `${root}bench/load.ts`],
  };
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export function spawn(cmd: string, args: string[]): Proc {
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
  let tail = "";
  let exited = false;
  void child.status.then(() => (exited = true));
  void child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (tail = (tail + chunk).slice(-2000)) }),
  );
  return {
    child,
    pid: child.pid,
    get exited() {
      return exited;
    },
    stderrTail: () => tail,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** Waits until `port` accepts; fails at once if `proc` (the server meant to listen) has exited. */
export async function waitPort(port: number, proc?: Proc): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc?.exited) throw new Error(`exited before listening on ${port}: ${proc.stderrTail()}`);
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

/**
 * The real chat server (`deno run main.ts serve`, measured as that process itself) on free
 * ports, persistence on in `data`, no quotas (they would throttle the generator).
 */
export async function startChat(
  b: Bench,
  data: string,
  extra: string[] = [],
): Promise<ChatServer> {
  // A port found free can be taken by another socket before the server binds it (the ephemeral
  // range is shared with the generator's connections): the server then says so and exits, and
  // is started again on other ports.
  for (let attempt = 1;; attempt++) {
    const tcp = freePort();
    const http = freePort();
    const irc = freePort();
    const proc = spawn(Deno.execPath(), [
      "run",
      "-A",
      `${b.root}main.ts`,
      "serve",
      "--tcp-port",
      String(tcp),
      "--http-port",
      String(http),
      "--irc-port",
      String(irc),
      "--data",
      data,
      "--rate-limit",
      "0",
      "--private-rate-limit",
      "0",
      "--max-connections-per-ip",
      "0",
      "--rooms-per-hour",
      "0",
      "--log-level",
      "error",
      ...extra,
    ]);
    try {
      await waitPort(tcp, proc);
      await waitPort(http, proc);
      await waitPort(irc, proc);
      return { proc, tcp, http, irc };
    } catch (error) {
      const died = proc.exited;
      await proc.stop();
      if (!died || attempt >= 3) throw error;
      b.log(`  chat server did not start (${String(error).slice(0, 200)}); again on other ports`);
    }
  }
}

/** ngircd with bench/ngircd.conf (no per-IP limits, no penalty time) on a free port. */
export async function startIrc(b: Bench): Promise<{ proc: Proc; port: number }> {
  const port = freePort();
  const conf = (await Deno.readTextFile(`${b.root}bench/ngircd.conf`))
    .replace("@PORT@", String(port));
  await Deno.writeTextFile(`${b.dir}/ngircd.conf`, conf);
  const proc = spawn("ngircd", ["-n", "-f", `${b.dir}/ngircd.conf`]);
  await waitPort(port);
  return { proc, port };
}

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
export async function usage(pid: number): Promise<{ cpu: number; rss: number }> {
  const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]!.split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rss = Number(status.match(/VmRSS:\s+(\d+)/)![1]) * 1024;
  return { cpu: ticks / 100, rss };
}

/**
 * What a workload that runs in the benchmark's own process costs (its client is the generator:
 * ingest, history, REST): the servers' CPU seconds over it, and the benchmark process's CPU as a
 * percentage of one core, flagged like the C generator's above 80%.
 */
export async function costed<T extends object>(
  pids: number[],
  run: () => Promise<T>,
): Promise<T & { cpu_s: number; gen_cpu_pct: number }> {
  const cpuOf = async () => (await Promise.all(pids.map(usage))).reduce((a, u) => a + u.cpu, 0);
  const server0 = await cpuOf();
  const self0 = (await usage(Deno.pid)).cpu;
  const t0 = performance.now();
  const result = await run();
  const wall = (performance.now() - t0) / 1000;
  const selfCpu = (await usage(Deno.pid)).cpu - self0;
  return {
    ...result,
    cpu_s: +((await cpuOf()) - server0).toFixed(2),
    gen_cpu_pct: Math.round((100 * selfCpu) / Math.max(wall, 0.001)),
  };
}

/**
 * Runs the generator against a server. The generator prints "start" as its clock starts (after
 * every receiver has joined), so the server's CPU is counted from there: logins are not part of
 * a fan-out's cost.
 */
export async function measured(
  b: Bench,
  pids: number | number[],
  args: string[],
): Promise<Measured> {
  const all = Array.isArray(pids) ? pids : [pids];
  // Several servers (a cluster's nodes): their CPU and memory added up.
  const usageOf = async () => {
    const us = await Promise.all(all.map(usage));
    return { cpu: us.reduce((a, u) => a + u.cpu, 0), rss: us.reduce((a, u) => a + u.rss, 0) };
  };
  const child = new Deno.Command(b.generator.cmd, {
    args: [...b.generator.prefix, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors = new Response(child.stderr).text();
  let before = await usageOf();
  let last = "";
  let pending = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let i;
    while ((i = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, i).trim();
      pending = pending.slice(i + 1);
      if (line === "start") before = await usageOf();
      else if (line) last = line;
    }
  }
  if (pending.trim()) last = pending.trim();
  const after = await usageOf();
  const status = await child.status;
  if (status.code !== 0 || !last.startsWith("{")) {
    throw new Error(`load ${args.join(" ")} failed: ${(await errors).slice(-500)}`);
  }
  const r: LoadResult = JSON.parse(last);
  if (Number(r.joined) < Number(r.receivers)) {
    b.log(`  void: only ${r.joined} of ${r.receivers} receivers joined (${args.join(" ")})`);
  }
  const cpu = +(after.cpu - before.cpu).toFixed(2);
  return {
    ...r,
    cpu_s: cpu,
    // Deliveries per second of server CPU: what a server does with a core.
    per_cpu_s: cpu > 0 ? Math.round(Number(r.delivered) / cpu) : 0,
    rss_mb: +(after.rss / 1048576).toFixed(1),
  };
}

/** One row's generator arguments, with a fresh tag (rows never share names or rooms). */
export function loadArgs(b: Bench, o: {
  proto: "json" | "ws" | "irc";
  /** One server's port, or a cluster's (receivers spread over them). */
  port: number | number[];
  receivers: number;
  senders: number;
  messages: number;
  rate?: number;
  rooms?: number;
  slow?: number;
}): string[] {
  const args = [
    "--proto",
    o.proto,
    ...(Array.isArray(o.port) ? ["--ports", o.port.join(",")] : ["--port", String(o.port)]),
    "--receivers",
    String(o.receivers),
    "--senders",
    String(o.senders),
    "--messages",
    String(o.messages),
  ];
  if (o.rate !== undefined) args.push("--rate", String(o.rate));
  if (o.rooms !== undefined) args.push("--rooms", String(o.rooms));
  if (o.slow !== undefined) args.push("--slow", String(o.slow));
  return [...args, "--tag", b.tag()];
}
