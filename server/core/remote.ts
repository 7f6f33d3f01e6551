/**
 * What another node of a cluster changed in the state every node keeps in memory (users,
 * rooms, memberships, contacts, invites), and how this node catches up: it reads the changed
 * record again from the shared store, or applies the membership the change names. The core
 * only knows the change; a broker (server/cluster/) carries it between nodes.
 * @module
 */

import { addUserState } from "./auth.ts";
import { forgetHere } from "./guests.ts";
import type { Core } from "./core.ts";
import type { ReportRecord } from "../store/store.ts";
import { newRoomState, own, type RoomState, type UserState } from "./state.ts";

/** A change to shared state, named by plain ids so a broker can carry it as JSON. */
export type StateChange =
  | { type: "user"; name: string }
  | { type: "chat"; id: string }
  /** `cursor` is the member's read position; null: no longer a member. */
  | { type: "member"; chat: string; user: string; cursor: number | null }
  | { type: "contact"; user: string; contact: string; present: boolean }
  | { type: "invite"; room: string; user: string; from: string | null }
  /** A message counted against a quota (the user's window, and a guest address's). */
  | { type: "sent"; user: string; private: boolean; at: number; address: string | null }
  /** A report filed, or a target's reports cleared (they muted). */
  | { type: "report"; record: ReportRecord }
  | { type: "reports_cleared"; target: string }
  /** A password checked: failures count toward the login throttle on every node. */
  | { type: "login"; name: string; ip: string; at: number; ok: boolean }
  /** A private session asked for (`open`), or the request answered or dropped. */
  | { type: "session_request"; from: string; to: string; open: boolean }
  /** A private session started between two users (`with`), or `user`'s ended (null). */
  | { type: "session"; user: string; with: string | null }
  /** A user went away with a message, or came back (null). */
  | { type: "away"; user: string; message: string | null };

/** Applies a change made by another node. */
export async function applyChange(core: Core, change: StateChange): Promise<void> {
  switch (change.type) {
    case "user": {
      const record = await core.store.getUser(change.name);
      const known = core.users.get(change.name);
      if (record && known) known.record = record;
      else if (record) addUserState(core, record);
      // Deleted (a guest forgotten by another node): gone here too, unless online here.
      else if (known && known.conns.size === 0) forgetHere(core, known);
      return;
    }
    case "chat": {
      const record = await core.store.getChat(change.id);
      const room = core.rooms.get(change.id);
      if (!record) {
        if (room) core.removeRoom(room);
      } else if (record.kind === "room") {
        if (room) room.record = record;
        else core.addRoom(newRoomState(record));
      }
      return;
    }
    case "member": {
      const u = await loadUser(core, change.user);
      if (!u) return;
      if (change.cursor === null) {
        core.rooms.get(change.chat)?.members.delete(u);
        core.rooms.get(change.chat)?.online.delete(u);
        u.chats.delete(change.chat);
        u.cursors?.delete(change.chat);
        return;
      }
      u.chats.add(change.chat);
      if (u.cursors && !u.cursors.has(change.chat)) u.cursors.set(change.chat, change.cursor);
      const room = await loadRoom(core, change.chat);
      if (!room) return;
      room.members.add(u);
      if (u.conns.size > 0) room.online.add(u);
      return;
    }
    case "contact": {
      const u = core.users.get(change.user);
      if (!u) return;
      if (change.present) own(u, "contacts").add(change.contact);
      else if (u.contacts.has(change.contact)) own(u, "contacts").delete(change.contact);
      return;
    }
    case "sent": {
      const u = core.users.get(change.user);
      if (u) insertSorted(change.private ? u.sentPrivate : u.sent, change.at);
      if (change.address !== null) {
        let sent = core.addressSends.get(change.address);
        if (!sent) core.addressSends.set(change.address, sent = []);
        insertSorted(sent, change.at);
      }
      return;
    }
    case "report": {
      let reports = core.reports.get(change.record.target);
      if (!reports) core.reports.set(change.record.target, reports = new Map());
      reports.set(change.record.reporter, change.record);
      return;
    }
    case "session_request": {
      const from = core.users.get(change.from);
      const to = core.users.get(change.to);
      if (!from || !to) return;
      if (change.open) {
        own(from, "requestsOut").add(to);
        own(to, "requestsIn").add(from);
      } else {
        if (from.requestsOut.has(to)) own(from, "requestsOut").delete(to);
        if (to.requestsIn.has(from)) own(to, "requestsIn").delete(from);
      }
      return;
    }
    case "away": {
      const u = core.users.get(change.user);
      if (u) u.away = change.message;
      return;
    }
    case "session": {
      const u = core.users.get(change.user);
      if (!u) return;
      if (change.with === null) {
        if (u.session) u.session.session = null;
        u.session = null;
        return;
      }
      const other = core.users.get(change.with);
      if (!other) return;
      u.session = other;
      other.session = u;
      return;
    }
    case "login":
      core.logins.recordElsewhere(change.name, change.ip, change.at, change.ok);
      return;
    case "reports_cleared":
      core.reports.delete(change.target);
      return;
    case "invite": {
      const u = core.users.get(change.user);
      if (!u) return;
      if (change.from !== null) own(u, "invites").set(change.room, change.from);
      else if (u.invites.has(change.room)) own(u, "invites").delete(change.room);
      return;
    }
  }
}

/** The user, read from the store if unknown here. */
async function loadUser(core: Core, name: string): Promise<UserState | null> {
  const known = core.users.get(name);
  if (known) return known;
  const record = await core.store.getUser(name);
  return record ? addUserState(core, record) : null;
}

/** The room, read from the store if unknown here (private chats are not rooms: null). */
export async function loadRoom(core: Core, id: string): Promise<RoomState | null> {
  const known = core.rooms.get(id);
  if (known) return known;
  const record = await core.store.getChat(id);
  if (!record || record.kind !== "room") return null;
  // Loaded or made here meanwhile (another command of this node): keep that one and its members.
  const meanwhile = core.rooms.get(id);
  if (meanwhile) return meanwhile;
  const room = newRoomState(record);
  core.addRoom(room);
  return room;
}

/** Adds a time to a window kept oldest first (another node's send may be a little older). */
function insertSorted(times: number[], at: number): void {
  let i = times.length;
  while (i > 0 && times[i - 1]! > at) i--;
  times.splice(i, 0, at);
}
