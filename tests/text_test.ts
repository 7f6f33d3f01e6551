import assert from "node:assert/strict";
import { humanTimes, JoinedRooms, parseLine, promptFor, renderFrame } from "../protocol/text.ts";

const cases: Array<[string, unknown, { pendingSessionFrom?: string }?]> = [
  ["hello there", { kind: "frame", frame: { type: "message", message: "hello there" } }],
  ["   ", { kind: "empty" }],
  ["//not a command", { kind: "frame", frame: { type: "message", message: "/not a command" } }],
  ["/help", { kind: "help" }],
  ["/rules", { kind: "help" }],
  ["/quit", { kind: "quit" }],
  ["/quit  gone   fishing ", { kind: "quit", farewell: "gone fishing" }],
  ["/quit bell\u0007", { kind: "quit" }],
  ["/users", { kind: "frame", frame: { type: "users" } }],
  ["/rooms", { kind: "frame", frame: { type: "rooms" } }],
  ["/get_chats", { kind: "frame", frame: { type: "rooms" } }],
  ["/join Games", { kind: "frame", frame: { type: "join", room: "games" } }],
  ["/chats games", { kind: "frame", frame: { type: "join", room: "games" } }],
  ["/leave", { kind: "frame", frame: { type: "leave" } }],
  ["/leave games", { kind: "frame", frame: { type: "leave", room: "games" } }],
  ["/leave games off  to bed", {
    kind: "frame",
    frame: { type: "leave", room: "games", reason: "off  to bed" },
  }],
  ["/private Bob hi  there", {
    kind: "frame",
    frame: { type: "private", target_username: "Bob", message: "hi  there" },
  }],
  ["/send Bob hi", {
    kind: "frame",
    frame: { type: "private", target_username: "Bob", message: "hi" },
  }],
  ["/send #games gg", { kind: "frame", frame: { type: "message", room: "games", message: "gg" } }],
  ["/send general hi all", {
    kind: "frame",
    frame: { type: "message", room: "general", message: "hi all" },
  }],
  ["/notice #games server restarts at 3", {
    kind: "frame",
    frame: { type: "message", room: "games", message: "server restarts at 3", notice: true },
  }],
  ["/NOTICE Bob build 41 is green", {
    kind: "frame",
    frame: { type: "private", target_username: "Bob", message: "build 41 is green", notice: true },
  }],
  ["/session Bob", { kind: "frame", frame: { type: "session_request", target_username: "Bob" } }],
  ["/accept Bob", {
    kind: "frame",
    frame: { type: "session_response", target_username: "Bob", accepted: true },
  }],
  ["/reject Bob", {
    kind: "frame",
    frame: { type: "session_response", target_username: "Bob", accepted: false },
  }],
  ["y", {
    kind: "frame",
    frame: { type: "session_response", target_username: "Alice", accepted: true },
  }, { pendingSessionFrom: "Alice" }],
  ["No", {
    kind: "frame",
    frame: { type: "session_response", target_username: "Alice", accepted: false },
  }, { pendingSessionFrom: "Alice" }],
  ["y", { kind: "frame", frame: { type: "message", message: "y" } }],
  ["/exit", { kind: "frame", frame: { type: "session_end" } }],
  ["/status", { kind: "frame", frame: { type: "status" } }],
  ["/unread", { kind: "frame", frame: { type: "unread_counts" } }],
  ["/unread @Bob", { kind: "frame", frame: { type: "unread", chat: "@Bob" } }],
  ["/members games", { kind: "frame", frame: { type: "members", room: "games" } }],
  ["/ban Troll", { kind: "frame", frame: { type: "report", username: "Troll" } }],
  ["/report Troll keeps spamming", {
    kind: "frame",
    frame: { type: "report", username: "Troll", reason: "keeps spamming" },
  }],
  ["/delete 01M81MNGFKSHK6S1K51BNS5FK4", {
    kind: "frame",
    frame: { type: "delete_message", id: "01M81MNGFKSHK6S1K51BNS5FK4" },
  }],
  ["/admin", { kind: "admin_help" }],
  ["/admin kick Troll", { kind: "frame", frame: { type: "kick", username: "Troll" } }],
  ["/admin kick Troll go cool off", {
    kind: "frame",
    frame: { type: "kick", username: "Troll", reason: "go cool off" },
  }],
  ["/admin mute Troll", { kind: "frame", frame: { type: "mute", username: "Troll" } }],
  ["/admin mute Troll 30", {
    kind: "frame",
    frame: { type: "mute", username: "Troll", minutes: 30 },
  }],
  ["/admin mute Troll 30 bad words", {
    kind: "frame",
    frame: { type: "mute", username: "Troll", minutes: 30, reason: "bad words" },
  }],
  ["/admin mute Troll bad words", {
    kind: "frame",
    frame: { type: "mute", username: "Troll", reason: "bad words" },
  }],
  ["/admin unmute Troll", { kind: "frame", frame: { type: "unmute", username: "Troll" } }],
  ["/admin ban Troll spamming", {
    kind: "frame",
    frame: { type: "ban", username: "Troll", reason: "spamming" },
  }],
  ["/admin ban Troll 60", {
    kind: "frame",
    frame: { type: "ban", username: "Troll", minutes: 60 },
  }],
  ["/admin unban Troll", { kind: "frame", frame: { type: "unban", username: "Troll" } }],
  ["/admin connections", { kind: "frame", frame: { type: "connections" } }],
  ["/admin clients", { kind: "frame", frame: { type: "clients" } }],
  ["/admin log", { kind: "frame", frame: { type: "log_subscribe" } }],
  ["/admin log failed login", {
    kind: "frame",
    frame: { type: "log_search", query: "failed login" },
  }],
  ["/admin reports", { kind: "frame", frame: { type: "reports" } }],
  ["/admin audit 10", { kind: "frame", frame: { type: "audit", limit: 10 } }],
  ["/admin adduser Dave dave-password admin", {
    kind: "frame",
    frame: { type: "create_user", username: "Dave", password: "dave-password", admin: true },
  }],
  ["/register s3cret!", { kind: "frame", frame: { type: "register", password: "s3cret!" } }],
  ["/history", { kind: "frame", frame: { type: "history" } }],
  ["/history @Bob 40", { kind: "frame", frame: { type: "history", chat: "@Bob", before: 40 } }],
  ["/history games", { kind: "frame", frame: { type: "history", chat: "games" } }],
];

