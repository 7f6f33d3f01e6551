/**
 * One TCP connection: tells programs from people by the first bytes (a `{` is a program), hands
 * frames to the hub, and writes through the shared outbound queue. Programs' JSON objects are
 * framed by their braces, newline or not (json_framing.ts), and the first object says JSON or
 * JIM (jim.ts); people get the text mode, by lines (text_mode.ts); telnet programs get heartbeat
 * probes they answer by themselves (telnet.ts).
 * @module
 */

import {
  type ClientFrame,
  encodeFrame,
  ProtocolError,
  type ServerFrame,
} from "../../../protocol/frames.ts";
import { decodeClientFrame, decodeClientValue, refOfLine } from "../../../protocol/decode.ts";
import { HEARTBEAT_CHECKS_PER_BEAT, heartbeatDue } from "../../../protocol/heartbeat.ts";
import {
  HEARTBEAT_MS,
  LOGIN_TIMEOUT_MS,
  MAX_LINE_BYTES,
  MAX_OUTBOUND_BYTES,
  TEXT_GREETING_DELAY_MS,
} from "../../../protocol/limits.ts";
import type { Hub } from "../../core/hub.ts";
import {
  concatBytes,
  Outbound,
  type Peer,
  reuseLastJoin,
  type Transport,
} from "../../core/peer.ts";
import type { Logger } from "../../log.ts";
import { OutboundQueue, writeAll } from "../outbound.ts";
import { every } from "../ticker.ts";
import {
  answersTimingMark,
  ECHO_OFF,
  ECHO_ON,
  IAC,
  stripTelnet,
  TIMING_MARK_PROBE,
} from "./telnet.ts";
import { isJim, type JimObject, JimSession } from "./jim.ts";
import { ObjectOutput } from "./paced_writes.ts";
import { JsonFramer } from "../json_framing.ts";
import { LineFramer } from "./line_framing.ts";
import { GREETING, type TextAction, textLines, TextSession } from "./text_mode.ts";

/** Options of the TCP listener. */
export interface TcpOptions {
  log: Logger;
  /** Bytes queued for one connection before it is dropped as too slow. */
  maxOutboundBytes?: number;
  /** Silence after connecting before a person is greeted with a nickname prompt. */
  greetingDelayMs?: number;
  /** Time to complete a login before the connection is closed. */
  loginTimeoutMs?: number;
  /** Silence before a heartbeat: a `ping` (JSON), a TIMING-MARK (telnet clients). */
  heartbeatMs?: number;
}

const encoder = new TextEncoder();
/** Whole lines are decoded at once (no streaming state), so every connection can share one. */
const decoder = new TextDecoder();
/** Nothing pending: shared, never written into. */
const EMPTY = new Uint8Array(0);
/**
 * Reads start with a small buffer, since an idle connection holds its buffer for as long as its
 * read is pending; a read that fills the buffer doubles it, up to the largest size, so a client
 * that pipelines still gets big reads.
 */
const READ_BUFFER_MIN_BYTES = 256;
const READ_BUFFER_MAX_BYTES = 16_384;
/** How long a dropped slow reader gets to take its goodbye frame. */
const SLOW_GRACE_MS = 2000;
/** Output replaces a prompt left on screen: back to column 0, clear the line. */
const CLEAR_PROMPT = "\r\x1b[K";

function jsonLine(frame: ServerFrame): Uint8Array {
  return encoder.encode(encodeFrame(frame) + "\n");
}

/** A tick's frames as one buffer, joined once for all readers whose queues match. */
const joinTick = reuseLastJoin(concatBytes);

/** One TCP connection, as the hub's `Peer`. */
export class TcpConnection implements Peer {
  readonly ip: string;
  #hub: Hub;
  #conn: Deno.Conn;
  #log: Logger;
  #id: number;
  /** "new" until the first bytes say which mode; then JSON, JIM, or a person's text session. */
  #text: TextSession | null = null;
  /** How the bytes are cut: a program's JSON objects, or a person's lines (chosen by the first). */
  #framing: JsonFramer | LineFramer | null = null;
  /** Bytes before the first that is not a space (kept until it comes). */
  #undecided: Uint8Array = EMPTY;
  #json = false;
  /** A JIM client (seed 004), detected by a first object with an `action` and no `type`. */
  #jim: JimSession | null = null;
  /** A program's objects on their way out (paced for those that read one per `recv()`). */
  #objects: ObjectOutput | null = null;
  #greetingDelay: number;
  #greetingTimer: ReturnType<typeof setTimeout> | undefined;
  #loginTimer: ReturnType<typeof setTimeout> | undefined;
  #loginTimeout: number;
  #heartbeatMs: number;
  /** Stops this connection's heartbeat checks (on the shared ticker), once started. */
  #stopHeartbeat: (() => void) | undefined;
  #lastHeard = Date.now();
  /** Answered a heartbeat once: from then on, three silent beats mean the peer is gone. */
  #answersPings = false;
  /** Sent a telnet command: a telnet program, which takes (and answers) TIMING-MARK probes. */
  #speaksTelnet = false;
  /** Probes sent since the peer was last heard. */
  #unanswered = 0;
  #queue: OutboundQueue<Uint8Array>;
  /** Bytes a reader may fall behind by (the queue's bound, and the paced objects'). */
  readonly #maxOutbound: number;
  #closing = false;
  #closed = false;
  /** What a text-mode user said with /quit, told to the others as they go. */
  #farewell: string | undefined;
  #promptShown = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;

