/**
 * Messages: room and private chats (read and send), unread counts and polling, replies,
 * deleting, and scheduled messages.
 * @module
 */

import { z } from "zod";
import { bare, frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import {
  Ack,
  ChatAddress,
  History,
  Limit,
  MessageDeleted,
  MessageFrame,
  MessageText,
  RoomName,
  ScheduledEntry,
  Seq,
  Ulid,
  UnreadCounts,
  Username,
} from "./schemas.ts";

/** A message, by its seq in the chat or by its id. */
const Place = z.union([Ulid, Seq]);
const Page = z.object({
  limit: Limit.optional().meta({ description: "1 to 200 messages (default: --history)" }),
  before: Place.optional().meta({ description: "only messages before this one (a seq or an id)" }),
  after: Place.optional().meta({ description: "only messages after this one (a seq or an id)" }),
  around: Place.optional().meta({
    description: "this message (a seq or an id) and those either side, half the page before",
  }),
});
const Post = z.strictObject({
  message: MessageText,
  reply_to: Ulid.optional().meta({ description: "the id of the message this one answers" }),
  notice: z.boolean().optional().meta({
    description: "a notice (IRC's NOTICE), which automatic clients such as bots never answer",
  }),
});
const RoomParam = z.object({ room: RoomName });
const UserParam = z.object({ user: Username });
const IdParam = z.object({ id: Ulid });

/** Message routes. */
export const messageRoutes: RouteSpec[] = [
  route({
    method: "get",
    path: "/api/v1/rooms/{room}/messages",
    tag: "messages",
    summary: "Messages of a room, oldest first, paged by seq",
    auth: true,
    params: RoomParam,
    query: Page,
    ok: { 200: { description: "the history frame", schema: History } },
    errors: [404],
    async handle({ hub, user, ip, params, query, c }) {
      return c.json(await hub.run(user, frame("history", { chat: params.room, ...query }), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/rooms/{room}/messages",
    tag: "messages",
    summary: "Send a message to a room you are in",
    auth: true,
    params: RoomParam,
    body: Post,
    ok: { 201: { description: "stored", schema: Ack } },
    errors: [404, 429, 503],
    async handle({ hub, user, ip, params, body, c }) {
      const ack = await hub.run(user, frame("message", { room: params.room, ...body }), ip);
      return c.json(bare(ack), 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/private/{user}/messages",
    tag: "messages",
    summary: "Your private chat with a user, oldest first, paged by seq",
    auth: true,
    params: UserParam,
    query: Page,
    ok: { 200: { description: "the history frame", schema: History } },
    errors: [404],
    async handle({ hub, user, ip, params, query, c }) {
      const f = frame("history", { chat: "@" + params.user, ...query });
      return c.json(await hub.run(user, f, ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/private/{user}/messages",
    tag: "messages",
    summary: "Send a private message (kept for the user if offline)",
    auth: true,
    params: UserParam,
    body: Post,
    ok: { 201: { description: "stored", schema: Ack } },
    errors: [404, 429, 503],
    async handle({ hub, user, ip, params, body, c }) {
      const f = frame("private", { target_username: params.user, ...body });
      return c.json(bare(await hub.run(user, f, ip)), 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/unread",
    tag: "messages",
    summary: "Unread counts per chat",
    auth: true,
    ok: { 200: { description: "the unread_counts frame", schema: UnreadCounts } },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("unread_counts"), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/chats/{chat}/read",
    tag: "messages",
    summary: "Unread messages of a chat (room or @user), moving your read position past them",
    auth: true,
    params: z.object({ chat: ChatAddress }),
    query: z.object({ limit: Limit.optional().meta({ description: "1 to 200 messages" }) }),
    ok: { 200: { description: "the history frame", schema: History } },
    errors: [404],
    async handle({ hub, user, ip, params, query, c }) {
      return c.json(await hub.run(user, frame("unread", { chat: params.chat, ...query }), ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/messages/{id}/replies",
    tag: "messages",
    summary: "The replies to a message",
    auth: true,
    params: IdParam,
    ok: {
      200: {
        description: "the replies frame",
        schema: z.object({
          type: z.literal("replies"),
          id: z.string(),
          messages: z.array(MessageFrame),
        }),
      },
    },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("replies", { id: params.id }), ip));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/messages/{id}",
    tag: "moderation",
    summary: "Delete a message (its author or an admin); everyone who can see it is told",
    auth: true,
    params: IdParam,
    ok: { 200: { description: "the message_deleted frame", schema: MessageDeleted } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("delete_message", { id: params.id }), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/scheduled",
    tag: "scheduled",
    summary: "Schedule a message for later (to `room`, or privately to `username`)",
    auth: true,
    body: z.strictObject({
      message: MessageText,
      at: z.string().meta({ format: "date-time", description: "when, e.g. 2026-12-01T18:30:00Z" }),
      room: RoomName.optional(),
      username: Username.optional(),
    }),
    ok: { 201: { description: "scheduled", schema: ScheduledEntry } },
    errors: [404],
    async handle({ hub, user, ip, body, c }) {
      const f = frame("schedule", {
        message: body.message,
        at: body.at,
        room: body.room,
        target_username: body.username,
      });
      return c.json((await hub.run(user, f, ip)).entry, 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/scheduled",
    tag: "scheduled",
    summary: "Your pending scheduled messages",
    auth: true,
    ok: {
      200: {
        description: "the scheduled_list frame",
        schema: z.object({ type: z.literal("scheduled_list"), entries: z.array(ScheduledEntry) }),
      },
    },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("scheduled"), ip));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/scheduled/{id}",
    tag: "scheduled",
    summary: "Cancel a scheduled message before it goes",
    auth: true,
    params: IdParam,
    ok: { 204: { description: "cancelled" } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      await hub.run(user, frame("cancel_scheduled", { id: params.id }), ip);
      return c.body(null, 204);
    },
  }),
];
