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
  /** Puts a chunk on the wire; a promise means one write is in flight until it settles. */
  write(chunk: T): Promise<unknown> | void;
  /** What the wire itself still holds for the peer (asked once per write, not per frame). */
  backlog?(): number;
  /** Called as a write is about to start: a chunk to append (a prompt), or null. */
  beforeWrite?(): T | null;
  /** The reader fell behind by more than the bound: the transport says goodbye and closes. */
  slow(queued: number, backlog: number): void;
  /** A write failed: the connection is gone. */
  failed(error: unknown): void;
}

/** One connection's outbound queue. */
export class OutboundQueue<T> implements Flushable {
  readonly #wire: Wire<T>;
  readonly #max: number;
  readonly #scheduler: FlushScheduler;
  #parts: T[] = [];
  /** Bytes queued, plus those of the write in flight (a TCP write settles when taken). */
  #bytes = 0;
  #inFlight = 0;
  #requested = false;
  #writing: Promise<void> | null = null;
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
    return this.#parts.length === 0 && this.#writing === null;
  }

  /** Queues a chunk; a reader past the bound is handed to `wire.slow`. */
  push(chunk: T): void {
    if (this.#final) return;
    this.#parts.push(chunk);
    this.#bytes += this.#wire.size(chunk);
    if (this.#bytes + this.#inFlight > this.#max) return this.#slow(0);
    this.#request();
  }

  /**
   * Queues one last chunk (a goodbye) after what is queued, or instead of it when the backlog is
   * to be forgotten (a dropped slow reader); nothing is taken after it.
   */
  finish(last: T, options: { forgetBacklog: boolean }): void {
    this.#final = true;
    if (options.forgetBacklog) {
      this.#parts = [];
      this.#bytes = 0;
    }
    this.#parts.push(last);
    this.#bytes += this.#wire.size(last);
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

  #request(): void {
    if (this.#requested || this.#writing) return;
    this.#requested = true;
    this.#scheduler.request(this);
  }

  /** Starts one write of everything queued (the scheduler calls this). */
  flushNow(): boolean {
    this.#requested = false;
    if (this.#writing || this.#parts.length === 0) {
      this.#settleIdle();
      return false;
    }
    const backlog = this.#wire.backlog?.() ?? 0;
    if (!this.#final && this.#bytes + backlog > this.#max) {
      this.#slow(backlog);
      return false;
    }
    const extra = this.#final ? null : this.#wire.beforeWrite?.() ?? null;
    if (extra !== null) this.#parts.push(extra);
    const parts = this.#parts;
    const chunk = parts.length === 1 ? parts[0]! : this.#wire.join(parts);
    this.#parts = [];
    const written = this.#bytes + (extra === null ? 0 : this.#wire.size(extra));
    this.#bytes = 0;
    let result: Promise<unknown> | void;
    try {
      result = this.#wire.write(chunk);
    } catch (error) {
      this.#wire.failed(error);
      this.#settleIdle();
      return true;
    }
    if (!(result instanceof Promise)) {
      this.#settleIdle();
      return true;
    }
    this.#inFlight = written;
    this.#writing = result.then(
      () => this.#afterWrite(),
      (error) => {
        this.#afterWrite();
        this.#wire.failed(error);
      },
    );
    return true;
  }

  #afterWrite(): void {
    this.#inFlight = 0;
    this.#writing = null;
    if (this.#parts.length > 0) this.#request();
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
    this.#parts = [];
    this.#bytes = 0;
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
