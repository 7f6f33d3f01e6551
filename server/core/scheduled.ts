/**
 * Scheduled messages: stored with a due time, claimed atomically when due (so two processes
 * never send one twice), then posted with the rules of the moment.
 * @module
 */

import type { ScheduledEntry } from "../../protocol/frames.ts";
import type { ScheduledRecord } from "../store/store.ts";
import { connectionlessCall, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { loadCursors, whileBusy } from "./cursors.ts";
import { ChatError } from "./errors.ts";
import { iso } from "./format.ts";
import { messageCommand, privateCommand } from "./messages.ts";

const MAX_SCHEDULE_AHEAD_MS = 30 * 24 * 3600_000;
const MAX_SCHEDULED_PER_USER = 100;

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
      if (!core.requireRoom(room).members.has(u)) {
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

/** `cancel_scheduled`. */
export async function cancelScheduledCommand(call: UserCall, frame: { id: string }) {
  const { core, user: u } = call;
  const mine = (await core.store.listScheduledOf(u.record.name)).find((x) => x.id === frame.id);
  // Claiming it is what cancels it: if the scheduler got there first, it has been sent.
  const claimed = mine ? await core.store.claimScheduled(frame.id) : null;
  if (!claimed) {
    throw new ChatError(
      "no_such_message",
      `No pending scheduled message ${frame.id}: it was sent or cancelled`,
    );
  }
  return { type: "scheduled_cancelled" as const, id: frame.id };
}

/**
 * Sends every scheduled message that is due. Each is claimed with an atomic check first, so two
 * server processes on one store never send a message twice. Call a few times a second.
 */
export async function runScheduled(core: Core): Promise<number> {
  if (core.closing) return 0;
  let sent = 0;
  for (const rec of await core.store.listDueScheduled(core.clock.now(), 100)) {
    const claimed = await core.store.claimScheduled(rec.id);
    if (!claimed) continue;
    const u = core.users.get(claimed.user);
    if (!u) continue;
    const call = connectionlessCall(core, u, "");
    try {
      await whileBusy(core, u, async () => {
        await loadCursors(core, u);
        const pending = claimed.to !== null
          ? await privateCommand(call, { target_username: claimed.to, message: claimed.text })
          : await messageCommand(call, { room: claimed.room!, message: claimed.text });
        await pending.done;
      });
      sent++;
    } catch (error) {
      // Muted, over quota, no longer a member...: tell the author why it did not go out.
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
