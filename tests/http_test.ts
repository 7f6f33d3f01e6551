/**
 * The HTTP app in-process (`app.request`): every REST route, its success and its refusals,
 * and s3's README flow step by step.
 */
import assert from "node:assert/strict";
import type { Hub } from "../server/core/hub.ts";
import { createLogger } from "../server/log.ts";
import {
  apiDocument as openApiDocument,
  createHttpApp,
  documentedRoutes,
  httpHints,
} from "../server/transport/http/app.ts";
import { coreHintsWithCommands, login, makeHub } from "./_helpers.ts";

type App = ReturnType<typeof createHttpApp>;

const METRICS_TOKEN = "scrape-me-please";

/** The app over a fresh hub; `await using` it so the hub closes before its KV. */
async function setup(
  kv: Deno.Kv,
): Promise<{ app: App; hub: Hub; [Symbol.asyncDispose](): Promise<void> }> {
  const { hub } = await makeHub(kv);
  const app = createHttpApp(hub, {
    log: createLogger("silent"),
    startedAt: Date.now(),
    metricsToken: METRICS_TOKEN,
  });
  return { app, hub, [Symbol.asyncDispose]: () => hub.close() };
}

async function call(
  app: App,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; s3?: boolean } = {},
): Promise<
  { status: number; json: Record<string, unknown> & { error?: { code: string; message: string } } }
> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.token) headers.authorization = options.s3 ? options.token : `Bearer ${options.token}`;
  const hasBody = method !== "GET" && method !== "HEAD";
  const body = hasBody
    ? options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
    : undefined;
  const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

async function tokenFor(app: App, username: string, password = "password1"): Promise<string> {
  const r = await call(app, "POST", "/api/v1/session", { body: { username, password } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.token as string;
}

Deno.test("s3 flow: connect, status, send, send_to, and messages that are returned once", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  // 1. Log in with login and password (registers a new login).
  const a = await call(app, "POST", "/connect", {
    body: { login: "alice", password: "wonderland" },
  });
  assert.equal(a.status, 200);
  assert.equal(a.json.login, "alice");
  const alice = a.json.token as string;
  assert.match(alice, /^[A-Za-z0-9_-]{43}$/);
  const b = await call(app, "POST", "/connect", { body: { login: "bob", password: "builder1" } });
  const bob = b.json.token as string;
  // 3. status: the chats and their members.
  const status = await call(app, "GET", "/status", { token: alice, s3: true });
  assert.equal(status.status, 200);
  assert.deepEqual(status.json.user, { login: "alice", registered: true });
  assert.deepEqual(status.json.chats, [{
    name: "general",
    members: ["alice", "bob"],
    member_count: 2,
    unread: 0,
  }]);
  // 4. send to the common chat.
  const sent = await call(app, "POST", "/send", {
    token: alice,
    s3: true,
    body: { message: "hello everyone" },
  });
  assert.equal(sent.status, 201);
  assert.equal(sent.json.chat, "general");
  // 5. send_to a user.
  const dm = await call(app, "POST", "/send_to", {
    token: alice,
    s3: true,
    body: { user_login: "bob", message: "hi bob" },
  });
  assert.equal(dm.status, 201);
  assert.equal(dm.json.chat, "@bob");
  // 6. messages: unread ones, once.
  const first = await call(app, "POST", "/chats/main/messages", { token: bob, s3: true });
  assert.equal(first.status, 200);
  assert.deepEqual((first.json.messages as Array<{ message: string }>).map((m) => m.message), [
    "hello everyone",
  ]);
  const again = await call(app, "POST", "/chats/main/messages", { token: bob, s3: true });
  assert.deepEqual(again.json.messages, [], "a second call returns nothing already read");
  await call(app, "POST", "/send", { token: alice, s3: true, body: { message: "newer" } });
  const newer = await call(app, "POST", "/chats/general/messages", { token: bob, s3: true });
  assert.deepEqual((newer.json.messages as Array<{ message: string }>).map((m) => m.message), [
    "newer",
  ]);
  const priv = await call(app, "POST", "/chats/@alice/messages", { token: bob, s3: true });
  assert.deepEqual((priv.json.messages as Array<{ message: string }>).map((m) => m.message), [
    "hi bob",
  ]);
  // Bob's status now shows the private chat; Alice's own messages are not unread for her.
  const bobStatus = await call(app, "GET", "/status", { token: bob });
  assert.deepEqual((bobStatus.json.chats as Array<{ name: string }>).map((c) => c.name), [
    "@alice",
    "general",
  ]);
  const aliceStatus = await call(app, "GET", "/status", { token: alice });
  assert.deepEqual((aliceStatus.json.chats as Array<{ unread: number }>).map((c) => c.unread), [
    0,
    0,
  ]);
});

Deno.test("s3: /chats/NAME/messages with a user's bare name (no room by that name) reads the private chat", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const login = async (name: string) =>
    (await call(app, "POST", "/connect", { body: { login: name, password: "secret12" } })).json
      .token as string;
  const alice = await login("alice");
  const bob = await login("bob");
  const jdoe = await login("j.doe");
  await call(app, "POST", "/send_to", { token: alice, body: { user_login: "bob", message: "1" } });
  await call(app, "POST", "/send_to", { token: jdoe, body: { user_login: "bob", message: "2" } });
  const fromAlice = await call(app, "POST", "/chats/alice/messages", { token: bob, s3: true });
  assert.equal(fromAlice.status, 200);
  assert.equal(fromAlice.json.chat, "@alice");
  assert.deepEqual((fromAlice.json.messages as Array<{ message: string }>).map((m) => m.message), [
    "1",
  ]);
  // A name with a dot can only be a user's.
  const fromJdoe = await call(app, "POST", "/chats/j.doe/messages", { token: bob, s3: true });
  assert.equal(fromJdoe.status, 200);
  assert.equal(fromJdoe.json.chat, "@j.doe");
  // A room by that name comes first; a name that is neither is still a 404.
  await call(app, "POST", "/api/v1/rooms/alice/join", { token: bob });
  const room = await call(app, "POST", "/chats/alice/messages", { token: bob, s3: true });
  assert.equal(room.json.chat, "alice");
  const none = await call(app, "POST", "/chats/nobody/messages", { token: bob, s3: true });
  assert.equal(none.status, 404);
  assert.equal(none.json.error?.code, "no_such_room");
  assert.equal(
    none.json.error?.message,
    'There is no room #nobody and no user "nobody": POST /api/v1/rooms/nobody/join creates the room',
  );
});

