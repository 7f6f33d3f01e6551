import assert from "node:assert/strict";
import fc from "fast-check";
import { charCount, type ErrorCode, ProtocolError } from "../protocol/frames.ts";
import { decodeClientFrame } from "../protocol/decode.ts";
import { MAX_MESSAGE_CHARS } from "../protocol/limits.ts";

const ok: Array<[string, unknown]> = [
  // The seed protocol, unchanged.
  ['{"username": "Alice"}', { type: "hello", username: "Alice" }],
  ['{"type": "message", "message": "Привет всем!"}', { type: "message", message: "Привет всем!" }],
  [
    '{"type": "private", "target_username": "Bob", "message": "Привет! Как дела?"}',
    { type: "private", target_username: "Bob", message: "Привет! Как дела?" },
  ],
  ['{"type": "session_request", "target_username": "Bob"}', {
    type: "session_request",
    target_username: "Bob",
  }],
  [
    '{"type": "session_response", "target_username": "Alice", "accepted": true}',
    { type: "session_response", target_username: "Alice", accepted: true },
  ],
  ['{"type": "users"}', { type: "users" }],
  // Additions.
  ['{"type":"hello","username":"Alice","password":"pw","ref":"1"}', {
    type: "hello",
    username: "Alice",
    password: "pw",
    ref: "1",
  }],
  ['{"type":"hello","username":"Alice","unique":true}', {
    type: "hello",
    username: "Alice",
    unique: true,
  }],
  ['{"type":"hello","username":"Alice","unique":false}', { type: "hello", username: "Alice" }],
  ['{"type":"message","message":"hi","room":"#Games"}', {
    type: "message",
    message: "hi",
    room: "games",
  }],
  ['{"type":"message","message":"two\\nlines\\twith tab"}', {
    type: "message",
    message: "two\nlines\twith tab",
  }],
  ['{"type":"join","room":"games"}', { type: "join", room: "games" }],
  ['{"type":"leave"}', { type: "leave" }],
  ['{"type":"quit","reason":"  off to lunch "}', { type: "quit", reason: "off to lunch" }],
  ['{"type":"quit","reason":"   "}', { type: "quit" }],
  [`{"type":"quit","reason":"${"x".repeat(300)}"}`, { type: "quit", reason: "x".repeat(200) }],
  ['{"type":"history","chat":"@Bob","before":10,"limit":5}', {
    type: "history",
    chat: "@Bob",
    before: 10,
    limit: 5,
  }],
  ['{"type":"history","chat":null}', { type: "history" }],
  ['{"type":"history","around":"01JDZ3K6Q9V7C8W2X4Y5Z6A7B8","limit":5}', {
    type: "history",
    around: "01JDZ3K6Q9V7C8W2X4Y5Z6A7B8",
    limit: 5,
  }],
  ['{"type":"register","password":"secret"}', { type: "register", password: "secret" }],
  ['{"type":"session_end"}', { type: "session_end" }],
  ['{"type":"rooms"}', { type: "rooms" }],
  ['{"type":"users","usernames":["Bob","[away]"]}', {
    type: "users",
    usernames: ["Bob", "[away]"],
  }],
  ['{"type":"status"}', { type: "status" }],
  ['{"type":"ping","extra":"ignored"}', { type: "ping" }],
];

for (const [line, frame] of ok) {
  Deno.test(`decodeClientFrame() accepts ${line}`, () => {
    assert.deepEqual(decodeClientFrame(line), frame);
  });
}

