/**
 * The fuzzer: generated bad input (`bench/fuzz_inputs.ts`) on every wire of a running server (TCP
 * JSON, telnet text, JIM, IRC, WebSocket, REST bodies, SSE query strings, raw HTTP requests, raw
 * WebSocket frames), with a canary pair of users who must keep chatting and the server's memory
 * watched. Used by tests/fuzz_test.ts (short) and `deno task stress`.
 * @module
 */

import { concatBytes } from "../server/core/peer.ts";
import {
  badFrame,
  badHttpRequest,
  badIrcLine,
  badJimObject,
  badWebSocketBytes,
  rng,
} from "./fuzz_inputs.ts";

const enc = new TextEncoder();

/**
 * Sends bytes on a new connection and reads what comes back (as Latin-1 text) until the server
 * closes it or is quiet for `quietMs`. A server that hangs up or resets is allowed.
 */
async function sendAndRead(port: number, bytes: Uint8Array, quietMs: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let text = "";
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      while (true) {
        const k = await Promise.race([
          conn.read(buf),
          new Promise<null>((res) => setTimeout(() => res(null), quietMs)),
        ]);
        if (k === null) break;
        text += new TextDecoder("latin1").decode(buf.subarray(0, k));
      }
    } catch { /* reset by the server: allowed */ }
  })();
  try {
    await conn.write(bytes);
  } catch { /* the server hung up first: allowed */ }
  await reading;
  try {
    conn.close();
  } catch { /* already closed */ }
  return text;
}

/** The statuses of the HTTP responses to raw bytes sent on a new connection. */
async function rawExchange(port: number, bytes: Uint8Array): Promise<number[]> {
  const text = await sendAndRead(port, bytes, 200);
  return [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
}

/** Runs `work` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

const WS_HANDSHAKE = enc.encode(
  "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
);

type Wire =
  | "tcp-json"
  | "tcp-text"
  | "jim"
  | "irc"
  | "ws"
  | "rest"
  | "sse"
  | "http-raw"
  | "ws-raw";

/** Results of a fuzz run. */
export interface FuzzResult {
  frames: Record<Wire, number>;
  /** Statuses the raw HTTP requests got, by status. */
  httpStatuses: Record<number, number>;
  errorsSeen: number;
  /** Error answers by wire (REST, SSE and raw HTTP count statuses instead). */
  errorsByWire: Partial<Record<Wire, number>>;
  canaryRounds: number;
  rssStartMb: number;
  rssPeakMb: number;
}

async function rssMb(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]) / 1024;
}

/** A pair of JSON users who must always be able to talk; throws if they cannot. */
async function canary(port: number, round: number): Promise<void> {
  const open = async (name: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(enc.encode(JSON.stringify({ username: name }) + "\n"));
    return conn;
  };
  const a = await open("canaryA");
  const b = await open("canaryB");
  const text = `canary ${round}`;
  const dec = new TextDecoder();
  let got = "";
  const deadline = Date.now() + 5000;
  await new Promise((r) => setTimeout(r, 50));
  await a.write(
    enc.encode(
      JSON.stringify({ type: "private", target_username: "canaryB", message: text }) + "\n",
    ),
  );
  const buf = new Uint8Array(65536);
  while (!got.includes(text) && Date.now() < deadline) {
    const n = await Promise.race([
      b.read(buf),
      new Promise<null>((r) => setTimeout(() => r(null), 500)),
    ]);
    if (n) got += dec.decode(buf.subarray(0, n));
  }
  a.close();
  b.close();
  if (!got.includes(text)) throw new Error(`the canary could not talk after fuzz round ${round}`);
}

/** What a fuzz run counts as it goes. */
class Tally {
  readonly frames: Record<Wire, number> = {
    "tcp-json": 0,
    "tcp-text": 0,
    jim: 0,
    irc: 0,
    ws: 0,
    rest: 0,
    sse: 0,
    "http-raw": 0,
    "ws-raw": 0,
  };
  readonly httpStatuses: Record<number, number> = {};
  readonly errorsByWire: Partial<Record<Wire, number>> = {};
  errorsSeen = 0;

  answered(wire: Wire, errors: number): void {
    this.errorsSeen += errors;
    this.errorsByWire[wire] = (this.errorsByWire[wire] ?? 0) + errors;
  }
}

