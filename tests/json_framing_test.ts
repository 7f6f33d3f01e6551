/**
 * The TCP wire's object framer: whatever a program's writes look like (JSON lines, objects back
 * to back with no newline, pretty-printed over many lines) and however the kernel cuts them, the
 * objects come out whole and in order; what cannot be JSON is handed on by the line, at once.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { JsonFramer } from "../server/transport/json_framing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Feeds `chunks` and returns every item, as text, junk marked with a leading `!`. */
function frame(chunks: Uint8Array[]): { items: string[]; pending: number } {
  const framer = new JsonFramer();
  const items: string[] = [];
  for (const chunk of chunks) {
    // The framer must not keep views of a buffer the caller reuses: hand it a copy, then clobber.
    const buf = chunk.slice();
    framer.feed(buf);
    for (let item = framer.next(); item !== null; item = framer.next()) {
      items.push((framer.lastWasJunk ? "!" : "") + dec.decode(item));
    }
    buf.fill(0x21);
  }
  return { items, pending: framer.pendingBytes };
}

/** Cuts bytes at the given fractions of their length. */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => Math.floor(p * bytes.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...at, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

Deno.test("framer: any objects, written as lines, back to back or indented, cut anywhere, come out whole and in order", () => {
  const objects = fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), {
    minLength: 1,
    maxLength: 6,
  });
  const style = fc.constantFrom("line", "none", "indent", "crlf", "spaces");
  fc.assert(
    fc.property(
      objects,
      style,
      fc.array(fc.double({ min: 0, max: 1, noNaN: true })),
      (os, st, points) => {
        const text = os.map((o) => {
          switch (st) {
            case "line":
              return JSON.stringify(o) + "\n";
            case "none":
              return JSON.stringify(o);
            case "indent":
              return JSON.stringify(o, null, 4);
            case "crlf":
              return JSON.stringify(o, null, 1).replaceAll("\n", "\r\n") + "\r\n";
            default:
              return "  " + JSON.stringify(o) + " \t";
          }
        }).join("");
        const { items, pending } = frame(cut(enc.encode(text), points));
        assert.equal(pending, 0);
        assert.equal(JSON.stringify(items.map((i) => JSON.parse(i))), JSON.stringify(os));
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("framer: what cannot be an object is handed on by the line at once, and the next object still comes", () => {
  const cases: Array<[string, string[]]> = [
    ['{not json\n{"type":"users"}', ["!{not json", '{"type":"users"}']],
    ['[1,2,3]\n{"a":1}', ["![1,2,3]", '{"a":1}']],
    ['hello there\r\n{"a":1}', ["!hello there\r", '{"a":1}']],
    ['{"a":1}}\n{"b":2}', ['{"a":1}', "!}", '{"b":2}']],
    ['{"a":"broken\n{"b":2}', ['!{"a":"broken', '{"b":2}']],
    ['{"a":"broken\\\n{"b":2}', ['!{"a":"broken\\', '{"b":2}']],
    ['{"a" 1}\n', ['!{"a" 1}']],
    ['{"a":1,}\n', ['!{"a":1,}']],
    ['{"a":[1,]}\n', ['!{"a":[1,]}']],
    ['{"n":tru}\n', ['{"n":tru}']], // a bad literal is the parser's to refuse: structure only here
    ['{"a":{"b":[{"c":"}"}]}}', ['{"a":{"b":[{"c":"}"}]}}']],
    ['{"q":"say \\"}\\" to me"}', ['{"q":"say \\"}\\" to me"}']],
    ['{"a":"\u{1F600} ok"}', ['{"a":"\u{1F600} ok"}']],
  ];
  for (const [input, expected] of cases) {
    const bytes = enc.encode(input);
    assert.deepEqual(frame([bytes]).items, expected, input);
    // The same, one byte per read.
    assert.deepEqual(frame([...bytes].map((b) => Uint8Array.of(b))).items, expected, input);
  }
  // A prefix that may still become an object waits, and says how much it holds.
  const waiting = frame([enc.encode('{"type":"message",\n  "message": "hi')]);
  assert.deepEqual(waiting.items, []);
  assert.equal(waiting.pending, 35);
  // Nesting no chat frame has is junk, not a stack to grow.
  assert.deepEqual(frame([enc.encode("{" + '"a":['.repeat(40) + "\n")]).items.length, 1);
});
