/**
 * A real terminal for tests: one tmux server of its own (Debian's tmux), typed into key by key,
 * its screen read back.
 * @module
 */

/** Whether tmux is installed. */
export function tmuxInstalled(): boolean {
  try {
    new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** One tmux server of its own (its own socket), with one window running a command. */
export class Terminal implements AsyncDisposable {
  readonly #socket = `chat-test-${crypto.randomUUID().slice(0, 8)}`;

  async #tmux(...args: string[]): Promise<string> {
    const out = await new Deno.Command("tmux", {
      args: ["-L", this.#socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (out.code !== 0) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    return new TextDecoder().decode(out.stdout);
  }

  /** Starts `command` in a 100×30 terminal. */
  async start(command: string[], env: Record<string, string> = {}): Promise<void> {
    const exports = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    await this.#tmux(
      "new-session",
      "-d",
      "-x",
      "100",
      "-y",
      "30",
      "-s",
      "t",
      "env",
      ...exports,
      ...command,
    );
  }

  /** Types text (literally), then the named keys (Enter, Up, …). */
  async type(text: string, ...keys: string[]): Promise<void> {
    if (text) await this.#tmux("send-keys", "-t", "t", "-l", text);
    for (const k of keys) await this.#tmux("send-keys", "-t", "t", k);
  }

  /** What the terminal shows now. */
  screen(): Promise<string> {
    return this.#tmux("capture-pane", "-p", "-t", "t");
  }

  /** Waits until the screen matches; fails with the screen after 8 s. */
  async waitFor(pattern: RegExp): Promise<string> {
    const deadline = Date.now() + 8000;
    let screen = "";
    while (Date.now() < deadline) {
      screen = await this.screen();
      if (pattern.test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the screen never showed ${pattern}:\n${screen}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#tmux("kill-server").catch(() => "");
  }
}
