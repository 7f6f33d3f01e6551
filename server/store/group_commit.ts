/**
 * Group commit on Deno KV: writes queue while a commit is under way, and the next commit
 * carries everything queued, in one atomic operation, within KV's limits. A write's promise
 * settles when its batch is durable (Deno KV fsyncs every commit: about 1,200 single commits/s
 * here, about 50,000 writes/s in batches of 100).
 * @module
 */

import { ConflictError } from "./store.ts";

/** Deno KV refuses an atomic with more than 1000 mutations or 800 KiB; stay well below. */
const MAX_BATCH_MUTATIONS = 900;
const MAX_BATCH_BYTES = 512 * 1024;
/** Parts of a large write are smaller than a batch, so they share commits with other writes. */
const PART_MUTATIONS = 400;

interface PendingWrite {
  mutations: Deno.KvMutation[];
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Counters the store keeps about its own work, for metrics and benchmarks. */
export interface StoreStats {
  commits: number;
  mutations: number;
  commitMsTotal: number;
  commitMsMax: number;
}

/** The group-commit writer of one KV database. */
export class GroupCommit {
  #kv: Deno.Kv;
  #now: () => number;
  #queue: PendingWrite[] = [];
  #draining: Promise<void> | null = null;
  /** Work counters since start. */
  readonly stats: StoreStats = { commits: 0, mutations: 0, commitMsTotal: 0, commitMsMax: 0 };

  /** A writer on `kv`; `now` times commits for the stats. */
  constructor(kv: Deno.Kv, now: () => number) {
    this.#kv = kv;
    this.#now = now;
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
      this.#queue.push({ mutations, bytes, resolve, reject });
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
    while (this.#queue.length > 0) {
      // Counted first and taken in one splice: a shift() per write was O(queue) each, which
      // made draining a queue of thousands quadratic (14% of the server's CPU at ingest).
      const queue = this.#queue;
      let take = 0;
      let mutations = 0;
      let bytes = 0;
      while (take < queue.length) {
        const next = queue[take]!;
        if (
          take > 0 &&
          (mutations + next.mutations.length > MAX_BATCH_MUTATIONS ||
            bytes + next.bytes > MAX_BATCH_BYTES)
        ) break;
        take++;
        mutations += next.mutations.length;
        bytes += next.bytes;
      }
      const batch = take === queue.length ? queue.splice(0) : queue.splice(0, take);
      await this.#commit(batch, mutations);
    }
  }

  async #commit(batch: PendingWrite[], mutations: number): Promise<void> {
    const started = this.#now();
    try {
      const atomic = this.#kv.atomic();
      atomic.mutate(...lastPerKey(batch));
      const res = await atomic.commit();
      if (!res.ok) throw new ConflictError("A batched write was refused by the store");
      const ms = this.#now() - started;
      this.stats.commits++;
      this.stats.mutations += mutations;
      this.stats.commitMsTotal += ms;
      if (ms > this.stats.commitMsMax) this.stats.commitMsMax = ms;
      for (const w of batch) w.resolve();
    } catch (error) {
      for (const w of batch) w.reject(error);
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
