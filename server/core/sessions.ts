/**
 * Private sessions: one user asks another, who accepts or declines; while it lasts, both
 * users' plain lines go to each other. Each connection can show the session or its room.
 * @module
 */

import type { Mode, ServerFrame } from "../../protocol/frames.ts";
import { type Call, exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { checkCanSend } from "./moderation.ts";
import { GENERAL, own, type UserState } from "./state.ts";

/** The frame asking a user for a session. */
export function sessionRequestFrame(core: Core, from: UserState): ServerFrame {
  return {
    type: "session_request",
    from_username: from.record.name,
    message: `${from.record.name} wants to start a private session with you (y/n)`,
    timestamp: core.ts(),
  };
}

function requireLive(u: UserState): void {
  if (u.conns.size === 0) {
    throw new ChatError(
      "forbidden",
      "A private session needs a live connection: use TCP, /ws or /api/v1/events, not plain REST",
    );
  }
}

/** `session_request`: asks an online user for a private session. */
export function sessionRequestCommand(call: UserCall, frame: { target_username: string }) {
  const { core, user: u } = call;
  const to = core.requireUser(frame.target_username);
  const name = to.record.name;
  if (to === u) throw new ChatError("bad_field", "You cannot start a session with yourself");
  requireLive(u);
  if (!core.isOnline(to)) {
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
  // Asked already: one question on their screen (shown again when they log in), not one per try.
  if (u.requestsOut.has(to)) return core.system(`You already asked ${name}; waiting for an answer`);
  // A question on someone's screen is a private message of a kind: the same quota and mute.
  checkCanSend(core, u, true, core.clock.now(), { ip: call.ip });
  own(u, "requestsOut").add(to);
  own(to, "requestsIn").add(u);
  // Other nodes of a cluster hold the two users too (the answer may come through one of them).
  shareRequest(core, u, to, true);
  core.publish({ kind: "user", user: name, frame: sessionRequestFrame(core, u) });
  return core.system(`Session request sent to ${name}; waiting for an answer`);
}

type Outcome = Extract<
  ServerFrame,
  { type: "session_accepted" | "session_rejected" | "session_ended" }
>;

/** `session_response`: accepts or declines a session someone asked for. */
export function sessionResponseCommand(
  call: UserCall,
  frame: { target_username: string; accepted: boolean },
): Outcome {
  const { core, user: u } = call;
  const from = core.findUser(frame.target_username);
  if (!from || !u.requestsIn.has(from)) {
    throw new ChatError(
      "no_session_request",
      `${frame.target_username} has not asked you for a session`,
    );
  }
  if (frame.accepted) requireLive(u);
  own(u, "requestsIn").delete(from);
  own(from, "requestsOut").delete(u);
  shareRequest(core, from, u, false);
  if (frame.accepted && (u.session || from.session)) {
    throw new ChatError(
      "session_conflict",
      "One of you is already in another private session: /exit it first",
    );
  }
  const names = { from_username: from.record.name, to_username: u.record.name };
  if (!frame.accepted) {
    const message = `${from.record.name} and ${u.record.name}: private session declined`;
    return announce(core, call, [from, u], (mode) => ({
      type: "session_rejected",
      ...names,
      message,
      mode,
      timestamp: core.ts(),
    }));
  }
  u.session = from;
  from.session = u;
  core.publish({
    kind: "shared",
    change: { type: "session", user: u.record.name, with: from.record.name },
  });
  const message =
    `Private session between ${from.record.name} and ${u.record.name} started: /exit ends it`;
  return announce(core, call, [from, u], (mode) => ({
    type: "session_accepted",
    ...names,
    message,
    mode,
    timestamp: core.ts(),
  }), true);
}

/** `session_end`: ends the private session. */
export function sessionEndCommand(call: UserCall): Outcome {
  const u = call.user;
  if (!u.session) throw new ChatError("no_session_request", "You are not in a private session");
  return endSession(call.core, u, `${u.record.name} ended the private session`, call)!;
}

/** Ends `u`'s session, if any, telling both; returns the asker's frame when a call ended it. */
export function endSession(
  core: Core,
  u: UserState,
  why: string,
  call?: UserCall,
): Outcome | null {
  const other = u.session;
  if (!other) return null;
  u.session = null;
  other.session = null;
  core.publish({ kind: "shared", change: { type: "session", user: u.record.name, with: null } });
  return announce(core, call ?? null, [u, other], (mode) => ({
    type: "session_ended",
    from_username: u.record.name,
    to_username: other.record.name,
    message: why,
    mode,
    timestamp: core.ts(),
  }), false);
}

/**
 * Tells every connection of both users how a session went, each with its own mode (after
 * switching their view to the session, or back, when `session` says so); the asker's copy is
 * the answer.
 */
function announce(
  core: Core,
  call: Call | null,
  users: UserState[],
  make: (mode: Mode) => Outcome,
  session?: boolean,
): Outcome {
  // Delivery replaces this mode with each connection's own.
  const frame = make({ kind: "room", room: GENERAL });
  const view = session === undefined ? {} : { view: { session } };
  for (const x of users) {
    const except = call && x === call.user ? exceptAsker(call) : {};
    core.publish({ kind: "user", user: x.record.name, frame, ...view, ...except });
  }
  if (!call?.user) return frame;
  if (session !== undefined) call.view.sessionView = session;
  return make(core.mode(call.view, call.user));
}

/** Tells the other nodes of a cluster that a session request opened or closed. */
export function shareRequest(core: Core, from: UserState, to: UserState, open: boolean): void {
  core.publish({
    kind: "shared",
    change: { type: "session_request", from: from.record.name, to: to.record.name, open },
  });
}
