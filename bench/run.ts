/**
 * `deno task bench [--quick]`: starts the real chat server (persistence on, a temp KV file) and
 * ngircd side by side, drives both with the same load generator in a separate process, and
 * writes docs/benchmarks.md with the figures of this run as ratios against ngircd.
 *
 * This file is the run's order; bench/procs.ts starts the servers and the generator
 * (bench/loadgen.c, built with the system's C compiler when there is one, else bench/load.ts),
 * bench/workloads.ts holds the workloads that are not generator rows, bench/report.ts renders
 * the results. Every row says which generator ran, its CPU, and whether every receiver joined.
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Bench,
  costed,
  findGenerator,
  loadArgs,
  type Measured,
  measured,
  startChat,
  startIrc,
  usage,
} from "./procs.ts";
import { renderReport, type Results } from "./report.ts";
import {
  clusterRuns,
  fsyncPerMessage,
  history,
  idle,
  ingest,
  paramsFor,
  rest,
} from "./workloads.ts";

const quick =
  parseArgs({ args: Deno.args, options: { quick: { type: "boolean" } } }).values.quick === true;
const ROOT = new URL("../", import.meta.url).pathname;
const OUT = `${ROOT}docs/benchmarks.md`;
const P = paramsFor(quick);
/** The median of `runs` by `key`, with every run's `label` in that order (its `rounds`). */
function medianOf(
  runs: Measured[],
  key: (m: Measured) => number,
  label: (m: Measured) => string | number | undefined,
) {
  const sorted = [...runs].sort((x, y) => key(x) - key(y));
  return { ...sorted[Math.floor(sorted.length / 2)]!, rounds: sorted.map(label) };
}

const dir = await Deno.makeTempDir({ prefix: "chat_bench_" });
const benchStart = performance.now();
const log = (s: string) =>
  console.error(`[bench ${((performance.now() - benchStart) / 1000).toFixed(1)}s] ${s}`);
const generator = await findGenerator(ROOT, dir, log);
let tags = 0;
const b: Bench = { root: ROOT, dir, log, generator, tag: () => `t${++tags}` };

const results: Results = {};

const chat = await startChat(b, `${dir}/chat.kv`);
const irc = await startIrc(b);
const chatPid = chat.proc.pid;
log(
  `chat on ${chat.tcp}/${chat.http} (pid ${chatPid}), ngircd on ${irc.port} (pid ${irc.proc.pid})`,
);

