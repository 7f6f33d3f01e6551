/**
 * Cluster mode: several `chat serve` nodes on one shared store, joined by NATS. This broker is
 * the core's fan-out port for a node: every event the core publishes is delivered to this
 * node's connections and sent to the others on one NATS subject; what the others send is
 * delivered here. It also carries the changes a node makes to state every node keeps in memory
 * (users, rooms, memberships, contacts, invites: `StateChange`) and who is online where.
 *
 * Order and loss: messages of a chat are delivered here strictly by sequence number, whatever
 * node posted them. A message past a gap waits; if the missing ones have not come over NATS
 * within GAP_WAIT_MS, they are read from the store, where they are already (a message is
 * published only after its commit, and numbers are given at commit time). When the NATS
 * connection comes back after an outage, every chat with members online here is read again from
 * the store past what was delivered, so messages whose announcements were lost still arrive.
 *
 * Presence: each node says when a user's first connection opens and last one closes, and every
 * BEAT_MS sends the full list of its online users (so a lost notice heals). A node not heard from
 * for NODE_TIMEOUT_MS (three beats) is taken to be dead: its users count as offline here, and
 * this node's users are told they left. Away (kept in memory, told as a change when it changes)
 * is asked of the other nodes when a node starts and when its NATS connection comes back: each
 * answers for its own online users, and a change heard meanwhile wins over an answer.
 * @module
 */

import type { ConnectionEntry } from "../../protocol/frames.ts";
import type { Broker, ChatEvent, LocalNode } from "../core/fanout.ts";
import type { StateChange } from "../core/remote.ts";
import type { Logger } from "../log.ts";
import type { StoredMessage } from "../store/store.ts";
import type { Bus } from "./bus.ts";

/** How long a message past a gap waits for the missing ones before they are read from the store. */
export const GAP_WAIT_MS = 100;
/** Every node sends its list of online users this often. */
export const BEAT_MS = 2000;
/** A node not heard from for this long is dead: three beats missed. */
export const NODE_TIMEOUT_MS = 3 * BEAT_MS;
/** How long a question to every node (an admin's connections, who is away) waits for answers. */
export const ASK_WAIT_MS = 500;
/** Answers taken to a question whose number of nodes is not known yet (a node starting). */
const MAX_ANSWERS = 1000;

/** What travels between nodes: an event, a change, or a node's beat. */
type Envelope =
  | { node: string; event: ChatEvent }
  | { node: string; change: StateChange }
  | { node: string; beat: string[]; connections: number };

interface NodeState {
  users: Set<string>;
  seen: number;
  connections: number;
}

/** The fan-out port of one cluster node. */
export class ClusterBroker implements Broker {
  readonly node: string;
  #bus: Bus;
  #subject: string;
  #log: Logger;
  #local: LocalNode | null = null;
  /** Users online on this node (by their first/last connection). */
  #here = new Set<string>();
  #nodes = new Map<string, NodeState>();
  /** Messages past a gap, by chat then sequence number. */
  #waiting = new Map<string, Map<number, StoredMessage>>();
  #gapTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Remote changes apply one after another, in the order they came. */
  #changes: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | undefined;
  #now: () => number;
  /** While the other nodes are asked who is away: users whose away changed since (those win). */
  #awayHeard: Set<string> | null = null;
  /** Counters for /metrics and tests. */
  readonly stats = { gapFills: 0, published: 0, received: 0, resyncs: 0 };

  /** A broker for node `node` on `bus`, publishing on `subject`. */
  constructor(options: {
    node: string;
    bus: Bus;
    log: Logger;
    subject?: string;
    now?: () => number;
  }) {
    this.node = options.node;
    this.#bus = options.bus;
    this.#log = options.log;
    this.#subject = options.subject ?? "chat.cluster";
    this.#now = options.now ?? (() => Date.now());
  }

