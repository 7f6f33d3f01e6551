import assert from "node:assert/strict";
import { heartbeatDue } from "../protocol/heartbeat.ts";

Deno.test("heartbeatDue(): a probe at one and at two beats of silence, gone at three", () => {
  const beat = 1000;
  assert.deepEqual(heartbeatDue(999, beat, 0), { gone: false, probe: false });
  assert.deepEqual(heartbeatDue(1000, beat, 0), { gone: false, probe: true });
  // Once per beat: the probe at one beat has gone out, the next waits for two.
  assert.deepEqual(heartbeatDue(1900, beat, 1), { gone: false, probe: false });
  assert.deepEqual(heartbeatDue(2000, beat, 1), { gone: false, probe: true });
  assert.deepEqual(heartbeatDue(2999, beat, 2), { gone: false, probe: false });
  assert.equal(heartbeatDue(3000, beat, 2).gone, true);
  // A side that will not give up on its peer (one that never answered) goes on probing.
  assert.deepEqual(heartbeatDue(4000, beat, 3), { gone: true, probe: true });
});