Deno.test("http: every hint the core gives in slash commands names an HTTP route instead", async () => {
  const withCommands = await coreHintsWithCommands();
  assert.ok(withCommands.length >= 10, `found ${withCommands.length} hints with commands`);
  const command = /(^|[\s(])(?<!(POST|GET|PUT|DELETE) )\/(?!ws\b)[a-z_]+(?![\w/])/;
  for (const hint of withCommands) assert.doesNotMatch(httpHints(hint), command, hint);
});

Deno.test("s3: a new login's first poll of main returns the last messages, at most 20", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const alice =
    (await call(app, "POST", "/connect", { body: { login: "alice", password: "wonderland" } })).json
      .token as string;
  for (let i = 1; i <= 25; i++) {
    await call(app, "POST", "/send", { token: alice, body: { message: `m${i}` } });
  }
  const carol =
    (await call(app, "POST", "/connect", { body: { login: "carol", password: "carol-pw" } })).json
      .token as string;
  const r = await call(app, "POST", "/chats/main/messages", { token: carol });
  const got = (r.json.messages as Array<{ message: string }>).map((m) => m.message);
  assert.equal(got.length, 20);
  assert.equal(got[0], "m6");
  assert.equal(r.json.unread_left, 0);
});

Deno.test("s3: refusals: bad login body, wrong password, no token, bad token, bad bodies", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  assert.equal((await call(app, "POST", "/connect", { body: { login: "alice" } })).status, 400);
  assert.equal(
    (await call(app, "POST", "/connect", { raw: "{oops" })).json.error?.code,
    "bad_json",
  );
  await call(app, "POST", "/connect", { body: { login: "alice", password: "wonderland" } });
  const wrong = await call(app, "POST", "/connect", {
    body: { login: "alice", password: "nope-nope" },
  });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error?.code, "bad_password");
  const short = await call(app, "POST", "/connect", { body: { login: "dave", password: "123" } });
  assert.equal(short.status, 400);
  for (
    const [method, path] of [["GET", "/status"], ["POST", "/send"], ["POST", "/send_to"], [
      "POST",
      "/chats/main/messages",
    ]]
  ) {
    const none = await call(app, method!, path!, { body: { message: "x" } });
    assert.equal(none.status, 401, `${method} ${path} without a token`);
    assert.match(none.json.error!.message, /Authorization: Bearer TOKEN/);
    const bad = await call(app, method!, path!, { token: "not-a-token", body: { message: "x" } });
    assert.equal(bad.status, 401, `${method} ${path} with a bad token`);
  }
  const alice =
    (await call(app, "POST", "/connect", { body: { login: "alice", password: "wonderland" } })).json
      .token as string;
  assert.equal((await call(app, "POST", "/send", { token: alice, body: {} })).status, 400);
  assert.equal(
    (await call(app, "POST", "/send", { token: alice, body: { message: "x".repeat(4001) } }))
      .status,
    413,
  );
  assert.equal(
    (await call(app, "POST", "/send", { token: alice, raw: "[]" })).json.error?.code,
    "bad_frame",
  );
  assert.equal(
    (await call(app, "POST", "/send_to", {
      token: alice,
      body: { user_login: "ghost", message: "x" },
    })).status,
    404,
  );
  assert.equal((await call(app, "POST", "/chats/nowhere/messages", { token: alice })).status, 404);
  const huge = await call(app, "POST", "/send", {
    token: alice,
    raw: JSON.stringify({ message: "x".repeat(70_000) }),
  });
  assert.equal(huge.status, 413);
  assert.equal(huge.json.error?.code, "too_long");
});

