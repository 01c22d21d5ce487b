// Drives a real VS Code (code-server, started by scripts/test-vscode.sh) in Debian chromium through
// playwright-core. Two phases, one per code-server start:
//
//   --phase ui     UI tests, as a user would do them, against a real sshd: a workspace whose
//                  .vscode/syncengine.json points at it; the status bar item; Sync Now from the
//                  palette; sync on save (Quick Open, typing, Ctrl+S; quick saves coalescing); the
//                  status bar click that turns sync on save off and on; Preview Sync and the Sync
//                  view's "Incoming" entry opening the diff editor; a conflict in the Sync view and the
//                  status bar, settled with "Accept Remote" in the diff editor's title bar; Clear Sync
//                  State through its dialog; and in a second workspace, a target without a key: the
//                  password input box, a wrong password's error notification, Show Log, the right
//                  password. Every result is checked on disk (the server's folder and the workspace).
//                  A screenshot after every step, with a caption of what the step checked.
//   --phase host   the mocha suite inside the extension host (out/vscode-suite/index.js), through
//                  code-server's `payload` URL (the server runs with enable-smoke-test-driver); the
//                  end comes back through window.codeAutomationExit, the results through a JSON file.
//
// Steps come in groups that build on each other: a failed step skips the rest of its group only;
// the next group starts from what it needs (it syncs first when its files are not in sync, turns
// sync on save back on). Only the first two steps (the workbench, the status bar item) stop
// everything when they fail.
//
// Each phase starts its own sshd (test/servers/sshd.ts, bundled by test-vscode.sh) and stops it at
// the end. Prints PASS/FAIL lines and "N passed, M failed"; writes <OUT>/<phase>-results.json;
// exits 1 when anything failed.
//
// Environment: CS_PORT (required), SYNCENGINE_VSCODE_WORK (scratch folder), SYNCENGINE_VSCODE_OUT
// (screenshots and logs), SSHD_MODULE (the bundled sshd helper), CHROMIUM_BIN (/usr/bin/chromium);
// host phase: EXT_DEV_PATH (the installed extension's folder), TESTS_PATH (the suite's index.js).
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';

const require = createRequire(import.meta.url);
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const PHASE = arg('phase', 'ui');
if (PHASE !== 'ui' && PHASE !== 'host') throw new Error(`--phase ui|host, not ${PHASE}`);
const PORT = process.env.CS_PORT;
if (!PORT) throw new Error('CS_PORT is not set');
const WORK = path.resolve(process.env.SYNCENGINE_VSCODE_WORK || '/tmp/syncengine-vscode');
const OUT = path.resolve(process.env.SYNCENGINE_VSCODE_OUT || 'test-results/vscode');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = Number(process.env.STEP_TIMEOUT_MS || 120_000);
const INTEST_TIMEOUT_MS = Number(process.env.INTEST_TIMEOUT_MS || 300_000);
const BASE = `http://127.0.0.1:${PORT}`;
fs.mkdirSync(OUT, { recursive: true });

const t0 = Date.now();
const logFile = path.join(OUT, `${PHASE}-driver.log`);
fs.writeFileSync(logFile, '');
function log(message) {
  const line = `[${PHASE} ${((Date.now() - t0) / 1000).toFixed(1)}s] ${message}`;
  console.log(line);
  fs.appendFileSync(logFile, line + '\n');
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- a very small test framework
const results = [];
let page; // the workbench page, once open
let shots = 0;
let blocked; // set when a step everything needs failed: the rest fail at once with this reason
let groupBlocked; // set when a step of the current group failed: the rest of that group is not run
let evidenceLines = []; // what the running step checked, for the log and the screenshot's caption

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

/** Tell what a step found (a server file's content, a status bar label): logged and shown on its screenshot. */
function evidence(line) {
  evidenceLines.push(line);
  log(`  ${line}`);
}

// A caption over the workbench for the screenshot: the step and what it checked, e.g. the content of
// a file on the server, which the workbench itself cannot show. Removed right after the screenshot.
async function showCaption(title, lines, failed) {
  await page
    .evaluate(({ title, lines, failed }) => {
      document.getElementById('syncengine-test-caption')?.remove();
      const box = document.createElement('div');
      box.id = 'syncengine-test-caption';
      box.style.cssText = [
        // Bottom left of the editor area: clear of the side bar, the editor's first lines, the
        // notifications (bottom right) and the status bar.
        'position:fixed', 'bottom:34px', 'left:360px', 'max-width:560px', 'z-index:100000', 'pointer-events:none',
        'font:12px/1.45 monospace', 'white-space:pre-wrap', 'word-break:break-word', 'padding:8px 10px',
        `background:${failed ? '#fde2e2' : '#fff8c5'}`, `color:#1f2328`, `border:2px dashed ${failed ? '#cf222e' : '#9a6700'}`,
        'box-shadow:0 2px 8px rgba(0,0,0,.3)', 'opacity:.95',
      ].join(';');
      const head = document.createElement('div');
      head.style.fontWeight = 'bold';
      head.textContent = `TEST ${failed ? 'FAILED' : 'passed'}: ${title}`;
      box.append(head);
      for (const line of lines) {
        const div = document.createElement('div');
        div.textContent = `• ${line}`;
        box.append(div);
      }
      document.body.append(box);
    }, { title, lines: lines.slice(-8).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l)), failed })
    .catch(() => {});
}

async function screenshot(name, caption) {
  if (!page) return undefined;
  const file = path.join(OUT, `${PHASE}-${String(++shots).padStart(2, '0')}-${slug(name)}.png`);
  try {
    if (caption) await showCaption(caption.title, caption.lines, caption.failed);
    await page.screenshot({ path: file, timeout: 20_000 });
    return path.relative(process.cwd(), file);
  } catch (error) {
    log(`  (screenshot failed: ${error.message.split('\n')[0]})`);
    return undefined;
  } finally {
    if (caption) await page.evaluate(() => document.getElementById('syncengine-test-caption')?.remove()).catch(() => {});
  }
}

function record(name, error, ms, shot, extra = {}) {
  const r = { name, state: error ? 'failed' : 'passed', ms, ...extra, ...(shot ? { screenshot: shot } : {}) };
  if (error) r.error = String(error?.message ?? error).split('\n').slice(0, 12).join('\n');
  results.push(r);
  log(`${error ? 'FAIL' : 'PASS'} ${name} (${(ms / 1000).toFixed(1)}s)${error ? `\n      ${r.error.replace(/\n/g, '\n      ')}` : ''}`);
}

/** Starts a group of steps that build on each other: a failed step skips the rest of its group only. */
function group(name) {
  groupBlocked = undefined;
  log(`---- ${name}`);
}

/**
 * Runs one step with a time limit, then screenshots it (with a caption of what it checked). A failed
 * step skips the rest of its group; a failed `essential` step skips everything after it.
 */
