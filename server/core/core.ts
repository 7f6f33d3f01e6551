/**
 * The core's context: configuration, injected clock and ids, the store, the in-memory state of
 * users, rooms and connections, the fan-out port, and the helpers every feature module shares.
 * Feature modules are functions over a `Core`; the `Hub` facade is what transports hold.
 * @module
 */

import {
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  MAX_PAGE,
  ROOMS_CREATED_PER_HOUR,
} from "../../protocol/limits.ts";
import type { KdfParams, LogEntry, Mode, ServerFrame } from "../../protocol/frames.ts";
import type { ReportRecord, Store } from "../store/store.ts";
import { ChatError } from "./errors.ts";
import type { ChatEvent, FanOut, Presence } from "./fanout.ts";
import { skeleton } from "../../protocol/names.ts";
import { iso } from "./format.ts";
import { LoginThrottle } from "./login_throttle.ts";
import { Outbound } from "./peer.ts";
import type { PresenceTold } from "./presence_notices.ts";
import { ServiceLog } from "./service_log.ts";
import { type Conn, GENERAL, type RoomState, type UserState, type View } from "./state.ts";

/** Where the core reads the time, in epoch milliseconds. */
export interface Clock {
  now(): number;
}

/** Hashes and checks passwords with a slow KDF. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** The KDF parameters of a stored hash, for a challenge; null for a format that has none. */
  challengeParams(hash: string): KdfParams | null;
  /** Checks base64 HMAC-SHA256(key = the stored hash's key, nonce), the proof of a password. */
  verifyProof(hash: string, nonce: string, proof: string): Promise<boolean>;
}

/** At most `count` messages in any `windowMs`. */
export interface RateLimit {
  count: number;
  windowMs: number;
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
  /** Whose reports count: anyone's (default, as the original rules), or registered users'. */
  reportsFrom?: "any" | "registered";
  /** How long a mute lasts, in ms (default 4 hours). */
  muteForMs?: number;
  /** Messages a user may send into public rooms per window (default 20 per hour); null: no limit. */
  rateLimit?: RateLimit | null;
  /** Private messages a user may send per window (default 30 per minute); null: no limit. */
  privateRateLimit?: RateLimit | null;
  /** How long messages live, in ms (default 1 hour); 0 keeps them. */
  messageTtlMs?: number;
  /** Rooms a user (not an admin) may create per hour (default 10); 0: no limit. */
  roomsPerHour?: number;
  /** Addresses whose guests are not counted together (default: loopback). */
  quotaExempt?: string[];
  /** How long the service log is kept in the store (default 7 days). */
  logRetentionMs?: number;
  /** `off`: every name needs a password (a new name is registered with it). Default `on`. */
  guests?: "on" | "off";
  /**
   * A guest name left alone longer than this starts afresh: private messages from before are
   * not shown to whoever takes the name next (default 10 minutes).
   */
  guestGraceMs?: number;
  /** Others hear of one user's away changes at most once per this long (default 10 s). */
  awayNoticeMs?: number;
  /** Simultaneous connections allowed from one address (default 256); 0: no limit. */
  maxConnectionsPerIp?: number;
  /** Largest file a user may send, in bytes (default 5 MiB). */
  maxFileSize?: number;
  /** `closed`: only admins create accounts, and every login needs a password. */
  registration?: "open" | "closed";
  /** The HTTP port, so `token` replies can say where files go; null: no HTTP listener. */
  httpPort?: number | null;
  /** Called with unexpected errors (the core never logs by itself). */
  onError?: (error: unknown, context: string) => void;
}

/** The options with their defaults applied. */
export interface Config {
  historySize: number;
  tokenTtlMs: number;
  reportsToMute: number;
  reportsFrom: "any" | "registered";
  muteForMs: number;
  rateLimit: RateLimit | null;
  privateRateLimit: RateLimit | null;
  messageTtlMs: number;
  maxPerIp: number;
  roomsPerHour: number;
  quotaExempt: Set<string>;
  guests: "on" | "off";
  guestGraceMs: number;
  awayNoticeMs: number;
  logRetentionMs: number;
  maxFileSize: number;
  registration: "open" | "closed";
  httpPort: number | null;
}

/** Counters the hub keeps, for metrics and benchmarks. */
export interface HubStats {
  messages: number;
  deliveries: number;
  errors: number;
  /** Idle guests forgotten (`guests.ts`). */
  guestsForgotten: number;
}

