/**
 * WebSocket framing (RFC 6455, the server's side) on a raw connection the HTTP listener hands
 * over after the handshake.
 *
 * Why not `Deno.upgradeWebSocket`: Deno reads a whole message (up to 64 MiB) into memory before
 * JavaScript sees it, so a limit checked afterwards comes too late (ten 60 MB messages took a
 * server from 234 MB to 992 MB of RSS); and the legacy `Deno.serveHttp` the listener used for its
 * deadlines kept each upgrade's Request and closures alive for the socket's life (idle
 * WebSockets: 26.9 KB of RSS each then, 12.9 KB now). Here a frame's header is read
 * first: a message whose declared length passes the limit is refused before one byte of its
 * payload is kept (its bytes are skipped as they arrive, never buffered), and an idle socket
 * holds a 256-byte read buffer.
 *
 * No extensions are negotiated (no permessage-deflate: the chat's frames are small, and a
 * compressed frame would hide its true size until inflated).
 * @module
 */

import { writeAll } from "./outbound.ts";
import { every, type Ticking } from "./ticker.ts";
import {
  CLOSE,
  closeFrame,
  encodeFrame,
  parseHeader,
  Refusal,
  textFrame,
  unmask,
  validCloseCode,
} from "./websocket_frames.ts";

export { CLOSE } from "./websocket_frames.ts";

/** What the socket enforces. */
export interface WebSocketOptions {
  /** Longest message a client may send, in bytes (UTF-8 bytes for text, not UTF-16 units). */
  maxMessageBytes: number;
  /** Silence after which the client is pinged (half of it) and dropped (all of it); 0: never. */
  idleTimeoutMs: number;
}

/** An idle socket's read buffer; it grows for a big frame and shrinks back after it. */
const INITIAL_BUFFER = 256;
/** How long a closing socket waits for the client's close frame before hanging up. */
const CLOSE_WAIT_MS = 2000;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** One server-side WebSocket. */
export class ServerWebSocket implements Ticking {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  readyState = 0;
  /** The handshake is written: messages may flow. */
  onopen: () => void = () => {};
  /** A whole message: text as a string, binary as bytes. */
  onmessage: (data: string | Uint8Array) => void = () => {};
  /**
   * The client sent (the header of) a message longer than the limit; none of it was kept. The
   * socket closes with 1009 right after this unless the handler closed it already.
   */
  onoversize: (limit: number) => void = () => {};
  /** Called once, when the connection has ended (1006: without a closing handshake). */
  onclose: (code: number, reason: string) => void = () => {};
  /** Settles once the connection has ended. */
  readonly closed: Promise<void>;

  readonly #options: WebSocketOptions;
  #conn: Deno.Conn | null = null;
  #resolveClosed!: () => void;
  #tail: Promise<void> | null = null;
  #buffered = 0;
  #lastHeard = Date.now();
  #pinged = false;
  #stopTicking: (() => void) | null = null;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The connection is to end once the close frame being written is out (not before). */
  #ending = false;
  /** The message being assembled from fragments: its opcode, parts and size. */
  #fragments: { opcode: number; parts: Uint8Array[]; bytes: number } | null = null;

  constructor(options: WebSocketOptions) {
    this.#options = options;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Bytes handed to the connection and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#buffered;
  }

  /** Starts on `conn` once the handshake is written; `leftover` arrived after the request. */
  start(conn: Deno.Conn, leftover: Uint8Array): void {
    if (this.readyState !== ServerWebSocket.CONNECTING) {
      try {
        conn.close();
      } catch { /* gone */ }
      return;
    }
    this.#conn = conn;
    this.readyState = ServerWebSocket.OPEN;
    this.#lastHeard = Date.now();
    const idle = this.#options.idleTimeoutMs;
    if (idle > 0) this.#stopTicking = every(Math.max(25, Math.round(idle / 4)), this);
    this.onopen();
    void this.#read(conn, leftover);
  }

  /** The upgrade did not happen (the handshake could not be written): ends without opening. */
  abort(): void {
    this.#end(CLOSE.abnormal, "");
  }

  /**
   * Writes messages already framed (`encodeFrame`), several back to back in one write; the
   * promise settles when the kernel has taken them.
   */
  sendFramed(frames: Uint8Array): Promise<void> {
    if (this.readyState !== ServerWebSocket.OPEN) return Promise.resolve();
    return this.#write(frames);
  }

  /** Sends a text (or binary) message; the promise settles when the kernel has taken it. */
  send(data: string | Uint8Array): Promise<void> {
    if (this.readyState !== ServerWebSocket.OPEN) return Promise.resolve();
    return this.#write(typeof data === "string" ? textFrame(data) : encodeFrame(2, data));
  }

