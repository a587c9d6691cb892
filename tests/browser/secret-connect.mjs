// A person going through the hosted managed-secret Connect page in headless Chromium.
//
//   node secret-connect.mjs <connect_url> <return_url_prefix> <key>
//     Opens the link, signs in at the identity provider, comes back, types the key into the
//     form, confirms, and waits until the browser lands on the app's return URL.
//
// Prints one JSON line: what the person saw at each step and where it ended. The assertions
// are the caller's (tests/compat/test_secret_connect.py).
import { chromium } from "playwright-core";

const [start, prefix, key] = process.argv.slice(2);
const TIMEOUT = 20_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const out = {};
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

  await page.goto(start);
  await page.waitForSelector("#signin");
  out.signin = { title: await text(page, "#title"), lead: await text(page, "#lead"), form: await page.$$eval("input", (i) => i.length) };
  await page.click("#signin");
  // The identity provider signs the person in and sends them back to the page.
  await page.waitForSelector("input[name=token]");
  out.consent = { title: await text(page, "#title"), lead: await text(page, "#lead"), url_has_token: page.url().includes("ms_sess_") };
  await page.fill("input[name=token]", key);
  await page.click("#confirm");
  await page.waitForURL((u) => u.href.startsWith(prefix));
  out.final_url = page.url();
  out.console_errors = consoleErrors;
} catch (e) {
  out.error = String(e && e.message ? e.message : e).slice(0, 2000);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

async function text(p, selector) {
  return ((await p.textContent(selector)) || "").trim();
}