async function step(name, fn, { essential = false, timeout = STEP_TIMEOUT_MS } = {}) {
  const start = Date.now();
  let error;
  const skipped = blocked ?? groupBlocked;
  evidenceLines = [];
  if (skipped) {
    error = new Error(`not run: ${skipped}`);
  } else {
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeout / 1000}s`)), timeout);
        }),
      ]);
    } catch (e) {
      error = e ?? new Error('failed');
    } finally {
      clearTimeout(timer);
    }
  }
  const lines = error ? [...evidenceLines, String(error?.message ?? error).split('\n')[0]] : evidenceLines;
  const shot = skipped ? undefined : await screenshot(name, { title: name, lines, failed: Boolean(error) });
  record(name, error, Date.now() - start, shot, evidenceLines.length ? { evidence: evidenceLines } : {});
  if (error && !skipped) {
    if (essential) blocked = `"${name}" failed`;
    groupBlocked = `"${name}" failed`;
  }
  return !error;
}

/** Best-effort clean-up between groups (never fails a test; a failure is logged). */
async function tidy(what, fn) {
  try {
    await Promise.race([fn(), sleep(45_000).then(() => { throw new Error('timed out after 45s'); })]);
  } catch (error) {
    log(`  (tidy-up "${what}" failed: ${String(error?.message ?? error).split('\n')[0]})`);
  }
}

async function waitFor(what, check, timeout, interval = 250) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout / 1000}s${last ? ` (${last.message})` : ''}`);
    await sleep(interval);
  }
}

// ---------------------------------------------------------------- servers, workspace, browser
let sshd;
let context;
let chromiumDir;
async function cleanup() {
  try {
    await context?.close();
  } catch {
    // already gone
  }
  context = undefined;
  try {
    await sshd?.stop();
  } catch {
    // already gone
  }
  sshd = undefined;
  if (chromiumDir) fs.rmSync(chromiumDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    log(`${signal}: stopping`);
    cleanup().finally(() => process.exit(130));
  });
}

async function startServer() {
  const modulePath = process.env.SSHD_MODULE;
  if (!modulePath) throw new Error('SSHD_MODULE is not set');
  const { startSshd } = require(path.resolve(modulePath));
  sshd = await startSshd();
  const remoteDir = sshd.makeDir(PHASE);
  log(`sshd on 127.0.0.1:${sshd.port} as ${sshd.user}; remote folder ${remoteDir}`);
  return remoteDir;
}

/** A workspace folder with these files and a .vscode/syncengine.json with one target, "server". */
function writeWorkspace(ws, remoteDir, files, target = {}) {
  fs.rmSync(ws, { recursive: true, force: true });
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), body);
  }
  const config = {
    targets: {
      server: {
        url: `sftp://${sshd.user}@127.0.0.1:${sshd.port}${remoteDir}`,
        syncOnSave: true,
        // A file changed on both sides stays a conflict for the user to settle (the Sync view).
        conflict: 'manual',
        privateKey: sshd.keyFile,
        knownHosts: sshd.knownHostsFile,
        sshConfig: '',
        ...target,
      },
    },
  };
  for (const [key, value] of Object.entries(config.targets.server)) if (value === undefined) delete config.targets.server[key];
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  fs.writeFileSync(path.join(ws, '.vscode', 'syncengine.json'), JSON.stringify(config, null, 2) + '\n');
}

async function openBrowser() {
  chromiumDir = fs.mkdtempSync(path.join(WORK, `chromium-${PHASE}-`));
  // playwright refuses --user-data-dir in args: launchPersistentContext takes it as a parameter.
  context = await chromium.launchPersistentContext(chromiumDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const p = context.pages()[0] ?? (await context.newPage());
  const consoleLog = path.join(OUT, `${PHASE}-browser-console.log`);
  fs.writeFileSync(consoleLog, '');
  p.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') fs.appendFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`);
  });
  p.on('pageerror', (e) => fs.appendFileSync(consoleLog, `[pageerror] ${e.message}\n`));
  // Leaving a workbench for another folder: never stay stuck on a "leave the page?" prompt.
  p.on('dialog', (d) => void d.accept().catch(() => {}));
  return p;
}

async function openWorkbench(url) {
  // The first load of a fresh server can take 30 s on a busy machine.
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 180_000 });
  await page.waitForSelector('.monaco-workbench', { timeout: 180_000 });
  await page.waitForSelector('.part.statusbar', { timeout: 120_000 });
}

// ---------------------------------------------------------------- phase: ui
const UI_FILES = {
  'README.md': '# Sample project\n\nSynced by SyncEngine from VS Code.\n',
  'src/main.js': "console.log('hello from the workspace');\n",
  'src/lib/util.js': 'export const answer = 42;\n',
  'docs/notes with spaces.txt': 'a file name with spaces\n',
  'docs/ünïcödé.txt': 'non-ASCII name\n',
  'data/blob.bin': randomBytes(200 * 1024),
  'notes/todo.txt': 'To do:\n',
};

// The extension's status bar item: its id is "<extension id>.<item id>" (not a message that
// vscode.window.setStatusBarMessage shows for a few seconds, which may start with "SyncEngine" too).
function syncEngineItem() {
  return page.locator('.part.statusbar [id="syncengine.syncengine.syncengine.status"]').first();
}

async function statusBarLabels() {
  return page
    .locator('.part.statusbar .statusbar-item')
    .evaluateAll((items) => items.map((el) => el.querySelector('[aria-label]')?.getAttribute('aria-label') || el.textContent?.trim()).filter(Boolean))
    .catch(() => []);
}

/** The SyncEngine status bar item: its accessible label and its visible text. */
async function statusItem() {
  // Both read at once: the item may change between two reads.
  return syncEngineItem().evaluate((el) => {
    const a = el.querySelector('[aria-label]') ?? el;
    return { label: a.getAttribute('aria-label') ?? '', text: (a.textContent ?? '').trim() };
  }, undefined, { timeout: 5000 });
}

async function waitForStatus(what, test, timeout = 30_000) {
  let last;
  try {
    return await waitFor(what, async () => {
      last = await statusItem();
      return test(last) ? last : undefined;
    }, timeout);
  } catch (error) {
    throw new Error(`${error.message}; status bar item: ${JSON.stringify(last)}`);
  }
}

/** A fresh command palette (F1) with this text typed after ">". */
async function openPalette(text) {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('input').first();
  for (let attempt = 1; ; attempt++) {
    // A quick input that is open (or fading out) is closed first: filling one that is going away hangs.
    if (await widget.isVisible().catch(() => false)) {
      await page.keyboard.press('Escape').catch(() => {});
      await widget.waitFor({ state: 'hidden', timeout: 5000 }).catch(() => {});
    }
    await page.locator('.part.editor').click({ position: { x: 300, y: 200 } }).catch(() => {});
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: 15_000 });
      await input.fill(`>${text}`, { timeout: 10_000 });
      return input;
    } catch (error) {
      if (attempt >= 3) throw error;
      log(`  (command palette not ready: ${String(error.message).split('\n')[0]}; again)`);
    }
  }
}

