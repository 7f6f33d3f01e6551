/**
 * The chat core: one hub that every transport calls with `connect`, `receive` and
 * `disconnect`. It holds who is online, rooms and sessions in memory, persists through the
 * `Store`, and takes time and ids from injected functions, so every rule runs under a fake clock.
 * @module
 */

import {
  type AdminFrame,
  type ChatSummary,
  type ClientFrame,
  type ConnectionEntry,
  type FileRef,
  type LogEntry,
  type MessageFrame,
  type Mode,
  ProtocolError,
  type QuotaState,
  type RoomEntry,
  type ScheduledEntry,
  type ServerFrame,
  type UserEntry,
  validateRoomName,
  validateUsername,
} from "../../protocol/frames.ts";
import {
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  LOGIN_WINDOW_MS,
  MAX_FAILED_LOGINS_PER_ACCOUNT,
  MAX_FAILED_LOGINS_PER_IP,
  MAX_MESSAGE_CHARS,
  MAX_PAGE,
  MAX_ROOMS_PER_USER,
  MAX_UNREAD_REPLAY,
  MIN_PASSWORD_CHARS,
} from "../../protocol/limits.ts";
import type {
  AuditRecord,
  ChatRecord,
  FileRecord,
  ReportRecord,
  ScheduledRecord,
  Store,
  StoredMessage,
  UserRecord,
} from "../store/store.ts";
import { ChatError } from "./errors.ts";
import { Outbound, type Peer } from "./peer.ts";

/** How often expired messages are removed from storage (they are hidden on read at once). */
const SWEEP_EVERY_MS = 60_000;

/** How long an offline user's read cursors stay cached after their last use. */
const CURSOR_IDLE_MS = 60_000;

/** The room every user is in. */
export const GENERAL = "general";

/** Where the core reads the time, in epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** Hashes and checks passwords with a slow KDF. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
}

/** What the hub is built from. */
export interface HubOptions {
  store: Store;
  clock: Clock;
  /** Returns a new sortable unique id (a ULID) for a message created at `now`. */
  newId: (now: number) => string;
  passwords: PasswordHasher;
  /** Messages shown on joining a room. */
  historySize?: number;
  /** How long a login token lives, in ms (default 7 days). */
  tokenTtlMs?: number;
  /** Reports from distinct users that mute someone (default 3). */
  reportsToMute?: number;
  /** How long a mute lasts, in ms (default 4 hours). */
  muteForMs?: number;
  /** Messages a user may send into public rooms per window (default 20 per hour); null: no limit. */
  rateLimit?: RateLimit | null;
  /** Private messages a user may send per window (default 30 per minute); null: no limit. */
  privateRateLimit?: RateLimit | null;
  /** How long messages live, in ms (default 1 hour); 0 keeps them. */
  messageTtlMs?: number;
  /** Simultaneous connections allowed from one address (default 256); 0: no limit. */
  maxConnectionsPerIp?: number;
  /** Largest file a user may send, in bytes (default 5 MiB). */
  maxFileSize?: number;
  /** `closed`: only admins create accounts, and every login needs a password. */
  registration?: "open" | "closed";
  /** Called with unexpected errors (the core never logs by itself). */
  onError?: (error: unknown, context: string) => void;
}

/** At most `count` messages in any `windowMs`. */
export interface RateLimit {
  count: number;
  windowMs: number;
}

interface UserState {
  record: UserRecord;
  /** Send times inside the current window, oldest first: public rooms and private messages. */
  sent: number[];
  sentPrivate: number[];
  conns: Set<Conn>;
  chats: Set<string>;
  /** Read cursors by chat, loaded while the user is online or polled over REST. */
  cursors: Map<string, number> | null;
  dirty: Set<string>;
  session: UserState | null;
  requestsIn: Set<UserState>;
  requestsOut: Set<UserState>;
  /** Contacts (user names), and pending invites to private groups (room → who invited). */
  contacts: Set<string>;
  invites: Map<string, string>;
  /** Commands of this user in progress; the cursor cache is never evicted under one. */
  busy: number;
  lastUsed: number;
}

interface RoomState {
  record: ChatRecord;
  members: Set<UserState>;
  /** Members with at least one connection: the fan-out set, so delivery never walks offline members. */
  online: Set<UserState>;
  /** Private groups: who asked to join through a link, and when. */
  requests: Map<string, number>;
}

interface Conn {
  id: number;
  peer: Peer;
  user: UserState | null;
  room: string;
  /** Whether this connection shows the user's private session (true) or its room. */
  sessionView: boolean;
  chain: Promise<void>;
  /** A file the next message of this (transient, upload) connection announces. */
  file?: FileRef;
  /** Live deliveries held back while this connection's history/unread replay is being sent. */
  held: Outbound[] | null;
  /** The last message of this connection still being stored; other replies wait for it to keep order. */
  lastPost: Promise<void> | null;
  connectedAt: number;
  lastSeen: number;
  closed: boolean;
}

/** Counters the hub keeps, for metrics and benchmarks. */
export interface HubStats {
  messages: number;
  deliveries: number;
  errors: number;
}

