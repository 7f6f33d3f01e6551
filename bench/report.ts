/**
 * docs/benchmarks.md from one run's results: the targets of issue 16 with their verdicts, a
 * table per workload, the bounds (bench/bounds.md) and the raw JSON. Pure: everything it prints
 * comes in through `ReportInput`, so a test can render a report from fixed results.
 * @module
 */

import { HISTORY_READS, type Params } from "./workloads.ts";

/** A run's results by section, as bench/run.ts collects them (rows as the generator printed them). */
// deno-lint-ignore no-explicit-any
export type Results = Record<string, any>;

/** What the report says besides the results. */
export interface ReportInput {
  results: Results;
  params: Params;
  quick: boolean;
  /** Which load generator ran (bench/procs.ts `findGenerator`). */
  generator: string;
  /** bench/bounds.md: what bounds the misses. */
  bounds: string;
  machine: { cores: number; cpu: string; memGiB: string; deno: string; date: string };
}

// deno-lint-ignore no-explicit-any
type Row = any;

const ratio = (a: number, b: number) => (b ? (a / b).toFixed(2) : "n/a");
const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;

/** Whether a generator row missed receivers (its figures are not comparable). */
const missing = (x: Row) => x !== undefined && Number(x.joined) < Number(x.receivers);
/** Messages that did not reach every receiver: the server lost them, its rate is not a rate. */
const lost = (x: Row) => x !== undefined && Number(x.delivered) < Number(x.expected);
const isVoid = (x: Row) => missing(x) || lost(x);

/**
 * Why a generator row cannot be trusted, if it cannot: receivers missing, deliveries lost, or a
 * busy generator.
 */
export function flag(x: Row): string {
  return missing(x)
    ? ` ⚠ void: ${x.joined}/${x.receivers} joined`
    : lost(x)
    ? ` ⚠ void: ${x.delivered}/${x.expected} delivered`
    : Number(x.gen_cpu_pct) > 80
    ? " ⚠ generator > 80% of a core"
    : "";
}

/** The generator's share of a core, flagged above 80% (a busy generator adds its own latency). */
const genCpu = (x: Row) =>
  x?.gen_cpu_pct === undefined
    ? "–"
    : `${x.gen_cpu_pct}%${Number(x.gen_cpu_pct) > 80 ? " ⚠ > 80% of a core" : ""}`;

/** Acknowledged out of sent, for an ingest row (older results did not count acks). */
const ackedOf = (x: Row) => `${x.acked ?? x.messages}/${x.messages}`;

/** Whether an ingest row lost acks (its rate is not the server's). */
const lostAcks = (x: Row) => x.acked !== undefined && x.acked < x.messages;

/** An idle-memory target: void when fewer connected than were asked for. */
function idleTarget(name: string, x: Row, limitKb: number): [string, string, boolean] {
  const figure = kb(x.settled_bytes_per_connection);
  if (x.expected !== undefined && x.connections < x.expected) {
    return [name, `${figure} (void: ${x.connections}/${x.expected} connected)`, false];
  }
  return [name, figure, x.settled_bytes_per_connection <= limitKb * 1024];
}

/**
 * Issue 16's targets: what each is, this run's figure, and whether it is met. A target whose
 * rows are void (receivers missing, or deliveries lost, on either server) is not met, whatever its
 * ratio says.
 */
