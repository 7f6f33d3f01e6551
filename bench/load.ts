/**
 * The load generator, run as its own process by bench/run.ts: N receivers and S senders in one
 * room (or IRC channel), 64-byte messages stamped with the send time, over the chat's TCP JSON
 * wire, its WebSocket, or IRC (ngircd). Prints one JSON object with the results.
 * @module
 */

import { parseArgs } from "node:util";

const args = parseArgs({
  args: Deno.args,
  options: {
    proto: { type: "string", default: "json" }, // json | ws | irc
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    receivers: { type: "string", default: "100" },
    senders: { type: "string", default: "4" },
    messages: { type: "string", default: "1000" }, // total, across senders
    rate: { type: "string", default: "0" }, // total messages/s; 0 = back to back
    rooms: { type: "string", default: "1" }, // receivers spread over this many rooms
    slow: { type: "string", default: "0" }, // fraction of receivers that stop reading
    idle: { type: "boolean", default: false }, // just connect and log in, then report
    timeout: { type: "string", default: "120" },
    tag: { type: "string", default: "b" },
  },
}).values;

const proto = args.proto as "json" | "ws" | "irc";
const PORT = Number(args.port);
const N = Number(args.receivers);
const S = Number(args.senders);
const M = Number(args.messages);
const RATE = Number(args.rate);
const ROOMS = Number(args.rooms);
const SLOW = Number(args.slow);
const TAG = String(args.tag);
const enc = new TextEncoder();
const MARK = enc.encode("bmk|");
const now = () => performance.timeOrigin + performance.now();

/** One client: a socket or a WebSocket, with a way to send a line and a count of what it got. */
interface Client {
  send(text: string): void;
  received: number;
  latencies: number[];
  /** When the last counted message arrived. */
  lastAt: number;
  stopped: boolean;
  closed: boolean;
  ready: Promise<void>;
}

function roomOf(i: number): string {
  // A room of its own per run, so no earlier run's history is counted.
  return ROOMS === 1 ? `${TAG}room` : `${TAG}room${i % ROOMS}`;
}

