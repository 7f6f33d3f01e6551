/**
 * Cluster mode, for real: a real nats-server and three `main.ts serve --cluster` processes on
 * one KV file, driven over TCP JSON, WebSocket and REST at once.
 */
import assert from "node:assert/strict";
import type { ServerFrame } from "../protocol/frames.ts";
import { BEAT_MS, NODE_TIMEOUT_MS } from "../server/cluster/broker.ts";
import {
  addRootAdmin,
  api,
  JsonClient,
  type ServerProcess,
  startServer,
  tokenFor,
  WAIT_MS,
  WsClient,
} from "./_helpers.ts";
import { NatsServer, natsServerInstalled } from "./_nats.ts";

const ignore = !natsServerInstalled();
if (ignore) {
  console.warn("cluster tests skipped: nats-server is not installed (apt-get install nats-server)");
}

/** NATS and `count` nodes on one fresh data file (with an admin Root / root-password). */
async function cluster(count: number, args: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "chat_cluster_" });
  const data = `${dir}/chat.kv`;
  await addRootAdmin(data);
  const nats = await NatsServer.start();
  const nodes: ServerProcess[] = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        startServer({ data, args: ["--cluster", nats.url, "--node", `n${i + 1}`, ...args] }),
    ),
  );
  // Every node has heard every other one (their first beats) before the test starts.
  await waitFor(
    async () => {
      for (const n of nodes) {
        const h = await api(`http://127.0.0.1:${n.httpPort}`, "GET", "/healthz");
        if ((h.json.cluster?.nodes?.length ?? 0) < count - 1) return false;
      }
      return true;
    },
    BEAT_MS * 3,
    "every node to hear the others",
  );
  return {
    nats,
    nodes,
    data,
    base: (i: number) => `http://127.0.0.1:${nodes[i]!.httpPort}`,
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((n) => n.stop().catch(() => 0)));
      await nats.down();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function waitFor(test: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function wsUser(port: number, username: string): Promise<WsClient> {
  const ws = await WsClient.open(`ws://127.0.0.1:${port}/ws`);
  ws.send({ username });
  await ws.type("welcome");
  return ws;
}

type Msg = Extract<ServerFrame, { type: "message" }>;
const inRoom = (c: { frames: ServerFrame[] }, room: string) =>
  c.frames.filter((f): f is Msg => f.type === "message" && f.room === room);

/** Every message of the room exactly once, numbered 1..n with no gap, in order. */
function assertInOrder(c: { frames: ServerFrame[] }, room: string, n: number, who: string) {
  const seqs = inRoom(c, room).map((m) => m.seq);
  assert.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1), `${who} saw ${seqs}`);
}

