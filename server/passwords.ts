/**
 * Password hashing with scrypt (a slow, memory-hard KDF) and a random per-user salt,
 * compared in constant time. Stored as `scrypt$N$r$p$salt$hash` (base64) so the cost can
 * be raised later without breaking existing hashes.
 * @module
 */

import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { PasswordHasher } from "./core/hub.ts";

const KEY_BYTES = 32;

/** Cost parameters for scrypt; N must be a power of two. */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/** The production cost: about 50 ms and 16 MiB per hash on this class of machine. */
const DEFAULT_COST: ScryptCost = { N: 16384, r: 8, p: 1 };

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_BYTES, { ...cost, maxmem: 256 * cost.N * cost.r }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** Returns a hasher using scrypt at the given cost. */
export function scryptHasher(cost: ScryptCost = DEFAULT_COST): PasswordHasher {
  return {
    async hash(password: string): Promise<string> {
      const salt = randomBytes(16);
      const key = await derive(password, salt, cost);
      return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString("base64")}$${
        key.toString("base64")
      }`;
    },
    challengeParams(stored: string) {
      const parts = stored.split("$");
      if (parts.length !== 6 || parts[0] !== "scrypt") return null;
      const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
      return { kdf: "scrypt" as const, N, r, p, salt: parts[4]!, key_bytes: KEY_BYTES };
    },
    verifyProof(stored: string, nonce: string, proof: string): Promise<boolean> {
      const parts = stored.split("$");
      if (parts.length !== 6 || parts[0] !== "scrypt") return Promise.resolve(false);
      // The key is the stored hash itself: the client derives it from the password and salt.
      const key = Buffer.from(parts[5]!, "base64");
      const expected = createHmac("sha256", key).update(nonce, "utf8").digest();
      const given = Buffer.from(proof, "base64");
      return Promise.resolve(
        given.length === expected.length && timingSafeEqual(given, expected),
      );
    },
    async verify(password: string, stored: string): Promise<boolean> {
      const parts = stored.split("$");
      if (parts.length !== 6 || parts[0] !== "scrypt") return false;
      const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
      const salt = Buffer.from(parts[4]!, "base64");
      const expected = Buffer.from(parts[5]!, "base64");
      const key = await derive(password, salt, { N, r, p });
      return key.length === expected.length && timingSafeEqual(key, expected);
    },
  };
}
