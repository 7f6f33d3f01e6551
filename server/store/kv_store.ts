/**
 * The Deno KV implementation of the store, with group commit: writes queue up and are
 * committed together in one atomic operation, so one fsync carries many messages.
 * @module
 */

import type { LogEntry } from "../../protocol/frames.ts";
import { listLog, LOG_BLOCK_BYTES, logBlocks } from "./kv_log.ts";
import { orphanUploads } from "./kv_files.ts";
import { indexRows, messageById, unindex } from "./kv_index.ts";
import { messagesSinceId, newestMessages, pageOfMessages } from "./kv_pages.ts";
import { readSnapshot } from "./kv_snapshot.ts";
import { TailCache } from "./tail_cache.ts";
import { GET_MANY_KEYS, GroupCommit, type StoreStats } from "./group_commit.ts";
import { keys } from "./keys.ts";
import { retryingKv } from "./retry_kv.ts";
import {
  type AuditRecord,
  type ChatRecord,
  ConflictError,
  type Cursor,
  type FileRecord,
  type ListOptions,
  liveAt,
  type NewMessage,
  type ReportRecord,
  SCHEDULE_CLAIM_MS,
  type ScheduledRecord,
  type Store,
  type StoredMessage,
  type StoreSnapshot,
  type TokenRecord,
  type UserRecord,
} from "./store.ts";

/** The chat store on a Deno KV database that the caller opened and will close. */
export class KvStore implements Store {
  #kv: Deno.Kv;
  #commits: GroupCommit;

  /** The KV database itself (for the data file's lease, which is not chat data). */
  get kv(): Deno.Kv {
    return this.#kv;
  }

  /** The newest messages of recently read chats; null when other processes write them too. */
  #tails: TailCache | null;