export function targets(r: Results): Array<[string, string, boolean]> {
  const bj = r.burst.json, bw = r.burst.ws, bi = r.burst.irc;
  const rates = Object.keys(r.open).map(Number);
  const checked = (
    name: string,
    rows: Row[],
    figure: string,
    ok: boolean,
  ): [string, string, boolean] =>
    rows.some(isVoid)
      ? [name, `${figure} (void: receivers missing or deliveries lost)`, false]
      : [name, figure, ok];
  const openAt = (rate: number, name: string, limit: number, notRun: string) => {
    const o = r.open[rate];
    if (!o) return [name, notRun, false] as [string, string, boolean];
    const x = o.json.p99_ms / o.irc.p99_ms;
    return checked(name, [o.json, o.irc], `${x.toFixed(2)}×`, x <= limit);
  };
  const worstP50 = Math.max(
    ...rates.map((rate) => r.open[rate].json.p50_ms / r.open[rate].irc.p50_ms),
  );
  return [
    checked(
      "burst, TCP JSON ≥ 1.1× ngircd by rate",
      [bj, bi],
      `${ratio(bj.deliveries_per_s, bi.deliveries_per_s)}×`,
      bj.deliveries_per_s >= 1.1 * bi.deliveries_per_s,
    ),
    checked(
      "burst, TCP JSON ≥ 1.3× ngircd per server CPU-second",
      [bj, bi],
      `${ratio(bj.per_cpu_s, bi.per_cpu_s)}×`,
      bj.per_cpu_s >= 1.3 * bi.per_cpu_s,
    ),
    checked(
      "burst, WebSocket ≥ 1.1× ngircd by rate",
      [bw, bi],
      `${ratio(bw.deliveries_per_s, bi.deliveries_per_s)}×`,
      bw.deliveries_per_s >= 1.1 * bi.deliveries_per_s,
    ),
    openAt(200, "open loop, TCP JSON p99 at 200/s ≤ 1.3× ngircd", 1.3, "not run"),
    openAt(400, "open loop, TCP JSON p99 at 400/s ≤ 2× ngircd", 2, "not run in quick mode"),
    checked(
      "open loop, TCP JSON p50 ≤ 1.2× ngircd at every rate",
      rates.flatMap((rate) => [r.open[rate].json, r.open[rate].irc]),
      `worst ${worstP50.toFixed(2)}×`,
      worstP50 <= 1.2,
    ),
    [
      "durable ingest ≥ 50,000 msg/s",
      `${r.ingest.acked_per_s}/s${lostAcks(r.ingest) ? ` (void: ${ackedOf(r.ingest)} acked)` : ""}`,
      !lostAcks(r.ingest) && r.ingest.acked_per_s >= 50_000,
    ],
    idleTarget("idle TCP JSON ≤ 12 KB per connection (settled)", r.idle.json, 12),
    idleTarget("idle WebSocket ≤ 20 KB per connection (settled)", r.idle.ws, 20),
    [
      r.history.stored >= 10_000_000
        ? "history p99 ≤ 2 ms at 10 M messages"
        : `history p99 ≤ 2 ms (here at ${r.history.stored} messages; the target is at 10 M)`,
      `${r.history.last20_p99_ms} ms (last 20), ${r.history.page_p99_ms} ms (a page)` +
      (r.history.ping_p99_ms === undefined ? "" : `; a ping: ${r.history.ping_p99_ms} ms`),
      r.history.last20_p99_ms <= 2 && r.history.page_p99_ms <= 2,
    ],
  ];
}

