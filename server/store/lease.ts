/**
 * Who holds a data file: a running server keeps a lease fresh in it, so that a second server
 * and the `chat user` tool refuse the file while it runs.
 * @module
 */

import { keys } from "./keys.ts";
import { LEASE_STALE_MS, type LeaseRecord } from "./store.ts";

/** The lease of one KV data file. */
export class DataLease {
  #kv: Deno.Kv;

  /** The lease kept in `kv`. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Writes who holds this data file, for `ttlMs`. */
  async put(lease: LeaseRecord, ttlMs: number): Promise<void> {
    await this.#kv.set(keys.lease(), lease, { expireIn: ttlMs });
  }

  /**
   * Takes the data file for a server: refused (with the holder) while another server's lease is
   * fresh; a stale one, or one whose holder `holderGone` knows to be dead (a process killed on
   * this machine), is taken over. An atomic check makes two servers starting at once agree.
   */
  async acquire(
    lease: LeaseRecord,
    ttlMs: number,
    holderGone: (holder: LeaseRecord) => boolean = () => false,
  ): Promise<{ ok: true } | { ok: false; holder: LeaseRecord }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = await this.#kv.get<LeaseRecord>(keys.lease());
      const holder = entry.value;
      if (
        holder && holder.id !== lease.id && lease.at - holder.at < LEASE_STALE_MS &&
        !holderGone(holder)
      ) {
        return { ok: false, holder };
      }
      const res = await this.#kv.atomic()
        .check({ key: keys.lease(), versionstamp: entry.versionstamp })
        .set(keys.lease(), lease, { expireIn: ttlMs })
        .commit();
      if (res.ok) return { ok: true };
    }
    const holder = await this.get();
    return holder ? { ok: false, holder } : { ok: true };
  }

  /** Writes that cluster node `node` uses this data file, for `ttlMs`. */
  async putNode(node: string, lease: LeaseRecord, ttlMs: number): Promise<void> {
    await this.#kv.set(keys.nodeLease(node), lease, { expireIn: ttlMs });
  }

  /** Cluster nodes whose lease is fresh at `now` (expireIn is lazy: the time is checked). */
  async liveNodes(now: number): Promise<Array<LeaseRecord & { node: string }>> {
    const out: Array<LeaseRecord & { node: string }> = [];
    for await (const e of this.#kv.list<LeaseRecord>({ prefix: keys.nodeLeases() })) {
      if (now - e.value.at < LEASE_STALE_MS) out.push({ ...e.value, node: String(e.key[1]) });
    }
    return out;
  }

  /** Releases a cluster node's lease. */
  async releaseNode(node: string): Promise<void> {
    await this.#kv.delete(keys.nodeLease(node));
  }

  /** Reads who holds this data file (the caller checks how fresh it is). */
  async get(): Promise<LeaseRecord | null> {
    return (await this.#kv.get<LeaseRecord>(keys.lease())).value;
  }

  /** Releases the data file. */
  async release(): Promise<void> {
    await this.#kv.delete(keys.lease());
  }
}
