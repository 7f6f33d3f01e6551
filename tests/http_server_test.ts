/**
 * The HTTP listener's deadlines (server/transport/http_server.ts) over real sockets: slowloris
 * headers, idle keep-alive, stalled bodies, the per-address limit, long responses and
 * WebSockets that must not be cut, and shutdown. The last tests run the real server.
 */
import assert from "node:assert/strict";
import { createLogger } from "../server/log.ts";
import { type HttpHandler, serveHttp } from "../server/transport/http_server.ts";
import { createHttpApp } from "../server/transport/http/app.ts";
import { api, makeHub, startServer, withTimeout } from "./_helpers.ts";

const log = createLogger("silent");
const encoder = new TextEncoder();
const WS_OPTIONS = { maxMessageBytes: 1024, idleTimeoutMs: 0 };

function start(handler: HttpHandler, options: { headerTimeoutMs?: number; max?: number } = {}) {
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, handler, {
    log,
    headerTimeoutMs: options.headerTimeoutMs ?? 300,
    bodyIdleTimeoutMs: options.headerTimeoutMs ?? 300,
    maxConnectionsPerIp: options.max ?? 0,
  });
  return {
    port: server.addr.port,
    [Symbol.asyncDispose]: () => server.shutdown(),
    server,
  };
}

