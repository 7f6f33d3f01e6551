/**
 * The NATS connection of a cluster node, through the official client
 * (`@nats-io/transport-node`: plain TCP to nats-server; it runs under Deno's Node compatibility,
 * and needs no WebSocket listener on the server, which `@nats-io/nats-core`'s `wsconnect`
 * would). It reconnects forever; while NATS is away the node keeps serving its own users,
 * `/healthz` says so, and publishes are buffered by the client up to its limit.
 * @module
 */

import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../log.ts";

/** What the broker needs of a message bus. */
export interface Bus {
  publish(subject: string, data: string): void;
  subscribe(subject: string, handler: (data: string) => void): void;
  /** Called each time the connection comes back after it was lost. */
  onReconnect(handler: () => void): void;
  /** Answers requests on `subject` with what `handler` returns. */
  answer(subject: string, handler: (data: string) => string): void;
  /** Asks every answerer of `subject`; settles with the answers of up to `expected` of them. */
  ask(subject: string, data: string, expected: number, waitMs: number): Promise<string[]>;
}

/** A NATS connection that says whether it is up. */
export class NatsBus implements Bus {
  #nc: NatsConnection;
  #log: Logger;
  #up = true;
  #reconnected: Array<() => void> = [];
  #decoder = new TextDecoder();

  private constructor(nc: NatsConnection, log: Logger) {
    this.#nc = nc;
    this.#log = log;
    void this.#watch();
  }

  /**
   * Connects to `servers` (comma-separated `nats://host:port`); fails if none answers now
   * (a node should not start cut off from its cluster; later outages are ridden out).
   */
  static async connect(servers: string, name: string, log: Logger): Promise<NatsBus> {
    const nc = await connect({
      servers: servers.split(",").map((s) => s.trim()).filter(Boolean),
      name,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: 3000,
    });
    return new NatsBus(nc, log);
  }

  /** Whether the connection to NATS is up now. */
  get connected(): boolean {
    return this.#up;
  }

  /** The server this node is connected to. */
  get server(): string {
    return this.#nc.getServer();
  }

  publish(subject: string, data: string): void {
    try {
      this.#nc.publish(subject, data);
    } catch (error) {
      // Closed or draining: the store has the message; other nodes catch up from it.
      this.#log.debug("cluster: publish failed", { error });
    }
  }

  subscribe(subject: string, handler: (data: string) => void): void {
    const sub = this.#nc.subscribe(subject);
    void (async () => {
      for await (const m of sub) {
        try {
          handler(this.#decoder.decode(m.data));
        } catch (error) {
          this.#log.warn("cluster: handling a message failed", { error });
        }
      }
    })();
  }

  onReconnect(handler: () => void): void {
    this.#reconnected.push(handler);
  }

  answer(subject: string, handler: (data: string) => string): void {
    this.#nc.subscribe(subject, {
      callback: (error, m) => {
        if (error || !m.reply) return;
        try {
          m.respond(handler(this.#decoder.decode(m.data)));
        } catch (e) {
          this.#log.warn("cluster: answering a request failed", { error: e });
        }
      },
    });
  }

  async ask(subject: string, data: string, expected: number, waitMs: number): Promise<string[]> {
    if (expected <= 0 || !this.#up) return [];
    const inbox = `_INBOX.chat.${crypto.randomUUID()}`;
    const answers: string[] = [];
    const sub = this.#nc.subscribe(inbox, { max: expected });
    const timer = setTimeout(() => sub.unsubscribe(), waitMs);
    try {
      this.#nc.publish(subject, data, { reply: inbox });
      for await (const m of sub) answers.push(this.#decoder.decode(m.data));
    } finally {
      clearTimeout(timer);
    }
    return answers;
  }

  async #watch(): Promise<void> {
    for await (const s of this.#nc.status()) {
      if (s.type === "disconnect") {
        if (this.#up) this.#log.warn("cluster: lost NATS; serving this node's users meanwhile");
        this.#up = false;
      } else if (s.type === "reconnect") {
        this.#up = true;
        this.#log.info("cluster: NATS is back", { server: this.#nc.getServer() });
        for (const h of this.#reconnected) h();
      }
    }
  }

  /** Flushes what is buffered and closes. */
  async close(): Promise<void> {
    try {
      await this.#nc.drain();
    } catch {
      await this.#nc.close().catch(() => {});
    }
  }
}
