/**
 * Monotonic ULIDs (server/ids.ts): valid, increasing whatever the clock does, their time part
 * readable by the `ulid` package, and the increment carrying like a base-32 number.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { decodeTime } from "ulid";
import { ulidFactory, ulidTime } from "../server/ids.ts";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const TIME_MAX = 2 ** 48 - 1;

Deno.test("ids only grow and carry the latest time seen, whatever order the clock gives", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer({ min: 0, max: TIME_MAX }), fc.constant(1_790_000_000_000)), {
        minLength: 1,
        maxLength: 200,
      }),
      (times) => {
        const next = ulidFactory();
        let previous = "";
        let latest = -1;
        for (const t of times) {
          const id = next(t);
          latest = Math.max(latest, t);
          assert.match(id, ULID);
          assert.ok(id > previous, `${id} after ${previous}`);
          assert.equal(decodeTime(id), latest);
          previous = id;
        }
      },
    ),
  );
});

Deno.test("a new millisecond takes fresh random digits; the same one adds one, carrying", () => {
  let fill = 0;
  const next = ulidFactory((out) => out.fill(fill));
  fill = 30; // every digit 30 ("Y")
  const a = next(1000);
  assert.equal(a, "00000000Z8" + "Y".repeat(16));
  assert.equal(next(1000), "00000000Z8" + "Y".repeat(15) + "Z");
  assert.equal(next(1000), "00000000Z8" + "Y".repeat(14) + "Z0"); // the carry
  assert.equal(next(999), "00000000Z8" + "Y".repeat(14) + "Z1"); // the clock went back
  fill = 0;
  assert.equal(next(1001), "00000000Z9" + "0".repeat(16));
  // Bytes above 31 are reduced to a digit, not mapped out of the alphabet.
  fill = 255;
  assert.equal(next(1002), "00000000ZA" + "Z".repeat(16));
  // All 80 random bits at their maximum: one more would repeat, so it refuses.
  assert.throws(() => next(1002), RangeError);
});

Deno.test("a time a ULID cannot carry is refused", () => {
  const next = ulidFactory();
  for (const bad of [-1, TIME_MAX + 1, 1.5, NaN, Infinity]) {
    assert.throws(() => next(bad), RangeError, String(bad));
  }
  assert.match(next(TIME_MAX), /^7ZZZZZZZZZ/);
});

Deno.test("ulidTime() reads the time of every ULID as the ulid package does, and 0 for anything else", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: TIME_MAX }), (t) => {
      const id = ulidFactory()(t);
      assert.equal(ulidTime(id), decodeTime(id));
      assert.equal(ulidTime(id), t);
      assert.equal(ulidTime(id.toLowerCase()), 0, "lower case is not how ids are made");
      assert.equal(ulidTime(id.slice(1)), 0);
      assert.equal(ulidTime(id + "0"), 0);
      for (const bad of ["I", "L", "O", "U", "é", "-"]) {
        assert.equal(ulidTime(id.slice(0, 25) + bad), 0, bad);
      }
    }),
  );
  assert.equal(ulidTime(""), 0);
});
