/**
 * The WebSocket wire: the same JSON frames as TCP JSON mode. Frames queued within one tick
 * go out as one WebSocket message, separated by newlines; a client may also send several
 * frames in one message, one per line.
 * @module
 */

import {
  decodeClientFrame,
  encodeFrame,
  ProtocolError,
  type ServerFrame,
} from "../../protocol/frames.ts";
import { MAX_LINE_BYTES, MAX_OUTBOUND_BYTES } from "../../protocol/limits.ts";
import type { Hub } from "../core/hub.ts";
import { type Outbound, type Peer, reuseLastJoin } from "../core/peer.ts";
import type { Logger } from "../log.ts";

/** Frames a client may have in flight before it is cut off (a flood, not a chat). */
const MAX_PENDING_FRAMES = 256;

function jsonText(frame: ServerFrame): string {
  return encodeFrame(frame);
}

/** Serves one upgraded WebSocket; `user` (from a checked token) logs it in at once. */
export function serveWebSocket(
  hub: Hub,
  socket: WebSocket,
  options: {
    ip: string;
    /** The user, when the upgrade carried a token (checked by the HTTP layer). */
    user?: string | undefined;
    since?: string | undefined;
    log: Logger;
    maxOutboundBytes?: number;
  },
): void {
  const peer = new WsPeer(
    socket,
    options.ip,
    options.log,
    options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES,
  );
  const id = hub.connect(peer);
  let pending = 0;
  const receive = (frame: Parameters<Hub["receive"]>[1]) => {
    if (++pending > MAX_PENDING_FRAMES) {
      peer.fail(
        "too_long",
        `More than ${MAX_PENDING_FRAMES} frames in flight: wait for replies before sending more`,
      );
      return;
    }
    void hub.receive(id, frame).finally(() => pending--);
  };
  socket.onopen = () => {
    if (options.user !== undefined) void hub.attach(id, options.user, options.since);
  };
  socket.onmessage = (event) => {
    if (typeof event.data !== "string") {
      hub.reject(
        id,
        new ProtocolError("bad_frame", "Send frames as text messages holding JSON, not binary"),
      );
      return;
    }
    if (event.data.length > MAX_LINE_BYTES) {
      peer.fail(
        "too_long",
        `A message was longer than ${MAX_LINE_BYTES} bytes; the connection is closed`,
      );
      return;
    }
    for (const line of event.data.split("\n")) {
      if (line.trim() === "") continue;
      try {
        receive(decodeClientFrame(line));
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        hub.reject(id, error);
      }
    }
  };
  // The hub lets go once: when the socket closes, or at once when the server closes it (a
  // dropped slow reader may never answer the closing handshake, and must not look online).
  let gone = false;
  const leave = () => {
    if (gone) return;
    gone = true;
    void hub.settle(id).finally(() => hub.disconnect(id));
  };
  peer.onClose = leave;
  socket.onclose = () => {
    peer.closed = true;
    leave();
  };
  socket.onerror = () => {/* onclose follows */};
}

class WsPeer implements Peer {
  readonly transport = "ws" as const;
  readonly ip: string;
  closed = false;
  #socket: WebSocket;
  #log: Logger;
  #max: number;
  #queue: string[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  /** Called once the server has closed this socket. */
  onClose: () => void = () => {};

  constructor(socket: WebSocket, ip: string, log: Logger, max: number) {
    this.#socket = socket;
    this.ip = ip;
    this.#log = log;
    this.#max = max;
  }

  send(out: Outbound): void {
    if (this.closed) return;
    const text = out.encoded("json", jsonText);
    this.#queue.push(text);
    this.#queuedBytes += text.length;
    // What the socket still holds is added once a tick, in #flush (asking costs a call into Deno).
    if (this.#queuedBytes > this.#max) return this.#dropSlow(0);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Everything queued in this tick goes out as one WebSocket message.
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0 || this.closed || this.#socket.readyState !== WebSocket.OPEN) {
      return;
    }
    const buffered = Number.isFinite(this.#socket.bufferedAmount) ? this.#socket.bufferedAmount : 0;
    if (this.#queuedBytes + buffered > this.#max) return this.#dropSlow(buffered);
    this.#write();
  }

  /** Sends what is queued as one message, whatever the socket still holds. */
  #write(): void {
    if (this.#queue.length === 0 || this.#socket.readyState !== WebSocket.OPEN) return;
    const text = this.#queue.length === 1 ? this.#queue[0]! : joinLines(this.#queue);
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      this.#socket.send(text);
    } catch (error) {
      this.#log.debug("websocket send failed", { ip: this.ip, error });
    }
  }

  /** A reader this far behind would hold memory for everyone: tell it why and close. */
  #dropSlow(buffered: number): void {
    this.#log.warn("dropping slow websocket reader", {
      ip: this.ip,
      buffered,
      queued: this.#queuedBytes,
    });
    this.#queue = [];
    this.#queuedBytes = 0;
    this.fail("too_slow", "You fell too far behind reading; reconnect to catch up");
  }

  /** Sends a last `bye` with a reason and closes. */
  fail(code: "too_slow" | "too_long", reason: string): void {
    if (this.closed) return;
    this.#queue.push(jsonText({ type: "bye", code, reason }));
    this.close(reason);
  }

  /** Sends what is queued (a goodbye among it), then closes. */
  close(reason: string): void {
    if (this.closed) return;
    this.#write();
    this.closed = true;
    try {
      // 1008: policy violation for drops, 1001: going away for shutdown.
      this.#socket.close(reason.includes("shutting down") ? 1001 : 1008, reason.slice(0, 120));
    } catch { /* already closing */ }
    this.onClose();
  }
}

/** A tick's frames as one message, joined once for all readers whose queues match. */
const joinLines = reuseLastJoin((parts: string[]) => parts.join("\n"));
