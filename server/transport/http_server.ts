/**
 * The HTTP listener: accepts connections itself and serves each with `Deno.serveHttp`, so that it
 * can put deadlines where `Deno.serve` has none. A client must finish a request's headers within
 * `headerTimeoutMs` of connecting (or of its previous response ending), must keep a request body
 * moving, and may hold only so many connections per address. Without this, a client trickling
 * header bytes keeps a connection open for ever (measured on `Deno.serve` in Deno 2.9: still open
 * after 40 s of one byte a second).
 *
 * Thin: the routes are the Hono app's (`http.ts`); this module only moves requests to it.
 * @module
 */

import type { Logger } from "../log.ts";

/**
 * What the handler learns of the connection: as for `Deno.serve`, plus `hold`, with which an
 * upgraded connection stays counted against its address until the promise settles (the WebSocket
 * closes). Without it a WebSocket the server has dropped, whose peer never completes the closing
 * handshake, would hold a socket that no limit counts.
 */
export type ConnectionInfo = Deno.ServeHandlerInfo<Deno.NetAddr> & {
  hold?: (until: Promise<unknown>) => void;
};

/** The handler's signature, as for `Deno.serve`. */
export type HttpHandler = (
  request: Request,
  info: ConnectionInfo,
) => Response | Promise<Response>;

export interface HttpServerOptions {
  log: Logger;
  /**
   * From accepting a connection, or from the end of its last response, to a request's headers.
   * 0 turns the deadlines off and serves with `Deno.serve`, which is faster (for a server behind
   * a reverse proxy that enforces its own).
   */
  headerTimeoutMs?: number;
  /** Longest pause in a request body before the request is failed and its connection closed. */
  bodyIdleTimeoutMs?: number;
  /** Open HTTP connections per client address; 0 for no limit. */
  maxConnectionsPerIp?: number;
}

/** A running HTTP listener. */
export interface HttpServer {
  readonly addr: Deno.NetAddr;
  /**
   * Stops accepting, closes idle connections, lets requests in progress finish, and settles once
   * every connection has ended. Upgraded WebSockets are the hub's to close.
   */
  shutdown(): Promise<void>;
}

/** Headers must be complete this long after connecting (or after the last response). */
const HEADER_TIMEOUT_MS = 15_000;
/** A request body may pause this long between chunks. */
const BODY_IDLE_TIMEOUT_MS = 15_000;

/** Bodies from this size on are worth compressing. */
const COMPRESS_FROM_BYTES = 1024;
/** How long a connection told to close may take to finish writing its last response. */
const CLOSING_GRACE_MS = 2000;

const TIMED_OUT = Symbol("timed out");

/** What `Deno.serveHttp` hands out; its types left Deno's namespace when it was soft-removed. */
interface RequestEvent {
  readonly request: Request;
  respondWith(response: Response | PromiseLike<Response>): Promise<void>;
}
interface HttpConn {
  nextRequest(): Promise<RequestEvent | null>;
  close(): void;
}
const serveHttpConn = (Deno as unknown as { serveHttp?: (conn: Deno.Conn) => HttpConn })
  .serveHttp?.bind(Deno);

/**
 * Serves `handler` on HOST:PORT until `shutdown()`. Should a later Deno drop `Deno.serveHttp`,
 * this falls back to `Deno.serve` (no header deadline) and says so in the log; the slowloris test
 * in `tests/http_server_test.ts` then fails, so the loss cannot go unnoticed.
 */
export function serveHttp(
  at: { hostname: string; port: number },
  handler: HttpHandler,
  options: HttpServerOptions,
): HttpServer {
  if (options.headerTimeoutMs === 0 || !serveHttpConn) {
    if (options.headerTimeoutMs !== 0) {
      options.log.warn("this Deno has no Deno.serveHttp: HTTP requests get no header deadline");
    }
    const server = Deno.serve({ ...at, onListen: () => {} }, handler);
    return { addr: server.addr, shutdown: () => server.shutdown() };
  }
  return new DeadlineServer(Deno.listen({ ...at, transport: "tcp" }), handler, options);
}

/** One open connection: whether it waits for a request (and so may be closed), and its end. */
interface Open {
  idle: boolean;
  done: Promise<void>;
}

/** The listener with deadlines: accepts, counts per address, serves each connection. */
class DeadlineServer implements HttpServer {
  readonly addr: Deno.NetAddr;
  #listener: Deno.TcpListener;
  #handler: HttpHandler;
  #log: Logger;
  #headerTimeout: number;
  #bodyIdle: number;
  #maxPerIp: number;
  #perIp = new Map<string, number>();
  #open = new Map<HttpConn, Open>();
  #stopping = false;
  #accepting: Promise<void>;

