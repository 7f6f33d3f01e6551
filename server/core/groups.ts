/**
 * Private groups: rooms only members see, with an owner who invites, makes invite links,
 * decides on join requests and removes members.
 * @module
 */

import type { ServerFrame } from "../../protocol/frames.ts";
import type { UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { randomToken } from "./format.ts";
import { checkCanSend } from "./moderation.ts";
import { addMember, createRoom, joinCommand, type JoinedFrame, removeFromRoom } from "./rooms.ts";
import { GENERAL, own, type RoomState, type UserState } from "./state.ts";

type SystemFrame = Extract<ServerFrame, { type: "system" }>;

/** The frame inviting a user to a group. */
export function inviteFrame(core: Core, room: string, from: string): ServerFrame {
  return { type: "invite", room, from_username: from, timestamp: core.ts() };
}

/** The frame telling an owner that someone asked to join through a link. */
export function joinRequestFrame(core: Core, room: string, username: string): ServerFrame {
  return { type: "join_request", room, username, timestamp: core.ts() };
}

function requireOwner(core: Core, u: UserState, name: string): RoomState {
  const room = core.requireRoom(name, u);
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

/** `create_group`: a new private group owned by the asker, who is its first member. */
export async function createGroupCommand(call: UserCall, frame: { room: string }) {
  const { core, user: u } = call;
  const name = frame.room;
  const existing = core.findRoom(name);
  if (existing) {
    const like = existing.record.id === name
      ? "exists already"
      : `looks like #${existing.record.id}`;
    throw new ChatError("name_taken", `#${name} ${like}: pick another name`);
  }
  const room = await createRoom(core, u, name, { private: true, owner: u.record.name });
  // The owner is its first member; joinCommand then finds them in and says the room was created.
  await addMember(core, u, room);
  return await joinCommand(call, { room: name }, true);
}

/** `invite`: the owner invites a user. */
export async function inviteCommand(call: UserCall, frame: { room: string; username: string }) {
  const { core, user: u } = call;
  const name = frame.room;
  const room = requireOwner(core, u, name);
  const target = core.requireUser(frame.username);
  if (room.members.has(target)) {
    throw new ChatError("bad_field", `${target.record.name} is already in #${name}`);
  }
  // Invited already: one invite waits for them (shown again when they log in), not one per try.
  if (target.invites.has(name)) {
    return core.system(
      `${target.record.name} is invited to #${name} already; waiting for an answer`,
    );
  }
  // An invite is a notice on someone's screen: it counts as a private message does.
  checkCanSend(core, u, true, core.clock.now(), { ip: call.ip });
  own(target, "invites").set(name, u.record.name);
  await core.store.setInvite(name, target.record.name, {
    from: u.record.name,
    at: core.clock.now(),
  });
  core.publish({
    kind: "user",
    user: target.record.name,
    frame: inviteFrame(core, name, u.record.name),
  });
  return core.system(`Invited ${target.record.name} to #${name}`);
}

/** `invite_response`: accepts (joins) or declines an invite. */
export async function inviteResponseCommand(
  call: UserCall,
  frame: { room: string; accepted: boolean },
): Promise<JoinedFrame | SystemFrame> {
  const { core, user: u } = call;
  const name = frame.room;
  const from = u.invites.get(name);
  if (from === undefined) {
    throw new ChatError("no_session_request", `Nobody has invited you to #${name}`);
  }
  // Looked up while the invite still lets the user see the group.
  const room = frame.accepted ? core.requireRoom(name, u) : null;
  if (u.invites.has(name)) own(u, "invites").delete(name);
  await core.store.setInvite(name, u.record.name, null);
  if (!room) {
    if (core.users.has(from)) {
      core.publish({
        kind: "user",
        user: from,
        frame: core.system(`${u.record.name} declined your invite to #${name}`),
      });
    }
    return core.system(`You declined the invite to #${name}`);
  }
  if (!room.members.has(u)) await addMember(core, u, room);
  return await joinCommand(call, { room: name });
}

/** `create_link`: an invite link; whoever uses it asks the owner to let them in. */
export async function createLinkCommand(call: UserCall, frame: { room: string }) {
  const { core, user: u } = call;
  requireOwner(core, u, frame.room);
  const token = randomToken().slice(0, 22);
  const link = { room: frame.room, by: u.record.name, at: core.clock.now() };
  core.links.set(token, link);
  await core.store.setLink(token, link);
  return { type: "link" as const, room: frame.room, token, timestamp: core.ts() };
}

/** `revoke_link`. */
export async function revokeLinkCommand(call: UserCall, frame: { room: string; token: string }) {
  const { core, user: u } = call;
  const { room: name, token } = frame;
  requireOwner(core, u, name);
  if (core.links.get(token)?.room !== name) {
    throw new ChatError("no_such_message", `#${name} has no invite link ${token}`);
  }
  core.links.delete(token);
  await core.store.setLink(token, null);
  return core.system(`The invite link ${token} of #${name} no longer works`);
}

/** `join_link`: asks to join through a link (members just join). */
export async function joinLinkCommand(
  call: UserCall,
  frame: { token: string },
): Promise<JoinedFrame | SystemFrame> {
  const { core, user: u } = call;
  const link = core.links.get(frame.token);
  const room = link ? core.rooms.get(link.room) : undefined;
  if (!link || !room) {
    throw new ChatError("no_such_room", "That invite link does not work (revoked, or mistyped)");
  }
  if (room.members.has(u)) return await joinCommand(call, { room: link.room });
  const asked = `Asked the owner of #${link.room} to let you in; you will be told`;
  // Asked already: the owner has the question (and sees it again at login), once.
  if (room.requests.has(u.record.name)) return core.system(asked);
  // A question on the owner's screen counts as a private message does (guests per address too).
  checkCanSend(core, u, true, core.clock.now(), { ip: call.ip });
  // A link only asks: the owner decides.
  room.requests.set(u.record.name, core.clock.now());
  await core.store.setJoinRequest(link.room, u.record.name, { at: core.clock.now() });
  const owner = room.record.owner;
  if (owner !== undefined && core.users.has(owner)) {
    core.publish({
      kind: "user",
      user: owner,
      frame: joinRequestFrame(core, link.room, u.record.name),
    });
  }
  return core.system(asked);
}

/** `join_decision`: the owner lets a requester in, or refuses. */
export async function joinDecisionCommand(
  call: UserCall,
  frame: { room: string; username: string; approved: boolean },
) {
  const { core, user: u } = call;
  const { room: name, approved } = frame;
  const room = requireOwner(core, u, name);
  const target = core.findUser(frame.username);
  if (!target || !room.requests.has(target.record.name)) {
    throw new ChatError("no_session_request", `${frame.username} has not asked to join #${name}`);
  }
  const who = target.record.name;
  room.requests.delete(who);
  await core.store.setJoinRequest(name, who, null);
  if (approved) {
    await addMember(core, target, room);
    core.publish({
      kind: "user",
      user: who,
      frame: {
        type: "joined",
        room: name,
        created: false,
        mode: { kind: "room", room: GENERAL },
        timestamp: core.ts(),
      },
    });
    core.publish({
      kind: "room",
      room: name,
      frame: {
        ...core.system(`${who} joined #${name}`),
        event: "joined",
        username: who,
        room: name,
      },
      except: who,
    });
  } else {
    core.publish({
      kind: "user",
      user: who,
      frame: core.system(`Your request to join #${name} was refused`),
    });
  }
  return core.system(
    `${approved ? "Let" : "Refused"} ${who} ${approved ? "into" : "for"} #${name}`,
  );
}

/** `remove_member`: the owner removes someone from the group. */
export async function removeMemberCommand(
  call: UserCall,
  frame: { room: string; username: string },
) {
  const { core, user: u } = call;
  const name = frame.room;
  requireOwner(core, u, name);
  const target = core.requireUser(frame.username);
  if (target === u) {
    throw new ChatError("bad_field", "You own the group: to go, /leave it (ownership passes on)");
  }
  const room = core.requireRoom(name, u);
  if (!room.members.has(target)) {
    throw new ChatError("not_member", `${target.record.name} is not in #${name}`);
  }
  await removeFromRoom(core, target, room);
  core.publish({
    kind: "user",
    user: target.record.name,
    frame: core.system(`${u.record.name} removed you from #${name}`),
  });
  return core.system(`Removed ${target.record.name} from #${name}`);
}
