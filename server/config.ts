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
  reportsToMute: number;
  muteForMs: number;
  rateLimit: RateLimit | null;
  privateRateLimit: RateLimit | null;
  messageTtlMs: number;
  registration: "open" | "closed";
  maxFileSize: number;
  maxConnectionsPerIp: number;
  headerTimeoutMs: number;
  heartbeatMs: number;
  reportsFrom: "any" | "registered";
  roomsPerHour: number;
  /** Addresses whose guests are not counted together for quotas. */
  quotaExempt: string[];
  guests: "on" | "off";
  guestGraceMs: number;
  awayNoticeMs: number;
  logRetentionMs: number;
  /** A bearer token that may read /metrics besides admins' tokens; "" for admins only. */
  metricsToken: string;
  /** Web origins (scheme://host:port) allowed to open /ws and POST from a browser. */
  allowedOrigins: string[];
  /** The IRC port; null: no IRC listener. */
  ircPort: number | null;
  /** The message of the day IRC clients are shown (lines). */
  motd: string[];
  /** NATS servers of a cluster (`nats://host:port`, comma-separated); "" for one process. */
  cluster: string;
  /** This node's name in the cluster. */
  node: string;
}

/** At most `count` messages per `windowMs`. */
export interface RateLimit {
  count: number;
  windowMs: number;
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
    name: "irc-port",
    env: "CHAT_IRC_PORT",
    def: "6667",
    help: "IRC port for IRC clients (irssi, WeeChat, bots); 0 picks a free one; off: no IRC",
  },
  {
    name: "motd",
    env: "CHAT_MOTD",
    def: "",
    help: "the message of the day IRC clients see: the text, or @FILE to read it from a file",
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
  {
    name: "reports-to-mute",
    env: "CHAT_REPORTS_TO_MUTE",
    def: "3",
    help: "reports from distinct users that mute someone",
  },
  {
    name: "mute-for",
    env: "CHAT_MUTE_FOR",
    def: "4h",
    help: "how long a mute lasts (e.g. 4h, 30m)",
  },
  {
    name: "rate-limit",
    env: "CHAT_RATE_LIMIT",
    def: "20/1h",
    help: 'messages per user into public rooms, e.g. 20/1h; "0" turns it off',
  },
  {
    name: "private-rate-limit",
    env: "CHAT_PRIVATE_RATE_LIMIT",
    def: "30/1m",
    help: 'private messages per user, against flooding; "0" turns it off',
  },
  {
    name: "message-ttl",
    env: "CHAT_MESSAGE_TTL",
    def: "1h",
    help: 'how long messages live; "0" keeps them',
  },
  {
    name: "registration",
    env: "CHAT_REGISTRATION",
    def: "open",
    help: "open, or closed (only admins create accounts)",
  },
  {
    name: "max-connections-per-ip",
    env: "CHAT_MAX_CONNECTIONS_PER_IP",
    def: "256",
    help: "simultaneous connections from one address; 0 turns the limit off",
  },
  {
    name: "header-timeout",
    env: "CHAT_HEADER_TIMEOUT",
    def: "15s",
    help:
      "time an HTTP client has to send a request's headers, and the longest pause in a body; 0: no deadlines (behind a proxy that has them)",
  },
  {
    name: "heartbeat",
    env: "CHAT_HEARTBEAT",
    def: "15s",
    help:
      "silence before the server checks a connection is alive; one that stops answering is closed after 3 beats",
  },
  {
    name: "rooms-per-hour",
    env: "CHAT_ROOMS_PER_HOUR",
    def: "10",
    help: "rooms a user (not an admin) may create per hour; 0 turns the limit off",
  },
  {
    name: "guests",
    env: "CHAT_GUESTS",
    def: "on",
    help: "on: a name without a password is a guest; off: every name needs a password",
  },
  {
    name: "guest-grace",
    env: "CHAT_GUEST_GRACE",
    def: "10m",
    help:
      "a guest name left alone this long starts afresh: its private messages from before are not shown, and a guest who left nothing behind (rooms, contacts, sanctions) is forgotten",
  },
  {
    name: "away-notices",
    env: "CHAT_AWAY_NOTICES",
    def: "10s",
    help:
      "others are told of one user's away changes at most once per this long (a change in between is told when it ends); 0: every change at once",
  },
  {
    name: "log-retention",
    env: "CHAT_LOG_RETENTION",
    def: "7d",
    help: "how long the service log (messages' sender, recipient and size; logins; errors) is kept",
  },
  {
    name: "quota-exempt",
    env: "CHAT_QUOTA_EXEMPT",
    def: "127.0.0.1,::1",
    help:
      "addresses whose guests are not counted together for the quotas (a proxy, a bridge), comma-separated",
  },
  {
    name: "reports-from",
    env: "CHAT_REPORTS_FROM",
    def: "any",
    help: "whose reports count toward a mute: any (guests too), or registered users only",
  },
  {
    name: "cluster",
    env: "CHAT_CLUSTER",
    def: "",
    help: "NATS servers (nats://host:port,…) joining nodes on one --data into one chat",
  },
  {
    name: "node",
    env: "CHAT_NODE",
    def: "",
    help: "this node's name in the cluster; without it, the host name and TCP port",
  },
  {
    name: "metrics-token",
    env: "CHAT_METRICS_TOKEN",
    def: "",
    help: "a bearer token that may read /metrics (admins' tokens always may)",
  },
  {
    name: "allowed-origins",
    env: "CHAT_ALLOWED_ORIGINS",
    def: "",
    help:
      "other web origins whose pages may use the API from a browser, comma-separated (the console's own always may)",
  },
  {
    name: "max-file-size",
    env: "CHAT_MAX_FILE_SIZE",
    def: "5MB",
    help: "largest file a user may send (e.g. 5MB, 500KB)",
  },
];

