/**
 * The one logger: leveled lines on stderr. Only main.ts and the transports log.
 * @module
 */

/** Log levels, quietest last. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** A leveled logger. */
export interface Logger {
  debug(message: string, data?: Record<string, unknown>): void;
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** Returns true when `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(ORDER, value);
}

/** Creates a logger writing `TIME LEVEL message {data}` lines to stderr at or above `level`. */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (l) => console.error(l),
): Logger {
  const at = (l: LogLevel) => (message: string, data?: Record<string, unknown>) => {
    if (ORDER[l] < ORDER[level]) return;
    const extra = data
      ? " " + JSON.stringify(data, (_k, v) => (v instanceof Error ? String(v) : v))
      : "";
    write(`${new Date().toISOString()} ${l.toUpperCase()} ${message}${extra}`);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