try {
  // 1. Burst fan-out.
  log("1. burst fan-out");
  const burst = (proto: "json" | "ws" | "irc", port: number, pid: number) =>
    measured(
      b,
      pid,
      loadArgs(b, { proto, port, receivers: P.burstN, senders: 4, messages: P.burstM }),
    );
  /** The four servers every fan-out row measures: the chat's three wires and ngircd. */
  type Row = "json" | "ws" | "ircChat" | "irc";
  const rounds: Record<Row, Measured>[] = [];
  for (let i = 0; i < P.burstRounds; i++) {
    rounds.push({
      json: await burst("json", chat.tcp, chatPid),
      ws: await burst("ws", chat.http, chatPid),
      // The same protocol on both sides: the chat's IRC listener against ngircd.
      ircChat: await burst("irc", chat.irc, chatPid),
      irc: await burst("irc", irc.port, irc.proc.pid),
    });
  }
  const medianRound = (row: Row) =>
    medianOf(
      rounds.map((r) => r[row]),
      (m) => Number(m.deliveries_per_s),
      (m) => m.deliveries_per_s,
    );
  results.burst = {
    json: medianRound("json"),
    ws: medianRound("ws"),
    ircChat: medianRound("ircChat"),
    irc: medianRound("irc"),
  };

  // 2. Open loop at fixed rates, in interleaved rounds.
  log("2. open loop");
  const openRuns: Record<number, Record<Row, Measured[]>> = {};
  for (let round = 0; round < P.openRounds; round++) {
    for (const rate of P.rates) {
      const row = (proto: "json" | "ws" | "irc", port: number, pid: number) =>
        measured(
          b,
          pid,
          loadArgs(b, {
            proto,
            port,
            receivers: P.openN,
            senders: 4,
            rate,
            messages: rate * P.openSecs,
          }),
        );
      const runs = openRuns[rate] ??= { json: [], ws: [], ircChat: [], irc: [] };
      runs.json.push(await row("json", chat.tcp, chatPid));
      runs.ws.push(await row("ws", chat.http, chatPid));
      runs.ircChat.push(await row("irc", chat.irc, chatPid));
      runs.irc.push(await row("irc", irc.port, irc.proc.pid));
    }
  }
  /** The median round by p99 (a round with receivers missing sorts last), with all rounds. */
  const medianOpen = (runs: Measured[]) =>
    medianOf(
      runs,
      (m) => Number(m.joined) < Number(m.receivers) ? Infinity : Number(m.p99_ms ?? Infinity),
      (m) => `${m.p50_ms} / ${m.p99_ms}`,
    );
  const open: Record<string, unknown> = {};
  for (const rate of P.rates) {
    const runs = openRuns[rate]!;
    open[rate] = {
      json: medianOpen(runs.json),
      ws: medianOpen(runs.ws),
      ircChat: medianOpen(runs.ircChat),
      irc: medianOpen(runs.irc),
    };
  }
  results.open = open;

  // 7. Slow readers during the open loop at 200/s.
  log("7. slow readers");
  const slowRate = 200;
  const slowRow = (slow?: number) =>
    measured(
      b,
      chatPid,
      loadArgs(b, {
        proto: "json",
        port: chat.tcp,
        receivers: P.openN,
        senders: 4,
        rate: slowRate,
        messages: slowRate * P.openSecs * 2,
        ...(slow === undefined ? {} : { slow }),
      }),
    );
  const rssBefore = (await usage(chatPid)).rss;
  results.slow = {
    baseline: await slowRow(),
    slow: await slowRow(0.01),
    rss_before_mb: +(rssBefore / 1048576).toFixed(1),
  };

  // 3. Durable ingest: acknowledged only after commit.
  log("3. durable ingest");
  results.ingest = await costed([chatPid], () => ingest([chat.tcp], P.ingest));
  results.fsync = await fsyncPerMessage(b);

  // 6. Many small rooms.
  log("6. many small rooms");
  const rooms = P.smallConns / 10;
  results.small = await measured(
    b,
    chatPid,
    loadArgs(b, {
      proto: "json",
      port: chat.tcp,
      receivers: P.smallConns,
      rooms,
      senders: rooms,
      rate: rooms,
      messages: rooms * P.smallSecs,
    }),
  );

  // 8. REST through the server's HTTP/1.1 listener, with its deadlines (the default).
  log("8. REST");
  results.rest = await rest(b, chat.http, chatPid, P.restClients, P.restPer);

  // 4. Idle connections: memory per connection.
  log("4. idle connections");
  // Each on a fresh server: a server that has just run other workloads may be returning
  // memory meanwhile, which made "after - before" meaningless (even negative).
  const idleOn = async (proto: "json" | "ws" | "irc" | "ircChat") => {
    if (proto === "irc") {
      const s = await startIrc(b);
      try {
        return await idle(b, "irc", s.port, s.proc.pid, P.idle, P.settleS);
      } finally {
        await s.proc.stop();
      }
    }
    const s = await startChat(b, `${dir}/idle_${proto}.kv`);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      return await idle(
        b,
        proto === "ircChat" ? "irc" : proto,
        proto === "ws" ? s.http : proto === "ircChat" ? s.irc : s.tcp,
        s.proc.pid,
        P.idle,
        P.settleS,
      );
    } finally {
      await s.proc.stop();
    }
  };
  results.idle = {
    json: await idleOn("json"),
    ws: await idleOn("ws"),
    ircChat: await idleOn("ircChat"),
    irc: await idleOn("irc"),
  };
} finally {
  await chat.proc.stop();
  await irc.proc.stop();
}

// 5. History with many stored messages (its own server, prefilled through the store).
log("5. history");
results.history = await history(b, P.history);

// 9. Cluster: three nodes on one KV file and a real nats-server, against the single server above.
log("9. cluster");
results.cluster = await clusterRuns(b, P);

await Deno.remove(dir, { recursive: true });
const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1];
const memKb = Number(Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s+(\d+)/)![1]);
await Deno.writeTextFile(
  OUT,
  renderReport({
    results,
    params: P,
    quick,
    generator: generator.name,
    bounds: await Deno.readTextFile(`${ROOT}bench/bounds.md`),
    machine: {
      cores: navigator.hardwareConcurrency,
      cpu: cpu ?? "unknown",
      memGiB: (memKb / 1048576).toFixed(0),
      deno: Deno.version.deno,
      date: new Date().toISOString().slice(0, 10),
    },
  }),
);
log(`wrote ${OUT}`);
