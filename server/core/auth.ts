/**
 * Identity: logging in with a password or a token, registering a name, creating accounts, and
 * throttling password guessing.
 * @module
 */

import { validateUsername } from "../../protocol/frames.ts";
import { skeleton } from "../../protocol/names.ts";
import { MIN_PASSWORD_CHARS } from "../../protocol/limits.ts";
import type { UserRecord } from "../store/store.ts";
import { attach } from "./attach.ts";
import { type Call, exceptAsker, type UserCall } from "./call.ts";
import type { Core } from "./core.ts";
import { loadCursors, whileBusy } from "./cursors.ts";
import { ChatError } from "./errors.ts";
import { iso, randomToken, sha256 } from "./format.ts";
import { checkNotBanned } from "./moderation.ts";
import { addMember } from "./rooms.ts";
import { GENERAL, newUserState, type UserState } from "./state.ts";

/** Adds a user's in-memory state for a stored record. */
export function addUserState(core: Core, record: UserRecord): UserState {
  const u = newUserState(record);
  core.users.set(record.name, u);
  core.lowerNames.set(skeleton(record.name), record.name);
  return u;
}

/**
 * Logs in with a password, registering the name if nobody has claimed it (`POST /connect`),
 * and returns a new token. Tokens are random; only their SHA-256 is stored.
 */
export async function login(
  core: Core,
  username: string,
  password: string,
  ip: string,
): Promise<{ token: string; username: string; expiresAt: number }> {
  let u = core.findUser(validateUsername(username));
  if (u?.record.passwordHash) {
    await checkPassword(core, u, password, ip);
  } else if (core.config.registration === "closed") {
    throw registrationClosed();
  } else {
    u = await claim(core, username, password, u);
  }
  checkNotBanned(core, u);
  const user = u;
  await whileBusy(core, user, async () => {
    await loadCursors(core, user);
    if (!user.chats.has(GENERAL)) await addMember(core, user, core.general);
  });
  return { ...(await issueToken(core, user)), username: user.record.name };
}

function registrationClosed(): ChatError {
  return new ChatError("forbidden", "Registration is closed: ask an admin to create your account");
}

/** Ends a checked login here, and tells the other nodes of a cluster (the throttle is shared). */
function loginEnded(core: Core, name: string, ip: string, ok: boolean): void {
  const at = core.clock.now();
  core.logins.end(name, ip, at, ok);
  core.publish({ kind: "shared", change: { type: "login", name, ip, at, ok } });
}

/** Checks a password through the login throttle (login_throttle.ts). */
async function checkPassword(
  core: Core,
  u: UserState,
  password: string,
  ip: string,
): Promise<void> {
  const name = u.record.name;
  core.logins.begin(name, ip, core.clock.now());
  let ok = false;
  try {
    ok = await core.passwords.verify(password, u.record.passwordHash!);
  } finally {
    loginEnded(core, name, ip, ok);
  }
  if (ok) return;
  core.log("error", `failed login for ${name}${ip ? ` from ${ip}` : ""}`);
  throw new ChatError("bad_password", `Wrong password for ${name}: try again`);
}

/** Makes a new login token for a user; only its hash is stored. */
async function issueToken(
  core: Core,
  u: UserState,
): Promise<{ token: string; expiresAt: number }> {
  const token = randomToken();
  const now = core.clock.now();
  const expiresAt = now + core.config.tokenTtlMs;
  await core.store.putToken(await sha256(token), {
    user: u.record.name,
    createdAt: now,
    expiresAt,
  });
  return { token, expiresAt };
}

/** Returns the user a token belongs to, or throws `not_logged_in` if it is unknown or expired. */
export async function authenticate(core: Core, token: string): Promise<string> {
  const record = token.length > 0 && token.length <= 200
    ? await core.store.getToken(await sha256(token))
    : null;
  // KV expiry is best effort: the expiry is checked here too.
  if (!record || record.expiresAt <= core.clock.now() || !core.users.has(record.user)) {
    throw new ChatError(
      "not_logged_in",
      "Your token is unknown or expired: log in again (POST /connect)",
    );
  }
  checkNotBanned(core, core.users.get(record.user)!);
  return record.user;
}

/** Revokes a token; live connections that logged in with it are closed. */
export async function logout(core: Core, token: string): Promise<void> {
  const user = await authenticate(core, token);
  const hash = await sha256(token);
  await core.store.deleteToken(hash, user);
  core.publish({
    kind: "close_user",
    user,
    token: hash,
    reason: "You logged out: this connection's token no longer works",
  });
}

function refuseSecondLogin(call: Call): void {
  const current = call.conn?.user;
  if (current) {
    throw new ChatError("already_logged_in", `You are already logged in as ${current.record.name}`);
  }
}

/** `auth`: logs a connection in with a token, resuming after `since` if given. */
export async function authCommand(
  call: Call,
  frame: { token: string; since?: string },
): Promise<void> {
  refuseSecondLogin(call);
  const name = await authenticate(call.core, frame.token);
  if (call.conn) call.conn.token = await sha256(frame.token);
  await attach(call, call.core.users.get(name)!, frame.since);
}

/** How long a login challenge may be answered. */
const CHALLENGE_MS = 60_000;

/**
 * `challenge`: for logging in without sending the password (JIM clients): a random nonce and the
 * KDF parameters of the account's stored hash; the client derives the same key from its
 * password and answers `hello` with `proof` = base64 HMAC-SHA256(key, nonce).
 */
