/**
 * HTTP/1.1 on the wire, for the listener in `http_server.ts`: reading a connection with
 * deadlines, parsing a request's head, a request body (Content-Length or chunked) as a stream,
 * and a response's head. Only what a chat server's clients send is accepted; anything else gets
 * a 4xx that says what was wrong (RFC 9112's rules where they guard against request smuggling:
 * no body framed twice, no folded headers, no bare transfer codings).
 * @module
 */

/** A request head larger than this is refused (431). */
export const MAX_HEAD_BYTES = 32 * 1024;
/** More header lines than this are refused (431). */
const MAX_HEADERS = 100;
/** A chunk-size line (with extensions) or a trailer line longer than this is malformed. */
const MAX_LINE = 4096;

const TIMED_OUT = Symbol("timed out");
/** A connection's first read buffer: enough for most request heads. */
const INITIAL_BYTES = 1024;
/** The most a body read asks for at once. */
const BODY_READ_BYTES = 64 * 1024;

/** A connection's bytes, read into one buffer that grows only as a request head needs. */
export class Input {
  buf: Uint8Array;
  start = 0;
  end = 0;
  readonly #conn: Deno.Conn;
  #abandoned = false;

  constructor(conn: Deno.Conn, size = INITIAL_BYTES) {
    this.#conn = conn;
    this.buf = new Uint8Array(size);
  }

  /** Bytes read and not yet taken. */
  get size(): number {
    return this.end - this.start;
  }

