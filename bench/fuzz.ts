/**
 * The fuzzer: generated bad input on every wire of a running server (TCP JSON, telnet text,
 * WebSocket, REST bodies, SSE query strings, raw HTTP requests, raw WebSocket frames), with a
 * canary pair of users who must keep chatting and the server's memory watched. Used by tests/fuzz_test.ts (short) and `deno task stress`.
 * @module
 */

import { concatBytes } from "../server/core/peer.ts";

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

const IRC_COMMANDS = [
  "PRIVMSG",
  "NOTICE",
  "JOIN",
  "PART",
  "NAMES",
  "WHO",
  "WHOIS",
  "LIST",
  "CHATHISTORY",
  "TOPIC",
  "MODE",
  "AWAY",
  "KICK",
  "KILL",
  "CAP",
  "AUTHENTICATE",
  "PASS",
  "NICK",
  "USER",
  "PING",
  "PONG",
  "REPORT",
  "ACCEPT",
  "REJECT",
  "OPER",
  "",
];

/**
 * One generated bad (or odd) IRC line, without CRLF: known commands with missing, empty, long or
 * odd parameters, tags, prefixes, CTCP, lone colons, NULs and invalid UTF-8, lines near the limit.
 */
export function badIrcLine(r: () => number): Uint8Array {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const str = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join("");
  const param = () =>
    pick([
      "",
      ":",
      "#",
      "#general",
      "#" + "x".repeat(60),
      "#a,#b,,#",
      "general",
      "nobody",
      "canaryA",
      "*",
      "0",
      "-1",
      "99999999999999999999",
      "\x01ACTION\x01",
      "\x01VERSION",
      "+o",
      "-b",
      "latest",
      "before",
      "timestamp=yesterday",
      "msgid=x",
      str(Math.floor(r() * 20)),
    ]);
  switch (Math.floor(r() * 8)) {
    case 0: { // a known command with 0-6 odd parameters, the last one trailing or not
      const params = Array.from({ length: Math.floor(r() * 7) }, param);
      const trailing = r() < 0.5 ? " :" + str(Math.floor(r() * 40)) : "";
      return enc.encode([pick(IRC_COMMANDS), ...params].join(" ") + trailing);
    }
    case 1: // tags and prefixes, well formed or not
      return enc.encode(
        pick(["@", "@a=b;c", "@" + "k=v;".repeat(400), ":", ":nick!user@host", "@x :y"]) + " " +
          pick(IRC_COMMANDS) + " " + param() + " :" + str(10),
      );
    case 2: // a message near or over the line limit
      return enc.encode(`PRIVMSG #general :${"x".repeat(Math.floor(r() * 9000))}`);
    case 3: { // invalid UTF-8 and NULs in a message
      const b = new Uint8Array(Math.floor(r() * 64) + 1);
      for (let i = 0; i < b.length; i++) b[i] = pick([0x00, 0xff, 0xc3, 0x80, 0xed, 0xa0, 0x0d]);
      return concatBytes([enc.encode("PRIVMSG #general :"), b]);
    }
    case 4: { // binary noise (no line feeds)
      const b = new Uint8Array(Math.floor(r() * 200) + 1);
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
      return b.map((x) => (x === 10 ? 11 : x));
    }
    case 5: // CTCP and odd targets
      return enc.encode(
        `${pick(["PRIVMSG", "NOTICE"])} ${param()} :\x01${
          pick(["ACTION", "PING", "DCC SEND x 0 0", ""])
        } ${str(8)}`,
      );
    case 6: // registration again, with odd names and capabilities
      return enc.encode(
        pick([
          "NICK " + pick(["", "a b", "x".repeat(40), "#chan", "-", "canaryA", "fuzzi"]),
          "USER " + pick(["", "a", "a 0 *", "a 0 * :"]),
          "CAP " + pick(["", "LS 302", "REQ :", "REQ :sasl nope", "END", "LIST", "ACK x"]),
          "AUTHENTICATE " + pick(["", "PLAIN", "+", "*", "x".repeat(500), "AAAA"]),
          "PASS " + pick(["", ":", "x".repeat(300)]),
        ]),
      );
    default: // a command alone, lower case, or whitespace only
      return enc.encode(pick([pick(IRC_COMMANDS).toLowerCase(), " ", "  :x", "\t", "\r"]));
  }
}