/** Returns the chat id of the private conversation between two users. */
export function dmId(a: string, b: string): string {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** The chat core. */
export class Hub {
  #store: Store;
  #clock: Clock;
  #newId: (now: number) => string;
  #passwords: PasswordHasher;
  #historySize: number;
  #tokenTtlMs: number;
  #reportsToMute: number;
  #muteForMs: number;
  #rateLimit: RateLimit | null;
  #privateRateLimit: RateLimit | null;
  #messageTtlMs: number;
  #registration: "open" | "closed";
  /** Open reports by target, then reporter. */
  #reports = new Map<string, Map<string, ReportRecord>>();
  #lastSweep = 0;
  /** Recent failed logins by "user:NAME" and "ip:ADDR", for throttling password guessing. */
  #loginFailures = new Map<string, number[]>();
  #links = new Map<string, { room: string; by: string; at: number }>();
  #maxFileSize: number;
  #httpPort: number | null = null;
  #maxPerIp: number;
  #startedAt: number;
  /** Messages per second over the last minute: [second, count] buckets. */
  #minute: Array<[number, number]> = Array.from({ length: 60 }, () => [0, 0]);
  /** The live service log: the last LOG_SIZE entries, and the admin connections watching it. */
  #logRing: LogEntry[] = [];
  #logWatchers = new Set<Conn>();
  #onError: (error: unknown, context: string) => void;

  #users = new Map<string, UserState>();
  #lowerNames = new Map<string, string>();
  #rooms = new Map<string, RoomState>();
  #seqs = new Map<string, number>();
  #conns = new Map<number, Conn>();
  #nextConnId = 1;
  #onlineUsers = 0;
  #dirtyUsers = new Set<UserState>();
  /** Users whose cursors are loaded in memory. */
  #cursorCache = new Set<UserState>();
  #inflight = new Set<Promise<void>>();
  #closing = false;
  /** Work counters since start. */
  readonly stats: HubStats = { messages: 0, deliveries: 0, errors: 0 };

  private constructor(options: HubOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#newId = options.newId;
    this.#passwords = options.passwords;
    this.#historySize = Math.min(options.historySize ?? 20, MAX_PAGE);
    this.#tokenTtlMs = options.tokenTtlMs ?? 7 * 24 * 3600_000;
    this.#reportsToMute = options.reportsToMute ?? 3;
    this.#muteForMs = options.muteForMs ?? 4 * 3600_000;
    this.#rateLimit = options.rateLimit === undefined
      ? { count: 20, windowMs: 3600_000 }
      : options.rateLimit;
    this.#privateRateLimit = options.privateRateLimit === undefined
      ? { count: 30, windowMs: 60_000 }
      : options.privateRateLimit;
    this.#messageTtlMs = options.messageTtlMs ?? 3600_000;
    this.#registration = options.registration ?? "open";
    this.#maxFileSize = options.maxFileSize ?? 5 * 1024 * 1024;
    this.#startedAt = this.#clock.now();
    this.#maxPerIp = options.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP;
    this.#onError = options.onError ?? (() => {});
  }

  /** Loads state from the store and returns a ready hub; creates `general` on first start. */
  static async create(options: HubOptions): Promise<Hub> {
    const hub = new Hub(options);
    await hub.#load();
    return hub;
  }

  async #load(): Promise<void> {
    const snap = await this.#store.load();
    for (const record of snap.users) this.#addUserState(record);
    for (const chat of snap.chats) {
      if (chat.kind === "room") {
        this.#rooms.set(chat.id, {
          record: chat,
          members: new Set(),
          online: new Set(),
          requests: new Map(),
        });
      }
    }
    for (const { chat, user } of snap.members) {
      const u = this.#users.get(user);
      if (!u) continue;
      u.chats.add(chat);
      this.#rooms.get(chat)?.members.add(u);
    }
    for (const [chat, seq] of snap.seqs) this.#seqs.set(chat, seq);
    for (const { user, contact } of snap.contacts) this.#users.get(user)?.contacts.add(contact);
    for (const inv of snap.groups.invites) {
      this.#users.get(inv.user)?.invites.set(inv.room, inv.from);
    }
    for (const link of snap.groups.links) this.#links.set(link.token, link);
    for (const req of snap.groups.requests) {
      this.#rooms.get(req.room)?.requests.set(req.user, req.at);
    }
    for (const report of snap.reports) {
      let m = this.#reports.get(report.target);
      if (!m) this.#reports.set(report.target, m = new Map());
      m.set(report.reporter, report);
    }
    if (!this.#rooms.has(GENERAL)) {
      const record: ChatRecord = {
        id: GENERAL,
        kind: "room",
        createdAt: this.#clock.now(),
        createdBy: "",
      };
      await this.#store.createChat(record);
      this.#rooms.set(GENERAL, {
        record,
        members: new Set(),
        online: new Set(),
        requests: new Map(),
      });
    }
  }

  #addUserState(record: UserRecord): UserState {
    const u: UserState = {
      record,
      sent: [],
      sentPrivate: [],
      conns: new Set(),
      chats: new Set(),
      cursors: null,
      dirty: new Set(),
      session: null,
      requestsIn: new Set(),
      requestsOut: new Set(),
      contacts: new Set(),
      invites: new Map(),
      busy: 0,
      lastUsed: 0,
    };
    this.#users.set(record.name, u);
    this.#lowerNames.set(record.name.toLowerCase(), record.name);
    return u;
  }

  // ---------------------------------------------------------------- transport API

  /**
   * Whether one more connection from `ip` is allowed (transports ask before `connect`), or the
   * sentence to refuse it with.
   */
  admit(ip: string): string | null {
    if (this.#maxPerIp <= 0 || !ip) return null;
    let n = 0;
    for (const c of this.#conns.values()) if (c.peer.ip === ip && ++n >= this.#maxPerIp) break;
    return n >= this.#maxPerIp
      ? `Too many connections from ${ip} (the limit is ${this.#maxPerIp}): close some and try again`
      : null;
  }

  /** Registers a new connection and returns its id; nothing is sent until it says hello. */
  connect(peer: Peer): number {
    const id = this.#nextConnId++;
    this.#conns.set(id, this.#newConn(id, peer, null));
    return id;
  }

  /** A connection's initial state: live ones get an id, REST's transient ones 0. */
  #newConn(id: number, peer: Peer, user: UserState | null): Conn {
    const now = this.#clock.now();
    return {
      id,
      peer,
      user,
      room: GENERAL,
      sessionView: false,
      chain: Promise.resolve(),
      held: null,
      lastPost: null,
      connectedAt: now,
      lastSeen: now,
      closed: false,
    };
  }

  /**
   * Handles one frame from a connection. Frames of one connection are handled in order; the
   * promise settles when this frame has been handled (a message's storage may still be pending,
   * and its `ack` follows the commit).
   */
  receive(connId: number, frame: ClientFrame): Promise<void> {
    const conn = this.#conns.get(connId);
    if (!conn || conn.closed) return Promise.resolve();
    conn.lastSeen = this.#clock.now();
    const run = conn.chain.then(() => this.#dispatch(conn, frame));
    conn.chain = run;
    return run;
  }

  /** Sends an error frame for input a transport could not decode. */
  reject(connId: number, error: ProtocolError | ChatError): void {
    const conn = this.#conns.get(connId);
    if (conn) this.#send(conn, { type: "error", code: error.code, message: error.message });
  }

  /**
   * Settles once every frame this connection sent has been handled and its messages stored and
   * acked: a client that half-closes after its last line still gets its acks.
   */
  async settle(connId: number): Promise<void> {
    const conn = this.#conns.get(connId);
    if (!conn) return;
    await conn.chain;
    if (conn.lastPost) await conn.lastPost;
  }

  /** Forgets a connection; the last connection of a user takes them offline. */
  disconnect(connId: number): void {
    const conn = this.#conns.get(connId);
    if (!conn || conn.closed) return;
    conn.closed = true;
    this.#conns.delete(connId);
    this.#logWatchers.delete(conn);
    if (conn.user) {
      this.#log("disconnect", `${conn.user.record.name} disconnected (${conn.peer.transport})`);
    }
    const u = conn.user;
    if (!u) return;
    u.conns.delete(conn);
    if (u.conns.size === 0) this.#goOffline(u);
  }

  /**
   * Periodic work: persists read cursors, then forgets the cursors of users idle for a minute
   * with no connection (they are reloaded on next use). Call about once a second.
   */
  async maintain(): Promise<void> {
    await this.#flushCursors();
    const now = this.#clock.now();
    if (this.#messageTtlMs > 0 && now - this.#lastSweep >= SWEEP_EVERY_MS) {
      this.#lastSweep = now;
      for (const chat of this.#seqs.keys()) await this.#store.sweepExpired(chat, now);
    }
    for (const u of this.#cursorCache) {
      if (
        u.conns.size === 0 && u.busy === 0 && u.dirty.size === 0 &&
        now - u.lastUsed > CURSOR_IDLE_MS
      ) {
        u.cursors = null;
        this.#cursorCache.delete(u);
      }
    }
  }

  /** Whether a user's cursors are cached (for tests of eviction). */
  cursorsCached(username: string): boolean {
    return this.#users.get(username)?.cursors != null;
  }

  #use(u: UserState): void {
    u.busy++;
    u.lastUsed = this.#clock.now();
  }

  #release(u: UserState): void {
    u.busy--;
    u.lastUsed = this.#clock.now();
  }

  /** Settles once every message accepted so far has been stored (or failed) and delivered. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
  }

  /** Stops taking commands, waits for pending writes, saves cursors and says goodbye to everyone. */
  async close(reason = "server shutting down"): Promise<void> {
    this.#closing = true;
    await this.idle();
    await this.#flushCursors();
    await this.#store.flush();
    const bye = new Outbound({ type: "bye", reason });
    for (const conn of [...this.#conns.values()]) {
      conn.peer.send(bye);
      conn.peer.close(reason);
    }
  }

  /** Tells the hub the HTTP port, so `token` replies can say where files go. */
  setHttpPort(port: number): void {
    this.#httpPort = port;
  }

  /** Largest file accepted, in bytes. */
  get maxFileSize(): number {
    return this.#maxFileSize;
  }

  /** Number of users with at least one connection. */
  get onlineUsers(): number {
    return this.#onlineUsers;
  }

  /** Number of open connections, logged in or not. */
  get connections(): number {
    return this.#conns.size;
  }

  // ---------------------------------------------------------------- request/response API (REST)

  /**
   * Logs in with a password, registering the name if nobody has claimed it (s3's `/connect`),
   * and returns a new token. Tokens are random; only their SHA-256 is stored.
   */
  async login(
    username: string,
    password: string,
    ip = "",
  ): Promise<{ token: string; username: string; expiresAt: number }> {
    let u = this.#findUser(validateUsername(username));
    if (u?.record.passwordHash) {
      await this.#checkPassword(u, password, ip);
    } else if (this.#registration === "closed") {
      throw new ChatError(
        "forbidden",
        "Registration is closed: ask an admin to create your account",
      );
    } else {
      u = await this.#claim(username, password, u);
    }
    this.#checkNotBanned(u);
    this.#use(u);
    try {
      await this.#loadCursors(u);
      if (!u.chats.has(GENERAL)) await this.#addMember(u, this.#rooms.get(GENERAL)!);
    } finally {
      this.#release(u);
    }
    return { ...(await this.#issueToken(u)), username: u.record.name };
  }

  /**
   * Checks a password, refusing at once while the account or the address has failed too often
   * recently (the slow KDF already costs each try ~50 ms; this caps the number of tries).
   */
  async #checkPassword(u: UserState, password: string, ip: string): Promise<void> {
    const now = this.#clock.now();
    const keys = [`user:${u.record.name}`, ...(ip ? [`ip:${ip}`] : [])];
    for (const key of keys) {
      const fails = (this.#loginFailures.get(key) ?? []).filter((t) => t > now - LOGIN_WINDOW_MS);
      this.#loginFailures.set(key, fails);
      const max = key.startsWith("user:")
        ? MAX_FAILED_LOGINS_PER_ACCOUNT
        : MAX_FAILED_LOGINS_PER_IP;
      if (fails.length >= max) {
        const who = key.startsWith("user:") ? `for ${u.record.name}` : "from your address";
        throw new ChatError(
          "rate_limited",
          `Too many failed logins ${who}: try again after ${iso(fails[0]! + LOGIN_WINDOW_MS)}`,
        );
      }
    }
    if (await this.#passwords.verify(password, u.record.passwordHash!)) {
      this.#loginFailures.delete(`user:${u.record.name}`);
      return;
    }
    for (const key of keys) this.#loginFailures.get(key)!.push(now);
    this.#log("error", `failed login for ${u.record.name}${ip ? ` from ${ip}` : ""}`);
    throw new ChatError("bad_password", `Wrong password for ${u.record.name}: try again`);
  }

  /** Makes a new login token for a user; only its hash is stored. */
  async #issueToken(u: UserState): Promise<{ token: string; expiresAt: number }> {
    const token = randomToken();
    const now = this.#clock.now();
    const expiresAt = now + this.#tokenTtlMs;
    await this.#store.putToken(await sha256(token), {
      user: u.record.name,
      createdAt: now,
      expiresAt,
    });
    return { token, expiresAt };
  }

  /** Returns the user a token belongs to, or throws `not_logged_in` if it is unknown or expired. */
  async authenticate(token: string): Promise<string> {
    const record = token.length > 0 && token.length <= 200
      ? await this.#store.getToken(await sha256(token))
      : null;
    // KV expiry is best effort: the expiry is checked here too.
    if (!record || record.expiresAt <= this.#clock.now() || !this.#users.has(record.user)) {
      throw new ChatError(
        "not_logged_in",
        "Your token is unknown or expired: log in again (POST /connect)",
      );
    }
    this.#checkNotBanned(this.#users.get(record.user)!);
    return record.user;
  }

  /** Revokes a token. */
  async logout(token: string): Promise<void> {
    const user = await this.authenticate(token);
    await this.#store.deleteToken(await sha256(token), user);
  }

  /**
   * Runs one command for a user without a live connection (REST) and returns the frames it
   * produced, after the message it sent (if any) is stored. An `error` reply is thrown as a
   * `ChatError`, so the caller maps it in one place.
   */
  async request(
    username: string,
    frame: ClientFrame,
    ip = "",
    file?: FileRef,
  ): Promise<ServerFrame[]> {
    const u = this.#users.get(username);
    if (!u) throw new ChatError("not_logged_in", "This account no longer exists: log in again");
    if (frame.type === "hello" || frame.type === "auth") {
      throw new ChatError("bad_frame", "Requests are already authenticated by their token");
    }
    this.#use(u);
    try {
      return await this.#requestAs(u, frame, ip, file);
    } finally {
      this.#release(u);
    }
  }

  async #requestAs(
    u: UserState,
    frame: ClientFrame,
    ip: string,
    file?: FileRef,
  ): Promise<ServerFrame[]> {
    await this.#loadCursors(u);
    const frames: ServerFrame[] = [];
    const peer: Peer = {
      transport: "rest",
      ip,
      send: (out) => void frames.push(out.frame),
      close: () => {},
    };
    const conn = this.#newConn(0, peer, u);
    if (file !== undefined) conn.file = file;
    await this.#dispatch(conn, frame);
    if (conn.lastPost) await conn.lastPost;
    const error = frames.find((f) => f.type === "error");
    if (error) throw new ChatError(error.code, error.message);
    return frames;
  }

  /** Loads a user's cursors; call only while the user is marked busy (#use). */
  async #loadCursors(u: UserState): Promise<void> {
    if (u.cursors) return;
    const cursors = await this.#store.getCursors(u.record.name);
    // Another command of the same user may have loaded them meanwhile: keep that copy.
    if (!u.cursors) {
      u.cursors = cursors;
      this.#cursorCache.add(u);
    }
  }

  // ---------------------------------------------------------------- dispatch

  async #dispatch(conn: Conn, frame: ClientFrame): Promise<void> {
    if (conn.closed) return;
    try {
      if (this.#closing) {
        throw new ChatError("internal", "The server is shutting down: reconnect in a moment");
      }
      // Messages pipeline (storage is batched); anything else answers after them, in order.
      if (frame.type !== "message" && frame.type !== "private" && conn.lastPost) {
        await conn.lastPost;
      }
      const u = conn.user;
      if (u) this.#use(u);
      try {
        await this.#handle(conn, frame);
      } finally {
        if (u) this.#release(u);
      }
    } catch (error) {
      this.#replyError(conn, error, frame.ref);
    }
  }

  #replyError(conn: Conn, error: unknown, ref: string | undefined): void {
    const r = ref === undefined ? {} : { ref };
    if (error instanceof ChatError || error instanceof ProtocolError) {
      this.#send(conn, { type: "error", code: error.code, message: error.message, ...r });
      return;
    }
    this.stats.errors++;
    this.#log("error", `internal error handling a command: ${String(error).slice(0, 200)}`);
    this.#onError(error, "command");
    this.#send(conn, {
      type: "error",
      code: "internal",
      message: "Something went wrong on the server; it was logged. Try again.",
      ...r,
    });
  }

  async #handle(conn: Conn, frame: ClientFrame): Promise<void> {
    if (frame.type === "ping") {
      return this.#send(conn, { type: "pong", timestamp: this.#ts(), ...ref(frame) });
    }
    // The answer to a heartbeat: the transport has already seen it arrive, nothing else to do.
    if (frame.type === "pong") return;
    if (frame.type === "hello") return await this.#hello(conn, frame);
    if (frame.type === "auth") return await this.#auth(conn, frame.token, frame.since, frame.ref);
    const u = conn.user;
    if (!u) {
      throw new ChatError("not_logged_in", 'Say who you are first: {"username":"YourName"}');
    }
    switch (frame.type) {
      case "register":
        return await this.#register(conn, u, frame.password, frame.ref);
      case "message":
        return await this.#message(
          conn,
          u,
          frame.message,
          frame.room,
          frame.ref,
          replyOf(frame, conn),
        );
      case "private":
        return await this.#private(
          conn,
          u,
          frame.target_username,
          frame.message,
          frame.ref,
          replyOf(frame, conn),
        );
      case "replies":
        return await this.#replies(conn, u, frame.id, frame.ref);
      case "schedule":
        return await this.#schedule(conn, u, frame, frame.ref);
      case "scheduled": {
        const entries = (await this.#store.listScheduledOf(u.record.name)).map((x) =>
          this.#scheduledEntry(x)
        );
        return this.#send(conn, { type: "scheduled_list", entries, ...ref(frame) });
      }
      case "cancel_scheduled":
        return await this.#cancelScheduled(conn, u, frame.id, frame.ref);
      case "create_group":
        return await this.#createGroup(conn, u, frame.room, frame.ref);
      case "invite":
        return await this.#invite(conn, u, frame.room, frame.username, frame.ref);
      case "invite_response":
        return await this.#inviteResponse(conn, u, frame.room, frame.accepted, frame.ref);
      case "create_link":
        return await this.#createLink(conn, u, frame.room, frame.ref);
      case "revoke_link":
        return await this.#revokeLink(conn, u, frame.room, frame.token, frame.ref);
      case "join_link":
        return await this.#joinLink(conn, u, frame.token, frame.ref);
      case "join_decision":
        return await this.#joinDecision(
          conn,
          u,
          frame.room,
          frame.username,
          frame.approved,
          frame.ref,
        );
      case "remove_member":
        return await this.#removeMember(conn, u, frame.room, frame.username, frame.ref);
      case "contacts":
        return this.#send(conn, this.#contactsFrame(u, frame.ref));
      case "add_contact":
      case "remove_contact":
        return await this.#changeContact(
          conn,
          u,
          frame.username,
          frame.type === "add_contact",
          frame.ref,
        );
      case "token": {
        const session = await this.#issueToken(u);
        return this.#send(conn, {
          type: "token",
          token: session.token,
          expires_at: iso(session.expiresAt),
          http_port: this.#httpPort,
          ...ref(frame),
        });
      }
      case "session_request":
        return this.#sessionRequest(conn, u, frame.target_username, frame.ref);
      case "session_response":
        return this.#sessionResponse(conn, u, frame.target_username, frame.accepted);
      case "session_end":
        return this.#sessionEnd(conn, u);
      case "users":
        return this.#send(conn, this.#usersList(frame.ref));
      case "rooms":
        return this.#send(conn, {
          type: "rooms_list",
          rooms: this.#roomEntries(u),
          timestamp: this.#ts(),
          ...ref(frame),
        });
      case "join":
        return await this.#join(conn, u, frame.room, frame.ref);
      case "leave":
        return await this.#leave(conn, u, frame.room ?? conn.room, frame.ref);
      case "history":
        return await this.#history(conn, u, frame.chat, frame, frame.ref);
      case "unread":
        return await this.#unread(conn, u, frame.chat, frame.limit, frame.ref);
      case "unread_counts":
        return this.#send(conn, {
          type: "unread_counts",
          chats: this.#unreadCounts(u),
          timestamp: this.#ts(),
          ...ref(frame),
        });
      case "members":
        return this.#send(conn, this.#members(u, frame.room, frame.ref));
      case "report":
        return await this.#report(conn, u, frame.username, frame.reason ?? "", frame.ref);
      case "delete_message":
        return await this.#deleteMessage(conn, u, frame.id, frame.ref);
      default:
        return await this.#admin(conn, u, frame);
      case "status":
        return this.#send(conn, this.#status(conn, u, frame.ref));
    }
  }

  // ---------------------------------------------------------------- identity

  #findUser(name: string): UserState | undefined {
    return this.#users.get(name) ?? this.#users.get(this.#lowerNames.get(name.toLowerCase()) ?? "");
  }

  #requireUser(name: string): UserState {
    const u = this.#findUser(name);
    if (!u) {
      throw new ChatError("no_such_user", `There is no user "${name}": /users lists who is here`);
    }
    return u;
  }

  async #auth(
    conn: Conn,
    token: string,
    since: string | undefined,
    r: string | undefined,
  ): Promise<void> {
    if (conn.user) {
      throw new ChatError(
        "already_logged_in",
        `You are already logged in as ${conn.user.record.name}`,
      );
    }
    const name = await this.authenticate(token);
    const u = this.#users.get(name)!;
    if (conn.closed) return;
    await this.#attach(conn, u, r, since);
  }

  async #hello(
    conn: Conn,
    frame: { username: string; password?: string; since?: string; ref?: string },
  ): Promise<void> {
    if (conn.user) {
      throw new ChatError(
        "already_logged_in",
        `You are already logged in as ${conn.user.record.name}`,
      );
    }
    let u = this.#findUser(validateUsername(frame.username));
    if (this.#registration === "closed" && !u?.record.passwordHash) {
      throw new ChatError(
        "forbidden",
        "Registration is closed: ask an admin to create your account",
      );
    }
    if (u?.record.passwordHash) {
      if (frame.password === undefined) {
        throw new ChatError(
          "password_required",
          `${u.record.name} is registered: send the password with hello`,
        );
      }
      await this.#checkPassword(u, frame.password, conn.peer.ip);
    } else if (frame.password !== undefined) {
      // A password on an unclaimed name claims it, like s3's POST /connect.
      u = await this.#claim(frame.username, frame.password, u);
    } else if (!u) {
      u = await this.#createUser(frame.username, null);
    }
    this.#checkNotBanned(u);
    if (conn.closed) return;
    await this.#attach(conn, u, frame.ref, frame.since);
  }

  async #createUser(name: string, passwordHash: string | null): Promise<UserState> {
    const existing = this.#findUser(name);
    if (existing) return existing;
    const record: UserRecord = { name, passwordHash, admin: false, createdAt: this.#clock.now() };
    const u = this.#addUserState(record);
    try {
      await this.#store.createUser(record);
    } catch (error) {
      this.#users.delete(name);
      this.#lowerNames.delete(name.toLowerCase());
      throw error;
    }
    return u;
  }

  async #claim(
    name: string,
    password: string,
    existing: UserState | undefined,
  ): Promise<UserState> {
    checkPassword(password);
    const hash = await this.#passwords.hash(password);
    const u = existing ?? this.#findUser(name);
    if (!u) return await this.#createUser(name, hash);
    if (u.record.passwordHash) {
      throw new ChatError(
        "name_taken",
        `${u.record.name} was registered a moment ago: log in with its password`,
      );
    }
    u.record = { ...u.record, passwordHash: hash };
    await this.#store.updateUser(u.record);
    return u;
  }

  async #register(
    conn: Conn,
    u: UserState,
    password: string,
    r: string | undefined,
  ): Promise<void> {
    if (u.record.passwordHash) {
      throw new ChatError("name_taken", `${u.record.name} is already registered`);
    }
    await this.#claim(u.record.name, password, u);
    this.#send(
      conn,
      this.#system(`${u.record.name} is now registered: log in with this password from now on`, r),
    );
  }

  async #attach(conn: Conn, u: UserState, r: string | undefined, since?: string): Promise<void> {
    this.#use(u);
    try {
      await this.#attachAs(conn, u, r, since);
    } finally {
      this.#release(u);
    }
  }

  async #attachAs(conn: Conn, u: UserState, r: string | undefined, since?: string): Promise<void> {
    const first = u.conns.size === 0;
    await this.#loadCursors(u);
    if (conn.closed) return;
    if (!u.chats.has(GENERAL)) await this.#addMember(u, this.#rooms.get(GENERAL)!);
    conn.user = u;
    // From here the connection is live; what arrives during the replay waits until after it.
    conn.held = [];
    u.conns.add(conn);
    conn.sessionView = u.session !== null;
    if (first) this.#goOnline(u);
    this.#touch(u, conn.peer.ip);
    this.#log(
      "login",
      `${u.record.name} logged in over ${conn.peer.transport} from ${conn.peer.ip || "?"}`,
    );
    this.#send(conn, {
      type: "welcome",
      username: u.record.name,
      registered: u.record.passwordHash !== null,
      admin: u.record.admin,
      mode: this.#mode(conn),
      rooms: this.#roomsOf(u),
      online_users: this.#onlineUsers,
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    });
    this.#send(conn, this.#system(`Welcome to the chat, ${u.record.name}!`));
    try {
      if (since === undefined) await this.#replay(conn, u, first);
      else await this.#resume(conn, u, since);
      for (const from of u.requestsIn) this.#send(conn, this.#sessionRequestFrame(from));
      for (const [room, from] of u.invites) this.#send(conn, this.#inviteFrame(room, from));
      for (const room of this.#rooms.values()) {
        if (room.record.owner !== u.record.name) continue;
        for (const who of room.requests.keys()) {
          this.#send(conn, this.#joinRequestFrame(room.record.id, who));
        }
      }
    } finally {
      const held = conn.held;
      conn.held = null;
      for (const out of held) if (!conn.closed) conn.peer.send(out);
    }
  }

  /** Sends the history of the current room and, to a user coming online, every unread message. */
  async #replay(conn: Conn, u: UserState, first: boolean): Promise<void> {
    const cursors = u.cursors!;
    const last = this.#seqs.get(GENERAL) ?? 0;
    const cursor = cursors.get(GENERAL) ?? last;
    const unread = first ? Math.max(0, last - cursor) : 0;
    const count = Math.min(Math.max(this.#historySize, unread), MAX_UNREAD_REPLAY);
    const general = await this.#store.listMessages(GENERAL, {
      limit: count,
      now: this.#clock.now(),
    });
    this.#send(conn, {
      type: "history",
      chat: GENERAL,
      reason: "join",
      messages: general.map(toFrame),
      has_more: general.length > 0 && general[0]!.seq > 1,
      ...(unread > 0 ? { unread } : {}),
    });
    if (first && last > cursor) this.#advance(u, GENERAL, last);
    if (!first) return;
    for (const chat of [...u.chats]) {
      if (chat === GENERAL) continue;
      const seq = this.#seqs.get(chat) ?? 0;
      const from = cursors.get(chat) ?? 0;
      if (seq <= from) continue;
      const messages = await this.#store.listMessages(chat, {
        now: this.#clock.now(),
        limit: MAX_UNREAD_REPLAY,
        after: from,
      });
      if (messages.length === 0) continue;
      this.#send(conn, {
        type: "history",
        chat: this.#address(u, chat),
        reason: "unread",
        messages: messages.map(toFrame),
        has_more: messages.length < seq - from,
        unread: seq - from,
      });
      this.#advance(u, chat, messages.at(-1)!.seq);
    }
  }

  /** Sends every message of the user's chats newer than `since` (a message id): a client resuming a stream. */
  async #resume(conn: Conn, u: UserState, since: string): Promise<void> {
    for (const chat of [...u.chats]) {
      const messages = await this.#store.listMessagesSinceId(
        chat,
        since,
        MAX_UNREAD_REPLAY,
        this.#clock.now(),
      );
      if (messages.length === 0) continue;
      this.#send(conn, {
        type: "history",
        chat: this.#address(u, chat),
        reason: "resume",
        messages: messages.map(toFrame),
        has_more: messages.length === MAX_UNREAD_REPLAY,
      });
      this.#advance(u, chat, messages.at(-1)!.seq);
    }
  }

  #goOnline(u: UserState): void {
    this.#onlineUsers++;
    for (const chat of u.chats) this.#rooms.get(chat)?.online.add(u);
    this.#broadcast(
      {
        ...this.#system(`${u.record.name} joined the chat`),
        event: "online",
        username: u.record.name,
      },
      u,
    );
  }

  #goOffline(u: UserState): void {
    this.#onlineUsers--;
    for (const chat of u.chats) this.#rooms.get(chat)?.online.delete(u);
    if (u.session) this.#endSession(u, `${u.record.name} went offline`);
    for (const other of u.requestsIn) other.requestsOut.delete(u);
    for (const other of u.requestsOut) other.requestsIn.delete(u);
    u.requestsIn.clear();
    u.requestsOut.clear();
    this.#broadcast(
      {
        ...this.#system(`${u.record.name} left the chat`),
        event: "offline",
        username: u.record.name,
      },
      u,
    );
    this.#touch(u, u.record.lastIp ?? "");
    // The cache stays: maintain() evicts it once the user has been idle for a while.
    if (!this.#closing) this.#background(this.#flushCursorsOf([u]), "save cursors");
  }

  // ---------------------------------------------------------------- messages

  async #message(
    conn: Conn,
    u: UserState,
    text: string,
    roomName: string | undefined,
    r: string | undefined,
    extra: PostExtra = {},
  ): Promise<void> {
    const mode = this.#mode(conn);
    if (roomName === undefined && mode.kind === "session") {
      return await this.#private(conn, u, mode.with, text, r, extra);
    }
    const room = this.#requireRoom(roomName ?? conn.room);
    if (!room.members.has(u)) {
      throw new ChatError(
        "not_member",
        `You are not in #${room.record.id}: /join ${room.record.id} first`,
      );
    }
    const attach = await this.#attachments(room.record.id, extra);
    this.#post(conn, u, room.record.id, text, undefined, r, attach);
  }

  async #private(
    conn: Conn,
    u: UserState,
    target: string,
    text: string,
    r: string | undefined,
    extra: PostExtra = {},
  ): Promise<void> {
    const to = this.#requireUser(target);
    if (to === u) throw new ChatError("bad_field", "You cannot send a private message to yourself");
    const chat = dmId(u.record.name, to.record.name);
    const attach = await this.#attachments(chat, extra);
    if (!u.chats.has(chat) || !to.chats.has(chat)) {
      // The conversation is created with its first message; both ends remember it for unread replay.
      u.chats.add(chat);
      to.chats.add(chat);
      // Queued before the message itself, so the store commits them first (its writes are FIFO).
      this.#background(
        Promise.all([
          this.#store.createChat({
            id: chat,
            kind: "dm",
            createdAt: this.#clock.now(),
            createdBy: u.record.name,
          }),
          this.#store.addMember(chat, u.record.name, 0),
          this.#store.addMember(chat, to.record.name, 0),
        ]),
        "create private chat",
      );
    }
    this.#post(conn, u, chat, text, to, r, attach);
    // A message from someone not in your contacts adds them (s4), and the other way round.
    this.#addContact(to, u);
    this.#addContact(u, to);
  }

  /** Resolves what a message carries besides text: the message it replies to (same chat, alive). */
  async #attachments(chat: string, extra: PostExtra): Promise<Attachments> {
    const out: Attachments = {};
    if (extra.file) out.file = extra.file;
    if (extra.replyTo !== undefined) {
      const parent = await this.#store.getMessage(extra.replyTo);
      if (!parent || parent.chat !== chat || this.#expired(parent)) {
        throw new ChatError(
          "no_such_message",
          `There is no message ${extra.replyTo} in this chat to reply to (it may have expired)`,
        );
      }
      out.replyTo = { id: parent.id, from: parent.from, text: parent.text.slice(0, 100) };
    }
    return out;
  }

  #expired(m: { expiresAt?: number }): boolean {
    return m.expiresAt !== undefined && m.expiresAt <= this.#clock.now();
  }

  /** Assigns the next sequence number, stores the message, then delivers it and acks the sender. */
  #post(
    conn: Conn,
    u: UserState,
    chat: string,
    text: string,
    to: UserState | undefined,
    r: string | undefined,
    attach: Attachments = {},
  ): void {
    if (text.length > MAX_MESSAGE_CHARS) throw new ChatError("too_long", "The message is too long");
    const now = this.#clock.now();
    this.#checkCanSend(u, to !== undefined, now);
    const seq = (this.#seqs.get(chat) ?? 0) + 1;
    this.#seqs.set(chat, seq);
    const msg: StoredMessage = {
      id: this.#newId(now),
      chat,
      seq,
      from: u.record.name,
      text,
      ts: now,
      ...(to ? { to: to.record.name } : {}),
      ...(attach.replyTo ? { replyTo: attach.replyTo } : {}),
      ...(attach.file ? { file: attach.file } : {}),
      ...(this.#messageTtlMs > 0 ? { expiresAt: now + this.#messageTtlMs } : {}),
    };
    const done = this.#store.appendMessage(msg).then(
      () => {
        this.stats.messages++;
        const second = Math.floor(now / 1000);
        const bucket = this.#minute[second % 60]!;
        if (bucket[0] !== second) {
          bucket[0] = second;
          bucket[1] = 0;
        }
        bucket[1]++;
        this.#deliver(msg);
        if (this.#logWatchers.size > 0) {
          this.#log(
            "message",
            `${u.record.name} → ${this.#address(u, chat)}${msg.file ? " (file)" : ""}`,
          );
        }
        // The sender has read it, on whatever wire (REST senders are not in the fan-out), but a
        // cursor is one number: it may not jump over earlier messages the sender has not read.
        if ((u.cursors?.get(chat) ?? 0) === seq - 1) this.#advance(u, chat, seq);
        this.#send(conn, {
          type: "ack",
          id: msg.id,
          seq,
          chat: this.#address(u, chat),
          timestamp: iso(now),
          ...(r === undefined ? {} : { ref: r }),
        });
      },
      (error) => {
        this.#onError(error, "append");
        this.#replyError(
          conn,
          new ChatError("not_stored", "Your message could not be stored: send it again"),
          r,
        );
      },
    );
    this.#inflight.add(done);
    conn.lastPost = done;
    void done.finally(() => {
      this.#inflight.delete(done);
      if (conn.lastPost === done) conn.lastPost = null;
    });
  }

  #deliver(msg: StoredMessage): void {
    const out = new Outbound(toFrame(msg));
    if (msg.to !== undefined) {
      for (const name of new Set([msg.from, msg.to])) {
        const u = this.#users.get(name);
        if (u && u.conns.size > 0) {
          this.#sendUser(u, out);
          this.#advance(u, msg.chat, msg.seq);
        }
      }
      return;
    }
    const room = this.#rooms.get(msg.chat);
    if (!room) return;
    for (const u of room.online) {
      this.#sendUser(u, out);
      this.#advance(u, msg.chat, msg.seq);
    }
  }

  async #history(
    conn: Conn,
    u: UserState,
    address: string | undefined,
    page: { before?: number; after?: number; limit?: number },
    r: string | undefined,
  ): Promise<void> {
    const chat = this.#resolveChat(conn, u, address);
    const limit = page.limit ?? this.#historySize;
    const messages = await this.#store.listMessages(chat, {
      now: this.#clock.now(),
      limit,
      ...(page.before === undefined ? {} : { before: page.before }),
      ...(page.after === undefined ? {} : { after: page.after }),
    });
    const hasMore = page.after === undefined
      ? messages.length > 0 && messages[0]!.seq > 1
      : messages.length === limit && messages.at(-1)!.seq < (this.#seqs.get(chat) ?? 0);
    this.#send(conn, {
      type: "history",
      chat: this.#address(u, chat),
      reason: "request",
      messages: messages.map(toFrame),
      has_more: hasMore,
      ...(r === undefined ? {} : { ref: r }),
    });
  }

  /** Returns up to `limit` unread messages of a chat and moves the read cursor past them (s3's polling). */
  async #unread(
    conn: Conn,
    u: UserState,
    address: string,
    limit: number | undefined,
    r: string | undefined,
  ): Promise<void> {
    const chat = this.#resolveChat(conn, u, address);
    const seq = this.#seqs.get(chat) ?? 0;
    const from = u.cursors?.get(chat) ?? 0;
    const messages = seq > from
      ? await this.#store.listMessages(chat, {
        limit: limit ?? this.#historySize,
        after: from,
        now: this.#clock.now(),
      })
      : [];
    if (messages.length > 0) this.#advance(u, chat, messages.at(-1)!.seq);
    this.#send(conn, {
      type: "history",
      chat: this.#address(u, chat),
      reason: "unread",
      messages: messages.map(toFrame),
      has_more: messages.length < seq - from,
      unread: Math.max(0, seq - from),
      ...(r === undefined ? {} : { ref: r }),
    });
  }

  #unreadCounts(u: UserState): Array<{ chat: string; unread: number }> {
    const out = [];
    for (const chat of u.chats) {
      const unread = (this.#seqs.get(chat) ?? 0) - (u.cursors?.get(chat) ?? 0);
      if (unread > 0) out.push({ chat: this.#address(u, chat), unread });
    }
    return out.sort((a, b) => a.chat.localeCompare(b.chat));
  }

  #members(u: UserState, name: string, r: string | undefined): ServerFrame {
    const room = this.#requireRoom(name);
    if (room.record.private && !room.members.has(u)) {
      throw new ChatError(
        "not_member",
        `#${name} is a private group: only its members see who is in it`,
      );
    }
    return {
      type: "members",
      room: name,
      members: [...room.members].map((m) => this.#userEntry(m)).sort((a, b) =>
        a.username.localeCompare(b.username)
      ),
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    };
  }

  /** Turns a chat address (`room` or `@user`, default: where this connection is) into a chat id the user may read. */
  #resolveChat(conn: Conn, u: UserState, address: string | undefined): string {
    if (address === undefined) {
      const mode = this.#mode(conn);
      address = mode.kind === "session" ? "@" + mode.with : mode.room;
    }
    if (address.startsWith("@")) {
      const other = this.#requireUser(address.slice(1));
      return dmId(u.record.name, other.record.name);
    }
    const room = this.#requireRoom(address);
    if (!room.members.has(u)) {
      throw new ChatError(
        "not_member",
        `You are not in #${room.record.id}: /join ${room.record.id} to read it`,
      );
    }
    return room.record.id;
  }

  // ---------------------------------------------------------------- rooms

  #requireRoom(name: string): RoomState {
    const room = this.#rooms.get(name);
    if (!room) {
      throw new ChatError("no_such_room", `There is no room #${name}: /join ${name} creates it`);
    }
    return room;
  }

  async #join(
    conn: Conn,
    u: UserState,
    name: string,
    r: string | undefined,
    justCreated = false,
  ): Promise<void> {
    let room = this.#rooms.get(name);
    if (room?.record.private && !room.members.has(u)) {
      // Joining a private group you were invited to accepts the invite.
      if (u.invites.has(name)) return await this.#inviteResponse(conn, u, name, true, r);
      throw new ChatError(
        "forbidden",
        `#${name} is a private group: ask its owner for an invite, or use an invite link`,
      );
    }
    const created = !room || justCreated;
    if (!room) {
      const record: ChatRecord = {
        id: name,
        kind: "room",
        createdAt: this.#clock.now(),
        createdBy: u.record.name,
      };
      room = { record, members: new Set(), online: new Set(), requests: new Map() };
      this.#rooms.set(name, room);
      await this.#store.createChat(record);
    }
    const isNew = !room.members.has(u);
    if (isNew) await this.#addMember(u, room);
    conn.room = name;
    conn.sessionView = false;
    if (isNew) {
      this.#sendRoom(
        room,
        {
          ...this.#system(`${u.record.name} joined #${name}`),
          event: "joined",
          username: u.record.name,
          room: name,
        },
        u,
      );
    }
    for (const c of this.#connsWith(u, conn)) {
      this.#send(c, {
        type: "joined",
        room: name,
        created,
        mode: this.#mode(c),
        timestamp: this.#ts(),
        ...(c === conn && r !== undefined ? { ref: r } : {}),
      });
    }
    const messages = await this.#store.listMessages(name, {
      limit: this.#historySize,
      now: this.#clock.now(),
    });
    this.#send(conn, {
      type: "history",
      chat: name,
      reason: "join",
      messages: messages.map(toFrame),
      has_more: messages.length > 0 && messages[0]!.seq > 1,
    });
    // A live connection has now shown them; over REST they wait for the next poll.
    if (u.conns.has(conn) && messages.length > 0) this.#advance(u, name, messages.at(-1)!.seq);
  }

  /** Makes `u` a member; the room's last N messages start out unread, as history on joining. */
  async #addMember(u: UserState, room: RoomState): Promise<void> {
    const chat = room.record.id;
    if (this.#roomsOf(u).length >= MAX_ROOMS_PER_USER) {
      throw new ChatError(
        "forbidden",
        `You are in ${MAX_ROOMS_PER_USER} rooms already: /leave one first`,
      );
    }
    const cursor = Math.max(0, (this.#seqs.get(chat) ?? 0) - this.#historySize);
    room.members.add(u);
    if (u.conns.size > 0) room.online.add(u);
    u.chats.add(chat);
    u.cursors?.set(chat, cursor);
    await this.#store.addMember(chat, u.record.name, cursor);
  }

  async #leave(conn: Conn, u: UserState, name: string, r: string | undefined): Promise<void> {
    if (name === GENERAL) {
      throw new ChatError(
        "forbidden",
        `Everyone stays in #${GENERAL}: /join another room to talk there instead`,
      );
    }
    const room = this.#requireRoom(name);
    if (!room.members.has(u)) throw new ChatError("not_member", `You are not in #${name}`);
    await this.#removeFromRoom(u, room, conn, r);
    if (room.record.private && room.record.owner === u.record.name) {
      // The group lives on: the first remaining member by name owns it.
      const heir = [...room.members].map((m) => m.record.name).sort()[0];
      if (heir !== undefined) {
        room.record = { ...room.record, owner: heir };
        await this.#store.createChat(room.record);
        this.#sendRoom(room, this.#system(`${heir} now owns #${name}`));
      }
    }
  }

  /** Takes a user out of a room and tells their connections and the room. */
  async #removeFromRoom(u: UserState, room: RoomState, conn?: Conn, r?: string): Promise<void> {
    const name = room.record.id;
    room.members.delete(u);
    room.online.delete(u);
    u.chats.delete(name);
    u.cursors?.delete(name);
    u.dirty.delete(name);
    await this.#store.removeMember(name, u.record.name);
    for (const c of conn ? this.#connsWith(u, conn) : u.conns) {
      if (c.room === name) c.room = GENERAL;
      this.#send(c, {
        type: "left",
        room: name,
        mode: this.#mode(c),
        timestamp: this.#ts(),
        ...(c === conn && r !== undefined ? { ref: r } : {}),
      });
    }
    this.#sendRoom(room, {
      ...this.#system(`${u.record.name} left #${name}`),
      event: "left",
      username: u.record.name,
      room: name,
    });
  }

  #roomsOf(u: UserState): string[] {
    return [...u.chats].filter((c) => this.#rooms.has(c)).sort();
  }

  #roomEntries(u: UserState): RoomEntry[] {
    return [...this.#rooms.values()]
      // Private groups are listed only to their members.
      .filter((room) => !room.record.private || room.members.has(u))
      .map((room) => ({
        name: room.record.id,
        members: room.members.size,
        online: room.online.size,
        joined: room.members.has(u),
        private: room.record.private === true,
        owner: room.record.owner ?? null,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- private sessions

  #sessionRequestFrame(from: UserState): ServerFrame {
    return {
      type: "session_request",
      from_username: from.record.name,
      message: `${from.record.name} wants to start a private session with you (y/n)`,
      timestamp: this.#ts(),
    };
  }

  #sessionRequest(conn: Conn, u: UserState, target: string, r: string | undefined): void {
    const to = this.#requireUser(target);
    const name = to.record.name;
    if (to === u) throw new ChatError("bad_field", "You cannot start a session with yourself");
    requireLive(u);
    if (to.conns.size === 0) {
      throw new ChatError(
        "no_such_user",
        `${name} is offline: /private ${name} TEXT leaves a message instead`,
      );
    }
    if (u.session) {
      throw new ChatError(
        "session_conflict",
        `You are in a session with ${u.session.record.name}: /exit it first`,
      );
    }
    if (to.session) {
      throw new ChatError("session_conflict", `${name} is in another private session; try later`);
    }
    u.requestsOut.add(to);
    to.requestsIn.add(u);
    this.#sendUser(to, new Outbound(this.#sessionRequestFrame(u)));
    this.#send(conn, this.#system(`Session request sent to ${name}; waiting for an answer`, r));
  }

  #sessionResponse(conn: Conn, u: UserState, requester: string, accepted: boolean): void {
    const from = this.#findUser(requester);
    if (!from || !u.requestsIn.has(from)) {
      throw new ChatError("no_session_request", `${requester} has not asked you for a session`);
    }
    if (accepted) requireLive(u);
    u.requestsIn.delete(from);
    from.requestsOut.delete(u);
    if (accepted && (u.session || from.session)) {
      throw new ChatError(
        "session_conflict",
        "One of you is already in another private session: /exit it first",
      );
    }
    const names = { from_username: from.record.name, to_username: u.record.name };
    if (!accepted) {
      const text = `${from.record.name} and ${u.record.name}: private session declined`;
      for (const x of [from, u]) {
        for (const c of x === u ? this.#connsWith(u, conn) : x.conns) {
          this.#send(c, {
            type: "session_rejected",
            ...names,
            message: text,
            mode: this.#mode(c),
            timestamp: this.#ts(),
          });
        }
      }
      return;
    }
    u.session = from;
    from.session = u;
    const text =
      `Private session between ${from.record.name} and ${u.record.name} started: /exit ends it`;
    for (const x of [from, u]) {
      for (const c of x === u ? this.#connsWith(u, conn) : x.conns) {
        c.sessionView = true;
        this.#send(c, {
          type: "session_accepted",
          ...names,
          message: text,
          mode: this.#mode(c),
          timestamp: this.#ts(),
        });
      }
    }
  }

  #sessionEnd(conn: Conn, u: UserState): void {
    if (!u.session) throw new ChatError("no_session_request", "You are not in a private session");
    this.#endSession(u, `${u.record.name} ended the private session`, conn);
  }

  #endSession(u: UserState, why: string, conn?: Conn): void {
    const other = u.session;
    if (!other) return;
    u.session = null;
    other.session = null;
    for (const x of [u, other]) {
      for (const c of x === u && conn ? this.#connsWith(u, conn) : x.conns) {
        c.sessionView = false;
        this.#send(c, {
          type: "session_ended",
          from_username: u.record.name,
          to_username: other.record.name,
          message: why,
          mode: this.#mode(c),
          timestamp: this.#ts(),
        });
      }
    }
  }

  // ---------------------------------------------------------------- replies

  async #replies(conn: Conn, u: UserState, id: string, r: string | undefined): Promise<void> {
    const parent = await this.#store.getMessage(id);
    if (!parent || this.#expired(parent) || !this.#canRead(u, parent.chat)) {
      throw new ChatError("no_such_message", `There is no message ${id} you can read`);
    }
    const now = this.#clock.now();
    const replies = (await this.#store.listReplies(id, MAX_PAGE)).filter((m) =>
      !this.#expired(m) && m.ts <= now
    );
    this.#send(conn, {
      type: "replies",
      id,
      messages: replies.map(toFrame),
      ...(r === undefined ? {} : { ref: r }),
    });
  }

  /** Whether a user may read a chat: a member of the room, or one of the two ends of a private chat. */
  #canRead(u: UserState, chat: string): boolean {
    return u.chats.has(chat);
  }

  // ---------------------------------------------------------------- scheduled messages

  async #schedule(
    conn: Conn,
    u: UserState,
    frame: { message: string; at: string; room?: string; target_username?: string },
    r: string | undefined,
  ): Promise<void> {
    const now = this.#clock.now();
    const dueAt = Date.parse(frame.at);
    if (dueAt <= now) {
      throw new ChatError("bad_field", `${frame.at} is in the past: pick a later time`);
    }
    if (dueAt > now + MAX_SCHEDULE_AHEAD_MS) {
      throw new ChatError("bad_field", "Messages can be scheduled at most 30 days ahead");
    }
    let room: string | null = null;
    let to: string | null = null;
    if (frame.target_username !== undefined) {
      const target = this.#requireUser(frame.target_username);
      if (target === u) {
        throw new ChatError("bad_field", "You cannot send a private message to yourself");
      }
      to = target.record.name;
    } else {
      const mode = this.#mode(conn);
      if (frame.room === undefined && mode.kind === "session") to = mode.with;
      else {
        room = frame.room ?? conn.room;
        if (!this.#requireRoom(room).members.has(u)) {
          throw new ChatError("not_member", `You are not in #${room}: /join ${room} first`);
        }
      }
    }
    const pending = await this.#store.listScheduledOf(u.record.name);
    if (pending.length >= MAX_SCHEDULED_PER_USER) {
      throw new ChatError(
        "forbidden",
        `You have ${pending.length} scheduled messages: cancel some first`,
      );
    }
    const record: ScheduledRecord = {
      id: this.#newId(now),
      user: u.record.name,
      room,
      to,
      text: frame.message,
      dueAt,
      createdAt: now,
    };
    await this.#store.putScheduled(record);
    this.#send(conn, {
      type: "scheduled",
      entry: this.#scheduledEntry(record),
      ...(r === undefined ? {} : { ref: r }),
    });
  }

  #scheduledEntry(rec: ScheduledRecord): ScheduledEntry {
    return { id: rec.id, chat: rec.room ?? "@" + rec.to, message: rec.text, at: iso(rec.dueAt) };
  }

  async #cancelScheduled(
    conn: Conn,
    u: UserState,
    id: string,
    r: string | undefined,
  ): Promise<void> {
    const mine = (await this.#store.listScheduledOf(u.record.name)).find((x) => x.id === id);
    // Claiming it is what cancels it: if the scheduler got there first, it has been sent.
    const claimed = mine ? await this.#store.claimScheduled(id) : null;
    if (!claimed) {
      throw new ChatError(
        "no_such_message",
        `No pending scheduled message ${id}: it was sent or cancelled`,
      );
    }
    this.#send(conn, { type: "scheduled_cancelled", id, ...(r === undefined ? {} : { ref: r }) });
  }

  /**
   * Sends every scheduled message that is due. Each is claimed with an atomic check first, so two
   * server processes on one store never send a message twice. Call a few times a second.
   */
  async runScheduled(): Promise<number> {
    if (this.#closing) return 0;
    let sent = 0;
    for (const rec of await this.#store.listDueScheduled(this.#clock.now(), 100)) {
      const claimed = await this.#store.claimScheduled(rec.id);
      if (!claimed) continue;
      const u = this.#users.get(claimed.user);
      if (!u) continue;
      const frame: ClientFrame = claimed.to !== null
        ? { type: "private", target_username: claimed.to, message: claimed.text }
        : { type: "message", room: claimed.room!, message: claimed.text };
      try {
        await this.request(u.record.name, frame);
        sent++;
      } catch (error) {
        // Muted, over quota, no longer a member...: tell the author why it did not go out.
        const why = error instanceof ChatError ? error.message : "a server error";
        this.#sendUser(
          u,
          new Outbound({
            type: "error",
            code: error instanceof ChatError ? error.code : "internal",
            message: `Your scheduled message ${claimed.id} could not be sent: ${why}`,
          }),
        );
        if (!(error instanceof ChatError)) this.#onError(error, "scheduled message");
      }
    }
    return sent;
  }

  // ---------------------------------------------------------------- private group chats

  #requireOwner(u: UserState, name: string): RoomState {
    const room = this.#requireRoom(name);
    if (!room.record.private) {
      throw new ChatError("bad_field", `#${name} is public: anyone can /join it`);
    }
    if (room.record.owner !== u.record.name) {
      throw new ChatError(
        "forbidden",
        `Only the owner of #${name} (${room.record.owner}) can do that`,
      );
    }
    return room;
  }

  async #createGroup(conn: Conn, u: UserState, name: string, r: string | undefined): Promise<void> {
    if (this.#rooms.has(name)) {
      throw new ChatError("name_taken", `#${name} exists already: pick another name`);
    }
    const record: ChatRecord = {
      id: name,
      kind: "room",
      createdAt: this.#clock.now(),
      createdBy: u.record.name,
      private: true,
      owner: u.record.name,
    };
    const room: RoomState = { record, members: new Set(), online: new Set(), requests: new Map() };
    this.#rooms.set(name, room);
    await this.#store.createChat(record);
    // The owner is its first member; #join then finds them in and says the room was created.
    await this.#addMember(u, room);
    await this.#join(conn, u, name, r, true);
  }

  async #invite(
    conn: Conn,
    u: UserState,
    name: string,
    username: string,
    r: string | undefined,
  ): Promise<void> {
    const room = this.#requireOwner(u, name);
    const target = this.#requireUser(username);
    if (room.members.has(target)) {
      throw new ChatError("bad_field", `${target.record.name} is already in #${name}`);
    }
    target.invites.set(name, u.record.name);
    await this.#store.setInvite(name, target.record.name, {
      from: u.record.name,
      at: this.#clock.now(),
    });
    this.#sendUser(target, new Outbound(this.#inviteFrame(name, u.record.name)));
    this.#send(conn, this.#system(`Invited ${target.record.name} to #${name}`, r));
  }

  #inviteFrame(room: string, from: string): ServerFrame {
    return { type: "invite", room, from_username: from, timestamp: this.#ts() };
  }

  async #inviteResponse(
    conn: Conn,
    u: UserState,
    name: string,
    accepted: boolean,
    r: string | undefined,
  ): Promise<void> {
    const from = u.invites.get(name);
    if (from === undefined) {
      throw new ChatError("no_session_request", `Nobody has invited you to #${name}`);
    }
    u.invites.delete(name);
    await this.#store.setInvite(name, u.record.name, null);
    const owner = this.#users.get(from);
    if (!accepted) {
      if (owner) {
        this.#sendUser(
          owner,
          new Outbound(this.#system(`${u.record.name} declined your invite to #${name}`)),
        );
      }
      return this.#send(conn, this.#system(`You declined the invite to #${name}`, r));
    }
    const room = this.#requireRoom(name);
    if (!room.members.has(u)) await this.#addMember(u, room);
    await this.#join(conn, u, name, r);
  }

  async #createLink(conn: Conn, u: UserState, name: string, r: string | undefined): Promise<void> {
    this.#requireOwner(u, name);
    const token = randomToken().slice(0, 22);
    const link = { room: name, by: u.record.name, at: this.#clock.now() };
    this.#links.set(token, link);
    await this.#store.setLink(token, link);
    this.#send(conn, {
      type: "link",
      room: name,
      token,
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    });
  }

  async #revokeLink(
    conn: Conn,
    u: UserState,
    name: string,
    token: string,
    r: string | undefined,
  ): Promise<void> {
    this.#requireOwner(u, name);
    if (this.#links.get(token)?.room !== name) {
      throw new ChatError("no_such_message", `#${name} has no invite link ${token}`);
    }
    this.#links.delete(token);
    await this.#store.setLink(token, null);
    this.#send(conn, this.#system(`The invite link ${token} of #${name} no longer works`, r));
  }

  async #joinLink(conn: Conn, u: UserState, token: string, r: string | undefined): Promise<void> {
    const link = this.#links.get(token);
    const room = link ? this.#rooms.get(link.room) : undefined;
    if (!link || !room) {
      throw new ChatError("no_such_room", "That invite link does not work (revoked, or mistyped)");
    }
    if (room.members.has(u)) return await this.#join(conn, u, link.room, r);
    // A link only asks: the owner decides.
    room.requests.set(u.record.name, this.#clock.now());
    await this.#store.setJoinRequest(link.room, u.record.name, { at: this.#clock.now() });
    const owner = this.#users.get(room.record.owner ?? "");
    if (owner) {
      this.#sendUser(owner, new Outbound(this.#joinRequestFrame(link.room, u.record.name)));
    }
    this.#send(
      conn,
      this.#system(`Asked the owner of #${link.room} to let you in; you will be told`, r),
    );
  }

  #joinRequestFrame(room: string, username: string): ServerFrame {
    return { type: "join_request", room, username, timestamp: this.#ts() };
  }

  async #joinDecision(
    conn: Conn,
    u: UserState,
    name: string,
    username: string,
    approved: boolean,
    r: string | undefined,
  ): Promise<void> {
    const room = this.#requireOwner(u, name);
    const target = this.#findUser(username);
    if (!target || !room.requests.has(target.record.name)) {
      throw new ChatError("no_session_request", `${username} has not asked to join #${name}`);
    }
    room.requests.delete(target.record.name);
    await this.#store.setJoinRequest(name, target.record.name, null);
    if (approved) {
      await this.#addMember(target, room);
      for (const c of target.conns) {
        this.#send(c, {
          type: "joined",
          room: name,
          created: false,
          mode: this.#mode(c),
          timestamp: this.#ts(),
        });
      }
      this.#sendRoom(room, {
        ...this.#system(`${target.record.name} joined #${name}`),
        event: "joined",
        username: target.record.name,
        room: name,
      }, target);
    } else {
      this.#sendUser(
        target,
        new Outbound(this.#system(`Your request to join #${name} was refused`)),
      );
    }
    this.#send(
      conn,
      this.#system(
        `${approved ? "Let" : "Refused"} ${target.record.name} ${
          approved ? "into" : "for"
        } #${name}`,
        r,
      ),
    );
  }

  async #removeMember(
    conn: Conn,
    u: UserState,
    name: string,
    username: string,
    r: string | undefined,
  ): Promise<void> {
    this.#requireOwner(u, name);
    const target = this.#requireUser(username);
    if (target === u) {
      throw new ChatError("bad_field", "You own the group: to go, /leave it (ownership passes on)");
    }
    const room = this.#requireRoom(name);
    if (!room.members.has(target)) {
      throw new ChatError("not_member", `${target.record.name} is not in #${name}`);
    }
    await this.#removeFromRoom(target, room);
    this.#sendUser(
      target,
      new Outbound(this.#system(`${u.record.name} removed you from #${name}`)),
    );
    this.#send(conn, this.#system(`Removed ${target.record.name} from #${name}`, r));
  }

  // ---------------------------------------------------------------- contacts

  #contactsFrame(u: UserState, r?: string): ServerFrame {
    const contacts = [...u.contacts].sort().map((name) => ({
      username: name,
      online: (this.#users.get(name)?.conns.size ?? 0) > 0,
    }));
    return {
      type: "contacts_list",
      contacts,
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    };
  }

  /** Adds `contact` to `u`'s contacts if missing, and tells `u`'s connections. */
  #addContact(u: UserState, contact: UserState): void {
    if (u.contacts.has(contact.record.name)) return;
    u.contacts.add(contact.record.name);
    this.#background(
      this.#store.setContact(u.record.name, contact.record.name, true),
      "save contact",
    );
    this.#sendUser(u, new Outbound(this.#contactsFrame(u)));
  }

  async #changeContact(
    conn: Conn,
    u: UserState,
    username: string,
    add: boolean,
    r: string | undefined,
  ): Promise<void> {
    const other = this.#requireUser(username);
    if (other === u) throw new ChatError("bad_field", "You cannot add yourself as a contact");
    if (add) u.contacts.add(other.record.name);
    else u.contacts.delete(other.record.name);
    await this.#store.setContact(u.record.name, other.record.name, add);
    // Every device sees the new list; the asking connection gets its ref back.
    for (const c of this.#connsWith(u, conn)) {
      this.#send(c, this.#contactsFrame(u, c === conn ? r : undefined));
    }
  }

  // ---------------------------------------------------------------- files

  /**
   * Stores a file sent to a room or a user, reading `chunks` as they come and refusing it as soon
   * as it grows past the limit, then announces it with a message. Returns the ack.
   */
  async uploadFile(
    username: string,
    meta: { name: string; mime: string; size?: number; room?: string; to?: string },
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<ServerFrame> {
    const u = this.#users.get(username);
    if (!u) throw new ChatError("not_logged_in", "This account no longer exists: log in again");
    if (meta.size !== undefined && meta.size > this.#maxFileSize) throw this.#tooBig(meta.size);
    const name = meta.name.replace(/[\/\\\p{Cc}]/gu, "_").slice(0, 200) || "file";
    // Check where it goes before taking any bytes.
    let chat: string;
    if (meta.to !== undefined) {
      const to = this.#requireUser(meta.to);
      if (to === u) throw new ChatError("bad_field", "You cannot send a file to yourself");
      chat = dmId(u.record.name, to.record.name);
    } else {
      chat = validateRoomName(meta.room ?? GENERAL);
      if (!this.#requireRoom(chat).members.has(u)) {
        throw new ChatError("not_member", `You are not in #${chat}: /join ${chat} first`);
      }
    }
    const muted = this.#mutedUntil(u);
    if (muted !== null) {
      throw new ChatError("muted", `You are muted until ${iso(muted)}; you can still read`);
    }
    const now = this.#clock.now();
    const id = this.#newId(now);
    const expiresAt = this.#messageTtlMs > 0 ? now + this.#messageTtlMs : undefined;
    let size = 0;
    let index = 0;
    let pending = new Uint8Array(FILE_CHUNK_BYTES);
    let fill = 0;
    const writes: Promise<void>[] = [];
    const flush = () => {
      if (fill === 0) return;
      writes.push(this.#store.putFileChunk(id, index++, pending.slice(0, fill), expiresAt));
      fill = 0;
    };
    try {
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > this.#maxFileSize) throw this.#tooBig(size);
        let off = 0;
        while (off < chunk.length) {
          const n = Math.min(chunk.length - off, FILE_CHUNK_BYTES - fill);
          pending.set(chunk.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === FILE_CHUNK_BYTES) flush();
        }
      }
      flush();
      await Promise.all(writes);
    } catch (error) {
      await Promise.allSettled(writes);
      await this.#store.deleteFile(id);
      throw error;
    }
    pending = new Uint8Array(0);
    const file = { id, name, size, mime: meta.mime || "application/octet-stream" };
    await this.#store.putFile({
      ...file,
      chunks: index,
      chat,
      uploader: u.record.name,
      createdAt: now,
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
    const text = `sent a file: ${name} (${formatSize(size)}, ${file.mime})`;
    const frames = await this.request(
      u.record.name,
      meta.to !== undefined
        ? { type: "private", target_username: meta.to, message: text }
        : { type: "message", room: chat, message: text },
      "",
      file,
    );
    return frames.find((f) => f.type === "ack")!;
  }

  #tooBig(size: number): ChatError {
    return new ChatError(
      "too_long",
      `The file is ${formatSize(size)}; the limit is ${formatSize(this.#maxFileSize)}`,
    );
  }

  /** Opens a file for a user who may read its chat; expired or unknown files are not found. */
  async openFile(
    username: string,
    id: string,
  ): Promise<{ file: FileRecord; chunks: AsyncIterable<Uint8Array> }> {
    const u = this.#users.get(username);
    const file = await this.#store.getFile(id);
    if (!file || this.#expired(file)) {
      throw new ChatError("no_such_message", `There is no file ${id} (it may have expired)`);
    }
    if (!u || !this.#canRead(u, file.chat)) {
      throw new ChatError(
        "forbidden",
        "Only members of the chat it was sent to can download this file",
      );
    }
    return { file, chunks: this.#store.readFile(id) };
  }

  // ---------------------------------------------------------------- moderation

  #mutedUntil(u: UserState): number | null {
    const until = u.record.mutedUntil;
    return until && until > this.#clock.now() ? until : null;
  }

  #checkNotBanned(u: UserState): void {
    const until = u.record.bannedUntil;
    if (until && until > this.#clock.now()) {
      const when = until >= Number.MAX_SAFE_INTEGER ? "for good" : `until ${iso(until)}`;
      throw new ChatError(
        "banned",
        `${u.record.name} is banned ${when}${u.record.banReason ? `: ${u.record.banReason}` : ""}`,
      );
    }
  }

  /** Refuses a message from a muted user or one over their quota, and counts it otherwise. */
  #checkCanSend(u: UserState, isPrivate: boolean, now: number): void {
    const muted = this.#mutedUntil(u);
    if (muted !== null) {
      throw new ChatError("muted", `You are muted until ${iso(muted)}; you can still read`);
    }
    const limit = isPrivate ? this.#privateRateLimit : this.#rateLimit;
    if (!limit) return;
    const sent = isPrivate ? u.sentPrivate : u.sent;
    while (sent.length > 0 && sent[0]! <= now - limit.windowMs) sent.shift();
    if (sent.length >= limit.count) {
      const next = sent[0]! + limit.windowMs;
      const what = isPrivate ? "private messages" : "messages to rooms";
      throw new ChatError(
        "rate_limited",
        `You can send ${limit.count} ${what} per ${
          duration(limit.windowMs)
        }; the next one is accepted at ${iso(next)}`,
      );
    }
    sent.push(now);
  }

  #quotaState(u: UserState): QuotaState | null {
    const limit = this.#rateLimit;
    if (!limit) return null;
    const now = this.#clock.now();
    const inWindow = u.sent.filter((t) => t > now - limit.windowMs);
    const remaining = Math.max(0, limit.count - inWindow.length);
    return {
      limit: limit.count,
      window_s: Math.round(limit.windowMs / 1000),
      remaining,
      next_at: remaining > 0 ? null : iso(inWindow[0]! + limit.windowMs),
    };
  }

  async #audit(
    actor: UserState | null,
    action: AuditRecord["action"],
    target: string,
    reason: string,
    detail?: string,
  ): Promise<void> {
    const at = this.#clock.now();
    this.#log(
      "moderation",
      `${actor?.record.name ?? "system"} ${action} ${target}${reason ? `: ${reason}` : ""}`,
    );
    await this.#store.appendAudit({
      id: this.#newId(at),
      at,
      actor: actor?.record.name ?? "system",
      action,
      target,
      reason,
      ...(detail === undefined ? {} : { detail }),
    });
  }

  async #report(
    conn: Conn,
    u: UserState,
    name: string,
    reason: string,
    r: string | undefined,
  ): Promise<void> {
    const target = this.#requireUser(name);
    const t = target.record.name;
    if (target === u) throw new ChatError("bad_field", "You cannot report yourself");
    const muted = this.#mutedUntil(target);
    if (muted !== null) {
      return this.#send(conn, this.#system(`${t} is already muted until ${iso(muted)}`, r));
    }
    let reports = this.#reports.get(t);
    if (!reports) this.#reports.set(t, reports = new Map());
    if (reports.has(u.record.name)) {
      return this.#send(
        conn,
        this.#system(
          `You already reported ${t}; ${reports.size} of ${this.#reportsToMute} reports so far`,
          r,
        ),
      );
    }
    const record: ReportRecord = {
      target: t,
      reporter: u.record.name,
      at: this.#clock.now(),
      reason,
    };
    reports.set(u.record.name, record);
    await this.#store.putReport(record);
    await this.#audit(u, "report", t, reason);
    if (reports.size < this.#reportsToMute) {
      return this.#send(
        conn,
        this.#system(`You reported ${t} (${reports.size} of ${this.#reportsToMute})`, r),
      );
    }
    // Enough distinct reporters: the mute starts, and the count starts again from zero.
    const reporters = [...reports.keys()];
    this.#reports.delete(t);
    await this.#store.clearReports(t, reporters);
    const until = this.#clock.now() + this.#muteForMs;
    await this.#setMute(null, target, until, `reported by ${reporters.length} users`);
    this.#send(conn, this.#system(`You reported ${t}; ${t} is now muted until ${iso(until)}`, r));
  }

  async #setMute(
    actor: UserState | null,
    target: UserState,
    until: number | null,
    reason: string,
  ): Promise<void> {
    target.record = { ...target.record, mutedUntil: until };
    await this.#store.updateUser(target.record);
    const action = until === null ? "unmute" : "mute";
    await this.#audit(
      actor,
      action,
      target.record.name,
      reason,
      until === null ? undefined : `until ${iso(until)}`,
    );
    const text = until === null
      ? "You are no longer muted"
      : `You are muted until ${iso(until)} (${reason}); you can still read`;
    this.#sendUser(target, new Outbound(this.#system(text)));
  }

  async #deleteMessage(conn: Conn, u: UserState, id: string, r: string | undefined): Promise<void> {
    const msg = await this.#store.getMessage(id);
    if (!msg || (msg.expiresAt !== undefined && msg.expiresAt <= this.#clock.now())) {
      throw new ChatError(
        "no_such_message",
        `There is no message ${id} (it may have expired or been deleted)`,
      );
    }
    if (msg.from !== u.record.name && !u.record.admin) {
      throw new ChatError("forbidden", "Only its author or an admin can delete a message");
    }
    await this.#store.deleteMessage(msg);
    await this.#audit(
      u,
      "delete",
      msg.from,
      "",
      `${msg.chat}#${msg.seq}: ${msg.text.slice(0, 80)}`,
    );
    const frame = (viewer: UserState): ServerFrame => ({
      type: "message_deleted",
      id: msg.id,
      chat: this.#address(viewer, msg.chat),
      seq: msg.seq,
      by: u.record.name,
      timestamp: this.#ts(),
    });
    const audience = msg.to !== undefined
      ? [msg.from, msg.to].map((n) => this.#users.get(n)).filter((x): x is UserState =>
        x !== undefined
      )
      : [...(this.#rooms.get(msg.chat)?.online ?? [])];
    for (const viewer of audience) this.#sendUser(viewer, new Outbound(frame(viewer)));
    // The one who asked always hears back (a REST caller or an admin outside the room).
    if (!audience.includes(u) || !u.conns.has(conn)) {
      this.#send(conn, { ...frame(u), ...(r === undefined ? {} : { ref: r }) });
    }
  }

  /** Admin commands: only admins, checked here for every wire. */
  async #admin(conn: Conn, u: UserState, frame: AdminFrame & { ref?: string }): Promise<void> {
    if (!u.record.admin) {
      throw new ChatError("forbidden", `Only admins can use "${frame.type}"`);
    }
    const r = frame.ref;
    switch (frame.type) {
      case "kick": {
        const target = this.#requireUser(frame.username);
        const reason = frame.reason ?? "";
        await this.#audit(u, "kick", target.record.name, reason);
        const n = this.#closeAll(
          target,
          `You were kicked by ${u.record.name}${reason ? `: ${reason}` : ""}`,
        );
        return this.#send(
          conn,
          this.#system(`Kicked ${target.record.name} (${n} connection${n === 1 ? "" : "s"})`, r),
        );
      }
      case "mute": {
        const target = this.#requireUser(frame.username);
        const until = this.#clock.now() +
          (frame.minutes === undefined ? this.#muteForMs : frame.minutes * 60_000);
        await this.#setMute(u, target, until, frame.reason || `muted by ${u.record.name}`);
        return this.#send(
          conn,
          this.#system(`${target.record.name} is muted until ${iso(until)}`, r),
        );
      }
      case "unmute": {
        const target = this.#requireUser(frame.username);
        this.#reports.delete(target.record.name);
        await this.#setMute(u, target, null, frame.reason ?? "");
        return this.#send(conn, this.#system(`${target.record.name} is no longer muted`, r));
      }
      case "ban": {
        const target = this.#requireUser(frame.username);
        if (target === u) throw new ChatError("bad_field", "You cannot ban yourself");
        const until = frame.minutes === undefined
          ? Number.MAX_SAFE_INTEGER
          : this.#clock.now() + frame.minutes * 60_000;
        const reason = frame.reason ?? "";
        target.record = { ...target.record, bannedUntil: until, banReason: reason };
        await this.#store.updateUser(target.record);
        await this.#store.revokeTokens(target.record.name);
        const when = frame.minutes === undefined ? "for good" : `until ${iso(until)}`;
        await this.#audit(u, "ban", target.record.name, reason, when);
        this.#closeAll(target, `You are banned ${when}${reason ? `: ${reason}` : ""}`);
        return this.#send(conn, this.#system(`${target.record.name} is banned ${when}`, r));
      }
      case "unban": {
        const target = this.#requireUser(frame.username);
        target.record = { ...target.record, bannedUntil: null };
        await this.#store.updateUser(target.record);
        await this.#audit(u, "unban", target.record.name, frame.reason ?? "");
        return this.#send(conn, this.#system(`${target.record.name} is no longer banned`, r));
      }
      case "connections": {
        const connections: ConnectionEntry[] = [...this.#conns.values()].map((c) => ({
          id: c.id,
          username: c.user?.record.name ?? null,
          transport: c.peer.transport,
          ip: c.peer.ip,
          connected_at: iso(c.connectedAt),
          last_seen: iso(c.lastSeen),
        }));
        return this.#send(conn, {
          type: "connections_list",
          connections,
          timestamp: this.#ts(),
          ...(r === undefined ? {} : { ref: r }),
        });
      }
      case "audit": {
        const limit = frame.limit ?? 50;
        const entries = await this.#store.listAudit({
          limit,
          ...(frame.before === undefined ? {} : { before: frame.before }),
        });
        return this.#send(conn, {
          type: "audit_log",
          entries: entries.map((e) => ({ ...e, at: iso(e.at) })),
          has_more: entries.length === limit,
          ...(r === undefined ? {} : { ref: r }),
        });
      }
      case "reports": {
        const reports = [...this.#users.values()]
          .filter((x) => this.#reports.has(x.record.name) || this.#mutedUntil(x) !== null)
          .map((x) => {
            const muted = this.#mutedUntil(x);
            return {
              username: x.record.name,
              reporters: [...(this.#reports.get(x.record.name)?.keys() ?? [])].sort(),
              muted_until: muted === null ? null : iso(muted),
            };
          });
        return this.#send(conn, {
          type: "reports_list",
          reports,
          timestamp: this.#ts(),
          ...(r === undefined ? {} : { ref: r }),
        });
      }
      case "stats":
        return this.#send(conn, { ...this.statsFrame(), ...(r === undefined ? {} : { ref: r }) });
      case "log_subscribe":
        this.#logWatchers.add(conn);
        return this.#send(conn, {
          type: "log",
          entries: [...this.#logRing],
          ...(r === undefined ? {} : { ref: r }),
        });
      case "create_user": {
        if (this.#findUser(frame.username)) {
          throw new ChatError("name_taken", `The name ${frame.username} is taken`);
        }
        checkPassword(frame.password);
        const created = await this.#createUser(
          frame.username,
          await this.#passwords.hash(frame.password),
        );
        if (frame.admin) {
          created.record = { ...created.record, admin: true };
          await this.#store.updateUser(created.record);
        }
        await this.#audit(
          u,
          "create_user",
          created.record.name,
          "",
          frame.admin ? "admin" : undefined,
        );
        return this.#send(
          conn,
          this.#system(`Created ${frame.admin ? "admin" : "user"} ${created.record.name}`, r),
        );
      }
    }
  }

  /** Adds a line to the live service log and sends it to the admins watching. */
  #log(kind: LogEntry["kind"], text: string): void {
    const entry: LogEntry = { at: iso(this.#clock.now()), kind, text };
    this.#logRing.push(entry);
    if (this.#logRing.length > LOG_SIZE) this.#logRing.shift();
    if (this.#logWatchers.size === 0) return;
    const out = new Outbound({ type: "log", entries: [entry] });
    for (const c of this.#logWatchers) c.peer.send(out);
  }

  /** Counters for admins and /metrics. */
  statsFrame(): Extract<ServerFrame, { type: "stats" }> {
    const byTransport: Record<string, number> = {};
    for (const c of this.#conns.values()) {
      byTransport[c.peer.transport] = (byTransport[c.peer.transport] ?? 0) + 1;
    }
    const nowS = Math.floor(this.#clock.now() / 1000);
    let lastMinute = 0;
    for (const [second, count] of this.#minute) if (second > nowS - 60) lastMinute += count;
    return {
      type: "stats",
      online_users: this.#onlineUsers,
      connections: this.#conns.size,
      by_transport: byTransport,
      messages_total: this.stats.messages,
      messages_last_minute: lastMinute,
      uptime_s: Math.round((this.#clock.now() - this.#startedAt) / 1000),
      timestamp: this.#ts(),
    };
  }

  /** Says goodbye to every connection of a user and closes them; returns how many. */
  #closeAll(u: UserState, reason: string): number {
    const conns = [...u.conns];
    const bye = new Outbound({ type: "bye", reason });
    for (const c of conns) {
      c.peer.send(bye);
      c.peer.close(reason);
    }
    return conns.length;
  }

  /** Records when and from where a user was last seen. */
  #touch(u: UserState, ip: string): void {
    u.record = { ...u.record, lastSeen: this.#clock.now(), ...(ip ? { lastIp: ip } : {}) };
    // After close() the store may be gone: connections closing then change nothing durable.
    if (this.#closing) return;
    this.#background(this.#store.updateUser(u.record), "save last seen");
  }

  // ---------------------------------------------------------------- lists and status

  #usersList(r: string | undefined): ServerFrame {
    const all: UserEntry[] = [...this.#users.values()]
      .map((u) => this.#userEntry(u))
      .sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username))
      .slice(0, 500);
    return {
      type: "users_list",
      users: all.filter((e) => e.online).map((e) => e.username),
      all,
      online_users: this.#onlineUsers,
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    };
  }

  #chatSummaries(u: UserState): ChatSummary[] {
    const out: ChatSummary[] = [];
    for (const chat of u.chats) {
      const unread = Math.max(0, (this.#seqs.get(chat) ?? 0) - (u.cursors?.get(chat) ?? 0));
      const room = this.#rooms.get(chat);
      if (room) {
        const names = [...room.members].slice(0, 200).map((m) => m.record.name).sort();
        out.push({ chat, kind: "room", members: names, member_count: room.members.size, unread });
      } else {
        const address = this.#address(u, chat);
        const names = [u.record.name, address.slice(1)].sort();
        out.push({ chat: address, kind: "private", members: names, member_count: 2, unread });
      }
    }
    return out.sort((a, b) => a.chat.localeCompare(b.chat));
  }

  #userEntry(u: UserState): UserEntry {
    return {
      username: u.record.name,
      online: u.conns.size > 0,
      registered: u.record.passwordHash !== null,
      connections: u.conns.size,
    };
  }

  #status(conn: Conn, u: UserState, r: string | undefined): ServerFrame {
    return {
      type: "status",
      username: u.record.name,
      registered: u.record.passwordHash !== null,
      mode: this.#mode(conn),
      rooms: this.#roomsOf(u),
      session: u.session?.record.name ?? null,
      admin: u.record.admin,
      muted_until: this.#mutedUntil(u) === null ? null : iso(this.#mutedUntil(u)!),
      quota: this.#quotaState(u),
      chats: this.#chatSummaries(u),
      connections: u.conns.size,
      online_users: this.#onlineUsers,
      timestamp: this.#ts(),
      ...(r === undefined ? {} : { ref: r }),
    };
  }

  // ---------------------------------------------------------------- cursors

  #advance(u: UserState, chat: string, seq: number): void {
    if (!u.cursors) return;
    if ((u.cursors.get(chat) ?? 0) >= seq) return;
    u.cursors.set(chat, seq);
    u.dirty.add(chat);
    this.#dirtyUsers.add(u);
  }

  async #flushCursors(): Promise<void> {
    const users = [...this.#dirtyUsers];
    this.#dirtyUsers.clear();
    await this.#flushCursorsOf(users);
  }

  async #flushCursorsOf(users: UserState[]): Promise<void> {
    const entries = [];
    for (const u of users) {
      for (const chat of u.dirty) {
        const seq = u.cursors?.get(chat);
        if (seq !== undefined) entries.push({ user: u.record.name, chat, seq });
      }
      u.dirty.clear();
      this.#dirtyUsers.delete(u);
    }
    await this.#store.saveCursors(entries);
  }

  /** Tracks a write nobody waits for, so `close()` can wait for it and a failure is reported. */
  #background(work: Promise<unknown>, context: string): void {
    const p = work.then(() => {}, (error) => this.#onError(error, context));
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  // ---------------------------------------------------------------- sending

  #mode(conn: Conn): Mode {
    const partner = conn.user?.session;
    return conn.sessionView && partner
      ? { kind: "session", with: partner.record.name }
      : { kind: "room", room: conn.room };
  }

  /** The address of a chat as this user names it: the room, or `@other` for a private chat. */
  #address(u: UserState, chat: string): string {
    if (!chat.startsWith("dm:")) return chat;
    const [, a, b] = chat.split(":");
    return "@" + (a === u.record.name ? b : a);
  }

  #ts(): string {
    return iso(this.#clock.now());
  }

  #system(message: string, r?: string): ServerFrame & { type: "system" } {
    return {
      type: "system",
      message,
      timestamp: this.#ts(),
      online_users: this.#onlineUsers,
      ...(r === undefined ? {} : { ref: r }),
    };
  }

  #send(conn: Conn, frame: ServerFrame): void {
    if (!conn.closed) conn.peer.send(new Outbound(frame));
  }

  /** The user's live connections plus `conn`, which may be a transient REST one. */
  #connsWith(u: UserState, conn: Conn): Set<Conn> {
    return u.conns.has(conn) ? u.conns : new Set([...u.conns, conn]);
  }

  #sendUser(u: UserState, out: Outbound): void {
    for (const c of u.conns) this.#deliverTo(c, out);
  }

  /** Delivers a broadcast frame, or holds it while the connection's replay is going out. */
  #deliverTo(c: Conn, out: Outbound): void {
    if (c.held) c.held.push(out);
    else c.peer.send(out);
    this.stats.deliveries++;
  }

  #sendRoom(room: RoomState, frame: ServerFrame, except?: UserState): void {
    const out = new Outbound(frame);
    for (const u of room.online) if (u !== except) this.#sendUser(u, out);
  }

  #broadcast(frame: ServerFrame, except: UserState): void {
    // Announcing every arrival to everyone costs O(online²): big chats stay quiet instead.
    if (this.#onlineUsers > PRESENCE_NOTICE_LIMIT) return;
    const out = new Outbound(frame);
    for (const c of this.#conns.values()) if (c.user && c.user !== except) this.#deliverTo(c, out);
  }
}

