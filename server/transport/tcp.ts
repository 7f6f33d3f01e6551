/**
 * The TCP wire: newline-delimited JSON for programs and plain text for people on telnet or
 * netcat, told apart by the first line. This module only frames bytes and calls the hub;
 * every chat rule lives in the core.
 * @module
 */

import {
  decodeClientFrame,
  encodeFrame,
  type Mode,
  ProtocolError,
  type ServerFrame,
} from "../../protocol/frames.ts";
import { HEARTBEAT_CHECKS_PER_BEAT, heartbeatDue } from "../../protocol/heartbeat.ts";
import {
  HEARTBEAT_MS,
  LOGIN_TIMEOUT_MS,
  MAX_LINE_BYTES,
  MAX_OUTBOUND_BYTES,
  TEXT_GREETING_DELAY_MS,
} from "../../protocol/limits.ts";
import {
  ADMIN_HELP_LINES,
  HELP_LINES,
  parseLine,
  promptFor,
  renderFrame,
} from "../../protocol/text.ts";
import type { Hub } from "../core/hub.ts";
import { concatBytes, Outbound, type Peer, reuseLastJoin, type Transport } from "../core/peer.ts";
import type { Logger } from "../log.ts";

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

/** A running TCP listener. */
export interface TcpServer {
  /** Stops accepting; open connections are closed by the hub's shutdown. */
  close(): void;
  /** Settles when the accept loop and every connection have ended. */
  finished: Promise<void>;
}

const encoder = new TextEncoder();
/** Whole lines are decoded at once (no streaming state), so every connection can share one. */
const decoder = new TextDecoder();
/**
 * Reads start with a small buffer, since an idle connection holds its buffer for as long as its
 * read is pending; a read that fills the buffer doubles it, up to the largest size, so a client
 * that pipelines still gets big reads.
 */
const READ_BUFFER_MIN_BYTES = 512;
const READ_BUFFER_MAX_BYTES = 16_384;
/** How long a dropped slow reader gets to take its goodbye frame. */
const SLOW_GRACE_MS = 2000;

/** Serves the chat on a TCP listener. */
export function serveTcp(hub: Hub, listener: Deno.Listener, options: TcpOptions): TcpServer {
  const connections = new Set<Promise<void>>();
  const accept = (async () => {
    try {
      for await (const conn of listener) {
        const refusal = hub.admit((conn.remoteAddr as Deno.NetAddr).hostname);
        if (refusal) {
          // Told why in both forms a client may expect, then closed.
          void conn.write(
            encoder.encode(
              JSON.stringify({ type: "bye", code: "too_slow", reason: refusal }) + "\n",
            ),
          )
            .catch(() => {}).finally(() => {
              try {
                conn.close();
              } catch { /* gone */ }
            });
          continue;
        }
        // The last resort for peers that answer no heartbeat (netcat, seed clients): the
        // system's TCP keepalive finds a vanished machine, if only after its own timeout.
        try {
          (conn as Deno.TcpConn).setKeepAlive(true);
        } catch { /* not a TCP connection */ }
        const done = new TcpConnection(hub, conn, options).run();
        connections.add(done);
        void done.finally(() => connections.delete(done));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        options.log.error("tcp accept failed", { error });
      }
    }
  })();
  return {
    close: () => {
      try {
        listener.close();
      } catch { /* already closed */ }
    },
    finished: accept.then(async () => {
      await Promise.allSettled([...connections]);
    }),
  };
}

type Phase = "new" | "json" | "name" | "password" | "chat";

function jsonLine(frame: ServerFrame): Uint8Array {
  return encoder.encode(encodeFrame(frame) + "\n");
}

function textLine(frame: ServerFrame): string | null {
  const text = renderFrame(frame);
  return text === null ? null : text.replace(/\n/g, "\r\n") + "\r\n";
}

