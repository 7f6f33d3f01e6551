/**
 * IRC registration as a small state machine: NICK, USER and PASS, CAP negotiation and SASL
 * PLAIN. The connection feeds it what the client sent and sends what it answers; once `hello()`
 * gives a frame, the connection logs in with it through the hub (which checks the password).
 * @module
 */

import type { Numeric } from "./replies.ts";

/** IRCv3 capabilities this server implements. */
export const CAPS = [
  "server-time",
  "message-tags",
  "echo-message",
  "batch",
  "sasl",
  "draft/chathistory",
  "labeled-response",
  "away-notify",
  // Every prefix a member has in NAMES and WHO: none here (PREFIX= is empty), so all of them.
  "multi-prefix",
];

/** Where a connection is in registering, and what it negotiated. */
export class Registration {
  nick = "";
  user = "";
  pass: string | undefined;
  /** The capabilities the client asked for and got. */
  readonly caps = new Set<string>();
  /** Between CAP LS (or REQ) and CAP END registration waits. */
  negotiating = false;
  /** The hub welcomed the client. */
  registered = false;
  /** A hello is on its way to the hub (reset when it is refused, so another NICK may try). */
  helloSent = false;

  /** The answer to a CAP subcommand (the text after the server's prefix), if it has one. */
  cap(p: string[]): string | null {
    const sub = (p[0] ?? "").toUpperCase();
    const to = this.nick || "*";
    if (sub === "LS") {
      this.negotiating = true;
      // Values (sasl=PLAIN) only for clients of CAP 3.2 and later, who say so with "LS 302".
      const values = Number(p[1]) >= 302;
      return `CAP ${to} LS :${
        CAPS.map((c) => c === "sasl" && values ? "sasl=PLAIN" : c).join(" ")
      }`;
    }
    if (sub === "REQ") {
      this.negotiating = true;
      const asked = (p[1] ?? "").trim();
      const wanted = asked.split(" ").filter(Boolean);
      const ok = wanted.every((c) => CAPS.includes(c.replace(/^-/, "")));
      if (ok) {
        for (const c of wanted) {
          if (c.startsWith("-")) this.caps.delete(c.slice(1));
          else this.caps.add(c);
        }
      }
      // NAK or ACK the list as it was asked, unchanged (IRCv3: the whole set, as sent).
      return `CAP ${to} ${ok ? "ACK" : "NAK"} :${asked}`;
    }
    if (sub === "LIST") return `CAP ${to} LIST :${[...this.caps].join(" ")}`;
    if (sub === "END") {
      this.negotiating = false;
      return null;
    }
    return `410 ${to} ${sub || "*"} :Invalid CAP command (LS, REQ, LIST or END)`;
  }

  /**
   * SASL PLAIN: "+" asks for the credentials; then the numerics to send (the password is kept
   * and checked when the client registers: a wrong one is 464 there).
   */
  authenticate(arg: string, mask: (nick: string) => string): "+" | Numeric[] {
    if (arg.toUpperCase() === "PLAIN") return "+";
    if (arg === "*") return [["906", ":SASL authentication aborted"]];
    try {
      const [, authcid = "", password = ""] = atob(arg).split("\0");
      this.pass = password;
      if (!this.nick) this.nick = authcid;
      return [
        ["900", `${mask(authcid)} ${authcid} :You are now logged in as ${authcid}`],
        ["903", ":SASL authentication successful"],
      ];
    } catch {
      return [["904", ":SASL authentication failed"]];
    }
  }

  /**
   * PASS, NICK or USER: takes what it gives, or answers why not (a numeric); after a NICK or USER
   * the connection tries `hello()`.
   */
  take(command: "PASS" | "NICK" | "USER", p: string[]): Numeric | null {
    switch (command) {
      case "PASS":
        if (this.registered) return ["462", ":You may not reregister"];
        if (p[0] === undefined) return ["461", "PASS :Not enough parameters"];
        this.pass = p[0];
        return null;
      case "NICK":
        if (!p[0]) return ["431", ":No nickname given"];
        if (this.registered) {
          return ["447", ":Names cannot change here: connect again with another NICK"];
        }
        this.nick = p[0];
        return null;
      case "USER":
        if (this.registered) return ["462", ":You may not reregister"];
        if (p.length < 4 || !p[0] || !p[3]) {
          return ["461", "USER :Not enough parameters (USER name 0 * :Real Name)"];
        }
        this.user = p[0];
        return null;
    }
  }

  /** The hello frame once NICK, USER and CAP END are in, once; null until then. */
  hello(): Record<string, unknown> | null {
    if (this.registered || this.helloSent || !this.nick || !this.user || this.negotiating) {
      return null;
    }
    this.helloSent = true;
    const hello: Record<string, unknown> = { type: "hello", username: this.nick };
    // A nick is one connection's: a guest name in use is refused (433). With a password, the
    // account may be used from several connections, as on every wire.
    if (this.pass !== undefined) hello.password = this.pass;
    else hello.unique = true;
    return hello;
  }
}