/** Section 9: three cluster nodes against the single server of sections 1-3, same run. */
function clusterSection(r: Results, P: Params): string {
  const cl = r.cluster;
  if (!cl) return "Not run: nats-server is not installed here (`apt-get install -y nats-server`).";
  const one = r.burst.json;
  const open1 = r.open[200]?.json;
  return `Three \`chat serve --cluster\` nodes on one KV file and a real nats-server, on the same two
cores as everything else. Fan-out: ${P.burstN} receivers spread over the three nodes, the 4
senders on the first; the single server is section 1's (same run). Server CPU is the three nodes'
sum.

| run | single server | 3 nodes | 3 nodes / single |
| --- | --- | --- | --- |
| burst: deliveries/s | ${one.deliveries_per_s} | ${cl.burst.deliveries_per_s} | ${
    ratio(cl.burst.deliveries_per_s, one.deliveries_per_s)
  }× |
| burst: delivered | ${one.delivered}/${one.expected} | ${cl.burst.delivered}/${cl.burst.expected} | |
| burst: p99 ms | ${one.p99_ms} | ${cl.burst.p99_ms} | ${ratio(cl.burst.p99_ms, one.p99_ms)}× |
| burst: server CPU s | ${one.cpu_s} | ${cl.burst.cpu_s} | ${ratio(cl.burst.cpu_s, one.cpu_s)}× |
| open loop 200/s: p50 / p99 ms | ${
    open1 ? `${open1.p50_ms} / ${open1.p99_ms}` : "–"
  } | ${cl.open.p50_ms} / ${cl.open.p99_ms} | ${
    open1 ? `${ratio(cl.open.p99_ms, open1.p99_ms)}× (p99)` : ""
  } |
| durable ingest, many rooms: msg/s | ${r.ingest.acked_per_s} | ${cl.ingest_many_rooms.acked_per_s} | ${
    ratio(cl.ingest_many_rooms.acked_per_s, r.ingest.acked_per_s)
  }× |
| durable ingest, one room: msg/s | – | ${cl.ingest_one_room.acked_per_s} | |
| durable ingest, many rooms: acked | ${ackedOf(r.ingest)} | ${ackedOf(cl.ingest_many_rooms)} | |
| durable ingest, one room: acked | – | ${ackedOf(cl.ingest_one_room)} | |
| durable ingest, many rooms: server CPU s / generator CPU | ${r.ingest.cpu_s ?? "–"} / ${
    genCpu(r.ingest)
  } | ${cl.ingest_many_rooms.cpu_s ?? "–"} / ${genCpu(cl.ingest_many_rooms)} | |

Ingest writers are on all three nodes (8 writers, one room each, or all in one room). Retries
counted by the nodes (\`/metrics\`): one room, ${cl.ingest_one_room.conflicts} sequence
conflicts (a batch numbered again) and ${cl.ingest_one_room.locked} "database is locked"; many
rooms, ${cl.ingest_many_rooms.conflicts} and ${cl.ingest_many_rooms.locked}.`;
}

/** The whole of docs/benchmarks.md: the method, the targets, a section per workload. */
export function renderReport(input: ReportInput): string {
  const { results: r, params: P } = input;
  return [
    header(input),
    targetsSection(r),
    burstSection(r, P),
    openSection(r, P),
    ingestSection(r),
    idleSection(r, P),
    historySection(r),
    smallRoomsSection(r, P),
    slowSection(r, P),
    restSection(r, P),
    `## 9. Cluster\n\n${clusterSection(r, P)}`,
    `## What bounds the misses, and what was tried\n\n${input.bounds.trim()}`,
    `## Raw results\n\n\`\`\`json\n${JSON.stringify(r, null, 1)}\n\`\`\`\n`,
  ].join("\n\n");
}

