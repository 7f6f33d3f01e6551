/**
 * The scheduled-message crash loop: messages are scheduled to fall due over a second and a half,
 * and while they do the server is stopped, by SIGKILL or SIGTERM at random, then restarted on
 * the same data file. At the end every scheduled message must be in the room exactly once.
 * Used by tests/crash_test.ts (short) and `deno task stress`.
 * @module
 */

import { MAX_SCHEDULED_PER_USER } from "../server/core/scheduled.ts";
import { SCHEDULE_CLAIM_MS } from "../server/store/store.ts";
import { startServer, withTimeout } from "../tests/_server_process.ts";
import { readFrames } from "./crash.ts";
import { rng } from "./fuzz_inputs.ts";

const enc = new TextEncoder();
/** Schedules per planner: the most one user may have pending. */
const PER_PLANNER = MAX_SCHEDULED_PER_USER;
const SERVE_ARGS = ["--rate-limit", "0", "--private-rate-limit", "0", "--message-ttl", "0"];

/** What the loop found; `problems` is empty when every due message was stored exactly once. */
export interface ScheduledCrashResult {
  rounds: number;
  scheduled: number;
  stored: number;
  kills: number;
  terms: number;
  problems: string[];
}

/** A JSON-lines client that logs in and collects frames. */
async function client(port: number, name: string) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frames: Array<Record<string, unknown>> = [];
  const reading = readFrames(conn, (f) => frames.push(f));
  const send = (f: unknown) => conn.write(enc.encode(JSON.stringify(f) + "\n"));
  const until = async (test: () => boolean, what: string) => {
    try {
      await withTimeout(
        (async () => {
          while (!test()) await new Promise((r) => setTimeout(r, 10));
        })(),
        20_000,
        what,
      );
    } catch (error) {
      // Say what the server answered instead (an error frame names the cause).
      const errors = frames.filter((f) => f.type === "error").slice(-3);
      throw new Error(`${(error as Error).message}; errors seen: ${JSON.stringify(errors)}`);
    }
  };
  await send({ type: "hello", username: name });
  await until(() => frames.some((f) => f.type === "welcome"), "the welcome");
  return {
    frames,
    send,
    until,
    async close() {
      try {
        conn.close();
      } catch { /* closed */ }
      await reading;
    },
  };
}

/** Runs the loop on a fresh data file. */
export async function scheduledCrashLoop(
  options: { rounds: number; perRound: number; seed: number },
): Promise<ScheduledCrashResult> {
  const random = rng(options.seed);
  const dir = await Deno.makeTempDir({ prefix: "chat_sched_crash_" });
  const data = `${dir}/chat.kv`;
  const texts: string[] = [];
  let kills = 0;
  let terms = 0;
  try {
    for (let round = 0; round < options.rounds; round++) {
      const server = await startServer({ data, args: SERVE_ARGS });
      // A user may have MAX_SCHEDULED_PER_USER pending: a planner per hundred, new names
      // each round (a killed round leaves its planners' messages pending until sent).
      const planners = await Promise.all(
        Array.from(
          { length: Math.ceil(options.perRound / PER_PLANNER) },
          (_, k) => client(server.tcpPort, `Planner${round}x${k}`),
        ),
      );
      // Due from a second after now (time for every schedule to be acknowledged), over 1.5 s.
      const start = Date.now() + 1000;
      await Promise.all(planners.map(async (planner, k) => {
        const first = k * PER_PLANNER;
        const last = Math.min(options.perRound, first + PER_PLANNER);
        for (let i = first; i < last; i++) {
          const text = `s${round}.${i}`;
          texts.push(text);
          const at = new Date(start + Math.floor((i * 1500) / options.perRound)).toISOString();
          await planner.send({ type: "schedule", message: text, at, ref: text });
        }
        await planner.until(
          () => planner.frames.filter((f) => f.type === "scheduled").length >= last - first,
          "every schedule acknowledged",
        );
        await planner.close();
      }));
      // Stop it while the messages fall due.
      await new Promise((r) => setTimeout(r, Math.max(0, start + random() * 1500 - Date.now())));
      const kill = random() < 0.5;
      if (kill) kills++;
      else terms++;
      await server.stop(kill ? "SIGKILL" : "SIGTERM");
    }
    // The last start: what a killed process had claimed goes stale and is sent.
    const server = await startServer({ data, args: SERVE_ARGS });
    try {
      await new Promise((r) => setTimeout(r, SCHEDULE_CLAIM_MS + 3000));
      const checker = await client(server.tcpPort, "Checker");
      await checker.send({ type: "history", chat: "general", limit: 200, ref: "h" });
      await checker.until(() => checker.frames.some((f) => f.ref === "h"), "the history");
      const stored: string[] = [];
      let page = checker.frames.find((f) => f.ref === "h") as {
        messages: Array<{ message: string; seq: number }>;
        has_more: boolean;
      };
      let n = 0;
      while (true) {
        stored.push(...page.messages.map((m) => m.message));
        if (!page.has_more || page.messages.length === 0) break;
        const ref = `h${++n}`;
        await checker.send({
          type: "history",
          chat: "general",
          limit: 200,
          before: page.messages[0]!.seq,
          ref,
        });
        await checker.until(() => checker.frames.some((f) => f.ref === ref), "a history page");
        page = checker.frames.find((f) => f.ref === ref) as typeof page;
      }
      await checker.close();
      const counts = new Map<string, number>();
      for (const t of stored) counts.set(t, (counts.get(t) ?? 0) + 1);
      const problems: string[] = [];
      const missing = texts.filter((t) => !counts.has(t));
      const twice = [...counts].filter(([t, c]) => texts.includes(t) && c > 1).map(([t]) => t);
      if (missing.length > 0) problems.push(`never sent: ${missing.slice(0, 10).join(", ")}`);
      if (twice.length > 0) problems.push(`sent twice: ${twice.slice(0, 10).join(", ")}`);
      return {
        rounds: options.rounds,
        scheduled: texts.length,
        stored: texts.filter((t) => counts.has(t)).length,
        kills,
        terms,
        problems,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