  /** Wraps an accepted connection and registers it with the hub. */
  constructor(hub: Hub, conn: Deno.Conn, options: TcpOptions) {
    this.#hub = hub;
    this.#conn = conn;
    this.#log = options.log;
    this.#greetingDelay = options.greetingDelayMs ?? TEXT_GREETING_DELAY_MS;
    this.#loginTimeout = options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#maxOutbound = options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES;
    this.#queue = new OutboundQueue<Uint8Array>({
      size: (b) => b.length,
      join: joinTick,
      write: (chunk) => writeAll(this.#conn, chunk),
      beforeWrite: () => this.#promptBytes(),
      slow: (queued) => this.#dropSlow(queued),
      failed: (error) => {
        if (!isDisconnect(error)) this.#log.warn("tcp write failed", { ip: this.ip, error });
        this.#hardClose();
      },
    }, this.#maxOutbound);
    this.#id = hub.connect(this);
  }

  /** The wire, as the admin's connections table shows it. */
  get transport(): Transport {
    return this.#text ? "tcp-text" : this.#jim ? "tcp-jim" : "tcp-json";
  }

  /** Reads until the peer goes; settles once the connection is closed. */
  async run(): Promise<void> {
    // Whoever has not logged in by then (a slowloris, a forgotten socket) is let go.
    this.#loginTimer = setTimeout(() => {
      this.#sendFrame({
        type: "bye",
        code: "too_slow",
        reason: "You did not log in in time; connect again when ready",
      });
      this.close("login timeout");
    }, this.#loginTimeout);
    this.#greetingTimer = setTimeout(() => {
      this.#greetingTimer = undefined;
      if (!this.#json && !this.#text) this.#enterText(true);
    }, this.#greetingDelay);
    try {
      await this.#readLines();
    } catch (error) {
      if (!isDisconnect(error)) this.#log.warn("tcp read failed", { ip: this.ip, error });
    } finally {
      this.#clearGreetingTimer();
      this.#clearLoginTimer();
      this.#stopHeartbeat?.();
      // The peer may only have closed its sending side: answer what it sent before going.
      if (!this.#closed) await this.#hub.whenHandled(this.#id);
      this.#hub.disconnect(this.#id, this.#farewell);
      this.#closing = true;
      // A client that only closed its sending side still reads what it was owed.
      this.#objects?.flush();
      this.#queue.seal();
      await this.#queue.drained();
      this.#hardClose();
    }
  }

  async #readLines(): Promise<void> {
    let buf = new Uint8Array(READ_BUFFER_MIN_BYTES);
    while (!this.#closing) {
      const n = await this.#conn.read(buf);
      if (n === null) return;
      this.#lastHeard = Date.now();
      this.#unanswered = 0;
      const raw = buf.subarray(0, n);
      if (raw.includes(IAC)) {
        this.#speaksTelnet = true;
        if (answersTimingMark(raw)) this.#answersPings = true;
      }
      // `buf` is only read into again after every item of this chunk has been handled.
      const chunk = this.#choose(stripTelnet(raw));
      const framing = this.#framing;
      if (chunk === null || framing === null) {
        if (this.#undecided.length > MAX_LINE_BYTES) return this.#tooLong();
        continue;
      }
      this.#objects?.noteRead(chunk);
      framing.feed(chunk);
      for (let item = framing.next(); item !== null; item = framing.next()) {
        if (item.length > MAX_LINE_BYTES) return this.#tooLong();
        const text = decoder.decode(item);
        if (framing instanceof JsonFramer) await this.#object(text, framing.lastWasJunk);
        else await this.#line(text);
        if (this.#closing) return;
      }
      if (framing.pendingBytes > MAX_LINE_BYTES) return this.#tooLong();
      // Nothing refers to `buf` any more: size it to what the client sends.
      if (n === buf.length && n < READ_BUFFER_MAX_BYTES) buf = new Uint8Array(n * 2);
      else if (n < buf.length / 8 && buf.length > READ_BUFFER_MIN_BYTES) {
        buf = new Uint8Array(buf.length / 2);
      }
    }
  }

  /**
   * Until the first byte that is not a space says who is there, bytes wait: a `{` is a program
   * (JSON objects by their syntax; a greeting sent to it while it was silent is taken back: a GUI
   * client connecting before its user logs in), anything else a person (lines). Returns what to
   * frame, or null while undecided.
   */
  #choose(chunk: Uint8Array): Uint8Array | null {
    if (this.#framing) return chunk;
    const all = this.#undecided.length === 0 ? chunk : concatBytes([this.#undecided, chunk]);
    const first = all.find((b) => b !== 32 && b !== 9 && b !== 13);
    if (first === undefined) {
      this.#undecided = all === chunk ? chunk.slice() : all;
      return null;
    }
    this.#undecided = EMPTY;
    if (first === 0x7b /* { */) {
      this.#clearGreetingTimer();
      if (this.#text?.phase !== "chat") this.#text = null;
      this.#framing = new JsonFramer();
      this.#objects = new ObjectOutput(
        (bytes) => this.#queue.push(bytes),
        (waiting) => this.#dropSlow(waiting),
        this.#maxOutbound,
      );
    } else this.#framing = new LineFramer();
    return all;
  }

  /** One object (or junk between objects) from a program; the first says JSON or JIM. */
  async #object(text: string, junk: boolean): Promise<void> {
    if (!this.#json && !this.#jim) {
      let jim = false;
      try {
        jim = !junk && isJim(JSON.parse(text));
      } catch { /* not JSON: answered as the JSON wire answers it */ }
      if (jim) {
        this.#jim = new JimSession();
        this.#objects?.jim();
      } else this.#json = true;
    }
    if (this.#jim) return await this.#jimObject(text);
    try {
      const frame = decodeClientFrame(text);
      // Only a real answer counts (a message saying "pong" is not one).
      if (frame.type === "pong") this.#answersPings = true;
      await this.#hub.receive(this.#id, frame);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      await this.#hub.reject(this.#id, error, refOfLine(text));
    }
  }

  /**
   * After a silence, JSON connections get a `ping` and telnet programs a TIMING-MARK (IAC DO TM,
   * which a telnet client answers by itself with WILL or WONT). One that has answered before and
   * then stays silent through two probes (three beats) is taken for dead (its machine gone
   * without closing the socket) and closed, so presence is right within a minute. Clients that
   * never answer (the seed protocol's) are never dropped for it, and people on netcat are never
   * sent telnet bytes, which their terminal would show as junk: for them only TCP keepalive is
   * left.
   */
  #startHeartbeat(): void {
    this.#stopHeartbeat = every(this.#heartbeatMs / HEARTBEAT_CHECKS_PER_BEAT, this);
  }

  /** One heartbeat check (the shared ticker calls it): probe a quiet peer, drop a gone one. */
  tick(): void {
    if (!this.#json && !this.#speaksTelnet) return;
    const due = heartbeatDue(Date.now() - this.#lastHeard, this.#heartbeatMs, this.#unanswered);
    if (due.gone && this.#answersPings) {
      this.#log.info("closing a tcp connection that stopped answering heartbeats", {
        ip: this.ip,
      });
      this.#stopHeartbeat?.();
      this.close("no heartbeat");
      this.#hardClose();
      return;
    }
    if (!due.probe) return;
    this.#unanswered++;
    if (this.#json) this.#sendFrame({ type: "ping", timestamp: new Date().toISOString() });
    else this.#queue.push(TIMING_MARK_PROBE);
  }

  #clearLoginTimer(): void {
    clearTimeout(this.#loginTimer);
    this.#loginTimer = undefined;
  }

  #clearGreetingTimer(): void {
    clearTimeout(this.#greetingTimer);
    this.#greetingTimer = undefined;
  }

  async #jimObject(text: string): Promise<void> {
    const jim = this.#jim!;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.#jimWrite({ response: 400, error: "That is not valid JSON" });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return this.#jimWrite({ response: 400, error: "A JIM message is a JSON object" });
    }
    const action = jim.incoming(value as JimObject);
    if (action.kind === "reply") return this.#jimWrite(action.reply);
    if (action.kind === "close") return this.close("exit");
    let frame: ClientFrame;
    try {
      // The frame decoder checks every field, as for every other wire.
      frame = decodeClientValue(action.frame);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.#jimWrite({ response: 400, error: error.message });
    }
    await this.#hub.receive(this.#id, frame);
    if (jim.wantsChallenge) {
      jim.wantsChallenge = false;
      await this.#hub.receive(this.#id, jim.challengeFrame());
    }
  }

  #jimWrite(obj: JimObject): void {
    this.#writeObject(encoder.encode(JSON.stringify(obj) + "\n"));
  }

  /** One object's line to a program (before its first byte, say a login timeout's, unpaced). */
  #writeObject(bytes: Uint8Array): void {
    if (this.#objects) this.#objects.write(bytes);
    else this.#queue.push(bytes);
  }

  #tooLong(): void {
    this.#sendFrame({
      type: "bye",
      code: "too_long",
      reason: `A line was longer than ${MAX_LINE_BYTES} bytes; the connection is closed`,
    });
    this.close("line too long");
  }

  /** A line from a person (the first one, if it did not start with `{`, makes them one). */
  async #line(line: string): Promise<void> {
    if (!this.#text) {
      this.#clearGreetingTimer();
      this.#enterText(false);
    }
    return await this.#act(this.#text!.line(line), true);
  }

  #enterText(greet: boolean): void {
    this.#text = new TextSession();
    if (greet) this.#writeText(GREETING);
  }

  async #act(action: TextAction, typed: boolean): Promise<void> {
    // The person pressed Enter: the prompt they typed after is no longer on the current line.
    if (typed && this.#text?.phase === "chat") this.#promptShown = false;
    // A password is typed with the client's echo off (telnet); its Enter was not shown either.
    const echo = "echo" in action ? action.echo : undefined;
    if (echo === false) this.#queue.push(ECHO_OFF);
    if (echo === true) {
      this.#queue.push(ECHO_ON);
      this.#queue.push(encoder.encode("\r\n"));
    }
    switch (action.kind) {
      case "show":
        return this.#writeText(action.text);
      case "send":
        return await this.#hub.receive(this.#id, action.frame);
      case "close":
        this.#writeText(action.text);
        this.#farewell = action.farewell;
        return this.close(action.reason);
      case "none":
        return;
    }
  }

  /** Called by the hub with every frame for this connection. */
  send(out: Outbound): void {
    if (this.#closing) return;
    if (out.frame.type === "welcome") {
      this.#clearLoginTimer();
      if (this.#stopHeartbeat === undefined) this.#startHeartbeat();
    }
    if (this.#jim) {
      for (const obj of this.#jim.outgoing(out.frame)) this.#jimWrite(obj);
      return;
    }
    if (!this.#text) return this.#writeObject(out.encoded("json-line", jsonLine));
    void this.#act(this.#text.frame(out.frame, () => out.encoded("text", textLines)), false);
  }

  #sendFrame(frame: ServerFrame): void {
    this.send(new Outbound(frame));
  }

  #writeText(text: string): void {
    // New output replaces a prompt left on screen; the queue puts the prompt back after it.
    if (this.#promptShown) {
      this.#promptShown = false;
      text = CLEAR_PROMPT + text;
    }
    this.#queue.push(encoder.encode(text));
  }

  /** The prompt, appended to a write in chat when none is on screen. */
  #promptBytes(): Uint8Array | null {
    if (this.#text?.phase !== "chat" || this.#promptShown || this.#closing) return null;
    this.#promptShown = true;
    return encoder.encode(this.#text.prompt());
  }

  /**
   * A reader this far behind would hold memory for the whole room: forget its backlog, tell it
   * why in one last frame, and close once that is written or after a grace period.
   */
  #dropSlow(queued: number): void {
    this.#log.warn("dropping slow tcp reader", { ip: this.ip, queued });
    const bye = this.#text
      ? encoder.encode(
        "\r\n* Disconnected: you fell too far behind reading; reconnect to catch up\r\n",
      )
      : jsonLine({
        type: "bye",
        code: "too_slow",
        reason: "You fell too far behind reading; reconnect to catch up",
      });
    this.#closing = true;
    this.#objects?.stop();
    this.#queue.finish(bye, { forgetBacklog: true });
    this.#graceTimer = setTimeout(() => this.#hardClose(), SLOW_GRACE_MS);
    void this.#queue.drained().then(() => this.#hardClose());
  }

  /** Closes after what is queued has been written. */
  close(_reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#objects?.flush();
    this.#queue.seal();
    void this.#queue.drained().then(() => this.#hardClose());
  }

  #hardClose(): void {
    clearTimeout(this.#graceTimer);
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** Whether an I/O error only means the peer went away. */
function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}
