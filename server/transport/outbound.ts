/**
 * The one outbound queue every transport writes through (TCP, WebSocket, SSE): frames queue per
 * connection, bounded in bytes; what queued while a connection waited goes out as one write;
 * a reader that falls further behind than the bound is dropped (the transport says goodbye).
 *
 * Writes are paced across connections by one scheduler. Measured on Deno 2.9: the runtime
 * performs the socket write inside `conn.write()` for at most 128 writes per event-loop turn
 * (tokio's cooperative budget; exactly 128 with 129 to 1,000 connections, all 127 with 127),
 * the rest wait for later turns. A fan-out to 1,000 readers that issued every write at once left
 * most connections with a write pending when the next message came, and the spread between
 * first and last reader grew to 90-190 ms p99 at 200 msg/s. So the scheduler starts at most
 * WRITES_PER_TURN writes, then yields to the event loop with a MessageChannel message (a
 * macrotask that runs after I/O; `setTimeout(0)` measured twice as slow) and goes on.
 * @module
 */

/**
 * Writes started per event-loop turn before yielding. 128 is Deno's per-turn budget; 256
 * measured 37.5 ms p99 and 512 87 ms, against 22.5 ms at 128 (issue #16's open-loop runs).
 */
export const WRITES_PER_TURN = 128;

/** Something the scheduler can ask to write what it has queued. */
export interface Flushable {
  /** Starts one write if there is anything to write; returns whether it wrote. */
  flushNow(): boolean;
}

/** Paces writes: at most WRITES_PER_TURN per event-loop turn, in the order they were asked for. */
export class FlushScheduler {
  #ready: Flushable[] = [];
  #head = 0;
  #running = false;
  #channel: MessageChannel | null = null;
  readonly #budget: number;
  /** Turns taken so far, and writes started in the largest one (for tests and metrics). */
  readonly stats = { turns: 0, maxWritesInTurn: 0 };

  /** A scheduler starting at most `budget` writes per turn. */
  constructor(budget = WRITES_PER_TURN) {
    this.#budget = budget;
  }

