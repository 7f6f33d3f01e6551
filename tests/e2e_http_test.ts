/**
 * End to end over HTTP: the real server, used at the same moment through fetch (REST), a
 * WebSocket, an SSE stream and a raw TCP socket.
 */
import assert from "node:assert/strict";
import type { MessageFrame, ServerFrame } from "../protocol/frames.ts";
import {
  api,
  JsonClient,
  rawRequest,
  SseClient,
  tokenFor,
  withServer,
  WsClient,
} from "./_helpers.ts";

const isMsg = (f: ServerFrame): f is MessageFrame => f.type === "message" || f.type === "private";
const texts = (frames: ServerFrame[]) => frames.filter(isMsg).map((m) => m.message).sort();

Deno.test("e2e http: TCP, WebSocket, SSE and REST users in one room see each other, and private messages reach only their two ends", async () => {
  await using server = await withServer();
  const base = server.base;
  const tcp = await JsonClient.connect(server.tcpPort, { username: "Tcp" });
  const ws = await WsClient.open(`${base.replace("http", "ws")}/ws`);
  ws.send({ username: "Ws" });
  await ws.type("welcome");
  const sseToken = await tokenFor(base, "Sse");
  const sse = await SseClient.open(`${base}/api/v1/events`, {
    authorization: `Bearer ${sseToken}`,
  });
  await sse.type("welcome");
  const restToken = await tokenFor(base, "Rest");
  const outsider = await JsonClient.connect(server.tcpPort, { username: "Outsider" });

  // Everyone but the outsider joins #lab, each on their own wire.
  await tcp.send({ type: "join", room: "lab" });
  await tcp.type("joined");
  ws.send({ type: "join", room: "lab" });
  await ws.type("joined");
  assert.equal((await api(base, "POST", "/api/v1/rooms/lab/join", sseToken)).status, 200);
  await sse.type("joined", (f) => f.room === "lab");
  assert.equal((await api(base, "POST", "/api/v1/rooms/lab/join", restToken)).status, 200);

  // Each sends one message into #lab.
  await tcp.send({ type: "message", message: "from tcp" });
  ws.send({ type: "message", message: "from ws" });
  assert.equal(
    (await api(base, "POST", "/api/v1/rooms/lab/messages", sseToken, { message: "from sse" }))
      .status,
    201,
  );
  assert.equal(
    (await api(base, "POST", "/api/v1/rooms/lab/messages", restToken, { message: "from rest" }))
      .status,
    201,
  );
  const all = ["from rest", "from sse", "from tcp", "from ws"];
  for (const client of [tcp, ws, sse]) {
    await client.until(() => texts(client.frames).length >= 4, "four lab messages");
    assert.deepEqual(
      texts(client.frames.filter((f) => f.type === "message" && f.room === "lab")),
      all,
    );
  }
  // The REST user polls: everything since its last read, in order, once. Its own message sits
  // among the others (a read cursor is one position, it cannot skip the unread ones before it).
  const polled = await api(base, "POST", "/chats/lab/messages", restToken);
  assert.deepEqual((polled.json.messages as MessageFrame[]).map((m) => m.message).sort(), all);
  assert.deepEqual((await api(base, "POST", "/chats/lab/messages", restToken)).json.messages, []);

  // Private: TCP to WS, and SSE (sending over REST) to REST.
  await tcp.send({ type: "private", target_username: "Ws", message: "tcp to ws" });
  assert.equal(
    (await api(base, "POST", "/send_to", sseToken, {
      user_login: "Rest",
      message: "sse to rest",
    })).status,
    201,
  );
  assert.equal((await ws.type("private")).message, "tcp to ws");
  assert.equal(
    (await sse.type("private")).message,
    "sse to rest",
    "the sender's own stream shows it",
  );
  const restDm = await api(base, "POST", "/chats/@Sse/messages", restToken);
  assert.deepEqual((restDm.json.messages as MessageFrame[]).map((m) => m.message), [
    "sse to rest",
  ]);
  await tcp.type("private", (m) => m.message === "tcp to ws");

  // A final marker proves the outsider's stream is flowing; then check what it never got.
  await tcp.send({ type: "message", room: "general", message: "marker" });
  await outsider.type("message", (m) => m.message === "marker");
  assert.deepEqual(texts(outsider.frames), ["marker"], "nothing from #lab, no private messages");
  await ws.type("message", (m) => m.message === "marker");
  await sse.type("message", (m) => m.message === "marker");
  assert.equal(
    ws.frames.filter((f) => f.type === "private").length,
    1,
    "ws saw only its own private message",
  );
  assert.equal(sse.frames.filter((f) => f.type === "private").length, 1);
  assert.equal(tcp.frames.filter((f) => f.type === "private").length, 1);

  await Promise.all([tcp.close(), ws.close(), sse.close(), outsider.close()]);
});

