/**
 * The chat core's front door: what transports and `main.ts` hold. A small facade over the
 * `Core` context, the command table (`commands.ts`) and this process's delivery of the fan-out
 * port (`delivery.ts`); each rule lives in its feature module (see docs/architecture.md).
 * @module
 */

import type {
  ClientFrame,
  ClientFrameType,
  ProtocolError,
  ServerFrame,
} from "../../protocol/frames.ts";
import type { FileRecord } from "../store/store.ts";
import { detach } from "./attach.ts";
import { addUserState, authenticate, login, logout } from "./auth.ts";
import { errorFrame } from "./call.ts";
import { type AnswerOf, attachChecked, dispatch, roomToPost, runAs } from "./commands.ts";
import { Core, type HubOptions, type HubStats } from "./core.ts";
import { CURSOR_SAVES_PER_TICK, evictIdleCursors, flushCursors } from "./cursors.ts";
import { sha256 } from "./format.ts";
import { LocalDelivery } from "./delivery.ts";
import { ChatError } from "./errors.ts";
import type { Broker } from "./fanout.ts";
import { flushAwayNotices } from "./away.ts";
import { forgetIdleGuests, goneSince, queueIdleGuest } from "./guests.ts";
import { applyChange } from "./remote.ts";
import { endSession } from "./sessions.ts";
import { localConnections } from "./admin.ts";
import { openFile, uploadFile, type UploadMeta } from "./files.ts";
import type { AckFrame } from "./messages.ts";
import { Outbound, type Peer } from "./peer.ts";
import { flushPresenceNotices } from "./presence_notices.ts";
import { pruneMembershipChanges } from "./rooms.ts";
import { runScheduled } from "./scheduled.ts";
import { type Conn, GENERAL, newConn, newRoomState, own } from "./state.ts";
import { statsFrame } from "./views.ts";

export type { Clock, HubOptions, HubStats, PasswordHasher, RateLimit } from "./core.ts";
export { GENERAL } from "./state.ts";
export { formatSize } from "./format.ts";

/** How often expired messages are removed from storage (they are hidden on read at once). */
const SWEEP_EVERY_MS = 60_000;
/** How often unfinished uploads are looked for, and how old one must be to count as abandoned. */
const ORPHAN_SWEEP_EVERY_MS = 10 * 60_000;
const ORPHAN_AGE_MS = 60 * 60_000;

/** The chat core, as transports see it. */
export class Hub {
  #core: Core;
  #nextConnId = 1;

  private constructor(core: Core) {
    this.#core = core;
  }

  /**
   * Loads state from the store and returns a ready hub; creates `general` on first start.
   * Events go to this process's connections, and through `broker` to other processes' too.
   */
  static async create(options: HubOptions, broker?: Broker): Promise<Hub> {
    const local = new LocalDelivery();
    const core = new Core(options, broker ?? local);
    local.attach(core);
    await load(core);
    if (broker) {
      core.presence = broker;
      broker.start({
        deliver: (event) => local.publish(event),
        lastSeq: (chat) => core.seqs.get(chat) ?? 0,
        messagesAfter: (chat, after, limit) => core.store.listMessages(chat, { after, limit }),
        activeChats: () => {
          const chats = new Set<string>();
          for (const c of core.conns.values()) {
            for (const chat of c.user?.chats ?? []) chats.add(chat);
          }
          return [...chats];
        },
        applyChange: (change) => applyChange(core, change),
        connections: () => localConnections(core),
        awayHere: () => {
          const away: Record<string, string> = {};
          for (const c of core.conns.values()) {
            if (c.user?.away != null) away[c.user.record.name] = c.user.away;
          }
          return away;
        },
        announceOffline: (user) => {
          const u = core.users.get(user);
          // Its session ends where its partner is (the dead node cannot say so), quietly elsewhere.
          if (u && u.conns.size === 0 && u.session) {
            if (u.session.conns.size > 0) endSession(core, u, `${user} went offline`);
            else u.session = u.session.session = null;
          }
          local.publish({
            kind: "everyone",
            frame: { ...core.system(`${user} left the chat`), event: "offline", username: user },
            except: user,
          });
        },
      });
    }
    return new Hub(core);
  }