/** Scans a chunk of bytes for "bmk|<micros>|" and records each latency. */
function scan(c: Client, bytes: Uint8Array): void {
  const t = now();
  let i = 0;
  while (true) {
    i = indexOf(bytes, MARK, i);
    if (i < 0) return;
    let j = i + 4;
    let micros = 0;
    while (j < bytes.length && bytes[j]! >= 48 && bytes[j]! <= 57) {
      micros = micros * 10 + (bytes[j++]! - 48);
    }
    c.received++;
    c.lastAt = t;
    c.latencies.push(t - micros / 1000);
    i = j;
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

async function tcpClient(name: string, room: string, counts: boolean): Promise<Client> {
  const conn = await Deno.connect({ hostname: String(args.host), port: PORT });
  let ready!: () => void;
  const c: Client = {
    send: (text) => void conn.write(enc.encode(text)).catch(() => {}),
    received: 0,
    latencies: [],
    lastAt: 0,
    stopped: false,
    closed: false,
    ready: new Promise((r) => (ready = r)),
  };
  const dec = new TextDecoder();
  let greeting = "";
  (async () => {
    const buf = new Uint8Array(64 * 1024);
    let loggedIn = false;
    try {
      while (true) {
        if (c.stopped) return; // a slow reader: stops reading, keeps the socket open
        const n = await conn.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        if (!loggedIn) {
          greeting += dec.decode(chunk);
          const done = proto === "irc"
            ? / 366 /.test(greeting) || (!counts && / 001 /.test(greeting))
            : /"type":"joined"/.test(greeting) || (!counts && /"type":"welcome"/.test(greeting));
          if (done) {
            loggedIn = true;
            ready();
          }
          continue;
        }
        if (counts) scan(c, chunk);
      }
    } catch { /* closed */ }
    c.closed = true;
    ready();
  })();
  if (proto === "irc") {
    c.send(`NICK ${name}\r\nUSER ${name} 0 * :${name}\r\n`);
    if (counts) c.send(`JOIN #${room}\r\n`);
    else c.send("");
  } else {
    c.send(JSON.stringify({ username: name }) + "\n");
    if (counts) c.send(JSON.stringify({ type: "join", room }) + "\n");
  }
  return c;
}

async function wsClient(name: string, room: string, counts: boolean): Promise<Client> {
  const ws = new WebSocket(`ws://${args.host}:${PORT}/ws`);
  ws.binaryType = "arraybuffer";
  let ready!: () => void;
  const c: Client = {
    send: (text) => ws.readyState === WebSocket.OPEN && ws.send(text.trimEnd()),
    received: 0,
    latencies: [],
    lastAt: 0,
    stopped: false,
    closed: false,
    ready: new Promise((r) => (ready = r)),
  };
  let loggedIn = false;
  ws.onmessage = (e) => {
    const text = String(e.data);
    if (!loggedIn) {
      if (text.includes('"type":"joined"') || (!counts && text.includes('"type":"welcome"'))) {
        loggedIn = true;
        ready();
      }
      return;
    }
    if (counts && !c.stopped) scan(c, enc.encode(text));
  };
  ws.onclose = () => {
    c.closed = true;
    ready();
  };
  await new Promise<void>((r) => (ws.onopen = () => r()));
  c.send(JSON.stringify({ username: name }) + "\n");
  if (counts) c.send(JSON.stringify({ type: "join", room }) + "\n");
  return c;
}

function message(i: number): string {
  // "bmk|<send time in µs>|" then padding: 64 bytes of text in all.
  const head = `bmk|${Math.round(now() * 1000)}|${i}|`;
  return head + "x".repeat(Math.max(0, 64 - head.length));
}

function frameFor(room: string, text: string): string {
  return proto === "irc"
    ? `PRIVMSG #${room} :${text}\r\n`
    : JSON.stringify({ type: "message", room, message: text }) + "\n";
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const make = proto === "ws" ? wsClient : tcpClient;
const started = now();
const receivers: Client[] = [];
for (let i = 0; i < N; i += 200) {
  const batch = await Promise.all(
    Array.from(
      { length: Math.min(200, N - i) },
      (_, k) => make(`${TAG}r${i + k}`, roomOf(i + k), !args.idle),
    ),
  );
  await Promise.all(batch.map((c) => c.ready));
  receivers.push(...batch);
}
const setupMs = now() - started;

if (args.idle) {
  console.log(
    JSON.stringify({
      proto,
      connections: receivers.filter((c) => !c.closed).length,
      setup_ms: Math.round(setupMs),
    }),
  );
  // Stay connected until told to stop (the runner measures the server meanwhile).
  await new Promise((r) => Deno.addSignalListener("SIGTERM", () => r(undefined)));
  Deno.exit(0);
}

const senders: Client[] = [];
for (let i = 0; i < S; i++) senders.push(await make(`${TAG}s${i}`, roomOf(i), false));
await Promise.all(senders.map((c) => c.ready));
// Senders must be in their rooms too (IRC needs it to send; the chat needs it to post).
for (let i = 0; i < S; i++) {
  senders[i]!.send(
    proto === "irc"
      ? `JOIN #${roomOf(i)}\r\n`
      : JSON.stringify({ type: "join", room: roomOf(i) }) + "\n",
  );
}
await new Promise((r) => setTimeout(r, 300));

const slowCount = Math.floor(N * SLOW);
const t0 = now();
if (RATE === 0) {
  // Back to back, spread over the senders, in chunks so the event loop keeps reading.
  for (let i = 0; i < M; i += S * 50) {
    for (let s = 0; s < S; s++) {
      let chunk = "";
      for (let k = 0; k < 50 && i + s * 50 + k < M; k++) {
        chunk += frameFor(roomOf(s), message(i + s * 50 + k));
      }
      if (chunk) senders[s]!.send(chunk);
    }
    await new Promise((r) => setTimeout(r, 0));
  }
} else {
  const interval = 1000 / RATE;
  for (let i = 0; i < M; i++) {
    if (slowCount > 0 && i === Math.floor(M / 5)) {
      for (let k = 0; k < slowCount; k++) receivers[k]!.stopped = true;
    }
    const s = i % S;
    senders[s]!.send(frameFor(roomOf(s), message(i)));
    const wait = t0 + (i + 1) * interval - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}
const sentMs = now() - t0;

// Each message reaches every receiver in its room (one room: all of them).
const perRoom = ROOMS === 1 ? N : N / ROOMS;
const active = receivers.slice(slowCount);
const expected = ROOMS === 1 ? M * active.length : Math.round((M * perRoom * active.length) / N);
const deadline = now() + Number(args.timeout) * 1000;
let lastTotal = -1;
let lastChange = now();
while (now() < deadline) {
  const total = active.reduce((n, c) => n + c.received, 0);
  if (total >= expected) break;
  if (total !== lastTotal) {
    lastTotal = total;
    lastChange = now();
  } else if (now() - lastChange > 5000) break; // nothing more is coming
  await new Promise((r) => setTimeout(r, 20));
}
// Completion is the last delivery, not the moment the wait above gave up.
const lastAt = Math.max(t0, ...active.map((c) => c.lastAt));
const doneMs = lastAt - t0;
const delivered = active.reduce((n, c) => n + c.received, 0);
const lat = active.flatMap((c) => c.latencies).sort((a, b) => a - b);
console.log(JSON.stringify({
  proto,
  receivers: N,
  senders: S,
  messages: M,
  rate: RATE,
  setup_ms: Math.round(setupMs),
  send_ms: Math.round(sentMs),
  completion_ms: Math.round(doneMs),
  expected,
  delivered,
  deliveries_per_s: Math.round(delivered / (doneMs / 1000)),
  achieved_rate: Math.round((M / sentMs) * 1000),
  p50_ms: +percentile(lat, 50).toFixed(2),
  p99_ms: +percentile(lat, 99).toFixed(2),
  slow: slowCount,
  slow_dropped: receivers.slice(0, slowCount).filter((c) => c.closed).length,
}));
Deno.exit(0);