Deno.test("e2e http: /ws logs in with ?token=, refuses a bad one before upgrading, and batches frames", async () => {
  await using server = await withServer({ args: ["--rate-limit", "0"] });
  const base = server.base;
  const t = await tokenFor(base, "Alice");
  const bad = await fetch(`${base}/ws?token=nope`, { headers: { upgrade: "websocket" } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).error.code, "not_logged_in");
  const plain = await fetch(`${base}/ws`);
  assert.equal(plain.status, 400, "GET /ws without an upgrade says what it is");
  await plain.body?.cancel();

  const ws = await WsClient.open(`${base.replace("http", "ws")}/ws?token=${t}`);
  assert.equal((await ws.type("welcome")).username, "Alice");
  // Two frames in one WebSocket message, newline-separated.
  ws.sendRaw('{"type":"ping","ref":"a"}\n{"type":"status","ref":"b"}');
  assert.equal((await ws.type("pong")).ref, "a");
  assert.equal((await ws.type("status")).ref, "b");
  ws.sendRaw("{broken");
  assert.equal((await ws.type("error")).code, "bad_json");

  // A burst from a TCP sender arrives as one WebSocket message per frame (written several to a
  // write): a client doing JSON.parse(event.data) reads every one.
  const before = ws.messages.length;
  const tcp = await JsonClient.connect(server.tcpPort, { username: "Bob" });
  for (let i = 0; i < 100; i++) await tcp.send({ type: "message", message: `burst ${i}` });
  await ws.type("message", (m) => m.message === "burst 99");
  const parsed = ws.messages.slice(before).map((m) => JSON.parse(m));
  const burst = parsed.filter((f) => f.type === "message" && f.message.startsWith("burst"));
  assert.deepEqual(
    burst.map((f) => f.message),
    Array.from({ length: 100 }, (_, i) => `burst ${i}`),
  );
  await Promise.all([ws.close(), tcp.close()]);
});

Deno.test("e2e http: an SSE stream resumes with Last-Event-ID and misses nothing", async () => {
  await using server = await withServer();
  const base = server.base;
  const t = await tokenFor(base, "Reader");
  assert.equal((await fetch(`${base}/api/v1/events`)).status, 401);
  const sse = await SseClient.open(`${base}/api/v1/events?token=${t}`);
  await sse.type("welcome");
  const tcp = await JsonClient.connect(server.tcpPort, { username: "Writer" });
  await tcp.send({ type: "message", message: "before the break" });
  const seen = await sse.type("message", (m) => m.message === "before the break");
  const lastId = sse.lastEventId();
  assert.equal(lastId, seen.id, "stored messages carry their id as the event id");
  await sse.close();

  for (const text of ["missed 1", "missed 2", "missed 3"]) {
    await tcp.send({ type: "message", message: text });
  }
  await tcp.send({ type: "private", target_username: "Reader", message: "missed privately" });
  await tcp.type("ack", (a) => a.chat === "@Reader");

  const again = await SseClient.open(`${base}/api/v1/events`, {
    authorization: `Bearer ${t}`,
    "last-event-id": lastId!,
  });
  const resumed = await again.type(
    "history",
    (h) => h.reason === "resume" && h.chat === "general",
  );
  assert.deepEqual(resumed.messages.map((m) => m.message), ["missed 1", "missed 2", "missed 3"]);
  const dm = await again.type("history", (h) => h.reason === "resume" && h.chat === "@Writer");
  assert.deepEqual(dm.messages.map((m) => m.message), ["missed privately"]);
  await tcp.send({ type: "message", message: "live again" });
  await again.type("message", (m) => m.message === "live again");
  const bad = await fetch(`${base}/api/v1/events`, {
    headers: { authorization: `Bearer ${t}`, "last-event-id": "garbage" },
  });
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  await Promise.all([again.close(), tcp.close()]);
});

