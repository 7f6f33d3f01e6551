/**
 * The store interface: what the chat core needs from persistence, in domain verbs.
 * `KvStore` implements it on Deno KV; the core never sees a KV key.
 * @module
 */

import type { LogEntry } from "../../protocol/frames.ts";

/** A user account; `passwordHash` is null for a guest name nobody has claimed. */
export interface UserRecord {
  name: string;
  passwordHash: string | null;
  admin: boolean;
  createdAt: number;
  /** Muted (can read, cannot send) until this time. */
  mutedUntil?: number | null;
  /** Banned (cannot log in) until this time; `Number.MAX_SAFE_INTEGER` for good. */
  bannedUntil?: number | null;
  banReason?: string;
  /** Last time the user did anything, and from where. */
  lastSeen?: number;
  lastIp?: string;
}

/** One report against a user. */
export interface ReportRecord {
  target: string;
  reporter: string;
  at: number;
  reason: string;
}

/** One audit entry (see AuditEntry on the wire). */
export interface AuditRecord {
  id: string;
  at: number;
  actor: string;
  action: "report" | "mute" | "unmute" | "ban" | "unban" | "kick" | "delete" | "create_user";
  target: string;
  reason: string;
  detail?: string;
}

/** Who holds a data file: written by a running server, checked by the `user` command. */
export interface LeaseRecord {
  pid: number;
  hostname: string;
  at: number;
  /** Which server process (a random id per start), so a refresh never takes over another's. */
  id?: string;
}

/** A server's lease older than this is stale: its holder is gone (it refreshes every 2 s). */
export const LEASE_STALE_MS = 10_000;

/** A chat: a public room, or the private conversation of two users (`dm`). */
export interface ChatRecord {
  id: string;
  kind: "room" | "dm";
  createdAt: number;
  createdBy: string;
  /** A private group chat: members only, joined by invite or approved link request. */
  private?: boolean;
  owner?: string;
}

/** A scheduled message, waiting for `dueAt`. */
export interface ScheduledRecord {
  id: string;
  user: string;
  /** The room, or null for a private message to `to`. */
  room: string | null;
  to: string | null;
  text: string;
  dueAt: number;
  createdAt: number;
  /** Who is sending it and since when: a claim older than SCHEDULE_CLAIM_MS may be taken over. */
  claimedBy?: string;
  claimedAt?: number;
}

/**
 * How long a claim on a due scheduled message holds. Sending one takes milliseconds; a claim
 * this old belongs to a process that stopped between claiming and storing (kill -9), and the
 * message is sent by whoever claims it next.
 */
export const SCHEDULE_CLAIM_MS = 10_000;

/** A stored file's description; its bytes are in chunks of at most FILE_CHUNK_BYTES. */
export interface FileRecord {
  id: string;
  name: string;
  mime: string;
  size: number;
  chunks: number;
  chat: string;
  uploader: string;
  createdAt: number;
  expiresAt?: number;
}

/** Group chat state loaded at start: invites, links and join requests. */
export interface GroupState {
  invites: Array<{ room: string; user: string; from: string; at: number }>;
  links: Array<{ token: string; room: string; by: string; at: number }>;
  requests: Array<{ room: string; user: string; at: number }>;
}

/** A stored chat message. `to` is set on private messages. */
export interface StoredMessage {
  id: string;
  chat: string;
  seq: number;
  from: string;
  text: string;
  ts: number;
  to?: string;
  /** The message this one answers. */
  replyTo?: { id: string; from: string; text: string };
  /** A file this message announces. */
  file?: { id: string; name: string; size: number; mime: string };
  /** When the message stops existing (message lifetime); absent: kept. */
  expiresAt?: number;
  /** A notice (IRC's NOTICE), which automatic clients never answer. */
  notice?: true;
}

/** Whether a message is within its lifetime at `now` (every message is, without a `now`). */
export function liveAt(m: StoredMessage, now: number | undefined): boolean {
  return now === undefined || m.expiresAt === undefined || m.expiresAt > now;
}

/** A message before the store has given it its sequence number. */
export type NewMessage = Omit<StoredMessage, "seq">;

/** What the core loads once at start: everything but messages and cursors, which are read on demand. */
export interface StoreSnapshot {
  users: UserRecord[];
  chats: ChatRecord[];
  members: Array<{ chat: string; user: string }>;
  seqs: Map<string, number>;
  reports: ReportRecord[];
  groups: GroupState;
  contacts: Array<{ user: string; contact: string }>;
}

/** One read cursor: the last message of `chat` that `user` has seen. */
export interface Cursor {
  user: string;
  chat: string;
  seq: number;
}

/** A login token, stored under the SHA-256 of the token itself (never the token). */
export interface TokenRecord {
  user: string;
  createdAt: number;
  expiresAt: number;
}

/** Paging options for `listMessages`: at most `limit` messages before or after a sequence number. */
export interface ListOptions {
  limit: number;
  before?: number;
  after?: number;
  /** Messages that expired at or before this time are skipped. */
  now?: number;
}

