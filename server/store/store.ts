/**
 * The store interface: what the chat core needs from persistence, in domain verbs.
 * `KvStore` implements it on Deno KV; the core never sees a KV key.
 * @module
 */

/** A user account; `passwordHash` is null for a guest name nobody has claimed. */
export interface UserRecord {
  name: string;
  passwordHash: string | null;
  admin: boolean;
  createdAt: number;
}

/** A chat: a public room, or the private conversation of two users (`dm`). */
export interface ChatRecord {
  id: string;
  kind: "room" | "dm";
  createdAt: number;
  createdBy: string;
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
}

/** What the core loads once at start: everything but messages and cursors, which are read on demand. */
export interface StoreSnapshot {
  users: UserRecord[];
  chats: ChatRecord[];
  members: Array<{ chat: string; user: string }>;
  seqs: Map<string, number>;
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
}

/** Persistence for the chat core. Writes resolve only once they are durable. */
export interface Store {
  /** Reads users, chats, memberships and sequence counters. */
  load(): Promise<StoreSnapshot>;
  /** Creates a user; rejects with `ConflictError` if the name exists. */
  createUser(user: UserRecord): Promise<void>;
  /** Overwrites a user record. */
  updateUser(user: UserRecord): Promise<void>;
  /** Creates a chat record (idempotent). */
  createChat(chat: ChatRecord): Promise<void>;
  /** Adds a member to a chat and sets their read cursor. */
  addMember(chat: string, user: string, cursor: number): Promise<void>;
  /** Removes a member from a chat and drops their cursor. */
  removeMember(chat: string, user: string): Promise<void>;
  /** Appends a message; resolves after the batch holding it has committed. */
  appendMessage(message: StoredMessage): Promise<void>;
  /** Lists messages of a chat in ascending order. */
  listMessages(chat: string, options: ListOptions): Promise<StoredMessage[]>;
  /** Lists the messages of a chat whose id sorts after `id` (oldest first), at most the newest `limit`. */
  listMessagesSinceId(chat: string, id: string, limit: number): Promise<StoredMessage[]>;
  /** Stores a token record under its hash until it expires. */
  putToken(hash: string, token: TokenRecord): Promise<void>;
  /** Reads a token record by hash (null if unknown; the caller checks expiry). */
  getToken(hash: string): Promise<TokenRecord | null>;
  /** Deletes one token. */
  deleteToken(hash: string, user: string): Promise<void>;
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
