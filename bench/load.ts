/**
 * The load generator, run as its own process by bench/run.ts: N receivers and S senders in one
 * room (or IRC channel), 64-byte messages stamped with the send time, over the chat's TCP JSON
 * wire, its WebSocket, or IRC (ngircd). Prints one JSON object with the results.
 *
 * Fair to both servers: receivers connect a few at a time and retry (ngircd listens with a
 * backlog of 10, and a burst of 200 connects overflowed it), the clock starts only once every
 * receiver is in the room (`joined` says how many were; the runner voids a row short of N),
 * senders that get acks (the chat) keep at most WINDOW frames unanswered as a real client must
 * (the WebSocket wire cuts a client off past 256), every goodbye is reported, and the generator's
 * own CPU is measured (`gen_cpu_pct`): a generator near a full core adds its own latency.
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";

const args = parseArgs({
  args: Deno.args,
  options: {
    proto: { type: "string", default: "json" }, // json | ws | irc
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    ports: { type: "string" }, // receivers spread over these (a cluster's nodes); senders on the first
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
const PORTS = args.ports ? String(args.ports).split(",").map(Number) : [Number(args.port)];
/** The port a client connects to: receivers round-robin over PORTS, senders the first. */
function portOf(name: string): number {
  const i = Number(name.match(/r(\d+)$/)?.[1] ?? 0);
  return name.startsWith(`${TAG}r`) ? PORTS[i % PORTS.length]! : PORTS[0]!;
}
const N = Number(args.receivers);
const S = Number(args.senders);
const M = Number(args.messages);
const RATE = Number(args.rate);
const ROOMS = Number(args.rooms);
const SLOW = Number(args.slow);
const TAG = String(args.tag);
const enc = new TextEncoder();
const MARK = enc.encode("bmk|");
const BYE = enc.encode(proto === "irc" ? "ERROR :" : '"type":"bye"');
const now = () => performance.timeOrigin + performance.now();

/** Receivers connecting at once: more overflowed ngircd's listen backlog of 10. */
const CONNECT_CONCURRENCY = 8;
/** Tries per receiver before it counts as not joined. */
const CONNECT_TRIES = 5;
/** Time for one connect + login + join before it is retried. */
const READY_TIMEOUT_MS = 15_000;
/** Frames a sender keeps unanswered (the chat acks each message; the WebSocket allows 256). */
const WINDOW = 200;

/** One client: a socket or a WebSocket, with a way to send a line and a count of what it got. */
interface Client {
  send(text: string): void;
  close(): void;
  received: number;
  latencies: number[];
  /** When the last counted message arrived. */
  lastAt: number;
  stopped: boolean;
  closed: boolean;
  /** Whether the login (and join, for a receiver) completed. */
  joined: boolean;
  ready: Promise<void>;
  /** Replies counted by a sender (acks and errors), to keep within WINDOW. */
  replies: number;
  /** Wakes a sender waiting for replies. */
  onReply: (() => void) | null;
  /** The server's goodbye, if it sent one (`bye` frame, IRC `ERROR`). */
  bye: string | null;
}

/** Arrival of each message index: first and last receiver (for the spread). */
const firstAt = new Float64Array(Number(args.messages)).fill(Infinity);
const lastAtOf = new Float64Array(Number(args.messages));

function roomOf(i: number): string {
  // A room of its own per run, so no earlier run's history is counted.
  return ROOMS === 1 ? `${TAG}room` : `${TAG}room${i % ROOMS}`;
}

/** Records one arrival of message `index` sent at `micros`. */
function arrived(c: Client, t: number, micros: number, index: number): void {
  c.received++;
  c.lastAt = t;
  c.latencies.push(t - micros / 1000);
  if (index < firstAt.length) {
    if (t < firstAt[index]!) firstAt[index] = t;
    if (t > lastAtOf[index]!) lastAtOf[index] = t;
  }
}

/** Scans a chunk of bytes for "bmk|<micros>|<index>|" and records each arrival. */
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
    let index = 0;
    for (j++; j < bytes.length && bytes[j]! >= 48 && bytes[j]! <= 57; j++) {
      index = index * 10 + (bytes[j]! - 48);
    }
    arrived(c, t, micros, index);
    i = j;
  }
}