for (const [line, expected, ctx] of cases) {
  Deno.test(`parseLine() reads ${JSON.stringify(line)}${ctx ? " with a pending request" : ""}`, () => {
    assert.deepEqual(parseLine(line, ctx), expected);
  });
}

const errors: Array<[string, RegExp]> = [
  ["/dance", /Unknown command \/dance: \/help lists the commands/],
  ["/join", /\/join needs a room name/],
  ["/private Bob", /\/private needs a message/],
  ["/private", /needs a user name/],
  ["/session bad name!", /\/session takes one user name, without spaces/],
  ["/join no spaces!", /\/join takes one room name, without spaces/],
  ["/session Bob!", /not a valid name/],
  ["/join a.b", /not a valid room name/],
  ["/delete 42", /must be a message id/],
  ["/admin ban", /\/admin ban needs a user name/],
  ["/admin frobnicate x", /Unknown admin command "frobnicate"/],
  ["/admin audit many", /whole number/],
  // Every typed frame goes through the decoder: a leave's reason has its own limit.
  [`/leave books ${"x".repeat(501)}`, /"reason" is longer than 500 characters/],
];

for (const [line, message] of errors) {
  Deno.test(`parseLine() explains what is wrong with ${JSON.stringify(line)}`, () => {
    const parsed = parseLine(line);
    assert.equal(parsed.kind, "error");
    assert.match((parsed as { message: string }).message, message);
  });
}

Deno.test("promptFor() shows where plain text goes", () => {
  assert.equal(promptFor({ kind: "room", room: "general" }), "[general]> ");
  assert.equal(promptFor({ kind: "room", room: "games" }), "[#games]> ");
  assert.equal(promptFor({ kind: "session", with: "Bob" }), "[private: Bob]> ");
});

Deno.test("renderFrame() writes messages with time, room and sender, and hides acks", () => {
  const ts = new Date(2026, 0, 15, 14, 30).toISOString();
  assert.equal(
    renderFrame({
      type: "message",
      id: "x",
      seq: 1,
      room: "general",
      from_username: "Alice",
      message: "hi\nthere",
      timestamp: ts,
    }),
    "[14:30] #general Alice: hi\n    there",
  );
  assert.equal(
    renderFrame({
      type: "private",
      id: "x",
      seq: 1,
      from_username: "Alice",
      to_username: "Bob",
      message: "psst",
      timestamp: ts,
    }),
    "[14:30] >> Alice → Bob: psst",
  );
  assert.equal(
    renderFrame({
      type: "message",
      id: "x",
      seq: 2,
      room: "general",
      from_username: "ci-bot",
      message: "build passed",
      timestamp: ts,
      notice: true,
    }),
    "[14:30] #general ci-bot (notice): build passed",
  );
  assert.equal(renderFrame({ type: "ack", id: "x", seq: 1, chat: "general", timestamp: ts }), null);
  assert.equal(
    renderFrame({ type: "error", code: "muted", message: "You are muted" }),
    "! You are muted",
  );
  assert.equal(
    renderFrame({
      type: "history",
      chat: "@Bob",
      reason: "unread",
      messages: [{
        type: "private",
        id: "x",
        seq: 7,
        from_username: "Bob",
        to_username: "Alice",
        message: "yo",
        timestamp: ts,
      }],
      has_more: false,
      unread: 1,
    }),
    "--- 1 unread in your private chat with Bob ---\n[14:30] >> Bob → Alice: yo\n--- end ---",
  );
});

