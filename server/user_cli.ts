/**
 * `chat user`: manage accounts in a data file while no server is running on it (a running
 * server keeps users in memory and would not see the change; it holds a lease we check).
 * @module
 */

import { parseArgs } from "node:util";
import { validateUsername } from "../protocol/frames.ts";
import { MIN_PASSWORD_CHARS } from "../protocol/limits.ts";
import { skeleton } from "../protocol/names.ts";
import { UsageError } from "./config.ts";
import { scryptHasher } from "./passwords.ts";
import type { KvStore } from "./store/kv_store.ts";
import { DataLease } from "./store/lease.ts";
import { LEASE_STALE_MS, type UserRecord } from "./store/store.ts";

/** The `--help` text of `chat user`. */
export const USER_USAGE = `Usage: chat user COMMAND [--data FILE]

Commands:
  add NAME [--admin] [--password PW]   create an account (asks for the password if not given)
  passwd NAME [--password PW]          set a new password
  admin NAME [--off]                   make NAME an admin (or not)
  list                                 every account
  del NAME                             delete an account (their messages stay)

--data defaults to ./data/chat.kv (env CHAT_DATA). Stop the server first: while it runs,
manage users from the admin commands instead (/admin adduser, POST /api/v1/admin/users).`;

/** Parses `user` arguments: the command, its name argument and flags. */
export function parseUserArgs(args: string[], env: Record<string, string | undefined>): {
  command: string;
  name?: string;
  admin: boolean;
  off: boolean;
  password?: string;
  data: string;
} | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        admin: { type: "boolean" },
        off: { type: "boolean" },
        password: { type: "string" },
        data: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${USER_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) return null;
  const [command = "", name, ...extra] = positionals;
  if (!["add", "passwd", "admin", "list", "del"].includes(command)) {
    throw new UsageError(`unknown user command "${command}"\n\n${USER_USAGE}`);
  }
  if (command !== "list" && name === undefined) {
    throw new UsageError(`user ${command} needs a NAME\n\n${USER_USAGE}`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected "${extra.join(" ")}"\n\n${USER_USAGE}`);
  return {
    command,
    ...(name === undefined ? {} : { name: validateName(name) }),
    admin: values.admin === true,
    off: values.off === true,
    ...(values.password === undefined ? {} : { password: values.password }),
    data: values.data ?? env.CHAT_DATA ?? "./data/chat.kv",
  };
}

function validateName(name: string): string {
  try {
    return validateUsername(name);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Reads one line from a terminal without echoing it. */
async function readHidden(prompt: string): Promise<string> {
  await Deno.stdout.write(new TextEncoder().encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  try {
    while ((await Deno.stdin.read(buf)) === 1 && buf[0] !== 13 && buf[0] !== 10) {
      if (buf[0] === 3) throw new UsageError("cancelled: nothing changed");
      if (buf[0] === 127) bytes.pop();
      else bytes.push(buf[0]!);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stdout.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * Reads a password: from the flag, hidden from a terminal (twice, to catch a typo), or the first
 * line of piped input.
 */
async function readPassword(given: string | undefined, name: string): Promise<string> {
  let pw = given;
  if (pw === undefined) {
    if (Deno.stdin.isTerminal()) {
      pw = await readHidden(`Password for ${name}: `);
      if (pw !== "" && (await readHidden("Again, to be sure: ")) !== pw) {
        throw new UsageError("the two passwords differ: nothing changed, try again");
      }
    } else {
      const text = await new Response(Deno.stdin.readable).text();
      pw = text.split(/\r?\n/)[0] ?? "";
    }
  }
  if (pw === "") {
    throw new UsageError(
      "no password given: type it when asked, pipe it in (echo PW | chat user …), or give --password PW",
    );
  }
  if (pw.length < MIN_PASSWORD_CHARS) {
    throw new UsageError(`the password needs at least ${MIN_PASSWORD_CHARS} characters`);
  }
  return pw;
}

/** Runs a `user` command against a store; returns the process exit code. */
export async function runUserCommand(
  store: KvStore,
  cmd: NonNullable<ReturnType<typeof parseUserArgs>>,
  out: (line: string) => void,
): Promise<number> {
  const leases = new DataLease(store.kv);
  const lease = await leases.get();
  const holder = lease && Date.now() - lease.at < LEASE_STALE_MS
    ? lease
    : (await leases.liveNodes(Date.now()))[0];
  if (holder) {
    throw new UsageError(
      `a chat server (pid ${holder.pid} on ${holder.hostname}) is using ${cmd.data}: stop it first, ` +
        "or manage users while it runs with the admin commands (/admin adduser, POST /api/v1/admin/users)",
    );
  }
  const hasher = scryptHasher();
  const name = cmd.name!;
  switch (cmd.command) {
    case "list": {
      const { users } = await store.load();
      out(["name", "registered", "admin", "created", "last seen", "state"].join("\t"));
      for (const u of users.sort((a, b) => a.name.localeCompare(b.name))) {
        const state = u.bannedUntil && u.bannedUntil > Date.now()
          ? "banned"
          : u.mutedUntil && u.mutedUntil > Date.now()
          ? "muted"
          : "";
        out([
          u.name,
          u.passwordHash ? "yes" : "guest",
          u.admin ? "admin" : "",
          new Date(u.createdAt).toISOString(),
          u.lastSeen ? new Date(u.lastSeen).toISOString() : "never",
          state,
        ].join("\t"));
      }
      return 0;
    }
    case "add": {
      const { users } = await store.load();
      const clash = users.find((u) => skeleton(u.name) === skeleton(name));
      if (clash) {
        throw new UsageError(`the name ${clash.name} is taken: use "user passwd" or "user admin"`);
      }
      const passwordHash = await hasher.hash(await readPassword(cmd.password, name));
      await store.createUser({ name, passwordHash, admin: cmd.admin, createdAt: Date.now() });
      out(`created ${cmd.admin ? "admin" : "user"} ${name}`);
      return 0;
    }
    case "passwd":
    case "admin":
    case "del": {
      // Any case, and look-alike letters, name the same user: as at login.
      const user = await store.getUser(name) ??
        (await store.load()).users.find((u) => skeleton(u.name) === skeleton(name));
      if (!user) throw new UsageError(`there is no user ${name}: "user list" shows who there is`);
      const { name: _, ...rest } = cmd;
      return await runOnUser(store, { ...rest, name: user.name }, user, out, hasher);
    }
  }
  return 2;
}

/** `passwd`, `admin` or `del` on a user found by any case of their name. */
async function runOnUser(
  store: KvStore,
  cmd: NonNullable<ReturnType<typeof parseUserArgs>>,
  user: UserRecord,
  out: (line: string) => void,
  hasher: ReturnType<typeof scryptHasher>,
): Promise<number> {
  const name = user.name;
  if (cmd.command === "del") {
    await store.deleteUser(name);
    out(`deleted ${name}`);
  } else if (cmd.command === "admin") {
    await store.updateUser({ ...user, admin: !cmd.off });
    out(`${name} is ${cmd.off ? "no longer an admin" : "an admin"}`);
  } else {
    const passwordHash = await hasher.hash(await readPassword(cmd.password, name));
    await store.updateUser({ ...user, passwordHash });
    await store.revokeTokens(name);
    out(`new password set for ${name}; their tokens are revoked`);
  }
  await store.flush();
  return 0;
}