/** Runs a command from the palette (F1) by its full title, e.g. "SyncEngine: Sync Now". */
async function runCommand(title) {
  await openPalette(title);
  const row = page.locator(`.quick-input-list .monaco-list-row[aria-label^="${title}"]`).first();
  try {
    await row.waitFor({ timeout: 30_000 });
  } catch {
    const rows = await page.locator('.quick-input-list .monaco-list-row').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))).catch(() => []);
    throw new Error(`"${title}" is not in the command palette; rows: ${JSON.stringify(rows)}`);
  }
  await row.click();
}

async function notifications() {
  return page.locator('.notification-toast').allInnerTexts().catch(() => []);
}

async function dismissNotifications() {
  // "Notifications: Clear All Notifications"
  await runCommand('Notifications: Clear All Notifications');
  await page.locator('.notification-toast').first().waitFor({ state: 'detached', timeout: 5000 }).catch(() => {});
}

/** The editor tabs' labels (the active one marked with *). */
async function tabs() {
  return page
    .locator('.part.editor .tabs-container .tab')
    .evaluateAll((els) => els.map((e) => `${e.classList.contains('active') ? '*' : ''}${e.getAttribute('aria-label') ?? e.textContent?.trim()}`))
    .catch(() => []);
}

async function closeAllEditors() {
  await runCommand('View: Close All Editors');
  await page.keyboard.press('Escape').catch(() => {});
}

/** Quick Open (Ctrl+P): opens a workspace file in the editor, focused. */
async function quickOpen(rel) {
  const name = path.basename(rel);
  await page.keyboard.press('Escape').catch(() => {});
  await page.locator('.part.editor').click({ position: { x: 300, y: 200 } }).catch(() => {});
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 30_000 });
  await input.fill(rel);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor({ timeout: 30_000 });
  await page.keyboard.press('Enter');
  await page.locator('.part.editor .tabs-container .tab.active', { hasText: name }).waitFor({ timeout: 30_000 });
  await page.locator('.part.editor .editor-instance .monaco-editor.focused').waitFor({ timeout: 30_000 });
}

/** Types at the end of the active editor (clicked first: a click elsewhere may have taken the focus). */
async function typeAtEnd(text) {
  const editor = page.locator('.part.editor .editor-instance .monaco-editor').first();
  if (!(await page.locator('.part.editor .editor-instance .monaco-editor.focused').count())) {
    await editor.locator('.view-lines').click({ position: { x: 5, y: 5 } });
    await page.locator('.part.editor .editor-instance .monaco-editor.focused').waitFor({ timeout: 10_000 });
  }
  await page.keyboard.press('Control+End');
  if (text) await page.keyboard.type(text, { delay: 5 });
}

/** Ctrl+S, and wait until the file on disk has the text typed last. */
async function save(file, expected) {
  await page.keyboard.press('Control+S');
  await waitFor(`the editor saved ${path.basename(file)}`, () => fs.readFileSync(file, 'utf8').includes(expected), 15_000).catch(() => {
    throw new Error(`the editor did not save "${expected}" to ${file}: ${show(readIf(file))}`);
  });
}

/** The text of a Monaco editor's lines (Monaco renders spaces as no-break spaces). */
async function viewText(locator) {
  return (await locator.innerText({ timeout: 5000 })).replace(/\u00a0/g, ' ');
}

/** The Sync view's rows in order: { level, text } (groups are level 1 with one target). */
async function syncViewRows() {
  return page
    .locator('.part.sidebar .monaco-list-row')
    .evaluateAll((els) =>
      els.map((e) => ({
        level: Number(e.getAttribute('aria-level') ?? 0),
        text: (e.innerText || '').replace(/\s+/g, ' ').trim(),
        ...(e.hasAttribute('aria-expanded') ? { expanded: e.getAttribute('aria-expanded') === 'true' } : {}),
      })),
    )
    .catch(() => []);
}

/** The group ("Conflicts", "Outgoing", "Incoming") a file's row is listed under in the Sync view. */
async function syncViewGroupOf(name) {
  const rows = await syncViewRows();
  let groupName;
  for (const r of rows) {
    if (r.level === 1) groupName = r.text.replace(/\s*\d+$/, '');
    else if (r.text.startsWith(name)) return groupName;
  }
  return undefined;
}

function syncViewRow(name) {
  return page.locator('.part.sidebar .monaco-list-row[aria-level="2"]', { hasText: name }).first();
}

/**
 * Waits until a file is listed in the Sync view and returns its group. A group shown collapsed
 * (rarely seen here, cause unknown; the extension asks for Expanded) is expanded with a click, and
 * that is told as evidence: the test is about what is listed, not about the tree's state.
 */
async function waitForSyncViewEntry(name, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let expanded = false;
  for (;;) {
    const where = await syncViewGroupOf(name);
    if (where) return where;
    const rows = await syncViewRows();
    const collapsed = rows.find((r) => r.level === 1 && r.expanded === false);
    if (collapsed && !expanded && Date.now() > deadline - timeout + 5000) {
      evidence(`the "${collapsed.text}" group was shown collapsed: expanded it with a click`);
      await page.locator('.part.sidebar .monaco-list-row[aria-level="1"][aria-expanded="false"]').first().click();
      expanded = true;
    }
    if (Date.now() > deadline) throw new Error(`${name} is not in the Sync view after ${timeout / 1000}s; rows: ${JSON.stringify(rows)}`);
    await sleep(250);
  }
}

/** The side bar shows the SyncEngine container (its title: "SyncEngine: Sync"). */
async function syncViewShown(timeout = 30_000) {
  await page.locator('.part.sidebar .composite.title', { hasText: 'SyncEngine' }).first().waitFor({ timeout });
}

async function showSyncView() {
  await runCommand('SyncEngine: Focus on Sync View');
  await syncViewShown(15_000);
}

/** The newest extension-host log of the SyncEngine output channel (what "Show Log" shows). */
function extensionLog() {
  const root = path.join(WORK, 'run', 'udd', 'logs');
  let newest;
  try {
    for (const session of fs.readdirSync(root)) {
      const dir = path.join(root, session);
      for (const host of fs.readdirSync(dir).filter((n) => n.startsWith('exthost'))) {
        const file = path.join(dir, host, 'syncengine.syncengine', 'SyncEngine.log');
        if (fs.existsSync(file) && (!newest || fs.statSync(file).mtimeMs > fs.statSync(newest).mtimeMs)) newest = file;
      }
    }
  } catch {
    // no logs yet
  }
  return newest ? fs.readFileSync(newest, 'utf8') : '';
}

const readIf = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
const show = (text) => (text === undefined ? '(missing)' : JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text));

/** Copies of `rel` kept in a side's trash (`<root>/.syncengine-trash/<run>/<rel>[.n]`). */
function trashCopies(root, rel) {
  const trash = path.join(root, '.syncengine-trash');
  if (!fs.existsSync(trash)) return [];
  const out = [];
  for (const run of fs.readdirSync(trash)) {
    const dir = path.dirname(path.join(trash, run, rel));
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir)) {
      if (name === path.basename(rel) || name.startsWith(`${path.basename(rel)}.`)) out.push(path.join(dir, name));
    }
  }
  return out;
}

