/**
 * The IRC wire: any IRC client (irssi, WeeChat, HexChat, bots) is a client of the same hub. A
 * thin translation both ways, like JIM's: IRC commands become the frames every wire sends, and
 * frames become IRC lines and numerics. Rooms are channels (`#books`), private messages go to a
 * nick, the server's notices are NOTICEs. Registration: NICK and USER, with PASS or SASL PLAIN
 * for a registered name; IRCv3 `server-time`, `message-tags` (`msgid`), `echo-message` and
 * `batch` when the client asks. On joining (and on logging in), a channel's recent history and
 * what was missed arrive as PRIVMSGs carrying their original time.
 * @module
 */

import { decodeClientValue } from "../../../protocol/decode.ts";
import {
  type ClientFrame,
  farewell,
  type MessageFrame,
  ProtocolError,
  type ServerFrame,
} from "../../../protocol/frames.ts";
import { LOGIN_TIMEOUT_MS, MAX_OUTBOUND_BYTES } from "../../../protocol/limits.ts";
import type { Hub } from "../../core/hub.ts";
import { concatBytes, type Outbound, type Peer, reuseLastJoin } from "../../core/peer.ts";
import type { Logger } from "../../log.ts";
import { OutboundQueue, writeAll } from "../outbound.ts";
import { every } from "../ticker.ts";
import { type Asked, IRC_COMMANDS, type IrcSession } from "./commands.ts";
import {
  type IrcMessage,
  ircTarget,
  LineReader,
  messageLines,
  parseIrc,
  plainText,
  tagged,
} from "./lines.ts";
import { Labels, sentKey } from "./labels.ts";
import { Registration } from "./registration.ts";
import {
  ircHints,
  motdNumerics,
  type Numeric,
  queryNumerics,
  refusal,
  systemLines,
  welcomeNumerics,
} from "./replies.ts";

/** Options of the IRC listener. */
export interface IrcOptions {
  log: Logger;
  /** The server's name in prefixes and numerics. */
  serverName?: string;
  /** Lines of the message of the day; none: 422. */
  motd?: string[];
  loginTimeoutMs?: number;
  /** Silence before the server sends PING; three unanswered and the client is gone. */
  heartbeatMs?: number;
  maxOutboundBytes?: number;
}

const encoder = new TextEncoder();
/** What queued while a write was in flight, joined once for all readers whose queues match. */
const joinQueued = reuseLastJoin(concatBytes);

/** One IRC client, as the hub's Peer. */
export class IrcConnection implements Peer {
  readonly transport = "irc" as const;
  readonly ip: string;
  #hub: Hub;
  #conn: Deno.Conn;
  #log: Logger;
  #id: number;
  #server: string;
  #motd: string[] | undefined;
  #queue: OutboundQueue<Uint8Array>;
  /** NICK, USER, PASS, CAP and SASL, and what was negotiated. */
  #reg = new Registration();
  #closing = false;
  #refs = 0;
  #asked = new Map<string, Asked>();
  #session: IrcSession | undefined;
  /** labeled-response: the answers of labeled commands, gathered until complete. */
  #labels: Labels;
  /** Messages this client sent and has not seen come back: not echoed without echo-message. */
  #sent: string[] = [];
  #loginTimer: ReturnType<typeof setTimeout> | undefined;
  #stopBeat: (() => void) | undefined;
  #heartbeatMs: number;
  #lastHeard = Date.now();
  #pinged = 0;
  /** Channels this connection just joined whose NAMES its JOIN command still sends. */
  #namesDue: string[] = [];
  /** The channels this client has been shown a JOIN for (and no PART since). */
  #on = new Set<string>();
  /** What the client said with QUIT, told to the others as it goes. */
  #farewell: string | undefined;

