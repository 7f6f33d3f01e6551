/**
 * The HTTP listener: HTTP/1.1 on connections it accepts itself, so that every limit is its own.
 * A client must finish a request's headers within `headerTimeoutMs` of connecting (or of its
 * previous response ending), must keep a request body moving, and may hold only so many
 * connections per address; a WebSocket's frames are read here too (`websocket.ts`), so a
 * message over the limit is refused from its header, before its bytes are kept.
 *
 * Why not Deno's server: `Deno.serve` has no header deadline (a client trickling header bytes
 * kept a connection for ever, measured in Deno 2.9), the legacy `Deno.serveHttp` that had one is
 * soft-removed and kept each WebSocket's upgrade Request alive, and `Deno.upgradeWebSocket`
 * reads a whole message (up to 64 MiB) before JavaScript can look at its size.
 *
 * Thin: the routes are the Hono app's (`http/app.ts`); this module only moves requests to it.
 * @module
 */

import type { Logger } from "../log.ts";
import {
  type Head,
  httpDate,
  HttpRefusal,
  Input,
  latin1,
  MAX_HEAD_BYTES,
  parseHead,
  reason,
  RequestBody,
} from "./http_wire.ts";
import { writeAll } from "./outbound.ts";
import { every, type Ticking } from "./ticker.ts";
import { acceptKey, ServerWebSocket, validKey, type WebSocketOptions } from "./websocket.ts";

/**
 * What the handler learns of the connection: as for `Deno.serve`, plus `upgradeWebSocket`,
 * which turns the request into a WebSocket once the handler answers with a 2xx. The connection
 * counts against its address until the socket is closed.
 */
export interface ConnectionInfo {
  remoteAddr: Deno.NetAddr;
  /** Settles when the response has been written (or failed). */
  completed: Promise<void>;
  upgradeWebSocket(options: WebSocketOptions): { socket: ServerWebSocket; response: Response };
}

/** The handler's signature, as for `Deno.serve`. */
export type HttpHandler = (
  request: Request,
  info: ConnectionInfo,
) => Response | Promise<Response>;

export interface HttpServerOptions {
  log: Logger;
  /**
   * From accepting a connection, or from the end of its last response, to a request's headers.
   * 0 turns the deadlines off (for a server behind a reverse proxy that enforces its own).
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
/** A whole request body must arrive within this many body pauses (150 s by default). */
const BODY_TOTAL_PAUSES = 10;
/** A body the handler left unread is read and dropped (keeping the connection) up to this. */
const DRAIN_MAX_BYTES = 64 * 1024;
/** Before hanging up on a client that may still be sending, its bytes are read this long. */
const LINGER_MS = 1000;

/** Bodies from this size on are worth compressing. */
const COMPRESS_FROM_BYTES = 1024;
const COMPRESSIBLE = /^(text\/|application\/(json|javascript|xml|manifest\+json)|image\/svg)/;

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** Serves `handler` on HOST:PORT until `shutdown()`. */
export function serveHttp(
  at: { hostname: string; port: number },
  handler: HttpHandler,
  options: HttpServerOptions,
): HttpServer {
  return new Http1Server(Deno.listen({ ...at, transport: "tcp" }), handler, options);
}

/** One open connection: whether it waits for a request (and so may be closed), and its end. */
interface Open {
  conn: Deno.Conn;
  idle: boolean;
  /** When the request head being waited for is overdue (0: none). */
  deadline: number;
  done: Promise<void>;
}

/** What one request/response exchange left the connection to do. */
type Outcome = "next" | "close" | ServerWebSocket;

class Http1Server implements HttpServer, Ticking {
  readonly addr: Deno.NetAddr;
  #listener: Deno.TcpListener;
  #handler: HttpHandler;
  #log: Logger;
  #headerTimeout: number;
  #bodyIdle: number;
  #maxPerIp: number;
  #perIp = new Map<string, number>();
  #open = new Set<Open>();
  #stopping = false;
  #accepting: Promise<void>;
  #stopTicking: () => void = () => {};

