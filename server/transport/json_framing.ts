/**
 * Splits a TCP byte stream into JSON objects by their syntax, not by lines: programs written from
 * the assignments send `json.dumps(frame).encode()` with no newline, several objects in one
 * segment, or one object over many lines (`indent=4`); JSON-lines clients work unchanged (the
 * newline between objects is whitespace).
 *
 * An object ends where its closing brace balances the first. So that a malformed line is still
 * answered at once (`{not json`, as a JSON-lines client would be), the framer follows JSON's
 * grammar as it goes: at the first byte that no JSON object could have there, the item is junk
 * and runs to the end of its line, and the caller answers it as it answers any bad line. Only a
 * prefix that could still become an object waits for more. Numbers and literals are not checked
 * (the parser does that); only structure is.
 *
 * Works on bytes (UTF-8 never puts an ASCII byte inside a multi-byte character), so an object
 * that arrived in one read is handed on as a view of the read buffer, with no copy.
 * @module
 */

import { concatBytes } from "../core/peer.ts";

const EMPTY = new Uint8Array(0);
const LF = 10;

/** What the next byte may be. */
const enum S {
  /** Between items. */
  None,
  /** A value (after `:`, or `,` in an array). */
  Value,
  /** A value or `]` (after `[`). */
  ValueOrEnd,
  /** A key or `}` (after `{`). */
  KeyOrEnd,
  /** A key (after `,` in an object). */
  Key,
  /** `:` after a key. */
  Colon,
  /** `,` or the end of the container, after a value. */
  After,
  /** Inside a string. */
  Str,
  /** Inside a number or literal (`12.5e3`, `true`). */
  Scalar,
  /** Not JSON: runs to the end of the line. */
  Junk,
}

/** Nesting deeper than this is not a chat frame: junk. */
const MAX_DEPTH = 32;

function isSpace(b: number): boolean {
  return b === 32 || b === 9 || b === 13 || b === LF;
}

/** Bytes a number or a literal is made of (checked by the parser, not here). */
function isScalar(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2b ||
    b === 0x2e || (b >= 0x41 && b <= 0x5a);
}

/**
 * One connection's framer. `feed` a read's bytes, then take items with `next()` until it returns
 * null; an item cut off by the end of the read is kept (copied) and finished by later reads.
 * An item is a whole object, or junk (`lastWasJunk`): anything that cannot be one, up to the end
 * of its line (`hello`, `[1,2]`, `{not json`, a string broken by a raw line break).
 */
export class JsonFramer {
  /**
   * Bytes of the unfinished item from earlier reads, as they came (joined once, when the item
   * ends: an object trickling in a byte per read is not copied again at every read).
   */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  /** Where the item in progress starts in the current chunk (0 when it began in `#pending`). */
  #start = 0;
  #state = S.None;
  /** Open containers: `{` or `[`, innermost last. */
  #stack: number[] = [];
  #key = false;
  #escaped = false;
  /** Whether the last item `next()` returned was junk rather than an object. */
  lastWasJunk = false;

  /** Bytes held for an unfinished item (bounded by the caller). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Hands over the bytes of one read. The view is used until `next()` returns null; the caller
   * does not read into that buffer before then.
   */
  feed(chunk: Uint8Array): void {
    this.#chunk = chunk;
    this.#pos = 0;
    this.#start = 0;
  }

