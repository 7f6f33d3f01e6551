/**
 * A connection joins its user: the welcome, the replay of history and unread messages (live
 * deliveries held back meanwhile), and going online and offline.
 * @module
 */

import { MAX_UNREAD_REPLAY } from "../../protocol/limits.ts";
import type { Call } from "./call.ts";
import type { Core } from "./core.ts";
import { setAway } from "./away.ts";
import { queueIdleGuest } from "./guests.ts";
import { ChatError } from "./errors.ts";
import { advance, flushCursorsOf, loadCursors, whileBusy } from "./cursors.ts";
import { toFrame } from "./format.ts";
import { visibleTo } from "./history.ts";
import { inviteFrame, joinRequestFrame } from "./groups.ts";
import { noticePresence } from "./presence_notices.ts";
import { addMember } from "./rooms.ts";
import { endSession, sessionRequestFrame, shareRequest } from "./sessions.ts";
import { type Conn, GENERAL, own, type UserState } from "./state.ts";

/** Makes the asking connection one of `u`'s: welcome, replay, then what arrived meanwhile. */
/**
 * Logs a connection in as `u`. `unique` refuses a guest name another connection (here or on
 * another node) is using, checked where the connection is added so two at once cannot both pass:
 * IRC asks for it, as a nick there belongs to one connection.
 */
export async function attach(
  call: Call,
  u: UserState,
  since: string | undefined,
  unique = false,
): Promise<void> {
  const { core, conn, reply } = call;
  if (!conn || !reply) throw new TypeError("attach needs a live connection");
  if (conn.closed) return;
  await whileBusy(core, u, async () => {
    const first = u.conns.size === 0;
    await loadCursors(core, u);
    if (conn.closed) return;
    const guest = u.record.passwordHash === null;
    // A guest name left alone past the grace period starts afresh: whoever takes it now does
    // not get the private messages of whoever had it before.
    const now = core.clock.now();
    if (
      guest && first && u.record.lastSeen !== undefined &&
      now - u.record.lastSeen > core.config.guestGraceMs
    ) {
      u.privateSince = now;
    }
    if (!u.chats.has(GENERAL)) await addMember(core, u, core.general);
    if (conn.closed) return;
    if (unique && guest && (u.conns.size > 0 || core.presence.elsewhere(u.record.name))) {
      throw new ChatError(
        "name_taken",
        `${u.record.name} is in use by another connection: pick another name (or register this ` +
          "one with a password, which may be used from several connections at once)",
      );
    }
    conn.user = u;
    // From here the connection is live; what arrives during the replay waits until after it.
    conn.held = [];
    u.conns.add(conn);
    conn.sessionView = u.session !== null;
    if (first) goOnline(core, u);
    touch(core, u, conn.peer.ip);
    core.log(
      "login",
      `${u.record.name} logged in over ${conn.peer.transport} from ${conn.peer.ip || "?"}`,
    );
    reply.send({
      type: "welcome",
      username: u.record.name,
      registered: u.record.passwordHash !== null,
      admin: u.record.admin,
      mode: core.mode(conn, u),
      rooms: core.roomsOf(u),
      online_users: core.onlineCount(),
      timestamp: core.ts(),
    });
    // A guest is told, in the welcome, what a guest name is and how to make it theirs.
    const unprotected = guest
      ? ` ${u.record.name} is a guest name: anyone may log in with it and read its private ` +
        "messages. /register PASSWORD claims it for you."
      : "";
    core.sendTo(conn, core.system(`Welcome to the chat, ${u.record.name}!${unprotected}`));
    if (guest) {
      if (!first) {
        core.publish({
          kind: "user",
          user: u.record.name,
          frame: core.system(
            `Another connection now uses your guest name ${u.record.name} (over ` +
              `${conn.peer.transport} from ${conn.peer.ip || "somewhere"}). ` +
              "/register PASSWORD claims the name if that is not you.",
          ),
          exceptConn: conn.id,
        });
      }
    }
    try {
      if (since === undefined) await replay(core, conn, u, first);
      else await resume(core, conn, u, since);
      for (const from of u.requestsIn) core.sendTo(conn, sessionRequestFrame(core, from));
      for (const [room, from] of u.invites) core.sendTo(conn, inviteFrame(core, room, from));
      for (const room of core.rooms.values()) {
        if (room.record.owner !== u.record.name) continue;
        for (const who of room.requests.keys()) {
          core.sendTo(conn, joinRequestFrame(core, room.record.id, who));
        }
      }
    } finally {
      const held = conn.held;
      conn.held = null;
      for (const out of held) if (!conn.closed) conn.peer.send(out);
    }
  });
}

