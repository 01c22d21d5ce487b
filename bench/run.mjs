#!/usr/bin/env node
// SyncEngine vs rclone (and rsync as a reference) on the same generated data.
//
//   npm run bench                 build, then run the full benchmark and write docs/BENCHMARKS.md
//   BENCH_QUICK=1 npm run bench   counts scaled down 10x (smoke run); the report goes to
//                                 bench/.work/BENCHMARKS.md so it never overwrites the real one
//   BENCH_RUNS=N                  timed runs per tool and scenario (default 3), after one warm-up
//
// Every timing is process.hrtime.bigint() around a spawnSync of the whole command, process start
// included. The work folder bench/.work/ is wiped at the start; nothing is left running.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLK_TCK, copyTree, cpuTimes, ensureTool, fileHash, fmtInt, gitInfo, have, ignoredName, median, mulberry32, must, nodeStartCostVarsSet, rmrf, sh, timedEnv } from './lib.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORK = path.join(ROOT, 'bench', '.work');
const DIST = path.join(ROOT, 'dist');
// The engine is run from a snapshot of dist/ taken at the start, so a rebuild during the run (other
// work on the tree) cannot mix engine versions within one report.
const ENGINE = path.join(WORK, 'engine', 'dist');
const CLI = path.join(ENGINE, 'cli.js');
const QUICK = process.env.BENCH_QUICK === '1';
const SCALE = QUICK ? 10 : 1;
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3) || 3);
const REPORT = QUICK ? path.join(WORK, 'BENCHMARKS.md') : path.join(ROOT, 'docs', 'BENCHMARKS.md');
// Fixed mtimes keep the generated trees identical from run to run (2024-01-01T00:00:00Z).
const BASE_MTIME = 1704067200;

const log = (...args) => console.error('[bench]', ...args);

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Flush dirty pages from preparing the data, so write-back does not land inside a timed run. */
function flush() {
  sh('sync', []);
}

// Other processes on the machine (this is a shared 2-core box) skew wall times badly. Before each
// timed run, wait until the CPUs have been mostly idle for a moment, up to a limit.
const QUIET_WAIT = process.env.BENCH_QUIET_WAIT !== '0';
const QUIET_MAX_S = Number(process.env.BENCH_QUIET_MAX ?? 20) || 20;
const QUIET_BUSY = 0.25; // share of all CPUs used by others
const quietLog = []; // { busy, waited, gaveUp }

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Share of the CPUs busy over `ms` milliseconds (this script is asleep meanwhile). */
function busyFraction(ms = 500) {
  const a = cpuTimes();
  sleepMs(ms);
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return undefined;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

function waitQuiet() {
  if (!QUIET_WAIT) return;
  const t0 = Date.now();
  for (;;) {
    const busy = busyFraction();
    if (busy === undefined) return;
    const waited = (Date.now() - t0) / 1000;
    if (busy < QUIET_BUSY || waited >= QUIET_MAX_S) {
      const entry = { busy, waited, gaveUp: busy >= QUIET_BUSY };
      quietLog.push(entry);
      return entry;
    }
  }
}

/** Right before a timed run: flush dirty pages, then wait for a quiet machine. */
function beforeTimedRun() {
  flush();
  return waitQuiet();
}

const TIMED_ENV = timedEnv();

/** Run one command, timed from before the spawn to after the exit. */
function timed(cmd, args, env = TIMED_ENV) {
  const c0 = childCpu();
  const t0 = process.hrtime.bigint();
  const r = sh(cmd, args, { env });
  const t1 = process.hrtime.bigint();
  const c1 = childCpu();
  const cpu = c0 !== undefined && c1 !== undefined ? c1 - c0 : undefined;
  return { seconds: Number(t1 - t0) / 1e9, cpu, status: r.status, error: r.error, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** User + system CPU seconds of this process's waited-for children (Linux /proc; 10 ms resolution). */
function childCpu() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / CLK_TCK; // cutime, cstime
  } catch {
    return undefined;
  }
}

const fmtS = (x) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(3));
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
  return `${v.toFixed(1)} ${units[u]} (${n.toLocaleString('en-US')} B)`;
}

// ---------------------------------------------------------------------------------------------
// Deterministic data

const POOL_SIZE = 1 << 20;
const POOL = (() => {
  const rand = mulberry32(0x5eed);
  const b = Buffer.alloc(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i += 4) b.writeUInt32LE(Math.floor(rand() * 4294967296), i);
  return b;
})();

/** `size` bytes: a header that makes the file unique, then pseudo-random bytes from the pool. */
function content(header, size, rand) {
  const buf = Buffer.alloc(size);
  const h = Buffer.from(header);
  h.copy(buf, 0, 0, Math.min(h.length, size));
  let pos = Math.min(h.length, size);
  let off = Math.floor(rand() * POOL_SIZE);
  while (pos < size) {
    const n = Math.min(size - pos, POOL_SIZE - off);
    POOL.copy(buf, pos, off, off + n);
    pos += n;
    off = 0;
  }
  return buf;
}

const EXTS = ['.ts', '.js', '.json', '.md', '.txt', '.css', '.html', '.svg'];
const randSize = (rand) => 1024 + Math.floor(rand() * (8192 - 1024 + 1)); // 1–8 KiB

