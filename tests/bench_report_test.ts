/**
 * The benchmark's report (bench/report.ts): the verdicts on issue 16's targets, void rows, quick
 * mode, and that docs/benchmarks.md says what its own raw results say.
 */

import assert from "node:assert/strict";
import { flag, renderReport, type Results, targets } from "../bench/report.ts";
import { paramsFor } from "../bench/workloads.ts";

/** A generator row: every receiver joined, a quiet generator, then the given figures. */
const row = (o: Record<string, number | string> = {}) => ({
  receivers: 1000,
  joined: 1000,
  delivered: 1000,
  expected: 1000,
  gen_cpu_pct: 40,
  byes: 0,
  ...o,
});

/** Results where every target is met by a small margin. */
function passing(): Results {
  const open = (rate: number) => ({
    json: row({ p50_ms: 11, p99_ms: 12, achieved_rate: rate }),
    ws: row({ p50_ms: 11, p99_ms: 12 }),
    ircChat: row({ p50_ms: 11, p99_ms: 12 }),
    irc: row({ p50_ms: 10, p99_ms: 10 }),
  });
  return {
    burst: {
      json: row({ deliveries_per_s: 1_200_000, per_cpu_s: 1_400_000 }),
      ws: row({ deliveries_per_s: 1_150_000, per_cpu_s: 1_100_000 }),
      ircChat: row({ deliveries_per_s: 900_000, per_cpu_s: 800_000 }),
      irc: row({ deliveries_per_s: 1_000_000, per_cpu_s: 1_000_000 }),
    },
    open: { 50: open(50), 200: open(200), 400: open(400) },
    slow: { baseline: row({ p99_ms: 20 }), slow: row({ p99_ms: 21, slow: 10, slow_dropped: 0 }) },
    ingest: {
      messages: 40_000,
      acked: 40_000,
      seconds: 0.7,
      acked_per_s: 55_000,
      cpu_s: 1.2,
      gen_cpu_pct: 9,
    },
    fsync: { writes: 500, per_s: 2000 },
    small: row({ p50_ms: 2, p99_ms: 9 }),
    rest: {
      healthz: { per_s: 9000, cpu_s: 1.1, gen_cpu_pct: 71 },
      send: { per_s: 3000, cpu_s: 2.2, gen_cpu_pct: 93 },
    },
    idle: {
      json: { connections: 5000, settled_bytes_per_connection: 11 * 1024 },
      ws: { connections: 5000, settled_bytes_per_connection: 19 * 1024 },
      ircChat: { connections: 5000, settled_bytes_per_connection: 15 * 1024 },
      irc: { connections: 5000, settled_bytes_per_connection: 4 * 1024 },
    },
    history: {
      stored: 1_000_000,
      last20_p99_ms: 1.5,
      page_p99_ms: 1.9,
      ping_p50_ms: 0.2,
      ping_p99_ms: 0.9,
      cpu_s: 0.8,
      gen_cpu_pct: 31,
    },
    cluster: null,
  };
}

/** Fails with both strings shown when `text` does not contain `part`. */
function includes(text: string, part: string): void {
  assert.ok(
    text.includes(part),
    `${JSON.stringify(part)} not in ${JSON.stringify(text.slice(0, 200))}`,
  );
}

const verdicts = (r: Results) => targets(r).map(([, , ok]) => ok);

/** docs/benchmarks.md for `results`, as a full run (or a quick one) on a made-up machine. */
function render(results: Results, options: { quick?: boolean; bounds?: string } = {}): string {
  const quick = options.quick ?? false;
  return renderReport({
    results,
    params: paramsFor(quick),
    quick,
    generator: "C (bench/loadgen.c)",
    bounds: options.bounds ?? "",
    machine: { cores: 2, cpu: "a CPU", memGiB: "24", deno: "2.9.6", date: "2026-11-29" },
  });
}

Deno.test("every target is met when every figure is within its bound", () => {
  assert.deepEqual(verdicts(passing()), Array(10).fill(true));
});