/** Sends the history of `general` and, to a user coming online, every unread message. */
async function replay(core: Core, conn: Conn, u: UserState, first: boolean): Promise<void> {
  const cursors = u.cursors!;
  const last = core.seqs.get(GENERAL) ?? 0;
  const cursor = cursors.get(GENERAL) ?? last;
  const unread = first ? Math.max(0, last - cursor) : 0;
  const count = Math.min(Math.max(core.config.historySize, unread), MAX_UNREAD_REPLAY);
  const general = await core.store.listMessages(GENERAL, { limit: count, now: core.clock.now() });
  core.sendTo(conn, {
    type: "history",
    chat: GENERAL,
    reason: "join",
    messages: general.map(toFrame),
    has_more: general.length > 0 && general[0]!.seq > 1,
    ...(unread > 0 ? { unread } : {}),
  });
  if (first && last > cursor) advance(core, u, GENERAL, last);
  if (!first) return;
  for (const chat of [...u.chats]) {
    if (chat === GENERAL) continue;
    const seq = core.seqs.get(chat) ?? 0;
    const from = cursors.get(chat) ?? 0;
    if (seq <= from) continue;
    const page = await core.store.listMessages(chat, {
      now: core.clock.now(),
      limit: MAX_UNREAD_REPLAY,
      after: from,
    });
    if (page.length === 0) continue;
    const messages = visibleTo(u, chat, page);
    // Not for this guest's eyes (the name was taken again): read, but not shown.
    if (messages.length === 0) {
      advance(core, u, chat, page.at(-1)!.seq);
      continue;
    }
    core.sendTo(conn, {
      type: "history",
      chat: core.address(u, chat),
      reason: "unread",
      messages: messages.map(toFrame),
      has_more: messages.length < seq - from,
      unread: seq - from,
    });
    advance(core, u, chat, messages.at(-1)!.seq);
  }
}

/** Sends every message of the user's chats newer than `since` (a message id): a client resuming a stream. */
async function resume(core: Core, conn: Conn, u: UserState, since: string): Promise<void> {
  for (const chat of [...u.chats]) {
    const page = await core.store.listMessagesSinceId(
      chat,
      since,
      MAX_UNREAD_REPLAY,
      core.clock.now(),
    );
    const messages = visibleTo(u, chat, page);
    if (messages.length === 0) continue;
    core.sendTo(conn, {
      type: "history",
      chat: core.address(u, chat),
      reason: "resume",
      messages: messages.map(toFrame),
      has_more: messages.length === MAX_UNREAD_REPLAY,
    });
    advance(core, u, chat, messages.at(-1)!.seq);
  }
}

function goOnline(core: Core, u: UserState): void {
  core.onlineUsers++;
  for (const chat of u.chats) core.rooms.get(chat)?.online.add(u);
  const already = core.presence.elsewhere(u.record.name);
  core.publish({ kind: "presence", user: u.record.name, online: true });
  // Online on another node already (a second device): the others knew.
  if (already) return;
  noticePresence(core, u, true);
}

/** Forgets a connection; the last connection of a user takes them offline. */
export function detach(core: Core, conn: Conn, farewell?: string): void {
  if (conn.closed) return;
  conn.closed = true;
  core.conns.delete(conn.id);
  core.serviceLog.unsubscribe(conn);
  const u = conn.user;
  if (!u) return;
  core.log("disconnect", `${u.record.name} disconnected (${conn.peer.transport})`);
  u.conns.delete(conn);
  if (u.conns.size === 0) goOffline(core, u, farewell ?? conn.farewell);
}

/**
 * `quit`: the connection says goodbye and closes; what the user said goes to the others as they
 * leave (when it was their last connection). A REST request has no connection to end.
 */
export function quitCommand(call: Call, frame: { reason?: string }): void {
  const { conn, reply } = call;
  if (!conn || !reply) throw new ChatError("bad_frame", "quit ends a live connection (TCP or /ws)");
  if (frame.reason !== undefined) conn.farewell = frame.reason;
  // Sent before the close, which takes nothing more after what is queued.
  reply.send({ type: "bye", reason: frame.reason ? `You quit: ${frame.reason}` : "You quit" });
  conn.peer.close("quit");
}

function goOffline(core: Core, u: UserState, farewell: string | undefined): void {
  core.onlineUsers--;
  for (const chat of u.chats) core.rooms.get(chat)?.online.delete(u);
  core.publish({ kind: "presence", user: u.record.name, online: false });
  // Still online on another node of a cluster: the session, requests and away live on there.
  if (!core.presence.elsewhere(u.record.name)) {
    dropSessionState(core, u);
    setAway(core, u, null);
  }
  // Still online on another node: nobody is told they left.
  if (!core.presence.elsewhere(u.record.name)) noticePresence(core, u, false, farewell);
  touch(core, u, u.record.lastIp ?? "");
  queueIdleGuest(core, u);
  // The cache stays: housekeeping() evicts it once the user has been idle for a while.
  if (!core.closing) core.background(flushCursorsOf(core, [u]), "save cursors");
}

/** Records when and from where a user was last seen. */
function touch(core: Core, u: UserState, ip: string): void {
  u.record = { ...u.record, lastSeen: core.clock.now(), ...(ip ? { lastIp: ip } : {}) };
  // After close() the store may be gone: connections closing then change nothing durable.
  if (core.closing) return;
  core.background(core.store.updateUser(u.record), "save last seen");
}

/** Ends a user's session and drops their session requests (they are offline everywhere). */
export function dropSessionState(core: Core, u: UserState): void {
  if (u.session) endSession(core, u, `${u.record.name} went offline`);
  for (const other of u.requestsIn) {
    own(other, "requestsOut").delete(u);
    shareRequest(core, other, u, false);
  }
  for (const other of u.requestsOut) {
    own(other, "requestsIn").delete(u);
    shareRequest(core, u, other, false);
  }
  if (u.requestsIn.size > 0) own(u, "requestsIn").clear();
  if (u.requestsOut.size > 0) own(u, "requestsOut").clear();
}
