/**
 * The store of a cluster node: the same Deno KV store (one database for every node), which also
 * tells the broker, after each write to state that every node keeps in memory, what changed, so
 * the other nodes read it again. The core does not know it is in a cluster.
 * @module
 */

import type { StateChange } from "../core/remote.ts";
import { KvStore } from "../store/kv_store.ts";
import type { ChatRecord, ReportRecord, UserRecord } from "../store/store.ts";

/** A KvStore that reports changes to shared state once they are committed. */
export class ClusterStore extends KvStore {
  #changed: (change: StateChange) => void = () => {};

  /** Other nodes write the same chats: nothing that assumes one writer (the tail cache). */
  constructor(kv: Deno.Kv, options: { now?: () => number } = {}) {
    super(kv, { ...options, soleWriter: false });
  }

  /** Where committed changes are reported (the broker, once it exists). */
  onChange(handler: (change: StateChange) => void): void {
    this.#changed = handler;
  }

  override async createUser(user: UserRecord): Promise<void> {
    await super.createUser(user);
    this.#changed({ type: "user", name: user.name });
  }

  override async updateUser(user: UserRecord): Promise<void> {
    await super.updateUser(user);
    this.#changed({ type: "user", name: user.name });
  }

  override async deleteUsers(names: string[]): Promise<void> {
    await super.deleteUsers(names);
    for (const name of names) this.#changed({ type: "user", name });
  }

  override async createChat(chat: ChatRecord): Promise<void> {
    await super.createChat(chat);
    this.#changed({ type: "chat", id: chat.id });
  }

  override async deleteChat(id: string): Promise<void> {
    await super.deleteChat(id);
    this.#changed({ type: "chat", id });
  }

  override async addMember(chat: string, user: string, cursor: number): Promise<void> {
    await super.addMember(chat, user, cursor);
    this.#changed({ type: "member", chat, user, cursor });
  }

  override async removeMember(chat: string, user: string): Promise<void> {
    await super.removeMember(chat, user);
    this.#changed({ type: "member", chat, user, cursor: null });
  }

  override async setInvite(
    room: string,
    user: string,
    value: { from: string; at: number } | null,
  ): Promise<void> {
    await super.setInvite(room, user, value);
    this.#changed({ type: "invite", room, user, from: value?.from ?? null });
  }

  override async putReport(report: ReportRecord): Promise<void> {
    await super.putReport(report);
    this.#changed({ type: "report", record: report });
  }

  override async clearReports(target: string, reporters: string[]): Promise<void> {
    await super.clearReports(target, reporters);
    this.#changed({ type: "reports_cleared", target });
  }

  override async setContact(user: string, contact: string, present: boolean): Promise<void> {
    await super.setContact(user, contact, present);
    this.#changed({ type: "contact", user, contact, present });
  }
}
