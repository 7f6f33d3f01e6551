/**
 * JIM (JSON Instant Messaging), the protocol of the seed-004 messenger: JSON objects with an
 * `action`, answered with a `response` code. A thin translation onto the same frames every
 * other wire uses: `presence` logs in (a registered name proves its password with a challenge,
 * never sending it), `msg` sends a private message (or, to `#room`, a room message), contacts
 * and users are listed and changed, `join` and `leave` enter and leave rooms, `exit` (or `quit`)
 * ends. Incoming private messages arrive as `{"action":"msg",…}`, and so do the messages of the
 * rooms this connection joined with `join` (not those of every room the user is in: a seed-004
 * client that never joins sees only its private conversations, as its protocol has them).
 * Refusals come back as `{"response":400,"error":…}` with their hints in JIM's own actions.
 * @module
 */

import type { ClientFrame, ServerFrame } from "../../../protocol/frames.ts";

/** A JIM object, as sent or received. */
export type JimObject = Record<string, unknown>;

/** What the connection does with a JIM object from the client. */
export type JimIn =
  | { kind: "send"; frame: ClientFrame }
  | { kind: "reply"; reply: JimObject }
  | { kind: "close"; reply?: JimObject };

/**
 * Whether a first object says JIM: an `action` (no frame of the JSON protocol has one), and no
 * `type` other than JIM's own `"status"` (the course's presence carries `"type": "status"`).
 */