/** How the run was made: machine, generator and what keeps it fair. */
function header(input: ReportInput): string {
  const { quick, machine } = input;
  return `# Benchmarks

Generated by \`deno task bench${quick ? " --quick" : ""}\` on ${machine.date}. ${
    quick
      ? "**Quick mode**: smaller loads than the issue's; run \`deno task bench\` for the full figures."
      : ""
  }

Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB; Deno ${machine.deno}; ngircd from Debian
(\`bench/ngircd.conf\`: no per-IP limits, no penalty time, user mode F). The chat server runs
with persistence on (a temp KV file) and no quotas or per-address limits (\`--rate-limit 0
--private-rate-limit 0 --max-connections-per-ip 0 --rooms-per-hour 0\`: the defaults, meant for a
public server, would refuse a generator's 257th connection from one address and its 21st message
per user an hour). Messages are 64 bytes. These machines are noisy: compare the ratios, which come
from one run.

**The load generator** is ${input.generator}, one process on the same two cores as the server,
the same for both servers. How it was checked, and what keeps it fair:

- Its own CPU is measured (\`getrusage\`) over each row and shown beside the server's; a row where
  it used more than 80% of a core is flagged ⚠, since a busy generator adds its own latency. The
  Deno generator (\`bench/load.ts\`) needed 112% of a core at 200 msg/s × 1,000 receivers and put
  ngircd's p99 at 404 ms; this one reads the same traffic with ~50% (chat, whose writes carry
  several messages) to ~95% (ngircd, one small write per message per receiver: a read each),
  and measures ngircd's p99 at 200/s in the 30s of milliseconds.
- Receivers connect 8 at a time and are retried (ngircd listens with a backlog of 10: 200
  connects at once overflowed it and left a fifth of its receivers out). The clock starts only
  once every receiver has joined; a row where any is missing, or where a message did not reach
  every receiver, is marked void (and so are the targets it feeds).
- Senders keep at most 200 messages unanswered on the chat, as a real client must (the
  WebSocket wire closes a client with more than 256 frames in flight); ngircd answers nothing,
  so its senders are paced by TCP alone. Every goodbye a server sends is counted ("byes").
- Server CPU is counted from the moment the clock starts, so logins are not part of a row.
- "Spread" is, per message, the time between its first and its last receiver.
- Where the client is the benchmark's own process (ingest, history, REST), its CPU over the row is
  the generator's, flagged the same way; an ingest row counts only acknowledged messages, and an
  idle row says how many of its connections were made.

Reproduce: \`apt-get install -y ngircd gcc\` then \`deno task bench\` (or \`deno task bench --quick\`).`;
}

/** The targets table: each target, its figure in this run, met or not. */
function targetsSection(r: Results): string {
  return `## Targets

| target | this run | met |
| --- | --- | --- |
${targets(r).map(([n, v, ok]) => `| ${n} | ${v} | ${ok ? "yes" : "**no**"} |`).join("\n")}`;
}

/** Section 1: bursts, median round by rate, every round listed. */
function burstSection(r: Results, P: Params): string {
  const bj = r.burst.json, bw = r.burst.ws, bi = r.burst.irc;
  const burstRow = (name: string, x: Row) =>
    `| ${name}${
      flag(x)
    } | ${x.delivered}/${x.expected} | ${x.deliveries_per_s} | ${x.per_cpu_s} | ${x.completion_ms} | ${x.p50_ms} | ${x.p99_ms} | ${x.spread_p99_ms} | ${x.cpu_s} | ${x.gen_cpu_pct}% | ${x.byes}${
      x.bye ? ` (${x.bye})` : ""
    } | ${Array.isArray(x.rounds) ? x.rounds.join(", ") : x.deliveries_per_s} |`;
  return `## 1. Burst fan-out

${P.burstN} receivers in one room/channel, 4 senders, ${P.burstM} messages back to back${
    P.burstRounds > 1
      ? `; each row ran in ${P.burstRounds} interleaved rounds and the median round by rate is shown (all
rounds' deliveries/s in the last column)`
      : ""
  }.

| server | delivered | deliveries/s | per server CPU-s | completion ms | p50 ms | p99 ms | spread p99 ms | server CPU s | generator CPU | byes | every round, deliveries/s (sorted) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${burstRow("chat, TCP JSON", bj)}
${burstRow("chat, WebSocket", bw)}
${burstRow("chat, IRC", r.burst.ircChat)}
${burstRow("ngircd", bi)}

By rate, TCP JSON / ngircd: **${ratio(bj.deliveries_per_s, bi.deliveries_per_s)}×**, WebSocket /
ngircd: **${ratio(bw.deliveries_per_s, bi.deliveries_per_s)}×**, and IRC against IRC (the chat's
IRC listener / ngircd, one protocol, one generator): **${
    ratio(r.burst.ircChat.deliveries_per_s, bi.deliveries_per_s)
  }×**. Per server CPU-second: **${ratio(bj.per_cpu_s, bi.per_cpu_s)}×** and **${
    ratio(bw.per_cpu_s, bi.per_cpu_s)
  }×**.`;
}

/** Section 2: the open loop, every wire against ngircd at each rate. */
function openSection(r: Results, P: Params): string {
  const rates = Object.keys(r.open).map(Number);
  // Results from before the rounds (one run per row) have no `rounds`; a quick run has one.
  const rounds = P.openRounds > 1 &&
    rates.some((rate) => Array.isArray(r.open[rate].json.rounds));
  const openRows = rates.flatMap((rate) => {
    const o = r.open[rate];
    const line = (name: string, x: Row) =>
      `| ${rate} | ${name}${
        flag(x)
      } | ${x.delivered}/${x.expected} | ${x.achieved_rate} | ${x.p50_ms} | ${x.p99_ms} | ${x.spread_p99_ms} | ${
        ratio(x.p50_ms, o.irc.p50_ms)
      }× / ${ratio(x.p99_ms, o.irc.p99_ms)}× | ${x.cpu_s} | ${x.gen_cpu_pct}% |${
        rounds ? ` ${Array.isArray(x.rounds) ? x.rounds.join(", ") : "–"} |` : ""
      }`;
    return [
      line("chat, TCP JSON", o.json),
      line("chat, WebSocket", o.ws),
      line("chat, IRC", o.ircChat),
      line("ngircd", o.irc),
    ];
  });
  return `## 2. Open loop

${P.openN} receivers, messages at a fixed total rate for ${P.openSecs} s. "vs ngircd" is p50 / p99
against ngircd's at the same rate.${
    rounds
      ? ` Every rate ran in ${P.openRounds} interleaved rounds (each server at each rate, then again);
a row is its median round by p99, and the last column has every round's p50 / p99 (sorted by p99).`
      : ""
  }