  /**
   * Reads more, waiting at most `ms` (0: no limit): true when bytes came, false at the end (or a
   * reset), TIMED_OUT when none came in time. After TIMED_OUT nothing more is read (a read is
   * still pending on the connection): it is to be closed.
   */
  async more(ms: number): Promise<boolean | typeof TIMED_OUT> {
    // A read left pending by a timeout still owns the buffer's tail: nothing more is read.
    if (this.#abandoned) return false;
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    const read = this.#conn.read(this.buf.subarray(this.end));
    let n: number | null | typeof TIMED_OUT;
    try {
      if (ms > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        n = await Promise.race([
          read,
          new Promise<typeof TIMED_OUT>((resolve) => {
            timer = setTimeout(() => resolve(TIMED_OUT), ms);
          }),
        ]);
        clearTimeout(timer);
        if (n === TIMED_OUT) {
          this.#abandoned = true;
          read.catch(() => {});
          return TIMED_OUT;
        }
      } else {
        n = await read;
      }
    } catch {
      return false;
    }
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** Makes room to read `bytes` at once (a body: fewer, bigger reads), up to 64 KiB. */
  reserve(bytes: number): void {
    const want = Math.min(BODY_READ_BYTES, bytes);
    if (this.buf.length - this.size >= want) return;
    const bigger = new Uint8Array(Math.max(want + this.size, this.buf.length));
    bigger.set(this.buf.subarray(this.start, this.end));
    this.end = this.size;
    this.start = 0;
    this.buf = bigger;
  }

  /** Gives back a buffer grown for a body once it is empty (an idle keep-alive connection). */
  shrink(): void {
    if (this.size === 0 && this.buf.length > INITIAL_BYTES) {
      this.buf = new Uint8Array(INITIAL_BYTES);
      this.start = this.end = 0;
    }
  }

  /** Takes up to `n` bytes (a copy: the buffer is reused). */
  take(n: number): Uint8Array {
    const bytes = this.buf.slice(this.start, this.start + Math.min(n, this.size));
    this.start += bytes.length;
    return bytes;
  }

  /** What is left unread, handed on (to a WebSocket). */
  rest(): Uint8Array {
    return this.take(this.size);
  }

  /** The next line (without CR LF) if a whole one is buffered, else null. */
  line(): string | null {
    const at = this.buf.subarray(this.start, this.end).indexOf(10);
    if (at < 0) return null;
    let stop = this.start + at;
    if (stop > this.start && this.buf[stop - 1] === 13) stop--;
    const text = latin1(this.buf.subarray(this.start, stop));
    this.start += at + 1;
    return text;
  }

  /** The length of a complete request head at the front of the buffer (up to its blank line), or -1. */
  headLength(): number {
    const view = this.buf.subarray(this.start, this.end);
    let from = 0;
    while (true) {
      const lf = view.indexOf(10, from);
      if (lf < 0) return -1;
      if (view[lf + 1] === 10) return lf + 2;
      if (view[lf + 1] === 13 && view[lf + 2] === 10) return lf + 3;
      if (lf + 2 >= view.length) return -1;
      from = lf + 1;
    }
  }
}

/** Bytes as ISO-8859-1 text, as HTTP's header bytes are read (and as `Headers` takes them). */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return text;
}

/** A parsed request head. */
export interface Head {
  method: string;
  target: string;
  /** "1.0" or "1.1". */
  version: string;
  headers: Headers;
  /** How the body is framed: none, a length, or chunked. */
  body: { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };
}

/** A request that cannot be served: the status and what to tell the client. */
export class HttpRefusal {
  constructor(readonly status: number, readonly message: string) {}
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/(\d\.\d)$/;

/** Parses a request head (its text, blank line included). */
export function parseHead(text: string): Head | HttpRefusal {
  const lines = text.split(/\r?\n/);
  // A client may send empty lines before a request (RFC 9112 §2.2).
  while (lines.length > 0 && lines[0] === "") lines.shift();
  const match = REQUEST_LINE.exec(lines[0] ?? "");
  if (!match) return new HttpRefusal(400, "The request line must be METHOD TARGET HTTP/1.1");
  const [, method, target, version] = match as unknown as [string, string, string, string];
  if (version !== "1.1" && version !== "1.0") {
    return new HttpRefusal(505, "Only HTTP/1.1 (and 1.0) are served here");
  }
  const headers = new Headers();
  let count = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") break;
    if (++count > MAX_HEADERS) {
      return new HttpRefusal(431, `Send at most ${MAX_HEADERS} header lines`);
    }
    if (line[0] === " " || line[0] === "\t") {
      return new HttpRefusal(400, "Folded header lines are not accepted: send each on one line");
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!TOKEN.test(name)) return new HttpRefusal(400, "A header line must be NAME: VALUE");
    try {
      headers.append(name, line.slice(colon + 1).trim());
    } catch {
      return new HttpRefusal(400, `The ${name} header holds characters a header may not`);
    }
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without a Host, or with more than one, is refused.
  const host = headers.get("host");
  if (version === "1.1" && (host === null || host.includes(","))) {
    return new HttpRefusal(400, "Send one Host header (HTTP/1.1 requires it)");
  }
  const te = headers.get("transfer-encoding");
  const cl = headers.get("content-length");
  let body: Head["body"] = { kind: "none" };
  if (te !== null) {
    if (cl !== null) {
      return new HttpRefusal(400, "Send Content-Length or Transfer-Encoding, not both");
    }
    if (te.trim().toLowerCase() !== "chunked") {
      return new HttpRefusal(501, "The only transfer coding served is chunked");
    }
    body = { kind: "chunked" };
  } else if (cl !== null) {
    if (!/^\d{1,15}$/.test(cl)) {
      return new HttpRefusal(400, "Content-Length must be one number of bytes");
    }
    const length = Number(cl);
    if (length > 0) body = { kind: "length", length };
  }
  if (!(target.startsWith("/") || /^https?:\/\//i.test(target) || target === "*")) {
    return new HttpRefusal(400, "The request target must be a path starting with /");
  }
  return { method, target, version, headers, body };
}

/** What a body's reader needs: the deadlines and what to do before the first read. */
export interface BodyOptions {
  /** Longest pause between a body's bytes; 0: none. */
  idleMs: number;
  /** Time for the whole body from its first read; 0: none. */
  totalMs: number;
  /** Called before the first read from the connection (to send 100 Continue). */
  beforeRead(): void;
}

/**
 * A request body read off the connection as the handler asks for it. Errors, as the HTTP app
 * maps them: `Deno.errors.TimedOut` (the body stalled: 408), `Deno.errors.Http` (malformed
 * chunked coding: 400), `Deno.errors.UnexpectedEof` (the client left mid-body).
 */
export class RequestBody {
  /** The whole body has been read. */
  done = false;
  /** The body stopped arriving in time (the connection must close). */
  stalled = false;
  readonly #input: Input;
  readonly #options: BodyOptions;
  #remaining: number;
  readonly #chunked: boolean;
  #phase: "size" | "data" | "crlf" | "trailers" = "size";
  #endBy = 0;
  #readAny = false;

  constructor(input: Input, framing: Head["body"], options: BodyOptions) {
    this.#input = input;
    this.#options = options;
    this.#chunked = framing.kind === "chunked";
    this.#remaining = framing.kind === "length" ? framing.length : 0;
    if (framing.kind === "none") this.done = true;
  }

  /** Bytes of a Content-Length body still unread; Infinity for chunked. */
  get remaining(): number {
    return this.#chunked ? Infinity : this.#remaining;
  }

  /** The body as a stream (pulled only when read). */
  stream(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.next();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
  }

  /** Reads and drops the rest of the body; false when it failed or came too slowly. */
  async drain(): Promise<boolean> {
    try {
      while (await this.next() !== null) { /* dropped */ }
      return true;
    } catch {
      return false;
    }
  }

  /** The next piece of the body, or null at its end. */
  async next(): Promise<Uint8Array | null> {
    while (!this.done) {
      const input = this.#input;
      if (!this.#chunked) {
        if (input.size > 0) {
          const bytes = input.take(this.#remaining);
          this.#remaining -= bytes.length;
          if (this.#remaining === 0) this.done = true;
          return bytes;
        }
      } else {
        const piece = this.#chunkStep();
        if (piece !== undefined) return piece;
        if (this.done) break;
      }
      await this.#fill();
    }
    return null;
  }

  /** One step of the chunked coding: bytes, or undefined when more must be read. */
  #chunkStep(): Uint8Array | undefined {
    const input = this.#input;
    while (true) {
      if (this.#phase === "data") {
        if (input.size === 0) return undefined;
        const bytes = input.take(this.#remaining);
        this.#remaining -= bytes.length;
        if (this.#remaining === 0) this.#phase = "crlf";
        return bytes;
      }
      const line = input.line();
      if (line === null) {
        if (input.size > MAX_LINE) throw new Deno.errors.Http("a chunked body's line is too long");
        return undefined;
      }
      if (this.#phase === "crlf") {
        if (line !== "") throw new Deno.errors.Http("a chunk did not end where its size said");
        this.#phase = "size";
      } else if (this.#phase === "size") {
        const size = /^([0-9A-Fa-f]{1,12})[ \t]*(;.*)?$/.exec(line);
        if (!size) throw new Deno.errors.Http(`a malformed chunk size: ${line.slice(0, 20)}`);
        this.#remaining = parseInt(size[1]!, 16);
        this.#phase = this.#remaining === 0 ? "trailers" : "data";
      } else if (line === "") {
        this.done = true;
        return undefined;
      }
      // Trailer lines are read and ignored.
    }
  }

  /** Reads more of the body from the connection, within its deadlines. */
  async #fill(): Promise<void> {
    const { idleMs, totalMs } = this.#options;
    if (!this.#readAny) {
      this.#readAny = true;
      this.#endBy = totalMs > 0 ? Date.now() + totalMs : 0;
      this.#options.beforeRead();
    }
    this.#input.reserve(this.#chunked ? BODY_READ_BYTES : this.#remaining);
    let wait = idleMs;
    if (this.#endBy > 0) wait = Math.max(1, Math.min(idleMs, this.#endBy - Date.now()));
    const got = await this.#input.more(wait);
    if (got === TIMED_OUT) {
      this.stalled = true;
      throw new Deno.errors.TimedOut("the request body came too slowly");
    }
    if (!got) throw new Deno.errors.UnexpectedEof("the request body ended early");
  }
}

/** Reason phrases for the statuses the server sends. */
const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

export function reason(status: number): string {
  return REASONS[status] ?? "";
}

let dateSecond = 0;
let dateText = "";
/** The Date header's value, made once a second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