const bad: Array<[string, ErrorCode, RegExp]> = [
  ["not json", "bad_json", /not valid JSON/],
  ["", "bad_json", /not valid JSON/],
  ["[1,2]", "bad_frame", /must be a JSON object, got an array/],
  ["42", "bad_frame", /got a number/],
  ["null", "bad_frame", /got null/],
  ['{"message":"hi"}', "missing_field", /needs a "type"/],
  ['{"type":7}', "bad_field", /"type" must be a string/],
  ['{"type":"dance"}', "unknown_type", /Unknown frame type "dance"/],
  ['{"type":"message"}', "missing_field", /"message" needs a "message" string/],
  ['{"type":"message","message":5}', "bad_field", /"message" must be a string, got a number/],
  ['{"type":"message","message":"   "}', "bad_field", /empty/],
  ['{"type":"hello","username":"a","unique":"yes"}', "bad_field", /"unique" must be true or false/],
  [
    `{"type":"message","message":"${"x".repeat(MAX_MESSAGE_CHARS + 1)}"}`,
    "too_long",
    /limit is 4000/,
  ],
  ['{"type":"message","message":"bell\\u0007"}', "bad_field", /control characters/],
  ['{"type":"quit","reason":"bell\\u0007"}', "bad_field", /control characters/],
  ['{"type":"quit","reason":5}', "bad_field", /"reason" must be a string/],
  ['{"type":"message","message":"nul\\u0000"}', "bad_field", /control characters/],
  ['{"type":"message","message":"esc\\u001b[31m"}', "bad_field", /control characters/],
  ['{"username":"has space"}', "bad_name", /not a valid name/],
  ['{"username":""}', "bad_name", /not a valid name/],
  [`{"username":"${"a".repeat(33)}"}`, "bad_name", /1 to 32/],
  ['{"username":{"x":1}}', "bad_field", /got an object/],
  ['{"type":"private","target_username":"Bob"}', "missing_field", /"message"/],
  [
    '{"type":"session_response","target_username":"Bob","accepted":"yes"}',
    "bad_field",
    /true or false/,
  ],
  ['{"type":"join","room":"a b"}', "bad_name", /not a valid room name/],
  ['{"type":"join","room":"dm:x"}', "bad_name", /not a valid room name/],
  ['{"type":"history","limit":0}', "bad_field", /from 1 to 200/],
  ['{"type":"history","limit":1.5}', "bad_field", /whole number/],
  ['{"type":"history","before":"3"}', "bad_field", /whole number/],
  ['{"type":"history","chat":"@"}', "bad_name", /not a valid name/],
  ['{"type":"history","before":"m5"}', "bad_field", /a message's seq .* or its id/],
  ['{"type":"history","around":2.5}', "bad_field", /a message's seq .* or its id/],
  ['{"type":"history","before":5,"around":3}', "bad_field", /one of "before", "after" or "around"/],
  [`{"type":"ping","ref":"${"r".repeat(65)}"}`, "too_long", /"ref"/],
  [`{"type":"register","password":"${"p".repeat(300)}"}`, "too_long", /password/],
  ['{"type":"register"}', "missing_field", /password/],
  ['{"type":"users","usernames":[]}', "bad_field", /list of 1 to 100 names/],
  ['{"type":"users","usernames":"Bob"}', "bad_field", /list of 1 to 100 names/],
  ['{"type":"users","usernames":["Bob",7]}', "bad_field", /list of 1 to 100 names/],
  [`{"type":"users","usernames":["${"a".repeat(33)}"]}`, "bad_field", /list of 1 to 100 names/],
  [`{"type":"users","usernames":[${'"a",'.repeat(100)}"a"]}`, "bad_field", /1 to 100/],
];

for (const [line, code, message] of bad) {
  Deno.test(`decodeClientFrame() refuses ${line.slice(0, 60)} with ${code}`, () => {
    assert.throws(() => decodeClientFrame(line), (e: unknown) => {
      assert.ok(e instanceof ProtocolError);
      assert.equal(e.code, code);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("charCount() counts code points as iterating the string does, lone surrogates too", () => {
  const units = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }),
    fc.constantFrom(0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0x41),
  );
  fc.assert(
    fc.property(
      fc.array(units, { maxLength: 40 }),
      fc.string({ unit: "binary" }),
      (codes, text) => {
        const odd = String.fromCharCode(...codes);
        assert.equal(charCount(odd), [...odd].length);
        assert.equal(charCount(text), [...text].length);
        assert.equal(charCount(text + odd + text), [...(text + odd + text)].length);
      },
    ),
    { numRuns: 2000 },
  );
  assert.equal(charCount("😀é"), 2);
});