| rate/s | server | delivered | achieved/s | p50 ms | p99 ms | spread p99 ms | vs ngircd | server CPU s | generator CPU |${
    rounds ? " every round, p50 / p99 ms |" : ""
  }
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |${rounds ? " --- |" : ""}
${openRows.join("\n")}`;
}

/** Section 3: durable ingest, against one fsync per message. */
function ingestSection(r: Results): string {
  return `## 3. Durable ingest

8 senders pipelining ${r.ingest.messages} messages; each counts only once its \`ack\` says the
message is committed to KV: **${r.ingest.acked_per_s} messages/s**, ${ackedOf(r.ingest)} acked${
    lostAcks(r.ingest) ? " ⚠ acks missing" : ""
  }. Server CPU ${r.ingest.cpu_s ?? "–"} s; the senders (in the benchmark's own process) ${
    genCpu(r.ingest)
  } of a core. For comparison, one KV
write per message (one commit, one fsync each) does **${r.fsync.per_s} writes/s** on this disk:
group commit is what makes the difference.`;
}

/** Section 4: memory per idle connection, right after login and settled. */
function idleSection(r: Results, P: Params): string {
  const idleRow = (name: string, x: Row) =>
    `| ${name} | ${x.connections}/${
      x.expected ?? x.connections
    } | ${x.rss_before_mb} | ${x.rss_after_mb} | ${
      kb(x.bytes_per_connection)
    } | ${x.rss_settled_mb} | ${kb(x.settled_bytes_per_connection)} |`;
  return `## 4. Idle connections

Logged-in idle connections, each on a fresh server. RSS one second after the last login, and
${
    P.settleS
      ? `again after ${P.settleS} s of quiet ("settled")`
      : "(quick mode: not waited for settling)"
  }.

| server | connected | RSS before MB | RSS after MB | per connection | RSS settled MB | settled per connection |
| --- | --- | --- | --- | --- | --- | --- |
${idleRow("chat, TCP JSON", r.idle.json)}
${idleRow("chat, WebSocket", r.idle.ws)}
${idleRow("chat, IRC", r.idle.ircChat)}
${idleRow("ngircd", r.idle.irc)}`;
}

