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
import { type IrcMessage, messageLines, parseIrc, tagged } from "./lines.ts";
import {
  listNumerics,
  lusersNumerics,
  memberNumerics,
  motdNumerics,
  type Numeric,
  onlineNumeric,
  refusal,
  welcomeNumerics,
  whoisNumerics,
  whoUserNumerics,
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

/** IRCv3 capabilities this server implements. */
const CAPS = [
  "server-time",
  "message-tags",
  "echo-message",
  "batch",
  "sasl",
  "draft/chathistory",
  "labeled-response",
];
/** Labeled messages whose echo may be awaited at once (a client sends one at a time). */
const ECHO_LABELS = 64;
/** Message ids this client was shown, with their sequence numbers (CHATHISTORY's msgid=). */
const SEEN_IDS = 4096;
/** A line without its tags: 512 bytes with CRLF (RFC 1459). */
const MAX_BODY_BYTES = 510;
/** A client's tags, without the "@" and the space after them (IRCv3 message-tags). */
const MAX_CLIENT_TAG_BYTES = 4094;
/** Past this many characters without a newline, the line is too long whatever it holds. */
const MAX_LINE = MAX_BODY_BYTES + MAX_CLIENT_TAG_BYTES + 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
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
  #nick = "";
  #user = "";
  #pass: string | undefined;
  #caps = new Set<string>();
  #negotiating = false;
  #registered = false;
  #helloSent = false;
  #closing = false;
  #refs = 0;
  #asked = new Map<string, Asked>();
  #session: IrcSession | undefined;
  /** Lines answering a labeled command, while it is handled; the messages it sent. */
  #labeled: string[] | null = null;
  #labelSends: string[] | null = null;
  /** Labels owed to the echoes of labeled messages still being stored, oldest first. */
  #echoLabels: Array<{ key: string; label: string }> = [];
  /** Message id → sequence number of what this client was shown (oldest dropped first). */
  #seen = new SeenIds();
  /** Messages this client sent and has not seen come back: not echoed without echo-message. */
  #sent: string[] = [];
  #loginTimer: ReturnType<typeof setTimeout> | undefined;
  #stopBeat: (() => void) | undefined;
  #heartbeatMs: number;
  #lastHeard = Date.now();
  #pinged = 0;
  /** Channels this connection just joined whose NAMES its JOIN command still sends. */
  #namesDue: string[] = [];
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
    this.#id = hub.connect(this);
    this.#loginTimer = setTimeout(() => {
      this.#line(`ERROR :Closing link: you did not register in time`);
      this.close("login timeout");
    }, options.loginTimeoutMs ?? LOGIN_TIMEOUT_MS);
  }

  /** Reads lines until the client goes; settles once the connection is closed. */
  async run(): Promise<void> {
    try {
      let pending = "";
      /** Inside a line already answered 417: its rest, up to the next newline, is dropped. */
      let skipping = false;
      const buf = new Uint8Array(4096);
      while (!this.#closing) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#lastHeard = Date.now();
        this.#pinged = 0;
        pending += decoder.decode(buf.subarray(0, n), { stream: true });
        let i;
        while ((i = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, i).replace(/\r$/, "");
          pending = pending.slice(i + 1);
          if (skipping) {
            skipping = false;
            continue;
          }
          if (tooLong(line)) {
            this.#numeric("417", ":Input line was too long (512 bytes, and 4094 of tags)");
            continue;
          }
          const m = parseIrc(line);
          if (m) await this.#command(m);
          if (this.#closing) break;
        }
        if (pending.length > MAX_LINE) {
          // Answered once; the connection stays, and what follows up to a newline is dropped.
          if (!skipping) {
            this.#numeric("417", ":Input line was too long (512 bytes, and 4094 of tags)");
          }
          skipping = true;
          pending = "";
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
    const line = tagged(text, tags, this.#caps);
    if (this.#labeled) this.#labeled.push(line);
    else this.#queue.push(encoder.encode(line));
  }

  /**
   * labeled-response: what a labeled command answers while it is handled goes out labeled, in one
   * line, a `labeled-response` batch, or an `ACK` when it answered nothing then. A message sent
   * with echo-message is answered by its echo, which comes once the message is stored: the label
   * waits for it (a message to several targets, or without echo-message, gets the `ACK`).
   */
  async #withLabel(label: string, run: () => Promise<void>): Promise<void> {
    const lines: string[] = [];
    const sends: string[] = [];
    this.#labeled = lines;
    this.#labelSends = sends;
    try {
      await run();
    } finally {
      this.#labeled = null;
      this.#labelSends = null;
    }
    if (lines.length === 0 && sends.length === 1 && this.#caps.has("echo-message")) {
      this.#echoLabels.push({ key: sends[0]!.toLowerCase(), label });
      if (this.#echoLabels.length > ECHO_LABELS) this.#echoLabels.shift();
      return;
    }
    if (lines.length === 0) {
      return this.#queue.push(encoder.encode(tag(`:${this.#server} ACK\r\n`, `label=${label}`)));
    }
    if (lines.length === 1) {
      return this.#queue.push(encoder.encode(tag(lines[0]!, `label=${label}`)));
    }
    const id = `l${++this.#refs}`;
    this.#queue.push(encoder.encode(
      `@label=${label} :${this.#server} BATCH +${id} labeled-response\r\n` +
        lines.map((l) => tag(l, `batch=${id}`)).join("") + `:${this.#server} BATCH -${id}\r\n`,
    ));
  }

  /** The echo of a labeled message (echo-message): it goes out with the label it was owed. */
  #labeledEcho(m: MessageFrame): boolean {
    const key = (m.type === "private" ? "@" + m.to_username : "#" + m.room) + "\0" + m.message;
    const at = this.#echoLabels.findIndex((e) => e.key === key.toLowerCase());
    if (at < 0) return false;
    const { label } = this.#echoLabels.splice(at, 1)[0]!;
    this.#remember(m);
    const target = m.type === "private" ? m.to_username : `#${m.room}`;
    const lines = messageLines(m, target, this.#server, this.#caps).split(/(?<=\r\n)/);
    lines[0] = tag(lines[0]!, `label=${label}`);
    this.#queue.push(encoder.encode(lines.join("")));
    return true;
  }

  #numeric(code: string, text: string): void {
    this.#line(`:${this.#server} ${code} ${this.#nick || "*"} ${text}`);
  }

  #numerics(list: Numeric[]): void {
    for (const [code, text] of list) this.#numeric(code, text);
  }

  #notice(text: string): void {
    for (const l of text.split("\n")) {
      this.#line(`:${this.#server} NOTICE ${this.#nick || "*"} :${l}`);
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
    const asked = "ref" in f && typeof f.ref === "string" ? this.#asked.get(f.ref) : undefined;
    if (asked && "ref" in f && f.ref) this.#asked.delete(f.ref);
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
        this.#line(`:${this.#mask(this.#nick)} JOIN #${f.room}`);
        this.#numeric("331", `#${f.room} :No topic is set`);
        // This connection's JOIN asks for the names itself once the join is handled, so that they
        // are part of its answer (a labeled JOIN's batch); a join from another device, at once.
        if (asked?.kind === "join") this.#namesDue.push(f.room);
        else void this.#askNames(f.room);
        return;
      case "left": {
        const reason = asked?.kind === "part" && asked.reason ? ` :${asked.reason}` : "";
        return this.#line(`:${this.#mask(this.#nick)} PART #${f.room}${reason}`);
      }
      case "members":
        return this.#numerics(memberNumerics(
          this.#server,
          f.room,
          f.members.filter((m) => m.online),
          asked?.kind === "who",
        ));
      case "rooms_list": {
        const only = asked?.kind === "list" ? asked.only : undefined;
        return this.#numerics(
          listNumerics(only ? f.rooms.filter((r) => only.includes(r.name)) : f.rooms),
        );
      }
      case "users_list":
        if (asked?.kind === "online") {
          return this.#numerics([onlineNumeric(asked.reply, asked.nicks, f.users, this.#server)]);
        }
        if (asked?.kind === "who_user") {
          return this.#numerics(whoUserNumerics(this.#server, asked.nick, f.all[0]));
        }
        return this.#numerics(
          whoisNumerics(
            this.#server,
            asked?.kind === "whois" ? asked.nick : f.all[0]?.username ?? "*",
            f.all[0],
          ),
        );
      case "status":
        if (asked?.kind === "lusers") return this.#numerics(lusersNumerics(f.online_users));
        return this.#notice(`status: ${JSON.stringify(f).slice(0, 400)}`);
      case "invite":
        return this.#line(`:${this.#mask(f.from_username)} INVITE ${this.#nick} :#${f.room}`);
      case "system":
        if (asked?.kind === "away") {
          return asked.away
            ? this.#numeric("306", ":You have been marked as being away")
            : this.#numeric("305", ":You are no longer marked as being away");
        }
        if (asked?.kind === "invite") {
          return this.#numeric("341", `${asked.nick} #${asked.channel.replace(/^#/, "")}`);
        }
        return this.#system(f);
      case "error":
        // A message refused after its command was handled owes its label no echo any more.
        if (asked?.kind === "send" && this.#echoLabels.length > 0) {
          const target = (asked.target.startsWith("#") ? "" : "@") + asked.target.toLowerCase();
          const at = this.#echoLabels.findIndex((e) => e.key.startsWith(target + "\0"));
          if (at >= 0) this.#echoLabels.splice(at, 1);
        }
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
    this.#registered = true;
    this.#nick = nick;
    this.#numerics(welcomeNumerics(this.#server, this.#mask(nick), this.#motd));
    // The rooms the account is in are channels this client is on.
    for (const room of rooms) {
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

  #remember(m: MessageFrame): void {
    this.#seen.add(m.id, m.seq);
  }

  #message(m: MessageFrame, batch?: string): void {
    this.#remember(m);
    const mine = m.from_username === this.#nick;
    if (mine && !batch && this.#echoLabels.length > 0 && this.#labeledEcho(m)) return;
    if (mine && !batch && !this.#caps.has("echo-message")) {
      // What this client typed is on its screen already; from another device it is not.
      const key = (m.type === "private" ? "@" + m.to_username : "#" + m.room) + "\0" + m.message;
      const at = this.#sent.indexOf(key);
      if (at >= 0) {
        this.#sent.splice(at, 1);
        return;
      }
    }
    const target = m.type === "private" ? (mine ? m.to_username : this.#nick) : `#${m.room}`;
    const lines = messageLines(m, target, this.#server, this.#caps, batch);
    // Inside a labeled answer (CHATHISTORY), each line joins it; else they go out at once.
    if (this.#labeled) this.#labeled.push(...lines.split(/(?<=\r\n)/));
    else this.#queue.push(encoder.encode(lines));
  }

  /**
   * A live room message: encoded once per set of capabilities for every IRC reader of the room
   * (a fan-out to 1,000 IRC clients formats it a handful of times, not 1,000).
   */
  #roomMessage(out: Outbound): boolean {
    const m = out.frame;
    if (m.type !== "message") return false;
    if (m.from_username === this.#nick) {
      if (!this.#caps.has("echo-message")) return false;
      if (this.#echoLabels.length > 0 && this.#labeledEcho(m)) return true;
    }
    this.#remember(m);
    const caps = this.#caps;
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
    const batch = this.#caps.has("batch") ? `h${++this.#refs}` : undefined;
    if (batch) this.#line(`BATCH +${batch} chathistory ${target}`);
    for (const m of messages) this.#message(m, batch ?? "history");
    if (batch) this.#line(`BATCH -${batch}`);
  }

  #system(f: Extract<ServerFrame, { type: "system" }>): void {
    const who = (f as { username?: string }).username;
    const room = (f as { room?: string }).room;
    if (who && room && f.event === "joined") return this.#line(`:${this.#mask(who)} JOIN #${room}`);
    if (who && room && f.event === "left") {
      const reason = (f as { reason?: string }).reason;
      return this.#line(`:${this.#mask(who)} PART #${room}${reason ? ` :${reason}` : ""}`);
    }
    if (who && f.event === "offline") {
      const said = (f as { reason?: string }).reason;
      return this.#line(`:${this.#mask(who)} QUIT :${said ?? "left the chat"}`);
    }
    if (f.event === "online") return;
    this.#notice(f.message);
  }

  #error(code: string, message: string, asked: Asked | undefined): void {
    if (!this.#registered) {
      if (code === "bad_password" || code === "password_required") {
        this.#numeric("464", `:${message} (PASS, or SASL PLAIN)`);
      } else if (code === "bad_name" || code === "name_taken") {
        this.#numeric(code === "name_taken" ? "433" : "432", `${this.#nick} :${message}`);
        this.#helloSent = false;
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
    if (label && this.#caps.has("labeled-response") && !this.#labeled) {
      return await this.#withLabel(label, () => this.#command({ ...m, tags: {} }));
    }
    const p = m.params;
    switch (m.command) {
      case "CAP":
        return this.#cap(p);
      case "AUTHENTICATE":
        return this.#authenticate(p[0] ?? "");
      case "PASS":
        if (this.#registered) return this.#numeric("462", ":You may not reregister");
        if (p[0] === undefined) return this.#numeric("461", "PASS :Not enough parameters");
        this.#pass = p[0];
        return;
      case "NICK":
        if (!p[0]) return this.#numeric("431", ":No nickname given");
        if (this.#registered) {
          return this.#numeric("447", ":Names cannot change here: connect again with another NICK");
        }
        this.#nick = p[0];
        return await this.#maybeRegister();
      case "USER":
        if (this.#registered) return this.#numeric("462", ":You may not reregister");
        if (p.length < 4 || !p[0] || !p[3]) {
          return this.#numeric("461", "USER :Not enough parameters (USER name 0 * :Real Name)");
        }
        this.#user = p[0]!;
        return await this.#maybeRegister();
      case "PING":
        if (p[0] === undefined) return this.#numeric("409", ":No origin specified");
        return this.#line(`:${this.#server} PONG ${this.#server} :${p[0]}`);
      case "PONG":
        return;
      case "QUIT":
        this.#farewell = farewell(p[0]);
        this.#line(`ERROR :Closing link: ${this.#farewell ?? "quit"}`);
        return this.close("quit");
    }
    if (!this.#registered) return this.#numeric("451", ":You have not registered");
    const command = IRC_COMMANDS[m.command];
    if (!command) return this.#numeric("421", `${m.command} :Unknown command`);
    return await command(this.#session ??= this.#makeSession(), p, m);
  }

  /** What the command table may do here (made at the first command: idle clients need none). */
  #makeSession(): IrcSession {
    return {
      server: this.#server,
      nick: this.#nick,
      ask: (frame, asked) => this.#ask(frame, asked),
      numeric: (code, text) => this.#numeric(code, text),
      line: (text) => this.#line(text),
      notice: (text) => this.#notice(text),
      seenSeq: (id) => this.#seen.seqOf(id),
      sent: (key) => {
        this.#labelSends?.push(key);
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
    const sub = (p[0] ?? "").toUpperCase();
    if (sub === "LS") {
      this.#negotiating = true;
      // Values (sasl=PLAIN) only for clients of CAP 3.2 and later, who say so with "LS 302".
      const values = Number(p[1]) >= 302;
      return this.#line(
        `:${this.#server} CAP ${this.#nick || "*"} LS :${
          CAPS.map((c) => c === "sasl" && values ? "sasl=PLAIN" : c).join(" ")
        }`,
      );
    }
    if (sub === "REQ") {
      this.#negotiating = true;
      const wanted = (p[1] ?? "").split(" ").filter(Boolean);
      const ok = wanted.every((c) => CAPS.includes(c.replace(/^-/, "")));
      if (ok) {
        for (const c of wanted) {
          if (c.startsWith("-")) this.#caps.delete(c.slice(1));
          else this.#caps.add(c);
        }
      }
      return this.#line(
        `:${this.#server} CAP ${this.#nick || "*"} ${ok ? "ACK" : "NAK"} :${wanted.join(" ")}`,
      );
    }
    if (sub === "LIST") {
      return this.#line(
        `:${this.#server} CAP ${this.#nick || "*"} LIST :${[...this.#caps].join(" ")}`,
      );
    }
    if (sub === "END") {
      this.#negotiating = false;
      void this.#maybeRegister();
    }
  }

  /** SASL PLAIN: the password is checked when the client registers (a wrong one: 904 there). */
  #authenticate(arg: string): void {
    if (arg.toUpperCase() === "PLAIN") return this.#line("AUTHENTICATE +");
    if (arg === "*") return this.#numeric("906", ":SASL authentication aborted");
    try {
      const [, authcid = "", password = ""] = atob(arg).split("\0");
      this.#pass = password;
      if (!this.#nick) this.#nick = authcid;
      this.#numeric(
        "900",
        `${this.#mask(authcid)} ${authcid} :You are now logged in as ${authcid}`,
      );
      this.#numeric("903", ":SASL authentication successful");
    } catch {
      this.#numeric("904", ":SASL authentication failed");
    }
  }

  async #maybeRegister(): Promise<void> {
    if (this.#registered || this.#helloSent || !this.#nick || !this.#user || this.#negotiating) {
      return;
    }
    this.#helloSent = true;
    const hello: Record<string, unknown> = { type: "hello", username: this.#nick };
    // A nick is one connection's: a guest name in use is refused (433). With a password, the
    // account may be used from several connections, as on every wire.
    if (this.#pass !== undefined) hello.password = this.#pass;
    else hello.unique = true;
    await this.#send(hello);
  }
}

/** A chat as the core names it ("books", "@bob") as an IRC target ("#books", "bob"). */
function ircTarget(chat: string): string {
  return chat.startsWith("@") ? chat.slice(1) : `#${chat}`;
}

/** A line with one more tag. */
function tag(line: string, t: string): string {
  return line.startsWith("@") ? `@${t};${line.slice(1)}` : `@${t} ${line}`;
}

/** Whether a client's line is past IRC's limits: 510 bytes without its tags, 4094 of tags. */
export function tooLong(line: string): boolean {
  if (!line.startsWith("@")) return overBytes(line, MAX_BODY_BYTES);
  const end = line.indexOf(" ");
  if (end < 0) return overBytes(line.slice(1), MAX_CLIENT_TAG_BYTES);
  return overBytes(line.slice(1, end), MAX_CLIENT_TAG_BYTES) ||
    overBytes(line.slice(end + 1), MAX_BODY_BYTES);
}

/** Whether `text` takes more than `limit` bytes in UTF-8 (encoded only when it could). */
function overBytes(text: string, limit: number): boolean {
  if (text.length * 3 <= limit) return false;
  if (text.length > limit) return true;
  return encoder.encode(text).length > limit;
}

/**
 * The last SEEN_IDS message ids a client was shown, with their sequence numbers, in two arrays
 * used as a ring: remembering costs two stores per delivery, where a `Map` cost an entry and a
 * hash insert per reader per message (1,000-reader IRC burst, interleaved runs: 0.95-1.15 M →
 * 1.28-1.57 M deliveries/s); looking one up scans them, which only CHATHISTORY does.
 */
class SeenIds {
  #ids: string[] = [];
  #seqs: number[] = [];
  #next = 0;

  add(id: string, seq: number): void {
    if (this.#ids.length < SEEN_IDS) {
      this.#ids.push(id);
      this.#seqs.push(seq);
      return;
    }
    this.#ids[this.#next] = id;
    this.#seqs[this.#next] = seq;
    this.#next = (this.#next + 1) % SEEN_IDS;
  }

  seqOf(id: string): number | undefined {
    const at = this.#ids.lastIndexOf(id);
    return at < 0 ? undefined : this.#seqs[at];
  }
}