export function isJim(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const obj = value as JimObject;
  return typeof obj.action === "string" && (obj.type === undefined || obj.type === "status");
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** One JIM client's session: which request each reply answers, who it is. */
export class JimSession {
  #name = "";
  #loggedIn = false;
  #next = 0;
  /** What each outstanding request (by ref) was, to shape its answer. */
  #asked = new Map<string, string>();
  /** The rooms this connection joined with `join`: their messages are forwarded. */
  #rooms = new Set<string>();
  /**
   * Which of JIM's two spellings of a message this client speaks: the protocol's own
   * (`"action":"msg"`, `"message"`) until it shows the course code's (`"action":"message"`,
   * `"mess_text"`, or a `pubkey` at presence), after which messages reach it in that one.
   */
  #dialect: Dialect = "jim";

  /** A JIM object from the client. */
  incoming(obj: JimObject): JimIn {
    const action = str(obj.action);
    const user = (typeof obj.user === "object" && obj.user !== null ? obj.user : {}) as JimObject;
    if (action === "message" || "mess_text" in obj || "pubkey" in user) this.#dialect = "course";
    else if (action === "msg") this.#dialect = "jim";
    // The answer to a challenge: {"response": 511, "bin": "<base64 proof>"}.
    if (action === undefined && obj.response === 511 && str(obj.bin) !== undefined) {
      return this.#ask("proof", { type: "hello", username: this.#name, proof: str(obj.bin)! });
    }
    switch (action) {
      case "presence":
      case "authenticate": {
        const name = str(user.account_name) ?? str(obj.account_name);
        if (!name) return bad('"presence" needs user.account_name');
        // JIM clients say presence again to show they are there (and answer a probe with it).
        if (this.#loggedIn) {
          return name.toLowerCase() === this.#name.toLowerCase()
            ? { kind: "reply", reply: { response: 200 } }
            : bad(`You are already logged in as ${this.#name}: connect again to be someone else`);
        }
        this.#name = name;
        const password = str(user.password);
        // A guest name is one person's at a time (a registered one proves its password).
        return this.#ask("presence", {
          type: "hello",
          username: name,
          unique: true,
          ...(password === undefined ? {} : { password }),
        });
      }
      case "msg":
      case "message": {
        const to = str(obj.to) ?? str(obj.destination);
        const message = str(obj.message) ?? str(obj.mess_text);
        if (!to || message === undefined) return bad('"msg" needs "to" and "message"');
        return this.#ask(
          "msg",
          to.startsWith("#")
            ? { type: "message", room: to.slice(1), message }
            : { type: "private", target_username: to, message },
        );
      }
      case "get_contacts":
        return this.#ask("list", { type: "contacts" });
      case "get_users":
        return this.#ask("list", { type: "users", limit: 200 });
      case "add":
      case "add_contact":
      case "del":
      case "remove":
      case "del_contact":
      case "remove_contact": {
        const who = str(obj.user_id) ?? str(obj.user_login) ?? str(obj.account_name);
        if (!who) return bad(`"${action}" needs "user_id"`);
        const add = action.startsWith("add");
        return this.#ask("ok", { type: add ? "add_contact" : "remove_contact", username: who });
      }
      case "join":
      case "leave": {
        const room = str(obj.room) ?? str(obj.to);
        if (!room) return bad(`"${action}" needs "room": {"action":"${action}","room":"#lobby"}`);
        return this.#ask(action, {
          type: action,
          room: room.startsWith("#") ? room.slice(1) : room,
        });
      }
      case "exit":
      case "quit":
        return { kind: "close" };
      default:
        return bad(
          `Unknown action "${
            String(action)
          }": presence, msg, join, leave, get_contacts, get_users, add, del, exit`,
        );
    }
  }

  #ask(kind: string, frame: Record<string, unknown>): JimIn {
    const ref = `jim${++this.#next}`;
    this.#asked.set(ref, kind);
    return { kind: "send", frame: { ...frame, ref } as unknown as ClientFrame };
  }

  /** What a frame from the hub becomes for the client, if anything. */
  outgoing(f: ServerFrame): JimObject[] {
    const ref = "ref" in f && typeof f.ref === "string" ? f.ref : undefined;
    const kind = ref === undefined ? undefined : this.#asked.get(ref);
    if (ref !== undefined) this.#asked.delete(ref);
    switch (f.type) {
      case "welcome":
        this.#name = f.username;
        this.#loggedIn = true;
        return [{ response: 200, alert: `logged in as ${f.username}` }];
      case "challenge":
        return [{
          response: 511,
          bin: f.nonce,
          kdf: f.kdf,
          salt: f.salt,
          N: f.N,
          r: f.r,
          p: f.p,
          key_bytes: f.key_bytes,
        }];
      case "error":
        if (kind === "presence" && f.code === "password_required") {
          // A registered name: prove the password without sending it.
          this.wantsChallenge = true;
          return [];
        }
        return [{
          response: f.code === "banned" || f.code === "forbidden" ? 403 : 400,
          error: jimHints(f.message),
        }];
      case "ack":
        return [
          f.offline
            ? {
              response: 400,
              error: "client not online",
              alert: "stored: delivered when they connect",
            }
            : { response: 200 },
        ];
      case "contacts_list":
        return kind === "list"
          ? [{ response: 202, data_list: f.contacts.map((c) => c.username) }]
          : kind === "ok"
          ? [{ response: 200 }]
          : [];
      case "users_list":
        return kind === "list" ? [{ response: 202, data_list: f.all.map((u) => u.username) }] : [];
      case "joined":
        // Only its own join: one on another connection of the user does not start the flow.
        if (kind !== "join") return [];
        this.#rooms.add(f.room);
        return [{ response: 200, alert: `joined #${f.room}` }];
      case "left":
        // Also when the user left the room from another connection: its messages stop.
        this.#rooms.delete(f.room);
        return kind === "leave" ? [{ response: 200, alert: `left #${f.room}` }] : [];
      case "private":
        // A JIM client is not sent back what it sent itself.
        return f.from_username === this.#name ? [] : [jimMessage(f, this.#dialect)];
      case "message":
        return this.#rooms.has(f.room) && f.from_username !== this.#name
          ? [jimMessage(f, this.#dialect)]
          : [];
      case "history":
        // Private chats' unread and resumed messages from others; room history is not JIM's.
        return f.chat.startsWith("@")
          ? f.messages.filter((m) => m.type === "private" && m.from_username !== this.#name)
            .map((m) => jimMessage(m, this.#dialect))
          : [];
      case "bye":
        return [{ response: 400, error: f.reason }];
      default:
        return [];
    }
  }

  /** The frame that asks the hub for a login challenge for the name given at presence. */
  challengeFrame(): ClientFrame {
    const ref = `jim${++this.#next}`;
    this.#asked.set(ref, "challenge");
    return { type: "challenge", username: this.#name, ref };
  }

  /** True once the hub said the name is registered: the connection sends `challengeFrame()`. */
  wantsChallenge = false;
}

/**
 * The core's hints name the commands people type (`/join lobby`, `/users`) and the JSON
 * wire's login; a JIM client is told the JIM action instead.
 */
export function jimHints(message: string): string {
  return message
    .replace(
      /^Say who you are first: .*$/,
      'Say who you are first: {"action":"presence","user":{"account_name":"YourName"}}',
    )
    .replace(
      /\/join #?(\S+) (creates (?:it|the room)|first|to read it)/g,
      '{"action":"join","room":"#$1"} $2',
    )
    .replace(/\/join (another room|it\b)/g, "join $1")
    .replace(/\/users lists/g, '{"action":"get_users"} lists');
}

function bad(error: string): JimIn {
  return { kind: "reply", reply: { response: 400, error } };
}

/** JIM's spelling of a message: the protocol's, or the course code's. */
type Dialect = "jim" | "course";

function jimMessage(
  m: Extract<ServerFrame, { type: "private" | "message" }>,
  dialect: Dialect,
): JimObject {
  const to = m.type === "private" ? m.to_username : `#${m.room}`;
  const time = Date.parse(m.timestamp) / 1000;
  return dialect === "jim"
    ? { action: "msg", time, from: m.from_username, to, message: m.message }
    : { action: "message", time, from: m.from_username, to, mess_text: m.message };
}
