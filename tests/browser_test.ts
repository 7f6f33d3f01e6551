/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core) against the
 * real server, with a raw TCP user in the same room. Takes the screenshots in docs/.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import AxeBuilder from "@axe-core/playwright";
import { type Browser, chromium, type Page } from "playwright-core";
import { addRootAdmin, JsonClient, startServer } from "./_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
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

/** No axe-core violation of any impact on the page as it is now. */
async function assertAccessible(page: Page, what: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  assert.deepEqual(
    violations.map((v) =>
      `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target).join(" ")}`
    ),
    [],
    `${what} has accessibility violations`,
  );
}

const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 390, height: 844 };

/** Presses Tab until the focused element matches (at most `max` times); fails otherwise. */
async function tabTo(page: Page, selector: string, max = 80): Promise<void> {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) {
      // What has focus shows it.
      const outline = await page.evaluate(() =>
        getComputedStyle(document.activeElement!).outlineStyle
      );
      assert.notEqual(outline, "none", `no visible focus on ${selector}`);
      return;
    }
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

/** Login, chat and admin at one size: no axe violation; on a phone, nothing off to the side. */
async function checkViews(browser: Browser, base: string, size: { width: number; height: number }) {
  const page = await (await browser.newContext({ viewport: size })).newPage();
  await page.goto(base);
  await page.waitForSelector('[data-testid="login-name"]');
  await assertAccessible(page, `login at ${size.width}px`);
  // Layout shifts from the login form to the filled chat (Lighthouse's CLS, in the page).
  await page.evaluate(() => {
    const w = globalThis as unknown as { cls: number };
    w.cls = 0;
    new PerformanceObserver((list) => {
      // Every shift counts here, even those right after the click (CLS leaves those out).
      for (const e of list.getEntries() as unknown as Array<{ value: number }>) w.cls += e.value;
    }).observe({ type: "layout-shift", buffered: true });
  });
  await page.fill('[data-testid="login-name"]', "Root");
  await page.fill('[data-testid="login-password"]', "root-password");
  await page.click('[data-testid="login-submit"]');
  await page.waitForSelector('[data-testid="message"]');
  await page.waitForTimeout(300);
  const cls = await page.evaluate(() => (globalThis as unknown as { cls: number }).cls);
  assert.ok(cls < 0.1, `the login flow shifts the layout by ${cls.toFixed(3)} (CLS)`);
  await page.fill('[data-testid="composer"]', `checked at ${size.width}px`);
  await page.click('[data-testid="send"]');
  await page.waitForSelector(`[data-testid="message"]:has-text("checked at ${size.width}px")`);
  await assertAccessible(page, `chat at ${size.width}px`);
  // The composer is on screen without scrolling the page: the message list scrolls instead.
  const box = (await page.locator('[data-testid="composer"]').boundingBox())!;
  assert.ok(box.y + box.height <= size.height, `composer at y=${box.y} below ${size.height}`);
  const tall = await page.evaluate(() => document.documentElement.scrollHeight);
  assert.ok(tall <= size.height + 1, `the page scrolls (${tall}px tall)`);
  if (size === PHONE) await page.screenshot({ path: `${DOCS}console-phone.png` });
  await page.click('[data-testid="tab-admin"]');
  await page.waitForSelector('[data-testid="clients"] td');
  await assertAccessible(page, `admin at ${size.width}px`);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= size.width, `the admin view is ${wide}px wide`);
  await page.close();
}

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
    await addRootAdmin(data);
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
      await checkViews(browser, base, DESKTOP);
      await checkViews(browser, base, PHONE);

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