/** `files` files of 1–8 KiB spread over `top` x `sub` folders; returns the file list (sorted). */
function generateTree(dir, { files, top, sub, seed }) {
  const rand = mulberry32(seed);
  const folders = [];
  for (let t = 0; t < top; t++) for (let s = 0; s < sub; s++) folders.push(`pkg-${String(t).padStart(3, '0')}/mod-${String(s).padStart(3, '0')}`);
  for (const f of folders) fs.mkdirSync(path.join(dir, f), { recursive: true });
  const list = [];
  for (let i = 0; i < files; i++) {
    const folder = folders[i % folders.length];
    const rel = `${folder}/file-${i.toString(36).padStart(4, '0')}${EXTS[Math.floor(rand() * EXTS.length)]}`;
    const size = randSize(rand);
    const full = path.join(dir, rel);
    fs.writeFileSync(full, content(`${rel}\nseed ${seed}\n`, size, rand));
    const t = BASE_MTIME + i;
    fs.utimesSync(full, t, t);
    list.push({ rel, size });
  }
  list.sort((a, b) => (a.rel < b.rel ? -1 : 1));
  return { list, folders };
}

/**
 * The change set of scenario 3, chosen once: `modify` files get new content (every other one the
 * same size) and a later mtime; `rename` files move (half inside their folder, half to another).
 */
function planMutation({ list, folders }, { modify, rename, seed }) {
  const rand = mulberry32(seed);
  const idx = list.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const changes = [];
  for (let k = 0; k < modify; k++) {
    const { rel, size } = list[idx[k]];
    let newSize = size;
    if (k % 2 === 1) while (newSize === size) newSize = randSize(rand);
    changes.push({ kind: 'modify', rel, sameSize: newSize === size, data: content(`${rel}\nmodified ${k}\n`, newSize, rand), mtime: BASE_MTIME + 86400 + k });
  }
  for (let k = 0; k < rename; k++) {
    const { rel } = list[idx[modify + k]];
    const folder = path.posix.dirname(rel);
    const base = path.posix.basename(rel);
    let to;
    if (k % 2 === 0) to = `${folder}/renamed-${k}-${base}`;
    else {
      let other = folder;
      while (other === folder) other = folders[Math.floor(rand() * folders.length)];
      to = `${other}/moved-${k}-${base}`;
    }
    changes.push({ kind: 'rename', rel, to, between: k % 2 === 1 });
  }
  return changes;
}

function applyMutation(dir, changes) {
  for (const c of changes) {
    const full = path.join(dir, c.rel);
    if (c.kind === 'modify') {
      fs.writeFileSync(full, c.data);
      fs.utimesSync(full, c.mtime, c.mtime);
    } else {
      fs.renameSync(full, path.join(dir, c.to));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Correctness

function listFiles(root) {
  const out = new Map();
  const walk = (dir, prefix) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (ignoredName(e.name)) continue;
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), rel);
      else out.set(rel, path.join(dir, e.name));
    }
  };
  walk(root, '');
  return out;
}

/** Returns a list of differences between two trees (file set and contents); empty when equal. */
function diffTrees(expected, actual) {
  const a = listFiles(expected);
  const b = listFiles(actual);
  const problems = [];
  for (const rel of a.keys()) if (!b.has(rel)) problems.push(`missing: ${rel}`);
  for (const rel of b.keys()) if (!a.has(rel)) problems.push(`extra: ${rel}`);
  for (const [rel, full] of a) {
    const other = b.get(rel);
    if (other && !fs.readFileSync(full).equals(fs.readFileSync(other))) problems.push(`content differs: ${rel}`);
  }
  return problems;
}

