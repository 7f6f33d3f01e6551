/**
 * The service log on Deno KV: entries saved in blocks (one KV value of up to ~48 KB each, keyed
 * by the newest entry's id), since a busy server logs every message and one key per entry would
 * double its KV writes; read back newest first, past the retention skipped.
 * @module
 */

import type { LogEntry } from "../../protocol/frames.ts";
import { keys } from "./keys.ts";

/** Service log entries are saved in blocks of at most this many bytes (KV values: 64 KiB). */
export const LOG_BLOCK_BYTES = 48 * 1024;

/** The mutations that save `entries` in blocks, each kept `retentionMs`. */
export function logBlocks(
  entries: Array<LogEntry & { id: string }>,
  retentionMs: number,
): Deno.KvMutation[] {
  const mutations: Deno.KvMutation[] = [];
  let block: Array<LogEntry & { id: string }> = [];
  let size = 0;
  const close = () => {
    if (block.length === 0) return;
    mutations.push({
      type: "set",
      key: keys.serviceLogEntry(block.at(-1)!.id),
      value: block,
      expireIn: retentionMs,
    });
    block = [];
    size = 0;
  };
  for (const e of entries) {
    const n = e.text.length * 3 + 80;
    if (size + n > LOG_BLOCK_BYTES) close();
    block.push(e);
    size += n;
  }
  close();
  return mutations;
}

/** Entries newest first, before an id, matching a query, within the retention. */
export async function listLog(
  kv: Deno.Kv,
  options: { limit: number; before?: string; query?: string; now: number; retentionMs: number },
): Promise<Array<LogEntry & { id: string }>> {
  const out: Array<LogEntry & { id: string }> = [];
  const q = options.query?.toLowerCase();
  // expireIn is lazy: entries past the retention are skipped here too.
  const oldest = options.now - options.retentionMs;
  for await (
    const e of kv.list<Array<LogEntry & { id: string }>>({ prefix: keys.serviceLog() }, {
      reverse: true,
      batchSize: 20,
    })
  ) {
    for (let i = e.value.length - 1; i >= 0; i--) {
      const entry = e.value[i]!;
      if (options.before !== undefined && entry.id >= options.before) continue;
      if (Date.parse(entry.at) < oldest) return out;
      if (q && !`${entry.kind} ${entry.text}`.toLowerCase().includes(q)) continue;
      out.push(entry);
      if (out.length >= options.limit) return out;
    }
  }
  return out;
}
