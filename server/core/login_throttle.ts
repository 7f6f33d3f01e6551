/**
 * Throttling password guessing without locking out the owner. Failures are counted per
 * (account, address), per account and per address within LOGIN_WINDOW_MS:
 *
 * - one (account, address) gets a few free tries (typos), then waits twice as long after each
 *   further failure (1 s, 2 s, 4 s, … up to the window), and only one of its logins is checked
 *   at a time, so parallel guesses cannot slip in before the failures are counted;
 * - an account that failed MAX_FAILED_LOGINS_PER_ACCOUNT times holds back the addresses that
 *   failed for it, but an address with no failure for it may still log in: the owner elsewhere;
 * - an address that failed MAX_FAILED_LOGINS_PER_IP times, across accounts, waits out the window:
 *   that address only, never everyone's.
 * @module
 */

import {
  LOGIN_WINDOW_MS,
  MAX_FAILED_LOGINS_PER_ACCOUNT,
  MAX_FAILED_LOGINS_PER_IP,
} from "../../protocol/limits.ts";
import { ChatError } from "./errors.ts";
import { iso } from "./format.ts";

/** Failures of one (account, address) before each further one makes it wait. */
export const FREE_TRIES = 3;

interface Entry {
  fails: number[];
  busy: boolean;
}

/** The throttle of one process. */
export class LoginThrottle {
  #entries = new Map<string, Entry>();

  /** Refuses a login attempt that must wait, saying until when; else marks it as being checked. */
  begin(name: string, ip: string, now: number): void {
    const pair = this.#recent(`p|${name}|${ip}`, now);
    if (pair.busy) {
      throw new ChatError(
        "rate_limited",
        `A login for ${name} from your address is being checked: wait for its answer`,
      );
    }
    if (pair.fails.length >= FREE_TRIES) {
      const wait = Math.min(1000 * 2 ** (pair.fails.length - FREE_TRIES), LOGIN_WINDOW_MS);
      const next = pair.fails.at(-1)! + wait;
      if (now < next) {
        throw new ChatError(
          "rate_limited",
          `Too many wrong passwords for ${name} from your address: try again in ${
            Math.ceil((next - now) / 1000)
          } s`,
        );
      }
    }
    const address = this.#recent(`i|${ip}`, now);
    if (ip && address.fails.length >= MAX_FAILED_LOGINS_PER_IP) {
      throw new ChatError(
        "rate_limited",
        `Too many failed logins from your address: try again after ${
          iso(address.fails[0]! + LOGIN_WINDOW_MS)
        }`,
      );
    }
    const account = this.#recent(`a|${name}`, now);
    if (account.fails.length >= MAX_FAILED_LOGINS_PER_ACCOUNT && pair.fails.length > 0) {
      throw new ChatError(
        "rate_limited",
        `Too many failed logins for ${name}: try again after ${
          iso(account.fails[0]! + LOGIN_WINDOW_MS)
        }`,
      );
    }
    pair.busy = true;
  }

  /** Ends an attempt `begin` let through: a success clears the account's record. */
  end(name: string, ip: string, now: number, ok: boolean): void {
    const pairKey = `p|${name}|${ip}`;
    const pair = this.#entries.get(pairKey);
    if (pair) pair.busy = false;
    if (ok) {
      this.#entries.delete(pairKey);
      this.#entries.delete(`a|${name}`);
      return;
    }
    for (const key of [pairKey, `a|${name}`, ...(ip ? [`i|${ip}`] : [])]) {
      this.#recent(key, now).fails.push(now);
    }
  }

  /** Counts a login another node of the cluster checked (its own attempt is not held here). */
  recordElsewhere(name: string, ip: string, at: number, ok: boolean): void {
    const pairKey = `p|${name}|${ip}`;
    if (ok) {
      if (!this.#entries.get(pairKey)?.busy) this.#entries.delete(pairKey);
      this.#entries.delete(`a|${name}`);
      return;
    }
    for (const key of [pairKey, `a|${name}`, ...(ip ? [`i|${ip}`] : [])]) {
      this.#recent(key, at).fails.push(at);
    }
  }

  /** Forgets what is older than the window (call now and then, so memory stays bounded). */
  prune(now: number): void {
    for (const [key, e] of this.#entries) {
      if (!e.busy && (e.fails.at(-1) ?? 0) <= now - LOGIN_WINDOW_MS) this.#entries.delete(key);
    }
  }

  #recent(key: string, now: number): Entry {
    let e = this.#entries.get(key);
    if (!e) this.#entries.set(key, e = { fails: [], busy: false });
    while (e.fails.length > 0 && e.fails[0]! <= now - LOGIN_WINDOW_MS) e.fails.shift();
    return e;
  }
}
