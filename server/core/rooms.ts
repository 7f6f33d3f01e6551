/**
 * Rooms: joining (which creates a public room), leaving, membership, and the lists of rooms and
 * members.
 * @module
 */

import type { RoomEntry, ServerFrame } from "../../protocol/frames.ts";
import { MAX_ROOMS_PER_USER } from "../../protocol/limits.ts";
import type { ChatRecord } from "../store/store.ts";
import { type Allowance, tokensAt } from "./allowance.ts";
import { type Call, exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { advance } from "./cursors.ts";
import { ChatError } from "./errors.ts";
import { toFrame } from "./format.ts";
import { inviteResponseCommand } from "./groups.ts";
import { loadRoom } from "./remote.ts";
import { GENERAL, newRoomState, type RoomState, type UserState } from "./state.ts";
import { pageByName, userEntry } from "./views.ts";

/** The `joined` answer. */
export type JoinedFrame = Extract<ServerFrame, { type: "joined" }>;

/** `join`: enters a room, creating a public one that does not exist yet. */
export async function joinCommand(
  call: UserCall,
  frame: { room: string },
  justCreated = false,
): Promise<JoinedFrame> {
  const { core, user: u } = call;
  // A name that looks like an existing room's (gеneral with a Cyrillic е) is that room. One that
  // another node of a cluster made a moment ago may not have reached this node yet: the shared
  // store is asked before the name is taken for a new room (one node's memory and store agree).
  let room = core.findRoom(frame.room) ?? await loadRoom(core, frame.room);
  // Another join may have made the room while the store was asked: that one is the room.
  room = core.findRoom(frame.room) ?? room;
  const name = room?.record.id ?? frame.room;
  if (room?.record.private && !room.members.has(u)) {
    // Joining a private group you were invited to accepts the invite.
    if (u.invites.has(name)) {
      const answer = await inviteResponseCommand(call, { room: name, accepted: true });
      if (answer.type === "joined") return answer;
    }
    // Said the same whether or not such a group exists: a non-member learns nothing of it.
    throw new ChatError(
      "no_such_room",
      `You cannot join #${frame.room}: there is no such room you may join (a private group needs an invite)`,
    );
  }
  const created = !room || justCreated;
  // Entering a room others are in tells them all: counted (creating one is capped on its own).
  if (room && !room.members.has(u)) countMembershipChange(core, u);
  if (!room) room = await createRoom(core, u, name, {});
  const isNew = !room.members.has(u);
  if (isNew) await addMember(core, u, room);
  call.view.room = name;
  call.view.sessionView = false;
  if (isNew) {
    core.publish({
      kind: "room",
      room: name,
      frame: {
        ...core.system(`${u.record.name} joined #${name}`),
        event: "joined",
        username: u.record.name,
        room: name,
      },
      except: u.record.name,
    });
  }
  const joined: JoinedFrame = {
    type: "joined",
    room: name,
    created,
    mode: core.mode(call.view, u),
    timestamp: core.ts(),
  };
  core.publish({ kind: "user", user: u.record.name, frame: joined, ...exceptAsker(call) });
  // A live connection is shown the room's latest messages; over REST they wait for the next poll.
  if (call.conn && u.conns.has(call.conn)) {
    const messages = await core.store.listMessages(name, {
      limit: core.config.historySize,
      now: core.clock.now(),
    });
    call.after.push({
      type: "history",
      chat: name,
      reason: "join",
      messages: messages.map(toFrame),
      has_more: messages.length > 0 && messages[0]!.seq > 1,
    });
    if (messages.length > 0) advance(core, u, name, messages.at(-1)!.seq);
  }
  return joined;
}

/**
 * Joins and leaves a user (not an admin) may make at once, and how fast the allowance comes
 * back. Each one is a notice to every online member of the room (an IRC JOIN or PART line), so a
 * client joining and leaving a room of thousands in a loop sent thousands of lines per turn; a
 * person, or an IRC client joining its channels at connect, stays well inside.
 */
export const MEMBERSHIP_BURST = 30;
const MEMBERSHIP: Allowance = { burst: MEMBERSHIP_BURST, refillMs: 2_000 };

/** Counts a join or leave against the user's allowance, or refuses it with when to try again. */
export function countMembershipChange(core: Core, u: UserState): void {
  if (u.record.admin) return;
  const now = core.clock.now();
  const tokens = tokensAt(MEMBERSHIP, core.roomMoves.get(u), now);
  if (tokens < 1) {
    const wait = Math.ceil(((1 - tokens) * MEMBERSHIP.refillMs) / 1000);
    throw new ChatError(
      "rate_limited",
      `You are joining and leaving rooms too fast: try again in ${wait} s`,
    );
  }
  core.roomMoves.set(u, { tokens: tokens - 1, at: now });
}

/** Forgets allowances that have come back in full (housekeeping). */
export function pruneMembershipChanges(core: Core): void {
  const now = core.clock.now();
  for (const [u, left] of core.roomMoves) {
    if (tokensAt(MEMBERSHIP, left, now) >= MEMBERSHIP.burst) core.roomMoves.delete(u);
  }
}

/** Creates a room (a private group with `owner`), counted against the creator's hourly cap. */
export async function createRoom(
  core: Core,
  u: UserState,
  name: string,
  group: { private?: true; owner?: string },
): Promise<RoomState> {
  countRoomCreation(core, u);
  const record: ChatRecord = {
    id: name,
    kind: "room",
    createdAt: core.clock.now(),
    createdBy: u.record.name,
    ...group,
  };
  const room = newRoomState(record);
  core.addRoom(room);
  await core.store.createChat(record);
  return room;
}

/**
 * Refuses a user (not an admin) over their room creations this hour (--rooms-per-hour), so
 * join + leave cannot fill the server with rooms; counts one otherwise.
 */
export function countRoomCreation(core: Core, u: UserState): void {
  const cap = core.config.roomsPerHour;
  if (u.record.admin || cap <= 0) return;
  const now = core.clock.now();
  const recent = u.roomsCreated.filter((t) => t > now - 3600_000);
  if (recent.length >= cap) {
    throw new ChatError(
      "rate_limited",
      `You can create ${cap} rooms an hour; the next one at ${
        new Date(recent[0]! + 3600_000).toISOString()
      }: join an existing room meanwhile (/rooms lists them)`,
    );
  }
  recent.push(now);
  u.roomsCreated = recent;
}

/** Makes `u` a member; the room's last N messages start out unread, as history on joining. */
export async function addMember(core: Core, u: UserState, room: RoomState): Promise<void> {
  const chat = room.record.id;
  if (core.roomsOf(u).length >= MAX_ROOMS_PER_USER) {
    throw new ChatError(
      "forbidden",
      `You are in ${MAX_ROOMS_PER_USER} rooms already: /leave one first`,
    );
  }
  const cursor = Math.max(0, (core.seqs.get(chat) ?? 0) - core.config.historySize);
  room.members.add(u);
  if (u.conns.size > 0) room.online.add(u);
  u.chats.add(chat);
  u.cursors?.set(chat, cursor);
  await core.store.addMember(chat, u.record.name, cursor);
}

/** `leave`: leaves a room (the current one by default); a group's ownership passes on. */
export async function leaveCommand(call: UserCall, frame: { room?: string; reason?: string }) {
  const { core, user: u } = call;
  const name = frame.room ?? call.view.room;
  if (name === GENERAL) {
    throw new ChatError(
      "forbidden",
      `Everyone stays in #${GENERAL}: /join another room to talk there instead`,
    );
  }
  const room = core.requireRoom(name, u);
  if (!room.members.has(u)) throw new ChatError("not_member", `You are not in #${name}`);
  countMembershipChange(core, u);
  const left = await removeFromRoom(core, u, room, call, frame.reason);
  // A public room nobody is in and nothing was ever said in is forgotten (its name is free).
  if (!room.record.private && room.members.size === 0 && (core.seqs.get(name) ?? 0) === 0) {
    core.removeRoom(room);
    await core.store.deleteChat(name);
  }
  if (room.record.private && room.record.owner === u.record.name) {
    // The group lives on: the first remaining member by name owns it.
    const heir = [...room.members].map((m) => m.record.name).sort()[0];
    if (heir !== undefined) {
      room.record = { ...room.record, owner: heir };
      await core.store.createChat(room.record);
      core.publish({ kind: "room", room: name, frame: core.system(`${heir} now owns #${name}`) });
    }
  }
  return left;
}

/**
 * Takes a user out of a room and tells their connections (each back in `general` if it was
 * there) and the room, with what they said as they left. Returns the `left` frame for the asker.
 */
export async function removeFromRoom(
  core: Core,
  u: UserState,
  room: RoomState,
  call?: Call,
  reason?: string,
): Promise<Extract<ServerFrame, { type: "left" }>> {
  const name = room.record.id;
  room.members.delete(u);
  room.online.delete(u);
  u.chats.delete(name);
  u.cursors?.delete(name);
  u.dirty.delete(name);
  await core.store.removeMember(name, u.record.name);
  if (call && call.view.room === name) call.view.room = GENERAL;
  const view = call?.view ?? { room: GENERAL, sessionView: false };
  const left = {
    type: "left" as const,
    room: name,
    mode: core.mode(view, u),
    timestamp: core.ts(),
  };
  // Each connection gets its own mode, after going back to general if it was in the room.
  core.publish({
    kind: "user",
    user: u.record.name,
    frame: left,
    view: { leftRoom: name },
    ...(call ? exceptAsker(call) : {}),
  });
  core.publish({
    kind: "room",
    room: name,
    frame: {
      ...core.system(`${u.record.name} left #${name}${reason ? ` (${reason})` : ""}`),
      event: "left",
      username: u.record.name,
      room: name,
      ...(reason ? { reason } : {}),
    },
  });
  return left;
}

/** The rooms a user may see: public ones, and the private groups they are in. */
function roomEntries(core: Core, u: UserState): RoomEntry[] {
  return [...core.rooms.values()]
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

/** `rooms`: every room the user may see, or a page of them by name (`after`, `limit`). */
export function roomsCommand(call: UserCall, frame: { after?: string; limit?: number } = {}) {
  const rooms = roomEntries(call.core, call.user);
  if (frame.after === undefined && frame.limit === undefined) {
    return { type: "rooms_list" as const, rooms, timestamp: call.core.ts() };
  }
  const page = pageByName(rooms.map((r) => r.name), frame.after, frame.limit);
  const shown = new Set(page.names);
  return {
    type: "rooms_list" as const,
    rooms: rooms.filter((r) => shown.has(r.name)),
    timestamp: call.core.ts(),
    next: page.next,
  };
}

/** `members`: who is in a room (a private group's only to its members). */
export function membersCommand(call: UserCall, frame: { room: string }) {
  const { core, user: u } = call;
  const name = frame.room;
  const room = core.requireRoom(name, u);
  return {
    type: "members" as const,
    room: name,
    members: [...room.members].map((m) => userEntry(core, m)).sort((a, b) =>
      a.username.localeCompare(b.username)
    ),
    timestamp: core.ts(),
  };
}
