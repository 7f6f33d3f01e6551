/**
 * Rooms and private groups: listing, creating, joining and leaving rooms, members, and a
 * group owner's invites, links, join requests and removals.
 * @module
 */

import { z } from "zod";
import { bare, frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import {
  Joined,
  Left,
  Limit,
  Link,
  LinkToken,
  Members,
  Reason,
  RoomName,
  RoomsList,
  System,
  Username,
} from "./schemas.ts";

const RoomParam = z.object({ room: RoomName });
const RoomUser = z.object({ room: RoomName, user: Username });

/** Room and group routes. */
export const roomRoutes: RouteSpec[] = [
  route({
    method: "get",
    path: "/api/v1/rooms",
    tag: "rooms",
    summary:
      "Rooms with member and online counts (private groups only to their members); a page at a time with `after`/`limit` (`next` continues)",
    auth: true,
    query: z.object({
      after: RoomName.optional().meta({ description: "the `next` of the previous page" }),
      limit: Limit.optional().meta({ description: "1 to 200 rooms a page" }),
    }),
    ok: { 200: { description: "the rooms_list frame", schema: RoomsList } },
    async handle({ hub, user, ip, query, c }) {
      return c.json(await hub.run(user, frame("rooms", query), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/rooms",
    tag: "rooms",
    summary: "Create a room and join it (201), or join an existing one (200)",
    auth: true,
    body: z.strictObject({ name: RoomName }),
    ok: {
      201: { description: "created and joined", schema: Joined },
      200: { description: "joined an existing room", schema: Joined },
    },
    async handle({ hub, user, ip, body, c }) {
      const joined = await hub.run(user, frame("join", { room: body.name }), ip);
      return c.json(joined, joined.created ? 201 : 200);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/rooms/{room}/join",
    tag: "rooms",
    summary: "Join a room (a public one is created if new)",
    auth: true,
    params: RoomParam,
    ok: { 200: { description: "the joined frame", schema: Joined } },
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("join", { room: params.room }), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/rooms/{room}/leave",
    tag: "rooms",
    summary: "Leave a room (everyone stays in general); the reason, if any, is shown to the room",
    auth: true,
    params: RoomParam,
    body: z.strictObject({ reason: Reason.optional() }),
    bodyOptional: true,
    ok: { 200: { description: "the left frame", schema: Left } },
    errors: [404],
    async handle({ hub, user, ip, params, body, c }) {
      const f = frame("leave", { room: params.room, reason: body.reason });
      return c.json(await hub.run(user, f, ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/rooms/{room}/members",
    tag: "rooms",
    summary: "Members of a room with online state",
    auth: true,
    params: RoomParam,
    ok: { 200: { description: "the members frame", schema: Members } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(await hub.run(user, frame("members", { room: params.room }), ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/groups",
    tag: "groups",
    summary: "Create a private group chat (you own it)",
    auth: true,
    body: z.strictObject({ name: RoomName }),
    ok: { 201: { description: "the joined frame", schema: Joined } },
    errors: [409],
    async handle({ hub, user, ip, body, c }) {
      return c.json(await hub.run(user, frame("create_group", { room: body.name }), ip), 201);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/groups/{room}/invites",
    tag: "groups",
    summary: "Invite a user to your group (they accept or decline)",
    auth: true,
    params: RoomParam,
    body: z.strictObject({ username: Username }),
    ok: { 201: { description: "invited", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, body, c }) {
      const f = frame("invite", { room: params.room, username: body.username });
      return c.json(bare(await hub.run(user, f, ip)), 201);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/invites/{room}/accept",
    tag: "groups",
    summary: "Accept an invite (you join the group)",
    auth: true,
    params: RoomParam,
    ok: { 200: { description: "the joined frame", schema: Joined } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const f = frame("invite_response", { room: params.room, accepted: true });
      return c.json(await hub.run(user, f, ip));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/invites/{room}/decline",
    tag: "groups",
    summary: "Decline an invite",
    auth: true,
    params: RoomParam,
    ok: { 200: { description: "declined", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const f = frame("invite_response", { room: params.room, accepted: false });
      const answer = await hub.run(user, f, ip);
      return c.json(answer.type === "system" ? bare(answer) : answer);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/groups/{room}/links",
    tag: "groups",
    summary: "Make an invite link (a token); whoever uses it asks you to let them in",
    auth: true,
    params: RoomParam,
    ok: { 201: { description: "the link", schema: Link } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      return c.json(
        bare(await hub.run(user, frame("create_link", { room: params.room }), ip)),
        201,
      );
    },
  }),
  route({
    method: "delete",
    path: "/api/v1/groups/{room}/links/{token}",
    tag: "groups",
    summary: "Revoke an invite link",
    auth: true,
    params: z.object({ room: RoomName, token: LinkToken }),
    ok: { 200: { description: "revoked", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const f = frame("revoke_link", { room: params.room, token: params.token });
      return c.json(bare(await hub.run(user, f, ip)));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/links/{token}/join",
    tag: "groups",
    summary: "Use an invite link: asks the owner (202), or joins if you are already a member (200)",
    auth: true,
    params: z.object({ token: LinkToken }),
    ok: {
      200: { description: "the joined frame", schema: Joined },
      202: { description: "asked the owner", schema: System },
    },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const answer = await hub.run(user, frame("join_link", { token: params.token }), ip);
      return answer.type === "joined" ? c.json(answer) : c.json(bare(answer), 202);
    },
  }),
  ...(["approve", "refuse"] as const).map((what) =>
    route({
      method: "post",
      path: `/api/v1/groups/{room}/requests/{user}/${what}`,
      tag: "groups",
      summary: `${what === "approve" ? "Let in" : "Refuse"} someone who asked to join with a link`,
      auth: true,
      params: RoomUser,
      ok: { 200: { description: "done", schema: System } },
      errors: [404],
      async handle({ hub, user, ip, params, c }) {
        const f = frame("join_decision", {
          room: params.room,
          username: params.user,
          approved: what === "approve",
        });
        return c.json(bare(await hub.run(user, f, ip)));
      },
    })
  ),
  route({
    method: "delete",
    path: "/api/v1/groups/{room}/members/{user}",
    tag: "groups",
    summary: "Remove a member from your group",
    auth: true,
    params: RoomUser,
    ok: { 200: { description: "removed", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, c }) {
      const f = frame("remove_member", { room: params.room, username: params.user });
      return c.json(bare(await hub.run(user, f, ip)));
    },
  }),
];
