/**
 * One command in progress: who asked, from which connection (none for REST), where they are,
 * and the `Reply` that answers them with the request's `ref` stamped once.
 * @module
 */

import { ProtocolError, type ServerFrame } from "../../protocol/frames.ts";
import type { Core } from "./core.ts";
import { ChatError } from "./errors.ts";
import { type Conn, GENERAL, type UserState, type View } from "./state.ts";

/** Answers the connection that sent a command, stamping its `ref` on every answer. */
export class Reply {
  readonly #core: Core;
  readonly #conn: Conn;
  readonly #ref: string | undefined;

  /** A reply to `conn` for the frame that carried `ref`. */
  constructor(core: Core, conn: Conn, ref: string | undefined) {
    this.#core = core;
    this.#conn = conn;
    this.#ref = ref;
  }

  /** Sends an answer, with the request's `ref`. */
  send(frame: ServerFrame): void {
    this.#core.sendTo(this.#conn, this.#ref === undefined ? frame : { ...frame, ref: this.#ref });
  }

  /** Sends an error answer; an unexpected error is counted, logged and answered in general terms. */
  fail(error: unknown): void {
    this.send(errorFrame(this.#core, error));
  }
}

/** The `error` frame for a failure: its own words for a rule, general ones for a bug. */
export function errorFrame(core: Core, error: unknown): ServerFrame {
  if (error instanceof ChatError || error instanceof ProtocolError) {
    return { type: "error", code: error.code, message: error.message };
  }
  core.stats.errors++;
  core.log("error", `internal error handling a command: ${String(error).slice(0, 200)}`);
  core.onError(error, "command");
  return {
    type: "error",
    code: "internal",
    message: "Something went wrong on the server; it was logged. Try again.",
  };
}

/** How a later answer turned out. */
export type Settled<F> = { ok: true; value: F } | { ok: false; error: unknown };

/**
 * An answer that comes later: a message's `ack` once its batch is stored. A live connection
 * listens (and is answered in the same turn as the message is fanned out, so acks and
 * deliveries keep their order); a REST call awaits `done`. The promises are made only when asked
 * for: a live connection's message (all of them, at ingest) needs none.
 */
export class Pending<F extends ServerFrame = ServerFrame> {
  #done: Promise<F> | null = null;
  #resolve: ((value: F) => void) | null = null;
  #reject: ((error: unknown) => void) | null = null;
  #listener: ((result: Settled<F>) => void) | null = null;
  #result: Settled<F> | null = null;

  /** Settles with the answer, or fails with a `ChatError`. */
  get done(): Promise<F> {
    if (this.#done) return this.#done;
    const result = this.#result;
    this.#done = result
      ? (result.ok ? Promise.resolve(result.value) : Promise.reject(result.error))
      : new Promise<F>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
    // Whoever asked awaits it; a failure nobody awaited is not an unhandled rejection.
    this.#done.catch(() => {});
    return this.#done;
  }

  /** Settles once the answer is settled, either way (for what must wait its turn behind it). */
  get settled(): Promise<void> {
    return this.done.then(() => {}, () => {});
  }

  /** Calls `listener` synchronously when the answer is settled (at once if it is). */
  listen(listener: (result: Settled<F>) => void): void {
    if (this.#result) listener(this.#result);
    else this.#listener = listener;
  }

  /** Settles with the answer. */
  resolve(value: F): void {
    this.#settle({ ok: true, value });
    this.#resolve?.(value);
  }

  /** Settles with a failure. */
  reject(error: unknown): void {
    this.#settle({ ok: false, error });
    this.#reject?.(error);
  }

  #settle(result: Settled<F>): void {
    this.#result = result;
    this.#listener?.(result);
    this.#listener = null;
  }
}

/** A command being run. */
export interface Call {
  readonly core: Core;
  /** The logged-in user, or null before login. */
  readonly user: UserState | null;
  /** The live connection that asked, or null for a REST request. */
  readonly conn: Conn | null;
  /** Where the asker is: the connection itself, or a fresh view in `general` for REST. */
  readonly view: View;
  /** The asker's address. */
  readonly ip: string;
  /** Answers a live connection early (the login welcome goes out before the replay); null for REST. */
  readonly reply: Reply | null;
  /** Frames the asking connection gets after the answer (REST callers do not). */
  readonly after: ServerFrame[];
}

/** A command of a logged-in user. */
export interface UserCall extends Call {
  readonly user: UserState;
}

/** The connections of the asking user except the asking one: where "your other devices" frames go. */
export function exceptAsker(call: Call): { exceptConn?: number } {
  return call.conn ? { exceptConn: call.conn.id } : {};
}

/** A call of a user with no live connection: REST, scheduled delivery, uploads. It is in `general`. */
export function connectionlessCall(core: Core, user: UserState, ip: string): UserCall {
  return {
    core,
    user,
    conn: null,
    view: { room: GENERAL, sessionView: false },
    ip,
    reply: null,
    after: [],
  };
}
