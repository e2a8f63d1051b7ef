// A real VS Code for the end-to-end test: a fresh code-server profile with the .vsix installed,
// code-server on a free port, Debian's headless chromium through playwright-core, and the few
// things a user does in the workbench (command palette, Quick Open, Go to Line).
//
// Everything is read from the DOM (text and aria-labels), never from pixels.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const codeServerEntry = (cache) => join(cache, "node_modules/code-server/out/node/entry.js");

/** A fresh VS Code profile: user data, extensions (with the .vsix installed) and settings. */
export function makeProfile(cache, vsix, serverCommand) {
  const root = mkdtempSync(join(tmpdir(), "codekin-e2e-vscode-"));
  const profile = { root, data: join(root, "data"), extensions: join(root, "extensions"), config: join(root, "config.yaml") };
  mkdirSync(join(profile.data, "User"), { recursive: true });
  writeFileSync(profile.config, "bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n");
  writeFileSync(
    join(profile.data, "User/settings.json"),
    JSON.stringify({
      "codekin.server.command": serverCommand,
      "workbench.startupEditor": "none",
      "workbench.tips.enabled": false,
      "workbench.enableExperiments": false,
      "security.workspace.trust.enabled": false,
      "telemetry.telemetryLevel": "off",
      "update.mode": "none",
      "extensions.autoCheckUpdates": false,
      "extensions.autoUpdate": false,
      "chat.commandCenter.enabled": false,
      "window.commandCenter": false,
      // startup work the test never uses, all of it on the way to the first lens: the git
      // extension's search for repositories (a git process per folder level), the terminal's
      // session restore, recommendation scans, the debugger's auto-attach setup
      "git.enabled": false,
      "terminal.integrated.enablePersistentSessions": false,
      "extensions.ignoreRecommendations": true,
      "debug.javascript.autoAttachFilter": "disabled",
    }),
  );
  const base = ["--user-data-dir", profile.data, "--extensions-dir", profile.extensions, "--config", profile.config];
  execFileSync(process.execPath, [codeServerEntry(cache), ...base, "--install-extension", resolve(vsix)], { stdio: "pipe" });
  return { ...profile, cache, args: base };
}

/** Start code-server on a free port; resolves with its URL once it listens. */
export function startCodeServer(profile, workspace, timeout) {
  const args = [codeServerEntry(profile.cache), ...profile.args, "--bind-addr", "127.0.0.1:0", "--auth", "none", "--disable-telemetry",
    "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override", "--disable-proxy",
    "--ignore-last-opened", workspace];
  // Its own process group: the extension host and `codekin serve` are in it, and stop() waits for all.
  // VSCODE_CLI=1, as `code` sets it when started from a terminal: the environment is this one, so
  // the server does not first run the user's login shell (`bash -i -l -c node ...`) to read it;
  // that probe ran before the extension host was launched, 0.5-1 s on the way to the first lens.
  const env = { ...process.env, VSCODE_CLI: "1" };
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
  let log = "";
  const url = new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`code-server did not start in ${timeout} ms:\n${log}`)), timeout);
    const read = (chunk) => {
      log += chunk.toString();
      const match = /HTTP server listening on (http:\/\/[\d.]+:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => reject(new Error(`code-server exited with ${code}:\n${log}`)));
  });
  url.catch(() => undefined);  // reported where it is awaited
  return { child, url, log: () => log, stop: () => stopGroup(child.pid) };
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stop code-server, let it shut the extension host and the language server down, then make sure
 * nothing of its process group is left (a straggler would write into a deleted workspace). */
async function stopGroup(pgid) {
  for (const [signal, waitMs] of [["SIGTERM", 15_000], ["SIGKILL", 5_000]]) {
    try {
      process.kill(signal === "SIGTERM" ? pgid : -pgid, signal);
    } catch {
      return;
    }
    for (let waited = 0; waited < waitMs && groupAlive(pgid); waited += 250) {
      await sleep(250);
    }
    if (!groupAlive(pgid)) {
      return;
    }
  }
}

export async function launchBrowser(cache) {
  const { chromium } = createRequire(join(cache, "package.json"))("playwright-core");
  return chromium.launch({
    executablePath: process.env.CODEKIN_E2E_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page for the workbench, asking for uncompressed responses: code-server gzips every response
 * as it sends it (11 MB of workbench JS at each start), CPU time that buys nothing over localhost. */
export function newPage(browser) {
  return browser.newPage({ viewport: { width: 1400, height: 900 }, extraHTTPHeaders: { "Accept-Encoding": "identity" } });
}

// -- what the user does -------------------------------------------------------------------

export const quickInput = (page) => page.locator(".quick-input-widget");
export const rows = (page) => page.locator(".quick-input-widget .quick-input-list .monaco-list-row");

/** Command palette: run the command whose title is `title` ("codekin: Find Similar Code"). */
export async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible" });
  await input.fill(`>${title}`);
  await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor();
  await page.keyboard.press("Enter");
}

export async function openFile(page, path) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible" });
  const base = path.split("/").pop();
  await input.fill(base);
  await rows(page).filter({ hasText: base }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(`.tab.active[aria-label*="${base}"]`).waitFor();
}

export async function goToLine(page, line) {
  await page.keyboard.press("Control+G");
  await page.locator(".quick-input-widget .quick-input-box input").fill(`:${line}`);
  await page.keyboard.press("Enter");
  await page.locator("#status\\.editor\\.selection", { hasText: `Ln ${line},` }).waitFor();
}

export async function lensTitles(page) {
  const texts = await page.locator(".monaco-editor .codelens-decoration a").allTextContents();
  return texts.map((text) => text.trim()).filter((text) => text !== "");
}

export async function rowLabels(page) {
  return rows(page).evaluateAll((elements) => elements.map((element) => element.getAttribute("aria-label") ?? ""));
}

