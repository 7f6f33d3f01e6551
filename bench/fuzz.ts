/**
 * The fuzzer: generated bad input on every wire of a running server (TCP JSON, telnet text,
 * WebSocket, REST bodies, SSE query strings), with a canary pair of users who must keep chatting
 * and the server's memory watched. Used by tests/fuzz_test.ts (short) and `deno task stress`.
 * @module
 */

const enc = new TextEncoder();

/** A small deterministic PRNG, so a failing run can be replayed with its seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = [
  "message",
  "private",
  "join",
  "leave",
  "history",
  "hello",
  "auth",
  "register",
  "schedule",
  "report",
  "kick",
  "ban",
  "create_group",
  "invite",
  "join_link",
  "unread",
  "delete_message",
  "replies",
  "nope",
  "",
];

/** One generated bad (or odd) frame, as bytes, with no line ending. */
export function badFrame(r: () => number): Uint8Array<ArrayBuffer> {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const str = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join("");
  const kind = Math.floor(r() * 10);
  switch (kind) {
    case 0: // malformed JSON
      return enc.encode(
        pick([
          '{"type":"message","message":',
          "{",
          "}",
          '{"type":',
          "[",
          '{"a":1,,}',
          "nul",
          '{"type":"message" "message":"x"}',
        ]) + str(Math.floor(r() * 20)),
      );
    case 1: { // wrong types
      const v = pick<unknown>([5, null, true, [], {}, -1, 1e308, "x", [1, [2]], { a: { b: 1 } }]);
      return enc.encode(
        JSON.stringify({
          type: pick(TYPES),
          message: v,
          room: v,
          target_username: v,
          username: v,
          limit: v,
          before: v,
          id: v,
          token: v,
          at: v,
        }),
      );
    }
    case 2: // huge string, within the line limit
      return enc.encode(
        JSON.stringify({ type: "message", message: "x".repeat(Math.floor(r() * 60_000)) }),
      );
    case 3: { // deep nesting
      const d = Math.floor(r() * 5000);
      return enc.encode("[".repeat(d) + "]".repeat(d));
    }
    case 4: { // invalid UTF-8 and NUL bytes
      const b = new Uint8Array(Math.floor(r() * 64) + 1);
      for (let i = 0; i < b.length; i++) {
        b[i] = pick([0x00, 0xff, 0xc3, 0x80, 0xed, 0xa0, 0xf8, 0x7b, 0x22]);
      }
      return b;
    }
    case 5: { // binary noise
      const b = new Uint8Array(Math.floor(r() * 200) + 1);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      return b.map((x) => (x === 10 ? 11 : x));
    }
    case 6: // unknown types and odd fields
      return enc.encode(
        JSON.stringify({
          type: str(Math.floor(r() * 12)),
          [str(5)]: str(10),
          ref: str(Math.floor(r() * 80)),
        }),
      );
    case 7: // plausible frames with odd values
      return enc.encode(JSON.stringify({
        type: pick(TYPES),
        message: pick(["", " ", "\u0000", "\u001b[31m", "hi", "x".repeat(4001)]),
        room: pick(["", "#", "a b", "general", "x".repeat(40), "dm:a:b", "@bob"]),
        target_username: pick(["", "bob", "x".repeat(40), "a b", "nobody"]),
        username: pick(["", "fuzz", "x".repeat(40), "a b", "root"]),
        id: pick(["", "x", "01M81NE1DJ1XPD16F3EKQEJNFH"]),
        at: pick(["", "yesterday", "2099-01-01T00:00:00Z", "2026-11-22T00:00:00Z"]),
        limit: pick([0, 1, 201, -5, 2.5]),
      }));
    case 8: // text commands, for the text wire (JSON readers see bad JSON)
      return enc.encode(
        pick([
          "/join",
          "/private",
          "/session",
          "/admin ban",
          "/history x y z",
          "/schedule soon hi",
          "/reply",
          "/upload",
          "y",
          "n",
          "/quit-not",
        ]) + " " + str(Math.floor(r() * 30)),
      );
    default: // a half line: more bytes follow in the next frame
      return enc.encode('{"type":"mess');
  }
}