/** Section 5: history round trips. */
function historySection(r: Results): string {
  return `## 5. History

${r.history.stored} messages stored in one room. Round trips over TCP JSON from one client, one
request at a time, ${HISTORY_READS} of each kind after 100 untimed ones:

| request | p50 ms | p99 ms |
| --- | --- | --- |
| last 20 (\`history\`) | ${r.history.last20_p50_ms} | ${r.history.last20_p99_ms} |
| a page of 20 at a random point (\`before\`) | ${r.history.page_p50_ms} | ${r.history.page_p99_ms} |
| login with replay (hello to the history frame) | ${r.history.login_replay_p50_ms} | ${r.history.login_replay_p99_ms} |
| \`ping\` (no store work: this client's and machine's floor) | ${r.history.ping_p50_ms ?? "–"} | ${
    r.history.ping_p99_ms ?? "–"
  } |

Over the 2 × ${HISTORY_READS} timed reads the server used ${r.history.cpu_s ?? "–"} CPU-s and
the client (the benchmark's own process) ${genCpu(r.history)} of a core.

The last page of a chat comes from memory (the server's tail cache of each recently read chat's
newest 50 messages); a page at another point is one KV range scan by sequence number, so neither
grows with the history.`;
}

/** Section 6: many small rooms. */
function smallRoomsSection(r: Results, P: Params): string {
  return `## 6. Many small rooms

${P.smallConns} connections in ${
    P.smallConns / 10
  } rooms of 10, one message per second per room, ${P.smallSecs} s:
delivered ${r.small.delivered}/${r.small.expected}, p50 ${r.small.p50_ms} ms, **p99 ${r.small.p99_ms} ms**, server CPU
${r.small.cpu_s} s over the run, generator ${r.small.gen_cpu_pct}% of a core${flag(r.small)}.`;
}

/** Section 7: slow readers during the open loop. */
function slowSection(r: Results, P: Params): string {
  return `## 7. Slow readers

Open loop at 200/s, ${P.openN} receivers; in the second run 1% of them stop reading a fifth of the way in.

| run | delivered | p50 ms | p99 ms | server RSS MB after | slow ones dropped | generator CPU |
| --- | --- | --- | --- | --- | --- | --- |
| all reading${
    flag(r.slow.baseline)
  } | ${r.slow.baseline.delivered}/${r.slow.baseline.expected} | ${r.slow.baseline.p50_ms} | ${r.slow.baseline.p99_ms} | ${r.slow.baseline.rss_mb} | – | ${r.slow.baseline.gen_cpu_pct}% |
| 1% stop reading${
    flag(r.slow.slow)
  } | ${r.slow.slow.delivered}/${r.slow.slow.expected} | ${r.slow.slow.p50_ms} | ${r.slow.slow.p99_ms} | ${r.slow.slow.rss_mb} | ${r.slow.slow.slow_dropped} of ${r.slow.slow.slow} | ${r.slow.slow.gen_cpu_pct}% |

p99 moved by ${
    ratio(r.slow.slow.p99_ms, r.slow.baseline.p99_ms)
  }×. A reader is dropped once 4 MiB are queued for it (after the kernel's socket buffers
fill); at 200 × 64-byte messages per second that takes longer than this run, so memory stays
bounded by that queue limit rather than by dropping (see \`tests/tcp_transport_test.ts\` for the
drop itself).`;
}

/** Section 8: REST requests per second. */
function restSection(r: Results, P: Params): string {
  return `## 8. REST

${P.restClients} keep-alive clients (Deno's \`fetch\`, in the benchmark's process), each with its own
token, ${P.restPer} requests each back to back, against the server's own HTTP/1.1 listener with its
deadlines on (see [reliability.md](reliability.md)). The \`fetch\` clients share the two cores with
the server: their CPU is the last column.

| route | requests/s | server CPU s | generator CPU |
| --- | --- | --- | --- |
| \`GET /healthz\` | ${r.rest.healthz.per_s} | ${r.rest.healthz.cpu_s} | ${genCpu(r.rest.healthz)} |
| \`POST /send\` (commit and fan-out) | ${r.rest.send.per_s} | ${r.rest.send.cpu_s} | ${
    genCpu(r.rest.send)
  } |`;
}
