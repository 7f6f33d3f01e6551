/**
 * Deno KV on one local file shared by several processes (cluster nodes on one machine) answers
 * `TypeError: database is locked` when another process holds SQLite's write lock. This wraps a
 * `Deno.Kv` so every operation is retried with jitter, a bounded number of times, before the
 * error reaches the caller: reads, writes, atomic commits and the start of a listing.
 * @module
 */

import { isLocked } from "./group_commit.ts";

/** Tries of one operation before "database is locked" is passed on. */
const TRIES = 30;

async function retried<T>(op: () => Promise<T>, onRetry: () => void): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (!isLocked(error) || attempt >= TRIES) throw error;
      onRetry();
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
    }
  }
}

/** `kv`, with every operation retried while the database is locked; `onRetry` counts them. */
export function retryingKv(kv: Deno.Kv, onRetry: () => void): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "get":
        case "getMany":
        case "set":
        case "delete":
          return (...args: unknown[]) => retried(() => value.apply(target, args), onRetry);
        case "atomic":
          return () => {
            const op = target.atomic();
            const commit = op.commit.bind(op);
            op.commit = () => retried(commit, onRetry);
            return op;
          };
        case "list":
          return (...args: unknown[]) => retryingList(() => value.apply(target, args), onRetry);
        default:
          return value.bind(target);
      }
    },
  });
}

/** A listing whose first page is retried while locked (later pages are rarely refused). */
function retryingList<T>(
  open: () => Deno.KvListIterator<T>,
  onRetry: () => void,
): Deno.KvListIterator<T> {
  let iter = open();
  let started = false;
  const wrapper = {
    get cursor() {
      return iter.cursor;
    },
    async next(): Promise<IteratorResult<Deno.KvEntry<T>, undefined>> {
      if (started) return await iter.next();
      const first = await retried(async () => {
        try {
          return await iter.next();
        } catch (error) {
          iter = open();
          throw error;
        }
      }, onRetry);
      started = true;
      return first;
    },
    [Symbol.asyncIterator]() {
      return wrapper;
    },
  };
  return wrapper as unknown as Deno.KvListIterator<T>;
}
