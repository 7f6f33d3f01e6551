/** The console's pure reducer: what each frame changes, and what it asks for next. */
import assert from "node:assert/strict";
import { initial, reduce } from "../web/state.ts";

const welcome = {
  type: "welcome" as const,
  username: "alice",
  registered: true,
  admin: true,
  mode: { kind: "room" as const, room: "general" },
  rooms: ["general"],
  online_users: 1,
  timestamp: "2026-11-29T10:00:00.000Z",
};

function message(seq: number, room: string) {
  return {
    type: "message" as const,
    id: `01KF110CJ0000000000000000${seq}`,
    seq,
    room,
    from_username: "bob",
    message: `m${seq}`,
    timestamp: "2026-11-29T10:00:00.000Z",
  };
}

Deno.test("reduce(): the welcome asks for the lists, and an admin's also for stats and the log", () => {
  const step = reduce(initial, welcome);
  assert.equal(step.state.me?.username, "alice");
  assert.deepEqual(step.requests.map((r) => r.type), [
    "rooms",
    "users",
    "contacts",
    "scheduled",
    "unread_counts",
    "stats",
    "log_subscribe",
  ]);
  assert.equal(initial.me, null, "the state it was given is untouched");
});

Deno.test("reduce(): messages of the open chat are shown; others count as unread; duplicates merge by seq", () => {
  let s = reduce(initial, welcome).state;
  s = reduce(s, message(1, "general")).state;
  s = reduce(s, message(1, "general")).state;
  s = reduce(s, message(2, "books")).state;
  assert.deepEqual(s.messages.general?.map((m) => m.seq), [1]);
  assert.equal(s.unread.general, undefined);
  assert.equal(s.unread.books, 1);
});

Deno.test("reduce(): joining switches the open chat and refreshes rooms; leaving the open one goes back to general", () => {
  let step = reduce(initial, {
    type: "joined",
    room: "books",
    created: true,
    mode: { kind: "room", room: "books" },
    timestamp: "2026-11-29T10:00:00.000Z",
  });
  assert.equal(step.state.chat, "books");
  assert.deepEqual(step.requests, [{ type: "rooms" }]);
  step = reduce(step.state, {
    type: "left",
    room: "books",
    mode: { kind: "room", room: "general" },
    timestamp: "2026-11-29T10:00:00.000Z",
  });
  assert.equal(step.state.chat, "general");
});

Deno.test("reduce(): presence notices ask for the users list, room notices for the rooms list", () => {
  const online = reduce(initial, {
    type: "system",
    message: "bob joined the chat",
    timestamp: "2026-11-29T10:00:00.000Z",
    online_users: 2,
    event: "online",
  });
  assert.deepEqual(online.requests, [{ type: "users" }]);
  assert.deepEqual(online.state.notices, ["bob joined the chat"]);
});

Deno.test("reduce(): an away notice changes that user's entry in place, with no request", () => {
  const bob = { username: "bob", online: true, registered: false, connections: 1 };
  const carol = { username: "carol", online: true, registered: true, connections: 2 };
  const listed = { ...initial, users: [bob, carol] };
  const notice = {
    type: "system" as const,
    message: "bob is away: lunch",
    timestamp: "2026-11-29T10:00:00.000Z",
    online_users: 2,
    event: "away" as const,
    username: "bob",
  };
  const went = reduce(listed, { ...notice, away: "lunch" });
  assert.deepEqual(went.requests, []);
  assert.deepEqual(went.state.users, [{ ...bob, away: "lunch" }, carol]);
  const back = reduce(went.state, { ...notice, message: "bob is back" });
  assert.deepEqual(back.state.users, [bob, carol]);
  assert.ok(!("away" in back.state.users[0]!), "the field is gone, not undefined");
});
