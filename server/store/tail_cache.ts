/**
 * The newest messages of recently read chats, kept in memory so that the most common read — the
 * last page of a chat, sent on every hello, join and `history` without a position — needs no
 * KV range scan. Ergo keeps each channel's history in a memory ring the same way.
 *
 * Why: the entries of a Deno KV listing outlive V8's young-generation GC (~20 KB a page that V8
 * promotes before it dies), and those reads made the young-generation pauses (3-8 ms) that set
 * the history p99 (bench/bounds.md). The cache is filled by one KV read and then kept by this
 * process's own writes, so it is only correct when this process is the only writer: a cluster
 * node does not use it (the other nodes write the same chats).
 *
 * Rules that keep it exact:
 * - A chat's tail is contiguous up to the newest message: an append whose number is not the
 *   next one (a gap) drops the chat's tail.
 * - A deleted message, or a deleted chat, forgets the chat's tail.
 * - A read that started before a write to the chat (append or delete) does not fill the cache
 *   (its result may miss that write): every write counts a version per chat.
 * - Expired messages stay until swept and are skipped on every read, as KV reads skip them.
 * @module
 */

import { liveAt, type StoredMessage } from "./store.ts";

interface Tail {
  /** Ascending by `seq`, contiguous (a deletion forgets the whole tail). */
  messages: StoredMessage[];
  /** The newest message number the tail has seen (deleted or not). */
  lastSeq: number;
  /** Whether the tail holds every message the chat has (it was never trimmed). */
  complete: boolean;
}

/** The last messages of up to `maxChats` chats, `keep` each, least recently read dropped first. */
export class TailCache {
  readonly keep: number;
  readonly #maxChats: number;
  /** Insertion order is recency of use: the first entry is dropped first. */
  #tails = new Map<string, Tail>();
  /** Writes per chat, cached or not: a read that saw an older version does not fill. */
  #versions = new Map<string, number>();

  /** A cache of the newest `keep` messages of at most `maxChats` chats. */
  constructor(keep = 50, maxChats = 256) {
    this.keep = keep;
    this.#maxChats = maxChats;
  }

  /** How many chats have a tail (for tests). */
  get size(): number {
    return this.#tails.size;
  }

  /** The chat's write version: take it before a KV read meant to `fill`. */
  version(chat: string): number {
    return this.#versions.get(chat) ?? 0;
  }

  /**
   * The newest `limit` messages of the chat that are live at `now`, ascending, as a new array;
   * null when the cache cannot say (no tail, or fewer live messages than asked and the tail does
   * not reach back to the chat's first message).
   */
  last(chat: string, limit: number, now: number | undefined): StoredMessage[] | null {
    const tail = this.#tails.get(chat);
    if (!tail || limit > this.keep) return null;
    // Recently used: to the end of the map's order.
    this.#tails.delete(chat);
    this.#tails.set(chat, tail);
    const out: StoredMessage[] = [];
    for (let i = tail.messages.length - 1; i >= 0 && out.length < limit; i--) {
      const m = tail.messages[i]!;
      if (liveAt(m, now)) out.push(m);
    }
    if (out.length < limit && !tail.complete) return null;
    return out.reverse();
  }

  /**
   * The newest `limit` live messages of the chat, from memory, after one read of the newest
   * `keep` (`readNewest`, ascending) to fill the tail when it is not there; null when the page
   * has to be read further back (more asked than it keeps, or too many of them expired).
   */
  async lastPage(
    chat: string,
    limit: number,
    now: number | undefined,
    readNewest: (count: number) => Promise<StoredMessage[]>,
  ): Promise<StoredMessage[] | null> {
    const cached = this.last(chat, limit, now);
    if (cached || limit > this.keep) return cached;
    const version = this.version(chat);
    const newest = await readNewest(this.keep);
    this.fill(chat, newest, version, newest.length < this.keep);
    return this.last(chat, limit, now);
  }

  /**
   * Keeps the result of a KV read of the chat's newest messages (ascending, expired ones
   * included, at most `keep`), taken when the chat's version was `version`. `complete` says the
   * read found fewer than it asked for: the chat has no older messages.
   */
  fill(chat: string, messages: StoredMessage[], version: number, complete: boolean): void {
    if (this.version(chat) !== version) return;
    this.#tails.delete(chat);
    this.#tails.set(chat, {
      messages: messages.slice(-this.keep),
      lastSeq: messages.at(-1)?.seq ?? 0,
      complete: complete && messages.length <= this.keep,
    });
    if (this.#tails.size > this.#maxChats) {
      this.#tails.delete(this.#tails.keys().next().value!);
    }
  }

  /** A message of this process was committed. */
  appended(message: StoredMessage): void {
    this.#bump(message.chat);
    const tail = this.#tails.get(message.chat);
    if (!tail) return;
    if (message.seq !== tail.lastSeq + 1) {
      // Someone else numbered messages in this chat: what is cached may have a hole.
      this.#tails.delete(message.chat);
      return;
    }
    tail.messages.push(message);
    tail.lastSeq = message.seq;
    if (tail.messages.length > this.keep) {
      tail.messages.shift();
      tail.complete = false;
    }
  }

  /** The chat is gone, or a message of it was deleted: its tail is read again when next asked. */
  forget(chat: string): void {
    this.#bump(chat);
    this.#tails.delete(chat);
  }

  #bump(chat: string): void {
    this.#versions.set(chat, this.version(chat) + 1);
  }
}
