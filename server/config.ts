/**
 * Command-line flags of `chat serve`, each also read from an environment variable
 * `CHAT_<NAME>` (flag wins over env, env over default).
 * @module
 */

import { parseArgs } from "node:util";
import { isLogLevel, type LogLevel } from "./log.ts";

/** The settings of a running server. */
export interface ServeConfig {
  host: string;
  tcpPort: number;
  httpPort: number;
  data: string;
  history: number;
  logLevel: LogLevel;
}

interface FlagSpec {
  name: string;
  env: string;
  def: string;
  help: string;
}

const FLAGS: FlagSpec[] = [
  { name: "host", env: "CHAT_HOST", def: "127.0.0.1", help: "address to listen on" },
  {
    name: "tcp-port",
    env: "CHAT_TCP_PORT",
    def: "8000",
    help: "TCP port (JSON lines and telnet); 0 picks a free one",
  },
  {
    name: "http-port",
    env: "CHAT_HTTP_PORT",
    def: "8080",
    help: "HTTP port (REST, WebSocket, console); 0 picks a free one",
  },
  {
    name: "data",
    env: "CHAT_DATA",
    def: "./data/chat.kv",
    help: 'Deno KV file (folder is created); ":memory:" keeps nothing',
  },
  { name: "history", env: "CHAT_HISTORY", def: "20", help: "messages shown when joining a room" },
  {
    name: "log-level",
    env: "CHAT_LOG_LEVEL",
    def: "info",
    help: "debug, info, warn, error or silent",
  },
];

/** The `--help` text of `chat serve`. */
export const SERVE_USAGE = [
  "Usage: chat serve [flags]",
  "",
  "Flags (each also read from the environment variable shown):",
  ...FLAGS.map((f) => `  --${f.name.padEnd(12)} ${f.help} (default ${f.def}; env ${f.env})`),
  "  --help         this text",
].join("\n");

/** A flag had a value that cannot work; the message says which and what is expected. */
export class UsageError extends Error {
  /** Creates a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function port(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) {
    throw new UsageError(`--${name} must be a port number from 0 to 65535, got "${value}"`);
  }
  return n;
}

/** Parses `serve` arguments and environment into a config; returns null when `--help` was asked. */
export function parseServeArgs(
  args: string[],
  env: Record<string, string | undefined>,
): ServeConfig | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries([
        ...FLAGS.map((f) => [f.name, { type: "string" as const }]),
        ["help", { type: "boolean" as const, short: "h" }],
      ]),
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${SERVE_USAGE}`);
  }
  // parseArgs' inferred type cannot follow options built from a table.
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return null;
  const get = (name: string): string => {
    const spec = FLAGS.find((f) => f.name === name)!;
    const v = values[name];
    return typeof v === "string" ? v : env[spec.env] ?? spec.def;
  };
  const history = Number(get("history"));
  if (!Number.isInteger(history) || history < 0 || history > 200) {
    throw new UsageError(`--history must be a whole number from 0 to 200, got "${get("history")}"`);
  }
  const logLevel = get("log-level");
  if (!isLogLevel(logLevel)) {
    throw new UsageError(
      `--log-level must be debug, info, warn, error or silent, got "${logLevel}"`,
    );
  }
  return {
    host: get("host"),
    tcpPort: port("tcp-port", get("tcp-port")),
    httpPort: port("http-port", get("http-port")),
    data: get("data"),
    history,
    logLevel,
  };
}