  constructor(listener: Deno.TcpListener, handler: HttpHandler, options: HttpServerOptions) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.#handler = handler;
    this.#log = options.log;
    this.#headerTimeout = options.headerTimeoutMs ?? HEADER_TIMEOUT_MS;
    this.#bodyIdle = options.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
    this.#maxPerIp = options.maxConnectionsPerIp ?? 0;
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) this.#admit(conn);
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        this.#log.error("http accept failed", { error });
      }
    }
  }

  #admit(conn: Deno.TcpConn): void {
    const ip = conn.remoteAddr.hostname;
    const count = this.#perIp.get(ip) ?? 0;
    if (this.#maxPerIp > 0 && count >= this.#maxPerIp) {
      this.#log.warn("refusing an http connection over the per-address limit", { ip });
      void refuse(conn, this.#maxPerIp);
      return;
    }
    this.#perIp.set(ip, count + 1);
    // SSE readers answer nothing: the system's TCP keepalive is what finds one that vanished.
    try {
      conn.setKeepAlive(true);
    } catch { /* closed already */ }
    let httpConn: HttpConn;
    try {
      httpConn = serveHttpConn!(conn);
    } catch (error) {
      this.#log.warn("could not serve an http connection", { error });
      this.#release(ip);
      return;
    }
    const state: Open = { idle: true, done: Promise.resolve() };
    this.#open.set(httpConn, state);
    state.done = this.#serve(conn.remoteAddr, httpConn, state)
      .catch((error) => this.#log.warn("http connection failed", { error }))
      .finally(() => this.#release(ip));
  }

  #release(ip: string): void {
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  /** Serves one connection's requests until it ends, idles too long, or is upgraded. */
  async #serve(remoteAddr: Deno.NetAddr, httpConn: HttpConn, state: Open): Promise<void> {
    try {
      const upgraded = await this.#requests(remoteAddr, httpConn, state);
      // An upgraded connection belongs to its WebSocket from here on; shutdown leaves it to
      // the hub, but it counts against its address until the WebSocket is really gone. Only
      // the connection is kept meanwhile: the upgrade request, its headers and Deno's objects
      // around them (~5 KB per WebSocket) are let go.
      if (upgraded) {
        this.#open.delete(httpConn);
        await upgraded.holding?.catch(() => {});
      }
    } finally {
      this.#open.delete(httpConn);
      try {
        httpConn.close();
      } catch { /* already closed */ }
    }
  }

  /** Serves requests until the connection ends (null) or is upgraded (with what holds it). */
  async #requests(
    remoteAddr: Deno.NetAddr,
    httpConn: HttpConn,
    state: Open,
  ): Promise<{ holding: Promise<unknown> | undefined } | null> {
    while (true) {
      state.idle = true;
      const next = await this.#nextRequest(httpConn);
      state.idle = false;
      if (next === TIMED_OUT) {
        this.#log.debug("closing an http connection that sent no complete request in time", {
          ip: remoteAddr.hostname,
        });
        return null;
      }
      if (next === null) return null;
      const outcome = await this.#respond(remoteAddr, next);
      if (outcome === "gone") return null;
      if (outcome !== "next") return outcome;
    }
  }

  /** The next request, or TIMED_OUT when its headers do not come in time, or null at the end. */
  async #nextRequest(httpConn: HttpConn): Promise<RequestEvent | typeof TIMED_OUT | null> {
    // A connection told to close (shutdown, a stalled body) is normally ended by Deno right
    // after its response; closing it ourselves sooner could cut that response short.
    const wait = this.#stopping
      ? Math.min(this.#headerTimeout, CLOSING_GRACE_MS)
      : this.#headerTimeout;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = await Promise.race([
      httpConn.nextRequest(),
      new Promise<typeof TIMED_OUT>((resolve) => {
        timer = setTimeout(() => resolve(TIMED_OUT), wait);
      }),
    ]).catch(() => null);
    clearTimeout(timer);
    return next;
  }

  /** Answers one request: "next" to read another, "gone", or the upgrade with what holds it. */
  async #respond(
    remoteAddr: Deno.NetAddr,
    next: RequestEvent,
  ): Promise<"next" | "gone" | { holding: Promise<unknown> | undefined }> {
    const body = { stalled: false };
    const request = withBodyDeadline(next.request, this.#bodyIdle, body);
    let settle!: () => void;
    const completed = new Promise<void>((resolve) => (settle = resolve));
    let response: Response;
    let holding: Promise<unknown> | undefined;
    try {
      response = await this.#handler(request, {
        remoteAddr,
        completed,
        hold: (until) => (holding = until),
      });
    } catch (error) {
      this.#log.error("http handler failed", { error });
      response = new Response("internal error", { status: 500 });
    }
    const upgraded = response.status === 101;
    if (!upgraded) response = await sendSmallJsonAsIs(response);
    // What is left of a stalled body would be read as the next request: hang up instead.
    // Connection: close, so Deno ends the connection once the response is written.
    if (!upgraded && (this.#stopping || body.stalled)) {
      response = withHeader(response, "connection", "close");
    }
    try {
      await next.respondWith(response);
    } catch (error) {
      // The client went away mid-response (an SSE reader closing its tab, say): not an error.
      this.#log.debug("http response not delivered", { error });
      return "gone";
    } finally {
      settle();
    }
    return upgraded ? { holding } : "next";
  }

  async shutdown(): Promise<void> {
    this.#stopping = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#accepting;
    for (const [httpConn, state] of this.#open) {
      if (!state.idle) continue;
      try {
        httpConn.close();
      } catch { /* already closed */ }
    }
    await Promise.allSettled([...this.#open.values()].map((s) => s.done));
  }
}

/**
 * Deno's `serveHttp` compresses every compressible body it can (brotli when the client accepts
 * it), which for the API's small JSON answers costs more than it saves: measured on 2 cores, a
 * small JSON route served 18,000 requests/s compressed against 28,000 not. JSON under 1 KiB goes
 * as it is, marked `no-transform` (the one opt-out Deno honours); bigger bodies (history pages,
 * the OpenAPI document, the console's script) are still compressed.
 */
async function sendSmallJsonAsIs(response: Response): Promise<Response> {
  const type = response.headers.get("content-type") ?? "";
  // Not `response.body` first: touching it turns a string body into a stream of unknown length.
  if (!type.startsWith("application/json") || response.headers.has("content-encoding")) {
    return response;
  }
  const declared = response.headers.get("content-length");
  if (declared !== null) {
    // A download declares its length: decide without reading it.
    if (Number(declared) >= COMPRESS_FROM_BYTES) return response;
    return withHeader(response, "cache-control", "no-transform", "append");
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const sized = new Response(bytes, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  return bytes.length < COMPRESS_FROM_BYTES
    ? withHeader(sized, "cache-control", "no-transform", "append")
    : sized;
}

/** The response with a header set or added; its headers are copied when they are immutable. */
function withHeader(
  response: Response,
  name: string,
  value: string,
  how: "set" | "append" = "set",
): Response {
  try {
    response.headers[how](name, value);
    return response;
  } catch {
    // Immutable headers (a Response.redirect, say).
    const headers = new Headers(response.headers);
    headers[how](name, value);
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  }
}

/** Tells a client over the connection limit why, as the API words errors (429), and hangs up. */
async function refuse(conn: Deno.Conn, limit: number): Promise<void> {
  const body = JSON.stringify({
    error: {
      code: "rate_limited",
      message: `Too many connections from your address (the limit is ${limit}): ` +
        "close some and try again",
    },
  });
  const text = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n" +
    "Content-Type: application/json\r\nRetry-After: 5\r\n" +
    `Content-Length: ${new TextEncoder().encode(body).length}\r\n\r\n${body}`;
  try {
    await conn.write(new TextEncoder().encode(text));
  } catch { /* gone already */ }
  try {
    conn.close();
  } catch { /* gone already */ }
}

/** A whole request body must arrive within this many body pauses (150 s by default). */
const BODY_TOTAL_PAUSES = 10;

/**
 * The request with a body that fails when the client stops sending for `idleMs`, or has not
 * finished after BODY_TOTAL_PAUSES × `idleMs` in all (a slow-body attack holds a connection as
 * well as slow headers do; one byte every few seconds never pauses long). Bodyless requests
 * pass through.
 */
function withBodyDeadline(request: Request, idleMs: number, state: { stalled: boolean }): Request {
  const body = request.body;
  if (!body) return request;
  const reader = body.getReader();
  const endBy = Date.now() + BODY_TOTAL_PAUSES * idleMs;
  const guarded = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const wait = Math.max(0, Math.min(idleMs, endBy - Date.now()));
        const chunk = await Promise.race([
          reader.read(),
          new Promise<typeof TIMED_OUT>((resolve) => {
            timer = setTimeout(() => resolve(TIMED_OUT), wait);
          }),
        ]);
        if (chunk === TIMED_OUT) {
          state.stalled = true;
          void reader.cancel().catch(() => {});
          controller.error(new Deno.errors.TimedOut("the request body came too slowly"));
        } else if (chunk.done) {
          controller.close();
        } else {
          controller.enqueue(chunk.value);
        }
      } catch (error) {
        controller.error(error);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return new Request(request, { body: guarded, duplex: "half" } as RequestInit);
}