/** Words of `text` in lines of at most `width` columns, each after `indent`. */
export function wrapWords(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Flag name, then its help in one column, wrapped at 100 columns (what 80-column terminals fold). */
function flagLines(name: string, help: string, nameWidth: number): string[] {
  const head = `  --${name.padEnd(nameWidth)}  `;
  const indent = " ".repeat(head.length);
  return wrapWords(help, 100, indent).map((l, i) => (i === 0 ? head : indent) + l);
}

const NAME_WIDTH = Math.max(...FLAGS.map((f) => f.name.length));

/** The `--help` text of `chat serve`. */
export const SERVE_USAGE = [
  "Usage: chat serve [flags]",
  "",
  "Flags (each also read from the environment variable shown):",
  ...FLAGS.flatMap((f) =>
    flagLines(
      f.name,
      `${f.help} (${f.def === "" ? "none by default" : `default ${f.def}`}; env ${f.env})`,
      NAME_WIDTH,
    )
  ),
  ...flagLines("help", "this text", NAME_WIDTH),
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

/** Parses a duration like `90s`, `30m`, `4h`, `2d` (or `0`) into milliseconds. */
function parseDuration(flag: string, value: string): number {
  if (value === "0") return 0;
  const m = value.match(/^(\d+)(ms|s|m|h|d)$/);
  if (!m) {
    throw new UsageError(`--${flag} must be a duration like 90s, 30m, 4h or 2d, got "${value}"`);
  }
  const unit =
    { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

function wholeNumber(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`--${flag} must be a whole number, got "${value}"`);
  }
  return Number(value);
}

/** Parses a size like `5MB`, `500KB` or `1048576` (bytes). */
function parseSize(flag: string, value: string): number {
  const m = value.match(/^(\d+)(B|KB|MB)?$/i);
  if (!m || Number(m[1]) === 0) {
    throw new UsageError(`--${flag} must be a size like 5MB, 500KB or 1048576, got "${value}"`);
  }
  const unit =
    { b: 1, kb: 1024, mb: 1024 * 1024 }[(m[2] ?? "b").toLowerCase() as "b" | "kb" | "mb"];
  return Number(m[1]) * unit;
}

/** Parses a rate like `20/1h` (or `0` for none). */
function parseRate(flag: string, value: string): RateLimit | null {
  if (value === "0") return null;
  const m = value.match(/^(\d+)\/(.+)$/);
  const windowMs = m ? parseDuration(flag, m[2]!) : 0;
  if (!m || Number(m[1]) < 1 || windowMs <= 0) {
    throw new UsageError(
      `--${flag} must look like 20/1h (messages per window) or 0, got "${value}"`,
    );
  }
  return { count: Number(m[1]), windowMs };
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
  const reportsToMute = Number(get("reports-to-mute"));
  if (!Number.isInteger(reportsToMute) || reportsToMute < 1 || reportsToMute > 1000) {
    throw new UsageError(
      `--reports-to-mute must be a whole number from 1 to 1000, got "${get("reports-to-mute")}"`,
    );
  }
  const muteForMs = parseDuration("mute-for", get("mute-for"));
  if (muteForMs === 0) throw new UsageError("--mute-for must be longer than 0");
  const registration = get("registration");
  if (registration !== "open" && registration !== "closed") {
    throw new UsageError(`--registration must be open or closed, got "${registration}"`);
  }
  const headerTimeoutMs = parseDuration("header-timeout", get("header-timeout"));
  if (headerTimeoutMs > 0 && headerTimeoutMs < 100) {
    throw new UsageError(
      "--header-timeout must be 0 (off) or at least 100ms (slow clients need time too)",
    );
  }
  const heartbeatMs = parseDuration("heartbeat", get("heartbeat"));
  if (heartbeatMs < 100 || heartbeatMs > 600_000) {
    throw new UsageError(`--heartbeat must be from 100ms to 10m, got "${get("heartbeat")}"`);
  }
  const guests = get("guests");
  if (guests !== "on" && guests !== "off") {
    throw new UsageError(`--guests must be on or off, got "${guests}"`);
  }
  const reportsFrom = get("reports-from");
  if (reportsFrom !== "any" && reportsFrom !== "registered") {
    throw new UsageError(`--reports-from must be any or registered, got "${reportsFrom}"`);
  }
  const cluster = get("cluster");
  for (const url of cluster.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!/^(nats:\/\/)?[^/\s:]+:\d+$/.test(url)) {
      throw new UsageError(`--cluster takes NATS servers like nats://127.0.0.1:4222, got "${url}"`);
    }
  }
  if (get("node") !== "" && !/^[A-Za-z0-9_.-]{1,64}$/.test(get("node"))) {
    throw new UsageError(
      `--node takes a name of letters, digits, "_", "." or "-", got "${get("node")}"`,
    );
  }
  const allowedOrigins = get("allowed-origins").split(",").map((o) => o.trim()).filter(Boolean);
  for (const o of allowedOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(o)) {
      throw new UsageError(
        `--allowed-origins takes origins like https://chat.example.org, got "${o}"`,
      );
    }
  }
  return {
    host: get("host"),
    tcpPort: port("tcp-port", get("tcp-port")),
    httpPort: port("http-port", get("http-port")),
    data: get("data"),
    history,
    logLevel,
    reportsToMute,
    muteForMs,
    rateLimit: parseRate("rate-limit", get("rate-limit")),
    privateRateLimit: parseRate("private-rate-limit", get("private-rate-limit")),
    messageTtlMs: parseDuration("message-ttl", get("message-ttl")),
    registration,
    maxFileSize: parseSize("max-file-size", get("max-file-size")),
    maxConnectionsPerIp: wholeNumber("max-connections-per-ip", get("max-connections-per-ip")),
    headerTimeoutMs,
    heartbeatMs,
    reportsFrom,
    roomsPerHour: wholeNumber("rooms-per-hour", get("rooms-per-hour")),
    quotaExempt: get("quota-exempt").split(",").map((a) => a.trim()).filter(Boolean),
    guests,
    guestGraceMs: parseDuration("guest-grace", get("guest-grace")),
    awayNoticeMs: parseDuration("away-notices", get("away-notices")),
    logRetentionMs: Math.max(60_000, parseDuration("log-retention", get("log-retention"))),
    metricsToken: get("metrics-token"),
    allowedOrigins,
    cluster,
    node: get("node"),
    ircPort: get("irc-port") === "off" ? null : port("irc-port", get("irc-port")),
    motd: readMotd(get("motd")),
  };
}

/** The message of the day: the text given, or the lines of the file named after "@". */
function readMotd(value: string): string[] {
  if (!value.startsWith("@")) return value ? value.split("\n") : [];
  try {
    return Deno.readTextFileSync(value.slice(1)).split(/\r?\n/).filter((l, i, a) =>
      l !== "" || i < a.length - 1
    );
  } catch (error) {
    throw new UsageError(`--motd ${value}: cannot read the file (${(error as Error).message})`);
  }
}