  /** Work counters since start. */
  get stats(): HubStats {
    return this.#core.stats;
  }

  // ---------------------------------------------------------------- transport API

  /**
   * Whether one more connection from `ip` is allowed (transports ask before `connect`), or the
   * sentence to refuse it with.
   */
  admit(ip: string): string | null {
    const max = this.#core.config.maxPerIp;
    if (max <= 0 || !ip) return null;
    let n = 0;
    for (const c of this.#core.conns.values()) if (c.peer.ip === ip && ++n >= max) break;
    return n >= max
      ? `Too many connections from ${ip} (the limit is ${max}): close some and try again`
      : null;
  }

  /** Registers a new connection and returns its id; nothing is sent until it says hello. */
  connect(peer: Peer): number {
    const id = this.#nextConnId++;
    this.#core.conns.set(id, newConn(id, peer, this.#core.clock.now()));
    this.#core.log("connect", `connection #${id} from ${peer.ip || "?"}`);
    return id;
  }

  /**
   * Handles one frame from a connection. Frames of one connection are handled in order; the
   * promise settles when this frame has been handled (a message's storage may still be pending,
   * and its `ack` follows the commit) and the connection has room for more: a transport that
   * awaits it before reading on gets backpressure (`POST_WINDOW`).
   */
  receive(connId: number, frame: ClientFrame): Promise<void> {
    const conn = this.#core.conns.get(connId);
    if (!conn || conn.closed) return Promise.resolve();
    conn.lastSeen = this.#core.clock.now();
    return this.#enqueue(conn, () => dispatch(this.#core, conn, frame)).then(() =>
      roomToPost(conn) ?? undefined
    );
  }

