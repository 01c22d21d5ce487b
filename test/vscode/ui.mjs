// Drives a real VS Code (code-server, started by scripts/test-vscode.sh) in Debian chromium through
// playwright-core. Two phases, one per code-server start:
//
//   --phase ui     UI tests: open a workspace whose .vscode/syncengine.json points at a real sshd,
//                  look at the status bar, run "SyncEngine: Sync Now" from the command palette and
//                  check the files on the server's folder on disk. A screenshot after every step.
//   --phase host   the mocha suite inside the extension host (out/vscode-suite/index.js), through
//                  code-server's `payload` URL (the server runs with enable-smoke-test-driver); the
//                  end comes back through window.codeAutomationExit, the results through a JSON file.
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
let blocked; // set when a step the others need failed: the rest fail at once with this reason

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

async function screenshot(name) {
  if (!page) return undefined;
  const file = path.join(OUT, `${PHASE}-${String(++shots).padStart(2, '0')}-${slug(name)}.png`);
  try {
    await page.screenshot({ path: file, timeout: 20_000 });
    return path.relative(process.cwd(), file);
  } catch (error) {
    log(`  (screenshot failed: ${error.message.split('\n')[0]})`);
    return undefined;
  }
}

function record(name, error, ms, shot) {
  const r = { name, state: error ? 'failed' : 'passed', ms, ...(shot ? { screenshot: shot } : {}) };
  if (error) r.error = String(error?.message ?? error).split('\n').slice(0, 6).join('\n');
  results.push(r);
  log(`${error ? 'FAIL' : 'PASS'} ${name} (${(ms / 1000).toFixed(1)}s)${error ? `\n      ${r.error.replace(/\n/g, '\n      ')}` : ''}`);
}

/** Runs one step with a time limit, then screenshots; `essential` steps block the rest when they fail. */
async function step(name, fn, { essential = false, timeout = STEP_TIMEOUT_MS } = {}) {
  const start = Date.now();
  let error;
  if (blocked) {
    error = new Error(`not run: ${blocked}`);
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
  const shot = blocked ? undefined : await screenshot(name);
  record(name, error, Date.now() - start, shot);
  if (error && essential && !blocked) blocked = `"${name}" failed`;
  return !error;
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

function writeWorkspace(ws, remoteDir, files) {
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
        privateKey: sshd.keyFile,
        knownHosts: sshd.knownHostsFile,
      },
    },
  };
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
};

function syncEngineItem() {
  return page.locator('.part.statusbar [aria-label^="SyncEngine"]').first();
}

async function statusBarLabels() {
  return page
    .locator('.part.statusbar .statusbar-item')
    .evaluateAll((items) => items.map((el) => el.querySelector('[aria-label]')?.getAttribute('aria-label') || el.textContent?.trim()).filter(Boolean))
    .catch(() => []);
}

async function openPalette(text) {
  const input = page.locator('.quick-input-widget input');
  if (!(await input.isVisible().catch(() => false))) {
    await page.keyboard.press('Escape').catch(() => {});
    await page.locator('.part.editor').click({ position: { x: 300, y: 200 } }).catch(() => {});
    await page.keyboard.press('F1');
    await input.waitFor({ state: 'visible', timeout: 30_000 });
  }
  await input.fill(`>${text}`);
  return input;
}

async function runUi() {
  const remoteDir = await startServer();
  const ws = path.join(WORK, 'ws-ui');
  writeWorkspace(ws, remoteDir, UI_FILES);
  page = await openBrowser();

  await step('workbench opens the workspace', async () => {
    await openWorkbench(`${BASE}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.md' }).first().waitFor({ timeout: 60_000 });
  }, { essential: true, timeout: 240_000 });

  await step('status bar shows the SyncEngine item', async () => {
    try {
      await syncEngineItem().waitFor({ timeout: 60_000 });
    } catch {
      throw new Error(`no status bar item labelled "SyncEngine…"; items: ${JSON.stringify(await statusBarLabels())}`);
    }
    log(`  status bar: ${JSON.stringify(await syncEngineItem().getAttribute('aria-label'))} / text ${JSON.stringify((await syncEngineItem().innerText()).trim())}`);
  });

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
    log(`  palette rows: ${JSON.stringify(rows)}`);
  });

  await step('"SyncEngine: Sync Now" puts the workspace files on the SFTP server', async () => {
    await openPalette('SyncEngine: Sync Now');
    await syncNowRow().waitFor({ timeout: 30_000 });
    await syncNowRow().click();
    const missing = () =>
      Object.entries(UI_FILES)
        .filter(([rel, body]) => {
          const remote = path.join(remoteDir, rel);
          return !fs.existsSync(remote) || !fs.readFileSync(remote).equals(Buffer.from(body));
        })
        .map(([rel]) => rel);
    try {
      await waitFor('files on the server', () => missing().length === 0, 60_000);
    } catch {
      const notifications = await page.locator('.notification-toast').allInnerTexts().catch(() => []);
      throw new Error(`not on the server (or different) after 60s: ${missing().join(', ')}; notifications: ${JSON.stringify(notifications)}`);
    }
    log(`  on the server: ${Object.keys(UI_FILES).join(', ')}`);
    await sleep(1500); // let the status bar and any notification settle for the screenshot
    log(`  status bar after sync: ${JSON.stringify(await syncEngineItem().getAttribute('aria-label').catch(() => null))}`);
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
    ['extensionEnvironment', JSON.stringify({ SYNCENGINE_VSCODE_RESULTS: resultsFile, SYNCENGINE_TEST_REMOTE_DIR: remoteDir })],
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