/** The same scan over a WebSocket message's text (no encoding it to bytes first). */
function scanText(c: Client, text: string): void {
  const t = now();
  let i = 0;
  while ((i = text.indexOf("bmk|", i)) >= 0) {
    let j = i + 4;
    let micros = 0;
    for (let ch = text.charCodeAt(j); ch >= 48 && ch <= 57; ch = text.charCodeAt(++j)) {
      micros = micros * 10 + (ch - 48);
    }
    let index = 0;
    for (let ch = text.charCodeAt(++j); ch >= 48 && ch <= 57; ch = text.charCodeAt(++j)) {
      index = index * 10 + (ch - 48);
    }
    arrived(c, t, micros, index);
    i = j;
  }
}

/** Counts a sender's replies and notes a goodbye, from text it received. */
function replies(c: Client, text: string): void {
  let n = 0;
  for (let i = 0; (i = text.indexOf('"type":"ack"', i)) >= 0; i += 12) n++;
  for (let i = 0; (i = text.indexOf('"type":"error"', i)) >= 0; i += 14) n++;
  noteBye(c, text);
  if (n > 0) {
    c.replies += n;
    c.onReply?.();
  }
}

function noteBye(c: Client, text: string): void {
  if (c.bye !== null) return;
  const bye = text.match(/"type":"bye"[^\n]*?"(?:message|reason)":"([^"]*)"/) ??
    text.match(/^ERROR :(.*)$/m);
  if (bye) c.bye = bye[1]!;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

function newClient(send: (text: string) => void, close: () => void): {
  c: Client;
  ready: () => void;
} {
  let ready!: () => void;
  const c: Client = {
    send,
    close,
    received: 0,
    latencies: [],
    lastAt: 0,
    stopped: false,
    closed: false,
    joined: false,
    ready: new Promise((r) => (ready = r)),
    replies: 0,
    onReply: null,
    bye: null,
  };
  return { c, ready };
}

/** A receiver counts deliveries; a sender joins and counts replies; idle only logs in. */
type Role = "receiver" | "sender" | "idle";

async function tcpClient(name: string, room: string, role: Role): Promise<Client> {
  const counts = role === "receiver";
  const conn = await Deno.connect({ hostname: String(args.host), port: portOf(name) });
  const { c, ready } = newClient(
    (text) => void conn.write(enc.encode(text)).catch(() => {}),
    () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  );
  const dec = new TextDecoder();
  let greeting = "";
  (async () => {
    const buf = new Uint8Array(counts ? 64 * 1024 : 16 * 1024);
    try {
      while (true) {
        if (c.stopped) return; // a slow reader: stops reading, keeps the socket open
        const n = await conn.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        if (!c.joined) {
          greeting += dec.decode(chunk);
          const done = proto === "irc"
            ? greeting.includes(` 366 ${name} #${room} `) ||
              (role === "idle" && / 001 /.test(greeting))
            : /"type":"joined"/.test(greeting) ||
              (role === "idle" && /"type":"welcome"/.test(greeting));
          if (done) {
            c.joined = true;
            ready();
          }
          continue;
        }
        if (counts) {
          scan(c, chunk);
          // A goodbye is the last thing a server sends: look for one at the end of a read.
          const tail = chunk.subarray(Math.max(0, n - 512));
          if (indexOf(tail, BYE, 0) >= 0) noteBye(c, dec.decode(tail));
        } else replies(c, dec.decode(chunk));
      }
    } catch { /* closed */ }
    if (!c.joined) noteBye(c, greeting);
    c.closed = true;
    ready();
  })();
  if (proto === "irc") {
    c.send(`NICK ${name}\r\nUSER ${name} 0 * :${name}\r\n`);
    if (role !== "idle") c.send(`JOIN #${room}\r\n`);
  } else {
    c.send(JSON.stringify({ username: name }) + "\n");
    if (role !== "idle") c.send(JSON.stringify({ type: "join", room }) + "\n");
  }
  return c;
}

async function wsClient(name: string, room: string, role: Role): Promise<Client> {
  const counts = role === "receiver";
  const ws = new WebSocket(`ws://${args.host}:${portOf(name)}/ws`);
  const { c, ready } = newClient(
    (text) => ws.readyState === WebSocket.OPEN && ws.send(text.trimEnd()),
    () => ws.close(),
  );
  ws.onmessage = (e) => {
    const text = String(e.data);
    if (!c.joined) {
      if (
        text.includes('"type":"joined"') ||
        (role === "idle" && text.includes('"type":"welcome"'))
      ) {
        c.joined = true;
        ready();
      }
      noteBye(c, text);
      return;
    }
    if (counts) {
      if (!c.stopped) scanText(c, text);
      noteBye(c, text);
    } else replies(c, text);
  };
  ws.onclose = () => {
    c.closed = true;
    ready();
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("WebSocket did not open"));
  });
  c.send(JSON.stringify({ username: name }) + "\n");
  if (role !== "idle") c.send(JSON.stringify({ type: "join", room }) + "\n");
  return c;
}