function verify(label, expected, actual, { fatal }) {
  const problems = diffTrees(expected, actual);
  if (problems.length === 0) return true;
  const msg = `VERIFY FAILED (${label}): ${actual} != ${expected}: ${problems.length} differences, e.g.\n  ${problems.slice(0, 10).join('\n  ')}`;
  if (fatal) throw new Error(msg);
  log(msg);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Tools

const tools = [];
const display = (args) => args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ');

function ours() {
  return {
    id: 'syncengine',
    label: 'SyncEngine',
    family: 'ours',
    argv: (src, dst) => [process.execPath, [CLI, 'sync', src, dst, '--json', '--quiet']],
    shown: () => 'node dist/cli.js sync SRC DST --json --quiet',
    parse(r) {
      const j = JSON.parse(r.stdout);
      return {
        json: j,
        bytes: j.done?.bytesTransferred,
        renames: j.done?.renamedDestination,
        transfers: j.done?.uploaded,
        execMs: j.done?.durationMs,
      };
    },
  };
}

function rclone(extra, id, label) {
  const base = (instrument) => ['--config', '/dev/null', ...extra, ...(instrument ? ['-v', '--use-json-log'] : [])];
  return {
    id,
    label,
    family: 'rclone',
    argv: (src, dst, instrument) => ['rclone', ['sync', ...base(instrument), src, dst]],
    shown: (instrument) => display(['rclone', 'sync', ...base(instrument), 'SRC', 'DST']),
    parse(r) {
      // With --use-json-log -v the final accounting line carries a "stats" object.
      let stats;
      for (const line of r.stderr.split('\n')) {
        if (!line.startsWith('{') || !line.includes('"stats"')) continue;
        try {
          stats = JSON.parse(line).stats ?? stats;
        } catch {
          /* not a JSON line */
        }
      }
      return stats ? { bytes: stats.bytes, renames: stats.renames, transfers: stats.transfers, deletes: stats.deletes } : {};
    },
  };
}

function rsync() {
  const args = (instrument) => ['-a', '--delete', ...(instrument ? ['--stats'] : [])];
  return {
    id: 'rsync',
    label: 'rsync (reference)',
    family: 'rsync',
    argv: (src, dst, instrument) => ['rsync', [...args(instrument), `${src}/`, `${dst}/`]],
    shown: (instrument) => display(['rsync', ...args(instrument), 'SRC/', 'DST/']),
    parse(r) {
      const num = (re) => {
        const m = r.stdout.match(re);
        return m ? Number(m[1].replace(/,/g, '')) : undefined;
      };
      return {
        bytes: num(/Total transferred file size: ([\d,]+) bytes/),
        transfers: num(/Number of regular files transferred: ([\d,]+)/),
        renames: undefined,
      };
    },
  };
}

function run(tool, src, dst, instrument = false) {
  const [cmd, args] = tool.argv(src, dst, instrument);
  const r = timed(cmd, args);
  if (r.error || r.status !== 0) {
    const why = r.stderr.trim().split('\n').filter(Boolean).pop() ?? '';
    throw new Error(`${tool.label} ${r.error ? `could not run: ${r.error.message}` : `exited with ${r.status}`}: ${why}\n${display([cmd, ...args])}\n${r.stderr.slice(-4000)}\n${r.stdout.slice(-2000)}`);
  }
  let parsed = {};
  try {
    parsed = tool.parse(r);
  } catch (e) {
    if (tool.family === 'ours') throw new Error(`cannot parse SyncEngine --json output: ${e.message}\n${r.stdout.slice(0, 2000)}`);
  }
  if (tool.family === 'ours' && parsed.json.exitCode !== 0) throw new Error(`SyncEngine reported exitCode ${parsed.json.exitCode}\n${r.stdout.slice(0, 4000)}`);
  return { seconds: r.seconds, cpu: r.cpu, ...parsed };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const results = []; // { scenario, tool, times: [], bytes, renames, transfers, execMs: [], notes: [] }
function result(scenario, tool) {
  let r = results.find((x) => x.scenario === scenario.id && x.tool === tool.id);
  if (!r) {
    r = { scenario: scenario.id, tool: tool.id, label: tool.label, family: tool.family, times: [], execMs: [], cpu: [], busyStarts: 0, notes: [], commands: new Set() };
    results.push(r);
  }
  return r;
}

const S1 = { id: 's1', title: `1. Initial sync, ${fmtInt(10000 / SCALE)} files (1–8 KiB, ${200 / SCALE} folders) into an empty destination`, short: 'initial sync' };
const S2 = { id: 's2', title: `2. No-change re-sync, ${fmtInt(50000 / SCALE)} files (${fmtInt(2500 / SCALE)} folders)`, short: 'no-change re-sync' };
const S3 = {
  id: 's3',
  title: `3. Re-sync after changing 1% (${100 / SCALE} files, half same-size) and renaming 0.5% (${50 / SCALE} files, half between folders) of ${fmtInt(10000 / SCALE)} files`,
  short: 'changes + renames re-sync',
};

/**
 * A tool that fails (non-zero exit, unparsable output, or — for SyncEngine — a wrong result) is
 * marked failed for the scenario and skipped for the rest of it; the benchmark goes on and exits
 * non-zero at the end if SyncEngine failed anywhere. The failed pair is kept under bench/.work/.
 */
function attempt(scenario, tool, pairDir, fn) {
  const res = result(scenario, tool);
  if (res.failed) return;
  try {
    fn(res);
  } catch (error) {
    const lines = String(error.message ?? error).split('\n');
    // The first line says what failed; for a wrong result the next lines name some differences.
    res.failed = (lines[0].startsWith('VERIFY') ? lines.slice(0, 4) : lines.slice(0, 1)).map((l) => l.trim()).join(' ');
    log(`${tool.family === 'ours' ? 'FAILURE' : 'failure'}: ${tool.label}, scenario ${scenario.id}: ${error.stack ?? error}`);
    if (pairDir && fs.existsSync(pairDir)) {
      const keep = path.join(WORK, `failed-${scenario.id}-${tool.id}`);
      rmrf(keep);
      fs.renameSync(pairDir, keep);
      log(`  kept the pair for inspection in ${keep}`);
    }
  }
}

const roundName = (round) => (round === 0 ? 'warm-up' : `run ${round}/${RUNS}`);

function scenario1(master) {
  log(`scenario 1: ${S1.title}`);
  const dir = path.join(WORK, 's1');
  for (let round = 0; round <= RUNS; round++) {
    for (const tool of tools) {
      const pair = path.join(dir, tool.id);
      const src = path.join(pair, 'src');
      const dst = path.join(pair, 'dst');
      attempt(S1, tool, pair, (res) => {
        copyTree(master, src);
        fs.mkdirSync(dst, { recursive: true });
        const quiet = beforeTimedRun();
        res.commands.add(tool.shown(false));
        const r = run(tool, src, dst);
        if (round > 0 && quiet?.gaveUp) res.busyStarts++;
        log(`  ${roundName(round)} ${tool.label}: ${fmtS(r.seconds)} s${quiet?.gaveUp ? ' [busy machine]' : ''}`);
        if (tool.family === 'ours') {
          verify(`${tool.label}, scenario 1`, master, dst, { fatal: true });
          verify(`${tool.label}, scenario 1 (source untouched)`, master, src, { fatal: true });
        } else if (round === RUNS) res.verified = verify(`${tool.label}, scenario 1`, master, dst, { fatal: false });
        if (round > 0) {
          res.times.push(r.seconds);
          if (r.execMs !== undefined) res.execMs.push(r.execMs);
          if (r.cpu !== undefined) res.cpu.push(r.cpu);
          if (r.bytes !== undefined) res.bytes = r.bytes;
          if (r.transfers !== undefined) res.transfers = r.transfers;
        }
        rmrf(pair);
      });
    }
  }
  rmrf(dir);
}

function scenario2(master) {
  log(`scenario 2: ${S2.title}`);
  const dir = path.join(WORK, 's2');
  const pairs = (tool) => ({ pair: path.join(dir, tool.id), src: path.join(dir, tool.id, 'src'), dst: path.join(dir, tool.id, 'dst') });
  for (const tool of tools) {
    const { pair, src, dst } = pairs(tool);
    attempt(S2, tool, pair, (res) => {
      copyTree(master, src);
      fs.mkdirSync(dst, { recursive: true });
      flush();
      const r = run(tool, src, dst);
      res.initialSeconds = r.seconds;
      log(`  initial sync (setup, not part of the scenario) ${tool.label}: ${fmtS(r.seconds)} s`);
      if (tool.family === 'ours') verify(`${tool.label}, scenario 2 initial sync`, master, dst, { fatal: true });
    });
  }
  flush();
  for (let round = 0; round <= RUNS; round++) {
    for (const tool of tools) {
      const { pair, src, dst } = pairs(tool);
      attempt(S2, tool, pair, (res) => {
        res.commands.add(tool.shown(false));
        const quiet = beforeTimedRun();
        const r = run(tool, src, dst);
        if (round > 0 && quiet?.gaveUp) res.busyStarts++;
        log(`  ${roundName(round)} ${tool.label}: ${fmtS(r.seconds)} s${quiet?.gaveUp ? ' [busy machine]' : ''}`);
        if (tool.family === 'ours') {
          const c = r.json.counts;
          const work = c.upload + c.download + c.deleteSource + c.deleteDestination + c.renameSource + c.renameDestination + c.conflicts + c.conflictsResolved;
          if (work !== 0) throw new Error(`SyncEngine planned work on a no-change re-sync: ${JSON.stringify(c)}`);
        }
        if (round > 0) {
          res.times.push(r.seconds);
          if (r.execMs !== undefined) res.execMs.push(r.execMs);
          if (r.cpu !== undefined) res.cpu.push(r.cpu);
        }
      });
    }
  }
  for (const tool of tools) {
    const { pair, src, dst } = pairs(tool);
    attempt(S2, tool, pair, (res) => {
      if (tool.family !== 'ours') {
        res.verified = verify(`${tool.label}, scenario 2`, master, dst, { fatal: false });
        return;
      }
      verify(`${tool.label}, scenario 2`, master, dst, { fatal: true });
      verify(`${tool.label}, scenario 2 (source untouched)`, master, src, { fatal: true });
    });
  }
  rmrf(dir);
}

function scenario3(master, changes) {
  log(`scenario 3: ${S3.title}`);
  const dir = path.join(WORK, 's3');
  const ref = path.join(dir, 'expected');
  copyTree(master, ref);
  applyMutation(ref, changes);
  for (let round = 0; round <= RUNS; round++) {
    for (const tool of tools) {
      const pair = path.join(dir, tool.id);
      const src = path.join(pair, 'src');
      const dst = path.join(pair, 'dst');
      attempt(S3, tool, pair, (res) => {
        copyTree(master, src);
        fs.mkdirSync(dst, { recursive: true });
        res.commands.add(tool.shown(true));
        run(tool, src, dst); // the initial sync: setup, not timed
        applyMutation(src, changes);
        const quiet = beforeTimedRun();
        const r = run(tool, src, dst, true);
        if (round > 0 && quiet?.gaveUp) res.busyStarts++;
        log(`  ${roundName(round)} ${tool.label}: ${fmtS(r.seconds)} s` + (r.bytes !== undefined ? ` (${fmtInt(r.bytes)} B, ${r.renames ?? 'n/a'} renames)` : '') + (quiet?.gaveUp ? ' [busy machine]' : ''));
        if (tool.family === 'ours') {
          verify(`${tool.label}, scenario 3`, ref, dst, { fatal: true });
          verify(`${tool.label}, scenario 3 (source untouched)`, ref, src, { fatal: true });
        } else if (round === RUNS) res.verified = verify(`${tool.label}, scenario 3`, ref, dst, { fatal: false });
        if (round > 0) {
          res.times.push(r.seconds);
          if (r.execMs !== undefined) res.execMs.push(r.execMs);
          if (r.cpu !== undefined) res.cpu.push(r.cpu);
          res.bytes = r.bytes;
          res.renames = r.renames;
          res.transfers = r.transfers;
          if (r.deletes !== undefined) res.deletes = r.deletes;
        }
        rmrf(pair);
      });
    }
  }
  rmrf(dir);
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
    dfRaw: df.join('\n'),
  };
}

/** Median wall time of a trivial command: the fixed cost a CLI pays before doing any work. */
function overhead(cmd, args, n = 7, env = TIMED_ENV) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(timed(cmd, args, env).seconds);
  return median(xs);
}