/** Results of a fuzz run. */
export interface FuzzResult {
  frames: { "tcp-json": number; "tcp-text": number; ws: number; rest: number; sse: number };
  errorsSeen: number;
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

/** Sends `perWire` bad frames on each wire; checks the canary between rounds and the server's memory. */
export async function fuzz(
  opts: { tcpPort: number; httpPort: number; perWire: number; seed?: number; serverPid?: number },
): Promise<FuzzResult> {
  const r = rng(opts.seed ?? 1);
  const base = `http://127.0.0.1:${opts.httpPort}`;
  const frames = { "tcp-json": 0, "tcp-text": 0, ws: 0, rest: 0, sse: 0 };
  let errorsSeen = 0;
  const rssStartMb = await rssMb(opts.serverPid);
  let rssPeakMb = rssStartMb;
  const rounds = 4;
  const per = Math.ceil(opts.perWire / rounds);
  const token = (await (await fetch(`${base}/connect`, {
    method: "POST",
    body: JSON.stringify({ login: "fuzzer", password: "fuzzer-password" }),
  })).json()).token as string;

  for (let round = 1; round <= rounds; round++) {
    // TCP, JSON mode and text mode: many connections, each a stream of bad lines.
    for (const mode of ["tcp-json", "tcp-text"] as const) {
      let sent = 0;
      while (sent < per) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: opts.tcpPort });
        const first = mode === "tcp-json" ? '{"username":"fuzzj"}\n' : "fuzzt\n";
        const lines: Uint8Array[] = [enc.encode(first)];
        const n = Math.min(500, per - sent);
        for (let i = 0; i < n; i++) lines.push(badFrame(r), enc.encode("\n"));
        sent += n;
        const total = lines.reduce((a, b) => a + b.length, 0);
        const all = new Uint8Array(total);
        let off = 0;
        for (const l of lines) {
          all.set(l, off);
          off += l.length;
        }
        const reading = (async () => {
          const buf = new Uint8Array(65536);
          try {
            while (true) {
              const k = await Promise.race([
                conn.read(buf),
                new Promise<null>((res) => setTimeout(() => res(null), 300)),
              ]);
              if (k === null) break;
              const text = new TextDecoder().decode(buf.subarray(0, k));
              errorsSeen += (text.match(/"type":"error"|^! /gm) ?? []).length;
            }
          } catch { /* closed by the server: allowed */ }
        })();
        try {
          await conn.write(all);
        } catch { /* the server closed it (e.g. a line over the limit): allowed */ }
        await reading;
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      frames[mode] += sent;
    }
    // WebSocket: bad messages, several per connection.
    let wsSent = 0;
    while (wsSent < per) {
      const ws = new WebSocket(`ws://127.0.0.1:${opts.httpPort}/ws`);
      await new Promise<void>((res, rej) => {
        ws.onopen = () => res();
        ws.onerror = () => rej(new Error("websocket failed to open"));
      });
      ws.onmessage = (e) => void (errorsSeen += String(e.data).includes('"type":"error"') ? 1 : 0);
      const closed = new Promise<void>((res) => (ws.onclose = () => res()));
      ws.send('{"username":"fuzzw"}');
      const n = Math.min(200, per - wsSent);
      for (let i = 0; i < n && ws.readyState === WebSocket.OPEN; i++) {
        const f = badFrame(r);
        if (r() < 0.2) ws.send(f); // binary
        else ws.send(new TextDecoder().decode(f));
      }
      wsSent += n;
      await new Promise((res) => setTimeout(res, 50));
      ws.close();
      await closed;
    }
    frames.ws += wsSent;
    // REST bodies on the routes that take one, and SSE query strings.
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
    for (let i = 0; i < per; i++) {
      const res = await fetch(base + routes[i % routes.length], {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: badFrame(r),
      });
      if (res.status >= 500) throw new Error(`REST answered ${res.status} to a bad body`);
      await res.body?.cancel();
    }
    frames.rest += per;
    for (let i = 0; i < per; i++) {
      const q = encodeURIComponent(new TextDecoder().decode(badFrame(r)).slice(0, 200));
      const res = await fetch(`${base}/api/v1/events?token=${i % 3 === 0 ? token : q}&since=${q}`);
      if (res.status >= 500) throw new Error(`SSE answered ${res.status} to a bad query`);
      await res.body?.cancel();
    }
    frames.sse += per;
    await canary(opts.tcpPort, round);
    rssPeakMb = Math.max(rssPeakMb, await rssMb(opts.serverPid));
  }
  return {
    frames,
    errorsSeen,
    canaryRounds: rounds,
    rssStartMb: +rssStartMb.toFixed(1),
    rssPeakMb: +rssPeakMb.toFixed(1),
  };
}