/** One generated bad (or odd) JIM object (seed 004's protocol), as text, or broken JSON. */
export function badJimObject(r: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const odd = () =>
    pick<unknown>([
      "",
      "x".repeat(5000),
      5,
      -1,
      null,
      true,
      [],
      {},
      { account_name: 5 },
      { account_name: "" },
      { account_name: "canaryA" },
      "nobody",
      "#general",
      1e308,
    ]);
  switch (Math.floor(r() * 5)) {
    case 0: // known actions, fields of the wrong type
      return JSON.stringify({
        action: pick([
          "presence",
          "authenticate",
          "msg",
          "join",
          "leave",
          "get_contacts",
          "add_contact",
          "del_contact",
          "get_users",
          "exit-not",
          "",
        ]),
        time: odd(),
        user: odd(),
        to: odd(),
        from: odd(),
        message: odd(),
        user_id: odd(),
        user_login: odd(),
        room: odd(),
      });
    case 1: // answers to challenges that were never made, or wrong ones
      return JSON.stringify({ response: pick([511, 200, 0, "511"]), bin: odd(), alert: odd() });
    case 2: // not an object, or broken JSON
      return pick(['{"action":', "[1,2]", '"presence"', "{{}}", '{"action":"msg"', "}{", "5"]);
    case 3: // deep nesting inside a valid object
      return `{"action":"msg","message":${"[".repeat(2000)}${"]".repeat(2000)}}`;
    default: // a plausible message with odd text
      return JSON.stringify({
        action: "msg",
        time: Date.now() / 1000,
        to: pick(["canaryA", "nobody", "", "#general", "x".repeat(40)]),
        from: pick(["fuzzjim", "canaryB", ""]),
        message: pick(["", " ", "\u0000", "\u001b[31m", "hi", "x".repeat(4001)]),
      });
  }
}

/**
 * A malformed (or odd but valid) HTTP request, as raw bytes: bad request lines, header names and
 * values, bodies framed twice or wrongly, bad chunk sizes, odd targets and encodings, WebSocket
 * upgrades missing their key, heads over the size limit.
 */
