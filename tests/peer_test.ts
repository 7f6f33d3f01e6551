import assert from "node:assert/strict";
import { concatBytes, Outbound, reuseLastJoin } from "../server/core/peer.ts";

Deno.test("reuseLastJoin() reuses a join only for the very same parts, in the same order", () => {
  let joins = 0;
  const join = reuseLastJoin((parts: Uint8Array[]) => (joins++, concatBytes(parts)));
  const a = new Uint8Array([1, 2]);
  const b = new Uint8Array([3]);
  const first = join([a, b]);
  assert.deepEqual([...first], [1, 2, 3]);
  assert.equal(join([a, b]), first, "the same frames: the same buffer");
  assert.equal(joins, 1);
  assert.deepEqual([...join([b, a])], [3, 1, 2], "another order is another join");
  assert.deepEqual([...join([a, new Uint8Array([3])])], [1, 2, 3]);
  assert.equal(joins, 3, "equal bytes in another buffer are joined again, not assumed");
  assert.deepEqual([...join([a])], [1, 2]);
});

Deno.test("Outbound encodes a frame once per format, for any number of formats", () => {
  const out = new Outbound({ type: "system", message: "hi", timestamp: "t", online_users: 0 });
  const calls: string[] = [];
  const enc =
    (name: string) => (frame: { type: string }) => (calls.push(name), `${name}:${frame.type}`);
  for (let round = 0; round < 3; round++) {
    assert.equal(out.encoded("json", enc("json")), "json:system");
    assert.equal(out.encoded("text", enc("text")), "text:system");
    assert.equal(out.encoded("sse", enc("sse")), "sse:system");
  }
  assert.deepEqual(calls, ["json", "text", "sse"]);
});
