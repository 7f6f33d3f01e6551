/**
 * The terminal client's colours: a rendered line coloured by what it is (a message's sender in
 * bold cyan, notices dim, errors red, questions yellow). Pure: lines in, lines out.
 * @module
 */

import type { ServerFrame } from "../protocol/frames.ts";

const C = {
  dim: "\x1b[2m",
  bold: "\x1b[1m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  cyan: "\x1b[36m",
  reset: "\x1b[0m",
};

/** Colours a rendered line by what it is (messages, notices, errors, questions). */
export function colorize(line: string, frame: ServerFrame | null): string {
  if (frame?.type === "error") return C.red + line + C.reset;
  if (line.startsWith("? ") || line.includes("] ? ")) return C.yellow + line + C.reset;
  const stamp = line.match(/^(\[\d\d:\d\d\] )(.*)$/s);
  if (stamp) {
    const rest = stamp[2]!;
    if (rest.startsWith("* ")) return C.dim + line + C.reset;
    const who = rest.match(/^((?:#\S+|>>) )?([^:]+?)(: .*)$/s);
    if (who) {
      return C.dim + stamp[1] + C.reset + (who[1] ?? "") + C.bold + C.cyan + who[2] + C.reset +
        who[3];
    }
    return C.dim + stamp[1] + C.reset + rest;
  }
  if (line.startsWith("* ")) return C.dim + line + C.reset;
  return line;
}
