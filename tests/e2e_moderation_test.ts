/**
 * Moderation end to end: the real server and the real `chat user` command, with users on
 * TCP JSON, telnet text, WebSocket and REST at once.
 */
import assert from "node:assert/strict";
import { api, JsonClient, LineClient, rawRequest, startServer, WsClient } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function cli(
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "user", ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("chat user: no password on stdin says so; names are found in any case, as at login", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_user_" });
  const data = `${dir}/chat.kv`;
  try {
    const empty = await cli(["add", "Alice", "--data", data]); // stdin is /dev/null
    assert.equal(empty.code, 2);
    assert.match(empty.err, /^chat: no password given: .*--password PW\n$/);
    assert.equal((await cli(["add", "Alice", "--data", data], "alice-password\n")).code, 0);
    const passwd = await cli(["passwd", "alice", "--data", data], "\n");
    assert.match(passwd.err, /no password given/);
    const ok = await cli(["passwd", "ALICE", "--data", data], "new-password\n");
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /new password set for Alice/);
    const admin = await cli(["admin", "alice", "--data", data]);
    assert.match(admin.out, /Alice is an admin/);
    const none = await cli(["del", "nobody", "--data", data]);
    assert.match(none.err, /there is no user nobody: "user list" shows who there is/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("chat user: manages accounts, and refuses clearly while a server holds the data file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_user_" });
  const data = `${dir}/chat.kv`;
  try {
    const add = await cli([
      "add",
      "Root",
      "--admin",
      "--password",
      "root-password",
      "--data",
      data,
    ]);
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /created admin Root/);
    const piped = await cli(["add", "Eve", "--data", data], "eve-password\n");
    assert.equal(piped.code, 0, piped.err);
    const dup = await cli(["add", "root", "--password", "whatever1", "--data", data]);
    assert.equal(dup.code, 2);
    assert.match(dup.err, /the name Root is taken/);
    const short = await cli(["add", "Shorty", "--password", "123", "--data", data]);
    assert.match(short.err, /at least 6 characters/);

    const server = await startServer({ data });
    try {
      const busy = await cli(["add", "Mallory", "--password", "mallory-pw", "--data", data]);
      assert.equal(busy.code, 2);
      assert.match(busy.err, /a chat server \(pid \d+ on .+\) is using .*chat\.kv: stop it first/);
      // The accounts made offline work on the server.
      const root = await JsonClient.connect(server.tcpPort);
      await root.send({ username: "Root", password: "root-password" });
      assert.equal((await root.type("welcome")).admin, true);
      await root.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const list = await cli(["list", "--data", data]);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^Root\tyes\tadmin\t/m);
    assert.match(list.out, /^Eve\tyes\t\t/m);
    assert.doesNotMatch(list.out, /^Root\t.*\tnever\t/m, "Root's last login is recorded");
    assert.equal(
      (await cli(["passwd", "Eve", "--password", "new-password", "--data", data])).code,
      0,
    );
    assert.equal((await cli(["admin", "Eve", "--data", data])).code, 0);
    assert.match((await cli(["list", "--data", data])).out, /^Eve\tyes\tadmin\t/m);
    assert.equal((await cli(["del", "Eve", "--data", data])).code, 0);
    assert.doesNotMatch((await cli(["list", "--data", data])).out, /^Eve/m);
    const missing = await cli(["del", "Nobody", "--data", data]);
    assert.match(missing.err, /there is no user Nobody/);
    assert.match(
      (await cli(["frobnicate", "--data", data])).err,
      /unknown user command "frobnicate"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e moderation: a mute through one wire holds on the others; admin kick, ban and delete act everywhere; non-admins are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_mod_" });
  const data = `${dir}/chat.kv`;
  assert.equal(
    (await cli(["add", "Root", "--admin", "--password", "root-password", "--data", data])).code,
    0,
  );
  const server = await startServer({ data });
  const base = `http://127.0.0.1:${server.httpPort}`;
  const wsBase = base.replace("http", "ws");
  try {
    // The troll on TCP and, as a second device, on WebSocket.
    const troll = await JsonClient.connect(server.tcpPort, {
      username: "Troll",
      password: "troll-password",
    });
    const trollWs = await WsClient.open(`${wsBase}/ws`);
    trollWs.send({ username: "Troll", password: "troll-password" });
    await trollWs.type("welcome");
    const trollToken = (await api(base, "POST", "/api/v1/session", undefined, {
      username: "Troll",
      password: "troll-password",
    })).json.token;

    // Three reporters, three wires: telnet text (/ban, as in the seeds), REST, WebSocket.
    const a = await LineClient.connect(server.tcpPort);
    await a.send("Alice");
    await a.line("Logged in as Alice");
    const bToken = (await api(base, "POST", "/api/v1/session", undefined, {
      username: "Bob",
      password: "bob-password",
    })).json.token;
    const c = await WsClient.open(`${wsBase}/ws`);
    c.send({ username: "Carol" });
    await c.type("welcome");
    await a.send("/ban Troll");
    await a.line("You reported Troll (1 of 3)");
    // Exactly what `curl -X POST` sends: no body and no Content-Length.
    const raw = await rawRequest(
      server.httpPort,
      `POST /api/v1/users/Troll/report HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${bToken}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(raw, /^HTTP\/1\.1 200/, raw);
    c.send({ type: "report", username: "Troll", reason: "insults" });
    await c.type("system", (f) => /Troll is now muted until/.test(f.message));

    await troll.send({ type: "message", message: "tcp" });
    assert.equal((await troll.type("error")).code, "muted");
    trollWs.send({ type: "message", message: "ws" });
    assert.equal((await trollWs.type("error")).code, "muted");
    const rest = await api(base, "POST", "/send", trollToken, { message: "rest" });
    assert.equal(rest.status, 403);
    assert.equal(rest.json.error.code, "muted");
    const reconnect = await JsonClient.connect(server.tcpPort, {
      username: "Troll",
      password: "troll-password",
    });
    await reconnect.send({ type: "private", target_username: "Alice", message: "dm" });
    assert.equal((await reconnect.type("error")).code, "muted", "a reconnect does not lift it");
    await reconnect.close();

    // Non-admins are refused every admin command: 403 over REST, an error frame on TCP.
    const adminRoutes: Array<[string, string, unknown?]> = [
      ["POST", "/api/v1/admin/users", { username: "Zed", password: "zed-password" }],
      ["POST", "/api/v1/admin/users/Troll/kick", {}],
      ["POST", "/api/v1/admin/users/Troll/mute", { minutes: 5 }],
      ["DELETE", "/api/v1/admin/users/Troll/mute"],
      ["POST", "/api/v1/admin/users/Troll/ban", {}],
      ["DELETE", "/api/v1/admin/users/Troll/ban"],
      ["GET", "/api/v1/admin/connections"],
      ["GET", "/api/v1/admin/reports"],
      ["GET", "/api/v1/admin/audit"],
    ];
    for (const [method, path, body] of adminRoutes) {
      const r = await api(base, method, path, bToken, body);
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.json.error.code, "forbidden");
    }
    c.send({ type: "kick", username: "Troll" });
    assert.equal((await c.type("error")).code, "forbidden");

    // The admin: REST token, plus a TCP connection.
    const rootToken =
      (await api(base, "POST", "/connect", undefined, { login: "Root", password: "root-password" }))
        .json.token;
    const root = await JsonClient.connect(server.tcpPort, {
      username: "Root",
      password: "root-password",
    });
    assert.equal(
      (await api(base, "DELETE", "/api/v1/admin/users/Troll/mute", rootToken)).status,
      200,
    );
    await troll.send({ type: "message", message: "I will behave", ref: "ok" });
    const ack = await troll.type("ack", (f) => f.ref === "ok");

    // Delete over TCP: the text user and the WebSocket user see it go.
    await root.send({ type: "delete_message", id: ack.id });
    await a.line(new RegExp(`Message ${ack.seq} in #general was deleted by Root`));
    assert.equal((await c.type("message_deleted")).id, ack.id);

    // Kick over REST: both of the troll's connections get a goodbye and are closed.
    const kicked = await api(base, "POST", "/api/v1/admin/users/Troll/kick", rootToken, {
      reason: "timeout",
    });
    assert.equal(kicked.status, 200);
    assert.match(kicked.json.message, /Kicked Troll \(2 connections\)/);
    assert.equal((await troll.type("bye")).reason, "You were kicked by Root: timeout");
    await troll.closedByServer();
    await trollWs.type("bye");
    await trollWs.until(() => trollWs.closed, "the websocket to close");

    // Ban from telnet text: no login on any wire, and the old token is dead.
    const rootText = await LineClient.connect(server.tcpPort);
    await rootText.send("Root");
    await rootText.send("root-password");
    await rootText.line("Logged in as Root (admin)");
    await rootText.send("/admin ban Troll spamming");
    await rootText.line("Troll is banned for good");
    const banned = await JsonClient.connect(server.tcpPort);
    await banned.send({ username: "Troll", password: "troll-password" });
    const refusal = await banned.type("error");
    assert.equal(refusal.code, "banned");
    assert.match(refusal.message, /Troll is banned for good: spamming/);
    assert.equal(
      (await api(base, "POST", "/connect", undefined, {
        login: "Troll",
        password: "troll-password",
      })).status,
      403,
    );
    assert.equal((await api(base, "GET", "/status", trollToken)).status, 401);

    // The audit trail has it all, with who and why.
    const audit = await api(base, "GET", "/api/v1/admin/audit", rootToken);
    const rows = audit.json.entries.map((e: { actor: string; action: string; target: string }) =>
      `${e.actor} ${e.action} ${e.target}`
    );
    assert.deepEqual(rows, [
      "Root ban Troll",
      "Root kick Troll",
      "Root delete Troll",
      "Root unmute Troll",
      "system mute Troll",
      "Carol report Troll",
      "Bob report Troll",
      "Alice report Troll",
    ]);
    const conns = await api(base, "GET", "/api/v1/admin/connections", rootToken);
    const transports = new Set(
      conns.json.connections.map((x: { transport: string }) => x.transport),
    );
    assert.ok(
      transports.has("tcp-text") && transports.has("tcp-json") && transports.has("ws"),
      [...transports].join(),
    );

    await Promise.all([
      a.close(),
      c.close(),
      root.close(),
      rootText.close(),
      banned.close(),
      troll.close(),
      trollWs.close(),
    ]);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("e2e quota: 20 messages an hour into rooms across TCP and REST; the 21st is refused with when to retry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat_quota_" });
  const server = await startServer({ data: `${dir}/chat.kv` });
  const base = `http://127.0.0.1:${server.httpPort}`;
  try {
    const tcp = await JsonClient.connect(server.tcpPort, {
      username: "Chatty",
      password: "chatty-password",
    });
    const token = (await api(base, "POST", "/connect", undefined, {
      login: "Chatty",
      password: "chatty-password",
    })).json.token;
    for (let i = 1; i <= 15; i++) await tcp.send({ type: "message", message: `tcp ${i}` });
    await tcp.type("ack", (f) => f.seq === 15);
    for (let i = 1; i <= 5; i++) {
      assert.equal((await api(base, "POST", "/send", token, { message: `rest ${i}` })).status, 201);
    }
    await tcp.send({ type: "message", message: "21st" });
    const err = await tcp.type("error");
    assert.equal(err.code, "rate_limited");
    assert.match(
      err.message,
      /You can send 20 messages to rooms per 1h; the next one is accepted at \d{4}-\d\d-\d\dT/,
    );
    const r = await api(base, "POST", "/send", token, { message: "rest 6" });
    assert.equal(r.status, 429);
    const status = await api(base, "GET", "/api/v1/session", token);
    assert.equal(status.json.quota.remaining, 0);
    assert.equal(status.json.quota.limit, 20);
    // Private messages are not held back by the room quota.
    await JsonClient.connect(server.tcpPort, { username: "Friend" }).then((f) => f.close());
    assert.equal(
      (await api(base, "POST", "/send_to", token, { user_login: "Friend", message: "still ok" }))
        .status,
      201,
    );
    await tcp.close();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