// ---------------------------------------------------------------------------------------------
// Report

const START_COST_VARS = nodeStartCostVarsSet();

/** What the timed commands' environment leaves out, and what that is worth here. */
function environmentNote(overhead) {
  if (START_COST_VARS.length === 0) return 'Every command runs in the environment of the benchmark; it sets no variable that slows a Node process start (`NODE_EXTRA_CA_CERTS`).';
  return (
    `This machine's environment sets ${START_COST_VARS.map((k) => `\`${k}=${process.env[k]}\``).join(', ')}. With it, Node 20 parses that CA bundle before running any code ` +
    `(nodejs/node#40524): \`node -e 0\` took ${fmtS(overhead.nodeWithStartCostVars)} s with it and ${fmtS(overhead.node)} s without (median of 7). ` +
    'A typical machine does not set it, and rclone and rsync ignore it, so every timed command (every tool) runs without it. SyncEngine needs it only for HTTPS to a server whose certificate a private CA signed, which these runs do not use.'
  );
}

function summarize() {
  const rows = [];
  const comparisons = [];
  for (const s of [S1, S2, S3]) {
    const rs = results.filter((r) => r.scenario === s.id);
    for (const r of rs) rows.push({ s, r, med: r.failed || !r.times.length ? NaN : median(r.times), min: r.failed || !r.times.length ? NaN : Math.min(...r.times) });
    const oursRow = rows.find((x) => x.s === s && x.r.family === 'ours');
    const rcl = rows.filter((x) => x.s === s && x.r.family === 'rclone' && !Number.isNaN(x.med)).sort((a, b) => a.med - b.med);
    comparisons.push({ s, ours: oursRow, best: rcl[0] });
  }
  return { rows, comparisons };
}

