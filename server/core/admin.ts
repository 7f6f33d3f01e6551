/**
 * Admin commands: kick, mute, ban, the connections table, reports, the audit trail, counters,
 * the live service log and creating accounts. The command table lets only admins in.
 * @module
 */

import type { ClientEntry, ConnectionEntry } from "../../protocol/frames.ts";
import { checkPasswordStrength, createUser } from "./auth.ts";
import type { UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { iso } from "./format.ts";
import { audit, mutedUntil, setMute } from "./moderation.ts";
import { statsFrame } from "./views.ts";

type Target = { username: string; reason?: string };

/** `kick`: closes every connection of a user. */
export async function kickCommand(call: UserCall, frame: Target) {
  const { core, user: u } = call;
  const target = core.requireUser(frame.username);
  const reason = frame.reason ?? "";
  await audit(core, u, "kick", target.record.name, reason);
  const n = target.conns.size;
  core.publish({
    kind: "close_user",
    user: target.record.name,
    reason: `You were kicked by ${u.record.name}${reason ? `: ${reason}` : ""}`,
  });
  return core.system(`Kicked ${target.record.name} (${n} connection${n === 1 ? "" : "s"})`);
}

/** `mute`: for `minutes`, or the configured mute length. */
export async function muteCommand(call: UserCall, frame: Target & { minutes?: number }) {
  const { core, user: u } = call;
  const target = core.requireUser(frame.username);
  const until = core.clock.now() +
    (frame.minutes === undefined ? core.config.muteForMs : frame.minutes * 60_000);
  await setMute(core, u, target, until, frame.reason || `muted by ${u.record.name}`);
  return core.system(`${target.record.name} is muted until ${iso(until)}`);
}

/** `unmute`: ends a mute and forgets open reports. */
export async function unmuteCommand(call: UserCall, frame: Target) {
  const { core, user: u } = call;
  const target = core.requireUser(frame.username);
  core.reports.delete(target.record.name);
  await setMute(core, u, target, null, frame.reason ?? "");
  return core.system(`${target.record.name} is no longer muted`);
}

/** `ban`: for `minutes` or for good; revokes the user's tokens and closes their connections. */
export async function banCommand(call: UserCall, frame: Target & { minutes?: number }) {
  const { core, user: u } = call;
  const target = core.requireUser(frame.username);
  if (target === u) throw new ChatError("bad_field", "You cannot ban yourself");
  const until = frame.minutes === undefined
    ? Number.MAX_SAFE_INTEGER
    : core.clock.now() + frame.minutes * 60_000;
  const reason = frame.reason ?? "";
  target.record = { ...target.record, bannedUntil: until, banReason: reason };
  await core.store.updateUser(target.record);
  await core.store.revokeTokens(target.record.name);
  const when = frame.minutes === undefined ? "for good" : `until ${iso(until)}`;
  await audit(core, u, "ban", target.record.name, reason, when);
  core.publish({
    kind: "close_user",
    user: target.record.name,
    reason: `You are banned ${when}${reason ? `: ${reason}` : ""}`,
  });
  return core.system(`${target.record.name} is banned ${when}`);
}

/** `unban`. */
export async function unbanCommand(call: UserCall, frame: Target) {
  const { core, user: u } = call;
  const target = core.requireUser(frame.username);
  target.record = { ...target.record, bannedUntil: null };
  await core.store.updateUser(target.record);
  await audit(core, u, "unban", target.record.name, frame.reason ?? "");
  return core.system(`${target.record.name} is no longer banned`);
}

/** `connections`: every connection of this process. */
export async function connectionsCommand(call: UserCall) {
  const { core } = call;
  const connections = [
    ...localConnections(core),
    ...(await core.presence.connectionsElsewhere?.() ?? []),
  ];
  return { type: "connections_list" as const, connections, timestamp: core.ts() };
}

/** This process's connections, named by node in a cluster. */
export function localConnections(core: Core): ConnectionEntry[] {
  const node = core.presence.node;
  return [...core.conns.values()].map((c) => ({
    id: c.id,
    username: c.user?.record.name ?? null,
    transport: c.peer.transport,
    ip: c.peer.ip,
    connected_at: iso(c.connectedAt),
    last_seen: iso(c.lastSeen),
    ...(node === undefined ? {} : { node }),
  }));
}

/** `clients`: every account, last visit first: online state, when and from where (seed 004). */
export function clientsCommand(call: UserCall, frame: { limit?: number }) {
  const { core } = call;
  const now = core.clock.now();
  // A ban "for good" is the largest safe integer, past what a Date can hold.
  const stamp = (t: number | null | undefined) =>
    !t || t <= now ? null : t >= 8.64e15 ? "9999-12-31T23:59:59.999Z" : iso(t);
  const clients: ClientEntry[] = [...core.users.values()]
    .sort((a, b) =>
      Number(core.isOnline(b)) - Number(core.isOnline(a)) ||
      (b.record.lastSeen ?? 0) - (a.record.lastSeen ?? 0)
    )
    .slice(0, frame.limit ?? 100)
    .map((u) => ({
      username: u.record.name,
      registered: u.record.passwordHash !== null,
      admin: u.record.admin,
      online: core.isOnline(u),
      connections: u.conns.size,
      last_seen: u.record.lastSeen === undefined ? null : iso(u.record.lastSeen),
      last_ip: u.record.lastIp ?? null,
      muted_until: stamp(u.record.mutedUntil),
      banned_until: stamp(u.record.bannedUntil),
    }));
  return { type: "clients_list" as const, clients, timestamp: core.ts() };
}

/** `audit`: a page of the audit trail, newest first. */
export async function auditCommand(call: UserCall, frame: { limit?: number; before?: string }) {
  const limit = frame.limit ?? 50;
  const entries = await call.core.store.listAudit({
    limit,
    ...(frame.before === undefined ? {} : { before: frame.before }),
  });
  return {
    type: "audit_log" as const,
    entries: entries.map((e) => ({ ...e, at: iso(e.at) })),
    has_more: entries.length === limit,
  };
}

/** `reports`: users with open reports or a running mute. */
export function reportsCommand(call: UserCall) {
  const { core } = call;
  const reports = [...core.users.values()]
    .filter((x) => core.reports.has(x.record.name) || mutedUntil(core, x) !== null)
    .map((x) => {
      const muted = mutedUntil(core, x);
      return {
        username: x.record.name,
        reporters: [...(core.reports.get(x.record.name)?.keys() ?? [])].sort(),
        muted_until: muted === null ? null : iso(muted),
      };
    });
  return { type: "reports_list" as const, reports, timestamp: core.ts() };
}

/** `stats`. */
export function statsCommand(call: UserCall) {
  return statsFrame(call.core);
}

/** `log_subscribe`: the service log so far, then each new entry as it happens. */
export function logSubscribeCommand(call: UserCall) {
  if (!call.conn) {
    throw new ChatError("bad_frame", "The live service log needs a live connection (TCP or /ws)");
  }
  return { type: "log" as const, entries: call.core.serviceLog.subscribe(call.conn) };
}

/** `log_search`: the service log after the fact, newest first, filtered by words, paged back. */
export async function logSearchCommand(
  call: UserCall,
  frame: { query?: string; before?: string; limit?: number },
) {
  const { core } = call;
  const limit = frame.limit ?? 50;
  // What is not saved yet is saved first, so the search sees everything.
  const unsaved = core.serviceLog.takeUnsaved();
  if (unsaved.length > 0) await core.store.appendLog(unsaved, core.config.logRetentionMs);
  const entries = await core.store.listLog({
    limit,
    now: core.clock.now(),
    retentionMs: core.config.logRetentionMs,
    ...(frame.before === undefined ? {} : { before: frame.before }),
    ...(frame.query === undefined ? {} : { query: frame.query }),
  });
  return { type: "log_page" as const, entries, has_more: entries.length === limit };
}

/** `create_user`: an account with a password, optionally an admin. */
export async function createUserCommand(
  call: UserCall,
  frame: { username: string; password: string; admin?: boolean },
) {
  const { core, user: u } = call;
  if (core.findUser(frame.username)) {
    throw new ChatError("name_taken", `The name ${frame.username} is taken`);
  }
  checkPasswordStrength(frame.password);
  const created = await createUser(core, frame.username, await core.passwords.hash(frame.password));
  if (frame.admin) {
    created.record = { ...created.record, admin: true };
    await core.store.updateUser(created.record);
  }
  await audit(core, u, "create_user", created.record.name, "", frame.admin ? "admin" : undefined);
  return core.system(`Created ${frame.admin ? "admin" : "user"} ${created.record.name}`);
}
