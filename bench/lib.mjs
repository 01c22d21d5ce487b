// Helpers the benchmarks share (bench/run.mjs, bench/remote.mjs): commands, files, statistics,
// deterministic random numbers.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const MAX_BUFFER = 512 * 1024 * 1024;

export function sh(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: MAX_BUFFER, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/**
 * Environment variables that cost a Node process time at start and that a typical machine does
 * not set: with NODE_EXTRA_CA_CERTS, Node 20 parses that CA bundle before running any code
 * (nodejs/node#40524). Tools other than Node ignore them.
 */
export const NODE_START_COST_VARS = ['NODE_EXTRA_CA_CERTS'];

/** The environment timed commands run in: this one without NODE_START_COST_VARS. */
export function timedEnv() {
  const env = { ...process.env };
  for (const k of NODE_START_COST_VARS) delete env[k];
  return env;
}

/** The names of NODE_START_COST_VARS set here, for the report. */
export function nodeStartCostVarsSet() {
  return NODE_START_COST_VARS.filter((k) => process.env[k] !== undefined);
}

export function must(cmd, args, opts) {
  const r = sh(cmd, args, opts);
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
  return r;
}

export function have(bin) {
  return sh('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** Install a tool with apt if it is missing; `apt-get update` and retry once if the install fails. */
export function ensureTool(bin, pkg, log) {
  if (have(bin)) return true;
  log(`${bin} not on PATH: apt-get install -y ${pkg}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = sh('apt-get', ['install', '-y', pkg], { env });
  if (r.status !== 0) {
    log('install failed; apt-get update and retry');
    sh('apt-get', ['update'], { env });
    r = sh('apt-get', ['install', '-y', pkg], { env });
  }
  if (r.status !== 0 || !have(bin)) {
    log(`${bin} not available`);
    return false;
  }
  return true;
}

export function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

/** `cp -a`: a fresh copy with mtimes kept. */
export function copyTree(from, to) {
  rmrf(to);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  must('cp', ['-a', from, to]);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fileHash(file) {
  try {
    return createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 12);
  } catch {
    return 'missing';
  }
}

export const fmtInt = (n) => (n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US'));

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function cpuTimes() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: f[3] + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return undefined;
  }
}

export const CLK_TCK = Number(sh('getconf', ['CLK_TCK']).stdout.trim()) || 100;

export function gitInfo(root) {
  const head = sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']).stdout.trim();
  const dirty = sh('git', ['-C', root, 'status', '--porcelain', '--', 'src']).stdout.trim();
  return { head: head || 'unknown', dirty: dirty ? dirty.split('\n').length : 0 };
}

/** Engine-owned names, left out when trees are compared. */
export const ignoredName = (name) => name === '.sync_state' || name.startsWith('.syncengine');

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