export function badHttpRequest(r: () => number): Uint8Array {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const method = pick(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "G T"]);
  const target = pick([
    "/healthz",
    "/api/v1/rooms",
    "/connect",
    "/send",
    "/ws",
    "/api/v1/files/%",
    "/api/v1/files/%E0%A4%A/x",
    "/api/v1/users/%00",
    "/%2e%2e/%2e%2e/etc/passwd",
    "*",
    "http://elsewhere.example/healthz",
    "//x",
    "x",
    "/" + "a".repeat(Math.floor(r() * 9000)),
    "/api/v1/rooms?limit=-1&cursor=%ZZ",
  ]);
  const version = pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1", ""]);
  const lines = [`${method} ${target} ${version}`.trimEnd(), "Host: 127.0.0.1"];
  let body = "";
  for (let k = Math.floor(r() * 4); k >= 0; k--) {
    switch (Math.floor(r() * 16)) {
      case 0:
        lines.push("Transfer-Encoding: chunked");
        body = pick(["zz\r\nabc\r\n0\r\n\r\n", "5\r\nab\r\n", "ffffffffffffff\r\n", "3\r\nabcXX"]);
        break;
      case 1:
        lines.push("Transfer-Encoding: chunked", "Content-Length: 5");
        body = "0\r\n\r\n";
        break;
      case 2:
        lines.push(
          `Content-Length: ${pick(["-1", "1e3", "5, 6", "99999999999999999", "abc", ""])}`,
        );
        break;
      case 3:
        lines.push(pick(["Bad Header: x", "NoColon", " folded: x", ":empty", "X-\u00ff: y"]));
        break;
      case 4:
        lines.push("Upgrade: websocket", "Connection: Upgrade");
        if (r() < 0.5) lines.push(`Sec-WebSocket-Key: ${pick(["", "short", "x".repeat(24)])}`);
        if (r() < 0.5) lines.push(`Sec-WebSocket-Version: ${pick(["12", "13", "x"])}`);
        break;
      case 5:
        lines.push(`X-Big: ${"b".repeat(Math.floor(r() * 40_000))}`);
        break;
      case 6:
        lines.push("Transfer-Encoding: gzip, chunked");
        break;
      case 7:
        lines.push(`Authorization: Bearer ${pick(["", "x", "%", "\u00e9"])}`);
        break;
      case 8:
        lines.push("Content-Type: application/json", `Content-Length: ${pick([0, 3, 40])}`);
        body = pick(["{", "{}", '{"username":"' + "\u00e9".repeat(10) + '"}']);
        break;
      case 9:
        lines.push(`X-Filename: ${pick(["%", "%E0%A4%A", "a%00b", "..%2f..%2fx"])}`);
        break;
      case 10:
        lines.push("Expect: 100-continue", "Content-Length: 10");
        break;
      case 11: // a full WebSocket upgrade, with a key that is good, odd or bad
        lines.push(
          "Upgrade: websocket",
          "Connection: Upgrade",
          "Sec-WebSocket-Version: 13",
          `Sec-WebSocket-Key: ${
            pick([
              "dGhlIHNhbXBsZSBub25jZQ==",
              "x".repeat(24),
              "dGhlIHNhbXBsZSBub25jZQ",
              "!!!!!!!!!!!!!!!!!!!!!!==",
              "dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==",
            ])
          }`,
        );
        break;
      case 12:
        lines.push(
          `Last-Event-ID: ${pick(["", "x", "01M81NE1DJ1XPD16F3EKQEJNFH", "%00", "9".repeat(300)])}`,
        );
        break;
      case 13:
        lines.push(`Host: ${pick(["", ":", "[::1", "x:99999", "h".repeat(3000), "127.0.0.1"])}`);
        break;
      case 14:
        lines.push(
          `Content-Type: ${
            pick([
              "multipart/form-data",
              "application/x-www-form-urlencoded",
              "application/json; charset=nope",
              ";;;",
              "text/plain",
            ])
          }`,
          "Content-Length: 4",
        );
        body = pick(["a=%%", '{"a', "\u0000\u0000\u0000\u0000", "null"]);
        break;
      default:
        lines.push(`Origin: ${pick(["null", "http://evil.example", "x"])}`);
    }
  }
  const sep = r() < 0.1 ? "\n" : "\r\n";
  return enc.encode(lines.join(sep) + sep + sep + body);
}

/**
 * A client's WebSocket frame header (RFC 6455): the first byte as given (FIN, reserved bits,
 * opcode), the length (which may differ from what follows), and the masking key if any.
 */
export function clientFrameHead(first: number, length: number, key: number[] | null): number[] {
  const mask = key ? 0x80 : 0;
  const head = [first];
  if (length < 126) head.push(mask | length);
  else if (length < 65536) head.push(mask | 126, length >> 8, length & 0xff);
  else {
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigUint64(0, BigInt(length));
    head.push(mask | 127, ...big);
  }
  if (key) head.push(...key);
  return head;
}