/**
 * A line wire: `count` bad items on new connections, `perConnection` each after `greeting`; the
 * answers matching `errors` are counted. The server may close a connection early (a line over
 * the limit, say): allowed.
 */
async function lineStreams(
  tally: Tally,
  wire: Wire,
  port: number,
  wave: {
    count: number;
    perConnection: number;
    greeting: string | (() => string);
    errors: RegExp;
    /** Connections at once (JIM answers are paced, 20 ms apart: one at a time would crawl). */
    width?: number;
  },
  item: () => Uint8Array,
): Promise<void> {
  // The inputs are drawn in order, so a seed replays the same streams whatever the width.
  const streams: Array<{ bytes: Uint8Array; n: number }> = [];
  for (let sent = 0; sent < wave.count;) {
    const n = Math.min(wave.perConnection, wave.count - sent);
    const greeting = typeof wave.greeting === "string" ? wave.greeting : wave.greeting();
    const parts: Uint8Array[] = [enc.encode(greeting)];
    for (let i = 0; i < n; i++) parts.push(item());
    sent += n;
    streams.push({ bytes: concatBytes(parts), n });
  }
  await inParallel(streams, wave.width ?? 1, async ({ bytes, n }) => {
    const text = await sendAndRead(port, bytes, 300);
    tally.answered(wire, (text.match(wave.errors) ?? []).length);
    tally.frames[wire] += n;
  });
}

/** WebSocket: bad messages (text, or binary one time in five), 200 per connection. */
async function webSocketMessages(tally: Tally, port: number, count: number, r: () => number) {
  for (let sent = 0; sent < count;) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    await new Promise<void>((res, rej) => {
      ws.onopen = () => res();
      ws.onerror = () => rej(new Error("websocket failed to open"));
    });
    ws.onmessage = (e) => tally.answered("ws", String(e.data).includes('"type":"error"') ? 1 : 0);
    const closed = new Promise<void>((res) => (ws.onclose = () => res()));
    ws.send('{"username":"fuzzw"}');
    const n = Math.min(200, count - sent);
    for (let i = 0; i < n && ws.readyState === WebSocket.OPEN; i++) {
      const f = badFrame(r);
      if (r() < 0.2) ws.send(f);
      else ws.send(new TextDecoder().decode(f));
    }
    sent += n;
    await new Promise((res) => setTimeout(res, 50));
    ws.close();
    await closed;
  }
  tally.frames.ws += count;
}

/** REST bodies on the routes that take one, and SSE query strings: never a 5xx. */
async function restAndSse(
  tally: Tally,
  base: string,
  token: string,
  count: number,
  r: () => number,
) {
  const routes = [
    "/send",
    "/send_to",
    "/connect",
    "/api/v1/session",
    "/api/v1/rooms",
    "/api/v1/scheduled",
    "/api/v1/groups",
    "/api/v1/rooms/general/messages",
  ];
  for (let i = 0; i < count; i++) {
    const res = await fetch(base + routes[i % routes.length], {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: badFrame(r),
    });
    if (res.status >= 500) throw new Error(`REST answered ${res.status} to a bad body`);
    await res.body?.cancel();
  }
  tally.frames.rest += count;
  for (let i = 0; i < count; i++) {
    const q = encodeURIComponent(new TextDecoder().decode(badFrame(r)).slice(0, 200));
    const res = await fetch(`${base}/api/v1/events?token=${i % 3 === 0 ? token : q}&since=${q}`);
    if (res.status >= 500) throw new Error(`SSE answered ${res.status} to a bad query`);
    await res.body?.cancel();
  }
  tally.frames.sse += count;
}

/**
 * Raw HTTP: malformed requests, one connection each, 16 at a time; a refusal is a 4xx (or 501/505
 * for what HTTP/1.1 names so), never a 500. Then raw WebSocket frames after a good handshake, ten
 * frames' worth per connection.
 */