Deno.test("each target fails on its own figure just past its bound", () => {
  const cases: Array<[number, (r: Results) => void]> = [
    [0, (r) => r.burst.json.deliveries_per_s = 1_090_000],
    [1, (r) => r.burst.json.per_cpu_s = 1_290_000],
    [2, (r) => r.burst.ws.deliveries_per_s = 1_090_000],
    [3, (r) => r.open[200].json.p99_ms = 13.1],
    [4, (r) => r.open[400].json.p99_ms = 20.1],
    [5, (r) => r.open[50].json.p50_ms = 12.1],
    [6, (r) => r.ingest.acked_per_s = 49_999],
    [7, (r) => r.idle.json.settled_bytes_per_connection = 12 * 1024 + 1],
    [8, (r) => r.idle.ws.settled_bytes_per_connection = 20 * 1024 + 1],
    [9, (r) => r.history.page_p99_ms = 2.01],
  ];
  for (const [index, spoil] of cases) {
    const r = passing();
    spoil(r);
    const expected = Array(10).fill(true);
    expected[index] = false;
    assert.deepEqual(verdicts(r), expected, `target ${index}`);
  }
});

Deno.test("a row with receivers missing voids the targets it feeds, on either server", () => {
  const r = passing();
  r.burst.irc.joined = 775; // ngircd served fewer: its rate would flatter the chat
  const t = targets(r);
  assert.deepEqual(t.slice(0, 3).map(([, , ok]) => ok), [false, false, false]);
  includes(t[0]![1], "void");
  assert.deepEqual(verdicts(r).slice(3), Array(7).fill(true));
  includes(flag(r.burst.irc), "void: 775/1000 joined");

  const open = passing();
  open.open[400].json.joined = 999;
  assert.deepEqual(verdicts(open), [true, true, true, true, false, false, true, true, true, true]);
});

Deno.test("a row that lost deliveries voids the targets it feeds, however fast it was", () => {
  const r = passing();
  r.burst.json.delivered = 77_200; // 7 receivers in a room nobody posted to
  r.burst.json.expected = 80_000;
  const t = targets(r);
  assert.deepEqual(t.slice(0, 3).map(([, , ok]) => ok), [false, false, true]);
  includes(t[0]![1], "void: receivers missing or deliveries lost");
  includes(flag(r.burst.json), "void: 77200/80000 delivered");
  // A row that delivered everything is not void.
  assert.equal(flag(passing().burst.json), "");
});

Deno.test("an ingest run that lost acks voids its target, whatever its rate", () => {
  const r = passing();
  r.ingest.acked = 39_000;
  const t = targets(r);
  assert.equal(t[6]![2], false);
  includes(t[6]![1], "void: 39000/40000 acked");
  assert.deepEqual(verdicts(r).filter((ok) => !ok).length, 1);
});

Deno.test("an idle row with fewer connections than asked for voids its target", () => {
  const r = passing();
  r.idle.ws.expected = 5000;
  r.idle.ws.connections = 4100;
  const t = targets(r);
  assert.equal(t[8]![2], false);
  includes(t[8]![1], "void: 4100/5000 connected");
  assert.deepEqual(verdicts(r).filter((ok) => !ok).length, 1);
});

Deno.test("every row with a generator says what it cost: ingest, history, small rooms, slow readers, REST", () => {
  const text = render(passing());
  const section = (from: string, to: string) => text.slice(text.indexOf(from), text.indexOf(to));
  const ingest = section("## 3. Durable ingest", "## 4.");
  includes(ingest, "40000/40000 acked");
  includes(ingest, "Server CPU 1.2 s");
  includes(ingest, "9% of a core");
  const history = section("## 5. History", "## 6.");
  includes(history, "0.8 CPU-s and\nthe client (the benchmark's own process) 31%");
  // The floor beside the reads: a ping's round trip from the same client.
  includes(history, "floor) | 0.2 | 0.9 |");
  includes(text, "1.9 ms (a page); a ping: 0.9 ms");
  includes(section("## 6. Many small rooms", "## 7."), "generator 40% of a core");
  includes(section("## 7. Slow readers", "## 8."), "| 1000/1000 |");
  const rest = section("## 8. REST", "## 9.");
  includes(rest, "| 9000 | 1.1 | 71% |");
  // The send row's clients were busier than 80% of a core: flagged like a generator row.
  includes(rest, "| 3000 | 2.2 | 93% ⚠ > 80% of a core |");
});

