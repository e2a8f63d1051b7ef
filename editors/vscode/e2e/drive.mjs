// End-to-end test of the codekin extension inside a real VS Code (code-server from npm in
// Debian's headless chromium), driven as a user would: open a file and wait for the code
// lenses, Find Similar Code on compute_backoff/1, Semantic Search, the status bar, Retrain.
//
//   node drive.mjs --cache DIR --vsix FILE --workspace DIR [--shots DIR]
//                  [--server-command JSON] [--retrain] [--timeout MS]
//
// The workspace must be a copy of examples/, already indexed (run.sh does both). Checks read
// text from the DOM, never pixels; each step keeps a screenshot in --shots (default
// $CODEKIN_E2E_SHOTS, else a new temp dir). Prints one JSON line per step, then a summary line
// {"benchmark": "vscode_first_code_lens", ...}; exits 1 when a step fails.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

import {
  goToLine, launchBrowser, lensTitles, makeProfile, newPage, openFile, quickInput, rowLabels, rows, runCommand, startCodeServer,
} from "./workbench.mjs";

const TARGET = { file: "webhook_retry_worker.ex", line: 31 };
const TWINS = [/backoff_ms\/3/, /backoff_delay\/1/];
const QUERY = "exponential backoff with jitter before retrying";
const LENS = /^\d+ similar · best [01]\.\d\d$/;

const { values: opts } = parseArgs({
  options: {
    cache: { type: "string" },
    vsix: { type: "string" },
    workspace: { type: "string" },
    shots: { type: "string", default: process.env.CODEKIN_E2E_SHOTS ?? "" },
    "server-command": { type: "string", default: '["codekin", "serve"]' },
    retrain: { type: "boolean", default: false },
    timeout: { type: "string", default: "60000" },
  },
});
const missing = ["cache", "vsix", "workspace"].filter((name) => !opts[name]);
if (missing.length > 0) {
  console.error(`drive.mjs: missing --${missing.join(", --")} (see the header of this file)`);
  process.exit(2);
}
const timeout = Number(opts.timeout);
const shots = opts.shots || mkdtempSync(join(tmpdir(), "codekin-e2e-shots-"));
mkdirSync(shots, { recursive: true });

/** Wait for `locator`, failing at once (with its text) when a codekin error notification shows instead. */
async function expect(page, locator) {
  const error = page.locator(".notifications-toasts .notification-list-item:has(.codicon-error) .notification-list-item-message",
    { hasText: /^codekin: / });
  await locator.or(error).first().waitFor();
  if (!(await locator.first().isVisible()) && (await error.count()) > 0) {
    throw new Error(`a codekin notification instead: ${JSON.stringify(await error.allTextContents())}`);
  }
}

function check(condition, what) {
  if (!condition) {
    throw new Error(what);
  }
}

/** Run the steps in order; each one's outcome and screenshot are reported, the first failure stops. */
async function runSteps(page, steps) {
  const report = [];
  for (const [index, [name, step]] of steps.entries()) {
    const started = Date.now();
    const shot = join(shots, `${String(index + 1).padStart(2, "0")}-${name}.png`);
    try {
      const seen = await step();
      await page.screenshot({ path: shot });
      report.push({ step: name, ok: true, ms: Date.now() - started, seen, screenshot: shot });
      console.log(JSON.stringify(report.at(-1)));
    } catch (error) {
      await page.screenshot({ path: shot }).catch(() => undefined);
      const notifications = await page.locator(".notification-list-item-message").allTextContents().catch(() => []);
      report.push({ step: name, ok: false, ms: Date.now() - started, error: String(error?.message ?? error), notifications,
        screenshot: shot });
      console.log(JSON.stringify(report.at(-1)));
      break;
    }
  }
  return report;
}

async function findSimilar(page) {
  await goToLine(page, TARGET.line);
  await runCommand(page, "codekin: Find Similar Code");
  await expect(page, quickInput(page).locator(".quick-input-title", { hasText: "codekin:" }));
  await rows(page).first().waitFor();
  const title = (await quickInput(page).locator(".quick-input-title").textContent())?.trim();
  const labels = await rowLabels(page);
  TWINS.forEach((twin, rank) => check(labels.slice(0, TWINS.length).some((label) => twin.test(label)),
    `twin ${twin} (expected in the first ${TWINS.length}, #${rank + 1}) not found in ${JSON.stringify(labels)}`));
  await page.keyboard.press("Escape");
  return { title, results: labels.slice(0, 5) };
}

/** Type a query (results come while typing, no Enter), then open the first result. */
async function semanticSearch(page) {
  await runCommand(page, "codekin: Semantic Search");
  const input = quickInput(page).locator(".quick-input-box input");
  await input.waitFor({ state: "visible" });
  await input.pressSequentially(QUERY, { delay: 20 });
  await expect(page, quickInput(page).locator(".quick-input-title", { hasText: /\d+ results/ }));
  const labels = await rowLabels(page);
  check(labels.length > 0, "no search results listed");
  const where = /([\w./-]+\.\w+):(\d+)-(\d+)/.exec(labels[0]);
  check(where !== null, `first result has no FILE:START-END in ${JSON.stringify(labels[0])}`);
  const [, path, start, end] = where;
  await page.keyboard.press("Enter");
  const base = path.split("/").pop();
  await page.locator(`.tab.active[aria-label*="${base}"]`).waitFor();
  // The result's lines are selected, the cursor at their end: "Ln END, Col C (N selected)".
  const selection = page.locator("#status\\.editor\\.selection", { hasText: new RegExp(`Ln ${end}, Col \\d+ \\(\\d+ selected\\)`) });
  await selection.waitFor();
  const editorLine = (await selection.textContent())?.trim();
  return { query: QUERY, results: labels.slice(0, 5), chosen: `${path}:${start}-${end}`, selection: editorLine };
}