  /**
   * Starts the closing handshake: a close frame after what is being written, then the client's
   * close frame is awaited (at most CLOSE_WAIT_MS) before the connection is ended.
   */
  close(code: number = CLOSE.normal, reason = ""): void {
    if (this.readyState === ServerWebSocket.CONNECTING) return this.abort();
    if (this.readyState !== ServerWebSocket.OPEN) return;
    this.readyState = ServerWebSocket.CLOSING;
    this.#write(closeFrame(code, reason)).catch(() => {});
    this.#closeTimer = setTimeout(() => this.#end(code, reason), CLOSE_WAIT_MS);
  }

  /** The shared ticker's check: ping a quiet client, drop a silent one. */
  tick(): void {
    const idle = this.#options.idleTimeoutMs;
    const silent = Date.now() - this.#lastHeard;
    if (silent >= idle) {
      this.#end(CLOSE.abnormal, "no answer to pings");
    } else if (silent >= idle / 2 && !this.#pinged && this.readyState === ServerWebSocket.OPEN) {
      this.#pinged = true;
      this.#write(encodeFrame(9, new Uint8Array(0))).catch(() => {});
    }
  }

  /** Writes a frame after the ones before it; a failure ends the connection. */
  #write(frame: Uint8Array): Promise<void> {
    const conn = this.#conn;
    if (conn === null) return Promise.resolve();
    this.#buffered += frame.length;
    const written: Promise<void> =
      (this.#tail ? this.#tail.then(() => writeAll(conn, frame)) : writeAll(conn, frame)).then(
        () => {
          this.#buffered -= frame.length;
          if (this.#tail === written) this.#tail = null;
        },
        (error) => {
          this.#buffered -= frame.length;
          if (this.#tail === written) this.#tail = null;
          this.#end(CLOSE.abnormal, "");
          throw error;
        },
      );
    this.#tail = written;
    return written;
  }

  /** Reads and handles frames until the connection ends. */
  async #read(conn: Deno.Conn, leftover: Uint8Array): Promise<void> {
    let buf = new Uint8Array(Math.max(INITIAL_BUFFER, leftover.length));
    buf.set(leftover);
    let start = 0;
    let end = leftover.length;
    /** Payload bytes still to skip (an oversized or unwanted message's). */
    let skip = 0;
    try {
      while (this.readyState !== ServerWebSocket.CLOSED) {
        // Handle every complete frame in the buffer.
        while (true) {
          if (skip > 0) {
            const n = Math.min(skip, end - start);
            skip -= n;
            start += n;
            if (skip > 0) break;
          }
          const frame = parseHeader(buf, start, end);
          if (frame === null) break;
          if (frame instanceof Refusal) return this.#refuse(frame);
          const { opcode, fin, length, headerLength } = frame;
          const data = opcode < 8;
          if (data && this.readyState !== ServerWebSocket.OPEN) {
            // Closing: messages are no longer read, only the client's close frame.
            start += headerLength;
            skip = length;
            continue;
          }
          if (data) {
            const problem = this.#checkData(opcode, length);
            if (problem === "oversize") {
              start += headerLength;
              skip = length;
              this.#fragments = null;
              this.onoversize(this.#options.maxMessageBytes);
              this.close(
                CLOSE.tooBig,
                `messages are limited to ${this.#options.maxMessageBytes} bytes`,
              );
              continue;
            }
            if (problem) return this.#refuse(problem);
          }
          const total = headerLength + length;
          if (end - start < total) {
            // The frame is not all here: make room for it (its size was checked) and read on.
            if (buf.length - start < total) {
              const bigger = new Uint8Array(Math.max(total, Math.min(2 * buf.length, total * 2)));
              bigger.set(buf.subarray(start, end));
              end -= start;
              start = 0;
              buf = bigger;
            }
            break;
          }
          const payload = buf.subarray(start + headerLength, start + total);
          unmask(payload, buf, start + headerLength - 4);
          start += total;
          const refusal = this.#handle(opcode, fin, payload);
          if (refusal) return this.#refuse(refusal);
          if (this.readyState === ServerWebSocket.CLOSED) return;
        }
        if (start === end) {
          start = end = 0;
          if (buf.length > INITIAL_BUFFER * 16) buf = new Uint8Array(INITIAL_BUFFER);
        } else if (end === buf.length) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        }
        const n = await conn.read(buf.subarray(end));
        if (n === null) break;
        end += n;
        this.#lastHeard = Date.now();
        this.#pinged = false;
      }
    } catch {
      // Reset by the peer, or closed by us: the connection is over either way.
    } finally {
      // A close frame on its way ends the connection once written, with its own code.
      if (!this.#ending) this.#end(CLOSE.abnormal, "");
    }
  }

  /** Whether a data frame may start or continue a message, and fits the limit. */
  #checkData(opcode: number, length: number): Refusal | "oversize" | null {
    if (opcode === 0 && this.#fragments === null) {
      return new Refusal(CLOSE.protocolError, "a continuation frame without a message");
    }
    if (opcode !== 0 && this.#fragments !== null) {
      return new Refusal(CLOSE.protocolError, "a new message inside a fragmented one");
    }
    const before = this.#fragments?.bytes ?? 0;
    return before + length > this.#options.maxMessageBytes ? "oversize" : null;
  }