Deno.test("api v1: session login, whoami, logout revokes only that token", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const t1 = await tokenFor(app, "alice");
  const t2 = await tokenFor(app, "alice");
  const me = await call(app, "GET", "/api/v1/session", { token: t1 });
  assert.equal(me.status, 200);
  assert.equal(me.json.username, "alice");
  assert.equal((await call(app, "DELETE", "/api/v1/session", { token: t1 })).status, 204);
  assert.equal((await call(app, "GET", "/api/v1/session", { token: t1 })).status, 401);
  assert.equal(
    (await call(app, "GET", "/api/v1/session", { token: t2 })).status,
    200,
    "other tokens stay valid",
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/session", {
      body: { username: "alice", password: "wrong-one" },
    })).status,
    401,
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/session", {
      body: { username: "bad name", password: "password1" },
    })).status,
    400,
  );
  assert.equal((await call(app, "DELETE", "/api/v1/session", {})).status, 401);
});

Deno.test("api v1: tokens expire", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using ctx = await makeHub(kv);
  const { hub, clock } = ctx;
  const app = createHttpApp(hub, { log: createLogger("silent"), startedAt: 0 });
  const t = await tokenFor(app, "alice");
  clock.advance(7 * 24 * 3600_000 - 1);
  assert.equal((await call(app, "GET", "/api/v1/session", { token: t })).status, 200);
  clock.advance(1);
  const expired = await call(app, "GET", "/api/v1/session", { token: t });
  assert.equal(expired.status, 401);
  assert.match(expired.json.error!.message, /unknown or expired/);
});

Deno.test("api v1: users and one user", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app, hub } = s;
  const t = await tokenFor(app, "alice");
  await login(hub, "Bob");
  const users = await call(app, "GET", "/api/v1/users", { token: t });
  assert.equal(users.status, 200);
  assert.deepEqual(
    users.json.users,
    ["Bob"],
    "alice has no live connection, so only Bob is online",
  );
  const bob = await call(app, "GET", "/api/v1/users/bob", { token: t });
  assert.deepEqual(bob.json, { username: "Bob", online: true, registered: false, connections: 1 });
  assert.equal((await call(app, "GET", "/api/v1/users/ghost", { token: t })).status, 404);
  assert.equal((await call(app, "GET", "/api/v1/users", {})).status, 401);
  // Only the users named (those that exist), in the order asked.
  const named = await call(app, "GET", "/api/v1/users?usernames=ghost,bob,alice", { token: t });
  assert.equal(named.status, 200);
  const all = named.json.all as Array<{ username: string }>;
  assert.deepEqual(all.map((u) => u.username), ["Bob", "alice"]);
  const tooMany = `/api/v1/users?usernames=${Array(101).fill("a").join(",")}`;
  const refused = await call(app, "GET", tooMany, { token: t });
  assert.equal(refused.status, 400);
  assert.match(refused.json.error!.message, /list of 1 to 100 names/);
});

