import assert from "node:assert/strict";
import { colorize } from "../client/colors.ts";

const RESET = "\x1b[0m";

Deno.test("colorize(): senders bold cyan, notices dim, errors red, questions yellow, the rest as is", () => {
  const message = colorize("[12:30] #general alice: hi there", null);
  assert.equal(
    message,
    `\x1b[2m[12:30] ${RESET}#general \x1b[1m\x1b[36malice${RESET}: hi there`,
  );
  assert.equal(
    colorize("[12:30] >> bob → alice: psst", null),
    `\x1b[2m[12:30] ${RESET}>> \x1b[1m\x1b[36mbob → alice${RESET}: psst`,
  );
  assert.equal(colorize("[12:30] * bob joined", null), `\x1b[2m[12:30] * bob joined${RESET}`);
  assert.equal(colorize("* Rooms:", null), `\x1b[2m* Rooms:${RESET}`);
  assert.equal(
    colorize("! no such user", { type: "error", code: "no_such_user", message: "x" }),
    `\x1b[31m! no such user${RESET}`,
  );
  assert.equal(
    colorize("? alice wants a session (y/n)", null),
    `\x1b[33m? alice wants a session (y/n)${RESET}`,
  );
  assert.equal(colorize("  #books  3 members", null), "  #books  3 members");
});