  constructor(listener: Deno.TcpListener, handler: HttpHandler, options: HttpServerOptions) {
    this.#listener = listener;
    this.addr = listener.addr;
    this.#handler = handler;
    this.#log = options.log;
    this.#headerTimeout = options.headerTimeoutMs ?? HEADER_TIMEOUT_MS;
    this.#bodyIdle = options.headerTimeoutMs === 0
      ? 0
      : options.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
    this.#maxPerIp = options.maxConnectionsPerIp ?? 0;
    if (this.#headerTimeout > 0) {
      // Checked four times per deadline: a late head is cut off within 1¼ deadlines.
      this.#stopTicking = every(Math.max(25, Math.round(this.#headerTimeout / 4)), this);
    }
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
    try {
      // SSE readers answer nothing: the system's TCP keepalive is what finds one that vanished.
      conn.setKeepAlive(true);
      conn.setNoDelay(true);
    } catch { /* closed already */ }
    const state: Open = { conn, idle: true, deadline: 0, done: Promise.resolve() };
    this.#open.add(state);
    // An upgraded connection counts against its address until its socket closes; what served
    // its request (buffers, the Request, the handler's context) is let go meanwhile.
    state.done = this.#serve(conn, state)
      .then((socket) => socket?.closed)
      .catch((error) => this.#log.debug("http connection failed", { error }))
      .finally(() => {
        this.#open.delete(state);
        this.#release(ip);
      });
  }

  #release(ip: string): void {
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  /**
   * Serves one connection's requests until it ends, idles too long, or is upgraded (then its
   * WebSocket, which owns the connection from here on).
   */
  async #serve(conn: Deno.TcpConn, state: Open): Promise<ServerWebSocket | null> {
    const input = new Input(conn);
    let outcome: Outcome = "next";
    try {
      while (outcome === "next") {
        state.idle = true;
        const head = await this.#readHead(input, state);
        state.idle = false;
        if (head === null) return null;
        if (head instanceof HttpRefusal) {
          await this.#refuseRequest(conn, input, head);
          return null;
        }
        outcome = await this.#exchange(conn, input, head, state);
      }
      return outcome === "close" ? null : outcome;
    } finally {
      if (typeof outcome === "string") {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
    }
  }

  /**
   * The next request's head; null when the client left or did not finish it in time (the
   * shared ticker closes a connection past its deadline: no timer per request).
   */
  async #readHead(input: Input, state: Open): Promise<Head | HttpRefusal | null> {
    state.deadline = this.#headerTimeout > 0 ? Date.now() + this.#headerTimeout : 0;
    input.shrink();
    while (true) {
      const length = input.headLength();
      if (length >= 0) {
        const text = latin1(input.buf.subarray(input.start, input.start + length));
        input.start += length;
        return parseHead(text);
      }
      if (input.size >= MAX_HEAD_BYTES) {
        return new HttpRefusal(431, `Request heads are limited to ${MAX_HEAD_BYTES} bytes`);
      }
      // A connection told to close (shutdown) gets no new request.
      if (this.#stopping || !(await input.more(0))) return null;
    }
  }

  /** Closes the connections whose request heads are overdue (the shared ticker calls this). */
  tick(): void {
    const now = Date.now();
    for (const state of this.#open) {
      if (!state.idle || state.deadline === 0 || now < state.deadline) continue;
      this.#log.debug("closing an http connection that sent no complete request in time");
      state.deadline = 0;
      try {
        state.conn.close();
      } catch { /* closed already */ }
    }
  }

  /** Answers a request that could not be parsed, and hangs up (its framing is unknown). */
  async #refuseRequest(conn: Deno.Conn, input: Input, refusal: HttpRefusal): Promise<void> {
    const response = Response.json(
      { error: { code: "bad_frame", message: refusal.message } },
      { status: refusal.status },
    );
    await this.#write(conn, null, response, { head: false, close: true, gzip: false });
    await linger(conn, input);
  }

  /** One request and its response. */
  async #exchange(conn: Deno.TcpConn, input: Input, head: Head, state: Open): Promise<Outcome> {
    const continueWanted = head.version === "1.1" &&
      head.headers.get("expect")?.toLowerCase() === "100-continue";
    let continueSent = false;
    const body = new RequestBody(input, head.body, {
      idleMs: this.#bodyIdle,
      totalMs: this.#bodyIdle * BODY_TOTAL_PAUSES,
      beforeRead: () => {
        if (!continueWanted || continueSent) return;
        continueSent = true;
        void writeAll(conn, CONTINUE).catch(() => {});
      },
    });
    const connectionHeader = head.headers.get("connection")?.toLowerCase() ?? "";
    let keepAlive = head.version === "1.1"
      ? !connectionHeader.includes("close")
      : connectionHeader.includes("keep-alive");

