/**
 * This process's side of the fan-out port: turns events into `Outbound`s for the connections
 * it holds, holds them back from a connection whose replay is still going out, and moves the
 * read cursors of those who were shown a message.
 * @module
 */

import type { ServerFrame } from "../../protocol/frames.ts";
import type { StoredMessage } from "../store/store.ts";
import type { Core } from "./core.ts";
import { advance } from "./cursors.ts";
import type { ChatEvent, FanOut, ViewChange } from "./fanout.ts";
import { toFrame } from "./format.ts";
import { Outbound } from "./peer.ts";
import { type Conn, GENERAL, type UserState } from "./state.ts";

/** Above this many online users, online/offline notices are not broadcast (/users still tells). */
const PRESENCE_NOTICE_LIMIT = 500;

/** Delivers events to this process's connections, synchronously and in publishing order. */
export class LocalDelivery implements FanOut {
  #core: Core | null = null;

  /** Connects the delivery to the core whose connections it serves. */
  attach(core: Core): void {
    this.#core = core;
  }

  /** Delivers one event. */
  publish(event: ChatEvent): void {
    const core = this.#core;
    if (!core) return;
    switch (event.kind) {
      case "message":
        return this.#message(core, event.message);
      case "deleted": {
        const m = event.message;
        const audience = m.to !== undefined
          ? [m.from, m.to].map((n) => core.users.get(n)).filter((x) => x !== undefined)
          : [...(core.rooms.get(m.chat)?.online ?? [])];
        for (const viewer of audience) {
          const out = new Outbound({
            type: "message_deleted",
            id: m.id,
            chat: core.address(viewer, m.chat),
            seq: m.seq,
            by: event.by,
            timestamp: event.timestamp,
          });
          for (const c of viewer.conns) if (c.id !== event.exceptConn) this.#deliver(core, c, out);
        }
        return;
      }
      case "room": {
        const room = core.rooms.get(event.room);
        if (!room) return;
        const out = new Outbound(event.frame);
        for (const u of room.online) {
          if (u.record.name !== event.except) this.#toUser(core, u, out);
        }
        return;
      }
      case "user": {
        const u = core.users.get(event.user);
        if (!u) return;
        const perConn = "mode" in event.frame || event.view !== undefined;
        const shared = perConn ? null : new Outbound(event.frame);
        for (const c of u.conns) {
          if (c.id === event.exceptConn) continue;
          if (event.view) applyView(c, event.view);
          const out = shared ?? new Outbound(withMode(event.frame, core, c, u));
          this.#deliver(core, c, out);
        }
        return;
      }
      case "everyone": {
        // Announcing every arrival to everyone costs O(online²): big chats stay quiet instead.
        if (core.onlineUsers > PRESENCE_NOTICE_LIMIT) return;
        const out = new Outbound(event.frame);
        for (const c of core.conns.values()) {
          if (c.user && c.user.record.name !== event.except) this.#deliver(core, c, out);
        }
        return;
      }
      case "presence":
      case "shared":
        return;
      case "close_user": {
        const u = core.users.get(event.user);
        if (!u) return;
        const bye = new Outbound({ type: "bye", reason: event.reason });
        for (const c of [...u.conns]) {
          if (event.token !== undefined && c.token !== event.token) continue;
          c.peer.send(bye);
          c.peer.close(event.reason);
        }
        return;
      }
    }
  }

  #message(core: Core, msg: StoredMessage): void {
    // The chat's last number, as this process has delivered it (a cluster's order gate reads it).
    if (msg.seq > (core.seqs.get(msg.chat) ?? 0)) core.seqs.set(msg.chat, msg.seq);
    const out = new Outbound(toFrame(msg));
    if (msg.to !== undefined) {
      for (const name of new Set([msg.from, msg.to])) {
        const u = core.users.get(name);
        if (u && u.conns.size > 0) {
          this.#toUser(core, u, out);
          advance(core, u, msg.chat, msg.seq);
        }
      }
      return;
    }
    const room = core.rooms.get(msg.chat);
    if (!room) return;
    for (const u of room.online) {
      this.#toUser(core, u, out);
      advance(core, u, msg.chat, msg.seq);
    }
  }

  #toUser(core: Core, u: UserState, out: Outbound): void {
    for (const c of u.conns) this.#deliver(core, c, out);
  }

  /** Delivers a fanned-out frame, or holds it while the connection's replay is going out. */
  #deliver(core: Core, c: Conn, out: Outbound): void {
    if (c.held) c.held.push(out);
    else c.peer.send(out);
    core.stats.deliveries++;
  }
}

function applyView(c: Conn, view: ViewChange): void {
  if ("session" in view) c.sessionView = view.session;
  else if (c.room === view.leftRoom) c.room = GENERAL;
}

function withMode(frame: ServerFrame, core: Core, c: Conn, u: UserState): ServerFrame {
  return "mode" in frame ? { ...frame, mode: core.mode(c, u) } as ServerFrame : frame;
}
