#!/usr/bin/env node
// SyncEngine against rclone (and rsync, OpenSSH sftp, lftp as references) on remote targets: the
// test servers of test/servers/ (OpenSSH sshd, vsftpd, s3rver) on 127.0.0.1, same data, one run.
//
//   npm run bench:remote          build, compile the test servers, then the full run; writes
//                                 docs/BENCHMARKS-remote.md (the same as
//                                 npm run build && npx tsc -p tsconfig.test.json && node bench/remote.mjs)
//   BENCH_QUICK=1 ...             smoke run with small data (report: bench/.work/BENCHMARKS-remote.md)
//   BENCH_RUNS=N                  timed runs per tool and scenario (default 3; quick 1)
//   BENCH_BACKENDS=sftp,ftp,s3    only these backends (default all three)
//   BENCH_CELL_BUDGET=S           no more timed rounds for a tool in a scenario once its runs there
//                                 add up to S seconds (default 45; at least one run)
//   BENCH_QUIET_WAIT=0            do not wait for an idle machine before each timed run
//                                 (BENCH_QUIET_MAX, BENCH_QUIET_TOTAL: the waits' limits in seconds)
//
// The servers are started with the compiled test helpers (out/test/servers/*.js), exactly as the
// tests start them, and stopped at the end, also on failure. Needs root (the helpers create a
// throw-away login user) and the Debian packages openssh-server and vsftpd
// (scripts/install-test-deps.sh); rclone, rsync and lftp are installed with apt-get if missing.
//
// Every timing is process.hrtime.bigint() around the whole command (process start included), run as
// an asynchronous child so that this process keeps draining s3rver's log pipe meanwhile. Data lives
// in a folder under /var/tmp that is removed at the end; nothing is left running. The full run takes
// 40-60 minutes on a 2-core machine (rclone alone spends ~10 of them on SFTP, where by default it
// runs md5sum over ssh for every uploaded file).
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLK_TCK, copyTree, cpuTimes, ensureTool, fileHash, fmtInt, gitInfo, have, ignoredName, median, mulberry32, must, nodeStartCostVarsSet, rmrf, sh, timedEnv } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const SERVERS = path.join(ROOT, 'out', 'test', 'servers');
const DIST = path.join(ROOT, 'dist');
const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 3)) || (QUICK ? 1 : 3));
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sftp,ftp,s3').split(',').map((s) => s.trim()).filter(Boolean);
// Everything generated goes to a folder of its own under /var/tmp (same disk here), not bench/.work/,
// which bench/run.mjs wipes when it starts: that must not pull the data from under a running benchmark.
const WORK = fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'syncengine-bench-remote-'));
const ENGINE = path.join(WORK, 'engine', 'dist');
const CLI = path.join(ENGINE, 'cli.js');
const REPORT = QUICK ? path.join(ROOT, 'bench', '.work', 'BENCHMARKS-remote.md') : path.join(ROOT, 'docs', 'BENCHMARKS-remote.md');
const COMMAND_TIMEOUT_MS = (QUICK ? 5 : 20) * 60_000;
const MAX_OUTPUT = 64 * 1024 * 1024;
// A tool stops getting timed rounds in a scenario once its timed runs there add up to this many
// seconds (at least one run): the slowest cells (minutes per run) would otherwise make the whole
// benchmark take over an hour. Not applied to the one-small-file scenario (each round changes the data).
const CELL_BUDGET_S = Number(process.env.BENCH_CELL_BUDGET ?? (QUICK ? Infinity : 45)) || Infinity;
const overBudget = (res) => res.times.length > 0 && res.times.reduce((a, b) => a + b, 0) >= CELL_BUDGET_S;
// Fixed mtimes keep the generated trees identical from run to run (2024-01-01T00:00:00Z).
const BASE_MTIME = 1704067200;
const MiB = 1024 * 1024;

// Sizes (full / quick).
const BIG_BYTES = (QUICK ? 64 : 512) * MiB;
const SMALL_FILES = QUICK ? 1000 : 10000;
const SMALL_SIZE = 4096;
const SMALL_FOLDERS = QUICK ? 10 : 100;
const TREE_FILES = QUICK ? 500 : 5000;
const TREE_BYTES = QUICK ? 15_000_000 : 150_000_000;
const TREE_TOP = QUICK ? 4 : 10;
const TREE_SUB = QUICK ? 5 : 20;
const MODIFY = Math.round(TREE_FILES * 0.01);
const RENAME = Math.round(TREE_FILES * 0.005);

const log = (...args) => console.error('[bench:remote]', ...args);
const T0 = Date.now();
const elapsed = () => `${((Date.now() - T0) / 60000).toFixed(1)} min`;

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const fmtS = (x) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(x >= 100 ? 1 : x >= 10 ? 2 : 3));
function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

// ---------------------------------------------------------------------------------------------
// Load: wait for an idle machine before each timed run (shared 2-core box), as bench/run.mjs does.

const QUIET_WAIT = process.env.BENCH_QUIET_WAIT !== '0';
const QUIET_MAX_S = Number(process.env.BENCH_QUIET_MAX ?? 10) || 10;
// All waiting together is capped too: on a machine that other work keeps busy, waiting up to the
// limit before each of ~250 runs would double the run time.
const QUIET_TOTAL_S = Number(process.env.BENCH_QUIET_TOTAL ?? 300) || 300;
const QUIET_BUSY = 0.25;
const quietLog = [];
let quietWaited = 0;

