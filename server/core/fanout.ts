/**
 * The fan-out port: what the core publishes when something happened that connections must
 * hear about. The core never writes to a connection of another user directly; it publishes an
 * event, and a delivery (this process's `LocalDelivery`, or a broker in front of several
 * processes) turns it into frames for the connections it holds. Events name users, rooms and
 * connections by plain ids, so a broker can carry them as JSON.
 * @module
 */

import type { ConnectionEntry, ServerFrame } from "../../protocol/frames.ts";
import type { StoredMessage } from "../store/store.ts";
import type { StateChange } from "./remote.ts";

/** How the user's connections' views change with an event (their `mode` follows). */
export type ViewChange =
  /** Each connection now shows the private session (true) or its room again (false). */
  | { session: boolean }
  /** Connections that were in this room go back to `general`. */
  | { leftRoom: string };

/** Something connections must hear about. */
export type ChatEvent =
  /** A stored message: to the room's online members, or both ends of a private chat. */
  | { kind: "message"; message: StoredMessage }
  /** A message was deleted: to whoever could see it; the chat is named as each viewer names it. */
  | { kind: "deleted"; message: StoredMessage; by: string; timestamp: string; exceptConn?: number }
  /** A frame to every online member of a room, but `except` (a user name). */
  | { kind: "room"; room: string; frame: ServerFrame; except?: string }
  /**
   * A frame to every connection of a user, but `exceptConn`; a frame with a `mode` gets each
   * connection's own, after `view` is applied.
   */
  | { kind: "user"; user: string; frame: ServerFrame; exceptConn?: number; view?: ViewChange }
  /** A frame to every logged-in connection, but those of `except` (a user name). */
  | { kind: "everyone"; frame: ServerFrame; except: string }
  /**
   * Says goodbye to every connection of a user and closes them (kick, ban), or only those
   * logged in with one token (its SHA-256), when it is revoked.
   */
  | { kind: "close_user"; user: string; reason: string; token?: string }
  /**
   * A user's first connection in this process opened, or its last one closed. Nothing to deliver
   * here; a broker tells the other processes, so they count the user online (`Presence`).
   */
  | { kind: "presence"; user: string; online: boolean }
  /**
   * A change to state every process keeps in memory but not in the store (a send counted against
   * a quota): nothing to deliver here; a broker tells the other processes.
   */
  | { kind: "shared"; change: StateChange };

/** Who is online in other processes of the same chat (a cluster); none without one. */
export interface Presence {
  /** Whether the user has a connection in another process. */
  elsewhere(user: string): boolean;
  /** How many users are online in other processes only. */
  elsewhereCount?(): number;
  /** This process's name in the cluster. */
  readonly node?: string;
  /** The connections of the other processes (each answers within a bound, or is left out). */
  connectionsElsewhere?(): Promise<ConnectionEntry[]>;
}

/** Where the core publishes events. */
export interface FanOut {
  /** Delivers an event; the in-process delivery does it synchronously, in publishing order. */
  publish(event: ChatEvent): void;
}

/**
 * A fan-out across processes (cluster mode): it publishes this process's events to the others
 * and hands theirs to this process's delivery, and it knows who is online elsewhere.
 */
export interface Broker extends FanOut, Presence {
  /** Called once the hub has loaded: how this process delivers and catches up. */
  start(local: LocalNode): void;
}

/** What a broker may do with the process it serves. */
export interface LocalNode {
  /** Delivers an event to this process's connections (messages in the order the broker gives). */
  deliver(event: ChatEvent): void;
  /** The last sequence number delivered here in a chat. */
  lastSeq(chat: string): number;
  /** Stored messages of a chat after `after`, oldest first (to fill a gap). */
  messagesAfter(chat: string, after: number, limit: number): Promise<StoredMessage[]>;
  /** Chats that have a member online in this process. */
  activeChats(): string[];
  /** Applies a change another process made to shared state. */
  applyChange(change: StateChange): Promise<void>;
  /** Tells this process's users that `user` left (their node died without saying so). */
  announceOffline(user: string): void;
  /** This process's connections, for an admin on another node. */
  connections(): ConnectionEntry[];
  /** Who of the users online in this process is away, with their words (for a node that starts late). */
  awayHere(): Record<string, string>;
}
