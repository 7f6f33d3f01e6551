/**
 * Text mode for people on telnet or netcat: the login dialogue (the hub's answers to `hello`
 * become questions: nickname, then password), lines typed turned into frames, frames rendered
 * as lines, and the prompt that shows where typing goes.
 * @module
 */

import type { ClientFrame, Mode, ServerFrame } from "../../../protocol/frames.ts";
import {
  ADMIN_HELP_LINES,
  HELP_LINES,
  JoinedRooms,
  parseLine,
  promptFor,
  renderFrame,
} from "../../../protocol/text.ts";

/** Where a person is in the dialogue. */
export type TextPhase = "name" | "password" | "chat";

/**
 * What the connection does with a line or a frame: text to show, a frame to send, or close.
 * `echo: false` asks the telnet client to stop echoing what is typed (a password follows);
 * `echo: true` gives echo back.
 */
export type TextAction =
  | { kind: "show"; text: string; echo?: boolean }
  | { kind: "send"; frame: ClientFrame; echo?: boolean }
  | { kind: "close"; text: string; reason: string; farewell?: string }
  | { kind: "none" };

/** The greeting of a person who has not typed anything yet. */
export const GREETING = "Welcome to chat!\r\nEnter your nickname: ";

/** Password tries before the connection is closed. */
const MAX_PASSWORD_TRIES = 3;

/** One person's text session: pure state, no sockets. */
export class TextSession {
  phase: TextPhase = "name";
  #name = "";
  #mode: Mode = { kind: "room", room: "general" };
  #pendingSessionFrom: string | undefined;
  #passwordTries = 0;
  /** Whether the user is in a private session (not only this connection's view of it). */
  #inSession = false;
  readonly #rooms = new JoinedRooms();

  /** The prompt for where typing goes now. */
  prompt(): string {
    return promptFor(this.#mode);
  }

  /** A line the person typed. */
  line(typed: string): TextAction {
    const line = edited(typed);
    switch (this.phase) {
      case "name": {
        const name = line.trim();
        if (name === "") return { kind: "show", text: "Enter your nickname: " };
        this.#name = name;
        return { kind: "send", frame: { type: "hello", username: name } };
      }
      case "password":
        return {
          kind: "send",
          frame: { type: "hello", username: this.#name, password: line },
          echo: true,
        };
      case "chat":
        break;
    }
    const parsed = parseLine(line, {
      pendingSessionFrom: this.#pendingSessionFrom,
      inSession: this.#inSession,
      rooms: this.#rooms.names,
    });
    switch (parsed.kind) {
      case "empty":
        return { kind: "show", text: "" };
      case "help":
        return { kind: "show", text: HELP_LINES.join("\r\n") + "\r\n" };
      case "admin_help":
        return { kind: "show", text: ADMIN_HELP_LINES.join("\r\n") + "\r\n" };
      case "quit":
        return {
          kind: "close",
          text: "Bye!\r\n",
          reason: "quit",
          ...(parsed.farewell ? { farewell: parsed.farewell } : {}),
        };
      case "error":
        return { kind: "show", text: `! ${parsed.message}\r\n` };
      case "frame":
        if (parsed.frame.type === "session_response") this.#pendingSessionFrom = undefined;
        return { kind: "send", frame: parsed.frame };
    }
  }

  /**
   * A frame from the hub: during login, its answers become the next question; after, frames are
   * rendered (`render` is the shared per-frame encoding, so a room's readers render it once).
   */
  frame(f: ServerFrame, render: () => string | null): TextAction {
    if (this.phase !== "chat") {
      if (f.type === "error") {
        if (f.code === "password_required" || f.code === "bad_password") {
          if (f.code === "bad_password" && ++this.#passwordTries >= MAX_PASSWORD_TRIES) {
            return {
              kind: "close",
              text: "! Wrong password three times. Bye.\r\n",
              reason: "bad password",
            };
          }
          this.phase = "password";
          const wrong = f.code === "bad_password" ? "! Wrong password.\r\n" : "";
          return { kind: "show", text: `${wrong}Password for ${this.#name}: `, echo: false };
        }
        this.phase = "name";
        return { kind: "show", text: `! ${f.message}\r\nEnter your nickname: ` };
      }
      if (f.type === "welcome") this.phase = "chat";
    }
    if ("mode" in f && f.mode) this.#mode = f.mode;
    this.#rooms.follow(f);
    if (f.type === "welcome") this.#inSession = f.mode.kind === "session";
    if (f.type === "status") this.#inSession = f.session !== null;
    if (f.type === "session_accepted") this.#inSession = true;
    if (f.type === "session_ended") this.#inSession = false;
    if (f.type === "session_request") this.#pendingSessionFrom = f.from_username;
    if (f.type === "bye") return { kind: "show", text: `* Disconnected: ${f.reason}\r\n` };
    const text = render();
    return text === null ? { kind: "none" } : { kind: "show", text };
  }
}

/**
 * Keys a terminal sends as escape sequences: arrows, Home, End, function keys (`ESC [ … letter`,
 * `ESC O letter`), Alt with a key (`ESC key`), Esc alone. A terminal in line mode (netcat, telnet)
 * passes them into the line as typed (the person sees `^[[D`): they are not text.
 */
// deno-lint-ignore no-control-regex
const KEY_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|O[\s\S]|[\s\S])?/g;

/**
 * A line as the person meant it: a telnet client in character mode (as with echo off, at the
 * password prompt) sends the editing keys themselves, so Backspace or Delete (BS, DEL) takes back
 * the character before it and Ctrl-U the whole line; keys sent as escape sequences (an arrow
 * pressed to fix a typo) are dropped rather than the whole line refused for control characters.
 */
export function edited(typed: string): string {
  const line = typed.includes("\x1b") ? typed.replace(KEY_SEQUENCE, "") : typed;
  if (!line.includes("\b") && !line.includes("\x7f") && !line.includes("\x15")) return line;
  const out: string[] = [];
  for (const ch of line) {
    if (ch === "\b" || ch === "\x7f") out.pop();
    else if (ch === "\x15") out.length = 0;
    else out.push(ch);
  }
  return out.join("");
}

/** A frame as text-mode lines (CRLF), or null for frames people do not see. */
export function textLines(frame: ServerFrame): string | null {
  const text = renderFrame(frame);
  return text === null ? null : text.replace(/\n/g, "\r\n") + "\r\n";
}
