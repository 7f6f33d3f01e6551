/**
 * Reports, and the admin routes: accounts, kick, mute, ban, connections, reports, audit.
 * Admin rights are checked by the core's command table, for every wire alike.
 * @module
 */

import { z } from "zod";
import { bare, frame } from "./context.ts";
import { route, type RouteSpec } from "./route.ts";
import {
  AuditLog,
  ClientsList,
  ConnectionsList,
  Limit,
  Minutes,
  Password,
  Reason,
  ReportsList,
  System,
  Ulid,
  Username,
} from "./schemas.ts";

const UserParam = z.object({ user: Username });
const tag = "admin";

/** Report and admin routes. */
export const moderationRoutes: RouteSpec[] = [
  route({
    method: "post",
    path: "/api/v1/users/{user}/report",
    tag: "moderation",
    summary:
      "Report a user for abuse (reason optional; the body may be left out); enough reports mute them",
    auth: true,
    params: UserParam,
    body: z.strictObject({ reason: Reason.optional() }),
    bodyOptional: true,
    ok: { 200: { description: "reported", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, body, c }) {
      const f = frame("report", { username: params.user, reason: body.reason });
      return c.json(bare(await hub.run(user, f, ip)));
    },
  }),
  route({
    method: "post",
    path: "/api/v1/admin/users",
    tag,
    summary: "Create an account (admins; works with --registration closed)",
    auth: true,
    body: z.strictObject({ username: Username, password: Password, admin: z.boolean().optional() }),
    ok: { 201: { description: "created", schema: System } },
    errors: [409],
    async handle({ hub, user, ip, body, c }) {
      return c.json(bare(await hub.run(user, frame("create_user", body), ip)), 201);
    },
  }),
  route({
    method: "post",
    path: "/api/v1/admin/users/{user}/kick",
    tag,
    summary: "Close every connection of a user",
    auth: true,
    params: UserParam,
    body: z.strictObject({ reason: Reason.optional() }),
    bodyOptional: true,
    ok: { 200: { description: "kicked", schema: System } },
    errors: [404],
    async handle({ hub, user, ip, params, body, c }) {
      return c.json(
        bare(await hub.run(user, frame("kick", { username: params.user, ...body }), ip)),
      );
    },
  }),
  ...(["mute", "ban"] as const).map((what) =>
    route({
      method: "post",
      path: `/api/v1/admin/users/{user}/${what}`,
      tag,
      summary: what === "mute"
        ? "Mute a user (default --mute-for; `minutes` sets it)"
        : "Ban a user (for good, or for `minutes`); their tokens are revoked",
      auth: true,
      params: UserParam,
      body: z.strictObject({ reason: Reason.optional(), minutes: Minutes.optional() }),
      bodyOptional: true,
      ok: { 200: { description: "done", schema: System } },
      errors: [404],
      async handle({ hub, user, ip, params, body, c }) {
        const f = frame(what, { username: params.user, ...body });
        return c.json(bare(await hub.run(user, f, ip)));
      },
    })
  ),
  ...(["mute", "ban"] as const).map((what) =>
    route({
      method: "delete",
      path: `/api/v1/admin/users/{user}/${what}`,
      tag,
      summary: what === "mute" ? "Unmute a user" : "Unban a user",
      auth: true,
      params: UserParam,
      ok: { 200: { description: "done", schema: System } },
      errors: [404],
      async handle({ hub, user, ip, params, c }) {
        const f = frame(what === "mute" ? "unmute" : "unban", { username: params.user });
        return c.json(bare(await hub.run(user, f, ip)));
      },
    })
  ),
  route({
    method: "get",
    path: "/api/v1/admin/connections",
    tag,
    summary: "Every connection: user, transport, IP, connected since, last seen",
    auth: true,
    ok: { 200: { description: "the connections_list frame", schema: ConnectionsList } },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("connections"), ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/admin/clients",
    tag,
    summary: "Every account, last visit first: online, when and from where it was last here, bans",
    auth: true,
    query: z.object({ limit: Limit.optional().meta({ description: "1 to 200 (default 100)" }) }),
    ok: { 200: { description: "the clients_list frame", schema: ClientsList } },
    async handle({ hub, user, ip, query, c }) {
      return c.json(await hub.run(user, frame("clients", query), ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/admin/reports",
    tag,
    summary: "Open reports and muted users",
    auth: true,
    ok: { 200: { description: "the reports_list frame", schema: ReportsList } },
    async handle({ hub, user, ip, c }) {
      return c.json(await hub.run(user, frame("reports"), ip));
    },
  }),
  route({
    method: "get",
    path: "/api/v1/admin/audit",
    tag,
    summary: "Audit trail, newest first: reports, mutes, bans, kicks, deletions, accounts",
    auth: true,
    query: z.object({
      limit: Limit.optional().meta({ description: "1 to 200 entries (default 50)" }),
      before: Ulid.optional().meta({ description: "entries older than this entry id" }),
    }),
    ok: { 200: { description: "the audit_log frame", schema: AuditLog } },
    async handle({ hub, user, ip, query, c }) {
      return c.json(await hub.run(user, frame("audit", query), ip));
    },
  }),
];
