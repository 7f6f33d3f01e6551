/**
 * labeled-response: everything a labeled command causes to be sent back is its answer, in one
 * labeled line, a `labeled-response` batch, or an `ACK` when there is nothing. Most commands are
 * answered while they are handled; a PRIVMSG or NOTICE is answered later, once the message is
 * stored: by its echo (echo-message) and its ack (an `RPL_AWAY` for someone away) or its refusal.
 * So an answer waits for each message it sent: its ack or refusal by the ask's ref, and its echo
 * by target and text.
 * @module
 */

import type { MessageFrame } from "../../../protocol/frames.ts";
import { withTag } from "./lines.ts";

/** Answers that may wait at once (a client sends one labeled command at a time). */
const WAITING_AT_MOST = 64;

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

/** One labeled command's answer while it is gathered. */
class LabeledAnswer {
  /** The lines answering it so far, untagged by the label. */
  readonly lines: string[] = [];
  /** Refs of its messages whose ack or refusal has not come, with each one's key. */
  readonly #refs = new Map<string, string>();
  /** Keys of its messages whose echo has not come (echo-message). */
  readonly #echoes: string[] = [];
  /** Whether the command is still being handled. */
  handling = true;

  /** An answer for the command labeled `label`. */
  constructor(readonly label: string) {}

  /** Whether nothing more will join it. */
  get complete(): boolean {
    return !this.handling && this.#refs.size === 0 && this.#echoes.length === 0;
  }

  /** It sent a message (ask `ref`, `typedKey` `key`): wait for its ack or refusal, and echo. */
  expect(ref: string, key: string, echo: boolean): void {
    this.#refs.set(ref, key);
    if (echo) this.#echoes.push(key);
  }

  /** Whether `ref` is one of its messages still unanswered. */
  awaits(ref: string): boolean {
    return this.#refs.has(ref);
  }

  /** The message of `ref` was acked, or refused (then no echo will come). */
  answered(ref: string, refused: boolean): void {
    const key = this.#refs.get(ref);
    this.#refs.delete(ref);
    if (refused && key !== undefined) this.#takeEcho(key);
  }

  /** Takes this message's echo as awaited by this answer; false if it was not. */
  takeEcho(m: MessageFrame): boolean {
    return this.#takeEcho(sentKey(m));
  }

  #takeEcho(key: string): boolean {
    const at = this.#echoes.indexOf(key);
    if (at < 0) return false;
    this.#echoes.splice(at, 1);
    return true;
  }
}

/**
 * One connection's labeled answers: the one being handled, and those handled that still wait for
 * their messages. Lines go to `collect` while one gathers; an answer complete goes to `send`.
 */
export class Labels {
  readonly #server: string;
  readonly #send: (text: string) => void;
  #batches = 0;
  /** Where lines go instead of the wire while an answer gathers them (null: the wire). */
  #into: string[] | null = null;
  #handling: LabeledAnswer | null = null;
  #waiting = new WaitingAnswers();

  /** Labels for a connection to `server` that writes its text with `send`. */
  constructor(server: string, send: (text: string) => void) {
    this.#server = server;
    this.#send = send;
  }

  /** Whether a labeled command is being handled (a label inside one is not another answer). */
  get handling(): boolean {
    return this.#handling !== null;
  }

  /** Takes lines (each CRLF-ended) into the answer gathering now; false: they go to the wire. */
  collect(lines: string): boolean {
    if (this.#into === null) return false;
    this.#into.push(...lines.split(/(?<=\r\n)/));
    return true;
  }

  /** Handles a labeled command: everything it causes to be sent back is its answer. */
  async handle(label: string, run: () => Promise<void>): Promise<void> {
    const answer = new LabeledAnswer(label);
    this.#handling = answer;
    this.#into = answer.lines;
    try {
      await run();
    } finally {
      this.#handling = null;
      this.#into = null;
      answer.handling = false;
    }
    if (answer.complete) return this.#sendAnswer(answer);
    // Too many waiting (acks that never came): the oldest goes out with what it has.
    const evicted = this.#waiting.add(answer);
    if (evicted) this.#sendAnswer(evicted);
  }

  /** The command being handled sent a message (ask `ref`, `typedKey` `key`): its answer waits. */
  sent(ref: string, key: string, echo: boolean): void {
    this.#handling?.expect(ref, key, echo);
  }

  /**
   * The ack or refusal (ask `ref`) of a message: what `render` writes of it joins the answer that
   * sent it, if one did; else it goes to the wire.
   */
  answered(ref: string, refused: boolean, render: () => void): void {
    const answer = this.#handling?.awaits(ref) ? this.#handling : this.#waiting.byRef(ref);
    if (!answer) return render();
    const outer = this.#into;
    this.#into = answer.lines;
    try {
      render();
    } finally {
      this.#into = outer;
    }
    answer.answered(ref, refused);
    this.#sendIfComplete(answer);
  }

  /**
   * This client's own message came back (echo-message): if a labeled command awaits it, its
   * `lines` join that answer and true is returned; else false, and it goes out as any message.
   */
  echo(m: MessageFrame, lines: () => string): boolean {
    if (this.#handling === null && this.#waiting.empty) return false;
    const answer = this.#handling?.takeEcho(m) ? this.#handling : this.#waiting.byEcho(m);
    if (!answer) return false;
    answer.lines.push(...lines().split(/(?<=\r\n)/));
    this.#sendIfComplete(answer);
    return true;
  }

  /** Sends a waiting answer once nothing more will join it. */
  #sendIfComplete(answer: LabeledAnswer): void {
    if (answer === this.#handling || !answer.complete) return;
    this.#waiting.remove(answer);
    this.#sendAnswer(answer);
  }

  /** One labeled line, a `labeled-response` batch, or an `ACK` for an answer of no lines. */
  #sendAnswer({ label, lines }: LabeledAnswer): void {
    const server = this.#server;
    if (lines.length === 0) return this.#send(withTag(`:${server} ACK\r\n`, `label=${label}`));
    if (lines.length === 1) return this.#send(withTag(lines[0]!, `label=${label}`));
    const id = `l${++this.#batches}`;
    this.#send(
      `@label=${label} :${server} BATCH +${id} labeled-response\r\n` +
        lines.map((l) => withTag(l, `batch=${id}`)).join("") + `:${server} BATCH -${id}\r\n`,
    );
  }
}

/** The answers handled and still waiting for their messages, oldest first. */
class WaitingAnswers {
  #waiting: LabeledAnswer[] = [];

  /** Whether none waits (the fast path of every delivery asks). */
  get empty(): boolean {
    return this.#waiting.length === 0;
  }

  /** An answer handled whose messages are not all answered; the oldest, if too many wait. */
  add(answer: LabeledAnswer): LabeledAnswer | undefined {
    this.#waiting.push(answer);
    return this.#waiting.length > WAITING_AT_MOST ? this.#waiting.shift() : undefined;
  }

  /** The waiting answer that sent the message of `ref`. */
  byRef(ref: string): LabeledAnswer | undefined {
    return this.#waiting.find((a) => a.awaits(ref));
  }

  /** The waiting answer this echo belongs to, with the echo taken. */
  byEcho(m: MessageFrame): LabeledAnswer | undefined {
    return this.#waiting.find((a) => a.takeEcho(m));
  }

  /** Stops waiting for a complete answer. */
  remove(answer: LabeledAnswer): void {
    const at = this.#waiting.indexOf(answer);
    if (at >= 0) this.#waiting.splice(at, 1);
  }
}