/** Reads until the server closes the connection (or `ms` pass); what arrived and when it closed. */
async function readToClose(
  conn: Deno.Conn,
  ms: number,
): Promise<{ text: string; closed: boolean; afterMs: number }> {
  const t0 = Date.now();
  const buf = new Uint8Array(4096);
  let text = "";
  const decoder = new TextDecoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)));
  try {
    while (true) {
      const n = await Promise.race([conn.read(buf).catch(() => null), timeout]);
      if (n === "timeout") return { text, closed: false, afterMs: Date.now() - t0 };
      if (n === null) return { text, closed: true, afterMs: Date.now() - t0 };
      text += decoder.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Reads one whole response with Content-Length; the connection stays open. */
async function readResponse(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (true) {
    const n = await withTimeout(conn.read(buf), 3000, "a response");
    if (n === null) throw new Error(`closed after: ${text}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    const length = Number(text.match(/content-length: (\d+)/i)?.[1] ?? "0");
    if (end >= 0 && text.length >= end + 4 + length) return text;
  }
}

const hello: HttpHandler = () => new Response("hello");

Deno.test("http: a client trickling header bytes is cut off at the header deadline", async () => {
  await using s = start(hello);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const head = encoder.encode(
    "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  );
  let i = 0;
  const trickle = setInterval(() => {
    if (i < head.length) conn.write(head.subarray(i, ++i)).catch(() => {});
  }, 20);
  try {
    const r = await readToClose(conn, 3000);
    assert.ok(r.closed, "the slow client is still connected after 3 s");
    assert.ok(r.afterMs >= 250 && r.afterMs < 2000, `closed after ${r.afterMs} ms`);
    assert.ok(i > 5, "the client was still sending when it was cut off");
    assert.equal(r.text, "", "a request that never finished got an answer");
  } finally {
    clearInterval(trickle);
    conn.close();
  }
});

Deno.test("http: keep-alive serves requests in turn, and an idle connection is closed", async () => {
  await using s = start(hello);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  try {
    for (let n = 0; n < 3; n++) {
      await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      const response = await readResponse(conn);
      assert.match(response, /^HTTP\/1\.1 200/);
      assert.match(response, /hello$/);
      // Pauses shorter than the deadline keep the connection.
      await new Promise((r) => setTimeout(r, 150));
    }
    const r = await readToClose(conn, 3000);
    assert.ok(r.closed, "an idle keep-alive connection was never closed");
    assert.ok(r.afterMs < 1000, `closed after ${r.afterMs} ms`);
  } finally {
    conn.close();
  }
  // A connection that never sends a byte goes the same way.
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const r = await readToClose(silent, 3000);
  silent.close();
  assert.ok(r.closed && r.afterMs >= 250, `silent connection: ${JSON.stringify(r)}`);
});

Deno.test("http: a request body that stalls fails the request and closes the connection", async () => {
  await using s = start(async (request) => {
    try {
      return new Response(`got ${(await request.text()).length}`);
    } catch (error) {
      return new Response((error as Error).name, { status: 408 });
    }
  });
  // A body that arrives in pieces, each within the deadline, is fine.
  const ok = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await ok.write(encoder.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n"));
  for (let n = 0; n < 3; n++) {
    await new Promise((r) => setTimeout(r, 150));
    await ok.write(encoder.encode("0123456789"));
  }
  assert.match(await readResponse(ok), /200 OK[\s\S]*got 30$/);
  ok.close();
  // One that stops halfway gets 408 and is hung up on.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await stalled.write(
    encoder.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"),
  );
  const r = await readToClose(stalled, 3000);
  stalled.close();
  assert.ok(r.closed, "the stalled connection stayed open");
  assert.match(r.text, /^HTTP\/1\.1 408[\s\S]*TimedOut$/);
});

Deno.test("http: a long response and a WebSocket outlive the header deadline", async () => {
  await using s = start((request, info) => {
    if (request.headers.get("upgrade") === "websocket") {
      const { socket, response } = info.upgradeWebSocket(WS_OPTIONS);
      socket.onmessage = (data) => void socket.send(`echo ${data}`);
      return response;
    }
    // Server-sent events for a second, three times the deadline.
    let n = 0;
    let timer: ReturnType<typeof setInterval>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setInterval(() => {
          controller.enqueue(encoder.encode(`data: ${n}\n\n`));
          if (++n === 10) {
            clearInterval(timer);
            controller.close();
          }
        }, 100);
      },
      cancel: () => clearInterval(timer),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const events = await (await fetch(`http://127.0.0.1:${s.port}/events`)).text();
  assert.equal(events.match(/data: \d+/g)?.length, 10, events);

  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`);
  try {
    await withTimeout(new Promise((r) => (ws.onopen = r)), 3000, "the socket to open");
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(ws.readyState, WebSocket.OPEN, "the WebSocket was closed by the header deadline");
    const echo = new Promise<string>((r) => (ws.onmessage = (e) => r(String(e.data))));
    ws.send("still here");
    assert.equal(await withTimeout(echo, 3000, "the echo"), "echo still here");
  } finally {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
  }
});

Deno.test("http: connections over the per-address limit are refused with a reason", async () => {
  await using s = start(hello, { headerTimeoutMs: 5000, max: 2 });
  const a = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const b = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  // Both are served (so both are counted) before the third comes.
  for (const c of [a, b]) {
    await c.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert.match(await readResponse(c), /^HTTP\/1\.1 200/);
  }
  const third = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  const refused = await readToClose(third, 3000);
  third.close();
  assert.ok(refused.closed);
  assert.match(
    refused.text,
    /^HTTP\/1\.1 429[\s\S]*"rate_limited"[\s\S]*Too many connections from your address/,
  );
  // Closing one makes room.
  a.close();
  await new Promise((r) => setTimeout(r, 100));
  const res = await fetch(`http://127.0.0.1:${s.port}/`);
  assert.equal(await res.text(), "hello");
  b.close();
});

Deno.test("http: an upgraded connection counts against its address until its WebSocket closes", async () => {
  await using s = start((request, info) => {
    if (request.headers.get("upgrade") !== "websocket") return new Response("hello");
    return info.upgradeWebSocket(WS_OPTIONS).response;
  }, { headerTimeoutMs: 5000, max: 1 });
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`);
  await withTimeout(new Promise((r) => (ws.onopen = r)), 3000, "the socket to open");
  // The one connection this address may have is the WebSocket's.
  const refused = await fetch(`http://127.0.0.1:${s.port}/`);
  assert.equal(refused.status, 429);
  await refused.body?.cancel();
  const closed = new Promise((r) => (ws.onclose = r));
  ws.close();
  await closed;
  await new Promise((r) => setTimeout(r, 100));
  const res = await fetch(`http://127.0.0.1:${s.port}/`);
  assert.equal(await res.text(), "hello");
});

Deno.test("http: shutdown closes idle connections and lets a request in progress finish", async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const inHandler = new Promise<void>((r) => (started = r));
  const s = start(async () => {
    started();
    await held;
    return new Response("finished");
  }, { headerTimeoutMs: 5000 });
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await new Promise((r) => setTimeout(r, 50));
  const busy = fetch(`http://127.0.0.1:${s.port}/`).then((r) => r.text());
  await inHandler;
  const down = s.server.shutdown();
  const r = await readToClose(idle, 2000);
  idle.close();
  assert.ok(r.closed && r.afterMs < 1000, `idle connection: ${JSON.stringify(r)}`);
  let finished = false;
  void down.then(() => (finished = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(finished, false, "shutdown did not wait for the request in progress");
  release();
  assert.equal(await busy, "finished");
  await withTimeout(down, 3000, "shutdown");
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: s.port }));
});

Deno.test("http: small JSON answers go uncompressed, big ones compressed", async () => {
  await using s = start((request) => {
    const size = Number(new URL(request.url).searchParams.get("size"));
    return Response.json({ pad: "x".repeat(size) });
  });
  const get = async (size: number) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
    await conn.write(encoder.encode(
      `GET /?size=${size} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n`,
    ));
    const r = await readToClose(conn, 3000);
    conn.close();
    return r.text;
  };
  const small = await get(100);
  assert.doesNotMatch(small, /content-encoding/i);
  assert.match(small, /\{"pad":"x{100}"\}$/);
  assert.match(await get(5000), /content-encoding: gzip/i);
  // And what fetch makes of it is the JSON that was sent.
  const big = await fetch(`http://127.0.0.1:${s.port}/?size=5000`);
  assert.equal(big.headers.get("content-encoding"), "gzip");
  assert.equal((await big.json()).pad.length, 5000);
});

