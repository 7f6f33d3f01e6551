import assert from "node:assert/strict";
import { parseServeArgs, SERVE_USAGE, UsageError } from "../server/config.ts";

Deno.test("parseServeArgs() uses the defaults of the issue", () => {
  assert.deepEqual(parseServeArgs([], {}), {
    host: "127.0.0.1",
    tcpPort: 8000,
    httpPort: 8080,
    data: "./data/chat.kv",
    history: 20,
    logLevel: "info",
    reportsToMute: 3,
    muteForMs: 4 * 3600_000,
    rateLimit: { count: 20, windowMs: 3600_000 },
    privateRateLimit: { count: 30, windowMs: 60_000 },
    messageTtlMs: 3600_000,
    registration: "open",
    maxFileSize: 5 * 1024 * 1024,
    maxConnectionsPerIp: 256,
    headerTimeoutMs: 15_000,
    heartbeatMs: 15_000,
    reportsFrom: "any",
    roomsPerHour: 10,
    quotaExempt: ["127.0.0.1", "::1"],
    guests: "on",
    guestGraceMs: 600_000,
    awayNoticeMs: 10_000,
    logRetentionMs: 7 * 86_400_000,
    metricsToken: "",
    allowedOrigins: [],
    cluster: "",
    node: "",
    ircPort: 6667,
    motd: [],
  });
});

Deno.test("parseServeArgs() reads CHAT_* variables, and flags win over them", () => {
  const env = {
    CHAT_TCP_PORT: "9000",
    CHAT_DATA: ":memory:",
    CHAT_HISTORY: "5",
    CHAT_HOST: "0.0.0.0",
  };
  const c = parseServeArgs(["--tcp-port", "0", "--log-level", "debug"], env)!;
  assert.equal(c.tcpPort, 0);
  assert.equal(c.data, ":memory:");
  assert.equal(c.history, 5);
  assert.equal(c.host, "0.0.0.0");
  assert.equal(c.logLevel, "debug");
});

Deno.test("parseServeArgs() takes --header-timeout 0 as no deadlines", () => {
  assert.equal(parseServeArgs(["--header-timeout", "0"], {})!.headerTimeoutMs, 0);
  assert.equal(parseServeArgs(["--header-timeout", "30s"], {})!.headerTimeoutMs, 30_000);
});

Deno.test("parseServeArgs() returns null for --help", () => {
  assert.equal(parseServeArgs(["--help"], {}), null);
});

for (
  const [args, message] of [
    [["--tcp-port", "http"], /--tcp-port must be a port number from 0 to 65535, got "http"/],
    [["--http-port", "70000"], /--http-port must be a port number/],
    [["--history=-1"], /--history must be a whole number from 0 to 200/],
    [["--history", "500"], /--history must be a whole number from 0 to 200, got "500"/],
    [["--log-level", "loud"], /--log-level must be debug, info, warn, error or silent/],
    [["--colour"], /Unknown option '--colour'[\s\S]*Usage: chat serve/],
    [["--rate-limit", "20"], /--rate-limit must look like 20\/1h/],
    [["--rate-limit", "0/1h"], /--rate-limit must look like 20\/1h/],
    [["--message-ttl", "1 hour"], /--message-ttl must be a duration like 90s, 30m, 4h or 2d/],
    [["--mute-for", "0"], /--mute-for must be longer than 0/],
    [["--reports-to-mute", "0"], /--reports-to-mute must be a whole number from 1 to 1000/],
    [["--registration", "invite"], /--registration must be open or closed/],
    [["--header-timeout", "50ms"], /--header-timeout must be 0 \(off\) or at least 100ms/],
    [["--header-timeout", "15"], /--header-timeout must be a duration like 90s/],
    [["--heartbeat", "0"], /--heartbeat must be from 100ms to 10m, got "0"/],
  ] as Array<[string[], RegExp]>
) {
  Deno.test(`parseServeArgs() explains ${args.join(" ")}`, () => {
    assert.throws(
      () => parseServeArgs(args, {}),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  });
}

Deno.test("parseServeArgs() reads limits and lifetimes", () => {
  const c = parseServeArgs([
    "--rate-limit",
    "5/30s",
    "--private-rate-limit",
    "0",
    "--message-ttl",
    "0",
    "--mute-for",
    "90m",
    "--registration",
    "closed",
  ], {})!;
  assert.deepEqual(c.rateLimit, { count: 5, windowMs: 30_000 });
  assert.equal(c.privateRateLimit, null);
  assert.equal(c.messageTtlMs, 0);
  assert.equal(c.muteForMs, 90 * 60_000);
  assert.equal(c.registration, "closed");
});

Deno.test("serve --help: every description starts in one column, no line past 100", () => {
  const lines = SERVE_USAGE.split("\n").filter((l) => l.startsWith("  "));
  const column = (l: string) => l.search(/\S/) === 2 ? l.indexOf("  ", 4) : -1;
  const starts = new Set<number>();
  for (const l of lines) {
    assert.ok(l.length <= 100, `too long: ${l}`);
    if (l.startsWith("  --")) starts.add(l.slice(column(l)).search(/\S/) + column(l));
    else starts.add(l.search(/\S/)); // a wrapped line continues in the same column
  }
  assert.equal(starts.size, 1, [...starts].join(","));
});
