/**
 * The Deno KV implementation of the store, with group commit: writes queue up and are
 * committed together in one atomic operation, so one fsync carries many messages.
 * @module
 */

import { keys } from "./keys.ts";
import {
  type AuditRecord,
  type ChatRecord,
  ConflictError,
  type Cursor,
  type LeaseRecord,
  type ListOptions,
  type ReportRecord,
  type Store,
  type StoredMessage,
  type StoreSnapshot,
  type TokenRecord,
  type UserRecord,
} from "./store.ts";

/** Deno KV refuses an atomic with more than 1000 mutations or 800 KiB; stay well below. */
const MAX_BATCH_MUTATIONS = 900;
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
    const reports: ReportRecord[] = [];
    for await (
      const e of this.#kv.list<ReportRecord>({ prefix: keys.reports() }, { batchSize: 500 })
    ) {
      reports.push(e.value);
    }
    return { users, chats, members, seqs, reports };
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
    // KV's expireIn is best effort: readers check expiresAt too, and maintain() sweeps.
    const ttl = message.expiresAt === undefined
      ? {}
      : { expireIn: Math.max(1, message.expiresAt - message.ts) };
    return this.#write(
      [
        { type: "set", key: keys.message(message.chat, message.seq), value: message, ...ttl },
        {
          type: "set",
          key: keys.messageId(message.id),
          value: [message.chat, message.seq],
          ...ttl,
        },
        // The counter survives even when every message of a chat has expired and been swept.
        { type: "set", key: keys.seq(message.chat), value: message.seq },
      ],
      message.text.length * 3 + 300,
    );
  }

  async getMessage(id: string): Promise<StoredMessage | null> {
    const ref = (await this.#kv.get<[string, number]>(keys.messageId(id))).value;
    if (!ref) return null;
    return (await this.#kv.get<StoredMessage>(keys.message(ref[0], ref[1]))).value;
  }

  deleteMessage(message: StoredMessage): Promise<void> {
    return this.#write([
      { type: "delete", key: keys.message(message.chat, message.seq) },
      { type: "delete", key: keys.messageId(message.id) },
    ]);
  }

  async sweepExpired(chat: string, now: number): Promise<number> {
    // Messages expire in the order they were written: sweep from the oldest until a live one.
    const doomed: StoredMessage[] = [];
    for await (
      const e of this.#kv.list<StoredMessage>({ prefix: keys.messages(chat) }, { limit: 200 })
    ) {
      if (e.value.expiresAt === undefined || e.value.expiresAt > now) break;
      doomed.push(e.value);
    }
    if (doomed.length === 0) return 0;
    await this.#write(doomed.flatMap((m) => [
      { type: "delete", key: keys.message(m.chat, m.seq) } as const,
      { type: "delete", key: keys.messageId(m.id) } as const,
    ]));
    return doomed.length;
  }

  putReport(report: ReportRecord): Promise<void> {
    return this.#write([{
      type: "set",
      key: keys.report(report.target, report.reporter),
      value: report,
    }]);
  }

  clearReports(target: string, reporters: string[]): Promise<void> {
    return this.#write(reporters.map((r) => ({ type: "delete", key: keys.report(target, r) })));
  }

  appendAudit(entry: AuditRecord): Promise<void> {
    return this.#write([{ type: "set", key: keys.audit(entry.id), value: entry }]);
  }

  async listAudit(options: { limit: number; before?: string }): Promise<AuditRecord[]> {
    const selector = options.before === undefined
      ? { prefix: keys.audits() }
      : { prefix: keys.audits(), end: keys.audit(options.before) };
    const out: AuditRecord[] = [];
    for await (
      const e of this.#kv.list<AuditRecord>(selector, { limit: options.limit, reverse: true })
    ) {
      out.push(e.value);
    }
    return out;
  }

  async revokeTokens(user: string): Promise<void> {
    const mutations: Deno.KvMutation[] = [];
    for await (const e of this.#kv.list({ prefix: keys.userTokens(user) })) {
      mutations.push({ type: "delete", key: e.key }, {
        type: "delete",
        key: keys.token(String(e.key[2])),
      });
    }
    for (let i = 0; i < mutations.length; i += 400) await this.#write(mutations.slice(i, i + 400));
  }

  /** Deletes a user with their tokens, memberships, cursors and reports (their messages stay). */
  async deleteUser(name: string): Promise<void> {
    await this.revokeTokens(name);
    const mutations: Deno.KvMutation[] = [{ type: "delete", key: keys.user(name) }];
    for await (const e of this.#kv.list({ prefix: keys.cursors(name) })) {
      mutations.push({ type: "delete", key: e.key }, {
        type: "delete",
        key: keys.member(String(e.key[2]), name),
      });
    }
    for await (const e of this.#kv.list({ prefix: keys.reportsOf(name) })) {
      mutations.push({ type: "delete", key: e.key });
    }
    for (let i = 0; i < mutations.length; i += 400) await this.#write(mutations.slice(i, i + 400));
  }

  /** Reads a user record. */
  async getUser(name: string): Promise<UserRecord | null> {
    return (await this.#kv.get<UserRecord>(keys.user(name))).value;
  }

  /** Writes who holds this data file, for `ttlMs`. */
  async putLease(lease: LeaseRecord, ttlMs: number): Promise<void> {
    await this.#kv.set(keys.lease(), lease, { expireIn: ttlMs });
  }

  /** Reads who holds this data file (the caller checks how fresh it is). */
  async getLease(): Promise<LeaseRecord | null> {
    return (await this.#kv.get<LeaseRecord>(keys.lease())).value;
  }

  /** Releases the data file. */
  async deleteLease(): Promise<void> {
    await this.#kv.delete(keys.lease());
  }

  async listMessages(chat: string, options: ListOptions): Promise<StoredMessage[]> {
    const prefix = keys.messages(chat);
    const now = options.now;
    const live = (m: StoredMessage) =>
      now === undefined || m.expiresAt === undefined || m.expiresAt > now;
    const out: StoredMessage[] = [];
    if (options.after !== undefined) {
      // Expired messages not yet swept are skipped, so a page is still `limit` long when it can be.
      const iter = this.#kv.list<StoredMessage>(
        { prefix, start: keys.message(chat, options.after + 1) },
        { batchSize: Math.min(options.limit + 10, 500) },
      );
      for await (const e of iter) {
        if (!live(e.value)) continue;
        out.push(e.value);
        if (out.length >= options.limit) break;
      }
      return out;
    }
    const selector = options.before === undefined
      ? { prefix }
      : { prefix, end: keys.message(chat, options.before) };
    const iter = this.#kv.list<StoredMessage>(selector, {
      reverse: true,
      batchSize: Math.min(options.limit + 10, 500),
    });
    for await (const e of iter) {
      if (!live(e.value)) continue;
      out.push(e.value);
      if (out.length >= options.limit) break;
    }
    return out.reverse();
  }

  async listMessagesSinceId(
    chat: string,
    id: string,
    limit: number,
    now?: number,
  ): Promise<StoredMessage[]> {
    // Ids grow with seq (one writer, monotonic ULIDs), so walk back from the newest until `id`.
    const out: StoredMessage[] = [];
    const iter = this.#kv.list<StoredMessage>({ prefix: keys.messages(chat) }, {
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