/** Persistence for the chat core. Writes resolve only once they are durable. */
export interface Store {
  /** Reads users, chats, memberships and sequence counters. */
  load(): Promise<StoreSnapshot>;
  /** Creates a user; rejects with `ConflictError` if the name exists. */
  createUser(user: UserRecord): Promise<void>;
  /** One user's record (another node may have changed it). */
  getUser(name: string): Promise<UserRecord | null>;
  /** One chat's record. */
  getChat(id: string): Promise<ChatRecord | null>;
  /** Overwrites a user record. */
  updateUser(user: UserRecord): Promise<void>;
  /** Deletes users with their tokens, memberships, cursors and reports (their messages stay). */
  deleteUsers(names: string[]): Promise<void>;
  /** Creates a chat record (idempotent). */
  createChat(chat: ChatRecord): Promise<void>;
  /** Deletes the record of a chat with no members and no messages. */
  deleteChat(id: string): Promise<void>;
  /** Adds a member to a chat and sets their read cursor. */
  addMember(chat: string, user: string, cursor: number): Promise<void>;
  /** Removes a member from a chat and drops their cursor. */
  removeMember(chat: string, user: string): Promise<void>;
  /**
   * Appends a message under its chat's next sequence number, which the store gives at commit
   * time (so several processes on one store never give one number twice); resolves with the
   * stored message after the batch holding it has committed. A scheduled message
   * names its record in `completes`: the record is deleted in the same atomic commit, so it is
   * stored exactly once whatever stops the server, whenever.
   */
  appendMessage(
    message: NewMessage,
    options?: { completes?: ScheduledRecord },
  ): Promise<StoredMessage>;
  /** Lists messages of a chat in ascending order. */
  listMessages(chat: string, options: ListOptions): Promise<StoredMessage[]>;
  /** Lists the messages of a chat whose id sorts after `id` (oldest first), at most the newest `limit`. */
  listMessagesSinceId(
    chat: string,
    id: string,
    limit: number,
    now?: number,
  ): Promise<StoredMessage[]>;
  /** Stores a token record under its hash until it expires. */
  putToken(hash: string, token: TokenRecord): Promise<void>;
  /** Reads a token record by hash (null if unknown; the caller checks expiry). */
  getToken(hash: string): Promise<TokenRecord | null>;
  /** Deletes one token. */
  deleteToken(hash: string, user: string): Promise<void>;
  /** Finds a message by id (null if unknown or deleted; the caller checks expiry). */
  getMessage(id: string): Promise<StoredMessage | null>;
  /** Removes a message. */
  deleteMessage(message: StoredMessage): Promise<void>;
  /** Removes expired messages at the start of a chat; returns how many. */
  sweepExpired(chat: string, now: number): Promise<number>;
  /** Records a report. */
  putReport(report: ReportRecord): Promise<void>;
  /** Forgets every report against a user. */
  clearReports(target: string, reporters: string[]): Promise<void>;
  /** Appends an audit entry. */
  appendAudit(entry: AuditRecord): Promise<void>;
  /** Lists audit entries, newest first, older than `before` (an entry id). */
  listAudit(options: { limit: number; before?: string }): Promise<AuditRecord[]>;
  /** Lists the replies to a message, oldest first. */
  listReplies(parent: string, limit: number): Promise<StoredMessage[]>;
  /** Stores a scheduled message with its due-time index. */
  putScheduled(record: ScheduledRecord): Promise<void>;
  /** Scheduled messages due at or before `now`, earliest first. */
  listDueScheduled(now: number, limit: number): Promise<ScheduledRecord[]>;
  /** A user's pending scheduled messages, earliest first. */
  listScheduledOf(user: string): Promise<ScheduledRecord[]>;
  /**
   * Claims a due scheduled message for sending, in one atomic operation that checks nobody
   * changed it meanwhile: of two processes racing for it, exactly one gets it. A fresh claim of
   * someone else's is left alone; a stale one (SCHEDULE_CLAIM_MS) is taken over.
   */
  claimScheduled(id: string, by: string, now: number): Promise<ScheduledRecord | null>;
  /**
   * Removes a scheduled message: a cancel (refused with "sending" while a fresh claim holds it)
   * or one that could not be sent.
   */
  removeScheduled(
    id: string,
    now: number,
    force?: boolean,
  ): Promise<"removed" | "missing" | "sending">;
  /** Keeps service log entries for `retentionMs` (expired ones are skipped on read too). */
  appendLog(entries: Array<LogEntry & { id: string }>, retentionMs: number): Promise<void>;
  /** Service log entries newest first, before an id, whose text or kind contains `query`. */
  listLog(
    options: { limit: number; before?: string; query?: string; now: number; retentionMs: number },
  ): Promise<Array<LogEntry & { id: string }>>;
  /** Deletes the chunks of uploads that never finished and began before `before`. */
  sweepOrphanChunks(before: number): Promise<number>;
  /** Saves or deletes group state: an invite, a link, a join request. */
  setInvite(room: string, user: string, value: { from: string; at: number } | null): Promise<void>;
  setLink(token: string, value: { room: string; by: string; at: number } | null): Promise<void>;
  setJoinRequest(room: string, user: string, value: { at: number } | null): Promise<void>;
  /** Adds or removes a contact. */
  setContact(user: string, contact: string, present: boolean): Promise<void>;
  /** Stores one chunk of a file's bytes. */
  putFileChunk(id: string, index: number, bytes: Uint8Array, expiresAt?: number): Promise<void>;
  /** Stores a file's description, making it downloadable. */
  putFile(file: FileRecord): Promise<void>;
  /** Reads a file's description. */
  getFile(id: string): Promise<FileRecord | null>;
  /** Reads a file's bytes chunk by chunk. */
  readFile(id: string): AsyncIterable<Uint8Array>;
  /** Deletes a file and its chunks. */
  deleteFile(id: string): Promise<void>;
  /** Revokes every token of a user. */
  revokeTokens(user: string): Promise<void>;
  /** Reads every read cursor of a user, by chat. */
  getCursors(user: string): Promise<Map<string, number>>;
  /** Saves read cursors (batched with other writes). */
  saveCursors(cursors: Cursor[]): Promise<void>;
  /** Commits whatever is queued. */
  flush(): Promise<void>;
}

/** A write lost a race or hit an existing record. */
export class ConflictError extends Error {
  /** Creates a conflict error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConflictError";
  }
}
