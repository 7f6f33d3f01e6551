/**
 * `chat connect`: the terminal client. Speaks the TCP JSON wire, reuses the protocol's command
 * parser and renderer, edits the input line itself on a terminal (`line_editor.ts`: history,
 * incoming messages printed above what you type), reconnects with backoff and shows what was
 * missed.
 * Imports `protocol/` only.
 * @module
 */

import {
  type ClientFrame,
  encodeFrame,
  type FileRef,
  type Mode,
  ProtocolError,
  type ServerFrame,
} from "../protocol/frames.ts";
import { decodeClientValue } from "../protocol/decode.ts";
import { HELP_LINES, JoinedRooms, parseLine, promptFor, renderFrame } from "../protocol/text.ts";
import { HEARTBEAT_CHECKS_PER_BEAT, HEARTBEAT_REF, heartbeatDue } from "../protocol/heartbeat.ts";
import { HEARTBEAT_MS } from "../protocol/limits.ts";
import { colorize } from "./colors.ts";
import { FileTransfers } from "./files.ts";
import { LineEditor, splitLines } from "./line_editor.ts";

/** How the client runs. */
export interface ClientOptions {
  host: string;
  port: number;
  /**
   * Every node of a cluster to try, in order (the first is `host`/`port`): a node that does not
   * answer is passed over for the next, at start and on every reconnect.
   */
  servers?: Array<{ host: string; port: number }>;
  name?: string | undefined;
  password?: string | undefined;
  /** Colours on (a terminal without NO_COLOR) or off. */
  color: boolean;
  /** stdin is a terminal: edit the line in raw mode; otherwise read plain lines. */
  tty: boolean;
  /** Where /download saves files. */
  downloads: string;
  /** Scripting: send this text, wait until stored, exit. */
  send?: string | undefined;
  to?: string | undefined;
  room?: string | undefined;
  /** First reconnect delay in ms (doubles up to 30 s); default 500. */
  reconnectMs?: number;
  /**
   * The client's heartbeat (default HEARTBEAT_MS): after a beat without a word from the server it
   * sends a `ping`, and after three it takes the server for gone and reconnects.
   */
  heartbeatMs?: number;
}

const encoder = new TextEncoder();

/** Client-side commands, listed after the server's in /help. */
const CLIENT_HELP = [
  "Client commands:",
  "  /upload PATH [#ROOM|@NAME]  send a file (default: where the prompt points)",
  "  /download FILE_ID [DIR]     save a file you were sent (default folder: --downloads)",
];