  /** Asks for `target` to be flushed soon (in this turn's microtasks if the budget allows). */
  request(target: Flushable): void {
    this.#ready.push(target);
    if (this.#running) return;
    this.#running = true;
    // The first batch goes out at the end of this task, as a microtask: no added latency.
    queueMicrotask(() => this.#turn());
  }

  #turn(): void {
    this.stats.turns++;
    let writes = 0;
    while (writes < this.#budget && this.#head < this.#ready.length) {
      const target = this.#ready[this.#head++]!;
      if (target.flushNow()) writes++;
    }
    if (writes > this.stats.maxWritesInTurn) this.stats.maxWritesInTurn = writes;
    if (this.#head >= this.#ready.length) {
      this.#ready = [];
      this.#head = 0;
      this.#running = false;
      // An open port keeps the process alive: close it while there is nothing to write.
      this.#channel?.port1.close();
      this.#channel = null;
      return;
    }
    if (this.#head > 1024) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
    if (!this.#channel) {
      this.#channel = new MessageChannel();
      this.#channel.port1.onmessage = () => this.#turn();
    }
    this.#channel.port2.postMessage(null);
  }
}

/** The scheduler every connection of this process shares. */
export const scheduler = new FlushScheduler();

/** What a wire does with bytes (or text): the part of a transport the queue drives. */
export interface Wire<T> {
  /** The size of a chunk, in the unit the bound counts (bytes, or UTF-16 units for text). */
  size(chunk: T): number;
  /** Joins what queued into one chunk. */
  join(parts: T[]): T;
  /**
   * Puts a chunk on the wire; a promise means one write is in flight until it settles. A socket's
   * own `conn.write(chunk)` is returned as it is, with `rest` saying what it did not take.
   */
  write(chunk: T): Promise<unknown> | void;
  /**
   * What is left of a chunk after a write that settled with `written` (a socket write's byte
   * count), or null when it all went; the queue writes the rest before anything else.
   */
  rest?(chunk: T, written: unknown): T | null;
  /** What the wire itself still holds for the peer (asked once per write, not per frame). */
  backlog?(): number;
  /** Called as a write is about to start: a chunk to append (a prompt), or null. */
  beforeWrite?(): T | null;
  /** The reader fell behind by more than the bound: the transport says goodbye and closes. */
  slow(queued: number, backlog: number): void;
  /** A write failed: the connection is gone. */
  failed(error: unknown): void;
}

/** What is left of bytes a socket write took `written` of (`Wire.rest` for byte wires). */
export function unwritten(chunk: Uint8Array, written: unknown): Uint8Array | null {
  return typeof written === "number" && written < chunk.length ? chunk.subarray(written) : null;
}

/**
 * One connection's outbound queue.
 *
 * Per delivery it allocates as little as it can, since a room's message is a write for each of
 * its readers (open-loop runs at 50 msg/s × 1,000 readers allocated ~620 bytes per delivery, a
 * scavenge every ~230 ms): one chunk waits in a field, not in an array made for it, and a write's
 * settling runs two handlers made once per queue, on the socket's own promise.
 */
export class OutboundQueue<T> implements Flushable {
  readonly #wire: Wire<T>;
  readonly #max: number;
  readonly #scheduler: FlushScheduler;
  /** The first chunk queued, and the ones after it (an array only once there are two). */
  #first: T | null = null;
  #more: T[] | null = null;
  /** Bytes queued, plus those of the write in flight (a TCP write settles when taken). */
  #bytes = 0;
  #inFlight = 0;
  #requested = false;
  /** The chunk being written, while a write is in flight. */
  #writing: T | null = null;
  /** After a goodbye is queued, nothing more is taken and the bound is no longer checked. */
  #final = false;
  #idleWaiters: Array<() => void> = [];

  /** A queue of at most `maxBytes` for a wire. */
  constructor(wire: Wire<T>, maxBytes: number, pacing: FlushScheduler = scheduler) {
    this.#wire = wire;
    this.#max = maxBytes;
    this.#scheduler = pacing;
  }

  /** Bytes waiting or being written. */
  get queuedBytes(): number {
    return this.#bytes + this.#inFlight;
  }

  /** Whether nothing is queued or being written. */
  get idle(): boolean {
    return this.#first === null && this.#writing === null;
  }

  /** Queues a chunk; a reader past the bound is handed to `wire.slow`. */
  push(chunk: T): void {
    if (this.#final) return;
    this.#add(chunk);
    if (this.#bytes + this.#inFlight > this.#max) return this.#slow(0);
    this.#request();
  }

  /**
   * Queues one last chunk (a goodbye) after what is queued, or instead of it when the backlog is
   * to be forgotten (a dropped slow reader); nothing is taken after it.
   */
  finish(last: T, options: { forgetBacklog: boolean }): void {
    this.#final = true;
    if (options.forgetBacklog) this.#clear();
    this.#add(last);
    this.#request();
  }

  /** Takes nothing more; what is queued still goes out (a connection closing after its last frames). */
  seal(): void {
    this.#final = true;
  }

  /** Settles once everything queued so far has been written (or failed). */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #add(chunk: T): void {
    if (this.#first === null) this.#first = chunk;
    else (this.#more ??= []).push(chunk);
    this.#bytes += this.#wire.size(chunk);
  }

  #clear(): void {
    this.#first = null;
    this.#more = null;
    this.#bytes = 0;
  }

  #request(): void {
    if (this.#requested || this.#writing !== null) return;
    this.#requested = true;
    this.#scheduler.request(this);
  }

  /** Starts one write of everything queued (the scheduler calls this). */
  flushNow(): boolean {
    this.#requested = false;
    const first = this.#first;
    if (this.#writing !== null || first === null) {
      this.#settleIdle();
      return false;
    }
    const backlog = this.#wire.backlog?.() ?? 0;
    if (!this.#final && this.#bytes + backlog > this.#max) {
      this.#slow(backlog);
      return false;
    }
    const extra = this.#final ? null : this.#wire.beforeWrite?.() ?? null;
    if (extra !== null) this.#add(extra);
    const chunk = this.#more === null ? first : this.#wire.join([first, ...this.#more]);
    const written = this.#bytes;
    this.#clear();
    this.#start(chunk, written);
    return true;
  }

  /** Starts writing `chunk` (of `bytes` in the bound's unit). */
  #start(chunk: T, bytes: number): void {
    let result: Promise<unknown> | void;
    try {
      result = this.#wire.write(chunk);
    } catch (error) {
      this.#inFlight = 0;
      this.#writing = null;
      this.#wire.failed(error);
      this.#settleIdle();
      return;
    }
    if (!(result instanceof Promise)) return this.#afterWrite();
    this.#inFlight = bytes;
    this.#writing = chunk;
    result.then(this.#written, this.#failed);
  }

  /** A write settled: the rest of its chunk, if the wire took only part, or what queued since. */
  readonly #written = (result: unknown): void => {
    const rest = this.#wire.rest?.(this.#writing!, result) ?? null;
    if (rest !== null) return this.#start(rest, this.#inFlight);
    this.#afterWrite();
  };

  readonly #failed = (error: unknown): void => {
    this.#afterWrite();
    this.#wire.failed(error);
  };

  #afterWrite(): void {
    this.#inFlight = 0;
    this.#writing = null;
    if (this.#first !== null) this.#request();
    else this.#settleIdle();
  }

  #settleIdle(): void {
    if (!this.idle || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #slow(backlog: number): void {
    const queued = this.#bytes + this.#inFlight;
    this.#clear();
    this.#wire.slow(queued, backlog);
  }
}

/**
 * Writes all of `chunk` to a connection. Most writes are taken whole: they cost one promise (not
 * an async function's and a view's); the rest, if the kernel took only part, follows in further
 * writes. Open-loop runs at 200 msg/s × 1,000 readers measured p50 26.8 → 21.7 ms with this.
 */
export function writeAll(conn: Deno.Conn, chunk: Uint8Array): Promise<void> {
  return conn.write(chunk).then((n) => n < chunk.length ? writeRest(conn, chunk, n) : undefined);
}

async function writeRest(conn: Deno.Conn, chunk: Uint8Array, off: number): Promise<void> {
  while (off < chunk.length) off += await conn.write(chunk.subarray(off));
}
