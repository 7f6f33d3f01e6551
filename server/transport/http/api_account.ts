/**
 * Your account: logging in and out, who you are, the users list and contacts.
 * @module
 */

import { z } from "zod";
import { ChatError } from "../../core/errors.ts";
import { bare, frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import {
  ContactsList,
  Limit,
  Password,
  Reason,
  Status,
  System,
  Token,
  UserEntry,
  Username,
  UsersList,
} from "./schemas.ts";

const UserParam = z.object({ user: Username });

/** Session, users and contacts routes. */
export const accountRoutes: RouteSpec[] = [
  route({
    method: "post",
    path: "/api/v1/session",
    tag: "session",
    summary: "Log in (or register an unclaimed name) and get a token",
    body: z.strictObject({ username: Username, password: Password }),
    ok: { 201: { description: "a token", schema: Token } },
    errors: [401, 403, 409, 429],
    async handle({ hub, body, ip, c }) {
      const s = await hub.login(body.username, body.password, ip);
      return c.json({
        token: s.token,
        username: s.username,
        expires_at: new Date(s.expiresAt).toISOString(),
      }, 201);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/session",
    tag: "session",
    summary: "Who you are: your status, chats with unread counts, quota",
    auth: true,
    ok: { 200: { description: "the status frame", schema: Status } },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("status"), ip));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/session",
    tag: "session",
    summary: "Log out: revoke this token",
    auth: true,
    ok: { 204: { description: "revoked" } },
    async handle({ hub, token, c }) {
      await hub.logout(token);
      return c.body(null, 204);
    },
  }),
  route({
    method: "get",
    path: "/api/v1/users",
    tag: "users",
    summary:
      "Users with online state: online first, at most 500; or every user a page at a time by name (`after`, `limit`; `next` continues); or only those named (`usernames`)",
    auth: true,
    query: z.object({
      after: Username.optional().meta({ description: "the `next` of the previous page" }),
      limit: Limit.optional().meta({ description: "1 to 200 users a page" }),
      usernames: z.string().max(4000).optional().meta({
        description: "only these users (those that exist): up to 100 names, comma-separated",
        example: "alice,bob",
      }),
    }),
    ok: { 200: { description: "the users_list frame", schema: UsersList } },
    errors: [413],
    async handle({ hub, user, ip, query, c }) {
      const { usernames, ...page } = query;
      const fields = usernames === undefined ? page : { ...page, usernames: usernames.split(",") };
      return c.json(await hub.run(user, frame("users", fields), ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/users/{user}",
    tag: "users",
    summary: "One user's online state",
    auth: true,
    params: UserParam,
    ok: { 200: { description: "the user", schema: UserEntry } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const list = await hub.run(user, frame("users", { username: params.user }), ip);
      const entry = list.all[0];
      if (!entry) throw new ChatError("no_such_user", `There is no user "${params.user}"`);
      return c.json(entry);
    },
  }),
  route({
    method: "put",
    path: "/api/v1/away",
    tag: "users",
    summary: "Say you are away, with a message others see (in user lists, and on writing to you)",
    auth: true,
    body: z.strictObject({ message: Reason }),
    ok: { 200: { description: "what you are now", schema: System } },
    async handle({ hub, user, ip, body, c }) {
      return c.json(bare(await hub.run(user, frame("away", { message: body.message }), ip)));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/away",
    tag: "users",
    summary: "Say you are back",
    auth: true,
    ok: { 200: { description: "what you are now", schema: System } },
    async handle({ hub, user, ip, c }) {
      return c.json(bare(await hub.run(user, frame("away"), ip)));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/contacts",
    tag: "contacts",
    summary: "Your contacts with online state",
    auth: true,
    ok: { 200: { description: "the contacts_list frame", schema: ContactsList } },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("contacts"), ip));
    },
  }),
  route({
    method: "put",
    path: "/api/v1/contacts/{user}",
    tag: "contacts",
    summary: "Add a contact",
    auth: true,
    params: UserParam,
    ok: { 200: { description: "the new list", schema: ContactsList } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("add_contact", { username: params.user }), ip));
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/contacts/{user}",
    tag: "contacts",
    summary: "Remove a contact",
    auth: true,
    params: UserParam,
    ok: { 200: { description: "the new list", schema: ContactsList } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("remove_contact", { username: params.user }), ip));
    },
  }),
];
