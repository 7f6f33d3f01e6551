/**
 * Finding a message by id on Deno KV: where its chat and number are kept.
 *
 * A message is stored under its chat and number (`["messages", chat, seq]`, what history pages
 * scan); its id is a ULID made before the number is given, so a lookup by id (a reply, a report,
 * a deletion, a thread) needs an index. It used to be one row per message, `["message_ids", id]`:
 * half the rows of every batch, and measured at durable ingest 22% of the throughput (8 senders ×
 * 5,000 messages, 1.81 vs 2.26 s with and without that row, the KV writer thread's time nearly
 * halved). Now the index is written per batch: the batch's messages made in one millisecond
 * share a row, `["message_index", ms, firstId]`, holding `[id, chat, seq]` for up to
 * INDEX_ROW_ENTRIES of them. A lookup reads the rows of the id's millisecond (the ULID carries
 * it): one or two at any rate the server reaches. Rows written before this change are still
 * read (`["message_ids", id]`), and deleted with their message.
 *
 * The index may point at a message that is gone (a crash between a deletion and its index
 * rewrite): a lookup checks the message row's id before trusting it.
 * @module
 */

import { ulidTime } from "../ids.ts";
import type { IndexEntry } from "./group_commit.ts";
import { keys } from "./keys.ts";
import type { StoredMessage } from "./store.ts";

/** Messages per index row: ~180 bytes each at most (long private chat ids), far under KV's 64 KiB. */
export const INDEX_ROW_ENTRIES = 100;

/** An index row: `[id, chat, seq]` per message, flat; its lifetime, to keep it when rewritten. */
export interface IndexRow {
  entries: Array<string | number>;
  expireIn?: number;
}

/**
 * The index rows of a batch's messages: one per millisecond of their ids (and per
 * INDEX_ROW_ENTRIES), keyed by its first id, so no two batches ever write the same row. A row
 * lives as long as its longest-lived message, and for ever if any of them does.
 */
export function indexRows(batch: IndexEntry[]): Deno.KvMutation[] {
  const byMs = new Map<number, IndexEntry[]>();
  for (const e of batch) {
    const ms = ulidTime(e.id);
    const group = byMs.get(ms);
    if (group) group.push(e);
    else byMs.set(ms, [e]);
  }
  const out: Deno.KvMutation[] = [];
  for (const [ms, group] of byMs) {
    for (let i = 0; i < group.length; i += INDEX_ROW_ENTRIES) {
      const part = group.slice(i, i + INDEX_ROW_ENTRIES);
      const entries: Array<string | number> = [];
      let expireIn: number | undefined = 0;
      for (const e of part) {
        entries.push(e.id, e.chat, e.seq);
        expireIn = e.expireIn === undefined || expireIn === undefined
          ? undefined
          : Math.max(expireIn, e.expireIn);
      }
      out.push(setRow(keys.messageIndexRow(ms, part[0]!.id), entries, expireIn));
    }
  }
  return out;
}

/** Writes an index row, living `expireIn` ms (for ever when undefined), which it also records. */
function setRow(
  key: Deno.KvKey,
  entries: Array<string | number>,
  expireIn: number | undefined,
): Deno.KvMutation {
  return expireIn === undefined
    ? { type: "set", key, value: { entries } satisfies IndexRow }
    : { type: "set", key, value: { entries, expireIn } satisfies IndexRow, expireIn };
}

/** The index rows of one millisecond (bounded: rows are per batch and millisecond). */
function rowsAt(kv: Deno.Kv, ms: number): AsyncIterable<Deno.KvEntry<IndexRow>> {
  return kv.list<IndexRow>({ prefix: keys.messageIndex(ms) }, { limit: 1000 });
}

/** Where the message with this id is stored, as the index says, or null. */
export async function findIndexed(kv: Deno.Kv, id: string): Promise<[string, number] | null> {
  for await (const row of rowsAt(kv, ulidTime(id))) {
    const e = row.value.entries;
    for (let i = 0; i < e.length; i += 3) {
      if (e[i] === id) return [e[i + 1] as string, e[i + 2] as number];
    }
  }
  // Written before the index was per batch.
  return (await kv.get<[string, number]>(keys.messageId(id))).value;
}

/** The stored message with this id, or null (the index is checked against the row it names). */
export async function messageById(kv: Deno.Kv, id: string): Promise<StoredMessage | null> {
  const ref = await findIndexed(kv, id);
  if (!ref) return null;
  const message = (await kv.get<StoredMessage>(keys.message(ref[0], ref[1]))).value;
  return message?.id === id ? message : null;
}

/**
 * Takes deleted messages out of the index: each row that holds one is written again without
 * it (deleted once empty), checked against a concurrent rewrite (another node deleting from the
 * same row) and retried. A rewritten row's lifetime starts again: harmless, since a lookup
 * checks the message itself. (Per-message rows of old data are deleted with the message.)
 */
export async function unindex(kv: Deno.Kv, ids: readonly string[]): Promise<void> {
  const gone = new Set(ids);
  for (const ms of new Set(ids.map(ulidTime))) {
    for (let attempt = 1; attempt <= 10; attempt++) {
      let clean = true;
      for await (const row of rowsAt(kv, ms)) {
        const e = row.value.entries;
        const kept: Array<string | number> = [];
        for (let k = 0; k < e.length; k += 3) {
          if (!gone.has(e[k] as string)) kept.push(e[k]!, e[k + 1]!, e[k + 2]!);
        }
        if (kept.length === e.length) continue;
        const atomic = kv.atomic().check(row).mutate(
          kept.length === 0
            ? { type: "delete", key: row.key }
            : setRow(row.key, kept, row.value.expireIn),
        );
        if (!(await atomic.commit()).ok) clean = false;
      }
      if (clean) break;
    }
  }
}