  /**
   * Wraps an open KV database; `now` times commits for the stats. `soleWriter: false` (a cluster
   * node) turns off what is only right when this process alone writes messages: the tail cache.
   */
  constructor(kv: Deno.Kv, options: { now?: () => number; soleWriter?: boolean } = {}) {
    this.#commits = new GroupCommit(
      kv,
      options.now ?? (() => performance.now()),
      keys.seq,
      indexRows,
    );
    // Everything else retries "database is locked" too (another process on the same file).
    this.#kv = retryingKv(kv, () => this.#commits.stats.lockedRetries++);
    this.#tails = options.soleWriter === false ? null : new TailCache();
  }

  /** Work counters since start: commits, mutations and commit time. */
  get stats(): StoreStats {
    return this.#commits.stats;
  }

  load(): Promise<StoreSnapshot> {
    return readSnapshot(this.#kv);
  }

  async createUser(user: UserRecord): Promise<void> {
    const key = keys.user(user.name);
    const res = await this.#kv.atomic().check({ key, versionstamp: null }).set(key, user).commit();
    if (!res.ok) throw new ConflictError(`User "${user.name}" already exists`);
  }

  async getChat(id: string): Promise<ChatRecord | null> {
    return (await this.#kv.get<ChatRecord>(keys.chat(id))).value;
  }

  updateUser(user: UserRecord): Promise<void> {
    return this.#write([{ type: "set", key: keys.user(user.name), value: user }]);
  }

  createChat(chat: ChatRecord): Promise<void> {
    return this.#write([{ type: "set", key: keys.chat(chat.id), value: chat }]);
  }

  async deleteChat(id: string): Promise<void> {
    try {
      await this.#write([{ type: "delete", key: keys.chat(id) }]);
    } finally {
      this.#tails?.forget(id);
    }
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

  appendMessage(
    message: NewMessage,
    options: { completes?: ScheduledRecord } = {},
  ): Promise<StoredMessage> {
    // KV's expireIn is best effort: readers check expiresAt too, and housekeeping() sweeps.
    const ttl = message.expiresAt === undefined
      ? {}
      : { expireIn: Math.max(1, message.expiresAt - message.ts) };
    let stored: StoredMessage | undefined;
    const build = (seq: number): Deno.KvMutation[] => {
      stored = { ...message, seq };
      return [
        { type: "set", key: keys.message(message.chat, seq), value: stored, ...ttl },
        ...(message.replyTo
          ? [
            {
              type: "set",
              key: keys.reply(message.replyTo.id, message.id),
              value: message.id,
              ...ttl,
            } as const,
          ]
          : []),
        // The chat's counter is written by the group commit, once per batch: it survives even
        // when every message of the chat has expired and been swept.
        // A scheduled message's record goes in the same atomic commit as the message itself.
        ...(options.completes ? scheduledDeletes(options.completes) : []),
      ];
    };
    // Found by id through its batch's index rows (kv_index.ts): one row for many messages, but
    // counted as one for each, the most it can be.
    const count = 2 + (message.replyTo ? 1 : 0) + (options.completes ? 3 : 0);
    const index = { id: message.id, ...ttl };
    return this.#commits.writeSequenced(
      { chat: message.chat, build, index },
      count,
      message.text.length * 3 + 500,
    ).then(() => {
      this.#tails?.appended(stored!);
      return stored!;
    });
  }

  getMessage(id: string): Promise<StoredMessage | null> {
    return messageById(this.#kv, id);
  }

  async deleteMessage(message: StoredMessage): Promise<void> {
    try {
      await this.#write([
        { type: "delete", key: keys.message(message.chat, message.seq) },
        { type: "delete", key: keys.messageId(message.id) },
      ]);
      await unindex(this.#kv, [message.id]);
    } finally {
      // Even a failed delete may have been committed: the tail is read again rather than trusted.
      this.#tails?.forget(message.chat);
    }
  }

  async sweepExpired(chat: string, now: number): Promise<number> {
    // Messages expire in the order they were written: sweep from the oldest until a live one.
    const doomed: StoredMessage[] = [];
    for await (
      const e of this.#kv.list<StoredMessage>({ prefix: keys.messages(chat) }, { limit: 200 })
    ) {
      if (liveAt(e.value, now)) break;
      doomed.push(e.value);
    }
    if (doomed.length === 0) return 0;
    await this.#write(doomed.flatMap((m) => [
      { type: "delete", key: keys.message(m.chat, m.seq) } as const,
      { type: "delete", key: keys.messageId(m.id) } as const,
    ]));
    await unindex(this.#kv, doomed.map((m) => m.id));
    // Files follow the lifetime of the message that announced them.
    for (const m of doomed) if (m.file) await this.deleteFile(m.file.id);
    return doomed.length;
  }

  async listReplies(parent: string, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    for await (const e of this.#kv.list<string>({ prefix: keys.replies(parent) }, { limit })) {
      const m = await this.getMessage(e.value);
      if (m) out.push(m);
    }
    return out;
  }

  putScheduled(r: ScheduledRecord): Promise<void> {
    return this.#write([
      { type: "set", key: keys.scheduled(r.id), value: r },
      { type: "set", key: keys.scheduledDueAt(r.dueAt, r.id), value: r.id },
      { type: "set", key: keys.userScheduledOne(r.user, r.id), value: r.dueAt },
    ]);
  }

  async listDueScheduled(now: number, limit: number): Promise<ScheduledRecord[]> {
    const out: ScheduledRecord[] = [];
    const selector = { prefix: keys.scheduledDue(), end: keys.scheduledDueAt(now + 1, "") };
    for await (const e of this.#kv.list<string>(selector, { limit })) {
      const r = (await this.#kv.get<ScheduledRecord>(keys.scheduled(e.value))).value;
      if (r) out.push(r);
      // An index entry without its record is left over from a claim elsewhere: drop it.
      else await this.#kv.delete(e.key);
    }
    return out;
  }

  async listScheduledOf(user: string): Promise<ScheduledRecord[]> {
    const ids: string[] = [];
    for await (const e of this.#kv.list({ prefix: keys.userScheduled(user) }, { batchSize: 500 })) {
      ids.push(String(e.key[2]));
    }
    // The records in getMany's chunks of 10, all at once: one read after another took 12-40 ms
    // per `schedule` command at 0-100 pending (each checks the cap with this list).
    const chunks: Promise<Deno.KvEntryMaybe<ScheduledRecord>[]>[] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_KEYS) {
      const part = ids.slice(i, i + GET_MANY_KEYS).map((id) => keys.scheduled(id));
      chunks.push(this.#kv.getMany<ScheduledRecord[]>(part));
    }
    const out: ScheduledRecord[] = [];
    // A record gone meanwhile (sent or cancelled elsewhere) is left out.
    for (const entries of await Promise.all(chunks)) {
      for (const e of entries) if (e.value) out.push(e.value);
    }
    return out.sort((a, b) => a.dueAt - b.dueAt);
  }

  async claimScheduled(id: string, by: string, now: number): Promise<ScheduledRecord | null> {
    const entry = await this.#kv.get<ScheduledRecord>(keys.scheduled(id));
    const r = entry.value;
    if (!r || (r.claimedAt !== undefined && now - r.claimedAt < SCHEDULE_CLAIM_MS)) return null;
    const claimed: ScheduledRecord = { ...r, claimedBy: by, claimedAt: now };
    const res = await this.#kv.atomic()
      .check({ key: entry.key, versionstamp: entry.versionstamp })
      .set(keys.scheduled(id), claimed)
      .commit();
    return res.ok ? claimed : null;
  }

  async removeScheduled(
    id: string,
    now: number,
    force = false,
  ): Promise<"removed" | "missing" | "sending"> {
    const entry = await this.#kv.get<ScheduledRecord>(keys.scheduled(id));
    const r = entry.value;
    if (!r) return "missing";
    if (!force && r.claimedAt !== undefined && now - r.claimedAt < SCHEDULE_CLAIM_MS) {
      return "sending";
    }
    const atomic = this.#kv.atomic().check({ key: entry.key, versionstamp: entry.versionstamp });
    for (const m of scheduledDeletes(r)) atomic.mutate(m);
    return (await atomic.commit()).ok ? "removed" : "sending";
  }

  setInvite(room: string, user: string, value: { from: string; at: number } | null): Promise<void> {
    const key = keys.invite(room, user);
    return this.#write([value ? { type: "set", key, value } : { type: "delete", key }]);
  }

  setLink(token: string, value: { room: string; by: string; at: number } | null): Promise<void> {
    const key = keys.link(token);
    return this.#write([value ? { type: "set", key, value } : { type: "delete", key }]);
  }

  setJoinRequest(room: string, user: string, value: { at: number } | null): Promise<void> {
    const key = keys.joinRequest(room, user);
    return this.#write([value ? { type: "set", key, value } : { type: "delete", key }]);
  }

  setContact(user: string, contact: string, present: boolean): Promise<void> {
    const key = keys.contact(user, contact);
    return this.#write([present ? { type: "set", key, value: true } : { type: "delete", key }]);
  }

  putFileChunk(id: string, index: number, bytes: Uint8Array, expiresAt?: number): Promise<void> {
    const ttl = expiresAt === undefined ? {} : { expireIn: Math.max(1, expiresAt - Date.now()) };
    const mutation: Deno.KvMutation = {
      type: "set",
      key: keys.fileChunk(id, index),
      value: bytes,
      ...ttl,
    };
    return this.#write([mutation], bytes.length + 100);
  }

  putFile(file: FileRecord): Promise<void> {
    const ttl = file.expiresAt === undefined
      ? {}
      : { expireIn: Math.max(1, file.expiresAt - file.createdAt) };
    return this.#write([{ type: "set", key: keys.file(file.id), value: file, ...ttl }]);
  }

  async getFile(id: string): Promise<FileRecord | null> {
    return (await this.#kv.get<FileRecord>(keys.file(id))).value;
  }

  async *readFile(id: string): AsyncIterable<Uint8Array> {
    for await (
      const e of this.#kv.list<Uint8Array>({ prefix: keys.fileChunks(id) }, { batchSize: 8 })
    ) {
      yield e.value;
    }
  }

  appendLog(entries: Array<LogEntry & { id: string }>, retentionMs: number): Promise<void> {
    return this.#commits.writeInParts(logBlocks(entries, retentionMs), LOG_BLOCK_BYTES + 1024);
  }

  listLog(
    options: { limit: number; before?: string; query?: string; now: number; retentionMs: number },
  ): Promise<Array<LogEntry & { id: string }>> {
    return listLog(this.#kv, options);
  }

  /**
   * Deletes the chunks of uploads that never finished (the server stopped mid-upload, so no file
   * record was written) and began before `before`. Returns how many uploads it removed.
   */
  async sweepOrphanChunks(before: number): Promise<number> {
    let removed = 0;
    for await (const id of orphanUploads(this.#kv, before)) {
      await this.deleteFile(id);
      removed++;
    }
    return removed;
  }

  async deleteFile(id: string): Promise<void> {
    const mutations: Deno.KvMutation[] = [{ type: "delete", key: keys.file(id) }];
    for await (const e of this.#kv.list({ prefix: keys.fileChunks(id) })) {
      mutations.push({ type: "delete", key: e.key });
    }
    await this.#commits.writeInParts(mutations);
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
    await this.#commits.writeInParts(await this.#tokenDeletes(user));
  }

  /** The deletions of a user's tokens (each kept under the token and under the user). */
  async #tokenDeletes(user: string): Promise<Deno.KvMutation[]> {
    const mutations: Deno.KvMutation[] = [];
    for await (const e of this.#kv.list({ prefix: keys.userTokens(user) })) {
      mutations.push({ type: "delete", key: e.key }, {
        type: "delete",
        key: keys.token(String(e.key[2])),
      });
    }
    return mutations;
  }

  /** Deletes a user with their tokens, memberships, cursors and reports (their messages stay). */
  deleteUser(name: string): Promise<void> {
    return this.deleteUsers([name]);
  }

  async deleteUsers(names: string[]): Promise<void> {
    const mutations: Deno.KvMutation[] = [];
    for (const name of names) {
      mutations.push(...await this.#tokenDeletes(name));
      for await (const e of this.#kv.list({ prefix: keys.cursors(name) })) {
        mutations.push({ type: "delete", key: e.key }, {
          type: "delete",
          key: keys.member(String(e.key[2]), name),
        });
      }
      for await (const e of this.#kv.list({ prefix: keys.reportsOf(name) })) {
        mutations.push({ type: "delete", key: e.key });
      }
    }
    // The user rows go last: a crash between parts leaves users to delete again (a start
    // loads them), never rows of users that are gone.
    for (const name of names) mutations.push({ type: "delete", key: keys.user(name) });
    await this.#commits.writeInParts(mutations);
  }

  /** Reads a user record. */
  async getUser(name: string): Promise<UserRecord | null> {
    return (await this.#kv.get<UserRecord>(keys.user(name))).value;
  }

  async listMessages(chat: string, options: ListOptions): Promise<StoredMessage[]> {
    if (this.#tails && options.after === undefined && options.before === undefined) {
      // The last page: from memory, or one read of the newest `keep` that fills the tail.
      const page = await this.#tails.lastPage(
        chat,
        options.limit,
        options.now,
        (count) => newestMessages(this.#kv, chat, count),
      );
      if (page) return page;
    }
    return await pageOfMessages(this.#kv, chat, options);
  }

  listMessagesSinceId(
    chat: string,
    id: string,
    limit: number,
    now?: number,
  ): Promise<StoredMessage[]> {
    return messagesSinceId(this.#kv, chat, id, limit, now);
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
    // 5,000 members of one room move their cursors at once: more than one atomic may hold.
    return this.#commits.writeInParts(
      cursors.map((c) => ({ type: "set", key: keys.cursor(c.user, c.chat), value: c.seq })),
    );
  }

  /** Settles once every write queued so far is committed. */
  flush(): Promise<void> {
    return this.#commits.flush();
  }

  /** Queues mutations for the next group commit; resolves once they are durable. */
  #write(mutations: Deno.KvMutation[], bytes = 256 * mutations.length): Promise<void> {
    return this.#commits.write(mutations, bytes);
  }
}

/** The mutations that remove a scheduled message and its index entries. */
function scheduledDeletes(r: ScheduledRecord): Deno.KvMutation[] {
  return [
    { type: "delete", key: keys.scheduled(r.id) },
    { type: "delete", key: keys.scheduledDueAt(r.dueAt, r.id) },
    { type: "delete", key: keys.userScheduledOne(r.user, r.id) },
  ];
}