  /** The nodes heard from within the timeout, with their online users and connections. */
  nodes(): Array<{ node: string; users: number; connections: number; seenMsAgo: number }> {
    const now = this.#now();
    return [...this.#nodes].filter(([, s]) => now - s.seen < NODE_TIMEOUT_MS).map((
      [node, s],
    ) => ({ node, users: s.users.size, connections: s.connections, seenMsAgo: now - s.seen }));
  }

  // ------------------------------------------------------------------ the core's side

  start(local: LocalNode): void {
    this.#local = local;
    this.#bus.subscribe(this.#subject, (data) => this.#receive(data));
    this.#bus.answer(
      `${this.#subject}.connections`,
      (asker) => asker === this.node ? "[]" : JSON.stringify(local.connections()),
    );
    this.#bus.answer(
      `${this.#subject}.away`,
      (asker) => asker === this.node ? "{}" : JSON.stringify(local.awayHere()),
    );
    this.#bus.onReconnect(() => {
      void this.#resync();
      void this.#learnAway();
    });
    this.#timer = setInterval(() => this.#beat(), BEAT_MS);
    this.#beat();
    void this.#learnAway();
  }

  publish(event: ChatEvent): void {
    const local = this.#local;
    if (event.kind === "shared") {
      this.changed(event.change);
      return;
    }
    if (event.kind === "presence") {
      if (event.online) this.#here.add(event.user);
      else this.#here.delete(event.user);
    } else if (event.kind === "message") {
      if (local) this.#ordered(event.message);
    } else {
      local?.deliver(event);
    }
    this.#send({ node: this.node, event });
  }

  /** Tells the other nodes about a change to shared state this node made (after it is stored). */
  changed(change: StateChange): void {
    this.#send({ node: this.node, change });
  }

  elsewhere(user: string): boolean {
    const now = this.#now();
    for (const [node, s] of this.#nodes) {
      if (node !== this.node && now - s.seen < NODE_TIMEOUT_MS && s.users.has(user)) return true;
    }
    return false;
  }

  elsewhereCount(): number {
    const now = this.#now();
    const others = new Set<string>();
    for (const [node, s] of this.#nodes) {
      if (node === this.node || now - s.seen >= NODE_TIMEOUT_MS) continue;
      for (const u of s.users) if (!this.#here.has(u)) others.add(u);
    }
    return others.size;
  }

  async connectionsElsewhere(): Promise<ConnectionEntry[]> {
    const others = this.nodes().filter((n) => n.node !== this.node).length;
    // Every live node answers (this one too, with nothing); one that does not within the bound
    // is left out rather than holding the admin's table.
    const answers = await this.#bus.ask(
      `${this.#subject}.connections`,
      this.node,
      others + 1,
      ASK_WAIT_MS,
    );
    return answers.flatMap((a) => {
      try {
        return JSON.parse(a) as ConnectionEntry[];
      } catch {
        return [];
      }
    });
  }

  /** Stops beating; the NATS connection is closed by its owner. */
  stop(): void {
    clearInterval(this.#timer);
    for (const t of this.#gapTimers.values()) clearTimeout(t);
    this.#gapTimers.clear();
  }

  // ------------------------------------------------------------------ between nodes

  #send(envelope: Envelope): void {
    this.stats.published++;
    this.#bus.publish(this.#subject, JSON.stringify(envelope));
  }

  #receive(data: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(data);
    } catch {
      this.#log.warn("cluster: a message that is not JSON on the cluster subject");
      return;
    }
    if (envelope.node === this.node || !this.#local) return;
    this.stats.received++;
    const state = this.#nodeState(envelope.node);
    if ("beat" in envelope) {
      state.users = new Set(envelope.beat);
      state.connections = envelope.connections;
      return;
    }
    if ("change" in envelope) {
      const local = this.#local;
      if (envelope.change.type === "away") this.#awayHeard?.add(envelope.change.user);
      this.#changes = this.#changes
        .then(() => local.applyChange(envelope.change))
        .catch((error) => this.#log.warn("cluster: a change could not be applied", { error }));
      return;
    }
    const event = envelope.event;
    if (event.kind === "presence") {
      if (event.online) state.users.add(event.user);
      else state.users.delete(event.user);
      return;
    }
    if (event.kind === "shared") return; // sent as a change, never as an event
    // Events take their turn after the changes that came before them: a message to a room this
    // node has just heard of, a session's frames after the session itself.
    this.#changes = this.#changes
      .then(() => this.#apply(event))
      .catch((error) => this.#log.warn("cluster: an event could not be delivered", { error }));
  }

  #apply(event: ChatEvent): void {
    const local = this.#local!;
    switch (event.kind) {
      case "message":
        return this.#ordered(event.message);
      case "deleted":
      case "user": {
        // Connection ids are this node's own: another node's `exceptConn` means nothing here.
        const { exceptConn: _, ...rest } = event;
        return local.deliver(rest as ChatEvent);
      }
      default:
        return local.deliver(event);
    }
  }

  /**
   * Asks the other nodes who of their users is away: changes made before this node started (or
   * while its NATS connection was down) never reached it.
   */
  async #learnAway(): Promise<void> {
    const local = this.#local!;
    const heard = this.#awayHeard = new Set();
    let answers: string[];
    try {
      answers = await this.#bus.ask(`${this.#subject}.away`, this.node, MAX_ANSWERS, ASK_WAIT_MS);
    } catch (error) {
      this.#log.warn("cluster: could not ask who is away", { error });
      return;
    } finally {
      if (this.#awayHeard === heard) this.#awayHeard = null;
    }
    for (const answer of answers) {
      let away: Record<string, unknown>;
      try {
        away = JSON.parse(answer);
      } catch {
        continue;
      }
      for (const [user, message] of Object.entries(away)) {
        if (typeof message !== "string" || heard.has(user)) continue;
        this.#changes = this.#changes
          .then(() => local.applyChange({ type: "away", user, message }))
          .catch((error) => this.#log.warn("cluster: an away could not be applied", { error }));
      }
    }
  }

  #nodeState(node: string): NodeState {
    let state = this.#nodes.get(node);
    if (!state) {
      this.#log.info("cluster: a node joined", { node });
      state = { users: new Set(), seen: 0, connections: 0 };
      this.#nodes.set(node, state);
    }
    state.seen = this.#now();
    return state;
  }

  #beat(): void {
    this.#send({ node: this.node, beat: [...this.#here], connections: this.#here.size });
    // Nodes silent past the timeout are dead: their users are offline for this node's users.
    const now = this.#now();
    for (const [node, s] of this.#nodes) {
      if (node === this.node || now - s.seen < NODE_TIMEOUT_MS) continue;
      this.#nodes.delete(node);
      this.#log.warn("cluster: a node stopped answering; its users are offline", {
        node,
        users: s.users.size,
      });
      for (const user of s.users) {
        if (!this.#here.has(user) && !this.elsewhere(user)) this.#local?.announceOffline(user);
      }
    }
  }

  // ------------------------------------------------------------------ order

  /** Delivers a message in its chat's order: now, after what it waits for, or never (seen). */
  #ordered(m: StoredMessage): void {
    const local = this.#local!;
    const last = local.lastSeq(m.chat);
    if (m.seq <= last) return; // delivered already (read from the store, or a repeat)
    if (m.seq === last + 1) {
      local.deliver({ kind: "message", message: m });
      this.#drain(m.chat);
      return;
    }
    let waiting = this.#waiting.get(m.chat);
    if (!waiting) this.#waiting.set(m.chat, waiting = new Map());
    waiting.set(m.seq, m);
    if (!this.#gapTimers.has(m.chat)) {
      this.#gapTimers.set(m.chat, setTimeout(() => void this.#fill(m.chat), GAP_WAIT_MS));
    }
  }

  /** Delivers what waited and is next in line. */
  #drain(chat: string): void {
    const waiting = this.#waiting.get(chat);
    if (!waiting) return;
    const local = this.#local!;
    for (let next = local.lastSeq(chat) + 1; waiting.has(next); next++) {
      local.deliver({ kind: "message", message: waiting.get(next)! });
      waiting.delete(next);
    }
    for (const seq of waiting.keys()) if (seq <= local.lastSeq(chat)) waiting.delete(seq);
    if (waiting.size === 0) {
      this.#waiting.delete(chat);
      clearTimeout(this.#gapTimers.get(chat));
      this.#gapTimers.delete(chat);
    }
  }

  /** Reads a gap from the store (the messages are there: they are published after commit). */
  async #fill(chat: string): Promise<void> {
    this.#gapTimers.delete(chat);
    const waiting = this.#waiting.get(chat);
    if (!waiting || waiting.size === 0) return;
    this.stats.gapFills++;
    await this.#catchUp(chat, Math.max(...waiting.keys()));
    this.#drain(chat);
    if ((this.#waiting.get(chat)?.size ?? 0) > 0 && !this.#gapTimers.has(chat)) {
      this.#gapTimers.set(chat, setTimeout(() => void this.#fill(chat), GAP_WAIT_MS));
    }
  }

  /** Delivers stored messages of a chat after what was delivered, up to `until` (or all). */
  async #catchUp(chat: string, until = Infinity): Promise<void> {
    const local = this.#local!;
    try {
      while (local.lastSeq(chat) < until) {
        const from = local.lastSeq(chat);
        const page = await local.messagesAfter(chat, from, 200);
        const fresh = page.filter((m) => m.seq > local.lastSeq(chat) && m.seq <= until);
        if (fresh.length === 0) break;
        // An expired, swept message leaves a hole in the numbers: delivery steps over it.
        for (const m of fresh) local.deliver({ kind: "message", message: m });
        if (page.length < 200) break;
      }
    } catch (error) {
      this.#log.warn("cluster: could not read missed messages from the store", { chat, error });
    }
  }

  /** After NATS comes back: every chat with members here is read past what was delivered. */
  async #resync(): Promise<void> {
    const local = this.#local;
    if (!local) return;
    this.stats.resyncs++;
    this.#log.info("cluster: NATS is back; reading what was missed from the store");
    for (const chat of local.activeChats()) {
      await this.#catchUp(chat);
      this.#drain(chat);
    }
  }
}
