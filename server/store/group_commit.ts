/**
 * Group commit on Deno KV: writes queue while a commit is under way, and the next commit
 * carries everything queued, in one atomic operation, within KV's limits. A write's promise
 * settles when its batch is durable (Deno KV fsyncs every commit: about 1,200 single commits/s
 * here, about 50,000 writes/s in batches of 100).
 *
 * Messages get their sequence numbers here, at commit time: each chat's counter is read once
 * (and cached with its versionstamp), the batch's messages of that chat take the next numbers,
 * and the commit checks the counter is unchanged before it writes the new one. Several
 * processes on one store (cluster nodes) can therefore never give two messages one number: a
 * node that lost the race re-reads the counter and numbers its batch again. Measured with three
 * processes on one local KV file: SQLite answers "database is locked" to ~15% of commits under
 * contention and ~5% fail their check; both are retried with jitter, a bounded number of times,
 * and counted (`/metrics`).
 * @module
 */

import { ConflictError } from "./store.ts";

/** Keys one `kv.getMany` may read (Deno KV's limit). */
export const GET_MANY_KEYS = 10;
/** Deno KV refuses an atomic with more than 1000 mutations or 800 KiB; stay well below. */
const MAX_BATCH_MUTATIONS = 900;
/** ... and more than 100 checks: one per chat that gets messages in a batch. */
const MAX_BATCH_CHATS = 90;
/** Tries of one batch against a busy or changed store before its writes fail. */
const MAX_ATTEMPTS = 30;
const MAX_BATCH_BYTES = 512 * 1024;
/** Parts of a large write are smaller than a batch, so they share commits with other writes. */
const PART_MUTATIONS = 400;

/** A message waiting for its chat's next sequence number, given at commit time. */
export interface Sequenced {
  chat: string;
  /**
   * The mutations that store the message once it has its number. Their keys are the message's
   * own (its number, its reply link, the scheduled record it completes): no other write of a
   * batch has them.
   */
  build(seq: number): Deno.KvMutation[];
  /** How the message is found by id: the batch's index rows (see `GroupCommit`'s `index`). */
  index?: { id: string; expireIn?: number };
}

/** A message of a batch as the batch's index rows record it. */
export interface IndexEntry {
  id: string;
  chat: string;
  seq: number;
  expireIn?: number;
}

interface PendingWrite {
  /** The mutations; for a sequenced write, how many its `build` makes (to size the batch). */
  mutations: Deno.KvMutation[];
  count: number;
  bytes: number;
  sequenced: Sequenced | null;
  /** Settles with the sequence number given (0 for a write that is not a message). */
  resolve: (seq: number) => void;
  reject: (error: unknown) => void;
}

/** Counters the store keeps about its own work, for metrics and benchmarks. */
export interface StoreStats {
  commits: number;
  mutations: number;
  commitMsTotal: number;
  commitMsMax: number;
  /** Batches numbered again because another process had moved a chat's counter. */
  sequenceConflicts: number;
  /** Commits retried because another process held the database ("database is locked"). */
  lockedRetries: number;
}

/** Whether an error is SQLite's answer to a write while another process writes. */
export function isLocked(error: unknown): boolean {
  return error instanceof Error && /database is locked|SQLITE_BUSY/i.test(error.message);
}