/** Writes a file on the server's disk as the SFTP user would (owned by the login user). */
function writeOnServer(remoteDir, rel, body) {
  const file = path.join(remoteDir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, body);
  sshd.chown(path.dirname(file));
  // A different modification time too, as an edit on the server a moment later would have.
  const t = new Date(Date.now() + 2000);
  fs.utimesSync(file, t, t);
}

async function runUi() {
  const remoteDir = await startServer();
  const ws = path.join(WORK, 'ws-ui');
  writeWorkspace(ws, remoteDir, UI_FILES);
  const local = (rel) => path.join(ws, rel);
  const remote = (rel) => path.join(remoteDir, rel);
  /** Waits until the server has the same bytes as the local file. */
  const onServer = async (rel, timeout = 30_000) => {
    try {
      await waitFor(`${rel} on the server`, () => fs.existsSync(remote(rel)) && fs.readFileSync(remote(rel)).equals(fs.readFileSync(local(rel))), timeout);
    } catch {
      throw new Error(`${rel}: the server has ${show(readIf(remote(rel)))}, the workspace ${show(readIf(local(rel)))} (after ${timeout / 1000}s); notifications: ${JSON.stringify(await notifications())}`);
    }
  };
  /** Makes sure these files are the same on both sides (a Sync Now when they are not). */
  const ensureSynced = async (...rels) => {
    const differ = () => rels.filter((rel) => !fs.existsSync(remote(rel)) || !fs.readFileSync(remote(rel)).equals(fs.readFileSync(local(rel))));
    if (differ().length === 0) return;
    log(`  (not in sync yet: ${differ().join(', ')}: Sync Now first)`);
    await runCommand('SyncEngine: Sync Now');
    for (const rel of rels) await onServer(rel, 60_000);
  };
  const setSyncOnSave = async (on) => {
    const tooltipSays = async () => {
      // The label says "sync on save is off" only when nothing else (a conflict, a run) takes precedence.
      const { label } = await statusItem();
      if (/sync on save is off/.test(label)) return false;
      if (/sync on save on/.test(label)) return true;
      return undefined;
    };
    const now = await waitFor('the status bar tells the sync-on-save state', async () => ((await tooltipSays()) === undefined ? undefined : { v: await tooltipSays() }), 30_000);
    if (now.v !== on) {
      await syncEngineItem().click();
      await waitForStatus(`sync on save ${on ? 'on' : 'off'}`, (s) => (on ? /sync on save on/ : /sync on save is off/).test(s.label));
    }
  };
  /** Settles conflicts a failed step left (the workspace version wins), so the next groups start clean. */
  const settleConflicts = async () => {
    for (let i = 0; i < 3 && /conflict/.test((await statusItem()).text); i++) {
      log(`  (settling a conflict left behind: ${(await statusItem()).text})`);
      await runCommand('SyncEngine: Accept Local');
      // With no conflict in the active editor the command asks which one: take the first.
      const pick = page.locator('.quick-input-widget .quick-input-list .monaco-list-row').first();
      if (await pick.waitFor({ timeout: 3000 }).then(() => true, () => false)) await page.keyboard.press('Enter');
      await sleep(2000);
    }
    await dismissNotifications();
  };
  page = await openBrowser();

  // ---- the workbench, the status bar, the palette, Sync Now
  group('workbench and Sync Now');
  await step('workbench opens the workspace', async () => {
    await openWorkbench(`${BASE}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).first().waitFor({ timeout: 60_000 });
    evidence(`workspace ${ws}`);
  }, { essential: true, timeout: 240_000 });

  await step('status bar shows the SyncEngine item', async () => {
    try {
      await syncEngineItem().waitFor({ timeout: 60_000 });
    } catch {
      throw new Error(`no SyncEngine status bar item; items: ${JSON.stringify(await statusBarLabels())}`);
    }
    const s = await statusItem();
    evidence(`status bar item: label ${JSON.stringify(s.label)}, text ${JSON.stringify(s.text)}`);
    if (!/^SyncEngine: idle, sync on save on$/.test(s.label) || s.text !== 'SyncEngine') throw new Error('expected the idle state: "SyncEngine", labelled "SyncEngine: idle, sync on save on"');
  }, { essential: true, timeout: 90_000 });

  const syncNowRow = () => page.locator('.quick-input-list .monaco-list-row', { hasText: 'SyncEngine: Sync Now' }).first();
  await step('F1 "SyncEngine" lists "SyncEngine: Sync Now"', async () => {
    await openPalette('SyncEngine');
    try {
      await syncNowRow().waitFor({ timeout: 30_000 });
    } catch {
      const rows = await page.locator('.quick-input-list .monaco-list-row').allInnerTexts().catch(() => []);
      throw new Error(`"SyncEngine: Sync Now" not listed; rows: ${JSON.stringify(rows)}`);
    }
    const rows = await page.locator('.quick-input-list .monaco-list-row').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    evidence(`palette rows: ${rows.join(' | ')}`);
  });

  await step('"SyncEngine: Sync Now" puts the workspace files on the SFTP server', async () => {
    await runCommand('SyncEngine: Sync Now');
    const missing = () =>
      Object.entries(UI_FILES)
        .filter(([rel, body]) => {
          const file = remote(rel);
          return !fs.existsSync(file) || !fs.readFileSync(file).equals(Buffer.from(body));
        })
        .map(([rel]) => rel);
    try {
      await waitFor('files on the server', () => missing().length === 0, 60_000);
    } catch {
      throw new Error(`not on the server (or different) after 60s: ${missing().join(', ')}; notifications: ${JSON.stringify(await notifications())}`);
    }
    evidence(`on the server, byte for byte: ${Object.keys(UI_FILES).join(', ')}`);
    await waitFor('the notification of the result', async () => (await notifications()).some((n) => /SyncEngine: server:/.test(n)), 15_000).catch(() => {});
    evidence(`notifications: ${JSON.stringify(await notifications())}`);
    evidence(`status bar after sync: ${JSON.stringify((await statusItem()).label)}`);
  });
  await tidy('clear notifications', dismissNotifications);

  // ---- sync on save
  const TODO = 'notes/todo.txt';
  group('sync on save');
  await step('sync on save: Quick Open notes/todo.txt, type, Ctrl+S: the new text is on the server', async () => {
    await setSyncOnSave(true);
    await ensureSynced(TODO);
    await quickOpen(TODO);
    const marker = `saved from the editor ${randomBytes(3).toString('hex')}`;
    await typeAtEnd(`- ${marker}\n`);
    await save(local(TODO), marker);
    await onServer(TODO);
    evidence(`typed "- ${marker}" and saved (Ctrl+S)`);
    evidence(`server ${TODO}: ${show(readIf(remote(TODO)))}`);
  });

  await step('sync on save: quick saves during a long Sync Now coalesce; the last content is on the server', async () => {
    await ensureSynced(TODO);
    if (!(await page.locator('.part.editor .tabs-container .tab.active', { hasText: 'todo.txt' }).count())) await quickOpen(TODO);
    await typeAtEnd(''); // the editor focused, the cursor at the end
    // Runs of a pair never overlap, and against a server on this machine a save's run takes ~20 ms:
    // saves come in while an earlier run is still going only when something long is running. Here
    // that is a Sync Now uploading a new 128 MiB file. The saves made meanwhile must share the runs
    // that follow, not get one each. (Each save is made once the previous one is on disk: VS Code
    // itself merges a save made while the previous one is being written.)
    const BIG = 'data/big.bin';
    fs.writeFileSync(local(BIG), randomBytes(128 * 1024 * 1024));
    const before = trashCopies(remoteDir, TODO).length;
    const logBefore = extensionLog().length;
    const maxSaves = 10;
    const written = new Map(); // save number -> when it reached the disk
    const watcher = fs.watch(path.dirname(local(TODO)), () => {
      const m = /quick save (\d+)\n$/.exec(readIf(local(TODO)) ?? '');
      if (m && !written.has(Number(m[1]))) written.set(Number(m[1]), Date.now());
    });
    try {
      await runCommand('SyncEngine: Sync Now');
      await waitForStatus('Sync Now running', (x) => /syncing/.test(x.label), 30_000);
      await typeAtEnd('');
      // Saves as long as Sync Now runs (at least 4, at most 10).
      for (let i = 1; i <= maxSaves; i++) {
        await page.keyboard.insertText(`quick save ${i}\n`);
        await page.keyboard.press('Control+S');
        await waitFor(`save ${i} on disk`, () => (readIf(local(TODO)) ?? '').endsWith(`quick save ${i}\n`), 10_000, 5);
        if (i >= 4 && !/syncing/.test((await statusItem()).label)) break;
      }
    } finally {
      setTimeout(() => watcher.close(), 500);
    }
    // The file changed in the editor only: the end must be the last version on the server, never a conflict.
    const same = () => fs.existsSync(remote(TODO)) && fs.readFileSync(remote(TODO)).equals(fs.readFileSync(local(TODO)));
    const outcome = await waitFor('the last version on the server', async () => (same() ? 'synced' : /conflict/.test((await statusItem()).text) ? 'conflict' : undefined), 90_000);
    await sleep(1500); // a run still going would add to the counts
    const lines = extensionLog().slice(logBefore).split('\n');
    const runLines = lines.filter((l) => / save notes\/todo\.txt finished in \d+ ms/.test(l));
    const syncLine = lines.find((l) => / sync finished in \d+ ms/.test(l));
    if (outcome === 'conflict') {
      for (const l of lines.filter((x) => / (sync|save notes\/todo\.txt) finished in/.test(x)).slice(-6)) evidence(`log: ${l.replace(/^\S+ /, '')}`);
      evidence(`saves on disk at: ${[...written.entries()].map(([i, t]) => `${i}: ${new Date(t).toISOString().slice(11, 23)}`).join(', ')}`);
      evidence(`notifications: ${JSON.stringify(await notifications())}`);
      await showSyncView().catch(() => {});
      evidence(`Sync view: ${(await syncViewRows()).map((r) => r.text).join(' / ')}`);
      throw new Error(`a false conflict: ${TODO} changed only in the editor, yet after quick saves it is a conflict (status bar ${JSON.stringify((await statusItem()).text)})`);
    }
    const span = (l) => {
      const end = new Date(l.slice(0, 23).replace(' ', 'T')).getTime(); // "<date> <time> [info] …" (local time)
      return [end - Number(/finished in (\d+) ms/.exec(l)[1]), end];
    };
    const [syncFrom, syncTo] = syncLine ? span(syncLine) : [0, 0];
    const duringSync = [...written.values()].filter((t) => t > syncFrom && t < syncTo).length;
    const uploads = trashCopies(remoteDir, TODO).length - before;
    evidence(`Sync Now uploading ${BIG} (128 MiB) ${syncLine ? `took ${syncTo - syncFrom} ms` : '(no "sync finished" line in the log)'}`);
    evidence(`${written.size} saves reached the disk, ${duringSync} of them while Sync Now ran`);
    evidence(`runs of sync on save for ${TODO}: ${runLines.length} (${runLines.map((l) => l.replace(/^.*finished in /, '')).join('; ')}); uploads replacing the server copy: ${uploads}`);
    evidence(`server ${TODO} ends with: ${show(readIf(remote(TODO)).slice(-30))}; ${BIG} on the server: ${fs.existsSync(remote(BIG))}`);
    if (duringSync < 3) throw new Error(`only ${duringSync} saves came while Sync Now ran: coalescing could not be observed (the machine types too slowly for a 128 MiB upload)`);
    // The saves made while the file's first run waited behind Sync Now share the two runs after it
    // (one more when the extension host, busy with the upload, hears of a save late); each save after
    // the sync may have its own.
    const allowed = 3 + (written.size - duringSync);
    if (runLines.length > allowed || runLines.length >= written.size) {
      throw new Error(`${runLines.length} runs for ${written.size} saves (${duringSync} during Sync Now; at most ${Math.min(allowed, written.size - 1)} expected): the saves did not coalesce`);
    }
    if (uploads < 1) throw new Error('no upload replaced the server copy');
    const errors = (await notifications()).filter((n) => /error|failed|could not|changed on/i.test(n));
    if (errors.length) throw new Error(`error or conflict notifications: ${JSON.stringify(errors)}`);
  });
  await tidy('no conflict left behind', settleConflicts);

  // ---- the status bar toggles sync on save
  group('status bar toggle');
  let serverBefore;
  await step('status bar: a click turns sync on save off ("Sync on save off")', async () => {
    await setSyncOnSave(true);
    await syncEngineItem().click();
    const s = await waitForStatus('"Sync on save off" in the status bar', (x) => /Sync on save off/.test(x.text) && /sync on save is off/.test(x.label));
    await page.mouse.move(700, 500); // no tooltip over the screenshot
    evidence(`status bar item after the click: text ${JSON.stringify(s.text)}, label ${JSON.stringify(s.label)}`);
  });

  await step('status bar: with sync on save off, Ctrl+S does not upload', async () => {
    await ensureSynced(TODO);
    serverBefore = fs.readFileSync(remote(TODO), 'utf8');
    if (!(await page.locator('.part.editor .tabs-container .tab.active', { hasText: 'todo.txt' }).count())) await quickOpen(TODO);
    const marker = `saved while sync on save is off ${randomBytes(3).toString('hex')}`;
    await typeAtEnd(`${marker}\n`);
    await save(local(TODO), marker);
    await sleep(4000); // a save upload takes well under a second here
    const now = fs.readFileSync(remote(TODO), 'utf8');
    evidence(`saved "${marker}" locally; 4 s later the server's ${TODO} ${now === serverBefore ? 'is unchanged' : 'CHANGED'}: ends with ${show(now.slice(-40))}`);
    if (now !== serverBefore) throw new Error(`the server's ${TODO} changed although sync on save is off`);
    evidence(`status bar: ${JSON.stringify((await statusItem()).text)}`);
  });

  await step('status bar: a second click turns it back on, and the next save uploads', async () => {
    await syncEngineItem().click();
    const s = await waitForStatus('sync on save back on', (x) => /sync on save on/.test(x.label));
    await page.mouse.move(700, 500);
    evidence(`status bar item after the second click: text ${JSON.stringify(s.text)}, label ${JSON.stringify(s.label)}`);
    if (!(await page.locator('.part.editor .tabs-container .tab.active', { hasText: 'todo.txt' }).count())) await quickOpen(TODO);
    await typeAtEnd('saved with sync on save back on\n');
    await save(local(TODO), 'saved with sync on save back on');
    await onServer(TODO);
    evidence(`server ${TODO} ends with: ${show(readIf(remote(TODO)).slice(-40))}`);
  });
  await tidy('sync on save on, editors closed', async () => {
    await closeAllEditors();
    await setSyncOnSave(true);
  });

  // ---- Preview lists a change made on the server
  const NOTES = 'docs/notes with spaces.txt';
  group('preview');
  let remoteText;
  await step('Preview Sync: a file changed on the server is listed under "Incoming" in the Sync view', async () => {
    await ensureSynced(NOTES);
    remoteText = `a file name with spaces\nchanged on the server: ${randomBytes(3).toString('hex')}\n`;
    writeOnServer(remoteDir, NOTES, remoteText);
    evidence(`changed on the server: ${NOTES} = ${show(remoteText)}`);
    await runCommand('SyncEngine: Preview Sync');
    await syncViewShown();
    const where = await waitForSyncViewEntry('notes with spaces.txt');
    evidence(`Sync view rows: ${(await syncViewRows()).map((r) => `${'  '.repeat(r.level - 1)}${r.text}`).join(' / ')}`);
    if (where !== 'Incoming') throw new Error(`notes with spaces.txt is listed under "${where}", not "Incoming"`);
    if (fs.readFileSync(local(NOTES), 'utf8') === remoteText) throw new Error('Preview changed the local file');
  });

  await step('Preview Sync: clicking the Incoming entry opens the diff editor (remote ↔ local)', async () => {
    await syncViewRow('notes with spaces.txt').click();
    const tab = page.locator('.part.editor .tabs-container .tab.active', { hasText: '↔ Local' });
    try {
      await tab.waitFor({ timeout: 30_000 });
    } catch {
      throw new Error(`no active tab "… ↔ Local"; tabs: ${JSON.stringify(await tabs())}`);
    }
    evidence(`active tab: ${JSON.stringify((await tab.innerText()).trim())}`);
    const marker = /changed on the server: ([0-9a-f]+)/.exec(remoteText)[1];
    const original = page.locator('.part.editor .monaco-diff-editor .editor.original .view-lines');
    const modified = page.locator('.part.editor .monaco-diff-editor .editor.modified .view-lines');
    const clicked = Date.now();
    await waitFor('the server version on the left of the diff', async () => (await viewText(original)).includes(marker), 30_000);
    evidence(`the server's version shown after ${Date.now() - clicked} ms`);
    evidence(`left (remote): ${show(await viewText(original))}`);
    evidence(`right (local): ${show(await viewText(modified))}`);
  });
  await tidy('close editors', closeAllEditors);

  // ---- a conflict: Sync view, status bar, the diff editor's actions, Accept Remote
  const SHARED = 'docs/shared.txt';
  group('conflict');
  const localVersion = `line 1\nchanged in the workspace ${randomBytes(3).toString('hex')}\n`;
  const serverVersion = `line 1\nchanged on the server, a longer line ${randomBytes(3).toString('hex')}\n`;
  await step('conflict: a file changed on both sides is listed under "Conflicts" after Sync Now; the status bar counts it', async () => {
    fs.writeFileSync(local(SHARED), 'line 1\n');
    await ensureSynced(SHARED);
    evidence(`${SHARED} synced: "line 1"`);
    fs.writeFileSync(local(SHARED), localVersion);
    writeOnServer(remoteDir, SHARED, serverVersion);
    evidence(`then changed in the workspace (on disk): ${show(localVersion)}`);
    evidence(`and on the server: ${show(serverVersion)}`);
    const already = Number(/(\d+) conflict/.exec((await statusItem()).text)?.[1] ?? 0); // left by a failed step before
    await runCommand('SyncEngine: Sync Now');
    const want = new RegExp(`\\b${already + 1} conflict`);
    const s = await waitForStatus('the conflict count in the status bar', (x) => want.test(x.text) && want.test(x.label), 60_000);
    evidence(`status bar: text ${JSON.stringify(s.text)}, label ${JSON.stringify(s.label)}`);
    await showSyncView();
    const where = await waitForSyncViewEntry('shared.txt').catch((error) => {
      evidence(String(error.message));
      return undefined;
    });
    evidence(`Sync view rows: ${(await syncViewRows()).map((r) => `${'  '.repeat(r.level - 1)}${r.text}`).join(' / ')}`);
    if (where !== 'Conflicts') throw new Error(`shared.txt is listed under ${JSON.stringify(where)}, not "Conflicts"`);
    if (fs.readFileSync(local(SHARED), 'utf8') !== localVersion) throw new Error('the local file was changed');
    if (fs.readFileSync(remote(SHARED), 'utf8') !== serverVersion) throw new Error("the server's file was changed");
    evidence('neither side was overwritten');
    evidence(`notifications: ${JSON.stringify(await notifications())}`);
  });

  const actions = ['Accept Local', 'Accept Remote', 'Keep Both', 'Merge'];
  const titleAction = (name) => page.locator(`.part.editor .editor-actions [aria-label^="${name}"]`).first();
  await step('conflict: clicking it opens the diff editor with Accept Local / Accept Remote / Keep Both / Merge', async () => {
    await syncViewRow('shared.txt').click();
    const tab = page.locator('.part.editor .tabs-container .tab.active', { hasText: '↔ Local' });
    try {
      await tab.waitFor({ timeout: 30_000 });
    } catch {
      throw new Error(`no active tab "… ↔ Local"; tabs: ${JSON.stringify(await tabs())}`);
    }
    evidence(`active tab: ${JSON.stringify((await tab.innerText()).trim())}`);
    const missing = [];
    for (const a of actions) if (!(await titleAction(a).isVisible({ timeout: 10_000 }).catch(() => false))) missing.push(a);
    if (missing.length) {
      await waitFor('the editor title actions', async () => {
        for (const a of [...missing]) if (await titleAction(a).isVisible().catch(() => false)) missing.splice(missing.indexOf(a), 1);
        return missing.length === 0;
      }, 15_000).catch(() => {});
    }
    const shown = await page.locator('.part.editor .editor-actions [aria-label]').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))).catch(() => []);
    evidence(`editor title actions: ${shown.join(' | ')}`);
    if (missing.length) throw new Error(`not in the diff editor's title bar: ${missing.join(', ')}`);
    const original = page.locator('.part.editor .monaco-diff-editor .editor.original .view-lines');
    await waitFor('the server version on the left', async () => (await viewText(original)).includes('changed on the server'), 30_000);
    evidence(`left (remote): ${show(await viewText(original))}`);
  });

  await step('conflict: "Accept Remote" puts the server version in the workspace; the conflict is gone; the local version is in .syncengine-trash/', async () => {
    await titleAction('Accept Remote').click();
    try {
      await waitFor('the local file has the server version', () => fs.readFileSync(local(SHARED), 'utf8') === serverVersion, 30_000);
    } catch {
      throw new Error(`local ${SHARED}: ${show(readIf(local(SHARED)))}; notifications: ${JSON.stringify(await notifications())}`);
    }
    evidence(`workspace ${SHARED}: ${show(readIf(local(SHARED)))} (the server's)`);
    evidence(`server ${SHARED}: ${show(readIf(remote(SHARED)))} (unchanged)`);
    if (fs.readFileSync(remote(SHARED), 'utf8') !== serverVersion) throw new Error("the server's version changed");
    const kept = trashCopies(ws, SHARED).filter((f) => fs.readFileSync(f, 'utf8') === localVersion);
    if (kept.length === 0) throw new Error(`the local version is not in ${ws}/.syncengine-trash/ (copies: ${JSON.stringify(trashCopies(ws, SHARED))})`);
    evidence(`the local version kept in ${path.relative(ws, kept[0])}`);
    await waitFor('shared.txt gone from the Sync view', async () => (await syncViewGroupOf('shared.txt')) === undefined, 15_000);
    const s = await waitForStatus('no conflict in the status bar', (x) => !/conflict/.test(x.text), 15_000);
    evidence(`status bar: ${JSON.stringify(s.text)}; Sync view rows: ${JSON.stringify((await syncViewRows()).map((r) => r.text))}`);
    evidence(`tabs: ${JSON.stringify(await tabs())}; notifications: ${JSON.stringify(await notifications())}`);
  });
  await tidy('close editors, clear notifications', async () => {
    await closeAllEditors();
    await dismissNotifications();
  });

  // ---- Clear Sync State: a modal confirmation, then the pair's state is gone
  group('clear state');
  const stateDirs = () => (fs.existsSync(local('.sync_state')) ? fs.readdirSync(local('.sync_state')).filter((n) => fs.statSync(local(`.sync_state/${n}`)).isDirectory()) : []);
  await step('Clear Sync State asks for confirmation in a dialog', async () => {
    await ensureSynced('README.md');
    if (stateDirs().length === 0) throw new Error(`no state folder in ${local('.sync_state')} after a sync`);
    evidence(`state before: .sync_state/${stateDirs().join(', .sync_state/')}`);
    await runCommand('SyncEngine: Clear Sync State');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 15_000 });
    evidence(`dialog: ${JSON.stringify((await dialog.innerText()).replace(/\s+/g, ' ').trim())}`);
    await dialog.locator('.monaco-button', { hasText: 'Clear State' }).first().waitFor({ timeout: 5000 });
  });
  await step('Clear Sync State: "Clear State" removes the state of the pair', async () => {
    await page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Clear State' }).first().click();
    await waitFor('the state folder removed', () => stateDirs().length === 0, 15_000);
    evidence(`state after: ${JSON.stringify(stateDirs())} in ${local('.sync_state')}`);
    await waitFor('the notification', async () => (await notifications()).some((n) => /sync state cleared/.test(n)), 10_000);
    evidence(`notifications: ${JSON.stringify(await notifications())}`);
  });
  await tidy('dialog closed, notifications cleared', async () => {
    if (await page.locator('.monaco-dialog-box').isVisible().catch(() => false)) await page.keyboard.press('Escape');
    await dismissNotifications();
  });

  // ---- a target that needs a password: the input box, a wrong password, the error, Show Log, then the right one
  group('password');
  const pwDir = sshd.makeDir('password');
  const wsPw = path.join(WORK, 'ws-password');
  writeWorkspace(wsPw, pwDir, { 'index.html': '<h1>needs a password</h1>\n' }, { privateKey: undefined, syncOnSave: undefined });
  const who = `${sshd.user}@127.0.0.1:${sshd.port}`;
  const passwordBox = page.locator('.quick-input-widget input[type="password"]');
  await step('password: a target without a key: Sync Now asks for the password in an input box', async () => {
    if (!sshd.password) throw new Error('the sshd helper has no password login here (it needs to run as root)');
    await page.goto(`${BASE}/?folder=${encodeURIComponent(wsPw)}`, { waitUntil: 'domcontentloaded', timeout: 180_000 });
    await page.waitForSelector('.part.statusbar', { timeout: 120_000 });
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'index.html' }).first().waitFor({ timeout: 60_000 });
    await syncEngineItem().waitFor({ timeout: 60_000 });
    evidence(`workspace ${wsPw}: url sftp://${who}${pwDir}, no privateKey`);
    await runCommand('SyncEngine: Sync Now');
    await passwordBox.waitFor({ state: 'visible', timeout: 30_000 });
    const widget = page.locator('.quick-input-widget');
    const text = (await widget.innerText()).replace(/\s+/g, ' ').trim();
    evidence(`input box: ${JSON.stringify(text)} (a password field)`);
    if (!text.includes(`Password for ${who}`)) throw new Error(`the input box does not ask for the password of ${who}: ${JSON.stringify(text)}`);
  });

  const errorToast = () => page.locator('.notification-toast', { hasText: 'Authentication to' }).first();
  await step('password: a wrong one gives an error naming user and host, "authentication failed", with "Show Log"', async () => {
    await passwordBox.fill('not-the-password');
    await page.keyboard.press('Enter');
    try {
      await errorToast().waitFor({ timeout: 60_000 });
    } catch {
      throw new Error(`no error notification about the authentication; notifications: ${JSON.stringify(await notifications())}`);
    }
    const text = (await errorToast().innerText()).replace(/\s+/g, ' ').trim();
    evidence(`notification: ${JSON.stringify(text)}`);
    if (!text.includes(sshd.user)) throw new Error(`the message does not name the user ${sshd.user}`);
    if (!text.includes('127.0.0.1')) throw new Error('the message does not name the host 127.0.0.1');
    if (!/authentication .*failed/i.test(text)) throw new Error('the message does not say that authentication failed');
    if (!(await errorToast().locator('.monaco-button', { hasText: 'Show Log' }).count())) throw new Error('no "Show Log" button on the notification');
    const severity = await errorToast().locator('.codicon-error').count();
    if (!severity) throw new Error('the notification is not an error');
    if (fs.readdirSync(pwDir).length) throw new Error(`something reached the server: ${fs.readdirSync(pwDir).join(', ')}`);
    evidence('nothing reached the server');
  });

  await step('password: "Show Log" opens the SyncEngine log with the error', async () => {
    await errorToast().locator('.monaco-button', { hasText: 'Show Log' }).click();
    const output = page.locator('.part.panel .output-view, .part.panel [id="workbench.panel.output"]').first();
    await output.waitFor({ timeout: 15_000 });
    const lines = page.locator('.part.panel .view-lines').first();
    await waitFor('the error in the log', async () => (await viewText(lines)).includes('Authentication to'), 15_000);
    const text = (await viewText(lines)).split('\n').filter((l) => /Authentication to/.test(l));
    evidence(`Output panel, channel SyncEngine: ${text.at(-1)}`);
  });

  await step('password: the right one then syncs', async () => {
    await runCommand('SyncEngine: Sync Now');
    await passwordBox.waitFor({ state: 'visible', timeout: 30_000 });
    evidence('asked again (the refused password was not kept)');
    await passwordBox.fill(sshd.password);
    await page.keyboard.press('Enter');
    await waitFor('index.html on the server', () => fs.existsSync(path.join(pwDir, 'index.html')), 60_000).catch(async () => {
      throw new Error(`index.html is not on the server; notifications: ${JSON.stringify(await notifications())}`);
    });
    evidence(`server: ${fs.readdirSync(pwDir).filter((n) => !n.startsWith('.syncengine')).join(', ')}`);
    await waitFor('the result notification', async () => (await notifications()).some((n) => /uploaded/.test(n)), 10_000).catch(() => {});
    evidence(`notifications: ${JSON.stringify(await notifications())}`);
  });
}

