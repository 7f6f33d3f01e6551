/**
 * Domain errors of the chat core. Each carries a stable code that transports map to an
 * `error` frame or an HTTP status in one place.
 * @module
 */

import type { ErrorCode } from "../../protocol/frames.ts";

/** A chat rule refused a command; the message tells the user what to do instead. */
export class ChatError extends Error {
  /** The stable code sent to the peer. */
  readonly code: ErrorCode;
  /** Creates a chat error with its code. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ChatError";
    this.code = code;
  }
}
