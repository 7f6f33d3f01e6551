// Lighthouse on the console as a person uses it (run by hand, with Node and Debian's Chromium):
//   npm install --prefix /tmp/lh lighthouse@12.2.3 puppeteer-core@23
//   NODE_PATH=/tmp/lh/node_modules node bench/lighthouse_flow.mjs http://127.0.0.1:8080/ NAME PASSWORD
// A user flow: the login page loaded (navigation), logging in and sending a message (timespan:
// layout shift across the switch from login to chat), then the chat view (snapshot).
// Prints each step's category scores (snapshots have no performance metrics) and what failed.
import { createRequire } from "node:module";
const require = createRequire(
  process.env.NODE_PATH ? process.env.NODE_PATH + "/" : import.meta.url,
);
const puppeteer = require("puppeteer-core");
const { startFlow } = await import(require.resolve("lighthouse"));

const [base, name = "Root", password = "root-password"] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 700 });
const flow = await startFlow(page, { name: "login to chat" });
await flow.navigate(base);
await flow.startTimespan({ name: "log in and send" });
await page.type('[data-testid="login-name"]', name);
await page.type('[data-testid="login-password"]', password);
await page.click('[data-testid="login-submit"]');
await page.waitForSelector('[data-testid="composer"]');
await page.type('[data-testid="composer"]', "hello from lighthouse");
await page.click('[data-testid="send"]');
await page.waitForSelector('[data-testid="message"]');
await new Promise((r) => setTimeout(r, 1000));
await flow.endTimespan();
await flow.snapshot({ name: "chat view" });
const result = await flow.createFlowResult();
for (const step of result.steps) {
  const scores = Object.fromEntries(
    Object.entries(step.lhr.categories)
      .filter(([, c]) => c.auditRefs.some((r) => r.weight > 0))
      .map(([k, c]) => [k, Math.round(c.score * 100)]),
  );
  const cls = step.lhr.audits["cumulative-layout-shift"]?.displayValue ?? "-";
  console.log(`${step.name}: ${JSON.stringify(scores)} CLS ${cls}`);
  for (const a of Object.values(step.lhr.audits)) {
    if (a.score !== null && a.score < 1 && a.scoreDisplayMode === "binary") {
      console.log(`  failed: ${a.id}`);
    }
  }
}
await browser.close();