Deno.test("api v1: rooms: create, join, members, leave, and their refusals", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const a = await tokenFor(app, "alice");
  const b = await tokenFor(app, "bob");
  const created = await call(app, "POST", "/api/v1/rooms", { token: a, body: { name: "Games" } });
  assert.equal(created.status, 201);
  assert.equal(created.json.room, "games");
  assert.equal(
    (await call(app, "POST", "/api/v1/rooms", { token: a, body: { name: "games" } })).status,
    200,
    "already there",
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/rooms", { token: a, body: { name: "no spaces" } })).status,
    400,
  );
  assert.equal((await call(app, "POST", "/api/v1/rooms/games/join", { token: b })).status, 200);
  const members = await call(app, "GET", "/api/v1/rooms/games/members", { token: a });
  assert.deepEqual((members.json.members as Array<{ username: string }>).map((m) => m.username), [
    "alice",
    "bob",
  ]);
  assert.equal((await call(app, "GET", "/api/v1/rooms/nowhere/members", { token: a })).status, 404);
  const rooms = await call(app, "GET", "/api/v1/rooms", { token: a });
  assert.deepEqual(
    (rooms.json.rooms as Array<{ name: string; members: number }>).map((r) => [r.name, r.members]),
    [["games", 2], ["general", 2]],
  );
  assert.equal((await call(app, "POST", "/api/v1/rooms/games/leave", { token: b })).status, 200);
  assert.equal(
    (await call(app, "POST", "/api/v1/rooms/games/leave", { token: b })).status,
    403,
    "not a member any more",
  );
  assert.equal((await call(app, "POST", "/api/v1/rooms/general/leave", { token: b })).status, 403);
  assert.equal((await call(app, "POST", "/api/v1/rooms/games/join", {})).status, 401);
});

Deno.test("api v1: room and private messages: send, page with limit/before/after, read, unread counts", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const a = await tokenFor(app, "alice");
  const b = await tokenFor(app, "bob");
  for (let i = 1; i <= 5; i++) {
    const r = await call(app, "POST", "/api/v1/rooms/general/messages", {
      token: a,
      body: { message: `g${i}` },
    });
    assert.equal(r.status, 201);
  }
  const sent = await call(app, "POST", "/api/v1/private/bob/messages", {
    token: a,
    body: { message: "p1" },
  });
  assert.equal(sent.json.chat, "@bob");
  const texts = (r: { json: Record<string, unknown> }) =>
    (r.json.messages as Array<{ message: string }>).map((m) => m.message);
  assert.deepEqual(
    texts(await call(app, "GET", "/api/v1/rooms/general/messages?limit=2", { token: b })),
    ["g4", "g5"],
  );
  assert.deepEqual(
    texts(await call(app, "GET", "/api/v1/rooms/general/messages?limit=2&before=4", { token: b })),
    ["g2", "g3"],
  );
  assert.deepEqual(
    texts(await call(app, "GET", "/api/v1/rooms/general/messages?after=3", { token: b })),
    ["g4", "g5"],
  );
  // A message by its id: the page around it (or before or after it).
  const all = await call(app, "GET", "/api/v1/rooms/general/messages", { token: b });
  const g3 = (all.json.messages as Array<{ id: string; message: string }>)[2]!;
  assert.equal(g3.message, "g3");
  const around = `/api/v1/rooms/general/messages?around=${g3.id}&limit=3`;
  assert.deepEqual(texts(await call(app, "GET", around, { token: b })), ["g2", "g3", "g4"]);
  const after = `/api/v1/rooms/general/messages?after=${g3.id}`;
  assert.deepEqual(texts(await call(app, "GET", after, { token: b })), ["g4", "g5"]);
  const elsewhere = `/api/v1/private/alice/messages?before=${g3.id}`;
  assert.equal((await call(app, "GET", elsewhere, { token: b })).status, 404);
  assert.deepEqual(texts(await call(app, "GET", "/api/v1/private/alice/messages", { token: b })), [
    "p1",
  ]);
  const counts = await call(app, "GET", "/api/v1/unread", { token: b });
  assert.deepEqual(counts.json.chats, [{ chat: "@alice", unread: 1 }, {
    chat: "general",
    unread: 5,
  }]);
  const read = await call(app, "POST", "/api/v1/chats/general/read?limit=3", { token: b });
  assert.deepEqual(texts(read), ["g1", "g2", "g3"]);
  assert.equal(read.json.has_more, true);
  assert.deepEqual(texts(await call(app, "POST", "/api/v1/chats/general/read", { token: b })), [
    "g4",
    "g5",
  ]);
  assert.deepEqual((await call(app, "GET", "/api/v1/unread", { token: b })).json.chats, [{
    chat: "@alice",
    unread: 1,
  }]);
  // Refusals.
  assert.equal(
    (await call(app, "GET", "/api/v1/rooms/general/messages?limit=abc", { token: b })).status,
    400,
  );
  assert.equal(
    (await call(app, "GET", "/api/v1/rooms/general/messages?limit=500", { token: b })).status,
    400,
  );
  assert.equal(
    (await call(app, "GET", "/api/v1/rooms/general/messages?before=3&after=1", { token: b }))
      .status,
    400,
  );
  await call(app, "POST", "/api/v1/rooms", { token: a, body: { name: "secret" } });
  assert.equal(
    (await call(app, "GET", "/api/v1/rooms/secret/messages", { token: b })).status,
    403,
    "not a member",
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/rooms/secret/messages", { token: b, body: { message: "x" } }))
      .status,
    403,
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/private/ghost/messages", {
      token: b,
      body: { message: "x" },
    })).status,
    404,
  );
  assert.equal(
    (await call(app, "POST", "/api/v1/private/bob/messages", { token: b, body: { message: "me" } }))
      .status,
    400,
  );
  assert.equal(
    (await call(app, "GET", "/api/v1/private/ghost/messages", { token: b })).status,
    404,
  );
  assert.equal((await call(app, "POST", "/api/v1/chats/@ghost/read", { token: b })).status, 404);
  assert.equal((await call(app, "GET", "/api/v1/unread", {})).status, 401);
});

