/**
 * The Server-Sent Events wire: the same frames as WebSocket, one SSE event each, for clients
 * that cannot use WebSocket. Stored messages carry their ULID as the event id, so a client
 * reconnecting with `Last-Event-ID` gets everything it missed.
 * @module
 */

import { encodeFrame, type ServerFrame } from "../../protocol/frames.ts";
import { HEARTBEAT_MS, MAX_OUTBOUND_BYTES } from "../../protocol/limits.ts";
import type { Hub } from "../core/hub.ts";
import { concatBytes, type Outbound, type Peer, reuseLastJoin } from "../core/peer.ts";
import type { Logger } from "../log.ts";
import { OutboundQueue } from "./outbound.ts";

/** A batch of events as one chunk, joined once for all readers whose queues match. */
const joinEvents = reuseLastJoin(concatBytes);

const encoder = new TextEncoder();

/**
 * Encodes one frame as an SSE event. Only live messages carry an `id:` (their ULID): those
 * arrive in id order, so the last id a client saw is a safe resume point. History pages span
 * several chats whose ids interleave, so they carry none.
 */
function sseEvent(frame: ServerFrame): Uint8Array {
  const id = frame.type === "message" || frame.type === "private" ? frame.id : undefined;
  return encoder.encode(`${id ? `id: ${id}\n` : ""}data: ${encodeFrame(frame)}\n\n`);
}

/** What an event stream needs to know. */
export interface EventStreamOptions {
  /** The user, whose token the HTTP layer has checked, and the token (revoking it ends the stream). */
  user: string;
  token: string;
  since?: string | undefined;
  ip: string;
  log: Logger;
  maxOutboundBytes?: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  keepaliveMs?: number;
}

/** Opens an SSE stream for an already authenticated user; the response body is the stream. */
export function openEventStream(hub: Hub, options: EventStreamOptions): Response {
  let peer!: SsePeer;
  const body = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        peer = new SsePeer(hub, controller, options);
        void hub.attach(peer.id, options.user, options.since, options.token);
      },
      cancel() {
        peer.gone();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}

/** One event stream as the hub's `Peer`. */
class SsePeer implements Peer {
  readonly transport = "sse" as const;
  readonly ip: string;
  readonly id: number;
  #hub: Hub;
  #controller: ReadableStreamDefaultController<Uint8Array>;
  #queue: OutboundQueue<Uint8Array>;
  #keepalive: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(
    hub: Hub,
    controller: ReadableStreamDefaultController<Uint8Array>,
    options: EventStreamOptions,
  ) {
    this.#hub = hub;
    this.#controller = controller;
    this.ip = options.ip;
    this.#queue = new OutboundQueue<Uint8Array>({
      size: (b) => b.length,
      join: joinEvents,
      // One enqueue per write: a burst becomes one chunk on the wire.
      write: (chunk) => controller.enqueue(chunk),
      // desiredSize goes negative by the bytes the client has not taken yet.
      backlog: () => Math.max(0, -(controller.desiredSize ?? 0)),
      slow: () => {
        options.log.warn("dropping slow sse reader", { ip: options.ip });
        this.#queue.finish(
          sseEvent({
            type: "bye",
            code: "too_slow",
            reason: "You fell too far behind reading; reconnect to catch up",
          }),
          { forgetBacklog: true },
        );
        this.close();
      },
      failed: () => this.gone(),
    }, options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES);
    this.id = hub.connect(this);
    controller.enqueue(encoder.encode(": connected\n\n"));
    this.#keepalive = setInterval(() => {
      if (!this.#closed) controller.enqueue(encoder.encode(": keepalive\n\n"));
    }, options.keepaliveMs ?? HEARTBEAT_MS);
  }

  send(out: Outbound): void {
    if (!this.#closed) this.#queue.push(out.encoded("sse", sseEvent));
  }

  /** Sends what is queued, then ends the stream. */
  close(): void {
    if (this.#closed) return;
    this.#queue.seal();
    this.#queue.flushNow();
    this.gone();
    try {
      this.#controller.close();
    } catch { /* already closed */ }
  }

  /** The stream is over (closed here, or by the client): the hub lets go. */
  gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    this.#hub.disconnect(this.id);
  }
}
