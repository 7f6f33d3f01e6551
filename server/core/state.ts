/**
 * The in-memory state the core keeps of users, rooms and this process's connections. Only
 * the core's modules touch it; transports see a `Peer`.
 * @module
 */

import type { FileRef } from "../../protocol/frames.ts";
import type { ChatRecord, ScheduledRecord, UserRecord } from "../store/store.ts";
import type { Outbound, Peer } from "./peer.ts";

/** The room every user is in. */
export const GENERAL = "general";

/** Where a connection (or a REST call) is: its current room, and whether it shows the private session. */
export interface View {
  room: string;
  /** Whether this view shows the user's private session (true) or its room. */
  sessionView: boolean;
}

/** A user, online or not, as the core keeps them. */
export interface UserState {
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
  /**
   * Session requests in and out, contacts (user names), and pending invites to private groups
   * (room → who invited): empty for most users, so they share one empty collection until the
   * first entry (`own()` gives a writable one). Four empty collections were ~0.8 KB of the
   * ~9 KB of live heap per idle connection.
   */
  readonly requestsIn: ReadonlySet<UserState>;
  readonly requestsOut: ReadonlySet<UserState>;
  readonly contacts: ReadonlySet<string>;
  readonly invites: ReadonlyMap<string, string>;
  /**
   * A guest's private messages from before this time are not shown (the name was left alone
   * past the grace period and taken again); 0 for registered users and fresh guests.
   */
  privateSince: number;
  /** When this user created rooms in the last hour (creation is capped). */
  roomsCreated: number[];
  /** What the user said when they went away (`away`); null while they are here. */
  away: string | null;
  /** Commands of this user in progress; the cursor cache is never evicted under one. */
  busy: number;
  lastUsed: number;
}

/** A room or private group. */
export interface RoomState {
  record: ChatRecord;
  members: Set<UserState>;
  /** Members with at least one connection: the fan-out set, so delivery never walks offline members. */
  online: Set<UserState>;
  /** Private groups: who asked to join through a link, and when. */
  requests: Map<string, number>;
}

/** A live connection of this process. */
export interface Conn extends View {
  id: number;
  peer: Peer;
  user: UserState | null;
  /** Frames of this connection are handled one after another on this chain. */
  chain: Promise<void>;
  /** Live deliveries held back while this connection's history/unread replay is being sent. */
  held: Outbound[] | null;
  /** The last message of this connection still being stored; other replies wait for it to keep order. */
  lastPost: { readonly settled: Promise<void> } | null;
  /** Messages of this connection waiting for their commit (see `roomToPost`). */
  posting: number;
  /** Wakes the connection's reader once `posting` has fallen to half the window. */
  postingLow: (() => void) | null;
  connectedAt: number;
  lastSeen: number;
  closed: boolean;
  /** The SHA-256 of the token it logged in with, if any: revoking the token closes it. */
  token: string | null;
  /** What the user said with `quit` on this connection, told to the others if it is their last. */
  farewell?: string;
  /** The last login challenge sent on this connection (challenge logins: JIM). */
  challenge: { user: string; nonce: string; at: number } | null;
}

/** What a message may carry besides text, as asked for. */
export interface PostExtra {
  replyTo?: string;
  file?: FileRef;
  /** The scheduled record this message sends: removed in the same commit as the message. */
  completes?: ScheduledRecord;
  /** The message is a notice. */
  notice?: true;
}

const NO_USERS: ReadonlySet<UserState> = new Set();
const NO_NAMES: ReadonlySet<string> = new Set();
const NO_INVITES: ReadonlyMap<string, string> = new Map();

/** The user's own writable collection for `field`, made on first use. */
export function own(u: UserState, field: "requestsIn" | "requestsOut"): Set<UserState>;
export function own(u: UserState, field: "contacts"): Set<string>;
export function own(u: UserState, field: "invites"): Map<string, string>;
export function own(
  u: UserState,
  field: "requestsIn" | "requestsOut" | "contacts" | "invites",
): Set<UserState> | Set<string> | Map<string, string> {
  const mutable = u as {
    requestsIn: ReadonlySet<UserState>;
    requestsOut: ReadonlySet<UserState>;
    contacts: ReadonlySet<string>;
    invites: ReadonlyMap<string, string>;
  };
  switch (field) {
    case "requestsIn":
    case "requestsOut":
      if (mutable[field] === NO_USERS) mutable[field] = new Set();
      return mutable[field] as Set<UserState>;
    case "contacts":
      if (mutable.contacts === NO_NAMES) mutable.contacts = new Set();
      return mutable.contacts as Set<string>;
    case "invites":
      if (mutable.invites === NO_INVITES) mutable.invites = new Map();
      return mutable.invites as Map<string, string>;
  }
}

/** A new user's state around its stored record. */
export function newUserState(record: UserRecord): UserState {
  return {
    record,
    sent: [],
    sentPrivate: [],
    conns: new Set(),
    chats: new Set(),
    cursors: null,
    dirty: new Set(),
    session: null,
    requestsIn: NO_USERS,
    requestsOut: NO_USERS,
    contacts: NO_NAMES,
    invites: NO_INVITES,
    roomsCreated: [],
    privateSince: 0,
    away: null,
    busy: 0,
    lastUsed: 0,
  };
}

/** A room's state around its stored record. */
export function newRoomState(record: ChatRecord): RoomState {
  return { record, members: new Set(), online: new Set(), requests: new Map() };
}

/** A new connection's state: not logged in, in `general`. */
export function newConn(id: number, peer: Peer, now: number): Conn {
  return {
    id,
    peer,
    user: null,
    room: GENERAL,
    sessionView: false,
    chain: Promise.resolve(),
    held: null,
    lastPost: null,
    posting: 0,
    postingLow: null,
    connectedAt: now,
    lastSeen: now,
    closed: false,
    token: null,
    challenge: null,
  };
}
