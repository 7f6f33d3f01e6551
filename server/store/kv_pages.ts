/**
 * Pages of a chat's messages on Deno KV: range scans on `["messages", chat, seq]`, so a page costs
 * the same at any depth of the history. Messages past their lifetime but not yet swept are
 * skipped, so a page is still `limit` long when it can be.
 * @module
 */

import { keys } from "./keys.ts";
import { type ListOptions, liveAt, type StoredMessage } from "./store.ts";

/** The newest `count` messages of a chat, oldest first, expired or not (what the tail cache keeps). */
export async function newestMessages(
  kv: Deno.Kv,
  chat: string,
  count: number,
): Promise<StoredMessage[]> {
  const newest: StoredMessage[] = [];
  const options = { reverse: true, limit: count, batchSize: count };
  for await (const e of kv.list<StoredMessage>({ prefix: keys.messages(chat) }, options)) {
    newest.push(e.value);
  }
  return newest.reverse();
}

/** A page of live messages, oldest first: after a number, before one, or the newest. */
export async function pageOfMessages(
  kv: Deno.Kv,
  chat: string,
  options: ListOptions,
): Promise<StoredMessage[]> {
  const { now, limit } = options;
  const prefix = keys.messages(chat);
  // One batch of exactly the page: Deno KV's listed entries outlive V8's young-generation GC
  // (a bare loop of `kv.list(…).next()` promotes ~1-2 MB per scavenge; `getMany` of the same rows
  // promotes nothing, but costs twice the time per page). Reading 10 spare rows per page doubled
  // what each scavenge kept (~1.8 MB against ~0.9 MB through the server, `--trace-gc-nvp`) and
  // its pause (5 against 3 ms). A page with expired rows in it reads a further batch.
  const batchSize = Math.min(limit, 500);
  /** The first `limit` live messages of a listing, in its order. */
  const take = async (listing: Deno.KvListIterator<StoredMessage>) => {
    const out: StoredMessage[] = [];
    for await (const e of listing) {
      if (!liveAt(e.value, now)) continue;
      out.push(e.value);
      if (out.length >= limit) break;
    }
    return out;
  };
  if (options.after !== undefined) {
    const start = keys.message(chat, options.after + 1);
    return await take(kv.list<StoredMessage>({ prefix, start }, { batchSize }));
  }
  const selector = options.before === undefined
    ? { prefix }
    : { prefix, end: keys.message(chat, options.before) };
  return (await take(kv.list<StoredMessage>(selector, { reverse: true, batchSize }))).reverse();
}

/** The live messages after the one with `id`, oldest first, at most `limit`. */
export async function messagesSinceId(
  kv: Deno.Kv,
  chat: string,
  id: string,
  limit: number,
  now?: number,
): Promise<StoredMessage[]> {
  // Ids grow with seq (one writer, monotonic ULIDs), so walk back from the newest until `id`.
  const out: StoredMessage[] = [];
  const iter = kv.list<StoredMessage>({ prefix: keys.messages(chat) }, {
    reverse: true,
    batchSize: 100,
  });
  for await (const e of iter) {
    if (e.value.id <= id || out.length >= limit) break;
    if (liveAt(e.value, now)) out.push(e.value);
  }
  return out.reverse();
}
