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

/** Opens an SSE stream for an already authenticated token; the response body is the stream. */
export function openEventStream(
  hub: Hub,
  options: {
    /** The user, whose token the HTTP layer has checked. */
    user: string;
    since?: string | undefined;
    ip: string;
    log: Logger;
    maxOutboundBytes?: number;
    /** A comment line this often keeps proxies from closing an idle stream. */
    keepaliveMs?: number;
  },
): Response {
  const max = options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let id = 0;
  let closed = false;
  let keepalive: ReturnType<typeof setInterval> | undefined;

  const shut = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepalive);
    hub.disconnect(id);
  };
  const queue = new OutboundQueue<Uint8Array>({
    size: (b) => b.length,
    join: joinEvents,
    // One enqueue per write: a burst becomes one chunk on the wire.
    write: (chunk) => controller.enqueue(chunk),
    // desiredSize goes negative by the bytes the client has not taken yet.
    backlog: () => Math.max(0, -(controller.desiredSize ?? 0)),
    slow: () => {
      options.log.warn("dropping slow sse reader", { ip: options.ip });
      queue.finish(
        sseEvent({
          type: "bye",
          code: "too_slow",
          reason: "You fell too far behind reading; reconnect to catch up",
        }),
        { forgetBacklog: true },
      );
      peer.close("too slow");
    },
    failed: () => shut(),
  }, max);
  const peer: Peer = {
    transport: "sse",
    ip: options.ip,
    send(out: Outbound) {
      if (!closed) queue.push(out.encoded("sse", sseEvent));
    },
    close() {
      if (closed) return;
      queue.seal();
      queue.flushNow();
      shut();
      try {
        controller.close();
      } catch { /* already closed */ }
    },
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        id = hub.connect(peer);
        controller.enqueue(encoder.encode(": connected\n\n"));
        keepalive = setInterval(() => {
          if (!closed) controller.enqueue(encoder.encode(": keepalive\n\n"));
        }, options.keepaliveMs ?? HEARTBEAT_MS);
        void hub.attach(id, options.user, options.since);
      },
      cancel() {
        shut();
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
