/**
 * The crash loop: the real server is killed with SIGKILL again and again while two writers (TCP
 * JSON and WebSocket) pipeline messages into one room and a reader's cursor moves; each time it is
 * restarted on the same data file. At the end the room is read back and checked: every
 * acknowledged message is there exactly once, each writer's messages are in the order sent,
 * sequence numbers have no gaps, the reader's unread count is consistent, and the next message
 * gets the next number. Used by tests/crash_test.ts (short) and `deno task stress`.
 * @module
 */

import { rng } from "./fuzz_inputs.ts";
import { startServer, withTimeout } from "../tests/_server_process.ts";

const enc = new TextEncoder();

/** What a crash loop found. `problems` is empty when every guarantee held. */
export interface CrashLoopResult {
  rounds: number;
  sent: number;
  acked: number;
  /** Stored in the end: the acked ones plus any committed whose ack the kill swallowed. */
  recovered: number;
  committedNotAcked: number;
  problems: string[];
  seconds: number;
}

/** The flags of every server in the loop: no quotas in the way, messages kept. */
const SERVE_ARGS = ["--rate-limit", "0", "--private-rate-limit", "0", "--message-ttl", "0"];
const serve = (data: string) => startServer({ data, args: SERVE_ARGS });

/** Reads newline-delimited frames from a TCP connection, calling `onFrame` for each. */
export async function readFrames(conn: Deno.Conn, onFrame: (f: Record<string, unknown>) => void) {
  const dec = new TextDecoder();
  let rest = "";
  try {
    for await (const chunk of conn.readable) {
      rest += dec.decode(chunk, { stream: true });
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        const line = rest.slice(0, i);
        rest = rest.slice(i + 1);
        if (line) onFrame(JSON.parse(line));
      }
    }
  } catch { /* the server died */ }
}

/**
 * What is wrong with a room read back after crashes, given what was acknowledged (text -> id):
 * a message stored twice, an acknowledged one missing, a writer's messages out of the order sent
 * (texts are WRITER ROUND.N: "t3.41"), a gap in sequence numbers. Empty when all is well.
 */
export function checkRecovery(
  acked: Map<string, string>,
  stored: Array<{ id: string; seq: number; message: string }>,
): string[] {
  const problems: string[] = [];
  const byText = new Map<string, string>();
  for (const m of stored) {
    if (byText.has(m.message)) problems.push(`stored twice: ${m.message}`);
    byText.set(m.message, m.id);
  }
  let lost = 0;
  for (const [text, id] of acked) {
    if (byText.get(text) !== id) {
      if (lost++ < 5) problems.push(`acknowledged ${text} (${id}) is missing`);
    }
  }
  if (lost > 5) problems.push(`... ${lost} acknowledged messages missing in all`);
  // Each writer's messages in the order it sent them: by round, then by number.
  for (const prefix of ["t", "w"]) {
    const order = stored.filter((m) => m.message.startsWith(prefix)).map((m) =>
      m.message.slice(1).split(".").map(Number) as [number, number]
    );
    for (let i = 1; i < order.length; i++) {
      const [a, b] = [order[i - 1]!, order[i]!];
      if (a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1])) {
        problems.push(`${prefix}${b.join(".")} stored after ${prefix}${a.join(".")}`);
        break;
      }
    }
  }
  for (let i = 1; i < stored.length; i++) {
    if (stored[i]!.seq !== stored[i - 1]!.seq + 1) {
      problems.push(`sequence gap: ${stored[i - 1]!.seq} then ${stored[i]!.seq}`);
      break;
    }
  }
  return problems;
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 2));

/**
 * Runs `rounds` kill-and-restart rounds of `perRound` messages per writer, each killed after a
 * random share (20% to 80%) of the TCP writer's messages were acknowledged, then checks the data.
 */