/** Bytes that follow a good WebSocket handshake: frames with odd bits, lengths and payloads. */
export function badWebSocketBytes(r: () => number): Uint8Array {
  const out: number[] = [];
  for (let k = Math.floor(r() * 4); k >= 0; k--) {
    if (r() < 0.2) {
      for (let i = Math.floor(r() * 64); i > 0; i--) out.push(Math.floor(r() * 256));
      continue;
    }
    const opcode = [0, 1, 2, 3, 8, 9, 10, 11, 15][Math.floor(r() * 9)]!;
    const fin = r() < 0.8 ? 0x80 : 0;
    const rsv = r() < 0.1 ? 0x40 : 0;
    const masked = r() < 0.9 ? 0x80 : 0;
    const size = [0, 1, 5, 125, 126, 200, 70_000][Math.floor(r() * 7)]!;
    const declared = r() < 0.15 ? 2 ** 40 : size;
    out.push(...clientFrameHead(fin | rsv | opcode, declared, masked ? [1, 2, 3, 4] : null));
    for (let i = 0; i < size; i++) out.push(Math.floor(r() * 256));
  }
  return new Uint8Array(out);
}

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
  const frames: Record<Wire, number> = {
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
  const httpStatuses: Record<number, number> = {};
  let errorsSeen = 0;
  const errorsByWire: Partial<Record<Wire, number>> = {};
  const answered = (wire: Wire, errors: number) => {
    errorsSeen += errors;
    errorsByWire[wire] = (errorsByWire[wire] ?? 0) + errors;
  };
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
        const first = mode === "tcp-json" ? '{"username":"fuzzj"}\n' : "fuzzt\n";
        const lines: Uint8Array[] = [enc.encode(first)];
        const n = Math.min(500, per - sent);
        for (let i = 0; i < n; i++) lines.push(badFrame(r), enc.encode("\n"));
        sent += n;
        // The server may close the connection (a line over the limit, say): allowed.
        const text = await sendAndRead(opts.tcpPort, concatBytes(lines), 300);
        answered(mode, (text.match(/"type":"error"|^! /gm) ?? []).length);
      }
      frames[mode] += sent;
    }
    // JIM on the TCP port: a presence first, then objects back to back (a newline or not). 50
    // per connection: a brace that never closes holds the rest until the 64 KB line limit.
    for (let sent = 0; sent < per;) {
      const n = Math.min(50, per - sent);
      const parts = [JSON.stringify({ action: "presence", user: { account_name: "fuzzjim" } })];
      for (let i = 0; i < n; i++) parts.push(badJimObject(r) + (r() < 0.5 ? "\n" : ""));
      sent += n;
      const text = await sendAndRead(opts.tcpPort, enc.encode(parts.join("")), 300);
      answered("jim", (text.match(/"response":\s*4\d\d/g) ?? []).length);
      frames.jim += n;
    }
    // IRC: registered, then bad lines (CRLF or a bare LF); errors are 4xx numerics.
    for (let sent = 0; sent < per;) {
      const n = Math.min(500, per - sent);
      const lines: Uint8Array[] = [enc.encode(`NICK fuzzi${round}\r\nUSER f 0 * :f\r\n`)];
      for (let i = 0; i < n; i++) lines.push(badIrcLine(r), enc.encode(r() < 0.8 ? "\r\n" : "\n"));
      sent += n;
      const text = await sendAndRead(opts.ircPort, concatBytes(lines), 300);
      answered("irc", (text.match(/^:\S+ 4\d\d /gm) ?? []).length);
      frames.irc += n;
    }
    // WebSocket: bad messages, several per connection.
    let wsSent = 0;
    while (wsSent < per) {
      const ws = new WebSocket(`ws://127.0.0.1:${opts.httpPort}/ws`);
      await new Promise<void>((res, rej) => {
        ws.onopen = () => res();
        ws.onerror = () => rej(new Error("websocket failed to open"));
      });
      ws.onmessage = (e) => answered("ws", String(e.data).includes('"type":"error"') ? 1 : 0);
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
    // Raw HTTP: malformed requests, one connection each, 16 at a time. A refusal is a 4xx (or
    // 501/505 for what HTTP/1.1 names so); never a 500.
    const requests = Array.from({ length: per }, () => badHttpRequest(r));
    await inParallel(requests, 16, async (bytes) => {
      for (const status of await rawExchange(opts.httpPort, bytes)) {
        httpStatuses[status] = (httpStatuses[status] ?? 0) + 1;
        if (status === 500 || (status > 501 && status !== 505)) {
          throw new Error(`raw HTTP answered ${status} to ${new TextDecoder().decode(bytes)}`);
        }
      }
    });
    frames["http-raw"] += per;
    // Raw WebSocket frames after a good handshake, ten frames' worth per connection.
    const sockets = Array.from({ length: Math.ceil(per / 10) }, () => {
      const parts: Uint8Array[] = [WS_HANDSHAKE];
      for (let k = 0; k < 10; k++) parts.push(badWebSocketBytes(r));
      return concatBytes(parts);
    });
    await inParallel(sockets, 16, (bytes) => rawExchange(opts.httpPort, bytes));
    frames["ws-raw"] += per;
    await canary(opts.tcpPort, round);
    rssPeakMb = Math.max(rssPeakMb, await rssMb(opts.serverPid));
  }
  return {
    frames,
    httpStatuses,
    errorsSeen,
    errorsByWire,
    canaryRounds: rounds,
    rssStartMb: +rssStartMb.toFixed(1),
    rssPeakMb: +rssPeakMb.toFixed(1),
  };
}