Deno.test("e2e http: malformed requests get a 400 and never a 500 or an error in the server's log", async () => {
  await using server = await withServer();
  const port = server.httpPort;
  const token = await tokenFor(server.base, "Alice");
  const bad = [
    // A WebSocket upgrade without its key.
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n",
    // Keys that are not 16 bytes in base64 (the last one decodes to 18), and a HEAD upgrade with
    // a good key: these reached the upgrade itself and got a 500 (found by `deno task stress`).
    ...["short", "x".repeat(24), "!!!!!!!!!!!!!!!!!!!!!!==", "dGhlIHNhbXBsZSBub25jZQ== x"].map((
      key,
    ) =>
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n`
    ),
    "HEAD /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
    "Connection: close\r\n\r\n",
    // A chunked body whose chunk size is not hexadecimal.
    `POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: ${token}\r\nTransfer-Encoding: chunked\r\n` +
    "Connection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    // A file name with a bare %.
    `POST /api/v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
    "X-Filename: 100%.txt\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
  ];
  for (const request of bad) {
    const answer = await rawRequest(port, request);
    const status = Number(answer.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
    assert.ok(
      status >= 400 && status < 500,
      `${JSON.stringify(request.slice(0, 40))} → ${answer.slice(0, 200)}`,
    );
  }
  // A name with % in the query is a name, not an error.
  const up = await fetch(`${server.base}/api/v1/files?name=${encodeURIComponent("100%.txt")}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: "x",
  });
  assert.equal(up.status, 201, await up.text());
  // HEAD of a route: its status and headers, no body, and no made-up length of 0.
  const head = await rawRequest(
    port,
    "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(head, /content-length: 0/i);
  assert.ok(head.endsWith("\r\n\r\n"), head);
  assert.doesNotMatch(server.stderr(), / (ERROR|error) /, server.stderr());
});

Deno.test("e2e http: over WebSocket, a frame the decoder refuses is answered in its turn and with its ref", async () => {
  await using server = await withServer();
  const ws = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  ws.send({ type: "hello", username: "Wanda" });
  await ws.until(() => ws.frames.some((f) => f.type === "welcome"), "the welcome");
  // One WebSocket message: a good frame, a refused one, another good one.
  ws.sendRaw(
    [
      JSON.stringify({ type: "message", message: "first", ref: "a" }),
      JSON.stringify({ type: "no_such_thing", ref: "b" }),
      JSON.stringify({ type: "ping", ref: "c" }),
    ].join("\n"),
  );
  const answered = () =>
    ws.frames.filter((f) => "ref" in f && f.ref !== undefined).map((f) =>
      `${f.type}:${"ref" in f ? f.ref : ""}`
    );
  await ws.until(() => answered().length >= 3, "three answers");
  assert.deepEqual(answered(), ["ack:a", "error:b", "pong:c"]);
  await ws.close();
});

Deno.test("e2e http: over WebSocket, JSON sent as bytes, pretty-printed or back to back in one message is read; bytes that are not UTF-8 are refused", async () => {
  await using server = await withServer();
  const ws = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  const enc = new TextEncoder();
  // Python's websockets sends bytes as a binary message: ws.send(json.dumps(x).encode()).
  ws.sendBinary(enc.encode(JSON.stringify({ username: "Bytes" })));
  await ws.until(() => ws.frames.some((f) => f.type === "welcome"), "the welcome");
  ws.sendRaw(JSON.stringify({ type: "ping", ref: "pretty" }, null, 2));
  ws.sendRaw(
    JSON.stringify({ type: "ping", ref: "b1" }) + JSON.stringify({ type: "ping", ref: "b2" }),
  );
  ws.sendBinary(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d));
  ws.sendRaw(JSON.stringify({ type: "ping", ref: "after" }));
  const answered = () =>
    ws.frames.filter((f) => f.type === "pong" || f.type === "error").map((f) =>
      f.type === "error" ? `error:${f.code}` : `pong:${"ref" in f ? f.ref : ""}`
    );
  await ws.until(() => answered().length >= 5, "five answers");
  assert.deepEqual(answered(), [
    "pong:pretty",
    "pong:b1",
    "pong:b2",
    "error:bad_frame",
    "pong:after",
  ]);
  await ws.close();
});

Deno.test("e2e http: the WebSocket message limit is in bytes: 40,000 two-byte characters are too long", async () => {
  await using server = await withServer();
  const ws = await WsClient.open(`${server.base.replace("http", "ws")}/ws`);
  ws.sendRaw(JSON.stringify({ type: "hello", username: "é".repeat(40_000) }));
  await ws.until(() => ws.frames.some((f) => f.type === "bye"), "the bye");
  const bye = ws.frames.find((f) => f.type === "bye")!;
  assert.equal(bye.type === "bye" && bye.code, "too_long");
  await ws.close();
});