    let request: Request;
    try {
      const host = head.headers.get("host") || `${this.addr.hostname}:${this.addr.port}`;
      const url = head.target.startsWith("/") ? `http://${host}${head.target}` : head.target;
      const bodyless = head.method === "GET" || head.method === "HEAD" || body.done;
      request = new Request(url, {
        method: head.method,
        headers: head.headers,
        ...(bodyless ? {} : { body: body.stream(), duplex: "half" }),
      } as RequestInit);
    } catch {
      await this.#refuseRequest(
        conn,
        input,
        new HttpRefusal(400, "The request target is not a URL"),
      );
      return "close";
    }

    let settle!: () => void;
    const completed = new Promise<void>((resolve) => (settle = resolve));
    let upgrade: ServerWebSocket | null = null;
    const info: ConnectionInfo = {
      remoteAddr: conn.remoteAddr,
      completed,
      upgradeWebSocket: (options) => {
        if (upgrade) throw new TypeError("this request was upgraded already");
        if (head.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          throw new TypeError("not a WebSocket upgrade request");
        }
        if (!validKey(head.headers.get("sec-websocket-key"))) {
          throw new TypeError("a WebSocket upgrade needs a valid Sec-WebSocket-Key");
        }
        upgrade = new ServerWebSocket(options);
        return { socket: upgrade, response: new Response(null, { status: 200 }) };
      },
    };

    let response: Response;
    try {
      response = await this.#handler(request, info);
    } catch (error) {
      this.#log.error("http handler failed", { error });
      response = new Response("internal error", { status: 500 });
    }
    const socket = upgrade as ServerWebSocket | null;
    if (socket) {
      settle();
      if (response.status >= 300) {
        socket.abort();
      } else {
        return await this.#upgrade(conn, input, head, socket, state);
      }
    }

