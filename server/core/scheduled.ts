/**
 * Scheduled messages: stored with a due time, claimed atomically when due (so two processes
 * never send one twice), then posted with the rules of the moment.
 * @module
 */

import type { ScheduledEntry } from "../../protocol/frames.ts";
import type { ScheduledRecord } from "../store/store.ts";
import type { UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { iso } from "./format.ts";
import { postAs } from "./messages.ts";
import { checkNotBanned } from "./moderation.ts";
import type { UserState } from "./state.ts";

const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 3600_000;
/** Pending scheduled messages one user may have. */
export const MAX_SCHEDULED_PER_USER = 100;

function entryOf(rec: ScheduledRecord): ScheduledEntry {
  return { id: rec.id, chat: rec.room ?? "@" + rec.to, message: rec.text, at: iso(rec.dueAt) };
}

/** `schedule`: a message to a room or a user, sent at `at`. */
export async function scheduleCommand(
  call: UserCall,
  frame: { message: string; at: string; room?: string; target_username?: string },
) {
  const { core, user: u } = call;
  const now = core.clock.now();
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
    const target = core.requireUser(frame.target_username);
    if (target === u) {
      throw new ChatError("bad_field", "You cannot send a private message to yourself");
    }
    to = target.record.name;
  } else {
    const mode = core.mode(call.view, u);
    if (frame.room === undefined && mode.kind === "session") to = mode.with;
    else {
      room = frame.room ?? call.view.room;
      if (!core.requireRoom(room, u).members.has(u)) {
        throw new ChatError("not_member", `You are not in #${room}: /join ${room} first`);
      }
    }
  }
  const pending = await core.store.listScheduledOf(u.record.name);
  if (pending.length >= MAX_SCHEDULED_PER_USER) {
    throw new ChatError(
      "forbidden",
      `You have ${pending.length} scheduled messages: cancel some first`,
    );
  }
  const record: ScheduledRecord = {
    id: core.newId(now),
    user: u.record.name,
    room,
    to,
    text: frame.message,
    dueAt,
    createdAt: now,
  };
  await core.store.putScheduled(record);
  return { type: "scheduled" as const, entry: entryOf(record) };
}

/** `scheduled`: the user's pending scheduled messages. */
export async function scheduledListCommand(call: UserCall) {
  const entries = (await call.core.store.listScheduledOf(call.user.record.name)).map(entryOf);
  return { type: "scheduled_list" as const, entries };
}

/** `cancel_scheduled`: removes a pending scheduled message, unless it is being sent. */
export async function cancelScheduledCommand(call: UserCall, frame: { id: string }) {
  const { core, user: u } = call;
  const mine = (await core.store.listScheduledOf(u.record.name)).some((x) => x.id === frame.id);
  const outcome = mine ? await core.store.removeScheduled(frame.id, core.clock.now()) : "missing";
  if (outcome === "sending") {
    throw new ChatError("no_such_message", `Scheduled message ${frame.id} is being sent right now`);
  }
  if (outcome === "missing") {
    throw new ChatError(
      "no_such_message",
      `No pending scheduled message ${frame.id}: it was sent or cancelled`,
    );
  }
  return { type: "scheduled_cancelled" as const, id: frame.id };
}

/**
 * Sends every scheduled message that is due. Each is claimed with an atomic check first (of two
 * processes on one store, one gets it) and its record is removed in the same atomic commit that
 * stores the message, so whatever stops the server, whenever, a due message is stored exactly
 * once: a claim left by a killed process goes stale and is taken over. The rules of the moment
 * apply (ban, mute, quota, membership). Call a few times a second.
 */
export async function runScheduled(core: Core): Promise<number> {
  let sent = 0;
  for (const rec of await core.store.listDueScheduled(core.clock.now(), 100)) {
    if (core.closing) break;
    const claimed = await core.store.claimScheduled(rec.id, core.instanceId, core.clock.now());
    if (!claimed) continue;
    const u = core.users.get(claimed.user);
    if (!u) {
      await core.store.removeScheduled(claimed.id, core.clock.now(), true);
      continue;
    }
    try {
      await sendScheduled(core, u, claimed);
      sent++;
    } catch (error) {
      // Banned, muted, over quota, no longer a member...: not sent, and the author is told why.
      await core.store.removeScheduled(claimed.id, core.clock.now(), true).catch(() => {});
      const why = error instanceof ChatError ? error.message : "a server error";
      core.publish({
        kind: "user",
        user: u.record.name,
        frame: {
          type: "error",
          code: error instanceof ChatError ? error.code : "internal",
          message: `Your scheduled message ${claimed.id} could not be sent: ${why}`,
        },
      });
      if (!(error instanceof ChatError)) core.onError(error, "scheduled message");
    }
  }
  return sent;
}

async function sendScheduled(core: Core, u: UserState, claimed: ScheduledRecord): Promise<void> {
  checkNotBanned(core, u);
  const where = claimed.to !== null ? { to: claimed.to } : { room: claimed.room! };
  await postAs(core, u, where, claimed.text, { ip: "", extra: { completes: claimed } });
}
