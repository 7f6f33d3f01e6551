/**
 * Splits a person's byte stream into lines. A line ends at LF, CR LF, or CR alone or followed by
 * NUL: a telnet client in character mode (PuTTY, Windows' telnet, any telnet at a password
 * prompt with echo off) sends Enter as CR NUL, as the telnet protocol has it. A CR LF cut between
 * two reads is one line end. Like the JSON framer, a line that arrived in one read is handed on
 * as a view of the read buffer, and a line trickling in over many reads is joined once.
 * @module
 */

import { concatBytes } from "../../core/peer.ts";

const EMPTY = new Uint8Array(0);
const LF = 10;
const CR = 13;

/** One connection's line splitter: `feed` a read, then `next()` until null. */
export class LineFramer {
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  /** The last read ended in CR: an LF or NUL starting the next belongs to that line end. */
  #afterCr = false;

  /** Bytes held for an unfinished line (bounded by the caller). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Hands over the bytes of one read (used until `next()` returns null). */
  feed(chunk: Uint8Array): void {
    this.#chunk = chunk;
    this.#pos = this.#afterCr && (chunk[0] === LF || chunk[0] === 0) ? 1 : 0;
    this.#afterCr = false;
  }

  /** The next complete line (without its line end), or null (the rest is kept). */
  next(): Uint8Array | null {
    const c = this.#chunk;
    const start = this.#pos;
    for (let i = start; i < c.length; i++) {
      const b = c[i];
      if (b !== LF && b !== CR) continue;
      const part = c.subarray(start, i);
      const line = this.#pending.length === 0 ? part : concatBytes([...this.#pending, part]);
      this.#pending = [];
      this.#pendingBytes = 0;
      if (b === CR) {
        if (i + 1 === c.length) this.#afterCr = true;
        else if (c[i + 1] === LF || c[i + 1] === 0) i++;
      }
      this.#pos = i + 1;
      return line;
    }
    // The read is used up: keep the start of the next line (a copy: the buffer is reused).
    if (start < c.length) {
      this.#pending.push(c.slice(start));
      this.#pendingBytes += c.length - start;
    }
    this.#chunk = EMPTY;
    this.#pos = 0;
    return null;
  }
}