  /** Runs work on a connection's chain (its frames in order), tracked so `close()` waits for it. */
  #enqueue(conn: Conn, work: () => Promise<void>): Promise<void> {
    const run = conn.chain.then(work);
    conn.chain = run;
    const running = this.#core.running;
    running.add(run);
    void run.finally(() => running.delete(run));
    return run;
  }

  /**
   * Logs a connection in as a user the transport has already authenticated (an HTTP token,
   * checked once before a WebSocket upgrade or an event stream), in the connection's order; the
   * token is remembered so that revoking it closes the connection.
   */
  attach(connId: number, username: string, since?: string, token?: string): Promise<void> {
    const conn = this.#core.conns.get(connId);
    const u = this.#core.users.get(username);
    if (!conn || conn.closed || !u) return Promise.resolve();
    return this.#enqueue(conn, async () => {
      const hash = token === undefined ? null : await sha256(token);
      await attachChecked(this.#core, conn, u, since, hash);
    });
  }

  /**
   * Answers input a transport could not decode with an error frame (carrying the input's `ref`
   * when it had a readable one), in the connection's order: after the answers to what it sent
   * before, as every other reply.
   */
  reject(connId: number, error: ProtocolError | ChatError, ref?: string): Promise<void> {
    const conn = this.#core.conns.get(connId);
    if (!conn || conn.closed) return Promise.resolve();
    return this.#enqueue(conn, async () => {
      if (conn.lastPost) await conn.lastPost.settled;
      const frame = errorFrame(this.#core, error);
      this.#core.sendTo(conn, ref === undefined ? frame : { ...frame, ref });
    });
  }

  /**
   * Settles once every frame this connection sent has been handled and its messages stored and
   * acked: a client that half-closes after its last line still gets its acks.
   */
  async whenHandled(connId: number): Promise<void> {
    const conn = this.#core.conns.get(connId);
    if (!conn) return;
    await conn.chain;
    if (conn.lastPost) await conn.lastPost.settled;
  }

  /**
   * Forgets a connection; the last connection of a user takes them offline, with what they said
   * as they left (`farewell`, from `protocol/frames.ts`), if anything.
   */
  disconnect(connId: number, farewell?: string): void {
    const conn = this.#core.conns.get(connId);
    if (conn) detach(this.#core, conn, farewell);
  }

  /**
   * Periodic work: persists read cursors, removes expired messages once a minute, forgets the
   * cursors of users idle for a minute with no connection, and every ten minutes removes the
   * chunks of uploads abandoned over an hour ago. Call about once a second.
   */
  async housekeeping(): Promise<void> {
    const core = this.#core;
    await flushCursors(core, CURSOR_SAVES_PER_TICK);
    const entries = core.serviceLog.takeUnsaved();
    if (entries.length > 0) await core.store.appendLog(entries, core.config.logRetentionMs);
    const now = core.clock.now();
    if (core.config.messageTtlMs > 0 && now - core.lastSweep >= SWEEP_EVERY_MS) {
      core.lastSweep = now;
      for (const chat of core.seqs.keys()) await core.store.sweepExpired(chat, now);
    }
    evictIdleCursors(core);
    flushAwayNotices(core);
    flushPresenceNotices(core);
    pruneMembershipChanges(core);
    await forgetIdleGuests(core);
    core.logins.prune(now);
    pruneAddressSends(core, now);
    // Uploads cut off by a crash leave chunks and no file record: clean up once in a while.
    if (now - core.lastOrphanSweep >= ORPHAN_SWEEP_EVERY_MS) {
      core.lastOrphanSweep = now;
      await core.store.sweepOrphanChunks(now - ORPHAN_AGE_MS);
    }
  }

  /**
   * The rooms both a connection's user and `username` are in, sorted: an IRC client is shown a
   * returning user joining each channel they share (IRC has no "online", only JOIN and QUIT).
   */
  sharedRooms(connId: number, username: string): string[] {
    const mine = this.#core.conns.get(connId)?.user;
    const theirs = this.#core.users.get(username);
    if (!mine || !theirs) return [];
    return this.#core.roomsOf(mine).filter((room) => theirs.chats.has(room));
  }

  /** Whether a user's cursors are cached (for tests of eviction). */
  cursorsCached(username: string): boolean {
    return this.#core.users.get(username)?.cursors != null;
  }

  /** Settles once every message accepted so far has been stored (or failed) and delivered. */
  async whenStored(): Promise<void> {
    while (this.#core.inflight.size > 0) await Promise.allSettled([...this.#core.inflight]);
  }

  /** Stops taking commands, waits for pending writes, saves cursors and says goodbye to everyone. */
  async close(reason = "server shutting down"): Promise<void> {
    const core = this.#core;
    core.closing = true;
    // Commands under way finish (new ones are refused) before the store goes away.
    while (core.running.size > 0) await Promise.allSettled([...core.running]);
    await this.whenStored();
    await flushCursors(core);
    const entries = core.serviceLog.takeUnsaved();
    if (entries.length > 0) await core.store.appendLog(entries, core.config.logRetentionMs);
    await core.store.flush();
    const bye = new Outbound({ type: "bye", reason });
    for (const conn of [...core.conns.values()]) {
      conn.peer.send(bye);
      conn.peer.close(reason);
    }
  }

  /** Largest file accepted, in bytes. */
  get maxFileSize(): number {
    return this.#core.config.maxFileSize;
  }

  /** Number of users with at least one connection. */
  get onlineUsers(): number {
    return this.#core.onlineCount();
  }

  /** Number of open connections, logged in or not. */
  get connections(): number {
    return this.#core.conns.size;
  }

  // ---------------------------------------------------------------- request/response API (REST)

  /** Logs in with a password, registering an unclaimed name; returns a new token. */
  login(
    username: string,
    password: string,
    ip = "",
  ): Promise<{ token: string; username: string; expiresAt: number }> {
    return login(this.#core, username, password, ip);
  }

  /** Returns the user a token belongs to, or throws `not_logged_in` if it is unknown or expired. */
  authenticate(token: string): Promise<string> {
    return authenticate(this.#core, token);
  }

  /** Revokes a token. */
  logout(token: string): Promise<void> {
    return logout(this.#core, token);
  }

  /**
   * Runs one command for a user without a live connection (REST) and returns its typed answer,
   * after the message it sent (if any) is stored; a refusal is thrown as a `ChatError`.
   */
  async run<T extends ClientFrameType>(
    username: string,
    frame: Extract<ClientFrame, { type: T }>,
    ip = "",
  ): Promise<AnswerOf<T>> {
    return await runAs(this.#core, this.#requireAccount(username), frame, ip);
  }

  /** Like `run`, for any frame, with the answer (if any) in an array. */
  async request(username: string, frame: ClientFrame, ip = ""): Promise<ServerFrame[]> {
    const answer: ServerFrame | void = await runAs(
      this.#core,
      this.#requireAccount(username),
      frame,
      ip,
    );
    return answer ? [answer] : [];
  }

  #requireAccount(username: string) {
    const u = this.#core.users.get(username);
    if (!u) {
      throw new ChatError("not_logged_in", "This account no longer exists: log in again");
    }
    return u;
  }

  /**
   * Stores a file sent to a room or a user, reading `chunks` as they come and refusing it as soon
   * as it grows past the limit, then announces it with a message. Returns the ack.
   */
  uploadFile(
    username: string,
    meta: UploadMeta,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<AckFrame> {
    return uploadFile(this.#core, username, meta, chunks);
  }

  /** Opens a file for a user who may read its chat; expired or unknown files are not found. */
  openFile(
    username: string,
    id: string,
  ): Promise<{ file: FileRecord; chunks: AsyncIterable<Uint8Array> }> {
    return openFile(this.#core, username, id);
  }

  /** Sends every scheduled message that is due; returns how many went out. */
  runScheduled(): Promise<number> {
    return runScheduled(this.#core);
  }

  /** Counters for admins and /metrics. */
  statsFrame(): Extract<ServerFrame, { type: "stats" }> {
    return statsFrame(this.#core);
  }
}

/** Forgets guests' send times by address once they are older than every window. */
function pruneAddressSends(core: Core, now: number): void {
  const longest = Math.max(
    core.config.rateLimit?.windowMs ?? 0,
    core.config.privateRateLimit?.windowMs ?? 0,
  );
  for (const [key, sent] of core.addressSends) {
    if ((sent.at(-1) ?? 0) <= now - longest) core.addressSends.delete(key);
  }
}

/** Loads users, rooms, memberships, groups, contacts and reports; creates `general` once. */
async function load(core: Core): Promise<void> {
  const snap = await core.store.load();
  for (const record of snap.users) addUserState(core, record);
  for (const chat of snap.chats) {
    if (chat.kind === "room") core.addRoom(newRoomState(chat));
  }
  for (const { chat, user } of snap.members) {
    const u = core.users.get(user);
    if (!u) continue;
    u.chats.add(chat);
    core.rooms.get(chat)?.members.add(u);
  }
  for (const [chat, seq] of snap.seqs) core.seqs.set(chat, seq);
  // Every guest is offline at a start: queued to be forgotten, longest gone first.
  const guests = [...core.users.values()].filter((u) => u.record.passwordHash === null);
  guests.sort((a, b) => goneSince(a) - goneSince(b));
  for (const u of guests) queueIdleGuest(core, u);
  for (const { user, contact } of snap.contacts) {
    const u = core.users.get(user);
    if (u) own(u, "contacts").add(contact);
  }
  for (const inv of snap.groups.invites) {
    const u = core.users.get(inv.user);
    if (u) own(u, "invites").set(inv.room, inv.from);
  }
  for (const link of snap.groups.links) core.links.set(link.token, link);
  for (const req of snap.groups.requests) {
    core.rooms.get(req.room)?.requests.set(req.user, req.at);
  }
  for (const report of snap.reports) {
    let m = core.reports.get(report.target);
    if (!m) core.reports.set(report.target, m = new Map());
    m.set(report.reporter, report);
  }
  if (!core.rooms.has(GENERAL)) {
    const record = {
      id: GENERAL,
      kind: "room" as const,
      createdAt: core.clock.now(),
      createdBy: "",
    };
    await core.store.createChat(record);
    core.addRoom(newRoomState(record));
  }
}
