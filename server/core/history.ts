/**
 * Reading: history pages, unread messages (polling moves the read cursor), unread counts and
 * the replies to a message.
 * @module
 */

import { MAX_PAGE } from "../../protocol/limits.ts";
import type { Call, UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { advance } from "./cursors.ts";
import { ChatError } from "./errors.ts";
import { dmId, toFrame } from "./format.ts";
import type { StoredMessage } from "../store/store.ts";
import type { UserState } from "./state.ts";

/** Turns a chat address (`room` or `@user`, default: where the asker is) into a chat id the user may read. */
function resolveChat(call: Call & { user: UserState }, address: string | undefined): string {
  const { core, user: u } = call;
  if (address === undefined) {
    const mode = core.mode(call.view, u);
    address = mode.kind === "session" ? "@" + mode.with : mode.room;
  }
  if (address.startsWith("@")) {
    const other = core.requireUser(address.slice(1));
    return dmId(u.record.name, other.record.name);
  }
  let room;
  try {
    room = core.requireRoom(address, u);
  } catch (error) {
    // A bare name that is no room (to this user) but is a user: the private chat with them, as a
    // client of the first API asks for it (`POST /chats/bob/messages`, `/history bob`).
    const other = core.findUser(address);
    if (other) return dmId(u.record.name, other.record.name);
    if (!(error instanceof ChatError) || error.code !== "no_such_room") throw error;
    throw new ChatError(
      "no_such_room",
      `There is no room #${address} and no user "${address}": /join ${address} creates the room`,
    );
  }
  if (!room.members.has(u)) {
    throw new ChatError(
      "not_member",
      `You are not in #${room.record.id}: /join ${room.record.id} to read it`,
    );
  }
  return room.record.id;
}

/**
 * The messages of a chat this user may see: all of them, but for a guest name taken again
 * after its grace period, whose private messages from before are not shown.
 */
export function visibleTo(
  u: UserState,
  chat: string,
  messages: StoredMessage[],
): StoredMessage[] {
  if (u.privateSince === 0 || !chat.startsWith("dm:")) return messages;
  return messages.filter((m) => m.ts >= u.privateSince);
}

/** Whether a user may read a chat: a member of the room, or one of the two ends of a private chat. */
export function canRead(u: UserState, chat: string): boolean {
  return u.chats.has(chat);
}

/** A place in a history page request: a message's seq, or its id. */
type Place = number | string;

/**
 * `history`: a page of a chat, before or after a message, or around one (the message and those
 * either side: a reply's parent, a search result), each given by its seq or its id.
 */
export async function historyCommand(
  call: UserCall,
  page: { chat?: string; before?: Place; after?: Place; around?: Place; limit?: number },
) {
  const { core, user: u } = call;
  const chat = resolveChat(call, page.chat);
  const limit = page.limit ?? core.config.historySize;
  const now = core.clock.now();
  const list = async (options: { limit: number; before?: number; after?: number }) =>
    visibleTo(u, chat, await core.store.listMessages(chat, { now, ...options }));
  let messages: StoredMessage[];
  let hasMore: boolean;
  if (page.around !== undefined) {
    const at = await seqOf(call, chat, page.around);
    const upTo = await list({ before: at + 1, limit: limit - Math.floor(limit / 2) });
    const later = limit > 1 ? await list({ after: at, limit: Math.floor(limit / 2) }) : [];
    messages = [...upTo, ...later];
    hasMore = messages.length > 0 && messages[0]!.seq > 1;
  } else if (page.after !== undefined) {
    messages = await list({ after: await seqOf(call, chat, page.after), limit });
    hasMore = messages.length === limit && messages.at(-1)!.seq < (core.seqs.get(chat) ?? 0);
  } else {
    const before = page.before === undefined ? undefined : await seqOf(call, chat, page.before);
    messages = await list({ limit, ...(before === undefined ? {} : { before }) });
    hasMore = messages.length > 0 && messages[0]!.seq > 1;
  }
  return {
    type: "history" as const,
    chat: core.address(u, chat),
    reason: "request" as const,
    messages: messages.map(toFrame),
    has_more: hasMore,
  };
}

/** A place's seq: a number is one; an id must name a message of this chat the user can see. */
async function seqOf(call: UserCall, chat: string, place: Place): Promise<number> {
  if (typeof place === "number") return place;
  const m = await call.core.store.getMessage(place);
  if (
    !m || m.chat !== chat || call.core.expired(m) || visibleTo(call.user, chat, [m]).length === 0
  ) {
    throw new ChatError(
      "no_such_message",
      `There is no message ${place} in this chat: give the id of one it shows, or its seq`,
    );
  }
  return m.seq;
}

/** `unread`: up to `limit` unread messages of a chat; the read cursor moves past them (polling). */
export async function unreadCommand(call: UserCall, frame: { chat: string; limit?: number }) {
  const { core, user: u } = call;
  const chat = resolveChat(call, frame.chat);
  const seq = core.seqs.get(chat) ?? 0;
  const from = u.cursors?.get(chat) ?? 0;
  const page = seq > from
    ? await core.store.listMessages(chat, {
      limit: frame.limit ?? core.config.historySize,
      after: from,
      now: core.clock.now(),
    })
    : [];
  if (page.length > 0) advance(core, u, chat, page.at(-1)!.seq);
  const messages = visibleTo(u, chat, page);
  return {
    type: "history" as const,
    chat: core.address(u, chat),
    reason: "unread" as const,
    messages: messages.map(toFrame),
    has_more: messages.length < seq - from,
    unread: Math.max(0, seq - from),
  };
}

/** Unread counts of the chats that have unread messages, by address. */
function unreadCounts(core: Core, u: UserState): Array<{ chat: string; unread: number }> {
  const out = [];
  for (const chat of u.chats) {
    const unread = (core.seqs.get(chat) ?? 0) - (u.cursors?.get(chat) ?? 0);
    if (unread > 0) out.push({ chat: core.address(u, chat), unread });
  }
  return out.sort((a, b) => a.chat.localeCompare(b.chat));
}

/** `unread_counts`. */
export function unreadCountsCommand(call: UserCall) {
  return {
    type: "unread_counts" as const,
    chats: unreadCounts(call.core, call.user),
    timestamp: call.core.ts(),
  };
}

/** `replies`: the answers to a message the user can read. */
export async function repliesCommand(call: UserCall, frame: { id: string }) {
  const { core, user: u } = call;
  const parent = await core.store.getMessage(frame.id);
  if (!parent || core.expired(parent) || !canRead(u, parent.chat)) {
    throw new ChatError("no_such_message", `There is no message ${frame.id} you can read`);
  }
  const now = core.clock.now();
  if (visibleTo(u, parent.chat, [parent]).length === 0) {
    throw new ChatError("no_such_message", `There is no message ${frame.id} you can read`);
  }
  const replies = visibleTo(
    u,
    parent.chat,
    (await core.store.listReplies(frame.id, MAX_PAGE)).filter((m) =>
      !core.expired(m) && m.ts <= now
    ),
  );
  return { type: "replies" as const, id: frame.id, messages: replies.map(toFrame) };
}