function notesFor(r) {
  const n = [];
  if (r.failed) n.push(`**FAILED**: ${r.failed.replace(/\|/g, '\\|')}`);
  if (r.family === 'ours' && r.execMs.length) n.push(`engine-reported done.durationMs ${median(r.execMs)} ms (median)`);
  if (r.initialSeconds !== undefined) n.push(`its initial sync of this tree took ${fmtS(r.initialSeconds)} s (untimed setup)`);
  if (r.deletes) n.push(`${r.deletes} deletes`);
  if (r.verified === false) n.push('**destination did not match the source**');
  if (r.busyStarts) n.push(`${r.busyStarts} timed run(s) started on a busy machine`);
  return n.join('; ');
}

function tables({ rows }, markdown) {
  const header = ['Scenario', 'Tool', `Median (s)`, 'Min (s)', 'CPU (s)', 'Runs', 'Transferred', 'Renames', 'Notes'];
  const lines = rows.map(({ s, r, med, min }) => {
    const renames = r.scenario === 's3' ? (r.renames === undefined ? 'n/a' : fmtInt(r.renames)) : '—';
    const bytes = r.bytes === undefined ? (r.scenario === 's3' ? 'n/a' : '—') : `${fmtBytes(r.bytes)}${r.transfers !== undefined ? `, ${fmtInt(r.transfers)} files` : ''}`;
    const cpu = r.cpu.length ? median(r.cpu).toFixed(2) : '—';
    return [s.short, r.label, r.failed ? 'FAILED' : fmtS(med), r.failed ? '—' : fmtS(min), cpu, String(r.times.length), bytes, renames, notesFor(r)];
  });
  if (markdown) {
    return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
  }
  const cols = header.length - 1; // notes last and unpadded
  const width = header.slice(0, cols).map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l) => l.slice(0, cols).map((c, i) => c.padEnd(width[i])).join('  ') + '  ' + l[cols];
  return [fmt(header), width.map((w) => '-'.repeat(w)).join('  '), ...lines.map(fmt)].join('\n');
}

function comparisonTable({ comparisons }) {
  const out = ['| Scenario | SyncEngine median (s) | Best rclone median (s) | SyncEngine / best rclone | Faster than rclone? |', '|---|---|---|---|---|'];
  for (const { s, ours: o, best } of comparisons) {
    if (!o) continue;
    if (o.r.failed) {
      out.push(`| ${s.short} | **FAILED** | ${best ? `${fmtS(best.med)} (${best.r.label})` : '—'} | — | no (SyncEngine failed) |`);
      continue;
    }
    if (!best) {
      out.push(`| ${s.short} | ${fmtS(o.med)} | rclone not available | — | — |`);
      continue;
    }
    const ratio = o.med / best.med;
    out.push(`| ${s.short} | ${fmtS(o.med)} | ${fmtS(best.med)} (${best.r.label}) | ${ratio.toFixed(2)}× | ${o.med < best.med ? 'yes' : 'no'} |`);
  }
  return out.join('\n');
}

