/**
 * Uploads cut off by a crash leave chunks and no file record: finding them on Deno KV.
 * @module
 */

import { ulidTime } from "../ids.ts";
import { keys } from "./keys.ts";

/**
 * The ids of uploads that have chunks but no file record and began before `before` (ids are
 * ULIDs, which carry their time). Visits each upload once, however many chunks it has.
 */
export async function* orphanUploads(kv: Deno.Kv, before: number): AsyncIterable<string> {
  const prefix = keys.fileChunksAll();
  let selector: Deno.KvListSelector = { prefix };
  while (true) {
    const first: Deno.KvEntry<unknown> | undefined =
      (await kv.list(selector, { limit: 1 }).next()).value;
    if (!first) return;
    const id: string = String(first.key[1]);
    // Past every chunk of this id: the next id sorts after `id + "\0"`.
    selector = { start: [...prefix, id + "\0"], end: [prefix[0] + "\0"] };
    if (ulidTime(id) >= before) continue;
    if ((await kv.get(keys.file(id))).versionstamp !== null) continue;
    yield id;
  }
}