Deno.test({
  name:
    "cluster: three nodes are one chat over TCP, WebSocket and REST: order, privates, presence, scheduled, kick",
  ignore,
  async fn() {
    await using c = await cluster(3);
    const [n1, n2, n3] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const bob = await wsUser(n2!.httpPort, "bob");
    const carol = await tokenFor(c.base(2), "carol");

    // A room made on node 1 is found on nodes 2 and 3.
    await alice.send({ type: "join", room: "books" });
    await alice.type("joined", (f) => f.room === "books");
    bob.send({ type: "join", room: "books" });
    await bob.type("joined", (f) => f.room === "books" && f.created === false);
    const joined = await api(c.base(2), "POST", "/api/v1/rooms", carol, { name: "books" });
    assert.equal(joined.status, 200, JSON.stringify(joined.json));

    // Three nodes post into one room at once: one numbering, seen in order everywhere.
    // Under the default quota of 20 messages a window for each sender.
    const each = 15;
    const rest = (async () => {
      for (let i = 0; i < 10; i++) {
        const r = await api(c.base(2), "POST", "/api/v1/rooms/books/messages", carol, {
          message: `carol ${i}`,
        });
        assert.equal(r.status, 201, JSON.stringify(r.json));
      }
    })();
    for (let i = 0; i < each; i++) {
      await alice.send({ type: "message", room: "books", message: `alice ${i}` });
      bob.send({ type: "message", room: "books", message: `bob ${i}` });
    }
    await rest;
    const total = 2 * each + 10;
    await alice.until(() => inRoom(alice, "books").length >= total, `${total} messages at alice`);
    await bob.until(() => inRoom(bob, "books").length >= total, `${total} messages at bob`);
    assertInOrder(alice, "books", total, "alice (node 1)");
    assertInOrder(bob, "books", total, "bob (node 2)");
    const history = await api(c.base(2), "GET", "/api/v1/rooms/books/messages?limit=100", carol);
    assert.equal(history.json.messages.length, total);
    // Every node's last page has what every node wrote.
    const ids = (page: { json: { messages: Array<{ id: string }> } }) =>
      page.json.messages.map((m) => m.id);
    for (let i = 0; i < 3; i++) {
      const last = await api(c.base(i), "GET", "/api/v1/rooms/books/messages?limit=20", carol);
      assert.deepEqual(ids(last), ids(history).slice(-20), `the last page on node ${i + 1}`);
    }
    // A message written on node 2 only is on node 1's last page, read just before and after (a
    // lone server keeps that page in memory, following only its own writes: not a cluster node).
    bob.send({ type: "message", room: "books", message: "bob, last", ref: "last" });
    await bob.type("ack", (f) => f.ref === "last");
    await alice.until(() => inRoom(alice, "books").length >= total + 1, "bob's last message");
    const after = await api(c.base(0), "GET", "/api/v1/rooms/books/messages?limit=20", carol);
    assert.equal(after.json.messages.at(-1)?.message, "bob, last");

    // A private message across nodes; the sender is told the recipient is online (elsewhere).
    bob.send({ type: "private", target_username: "alice", message: "psst", ref: "p1" });
    const ack = await bob.type("ack", (f) => f.ref === "p1");
    assert.equal(ack.offline, undefined);
    await alice.type("private", (f) => f.message === "psst" && f.from_username === "bob");

    // Who is online counts users on every node.
    await alice.send({ type: "users", ref: "u1" });
    const users = await alice.type("users_list");
    const online = new Map(users.all.map((u) => [u.username, u.online]));
    assert.equal(online.get("bob"), true, JSON.stringify(users.all));

    // Away is known on every node: alice (here) goes away; bob (on another node) is told.
    await alice.send({ type: "away", message: "brb" });
    await alice.type("system", (f) => /You are away/.test(f.message));
    // The change is pushed to the other node's users as it happens.
    const notice = await bob.type("system", (f) => f.event === "away" && f.username === "alice");
    assert.equal(notice.away, "brb");
    let told: string | undefined;
    for (let i = 0; i < 50 && told === undefined; i++) {
      bob.send({
        type: "private",
        target_username: "alice",
        message: `there? ${i}`,
        ref: `aw${i}`,
      });
      told = (await bob.type("ack", (f) => f.ref === `aw${i}`)).away;
      if (told === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(told, "brb", "the away message reached the other node");
    await alice.send({ type: "away" });

    // A scheduled message: every node runs the scheduler; it is delivered once.
    await alice.send({
      type: "schedule",
      message: "later, once",
      room: "books",
      at: new Date(Date.now() + 1000).toISOString(),
    });
    await bob.type("message", (f) => f.message === "later, once");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      bob.frames.filter((f) => f.type === "message" && f.message === "later, once").length,
      1,
    );

    // An admin on node 3 kicks a user on node 2.
    const root = await JsonClient.connect(n3!.tcpPort, {
      username: "Root",
      password: "root-password",
    });
    await root.send({ type: "kick", username: "bob", reason: "testing" });
    await bob.type("bye");
    await bob.until(() => bob.closed, "bob's socket to close");
    await alice.close();
    await root.close();
  },
});

Deno.test({
  name:
    "cluster: a node killed with -9: its users are offline on the others within the node timeout",
  ignore,
  async fn() {
    await using c = await cluster(3);
    const [n1, n2, n3] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const dave = await JsonClient.connect(n2!.tcpPort, { username: "dave" });
    await alice.type("system", (f) => f.message.includes("dave joined"));
    const killedAt = Date.now();
    await n2!.stop("SIGKILL");
    await dave.closedByServer();
    // Bounded by the beats: three missed (NODE_TIMEOUT_MS) and one more to notice.
    await waitFor(
      () =>
        Promise.resolve(
          alice.has((f) => f.type === "system" && f.message === "dave left the chat"),
        ),
      NODE_TIMEOUT_MS + BEAT_MS + WAIT_MS,
      "alice to hear dave left",
    );
    assert.ok(Date.now() - killedAt <= NODE_TIMEOUT_MS + 2 * BEAT_MS + 1000);
    await alice.send({ type: "users", username: "dave" });
    const list = await alice.type("users_list");
    assert.equal(list.all[0]?.online, false);

    // dave comes back through another node and gets what was said meanwhile, once.
    await alice.send({ type: "message", room: "general", message: "while you were away" });
    await alice.type("ack");
    const again = await JsonClient.connect(n3!.tcpPort, { username: "dave" });
    await again.frame(
      (f) => f.type === "history" && f.messages.some((m) => m.message === "while you were away"),
      "dave's replay",
    );
    await alice.close();
    await again.close();
  },
});

Deno.test({
  name:
    "cluster: NATS stops and comes back: nodes serve their own users, say so, and catch up from KV",
  ignore,
  async fn() {
    await using c = await cluster(2);
    const [n1, n2] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const bob = await JsonClient.connect(n2!.tcpPort, { username: "bob" });
    await alice.send({ type: "message", room: "general", message: "before" });
    await bob.type("message", (f) => f.message === "before");

    await c.nats.down();
    await waitFor(
      async () => {
        const h = await api(c.base(0), "GET", "/healthz");
        return h.json.status === "degraded" && h.json.cluster.nats === "disconnected";
      },
      WAIT_MS,
      "node 1 to report NATS gone",
    );
    // Alice's node stores and acknowledges her messages meanwhile.
    for (let i = 0; i < 5; i++) {
      await alice.send({ type: "message", room: "general", message: `during ${i}`, ref: `d${i}` });
      await alice.type("ack", (f) => f.ref === `d${i}`);
    }
    await c.nats.up();
    // Bob's node reads what it missed from the store once NATS is back.
    await waitFor(
      () => Promise.resolve(bob.has((f) => f.type === "message" && f.message === "during 4")),
      WAIT_MS * 2,
      "bob to catch up",
    );
    await waitFor(
      async () => {
        const h = await api(c.base(1), "GET", "/healthz");
        return h.json.status === "ok";
      },
      WAIT_MS,
      "node 2 to report NATS back",
    );
    bob.send({ type: "message", room: "general", message: "after" });
    // Both see it (bob's own copy may come after alice's: no order between two readers).
    await alice.type("message", (f) => f.message === "after");
    await bob.type("message", (f) => f.message === "after");
    const general = (x: JsonClient) => inRoom(x, "general").map((m) => m.seq);
    assert.deepEqual(general(bob), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(general(alice), [1, 2, 3, 4, 5, 6, 7]);
    await alice.close();
    await bob.close();
  },
});

Deno.test({
  name: "cluster: quotas, reports and failed logins count across nodes",
  ignore,
  async fn() {
    await using c = await cluster(2);
    const [n1, n2] = c.nodes;
    // One user on two nodes: the default quota (20 room messages a window) is theirs, not a node's.
    const home = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const away = await JsonClient.connect(n2!.tcpPort, { username: "alice" });
    for (let i = 0; i < 15; i++) {
      await home.send({ type: "message", room: "general", message: `home ${i}`, ref: `h${i}` });
      await home.type("ack", (f) => f.ref === `h${i}`);
    }
    await new Promise((r) => setTimeout(r, 300)); // the sends reach node 2
    let refused = 0;
    for (let i = 0; i < 10; i++) {
      await away.send({ type: "message", room: "general", message: `away ${i}`, ref: `a${i}` });
      const answer = await away.frame(
        (f) => (f.type === "ack" || f.type === "error") && "ref" in f && f.ref === `a${i}`,
      );
      if (answer.type === "error") {
        assert.equal(answer.code, "rate_limited");
        refused++;
      }
    }
    assert.equal(refused, 5);

    // Three reports filed on two nodes mute the target on a third connection's node.
    const mallory = await JsonClient.connect(n1!.tcpPort, { username: "mallory" });
    const reporters = await Promise.all(
      ["r1", "r2", "r3"].map((name, i) =>
        JsonClient.connect((i === 0 ? n1 : n2)!.tcpPort, { username: name })
      ),
    );
    for (const [i, r] of reporters.entries()) {
      await r.send({ type: "report", username: "mallory", ref: `r${i}` });
      await r.type("system", (f) => f.message.includes("mallory"));
      await new Promise((res) => setTimeout(res, 200));
    }
    await mallory.send({ type: "message", room: "general", message: "spam", ref: "m1" });
    const answer = await mallory.type("error", (f) => f.ref === "m1");
    assert.equal(answer.code, "muted");

    // Password guesses on one node slow down guesses on the other.
    await tokenFor(c.base(0), "zed");
    for (let i = 0; i < 3; i++) {
      const r = await api(c.base(0), "POST", "/api/v1/session", undefined, {
        username: "zed",
        password: "wrong-password",
      });
      assert.equal(r.status, 401);
    }
    await new Promise((r) => setTimeout(r, 300));
    // Three free tries were spent on node 1: node 2 makes the fourth wait.
    const guessed = await api(c.base(1), "POST", "/api/v1/session", undefined, {
      username: "zed",
      password: "wrong-password",
    });
    assert.equal(guessed.status, 429, JSON.stringify(guessed.json));
    for (const x of [home, away, mallory, ...reporters]) await x.close();
  },
});

Deno.test({
  name: "cluster: a private session between users on two nodes: asked, accepted, talked in, ended",
  ignore,
  async fn() {
    await using c = await cluster(2);
    const [n1, n2] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const bob = await JsonClient.connect(n2!.tcpPort, { username: "bob" });
    await alice.type("system", (f) => f.message.includes("bob joined"));
    await alice.send({ type: "session_request", target_username: "bob" });
    await bob.type("session_request", (f) => f.from_username === "alice");
    await bob.send({ type: "session_response", target_username: "alice", accepted: true });
    const started = await alice.type("session_accepted");
    assert.equal(started.mode.kind, "session");
    await bob.type("session_accepted");
    // In the session, a plain message goes to the other one.
    await alice.send({ type: "message", message: "just us" });
    await bob.frame((f) => f.type === "private" && f.message === "just us", "the session message");
    await bob.send({ type: "session_end" });
    const ended = await alice.type("session_ended");
    assert.equal(ended.mode.kind, "room");
    await alice.close();
    await bob.close();
  },
});

Deno.test({
  name: "cluster: groups, files, contacts, bans and one account's devices across nodes",
  ignore,
  async fn() {
    await using c = await cluster(3);
    const [n1, n2, n3] = c.nodes;
    // One account on two nodes: both devices get what is sent to the account.
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    const alicePhone = await wsUser(n2!.httpPort, "alice");
    const bob = await JsonClient.connect(n3!.tcpPort, { username: "bob" });
    await bob.send({ type: "private", target_username: "alice", message: "to both devices" });
    await alice.type("private", (f) => f.message === "to both devices");
    await alicePhone.type("private", (f) => f.message === "to both devices");
    // A private message makes contacts, seen from any node.
    alicePhone.send({ type: "contacts" });
    const contacts = await alicePhone.type("contacts_list");
    assert.deepEqual(contacts.contacts.map((x) => x.username), ["bob"]);

    // A private group made on node 1; the invitee on node 3 accepts there.
    await alice.send({ type: "create_group", room: "secret" });
    await alice.type("joined", (f) => f.room === "secret");
    await alice.send({ type: "invite", room: "secret", username: "bob" });
    await bob.type("invite", (f) => f.room === "secret");
    await bob.send({ type: "invite_response", room: "secret", accepted: true });
    await bob.type("joined", (f) => f.room === "secret");
    await bob.send({ type: "message", room: "secret", message: "in the group" });
    await alice.type("message", (f) => f.room === "secret" && f.message === "in the group");
    await alicePhone.type("message", (f) => f.room === "secret" && f.message === "in the group");

    // A file sent through node 2 is announced everywhere and downloads from node 3.
    const token = await tokenFor(c.base(1), "carol");
    await api(c.base(1), "POST", "/api/v1/rooms", token, { name: "general" });
    const up = await fetch(`${c.base(1)}/api/v1/files?name=notes.txt`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: "file contents",
    });
    assert.equal(up.status, 201, await up.clone().text());
    const announced = await bob.type("message", (f) => f.file?.name === "notes.txt");
    const got = await fetch(`${c.base(2)}/api/v1/files/${announced.file!.id}`, {
      headers: { authorization: `Bearer ${await tokenFor(c.base(2), "dora")}` },
    });
    assert.equal(await got.text(), "file contents");

    // An admin on node 1 bans carol, whose token came from node 2: refused on node 3 too.
    const root = await JsonClient.connect(n1!.tcpPort, {
      username: "Root",
      password: "root-password",
    });
    await root.send({ type: "ban", username: "carol", reason: "testing" });
    await root.type("system", (f) => f.message.includes("carol"));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await api(c.base(2), "POST", "/api/v1/session", undefined, {
      username: "carol",
      password: "carol-password",
    });
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    const stale = await api(c.base(2), "GET", "/api/v1/unread", token);
    assert.equal(stale.status, 401);
    for (const x of [alice, bob, root]) await x.close();
    await alicePhone.close();
  },
});

Deno.test({
  name:
    "cluster: a message written on one node is found by id on another: replied to, its replies listed, deleted",
  ignore,
  async fn() {
    await using c = await cluster(2);
    const [n1, n2] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    await alice.send({ type: "message", message: "question on node 1", ref: "q" });
    const q = await alice.type("ack", (f) => f.ref === "q");

    // Node 2 reads node 1's index rows: the reply carries what it answers.
    const bob = await JsonClient.connect(n2!.tcpPort, { username: "bob" });
    await bob.send({ type: "message", message: "answer on node 2", reply_to: q.id, ref: "a" });
    const a = await bob.type("ack", (f) => f.ref === "a");
    const seen = await alice.type("message", (m) => m.id === a.id);
    assert.deepEqual(seen.reply_to, {
      id: q.id,
      from_username: "alice",
      message: "question on node 1",
    });
    await bob.send({ type: "replies", id: q.id, ref: "r" });
    const replies = await bob.type("replies", (f) => f.ref === "r");
    assert.deepEqual(replies.messages.map((m) => m.id), [a.id]);

    // An admin on node 2 deletes node 1's message by id; node 1's reader sees it go.
    const root = await JsonClient.connect(n2!.tcpPort, {
      username: "Root",
      password: "root-password",
    });
    await root.send({ type: "delete_message", id: q.id, ref: "d" });
    assert.equal((await alice.type("message_deleted")).id, q.id);
    await bob.send({ type: "replies", id: q.id, ref: "gone" });
    assert.equal((await bob.type("error", (f) => f.ref === "gone")).code, "no_such_message");
    await Promise.all([alice.close(), bob.close(), root.close()]);
  },
});

Deno.test({
  name: "cluster: an idle guest forgotten by the node it was on is forgotten by the others too",
  ignore,
  async fn() {
    await using c = await cluster(2, ["--guest-grace", "3s"]);
    const [n1, n2] = c.nodes;
    const watcher = await JsonClient.connect(n2!.tcpPort, { username: "watcher" });
    const drifter = await JsonClient.connect(n1!.tcpPort, { username: "drifter" });
    await watcher.type("system", (f) => f.event === "online" && f.username === "drifter");
    await drifter.close();
    await watcher.type("system", (f) => f.event === "offline" && f.username === "drifter");
    const listed = async (i: number) => {
      const client = i === 1
        ? watcher
        : await JsonClient.connect(n1!.tcpPort, { username: "peek" });
      const ref = `u${Math.random()}`;
      await client.send({ type: "users", ref });
      const names = (await client.type("users_list", (f) => f.ref === ref)).all.map((u) =>
        u.username
      );
      if (client !== watcher) await client.close();
      return names;
    };
    assert.ok((await listed(1)).includes("drifter"), "known on the other node while not idle");
    await waitFor(
      async () => !(await listed(1)).includes("drifter"),
      WAIT_MS,
      "the other node to forget the guest",
    );
    assert.ok(!(await listed(0)).includes("drifter"), "forgotten on its own node");
    await watcher.close();
  },
});

Deno.test({
  name: "cluster: a node started after a user went away learns it from the others",
  ignore,
  async fn() {
    await using c = await cluster(1);
    const [n1] = c.nodes;
    const alice = await JsonClient.connect(n1!.tcpPort, { username: "alice" });
    await alice.send({ type: "away", message: "lunch" });
    await alice.type("system", (f) => /You are away/.test(f.message));
    // A second node joins later, on the same data and NATS: it missed the change.
    const late = await startServer({
      data: c.data,
      args: ["--cluster", c.nats.url, "--node", "n2"],
    });
    c.nodes.push(late);
    const bob = await JsonClient.connect(late.tcpPort, { username: "bob" });
    let entry: { online: boolean; away?: string } | undefined;
    await waitFor(
      async () => {
        const ref = `u${Math.random()}`;
        await bob.send({ type: "users", ref });
        const list = await bob.type("users_list", (f) => f.ref === ref);
        entry = list.all.find((u) => u.username === "alice");
        return entry?.online === true && entry.away !== undefined;
      },
      BEAT_MS * 3,
      "the late node to know alice is away",
    );
    assert.equal(entry?.away, "lunch");
    await Promise.all([alice.close(), bob.close()]);
  },
});
