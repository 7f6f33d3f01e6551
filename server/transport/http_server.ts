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
  HttpRefusal,
  Input,
  latin1,
  MAX_HEAD_BYTES,
  parseHead,
  RequestBody,
} from "./http_wire.ts";
import { linger, refuse, writeResponse } from "./http_response.ts";
import { writeAll } from "./outbound.ts";
import { every, type Ticking } from "./ticker.ts";
import { ServerWebSocket, type WebSocketOptions } from "./websocket.ts";
import { acceptKey, validKey } from "./websocket_frames.ts";

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

const encoder = new TextEncoder();
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
    await writeResponse(conn, null, response, { head: false, close: true, gzip: false });
    await linger(conn, input);
  }

  /** One request and its response. */
  async #exchange(conn: Deno.TcpConn, input: Input, head: Head, state: Open): Promise<Outcome> {
    const expect = {
      wanted: head.version === "1.1" &&
        head.headers.get("expect")?.toLowerCase() === "100-continue",
      sent: false,
    };
    const body = new RequestBody(input, head.body, {
      idleMs: this.#bodyIdle,
      totalMs: this.#bodyIdle * BODY_TOTAL_PAUSES,
      beforeRead: () => {
        if (!expect.wanted || expect.sent) return;
        expect.sent = true;
        void writeAll(conn, CONTINUE).catch(() => {});
      },
    });
    const request = requestOf(head, body, this.addr);
    if (!request) {
      // Fetch's Request refuses these methods outright (and so does this server).
      const refusal = /^(CONNECT|TRACE|TRACK)$/i.test(head.method)
        ? new HttpRefusal(405, `${head.method} is not served here`)
        : new HttpRefusal(400, "The request target is not a URL");
      await this.#refuseRequest(conn, input, refusal);
      return "close";
    }
    let settle!: () => void;
    const completed = new Promise<void>((resolve) => (settle = resolve));
    const upgrade = upgrader(head);
    let response: Response;
    try {
      response = await this.#handler(request, {
        remoteAddr: conn.remoteAddr,
        completed,
        upgradeWebSocket: upgrade.start,
      });
    } catch (error) {
      this.#log.error("http handler failed", { error });
      response = new Response("internal error", { status: 500 });
    }
    if (upgrade.socket) {
      settle();
      if (response.status < 300) {
        return await this.#upgrade(conn, input, head, upgrade.socket, state);
      }
      upgrade.socket.abort();
    }
    try {
      return await this.#respond(conn, input, head, body, !expect.wanted || expect.sent, response);
    } finally {
      settle();
    }
  }

  /**
   * Writes the response; then the connection serves the next request, or ends (asked to, or a
   * body left unread that is too big to drop, or the client gone).
   */
  async #respond(
    conn: Deno.Conn,
    input: Input,
    head: Head,
    body: RequestBody,
    bodyMayCome: boolean,
    response: Response,
  ): Promise<Outcome> {
    const connection = head.headers.get("connection")?.toLowerCase() ?? "";
    let keepAlive = head.version === "1.1"
      ? !connection.includes("close")
      : connection.includes("keep-alive");
    // A body the handler left unread is read and dropped when small; else the connection ends.
    if (!body.done && (body.stalled || body.remaining > DRAIN_MAX_BYTES || !bodyMayCome)) {
      keepAlive = false;
    }
    if (this.#stopping) keepAlive = false;
    const close = !keepAlive || /\bclose\b/i.test(response.headers.get("connection") ?? "");
    const delivered = await writeResponse(conn, input, response, {
      head: head.method === "HEAD",
      close,
      gzip: /\bgzip\b/i.test(head.headers.get("accept-encoding") ?? ""),
      version: head.version,
    });
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

/** The request the handler gets; null when its target makes no URL. */
function requestOf(head: Head, body: RequestBody, addr: Deno.NetAddr): Request | null {
  const host = head.headers.get("host") || `${addr.hostname}:${addr.port}`;
  const url = head.target.startsWith("/") ? `http://${host}${head.target}` : head.target;
  const bodyless = head.method === "GET" || head.method === "HEAD" || body.done;
  try {
    return new Request(url, {
      method: head.method,
      headers: head.headers,
      ...(bodyless ? {} : { body: body.stream(), duplex: "half" }),
    } as RequestInit);
  } catch {
    return null;
  }
}

/**
 * What `upgradeWebSocket` does for one request: checks it is an upgrade, makes the socket (once)
 * and answers a placeholder 200 for the handler to return; the listener writes the handshake.
 */
function upgrader(head: Head) {
  const state: {
    socket: ServerWebSocket | null;
    start: ConnectionInfo["upgradeWebSocket"];
  } = {
    socket: null,
    start: (options) => {
      if (state.socket) throw new TypeError("this request was upgraded already");
      if (head.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        throw new TypeError("not a WebSocket upgrade request");
      }
      if (!validKey(head.headers.get("sec-websocket-key"))) {
        throw new TypeError("a WebSocket upgrade needs a valid Sec-WebSocket-Key");
      }
      state.socket = new ServerWebSocket(options);
      return { socket: state.socket, response: new Response(null, { status: 200 }) };
    },
  };
  return state;
}