Deno.test("renderFrame() never lets another user drive the terminal: controls and bidi overrides are ?, reasons stay on one line, long messages are capped", () => {
  const hostile = renderFrame({
    type: "message",
    id: "01KF110CJ00000000000000001",
    seq: 1,
    room: "general",
    from_username: "mallory",
    message: "a\x1b[2Jb\u009b31mc\u202edcba" + "\nline".repeat(3992),
    timestamp: "2026-11-29T10:00:00.000Z",
    file: { id: "01KF110CJ00000000000000002", name: "x\u009bm", size: 1, mime: "text/\u009b31m" },
  })!;
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(hostile, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  const lines = hostile.split("\n");
  assert.ok(lines.length <= 23, `${lines.length} lines`);
  assert.ok(lines.slice(1).every((l) => l.startsWith("    ")), "continuations are indented");
  assert.match(hostile, /… 3973 more lines/);
  const notice = renderFrame({
    type: "system",
    message: "Root muted mallory: spam\n[10:00] * Root made mallory an admin",
    timestamp: "2026-11-29T10:00:00.000Z",
    online_users: 2,
  })!;
  assert.equal(notice.split("\n").length, 1, "a reason cannot forge a line");
});

Deno.test("parseLine(): /exit ends a private session, and outside one leaves the chat (both assignments' meanings)", () => {
  assert.deepEqual(parseLine("/exit", { inSession: true }), {
    kind: "frame",
    frame: { type: "session_end" },
  });
  assert.deepEqual(parseLine("/exit", { inSession: false }), { kind: "quit" });
});

Deno.test("renderFrame(): a person is shown the newest 20 unread of a chat and told how to page back", () => {
  const messages = Array.from({ length: 45 }, (_, i) => ({
    type: "message" as const,
    id: `01KF110CJ000000000000000${String(i).padStart(2, "0")}`,
    seq: i + 1,
    room: "general",
    from_username: "bob",
    message: `m${i + 1}`,
    timestamp: "2026-11-29T10:00:00.000Z",
  }));
  const text = renderFrame({
    type: "history",
    chat: "general",
    reason: "unread",
    messages,
    has_more: false,
    unread: 45,
  })!;
  assert.match(text, /^--- 45 unread in #general, the last 20 here ---/);
  assert.equal(text.split("\n").filter((l) => / bob: m\d+$/.test(l)).length, 20);
  assert.match(text, /bob: m26\n/);
  assert.match(text, /--- older: \/history general 26 ---/);
});

Deno.test("humanTimes(): the server's UTC times read as chat lines' local time, with the date when not today", () => {
  const now = new Date(2026, 10, 29, 12, 0).getTime();
  const today = new Date(2026, 10, 29, 15, 6).toISOString();
  const later = new Date(2026, 11, 2, 9, 30).toISOString();
  assert.equal(
    humanTimes(`You are muted until ${today}; you can still read`, now),
    "You are muted until 15:06; you can still read",
  );
  assert.equal(humanTimes(`the next one at ${later}`, now), "the next one at Dec 2 09:30");
  assert.equal(humanTimes("banned until 9999-12-31T23:59:59.999Z", now), "banned for good");
  assert.equal(humanTimes("no time here", now), "no time here");
  // Every error and notice a person reads goes through it.
  const line = renderFrame({
    type: "error",
    code: "muted",
    message: `You are muted until ${today}`,
  });
  assert.doesNotMatch(line!, /T\d\d:\d\d/);
});

Deno.test("/send NAME: a room the session is in (kept from welcome, joined, left) goes to the room", () => {
  const rooms = new JoinedRooms();
  const mode = { kind: "room" as const, room: "general" };
  const timestamp = new Date().toISOString();
  rooms.follow({
    type: "welcome",
    username: "Carol",
    registered: false,
    admin: false,
    mode,
    rooms: ["general", "Dev"],
    online_users: 1,
    timestamp,
  });
  rooms.follow({ type: "joined", room: "books", created: true, mode, timestamp });
  const send = (line: string) => parseLine(line, { rooms: rooms.names });
  assert.deepEqual(send("/send DEV green?"), {
    kind: "frame",
    frame: { type: "message", room: "dev", message: "green?" },
  });
  assert.deepEqual(send("/notice books closing"), {
    kind: "frame",
    frame: { type: "message", room: "books", message: "closing", notice: true },
  });
  rooms.follow({ type: "left", room: "dev", mode, timestamp });
  assert.deepEqual(send("/send dev green?"), {
    kind: "frame",
    frame: { type: "private", target_username: "dev", message: "green?" },
  });
  // Without the context (a program's own parser), only #ROOM and general are rooms.
  assert.deepEqual(parseLine("/send books hi"), {
    kind: "frame",
    frame: { type: "private", target_username: "books", message: "hi" },
  });
});
