/**
 * The live service log admins watch: a bounded ring of recent entries and the connections
 * subscribed to it.
 * @module
 */

import type { LogEntry } from "../../protocol/frames.ts";
import { Outbound } from "./peer.ts";
import type { Conn } from "./state.ts";

/** How many service log lines are kept in memory (the rest is in the store, searchable). */
const LOG_SIZE = 1000;

/** The service log of this process: a ring in memory, and every entry handed to `persist`. */
export class ServiceLog {
  #ring: LogEntry[] = [];
  #watchers = new Set<Conn>();
  #unsaved: Array<LogEntry & { id: string }> = [];

  /** Entries not yet saved, taken (the core saves them in batches, off the hot path). */
  takeUnsaved(): Array<LogEntry & { id: string }> {
    const out = this.#unsaved;
    this.#unsaved = [];
    return out;
  }

  /** Whether any admin is watching (costly entries are only made then). */
  get watched(): boolean {
    return this.#watchers.size > 0;
  }

  /** Adds an entry and sends it to the admins watching. */
  add(entry: LogEntry & { id: string }): void {
    this.#ring.push(entry);
    // A bound even if saving stalls: the oldest unsaved entries go first.
    if (this.#unsaved.length < 10 * LOG_SIZE) this.#unsaved.push(entry);
    if (this.#ring.length > LOG_SIZE) this.#ring.shift();
    if (this.#watchers.size === 0) return;
    const out = new Outbound({ type: "log", entries: [entry] });
    for (const c of this.#watchers) c.peer.send(out);
  }

  /** Subscribes a connection; returns the entries so far. */
  subscribe(conn: Conn): LogEntry[] {
    this.#watchers.add(conn);
    return [...this.#ring];
  }

  /** Forgets a connection that closed. */
  unsubscribe(conn: Conn): void {
    this.#watchers.delete(conn);
  }
}
