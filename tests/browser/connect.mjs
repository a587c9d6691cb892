// A person going through the hosted Connect page in headless Chromium (Debian's package).
//
//   node connect.mjs redirect <connect_url> <return_url_prefix>
//     Opens the Connect link, picks the provider, reads the consent screen, continues to the
//     provider and back; waits until the browser lands on the app's return URL.
//   node connect.mjs popup <opener_url>
//     Opens the app's page, which opens the Connect link as a popup (as @alter-ai/connect
//     does); goes through the popup; waits for the message the popup posts to its opener.
//   node connect.mjs page <connect_url>
//     No opener, no return URL: waits for the result page Portcullis shows itself.
//
// Prints one JSON line: what the person saw ({consent, result}) and where it ended. The
// assertions are the caller's (tests/compat/test_connect_browser.py).
import { chromium } from "playwright-core";

const [mode, start, prefix] = process.argv.slice(2);
const TIMEOUT = 20_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The machine has no internet: without these Chromium retries Google's hosts at every start.
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const out = { mode };
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const consoleErrors = [];
  context.on("page", (p) => p.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text())));
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

  let connect = page;
  if (mode === "popup") {
    await page.goto(start);
    const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#open")]);
    connect = popup;
  } else {
    await connect.goto(start);
  }

  out.consent = await consent(connect);
  await connect.click("#continue");

  if (mode === "redirect") {
    await connect.waitForURL((u) => u.href.startsWith(prefix));
    out.final_url = connect.url();
  } else if (mode === "popup") {
    await page.waitForFunction(() => window.received !== undefined);
    out.message = await page.evaluate(() => window.received);
    out.message_origin = await page.evaluate(() => window.receivedFrom);
    await connect.waitForEvent("close");
    out.popup_closed = connect.isClosed();
  } else {
    await connect.waitForURL((u) => u.pathname.endsWith("/sdk/oauth/callback"));
    await connect.waitForLoadState();
    await connect.waitForFunction(() => !document.querySelector(".loading"));
    out.result = {
      title: await text(connect, "#title"),
      lead: await text(connect, "#lead"),
      status: await text(connect, "#status"),
    };
  }
  out.console_errors = consoleErrors;
} catch (e) {
  out.error = String(e && e.message ? e.message : e).slice(0, 2000);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

// The picker (when several providers are offered) and the consent screen's words.
async function consent(p) {
  await p.waitForSelector("button[data-provider], #continue");
  const picker = await p.$$eval("button[data-provider]", (bs) => bs.map((b) => b.dataset.provider));
  if (picker.length) {
    await p.click(`button[data-provider="${picker[0]}"]`);
    await p.waitForSelector("#continue");
  }
  return {
    picker,
    title: await text(p, "#title"),
    scopes: await p.$$eval("ul.scopes code", (cs) => cs.map((c) => c.textContent)),
    continue_label: await text(p, "#continue"),
  };
}

async function text(p, selector) {
  const el = await p.$(selector);
  return el ? (await el.textContent()).trim() : null;
}
