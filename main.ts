/**
 * The one entry point of chat: `chat serve` runs the server, later `chat connect` the terminal
 * client and `chat user` the account tool. Wiring only: parse flags, open KV, build the hub,
 * start the listeners, shut down cleanly.
 * @module
 */

import { parseArgs } from "node:util";
import { ulidFactory } from "./server/ids.ts";
import { ChatClient } from "./client/terminal.ts";
import { Hub } from "./server/core/hub.ts";
import { parseServeArgs, type ServeConfig, UsageError } from "./server/config.ts";
import { createLogger } from "./server/log.ts";
import { scryptHasher } from "./server/passwords.ts";
import { KvStore } from "./server/store/kv_store.ts";
import { DataLease } from "./server/store/lease.ts";
import { LEASE_STALE_MS } from "./server/store/store.ts";
import { ClusterBroker } from "./server/cluster/broker.ts";
import { NatsBus } from "./server/cluster/bus.ts";
import { ClusterStore } from "./server/cluster/store.ts";
import { createHttpApp } from "./server/transport/http/app.ts";
import { serveHttp } from "./server/transport/http_server.ts";
import { serveTcp } from "./server/transport/tcp/listener.ts";
import { serveIrc } from "./server/transport/irc/listener.ts";
import { parseUserArgs, runUserCommand, USER_USAGE } from "./server/user_cli.ts";

const USAGE = `chat: a multi-user chat server and its clients

Usage:
  chat serve [flags]     run the server (chat serve --help lists the flags)
  chat connect [NAME]    the terminal client (chat connect --help)
  chat user COMMAND      manage accounts: add, passwd, admin, list, del (chat user --help)

Run with Deno: deno run -A main.ts serve`;

/**
 * Whether a process of this machine is alive: a server killed with -9 leaves a fresh lease, and a
 * restart must not wait for it to go stale. Where /proc is missing, a process counts as alive.
 */
function processAlive(pid: number): boolean {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return true;
  }
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** The server cannot start as configured; the message says why and what to do. */
class StartupError extends Error {
  override name = "StartupError";
}

/** Opens the data file (its folder made if missing); a place that cannot hold it is a StartupError. */
async function openKv(path: string): Promise<Deno.Kv> {
  if (path === ":memory:" || /^https?:\/\//.test(path)) return await Deno.openKv(path);
  const fix = "give --data a file path in a folder you can write to";
  try {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  } catch (error) {
    throw new StartupError(`cannot make the folder for ${path} (${reason(error)}): ${fix}`);
  }
  const stat = await Deno.stat(path).catch(() => null);
  if (stat?.isDirectory) throw new StartupError(`${path} is a folder, not a data file: ${fix}`);
  try {
    return await Deno.openKv(path);
  } catch (error) {
    throw new StartupError(`cannot open ${path} (${reason(error)}): ${fix}`);
  }
}

/** An OS error in a few words ("Permission denied", "Not a directory"), without its os error code. */
function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/ \(os error \d+\)/, "")
    .replace(/: '.*'$/, "").split("\n")[0]!;
}

/** Listens, or explains in one line why not and what to do. */
function listenOrExplain<T>(what: string, flag: string, port: number, listen: () => T): T {
  try {
    return listen();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new StartupError(
        `the ${what} port ${port} is in use (another chat server?): stop it, or give ${flag} ` +
          "another port (0 picks a free one)",
      );
    }
    throw new StartupError(
      `cannot listen on the ${what} port ${port} (${reason(error)}): ` +
        `give ${flag} another port, or --host another address`,
    );
  }
}

