/**
 * The TCP wire's line splitter for people: every line end a terminal or telnet client sends
 * (LF, CR LF, CR alone, CR NUL), cut anywhere between reads, gives the same lines.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { LineFramer } from "../server/transport/tcp/line_framing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("line framer: lines ended by LF, CR LF, CR or CR NUL, cut anywhere, come out as typed", () => {
  const line = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\r\n\0]/.test(s));
  const end = fc.constantFrom("\n", "\r\n", "\r", "\r\0");
  fc.assert(
    fc.property(
      fc.array(fc.tuple(line, end), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (lines, cuts) => {
        const bytes = enc.encode(lines.map(([l, e]) => l + e).join(""));
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const framer = new LineFramer();
        const out: string[] = [];
        let prev = 0;
        for (const p of [...at, bytes.length]) {
          if (p <= prev) continue;
          const buf = bytes.slice(prev, p);
          framer.feed(buf);
          for (let item = framer.next(); item !== null; item = framer.next()) {
            out.push(dec.decode(item));
          }
          buf.fill(0x21); // the caller reuses its buffer: nothing may still point into it
          prev = p;
        }
        assert.deepEqual(out, lines.map(([l]) => l));
        assert.equal(framer.pendingBytes, 0);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("line framer: an unfinished line is held, counted, and finished by the next read", () => {
  const framer = new LineFramer();
  framer.feed(enc.encode("hel"));
  assert.equal(framer.next(), null);
  assert.equal(framer.pendingBytes, 3);
  framer.feed(enc.encode("lo\r\nnext"));
  assert.equal(dec.decode(framer.next()!), "hello");
  assert.equal(framer.next(), null);
  assert.equal(framer.pendingBytes, 4);
});
