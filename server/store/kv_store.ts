/**
 * The Deno KV implementation of the store, with group commit: writes queue up and are
 * committed together in one atomic operation, so one fsync carries many messages.
 * @module
 */

import { keys } from "./keys.ts";
import {
  type ChatRecord,
  ConflictError,
  type Cursor,
  type ListOptions,
  type Store,
  type StoredMessage,
  type StoreSnapshot,
  type TokenRecord,
  type UserRecord,
} from "./store.ts";

/** Deno KV refuses an atomic with more than 1000 mutations or 800 KiB; stay well below. */
const MAX_BATCH_MUTATIONS = 500;
const MAX_BATCH_BYTES = 512 * 1024;

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

/** The chat store on a Deno KV database that the caller opened and will close. */
export class KvStore implements Store {
  #kv: Deno.Kv;
  #queue: PendingWrite[] = [];
  #draining: Promise<void> | null = null;
  #now: () => number;
  /** Work counters since start. */
  readonly stats: StoreStats = { commits: 0, mutations: 0, commitMsTotal: 0, commitMsMax: 0 };

  /** Wraps an open KV database; `now` times commits for the stats. */
  constructor(kv: Deno.Kv, options: { now?: () => number } = {}) {
    this.#kv = kv;
    this.#now = options.now ?? (() => performance.now());
  }

  async load(): Promise<StoreSnapshot> {
    const users: UserRecord[] = [];
    for await (const e of this.#kv.list<UserRecord>({ prefix: keys.users() }, { batchSize: 500 })) {
      users.push(e.value);
    }
    const chats: ChatRecord[] = [];
    for await (const e of this.#kv.list<ChatRecord>({ prefix: keys.chats() }, { batchSize: 500 })) {
      chats.push(e.value);
    }
    const members: Array<{ chat: string; user: string }> = [];
    for await (const e of this.#kv.list({ prefix: keys.members() }, { batchSize: 500 })) {
      members.push({ chat: String(e.key[1]), user: String(e.key[2]) });
    }
    const seqs = new Map<string, number>();
    for await (const e of this.#kv.list<number>({ prefix: keys.seqs() }, { batchSize: 500 })) {
      seqs.set(String(e.key[1]), e.value);
    }
    return { users, chats, members, seqs };
  }

  async createUser(user: UserRecord): Promise<void> {
    const key = keys.user(user.name);
    const res = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, user).commit();
    if (!res.ok) throw new ConflictError(`User "${user.name}" already exists`);
  }

  updateUser(user: UserRecord): Promise<void> {
    return this.#write([{ type: "set", key: keys.user(user.name), value: user }]);
  }

  createChat(chat: ChatRecord): Promise<void> {
    return this.#write([{ type: "set", key: keys.chat(chat.id), value: chat }]);
  }

  addMember(chat: string, user: string, cursor: number): Promise<void> {
    return this.#write([
      { type: "set", key: keys.member(chat, user), value: true },
      { type: "set", key: keys.cursor(user, chat), value: cursor },
    ]);
  }

  removeMember(chat: string, user: string): Promise<void> {
    return this.#write([
      { type: "delete", key: keys.member(chat, user) },
      { type: "delete", key: keys.cursor(user, chat) },
    ]);
  }

  appendMessage(message: StoredMessage): Promise<void> {
    return this.#write(
      [
        { type: "set", key: keys.message(message.chat, message.seq), value: message },
        // The counter survives even when every message of a chat has expired and been swept.
        { type: "set", key: keys.seq(message.chat), value: message.seq },
      ],
      message.text.length * 3 + 256,
    );
  }

  async listMessages(chat: string, options: ListOptions): Promise<StoredMessage[]> {
    const prefix = keys.messages(chat);
    const out: StoredMessage[] = [];
    if (options.after !== undefined) {
      const iter = this.#kv.list<StoredMessage>(
        { prefix, start: keys.message(chat, options.after + 1) },
        { limit: options.limit },
      );
      for await (const e of iter) out.push(e.value);
      return out;
    }
    const selector = options.before === undefined
      ? { prefix }
      : { prefix, end: keys.message(chat, options.before) };
    for await (
      const e of this.#kv.list<StoredMessage>(selector, { limit: options.limit, reverse: true })
    ) {
      out.push(e.value);
    }
    return out.reverse();
  }

  async listMessagesSinceId(chat: string, id: string, limit: number): Promise<StoredMessage[]> {
    // Ids grow with seq (one writer, monotonic ULIDs), so walk back from the newest until `id`.
    const out: StoredMessage[] = [];
    const iter = this.#kv.list<StoredMessage>({ prefix: keys.messages(chat) }, {
      reverse: true,
      batchSize: 100,
    });
    for await (const e of iter) {
      if (e.value.id <= id || out.length >= limit) break;
      out.push(e.value);
    }
    return out.reverse();
  }

  async putToken(hash: string, token: TokenRecord): Promise<void> {
    const expireIn = Math.max(1, token.expiresAt - token.createdAt);
    await this.#write([
      { type: "set", key: keys.token(hash), value: token, expireIn },
      { type: "set", key: keys.userToken(token.user, hash), value: token.expiresAt, expireIn },
    ]);
  }

  async getToken(hash: string): Promise<TokenRecord | null> {
    return (await this.#kv.get<TokenRecord>(keys.token(hash))).value;
  }

  deleteToken(hash: string, user: string): Promise<void> {
    return this.#write([
      { type: "delete", key: keys.token(hash) },
      { type: "delete", key: keys.userToken(user, hash) },
    ]);
  }

  async getCursors(user: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for await (const e of this.#kv.list<number>({ prefix: keys.cursors(user) })) {
      out.set(String(e.key[2]), e.value);
    }
    return out;
  }

  saveCursors(cursors: Cursor[]): Promise<void> {
    if (cursors.length === 0) return Promise.resolve();
    return this.#write(
      cursors.map((c) => ({ type: "set", key: keys.cursor(c.user, c.chat), value: c.seq })),
    );
  }

  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Queues mutations for the next group commit; resolves once they are durable. */
  #write(mutations: Deno.KvMutation[], bytes = 256 * mutations.length): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ mutations, bytes, resolve, reject });
      this.#kick();
    });
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
      const batch: PendingWrite[] = [];
      let mutations = 0;
      let bytes = 0;
      while (this.#queue.length > 0) {
        const next = this.#queue[0]!;
        if (
          batch.length > 0 &&
          (mutations + next.mutations.length > MAX_BATCH_MUTATIONS ||
            bytes + next.bytes > MAX_BATCH_BYTES)
        ) break;
        batch.push(this.#queue.shift()!);
        mutations += next.mutations.length;
        bytes += next.bytes;
      }
      const started = this.#now();
      try {
        const atomic = this.#kv.atomic();
        for (const w of batch) atomic.mutate(...w.mutations);
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
}
