/**
 * What the core knows of a connection: a `Peer` it can send frames to and close. Transports
 * implement it; the core never sees a socket.
 * @module
 */

import type { ServerFrame } from "../../protocol/frames.ts";

/** A frame on its way out, encoded at most once per wire format however many peers get it. */
export class Outbound {
  /** The frame itself. */
  readonly frame: ServerFrame;
  #encoded = new Map<string, unknown>();

  /** Wraps a frame for delivery. */
  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** Returns the frame encoded by `encode`, computing it once per `format` (e.g. JSON line bytes). */
  encoded<T>(format: string, encode: (frame: ServerFrame) => T): T {
    if (this.#encoded.has(format)) return this.#encoded.get(format) as T;
    const value = encode(this.frame);
    this.#encoded.set(format, value);
    return value;
  }
}

/** Which wire a connection came in on. */
export type Transport = "tcp-json" | "tcp-text" | "ws" | "sse" | "rest";

/** A connection as the core sees it. */
export interface Peer {
  /** The wire this peer uses. */
  readonly transport: Transport;
  /** The remote address. */
  readonly ip: string;
  /** Queues a frame for this peer; never blocks. */
  send(out: Outbound): void;
  /** Closes the connection after what is queued, if possible. */
  close(reason: string): void;
}