function targets({ comparisons }, rcloneOk) {
  const s2 = comparisons.find((c) => c.s.id === 's2');
  const noChange = s2?.ours?.med;
  const t1 = noChange !== undefined && !Number.isNaN(noChange) && noChange < 1;
  let t2;
  let t2why;
  if (!rcloneOk) {
    t2 = undefined;
    t2why = 'rclone not available: cannot tell';
  } else {
    const failed = comparisons.filter((c) => c.ours?.r.failed);
    const slower = comparisons.filter((c) => c.ours && !c.ours.r.failed && c.best && !(c.ours.med < c.best.med));
    t2 = slower.length === 0 && failed.length === 0;
    const why = [];
    if (slower.length) why.push(`slower than rclone in: ${slower.map((c) => `${c.s.short} (${fmtS(c.ours.med)} s vs ${fmtS(c.best.med)} s)`).join(', ')}`);
    if (failed.length) why.push(`SyncEngine failed in: ${failed.map((c) => c.s.short).join(', ')}`);
    t2why = t2 ? 'SyncEngine median below the best rclone median in every scenario' : why.join('; ');
  }
  const mark = (v) => (v === undefined ? 'unknown' : v ? '**met**' : '**not met**');
  const qualifier = QUICK ? ' (quick run with 10× fewer files: not a valid measurement of this target)' : '';
  return [
    `| Target | Result | Detail |`,
    `|---|---|---|`,
    `| No-change re-sync of ${fmtInt(50000 / SCALE)} files < 1 s | ${mark(t1)}${qualifier} | ${s2?.ours?.r.failed ? 'SyncEngine failed' : `median ${fmtS(noChange)} s`} |`,
    `| Every scenario faster than rclone | ${mark(t2)}${qualifier} | ${t2why} |`,
  ].join('\n');
}

function commandsSection() {
  const out = [];
  for (const s of [S1, S2, S3]) {
    out.push(`**${s.title}**`, '', '```sh');
    for (const r of results.filter((x) => x.scenario === s.id)) for (const c of r.commands) out.push(c);
    out.push('```', '');
  }
  return out.join('\n');
}

function quietSummary() {
  if (!QUIET_WAIT) return 'The script did not wait for a quiet machine (\`BENCH_QUIET_WAIT=0\`); other processes may have skewed the times; see the load average above.';
  if (!quietLog.length) return 'CPU use of other processes could not be measured (no /proc/stat).';
  const gaveUp = quietLog.filter((q) => q.gaveUp).length;
  const waited = quietLog.reduce((a, q) => a + q.waited, 0);
  const busy = quietLog.map((q) => q.busy);
  return (
    `Before each run (warm-ups included) the script waited until the CPUs were less than ${QUIET_BUSY * 100}% busy over 0.5 s, for at most ${QUIET_MAX_S} s (${waited.toFixed(0)} s of waiting in all). ` +
    `CPU use just before the runs: median ${(median(busy) * 100).toFixed(0)}%, max ${(Math.max(...busy) * 100).toFixed(0)}%; ` +
    (gaveUp ? `**${gaveUp} of ${quietLog.length} runs started on a busy machine** (the wait timed out), so some times include contention with other work.` : `every run started on a quiet machine (others can still start work during a run).`)
  );
}