async function retrain(page) {
  await runCommand(page, "codekin: Retrain");
  const toast = page.locator(".notifications-toasts .notification-list-item-message", { hasText: /codekin: retraining/ });
  await toast.first().waitFor({ timeout: timeout * 5 });
  const notification = (await toast.first().textContent())?.trim();
  if (!/^codekin: retraining started/.test(notification ?? "")) {
    return { notification };
  }
  // the server's $/progress for the run, which the language client shows in the status bar
  const progress = page.locator(".statusbar-item", { hasText: /codekin: retraining \(/ });
  await progress.first().waitFor({ timeout: timeout * 3 });
  return { notification, progress: (await progress.first().textContent())?.trim() };
}

function steps(page, clock) {
  return [
    ["workbench", async () => {
      await page.locator(".monaco-workbench .part.editor").waitFor();
      clock.workbench = Date.now();
      return { title: await page.title() };
    }],
    ["code-lenses", async () => {
      await openFile(page, TARGET.file);
      clock.fileOpen = Date.now();
      await page.locator(".monaco-editor .codelens-decoration a", { hasText: LENS }).first().waitFor();
      clock.firstLens = Date.now();
      const lenses = await lensTitles(page);
      check(lenses.some((text) => LENS.test(text)), `no "N similar · best 0.xx" lens among ${JSON.stringify(lenses)}`);
      return { lenses };
    }],
    ["status-bar", async () => {
      const item = page.locator(".statusbar-item", { hasText: /codekin: \d+ chunks/ });
      await item.waitFor();
      return { text: (await item.textContent())?.trim() };
    }],
    ["find-similar", () => findSimilar(page)],
    ["semantic-search", () => semanticSearch(page)],
    ...(opts.retrain ? [["retrain", () => retrain(page)]] : []),
  ];
}

/** When a line containing `text` was first written to a VS Code log named `name` (copied into the
 * shots dir after the run), in ms since the epoch; the logs stamp local time to the millisecond. */
function loggedAt(name, text) {
  const log = join(shots, name);
  const line = existsSync(log) ? readFileSync(log, "utf8").split("\n").find((entry) => entry.includes(text)) : undefined;
  const stamp = line && /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)/.exec(line);
  return stamp ? new Date(`${stamp[1]}T${stamp[2]}`).getTime() : undefined;
}

/** Seconds from starting code-server to each phase of the way to the first lens. */
function phases(clock) {
  const since = (at) => (at ? (at - clock.start) / 1000 : null);
  return {
    listening: since(clock.listening),
    browser: since(clock.browser),
    workbench: since(clock.workbench),
    activated: since(loggedAt("exthost.log", "_doActivateExtension codekin.codekin")),
    spawned: since(loggedAt("codekin-output.log", "[info] starting ")),
    initialized: since(loggedAt("codekin-output.log", "the server answered initialize")),
    file_open: since(clock.fileOpen),
    first_lens: since(clock.firstLens),
  };
}

/** The extension's output channel and the extension host's log, kept beside the screenshots. */
function keepLogs(logs) {
  const found = existsSync(logs) ? readdirSync(logs, { recursive: true }) : [];
  for (const [suffix, kept] of [["codekin.log", "codekin-output.log"], ["remoteexthost.log", "exthost.log"]]) {
    const log = found.find((name) => name.endsWith(suffix));
    if (log) {
      cpSync(join(logs, log), join(shots, kept));
    }
  }
}

async function main() {
  const profile = makeProfile(opts.cache, opts.vsix, JSON.parse(opts["server-command"]));
  const clock = { start: Date.now() };
  const server = startCodeServer(profile, resolve(opts.workspace), timeout);
  // The browser starts beside code-server, as a user's browser is up before VS Code is opened in it.
  const launching = launchBrowser(opts.cache).then((browser) => {
    clock.browser = Date.now();
    return browser;
  });
  launching.catch(() => undefined);  // reported where it is awaited
  let browser;
  let report = [];
  try {
    const url = await server.url;
    clock.listening = Date.now();
    browser = await launching;
    const page = await newPage(browser);
    page.setDefaultTimeout(timeout);
    clock.open = Date.now();
    await page.goto(`${url}/?folder=${encodeURIComponent(resolve(opts.workspace))}`);
    report = await runSteps(page, steps(page, clock));
  } finally {
    browser ??= await launching.catch(() => undefined);
    await browser?.close();
    await server.stop();
    keepLogs(join(profile.data, "logs"));
    rmSync(profile.root, { recursive: true, force: true });
  }
  const ok = report.length > 0 && report.every((step) => step.ok) && report.length === steps({}, {}).length;
  console.log(JSON.stringify({
    benchmark: "vscode_first_code_lens",
    ok,
    start_to_first_lens_s: clock.firstLens ? (clock.firstLens - clock.start) / 1000 : null,
    open_to_first_lens_s: clock.firstLens ? (clock.firstLens - clock.open) / 1000 : null,
    start_to_server_spawn_s: phases(clock).spawned,
    phases_s: phases(clock),
    steps: report.map((step) => `${step.step}:${step.ok ? "ok" : "FAILED"}`),
    screenshots: shots,
  }));
  if (!ok) {
    console.error(`codekin e2e failed; code-server log:\n${server.log().slice(-4000)}`);
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
