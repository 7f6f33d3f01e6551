import assert from "node:assert/strict";
import fc from "fast-check";
import { iso } from "../server/core/format.ts";

Deno.test("iso() gives what Date.prototype.toISOString gives, across seconds, before 1970 and after 9999", () => {
  const edges = [
    0,
    999,
    1000,
    -1,
    -1000,
    -1001,
    1_790_000_000_123.7,
    253_402_300_799_999,
    253_402_300_800_000,
  ];
  for (const ms of edges) assert.equal(iso(ms), new Date(ms).toISOString(), `at ${ms}`);
  fc.assert(
    fc.property(fc.integer({ min: -62_000_000_000_000, max: 8_000_000_000_000_000 }), (ms) => {
      assert.equal(iso(ms), new Date(ms).toISOString());
      // The same second again, from the kept prefix.
      const again = ms - (((ms % 1000) + 1000) % 1000) + 7;
      assert.equal(iso(again), new Date(again).toISOString());
    }),
    { numRuns: 2000 },
  );
});