Deno.test("a busy generator flags its row, and a quick run says 400/s was not run", () => {
  includes(flag(row({ gen_cpu_pct: 96 })), "generator > 80% of a core");
  assert.deepEqual(flag(row()), "");
  const r = passing();
  delete r.open[400];
  const t = targets(r);
  assert.deepEqual(t[4], [
    "open loop, TCP JSON p99 at 400/s ≤ 2× ngircd",
    "not run in quick mode",
    false,
  ]);
});

Deno.test("the report renders every section, and says when the cluster was not run", () => {
  const text = render(passing(), { bounds: "- **A bound.** What was tried." });
  for (
    const heading of [
      "## Targets",
      "## 1. Burst fan-out",
      "## 2. Open loop",
      "## 3. Durable ingest",
      "## 4. Idle connections",
      "## 5. History",
      "## 6. Many small rooms",
      "## 7. Slow readers",
      "## 8. REST",
      "## 9. Cluster",
      "## What bounds the misses, and what was tried",
      "## Raw results",
    ]
  ) includes(text, heading);
  includes(text, "Not run: nats-server is not installed");
  includes(text, "- **A bound.** What was tried.");
  assert.ok(!text.includes("**no**"), "every verdict is yes");
});

Deno.test("docs/benchmarks.md's targets table is what its own raw results give", async () => {
  const doc = await Deno.readTextFile(new URL("../docs/benchmarks.md", import.meta.url));
  const raw = doc.match(/## Raw results\n\n```json\n([\s\S]*?)\n```/);
  assert.ok(raw, "docs/benchmarks.md has its raw results");
  const results: Results = JSON.parse(raw[1]!);
  const table = doc.slice(doc.indexOf("## Targets"), doc.indexOf("## 1. Burst fan-out"));
  const cells = (line: string) => line.split("|").slice(1, -1).map((c) => c.trim());
  const rows = table.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| target"))
    .map(cells).filter((c) => !c.every((cell) => /^-+$/.test(cell)));
  assert.deepEqual(
    rows,
    targets(results).map(([name, figure, ok]) => [name, figure, ok ? "yes" : "**no**"]),
  );
});

Deno.test("open-loop rounds: the table shows every round beside the median, and older results render without them", () => {
  const section = (text: string) =>
    text.slice(text.indexOf("## 2. Open loop"), text.indexOf("## 3. Durable ingest"));
  const withRounds = passing();
  for (const rate of [50, 200, 400]) {
    for (const row of Object.values(withRounds.open[rate]) as Record<string, unknown>[]) {
      row.rounds = ["10 / 11", `${row.p50_ms} / ${row.p99_ms}`, "12 / 30"];
    }
  }
  const text = section(render(withRounds));
  includes(text, "3 interleaved rounds");
  includes(text, "| every round, p50 / p99 ms |");
  includes(text, "| 10 / 11, 11 / 12, 12 / 30 |");
  // Every table line has the same number of cells as its header.
  const lines = text.split("\n").filter((l) => l.startsWith("|"));
  const width = lines[0]!.split("|").length;
  assert.ok(lines.every((l) => l.split("|").length === width), "ragged open-loop table");

  const without = section(render(passing()));
  assert.ok(!without.includes("every round"), "no rounds column for results without rounds");
  assert.ok(!without.includes("interleaved"), "no rounds sentence for results without rounds");

  // A quick run has one round per rate: nothing to show beside it.
  const quick = render(withRounds, { quick: true });
  assert.ok(!section(quick).includes("every round"), "no rounds column in a quick run");
});
