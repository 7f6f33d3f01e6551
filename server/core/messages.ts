/**
 * Messages: to rooms and to users, with replies and files. A message gets the next sequence
 * number of its chat, is stored in the group commit, and only then published and acked.
 * @module
 */

import { charCount, type ServerFrame, utf8Length } from "../../protocol/frames.ts";
import { MAX_MESSAGE_CHARS } from "../../protocol/limits.ts";
import type { NewMessage } from "../store/store.ts";
import { connectionlessCall, Pending, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { advance, loadCursors, whileBusy } from "./cursors.ts";
import { addContact } from "./contacts.ts";
import { ChatError } from "./errors.ts";
import { dmId, iso } from "./format.ts";
import { checkCanSend } from "./moderation.ts";
import type { PostExtra, UserState } from "./state.ts";

/** The `ack` a sender gets once its message is stored. */
export type AckFrame = Extract<ServerFrame, { type: "ack" }>;

/** What a message carries besides text, resolved and checked. */
interface Attachments {
  notice?: true;
  replyTo?: { id: string; from: string; text: string };
  file?: PostExtra["file"];
  completes?: PostExtra["completes"];
}

/** `message`: to a room (the current one by default), or into the private session shown. */
export async function messageCommand(
  call: UserCall,
  frame: { message: string; room?: string; reply_to?: string; notice?: boolean },
  extra: PostExtra = extraOf(frame),
): Promise<Pending<AckFrame>> {
  const { core, user: u } = call;
  const mode = core.mode(call.view, u);
  if (frame.room === undefined && mode.kind === "session") {
    return await privateCommand(call, { ...frame, target_username: mode.with }, extra);
  }
  const room = core.requireRoom(frame.room ?? call.view.room, u);
  if (!room.members.has(u)) {
    throw new ChatError(
      "not_member",
      `You are not in #${room.record.id}: /join ${room.record.id} first`,
    );
  }
  const attach = await attachments(core, room.record.id, extra);
  return post(core, u, room.record.id, frame.message, undefined, attach, call.ip);
}

/** `private`: a message to one user, kept for them while they are offline. */
export async function privateCommand(
  call: UserCall,
  frame: { target_username: string; message: string; reply_to?: string; notice?: boolean },
  extra: PostExtra = extraOf(frame),
): Promise<Pending<AckFrame>> {
  const { core, user: u } = call;
  const to = core.requireUser(frame.target_username);
  if (to === u) throw new ChatError("bad_field", "You cannot send a private message to yourself");
  const chat = dmId(u.record.name, to.record.name);
  const attach = await attachments(core, chat, extra);
  if (!u.chats.has(chat) || !to.chats.has(chat)) {
    // The conversation is created with its first message; both ends remember it for unread replay.
    u.chats.add(chat);
    to.chats.add(chat);
    // Queued before the message itself, so the store commits them first (its writes are FIFO).
    core.background(
      Promise.all([
        core.store.createChat({
          id: chat,
          kind: "dm",
          createdAt: core.clock.now(),
          createdBy: u.record.name,
        }),
        core.store.addMember(chat, u.record.name, 0),
        core.store.addMember(chat, to.record.name, 0),
      ]),
      "create private chat",
    );
  }
  const pending = post(core, u, chat, frame.message, to, attach, call.ip);
  // A message from someone not in your contacts adds them, and the other way round.
  addContact(core, to, u);
  addContact(core, u, to);
  return pending;
}

/**
 * Posts a message for a user without a live connection (a file's announcement, a scheduled
 * message): to `to` privately, or to `room`; resolves with the ack once stored. The rules of
 * sending apply as on every wire.
 */
export async function postAs(
  core: Core,
  u: UserState,
  where: { to: string } | { room: string },
  message: string,
  options: { ip: string; extra: PostExtra },
): Promise<AckFrame> {
  const call = connectionlessCall(core, u, options.ip);
  return await whileBusy(core, u, async () => {
    await loadCursors(core, u);
    const pending = "to" in where
      ? await privateCommand(call, { target_username: where.to, message }, options.extra)
      : await messageCommand(call, { room: where.room, message }, options.extra);
    return await pending.done;
  });
}

function extraOf(frame: { reply_to?: string; notice?: boolean }): PostExtra {
  return {
    ...(frame.reply_to === undefined ? {} : { replyTo: frame.reply_to }),
    ...(frame.notice ? { notice: true } : {}),
  };
}

/** Resolves what a message carries besides text: the message it replies to (same chat, alive). */
async function attachments(core: Core, chat: string, extra: PostExtra): Promise<Attachments> {
  const out: Attachments = {};
  if (extra.notice) out.notice = true;
  if (extra.file) out.file = extra.file;
  if (extra.completes) out.completes = extra.completes;
  if (extra.replyTo !== undefined) {
    const parent = await core.store.getMessage(extra.replyTo);
    if (!parent || parent.chat !== chat || core.expired(parent)) {
      throw new ChatError(
        "no_such_message",
        `There is no message ${extra.replyTo} in this chat to reply to (it may have expired)`,
      );
    }
    out.replyTo = { id: parent.id, from: parent.from, text: parent.text.slice(0, 100) };
  }
  return out;
}

/** Assigns the next sequence number and stores the message; once stored, publishes it and acks. */
function post(
  core: Core,
  u: UserState,
  chat: string,
  text: string,
  to: UserState | undefined,
  attach: Attachments,
  ip: string,
): Pending<AckFrame> {
  if (charCount(text) > MAX_MESSAGE_CHARS) {
    throw new ChatError("too_long", `The message is longer than ${MAX_MESSAGE_CHARS} characters`);
  }
  const now = core.clock.now();
  checkCanSend(core, u, to !== undefined, now, { ip });
  // The store gives the sequence number as it commits (one counter for every node).
  const draft: NewMessage = {
    id: core.newId(now),
    chat,
    from: u.record.name,
    text,
    ts: now,
    ...(to ? { to: to.record.name } : {}),
    ...(attach.replyTo ? { replyTo: attach.replyTo } : {}),
    ...(attach.file ? { file: attach.file } : {}),
    ...(attach.notice ? { notice: true } : {}),
    ...(core.config.messageTtlMs > 0 ? { expiresAt: now + core.config.messageTtlMs } : {}),
  };
  const pending = new Pending<AckFrame>();
  const completes = attach.completes ? { completes: attach.completes } : {};
  const stored = core.store.appendMessage(draft, completes).then(
    (msg) => {
      const seq = msg.seq;
      countMessage(core, now);
      core.publish({ kind: "message", message: msg });
      // Every message received and sent, watched or not: who, where, how big (not the text:
      // the log is for running the server, and private messages stay private).
      core.log(
        "message",
        `${u.record.name} → ${to ? to.record.name : "#" + chat} (${utf8Length(text)} B${
          msg.file ? ", a file" : ""
        })`,
      );
      // The sender has read it, on whatever wire (REST senders are not in the fan-out), but a
      // cursor is one number: it may not jump over earlier messages the sender has not read.
      if ((u.cursors?.get(chat) ?? 0) === seq - 1) advance(core, u, chat, seq);
      pending.resolve({
        type: "ack",
        id: msg.id,
        seq,
        chat: core.address(u, chat),
        timestamp: iso(now),
        // The sender is told the recipient is not there (seed 004's "client not online").
        ...(to && !core.isOnline(to) ? { offline: true } : {}),
        // And that they are away, with what they said (IRC's RPL_AWAY).
        ...(to && to.away !== null ? { away: to.away } : {}),
      });
    },
    (error) => {
      core.onError(error, "append");
      pending.reject(
        new ChatError("not_stored", "Your message could not be stored: send it again"),
      );
    },
  );
  core.inflight.add(stored);
  void stored.finally(() => core.inflight.delete(stored));
  return pending;
}

function countMessage(core: Core, now: number): void {
  core.stats.messages++;
  const second = Math.floor(now / 1000);
  const bucket = core.minute[second % 60]!;
  if (bucket[0] !== second) {
    bucket[0] = second;
    bucket[1] = 0;
  }
  bucket[1]++;
}
