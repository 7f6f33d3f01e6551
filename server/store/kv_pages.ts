/**
 * Pages of a chat's messages on Deno KV: range scans on `["messages", chat, seq]`, so a page costs
 * the same at any depth of the history. Messages past their lifetime but not yet swept are
 * skipped, so a page is still `limit` long when it can be.
 * @module
 */

import { keys } from "./keys.ts";
import type { ListOptions, StoredMessage } from "./store.ts";

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
  const live = (m: StoredMessage) =>
    now === undefined || m.expiresAt === undefined || m.expiresAt > now;
  const batchSize = Math.min(limit + 10, 500);
  const out: StoredMessage[] = [];
  if (options.after !== undefined) {
    const start = keys.message(chat, options.after + 1);
    for await (const e of kv.list<StoredMessage>({ prefix, start }, { batchSize })) {
      if (!live(e.value)) continue;
      out.push(e.value);
      if (out.length >= limit) break;
    }
    return out;
  }
  const selector = options.before === undefined
    ? { prefix }
    : { prefix, end: keys.message(chat, options.before) };
  for await (const e of kv.list<StoredMessage>(selector, { reverse: true, batchSize })) {
    if (!live(e.value)) continue;
    out.push(e.value);
    if (out.length >= limit) break;
  }
  return out.reverse();
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
    if (now !== undefined && e.value.expiresAt !== undefined && e.value.expiresAt <= now) {
      continue;
    }
    out.push(e.value);
  }
  return out.reverse();
}