Deno.test("api v1: sessions need a live connection; with one they work over REST", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app, hub } = s;
  const a = await tokenFor(app, "alice");
  const bob = await login(hub, "bob", "password1");
  const refused = await call(app, "POST", "/api/v1/sessions", {
    token: a,
    body: { username: "bob" },
  });
  assert.equal(refused.status, 403);
  assert.match(refused.json.error!.message, /needs a live connection/);
  // Alice opens a live connection (as an SSE stream would); REST calls now act for her.
  const live = await login(hub, "alice", "password1");
  assert.equal(
    (await call(app, "POST", "/api/v1/sessions", { token: a, body: { username: "bob" } })).status,
    202,
  );
  assert.equal(bob.peer.of("session_request")[0]!.from_username, "alice");
  const bt = await tokenFor(app, "bob");
  assert.equal(
    (await call(app, "POST", "/api/v1/sessions/carol/accept", { token: bt })).status,
    404,
  );
  const ok = await call(app, "POST", "/api/v1/sessions/alice/accept", { token: bt });
  assert.equal(ok.status, 200);
  assert.equal(ok.json.type, "session_accepted");
  assert.equal(live.peer.of("session_accepted").length, 1);
  assert.equal((await call(app, "DELETE", "/api/v1/sessions", { token: a })).status, 200);
  assert.equal(
    (await call(app, "DELETE", "/api/v1/sessions", { token: a })).status,
    404,
    "no session any more",
  );
  await call(app, "POST", "/api/v1/sessions", { token: a, body: { username: "bob" } });
  const rejected = await call(app, "POST", "/api/v1/sessions/alice/reject", { token: bt });
  assert.equal(rejected.json.type, "session_rejected");
  assert.equal((await call(app, "POST", "/api/v1/sessions", { token: a, body: {} })).status, 400);
});