function writeReport(ctx) {
  const summary = summarize();
  const m = ctx.machine;
  const oursS2 = summary.rows.find((x) => x.s.id === 's2' && x.r.family === 'ours');
  const md = `# Benchmarks

${QUICK ? '> **Quick smoke run (`BENCH_QUICK=1`): every count is 10× smaller. Not a real measurement.**\n\n' : ''}Generated by ${process.env.npm_lifecycle_event === 'bench' ? '\`npm run bench\` (\`bench/run.mjs\`)' : '\`node bench/run.mjs\` (without the build step of \`npm run bench\`)'} on ${ctx.started.toISOString()} (took ${((Date.now() - ctx.started.getTime()) / 60000).toFixed(1)} min). Rerun the command to regenerate this file; do not edit it by hand.

SyncEngine against \`rclone sync\` on the same data, local folder to local folder, with \`rsync\` as a reference point. Remote targets (SFTP, FTP, S3 on the test servers, against rclone, rsync over ssh, OpenSSH sftp and lftp): [BENCHMARKS-remote.md](BENCHMARKS-remote.md) (\`npm run bench:remote\`). The VS Code extension (VSIX size, activation, save-to-remote latency): [BENCHMARKS-extension.md](BENCHMARKS-extension.md) (\`npm run bench:extension\`).

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
| rclone | ${ctx.rcloneVersion} |
| rsync | ${ctx.rsyncVersion} |
| SyncEngine | ${ctx.engineVersion}: dist/cli.js built ${ctx.distBuilt.toISOString()}, sha256 ${ctx.distHash}; git HEAD ${ctx.git.head}${ctx.git.dirty ? ` + ${ctx.git.dirty} uncommitted change(s) under src/` : ''} at the start. All runs use a copy of dist/ taken at the start${ctx.distChanged ? ' (dist/ was rebuilt during the run; the copy was not)' : ''}${ctx.gitAfter.head !== ctx.git.head ? `; HEAD moved to ${ctx.gitAfter.head} during the run` : ''} |
| Load average (1 min) | ${ctx.loadBefore.toFixed(2)} at the start, ${ctx.loadAfter.toFixed(2)} at the end |

\`\`\`
${m.dfRaw}
\`\`\`

## Method

- **Warm cache.** The OS page cache is not dropped between runs (that cannot be done reliably here). Each tool gets one untimed warm-up run per scenario, then ${RUNS} timed run(s); the tools take turns round by round. All numbers are warm-cache numbers. \`sync\` is called before each timed run so write-back of the prepared data does not fall inside it.
- **Timing.** \`process.hrtime.bigint()\` around \`spawnSync\` of the whole command: process start, scan, compare, transfer and exit, i.e. what a user waits for. Reported: median and minimum of the timed runs.
- **Data.** Generated with a seeded PRNG (mulberry32), identical on every run: files of 1–8 KiB with a unique header and pseudo-random bytes, fixed mtimes, in \`pkg-NNN/mod-NNN/\` folders. Every tool works on its own fresh \`cp -a\` copy of the same tree.
  - Scenario 1: ${fmtInt(10000 / SCALE)} files in ${200 / SCALE} folders, copied into an empty destination.
  - Scenario 2: ${fmtInt(50000 / SCALE)} files in ${fmtInt(2500 / SCALE)} folders. Each tool first makes its own initial sync (untimed), then re-syncs with nothing changed: one warm-up and ${RUNS} timed re-syncs on the same pair.
  - Scenario 3: the scenario-1 tree. Each run: fresh copy, the tool's own initial sync (untimed), then the same change set on the source: ${100 / SCALE} files rewritten (half the same size, all with a new mtime), ${50 / SCALE} renamed (half within their folder, half into another folder); then the timed re-sync. Bytes and renames come from SyncEngine's \`--json\` summary (\`done.bytesTransferred\`, \`done.renamedDestination\`), rclone's \`-v --use-json-log\` final stats (\`bytes\`, \`renames\`) and rsync's \`--stats\`; those flags are only added in this scenario.
- **rclone's local backend has no rename detection by default** (no server-side move without \`--track-renames\`): a renamed file is copied again and the old one deleted. Scenario 3 therefore runs rclone both plain and with \`--track-renames\` (which pairs files that are new on the source with files gone from it on the destination by size and hash, and moves them). rclone's \`bytes\` statistic counts the size of files it moved as well as of files it copied, so with \`--track-renames\` it shows the same byte total as without; its file count (copies only) shows the difference. rsync has no rename detection.
- **CPU (s)** is user + system CPU time of the command (all its threads), median, from the children's times in \`/proc/self/stat\` (10 ms resolution). Wall time above CPU time is waiting (disk, or other processes on the machine); CPU time above wall time is parallelism.
- **Correctness.** After every SyncEngine run the destination (and the source, which a two-way sync must leave as it was) is compared with the expected tree: same file set, same bytes, ignoring \`.sync_state\` and \`.syncengine*\` entries. A mismatch aborts the benchmark. The other tools are checked the same way after their last run (a mismatch is noted, not fatal).
- SyncEngine runs with its defaults (two-way, hash-then-mtime, 8 transfers, 16 operations); its state is in \`SRC/.sync_state/\`.
- Fixed cost of starting a process on this machine (median of 7): \`node -e 0\` ${fmtS(ctx.overhead.node)} s, \`node dist/cli.js --version\` ${fmtS(ctx.overhead.cli)} s${ctx.overhead.rclone !== undefined ? `, \`rclone version\` ${fmtS(ctx.overhead.rclone)} s` : ''}.
- **Environment.** ${environmentNote(ctx.overhead)}
- **Other load.** ${quietSummary()}

## Commands