/** Resolves the options' defaults. */
function configOf(o: HubOptions): Config {
  return {
    historySize: Math.min(o.historySize ?? 20, MAX_PAGE),
    tokenTtlMs: o.tokenTtlMs ?? 7 * 24 * 3600_000,
    reportsToMute: o.reportsToMute ?? 3,
    reportsFrom: o.reportsFrom ?? "any",
    muteForMs: o.muteForMs ?? 4 * 3600_000,
    rateLimit: o.rateLimit === undefined ? { count: 20, windowMs: 3600_000 } : o.rateLimit,
    privateRateLimit: o.privateRateLimit === undefined
      ? { count: 30, windowMs: 60_000 }
      : o.privateRateLimit,
    messageTtlMs: o.messageTtlMs ?? 3600_000,
    maxPerIp: o.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP,
    roomsPerHour: o.roomsPerHour ?? ROOMS_CREATED_PER_HOUR,
    quotaExempt: new Set(o.quotaExempt ?? ["127.0.0.1", "::1"]),
    guests: o.guests ?? "on",
    logRetentionMs: o.logRetentionMs ?? 7 * 24 * 3600_000,
    guestGraceMs: o.guestGraceMs ?? 10 * 60_000,
    awayNoticeMs: o.awayNoticeMs ?? 10_000,
    maxFileSize: o.maxFileSize ?? 5 * 1024 * 1024,
    registration: o.registration ?? "open",
    httpPort: o.httpPort ?? null,
  };
}

/** The context every feature module works on. */
export class Core {
  readonly config: Config;
  readonly store: Store;
  readonly clock: Clock;
  readonly newId: (now: number) => string;
  readonly passwords: PasswordHasher;
  readonly onError: (error: unknown, context: string) => void;
  /** Where events go: this process's delivery unless a broker is plugged in. */
  fanout: FanOut;
  /** Who is online in other processes (cluster mode); nobody otherwise. */
  presence: Presence = { elsewhere: () => false };

  readonly users = new Map<string, UserState>();
  /** Users by the skeleton of their name (protocol/names.ts): look-alikes are one user. */
  readonly lowerNames = new Map<string, string>();
  /** Rooms by the skeleton of their name: look-alike rooms are one room. */
  readonly roomNames = new Map<string, string>();
  readonly rooms = new Map<string, RoomState>();
  /** The last sequence number of every chat. */
  readonly seqs = new Map<string, number>();
  /** This process's connections by id. */
  readonly conns = new Map<number, Conn>();
  /** Open reports by target, then reporter. */
  readonly reports = new Map<string, Map<string, ReportRecord>>();
  /** Send times of guests by address ("r|IP" rooms, "p|IP" private), for the shared quota. */
  readonly addressSends = new Map<string, number[]>();
  /** Failed logins, for throttling password guessing. */
  readonly logins = new LoginThrottle();
  readonly links = new Map<string, { room: string; by: string; at: number }>();
  /** Users with cursors changed since the last save; users whose cursors are loaded. */
  readonly dirtyUsers = new Set<UserState>();
  readonly cursorCache = new Set<UserState>();
  /** Commands being handled, so `close()` lets them finish before the store closes. */
  readonly running = new Set<Promise<void>>();
  /** Writes nobody waits for, so `close()` can wait for them. */
  readonly inflight = new Set<Promise<void>>();
  /** Messages per second over the last minute: [second, count] buckets. */
  readonly minute: Array<[number, number]> = Array.from({ length: 60 }, () => [0, 0]);
  readonly serviceLog = new ServiceLog();
  /** Work counters since start. */
  readonly stats: HubStats = { messages: 0, deliveries: 0, errors: 0, guestsForgotten: 0 };
  /** Offline guests, in the order they went offline, to be forgotten once idle (`guests.ts`). */
  readonly idleGuests = new Set<UserState>();
  /** Away notices told lately, by user: what was told, when, and whether it changed since. */
  readonly awayNotices = new Map<
    UserState,
    { told: string | null; at: number; pending: boolean }
  >();
  /** Users' allowances of arrival and departure notices, while not full (`presence_notices.ts`). */
  readonly presenceNotices = new Map<UserState, PresenceTold>();
  /** Users' allowances of joins and leaves, while not full (`rooms.ts`). */
  readonly roomMoves = new Map<UserState, { tokens: number; at: number }>();
  /** Names (by skeleton) whose forgotten guest is being deleted from the store. */
  readonly forgetting = new Map<string, Promise<void>>();
  readonly startedAt: number;
  /** This process among others on one store (claims on scheduled messages name it). */
  readonly instanceId = crypto.randomUUID();
  onlineUsers = 0;
  closing = false;
  lastSweep = 0;
  /** 0: the first housekeeping after a start looks for abandoned uploads at once. */
  lastOrphanSweep = 0;

