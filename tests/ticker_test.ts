import assert from "node:assert/strict";
import { every } from "../server/transport/ticker.ts";

Deno.test("every(): members of one period share a timer, tick until stopped, and the last stop clears it", async () => {
  const ticks = { a: 0, b: 0 };
  const a = { tick: () => ticks.a++ };
  const b = {
    tick: () => {
      ticks.b++;
      stopB(); // leaving during its own tick is allowed
    },
  };
  const stopA = every(10, a);
  const stopB = every(10, b);
  await new Promise((r) => setTimeout(r, 45));
  assert.ok(ticks.a >= 2, `a ticked ${ticks.a} times`);
  assert.equal(ticks.b, 1);
  stopA();
  const before = ticks.a;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(ticks.a, before);
  // Deno's test sanitizer fails this test if the shared interval were left running.
});
