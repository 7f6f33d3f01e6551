/**
 * The IRC listener: raw sockets for each command and numeric, and a real IRC client from
 * Debian (`ii`, which speaks IRC through files) chatting with a JSON-lines user.
 */
import assert from "node:assert/strict";
import type { MessageFrame } from "../protocol/frames.ts";
import { Labels } from "../server/transport/irc/labels.ts";
import { parseIrc, plainText } from "../server/transport/irc/lines.ts";
import { JsonClient, WAIT_MS, WsClient } from "./_helpers.ts";
import { Irc, withIrcServer } from "./_irc.ts";
import { Terminal, tmuxInstalled } from "./_tmux.ts";

Deno.test("parseIrc(): tags, prefix, params and the trailing parameter", () => {
  assert.deepEqual(parseIrc("@time=x;msgid=1 :nick!u@h PRIVMSG #room :hello there"), {
    tags: { time: "x", msgid: "1" },
    command: "PRIVMSG",
    params: ["#room", "hello there"],
  });
  assert.deepEqual(parseIrc("join #a,#b"), { tags: {}, command: "JOIN", params: ["#a,#b"] });
  assert.equal(parseIrc("   "), null);
});

Deno.test("plainText(): IRC's formatting codes go, the text and other characters stay", () => {
  const table: Array<[string, string]> = [
    ["plain", "plain"],
    [
      "\x02bold\x02 \x1ditalic\x1d \x1funder\x1f \x1estrike\x1e \x11mono\x11 \x16rev\x16\x0f",
      "bold italic under strike mono rev",
    ],
    ["\x034red\x03 \x0304,01on black\x03 \x03,5odd", "red on black ,5odd"],
    ["\x0312,15two digits", "two digits"],
    ["\x04FF8800hex\x04 \x04ff8800,000000both", "hex both"],
    ["\x01ACTION waves\x01", "\x01ACTION waves\x01"],
    ["tab\there, 3 apples, 🙂", "tab\there, 3 apples, 🙂"],
  ];
  for (const [input, want] of table) assert.equal(plainText(input), want, JSON.stringify(input));
  assert.equal(plainText(undefined), undefined);
});

Deno.test("Labels: an answer waits for each message's ack or refusal and echo; too many waiting go out as they are", async () => {
  const sent: string[] = [];
  const labels = new Labels("chat", (text) => sent.push(text));
  const echo = (to: string, message: string): MessageFrame => ({
    type: "private",
    id: "x",
    seq: 1,
    from_username: "me",
    to_username: to,
    message,
    timestamp: "t",
  });
  const line = (text: string) => `:chat ${text}\r\n`;
  // Two messages, one refused while handled, one acked later; its echo comes before its ack.
  await labels.handle("a", () => {
    labels.sent("r1", "@bob\0hi", true);
    labels.sent("r2", "@nobody\0hi", true);
    labels.answered("r2", true, () => labels.collect(line("401 me nobody :no")));
    return Promise.resolve();
  });
  assert.deepEqual(sent, [], "waits for bob's message");
  assert.equal(labels.echo(echo("carol", "hi"), () => "never"), false, "not a message it sent");
  assert.equal(labels.echo(echo("Bob", "HI"), () => line("PRIVMSG bob :HI")), true);
  assert.deepEqual(sent, [], "still waits for the ack");
  labels.answered("r1", false, () => labels.collect(line("301 me bob :away")));
  assert.deepEqual(sent, [
    "@label=a :chat BATCH +l1 labeled-response\r\n" +
    "@batch=l1 :chat 401 me nobody :no\r\n" +
    "@batch=l1 :chat PRIVMSG bob :HI\r\n" +
    "@batch=l1 :chat 301 me bob :away\r\n" +
    ":chat BATCH -l1\r\n",
  ]);
  // Without echo (no echo-message) the ack alone completes it: nothing said, an ACK.
  sent.length = 0;
  await labels.handle("b", () => (labels.sent("r3", "@bob\0yo", false), Promise.resolve()));
  labels.answered("r3", false, () => {});
  assert.deepEqual(sent, ["@label=b :chat ACK\r\n"]);
  // Acks that never come: past 64 waiting, the oldest goes out with what it has.
  sent.length = 0;
  for (let i = 0; i < 65; i++) {
    await labels.handle(
      `w${i}`,
      () => (labels.sent(`q${i}`, "@bob\0lost", false), Promise.resolve()),
    );
  }
  assert.deepEqual(sent, ["@label=w0 :chat ACK\r\n"]);
  // An ack nobody waits for goes to the wire.
  assert.equal(labels.collect("x\r\n"), false);
});

