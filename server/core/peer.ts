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
  // Most frames are encoded in one format (an ack, a room with one kind of wire): that one is
  // kept in two fields, and a Map (~200 bytes) is made only for a second format.
  #format: string | undefined;
  #value: unknown;
  #more: Map<string, unknown> | undefined;

  /** Wraps a frame for delivery. */
  constructor(frame: ServerFrame) {
    this.frame = frame;
  }

  /** Returns the frame encoded by `encode`, computing it once per `format` (e.g. JSON line bytes). */
  encoded<T>(format: string, encode: (frame: ServerFrame) => T): T {
    if (this.#format === format) return this.#value as T;
    if (this.#more?.has(format)) return this.#more.get(format) as T;
    const value = encode(this.frame);
    if (this.#format === undefined) {
      this.#format = format;
      this.#value = value;
    } else {
      (this.#more ??= new Map()).set(format, value);
    }
    return value;
  }
}

/** The frames of one tick joined into one buffer, for one write. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Wraps a transport's join of a tick's frames so that the last result is reused when the next
 * connection's queue holds the very same parts. In a room every reader's queue holds the same
 * shared encodings in the same order, so a burst to 1,000 readers is joined once, not 1,000
 * times (a fan-out burst's profile had 13% of the server's time in this copy on TCP). The
 * result is shared: nobody may write into it.
 */
export function reuseLastJoin<P, R>(join: (parts: P[]) => R): (parts: P[]) => R {
  let last: { parts: P[]; joined: R } | null = null;
  return (parts) => {
    if (last && last.parts.length === parts.length && last.parts.every((p, i) => p === parts[i])) {
      return last.joined;
    }
    const joined = join(parts);
    last = { parts, joined };
    return joined;
  };
}

/** Which wire a connection came in on. */
export type Transport = "tcp-json" | "tcp-text" | "tcp-jim" | "irc" | "ws" | "sse" | "rest";

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
