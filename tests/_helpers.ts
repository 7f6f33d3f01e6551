/**
 * Test helpers: the real server in a child process on free ports, line clients over real
 * sockets, and fakes for core unit tests (clock, peer).
 * @module
 */

import type { ServerFrame } from "../protocol/frames.ts";
import { Hub, type HubOptions } from "../server/core/hub.ts";
import type { Outbound, Peer, Transport } from "../server/core/peer.ts";
import { scryptHasher } from "../server/passwords.ts";
import { KvStore } from "../server/store/kv_store.ts";
import { withTimeout } from "./_server_process.ts";

import { type ServerProcess, startServer } from "./_server_process.ts";

export { addRootAdmin, type ServerProcess, startServer, withTimeout } from "./_server_process.ts";

/** The real server with a fresh data file, as `await using server = await withServer()`. */
export interface TestServer extends ServerProcess, AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  base: string;
  /** The KV file, in a temporary folder removed on dispose. */
  data: string;
  dir: string;
}

/** Starts the real server on free ports; disposing it stops it and removes its data. */
export async function withServer(
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<TestServer> {
  const dir = await Deno.makeTempDir({ prefix: "chat_test_" });
  const data = `${dir}/chat.kv`;
  const server = await startServer({ data, ...options });
  return {
    ...server,
    base: `http://127.0.0.1:${server.httpPort}`,
    data,
    dir,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A token for `username`, whose password is `${username}-password` (registered if new). */
export async function tokenFor(base: string, username: string): Promise<string> {
  const r = await api(base, "POST", "/api/v1/session", undefined, {
    username,
    password: `${username}-password`,
  });
  if (r.status !== 201) throw new Error(`login of ${username} failed: ${JSON.stringify(r.json)}`);
  return r.json.token as string;
}

/** Sends raw bytes to an HTTP port and returns everything the server answers until it closes. */
export async function rawRequest(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(request));
  let text = "";
  for await (const chunk of conn.readable) text += new TextDecoder().decode(chunk);
  return text;
}

/** How long a test waits for something that should happen at once, before failing with what it saw. */
export const WAIT_MS = 5000;

/** Calls an HTTP route with a JSON body and a bearer token; returns the status and the parsed body. */
export async function api(
  base: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

const CLEAR_LINE = "\r\x1b[K";

/** A line as a terminal shows it: "\r ESC[K" wipes what was on the line (the prompt). */
function screenLine(raw: string): string {
  const line = raw.replace(/\r$/, "");
  const i = line.lastIndexOf(CLEAR_LINE);
  return i >= 0 ? line.slice(i + CLEAR_LINE.length) : line;
}

/** A line-oriented TCP client that keeps everything received and lets a test wait for a line. */
export class LineClient {
  readonly lines: string[] = [];
  #conn: Deno.Conn;
  #consumed = new Set<number>();
  #waiters = new Set<() => void>();
  #reading: Promise<void>;
  #closedByPeer = false;
  #encoder = new TextEncoder();

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  /** Connects to the server on `port`. */
  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of this.#conn.readable) {
        buf += decoder.decode(chunk, { stream: true });
        const parts = buf.split("\n");
        buf = parts.pop()!;
        // As a terminal shows it: "\r ESC[K" wipes the prompt that was on the line.
        for (const p of parts) this.lines.push(screenLine(p));
        // A text prompt has no newline: expose the tail as a pseudo-line for prompt checks.
        this.#tail = buf;
        this.onChange();
        for (const w of [...this.#waiters]) w();
      }
    } catch { /* closed */ }
    this.#closedByPeer = true;
    this.onChange();
    for (const w of [...this.#waiters]) w();
  }

  #tail = "";
  /** Called after new lines arrive or the connection closes. */
  onChange: () => void = () => {};

  /** The unterminated text at the end of the stream (a prompt, in text mode). */
  get tail(): string {
    return this.#tail;
  }

  /** Whether the server closed the connection. */
  get closed(): boolean {
    return this.#closedByPeer;
  }

  /** Sends one line (a newline is added). */
  async send(line: string): Promise<void> {
    const bytes = this.#encoder.encode(line + "\n");
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Sends raw bytes. */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Waits until `test` holds for the connection state (or fails after WAIT_MS). */
  async until(test: () => boolean, what: string): Promise<void> {
    if (test()) return;
    let wake!: () => void;
    const changed = () => {
      if (test() || this.#closedByPeer) wake();
    };
    try {
      await withTimeout(
        new Promise<void>((resolve) => {
          wake = resolve;
          this.#waiters.add(changed);
        }),
        WAIT_MS,
        what,
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}; received:\n${this.lines.join("\n")}\n${this.#tail}`,
      );
    } finally {
      this.#waiters.delete(changed);
    }
    if (!test()) {
      throw new Error(
        `connection closed while waiting for ${what}; received:\n${this.lines.join("\n")}`,
      );
    }
  }

  /** Waits for the next not-yet-taken line matching `pattern` and takes it. */
  async line(pattern: RegExp | string): Promise<string> {
    let found = -1;
    const test = () => {
      found = this.lines.findIndex((l, i) =>
        !this.#consumed.has(i) &&
        (typeof pattern === "string" ? l.includes(pattern) : pattern.test(l))
      );
      return found >= 0;
    };
    await this.until(test, `a line matching ${pattern}`);
    this.#consumed.add(found);
    return this.lines[found]!;
  }

  /** Waits until the server closes the connection. */
  async closedByServer(): Promise<void> {
    await this.until(() => this.#closedByPeer, "the server to close the connection");
  }

  /** Closes the connection and waits for the reader to finish. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    await this.#reading;
  }
}

/** Frames received by a client, with waiting by predicate; shared by the TCP, WebSocket and SSE clients. */
export class FrameInbox {
  readonly frames: ServerFrame[] = [];
  /** SSE event ids, parallel to `frames` (undefined where an event had none). */
  readonly ids: Array<string | undefined> = [];
  closed = false;
  #taken = new Set<number>();
  #firstUntaken = 0;
  #waiters = new Set<() => void>();

  /** Adds a received frame. */
  push(frame: ServerFrame, id?: string): void {
    this.frames.push(frame);
    this.ids.push(id);
    for (const w of [...this.#waiters]) w();
  }

  /** Marks the stream ended. */
  end(): void {
    this.closed = true;
    for (const w of [...this.#waiters]) w();
  }

  /** Waits until `test` holds (or fails after WAIT_MS with the last frames). */
  async until(test: () => boolean, what: string): Promise<void> {
    if (test()) return;
    if (this.closed) {
      throw new Error(`stream closed while waiting for ${what}; last frames:\n${this.#recent()}`);
    }
    let wake!: () => void;
    const changed = () => {
      if (test() || this.closed) wake();
    };
    try {
      await withTimeout(
        new Promise<void>((r) => ((wake = r), this.#waiters.add(changed))),
        WAIT_MS,
        what,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; last frames:\n${this.#recent()}`);
    } finally {
      this.#waiters.delete(changed);
    }
    if (!test()) {
      throw new Error(`stream closed while waiting for ${what}; last frames:\n${this.#recent()}`);
    }
  }

  #recent(): string {
    return this.frames.slice(-15).map((f) => JSON.stringify(f).slice(0, 300)).join("\n");
  }

  /** Waits for the next not-yet-taken frame matching `test` and takes it. */
  async frame<T extends ServerFrame = ServerFrame>(
    test: (f: ServerFrame) => boolean,
    what = "a frame",
  ): Promise<T> {
    let found = -1;
    await this.until(() => {
      for (let i = this.#firstUntaken; i < this.frames.length; i++) {
        if (!this.#taken.has(i) && test(this.frames[i]!)) {
          found = i;
          return true;
        }
      }
      return false;
    }, what);
    this.#taken.add(found);
    while (this.#taken.has(this.#firstUntaken)) this.#firstUntaken++;
    return this.frames[found] as T;
  }

  /** Waits for a frame of a given type (optionally also matching `test`). */
  type<K extends ServerFrame["type"]>(
    type: K,
    test: (f: Extract<ServerFrame, { type: K }>) => boolean = () => true,
  ): Promise<Extract<ServerFrame, { type: K }>> {
    return this.frame(
      (f) => f.type === type && test(f as Extract<ServerFrame, { type: K }>),
      `a "${type}" frame`,
    );
  }

  /** Whether any frame received so far matches. */
  has(test: (f: ServerFrame) => boolean): boolean {
    return this.frames.some(test);
  }
}

/** A JSON-lines TCP client: sends frames and waits for frames by predicate. */
export class JsonClient extends FrameInbox {
  #lines: LineClient;
  #seen = 0;

  private constructor(lines: LineClient) {
    super();
    this.#lines = lines;
    const pump = () => {
      while (this.#seen < lines.lines.length) {
        this.push(JSON.parse(lines.lines[this.#seen++]!) as ServerFrame);
      }
      if (lines.closed && !this.closed) this.end();
    };
    lines.onChange = pump;
  }

  /** Connects and, when `hello` is given, sends it and waits for the welcome. */
  static async connect(
    port: number,
    hello?: { username: string; password?: string },
  ): Promise<JsonClient> {
    const c = new JsonClient(await LineClient.connect(port));
    if (hello) {
      await c.send(hello);
      await c.type("welcome");
    }
    return c;
  }

  /** Sends one frame (any JSON value, so tests can send bad ones). */
  send(frame: unknown): Promise<void> {
    return this.#lines.send(JSON.stringify(frame));
  }

  /** Sends a raw line. */
  sendRaw(line: string): Promise<void> {
    return this.#lines.send(line);
  }

  /** Waits until the server closes the connection. */
  closedByServer(): Promise<void> {
    return this.until(() => this.closed, "the server to close the connection");
  }

  /** Closes the connection. */
  close(): Promise<void> {
    return this.#lines.close();
  }
}

/** A WebSocket client that splits each message on newlines into frames. */
export class WsClient extends FrameInbox {
  readonly messages: string[] = [];
  #ws: WebSocket;
  #closedP: Promise<void>;

  private constructor(ws: WebSocket) {
    super();
    this.#ws = ws;
    ws.onmessage = (e) => {
      this.messages.push(String(e.data));
      for (const line of String(e.data).split("\n")) {
        if (line) this.push(JSON.parse(line) as ServerFrame);
      }
    };
    this.#closedP = new Promise((r) => (ws.onclose = () => (this.end(), r())));
  }

  /** Opens a WebSocket to `url` and waits until it is open. */
  static async open(url: string): Promise<WsClient> {
    const ws = new WebSocket(url);
    const c = new WsClient(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error(`websocket to ${url} failed`));
      }),
      WAIT_MS,
      "the websocket to open",
    );
    return c;
  }

  /** Sends one frame as a text message. */
  send(frame: unknown): void {
    this.#ws.send(JSON.stringify(frame));
  }

  /** Sends raw text as one message. */
  sendRaw(text: string): void {
    this.#ws.send(text);
  }

  /** Sends bytes as one binary message. */
  sendBinary(bytes: Uint8Array<ArrayBuffer>): void {
    this.#ws.send(bytes);
  }

  /** Closes and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.#ws.readyState !== WebSocket.CLOSED) this.#ws.close();
    await this.#closedP;
  }
}

/** An SSE client over fetch: parses `id:` and `data:` lines into frames. */
export class SseClient extends FrameInbox {
  readonly lastEventId: () => string | undefined;
  #abort: AbortController;
  #done: Promise<void>;

  private constructor(res: Response, abort: AbortController) {
    super();
    this.#abort = abort;
    let lastId: string | undefined;
    this.lastEventId = () => lastId;
    this.#done = (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body!) {
          buf += decoder.decode(chunk, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const event = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id: string | undefined;
            let data = "";
            for (const line of event.split("\n")) {
              if (line.startsWith("id: ")) id = line.slice(4);
              else if (line.startsWith("data: ")) data += line.slice(6);
            }
            if (id !== undefined) lastId = id;
            if (data) this.push(JSON.parse(data) as ServerFrame, id);
          }
        }
      } catch { /* aborted */ }
      this.end();
    })();
  }

  /** Opens an event stream; throws with the status and body if it is refused. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    if (!res.ok) throw new Error(`SSE refused: ${res.status} ${await res.text()}`);
    return new SseClient(res, abort);
  }

  /** Stops reading and waits for the reader to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}

/** A clock the test moves by hand. */
export class FakeClock {
  /** Current time in epoch ms. */
  t: number;
  /** Starts at `start` (default 2026-01-15T14:30:00Z). */
  constructor(start = Date.UTC(2026, 0, 15, 14, 30)) {
    this.t = start;
  }
  /** Returns the current fake time. */
  now(): number {
    return this.t;
  }
  /** Moves the clock forward. */
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A peer that records frames, for core tests. */
export class FakePeer implements Peer {
  readonly frames: ServerFrame[] = [];
  readonly ip = "127.0.0.1";
  closed: string | null = null;
  /** Creates a fake peer on the given transport. */
  constructor(readonly transport: Transport = "tcp-json") {}
  send(out: Outbound): void {
    this.frames.push(out.frame);
  }
  close(reason: string): void {
    this.closed = reason;
  }
  /** Frames of one type received so far. */
  of<K extends ServerFrame["type"]>(type: K): Array<Extract<ServerFrame, { type: K }>> {
    return this.frames.filter((f) => f.type === type) as Array<Extract<ServerFrame, { type: K }>>;
  }
  /** Forgets what was received. */
  clear(): void {
    this.frames.length = 0;
  }
}

/** Cheap scrypt cost for tests: the same code path as production, 16x faster. */
export const TEST_HASHER = scryptHasher({ N: 1024, r: 8, p: 1 });

/** Puts an admin "Root" (password "root-password") into the store before the hub under test loads. */
export async function seedAdmin(kv: Deno.Kv): Promise<void> {
  const seed = await makeHub(kv);
  await seed.store.createUser({
    name: "Root",
    passwordHash: await TEST_HASHER.hash("root-password"),
    admin: true,
    createdAt: 0,
  });
  await seed.hub.close();
}

/** Builds a hub over a KV store with a fake clock, ULID-shaped counting ids and no quotas. */
export async function makeHub(
  kv: Deno.Kv,
  clock = new FakeClock(),
  options: Partial<HubOptions> = {},
): Promise<{ hub: Hub; clock: FakeClock; store: KvStore; [Symbol.asyncDispose](): Promise<void> }> {
  const store = new KvStore(kv);
  let n = 0;
  const hub = await Hub.create({
    store,
    clock,
    newId: (now) => fakeUlid(now, ++n),
    passwords: TEST_HASHER,
    historySize: 20,
    // Quotas are off unless a test is about them (many tests send more than 20 messages).
    rateLimit: null,
    privateRateLimit: null,
    roomsPerHour: 0,
    onError: (error) => {
      throw error;
    },
    ...options,
  });
  // `await using ctx = await makeHub(kv)` closes the hub (waiting for its writes) before KV closes.
  return { hub, clock, store, [Symbol.asyncDispose]: () => hub.close() };
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID-shaped id that sorts by time, then by counter, like the real monotonic factory. */
export function fakeUlid(now: number, n: number): string {
  let t = "";
  for (let i = 0, x = now; i < 10; i++, x = Math.floor(x / 32)) t = CROCKFORD[x % 32] + t;
  let c = "";
  for (let i = 0, x = n; i < 16; i++, x = Math.floor(x / 32)) c = CROCKFORD[x % 32] + c;
  return t + c;
}

/** Connects a fake peer, says hello and waits until it is handled. */
export async function login(
  hub: Hub,
  username: string,
  password?: string,
): Promise<{ id: number; peer: FakePeer }> {
  const peer = new FakePeer();
  const id = hub.connect(peer);
  await hub.receive(id, {
    type: "hello",
    username,
    ...(password === undefined ? {} : { password }),
  });
  return { id, peer };
}

/**
 * A WebSocket client made by hand, so that it can play dead or stop reading: it does the
 * handshake, says hello in one masked frame, and from then on neither reads nor answers pings
 * (Deno's own WebSocket would answer them). Close the returned connection when done.
 */
export async function rawWebSocket(port: number, hello: unknown): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  const buf = new Uint8Array(1024);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await withTimeout(conn.read(buf), 3000, "the upgrade");
    if (n === null) throw new Error(`closed during the upgrade: ${head}`);
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`the upgrade was refused: ${head}`);
  const payload = new TextEncoder().encode(JSON.stringify(hello));
  if (payload.length >= 126) throw new Error("rawWebSocket sends hellos under 126 bytes only");
  const mask = [1, 2, 3, 4];
  const frame = new Uint8Array(6 + payload.length);
  frame.set([0x81, 0x80 | payload.length, ...mask]);
  payload.forEach((b, i) => (frame[6 + i] = b ^ mask[i % 4]!));
  await conn.write(frame);
  return conn;
}

/**
 * Every error message the core can give that names a slash command (`/join x first`), read from
 * its sources with `${…}` as "x": the wires that translate hints (JIM, HTTP) are tested on all.
 */
export async function coreHintsWithCommands(): Promise<string[]> {
  const hints: string[] = [];
  const dir = new URL("../server/core/", import.meta.url);
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".ts")) continue;
    const source = await Deno.readTextFile(new URL(entry.name, dir));
    const errors = source.matchAll(/new ChatError\(\s*"[a-z_]+",\s*([`"])((?:(?!\1)[\s\S])*)\1/g);
    for (const [, , text] of errors) hints.push(text!.replace(/\$\{[^}]*\}/g, "x"));
  }
  return hints.filter((h) => /(^|[\s(])\/[a-z]+\b/.test(h));
}
