/**
 * Writing HTTP/1.1 responses for the listener in `http_server.ts`: a body of known length as it
 * streams, server-sent events in chunks (and watched for the client leaving), anything else read
 * whole first to send its length, gzipped when that pays; and hanging up politely.
 * @module
 */

import { httpDate, type Input, reason } from "./http_wire.ts";
import { writeAll } from "./outbound.ts";

/** Bodies from this size on are worth compressing. */
const COMPRESS_FROM_BYTES = 1024;
const COMPRESSIBLE = /^(text\/|application\/(json|javascript|xml|manifest\+json)|image\/svg)/;
/** Before hanging up on a client that may still be sending, its bytes are read this long. */
const LINGER_MS = 1000;

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/**
 * Writes a response: a body of known length as it streams, server-sent events in chunks,
 * anything else read whole first (to send its length, and compressed when that pays).
 * False when the client went away before it was all written.
 */
export async function writeResponse(
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
  // A HEAD answered without a body (Hono drops a GET route's) cannot tell its length: none is
  // sent rather than a wrong 0 (RFC 9110 §9.3.2).
  const unknownLength = options.head && response.body === null;
  if (bytes !== null && !noBody && !unknownLength) lines += `content-length: ${bytes.length}\r\n`;
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
export async function linger(conn: Deno.Conn, input: Input | null): Promise<void> {
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
export async function refuse(conn: Deno.Conn, limit: number): Promise<void> {
  const response = Response.json({
    error: {
      code: "rate_limited",
      message: `Too many connections from your address (the limit is ${limit}): ` +
        "close some and try again",
    },
  }, { status: 429, headers: { "retry-after": "5" } });
  await writeResponse(conn, null, response, { head: false, close: true, gzip: false });
  try {
    conn.close();
  } catch { /* gone already */ }
}