Deno.test("http: health, unknown routes and the OpenAPI document", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const health = await call(app, "GET", "/healthz");
  assert.equal(health.status, 200);
  assert.equal(health.json.status, "ok");
  const missing = await call(app, "GET", "/nope");
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error?.code, "not_found");
  // A path that exists, asked with a method it does not take: 405 and the ones it takes.
  const wrongMethods: Array<[string, string, string]> = [
    ["DELETE", "/healthz", "GET, HEAD"],
    ["PUT", "/api/v1/rooms/books/join", "POST"],
    ["PATCH", "/api/v1/messages/01KF110CJ00000000000000001", "DELETE"],
    // A user named "." resolves away: the URL is /api/v1/users/report, a GET route's path.
    ["POST", "/api/v1/users/./report", "GET, HEAD"],
  ];
  for (const [method, path, allow] of wrongMethods) {
    const res = await app.request(path, { method });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
    assert.equal((await res.json()).error.code, "method_not_allowed");
  }
  // Not a path at all, whatever the method: 404.
  assert.equal((await app.request("/api/v1/rooms/books/dance", { method: "POST" })).status, 404);
  const doc = await call(app, "GET", "/api/v1/openapi.json");
  assert.equal(doc.json.openapi, "3.1.0");
  assert.ok((doc.json.paths as Record<string, unknown>)["/chats/{chat}/messages"]);
});

