/**
 * The IRC listener against what IRC's own test suites check (RFC 1459/2812, the Modern IRC
 * documents, IRCv3 capability negotiation): the numerics of registration and of the commands
 * every client sends, line limits, nick collisions, and the same validation as every wire.
 * Raw sockets against the real server.
 */
import assert from "node:assert/strict";
import { api, coreHintsWithCommands, JsonClient, LineClient, tokenFor } from "./_helpers.ts";
import { ircHints } from "../server/transport/irc/replies.ts";
import { Irc, withIrcServer } from "./_irc.ts";

Deno.test("irc: what IRC sends goes through the validating decoder every wire uses", async () => {
  await withIrcServer(async (s) => {
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const alice = await Irc.registered(s.ircPort, "alice");
    await alice.send("PRIVMSG #general :   ", "PRIVMSG #general");
    await alice.line(/ 412 alice :No text to send/);
    await alice.line(/ 412 alice :No text to send/);
    await alice.send("PRIVMSG #general :bell\x07", "PRIVMSG bob :esc\x1b[31m");
    await alice.line(/ 404 alice #general :.*control characters/);
    await alice.line(/ 404 alice bob :.*control characters/);
    await alice.send("JOIN #bad.name");
    await alice.line(/ 403 alice #bad.name :.*not a valid room name/);
    // A NOTICE is never answered, whatever is wrong with it.
    await alice.send("NOTICE #general :", "NOTICE #general :bell\x07", "NOTICE nobody :hi");
    assert.deepEqual(await alice.sync(), []);
    // Nothing of that reached bob: the first message he gets is the next good one.
    await alice.send("PRIVMSG #general :fine");
    const first = await bob.type("message");
    assert.equal(first.message, "fine");
    alice.close();
    await bob.close();
  });
});

Deno.test("irc: registration as RFC 2812 and IRCv3 have it (CAP LS versions, 461, 462, 409)", async () => {
  await withIrcServer(async (s) => {
    // CAP 3.1 clients get names only; "LS 302" shows values.
    const old = await Irc.connect(s.ircPort);
    await old.send("CAP LS");
    const ls = await old.line(/ CAP \* LS :/);
    assert.match(ls, / sasl( |$)/);
    assert.doesNotMatch(ls, /=/);
    await old.send("CAP LIST");
    await old.line(/ CAP \* LIST :$/);
    await old.send("CAP LS 302");
    await old.line(/ CAP \* LS :.*sasl=PLAIN/);
    old.close();

    const c = await Irc.connect(s.ircPort);
    await c.send("NICK erin", "USER erin * * :");
    await c.line(/ 461 erin USER :Not enough parameters/);
    await c.send("USER erin * * :Erin");
    await c.line(/ 001 erin /);
    // No channel prefixes here (no operators): an empty PREFIX, as Modern IRC writes "none".
    assert.match(await c.line(/ 005 erin /), / PREFIX= /);
    await c.line(/ 422 erin /);
    await c.send("USER erin * * :Again", "PASS secret");
    await c.line(/ 462 erin :You may not reregister/);
    await c.line(/ 462 erin :You may not reregister/);
    await c.send("PING");
    await c.line(/ 409 erin :No origin specified/);
    await c.send("PING :", "JOIN", "PART", "TOPIC");
    await c.line(/ PONG chat :$/);
    await c.line(/ 461 erin JOIN :Not enough parameters/);
    await c.line(/ 461 erin PART :Not enough parameters/);
    await c.line(/ 461 erin TOPIC :Not enough parameters/);
    c.close();
  });
});

Deno.test("irc: a nick is one connection's; a registered name may be used from several", async () => {
  await withIrcServer(async (s) => {
    const first = await Irc.registered(s.ircPort, "frank");
    const second = await Irc.connect(s.ircPort);
    await second.send("NICK frank", "USER f 0 * :F");
    // Not yet registered, the client is "*" (Modern IRC), the refused nick the subject.
    await second.line(/^:chat 433 \* frank :frank is in use/);
    // The client picks another nick, as IRC clients do, and is in.
    await second.send("NICK frank_");
    await second.line(/ 001 frank_ /);
    // The first connection was not told anyone else took its name.
    assert.ok(!(await first.sync()).some((l) => /Another connection/.test(l)));

    // Two at once with the same new nick: exactly one is let in.
    const [a, b] = await Promise.all([Irc.connect(s.ircPort), Irc.connect(s.ircPort)]);
    await Promise.all([a.send("NICK gina", "USER g 0 * :G"), b.send("NICK gina", "USER g 0 * :G")]);
    const outcome = await Promise.all([a, b].map((c) => c.line(/ (001 gina|433 \* gina) /)));
    assert.deepEqual(outcome.map((l) => l.split(" ")[1]).sort(), ["001", "433"]);

    // A registered account: its password lets a second connection in.
    const reg = await JsonClient.connect(s.tcpPort, { username: "hank" });
    await reg.send({ type: "register", password: "hank-password" });
    await reg.type("system", (f) => /registered/i.test(f.message));
    const h1 = await Irc.registered(s.ircPort, "hank", "PASS hank-password");
    const h2 = await Irc.registered(s.ircPort, "hank", "PASS hank-password");
    assert.ok(h2.lines.some((l) => / 001 hank /.test(l)));
    // WHOIS says a registered name is an account (330); a guest's does not.
    await h1.send("WHOIS hank", "WHOIS frank_");
    await h1.line(/ 330 hank hank hank :is logged in as$/);
    await h1.line(/ 318 hank hank :/);
    assert.ok(!(await h1.sync()).some((l) => / 330 hank frank_ /.test(l)));
    for (const c of [first, second, a, b, h1, h2]) c.close();
    await reg.close();
  });
});

Deno.test("irc: a line past 512 bytes (or 4094 of tags) is answered 417 and the connection stays", async () => {
  await withIrcServer(async (s) => {
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const c = await Irc.withCaps(s.ircPort, "ivy", "message-tags");
    // 510 bytes is the most a line may have without CRLF (multi-byte letters counted as bytes).
    const room = "PRIVMSG #general :";
    await c.send(room + "x".repeat(510 - room.length));
    await c.send(room + "é".repeat(250));
    await c.line(/ 417 ivy :Input line was too long/);
    await c.send("@+big=" + "a".repeat(4096) + " PRIVMSG #general :tagged");
    await c.line(/ 417 ivy :Input line was too long/);
    // A line with no end in sight: one 417, the rest of it dropped up to its newline.
    await c.send(room + "y".repeat(30_000));
    await c.line(/ 417 ivy :Input line was too long/);
    await c.send("PRIVMSG #general :still here");
    const got = [await bob.type("message"), await bob.type("message")].map((m) => m.message);
    assert.deepEqual(got, ["x".repeat(510 - room.length), "still here"]);
    assert.equal((await c.sync()).filter((l) => / 417 /.test(l)).length, 0);
    c.close();
    await bob.close();
  });
});

Deno.test("irc: LUSERS, MOTD, ISON, USERHOST, WHO, LIST, TOPIC, MODE and INVITE answer in numerics", async () => {
  await withIrcServer(async (s) => {
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const c = await Irc.registered(s.ircPort, "judy");
    await c.send("LUSERS");
    await c.line(/ 251 judy :There are 0 users and 2 invisible on 1 servers$/);
    await c.line(/ 255 judy :I have 2 clients and 0 servers$/);
    await c.line(/ 265 judy :Current local users: 2$/);
    await c.line(/ 266 judy :Current global users: 2$/);
    await c.send("MOTD");
    await c.line(/ 375 judy :- chat message of the day/);
    await c.line(/ 372 judy :- Be kind/);
    await c.line(/ 376 judy /);
    await c.send("ISON Bob nobody judy", "USERHOST bob nobody");
    await c.line(/ 303 judy :bob judy$/);
    await c.line(/ 302 judy :bob=\+bob@chat$/);
    // Nicks in one trailing parameter (RFC 2812), and nicks no chat user could have: not found.
    await c.send("ISON :judy [away] bob", "ISON [x]");
    await c.line(/ 303 judy :judy bob$/);
    await c.line(/ 303 judy :$/);
    // USERHOST marks an away user with "-" (clients show it as away).
    await bob.send({ type: "away", message: "lunch" });
    await bob.type("system");
    await c.send("USERHOST bob judy");
    await c.line(/ 302 judy :bob=-bob@chat judy=\+judy@chat$/);
    await bob.send({ type: "away" });
    await bob.type("system");
    await c.send("WHOIS bob");
    await c.line(/ 311 judy bob bob chat \* :bob$/);
    await c.line(/ 312 judy bob chat :/);
    await c.line(/ 318 judy bob :/);
    await c.send("NAMES #general,#nowhere");
    await c.line(/ 353 judy = #general :/);
    await c.line(/ 366 judy #general :/);
    await c.line(/ 366 judy #nowhere :/);
    await c.send("WHO bob", "WHO nobody");
    await c.line(/ 352 judy \* bob chat chat bob H :0 bob$/);
    await c.line(/ 315 judy bob /);
    await c.line(/ 315 judy nobody /);
    await bob.send({ type: "join", room: "books" });
    await bob.type("joined");
    await c.send("LIST #books");
    await c.line(/ 321 judy /);
    assert.match(await c.line(/ 32[23] judy /), / 322 judy #books 1 /);
    await c.line(/ 323 judy /);
    await c.send("TOPIC #books :a topic", "MODE bob", "MODE #books +o judy", "MODE judy +i");
    await c.line(/ 482 judy #books :Topics are not kept here/);
    await c.line(/ 502 judy :/);
    await c.line(/ 482 judy #books :Channel modes cannot be changed here/);
    await c.line(/ 221 judy \+i/);
    // TOPIC and MODE of a channel judy is not on: as for one she is on if it exists, else 403.
    await c.send("TOPIC #books", "MODE #books", "TOPIC #nowhere", "MODE #nowhere", "WHOIS");
    await c.line(/ 331 judy #books :No topic is set$/);
    await c.line(/ 324 judy #books \+nt$/);
    await c.line(/ 403 judy #nowhere :There is no room #nowhere/);
    await c.line(/ 403 judy #nowhere :There is no room #nowhere/);
    await c.line(/ 431 judy :No nickname given/);
    await c.send("VERSION", "TIME", "WHOWAS bob", "HELP");
    await c.line(/ 351 judy chat chat :/);
    await c.line(/ 391 judy chat :\d{4}-/);
    await c.line(/ 406 judy bob :/);
    await c.line(/ 369 judy bob :/);
    await c.line(/ 705 judy \* :/);
    await c.line(/ 706 judy \* :/);

    // INVITE is the private groups' invite: both ways.
    await bob.send({ type: "create_group", room: "club" });
    await bob.type("joined");
    await bob.send({ type: "invite", room: "club", username: "judy" });
    await c.line(/^:bob!bob@chat INVITE judy :#club$/);
    await c.send("JOIN #club");
    await c.line(/^:judy!judy@chat JOIN #club$/);
    await c.send("INVITE bob #club");
    await c.line(/ 482 judy #club :Only the owner/);
    c.close();
    await bob.close();
  }, ["--motd", "Be kind"]);
});

Deno.test("irc: JOIN of a channel the client is on does nothing (no second JOIN, no history again); after PART it joins", async () => {
  await withIrcServer(async (s) => {
    const c = await Irc.registered(s.ircPort, "joe");
    await c.send("JOIN #Books", "PRIVMSG #books :first");
    await c.line(/ 366 joe #books /);
    await c.sync();
    await c.send("JOIN #BOOKS,#general");
    const again = await c.sync();
    assert.deepEqual(again, [], "already on #books and #general: " + again.join("\n"));
    await c.send("PART #books", "JOIN #books");
    await c.line(/^:joe!joe@chat PART #books$/);
    await c.line(/^:joe!joe@chat JOIN #books$/);
    await c.line(/ 366 joe #books /);
    c.close();
  });
});

Deno.test("irc: without echo-message what a client sent is not sent back, whatever case it named the target in", async () => {
  await withIrcServer(async (s) => {
    const ann = await Irc.registered(s.ircPort, "ann");
    const bob = await Irc.registered(s.ircPort, "bob");
    await ann.send("JOIN #books");
    await ann.line(/ 366 ann #books /);
    await bob.send("JOIN #Books");
    await bob.line(/ 366 bob #books /);
    await bob.sync();
    await bob.send("PRIVMSG #BOOKS :upper case room", "PRIVMSG ANN :upper case nick");
    await ann.line(/^:bob!bob@chat PRIVMSG #books :upper case room$/);
    await ann.line(/^:bob!bob@chat PRIVMSG ann :upper case nick$/);
    // Both were fanned out to bob as they were to ann, before his PONG.
    const back = await bob.sync();
    assert.deepEqual(back.filter((l) => l.includes("PRIVMSG")), [], back.join("\n"));
    ann.close();
    bob.close();
  });
});

Deno.test("irc: formatting codes (bold, colours, italics) are taken out, not refused; CTCP other than ACTION is answered 404, never relayed", async () => {
  await withIrcServer(async (s) => {
    const irc = await Irc.registered(s.ircPort, "qux");
    const json = await JsonClient.connect(s.tcpPort, { username: "bar" });
    await irc.send(
      "PRIVMSG bar :\x02bold\x02 and \x0304,01red\x03 plain \x1ditalic\x1d \x1funder\x1f\x0f",
      "PRIVMSG #general :\x0312blue\x03 \x04ff8800orange\x04 \x16reversed\x16",
    );
    assert.equal((await json.type("private")).message, "bold and red plain italic under");
    assert.equal(
      (await json.type("message", (m) => m.from_username === "qux")).message,
      "blue orange reversed",
    );
    // A line of nothing but formatting is no text.
    await irc.send("PRIVMSG bar :\x02\x02");
    await irc.line(/ 412 qux :No text to send$/);
    await irc.send("PRIVMSG bar :\x01VERSION\x01", "NOTICE bar :\x01VERSION irssi\x01");
    await irc.line(/ 404 qux bar :CTCP VERSION is not relayed here: only ACTION \(\/me\) is$/);
    const after = await irc.sync();
    assert.deepEqual(after, [], "a CTCP answer (NOTICE) is never answered: " + after.join("\n"));
    await irc.send("PRIVMSG bar :\x01ACTION \x02waves\x02\x01");
    assert.equal((await json.type("private")).message, "* waves");
    assert.ok(!json.frames.some((f) => f.type === "private" && /VERSION/.test(f.message)));
    irc.close();
    await json.close();
  });
});

Deno.test("irc: JOIN 0 leaves every channel but #general (RFC 2812); LIST says 1 member, 2 members", async () => {
  await withIrcServer(async (s) => {
    const c = await Irc.registered(s.ircPort, "joe");
    const d = await Irc.registered(s.ircPort, "dee");
    await c.send("JOIN #one,#two");
    await c.line(/ 366 joe #two /);
    await d.send("JOIN #two");
    await d.line(/ 366 dee #two /);
    await c.send("LIST");
    await c.line(/ 322 joe #one 1 :1 member$/);
    await c.line(/ 322 joe #two 2 :2 members$/);
    await c.send("JOIN 0");
    await c.line(/^:joe!joe@chat PART #one$/);
    await c.line(/^:joe!joe@chat PART #two$/);
    await d.line(/^:joe!joe@chat PART #two$/);
    const after = await c.sync();
    assert.ok(!after.some((l) => / PART #general|NOTICE/.test(l)), after.join("\n"));
    await c.send("PRIVMSG #general :still here");
    await d.line(/^:joe!joe@chat PRIVMSG #general :still here$/);
    c.close();
    d.close();
  });
});

Deno.test("irc: PART with a reason, and the same reason from text mode and REST, reaches every wire", async () => {
  await withIrcServer(async (s) => {
    const base = `http://127.0.0.1:${s.httpPort}`;
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const watcher = await Irc.registered(s.ircPort, "kim");
    const leaver = await Irc.registered(s.ircPort, "lou");
    const text = await LineClient.connect(s.tcpPort);
    await text.send("max");
    await text.line("Logged in as max");
    const token = await tokenFor(base, "ned");
    for (const c of [watcher, leaver]) {
      await c.send("JOIN #books");
      await c.line(/ 366 \S+ #books /);
    }
    await bob.send({ type: "join", room: "books" });
    await bob.type("joined");
    await text.send("/join books");
    await text.line(/You joined #books|#books/);
    assert.equal((await api(base, "POST", "/api/v1/rooms/books/join", token)).status, 200);

    await leaver.send("PART #books :off to bed");
    await leaver.line(/^:lou!lou@chat PART #books :off to bed$/);
    await watcher.line(/^:lou!lou@chat PART #books :off to bed$/);
    const said = await bob.type("system", (f) => f.event === "left" && f.username === "lou");
    assert.equal(said.reason, "off to bed");
    assert.equal(said.message, "lou left #books (off to bed)");

    await text.send("/leave books see you all");
    await watcher.line(/^:max!max@chat PART #books :see you all$/);
    const left = await api(base, "POST", "/api/v1/rooms/books/leave", token, { reason: "bye" });
    assert.equal(left.status, 200);
    await watcher.line(/^:ned!ned@chat PART #books :bye$/);
    // Without a reason, a PART is bare, as before.
    await bob.send({ type: "leave", room: "books" });
    await watcher.line(/^:bob!bob@chat PART #books$/);
    // A reason is checked as any text is: control characters are refused.
    await watcher.send("PART #books :bell\x07");
    await watcher.line(/NOTICE kim :.*control characters/);
    for (const c of [watcher, leaver]) c.close();
    await Promise.all([bob.close(), text.close()]);
  });
});

Deno.test("irc: QUIT with a message, and text mode's /quit with one, are told to the others", async () => {
  await withIrcServer(async (s) => {
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const watcher = await Irc.registered(s.ircPort, "olga");
    const quitter = await Irc.registered(s.ircPort, "pete");
    await quitter.send("QUIT :gone fishing");
    await quitter.line(/^ERROR :Closing link: gone fishing$/);
    await watcher.line(/^:pete!pete@chat QUIT :gone fishing$/);
    const said = await bob.type("system", (f) => f.event === "offline" && f.username === "pete");
    assert.equal(said.message, "pete left the chat (gone fishing)");
    assert.equal(said.reason, "gone fishing");

    const text = await LineClient.connect(s.tcpPort);
    await text.send("quinn");
    await text.line("Logged in as quinn");
    await text.send("/quit  see you   tomorrow ");
    await watcher.line(/^:quinn!quinn@chat QUIT :see you tomorrow$/);
    // Without one (or with control characters, which are not passed on), the usual words.
    const plain = await Irc.registered(s.ircPort, "rita");
    await plain.send("QUIT :bell\x07");
    await watcher.line(/^:rita!rita@chat QUIT :left the chat$/);
    watcher.close();
    await bob.close();
  });
});

Deno.test("irc: labeled-response labels a message's echo, and a JOIN's whole answer is one batch", async () => {
  await withIrcServer(async (s) => {
    const caps = "echo-message batch labeled-response";
    const sam = await Irc.withCaps(s.ircPort, "sam", caps);
    const tess = await Irc.withCaps(s.ircPort, "tess", caps);
    // A JOIN: the JOIN line, the topic, and the NAMES, in one labeled batch that ends it.
    await sam.send("@label=j1 JOIN #deck");
    const start = await sam.line(/BATCH \+\S+ labeled-response$/);
    assert.match(start, /^@label=j1 /);
    const id = start.match(/BATCH \+(\S+)/)![1]!;
    const answer = await sam.sync();
    const end = answer.findIndex((l) => l.endsWith(`BATCH -${id}`));
    assert.ok(end > 0, `the batch ends:\n${answer.join("\n")}`);
    const inside = answer.slice(0, end);
    assert.ok(inside.every((l) => l.startsWith(`@batch=${id} `)), inside.join("\n"));
    for (const want of [/ JOIN #deck$/, / 331 /, / 353 sam = #deck :sam$/, / 366 sam #deck /]) {
      assert.ok(inside.some((l) => want.test(l)), `${want} in the batch:\n${inside.join("\n")}`);
    }
    assert.deepEqual(answer.slice(end + 1), [], "nothing of the JOIN after its batch");
    await tess.send("JOIN #deck");
    await tess.line(/ 366 tess #deck /);

    // A labeled message: its echo carries the label (no ACK); the others' copies do not.
    await sam.send("@label=m1 PRIVMSG #deck :hello deck");
    await sam.line(/^@label=m1 :sam!sam@chat PRIVMSG #deck :hello deck$/);
    assert.doesNotMatch(await tess.line(/PRIVMSG #deck :hello deck$/), /label/);
    await sam.send("@label=m2 PRIVMSG tess :just you");
    await sam.line(/^@label=m2 :sam!sam@chat PRIVMSG tess :just you$/);
    assert.doesNotMatch(await tess.line(/PRIVMSG tess :just you$/), /label/);
    // Refused at once: the refusal is the labeled answer.
    await sam.send("@label=m3 PRIVMSG #deck :bell\x07");
    await sam.line(/^@label=m3 :chat 404 sam #deck :/);
    assert.ok(!(await sam.sync()).some((l) => / ACK$/.test(l)));

    // Several targets: every echo and refusal in one batch (IRCv3: a reply of several messages
    // is a batch), the others' copies unlabeled.
    const ursula = await Irc.withCaps(s.ircPort, "ursula", caps);
    await sam.send("@label=m4 PRIVMSG tess,nobody,ursula :to you both");
    const batch = await labeledBatch(sam, "m4");
    assert.equal(batch.length, 3, batch.join("\n"));
    assert.ok(batch.some((l) => / 401 sam nobody :/.test(l)));
    assert.ok(batch.some((l) => /:sam!sam@chat PRIVMSG tess :to you both$/.test(l)));
    assert.ok(batch.some((l) => /:sam!sam@chat PRIVMSG ursula :to you both$/.test(l)));
    assert.doesNotMatch(await tess.line(/PRIVMSG tess :to you both$/), /label|batch/);
    assert.doesNotMatch(await ursula.line(/PRIVMSG ursula :to you both$/), /label|batch/);
    // To someone away: the echo and RPL_AWAY, which comes with the message's ack, together.
    await tess.send("AWAY :lunch");
    await tess.line(/ 306 tess /);
    await sam.send("@label=m5 PRIVMSG tess :still there?");
    const away = await labeledBatch(sam, "m5");
    assert.match(away[0]!, /:sam!sam@chat PRIVMSG tess :still there\?$/);
    assert.match(away[1]!, / 301 sam tess :lunch$/);
    assert.equal(away.length, 2);
    // Without echo-message the answer is what comes of the message: RPL_AWAY, or an ACK.
    const plain = await Irc.withCaps(s.ircPort, "vera", "batch labeled-response");
    await plain.send("@label=p1 PRIVMSG tess :hello", "@label=p2 PRIVMSG ursula :hello");
    await plain.line(/^@label=p1 :chat 301 vera tess :lunch$/);
    await plain.line(/^@label=p2 :chat ACK$/);
    for (const c of [sam, tess, ursula, plain]) c.close();
  });
});

/** The lines inside the labeled-response batch that answers `label` (the next one to come). */
async function labeledBatch(c: Irc, label: string): Promise<string[]> {
  const start = await c.line(new RegExp(`^@label=${label} :chat BATCH \\+\\S+ labeled-response$`));
  const id = start.match(/BATCH \+(\S+)/)![1]!;
  const inside: string[] = [];
  for (;;) {
    const l = await c.line(/./);
    if (l === `:chat BATCH -${id}`) return inside;
    assert.ok(l.startsWith(`@batch=${id} `), l);
    inside.push(l.slice(`@batch=${id} `.length));
  }
}

Deno.test("irc: a NOTICE stays a notice for every reader (bots answer PRIVMSGs, never NOTICEs)", async () => {
  await withIrcServer(async (s) => {
    const base = `http://127.0.0.1:${s.httpPort}`;
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const caps = "echo-message labeled-response";
    const bot = await Irc.withCaps(s.ircPort, "bot", caps);
    const uma = await Irc.registered(s.ircPort, "uma");
    await bot.send("@label=n1 NOTICE #general :build passed");
    await bot.line(/^@label=n1 :bot!bot@chat NOTICE #general :build passed$/);
    await uma.line(/^:bot!bot@chat NOTICE #general :build passed$/);
    const seen = await bob.type("message", (m) => m.message === "build passed");
    assert.equal(seen.notice, true);
    await bot.send("NOTICE uma :just so you know");
    await uma.line(/^:bot!bot@chat NOTICE uma :just so you know$/);
    // Over JSON and REST too; an ordinary message is a PRIVMSG as ever.
    await bob.send({ type: "message", room: "general", message: "from json", notice: true });
    await uma.line(/^:bob!bob@chat NOTICE #general :from json$/);
    const token = await tokenFor(base, "vic");
    const posted = await api(base, "POST", "/api/v1/rooms/general/messages", token, {
      message: "from rest",
      notice: true,
    });
    assert.equal(posted.status, 201);
    await uma.line(/^:vic!vic@chat NOTICE #general :from rest$/);
    await bob.send({ type: "message", room: "general", message: "plain" });
    await uma.line(/^:bob!bob@chat PRIVMSG #general :plain$/);
    await bob.send({ type: "message", room: "general", message: "x", notice: "yes" });
    assert.match((await bob.type("error")).message, /"notice" must be true or false/);
    // History keeps it: a new reader sees the notice as a notice.
    const late = await Irc.registered(s.ircPort, "wes");
    await late.send("CHATHISTORY LATEST #general * 10");
    await late.line(/:bot!bot@chat NOTICE #general :build passed$/);
    for (const c of [bot, uma, late]) c.close();
    await bob.close();
  });
});

Deno.test("irc: CHATHISTORY LATEST after a msgid, BETWEEN both ways, AROUND, and FAIL as the spec has it", async () => {
  await withIrcServer(async (s) => {
    const json = await JsonClient.connect(s.tcpPort, { username: "bob" });
    await json.send({ type: "join", room: "log" });
    await json.type("joined");
    const c = await Irc.withCaps(s.ircPort, "xena", "batch message-tags draft/chathistory");
    await c.send("JOIN #log");
    await c.line(/ 366 xena #log /);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      await json.send({ type: "message", room: "log", message: `m${i}`, ref: `r${i}` });
      await json.type("ack", (a) => a.ref === `r${i}`);
      ids.push((await c.line(new RegExp(`PRIVMSG #log :m${i}$`))).match(/msgid=([^; ]+)/)![1]!);
    }
    /** The texts of one CHATHISTORY answer, checked to be one well-formed batch. */
    const page = async (command: string) => {
      await c.send(command);
      const lines = await c.sync();
      assert.match(lines[0] ?? "", /BATCH \+(\S+) chathistory #log$/, lines.join("\n"));
      const id = lines[0]!.match(/BATCH \+(\S+)/)![1]!;
      assert.match(lines.at(-1)!, new RegExp(`BATCH -${id}$`));
      return lines.slice(1, -1).map((l) => l.match(/PRIVMSG #log :(\S+)$/)![1]);
    };
    const m = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `m${from + i}`);
    const cases: Array<[string, string[]]> = [
      ["LATEST #log * 3", m(7, 10)],
      // LATEST after a msgid: the newest ones after it, not the first ones.
      [`LATEST #log msgid=${ids[4]} 20`, m(5, 10)],
      [`LATEST #log msgid=${ids[4]} 2`, m(8, 10)],
      [`BEFORE #log msgid=${ids[6]} 20`, m(0, 6)],
      [`AFTER #log msgid=${ids[3]} 3`, m(4, 7)],
      // BETWEEN leaves out both ends; read backwards, it is the newest before the first id.
      [`BETWEEN #log msgid=${ids[0]} msgid=${ids[9]} 20`, m(1, 9)],
      [`BETWEEN #log msgid=${ids[9]} msgid=${ids[0]} 20`, m(1, 9)],
      [`BETWEEN #log msgid=${ids[0]} msgid=${ids[9]} 3`, m(1, 4)],
      [`BETWEEN #log msgid=${ids[9]} msgid=${ids[0]} 3`, m(6, 9)],
      [`AROUND #log msgid=${ids[7]} 1`, ["m7"]],
      [`AROUND #log msgid=${ids[7]} 3`, m(6, 9)],
    ];
    for (const [command, want] of cases) {
      assert.deepEqual(await page(`CHATHISTORY ${command}`), want, command);
    }
    // Errors name the subcommand and the target, as the spec's FAIL does.
    await c.send("CHATHISTORY LATEST #nowhere * 10");
    await c.line(/^:chat FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere :/);
    await c.send("CHATHISTORY BETWEEN #log msgid=nope * 10", "CHATHISTORY SIDEWAYS #log * 10");
    await c.line(/^:chat FAIL CHATHISTORY INVALID_MSGREFID BETWEEN #log :/);
    await c.line(/^:chat FAIL CHATHISTORY INVALID_PARAMS SIDEWAYS #log :/);
    c.close();
    await json.close();
  }, ["--rate-limit", "0"]);
});

Deno.test("away: set over IRC, JSON, text or REST; seen in WHOIS, WHO, user lists and on writing to them", async () => {
  await withIrcServer(async (s) => {
    const base = `http://127.0.0.1:${s.httpPort}`;
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const yan = await Irc.registered(s.ircPort, "yan");
    const zoe = await Irc.registered(s.ircPort, "zoe");
    await yan.send("AWAY :at lunch, back at 2");
    await yan.line(/ 306 yan :You have been marked as being away/);
    // Writing to them: IRC's RPL_AWAY, JSON's ack; WHOIS and WHO say so too.
    await zoe.send("PRIVMSG yan :are you there?", "WHOIS yan", "WHO yan");
    await zoe.line(/ 301 zoe yan :at lunch, back at 2$/);
    await zoe.line(/ 301 zoe yan :at lunch, back at 2$/);
    await zoe.line(/ 352 zoe \* yan chat chat yan G :0 yan$/);
    await bob.send({ type: "private", target_username: "yan", message: "lunch?", ref: "p1" });
    assert.equal((await bob.type("ack", (a) => a.ref === "p1")).away, "at lunch, back at 2");
    await bob.send({ type: "users", username: "yan" });
    assert.equal((await bob.type("users_list")).all[0]!.away, "at lunch, back at 2");
    // A NOTICE is never answered, not even with RPL_AWAY.
    await zoe.send("NOTICE yan :fyi");
    assert.ok(!(await zoe.sync()).some((l) => / 301 /.test(l)));
    await yan.send("AWAY");
    await yan.line(/ 305 yan :You are no longer marked as being away/);
    await zoe.send("PRIVMSG yan :back?");
    assert.ok(!(await zoe.sync()).some((l) => / 301 /.test(l)));

    // JSON and text mode set it the same way; going offline clears it.
    await bob.send({ type: "away", message: "in a meeting" });
    assert.match(
      (await bob.type("system", (f) => /You are away/.test(f.message))).message,
      /meeting/,
    );
    await zoe.send("WHOIS bob");
    await zoe.line(/ 301 zoe bob :in a meeting$/);
    await bob.send({ type: "away", message: "x".repeat(501) });
    assert.match((await bob.type("error")).message, /"message" is longer than 500/);
    const text = await LineClient.connect(s.tcpPort);
    await text.send("amy");
    await text.line("Logged in as amy");
    await text.send("/away gone fishing");
    await text.line(/You are away: others see "gone fishing"/);
    await text.send("/msg bob still there?");
    await text.line(/\* bob is away: in a meeting/);
    await text.close();
    await zoe.send("PRIVMSG amy :hi");
    assert.ok(!(await zoe.sync()).some((l) => / 301 /.test(l)), "amy's away ended with her");
    // REST: PUT and DELETE /api/v1/away.
    const token = await tokenFor(base, "cal");
    const put = await api(base, "PUT", "/api/v1/away", token, { message: "on holiday" });
    assert.equal(put.status, 200);
    await zoe.send("WHOIS cal");
    await zoe.line(/ 301 zoe cal :on holiday$/);
    assert.equal((await api(base, "DELETE", "/api/v1/away", token)).status, 200);
    await zoe.send("WHOIS cal");
    await zoe.line(/ 301 zoe cal :offline/);
    for (const c of [yan, zoe]) c.close();
    await bob.close();
  });
});

Deno.test("away is pushed when it changes: a system notice on JSON, AWAY to IRC clients that asked for away-notify, the console's list", async () => {
  await withIrcServer(async (s) => {
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    const ned = await Irc.withCaps(s.ircPort, "ned", "away-notify");
    const old = await Irc.registered(s.ircPort, "old");
    await ned.send("AWAY :gone fishing");
    await ned.line(/ 306 ned /);
    const went = await bob.type("system", (f) => f.event === "away");
    assert.deepEqual([went.username, went.away, went.message], [
      "ned",
      "gone fishing",
      "ned is away: gone fishing",
    ]);
    await bob.send({ type: "away", message: "lunch" });
    await ned.line(/^:bob!bob@\S+ AWAY :lunch$/);
    await bob.send({ type: "away" });
    await ned.line(/^:bob!bob@\S+ AWAY$/);
    await bob.send({ type: "ping", ref: "s1" });
    await bob.type("pong", (f) => f.ref === "s1");
    assert.ok(
      !bob.has((f) => f.type === "system" && f.event === "away" && f.username === "bob"),
      "a user is not told of their own away as someone else's",
    );
    await ned.send("AWAY");
    const returned = await bob.type("system", (f) => f.event === "away" && f.username === "ned");
    assert.equal(returned.away, undefined);
    assert.equal(returned.message, "ned is back");
    // Saying the same again changes nothing, and tells nobody.
    await ned.send("AWAY");
    await ned.sync();
    // An IRC client that did not ask for away-notify is sent no AWAY lines.
    assert.ok(!(await old.sync()).some((l) => / AWAY/.test(l)), "no AWAY without the capability");
    for (const c of [ned, old]) c.close();
    await bob.close();
  }, ["--away-notices", "0"]);
});

Deno.test("a user coming back online JOINs the channels an IRC client shares with them (their QUIT went out when they left)", async () => {
  await withIrcServer(async (s) => {
    const kim = await Irc.registered(s.ircPort, "kim");
    await kim.send("JOIN #tea");
    await kim.line(/ 366 kim #tea /);
    let lou = await JsonClient.connect(s.tcpPort, { username: "lou" });
    await kim.line(/^:lou!\S+ JOIN #general$/);
    await lou.send({ type: "join", room: "tea" });
    await kim.line(/^:lou!\S+ JOIN #tea$/);
    await lou.close();
    await kim.line(/^:lou!\S+ QUIT :/);
    lou = await JsonClient.connect(s.tcpPort, { username: "lou" });
    await kim.line(/^:lou!\S+ JOIN #general$/);
    await kim.line(/^:lou!\S+ JOIN #tea$/);
    // Once each, on the first login and the second: no doubled JOIN.
    await kim.sync();
    const joins = kim.lines.filter((l) => /^:lou!\S+ JOIN /.test(l));
    assert.deepEqual(joins.map((l) => l.split(" ").at(-1)), [
      "#general",
      "#tea",
      "#general",
      "#tea",
    ]);
    await lou.close();
    kim.close();
  });
});

Deno.test("irc: every hint the core gives names what an IRC client can do (its own commands, or ChatServ's)", async () => {
  const hints = await coreHintsWithCommands();
  assert.ok(hints.length >= 10, `found ${hints.length} hints`);
  // What irssi and WeeChat take as commands, and /msg ChatServ.
  const irc = new Set([
    "join",
    "part",
    "msg",
    "list",
    "names",
    "quit",
    "away",
    "whois",
    "ws",
    "api",
  ]);
  for (const hint of hints) {
    const said = ircHints(hint);
    for (
      const [, command] of said.matchAll(/(?:^|[\s(])(?<!(?:POST|GET|PUT|DELETE) )\/([a-z_]+)\b/g)
    ) {
      assert.ok(irc.has(command!), `/${command} in: ${said}`);
    }
  }
});

Deno.test("irc: ChatServ SESSION, ACCEPT and END run a private session from IRC; REGISTER claims the nick", async () => {
  await withIrcServer(async (s) => {
    const kim = await Irc.registered(s.ircPort, "kim");
    const bob = await JsonClient.connect(s.tcpPort, { username: "bob" });
    await kim.send("PRIVMSG ChatServ :SESSION bob");
    await bob.type("session_request", (f) => f.from_username === "kim");
    await bob.send({ type: "session_response", target_username: "kim", accepted: true });
    await kim.line(/NOTICE kim :.*session between kim and bob started: \/msg ChatServ END ends it/);
    // In a session, asking another is refused with what IRC can do about it.
    await kim.send("PRIVMSG ChatServ :SESSION nobody");
    await kim.line(/There is no user "nobody": \/names #general lists who is here/);
    await kim.send("PRIVMSG ChatServ :END");
    await bob.type("session_ended");
    await kim.send("PRIVMSG ChatServ :REGISTER open sesame");
    await kim.line(/NOTICE kim :.*[Rr]egistered/);
    kim.close();
    // The nick now needs its password (with its space).
    const again = await Irc.connect(s.ircPort);
    await again.send("NICK kim", "USER kim 0 * :kim");
    await again.line(/ 464 /);
    again.close();
    const ok = await Irc.registered(s.ircPort, "kim", "PASS :open sesame");
    ok.close();
    await bob.close();
  });
});

Deno.test("irc: CAP REQ is ACKed or NAKed whole, as asked; multi-prefix is offered; an unknown subcommand is 410", async () => {
  await withIrcServer(async (s) => {
    const c = await Irc.connect(s.ircPort);
    await c.send("CAP LS 302");
    assert.match(await c.line(/ CAP \* LS /), / multi-prefix/);
    await c.send("CAP REQ :foo qux bar baz qux quux");
    await c.line(/ CAP \* NAK :foo qux bar baz qux quux$/);
    await c.send("CAP REQ :foo multi-prefix");
    await c.line(/ CAP \* NAK :foo multi-prefix$/);
    await c.send("CAP LIST");
    await c.line(/ CAP \* LIST :$/);
    await c.send("CAP REQ :multi-prefix echo-message", "CAP FOO");
    await c.line(/ CAP \* ACK :multi-prefix echo-message$/);
    await c.line(/ 410 \* FOO :Invalid CAP command/);
    await c.send("NICK capper", "USER c 0 * :C", "CAP END");
    await c.line(/ 001 capper /);
    await c.send("CAP LIST");
    await c.line(/ CAP capper LIST :multi-prefix echo-message$/);
    c.close();
  });
});