/** One TCP connection: reads lines, writes coalesced frames, and for people runs the login dialogue. */
class TcpConnection implements Peer {
  readonly ip: string;
  #hub: Hub;
  #conn: Deno.Conn;
  #log: Logger;
  #id: number;
  #phase: Phase = "new";
  #maxOutbound: number;
  #greetingDelay: number;
  #greetingTimer: ReturnType<typeof setTimeout> | undefined;
  #loginTimer: ReturnType<typeof setTimeout> | undefined;
  #loginTimeout: number;
  #heartbeatMs: number;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #lastHeard = Date.now();
  /** Answered a heartbeat once: from then on, three silent beats mean the peer is gone. */
  #answersPings = false;
  /** Sent a telnet command: a telnet program, which takes (and answers) TIMING-MARK probes. */
  #speaksTelnet = false;
  /** Probes sent since the peer was last heard. */
  #unanswered = 0;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #writing: Promise<void> | null = null;
  #closing = false;
  #closed = false;
  // Text mode state: the name being logged in, the prompt's mode, who asked for a session.
  #pendingName = "";
  #mode: Mode = { kind: "room", room: "general" };
  #pendingSessionFrom: string | undefined;
  #passwordTries = 0;
  #promptShown = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(hub: Hub, conn: Deno.Conn, options: TcpOptions) {
    this.#hub = hub;
    this.#conn = conn;
    this.#log = options.log;
    this.#maxOutbound = options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES;
    this.#greetingDelay = options.greetingDelayMs ?? TEXT_GREETING_DELAY_MS;
    this.#loginTimeout = options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.ip = addr.hostname;
    this.#id = hub.connect(this);
  }

  get transport(): Transport {
    return this.#phase === "json" || this.#phase === "new" ? "tcp-json" : "tcp-text";
  }

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
      if (this.#phase === "new") this.#enterText();
    }, this.#greetingDelay);
    let buf = new Uint8Array(READ_BUFFER_MIN_BYTES);
    let pending: Uint8Array = new Uint8Array(0);
    try {
      while (!this.#closing) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#lastHeard = Date.now();
        this.#unanswered = 0;
        const raw = buf.subarray(0, n);
        if (raw.includes(IAC)) {
          this.#speaksTelnet = true;
          if (answersTimingMark(raw)) this.#answersPings = true;
        }
        // `buf` is only read into again after every line of this chunk has been handled.
        const chunk = stripTelnet(raw);
        let start = 0;
        for (let i = 0; i < chunk.length; i++) {
          if (chunk[i] !== 10) continue;
          const lineBytes = concat(pending, chunk.subarray(start, i));
          pending = new Uint8Array(0);
          start = i + 1;
          if (lineBytes.length > MAX_LINE_BYTES) return this.#tooLong();
          await this.#line(decoder.decode(lineBytes).replace(/\r$/, ""));
          if (this.#closing) return;
        }
        pending = concat(pending, chunk.subarray(start));
        if (pending.length > MAX_LINE_BYTES) return this.#tooLong();
        // Nothing refers to `buf` any more: size it to what the client sends.
        if (n === buf.length && n < READ_BUFFER_MAX_BYTES) buf = new Uint8Array(n * 2);
        else if (n < buf.length / 8 && buf.length > READ_BUFFER_MIN_BYTES) {
          buf = new Uint8Array(buf.length / 2);
        }
      }
    } catch (error) {
      if (!isDisconnect(error)) this.#log.warn("tcp read failed", { ip: this.ip, error });
    } finally {
      clearTimeout(this.#greetingTimer);
      clearTimeout(this.#loginTimer);
      clearInterval(this.#heartbeat);
      // The peer may only have closed its sending side: answer what it sent before going.
      if (!this.#closed) await this.#hub.settle(this.#id);
      this.#hub.disconnect(this.#id);
      await this.#drainThenClose();
    }
  }

  /**
   * After a silence, JSON connections get a `ping` and telnet programs a TIMING-MARK (IAC DO TM,
   * which a telnet client answers by itself with WILL or WONT). One that has answered before and
   * then stays silent through two probes (three beats) is taken for dead (its machine gone without closing the socket) and
   * closed, so presence is right within a minute. Clients that never answer (the seed protocol's)
   * are never dropped for it, and people on netcat are never sent telnet bytes, which their
   * terminal would show as junk: for them only TCP keepalive is left.
   */
  #startHeartbeat(): void {
    this.#heartbeat = setInterval(() => {
      const json = this.#phase === "json";
      if (!json && !this.#speaksTelnet) return;
      const due = heartbeatDue(Date.now() - this.#lastHeard, this.#heartbeatMs, this.#unanswered);
      if (due.gone && this.#answersPings) {
        this.#log.info("closing a tcp connection that stopped answering heartbeats", {
          ip: this.ip,
        });
        clearInterval(this.#heartbeat);
        this.close("no heartbeat");
        this.#hardClose();
        return;
      }
      if (!due.probe) return;
      this.#unanswered++;
      if (json) this.#sendFrame({ type: "ping", timestamp: new Date().toISOString() });
      else this.#enqueue(TIMING_MARK_PROBE);
    }, this.#heartbeatMs / HEARTBEAT_CHECKS_PER_BEAT);
  }

  #tooLong(): void {
    this.#sendFrame({
      type: "bye",
      code: "too_long",
      reason: `A line was longer than ${MAX_LINE_BYTES} bytes; the connection is closed`,
    });
    this.close("line too long");
  }

  async #line(line: string): Promise<void> {
    if (this.#phase === "new") {
      clearTimeout(this.#greetingTimer);
      if (line.trimStart().startsWith("{")) this.#phase = "json";
      else this.#enterText(false);
    }
    if (this.#phase === "json") {
      if (line.trim() === "") return;
      try {
        const frame = decodeClientFrame(line);
        // Only a real answer counts (a message saying "pong" is not one).
        if (frame.type === "pong") this.#answersPings = true;
        await this.#hub.receive(this.#id, frame);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.#hub.reject(this.#id, error);
      }
      return;
    }
    await this.#textLine(line);
  }

  #enterText(greet = true): void {
    this.#phase = "name";
    if (greet) this.#writeText("Welcome to chat!\r\nEnter your nickname: ");
  }

  async #textLine(line: string): Promise<void> {
    switch (this.#phase) {
      case "name": {
        const name = line.trim();
        if (name === "") return this.#writeText("Enter your nickname: ");
        this.#pendingName = name;
        return await this.#hub.receive(this.#id, { type: "hello", username: name });
      }
      case "password":
        return await this.#hub.receive(this.#id, {
          type: "hello",
          username: this.#pendingName,
          password: line,
        });
      default:
        break;
    }
    // The person pressed Enter: the prompt they typed after is no longer on the current line.
    this.#promptShown = false;
    const parsed = parseLine(line, { pendingSessionFrom: this.#pendingSessionFrom });
    switch (parsed.kind) {
      case "empty":
        return this.#writeText("");
      case "help":
        return this.#writeText(HELP_LINES.join("\r\n") + "\r\n");
      case "admin_help":
        return this.#writeText(ADMIN_HELP_LINES.join("\r\n") + "\r\n");
      case "quit":
        this.#writeText("Bye!\r\n");
        return this.close("quit");
      case "error":
        return this.#writeText(`! ${parsed.message}\r\n`);
      case "frame":
        if (parsed.frame.type === "session_response") this.#pendingSessionFrom = undefined;
        return await this.#hub.receive(this.#id, parsed.frame);
    }
  }

  /** Called by the hub with every frame for this connection. */
  send(out: Outbound): void {
    if (this.#closing) return;
    if (out.frame.type === "welcome") {
      clearTimeout(this.#loginTimer);
      if (this.#heartbeat === undefined) this.#startHeartbeat();
    }
    if (this.#phase === "json" || this.#phase === "new") {
      this.#enqueue(out.encoded("json-line", jsonLine));
      return;
    }
    this.#textFrame(out);
  }

  #textFrame(out: Outbound): void {
    const f = out.frame;
    if (this.#phase !== "chat") {
      // The login dialogue: the hub's answers to hello become questions to the person.
      if (f.type === "error") {
        if (f.code === "password_required" || f.code === "bad_password") {
          if (f.code === "bad_password" && ++this.#passwordTries >= 3) {
            this.#writeText("! Wrong password three times. Bye.\r\n");
            return this.close("bad password");
          }
          this.#phase = "password";
          return this.#writeText(
            `${
              f.code === "bad_password" ? "! Wrong password.\r\n" : ""
            }Password for ${this.#pendingName}: `,
          );
        }
        this.#phase = "name";
        return this.#writeText(`! ${f.message}\r\nEnter your nickname: `);
      }
      if (f.type === "welcome") this.#phase = "chat";
    }
    if ("mode" in f && f.mode) this.#mode = f.mode;
    if (f.type === "session_request") this.#pendingSessionFrom = f.from_username;
    if (f.type === "bye") {
      this.#writeText(`* Disconnected: ${f.reason}\r\n`);
      return;
    }
    const text = out.encoded("text", textLine);
    if (text !== null) this.#writeText(text);
  }

  #sendFrame(frame: ServerFrame): void {
    this.send(new Outbound(frame));
  }

  #writeText(text: string): void {
    // New output replaces a prompt left on screen; #flush puts the prompt back after it.
    if (this.#promptShown) {
      this.#promptShown = false;
      text = "\r\x1b[K" + text;
    }
    this.#enqueue(encoder.encode(text));
  }

  #enqueue(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#queuedBytes += bytes.length;
    if (this.#queuedBytes > this.#maxOutbound) return this.#dropSlow();
    this.#queue.push(bytes);
    // Everything queued in this tick goes out in one write.
    this.#writing ??= Promise.resolve().then(() => this.#flush());
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        if (this.#phase === "chat" && !this.#promptShown && !this.#closing) {
          const prompt = encoder.encode(promptFor(this.#mode));
          this.#queue.push(prompt);
          this.#queuedBytes += prompt.length;
          this.#promptShown = true;
        }
        const chunk = this.#queue.length === 1 ? this.#queue[0]! : joinTick(this.#queue);
        this.#queue = [];
        let off = 0;
        while (off < chunk.length) off += await this.#conn.write(chunk.subarray(off));
        // A drop may have reset the count while this chunk was being written.
        this.#queuedBytes = Math.max(0, this.#queuedBytes - chunk.length);
      }
    } catch (error) {
      if (!isDisconnect(error)) this.#log.warn("tcp write failed", { ip: this.ip, error });
      this.#hardClose();
    } finally {
      this.#writing = null;
      if (this.#closing) this.#hardClose();
    }
  }

  /**
   * A reader this far behind would hold memory for the whole room: forget its backlog, tell it
   * why in one last frame, and close once that is written or after a grace period.
   */
  #dropSlow(): void {
    this.#log.warn("dropping slow tcp reader", { ip: this.ip, queued: this.#queuedBytes });
    const bye = this.#phase === "json" || this.#phase === "new"
      ? jsonLine({
        type: "bye",
        code: "too_slow",
        reason: "You fell too far behind reading; reconnect to catch up",
      })
      : encoder.encode(
        "\r\n* Disconnected: you fell too far behind reading; reconnect to catch up\r\n",
      );
    this.#queue = [bye];
    this.#queuedBytes = bye.length;
    this.#closing = true;
    this.#graceTimer = setTimeout(() => this.#hardClose(), SLOW_GRACE_MS);
    this.#writing ??= Promise.resolve().then(() => this.#flush());
  }

  /** Closes after what is queued has been written. */
  close(_reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#writing) this.#hardClose();
  }

  async #drainThenClose(): Promise<void> {
    this.#closing = true;
    if (this.#writing) await this.#writing;
    this.#hardClose();
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

function isDisconnect(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.NotConnected;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A tick's frames as one buffer, joined once for all readers whose queues match. */
const joinTick = reuseLastJoin(concatBytes);

const IAC = 0xff;
const DO = 253;
const WILL = 251;
const WONT = 252;
const TIMING_MARK = 6;
/** IAC DO TIMING-MARK: "tell me you are there" in telnet (RFC 860). */
const TIMING_MARK_PROBE = new Uint8Array([IAC, DO, TIMING_MARK]);

/** Whether `bytes` hold a telnet client's answer to a TIMING-MARK probe (IAC WILL/WONT TM). */
export function answersTimingMark(bytes: Uint8Array): boolean {
  for (let i = bytes.indexOf(IAC); i >= 0 && i < bytes.length - 2; i = bytes.indexOf(IAC, i + 1)) {
    const cmd = bytes[i + 1];
    if ((cmd === WILL || cmd === WONT) && bytes[i + 2] === TIMING_MARK) return true;
  }
  return false;
}

/**
 * Removes telnet negotiation (IAC sequences). 0xFF never occurs in UTF-8, so this is safe on
 * JSON lines too.
 */
export function stripTelnet(bytes: Uint8Array): Uint8Array {
  if (!bytes.includes(0xff)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0xff) {
      out.push(b);
      continue;
    }
    const cmd = bytes[i + 1];
    if (cmd === 0xff) {
      i++;
    } else if (cmd !== undefined && cmd >= 251 && cmd <= 254) {
      i += 2;
    } else if (cmd === 250) {
      // Subnegotiation runs to IAC SE.
      let j = i + 2;
      while (j < bytes.length - 1 && !(bytes[j] === 0xff && bytes[j + 1] === 240)) j++;
      i = j + 1;
    } else {
      i++;
    }
  }
  return new Uint8Array(out);
}