export function challengeCommand(call: Call, frame: { username: string }) {
  refuseSecondLogin(call);
  const { core } = call;
  const u = core.findUser(frame.username);
  const params = u?.record.passwordHash
    ? core.passwords.challengeParams(u.record.passwordHash)
    : null;
  if (!u || !params || !call.conn) {
    throw new ChatError(
      "no_such_user",
      `${frame.username} has no password to prove: log in with hello alone (a guest name)`,
    );
  }
  const nonce = randomToken();
  call.conn.challenge = { user: u.record.name, nonce, at: core.clock.now() };
  return { type: "challenge" as const, username: u.record.name, nonce, ...params };
}

/** Checks a challenge's proof through the login throttle. */
async function checkProof(call: Call, u: UserState, proof: string): Promise<void> {
  const { core } = call;
  const name = u.record.name;
  const ch = call.conn?.challenge;
  if (call.conn) call.conn.challenge = null;
  if (!ch || ch.user !== name || core.clock.now() - ch.at > CHALLENGE_MS) {
    throw new ChatError(
      "bad_password",
      `No fresh challenge for ${name} on this connection: send {"type":"challenge"} first`,
    );
  }
  core.logins.begin(name, call.ip, core.clock.now());
  let ok = false;
  try {
    ok = await core.passwords.verifyProof(u.record.passwordHash!, ch.nonce, proof);
  } finally {
    loginEnded(core, name, call.ip, ok);
  }
  if (!ok) throw new ChatError("bad_password", `Wrong password for ${name}: try again`);
}

/** `hello`: logs a connection in by name, with the password (or a challenge's proof). */
export async function helloCommand(
  call: Call,
  frame: { username: string; password?: string; proof?: string; since?: string; unique?: boolean },
): Promise<void> {
  refuseSecondLogin(call);
  const { core } = call;
  let u = core.findUser(validateUsername(frame.username));
  if (core.config.registration === "closed" && !u?.record.passwordHash) throw registrationClosed();
  if (u?.record.passwordHash) {
    if (frame.proof !== undefined) await checkProof(call, u, frame.proof);
    else if (frame.password === undefined) {
      throw new ChatError(
        "password_required",
        `${u.record.name} is registered: send the password with hello`,
      );
    } else await checkPassword(core, u, frame.password, call.ip);
  } else if (frame.password !== undefined) {
    // A password on an unclaimed name claims it, like POST /connect.
    const guestConns = u ? u.conns.size : 0;
    u = await claim(core, frame.username, frame.password, u);
    if (guestConns > 0) tellGuestsRegistered(core, u, call);
  } else if (core.config.guests === "off") {
    throw new ChatError(
      "password_required",
      `This server has no guests: send a password with hello (a new name is registered with it)`,
    );
  } else if (!u) {
    u = await createUser(core, frame.username, null);
  }
  checkNotBanned(core, u);
  await attach(call, u, frame.since, frame.unique === true);
}

/** Creates an account (or returns the existing one of that name). */
export async function createUser(
  core: Core,
  name: string,
  passwordHash: string | null,
): Promise<UserState> {
  let existing = core.findUser(name);
  if (existing) return existing;
  // The name's previous guest is being forgotten: its rows go first.
  const forgetting = core.forgetting.get(skeleton(name));
  if (forgetting) {
    await forgetting.catch(() => {});
    existing = core.findUser(name);
    if (existing) return existing;
  }
  const record: UserRecord = { name, passwordHash, admin: false, createdAt: core.clock.now() };
  const u = addUserState(core, record);
  try {
    await core.store.createUser(record);
  } catch (error) {
    core.users.delete(name);
    core.lowerNames.delete(skeleton(name));
    throw error;
  }
  return u;
}

/** Refuses a password too short to keep anyone out. */
export function checkPasswordStrength(password: string): void {
  if (password.length < MIN_PASSWORD_CHARS) {
    throw new ChatError("bad_field", `A password needs at least ${MIN_PASSWORD_CHARS} characters`);
  }
}

/** Claims a name with a password: creates the account, or protects an existing guest name. */
async function claim(
  core: Core,
  name: string,
  password: string,
  existing: UserState | undefined,
): Promise<UserState> {
  checkPasswordStrength(password);
  const hash = await core.passwords.hash(password);
  const u = existing ?? core.findUser(name);
  if (!u) return await createUser(core, name, hash);
  if (u.record.passwordHash) {
    throw new ChatError(
      "name_taken",
      `${u.record.name} was registered a moment ago: log in with its password`,
    );
  }
  u.record = { ...u.record, passwordHash: hash };
  await core.store.updateUser(u.record);
  return u;
}

/** `register`: protects the current guest name with a password. */
export async function registerCommand(call: UserCall, frame: { password: string }) {
  const u = call.user;
  if (u.record.passwordHash) {
    throw new ChatError("name_taken", `${u.record.name} is already registered`);
  }
  await claim(call.core, u.record.name, frame.password, u);
  tellGuestsRegistered(call.core, u, call);
  return call.core.system(
    `${u.record.name} is now registered: log in with this password from now on`,
  );
}

/**
 * Tells the other live connections of a name that was a guest's that it is registered now:
 * they stay logged in, and the next login there needs the password.
 */
function tellGuestsRegistered(core: Core, u: UserState, call: Call): void {
  core.publish({
    kind: "user",
    user: u.record.name,
    frame: core.system(
      `${u.record.name} was just registered from another connection: you stay logged in here, ` +
        "and from now on logging in as this name needs its password",
    ),
    ...exceptAsker(call),
  });
}

/** `token`: a login token for HTTP (file uploads, the console), with the HTTP port. */
export async function tokenCommand(call: UserCall) {
  const session = await issueToken(call.core, call.user);
  return {
    type: "token" as const,
    token: session.token,
    expires_at: iso(session.expiresAt),
    http_port: call.core.config.httpPort,
  };
}