Deno.test("OpenAPI documents exactly the routes the app serves", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const served = new Set(
    app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path}`),
  );
  const documented = new Set(documentedRoutes().map((r) => `${r.method} ${r.path}`));
  assert.deepEqual([...served].filter((r) => !documented.has(r)), [], "served but not documented");
  assert.deepEqual([...documented].filter((r) => !served.has(r)), [], "documented but not served");
  assert.ok(Object.keys(openApiDocument().paths as object).length >= 20);
});

Deno.test("every route that needs a token answers 401 without one, and with a revoked one", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const revoked = await tokenFor(app, "alice");
  await call(app, "DELETE", "/api/v1/session", { token: revoked });
  const authed = documentedRoutes().filter((r) => r.auth);
  assert.ok(authed.length >= 20);
  for (const r of authed) {
    const path = r.path.replace(
      /:(\w+)/g,
      (_m, p) => (p === "user" ? "bob" : p === "chat" ? "general" : "general"),
    );
    for (const token of [undefined, revoked]) {
      const res = await call(app, r.method, path, {
        ...(token ? { token } : {}),
        body: { message: "x", username: "bob", name: "x" },
      });
      assert.equal(
        res.status,
        401,
        `${r.method} ${path} ${token ? "with a revoked token" : "without a token"}`,
      );
      assert.equal(res.json.error?.code, "not_logged_in");
    }
  }
});

Deno.test("s3: a form-encoded body (requests.post(url, data={...}), an HTML form) is read as its fields; bad JSON says which fields to send", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const form = (path: string, body: string, token?: string) =>
    app.request(path, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(token ? { authorization: token } : {}),
      },
      body,
    });
  const login = await form("/connect", "login=ann&password=pass%20word%211");
  assert.equal(login.status, 200);
  const { token } = await login.json();
  const sent = await form("/send", "message=" + encodeURIComponent("hi & bye = 100%"), token);
  assert.ok(sent.ok, await sent.clone().text());
  assert.equal((await sent.json()).chat, "general");
  const bob = await (await form("/connect", "login=bob&password=bobs-password")).json();
  const page = await call(app, "POST", "/chats/general/messages", { token: bob.token, s3: true });
  const texts = (page.json.messages as Array<{ message: string }>).map((m) => m.message);
  assert.deepEqual(texts, ["hi & bye = 100%"]);
  // The form's fields meet the same schema as JSON's: a field it does not know is refused.
  const odd = await form("/send", "msg=hi", token);
  assert.equal(odd.status, 400);
  // Not JSON and not a form: the error shows the route's own fields.
  const bad = await call(app, "POST", "/connect", { raw: "login: ann" });
  assert.equal(bad.json.error?.code, "bad_json");
  assert.match(bad.json.error!.message, /\{"login":"…","password":"…"\}/);
  // JSON labelled as a form (curl -d '{...}') is still JSON.
  const labelled = await form(
    "/connect",
    JSON.stringify({ login: "ann", password: "pass word!1" }),
  );
  assert.equal(labelled.status, 200);
});

Deno.test("api v1: a report may come without a body; a bad body is still refused", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app, hub } = s;
  await login(hub, "Troll");
  const a = await tokenFor(app, "alice");
  const res = await app.request("/api/v1/users/Troll/report", {
    method: "POST",
    headers: { authorization: `Bearer ${a}` },
  });
  assert.equal(res.status, 200);
  assert.match((await res.json()).message, /You reported Troll \(1 of 3\)/);
  const bad = await call(app, "POST", "/api/v1/users/Troll/report", { token: a, raw: "{nope" });
  assert.equal(bad.json.error?.code, "bad_json");
  assert.equal((await call(app, "POST", "/api/v1/users/Ghost/report", { token: a })).status, 404);
});

Deno.test("http: /metrics speaks Prometheus text with connections by transport and message counters", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app, hub } = s;
  await login(hub, "Alice");
  await hub.request("Alice", { type: "message", message: "counted" });
  const res = await app.request("/metrics", {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /^text\/plain; version=0.0.4/);
  const text = await res.text();
  assert.match(text, /^chat_connections\{transport="tcp-json"\} 1$/m);
  assert.match(text, /^chat_connections\{transport="ws"\} 0$/m);
  assert.match(text, /^chat_messages_total 1$/m);
  assert.match(text, /^# TYPE chat_deliveries_total counter$/m);
});

Deno.test("http: the console page and its script are served (deno task test builds the bundle first)", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const page = await (await s.app.request("/")).text();
  assert.match(page, /<div id="app"><\/div><script type="module" src="\/app.js"><\/script>/);
  const js = await s.app.request("/app.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /javascript/);
  assert.ok((await js.text()).length > 10_000, "the Preact bundle, not a stub");
});

Deno.test("http: /metrics is for the operator (the metrics token or an admin), and every page says no framing, no sniffing", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  assert.equal((await app.request("/metrics")).status, 401);
  const user = await tokenFor(app, "alice");
  const asUser = await app.request("/metrics", { headers: { authorization: `Bearer ${user}` } });
  assert.equal(asUser.status, 403);
  const page = await app.request("/");
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.match(page.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
});

Deno.test("http: a page on another site cannot create accounts or post; programs without an Origin can", async () => {
  await using kv = await Deno.openKv(":memory:");
  await using s = await setup(kv);
  const { app } = s;
  const body = JSON.stringify({ login: "mallory", password: "mallory-pw" });
  const cross = await app.request("http://chat.local/connect", {
    method: "POST",
    headers: { origin: "https://evil.example", "content-type": "text/plain", host: "chat.local" },
    body,
  });
  assert.equal(cross.status, 403);
  assert.match((await cross.json()).error.message, /--allowed-origins/);
  const same = await app.request("http://chat.local/connect", {
    method: "POST",
    headers: { origin: "http://chat.local", host: "chat.local" },
    body,
  });
  assert.equal(same.status, 200);
  assert.equal((await app.request("/connect", { method: "POST", body })).status, 200);
});

Deno.test("http: a page of an --allowed-origins origin may use the API from a browser (CORS preflight and answers); others get no CORS headers", async () => {
  await using kv = await Deno.openKv(":memory:");
  const { hub } = await makeHub(kv);
  await using _ = { [Symbol.asyncDispose]: () => hub.close() };
  const app = createHttpApp(hub, {
    log: createLogger("silent"),
    startedAt: Date.now(),
    allowedOrigins: ["https://app.example"],
  });
  const preflight = (origin: string) =>
    app.request("http://chat.local/api/v1/rooms", {
      method: "OPTIONS",
      headers: {
        origin,
        host: "chat.local",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
  const ok = await preflight("https://app.example");
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
  assert.equal(ok.headers.get("access-control-allow-methods"), "GET, HEAD, POST");
  assert.match(ok.headers.get("access-control-allow-headers")!, /authorization/);
  const other = await preflight("https://evil.example");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  await other.body?.cancel();

  const login = await app.request("http://chat.local/api/v1/session", {
    method: "POST",
    headers: {
      origin: "https://app.example",
      host: "chat.local",
      "content-type": "application/json",
    },
    body: JSON.stringify({ username: "ann", password: "ann-password" }),
  });
  assert.equal(login.status, 201);
  assert.equal(login.headers.get("access-control-allow-origin"), "https://app.example");
  assert.match(login.headers.get("vary") ?? "", /origin/i);
  // A refusal reaches the page too, so that it can say why.
  const bad = await app.request("http://chat.local/api/v1/rooms", {
    headers: { origin: "https://app.example", host: "chat.local" },
  });
  assert.equal(bad.status, 401);
  assert.equal(bad.headers.get("access-control-allow-origin"), "https://app.example");
  await bad.body?.cancel();
});
