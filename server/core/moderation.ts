/**
 * Moderation: bans, mutes, quotas, reports that mute, deleting messages, and the audit trail.
 * @module
 */

import type { QuotaState } from "../../protocol/frames.ts";
import type { AuditRecord, ReportRecord } from "../store/store.ts";
import { exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { duration, iso } from "./format.ts";
import type { UserState } from "./state.ts";

/** When a user's mute ends, or null when they are not muted. */
export function mutedUntil(core: Core, u: UserState): number | null {
  const until = u.record.mutedUntil;
  return until && until > core.clock.now() ? until : null;
}

/** Refuses a banned user, saying until when and why. */
export function checkNotBanned(core: Core, u: UserState): void {
  const until = u.record.bannedUntil;
  if (until && until > core.clock.now()) {
    const when = until >= Number.MAX_SAFE_INTEGER ? "for good" : `until ${iso(until)}`;
    throw new ChatError(
      "banned",
      `${u.record.name} is banned ${when}${u.record.banReason ? `: ${u.record.banReason}` : ""}`,
    );
  }
}

/**
 * Refuses a message from a muted user or one over their quota, and counts it otherwise (unless
 * `peek`: an upload asks before it stores a byte, and is counted when its message is posted).
 * Guests also share one quota per address (`ip`), so new names cannot multiply it; addresses
 * in --quota-exempt (loopback by default: a proxy, a bridge) are not counted that way.
 */
export function checkCanSend(
  core: Core,
  u: UserState,
  isPrivate: boolean,
  now: number,
  options: { ip?: string; peek?: boolean } = {},
): void {
  const muted = mutedUntil(core, u);
  if (muted !== null) {
    throw new ChatError("muted", `You are muted until ${iso(muted)}; you can still read`);
  }
  const limit = isPrivate ? core.config.privateRateLimit : core.config.rateLimit;
  if (!limit) return;
  const what = isPrivate ? "private messages" : "messages to rooms";
  const windows = [isPrivate ? u.sentPrivate : u.sent];
  const ip = options.ip ?? "";
  const byAddress = u.record.passwordHash === null && ip !== "" && !core.config.quotaExempt.has(ip);
  const key = `${isPrivate ? "p" : "r"}|${ip}`;
  if (byAddress) {
    let sent = core.addressSends.get(key);
    if (!sent) core.addressSends.set(key, sent = []);
    windows.push(sent);
  }
  for (const [i, sent] of windows.entries()) {
    while (sent.length > 0 && sent[0]! <= now - limit.windowMs) sent.shift();
    if (sent.length < limit.count) continue;
    const next = iso(sent[0]! + limit.windowMs);
    throw new ChatError(
      "rate_limited",
      i === 0
        ? `You can send ${limit.count} ${what} per ${
          duration(limit.windowMs)
        }; the next one is accepted at ${next}`
        : `Guests at your address can send ${limit.count} ${what} per ${
          duration(limit.windowMs)
        } together; the next one at ${next} (a registered name has its own quota: /register)`,
    );
  }
  if (options.peek) return;
  for (const sent of windows) sent.push(now);
  // Other nodes of a cluster count it too: a quota is the user's, whatever node they use.
  core.publish({
    kind: "shared",
    change: {
      type: "sent",
      user: u.record.name,
      private: isPrivate,
      at: now,
      address: byAddress ? key : null,
    },
  });
}

/** Where a user stands with the room quota. */
export function quotaState(core: Core, u: UserState): QuotaState | null {
  const limit = core.config.rateLimit;
  if (!limit) return null;
  const now = core.clock.now();
  const inWindow = u.sent.filter((t) => t > now - limit.windowMs);
  const remaining = Math.max(0, limit.count - inWindow.length);
  return {
    limit: limit.count,
    window_s: Math.round(limit.windowMs / 1000),
    remaining,
    next_at: remaining > 0 ? null : iso(inWindow[0]! + limit.windowMs),
  };
}

/** Records a moderation action in the audit trail and the service log. */
export async function audit(
  core: Core,
  actor: UserState | null,
  action: AuditRecord["action"],
  target: string,
  reason: string,
  detail?: string,
): Promise<void> {
  const at = core.clock.now();
  core.log(
    "moderation",
    `${actor?.record.name ?? "system"} ${action} ${target}${reason ? `: ${reason}` : ""}`,
  );
  await core.store.appendAudit({
    id: core.newId(at),
    at,
    actor: actor?.record.name ?? "system",
    action,
    target,
    reason,
    ...(detail === undefined ? {} : { detail }),
  });
}

/** `report`: enough reports from distinct users mute the target. */
export async function reportCommand(call: UserCall, frame: { username: string; reason?: string }) {
  const { core, user: u } = call;
  const reason = frame.reason ?? "";
  const target = core.requireUser(frame.username);
  const t = target.record.name;
  if (target === u) throw new ChatError("bad_field", "You cannot report yourself");
  if (core.config.reportsFrom === "registered" && u.record.passwordHash === null) {
    throw new ChatError(
      "forbidden",
      "On this server only registered users' reports count: /register PASSWORD first",
    );
  }
  // Reports never mute an admin (only another admin can): three throwaway guests could.
  if (target.record.admin) {
    return core.system(`${t} is an admin: reports do not mute admins. Tell another admin.`);
  }
  const muted = mutedUntil(core, target);
  if (muted !== null) return core.system(`${t} is already muted until ${iso(muted)}`);
  let reports = core.reports.get(t);
  if (!reports) core.reports.set(t, reports = new Map());
  const needed = core.config.reportsToMute;
  if (reports.has(u.record.name)) {
    return core.system(`You already reported ${t}; ${reports.size} of ${needed} reports so far`);
  }
  const record: ReportRecord = { target: t, reporter: u.record.name, at: core.clock.now(), reason };
  reports.set(u.record.name, record);
  await core.store.putReport(record);
  await audit(core, u, "report", t, reason);
  if (reports.size < needed) return core.system(`You reported ${t} (${reports.size} of ${needed})`);
  // Enough distinct reporters: the mute starts, and the count starts again from zero.
  const reporters = [...reports.keys()];
  core.reports.delete(t);
  await core.store.clearReports(t, reporters);
  const until = core.clock.now() + core.config.muteForMs;
  await setMute(core, null, target, until, `reported by ${reporters.length} users`);
  return core.system(`You reported ${t}; ${t} is now muted until ${iso(until)}`);
}

/** Mutes a user until a time (null: unmutes), audited, and tells them. */
export async function setMute(
  core: Core,
  actor: UserState | null,
  target: UserState,
  until: number | null,
  reason: string,
): Promise<void> {
  target.record = { ...target.record, mutedUntil: until };
  await core.store.updateUser(target.record);
  const action = until === null ? "unmute" : "mute";
  await audit(
    core,
    actor,
    action,
    target.record.name,
    reason,
    until === null ? undefined : `until ${iso(until)}`,
  );
  const text = until === null
    ? "You are no longer muted"
    : `You are muted until ${iso(until)} (${reason}); you can still read`;
  core.publish({ kind: "user", user: target.record.name, frame: core.system(text) });
}

/** `delete_message`: its author or an admin deletes a message; whoever could see it is told. */
export async function deleteMessageCommand(call: UserCall, frame: { id: string }) {
  const { core, user: u } = call;
  const msg = await core.store.getMessage(frame.id);
  // A message the asker cannot see is answered as one that does not exist (admins see all).
  if (!msg || core.expired(msg) || (!u.record.admin && !u.chats.has(msg.chat))) {
    throw new ChatError(
      "no_such_message",
      `There is no message ${frame.id} (it may have expired or been deleted)`,
    );
  }
  if (msg.from !== u.record.name && !u.record.admin) {
    throw new ChatError("forbidden", "Only its author or an admin can delete a message");
  }
  await core.store.deleteMessage(msg);
  await audit(core, u, "delete", msg.from, "", `${msg.chat}#${msg.seq}: ${msg.text.slice(0, 80)}`);
  const timestamp = core.ts();
  core.publish({
    kind: "deleted",
    message: msg,
    by: u.record.name,
    timestamp,
    ...exceptAsker(call),
  });
  // The one who asked always hears back (a REST caller or an admin outside the room).
  return {
    type: "message_deleted" as const,
    id: msg.id,
    chat: core.address(u, msg.chat),
    seq: msg.seq,
    by: u.record.name,
    timestamp,
  };
}
