/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core) against the
 * real server, with a raw TCP user in the same room. Takes the screenshots in docs/.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chromium, type Page } from "playwright-core";
import { JsonClient, startServer } from "./_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const DOCS = new URL("../docs/", import.meta.url).pathname;

const LAUNCH = {
  executablePath: CHROMIUM,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
};

async function login(page: Page, base: string, name: string, password: string): Promise<void> {
  await page.goto(base);
  await page.fill('[data-testid="login-name"]', name);
  await page.fill('[data-testid="login-password"]', password);
  await page.click('[data-testid="login-submit"]');
  await page.waitForSelector(`[data-testid="me"]:has-text("${name}")`);
}

Deno.test({
  name: hasChromium
    ? "console: two browser users and a TCP user chat, a file goes up and comes down, an admin mutes someone"
    : "console: browser test (skipped: /usr/bin/chromium is not installed; .ci/run installs it)",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_browser_" });
    const data = `${dir}/chat.kv`;
    const add = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "user",
        "add",
        "Root",
        "--admin",
        "--password",
        "root-password",
        "--data",
        data,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(add.code, 0, new TextDecoder().decode(add.stderr));
    // No room quota here: the paging check below sends 25 messages.
    const server = await startServer({ data, args: ["--rate-limit", "0"] });
    const base = `http://127.0.0.1:${server.httpPort}/`;
    const browser = await chromium.launch(LAUNCH);
    try {
      const tcp = await JsonClient.connect(server.tcpPort, { username: "Terminal" });
      const alice = await (await browser.newContext({ viewport: { width: 1100, height: 700 } }))
        .newPage();
      const bob = await (await browser.newContext({
        viewport: { width: 1100, height: 700 },
        acceptDownloads: true,
      }))
        .newPage();
      // No URL the console asks for carries a token (URLs land in logs and histories).
      const urls: string[] = [];
      for (const page of [alice, bob]) {
        page.on("request", (r) => urls.push(r.url()));
        page.on("websocket", (ws) => urls.push(ws.url()));
      }
      await login(alice, base, "Alice", "alice-password");
      await login(bob, base, "Bob", "bob-password");

      // Browser to browser and TCP, and TCP to both browsers.
      await alice.fill('[data-testid="composer"]', "Hello from Alice's browser");
      await alice.click('[data-testid="send"]');
      await bob.waitForSelector('[data-testid="message"]:has-text("Hello from Alice\'s browser")');
      assert.equal(
        (await tcp.type("message", (m) => m.from_username === "Alice")).message,
        "Hello from Alice's browser",
      );
      await tcp.send({ type: "message", message: "Hi both, I'm on a raw TCP socket" });
      await alice.waitForSelector('[data-testid="message"]:has-text("raw TCP socket")');
      await bob.waitForSelector('[data-testid="message"]:has-text("raw TCP socket")');

      // A file: Alice picks it, Bob sees the link and downloads the same bytes.
      const content = "meeting notes\n".repeat(1000);
      await alice.setInputFiles('[data-testid="upload"]', {
        name: "notes.txt",
        mimeType: "text/plain",
        buffer: Buffer.from(content),
      });
      await bob.waitForSelector('[data-testid="file-link"]:has-text("notes.txt")');
      const announced = await tcp.type("message", (m) => m.file !== undefined);
      assert.equal(announced.file!.size, content.length);
      const [download] = await Promise.all([
        bob.waitForEvent("download"),
        bob.click('[data-testid="file-link"]:has-text("notes.txt")'),
      ]);
      const saved = await download.path();
      assert.equal(await Deno.readTextFile(saved!), content);
      assert.equal(download.suggestedFilename(), "notes.txt");
      await bob.fill('[data-testid="composer"]', "Got the notes, thanks!");
      await bob.click('[data-testid="send"]');
      await alice.waitForSelector('[data-testid="message"]:has-text("Got the notes")');
      await bob.screenshot({ path: `${DOCS}console-chat.png` });

      // The admin mutes Bob from the clients table; Bob's next message is refused on screen.
      const root = await (await browser.newContext({ viewport: { width: 1100, height: 760 } }))
        .newPage();
      await login(root, base, "Root", "root-password");
      await root.click('[data-testid="tab-admin"]');
      await root.waitForSelector('[data-testid="clients"] td:has-text("Terminal")');
      for (const who of ["Alice", "Bob", "Root"]) {
        await root.waitForSelector(`[data-testid="clients"] td:has-text("${who}")`);
      }
      assert.ok(await root.isVisible('[data-testid="clients"] td:has-text("tcp-json")'));
      await root.click('[data-testid="mute-Bob"]');
      await root.waitForSelector('[data-testid="audit"] li:has-text("Root mute Bob")');
      await root.waitForSelector('[data-testid="log"] li:has-text("moderation")');
      await bob.fill('[data-testid="composer"]', "am I still here?");
      await bob.click('[data-testid="send"]');
      await bob.waitForSelector('[data-testid="errors"]:has-text("You are muted until")');
      assert.equal(
        await alice.isVisible('[data-testid="message"]:has-text("am I still here?")'),
        false,
      );
      await root.waitForSelector('[data-testid="reports"] li:has-text("Bob")');
      // The clients table is history: someone who came and went is there, with where from, and
      // an offline user can be banned (and only a banned one unbanned).
      const leaver = await JsonClient.connect(server.tcpPort, { username: "Leaver" });
      await leaver.close();
      await root.waitForSelector(
        '[data-testid="all-clients"] tr:has-text("Leaver"):has-text("127.0.0.1")',
        {
          timeout: 10_000,
        },
      );
      assert.equal(await root.isVisible('[data-testid="unban-Leaver"]'), false);
      await root.click('[data-testid="ban-Leaver"]');
      await root.waitForSelector('[data-testid="unban-Leaver"]', { timeout: 10_000 });
      await root.screenshot({ path: `${DOCS}console-admin.png` });

      // History pages back as Alice scrolls up.
      await tcp.send({ type: "join", room: "lots" });
      for (let i = 1; i <= 25; i++) {
        await tcp.send({ type: "message", room: "lots", message: `line ${i}` });
      }
      await tcp.type("ack", (a) => a.chat === "lots" && a.seq === 25);
      await alice.fill('input[name="room"]', "lots");
      await alice.press('input[name="room"]', "Enter");
      await alice.waitForSelector('[data-testid="message"] .text:text-is("line 25")');
      assert.equal(
        await alice.isVisible('[data-testid="message"] .text:text-is("line 5")'),
        false,
        "older ones wait",
      );
      assert.equal(await alice.locator('[data-testid="message"]').count(), 20, "the last 20 first");
      await alice.locator('[data-testid="messages"]').evaluate((el) => (el.scrollTop = 0));
      await alice.waitForSelector('[data-testid="message"] .text:text-is("line 1")');
      assert.equal(await alice.locator('[data-testid="message"]').count(), 25);

      // Non-admins never see the admin view.
      assert.equal(await alice.isVisible('[data-testid="tab-admin"]'), false);
      assert.ok(urls.some((u) => u.includes("/ws")), "the WebSocket was seen");
      assert.deepEqual(urls.filter((u) => /token=/.test(u)), [], "a token in a URL");
      await tcp.close();
    } finally {
      await browser.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: hasChromium
    ? "console: a server that stops answering (SIGSTOP) shows as reconnecting within three beats, and the console comes back"
    : "console: heartbeat browser test (skipped: /usr/bin/chromium is not installed)",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_browser_" });
    const server = await startServer({ data: `${dir}/chat.kv`, args: ["--heartbeat", "300ms"] });
    const base = `http://127.0.0.1:${server.httpPort}/`;
    const browser = await chromium.launch(LAUNCH);
    let stopped = false;
    try {
      const page = await (await browser.newContext()).newPage();
      await login(page, base, "Carol", "carol-password");
      await page.waitForSelector(".dot.on");
      // A quiet room for several beats: the console pings, the server answers, nothing changes.
      await page.waitForTimeout(1200);
      assert.equal(await page.isVisible(".dot.on"), true, "a live, quiet server was dropped");
      // The server's machine "vanishes": frozen, its sockets open but silent.
      Deno.kill(server.pid, "SIGSTOP");
      stopped = true;
      const t0 = Date.now();
      await page.waitForSelector(".dot:not(.on)", { timeout: 5000 });
      const lostMs = Date.now() - t0;
      assert.ok(lostMs < 2500, `shown as reconnecting after ${lostMs} ms (3 beats: 900)`);
      Deno.kill(server.pid, "SIGCONT");
      stopped = false;
      await page.waitForSelector(".dot.on", { timeout: 20_000 });
      await page.fill('[data-testid="composer"]', "back after the freeze");
      await page.click('[data-testid="send"]');
      await page.waitForSelector('[data-testid="message"]:has-text("back after the freeze")');
    } finally {
      if (stopped) Deno.kill(server.pid, "SIGCONT");
      await browser.close();
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