/** The terminal client. */
export class ChatClient {
  #o: ClientOptions;
  #conn: Deno.TcpConn | null = null;
  /** Which of the servers the client is (or was last) connected to. */
  #at = 0;
  #mode: Mode = { kind: "room", room: "general" };
  readonly #rooms = new JoinedRooms();
  #name = "";
  #password: string | undefined;
  #pendingSession: string | undefined;
  #lastId = "";
  /** Files over the HTTP API, with a token asked for over this connection. */
  readonly #files = new FileTransfers(async () => {
    const f = await this.#ask({ type: "token" });
    if (f.type !== "token") throw new Error(f.type === "error" ? f.message : "no token");
    return { base: `http://${this.#server.host}:${f.http_port}`, token: f.token };
  });
  #waiters = new Map<string, (f: ServerFrame) => void>();
  #refs = 0;
  #quitting = false;
  #loggedIn = false;
  #editor: LineEditor;

  /** Creates a client with its options. */
  constructor(options: ClientOptions) {
    this.#o = options;
    this.#password = options.password;
    this.#editor = new LineEditor(options.tty, (text) => this.#write(text), () => this.#prompt());
  }

  // ------------------------------------------------------------ output

  #write(text: string): void {
    Deno.stdout.writeSync(encoder.encode(text));
  }

  /** Prints lines above the input line and redraws the prompt and what was being typed. */
  #print(text: string, frame: ServerFrame | null = null): void {
    const lines = text.split("\n").map((l) => (this.#o.color ? colorize(l, frame) : l));
    // Above the line being edited (even while reconnecting), which is drawn again below.
    if (this.#o.tty && (this.#loggedIn || this.#editor.editing)) {
      this.#write("\r\x1b[K" + lines.join("\r\n") + "\r\n");
      this.#editor.redraw();
    } else {
      this.#write(lines.join("\n") + "\n");
    }
  }

  #prompt(): string {
    return promptFor(this.#mode);
  }

  // ------------------------------------------------------------ connection

  #send(frame: ClientFrame): void {
    this.#conn?.write(encoder.encode(encodeFrame(frame) + "\n")).catch(() => {});
  }

  /**
   * Closes the connection, which may be closed already: a connection's readable stream closes
   * it when the server does (after a `quit`'s goodbye), and a second close would throw.
   */
  #closeConn(): void {
    try {
      this.#conn?.close();
    } catch { /* closed already */ }
  }

  /** Sends a frame with a fresh ref and waits for the frame that answers it. */
  #ask(frame: ClientFrame, timeoutMs = 10_000): Promise<ServerFrame> {
    const ref = `c${++this.#refs}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(ref);
        reject(new Error("the server did not answer in time"));
      }, timeoutMs);
      this.#waiters.set(ref, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      this.#send({ ...frame, ref } as ClientFrame);
    });
  }

  /** The servers to try: every node given, or the one. */
  get #servers(): Array<{ host: string; port: number }> {
    return this.#o.servers?.length ? this.#o.servers : [{ host: this.#o.host, port: this.#o.port }];
  }

  /** The server connected to (or last tried). */
  get #server(): { host: string; port: number } {
    return this.#servers[this.#at % this.#servers.length]!;
  }

  /** Connects to the current server, or the next that answers (a cluster's other nodes). */
  async #connect(): Promise<void> {
    const servers = this.#servers;
    let last: unknown;
    for (let i = 0; i < servers.length; i++) {
      const at = (this.#at + i) % servers.length;
      try {
        this.#conn = await Deno.connect({ hostname: servers[at]!.host, port: servers[at]!.port });
        if (at !== this.#at % servers.length) {
          this.#print(`* Now connected to ${servers[at]!.host}:${servers[at]!.port}.`);
        }
        this.#at = at;
        return;
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  /**
   * Reads frames until the connection ends; calls `onFrame` for each. Meanwhile the heartbeat:
   * a server silent for a beat gets a `ping` (it answers at once), one silent for three beats is
   * taken for gone (its machine or the network between) and the connection is closed, which
   * starts the reconnect.
   */
  async #pump(onFrame: (f: ServerFrame) => void): Promise<void> {
    const conn = this.#conn!;
    const beat = this.#o.heartbeatMs ?? HEARTBEAT_MS;
    let lastHeard = Date.now();
    let pinged = 0;
    const watchdog = setInterval(() => {
      const due = heartbeatDue(Date.now() - lastHeard, beat, pinged);
      if (due.gone) {
        clearInterval(watchdog);
        try {
          conn.close();
        } catch { /* closed already */ }
      } else if (due.probe) {
        pinged++;
        this.#send({ type: "ping", ref: HEARTBEAT_REF });
      }
    }, beat / HEARTBEAT_CHECKS_PER_BEAT);
    const lines = conn.readable.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
    try {
      for await (const line of lines) {
        lastHeard = Date.now();
        pinged = 0;
        if (!line.trim()) continue;
        let frame: ServerFrame;
        try {
          frame = JSON.parse(line) as ServerFrame;
        } catch {
          continue;
        }
        onFrame(frame);
      }
    } catch {
      /* connection dropped */
    } finally {
      clearInterval(watchdog);
    }
  }

  /** Says hello until it is accepted: asks for the password when the name is registered. */
  async #login(firstTime: boolean): Promise<boolean> {
    const frames: ServerFrame[] = [];
    let wake: (() => void) | null = null;
    const pump = this.#pump((f) => {
      if (!this.#loggedIn) {
        frames.push(f);
        wake?.();
      } else this.#onFrame(f);
    }).then(() => {
      frames.push({ type: "bye", reason: "connection closed" });
      wake?.();
    });
    const next = async (): Promise<ServerFrame> => {
      while (frames.length === 0) await new Promise<void>((r) => (wake = r));
      wake = null;
      return frames.shift()!;
    };
    while (true) {
      const hello: Record<string, unknown> = { username: this.#name };
      if (this.#password !== undefined) hello.password = this.#password;
      if (!firstTime && this.#lastId) hello.since = this.#lastId;
      this.#send(decodeClientValue(hello));
      let f = await next();
      while (f.type !== "welcome" && f.type !== "error" && f.type !== "bye") f = await next();
      if (f.type === "welcome") {
        this.#loggedIn = true;
        this.#mode = f.mode;
        this.#rooms.follow(f);
        if (!firstTime) this.#print("* Reconnected.");
        else if (this.#o.send === undefined) this.#print(renderFrame(f)!, f);
        // Whatever arrived with the welcome (history, unread, missed messages) is shown now.
        for (const rest of frames.splice(0)) this.#onFrame(rest);
        void pump.then(() => this.#onDisconnect());
        return true;
      }
      if (f.type === "bye") return false;
      if (f.code === "password_required" || f.code === "bad_password") {
        if (f.code === "bad_password") this.#print("! Wrong password.");
        if (this.#o.send !== undefined && this.#password !== undefined) throw new Error(f.message);
        const pw = await this.#editor.askLine(`Password for ${this.#name}: `, true);
        if (pw === null || pw === "") {
          // No way in without it: say so and stop, rather than retry behind the user's back.
          this.#quitting = true;
          this.#closeConn();
          throw new Error(
            `Not logged in: ${this.#name} needs its password (connect again to retry)`,
          );
        }
        this.#password = pw;
        continue;
      }
      // Thrown reasons are printed once, by whoever catches them.
      if (f.code === "banned") this.#quitting = true;
      if (this.#o.send !== undefined || f.code === "banned") throw new Error(f.message);
      this.#print(`! ${f.message}`, f);
      const name = await this.#editor.askLine("Enter your nickname: ", false);
      if (name === null) return false;
      this.#name = name.trim();
    }
  }

  #onFrame(f: ServerFrame): void {
    if ("ref" in f && f.ref && this.#waiters.has(f.ref)) {
      const w = this.#waiters.get(f.ref)!;
      this.#waiters.delete(f.ref);
      // Whoever asked reports the answer.
      w(f);
      return;
    }
    // A scripted --send prints only its outcome.
    if (this.#o.send !== undefined) return;
    // Heartbeats are answered, so the server knows this client is alive; the answers to the
    // client's own are not news.
    if (f.type === "ping") return this.#send({ type: "pong" });
    if (f.type === "pong" && f.ref === HEARTBEAT_REF) return;
    if ("mode" in f && f.mode) this.#mode = f.mode;
    this.#rooms.follow(f);
    if (f.type === "session_request") this.#pendingSession = f.from_username;
    if (f.type === "session_accepted" || f.type === "session_rejected") {
      this.#pendingSession = undefined;
    }
    if (f.type === "message" || f.type === "private") this.#note(f);
    if (f.type === "history") { for (const m of f.messages) this.#note(m); }
    if (f.type === "bye") this.#quitting ||= /kicked|banned/.test(f.reason);
    const text = renderFrame(f);
    if (text !== null) this.#print(text, f);
    if (f.type === "history" && f.reason === "resume" && f.messages.length > 0) {
      this.#print(
        `* ${f.messages.length} message${
          f.messages.length === 1 ? "" : "s"
        } arrived while you were away.`,
      );
    }
  }

  /** Remembers the newest message id (to resume after a reconnect) and announced files. */
  #note(m: { id: string; file?: FileRef }): void {
    if (m.id > this.#lastId) this.#lastId = m.id;
    if (m.file) this.#files.note(m.file);
  }

  #onDisconnect(): void {
    this.#loggedIn = false;
    this.#files.forget();
    if (this.#quitting) return;
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    let delay = this.#o.reconnectMs ?? 500;
    while (!this.#quitting) {
      this.#print(`* Connection lost; reconnecting in ${(delay / 1000).toFixed(1)} s...`);
      await new Promise((r) => setTimeout(r, delay));
      if (this.#quitting) return;
      try {
        await this.#connect();
        if (await this.#login(false)) {
          this.#editor.redraw();
          return;
        }
      } catch (error) {
        if (this.#quitting) {
          // No way back in (no password given, banned): say why and end the client.
          this.#print(`! ${(error as Error).message}`);
          if (this.#o.tty) Deno.stdin.setRaw(false);
          Deno.exit(1);
        }
        /* still down */
      }
      delay = Math.min(delay * 2, 30_000);
    }
  }

  // ------------------------------------------------------------ files over HTTP

  async #upload(path: string, target: string | undefined): Promise<void> {
    const where = target ??
      (this.#mode.kind === "session" ? "@" + this.#mode.with : this.#mode.room);
    const sent = await this.#files.upload(path, where);
    this.#print(`* Sent ${sent.name} (${sent.bytes} bytes).`);
  }

  async #download(id: string, dir: string | undefined): Promise<void> {
    this.#print(`* Saved ${await this.#files.download(id, dir ?? this.#o.downloads)}`);
  }

  // ------------------------------------------------------------ main loops

  /** Runs the interactive client; returns the exit code. */
  async run(): Promise<number> {
    this.#name = this.#o.name ?? "";
    while (!this.#name) {
      const name = await this.#editor.askLine("Your name: ", false);
      if (name === null) return 0;
      this.#name = name.trim();
    }
    try {
      await this.#connect();
    } catch (error) {
      const where = this.#servers.map((s) => `${s.host}:${s.port}`).join(", ");
      this.#print(`! Cannot reach ${where}: ${(error as Error).message}`);
      return 1;
    }
    try {
      if (!(await this.#login(true))) return 1;
    } catch (error) {
      this.#print(`! ${(error as Error).message}`);
      return 1;
    }
    if (this.#o.send !== undefined) return await this.#sendOnce();
    while (true) {
      const line = await this.#editor.readLine();
      if (line === null) break;
      if (!(await this.#command(line))) break;
    }
    this.#quitting = true;
    this.#closeConn();
    return 0;
  }

  /** Handles one typed line; returns false to quit. */
  async #command(line: string): Promise<boolean> {
    const trimmed = line.trim();
    const [word, a1, a2] = trimmed.split(/\s+/);
    try {
      if (word === "/upload") {
        if (!a1) throw new Error("/upload needs a file path, e.g. /upload ./photo.jpg #general");
        await this.#upload(a1, a2);
        return true;
      }
      if (word === "/download") {
        if (!a1) throw new Error("/download needs a file id (it is shown under the message)");
        await this.#download(a1, a2);
        return true;
      }
    } catch (error) {
      this.#print(`! ${(error as Error).message}`);
      return true;
    }
    const parsed = parseLine(line, {
      pendingSessionFrom: this.#pendingSession,
      inSession: this.#mode.kind === "session",
      rooms: this.#rooms.names,
    });
    switch (parsed.kind) {
      case "empty":
        return true;
      case "quit":
        this.#quitting = true;
        // Said as a frame, so the words reach the others; the server answers with its goodbye.
        if (this.#loggedIn) {
          await this.#ask(
            { type: "quit", ...(parsed.farewell ? { reason: parsed.farewell } : {}) },
            2000,
          ).catch(() => {});
        }
        return false;
      case "help":
        this.#print([...HELP_LINES, ...CLIENT_HELP].join("\n"));
        return true;
      case "admin_help":
        this.#print((await import("../protocol/text.ts")).ADMIN_HELP_LINES.join("\n"));
        return true;
      case "error":
        this.#print(`! ${parsed.message}`);
        return true;
      case "frame":
        if (parsed.frame.type === "session_response") this.#pendingSession = undefined;
        if (!this.#loggedIn) {
          this.#print("! Not connected right now; try again in a moment.");
          return true;
        }
        this.#send(parsed.frame);
        return true;
    }
  }

  /** `--send`: one message, exit 0 once the server says it is stored. */
  async #sendOnce(): Promise<number> {
    let frame: ClientFrame;
    try {
      frame = this.#o.to !== undefined
        ? decodeClientValue({ type: "private", target_username: this.#o.to, message: this.#o.send })
        : decodeClientValue({
          type: "message",
          message: this.#o.send,
          room: this.#o.room ?? "general",
        });
    } catch (error) {
      this.#print(`! ${(error as ProtocolError).message}`);
      return 2;
    }
    try {
      // The room asked for is joined first (a bot that never joined it could not post there).
      const room = this.#o.to === undefined ? this.#o.room ?? "general" : undefined;
      if (room !== undefined && room !== "general") {
        const joined = await this.#ask(decodeClientValue({ type: "join", room }));
        if (joined.type === "error") {
          this.#print(`! ${joined.message}`);
          return 1;
        }
      }
      const reply = await this.#ask(frame);
      if (reply.type === "ack") {
        this.#print(`* Stored as ${reply.id} in ${reply.chat}.`);
        return 0;
      }
      this.#print(reply.type === "error" ? `! ${reply.message}` : `! unexpected ${reply.type}`);
      return 1;
    } catch (error) {
      this.#print(`! ${(error as Error).message}`);
      return 1;
    } finally {
      this.#quitting = true;
      this.#closeConn();
    }
  }
}