function ref(frame: { ref?: string }): { ref?: string } {
  return frame.ref === undefined ? {} : { ref: frame.ref };
}

/** What a message may carry besides text, as asked by the client. */
interface PostExtra {
  replyTo?: string;
  file?: FileRef;
}

/** What a message carries besides text, resolved and checked. */
interface Attachments {
  replyTo?: { id: string; from: string; text: string };
  file?: FileRef;
}

function replyOf(frame: { reply_to?: string }, conn: Conn): PostExtra {
  return {
    ...(frame.reply_to === undefined ? {} : { replyTo: frame.reply_to }),
    ...(conn.file === undefined ? {} : { file: conn.file }),
  };
}

/** Above this many online users, online/offline notices are not broadcast (/users still tells). */
export const PRESENCE_NOTICE_LIMIT = 500;

/** How many service log lines admins can scroll back through. */
const LOG_SIZE = 200;

/** File bytes are stored in chunks below KV's 64 KiB value limit. */
const FILE_CHUNK_BYTES = 60_000;
const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 3600_000;
const MAX_SCHEDULED_PER_USER = 100;

/** Formats a byte count for people: "512 B", "12.3 KB", "5.0 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function requireLive(u: UserState): void {
  if (u.conns.size === 0) {
    throw new ChatError(
      "forbidden",
      "A private session needs a live connection: use TCP, /ws or /api/v1/events, not plain REST",
    );
  }
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Formats a window length for people: "1h", "30m", "45s". */
function duration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_CHARS) {
    throw new ChatError("bad_field", `A password needs at least ${MIN_PASSWORD_CHARS} characters`);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Turns a stored message into its wire frame. */
export function toFrame(m: StoredMessage): MessageFrame {
  const extra = {
    ...(m.replyTo
      ? { reply_to: { id: m.replyTo.id, from_username: m.replyTo.from, message: m.replyTo.text } }
      : {}),
    ...(m.file ? { file: m.file } : {}),
  };
  if (m.to !== undefined) {
    return {
      type: "private",
      id: m.id,
      seq: m.seq,
      from_username: m.from,
      to_username: m.to,
      message: m.text,
      timestamp: iso(m.ts),
      ...extra,
    };
  }
  return {
    type: "message",
    id: m.id,
    seq: m.seq,
    room: m.chat,
    from_username: m.from,
    message: m.text,
    timestamp: iso(m.ts),
    ...extra,
  };
}
