/**
 * HTTP/1.1 as the listener speaks it (server/transport/http_server.ts, http_wire.ts), over raw
 * sockets: pipelining, chunked request bodies, `Expect: 100-continue`, HEAD, HTTP/1.0, gzip, and
 * the refusals that guard against request smuggling (a body framed twice, folded headers).
 */
import assert from "node:assert/strict";
import { createLogger } from "../server/log.ts";
import { type HttpHandler, serveHttp } from "../server/transport/http_server.ts";
import { withTimeout } from "./_helpers.ts";

const encoder = new TextEncoder();

/** Echoes the method, path and body length; `/big` answers 5,000 bytes of JSON. */
const echo: HttpHandler = async (request) => {
  const url = new URL(request.url);
  if (url.pathname === "/big") return Response.json({ pad: "x".repeat(5000) });
  if (url.pathname === "/ignore") return new Response("not read");
  try {
    const body = request.body ? (await request.text()).length : 0;
    return new Response(`${request.method} ${url.pathname} ${body}`);
  } catch (error) {
    return new Response((error as Error).name, { status: 400 });
  }
};

function start(handler: HttpHandler = echo) {
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, handler, {
    log: createLogger("silent"),
    headerTimeoutMs: 2000,
  });
  return { port: server.addr.port, [Symbol.asyncDispose]: () => server.shutdown() };
}

/** Sends raw bytes, reads until `until` matches what came (or the server closes). */
async function exchange(
  port: number,
  parts: string[],
  until: RegExp,
): Promise<{ text: string; closed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let text = "";
  let closed = false;
  try {
    for (const part of parts) await conn.write(encoder.encode(part));
    const buf = new Uint8Array(65536);
    while (!until.test(text)) {
      const n = await withTimeout(conn.read(buf), 3000, `a match for ${until} in ${text}`);
      if (n === null) {
        closed = true;
        break;
      }
      text += new TextDecoder("latin1").decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
  return { text, closed };
}

/** The bodies of the responses in `text`, in order (Content-Length framed). */
function bodies(text: string): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.startsWith("HTTP/1.1")) {
    const end = rest.indexOf("\r\n\r\n");
    const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? "0");
    out.push(rest.slice(end + 4, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

Deno.test("http/1.1: pipelined requests are answered in order on one connection", async () => {
  await using s = start();
  const r = await exchange(s.port, [
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
    "GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
  ], /GET \/c 0$/);
  assert.deepEqual(bodies(r.text), ["GET /a 0", "POST /b 5", "GET /c 0"]);
});

Deno.test("http/1.1: a chunked request body is decoded, trailers ignored", async () => {
  await using s = start();
  const r = await exchange(s.port, [
    "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    "5\r\nhello\r\n",
    "6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n",
  ], /POST \/up \d+$/);
  assert.deepEqual(bodies(r.text), ["POST /up 11"]);
  // A malformed chunk size fails the body with Deno.errors.Http (the app answers 400 for it).
  const bad = await exchange(s.port, [
    "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
  ], /Http$/);
  assert.match(bad.text, /^HTTP\/1\.1 400[\s\S]*Http$/);
});

Deno.test("http/1.1: Expect: 100-continue gets 100 Continue once the body is read", async () => {
  await using s = start();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    await conn.write(encoder.encode(
      "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    ));
    const buf = new Uint8Array(4096);
    const n = await withTimeout(conn.read(buf), 3000, "100 Continue");
    assert.match(new TextDecoder().decode(buf.subarray(0, n!)), /^HTTP\/1\.1 100 Continue\r\n\r\n/);
    await conn.write(encoder.encode("abcd"));
    let text = "";
    while (!text.endsWith("POST /e 4")) {
      const k = await withTimeout(conn.read(buf), 3000, "the answer");
      if (k === null) break;
      text += new TextDecoder().decode(buf.subarray(0, k));
    }
    assert.match(text, /^HTTP\/1\.1 200[\s\S]*POST \/e 4$/);
  } finally {
    conn.close();
  }
});

Deno.test("http/1.1: HEAD has the length and no body; HTTP/1.0 closes unless kept alive", async () => {
  await using s = start();
  const head = await exchange(
    s.port,
    ["HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
    /\r\n\r\n/,
  );
  assert.match(head.text, /^HTTP\/1\.1 200/);
  assert.match(head.text, /content-length: \d{4}/i);
  assert.ok(head.text.endsWith("\r\n\r\n"), "a HEAD answer carried a body");

  const old = await exchange(s.port, ["GET /a HTTP/1.0\r\n\r\n"], /GET \/a 0$/);
  assert.match(old.text, /connection: close/i);
  const kept = await exchange(s.port, [
    "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
  ], /GET \/b 0$/);
  assert.deepEqual(bodies(kept.text), ["GET /a 0", "GET /b 0"]);
  assert.match(kept.text, /connection: keep-alive/i);
});

Deno.test("http/1.1: a small body the handler did not read is dropped and the connection kept", async () => {
  await using s = start();
  const r = await exchange(s.port, [
    "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789" +
    "GET /after HTTP/1.1\r\nHost: x\r\n\r\n",
  ], /GET \/after 0$/);
  assert.deepEqual(bodies(r.text), ["not read", "GET /after 0"]);
});

Deno.test("http/1.1: gzip when asked for and worth it", async () => {
  await using s = start();
  const plain = await fetch(`http://127.0.0.1:${s.port}/big`, {
    headers: { "accept-encoding": "identity" },
  });
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.equal((await plain.json()).pad.length, 5000);
  const zipped = await fetch(`http://127.0.0.1:${s.port}/big`);
  assert.equal(zipped.headers.get("content-encoding"), "gzip");
  assert.equal(zipped.headers.get("vary"), "accept-encoding");
  assert.equal((await zipped.json()).pad.length, 5000);
});

Deno.test("http/1.1: requests that could smuggle or cannot be read are refused and the connection closed", async () => {
  await using s = start();
  const cases: Array<[string, string, number]> = [
    [
      "both framings",
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    ["folded header", "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", 400],
    ["bad length", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello", 400],
    ["gzip coding", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
    ["HTTP/2.0", "GET /a HTTP/2.0\r\nHost: x\r\n\r\n", 505],
    ["no version", "GET /a\r\nHost: x\r\n\r\n", 400],
    ["bad target", "GET a HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["huge head", `GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(40_000)}\r\n\r\n`, 431],
    ["no Host", "GET /a HTTP/1.1\r\n\r\n", 400],
    ["two Hosts", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400],
    ["TRACE", "TRACE /a HTTP/1.1\r\nHost: x\r\n\r\n", 405],
  ];
  for (const [what, raw, status] of cases) {
    const r = await exchange(s.port, [raw], /"message":"[^"]*"\}\}$/);
    assert.match(r.text, new RegExp(`^HTTP/1\\.1 ${status} `), what);
    assert.match(r.text, /connection: close/i, what);
    assert.match(r.text, /"code":"bad_frame"/, what);
  }
});
