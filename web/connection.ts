/**
 * The console's connection to the server: one WebSocket, reconnecting with backoff, resuming by
 * message id, with its own heartbeat.
 * @module
 */

import { HEARTBEAT_CHECKS_PER_BEAT, HEARTBEAT_REF, heartbeatDue } from "../protocol/heartbeat.ts";
import { HEARTBEAT_MS } from "../protocol/limits.ts";
import type { ClientFrame, ServerFrame } from "../protocol/frames.ts";

/** The server's heartbeat, which the page it served carries (`--heartbeat`). */
const BEAT_MS = Number(document.body.dataset.heartbeatMs) || HEARTBEAT_MS;

/**
 * The connection to the server: one WebSocket, reconnecting with backoff, resuming by id. A
 * browser never says when the server's machine vanished without closing, so the console keeps a
 * heartbeat too: a `ping` after a beat without a word from the server, a new connection after
 * three.
 */
export class Connection {
  #ws: WebSocket | null = null;
  #token: string;
  #lastId = "";
  #delay = 500;
  #closed = false;
  #lastHeard = 0;
  #pinged = 0;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  onFrame: (f: ServerFrame) => void = () => {};
  onState: (up: boolean) => void = () => {};

  /** A connection that logs in with `token` once opened. */
  constructor(token: string) {
    this.#token = token;
  }

  /** Opens (or reopens) the WebSocket. */
  open(): void {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    // The token goes in the first frame, not the URL (URLs end up in logs and histories).
    const ws = new WebSocket(`${proto}://${location.host}/ws`);
    this.#ws = ws;
    this.#lastHeard = Date.now();
    this.#pinged = 0;
    clearInterval(this.#watchdog);
    this.#watchdog = setInterval(() => this.#beat(ws), BEAT_MS / HEARTBEAT_CHECKS_PER_BEAT);
    ws.onopen = () => {
      this.#delay = 500;
      ws.send(JSON.stringify({
        type: "auth",
        token: this.#token,
        ...(this.#lastId ? { since: this.#lastId } : {}),
      }));
      this.onState(true);
    };
    ws.onmessage = (e) => {
      this.#lastHeard = Date.now();
      this.#pinged = 0;
      // One frame per message (split anyway: a message of several, one per line, reads too).
      for (const line of String(e.data).split("\n")) {
        if (!line) continue;
        const f = JSON.parse(line) as ServerFrame;
        if (f.type === "pong" && f.ref === HEARTBEAT_REF) continue;
        if ((f.type === "message" || f.type === "private") && f.id > this.#lastId) {
          this.#lastId = f.id;
        }
        this.onFrame(f);
      }
    };
    ws.onclose = () => this.#lost(ws);
  }

  /** A quarter beat's check: ping a silent server, give up on one silent for three beats. */
  #beat(ws: WebSocket): void {
    const due = heartbeatDue(Date.now() - this.#lastHeard, BEAT_MS, this.#pinged);
    if (due.gone) {
      // Its close would wait on the dead server: forget it and start afresh.
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close();
      this.#lost(ws);
      return;
    }
    if (due.probe) {
      this.#pinged++;
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "ping", ref: HEARTBEAT_REF }));
      }
    }
  }

  #lost(ws: WebSocket): void {
    if (ws !== this.#ws) return;
    clearInterval(this.#watchdog);
    this.onState(false);
    if (this.#closed) return;
    setTimeout(() => this.open(), this.#delay);
    this.#delay = Math.min(this.#delay * 2, 15_000);
  }

  /** Sends a frame if the socket is open. */
  send(frame: ClientFrame): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  /** Closes for good. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#watchdog);
    this.#ws?.close();
  }
}
