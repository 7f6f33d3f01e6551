/**
 * The first API's routes, at their exact paths: log in, status, send to general, send
 * privately, and poll a chat's unread messages (each returned once).
 * @module
 */

import { z } from "zod";
import { GENERAL } from "../../core/hub.ts";
import { bare, frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import { Ack, ChatAddress, MessageFrame, MessageText, Password, Username } from "./schemas.ts";

const tag = "basic";

/** The first API's routes. */
export const basicRoutes: RouteSpec[] = [
  route({
    method: "post",
    path: "/connect",
    tag,
    summary: "Log in, or register a new login, and get a token",
    body: z.strictObject({ login: Username, password: Password }),
    ok: {
      200: {
        description: "a token",
        schema: z.object({ token: z.string(), login: z.string(), expires_at: z.string() }),
      },
    },
    errors: [401, 403, 409, 429],
    async handle({ hub, body, ip, c }) {
      const s = await hub.login(body.login, body.password, ip);
      return c.json({
        token: s.token,
        login: s.username,
        expires_at: new Date(s.expiresAt).toISOString(),
      });
    },
  }),
  route({
    method: "get",
    path: "/status",
    tag,
    summary: "The user, their chats with members and unread counts, and who is online",
    auth: true,
    ok: {
      200: {
        description: "status",
        schema: z.object({
          user: z.object({ login: z.string(), registered: z.boolean() }),
          chats: z.array(z.object({
            name: z.string(),
            members: z.array(z.string()),
            member_count: z.number().int(),
            unread: z.number().int(),
          })),
          online: z.array(z.string()),
          online_count: z.number().int(),
          aliases: z.record(z.string(), z.string()),
        }),
      },
    },
    async handle({ hub, user, ip, c }) {
      const status = await hub.run(user, frame("status"), ip);
      const users = await hub.run(user, frame("users"), ip);
      return c.json({
        user: { login: status.username, registered: status.registered },
        chats: status.chats.map((ch) => ({
          name: ch.chat,
          members: ch.members,
          member_count: ch.member_count,
          unread: ch.unread,
        })),
        online: users.users,
        online_count: users.online_users,
        // The common chat is "general"; "main" names it too, as the first API's text did.
        aliases: { main: GENERAL },
      });
    },
  }),
  route({
    method: "post",
    path: "/send",
    tag,
    summary: "Send a message to general",
    auth: true,
    body: z.strictObject({ message: MessageText }),
    ok: { 201: { description: "stored", schema: Ack } },
    errors: [429, 503],
    async handle({ hub, user, ip, body, c }) {
      const ack = await hub.run(user, frame("message", { room: GENERAL, ...body }), ip);
      return c.json(bare(ack), 201);
    },
  }),
  route({
    method: "post",
    path: "/send_to",
    tag,
    summary: "Send a private message",
    auth: true,
    body: z.strictObject({ user_login: Username, message: MessageText }),
    ok: { 201: { description: "stored", schema: Ack } },
    errors: [404, 429, 503],
    async handle({ hub, user, ip, body, c }) {
      const f = frame("private", { target_username: body.user_login, message: body.message });
      return c.json(bare(await hub.run(user, f, ip)), 201);
    },
  }),
  route({
    method: "post",
    path: "/chats/{chat}/messages",
    tag,
    summary:
      'Unread messages of a chat ("main" is general; @name is a private chat), each returned once',
    auth: true,
    params: z.object({ chat: ChatAddress }),
    ok: {
      200: {
        description: "the unread messages, oldest first",
        schema: z.object({
          chat: z.string(),
          messages: z.array(MessageFrame),
          unread_left: z.number().int(),
        }),
      },
    },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const chat = params.chat === "main" ? GENERAL : params.chat;
      const h = await hub.run(user, frame("unread", { chat, limit: 20 }), ip);
      return c.json({
        chat: h.chat,
        messages: h.messages,
        unread_left: Math.max(0, (h.unread ?? 0) - h.messages.length),
      });
    },
  }),
];