// ---------------------------------------------------------------- phase: host
const NOISE = new RegExp([
  'ENOTFOUND', 'ERR_NAME_NOT_RESOLVED', 'Canceled: Canceled', '^Resolving connection', '^Resolved connection', '^Creating a socket',
  'marketplace', 'gallery', 'authentication provider', 'AccountPolicyGate', 'AgentHost', 'Creation of workbench contribution',
  'Service Worker', 'reconnection-grace-time', 'Updating additional builtin', '^\\s*$',
].join('|'), 'i');
async function runHost() {
  const extPath = process.env.EXT_DEV_PATH;
  const testsPath = process.env.TESTS_PATH;
  if (!extPath || !testsPath) throw new Error('EXT_DEV_PATH and TESTS_PATH are required for --phase host');
  const remoteDir = await startServer();
  const ws = path.join(WORK, 'ws-host');
  writeWorkspace(ws, remoteDir, { 'README.md': '# In-host test workspace\n' });
  const resultsFile = path.join(OUT, 'host-mocha-results.json');
  fs.rmSync(resultsFile, { force: true });

  const remote = (p) => `vscode-remote://127.0.0.1:${PORT}${p}`;
  const payload = [
    ['extensionDevelopmentPath', remote(extPath)],
    ['extensionTestsPath', remote(testsPath)],
    [
      'extensionEnvironment',
      JSON.stringify({
        SYNCENGINE_VSCODE_RESULTS: resultsFile,
        SYNCENGINE_TEST_REMOTE_DIR: remoteDir,
        // Files the tests put on the server's disk must belong to the SFTP login user.
        SYNCENGINE_TEST_REMOTE_UID: String(sshd.uid),
        SYNCENGINE_TEST_REMOTE_GID: String(sshd.gid),
        ...(process.env.SYNCENGINE_VSCODE_GREP ? { SYNCENGINE_VSCODE_GREP: process.env.SYNCENGINE_VSCODE_GREP } : {}),
        // bench/extension.mjs: run the figures suite instead of the tests, writing them here.
        ...(process.env.SYNCENGINE_VSCODE_BENCH_OUT ? { SYNCENGINE_VSCODE_BENCH_OUT: path.resolve(process.env.SYNCENGINE_VSCODE_BENCH_OUT) } : {}),
      }),
    ],
  ];
  const url = `${BASE}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;

  page = await openBrowser();
  const hostLog = path.join(OUT, 'host-extension-host.log');
  fs.writeFileSync(hostLog, '');
  let resolveExit;
  const exited = new Promise((resolve) => {
    resolveExit = resolve;
  });
  // Workbench and extension-host console output (printf-style arguments); offline-gallery noise dropped.
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const s = util.format(...(Array.isArray(args) ? args : [args]));
    fs.appendFileSync(hostLog, `[${type}] ${s}\n`);
    // Only the extension host's test output and real errors reach the console; the whole log is in the file.
    if (NOISE.test(s)) return;
    console.log(`  [host ${type}] ${s.split('\n').slice(0, type === 'error' ? 6 : 40).join('\n  ')}`);
  });
  await page.exposeFunction('codeAutomationExit', (code) => {
    resolveExit(code);
  });

  let exitCode;
  await step('workbench starts the in-host suite and reports its end', async () => {
    await openWorkbench(url);
    log('  workbench up; mocha runs in the extension host');
    exitCode = await Promise.race([exited, sleep(INTEST_TIMEOUT_MS).then(() => 'timeout')]);
    log(`  codeAutomationExit(${exitCode})`);
    if (exitCode === 'timeout') throw new Error(`no codeAutomationExit within ${INTEST_TIMEOUT_MS / 1000}s`);
  }, { timeout: INTEST_TIMEOUT_MS + 240_000 });

  let mocha;
  try {
    mocha = JSON.parse(fs.readFileSync(resultsFile, 'utf8'));
  } catch {
    record('the in-host suite wrote its results', new Error(`${resultsFile} missing (exit code ${exitCode}); see ${path.relative(process.cwd(), hostLog)}`), 0);
    return;
  }
  for (const r of mocha.results) {
    if (r.state === 'skipped') log(`SKIP ${r.title}`);
    else record(`in-host: ${r.title}`, r.state === 'failed' ? new Error(r.error || 'failed') : undefined, r.ms ?? 0);
  }
  if (mocha.failed > 0 && !mocha.results.some((r) => r.state === 'failed')) record('in-host: mocha', new Error(`${mocha.failed} failures`), 0);
  if (exitCode !== 0 && mocha.failed === 0) record('in-host: exit code', new Error(`codeAutomationExit(${exitCode}) although mocha reported no failure`), 0);
}

// ---------------------------------------------------------------- main
let crashed;
try {
  await (PHASE === 'ui' ? runUi() : runHost());
} catch (error) {
  crashed = error;
  record(`${PHASE} phase`, error, Date.now() - t0, await screenshot('crash'));
} finally {
  await cleanup();
}
const passed = results.filter((r) => r.state === 'passed').length;
const failed = results.length - passed;
fs.writeFileSync(path.join(OUT, `${PHASE}-results.json`), JSON.stringify({ phase: PHASE, passed, failed, seconds: (Date.now() - t0) / 1000, results }, null, 2));
log(`done in ${((Date.now() - t0) / 1000).toFixed(1)}s${crashed ? ' (crashed)' : ''}`);
console.log(`${PHASE}: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 || results.length === 0 ? 1 : 0);