/** A random wait that grows with the attempt: contending processes spread out. */
function jitter(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(100, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The group-commit writer of one KV database. */
export class GroupCommit {
  #kv: Deno.Kv;
  #now: () => number;
  #queue: PendingWrite[] = [];
  #draining: Promise<void> | null = null;
  #counterKey: (chat: string) => Deno.KvKey;
  /** Each chat's counter as last read or written by this process, with its versionstamp. */
  #counters = new Map<string, { seq: number; versionstamp: string | null }>();
  /** Work counters since start. */
  readonly stats: StoreStats = {
    commits: 0,
    mutations: 0,
    commitMsTotal: 0,
    commitMsMax: 0,
    sequenceConflicts: 0,
    lockedRetries: 0,
  };

  #index: ((entries: IndexEntry[]) => Deno.KvMutation[]) | null;

  /**
   * A writer on `kv`; `now` times commits; `counterKey` names a chat's sequence counter; `index`
   * makes the mutations that let a batch's messages be found by id, a few rows for a whole
   * batch rather than one per message (whoever queues a message counts one per message, the
   * most it can be).
   */
  constructor(
    kv: Deno.Kv,
    now: () => number,
    counterKey: (chat: string) => Deno.KvKey,
    index: ((entries: IndexEntry[]) => Deno.KvMutation[]) | null = null,
  ) {
    this.#kv = kv;
    this.#now = now;
    this.#counterKey = counterKey;
    this.#index = index;
  }

  /**
   * Queues mutations that must commit together for the next group commit; resolves once they
   * are durable. A write larger than one atomic may hold is refused: use `writeInParts`.
   */
  write(mutations: Deno.KvMutation[], bytes = 256 * mutations.length): Promise<void> {
    if (mutations.length > MAX_BATCH_MUTATIONS || bytes > MAX_BATCH_BYTES) {
      return Promise.reject(
        new RangeError(
          `One atomic write of ${mutations.length} mutations (~${bytes} bytes) is over the ` +
            `limit (${MAX_BATCH_MUTATIONS}, ${MAX_BATCH_BYTES} bytes): write it in parts`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({
        mutations,
        count: mutations.length,
        bytes,
        sequenced: null,
        resolve: () => resolve(),
        reject,
      });
      this.#kick();
    });
  }

  /**
   * Queues a message for the next group commit; it gets its chat's next sequence number then.
   * Resolves with that number once the message is durable. `count` is how many mutations
   * `build` makes.
   */
  writeSequenced(sequenced: Sequenced, count: number, bytes: number): Promise<number> {
    if (count + 1 > MAX_BATCH_MUTATIONS || bytes > MAX_BATCH_BYTES) {
      return Promise.reject(
        new RangeError(`A message of ~${bytes} bytes is over one atomic write`),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ mutations: [], count, bytes, sequenced, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Queues mutations that need not commit together (read cursors of 5,000 members, a user's
   * tokens), in parts each under every limit of one atomic; resolves once all are durable.
   */
  writeInParts(mutations: Deno.KvMutation[], bytesEach = 256): Promise<void> {
    const per = Math.max(1, Math.min(PART_MUTATIONS, Math.floor(MAX_BATCH_BYTES / bytesEach)));
    const parts: Promise<void>[] = [];
    for (let i = 0; i < mutations.length; i += per) {
      const part = mutations.slice(i, i + per);
      parts.push(this.write(part, part.length * bytesEach));
    }
    return Promise.all(parts).then(() => {});
  }

  /** Settles once every write queued so far is committed (or failed). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  #kick(): void {
    if (this.#draining) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = null;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    // Let the current burst of synchronous writes join the first batch.
    await Promise.resolve();
    // A batch's writes are settled once the next batch's commit is on its way: the work their
    // promises start (acks, fan-out: ~15 µs a message) then runs while KV commits the next
    // batch instead of between commits. Measured at ingest (8 senders, batches of ~450
    // messages): 7 ms of that work and 11 ms of commit per batch, one after the other, before.
    let settle: (() => void) | null = null;
    try {
      while (this.#queue.length > 0) {
        // Counted first and taken in one splice: a shift() per write was O(queue) each, which
        // made draining a queue of thousands quadratic (14% of the server's CPU at ingest).
        const queue = this.#queue;
        const chats = new Set<string>();
        let take = 0;
        let mutations = 0;
        let bytes = 0;
        while (take < queue.length) {
          const next = queue[take]!;
          const chat = next.sequenced?.chat;
          // A chat new to the batch adds a check and a counter write.
          const newChat = chat !== undefined && !chats.has(chat);
          const count = next.count + (newChat ? 1 : 0);
          if (
            take > 0 &&
            (mutations + count > MAX_BATCH_MUTATIONS ||
              bytes + next.bytes > MAX_BATCH_BYTES ||
              (newChat && chats.size >= MAX_BATCH_CHATS))
          ) break;
          take++;
          if (newChat) chats.add(chat);
          mutations += count;
          bytes += next.bytes;
        }
        const batch = take === queue.length ? queue.splice(0) : queue.splice(0, take);
        // #commit runs synchronously up to KV's commit call (counters are cached), so the
        // previous batch is settled with this one already handed to KV.
        const committing = this.#commit(batch);
        settle?.();
        settle = await committing;
      }
    } finally {
      settle?.();
    }
  }

  /**
   * Commits one batch, numbering its messages, retrying a busy or changed store. Resolves with
   * the function that settles the batch's writes (the caller decides when).
   */
  async #commit(batch: PendingWrite[]): Promise<() => void> {
    const started = this.#now();
    const chats = new Set<string>();
    for (const w of batch) if (w.sequenced) chats.add(w.sequenced.chat);
    try {
      for (let attempt = 1;; attempt++) {
        const unread = [...chats].filter((c) => !this.#counters.has(c));
        if (unread.length > 0) await this.#readCounters(unread);
        const next = new Map<string, number>();
        for (const chat of chats) next.set(chat, this.#counters.get(chat)!.seq);
        const seqs: number[] = [];
        const all: Deno.KvMutation[] = [];
        const indexed: IndexEntry[] = [];
        let shared = false;
        for (const w of batch) {
          if (!w.sequenced) {
            shared = true;
            seqs.push(0);
            for (const m of w.mutations) all.push(m);
            continue;
          }
          const { chat, index } = w.sequenced;
          const seq = next.get(chat)! + 1;
          next.set(chat, seq);
          seqs.push(seq);
          for (const m of w.sequenced.build(seq)) all.push(m);
          if (index) indexed.push({ ...index, chat, seq });
        }
        if (this.#index && indexed.length > 0) {
          for (const m of this.#index(indexed)) all.push(m);
        }
        const atomic = this.#kv.atomic();
        for (const chat of chats) {
          const key = this.#counterKey(chat);
          atomic.check({ key, versionstamp: this.#counters.get(chat)!.versionstamp });
          atomic.set(key, next.get(chat)!);
        }
        // A batch of messages alone has no key twice (see `Sequenced.build`): the de-duplication
        // (a string per key, ~1 ms for a batch of 900 mutations) is for the other writes.
        const mutations = shared ? lastPerKey([{ mutations: all }]) : all;
        atomic.mutate(...mutations);
        let res: Deno.KvCommitResult | Deno.KvCommitError;
        try {
          res = await atomic.commit();
        } catch (error) {
          if (!isLocked(error) || attempt >= MAX_ATTEMPTS) throw error;
          this.stats.lockedRetries++;
          await jitter(attempt);
          continue;
        }
        if (!res.ok) {
          if (chats.size === 0 || attempt >= MAX_ATTEMPTS) {
            throw new ConflictError("A batched write was refused by the store");
          }
          // Another process wrote a counter: read them again and number the batch again.
          this.stats.sequenceConflicts++;
          for (const chat of chats) this.#counters.delete(chat);
          await jitter(attempt);
          continue;
        }
        for (const chat of chats) {
          this.#counters.set(chat, { seq: next.get(chat)!, versionstamp: res.versionstamp });
        }
        const ms = this.#now() - started;
        this.stats.commits++;
        // What was written: the counters and the writes (index rows are per batch, not per message).
        this.stats.mutations += chats.size + mutations.length;
        this.stats.commitMsTotal += ms;
        if (ms > this.stats.commitMsMax) this.stats.commitMsMax = ms;
        return () => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(seqs[i]!);
        };
      }
    } catch (error) {
      for (const chat of chats) this.#counters.delete(chat);
      return () => {
        for (const w of batch) w.reject(error);
      };
    }
  }

  /** Reads the counters of `chats` with their versionstamps (GET_MANY_KEYS per read). */
  async #readCounters(chats: string[]): Promise<void> {
    for (let i = 0; i < chats.length; i += GET_MANY_KEYS) {
      const part = chats.slice(i, i + GET_MANY_KEYS);
      for (let attempt = 1;; attempt++) {
        try {
          const entries = await this.#kv.getMany<number[]>(part.map((c) => this.#counterKey(c)));
          entries.forEach((e, k) => {
            this.#counters.set(part[k]!, {
              seq: typeof e.value === "number" ? e.value : 0,
              versionstamp: e.versionstamp,
            });
          });
          break;
        } catch (error) {
          if (!isLocked(error) || attempt >= MAX_ATTEMPTS) throw error;
          this.stats.lockedRetries++;
          await jitter(attempt);
        }
      }
    }
  }
}

/**
 * The batch's mutations, where several `set`s and `delete`s of one key keep only the last (the
 * state after the commit is the same). A burst of messages in one chat sets its sequence counter
 * once per message: one row write per batch instead of hundreds, a third of ingest's mutations.
 * Sums and other non-idempotent mutations are all kept, in order.
 */
export function lastPerKey(
  batch: ReadonlyArray<{ mutations: Deno.KvMutation[] }>,
): Deno.KvMutation[] {
  const all: Deno.KvMutation[] = [];
  for (const w of batch) for (const m of w.mutations) all.push(m);
  if (all.length < 2) return all;
  const last = new Map<string, number>();
  for (let i = 0; i < all.length; i++) {
    const m = all[i]!;
    if (m.type === "set" || m.type === "delete") last.set(keyString(m.key), i);
  }
  if (last.size === all.length) return all;
  return all.filter((m, i) =>
    (m.type !== "set" && m.type !== "delete") || last.get(keyString(m.key)) === i
  );
}

function keyString(key: Deno.KvKey): string {
  // Typed parts, so the string "1" and the number 1 stay different keys.
  let s = "";
  for (const part of key) {
    s += typeof part === "string"
      ? "s"
      : typeof part === "number"
      ? "n"
      : typeof part === "bigint"
      ? "i"
      : typeof part === "boolean"
      ? "b"
      : "u";
    s += part instanceof Uint8Array ? [...part].join(",") : String(part);
    s += "\u0000";
  }
  return s;
}