/** One receiver or sender, connected, logged in and joined; retried with backoff. */
async function joined(name: string, room: string, role: Role): Promise<Client | null> {
  for (let attempt = 0; attempt < CONNECT_TRIES; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    let c: Client;
    try {
      c = await make(name, room, role);
    } catch {
      continue; // refused (a full backlog): try again
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      c.ready,
      new Promise((r) => (timer = setTimeout(r, READY_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (c.joined && !c.closed) return c;
    c.close();
  }
  return null;
}

/** Runs `task` for 0..count-1, at most `limit` at a time. */
async function bounded<T>(count: number, limit: number, task: (i: number) => Promise<T>) {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  }));
  return out;
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
const all = await bounded(
  N,
  CONNECT_CONCURRENCY,
  (i) => joined(`${TAG}r${i}`, roomOf(i), args.idle ? "idle" : "receiver"),
);
const receivers = all.filter((c): c is Client => c !== null);
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
for (let i = 0; i < S; i++) {
  // Senders are in their rooms too (IRC needs it to send; the chat needs it to post).
  const c = await joined(`${TAG}s${i}`, roomOf(i), "sender");
  if (c === null) throw new Error(`sender ${i} could not connect and join`);
  senders.push(c);
}
await new Promise((r) => setTimeout(r, 300));

/** Waits until a sender has fewer than `room` frames unanswered (only the chat answers). */
function windowOpen(c: Client, sent: number, room: number): Promise<void> | null {
  if (proto === "irc" || sent - c.replies <= WINDOW - room || c.closed) return null;
  return new Promise((r) => {
    c.onReply = () => {
      if (sent - c.replies <= WINDOW - room || c.closed) {
        c.onReply = null;
        r();
      }
    };
  });
}

// The runner counts the server's CPU from this line on (not the logins).
console.log("start");
const cpu0 = process.cpuUsage();
const slowCount = Math.floor(N * SLOW);
const t0 = now();
if (RATE === 0) {
  // Back to back: each sender sends its share in chunks of 50, keeping within the window, and
  // yields between chunks so the event loop keeps reading.
  const share = Math.ceil(M / S);
  await Promise.all(senders.map(async (c, s) => {
    const from = s * share;
    const to = Math.min(M, from + share);
    for (let i = from; i < to && !c.closed; i += 50) {
      let chunk = "";
      for (let k = i; k < Math.min(to, i + 50); k++) chunk += frameFor(roomOf(s), message(k));
      await windowOpen(c, i - from, 50);
      c.send(chunk);
      await new Promise((r) => setTimeout(r, 0));
    }
  }));
} else {
  const interval = 1000 / RATE;
  const sent = new Array(S).fill(0);
  for (let i = 0; i < M; i++) {
    if (slowCount > 0 && i === Math.floor(M / 5)) {
      for (let k = 0; k < slowCount; k++) receivers[k]!.stopped = true;
    }
    const s = i % S;
    await windowOpen(senders[s]!, sent[s]++, 1);
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
const cpu = process.cpuUsage(cpu0);
const genCpuS = (cpu.user + cpu.system) / 1e6;
// First to last receiver of each message (messages every receiver got, so a cut-off reader
// does not count as a late one).
const spreads: number[] = [];
for (let i = 0; i < M; i++) {
  if (firstAt[i] !== Infinity) spreads.push(lastAtOf[i]! - firstAt[i]!);
}
spreads.sort((a, b) => a - b);
const byes = [...receivers, ...senders].filter((c) => c.bye !== null);
console.log(JSON.stringify({
  proto,
  receivers: N,
  joined: receivers.length,
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
  spread_p50_ms: +percentile(spreads, 50).toFixed(2),
  spread_p99_ms: +percentile(spreads, 99).toFixed(2),
  gen_cpu_s: +genCpuS.toFixed(2),
  // Of one core, over the measured part (first send to last delivery).
  gen_cpu_pct: Math.round((genCpuS * 100_000) / Math.max(1, doneMs, sentMs)),
  byes: byes.length,
  bye: byes[0]?.bye ?? "",
  slow: slowCount,
  slow_dropped: receivers.slice(0, slowCount).filter((c) => c.closed).length,
}));
Deno.exit(0);
