/**
 * labeled-response for messages: with echo-message, a labeled PRIVMSG or NOTICE is answered by
 * its echo, which comes only once the message is stored. Until then its label is owed, matched
 * to the echo by target and text.
 * @module
 */

import type { MessageFrame } from "../../../protocol/frames.ts";

/** Labeled messages whose echo may be awaited at once (a client sends one at a time). */
const OWED_AT_MOST = 64;

/**
 * How a message this client sent is known when it comes back: its target ("#room" or "@nick") and
 * its text, in lower case (names are case-insensitive: `PRIVMSG #Lobby` comes back as `#lobby`).
 */
export function sentKey(m: MessageFrame): string {
  return typedKey(m.type === "private" ? m.to_username : "#" + m.room, m.message);
}

/** The key of a message as the client typed it: its target (`#Room` or `Nick`) and its text. */
export function typedKey(target: string, text: string): string {
  return ((target.startsWith("#") ? target : "@" + target) + "\0" + text).toLowerCase();
}

/** Labels owed to the echoes of labeled messages still being stored, oldest first. */
export class EchoLabels {
  #owed: Array<{ key: string; label: string }> = [];

  /** Whether any label is owed (the fast path of every delivery asks). */
  get empty(): boolean {
    return this.#owed.length === 0;
  }

  /** Owes `label` to the echo of the message sent as `key` (`typedKey`). */
  owe(key: string, label: string): void {
    this.#owed.push({ key, label });
    if (this.#owed.length > OWED_AT_MOST) this.#owed.shift();
  }

  /** The label owed to this message's echo, taken; undefined if none is. */
  take(m: MessageFrame): string | undefined {
    const key = sentKey(m);
    const at = this.#owed.findIndex((e) => e.key === key);
    return at < 0 ? undefined : this.#owed.splice(at, 1)[0]!.label;
  }

  /** A message to `target` was refused after its command: its echo will not come. */
  refused(target: string): void {
    const prefix = typedKey(target, "");
    const at = this.#owed.findIndex((e) => e.key.startsWith(prefix));
    if (at >= 0) this.#owed.splice(at, 1);
  }
}