  /** Handles one whole frame; a refusal ends the connection. */
  #handle(opcode: number, fin: boolean, payload: Uint8Array): Refusal | null {
    switch (opcode) {
      case 0x8:
        return this.#closeReceived(payload);
      case 0x9:
        if (this.readyState === ServerWebSocket.OPEN) {
          this.#write(encodeFrame(0xa, payload.slice())).catch(() => {});
        }
        return null;
      case 0xa:
        return null;
    }
    if (!fin) {
      const fragments = this.#fragments ??= { opcode, parts: [], bytes: 0 };
      fragments.parts.push(payload.slice());
      fragments.bytes += payload.length;
      return null;
    }
    let message = payload;
    let kind = opcode;
    if (this.#fragments) {
      const { parts, bytes } = this.#fragments;
      kind = this.#fragments.opcode;
      message = new Uint8Array(bytes + payload.length);
      let at = 0;
      for (const part of parts) {
        message.set(part, at);
        at += part.length;
      }
      message.set(payload, at);
      this.#fragments = null;
    }
    if (kind === 2) {
      this.onmessage(message.slice());
      return null;
    }
    let text: string;
    try {
      text = strictUtf8.decode(message);
    } catch {
      return new Refusal(CLOSE.invalidData, "text messages must be UTF-8");
    }
    this.onmessage(text);
    return null;
  }

  /** The client's close frame: answered (unless it answers ours), then the connection ends. */
  #closeReceived(payload: Uint8Array): Refusal | null {
    let code: number = CLOSE.normal;
    let reason = "";
    if (payload.length === 1) return new Refusal(CLOSE.protocolError, "a close code is 2 bytes");
    if (payload.length >= 2) {
      code = (payload[0]! << 8) | payload[1]!;
      if (!validCloseCode(code)) return new Refusal(CLOSE.protocolError, "invalid close code");
      try {
        reason = strictUtf8.decode(payload.subarray(2));
      } catch {
        return new Refusal(CLOSE.invalidData, "a close reason must be UTF-8");
      }
    }
    if (this.readyState === ServerWebSocket.OPEN) {
      this.readyState = ServerWebSocket.CLOSING;
      this.#write(closeFrame(payload.length >= 2 ? code : CLOSE.normal, "")).catch(() => {});
    }
    // Ours is (being) written: hang up once it is out. The server closes TCP first (§7.1.1).
    this.#endAfterWrites(code, reason);
    return null;
  }

  /** A protocol violation: a close frame saying why, then the connection ends. */
  #refuse(refusal: Refusal): void {
    if (this.readyState === ServerWebSocket.OPEN) {
      this.readyState = ServerWebSocket.CLOSING;
      this.#write(closeFrame(refusal.code, refusal.reason)).catch(() => {});
    }
    this.#endAfterWrites(refusal.code, refusal.reason);
  }

  /** Ends the connection once what is being written (a close frame) is out. */
  #endAfterWrites(code: number, reason: string): void {
    this.#ending = true;
    // A peer that reads nothing never takes the write: it is hung up on all the same.
    this.#closeTimer ??= setTimeout(() => this.#end(code, reason), CLOSE_WAIT_MS);
    const out = this.#tail ?? Promise.resolve();
    void out.catch(() => {}).finally(() => this.#end(code, reason));
  }

  /** Ends the connection and tells the handler, once. */
  #end(code: number, reason: string): void {
    if (this.readyState === ServerWebSocket.CLOSED) return;
    this.readyState = ServerWebSocket.CLOSED;
    this.#stopTicking?.();
    this.#stopTicking = null;
    clearTimeout(this.#closeTimer);
    this.#fragments = null;
    try {
      this.#conn?.close();
    } catch { /* closed already */ }
    this.onclose(code, reason);
    this.#resolveClosed();
  }
}
