/**
 * The WebSocket wire: the same JSON frames as TCP JSON mode, one per WebSocket message (what
 * `JSON.parse(event.data)` expects). Messages queued while the socket waited go out in one
 * write; a client may send several frames in one message, one per line or back to back.
 * @module
 */

import {
  type ClientFrame,
  encodeFrame,
  ProtocolError,
  type ServerFrame,
} from "../../protocol/frames.ts";
import { decodeClientFrame, refOfLine } from "../../protocol/decode.ts";
import { LOGIN_TIMEOUT_MS, MAX_OUTBOUND_BYTES } from "../../protocol/limits.ts";
import type { Hub } from "../core/hub.ts";
import { concatBytes, type Outbound, type Peer, reuseLastJoin } from "../core/peer.ts";
import type { Logger } from "../log.ts";
import { splitJson } from "./json_framing.ts";
import { OutboundQueue } from "./outbound.ts";
import { CLOSE, type ServerWebSocket } from "./websocket.ts";
import { encodeFrame as encodeWsFrame } from "./websocket_frames.ts";

/** How long a closing socket waits for a write in flight before its close frame goes anyway. */
const CLOSE_AFTER_MS = 2000;
/** Binary messages are read as UTF-8 text, strictly. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Frames a client may have in flight before it is cut off (a flood, not a chat). */
const MAX_PENDING_FRAMES = 256;

const encoder = new TextEncoder();

/** A frame as one WebSocket text message, encoded once for every reader it goes to. */
function wsMessage(frame: ServerFrame): Uint8Array {
  return encodeWsFrame(1, encoder.encode(encodeFrame(frame)));
}

/**
 * Messages queued while the socket waited, as one write; joined once for all readers whose
 * queues match (a room's readers share the bytes, as on TCP). Each frame stays its own message:
 * clients that parse every message as one JSON object, as most do, need nothing more.
 */
const joinMessages = reuseLastJoin(concatBytes);

/**
 * Serves one upgraded WebSocket; `user` (from a checked token) logs it in at once. The socket
 * bounds a message's size itself (`maxMessageBytes`, from its frame header).
 */
export function serveWebSocket(
  hub: Hub,
  socket: ServerWebSocket,
  options: {
    ip: string;
    /** The user, when the upgrade carried a token (checked by the HTTP layer), and the token. */
    user?: string | undefined;
    token?: string | undefined;
    since?: string | undefined;
    log: Logger;
    maxOutboundBytes?: number;
    /** Time to log in before the socket is closed (as on TCP). */
    loginTimeoutMs?: number;
  },
): void {
  const peer = new WsPeer(
    socket,
    options.ip,
    options.log,
    options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES,
  );
  // Whoever has not logged in by then (a forgotten socket, a slowloris) is let go.
  const loginTimer = setTimeout(
    () => peer.fail("too_slow", "You did not log in in time; connect again when ready"),
    options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS,
  );
  peer.onWelcome = () => clearTimeout(loginTimer);
  const id = hub.connect(peer);
  let pending = 0;
  const receive = (frame: ClientFrame) => {
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
    if (options.user !== undefined) {
      void hub.attach(id, options.user, options.since, options.token);
    }
  };
  socket.onoversize = (limit) =>
    peer.fail(
      "too_long",
      `A message was longer than ${limit} bytes; the connection is closed`,
      CLOSE.tooBig,
    );
  const one = (text: string, several: boolean): void => {
    try {
      receive(decodeClientFrame(text));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      // A message holding several frames (one per line, back to back): each on its own.
      if (!several && error.code === "bad_json") {
        const items = splitJson(text);
        if (items.length > 1) return items.forEach((item) => one(item, true));
      }
      void hub.reject(id, error, refOfLine(text));
    }
  };
  socket.onmessage = (data) => {
    if (typeof data === "string") return one(data, false);
    // A binary message holding UTF-8 JSON (what a library sends for bytes) is read as text.
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      void hub.reject(
        id,
        new ProtocolError("bad_frame", "Send frames as text messages holding JSON (UTF-8)"),
      );
      return;
    }
    one(text, false);
  };
  // The hub lets go once: when the socket closes, or at once when the server closes it (a
  // dropped slow reader may never answer the closing handshake, and must not look online).
  let gone = false;
  const leave = () => {
    if (gone) return;
    gone = true;
    void hub.whenHandled(id).finally(() => hub.disconnect(id));
  };
  peer.onClose = () => {
    clearTimeout(loginTimer);
    leave();
  };
  socket.onclose = () => {
    peer.closed = true;
    clearTimeout(loginTimer);
    leave();
  };
}

class WsPeer implements Peer {
  readonly transport = "ws" as const;
  readonly ip: string;
  closed = false;
  #socket: ServerWebSocket;
  #log: Logger;
  #queue: OutboundQueue<Uint8Array>;
  /** Called once the server has closed this socket. */
  onClose: () => void = () => {};
  /** Called when the connection is logged in. */
  onWelcome: () => void = () => {};

  constructor(socket: ServerWebSocket, ip: string, log: Logger, max: number) {
    this.#socket = socket;
    this.ip = ip;
    this.#log = log;
    this.#queue = new OutboundQueue<Uint8Array>({
      size: (bytes) => bytes.length,
      join: joinMessages,
      // A promise per write, as on TCP: the queue counts what is in flight and joins what
      // queues meanwhile into the next write.
      write: (bytes) => this.#socket.sendFramed(bytes),
      slow: (queued, buffered) => {
        this.#log.warn("dropping slow websocket reader", { ip: this.ip, buffered, queued });
        this.#finish(
          "too_slow",
          "You fell too far behind reading; reconnect to catch up",
          { forgetBacklog: true },
        );
      },
      failed: (error) => this.#log.debug("websocket send failed", { ip: this.ip, error }),
    }, max);
  }

  send(out: Outbound): void {
    if (this.closed) return;
    if (out.frame.type === "welcome") this.onWelcome();
    this.#queue.push(out.encoded("ws", wsMessage));
  }

  /** Sends a last `bye` with a reason after what is queued, and closes (with `closeCode`). */
  fail(code: "too_slow" | "too_long", reason: string, closeCode: number = CLOSE.policy): void {
    this.#finish(code, reason, { forgetBacklog: false }, closeCode);
  }

  #finish(
    code: "too_slow" | "too_long",
    reason: string,
    options: { forgetBacklog: boolean },
    closeCode: number = CLOSE.policy,
  ): void {
    if (this.closed) return;
    this.#queue.finish(wsMessage({ type: "bye", code, reason }), options);
    this.close(reason, closeCode);
  }

  /**
   * Sends what is queued (a goodbye among it), then the close frame: 1001 (going away) for a
   * shutdown, else `closeCode`. A write still in flight is waited for, at most CLOSE_AFTER_MS
   * (a reader that stopped reading may never take it).
   */
  close(reason: string, closeCode: number = CLOSE.policy): void {
    if (this.closed) return;
    this.#queue.seal();
    this.#queue.flushNow();
    this.closed = true;
    const code = reason.includes("shutting down") ? CLOSE.goingAway : closeCode;
    const shut = () => this.#socket.close(code, reason);
    if (this.#queue.idle) {
      shut();
    } else {
      const timer = setTimeout(shut, CLOSE_AFTER_MS);
      void this.#queue.drained().then(() => {
        clearTimeout(timer);
        shut();
      });
    }
    this.onClose();
  }
}