  /** The next complete item of what was fed, or null (the rest of an item is kept). */
  next(): Uint8Array | null {
    const c = this.#chunk;
    for (let i = this.#pos; i < c.length; i++) {
      const b = c[i]!;
      switch (this.#state) {
        case S.Str:
          if (b < 0x20) {
            // A raw control character (a line break) is never inside a JSON string, escaped or not.
            if (b === LF) return this.#take(i, true);
            this.#state = S.Junk;
          } else if (this.#escaped) this.#escaped = false;
          else if (b === 0x5c) this.#escaped = true;
          else if (b === 0x22) this.#state = this.#key ? S.Colon : S.After;
          continue;
        case S.Junk:
          if (b === LF) return this.#take(i, true);
          continue;
        case S.None:
          if (isSpace(b)) continue;
          this.#start = i;
          if (b === 0x7b) {
            this.#stack.push(b);
            this.#state = S.KeyOrEnd;
          } else this.#state = S.Junk;
          continue;
        case S.Scalar:
          if (isScalar(b)) continue;
          this.#state = S.After;
          break;
      }
      if (isSpace(b)) continue;
      const state = this.#state;
      if (state === S.Value || state === S.ValueOrEnd) {
        if (b === 0x7b || b === 0x5b) {
          if (this.#stack.length >= MAX_DEPTH) this.#state = S.Junk;
          else {
            this.#stack.push(b);
            this.#state = b === 0x7b ? S.KeyOrEnd : S.ValueOrEnd;
          }
        } else if (b === 0x22) {
          this.#key = false;
          this.#state = S.Str;
        } else if (isScalar(b)) this.#state = S.Scalar;
        else if (b === 0x5d && state === S.ValueOrEnd) {
          if (this.#close()) return this.#take(i + 1, false);
        } else this.#state = S.Junk;
      } else if (state === S.KeyOrEnd || state === S.Key) {
        if (b === 0x22) {
          this.#key = true;
          this.#state = S.Str;
        } else if (b === 0x7d && state === S.KeyOrEnd) {
          if (this.#close()) return this.#take(i + 1, false);
        } else this.#state = S.Junk;
      } else if (state === S.Colon) {
        this.#state = b === 0x3a ? S.Value : S.Junk;
      } else if (state === S.After) {
        const open = this.#stack[this.#stack.length - 1];
        if (b === 0x2c) this.#state = open === 0x7b ? S.Key : S.Value;
        else if ((b === 0x7d && open === 0x7b) || (b === 0x5d && open === 0x5b)) {
          if (this.#close()) return this.#take(i + 1, false);
        } else this.#state = S.Junk;
      }
    }
    // The chunk is used up: keep what an unfinished item has of it (a copy: the buffer is reused).
    if (this.#state !== S.None && this.#start < c.length) {
      this.#pending.push(c.slice(this.#start));
      this.#pendingBytes += c.length - this.#start;
    }
    this.#chunk = EMPTY;
    this.#pos = 0;
    this.#start = 0;
    return null;
  }

  /** What an unfinished item holds, handed over and forgotten (the end of a whole message). */
  takeRest(): Uint8Array | null {
    if (this.#pending.length === 0) return null;
    const rest = concatBytes(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#state = S.None;
    this.#stack.length = 0;
    this.#escaped = false;
    return rest;
  }

  /** Closes the innermost container; true when that ends the object. */
  #close(): boolean {
    this.#stack.pop();
    this.#state = S.After;
    return this.#stack.length === 0;
  }

  /** Ends the item before `end` and goes on after it (a junk item's line break is dropped). */
  #take(end: number, junk: boolean): Uint8Array {
    const part = this.#chunk.subarray(this.#start, end);
    const item = this.#pending.length === 0 ? part : concatBytes([...this.#pending, part]);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pos = junk ? end + 1 : end;
    this.#state = S.None;
    this.#stack.length = 0;
    this.#escaped = false;
    this.lastWasJunk = junk;
    return item;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The objects (and junk) of one whole message, as text: a WebSocket message holding several
 * frames, one per line or back to back. What is left unfinished at the end is junk too.
 */
export function splitJson(text: string): string[] {
  const framer = new JsonFramer();
  const bytes = encoder.encode(text + "\n");
  framer.feed(bytes);
  const items: string[] = [];
  for (let item = framer.next(); item !== null; item = framer.next()) {
    items.push(decoder.decode(item));
  }
  const rest = framer.takeRest();
  if (rest !== null) items.push(decoder.decode(rest));
  return items;
}