async function rawBytes(tally: Tally, port: number, count: number, r: () => number) {
  const requests = Array.from({ length: count }, () => badHttpRequest(r));
  await inParallel(requests, 16, async (bytes) => {
    for (const status of await rawExchange(port, bytes)) {
      tally.httpStatuses[status] = (tally.httpStatuses[status] ?? 0) + 1;
      if (status === 500 || (status > 501 && status !== 505)) {
        throw new Error(`raw HTTP answered ${status} to ${new TextDecoder().decode(bytes)}`);
      }
    }
  });
  tally.frames["http-raw"] += count;
  const sockets = Array.from({ length: Math.ceil(count / 10) }, () => {
    const parts: Uint8Array[] = [WS_HANDSHAKE];
    for (let k = 0; k < 10; k++) parts.push(badWebSocketBytes(r));
    return concatBytes(parts);
  });
  await inParallel(sockets, 16, (bytes) => rawExchange(port, bytes));
  tally.frames["ws-raw"] += count;
}

const NL = enc.encode("\n");
const CRLF = enc.encode("\r\n");

/** Sends `perWire` bad frames on each wire; checks the canary between rounds and the server's memory. */
export async function fuzz(
  opts: {
    tcpPort: number;
    httpPort: number;
    ircPort: number;
    perWire: number;
    seed?: number;
    serverPid?: number;
  },
): Promise<FuzzResult> {
  const r = rng(opts.seed ?? 1);
  const base = `http://127.0.0.1:${opts.httpPort}`;
  const tally = new Tally();
  const rssStartMb = await rssMb(opts.serverPid);
  let rssPeakMb = rssStartMb;
  const rounds = 4;
  const count = Math.ceil(opts.perWire / rounds);
  const token = (await (await fetch(`${base}/connect`, {
    method: "POST",
    body: JSON.stringify({ login: "fuzzer", password: "fuzzer-password" }),
  })).json()).token as string;
  const badLine = () => concatBytes([badFrame(r), NL]);
  const jsonErrors = /"type":"error"|^! /gm;

  for (let round = 1; round <= rounds; round++) {
    // TCP, JSON mode and text mode: many connections, each a stream of bad lines.
    const tcp = { count, perConnection: 500, errors: jsonErrors };
    await lineStreams(tally, "tcp-json", opts.tcpPort, {
      ...tcp,
      greeting: '{"username":"fuzzj"}\n',
    }, badLine);
    await lineStreams(tally, "tcp-text", opts.tcpPort, { ...tcp, greeting: "fuzzt\n" }, badLine);
    let jimConn = 0;
    // JIM on the TCP port: a presence first, then objects back to back (a newline or not), 50
    // per connection, 8 connections at once (answers are paced one per write, 20 ms apart).
    await lineStreams(tally, "jim", opts.tcpPort, {
      count,
      perConnection: 50,
      // A guest name per connection: a guest name is one connection's at a time.
      greeting: () =>
        JSON.stringify({ action: "presence", user: { account_name: `fuzzjim${++jimConn}` } }),
      errors: /"response":\s*4\d\d/g,
      width: 8,
    }, () => enc.encode(badJimObject(r) + (r() < 0.5 ? "\n" : "")));
    // IRC: registered, then bad lines (CRLF or a bare LF); errors are 4xx numerics. A nick per
    // connection: a guest nick still held by the connection before would be refused (433).
    let ircConn = 0;
    await lineStreams(tally, "irc", opts.ircPort, {
      count,
      perConnection: 500,
      greeting: () => `NICK fuzzi${round}x${++ircConn}\r\nUSER f 0 * :f\r\n`,
      errors: /^:\S+ 4\d\d /gm,
    }, () => concatBytes([badIrcLine(r), r() < 0.8 ? CRLF : NL]));
    await webSocketMessages(tally, opts.httpPort, count, r);
    await restAndSse(tally, base, token, count, r);
    await rawBytes(tally, opts.httpPort, count, r);
    await canary(opts.tcpPort, round);
    rssPeakMb = Math.max(rssPeakMb, await rssMb(opts.serverPid));
  }
  return {
    frames: tally.frames,
    httpStatuses: tally.httpStatuses,
    errorsSeen: tally.errorsSeen,
    errorsByWire: tally.errorsByWire,
    canaryRounds: rounds,
    rssStartMb: +rssStartMb.toFixed(1),
    rssPeakMb: +rssPeakMb.toFixed(1),
  };
}
