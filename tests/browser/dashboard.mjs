// The dashboard in a real headless Chromium, driven by playwright-core (started by
// tests/e2e/web.rs): log in, see every node, watch the users total change live after a join,
// open a node's history chart; screenshots of the dashboard and of a node page.
//
// Then, as an admin: create an integration (its secret shown once), and download the month's
// usage report as CSV.
//
// Usage: node dashboard.mjs '{"base", "user", "password", "admin", "adminPassword", "join",
//                             "shots", "nodes": [...]}'
// Prints one "ok: ..." line per step; exits non-zero with the reason on the first failure.
import { chromium } from "playwright-core";
import { readFile } from "node:fs/promises";

const { base, user, password, admin, adminPassword, join: joinUrl, shots, nodes } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"],
});
const fail = async (why) => { console.error("FAIL: " + why); await browser.close(); process.exit(1); };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  // The pages' Content-Security-Policy allows no inline script: anything it blocks is a bug.
  const blocked = [];
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) blocked.push(m.text()); });
  await page.goto(base + "/");
  if (!page.url().endsWith("/login")) await fail("not sent to the login page: " + page.url());
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', "not-the-password");
  await page.click('button[type="submit"]');
  if (!(await page.textContent(".error") || "").includes("Wrong user or password")) await fail("a wrong password was not refused");
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await page.waitForURL(base + "/");
  console.log("ok: logged in");

  for (const node of nodes) {
    await page.waitForSelector(`tr[data-node="${node}"]`, { timeout: 10000 });
  }
  await page.waitForSelector("#live.on", { timeout: 10000 });
  console.log("ok: every node shown, live updates on");

  const users = async () => Number((await page.textContent('[data-total="users"]')).trim());
  const before = await users();
  const joined = await fetch(joinUrl);
  if (!joined.ok) await fail("the join call failed: " + joined.status);
  await page.waitForFunction(
    (n) => Number(document.querySelector('[data-total="users"]').textContent.trim()) > n,
    before, { timeout: 15000 });
  console.log(`ok: users went from ${before} to ${await users()} without a reload`);
  const nowrap = await page.evaluate(() =>
    [...document.querySelectorAll(".sub.status")].every((e) => getComputedStyle(e).whiteSpace === "nowrap"));
  if (!nowrap) await fail("a node's online/OFFLINE state may wrap mid-word");
  await page.screenshot({ path: shots + "/dashboard.png", fullPage: true });

  await page.click(`tr[data-node="${nodes[0]}"] a`);
  await page.waitForSelector("#chart-resources canvas", { timeout: 10000 });
  await page.waitForFunction(() => document.body.dataset.chart === "hour");
  const points = await page.textContent("#points");
  if (!/^[1-9]\d* points$/.test(points)) await fail("the chart has no points: " + points);
  await page.click('button[data-range="day"]');
  await page.waitForFunction(() => document.body.dataset.chart === "day");
  await page.click('button[data-range="hour"]');
  await page.waitForFunction(() => document.body.dataset.chart === "hour");
  // The charts span the chosen hour, even with few points (not years), and their y axes show
  // compact labels (1.2M, never a cut "1,234,567").
  const axes = await page.evaluate(() => Conflux.shown.map((u) => ({
    span: u.scales.x.max - u.scales.x.min,
    labels: (u.axes[1]._values || []).map(String),
  })));
  for (const a of axes) {
    if (!(a.span > 0 && a.span <= 3600 * 1.2)) await fail("a chart spans " + a.span + " s for an hour");
    if (a.labels.some((l) => l.includes(",") || l.length > 12)) await fail("y labels too long: " + a.labels);
  }
  console.log("ok: node page with its history chart (" + points + "), the hour spanned, compact labels");
  await page.screenshot({ path: shots + "/node.png", fullPage: true });

  await page.click('header a[href="/meetings"]');
  await page.waitForSelector("#meetings tbody tr[data-meeting]", { timeout: 10000 });
  const meetingId = await page.getAttribute("#meetings tbody tr[data-meeting]", "data-meeting");
  await page.fill('#filter input[name="q"]', meetingId.slice(0, 4).toUpperCase());
  await Promise.all([page.waitForURL(/q=/), page.click("#filter button")]);
  if (!(await page.$(`#meetings tr[data-meeting="${meetingId}"]`))) await fail("the search does not find " + meetingId);
  await page.screenshot({ path: shots + "/meetings.png", fullPage: true });
  await page.click('header a[href="/recordings"]');
  await page.waitForSelector("#recordings", { timeout: 10000 });
  console.log("ok: meetings page (searched " + meetingId + ") and recordings page");

  await page.click('header a[href="/alerts"]');
  await page.waitForSelector("#alerts tbody tr", { timeout: 10000 });
  const alerts = await page.$$eval("#alerts tbody tr[data-alert-node]", (rows) => rows.length);
  await page.screenshot({ path: shots + "/alerts.png", fullPage: true });
  console.log("ok: alert history (" + alerts + " changes)");

  await page.click('header a[href="/network"]');
  await page.waitForFunction(() => document.body.dataset.chart === "hour");
  const total = await page.textContent("#points");
  if (!/^[1-9]\d* points$/.test(total)) await fail("the network chart has no points: " + total);
  console.log("ok: network history (" + total + ")");

  await page.click('header button[type="submit"]');
  await page.waitForURL(base + "/login");
  await page.goto(base + "/");
  if (!page.url().endsWith("/login")) await fail("still logged in after logging out");
  console.log("ok: logged out");

  await page.fill('input[name="username"]', admin);
  await page.fill('input[name="password"]', adminPassword);
  await page.click('button[type="submit"]');
  await page.waitForURL(base + "/");
  await page.click('header a[href="/admin"]');
  await page.fill('form[action="/admin/integrations/add"] input[name="name"]', "Browser University");
  await page.click('form[action="/admin/integrations/add"] button');
  const secret = (await page.textContent("#new-secret")).trim();
  if (!/^[0-9a-f]{40}$/.test(secret)) await fail("no new secret shown: " + secret);
  await page.waitForSelector('tr[data-integration="Browser University"]');
  if (!(await page.textContent("#audit")) && !(await page.content()).includes("integrations add")) await fail("not audited");
  await page.goto(base + "/admin");
  if ((await page.content()).includes(secret)) await fail("the secret is shown again");
  console.log("ok: integration created, its secret shown once");
  const remove = 'tr[data-integration="Browser University"] form[action="/admin/integrations/remove"] button';
  page.once("dialog", (d) => d.dismiss());
  await page.click(remove);
  await page.waitForTimeout(300);
  if (!(await page.$('tr[data-integration="Browser University"]'))) await fail("removed without confirmation");
  page.once("dialog", (d) => d.accept());
  await page.click(remove);
  await page.waitForSelector('tr[data-integration="Browser University"]', { state: "detached" });
  console.log("ok: integration removed once confirmed");
  // Actions that end meetings ask first, naming the node; dismissed, nothing happens.
  const panic = `tr[data-admin-node="${nodes[0]}"] form[action="/admin/nodes/panic"] button`;
  let asked = "";
  page.once("dialog", (d) => { asked = d.message(); d.dismiss(); });
  await page.click(panic);
  await page.waitForTimeout(300);
  if (!asked.includes("Panic " + nodes[0])) await fail("panic did not ask first: " + asked);
  const state = await page.textContent(`tr[data-admin-node="${nodes[0]}"] td:nth-child(2)`);
  if (!state.includes("enabled")) await fail("a dismissed panic changed the node: " + state);
  for (const action of ["disable", "force-off"]) {
    if (!(await page.$(`tr[data-admin-node="${nodes[0]}"] form[action="/admin/nodes/${action}"][data-confirm]`))) await fail(action + " does not ask first");
  }
  if (!(await page.$('form[action="/admin/users/remove"][data-confirm]'))) await fail("removing an account does not ask first");
  console.log("ok: panic, disable, force-off and account removal ask first");

  await page.click('header a[href="/reports"]');
  await page.selectOption('select[name="integration"]', { label: "demo" });
  await Promise.all([page.waitForURL(/integration=/), page.click('form[action="/reports"] button')]);
  await page.waitForFunction(() => document.body.dataset.chart === "report");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  const csv = await readFile(await download.path(), "utf8");
  const today = new Date().toISOString().slice(0, 10);
  const line = csv.split("\r\n").find((l) => l.includes("," + today + ","));
  if (!csv.startsWith("integration,day,meetings,")) await fail("not the CSV report: " + csv.slice(0, 80));
  if (!line || Number(line.split(",")[2]) < 1) await fail("today's meeting is not in the report: " + line);
  console.log("ok: usage report downloaded as CSV (" + download.suggestedFilename() + ")");
  if (blocked.length) await fail("blocked by the Content-Security-Policy: " + blocked.join("; "));
  console.log("ok: nothing blocked by the Content-Security-Policy");
} catch (e) {
  await fail(String(e && e.stack || e));
}
await browser.close();