async function busyFraction(ms = 500) {
  const a = cpuTimes();
  await sleep(ms);
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

async function waitQuiet() {
  if (!QUIET_WAIT) return undefined;
  const t0 = Date.now();
  for (;;) {
    const busy = await busyFraction();
    if (busy === undefined) return undefined;
    const waited = (Date.now() - t0) / 1000;
    if (busy < QUIET_BUSY || waited >= QUIET_MAX_S || quietWaited + waited >= QUIET_TOTAL_S) {
      quietWaited += waited;
      const entry = { busy, waited, gaveUp: busy >= QUIET_BUSY };
      quietLog.push(entry);
      return entry;
    }
  }
}

/** Right before a timed run: flush dirty pages (data preparation), then wait for a quiet machine. */
async function beforeTimedRun() {
  sh('sync', []);
  return waitQuiet();
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

function statFields(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds of this process's waited-for children. */
function childCpu() {
  try {
    const f = statFields('self');
    return (Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** CPU seconds of a server process: its own plus its waited-for children's (the per-connection processes). */
function processCpu(pid) {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Running commands

/** Environment of every tool run: no ssh-agent (keys are given explicitly), no CA bundle override. */
const BASE_ENV = (() => {
  const env = timedEnv();
  for (const k of ['SSH_AUTH_SOCK', 'AWS_CA_BUNDLE', 'AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) delete env[k];
  return env;
})();

/** Timed commands still running (killed when the benchmark is interrupted). */
const running = new Set();

/** Runs a command asynchronously; resolves with its wall time, CPU time and output. */
function exec({ cmd, args, env, input }) {
  return new Promise((resolve) => {
    const c0 = childCpu();
    const t0 = process.hrtime.bigint();
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(cmd, args, { env: { ...BASE_ENV, ...(env ?? {}) }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    running.add(child);
    const timer = setTimeout(() => {
      stderr += `\n[bench] timed out after ${COMMAND_TIMEOUT_MS / 1000} s: killed`;
      child.kill('SIGKILL');
    }, COMMAND_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr.on('data', (d) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    if (input !== undefined) child.stdin.end(input);
    const done = (status, signal, error) => {
      if (settled) return;
      settled = true;
      running.delete(child);
      clearTimeout(timer);
      const t1 = process.hrtime.bigint();
      const c1 = childCpu();
      resolve({ seconds: Number(t1 - t0) / 1e9, cpu: c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined, status, signal, error, stdout, stderr });
    };
    child.once('error', (error) => done(null, null, error));
    child.once('close', (status, signal) => done(status, signal));
  });
}

const display = (args) => args.map((a) => (/[\s"';]/.test(a) ? JSON.stringify(a) : a)).join(' ');

// ---------------------------------------------------------------------------------------------
// Deterministic data: AES-128-CTR keystreams (incompressible, identical on every run)

function prng(seed, index, size) {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed >>> 0, 0);
  iv.writeUInt32BE(index >>> 0, 4);
  return createCipheriv('aes-128-ctr', Buffer.from('syncengine-bench'), iv).update(Buffer.alloc(size));
}

function writeFile(full, data, mtime) {
  fs.writeFileSync(full, data);
  fs.utimesSync(full, mtime, mtime);
}

function generateBig(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'large.bin');
  const fd = fs.openSync(file, 'w');
  const cipher = createCipheriv('aes-128-ctr', Buffer.from('syncengine-bench'), Buffer.alloc(16));
  const chunk = Buffer.alloc(8 * MiB);
  for (let done = 0; done < BIG_BYTES; done += chunk.length) fs.writeSync(fd, cipher.update(chunk.subarray(0, Math.min(chunk.length, BIG_BYTES - done))));
  fs.closeSync(fd);
  fs.utimesSync(file, BASE_MTIME, BASE_MTIME);
  return [{ rel: 'large.bin', size: BIG_BYTES }];
}

function generateSmall(dir) {
  const list = [];
  for (let i = 0; i < SMALL_FILES; i++) {
    const folder = `dir-${String(i % SMALL_FOLDERS).padStart(3, '0')}`;
    if (i < SMALL_FOLDERS) fs.mkdirSync(path.join(dir, folder), { recursive: true });
    const rel = `${folder}/file-${String(i).padStart(5, '0')}.dat`;
    writeFile(path.join(dir, rel), prng(11, i, SMALL_SIZE), BASE_MTIME + i);
    list.push({ rel, size: SMALL_SIZE });
  }
  return list;
}

const EXTS = ['.ts', '.js', '.json', '.md', '.txt', '.css', '.html', '.svg', '.png', '.woff2'];

/**
 * A mixed tree: 75% of the files drawn from 1–16 KiB, 22% from 16–64 KiB, 2.8% from 64 KiB–1 MiB,
 * 0.2% from 1–8 MiB; the files above 16 KiB are then scaled so that the total is TREE_BYTES. In
 * TREE_TOP x TREE_SUB folders.
 */
function generateTree(dir) {
  const rand = mulberry32(21);
  const folders = [];
  for (let t = 0; t < TREE_TOP; t++) for (let s = 0; s < TREE_SUB; s++) folders.push(`app-${String(t).padStart(2, '0')}/mod-${String(s).padStart(2, '0')}`);
  for (const f of folders) fs.mkdirSync(path.join(dir, f), { recursive: true });
  const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
  const specs = [];
  for (let i = 0; i < TREE_FILES; i++) {
    const r = rand();
    const size = r < 0.75 ? between(1024, 16384) : r < 0.97 ? between(16385, 65536) : r < 0.998 ? between(65537, MiB) : between(MiB + 1, 8 * MiB);
    specs.push({ i, size, ext: EXTS[Math.floor(rand() * EXTS.length)] });
  }
  const small = specs.filter((s) => s.size <= 16384).reduce((a, s) => a + s.size, 0);
  const large = specs.filter((s) => s.size > 16384).reduce((a, s) => a + s.size, 0);
  const factor = (TREE_BYTES - small) / large;
  const list = [];
  for (const s of specs) {
    const size = s.size > 16384 ? Math.max(16385, Math.round(s.size * factor)) : s.size;
    const rel = `${folders[s.i % folders.length]}/f${String(s.i).padStart(4, '0')}${s.ext}`;
    writeFile(path.join(dir, rel), prng(21, s.i, size), BASE_MTIME + s.i);
    list.push({ rel, size, index: s.i });
  }
  list.sort((a, b) => (a.rel < b.rel ? -1 : 1));
  return { list, folders };
}

/** The change set of the "changes + renames" scenario: MODIFY files rewritten (half the same size), RENAME moved. */
function planMutation({ list, folders }) {
  const rand = mulberry32(3);
  const idx = list.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const changes = [];
  for (let k = 0; k < MODIFY; k++) {
    const f = list[idx[k]];
    const size = k % 2 === 0 ? f.size : f.size + 1 + Math.floor(rand() * 4096);
    changes.push({ kind: 'modify', rel: f.rel, file: f, size, data: prng(31, k, size), k });
  }
  for (let k = 0; k < RENAME; k++) {
    const f = list[idx[MODIFY + k]];
    const folder = path.posix.dirname(f.rel);
    const base = path.posix.basename(f.rel);
    let to;
    if (k % 2 === 0) to = `${folder}/renamed-${k}-${base}`;
    else {
      let other = folder;
      while (other === folder) other = folders[Math.floor(rand() * folders.length)];
      to = `${other}/moved-${k}-${base}`;
    }
    changes.push({ kind: 'rename', rel: f.rel, to, file: f });
  }
  const used = new Set(changes.map((c) => c.rel));
  return { changes, used };
}

// Every write of the change set and of its undo gets a later mtime than the one before, as real
// edits do (lftp mirror, for one, does not upload a file older than the remote copy).
const mutationMtime = (round, undo, k) => BASE_MTIME + 86400 * (10 + 2 * round + (undo ? 1 : 0)) + k;

function applyMutation(dir, changes, round) {
  for (const c of changes) {
    const full = path.join(dir, c.rel);
    if (c.kind === 'modify') writeFile(full, c.data, mutationMtime(round, false, c.k));
    else fs.renameSync(full, path.join(dir, c.to));
  }
}

/** Undoes applyMutation: the original bytes back (with a newer mtime), the renamed files back where they were. */
function revertMutation(dir, changes, round) {
  for (const c of changes) {
    if (c.kind === 'modify') writeFile(path.join(dir, c.rel), prng(21, c.file.index, c.file.size), mutationMtime(round, true, c.k));
    else fs.renameSync(path.join(dir, c.to), path.join(dir, c.rel));
  }
}

/** The one-file change of round `round`: a different small file each round, new bytes, new size and mtime. */
function oneFileChange(tree, used, round) {
  const candidates = tree.list.filter((f) => f.size <= 16384 && !used.has(f.rel));
  const f = candidates[(round * 7919 + 13) % candidates.length];
  const size = f.size + 100;
  return { rel: f.rel, size, data: prng(41, round, size), mtime: BASE_MTIME + 100 * 86400 + round };
}

// ---------------------------------------------------------------------------------------------
// Correctness

/** rel -> absolute path of the local files of a folder (ignoring the engine's own entries). */
function listFiles(root, suffix = '') {
  const out = new Map();
  const walk = (dir, prefix) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      if (error.code === 'ENOENT' && prefix === '') return;
      throw error;
    }
    for (const e of entries) {
      if (ignoredName(e.name)) continue;
      if (e.isDirectory()) walk(path.join(dir, e.name), prefix ? `${prefix}/${e.name}` : e.name);
      else if (!suffix || e.name.endsWith(suffix)) {
        const name = suffix ? e.name.slice(0, -suffix.length) : e.name;
        if (ignoredName(name)) continue;
        out.set(prefix ? `${prefix}/${name}` : name, path.join(dir, e.name));
      }
    }
  };
  walk(root, '');
  return out;
}

function sameContent(a, b) {
  const sa = fs.statSync(a);
  const sb = fs.statSync(b);
  if (sa.size !== sb.size) return false;
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

/** The differences between the expected folder and a remote folder's files; empty when equal. */
function diff(expectedDir, actual) {
  const a = listFiles(expectedDir);
  const problems = [];
  for (const rel of a.keys()) if (!actual.has(rel)) problems.push(`missing: ${rel}`);
  for (const rel of actual.keys()) if (!a.has(rel)) problems.push(`extra: ${rel}`);
  for (const [rel, full] of a) {
    const other = actual.get(rel);
    if (other && !sameContent(full, other)) problems.push(`content differs: ${rel}`);
  }
  return problems;
}

function verify(label, expectedDir, actual) {
  const problems = diff(expectedDir, actual);
  if (problems.length) throw new Error(`VERIFY FAILED (${label}): ${problems.length} differences, e.g.\n  ${problems.slice(0, 10).join('\n  ')}`);
}

/**
 * Checks a remote folder against the expected tree. A wrong result is a failure for SyncEngine. For
 * the other tools it is noted (the time still counts) and, on SFTP and FTP, the remote folder is put
 * right on the server's disk, so that the next run starts from the expected state and the same
 * difference is not counted again; on S3 it stays (a later difference may be inherited).
 */
function check(backend, tool, res, when, expectedDir, folder) {
  const problems = diff(expectedDir, folder.files());
  if (!problems.length) return;
  if (tool.family === 'ours') throw new Error(`VERIFY FAILED (${tool.label}, ${backend.id}/${res.scenario}, ${when}): ${problems.length} differences, e.g.\n  ${problems.slice(0, 10).join('\n  ')}`);
  log(`  WRONG RESULT: ${tool.label}, ${backend.id}/${res.scenario}, ${when}: ${problems.length} differences, e.g. ${problems.slice(0, 3).join('; ')}`);
  res.mismatches ??= [];
  res.mismatches.push({ when, count: problems.length, examples: problems.slice(0, 3) });
  if (backend.id === 's3') return;
  for (const p of problems) {
    const [kind, rel] = [p.slice(0, p.indexOf(':')), p.slice(p.indexOf(':') + 2)];
    const target = path.join(folder.abs, rel);
    if (kind === 'extra') {
      fs.rmSync(target, { force: true });
      continue;
    }
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = path.join(folder.abs, ...parts.slice(0, i));
      if (!fs.existsSync(dir)) {
        fs.mkdirSync(dir);
        fs.chownSync(dir, backend.s.uid, backend.s.gid);
      }
    }
    const from = path.join(expectedDir, rel);
    fs.copyFileSync(from, target);
    fs.chownSync(target, backend.s.uid, backend.s.gid);
    const st = fs.statSync(from);
    fs.utimesSync(target, st.atime, st.mtime);
  }
}

// ---------------------------------------------------------------------------------------------
// Servers and backends

let servers = {};
let procs;

async function startServers() {
  const need = (f) => {
    const p = path.join(SERVERS, f);
    if (!fs.existsSync(p)) throw new Error(`${p} not found: run "npx tsc -p tsconfig.test.json" first`);
    return require(p);
  };
  procs = need('processes.js');
  if (BACKENDS.includes('sftp')) servers.sftp = await need('sshd.js').startSshd();
  if (BACKENDS.includes('ftp')) servers.ftp = await need('vsftpd.js').startVsftpd({ tls: 'none' });
  if (BACKENDS.includes('s3')) servers.s3 = await need('s3.js').startS3Server({ buckets: ['bench'] });
}

async function stopServers() {
  for (const [name, s] of Object.entries(servers)) {
    try {
      await s.stop();
    } catch (error) {
      log(`stopping ${name}: ${error.message ?? error}`);
    }
  }
  servers = {};
}

/** The server's listener process, found among this process's descendants by its command line. */
function serverPid(match) {
  for (const pid of procs.descendants(process.pid)) {
    try {
      if (match(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'))) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * A file's identity on the server's disk: inode and birth time. A rename keeps both; a new file
 * (an upload) gets a new birth time even when the file system hands it the inode number just freed
 * by deleting the old one.
 */
function inode(file) {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.ino}:${st.birthtimeNs}`;
  } catch {
    return undefined;
  }
}

let folderCounter = 0;

function makeBackends() {
  const out = [];
  if (servers.sftp) {
    const s = servers.sftp;
    // sshd rewrites its process title ("sshd: /usr/sbin/sshd -D -e -f … [listener] …").
    const pid = serverPid((argv) => argv.join(' ').includes(`sshd -D -e -f ${path.join(s.dir, 'sshd_config')}`));
    out.push({
      id: 'sftp',
      label: 'SFTP',
      server: `OpenSSH sshd (${sh('ssh', ['-V']).stderr.trim()}), internal-sftp, key login (ed25519)`,
      pid,
      s,
      newFolder(name) {
        const abs = path.join(s.root, `${name}-${++folderCounter}`);
        fs.mkdirSync(abs);
        fs.chownSync(abs, s.uid, s.gid);
        return { abs, files: () => listFiles(abs), inode: (rel) => inode(path.join(abs, rel)), remove: () => rmrf(abs) };
      },
    });
  }
  if (servers.ftp) {
    const f = servers.ftp;
    const dir = path.dirname(f.logFile);
    const pid = serverPid((argv) => argv[0] === '/usr/sbin/vsftpd' && argv[1] === path.join(dir, 'vsftpd.conf'));
    const version = (sh('dpkg-query', ['-W', '-f', '${Version}', 'vsftpd']).stdout || '').trim();
    out.push({
      id: 'ftp',
      label: 'FTP',
      server: `vsftpd ${version} (plain FTP, passive mode, as test/servers/vsftpd.ts starts it with tls: 'none')`,
      pid,
      s: f,
      newFolder(name) {
        const rel = `${name}-${++folderCounter}`;
        const abs = path.join(f.root, rel);
        fs.mkdirSync(abs);
        fs.chownSync(abs, f.uid, f.gid);
        return { rel, abs, files: () => listFiles(abs), inode: (r) => inode(path.join(abs, r)), remove: () => rmrf(abs) };
      },
    });
  }
  if (servers.s3) {
    const s = servers.s3;
    const pid = serverPid((argv) => argv.includes(s.directory));
    const version = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('s3rver', { paths: [ROOT] })), '..', 'package.json'), 'utf8')).version;
    out.push({
      id: 's3',
      label: 'S3',
      server: `s3rver ${version} (node ${process.version}, filesystem store, with the fidelity patches of test/servers/s3.ts)`,
      pid,
      s,
      newFolder(name) {
        const prefix = `${name}-${++folderCounter}`;
        const abs = path.join(s.directory, s.bucket, prefix);
        // s3rver keeps an object as <key>._S3rver_object next to its metadata files.
        return { prefix, abs, files: () => listFiles(abs, '._S3rver_object'), inode: () => undefined, remove: () => rmrf(abs) };
      },
    });
  }
  return out;
}

/**
 * CPU accounting for a server with every process it starts, exited ones included: a control group
 * of its own (cgroup v1 cpuacct, or v2), which the listener joins and its sessions inherit. The
 * listener's own counters miss sessions: sshd's per-session processes and vsftpd's privilege-separated
 * ones exit without their CPU time ever reaching the listener's cutime/cstime (an OpenSSH sftp upload
 * of 256 MiB used 1.6 s in its session processes, and 0.07 s showed up on the listener).
 */
function serverCgroup(name, pid) {
  const kinds = [
    { base: '/sys/fs/cgroup/cpuacct', probe: 'cpuacct.usage', read: (dir) => Number(fs.readFileSync(path.join(dir, 'cpuacct.usage'), 'utf8')) / 1e9 },
    ...['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].map((base) => ({
      base,
      probe: 'cgroup.controllers',
      read: (dir) => Number(/^usage_usec (\d+)$/m.exec(fs.readFileSync(path.join(dir, 'cpu.stat'), 'utf8'))?.[1]) / 1e6,
    })),
  ];
  for (const kind of kinds) {
    if (!fs.existsSync(path.join(kind.base, kind.probe))) continue;
    const dir = path.join(kind.base, `syncengine-bench-${process.pid}-${name}`);
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
      if (!Number.isFinite(kind.read(dir))) throw new Error('no CPU usage figure');
      cgroupDirs.push({ dir, base: kind.base });
      return { usage: () => kind.read(dir), how: `a ${kind.base.endsWith('cpuacct') ? 'cgroup v1 cpuacct' : 'cgroup v2'} group of its own` };
    } catch {
      try {
        fs.rmdirSync(dir);
      } catch {
        // never made
      }
    }
  }
  return undefined;
}

/** Control groups made by serverCgroup; removed once the servers have stopped. */
const cgroupDirs = [];

function removeCgroups() {
  for (const { dir, base } of cgroupDirs.splice(0)) {
    try {
      // Anything still inside (a server that would not stop) goes back to the parent group first.
      for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) fs.writeFileSync(path.join(base, 'cgroup.procs'), pid);
      fs.rmdirSync(dir);
    } catch (error) {
      log(`removing ${dir}: ${error.message ?? error}`);
    }
  }
}

/** Server CPU seconds so far; after a run, waits (untimed) until the session processes have exited. */
async function serverCpu(backend, after) {
  if (backend.pid === undefined) return undefined;
  if (after && backend.id !== 's3') {
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && procs.descendants(backend.pid).length > 0) await sleep(50);
  }
  return backend.cgroup ? backend.cgroup.usage() : processCpu(backend.pid);
}

// ---------------------------------------------------------------------------------------------
// Tools

let rcloneOk = false;
let rsyncOk = false;
let lftpOk = false;
let ftpObscured;

function ours(backend) {
  const extra = () => {
    if (backend.id === 'sftp') return ['--key', backend.s.keyFile, '--known-hosts', backend.s.knownHostsFile];
    if (backend.id === 's3') return ['--s3-endpoint', backend.s.endpoint, '--s3-path-style', '--s3-region', backend.s.region];
    return [];
  };
  const target = (folder) => {
    if (backend.id === 'sftp') return `sftp://${backend.s.user}@127.0.0.1:${backend.s.port}${folder.abs}`;
    if (backend.id === 'ftp') return `ftp://${backend.s.user}@127.0.0.1:${backend.s.port}/~/${folder.rel}`;
    return `s3://${backend.s.bucket}/${folder.prefix}`;
  };
  const shownTarget = { sftp: 'sftp://USER@127.0.0.1:PORT/ABS/PATH --key KEY --known-hosts KNOWN_HOSTS', ftp: 'ftp://USER@127.0.0.1:PORT/~/PATH', s3: 's3://bench/PREFIX --s3-endpoint http://127.0.0.1:PORT --s3-path-style --s3-region us-east-1' }[backend.id];
  const env = backend.id === 'ftp' ? { SYNCENGINE_PASSWORD: backend.s.password } : backend.id === 's3' ? { AWS_ACCESS_KEY_ID: backend.s.accessKeyId, AWS_SECRET_ACCESS_KEY: backend.s.secretAccessKey, AWS_REGION: backend.s.region, AWS_EC2_METADATA_DISABLED: 'true' } : {};
  return {
    id: 'syncengine',
    label: 'SyncEngine',
    family: 'ours',
    spec: (src, folder, { state }) => ({ cmd: process.execPath, args: [CLI, 'sync', src, target(folder), ...extra(), '--state-dir', state, '--json', '--quiet'], env }),
    shown: () => `${backend.id === 'ftp' ? 'SYNCENGINE_PASSWORD=… ' : backend.id === 's3' ? 'AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER ' : ''}node dist/cli.js sync SRC ${shownTarget} --state-dir STATE --json --quiet`,
    parse(r) {
      const j = JSON.parse(r.stdout);
      if (j.exitCode !== 0) throw new Error(`SyncEngine reported exitCode ${j.exitCode}: ${JSON.stringify(j.errors ?? []).slice(0, 2000)}`);
      return { json: j, bytes: j.done?.bytesTransferred, transfers: j.done?.uploaded, renames: j.done?.renamedDestination, execMs: j.done?.durationMs };
    },
  };
}

function rcloneRemote(backend, folder) {
  if (backend.id === 'sftp') {
    const s = backend.s;
    return `:sftp,host=127.0.0.1,port=${s.port},user=${s.user},key_file=${s.keyFile},known_hosts_file=${s.knownHostsFile}:${folder.abs}`;
  }
  if (backend.id === 'ftp') return `:ftp,host=127.0.0.1,port=${backend.s.port},user=${backend.s.user},pass=${ftpObscured}:${folder.rel}`;
  return `:s3,provider=Other,endpoint='${backend.s.endpoint}',access_key_id=${backend.s.accessKeyId},secret_access_key=${backend.s.secretAccessKey}:${backend.s.bucket}/${folder.prefix}`;
}

const rcloneShownRemote = {
  sftp: ':sftp,host=127.0.0.1,port=PORT,user=USER,key_file=KEY,known_hosts_file=KNOWN_HOSTS:/ABS/PATH',
  ftp: ':ftp,host=127.0.0.1,port=PORT,user=USER,pass=$(rclone obscure PASSWORD):PATH',
  s3: ":s3,provider=Other,endpoint='http://127.0.0.1:PORT',access_key_id=S3RVER,secret_access_key=S3RVER:bench/PREFIX",
};

function rclone(backend, extra, id, label) {
  const base = (instrument) => ['--config', '/dev/null', ...extra, ...(instrument ? ['-v', '--use-json-log'] : [])];
  return {
    id,
    label,
    family: 'rclone',
    spec: (src, folder, { instrument }) => ({ cmd: 'rclone', args: ['sync', ...base(instrument), src, rcloneRemote(backend, folder)] }),
    shown: (instrument) => display(['rclone', 'sync', ...base(instrument), 'SRC', rcloneShownRemote[backend.id]]),
    parse(r) {
      let stats;
      for (const line of r.stderr.split('\n')) {
        if (!line.startsWith('{') || !line.includes('"stats"')) continue;
        try {
          stats = JSON.parse(line).stats ?? stats;
        } catch {
          /* not a JSON line */
        }
      }
      return stats ? { bytes: stats.bytes, transfers: stats.transfers, renames: stats.renames, deletes: stats.deletes } : {};
    },
  };
}

function rsync(backend) {
  const s = backend.s;
  const ssh = `ssh -p ${s.port} -i ${s.keyFile} -o UserKnownHostsFile=${s.knownHostsFile} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
  const shownSsh = 'ssh -p PORT -i KEY -o UserKnownHostsFile=KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes';
  const opts = (instrument) => ['-a', '--delete', ...(instrument ? ['--stats'] : [])];
  return {
    id: 'rsync',
    label: 'rsync over ssh',
    family: 'rsync',
    spec: (src, folder, { instrument }) => ({ cmd: 'rsync', args: [...opts(instrument), '-e', ssh, `${src}/`, `${s.user}@127.0.0.1:${folder.abs}/`] }),
    shown: (instrument) => display(['rsync', ...opts(instrument), '-e', shownSsh, 'SRC/', 'USER@127.0.0.1:/ABS/PATH/']),
    parse(r) {
      const num = (re) => {
        const m = r.stdout.match(re);
        return m ? Number(m[1].replace(/,/g, '')) : undefined;
      };
      return { bytes: num(/Total transferred file size: ([\d,]+) bytes/), transfers: num(/Number of regular files transferred: ([\d,]+)/) };
    },
  };
}

/** OpenSSH sftp(1): a plain upload (initial-sync scenarios only), the throughput reference. */
function opensshSftp(backend) {
  const s = backend.s;
  const args = ['-q', '-b', '-', '-i', s.keyFile, '-P', String(s.port), '-o', `UserKnownHostsFile=${s.knownHostsFile}`, '-o', 'BatchMode=yes', `${s.user}@127.0.0.1`];
  const batch = (src, folder, scenario) => (scenario === 'big' ? `put ${src}/large.bin ${folder.abs}/large.bin\n` : `put -r ${src} ${folder.abs}\n`);
  return {
    id: 'openssh-sftp',
    label: 'OpenSSH sftp',
    family: 'sftp',
    only: new Set(['big', 'small', 'tree']),
    // `put -r SRC DIR` into an existing DIR would make DIR/SRC: let it create the folder itself.
    prepare: (folder, scenario) => {
      if (scenario !== 'big') fs.rmdirSync(folder.abs);
    },
    spec: (src, folder, { scenario }) => ({ cmd: 'sftp', args, input: batch(src, folder, scenario) }),
    shown: (_, scenario) => `${scenario === 'big' ? 'echo "put SRC/large.bin /ABS/PATH/large.bin"' : 'echo "put -r SRC /ABS/PATH"'} | sftp -q -b - -i KEY -P PORT -o UserKnownHostsFile=KNOWN_HOSTS -o BatchMode=yes USER@127.0.0.1`,
    parse: () => ({}),
  };
}

const LFTP_PARALLEL = 8;

function lftp(backend) {
  const f = backend.s;
  const script = (src, target, instrument, user, pass, port) =>
    `set ftp:ssl-allow no; set ftp:use-mdtm-overloaded true; set net:max-retries 2; open -u ${user},${pass} ftp://127.0.0.1:${port}; mirror -R --delete --parallel=${LFTP_PARALLEL}${instrument ? ' --verbose=1' : ''} ${src} ${target}`;
  return {
    id: 'lftp',
    label: `lftp mirror -R --parallel=${LFTP_PARALLEL}`,
    family: 'lftp',
    spec: (src, folder, { instrument }) => ({ cmd: 'lftp', args: ['-c', script(src, folder.rel, instrument, f.user, f.password, f.port)] }),
    shown: (instrument) => display(['lftp', '-c', script('SRC', 'PATH', instrument, 'USER', 'PASSWORD', 'PORT')]),
    parse(r, { src, instrument }) {
      if (!instrument) return {};
      const names = [...r.stdout.matchAll(/^Transferring file `(.*)'$/gm)].map((m) => m[1]);
      let bytes = 0;
      for (const n of names) bytes += fs.statSync(path.join(src, n)).size;
      return { transfers: names.length, bytes };
    },
  };
}

function toolsFor(backend) {
  const list = [ours(backend)];
  if (rcloneOk) list.push(rclone(backend, [], 'rclone', 'rclone'), rclone(backend, ['--transfers', '16'], 'rclone-t16', 'rclone --transfers 16'));
  if (backend.id === 'sftp') {
    if (rsyncOk) list.push(rsync(backend));
    list.push(opensshSftp(backend));
  }
  if (backend.id === 'ftp' && lftpOk) list.push(lftp(backend));
  return list;
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const SCENARIOS = [
  { id: 'big', short: `${BIG_BYTES / MiB} MiB file`, title: `One ${BIG_BYTES / MiB} MiB file into an empty folder` },
  { id: 'small', short: `${fmtInt(SMALL_FILES)} × 4 KiB`, title: `${fmtInt(SMALL_FILES)} files of 4 KiB (${SMALL_FOLDERS} folders) into an empty folder` },
  { id: 'tree', short: 'mixed tree', title: '' /* set once the tree is generated */ },
  { id: 'nochange', short: 'no-change re-sync', title: 'No-change re-sync of the mixed tree' },
  { id: 'changes', short: `${MODIFY} modified + ${RENAME} renamed`, title: `Re-sync of the mixed tree after ${MODIFY} files (1%) were modified (half the same size) and ${RENAME} (0.5%) renamed (half within their folder, half into another)` },
  { id: 'one', short: 'one small file changed', title: 'Re-sync of the mixed tree after one small file (≤ 16 KiB) changed' },
];
const scenario = (id) => SCENARIOS.find((s) => s.id === id);

const results = [];
function result(backend, scen, tool) {
  let r = results.find((x) => x.backend === backend.id && x.scenario === scen && x.tool === tool.id);
  if (!r) {
    r = { backend: backend.id, scenario: scen, tool: tool.id, label: tool.label, family: tool.family, times: [], cpu: [], srvCpu: [], execMs: [], busyStarts: 0, notes: new Set(), commands: new Set(), transfersSeen: [] };
    results.push(r);
  }
  return r;
}

async function attempt(res, fn) {
  if (res.failed) return;
  try {
    await fn();
  } catch (error) {
    const lines = String(error.message ?? error).split('\n');
    res.failed = (lines[0].startsWith('VERIFY') ? lines.slice(0, 3) : lines.slice(0, 1)).map((l) => l.trim()).join(' ').slice(0, 400);
    log(`${res.family === 'ours' ? 'FAILURE' : 'failure'}: ${res.label}, ${res.backend}/${res.scenario}: ${error.stack ?? error}`);
  }
}

/** One run of a tool: timed (with client and server CPU) and parsed; throws on a failure. */
async function runTool(backend, tool, src, folder, { scenario: scen, state, instrument = false, timedRun = true }) {
  const spec = tool.spec(src, folder, { instrument, state, scenario: scen });
  const quiet = timedRun ? await beforeTimedRun() : undefined;
  const s0 = await serverCpu(backend, false);
  const r = await exec(spec);
  const s1 = await serverCpu(backend, true);
  if (r.error || r.status !== 0) {
    let why = r.stderr.trim().split('\n').filter((l) => l && !/warning: .*plain FTP/.test(l)).pop() ?? '';
    if (tool.family === 'ours') {
      try {
        const j = JSON.parse(r.stdout);
        if (j.errors?.length) why = `${j.errors.length} error(s), e.g. ${j.errors[0].path}: ${j.errors[0].message}`;
      } catch {
        // no JSON summary: keep stderr
      }
    }
    throw new Error(`${tool.label} ${r.error ? `could not run: ${r.error.message}` : `exited with ${r.status ?? r.signal} after ${fmtS(r.seconds)} s`}: ${why}\n${display([spec.cmd, ...spec.args])}\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-3000)}`);
  }
  let parsed;
  try {
    parsed = tool.parse(r, { src, instrument });
  } catch (e) {
    if (tool.family === 'ours') throw new Error(`SyncEngine: ${e.message}\n${r.stdout.slice(0, 3000)}\n${r.stderr.slice(-2000)}`);
    parsed = {};
  }
  return { ...parsed, seconds: r.seconds, cpu: r.cpu, srvCpu: s0 !== undefined && s1 !== undefined ? s1 - s0 : undefined, quiet };
}

function record(res, r, round) {
  if (round === 0) return;
  res.times.push(r.seconds);
  if (r.cpu !== undefined) res.cpu.push(r.cpu);
  if (r.srvCpu !== undefined) res.srvCpu.push(r.srvCpu);
  if (r.execMs !== undefined) res.execMs.push(r.execMs);
  if (r.quiet?.gaveUp) res.busyStarts++;
  for (const k of ['bytes', 'transfers', 'renames', 'deletes']) if (r[k] !== undefined) res[k] = r[k];
  if (r.transfers !== undefined) res.transfersSeen.push(r.transfers);
}

const roundName = (round) => (round === 0 ? 'warm-up' : `run ${round}/${RUNS}`);
const fmtRun = (r) => `${fmtS(r.seconds)} s` + (r.bytes !== undefined ? ` (${fmtInt(r.bytes)} B${r.transfers !== undefined ? `, ${r.transfers} files` : ''}${r.renames ? `, ${r.renames} renames` : ''})` : '') + (r.quiet?.gaveUp ? ' [busy machine]' : '');

let stateCounter = 0;
const freshState = () => path.join(WORK, 'state', `s${++stateCounter}`);

/** Each tool warms up once per backend (binaries, server, login path) on a small tree; untimed. */
async function warmUp(backend, tools, warmDir) {
  for (const tool of tools) {
    const folder = backend.newFolder(`warmup-${tool.id}`);
    try {
      tool.prepare?.(folder, 'small');
      await runTool(backend, tool, warmDir, folder, { scenario: 'small', state: freshState(), timedRun: false });
    } catch (error) {
      log(`warm-up of ${tool.label} on ${backend.id} failed: ${String(error.message).split('\n')[0]}`);
    }
    folder.remove();
  }
}

/** Stops the benchmark early and clearly when its data is gone, rather than failing every tool after. */
function assertWork(...dirs) {
  for (const d of [WORK, ...dirs]) if (!fs.existsSync(d)) throw new Error(`${d} disappeared during the run: stopping`);
}

/** Initial sync into an empty folder: RUNS timed rounds, the tools taking turns; every result checked. */
async function initialScenario(backend, tools, scen, master, { copySource, keep }) {
  assertWork(master, ENGINE);
  log(`${backend.id}: ${scenario(scen).title} [${elapsed()}]`);
  const kept = new Map();
  for (let round = 1; round <= RUNS; round++) {
    for (const tool of tools) {
      if (tool.only && !tool.only.has(scen)) continue;
      const res = result(backend, scen, tool);
      if (res.failed || overBudget(res) || kept.has(tool.id)) continue;
      let folder;
      let src = master; // shared and read-only unless copySource: never removed here
      let copied;
      const state = freshState();
      await attempt(res, async () => {
        folder = backend.newFolder(`${scen}-${tool.id}-r${round}`);
        if (copySource) {
          copied = path.join(WORK, 'pairs', backend.id, tool.id, 'src');
          copyTree(master, copied);
          src = copied;
        }
        tool.prepare?.(folder, scen);
        res.commands.add(tool.shown(false, scen));
        const r = await runTool(backend, tool, src, folder, { scenario: scen, state });
        log(`  ${roundName(round)} ${tool.label}: ${fmtRun(r)}`);
        check(backend, tool, res, roundName(round), master, folder);
        record(res, r, round);
        // The pair of the tool's last run is the base of the re-sync scenarios.
        if (keep && !tool.only && (round === RUNS || overBudget(res))) kept.set(tool.id, { src, folder, state });
      });
      if (!kept.has(tool.id)) {
        folder?.remove();
        rmrf(state);
        if (copied) rmrf(copied);
      }
    }
  }
  return kept;
}

/**
 * A base pair for a tool whose timed mixed-tree uploads all failed: the same upload, untimed, run
 * again (up to 3 times) until the tool reports success and the remote matches, so that the re-sync
 * scenarios can still be measured. Noted in the report.
 */
async function fallbackPair(backend, tool, master) {
  const src = path.join(WORK, 'pairs', backend.id, tool.id, 'src');
  copyTree(master, src);
  const folder = backend.newFolder(`tree-${tool.id}-base`);
  const state = freshState();
  let lastError;
  for (let attemptNo = 1; attemptNo <= 3; attemptNo++) {
    try {
      await runTool(backend, tool, src, folder, { scenario: 'tree', state, timedRun: false });
      verify(`${tool.label}, ${backend.id}/tree (base pair)`, master, folder.files());
      return { pair: { src, folder, state }, syncs: attemptNo };
    } catch (error) {
      lastError = error;
      log(`  base pair for ${tool.label}: sync ${attemptNo} failed: ${String(error.message).split('\n')[0]}`);
    }
  }
  folder.remove();
  rmrf(src);
  rmrf(state);
  throw lastError;
}

/** Re-sync scenarios on the pairs left by the mixed-tree initial sync (each tool its own pair). */
async function resyncScenarios(backend, tools, pairs, tree, ref, master, { changes, used }) {
  assertWork(master, ref, ENGINE);
  for (const t of tools) {
    if (t.only || pairs.has(t.id)) continue;
    try {
      const { pair, syncs } = await fallbackPair(backend, t, master);
      pairs.set(t.id, pair);
      for (const sc of ['nochange', 'changes', 'one']) result(backend, sc, t).notes.add(`base pair made by ${syncs} untimed sync(s) after its timed mixed-tree uploads failed`);
    } catch (error) {
      for (const sc of ['nochange', 'changes', 'one']) result(backend, sc, t).failed ??= `no base pair: the mixed-tree upload failed (${String(error.message).split('\n')[0].slice(0, 200)})`;
    }
  }
  const active = tools.filter((t) => pairs.has(t.id));

  log(`${backend.id}: ${scenario('nochange').title} [${elapsed()}]`);
  for (let round = 0; round <= RUNS; round++) {
    for (const tool of active) {
      const { src, folder, state } = pairs.get(tool.id);
      const res = result(backend, 'nochange', tool);
      if (overBudget(res)) continue;
      await attempt(res, async () => {
        res.commands.add(tool.shown(true, 'nochange'));
        const r = await runTool(backend, tool, src, folder, { scenario: 'nochange', state, instrument: true });
        log(`  ${roundName(round)} ${tool.label}: ${fmtRun(r)}`);
        if (tool.family === 'ours') {
          const c = r.json.counts;
          const work = c.upload + c.download + c.deleteSource + c.deleteDestination + c.renameSource + c.renameDestination + c.conflicts + c.conflictsResolved;
          if (work !== 0) throw new Error(`SyncEngine planned work on a no-change re-sync: ${JSON.stringify(c)}`);
        }
        check(backend, tool, res, roundName(round), ref, folder);
        record(res, r, round);
      });
    }
  }

  log(`${backend.id}: ${scenario('changes').title} [${elapsed()}]`);
  const modifiedBytes = changes.filter((c) => c.kind === 'modify').reduce((a, c) => a + c.size, 0);
  const renames = changes.filter((c) => c.kind === 'rename');
  // The expected state after the undo sync: `ref` reverted (kept apart: `ref` holds the changed state meanwhile).
  const undoRef = path.join(WORK, 'expected-undo');
  for (let round = 0; round <= RUNS; round++) {
    applyMutation(ref, changes, round);
    copyTree(ref, undoRef);
    for (const tool of active) {
      const { src, folder, state } = pairs.get(tool.id);
      const res = result(backend, 'changes', tool);
      res.modifiedBytes = modifiedBytes;
      if (overBudget(res)) continue;
      await attempt(res, async () => {
        res.commands.add(tool.shown(true, 'changes'));
        applyMutation(src, changes, round);
        let timedOk = false;
        try {
          const before = renames.map((c) => folder.inode(c.rel));
          const r = await runTool(backend, tool, src, folder, { scenario: 'changes', state, instrument: true });
          check(backend, tool, res, `${roundName(round)}`, ref, folder);
          // A renamed file that keeps its identity (inode + birth time) on the server was moved there, not uploaded again.
          if (before.every((x) => x !== undefined)) {
            r.reup = renames.filter((c, i) => folder.inode(c.to) !== before[i]).length;
            if (round > 0) res.renamesReuploaded = Math.max(res.renamesReuploaded ?? 0, r.reup);
          }
          log(`  ${roundName(round)} ${tool.label}: ${fmtRun(r)}${r.reup !== undefined ? `; renamed files re-uploaded: ${r.reup}/${renames.length}` : ''}`);
          record(res, r, round);
          timedOk = true;
        } finally {
          // Put the pair back (untimed) for the next round and scenario.
          revertMutation(src, changes, round);
          revertMutation(undoRef, changes, round);
          try {
            await runTool(backend, tool, src, folder, { scenario: 'changes', state, timedRun: false });
            check(backend, tool, res, `${roundName(round)}, the untimed undo sync`, undoRef, folder);
          } catch (error) {
            // After a failed timed run, report that failure, not this one.
            if (timedOk) throw error;
            log(`  undo sync after the failure: ${String(error.message).split('\n')[0]}`);
          } finally {
            applyMutation(undoRef, changes, round);
          }
        }
      });
    }
    revertMutation(ref, changes, round);
    rmrf(undoRef);
  }

  log(`${backend.id}: ${scenario('one').title} [${elapsed()}]`);
  for (let round = 0; round <= RUNS; round++) {
    const change = oneFileChange(tree, used, round);
    writeFile(path.join(ref, change.rel), change.data, change.mtime);
    for (const tool of active) {
      const { src, folder, state } = pairs.get(tool.id);
      const res = result(backend, 'one', tool);
      // Every tool's source gets the change, also one that failed before (its result is void anyway).
      writeFile(path.join(src, change.rel), change.data, change.mtime);
      await attempt(res, async () => {
        res.commands.add(tool.shown(true, 'one'));
        const r = await runTool(backend, tool, src, folder, { scenario: 'one', state, instrument: true });
        log(`  ${roundName(round)} ${tool.label}: ${fmtRun(r)}`);
        check(backend, tool, res, roundName(round), ref, folder);
        record(res, r, round);
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Machine and versions

function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const df = sh('df', ['-T', '-h', WORK]).stdout.trim().split('\n');
  const dfLine = df[1]?.split(/\s+/) ?? [];
  return {
    cpu: model,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    ram: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    disk: dfLine.length >= 2 ? `${dfLine[0]} (${dfLine[1]}, ${dfLine[2]} total, ${dfLine[4]} free), mounted on ${dfLine[6]}` : 'unknown',
  };
}

function versionLine(cmd, args, pick = (s) => s.split('\n')[0].trim()) {
  const r = sh(cmd, args);
  return r.status === 0 || r.stdout || r.stderr ? pick(`${r.stdout}${r.stderr}`) : `${cmd} not available`;
}

// ---------------------------------------------------------------------------------------------
// Report

const BACKEND_ORDER = ['sftp', 'ftp', 's3'];
const SCEN_ORDER = SCENARIOS.map((s) => s.id);
const rowStats = (r) => ({ med: r.failed || !r.times.length ? NaN : median(r.times), min: r.failed || !r.times.length ? NaN : Math.min(...r.times) });

function bestRclone(backend, scen) {
  return results
    .filter((r) => r.backend === backend && r.scenario === scen && r.family === 'rclone' && !r.failed && r.times.length)
    .map((r) => ({ r, ...rowStats(r) }))
    .sort((a, b) => a.med - b.med)[0];
}

function oursRow(backend, scen) {
  const r = results.find((x) => x.backend === backend && x.scenario === scen && x.family === 'ours');
  return r ? { r, ...rowStats(r) } : undefined;
}

function notesFor(r) {
  const n = [];
  if (r.failed) n.push(`**FAILED**: ${r.failed.replace(/\|/g, '\\|')}`);
  if (r.family === 'ours' && r.execMs.length) n.push(`engine-reported ${median(r.execMs)} ms`);
  if (r.scenario === 'changes' && r.renamesReuploaded !== undefined) n.push(`renamed files re-uploaded: ${r.renamesReuploaded}/${RENAME} (server inode + birth time)`);
  if (r.deletes) n.push(`${r.deletes} deletes`);
  if (r.scenario === 'nochange' && r.transfersSeen.some((x) => x > 0)) n.push(`**transferred files on a no-change run** (${r.transfersSeen.join(', ')})`);
  if (r.mismatches?.length) {
    const timed = r.mismatches.filter((m) => m.when !== 'warm-up');
    n.push(`**wrong result** after ${r.mismatches.length} run(s)${timed.length !== r.mismatches.length ? ` (${r.mismatches.length - timed.length} of them the warm-up)` : ''}: ${r.mismatches[0].count} differences, e.g. ${r.mismatches[0].examples.join(', ')}${r.backend !== 's3' ? ' (put right on the server before the next run)' : ''}`);
  }
  if (r.busyStarts) n.push(`${r.busyStarts} run(s) started on a busy machine`);
  for (const x of r.notes) n.push(x);
  if (!r.failed && r.times.length < RUNS && r.scenario !== 'one') n.push(`${r.times.length} run(s): time budget of ${CELL_BUDGET_S} s per cell`);
  return n.join('; ');
}

function resultsTable(backend, sizes) {
  const header = ['Scenario', 'Tool', 'Median (s)', 'Min (s)', 'MB/s', 'CPU client (s)', 'CPU server (s)', 'Runs', 'Transferred', 'Notes'];
  const out = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const scen of SCEN_ORDER) {
    for (const r of results.filter((x) => x.backend === backend && x.scenario === scen)) {
      const { med, min } = rowStats(r);
      const bytes = sizes[scen];
      const mbs = bytes && !Number.isNaN(med) ? (bytes / 1e6 / med).toFixed(1) : '—';
      const transferred = r.bytes === undefined ? '—' : `${fmtBytes(r.bytes)}${r.transfers !== undefined ? `, ${fmtInt(r.transfers)} files` : ''}${r.renames ? `, ${r.renames} moved` : ''}`;
      const cells = [
        scenario(scen).short,
        r.label,
        r.failed ? 'FAILED' : fmtS(med),
        r.failed ? '—' : fmtS(min),
        mbs,
        r.cpu.length ? median(r.cpu).toFixed(2) : '—',
        r.srvCpu.length ? median(r.srvCpu).toFixed(2) : '—',
        String(r.times.length),
        transferred,
        notesFor(r),
      ];
      out.push(`| ${cells.join(' | ')} |`);
    }
  }
  return out.join('\n');
}

/**
 * For a cell whose target is not met: the time needed against what every tool took and what the
 * server spent, so that a reader sees whether any tool got there on this machine, or whether the
 * server's own work already takes longer.
 */
function neededAgainstAll(backend, scen, needed) {
  const rows = results
    .filter((r) => r.backend === backend && r.scenario === scen && !r.failed && r.times.length)
    .map((r) => ({ r, ...rowStats(r) }))
    .sort((a, b) => a.med - b.med);
  const notes = [];
  const fastest = rows[0];
  if (fastest) {
    const wrong = fastest.r.mismatches?.length ? ', with a wrong result' : '';
    notes.push(needed < fastest.med ? `less than any tool took (fastest: ${fastest.r.label}, ${fmtS(fastest.med)} s${wrong})` : `${fastest.r.label} took ${fmtS(fastest.med)} s${wrong}`);
  }
  const server = rows.filter((x) => x.r.srvCpu.length).map((x) => ({ label: x.r.label, cpu: median(x.r.srvCpu) })).sort((a, b) => a.cpu - b.cpu)[0];
  if (server && server.cpu >= needed) notes.push(`the server alone used more CPU than that with every tool (least: ${server.cpu.toFixed(2)} s, with ${server.label})`);
  return notes.join('; ') || '—';
}

function speedTargetTable() {
  const out = ['| Backend | Scenario | SyncEngine median (s) | Best rclone median (s) | SyncEngine / best rclone | Target ≤ 0.70× | SyncEngine time needed to meet it | That time against all tools measured |', '|---|---|---|---|---|---|---|---|'];
  const verdicts = [];
  for (const b of BACKEND_ORDER) {
    for (const scen of SCEN_ORDER) {
      const o = oursRow(b, scen);
      if (!o) continue;
      const best = bestRclone(b, scen);
      let ratio = '—';
      let met = 'unknown';
      let need = '—';
      let against = '—';
      if (o.r.failed) met = '**not met** (SyncEngine failed)';
      else if (!best) met = 'unknown (no rclone result)';
      else {
        const x = o.med / best.med;
        ratio = `${x.toFixed(2)}×`;
        met = x <= 0.7 ? '**met**' : '**not met**';
        need = x <= 0.7 ? '—' : `≤ ${fmtS(best.med * 0.7)} s (${((1 - (0.7 * best.med) / o.med) * 100).toFixed(0)}% faster)`;
        if (x > 0.7) against = neededAgainstAll(b, scen, best.med * 0.7);
      }
      verdicts.push(met.startsWith('**met') ? true : met.startsWith('**not') ? false : undefined);
      const wrong = best?.r.mismatches?.length ? ' — **its result was wrong** (see Results)' : '';
      out.push(`| ${b.toUpperCase()} | ${scenario(scen).short} | ${o.r.failed ? 'FAILED' : fmtS(o.med)} | ${best ? `${fmtS(best.med)} (${best.r.label})${wrong}` : '—'} | ${ratio} | ${met} | ${need} | ${against} |`);
    }
  }
  return { table: out.join('\n'), met: verdicts.filter((v) => v === true).length, notMet: verdicts.filter((v) => v === false).length, unknown: verdicts.filter((v) => v === undefined).length };
}

function throughputTarget() {
  const o = oursRow('sftp', 'big');
  const ref = results.find((x) => x.backend === 'sftp' && x.scenario === 'big' && x.family === 'sftp');
  if (!o || !ref) return { text: 'not measured (SFTP backend not run)', met: undefined };
  const r = { r: ref, ...rowStats(ref) };
  if (o.r.failed || r.r.failed) return { text: `not measured (${o.r.failed ? 'SyncEngine' : 'OpenSSH sftp'} failed)`, met: o.r.failed ? false : undefined };
  const mbs = (x) => BIG_BYTES / 1e6 / x;
  const ratio = r.med / o.med;
  return {
    met: ratio >= 0.9,
    ratio,
    text: `SyncEngine ${mbs(o.med).toFixed(1)} MB/s (median ${fmtS(o.med)} s) vs OpenSSH sftp ${mbs(r.med).toFixed(1)} MB/s (median ${fmtS(r.med)} s): ${ratio.toFixed(2)}× of sftp's throughput`,
  };
}

function renameTarget() {
  const rows = ['| Backend | Renamed files | Re-uploaded by SyncEngine | `done.renamedDestination` | Bytes transferred vs bytes of the modified files | Target met |', '|---|---|---|---|---|---|'];
  let all = true;
  let any = false;
  for (const b of BACKEND_ORDER) {
    const r = results.find((x) => x.backend === b && x.scenario === 'changes' && x.family === 'ours');
    if (!r) continue;
    any = true;
    if (r.failed) {
      rows.push(`| ${b.toUpperCase()} | ${RENAME} | — | — | — | **not met**: the run failed (${r.failed.replace(/\|/g, '\\|').slice(0, 300)}), so it cannot be confirmed |`);
      all = false;
      continue;
    }
    const extra = r.bytes !== undefined ? r.bytes - r.modifiedBytes : undefined;
    const byInode = r.renamesReuploaded;
    const ok = (byInode === undefined || byInode === 0) && r.renames === RENAME && extra !== undefined && extra <= 0;
    all &&= ok;
    rows.push(
      `| ${b.toUpperCase()} | ${RENAME} | ${byInode !== undefined ? `${byInode} (server inode + birth time checked)` : 'n/a (no inodes on S3; see bytes)'} | ${fmtInt(r.renames)} | ${fmtInt(r.bytes)} B transferred, modified files ${fmtInt(r.modifiedBytes)} B (${extra === 0 ? 'equal' : extra > 0 ? `${fmtInt(extra)} B more` : `${fmtInt(-extra)} B less`}) | ${ok ? '**met**' : '**not met**'} |`,
    );
  }
  return { table: rows.join('\n'), met: any ? all : undefined };
}

function otherRenames() {
  const lines = [];
  for (const b of BACKEND_ORDER) {
    for (const r of results.filter((x) => x.backend === b && x.scenario === 'changes' && x.family !== 'ours' && !x.failed)) {
      const parts = [];
      if (r.renamesReuploaded !== undefined) parts.push(`${r.renamesReuploaded}/${RENAME} renamed files re-uploaded (server inode + birth time)`);
      if (r.transfers !== undefined) parts.push(`${fmtInt(r.transfers)} files / ${fmtBytes(r.bytes)} sent`);
      if (parts.length) lines.push(`- ${b.toUpperCase()}, ${r.label}: ${parts.join('; ')}`);
    }
  }
  return lines.join('\n');
}

function commandsSection(backends) {
  const out = [];
  for (const b of backends) {
    out.push(`### ${b.label}`, '');
    for (const scen of SCEN_ORDER) {
      const cmds = new Set();
      for (const r of results.filter((x) => x.backend === b.id && x.scenario === scen)) for (const c of r.commands) cmds.add(c);
      if (!cmds.size) continue;
      out.push(`**${scenario(scen).title}**`, '', '```sh', ...cmds, '```', '');
    }
  }
  return out.join('\n');
}

function quietSummary() {
  if (!QUIET_WAIT) return 'The script did not wait for a quiet machine (`BENCH_QUIET_WAIT=0`); see the load average above.';
  if (!quietLog.length) return 'CPU use of other processes could not be measured.';
  const gaveUp = quietLog.filter((q) => q.gaveUp).length;
  const waited = quietLog.reduce((a, q) => a + q.waited, 0);
  const busy = quietLog.map((q) => q.busy);
  return (
    `Before each timed run the script waited until the CPUs were less than ${QUIET_BUSY * 100}% busy over 0.5 s, for at most ${QUIET_MAX_S} s per run and ${QUIET_TOTAL_S} s in all (${waited.toFixed(0)} s of waiting${waited >= QUIET_TOTAL_S - 1 ? ': the total limit was reached, later runs did not wait' : ''}). ` +
    `CPU use just before the runs: median ${(median(busy) * 100).toFixed(0)}%, max ${(Math.max(...busy) * 100).toFixed(0)}%; ` +
    (gaveUp ? `**${gaveUp} of ${quietLog.length} runs started on a busy machine** (the wait timed out), so some times include contention with other work.` : 'every run started on a quiet machine (other work can still start during a run).')
  );
}

function writeReport(ctx) {
  const m = ctx.machine;
  const speed = speedTargetTable();
  const tp = throughputTarget();
  const rn = renameTarget();
  const mark = (v) => (v === undefined ? 'unknown' : v ? '**met**' : '**not met**');
  const sizes = { big: BIG_BYTES, small: SMALL_FILES * SMALL_SIZE, tree: ctx.treeBytes };
  const quickNote = QUICK ? '> **Quick smoke run (`BENCH_QUICK=1`): small data, one run each. Not a measurement; the targets below are not judged by it.**\n\n' : '';
  const md = `# Remote benchmarks

${quickNote}Generated by ${process.env.npm_lifecycle_event === 'bench:remote' ? '\`npm run bench:remote\` (\`bench/remote.mjs\`)' : '\`node bench/remote.mjs\`'} on ${ctx.started.toISOString()} (took ${((Date.now() - ctx.started.getTime()) / 60000).toFixed(1)} min). Rerun it to regenerate this file; do not edit it by hand. The local-folder benchmark is in [BENCHMARKS.md](BENCHMARKS.md).

SyncEngine against \`rclone sync\` (default settings, and with \`--transfers 16\`) uploading to the test servers of \`test/servers/\` on 127.0.0.1 (loopback: no network latency or bandwidth limit; the servers share the 2 CPUs with the client), with \`rsync\` over ssh and OpenSSH \`sftp\` as SFTP references and \`lftp mirror -R\` as an FTP reference. Same servers, same data, one run.

## Summary

| Target | Result | Detail |
|---|---|---|
| Every scenario at most 0.7× rclone's best time | ${QUICK ? 'not judged (quick run)' : mark(speed.notMet === 0 && speed.unknown === 0 ? true : speed.notMet > 0 ? false : undefined)} | met in ${speed.met} of ${speed.met + speed.notMet + speed.unknown} backend × scenario cells${speed.notMet ? `, not met in ${speed.notMet}` : ''}${speed.unknown ? `, unknown in ${speed.unknown}` : ''} (table below) |
| Large-file SFTP throughput ≥ 0.9× OpenSSH \`sftp\` | ${QUICK ? 'not judged (quick run)' : mark(tp.met)} | ${tp.text} |
| A renamed file is never re-uploaded | ${mark(rn.met)} | ${RENAME} renames per run, ${RUNS} timed run(s) per backend (table below) |

### SyncEngine vs the best rclone variant

${speed.table}

For a cell that is not met, the last column puts the time needed beside the fastest median of every tool in that cell (SyncEngine, rclone, and the references rsync, OpenSSH \`sftp\` and lftp), and says so when the server's own CPU time (**CPU server** in the Results) was above that time with every tool.

### Renamed files

${rn.table}

For comparison, the other tools in the same scenario (last timed run; none of them detects renames by default):

${otherRenames() || '- (none)'}

## Results

Median and minimum wall time of ${RUNS} timed run(s). **MB/s** = scenario bytes (10^6) / median, for the initial uploads. **CPU client** = user + system CPU of the command and its threads/children; **CPU server** = CPU used by the server in the same interval (sshd with its per-session processes, vsftpd with its per-session processes, or the s3rver node process), ${ctx.backends.map((b) => `${b.label}: from ${b.cgroup?.how ?? "the listener's own counters, which miss session processes the listener never waited for (no control group could be made here)"}`).join('; ')}; a run's figure includes the sessions that end after the command exits (up to 3 s, untimed). On this 2-core machine the client and the server compete for the same CPUs, so CPU time matters as much as protocol efficiency. **Transferred** (re-sync scenarios) is what the tool reported for its last timed run: SyncEngine's \`done.bytesTransferred\`/\`done.uploaded\`/\`done.renamedDestination\`, rclone's final \`stats\` (with \`-v --use-json-log\`, whose \`bytes\` also count moved files), rsync's \`--stats\`, lftp's \`--verbose\` transfer lines.

${ctx.backends.map((b) => `### ${b.label}\n\n${resultsTable(b.id, sizes)}\n`).join('\n')}
## Method

- **Servers.** Started by the compiled test helpers (\`out/test/servers/{sshd,vsftpd,s3}.js\`) exactly as in the tests, on 127.0.0.1 with a throw-away login user, and stopped at the end.
${ctx.backends.map((b) => `  - ${b.label}: ${b.server}`).join('\n')}
- **Data** (AES-CTR keystreams with fixed keys: incompressible, identical on every run; fixed mtimes):
  - ${scenario('big').title}.
  - ${scenario('small').title}.
  - ${scenario('tree').title}.
  - The re-sync scenarios run on each tool's own pair left by its last mixed-tree upload: ${RUNS} timed rounds after one untimed warm-up round. **No change**: nothing changed. **Changes + renames**: the same change set every round (${MODIFY} files rewritten, half the same size, all with a later mtime, ${fmtBytes(ctx.modifiedBytes)} in all; ${RENAME} renamed, half within their folder and half into another), timed, checked, then undone (original bytes with a still later mtime, renames back) and synced again untimed. **One small file**: a different ≤ 16 KiB file each round gets 100 more bytes and a later mtime.
- **Order and warm-up.** Backends one after the other (${ctx.backends.map((b) => b.id).join(', ')}); within a scenario the tools take turns round by round. Every tool first makes one untimed upload of a small tree to each backend (process, binary and server warm-up); the source data is in the page cache (it was just written and read). Initial uploads have no per-scenario warm-up round (each costs as much as a run); the re-sync scenarios have one. ${Number.isFinite(CELL_BUDGET_S) ? `**Time budget:** a tool gets no more timed rounds in a scenario once its timed runs there add up to ${CELL_BUDGET_S} s (at least one run; not applied to the one-small-file scenario), so the slowest cells (minutes per run) have fewer runs than ${RUNS}: see the Runs column. A cell that slow is far from the others, so fewer runs do not change a verdict.` : ''}
- **Timing.** \`process.hrtime.bigint()\` around the whole command (process start, login, listing, transfers, exit), run as an asynchronous child process; \`sync\` before each timed run so that write-back of prepared data does not fall inside it. Reported: median and minimum.
- **Correctness.** After every run (warm-ups included) the remote folder (read directly from the server's disk: sshd's and vsftpd's folders, s3rver's \`<key>._S3rver_object\` files) is compared with the expected tree: same file set, same bytes (the engine's own \`.sync_state\`/\`.syncengine*\` entries ignored). A mismatch makes SyncEngine fail the scenario; for the other tools it is noted as a **wrong result** (the time still counts) and on SFTP/FTP the remote folder is put right on the server's disk before the next run. In the no-change re-sync SyncEngine must also plan no work. For renames, the server-side identity of every renamed file (inode and birth time) is recorded before the run and compared after it (SFTP, FTP): a rename keeps both, a re-upload does not (it may get the inode number just freed, never the old birth time). On S3 (no inodes), SyncEngine's \`done.bytesTransferred\` must equal the bytes of the modified files and \`done.renamedDestination\` the number of renames.
- **SyncEngine** runs with its defaults (two-way, hash-then-mtime, 8 transfers, 16 operations, the backend's default connection count) except \`--state-dir\`: its state lives outside the source so that the read-only sources of the first two scenarios can be shared, with a fresh state folder for every initial upload. It runs from a copy of \`dist/\` taken at the start. Note that SyncEngine does a two-way sync (it lists both sides and keeps state), while \`rclone sync\`, rsync and lftp mirror one way.
- **rclone** runs with \`--config /dev/null\` and on-the-fly remotes (connection strings), otherwise defaults (4 transfers, 8 checkers; on SFTP it checks uploads with \`md5sum\`/\`sha1sum\` run over ssh when the server has them, which this one has); the FTP password is given \`rclone obscure\`d. \`-v --use-json-log\` is added in the re-sync scenarios only, for its statistics. \`AWS_CA_BUNDLE\` is removed from every tool's environment (this machine sets it; rclone's S3 client refuses a custom CA bundle with its HTTP transport).${nodeStartCostVarsSet().length > 0 ? ` So is ${nodeStartCostVarsSet().map((k) => `\`${k}\``).join(', ')}: this machine sets it, a typical one does not, and with it Node 20 parses that CA bundle before running any code (nodejs/node#40524), a fixed cost for every SyncEngine run, measured in [BENCHMARKS.md](BENCHMARKS.md) (Method); no run here uses TLS.` : ''}
- **lftp** needs \`set ftp:use-mdtm-overloaded true\` to set remote mtimes on vsftpd (\`MDTM time file\`); without it every re-sync would upload every file again. \`--parallel=${LFTP_PARALLEL}\` (SyncEngine's default transfer count).
- **OpenSSH sftp** uploads with \`put\` / \`put -r\` from a batch file (no sync logic): the throughput reference for the large file and a reference for the trees.
- **Other load.** ${quietSummary()}

## Machine

| | |
|---|---|
| Date | ${ctx.started.toISOString().slice(0, 10)} |
| CPU | ${m.cpu} |
| Cores | ${m.cores} |
| RAM | ${m.ram} |
| Kernel | ${m.kernel} |
| Work dir disk (\`df -T\`) | ${m.disk} |
| Node | ${process.version} |
| rclone | ${ctx.versions.rclone} |
| rsync | ${ctx.versions.rsync} |
| lftp | ${ctx.versions.lftp} |
| OpenSSH | ${ctx.versions.ssh} |
| SyncEngine | ${ctx.engineVersion}: dist/cli.js built ${ctx.distBuilt.toISOString()}, sha256 ${ctx.distHash}; git HEAD ${ctx.git.head}${ctx.git.dirty ? ` + ${ctx.git.dirty} uncommitted change(s) under src/` : ''} at the start${ctx.distChanged ? ' (dist/ was rebuilt during the run; the copy used was not)' : ''}${ctx.gitAfter.head !== ctx.git.head ? `; HEAD moved to ${ctx.gitAfter.head} during the run` : ''} |
| Load average (1 min) | ${ctx.loadBefore.toFixed(2)} at the start, ${ctx.loadAfter.toFixed(2)} at the end |

## Commands

\`SRC\` is the local source folder; \`USER\`, \`PORT\`, \`KEY\`, \`KNOWN_HOSTS\`, \`PASSWORD\` come from the test server helpers; \`/ABS/PATH\`, \`PATH\` and \`PREFIX\` name a fresh remote folder. \`node dist/cli.js\` runs from the copy of \`dist/\`.

${commandsSection(ctx.backends)}`;
  fs.mkdirSync(path.dirname(REPORT), { recursive: true });
  fs.writeFileSync(REPORT, md);
  return { speed, tp, rn, sizes };
}

function consoleTable(sizes) {
  const lines = [];
  for (const b of BACKEND_ORDER) {
    for (const scen of SCEN_ORDER) {
      for (const r of results.filter((x) => x.backend === b && x.scenario === scen)) {
        const { med, min } = rowStats(r);
        const mbs = sizes[scen] && !Number.isNaN(med) ? ` ${(sizes[scen] / 1e6 / med).toFixed(1)} MB/s` : '';
        lines.push(`${b.padEnd(4)} ${scenario(scen).short.padEnd(26)} ${r.label.padEnd(28)} ${r.failed ? `FAILED: ${r.failed.slice(0, 120)}` : `median ${fmtS(med).padStart(7)} s  min ${fmtS(min).padStart(7)} s${mbs}`}`);
      }
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = new Date();
  if (process.getuid?.() !== 0) throw new Error('run as root: the test servers create a throw-away login user');
  if (!fs.existsSync(path.join(DIST, 'cli.js'))) throw new Error(`${DIST}/cli.js not found: run "npm run build" first`);
  const distBuilt = fs.statSync(path.join(DIST, 'cli.js')).mtime;
  copyTree(DIST, ENGINE);
  // The bundles leave ssh2's optional helper (cpu-features) to node_modules: resolve it from the
  // copy as from dist/ itself.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(WORK, 'node_modules'));
  const smoke = sh(process.execPath, [CLI, '--version']);
  if (smoke.status !== 0) throw new Error(`the engine snapshot does not start: ${smoke.stderr}`);
  const engineVersion = smoke.stdout.trim();
  const distHash = fileHash(CLI);
  const git = gitInfo(ROOT);
  const loadBefore = os.loadavg()[0];

  rcloneOk = ensureTool('rclone', 'rclone', log);
  rsyncOk = BACKENDS.includes('sftp') && ensureTool('rsync', 'rsync', log);
  lftpOk = BACKENDS.includes('ftp') && ensureTool('lftp', 'lftp', log);
  const versions = {
    rclone: rcloneOk ? versionLine('rclone', ['--config', '/dev/null', 'version'], (s) => s.split('\n').map((l) => l.trim()).filter((l) => /^rclone |go\/version/.test(l)).join(', ')) : 'not available',
    rsync: rsyncOk ? versionLine('rsync', ['--version']) : 'not available',
    lftp: lftpOk ? versionLine('lftp', ['--version']).replace(/\s*\|\s*Copyright.*$/, '') : 'not available',
    ssh: versionLine('ssh', ['-V']),
  };
  const m = machine();
  log(`${m.cpu}, ${m.cores} cores, ${m.ram}; load ${loadBefore.toFixed(2)}; node ${process.version}; ${versions.rclone}${QUICK ? '; QUICK' : ''}; work dir ${WORK}`);

  log('generating data');
  const masterBig = path.join(WORK, 'master-big');
  const masterSmall = path.join(WORK, 'master-small');
  const masterTree = path.join(WORK, 'master-tree');
  const warmDir = path.join(WORK, 'master-warmup');
  generateBig(masterBig);
  generateSmall(masterSmall);
  const tree = generateTree(masterTree);
  const treeBytes = tree.list.reduce((a, f) => a + f.size, 0);
  const count = (lo, hi) => tree.list.filter((f) => f.size > lo && f.size <= hi).length;
  const sizesSorted = tree.list.map((f) => f.size).sort((a, b) => a - b);
  scenario('tree').title =
    `Mixed tree: ${fmtInt(tree.list.length)} files, ${(treeBytes / 1e6).toFixed(1)} MB (${fmtBytes(treeBytes)}) in ${tree.folders.length} folders, into an empty folder. ` +
    `Sizes: ${fmtInt(count(0, 16384))} files ≤ 16 KiB, ${fmtInt(count(16384, 256 * 1024))} of 16–256 KiB, ${fmtInt(count(256 * 1024, MiB))} of 256 KiB–1 MiB, ${fmtInt(count(MiB, Infinity))} above 1 MiB (largest ${fmtBytes(sizesSorted.at(-1))}); median ${fmtBytes(median(sizesSorted))}`;
  const mutation = planMutation(tree);
  const modifiedBytes = mutation.changes.filter((c) => c.kind === 'modify').reduce((a, c) => a + c.size, 0);
  fs.mkdirSync(warmDir);
  for (let i = 0; i < 50; i++) {
    fs.mkdirSync(path.join(warmDir, `d${i % 5}`), { recursive: true });
    writeFile(path.join(warmDir, `d${i % 5}`, `w${i}.bin`), prng(5, i, 2048 + i * 64), BASE_MTIME);
  }
  for (const dir of [masterBig, masterSmall, masterTree]) listFiles(dir).forEach((full) => fs.readFileSync(full)); // into the page cache
  sh('sync', []);

  log('starting servers');
  await startServers();
  if (servers.ftp && rcloneOk) ftpObscured = must('rclone', ['obscure', '--', servers.ftp.password], { env: BASE_ENV }).stdout.trim();
  const backends = makeBackends();
  for (const b of backends) {
    if (b.pid !== undefined) b.cgroup = serverCgroup(b.id, b.pid);
    log(`${b.id}: ${b.server}; server pid ${b.pid ?? 'not found'}; server CPU from ${b.cgroup?.how ?? 'the listener process and the sessions it waited for'}`);
  }

  const ref = path.join(WORK, 'expected-tree');
  for (const backend of backends) {
    copyTree(masterTree, ref);
    const tools = toolsFor(backend);
    log(`${backend.id}: warming up ${tools.map((t) => t.label).join(', ')}`);
    await warmUp(backend, tools, warmDir);
    await initialScenario(backend, tools, 'big', masterBig, { copySource: false });
    await initialScenario(backend, tools, 'small', masterSmall, { copySource: false });
    const pairs = await initialScenario(backend, tools, 'tree', masterTree, { copySource: true, keep: true });
    await resyncScenarios(backend, tools, pairs, tree, ref, masterTree, mutation);
    for (const { src, folder, state } of pairs.values()) {
      folder.remove();
      rmrf(src);
      rmrf(state);
    }
  }

  const ctx = {
    started,
    machine: m,
    git,
    gitAfter: gitInfo(ROOT),
    distHash,
    distBuilt,
    distChanged: fileHash(path.join(DIST, 'cli.js')) !== distHash,
    engineVersion,
    loadBefore,
    loadAfter: os.loadavg()[0],
    versions,
    backends,
    treeBytes,
    modifiedBytes,
  };
  const { speed, tp, rn, sizes } = writeReport(ctx);
  console.log(`\nResults (${QUICK ? 'QUICK smoke run' : 'full'}; median and min of ${RUNS} run(s)):\n`);
  console.log(consoleTable(sizes));
  console.log(`\nTargets: ≤ 0.7× best rclone: met in ${speed.met}, not met in ${speed.notMet}, unknown in ${speed.unknown}; SFTP large-file throughput: ${tp.text}; renames never re-uploaded: ${rn.met}`);
  console.log(`Load average: ${loadBefore.toFixed(2)} at the start, ${ctx.loadAfter.toFixed(2)} at the end`);
  console.log(`\nReport written to ${path.relative(process.cwd(), REPORT) || REPORT}`);
  if (results.some((r) => r.family === 'ours' && r.failed)) {
    console.error('\n[bench:remote] FAILED: SyncEngine failed in at least one scenario (see above and the report)');
    process.exitCode = 1;
  }
}

process.once('exit', () => rmrf(WORK));
// Interrupted (Ctrl-C, kill): stop what is running and the servers, remove the data, then exit.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping the commands and servers`);
    for (const child of running) child.kill('SIGKILL');
    stopServers().finally(() => {
      removeCgroups();
      rmrf(WORK);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  });
}
try {
  await main();
} catch (error) {
  console.error(`\n[bench:remote] FAILED: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await stopServers();
  removeCgroups();
  rmrf(WORK);
}