Deno.test("e2e http: --header-timeout 0 serves without deadlines", async () => {
  const server = await startServer({ data: ":memory:", args: ["--header-timeout", "0"] });
  try {
    const base = `http://127.0.0.1:${server.httpPort}`;
    assert.equal((await api(base, "GET", "/healthz")).status, 200);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
    await conn.write(encoder.encode("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    const r = await readToClose(conn, 1500);
    conn.close();
    assert.equal(r.closed, false, "without deadlines a slow client is left alone");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("e2e http: the real server cuts off a slowloris and a stalled body (--header-timeout)", async () => {
  const server = await startServer({ data: ":memory:", args: ["--header-timeout", "1s"] });
  try {
    const base = `http://127.0.0.1:${server.httpPort}`;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
    const trickle = setInterval(() => conn.write(encoder.encode("a")).catch(() => {}), 100);
    await conn.write(encoder.encode("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    const r = await readToClose(conn, 5000);
    clearInterval(trickle);
    conn.close();
    assert.ok(r.closed && r.afterMs >= 900 && r.afterMs < 3000, JSON.stringify(r));
    // Meanwhile, and after, others are served.
    assert.equal((await api(base, "GET", "/healthz")).status, 200);

    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.httpPort });
    await stalled.write(encoder.encode(
      "POST /connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        'Content-Length: 40\r\n\r\n{"username":',
    ));
    const s = await readToClose(stalled, 5000);
    stalled.close();
    assert.ok(s.closed, "the stalled body's connection stayed open");
    assert.match(s.text, /^HTTP\/1\.1 408/);
    assert.match(s.text, /"code":"too_slow"/);
    // The API description says so too.
    const doc = (await api(base, "GET", "/api/v1/openapi.json")).json;
    assert.ok(doc.paths["/connect"].post.responses["408"], "408 is documented for POST /connect");
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("http: a WebSocket that never logs in is closed at the login deadline, with the reason", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const app = createHttpApp(ctx.hub, {
    log: createLogger("silent"),
    startedAt: Date.now(),
    loginTimeoutMs: 300,
  });
  const server = serveHttp({ hostname: "127.0.0.1", port: 0 }, app.fetch, { log });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${server.addr.port}/ws`);
    const got: string[] = [];
    ws.onmessage = (e) => got.push(String(e.data));
    const t0 = Date.now();
    const code = await new Promise<number>((resolve) => (ws.onclose = (e) => resolve(e.code)));
    const after = Date.now() - t0;
    assert.ok(after >= 250 && after < 3000, `closed after ${after} ms`);
    assert.equal(code, 1008);
    assert.match(got.join("\n"), /"code":"too_slow".*did not log in in time/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http: a body trickled a byte at a time, each pause under the deadline, is still cut off in time", async () => {
  await using s = start(async (request) => {
    try {
      return new Response(`got ${(await request.text()).length}`);
    } catch (error) {
      return new Response((error as Error).name, { status: 408 });
    }
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
  await conn.write(encoder.encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
  // One byte every 200 ms: never a 300 ms pause, and 1,000 bytes would take 200 s.
  const trickle = setInterval(() => conn.write(encoder.encode("a")).catch(() => {}), 200);
  try {
    const r = await readToClose(conn, 8000);
    assert.ok(r.closed, "the trickling body was never cut off");
    // The whole body gets ten pauses' worth (3 s here).
    assert.ok(r.afterMs >= 2500 && r.afterMs < 6000, `cut off after ${r.afterMs} ms`);
    assert.match(r.text, /^HTTP\/1\.1 408/);
  } finally {
    clearInterval(trickle);
    conn.close();
  }
});
