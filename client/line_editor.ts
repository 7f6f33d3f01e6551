/**
 * The terminal client's input line: edited in raw mode on a terminal (cursor keys, Home/End,
 * Ctrl+A/E/U, history with Up/Down), read line by line from piped stdin otherwise. Stdin has one
 * reader, so a question asked while a chat line is being edited (a password after a reconnect)
 * takes the line over, hidden when secret, and gives it back after the answer.
 * @module
 */

/** The input line of a terminal client. */
export class LineEditor {
  #tty: boolean;
  #write: (text: string) => void;
  #prompt: () => string;
  #buffer: string[] = [];
  #cursor = 0;
  #history: string[] = [];
  #historyAt = 0;
  #inputLines: ReadableStreamDefaultReader<string> | null = null;
  /** Whether a line is being edited (then output goes above it). */
  editing = false;
  /**
   * A question asked while a chat line is being edited: it takes over the input line, hidden
   * when secret, and its answer is neither sent nor kept in history.
   */
  #question: {
    prompt: string;
    secret: boolean;
    resolve: (answer: string | null) => void;
    saved: { buffer: string[]; cursor: number };
  } | null = null;

  /** An editor writing with `write`, showing `prompt()` before the line on a terminal. */
  constructor(tty: boolean, write: (text: string) => void, prompt: () => string) {
    this.#tty = tty;
    this.#write = write;
    this.#prompt = prompt;
  }

  /** Draws the input line again: the prompt (or a question's), what is typed, the cursor. */
  redraw(): void {
    if (!this.#tty) return;
    const q = this.#question;
    if (q?.secret) {
      this.#write("\r\x1b[K" + q.prompt);
      return;
    }
    const text = this.#buffer.join("");
    const back = this.#buffer.length - this.#cursor;
    this.#write(
      "\r\x1b[K" + (q ? q.prompt : this.#prompt()) + text + (back > 0 ? `\x1b[${back}D` : ""),
    );
  }

  /**
   * Asks a question on the input line and reads the answer (hidden when `secret`): through the
   * line being edited if there is one, else by editing a line for it. Never sent as chat, never
   * in history. Null when the user cancels (Ctrl+C, Ctrl+D) or input ends.
   */
  askLine(prompt: string, secret: boolean): Promise<string | null> {
    if (!this.#tty) {
      this.#write(prompt);
      return this.readLine(secret);
    }
    return new Promise((resolve) => {
      this.#question = {
        prompt,
        secret,
        resolve,
        saved: { buffer: this.#buffer, cursor: this.#cursor },
      };
      this.#buffer = [];
      this.#cursor = 0;
      if (this.editing) this.redraw();
      else void this.#editLine(false);
    });
  }

  /** Answers the pending question and gives the chat line back. */
  #answer(answer: string | null): void {
    const q = this.#question!;
    this.#question = null;
    this.#buffer = q.saved.buffer;
    this.#cursor = q.saved.cursor;
    q.resolve(answer);
  }

  /** Reads one line: edited in raw mode on a terminal (hidden when `secret`), else from piped stdin. */
  async readLine(secret = false): Promise<string | null> {
    if (!this.#tty) {
      this.#inputLines ??= Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
        splitLines(),
      )
        .getReader();
      const { value, done } = await this.#inputLines.read();
      return done ? null : value;
    }
    return await this.#editLine(secret);
  }

  async #editLine(secret: boolean): Promise<string | null> {
    Deno.stdin.setRaw(true);
    this.editing = true;
    const decoder = new TextDecoder();
    const buf = new Uint8Array(64);
    // Started for a question alone: it ends with the answer.
    const forQuestion = this.#question !== null;
    if (!forQuestion) {
      this.#buffer = [];
      this.#cursor = 0;
    }
    if (!secret) this.redraw();
    try {
      while (true) {
        const n = await Deno.stdin.read(buf);
        if (n === null) {
          if (this.#question) this.#answer(null);
          return null;
        }
        const input = decoder.decode(buf.subarray(0, n), { stream: true });
        for (let i = 0; i < input.length; i++) {
          const ch = input[i]!;
          const hidden = secret || this.#question?.secret === true;
          if (ch === "\r" || ch === "\n") {
            const line = this.#buffer.join("");
            this.#write("\r\n");
            if (this.#question) {
              this.#answer(line);
              if (forQuestion) return null;
              this.redraw();
              continue;
            }
            if (!hidden && line.trim()) {
              this.#history.push(line);
              this.#historyAt = this.#history.length;
            }
            return line;
          }
          if (ch === "\x03" || (ch === "\x04" && this.#buffer.length === 0)) {
            if (this.#question) {
              this.#write("\r\n");
              this.#answer(null);
              if (forQuestion) return null;
              this.redraw();
              continue;
            }
            return null;
          }
          if (ch === "\x7f" || ch === "\b") {
            if (this.#cursor > 0) this.#buffer.splice(--this.#cursor, 1);
          } else if (ch === "\x01") this.#cursor = 0;
          else if (ch === "\x05") this.#cursor = this.#buffer.length;
          else if (ch === "\x15") {
            this.#buffer = [];
            this.#cursor = 0;
          } else if (ch === "\x1b" && input[i + 1] === "[") {
            const key = input[i + 2];
            i += 2;
            if (key === "D" && this.#cursor > 0) this.#cursor--;
            else if (key === "C" && this.#cursor < this.#buffer.length) this.#cursor++;
            else if ((key === "A" || key === "B") && !this.#question) {
              this.#browse(key === "A" ? -1 : 1);
            } else if (key === "H") this.#cursor = 0;
            else if (key === "F") this.#cursor = this.#buffer.length;
          } else if (ch >= " ") {
            this.#buffer.splice(this.#cursor++, 0, ch);
          }
          if (!hidden) this.redraw();
        }
      }
    } finally {
      this.editing = false;
      Deno.stdin.setRaw(false);
    }
  }

  #browse(step: number): void {
    const at = Math.min(Math.max(this.#historyAt + step, 0), this.#history.length);
    this.#historyAt = at;
    this.#buffer = [...(this.#history[at] ?? "")];
    this.#cursor = this.#buffer.length;
  }
}

/** Splits a text stream into lines (without their line endings). */
export function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) ctl.enqueue(p.replace(/\r$/, ""));
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}
