/**
 * The fuzzer's inputs: generated bad (or odd) frames for every wire, from a seeded PRNG so that a
 * failing run can be replayed. `bench/fuzz.ts` sends them.
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
  "away",
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
        // Fields of frames that take them (leave, away, hello, message), odd values for all.
        reason: pick(["", " ", "\u0007", "bye", "x".repeat(600)]),
        notice: pick([true, false, "yes", 1, null]),
        unique: pick([true, false, "no", 0]),
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
  "LUSERS",
  "MOTD",
  "ISON",
  "USERHOST",
  "INVITE",
  "WHOWAS",
  "HELP",
  "VERSION",
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
          "message",
          "remove",
          "exit-not",
          "",
        ]),
        type: "status",
        time: odd(),
        user: odd(),
        to: odd(),
        from: odd(),
        message: odd(),
        user_id: odd(),
        user_login: odd(),
        room: odd(),
        mess_text: odd(),
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