Deno.test({
  name: hasChromium
    ? "console: everything from the keyboard: log in, send, reply, switch rooms, answer a session, an admin's action"
    : "console: keyboard test (skipped: /usr/bin/chromium is not installed)",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_browser_" });
    const data = `${dir}/chat.kv`;
    await addRootAdmin(data);
    const server = await startServer({ data });
    const base = `http://127.0.0.1:${server.httpPort}/`;
    const browser = await chromium.launch(LAUNCH);
    try {
      const tcp = await JsonClient.connect(server.tcpPort, { username: "Terminal" });
      await tcp.send({ type: "join", room: "books" });
      await tcp.type("joined");
      const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
      await page.goto(base);
      // Log in: the name field has focus first, Tab to the password, Enter submits.
      await tabTo(page, '[data-testid="login-name"]');
      await page.keyboard.type("Root");
      await page.keyboard.press("Tab");
      await page.keyboard.type("root-password");
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="me"]:has-text("Root")');

      // Send with Enter in the composer.
      await tabTo(page, '[data-testid="composer"]');
      await page.keyboard.type("typed, not clicked");
      await page.keyboard.press("Enter");
      await tcp.type("message", (m) => m.message === "typed, not clicked");

      // Reply: Tab to the reply button of a message, Enter, type, Enter.
      await tcp.send({ type: "message", room: "general", message: "answer me" });
      await page.waitForSelector('[data-testid="message"]:has-text("answer me")');
      await tabTo(page, 'button[aria-label="reply to Terminal"]');
      await page.keyboard.press("Enter");
      await page.waitForSelector(".replying");
      await tabTo(page, '[data-testid="composer"]');
      await page.keyboard.type("here you go");
      await page.keyboard.press("Enter");
      const reply = await tcp.type("message", (m) => m.message === "here you go");
      assert.equal(reply.reply_to?.from_username, "Terminal");
      // A notice (a bot's, say) is shown apart from what people say.
      await tcp.send({ type: "message", room: "general", message: "deploy done", notice: true });
      await page.waitForSelector('[data-testid="message"].notice:has-text("deploy done")');

      // Away, from the keyboard: the others see the words; then back.
      await tabTo(page, '[data-testid="away-input"]');
      await page.keyboard.type("at lunch");
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="back"]');
      await tcp.send({ type: "users", username: "Root" });
      const root = await tcp.type("users_list", (f) => f.all[0]?.username === "Root");
      assert.equal(root.all[0]!.away, "at lunch");
      await tabTo(page, '[data-testid="back"]');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="away-input"]');

      // Switch rooms: join one by its field, then back to general by its button.
      await tabTo(page, 'input[name="room"]');
      await page.keyboard.type("books");
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="chat-title"]:has-text("#books")');
      await tabTo(page, '[data-testid="room-general"] button');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="chat-title"]:has-text("#general")');
      // general cannot be left, so it has no Leave button; books can, from the keyboard.
      assert.equal(await page.locator('[data-testid="leave"]').count(), 0);
      await tabTo(page, '[data-testid="room-books"] button');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="chat-title"]:has-text("#books")');
      await tabTo(page, '[data-testid="leave"]');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="chat-title"]:has-text("#general")');
      await tcp.type("system", (f) => f.event === "left" && f.room === "books");

      // A session request is answered from the keyboard.
      await tcp.send({ type: "session_request", target_username: "Root" });
      await page.waitForSelector('[data-testid="session-prompt"]');
      await tabTo(page, '[data-testid="session-accept"]');
      await page.keyboard.press("Enter");
      await tcp.type("session_accepted");

      // An admin action: mute from the connections table.
      await tabTo(page, '[data-testid="tab-admin"]');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="mute-Terminal"]');
      await tabTo(page, '[data-testid="mute-Terminal"]');
      await page.keyboard.press("Enter");
      await page.waitForSelector('[data-testid="audit"] li:has-text("Root mute Terminal")');
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
    ? "api from another site's page: allowed with --allowed-origins (CORS preflight, bearer token), refused without"
    : "api from another site's page (skipped: /usr/bin/chromium is not installed)",
  ignore: !hasChromium,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat_browser_" });
    // Another site: a page on its own port, so its origin is not the chat's.
    const site = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><title>other site</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    const origin = `http://127.0.0.1:${site.addr.port}`;
    const server = await startServer({
      data: `${dir}/chat.kv`,
      args: ["--allowed-origins", origin],
    });
    const browser = await chromium.launch(LAUNCH);
    // What a page's script does: log in, then list the rooms with the token (a preflight first).
    const useApi = (page: Page, api: string) =>
      page.evaluate(async (api) => {
        try {
          const login = await fetch(`${api}/api/v1/session`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ username: "webapp", password: "webapp-password" }),
          });
          const { token } = await login.json();
          const rooms = await fetch(`${api}/api/v1/rooms`, {
            headers: { authorization: `Bearer ${token}` },
          });
          // The event stream too (EventSource sends no headers: the token is in the query).
          const first = await new Promise<string>((resolve, reject) => {
            const events = new EventSource(`${api}/api/v1/events?token=${token}`);
            events.onmessage = (e) => {
              events.close();
              resolve(JSON.parse(e.data).type);
            };
            events.onerror = () => {
              events.close();
              reject(new Error("the event stream failed"));
            };
          });
          return { status: rooms.status, rooms: (await rooms.json()).rooms.length, first };
        } catch (error) {
          return { error: String(error) };
        }
      }, api);
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(origin);
      assert.deepEqual(await useApi(page, `http://127.0.0.1:${server.httpPort}`), {
        status: 200,
        rooms: 1,
        first: "welcome",
      });
      // The same page against a server that does not allow its origin: the browser refuses.
      const strict = await startServer({ data: `${dir}/strict.kv` });
      try {
        const refused = await useApi(page, `http://127.0.0.1:${strict.httpPort}`);
        assert.ok("error" in refused, JSON.stringify(refused));
      } finally {
        await strict.stop();
      }
    } finally {
      await browser.close();
      await server.stop();
      await site.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