    // A body the handler left unread: read and dropped when small, else the connection ends.
    if (
      !body.done && (body.stalled || body.remaining > DRAIN_MAX_BYTES ||
        (continueWanted && !continueSent))
    ) {
      keepAlive = false;
    }
    if (this.#stopping) keepAlive = false;
    const close = !keepAlive || /\bclose\b/i.test(response.headers.get("connection") ?? "");
    const gzip = /\bgzip\b/i.test(head.headers.get("accept-encoding") ?? "");
    let delivered: boolean;
    try {
      delivered = await this.#write(conn, input, response, {
        head: head.method === "HEAD",
        close,
        gzip,
        version: head.version,
      });
    } finally {
      settle();
    }
    if (!delivered) return "close";
    if (close) {
      if (!body.done) await linger(conn, input);
      return "close";
    }
    if (!body.done && !(await body.drain())) return "close";
    return "next";
  }

  /** Completes a WebSocket handshake and hands the connection to the socket. */
  async #upgrade(
    conn: Deno.Conn,
    input: Input,
    head: Head,
    socket: ServerWebSocket,
    state: Open,
  ): Promise<Outcome> {
    const key = acceptKey(head.headers.get("sec-websocket-key")!);
    const handshake = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${key}\r\n\r\n`;
    try {
      await writeAll(conn, encoder.encode(handshake));
    } catch {
      socket.abort();
      return "close";
    }
    // Shutdown leaves the socket to the hub; it still counts against its address till it ends.
    this.#open.delete(state);
    socket.start(conn, input.rest());
    return socket;
  }

  /**
   * Writes a response: a body of known length as it streams, server-sent events in chunks,
   * anything else read whole first (to send its length, and compressed when that pays).
   * False when the client went away before it was all written.
   */
  async #write(
    conn: Deno.Conn,
    input: Input | null,
    response: Response,
    options: { head: boolean; close: boolean; gzip: boolean; version?: string },
  ): Promise<boolean> {
    const status = response.status;
    const headers = response.headers;
    const type = headers.get("content-type") ?? "";
    const noBody = status < 200 || status === 204 || status === 304;
    let lines = `HTTP/1.1 ${status} ${response.statusText || reason(status)}\r\n`;
    for (const [name, value] of headers) {
      if (name === "connection" || name === "content-length" || name === "transfer-encoding") {
        continue;
      }
      lines += `${name}: ${value}\r\n`;
    }
    lines += `date: ${httpDate()}\r\n`;
    let bytes: Uint8Array | null = null;
    let stream: ReadableStream<Uint8Array> | null = null;
    let chunked = false;
    let close = options.close;
    if (noBody || response.body === null) {
      bytes = EMPTY;
      await response.body?.cancel().catch(() => {});
    } else if (headers.has("content-length")) {
      stream = response.body;
      lines += `content-length: ${headers.get("content-length")}\r\n`;
    } else if (type.startsWith("text/event-stream")) {
      stream = response.body;
      chunked = options.version !== "1.0";
      if (chunked) lines += "transfer-encoding: chunked\r\n";
      // Events flow until one side leaves; the connection is not reused after.
      close = true;
    } else {
      bytes = new Uint8Array(await response.arrayBuffer());
      if (
        options.gzip && bytes.length >= COMPRESS_FROM_BYTES && COMPRESSIBLE.test(type) &&
        !headers.has("content-encoding") && !/no-transform/.test(headers.get("cache-control") ?? "")
      ) {
        bytes = await gzip(bytes);
        lines += "content-encoding: gzip\r\nvary: accept-encoding\r\n";
      }
    }
    if (bytes !== null && !noBody) lines += `content-length: ${bytes.length}\r\n`;
    if (close) lines += "connection: close\r\n";
    else if (options.version === "1.0") lines += "connection: keep-alive\r\n";
    lines += "\r\n";
    const headBytes = encoder.encode(lines);

    if (bytes !== null || options.head) {
      if (stream) await stream.cancel().catch(() => {});
      const body = options.head || bytes === null ? EMPTY : bytes;
      const all = new Uint8Array(headBytes.length + body.length);
      all.set(headBytes);
      all.set(body, headBytes.length);
      try {
        await writeAll(conn, all);
        return true;
      } catch {
        return false;
      }
    }
    return await streamBody(conn, input, headBytes, stream!, chunked);
  }

  async shutdown(): Promise<void> {
    this.#stopping = true;
    this.#stopTicking();
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#accepting;
    for (const state of this.#open) {
      if (!state.idle) continue;
      try {
        state.conn.close();
      } catch { /* already closed */ }
    }
    await Promise.allSettled([...this.#open].map((s) => s.done));
  }
}

/**
 * Streams a body after its head: raw for a known length, in chunks otherwise. While it flows the
 * connection is watched: a client that leaves (an SSE reader closing its tab) ends the stream at
 * once, not at the next write.
 */
async function streamBody(
  conn: Deno.Conn,
  input: Input | null,
  head: Uint8Array,
  stream: ReadableStream<Uint8Array>,
  chunked: boolean,
): Promise<boolean> {
  const reader = stream.getReader();
  let gone = false;
  const leave = () => {
    gone = true;
    void reader.cancel().catch(() => {});
  };
  if (chunked && input) {
    // Nothing more is read as a request on this connection: its end (or a reset) is the news.
    void (async () => {
      while (!gone) {
        const got = await input.more(0);
        if (got !== true) return leave();
        input.start = input.end;
      }
    })();
  }
  try {
    await writeAll(conn, head);
    while (true) {
      const { done, value } = await reader.read();
      if (done || gone) break;
      if (value.length === 0) continue;
      if (!chunked) {
        await writeAll(conn, value);
        continue;
      }
      const size = encoder.encode(`${value.length.toString(16)}\r\n`);
      const frame = new Uint8Array(size.length + value.length + 2);
      frame.set(size);
      frame.set(value, size.length);
      frame.set([13, 10], size.length + value.length);
      await writeAll(conn, frame);
    }
    if (gone) return false;
    if (chunked) await writeAll(conn, encoder.encode("0\r\n\r\n"));
    return true;
  } catch {
    leave();
    return false;
  } finally {
    gone = true;
  }
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const compressed = new Blob([bytes as BlobPart]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

/**
 * Hangs up on a client that may still be sending: stops writing, reads and drops what comes for
 * a moment, then closes. Closing with unread bytes would send a reset that can destroy the
 * response the client has not read yet.
 */
async function linger(conn: Deno.Conn, input: Input | null): Promise<void> {
  try {
    await conn.closeWrite();
  } catch {
    return;
  }
  if (!input) return;
  const until = Date.now() + LINGER_MS;
  let dropped = 0;
  while (dropped < 1024 * 1024) {
    const left = until - Date.now();
    if (left <= 0) return;
    const before = input.size;
    const got = await input.more(left);
    if (got !== true) return;
    dropped += input.size - before;
    input.start = input.end;
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
    `Content-Length: ${encoder.encode(body).length}\r\n\r\n${body}`;
  try {
    await conn.write(encoder.encode(text));
  } catch { /* gone already */ }
  try {
    conn.close();
  } catch { /* gone already */ }
}