  constructor(hub: Hub, conn: Deno.Conn, options: IrcOptions) {
    this.#hub = hub;
    this.#conn = conn;
    this.#log = options.log;
    this.ip = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#server = options.serverName ?? "chat";
    this.#motd = options.motd;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#queue = new OutboundQueue<Uint8Array>({
      size: (b) => b.length,
      join: joinQueued,
      write: (chunk) => writeAll(this.#conn, chunk),
      slow: () => {
        this.#closing = true;
        void this.#conn.write(encoder.encode("ERROR :Closing link: too far behind\r\n"))
          .catch(() => {}).finally(() => this.#hardClose());
      },
      failed: () => this.#hardClose(),
    }, options.maxOutboundBytes ?? MAX_OUTBOUND_BYTES);
    this.#labels = new Labels(this.#server, (text) => this.#queue.push(encoder.encode(text)));
    this.#id = hub.connect(this);
    this.#loginTimer = setTimeout(() => {
      this.#line(`ERROR :Closing link: you did not register in time`);
      this.close("login timeout");
    }, options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS);
  }

  /** Reads lines until the client goes; settles once the connection is closed. */
  async run(): Promise<void> {
    try {
      const reader = new LineReader();
      const buf = new Uint8Array(4096);
      while (!this.#closing) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#lastHeard = Date.now();
        this.#pinged = 0;
        for (const line of reader.feed(buf.subarray(0, n))) {
          if (line === null) {
            this.#numeric("417", ":Input line was too long (512 bytes, and 4094 of tags)");
            continue;
          }
          const m = parseIrc(line);
          if (m) await this.#command(m);
          if (this.#closing) break;
        }
      }
    } catch {
      /* the client went away */
    } finally {
      clearTimeout(this.#loginTimer);
      this.#stopBeat?.();
      await this.#hub.whenHandled(this.#id);
      this.#hub.disconnect(this.#id, this.#farewell);
      this.#closing = true;
      this.#queue.seal();
      await this.#queue.drained();
      this.#hardClose();
    }
  }

  // ---------------------------------------------------------------- out

  #line(text: string, tags: Record<string, string> = {}): void {
    const line = tagged(text, tags, this.#reg.caps);
    if (!this.#labels.collect(line)) this.#queue.push(encoder.encode(line));
  }

  #numeric(code: string, text: string): void {
    this.#line(`:${this.#server} ${code} ${this.#reg.nick || "*"} ${text}`);
  }

  #numerics(list: Numeric[]): void {
    for (const [code, text] of list) this.#numeric(code, text);
  }

  #notice(text: string): void {
    for (const l of text.split("\n")) {
      this.#line(`:${this.#server} NOTICE ${this.#reg.nick || "*"} :${l}`);
    }
  }

  #mask(nick: string): string {
    return `${nick}!${nick}@${this.#server}`;
  }

  send(out: Outbound): void {
    if (this.#closing) return;
    if (this.#roomMessage(out)) return;
    this.#frame(out.frame);
  }

  close(_reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#queue.seal();
    void this.#queue.drained().then(() => this.#hardClose());
  }

  #hardClose(): void {
    this.#closing = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  // ---------------------------------------------------------------- frames → IRC

  #frame(f: ServerFrame): void {
    const ref = "ref" in f && typeof f.ref === "string" ? f.ref : undefined;
    const asked = ref === undefined ? undefined : this.#asked.get(ref);
    if (asked === undefined) return this.#answer(f, undefined);
    this.#asked.delete(ref!);
    if (asked.kind !== "send") return this.#answer(f, asked);
    // The ack or refusal of a message a labeled command sent joins that command's answer.
    this.#labels.answered(ref!, f.type === "error", () => this.#answer(f, asked));
  }

  /** A frame as IRC lines, knowing what (if anything) it answers. */
  #answer(f: ServerFrame, asked: Asked | undefined): void {
    // The answer to a query (NAMES, WHO, WHOIS, LIST, LUSERS, AWAY, …) as its numerics.
    const answer = queryNumerics(this.#server, f, asked);
    if (answer !== null) return this.#numerics(answer);
    switch (f.type) {
      case "welcome":
        return this.#welcome(f.username, f.rooms);
      case "message":
      case "private":
        return this.#message(f);
      case "history":
        // CHATHISTORY trims what it asked for before sending it (commands.ts).
        if (asked?.kind === "history") return void asked.into.push(f.messages);
        return this.#history(ircTarget(f.chat), f.messages);
      case "joined":
        this.#on.add(f.room);
        this.#line(`:${this.#mask(this.#reg.nick)} JOIN #${f.room}`);
        this.#numeric("331", `#${f.room} :No topic is set`);
        // This connection's JOIN asks for the names itself once the join is handled, so that they
        // are part of its answer (a labeled JOIN's batch); a join from another device, at once.
        if (asked?.kind === "join") this.#namesDue.push(f.room);
        else void this.#askNames(f.room);
        return;
      case "left": {
        this.#on.delete(f.room);
        const reason = asked?.kind === "part" && asked.reason ? ` :${asked.reason}` : "";
        return this.#line(`:${this.#mask(this.#reg.nick)} PART #${f.room}${reason}`);
      }
      case "invite":
        return this.#line(`:${this.#mask(f.from_username)} INVITE ${this.#reg.nick} :#${f.room}`);
      case "system":
        return this.#system(f);
      case "error":
        return this.#error(f.code, f.message, asked);
      case "ack":
        // A private message to someone away: RPL_AWAY with what they said (not for a NOTICE).
        if (f.away !== undefined && asked?.kind === "send" && !asked.notice) {
          this.#numeric("301", `${asked.target} :${f.away}`);
        }
        return;
      case "session_request":
        return this.#notice(
          `${f.from_username} asks for a private session: /msg ChatServ ACCEPT ${f.from_username} (or REJECT)`,
        );
      case "session_accepted":
      case "session_rejected":
      case "session_ended":
        return this.#notice(ircHints(f.message));
      case "bye":
        this.#line(`ERROR :Closing link: ${f.reason}`);
        return this.close(f.reason);
      case "ping":
      case "pong":
      case "mode":
      case "unread_counts":
      case "contacts_list":
        return;
      default:
        // Anything else a person may want to read (stats, an admin's tables) as notices.
        return this.#notice(`${f.type}: ${JSON.stringify(f).slice(0, 400)}`);
    }
  }

  #welcome(nick: string, rooms: string[]): void {
    clearTimeout(this.#loginTimer);
    this.#reg.registered = true;
    this.#reg.nick = nick;
    this.#numerics(welcomeNumerics(this.#server, this.#mask(nick), this.#motd));
    // The rooms the account is in are channels this client is on.
    for (const room of rooms) {
      this.#on.add(room);
      this.#line(`:${this.#mask(nick)} JOIN #${room}`);
      void this.#askNames(room);
    }
    this.#stopBeat = every(this.#heartbeatMs / 4, this);
  }

  /** Heartbeat (the shared ticker): PING a quiet client, let go of one that stopped answering. */
  tick(): void {
    const quiet = Date.now() - this.#lastHeard;
    if (quiet < this.#heartbeatMs * (this.#pinged + 1)) return;
    if (this.#pinged >= 3) {
      this.#line(`ERROR :Closing link: ping timeout`);
      this.close("ping timeout");
      return;
    }
    this.#pinged++;
    this.#line(`PING :${this.#server}`);
  }

  /** This client's echo of a message a labeled command sent joins that command's answer. */
  #labeledEcho(m: MessageFrame): boolean {
    return this.#labels.echo(m, () => {
      const target = m.type === "private" ? m.to_username : `#${m.room}`;
      return messageLines(m, target, this.#server, this.#reg.caps);
    });
  }

  #message(m: MessageFrame, batch?: string): void {
    const mine = m.from_username === this.#reg.nick;
    if (mine && !batch && this.#labeledEcho(m)) return;
    if (mine && !batch && !this.#reg.caps.has("echo-message")) {
      // What this client typed is on its screen already; from another device it is not.
      const key = sentKey(m);
      const at = this.#sent.indexOf(key);
      if (at >= 0) {
        this.#sent.splice(at, 1);
        return;
      }
    }
    const target = m.type === "private" ? (mine ? m.to_username : this.#reg.nick) : `#${m.room}`;
    const lines = messageLines(m, target, this.#server, this.#reg.caps, batch);
    // Inside a labeled answer (CHATHISTORY), each line joins it; else they go out at once.
    if (!this.#labels.collect(lines)) this.#queue.push(encoder.encode(lines));
  }

  /**
   * A live room message: encoded once per set of capabilities for every IRC reader of the room
   * (a fan-out to 1,000 IRC clients formats it a handful of times, not 1,000).
   */
  #roomMessage(out: Outbound): boolean {
    const m = out.frame;
    if (m.type !== "message") return false;
    if (m.from_username === this.#reg.nick) {
      if (!this.#reg.caps.has("echo-message")) return false;
      if (this.#labeledEcho(m)) return true;
    }
    const caps = this.#reg.caps;
    const key = `irc:${caps.has("server-time") ? "t" : ""}${caps.has("message-tags") ? "m" : ""}`;
    const server = this.#server;
    this.#queue.push(
      out.encoded(key, () => encoder.encode(messageLines(m, `#${m.room}`, server, caps))),
    );
    return true;
  }

  #history(target: string, messages: MessageFrame[], asked = false): void {
    // Asked for (CHATHISTORY): an empty batch says "nothing there"; else only what exists.
    if (messages.length === 0 && !asked) return;
    const batch = this.#reg.caps.has("batch") ? `h${++this.#refs}` : undefined;
    if (batch) this.#line(`BATCH +${batch} chathistory ${target}`);
    for (const m of messages) this.#message(m, batch ?? "history");
    if (batch) this.#line(`BATCH -${batch}`);
  }

  #system(f: Extract<ServerFrame, { type: "system" }>): void {
    const lines = systemLines(f, (nick) => this.#mask(nick), {
      awayNotify: this.#reg.caps.has("away-notify"),
      shared: (who) => this.#hub.sharedRooms(this.#id, who),
    });
    if (lines === null) return this.#notice(ircHints(f.message));
    for (const line of lines) this.#line(line);
  }

  #error(code: string, message: string, asked: Asked | undefined): void {
    if (!this.#reg.registered) {
      if (code === "bad_password" || code === "password_required") {
        this.#numeric("464", `:${message} (PASS, or SASL PLAIN)`);
      } else if (code === "bad_name" || code === "name_taken") {
        // The client has no nick yet: it is "*" to the numeric, the refused nick its subject.
        const numeric = code === "name_taken" ? "433" : "432";
        this.#line(`:${this.#server} ${numeric} * ${this.#reg.nick} :${message}`);
        this.#reg.helloSent = false;
        return;
      } else if (code === "banned") this.#numeric("465", `:${message}`);
      else this.#notice(message);
      this.#line(`ERROR :Closing link: ${message}`);
      return this.close(code);
    }
    const reply = refusal(this.#server, code, message, asked);
    if (reply === null) return;
    if ("numeric" in reply) return this.#numeric(...reply.numeric);
    if ("line" in reply) return this.#line(reply.line);
    this.#notice(reply.notice);
  }

  // ---------------------------------------------------------------- IRC → frames

  /**
   * Sends a frame with a ref that says what it was for. Awaited by the reading loop, so a client
   * that floods waits for its own backlog (as on every wire), and a reader is never dropped for it.
   */
  #askNames(room: string): Promise<void> {
    return this.#ask({ type: "members", room }, { kind: "names", channel: `#${room}` });
  }

  #ask(frame: Record<string, unknown>, asked: Asked): Promise<void> {
    const ref = `irc${++this.#refs}`;
    this.#asked.set(ref, asked);
    if (asked.kind === "send") {
      this.#labels.sent(ref, asked.key, this.#reg.caps.has("echo-message"));
    }
    return this.#send({ ...frame, ref }, ref);
  }

  /**
   * Hands a frame to the hub through the validating decoder every wire uses (names, text, sizes):
   * what it refuses is answered as any refusal, in order, by what was asked.
   */
  #send(frame: Record<string, unknown>, ref?: string): Promise<void> {
    let decoded: ClientFrame;
    try {
      decoded = decodeClientValue(frame);
    } catch (error) {
      if (error instanceof ProtocolError) return this.#hub.reject(this.#id, error, ref);
      throw error;
    }
    return this.#hub.receive(this.#id, decoded);
  }

  async #command(m: IrcMessage): Promise<void> {
    const label = m.tags.label;
    if (label && this.#reg.caps.has("labeled-response") && !this.#labels.handling) {
      return await this.#labels.handle(label, () => this.#command({ ...m, tags: {} }));
    }
    const p = m.params;
    switch (m.command) {
      case "CAP":
        return this.#cap(p);
      case "AUTHENTICATE":
        return this.#authenticate(p[0] ?? "");
      case "PASS":
      case "NICK":
      case "USER": {
        const refused = this.#reg.take(m.command, p);
        if (refused) return this.#numeric(...refused);
        if (m.command !== "PASS") await this.#maybeRegister();
        return;
      }
      case "PING":
        if (p[0] === undefined) return this.#numeric("409", ":No origin specified");
        return this.#line(`:${this.#server} PONG ${this.#server} :${p[0]}`);
      case "PONG":
        return;
      case "QUIT":
        this.#farewell = farewell(plainText(p[0]));
        this.#line(`ERROR :Closing link: ${this.#farewell ?? "quit"}`);
        return this.close("quit");
    }
    if (!this.#reg.registered) return this.#numeric("451", ":You have not registered");
    const command = IRC_COMMANDS[m.command];
    if (!command) return this.#numeric("421", `${m.command} :Unknown command`);
    return await command(this.#session ??= this.#makeSession(), p, m);
  }

  /** What the command table may do here (made at the first command: idle clients need none). */
  #makeSession(): IrcSession {
    return {
      server: this.#server,
      nick: this.#reg.nick,
      ask: (frame, asked) => this.#ask(frame, asked),
      numeric: (code, text) => this.#numeric(code, text),
      line: (text) => this.#line(text),
      notice: (text) => this.#notice(text),
      isOn: (channel) => this.#on.has(channel.slice(1).toLowerCase()),
      channelsOn: () => [...this.#on].map((room) => `#${room}`),
      sent: (key) => {
        this.#sent.push(key);
        if (this.#sent.length > 256) this.#sent.shift();
      },
      motd: () => this.#numerics(motdNumerics(this.#server, this.#motd)),
      historyBatch: (target, messages) => this.#history(target, messages, true),
      namesDue: async () => {
        const rooms = this.#namesDue;
        this.#namesDue = [];
        for (const room of rooms) await this.#askNames(room);
      },
    };
  }

  #cap(p: string[]): void {
    const answer = this.#reg.cap(p);
    if (answer !== null) this.#line(`:${this.#server} ${answer}`);
    if ((p[0] ?? "").toUpperCase() === "END") void this.#maybeRegister();
  }

  /** SASL PLAIN: the password is checked when the client registers (a wrong one: 464 there). */
  #authenticate(arg: string): void {
    const answer = this.#reg.authenticate(arg, (nick) => this.#mask(nick));
    if (answer === "+") return this.#line("AUTHENTICATE +");
    this.#numerics(answer);
  }

  async #maybeRegister(): Promise<void> {
    const hello = this.#reg.hello();
    if (hello) await this.#send(hello);
  }
}