export async function crashLoop(
  options: { rounds: number; perRound: number; seed?: number; log?: (line: string) => void },
): Promise<CrashLoopResult> {
  const started = performance.now();
  const random = rng(options.seed ?? 1);
  const log = options.log ?? (() => {});
  const dir = await Deno.makeTempDir({ prefix: "chat_crash_loop_" });
  const data = `${dir}/chat.kv`;
  const acked = new Map<string, string>(); // message text -> id
  const problems: string[] = [];
  let sent = 0;
  try {
    for (let round = 0; round < options.rounds; round++) {
      const server = await serve(data);
      // The kill lands after a random share of the round's acks, with both writers mid-stream.
      const killAt = Math.floor(2 * options.perRound * (0.2 + 0.6 * random()));
      let acks = 0;
      let dead = false;
      const reader = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
      await reader.write(enc.encode('{"username":"Reader","password":"reader-password"}\n'));
      const readerDone = readFrames(reader, () => {});
      // Writer 1: TCP JSON, pipelined.
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.tcpPort });
      await tcp.write(enc.encode('{"username":"Tcp","password":"tcp-password"}\n'));
      let tcpAcks = 0;
      let killing: Promise<number> | null = null;
      let killed!: () => void;
      const killStarted = new Promise<void>((resolve) => (killed = resolve));
      const onAck = () => {
        if (++acks !== killAt) return;
        dead = true;
        killing ??= server.stop("SIGKILL");
        killed();
      };
      let tcpWelcome!: () => void;
      const tcpReady = new Promise<void>((resolve) => (tcpWelcome = resolve));
      const tcpDone = readFrames(tcp, (f) => {
        if (f.type === "welcome") tcpWelcome();
        if (f.type !== "ack" || typeof f.ref !== "string") return;
        acked.set(f.ref, String(f.id));
        tcpAcks++;
        onAck();
      });
      // Writer 2: WebSocket, a frame per message, at the same time.
      const ws = new WebSocket(`ws://127.0.0.1:${server.httpPort}/ws`);
      const wsOpen = new Promise<boolean>((resolve) => {
        ws.onopen = () => resolve(true);
        ws.onerror = () => resolve(false);
      });
      let wsAcks = 0;
      let wsWelcome!: () => void;
      const wsReady = new Promise<void>((resolve) => (wsWelcome = resolve));
      const wsDone = new Promise<void>((resolve) => (ws.onclose = () => resolve()));
      ws.onmessage = (e) => {
        for (const line of String(e.data).split("\n")) {
          if (!line) continue;
          const f = JSON.parse(line);
          if (f.type === "welcome") wsWelcome();
          if (f.type === "error" || f.type === "bye") log("ws " + line);
          if (f.type === "ack" && typeof f.ref === "string") {
            acked.set(f.ref, String(f.id));
            wsAcks++;
            onAck();
          }
        }
      };
      if (!(await withTimeout(wsOpen, 10_000, "the WebSocket to open"))) {
        throw new Error("the WebSocket did not open");
      }
      ws.send(JSON.stringify({ username: "Ws", password: "ws-password" }));
      // Both writers are logged in before either writes, so the kill finds both mid-stream.
      await withTimeout(Promise.all([tcpReady, wsReady]), 10_000, "the writers' welcome");
      const wsWriting = (async () => {
        try {
          for (let k = 0; k < options.perRound; k++) {
            if (ws.readyState !== WebSocket.OPEN) break;
            const text = `w${round}.${k}`;
            // The server takes 256 frames in flight per WebSocket: keep under it, as clients must.
            while (k - wsAcks >= 200 && ws.readyState === WebSocket.OPEN && !dead) await pause();
            ws.send(JSON.stringify({ type: "message", message: text, ref: text }));
            sent++;
          }
        } catch { /* the server died */ }
      })();
      for (let k = 0; k < options.perRound && !dead; k += 250) {
        // A window of 500 unacknowledged, so both writers move at the store's pace together.
        while (k - tcpAcks >= 500 && !dead) await pause();
        let chunk = "";
        const end = Math.min(k + 250, options.perRound);
        for (let j = k; j < end; j++) {
          const text = `t${round}.${j}`;
          chunk += JSON.stringify({ type: "message", message: text, ref: text }) + "\n";
        }
        try {
          await tcp.write(enc.encode(chunk));
          sent += end - k;
        } catch {
          break; // the server is gone
        }
      }
      await wsWriting;
      // Sending only fills socket buffers: the kill comes with the acks, mid-stream. Should they
      // stall, it comes anyway.
      await withTimeout(killStarted, 60_000, "the kill").catch(() => {});
      killing ??= server.stop("SIGKILL");
      await killing;
      await Promise.all([tcpDone, readerDone, wsDone]);
      for (const c of [tcp, reader]) {
        try {
          c.close();
        } catch { /* closed by the kill */ }
      }
      log(
        `round ${
          round + 1
        }: killed after ${tcpAcks} tcp acks and ${wsAcks} websocket acks; ${acked.size} acked in all`,
      );
    }

    // The last restart: read everything back.
    const server = await serve(data);
    try {
      const base = `http://127.0.0.1:${server.httpPort}`;
      const token = (await (await fetch(`${base}/connect`, {
        method: "POST",
        body: JSON.stringify({ login: "Reader", password: "reader-password" }),
      })).json()).token;
      const stored: Array<{ id: string; seq: number; message: string }> = [];
      let after = 0;
      while (true) {
        const page =
          await (await fetch(`${base}/api/v1/rooms/general/messages?after=${after}&limit=200`, {
            headers: { authorization: `Bearer ${token}` },
          })).json();
        stored.push(...page.messages);
        if (page.messages.length < 200) break;
        after = page.messages.at(-1).seq;
      }
      problems.push(...checkRecovery(acked, stored));
      const counts = await (await fetch(`${base}/api/v1/unread`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      const unread = counts.chats.find((c: { chat: string }) => c.chat === "general")?.unread ?? 0;
      if (unread < 0 || unread > stored.length) {
        problems.push(`unread ${unread} of ${stored.length} stored`);
      }
      const next = await (await fetch(`${base}/send`, {
        method: "POST",
        headers: { authorization: token },
        body: JSON.stringify({ message: "after the crashes" }),
      })).json();
      if (next.seq !== (stored.at(-1)?.seq ?? 0) + 1) {
        problems.push(`the next message got seq ${next.seq} after ${stored.at(-1)?.seq}`);
      }
      const code = await server.stop("SIGTERM");
      if (code !== 0) problems.push(`the last server exited with ${code}`);
      return {
        rounds: options.rounds,
        sent,
        acked: acked.size,
        recovered: stored.length,
        committedNotAcked: stored.length - acked.size,
        problems,
        seconds: Math.round((performance.now() - started) / 1000),
      };
    } catch (error) {
      await server.stop("SIGKILL");
      throw error;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