Deno.test("irc: registration numerics, an honest ISUPPORT, MOTD, and commands before it refused", async () => {
  await withIrcServer(async (s) => {
    const c = await Irc.connect(s.ircPort);
    await c.send("JOIN #x");
    await c.line(/ 451 \* :You have not registered/);
    await c.send("NICK alice", "USER alice 0 * :Alice");
    for (const code of ["001", "002", "003", "004"]) await c.line(new RegExp(` ${code} alice `));
    const isupport = await c.line(/ 005 alice /);
    assert.match(isupport, /CHANTYPES=# .*NICKLEN=32 CASEMAPPING=ascii/);
    await c.line(/ 375 alice .*\n?|:- Hello from the test/);
    await c.line(/ 376 alice /);
    // The account's rooms are its channels.
    await c.line(/^:alice!alice@chat JOIN #general$/);
    await c.line(/ 366 alice #general /);
    await c.send("PING :abc");
    await c.line(/ PONG chat :abc$/);
    await c.send("FROB");
    await c.line(/ 421 alice FROB :Unknown command/);
    await c.send("TOPIC #general", "MODE #general", "MODE alice");
    await c.line(/ 331 alice #general /);
    await c.line(/ 324 alice #general \+nt/);
    await c.line(/ 221 alice \+i/);
    await c.send("QUIT :done");
    await c.line(/^ERROR :Closing link: done/);
    c.close();
  }, ["--motd", "Hello from the test"]);
});

Deno.test("irc: channels and private messages with a JSON user; errors as numerics", async () => {
  await withIrcServer(async (s) => {
    const json = await JsonClient.connect(s.tcpPort, { username: "bob" });
    await json.send({ type: "join", room: "books" });
    await json.type("joined");
    await json.send({ type: "message", room: "books", message: "said before alice came" });
    await json.type("ack");

    const alice = await Irc.withCaps(s.ircPort, "alice", "server-time");
    await alice.send("JOIN #books");
    await alice.line(/^:alice!alice@chat JOIN #books$/);
    // What was said before, with its time.
    await alice.line(/^@time=\S+ :bob!bob@chat PRIVMSG #books :said before alice came$/);
    await alice.line(/ 353 alice = #books :.*\bbob\b/);
    await alice.line(/ 366 alice #books /);
    // bob sees alice join, the IRC way round too.
    await json.type("system", (f) => f.message === "alice joined #books");

    await alice.send("PRIVMSG #books :hello from irssi-land");
    assert.equal(
      (await json.type("message", (m) => m.message === "hello from irssi-land")).from_username,
      "alice",
    );
    await json.send({ type: "message", room: "books", message: "hi alice" });
    await alice.line(/:bob!bob@chat PRIVMSG #books :hi alice$/);
    // Without echo-message, alice's own line does not come back.
    assert.ok(!alice.lines.some((l) => l.includes("PRIVMSG #books :hello from irssi-land")));

    await alice.send("PRIVMSG bob :just you");
    assert.equal(
      (await json.type("private", (m) => m.from_username === "alice")).message,
      "just you",
    );
    await json.send({ type: "private", target_username: "alice", message: "got it" });
    await alice.line(/:bob!bob@chat PRIVMSG alice :got it$/);

    await alice.send("JOIN nohash");
    await alice.line(/ 403 alice nohash :Channels here start with #/);
    await alice.send("PRIVMSG #nowhere :x", "PRIVMSG nobody :x", "PART #general2");
    await alice.line(/ 403 alice #nowhere /);
    await alice.line(/ 401 alice nobody /);
    await alice.line(/ 403 alice #general2 /);
    await alice.send("KICK #books bob :no", "KILL bob :no");
    await alice.line(/ 482 alice #books :Only admins can use KICK$/);
    await alice.line(/ 481 alice :Only admins can use KILL$/);
    await alice.send("WHO #books", "LIST", "WHOIS bob");
    await alice.line(/ 352 alice #books \S+ chat chat (alice|bob) H/);
    await alice.line(/ 315 alice #books /);
    await alice.line(/ 322 alice #books 2 /);
    await alice.line(/ 323 alice /);
    await alice.line(/ 311 alice bob bob chat \* :bob/);
    await alice.line(/ 318 alice bob /);

    // bob leaves: a PART on alice's screen.
    await json.send({ type: "leave", room: "books" });
    await alice.line(/^:bob!bob@chat PART #books$/);
    alice.close();
    await json.close();
  });
});

Deno.test("irc: registered names need PASS or SASL PLAIN; echo-message and message-tags", async () => {
  await withIrcServer(async (s) => {
    // Register carol (over JSON), then log in over IRC three ways.
    const reg = await JsonClient.connect(s.tcpPort, { username: "carol" });
    await reg.send({ type: "register", password: "carol-password" });
    await reg.type("system", (f) => /registered/i.test(f.message));
    await reg.close();

    const none = await Irc.connect(s.ircPort);
    await none.send("NICK carol", "USER carol 0 * :c");
    await none.line(/ 464 carol :/);
    await none.line(/^ERROR :Closing link/);
    none.close();

    const pass = await Irc.registered(s.ircPort, "carol", "PASS carol-password");
    assert.ok(pass.lines.some((l) => / 001 carol /.test(l)));
    pass.close();

    const sasl = await Irc.connect(s.ircPort);
    await sasl.send(
      "CAP LS 302",
      "NICK carol",
      "USER carol 0 * :c",
      "CAP REQ :sasl echo-message message-tags",
    );
    await sasl.line(/CAP carol ACK :sasl echo-message message-tags/);
    await sasl.send("AUTHENTICATE PLAIN");
    await sasl.line(/^AUTHENTICATE \+$/);
    await sasl.send(`AUTHENTICATE ${btoa("\0carol\0carol-password")}`);
    await sasl.line(/ 903 carol /);
    await sasl.send("CAP END");
    await sasl.line(/ 001 carol /);
    await sasl.send("PRIVMSG #general :echo me");
    // echo-message: the line comes back, tagged with its id.
    await sasl.line(/^@msgid=\S+ :carol!carol@chat PRIVMSG #general :echo me$/);
    await sasl.send("CAP REQ :no-such-cap");
    await sasl.line(/CAP carol NAK :no-such-cap/);
    sasl.close();
  });
});

Deno.test({
  name:
    "irc: ii (a real IRC client) and a JSON user chat, privately too, and ii gets what it missed",
  ignore: !(await Deno.stat("/usr/bin/ii").then(() => true, () => false)),
  async fn() {
    await withIrcServer(async (s) => {
      const dir = await Deno.makeTempDir({ prefix: "chat_ii_" });
      const host = "127.0.0.1";
      const startIi = () =>
        new Deno.Command("ii", {
          args: ["-s", host, "-p", String(s.ircPort), "-n", "iiuser", "-i", dir, "-k", "IIPASS"],
          env: { IIPASS: "ii-password" },
          stdout: "null",
          stderr: "null",
        }).spawn();
      const read = (path: string) => Deno.readTextFile(`${dir}/${host}/${path}`).catch(() => "");
      const until = async (path: string, pattern: RegExp) => {
        const deadline = Date.now() + WAIT_MS * 2;
        while (!pattern.test(await read(path))) {
          if (Date.now() > deadline) {
            throw new Error(`${path} never matched ${pattern}:\n${await read(path)}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const say = async (path: string, line: string) => {
        const f = await Deno.open(`${dir}/${host}/${path}`, { write: true });
        await f.write(new TextEncoder().encode(line + "\n"));
        f.close();
      };
      // iiuser is a registered account (its password goes as PASS).
      const reg = await JsonClient.connect(s.tcpPort, { username: "iiuser" });
      await reg.send({ type: "register", password: "ii-password" });
      await reg.type("system", (f) => /registered/i.test(f.message));
      await reg.close();

      let ii = startIi();
      try {
        await until("out", /Welcome to the chat/);
        const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
        await say("in", "/j #general");
        await until("#general/out", /iiuser/);
        await say("#general/in", "hello from ii");
        assert.equal(
          (await bob.type("message", (m) => m.message === "hello from ii")).from_username,
          "iiuser",
        );
        await bob.send({ type: "message", room: "general", message: "hello ii, from JSON" });
        await until("#general/out", /<bob> hello ii, from JSON/);
        await bob.send({ type: "private", target_username: "iiuser", message: "a secret" });
        await until("bob/out", /<bob> a secret/);
        await say("bob/in", "secret back");
        assert.equal(
          (await bob.type("private", (m) => m.from_username === "iiuser")).message,
          "secret back",
        );

        // ii goes away; what bob says meanwhile is there when it comes back.
        ii.kill("SIGTERM");
        await ii.status;
        await bob.send({ type: "message", room: "general", message: "while ii was away" });
        await bob.type("ack");
        await Deno.remove(`${dir}/${host}`, { recursive: true }).catch(() => {});
        ii = startIi();
        await until("out", /Welcome to the chat/);
        await until("#general/out", /<bob> while ii was away/);
        await bob.close();
      } finally {
        try {
          ii.kill("SIGTERM");
        } catch { /* gone */ }
        await ii.status;
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});

Deno.test("irc: CHATHISTORY pages a channel by msgid in a batch; labeled-response labels answers", async () => {
  await withIrcServer(async (s) => {
    const json = await JsonClient.connect(s.tcpPort, { username: "bob" });
    for (let i = 1; i <= 30; i++) {
      await json.send({ type: "message", room: "general", message: `line ${i}`, ref: `m${i}` });
      await json.type("ack", (a) => a.ref === `m${i}`);
    }
    const c = await Irc.withCaps(
      s.ircPort,
      "dora",
      "batch server-time message-tags draft/chathistory labeled-response",
    );
    const isupport = c.lines.find((l) => / 005 dora /.test(l))!;
    assert.match(isupport, /CHATHISTORY=100 MSGREFTYPES=msgid/);
    // The last 20 came with the login (--history), in a batch, each with its id.
    await c.line(/BATCH \+\S+ chathistory #general/);
    const first = await c.line(/msgid=(\S+).* PRIVMSG #general :line 11$/);
    const id = first.match(/msgid=([^; ]+)/)![1]!;
    await c.send(`@label=p1 CHATHISTORY BEFORE #general msgid=${id} 5`);
    await c.line(/^@label=p1 :chat BATCH \+(\S+) labeled-response$/);
    await c.line(/BATCH \+\S+ chathistory #general$/);
    for (let i = 6; i <= 10; i++) await c.line(new RegExp(`PRIVMSG #general :line ${i}$`));
    await c.send("CHATHISTORY LATEST #general * 3");
    for (let i = 28; i <= 30; i++) await c.line(new RegExp(`PRIVMSG #general :line ${i}$`));
    await c.send("CHATHISTORY BEFORE #general msgid=unknown 5");
    await c.line(/FAIL CHATHISTORY INVALID_MSGREFID/);
    // A msgid this connection was never shown (line 3's, from before it came; another device's,
    // one from before a reconnect) is any message of the chat.
    await json.send({ type: "history", chat: "general", before: 4, limit: 1, ref: "h3" });
    const third = (await json.type("history", (h) => h.ref === "h3")).messages[0]!;
    assert.equal(third.message, "line 3");
    await c.send(`CHATHISTORY AROUND #general msgid=${third.id} 3`);
    for (let i = 2; i <= 4; i++) await c.line(new RegExp(`PRIVMSG #general :line ${i}$`));
    await c.send(`CHATHISTORY BETWEEN #general msgid=${third.id} msgid=${id} 2`);
    for (let i = 4; i <= 5; i++) await c.line(new RegExp(`PRIVMSG #general :line ${i}$`));
    await c.send(`CHATHISTORY LATEST #general msgid=${third.id} 2`);
    for (let i = 29; i <= 30; i++) await c.line(new RegExp(`PRIVMSG #general :line ${i}$`));
    // A message of another chat is not one of this chat's.
    await c.send(`CHATHISTORY BEFORE bob msgid=${third.id} 5`);
    await c.line(/FAIL CHATHISTORY INVALID_MSGREFID BEFORE bob :There is no message/);
    // A labeled command answered by nothing yet gets an ACK; one answered in one line, the label.
    await c.send("@label=x1 PRIVMSG #general :hi");
    await c.line(/^@label=x1 :chat ACK$/);
    await c.send("@label=x2 TOPIC #general");
    await c.line(/^@label=x2 :chat 331 dora #general /);
    c.close();
    await json.close();
  }, ["--rate-limit", "0"]);
});

Deno.test({
  name:
    "irc: irssi (in tmux) and a WebSocket user, the console's wire: a room, privately, and what irssi missed",
  ignore: !tmuxInstalled() || !(await Deno.stat("/usr/bin/irssi").then(() => true, () => false)),
  async fn() {
    await withIrcServer(async (s) => {
      const home = await Deno.makeTempDir({ prefix: "chat_irssi_" });
      const irssi = () => ["irssi", "-c", "127.0.0.1", "-p", String(s.ircPort), "-n", "alice"];
      try {
        const bob = await WsClient.open(`ws://127.0.0.1:${s.httpPort}/ws`);
        bob.send({ username: "bob" });
        await bob.type("welcome");
        bob.send({ type: "join", room: "books" });
        await bob.type("joined");
        {
          await using term = new Terminal();
          await term.start(irssi(), { HOME: home, TERM: "xterm" });
          await term.waitFor(/Welcome to the chat/);
          await term.type("/join #books", "Enter");
          await term.waitFor(/alice .* has joined #books/);
          await term.type("hello from irssi", "Enter");
          await bob.type("message", (m) => m.message === "hello from irssi");
          bob.send({ type: "message", room: "books", message: "hi alice, from the web" });
          await term.waitFor(/<\s?bob> hi alice, from the web/);
          await term.type("/msg bob just between us", "Enter");
          assert.equal(
            (await bob.type("private", (m) => m.from_username === "alice")).message,
            "just between us",
          );
          bob.send({ type: "private", target_username: "alice", message: "same here" });
          // The answer is in irssi's query window with bob.
          await new Promise((r) => setTimeout(r, 300));
          await term.type("/query bob", "Enter");
          await term.waitFor(/<\s?bob> same here/);
          await term.type("/quit", "Enter");
        }
        // While alice is away, bob talks; irssi back, /join shows it.
        await bob.until(
          () => bob.has((f) => f.type === "system" && /alice left/.test(f.message)),
          "alice to leave",
        );
        bob.send({ type: "message", room: "books", message: "said while you were away" });
        await bob.type("ack");
        await using again = new Terminal();
        await again.start(irssi(), { HOME: home, TERM: "xterm" });
        await again.waitFor(/Welcome to the chat/);
        await again.type("/join #books", "Enter");
        await again.waitFor(/<\s?bob> said while you were away/);
        await again.type("/quit", "Enter");
        await bob.close();
      } finally {
        await Deno.remove(home, { recursive: true });
      }
    });
  },
});
