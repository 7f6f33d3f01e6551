/**
 * JIM (JSON Instant Messaging), the protocol of the seed-004 messenger: JSON objects with an
 * `action`, answered with a `response` code. A thin translation onto the same frames every
 * other wire uses: `presence` logs in (a registered name proves its password with a challenge,
 * never sending it), `msg` sends a private message, contacts and users are listed and changed,
 * `exit` ends. Incoming private messages arrive as `{"action":"msg",…}`. Room traffic is not part
 * of JIM and is not forwarded.
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
 * Splits concatenated JSON objects out of a text stream (JIM clients send objects back to back,
 * newline or not); returns the complete ones and what is left.
 */
export function splitObjects(text: string): { objects: string[]; rest: string } {
  const objects: string[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{") {
      if (depth++ === 0) start = i;
    } else if (c === "}" && depth > 0 && --depth === 0) {
      objects.push(text.slice(start, i + 1));
      start = -1;
    }
  }
  const rest = depth > 0 && start >= 0 ? text.slice(start) : "";
  return { objects, rest };
}

/** Whether a first object says JIM: an `action`, and no `type`. */
export function isJim(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    "action" in value && !("type" in value);
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** One JIM client's session: which request each reply answers, who it is. */
export class JimSession {
  #name = "";
  #next = 0;
  /** What each outstanding request (by ref) was, to shape its answer. */
  #asked = new Map<string, string>();

  /** A JIM object from the client. */
  incoming(obj: JimObject): JimIn {
    const action = str(obj.action);
    const user = (typeof obj.user === "object" && obj.user !== null ? obj.user : {}) as JimObject;
    // The answer to a challenge: {"response": 511, "bin": "<base64 proof>"}.
    if (action === undefined && obj.response === 511 && str(obj.bin) !== undefined) {
      return this.#ask("proof", { type: "hello", username: this.#name, proof: str(obj.bin)! });
    }
    switch (action) {
      case "presence":
      case "authenticate": {
        const name = str(user.account_name) ?? str(obj.account_name);
        if (!name) return bad('"presence" needs user.account_name');
        this.#name = name;
        const password = str(user.password);
        return this.#ask("presence", {
          type: "hello",
          username: name,
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
      case "exit":
        return { kind: "close" };
      default:
        return bad(
          `Unknown action "${
            String(action)
          }": presence, msg, get_contacts, add, del, get_users, exit`,
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
          error: f.message,
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
      case "private":
        // A JIM client is not sent back what it sent itself.
        return f.from_username === this.#name ? [] : [jimMessage(f)];
      case "history":
        // Private chats' unread and resumed messages from others; room history is not JIM's.
        return f.chat.startsWith("@")
          ? f.messages.filter((m) => m.type === "private" && m.from_username !== this.#name)
            .map(jimMessage)
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

function bad(error: string): JimIn {
  return { kind: "reply", reply: { response: 400, error } };
}

function jimMessage(m: Extract<ServerFrame, { type: "private" | "message" }>): JimObject {
  return {
    action: "msg",
    time: Date.parse(m.timestamp) / 1000,
    from: m.from_username,
    to: m.type === "private" ? m.to_username : `#${m.room}`,
    message: m.message,
  };
}