/** Whether the store answers a read within a second (for /healthz). */
async function storeAnswers(kv: Deno.Kv): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      kv.get(["server_lease"]).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 1000))),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function serve(config: ServeConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const kv = await openKv(config.data);
  const clustered = config.cluster !== "";
  const node = config.node || `${Deno.hostname()}-${config.tcpPort || Deno.pid}`;
  const store = clustered ? new ClusterStore(kv) : new KvStore(kv);
  // Through the store's KV: retried while another node holds the file.
  const lease = new DataLease(store.kv);
  const leaseId = crypto.randomUUID();
  const leaseRecord = () => ({
    pid: Deno.pid,
    hostname: Deno.hostname(),
    at: Date.now(),
    id: leaseId,
  });
  const holderGone = (holder: { hostname: string; pid: number }) =>
    holder.hostname === Deno.hostname() && !processAlive(holder.pid);
  const inUse = (holder: { pid: number; hostname: string; at: number }, what: string) => {
    kv.close();
    const ago = Math.max(0, Math.round((Date.now() - holder.at) / 1000));
    return new StartupError(
      `${config.data} is in use by ${what} (pid ${holder.pid} on ${holder.hostname}, seen ` +
        `${ago}s ago): stop it first, or give another --data` +
        (clustered ? "" : " (or start this one with --cluster too)"),
    );
  };
  // One server per data file, or the nodes of one cluster: a lone server keeps state in memory
  // that another process would change behind its back. Checked before anything listens.
  const nodes = (await lease.liveNodes(Date.now())).filter((n) =>
    n.node !== node && !holderGone(n)
  );
  if (clustered) {
    const single = await lease.get();
    if (single && Date.now() - single.at < LEASE_STALE_MS && !holderGone(single)) {
      throw inUse(single, "a chat server outside the cluster");
    }
  } else {
    if (nodes.length > 0) throw inUse(nodes[0]!, `cluster node ${nodes[0]!.node}`);
    const held = await lease.acquire(leaseRecord(), 10_000, holderGone);
    if (!held.ok) throw inUse(held.holder, "a chat server");
  }
  let bus: NatsBus | null = null;
  let broker: ClusterBroker | null = null;
  if (clustered) {
    try {
      bus = await NatsBus.connect(config.cluster, node, log);
    } catch (error) {
      kv.close();
      throw new StartupError(
        `cannot reach NATS at ${config.cluster} (${(error as Error).message}): start ` +
          "nats-server there, or fix --cluster",
      );
    }
    broker = new ClusterBroker({ node, bus, log });
    const b = broker;
    (store as ClusterStore).onChange((change) => b.changed(change));
    await lease.putNode(node, leaseRecord(), 10_000);
  }
  const newUlid = ulidFactory();
  // Both ports are taken before anything is printed or served: a busy one stops the start with
  // one line, and nothing is left listening (nor the data file held).
  const giveUp = async () => {
    broker?.stop();
    await bus?.close();
    await (clustered ? lease.releaseNode(node) : lease.release()).catch(() => {});
    kv.close();
  };
  let listener: Deno.TcpListener;
  try {
    listener = listenOrExplain(
      "TCP",
      "--tcp-port",
      config.tcpPort,
      () => Deno.listen({ hostname: config.host, port: config.tcpPort, transport: "tcp" }),
    );
  } catch (error) {
    await giveUp();
    throw error;
  }
  // HTTP listens before the hub is built, which needs its port (token replies say where files
  // go); a request arriving meanwhile waits for the app.
  const app = Promise.withResolvers<ReturnType<typeof createHttpApp>>();
  let http: ReturnType<typeof serveHttp>;
  try {
    http = listenOrExplain("HTTP", "--http-port", config.httpPort, () =>
      serveHttp(
        { hostname: config.host, port: config.httpPort },
        async (request, info) => (await app.promise).fetch(request, info),
        {
          log,
          maxConnectionsPerIp: config.maxConnectionsPerIp,
          headerTimeoutMs: config.headerTimeoutMs,
          bodyIdleTimeoutMs: config.headerTimeoutMs,
        },
      ));
  } catch (error) {
    listener.close();
    await giveUp();
    throw error;
  }
  let ircListener: Deno.TcpListener | null = null;
  if (config.ircPort !== null) {
    try {
      const ircPort = config.ircPort;
      ircListener = listenOrExplain(
        "IRC",
        "--irc-port",
        ircPort,
        () => Deno.listen({ hostname: config.host, port: ircPort, transport: "tcp" }),
      );
    } catch (error) {
      listener.close();
      await http.shutdown();
      await giveUp();
      throw error;
    }
  }
  const hub = await Hub.create({
    store,
    clock: { now: () => Date.now() },
    newId: (now) => newUlid(now),
    passwords: scryptHasher(),
    historySize: config.history,
    reportsToMute: config.reportsToMute,
    reportsFrom: config.reportsFrom,
    roomsPerHour: config.roomsPerHour,
    quotaExempt: config.quotaExempt,
    guests: config.guests,
    guestGraceMs: config.guestGraceMs,
    awayNoticeMs: config.awayNoticeMs,
    logRetentionMs: config.logRetentionMs,
    muteForMs: config.muteForMs,
    rateLimit: config.rateLimit,
    privateRateLimit: config.privateRateLimit,
    messageTtlMs: config.messageTtlMs,
    registration: config.registration,
    maxFileSize: config.maxFileSize,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    httpPort: http.addr.port,
    onError: (error, context) => log.error(`core: ${context}`, { error }),
  }, broker ?? undefined);
  app.resolve(createHttpApp(hub, {
    log,
    startedAt: Date.now(),
    storeStats: () => store.stats,
    storeReachable: () => storeAnswers(kv),
    ...(broker && bus
      ? {
        cluster: () => ({ node, nats: bus!.connected, nodes: broker!.nodes() }),
      }
      : {}),
    heartbeatMs: config.heartbeatMs,
    metricsToken: config.metricsToken,
    allowedOrigins: config.allowedOrigins,
  }));

  const tcp = serveTcp(hub, listener, { log, heartbeatMs: config.heartbeatMs });
  const irc = ircListener
    ? serveIrc(hub, ircListener, { log, heartbeatMs: config.heartbeatMs, motd: config.motd })
    : null;
  const addr = listener.addr as Deno.NetAddr;
  console.log(`tcp listening on ${addr.hostname}:${addr.port}`);
  console.log(`http listening on ${http.addr.hostname}:${http.addr.port}`);
  if (ircListener) {
    const a = ircListener.addr as Deno.NetAddr;
    console.log(`irc listening on ${a.hostname}:${a.port}`);
  }
  log.info("server started", { data: config.data, ...(clustered ? { node } : {}) });

  // The lease, refreshed, tells `chat user` and other servers that this data file is in use.
  const refreshLease = () =>
    clustered ? lease.putNode(node, leaseRecord(), 10_000) : lease.put(leaseRecord(), 10_000);
  // Scheduled messages go out within a quarter of a second of their time.
  let scheduling = false;
  const scheduler = setInterval(() => {
    if (scheduling) return;
    scheduling = true;
    hub.runScheduled()
      .catch((error) => log.error("scheduled messages failed", { error }))
      .finally(() => (scheduling = false));
  }, 250);
  let ticks = 0;
  let leasing: Promise<void> = Promise.resolve();
  const maintenance = setInterval(() => {
    hub.housekeeping().catch((error) => log.error("maintenance failed", { error }));
    if (++ticks % 2 === 0) {
      leasing = refreshLease().catch((error) => log.warn("lease refresh failed", { error }));
    }
  }, 1000);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    clearInterval(maintenance);
    clearInterval(scheduler);
    tcp.close();
    irc?.close();
    // Goodbye on every wire first: shutting the HTTP server down closes its WebSockets.
    await hub.close("server shutting down");
    const httpDone = http.shutdown();
    await Promise.race([
      Promise.all([tcp.finished, httpDone, irc?.finished]),
      new Promise((r) => setTimeout(r, 2000)),
    ]);
    // Let `chat user` in at once; a refresh still in flight must not re-create the lease.
    await leasing;
    broker?.stop();
    await bus?.close();
    await (clustered ? lease.releaseNode(node) : lease.release())
      .catch((error) => log.warn("could not release the lease", { error }));
    kv.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void shutdown("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void shutdown("SIGTERM"));
}

const CONNECT_USAGE = `Usage: chat connect [NAME] [flags]

  -H, --host HOST    server address (default 127.0.0.1; env CHAT_HOST); a cluster's nodes
                     as HOST[:PORT],HOST[:PORT],… are tried in turn, on start and reconnect
  -p, --port PORT    server TCP port (default 8000; env CHAT_TCP_PORT)
  --password PW      password for a registered name (env CHAT_PASSWORD); asked when needed
  --downloads DIR    where /download saves files (default ./downloads)
  --no-color         plain text (also when NO_COLOR is set or output is not a terminal)
  --send TEXT        send one message and exit 0 once the server has stored it
  --to USER          with --send: a private message to USER
  --room ROOM        with --send: to ROOM (default general)`;

async function connect(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        // -H and -p as the second assignment's client has them (client.py -H HOST -p PORT NAME).
        host: { type: "string", short: "H" },
        port: { type: "string", short: "p" },
        password: { type: "string" },
        downloads: { type: "string" },
        "no-color": { type: "boolean" },
        send: { type: "string" },
        to: { type: "string" },
        room: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${CONNECT_USAGE}`);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(CONNECT_USAGE);
    return 0;
  }
  const env = Deno.env.toObject();
  const port = Number(v.port ?? env.CHAT_TCP_PORT ?? "8000");
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--port must be a port number, got "${v.port}"`);
  }
  if (parsed.positionals.length > 1) {
    throw new UsageError(
      `connect takes one NAME, got ${parsed.positionals.map((p) => `"${p}"`).join(", ")}` +
        ' (a message goes in --send "TEXT")',
    );
  }
  if (v.send !== undefined && parsed.positionals[0] === undefined) {
    throw new UsageError("--send needs a NAME");
  }
  if (v.to !== undefined && v.room !== undefined) {
    throw new UsageError("give --to or --room, not both");
  }
  const tty = Deno.stdin.isTerminal() && v.send === undefined;
  // --host a,b:8001,c: the nodes of a cluster, tried in turn (a host without a port uses --port).
  const servers = (v.host ?? env.CHAT_HOST ?? "127.0.0.1").split(",").map((entry) => {
    const m = entry.trim().match(/^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/);
    if (!m || (m[2] !== undefined && !(Number(m[2]) > 0 && Number(m[2]) < 65536))) {
      throw new UsageError(`--host takes HOST or HOST:PORT, comma-separated, got "${entry}"`);
    }
    return { host: m[1]!.replace(/^\[|\]$/g, ""), port: m[2] === undefined ? port : Number(m[2]) };
  });
  const client = new ChatClient({
    host: servers[0]!.host,
    port: servers[0]!.port,
    servers,
    name: parsed.positionals[0],
    password: v.password ?? env.CHAT_PASSWORD,
    color: Deno.stdout.isTerminal() && !v["no-color"] && env.NO_COLOR === undefined,
    tty,
    downloads: v.downloads ?? "./downloads",
    send: v.send,
    to: v.to,
    room: v.room,
    ...(env.CHAT_RECONNECT_MS ? { reconnectMs: Number(env.CHAT_RECONNECT_MS) } : {}),
    ...(env.CHAT_HEARTBEAT_MS ? { heartbeatMs: Number(env.CHAT_HEARTBEAT_MS) } : {}),
  });
  return await client.run();
}

async function main(argv: string[]): Promise<number> {
  // `deno task connect -- Alice --port 18001` passes the "--" on: flags after it apply all the
  // same (no name or value here starts with "-", so "--" ends nothing).
  const args = argv.filter((a) => a !== "--");
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "serve": {
        const config = parseServeArgs(rest, Deno.env.toObject());
        if (config === null) {
          const { SERVE_USAGE } = await import("./server/config.ts");
          console.log(SERVE_USAGE);
          return 0;
        }
        await serve(config);
        return -1;
      }
      case "connect":
        return await connect(rest);
      case "user": {
        const cmd = parseUserArgs(rest, Deno.env.toObject());
        if (cmd === null) {
          console.log(USER_USAGE);
          return 0;
        }
        const kv = await openKv(cmd.data);
        try {
          return await runUserCommand(new KvStore(kv), cmd, (line) => console.log(line));
        } finally {
          kv.close();
        }
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        console.error(`chat: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`chat: ${error.message}`);
      return 2;
    }
    if (error instanceof StartupError) {
      console.error(`chat: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (import.meta.main) {
  const code = await main(Deno.args);
  if (code >= 0) Deno.exit(code);
}
