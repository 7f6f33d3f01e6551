/**
 * Writes paced for clients that read one JSON object per `recv()` (JIM, and JSON clients that
 * send their objects without a newline): one object per write, a little apart. `ObjectOutput`
 * decides, per connection, whether a program's objects are paced; `PacedWrites` paces them.
 * @module
 */

/**
 * Time between two objects to a JIM client. The course's clients (JIM, seed 004; the JSON chat
 * of seed 000) read with one `recv()` and one `json.loads()` per object, so two objects in one
 * read break them ("Extra data"). Each object is written on its own, this long after the one
 * before: the client's reading thread has taken the first by then. 50 objects a second at most:
 * enough for a messenger.
 */
export const PACE_GAP_MS = 20;
/**
 * The same for a JSON client that sends its objects with no newline: a shorter gap (a reading
 * thread wakes within a millisecond or so on loopback), as such a client may also be a program
 * that reads a stream (a load generator sending bare objects), for which every gap is latency.
 */
export const BARE_JSON_GAP_MS = 10;
/**
 * Objects waiting for their turn before the client counts as too slow (10 s of them), unless
 * their bytes pass the connection's outbound bound first.
 */
export const PACED_MAX_WAITING = 500;
/**
 * A JSON client sent objects without newlines, but this many of ours wait for their turn: it
 * gets more than a one-per-read client could take (a busy room, a load generator sending bare
 * objects), so it must read a stream; it is not paced from then on (JIM clients stay paced).
 * A login's answers are three objects, a private message from someone new two (the message and
 * the contacts list); eight waiting is at most 80 ms of delay, paid once.
 */
export const BARE_JSON_MAX_WAITING = 8;

/**
 * A program's objects on their way out of one TCP connection: straight into its queue, or one
 * per write (`PacedWrites`) for a client that reads one per `recv()`: every JIM client, and a JSON
 * client whose own objects come with no newline after them, until it falls BARE_JSON_MAX_WAITING
 * behind the pace.
 */
export class ObjectOutput {
  #paced: PacedWrites | null = null;
  #jim = false;
  /** The client's last read ended in `}`: it sends bare objects, and is taken to read them so. */
  #bare = false;
  /** A bare-object client that fell behind the pace: it reads a stream, and is never paced again. */
  #outpaced = false;
  readonly #push: (bytes: Uint8Array) => void;
  readonly #overflow: (waitingBytes: number) => void;
  readonly #maxBytes: number;

  /** Objects for a connection's queue (`push`); `overflow` drops a reader too far behind. */
  constructor(
    push: (bytes: Uint8Array) => void,
    overflow: (waitingBytes: number) => void,
    maxBytes: number,
  ) {
    this.#push = push;
    this.#overflow = overflow;
    this.#maxBytes = maxBytes;
  }

  /** The client speaks JIM: every object is paced, PACE_GAP_MS apart, from now on. */
  jim(): void {
    this.#jim = true;
  }

  /**
   * A read from the client: one ending in `}` (Python's `sock.send(json.dumps(frame).encode())`)
   * starts pacing, one ending in a newline ends it; any other says nothing.
   */
  noteRead(chunk: Uint8Array): void {
    // A JIM client is paced however it sends (the course's clients read one object a recv()).
    if (this.#jim) return;
    const last = chunk[chunk.length - 1];
    const bare = last === 0x7d; /* } */
    if (bare === this.#bare || (!bare && last !== 10)) return;
    this.#bare = bare && !this.#outpaced;
    if (!this.#bare) this.#paced?.flush();
  }

  /** One object's line (with its newline). */
  write(bytes: Uint8Array): void {
    if (!this.#jim && !this.#bare) return this.#push(bytes);
    this.#paced ??= new PacedWrites(this.#push, this.#overflow, {
      maxBytes: this.#maxBytes,
      ...(this.#jim ? {} : { gapMs: BARE_JSON_GAP_MS }),
    });
    if (!this.#jim && this.#paced.waiting >= BARE_JSON_MAX_WAITING) {
      // More than a one-per-read client could take: it reads a stream after all (a generator).
      this.#bare = false;
      this.#outpaced = true;
      this.#paced.flush();
      return this.#push(bytes);
    }
    this.#paced.add(bytes);
  }

  /** Writes what waits at once (the connection is closing: nothing is read after). */
  flush(): void {
    this.#paced?.flush();
  }

  /** Forgets what waits (the reader was dropped as too slow). */
  stop(): void {
    this.#paced?.stop();
  }
}

/** Paces one connection's objects: one per write, `gapMs` (PACE_GAP_MS) apart. */
export class PacedWrites {
  #waiting: Uint8Array[] = [];
  #head = 0;
  #lastAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #bytes = 0;
  readonly #write: (bytes: Uint8Array) => void;
  readonly #overflow: (waitingBytes: number) => void;
  readonly #maxBytes: number;
  readonly #gapMs: number;
  readonly #now: () => number;

  /**
   * An outbox writing through `write`; `overflow` is called (with the bytes that waited) once
   * PACED_MAX_WAITING objects or `maxBytes` would wait.
   */
  constructor(
    write: (bytes: Uint8Array) => void,
    overflow: (waitingBytes: number) => void,
    options: { maxBytes: number; gapMs?: number; now?: () => number },
  ) {
    this.#write = write;
    this.#overflow = overflow;
    this.#maxBytes = options.maxBytes;
    this.#gapMs = options.gapMs ?? PACE_GAP_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Objects waiting for their turn. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Writes `bytes` now if the gap since the last has passed, else when it has. */
  add(bytes: Uint8Array): void {
    if (this.waiting === 0 && this.#now() - this.#lastAt >= this.#gapMs) return this.#send(bytes);
    if (this.waiting >= PACED_MAX_WAITING || this.#bytes + bytes.length > this.#maxBytes) {
      const waiting = this.#bytes + bytes.length;
      this.stop();
      return this.#overflow(waiting);
    }
    this.#waiting.push(bytes);
    this.#bytes += bytes.length;
    this.#schedule();
  }

  /** Writes everything waiting at once (the connection is closing: nothing is read after). */
  flush(): void {
    const rest = this.#waiting.slice(this.#head);
    this.stop();
    for (const bytes of rest) this.#send(bytes);
  }

  /** Forgets what waits (the connection is gone, or dropped as too slow). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiting = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  #send(bytes: Uint8Array): void {
    this.#lastAt = this.#now();
    this.#write(bytes);
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(0, this.#gapMs - (this.#now() - this.#lastAt));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.waiting === 0) return;
      const next = this.#waiting[this.#head++]!;
      this.#bytes -= next.length;
      this.#send(next);
      if (this.#head > 64 && this.#head * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
      if (this.waiting > 0) this.#schedule();
    }, wait);
  }
}