  /** Builds the context; `fanout` is set by whoever wires delivery (the Hub). */
  constructor(options: HubOptions, fanout: FanOut) {
    this.config = configOf(options);
    this.store = options.store;
    this.clock = options.clock;
    this.newId = options.newId;
    this.passwords = options.passwords;
    this.onError = options.onError ?? (() => {});
    this.fanout = fanout;
    this.startedAt = options.clock.now();
  }

  /** Users online here or on another node of the cluster. */
  onlineCount(): number {
    return this.onlineUsers + (this.presence.elsewhereCount?.() ?? 0);
  }

  /** Whether a user is online here or on another node of the cluster. */
  isOnline(u: UserState): boolean {
    return u.conns.size > 0 || this.presence.elsewhere(u.record.name);
  }

  /** Publishes an event through the fan-out port. */
  publish(event: ChatEvent): void {
    this.fanout.publish(event);
  }

  /** A user by name, any case, or by a name that looks the same. */
  findUser(name: string): UserState | undefined {
    return this.users.get(name) ?? this.users.get(this.lowerNames.get(skeleton(name)) ?? "");
  }

  /** A room by name, or by a name that looks the same. */
  findRoom(name: string): RoomState | undefined {
    return this.rooms.get(name) ?? this.rooms.get(this.roomNames.get(skeleton(name)) ?? "");
  }

  /** Forgets a room (a public one left empty and unused). */
  removeRoom(room: RoomState): void {
    this.rooms.delete(room.record.id);
    if (this.roomNames.get(skeleton(room.record.id)) === room.record.id) {
      this.roomNames.delete(skeleton(room.record.id));
    }
  }

  /** Adds a room's state, indexed by name and by look. */
  addRoom(room: RoomState): void {
    this.rooms.set(room.record.id, room);
    this.roomNames.set(skeleton(room.record.id), room.record.id);
  }

  /** A user by name, or a `no_such_user` error. */
  requireUser(name: string): UserState {
    const u = this.findUser(name);
    if (!u) {
      throw new ChatError("no_such_user", `There is no user "${name}": /users lists who is here`);
    }
    return u;
  }

  /**
   * A room by name, or a `no_such_room` error. Asked on behalf of `u`, a private group `u` is
   * not in (nor invited to) is answered exactly as a room that does not exist: a non-member
   * learns nothing of it, not even that it exists.
   */
  requireRoom(name: string, u?: UserState): RoomState {
    const room = this.findRoom(name);
    const hidden = room?.record.private && u !== undefined && !room.members.has(u) &&
      !u.invites.has(name);
    if (!room || hidden) {
      throw new ChatError("no_such_room", `There is no room #${name}: /join ${name} creates it`);
    }
    return room;
  }

  /** The address of a chat as this user names it: the room, or `@other` for a private chat. */
  address(u: UserState, chat: string): string {
    if (!chat.startsWith("dm:")) return chat;
    const [, a, b] = chat.split(":");
    return "@" + (a === u.record.name ? b : a);
  }

  /** Where a view is: its room, or the user's private session when it shows it. */
  mode(view: View, u: UserState | null): Mode {
    const partner = u?.session;
    return view.sessionView && partner
      ? { kind: "session", with: partner.record.name }
      : { kind: "room", room: view.room };
  }

  /** Whether a message or file has outlived its lifetime (KV expiry is lazy). */
  expired(m: { expiresAt?: number }): boolean {
    return m.expiresAt !== undefined && m.expiresAt <= this.clock.now();
  }

  /** Now, as an ISO string. */
  ts(): string {
    return iso(this.clock.now());
  }

  /** A `system` notice. */
  system(message: string): ServerFrame & { type: "system" } {
    return { type: "system", message, timestamp: this.ts(), online_users: this.onlineUsers };
  }

  /** Puts a frame on one connection of this process (a direct answer, not a fan-out). */
  sendTo(conn: Conn | null, frame: ServerFrame): void {
    if (conn && !conn.closed) conn.peer.send(new Outbound(frame));
  }

  /** Adds a line to the service log (kept in memory, and saved for `--log-retention`). */
  log(kind: LogEntry["kind"], text: string): void {
    const now = this.clock.now();
    this.serviceLog.add({ id: this.newId(now), at: iso(now), kind, text });
  }

  /** Tracks a write nobody waits for, so `close()` can wait for it and a failure is reported. */
  background(work: Promise<unknown>, context: string): void {
    const p = work.then(() => {}, (error) => this.onError(error, context));
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** The user's rooms (not private chats), sorted. */
  roomsOf(u: UserState): string[] {
    return [...u.chats].filter((c) => this.rooms.has(c)).sort();
  }

  /** `general`, which always exists once the hub is loaded. */
  get general(): RoomState {
    return this.rooms.get(GENERAL)!;
  }
}
