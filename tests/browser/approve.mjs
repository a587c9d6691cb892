// A person deciding a proxy call on the approver page in headless Chromium.
//
//   node approve.mjs <approval_url> approve|deny
//     Opens the link, reads what the page shows, clicks the decision, waits for the outcome.
//
// Prints one JSON line: what the person saw and the outcome. The assertions are the caller's
// (tests/compat/test_approvals.py).
import { chromium } from "playwright-core";

const [start, decision] = process.argv.slice(2);
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
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  await page.goto(start);
  await page.waitForSelector("#approve");
  out.shown = {
    title: await text(page, "#title"),
    lead: await text(page, "#lead"),
    details: await text(page, "#view"),
    url_has_token: page.url().includes("apv_"),
  };
  await page.click(decision === "deny" ? "#deny" : "#approve");
  await page.waitForFunction(() => {
    const s = document.querySelector("#status").textContent;
    return s && !s.endsWith("…");
  });
  out.outcome = await text(page, "#status");
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
