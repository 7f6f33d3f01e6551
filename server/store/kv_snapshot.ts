/**
 * What the core keeps in memory, read from Deno KV at start: users, chats, memberships, each
 * chat's last sequence number, reports, group invitations and contacts (work proportional to
 * users and rooms, not to history).
 * @module
 */

import { keys } from "./keys.ts";
import type { ChatRecord, GroupState, ReportRecord, StoreSnapshot, UserRecord } from "./store.ts";

/** Reads the state the core keeps in memory. */
export async function readSnapshot(kv: Deno.Kv): Promise<StoreSnapshot> {
  const users: UserRecord[] = [];
  for await (const e of kv.list<UserRecord>({ prefix: keys.users() }, { batchSize: 500 })) {
    users.push(e.value);
  }
  const chats: ChatRecord[] = [];
  for await (const e of kv.list<ChatRecord>({ prefix: keys.chats() }, { batchSize: 500 })) {
    chats.push(e.value);
  }
  const members: Array<{ chat: string; user: string }> = [];
  for await (const e of kv.list({ prefix: keys.members() }, { batchSize: 500 })) {
    members.push({ chat: String(e.key[1]), user: String(e.key[2]) });
  }
  const seqs = new Map<string, number>();
  for await (const e of kv.list<number>({ prefix: keys.seqs() }, { batchSize: 500 })) {
    seqs.set(String(e.key[1]), e.value);
  }
  const reports: ReportRecord[] = [];
  for await (
    const e of kv.list<ReportRecord>({ prefix: keys.reports() }, { batchSize: 500 })
  ) {
    reports.push(e.value);
  }
  const groups: GroupState = { invites: [], links: [], requests: [] };
  for await (const e of kv.list<{ from: string; at: number }>({ prefix: keys.invites() })) {
    groups.invites.push({ room: String(e.key[1]), user: String(e.key[2]), ...e.value });
  }
  for await (
    const e of kv.list<{ room: string; by: string; at: number }>({ prefix: keys.links() })
  ) {
    groups.links.push({ token: String(e.key[1]), ...e.value });
  }
  for await (const e of kv.list<{ at: number }>({ prefix: keys.joinRequests() })) {
    groups.requests.push({ room: String(e.key[1]), user: String(e.key[2]), ...e.value });
  }
  const contacts: Array<{ user: string; contact: string }> = [];
  for await (const e of kv.list({ prefix: keys.contacts() }, { batchSize: 500 })) {
    contacts.push({ user: String(e.key[1]), contact: String(e.key[2]) });
  }
  return { users, chats, members, seqs, reports, groups, contacts };
}