\`SRC\` and \`DST\` are the two folders of the pair. \`node dist/cli.js\` runs from the copy of \`dist/\` in \`bench/.work/engine/\`.

${commandsSection()}
## Results

${ctx.rcloneOk ? '' : '**rclone not available**: only SyncEngine (and rsync, if present) were run.\n\n'}${tables(summary, true)}

### SyncEngine vs the best rclone variant

${comparisonTable(summary)}

## Targets

${targets(summary, ctx.rcloneOk)}
${oursS2?.r.execMs.length && !oursS2.r.failed ? `\nIn the no-change re-sync SyncEngine itself reported \`done.durationMs\` = ${median(oursS2.r.execMs)} ms (median) of the ${fmtS(oursS2.med)} s wall time; the difference is what the engine does not measure: process start, loading the bundle, parsing arguments, printing and exiting. (What \`done.durationMs\` covers depends on the engine version: the whole sync in current code.)\n` : ''}`;
  fs.mkdirSync(path.dirname(REPORT), { recursive: true });
  fs.writeFileSync(REPORT, md);
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = new Date();
  if (!fs.existsSync(path.join(DIST, 'cli.js'))) throw new Error(`${DIST}/cli.js not found: run "npm run build" first (or use "npm run bench")`);
  rmrf(WORK);
  fs.mkdirSync(WORK, { recursive: true });
  const distBuilt = fs.statSync(path.join(DIST, 'cli.js')).mtime;
  copyTree(DIST, ENGINE);
  const smoke = sh(process.execPath, [CLI, '--version']);
  if (smoke.status !== 0) throw new Error(`the engine snapshot does not start: ${smoke.stderr}`);
  const engineVersion = smoke.stdout.trim();
  const loadBefore = os.loadavg()[0];
  const distHash = fileHash(CLI);
  const git = gitInfo(ROOT);

  const rcloneOk = ensureTool('rclone', 'rclone', log);
  const rsyncOk = ensureTool('rsync', 'rsync', log);
  const rcloneVersion = rcloneOk ? sh('rclone', ['--config', '/dev/null', 'version']).stdout.trim().split('\n').map((l) => l.trim()).filter((l) => /^rclone |go\/version/.test(l)).join(', ') : 'rclone not available';
  const rsyncVersion = rsyncOk ? sh('rsync', ['--version']).stdout.split('\n')[0].trim() : 'rsync not available';

  tools.push(ours());
  if (rcloneOk) {
    tools.push(rclone([], 'rclone', 'rclone'));
    tools.push(rclone(['--transfers', '16'], 'rclone-t16', 'rclone --transfers 16'));
  }
  if (rsyncOk) tools.push(rsync());
  const s3Tools = rcloneOk
    ? [
        rclone(['--track-renames'], 'rclone-tr', 'rclone --track-renames'),
        rclone(['--track-renames', '--transfers', '16'], 'rclone-tr-t16', 'rclone --track-renames --transfers 16'),
      ]
    : [];

  const m = machine();
  log(`${m.cpu}, ${m.cores} cores, ${m.ram}; ${m.disk}; node ${process.version}; ${rcloneVersion}; ${rsyncVersion}${QUICK ? '; QUICK (10x smaller)' : ''}`);

  const overheadInfo = {
    node: overhead(process.execPath, ['-e', '0']),
    nodeWithStartCostVars: START_COST_VARS.length > 0 ? overhead(process.execPath, ['-e', '0'], 7, process.env) : undefined,
    cli: overhead(process.execPath, [CLI, '--version']),
    rclone: rcloneOk ? overhead('rclone', ['--config', '/dev/null', 'version']) : undefined,
  };

  log('generating data');
  const small = { files: 10000 / SCALE, top: QUICK ? 4 : 20, sub: QUICK ? 5 : 10, seed: 1 };
  const large = { files: 50000 / SCALE, top: QUICK ? 10 : 50, sub: QUICK ? 25 : 50, seed: 2 };
  const masterSmall = path.join(WORK, 'master-10k');
  const masterLarge = path.join(WORK, 'master-50k');
  const smallTree = generateTree(masterSmall, small);
  const changes = planMutation(smallTree, { modify: 100 / SCALE, rename: 50 / SCALE, seed: 3 });

  scenario1(masterSmall);

  generateTree(masterLarge, large);
  scenario2(masterLarge);
  rmrf(masterLarge);

  const baseTools = [...tools];
  tools.splice(0, tools.length, ...baseTools.filter((t) => t.family !== 'rsync'), ...s3Tools, ...baseTools.filter((t) => t.family === 'rsync'));
  scenario3(masterSmall, changes);

  const ctx = {
    started,
    machine: m,
    git,
    distHash,
    distBuilt,
    engineVersion,
    distChanged: fileHash(path.join(DIST, 'cli.js')) !== distHash,
    gitAfter: gitInfo(ROOT),
    loadBefore,
    loadAfter: os.loadavg()[0],
    rcloneOk,
    rcloneVersion,
    rsyncVersion,
    overhead: overheadInfo,
  };
  const summary = writeReport(ctx);
  rmrf(masterSmall);
  if (!results.some((r) => r.failed)) rmrf(path.dirname(ENGINE)); // keep the engine copy next to kept failed pairs

  console.log(`\nResults (${QUICK ? 'QUICK, 10x smaller' : 'full size'}; warm cache; median and min of ${RUNS} run(s)):\n`);
  console.log(tables(summary, false));
  console.log('');
  for (const { s, ours: o, best } of summary.comparisons) {
    if (o?.r.failed) console.log(`${s.short}: SyncEngine FAILED: ${o.r.failed}`);
    else if (o && best) console.log(`${s.short}: SyncEngine / best rclone (${best.r.label}) = ${(o.med / best.med).toFixed(2)}x`);
  }
  console.log(`\nReport written to ${path.relative(process.cwd(), REPORT) || REPORT}`);
  if (results.some((r) => r.family === 'ours' && r.failed)) {
    console.error('\n[bench] FAILED: SyncEngine failed in at least one scenario (see above and the report)');
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(`\n[bench] FAILED: ${error.stack ?? error}`);
  process.exitCode = 1;
});
