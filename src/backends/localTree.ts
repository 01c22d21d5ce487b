// Listing local folders: one folder (for LocalBackend.listDir) and a whole tree with the ignore
// rules applied as it goes (for LocalBackend.listTree, run in a worker thread). Synchronous
// readdir/lstat calls on purpose: they are the fastest way through tens of thousands of entries.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Worker } from 'node:worker_threads';
import { IGNORE_FILE_NAME, IgnoreRules } from '../core/ignore';
import { randomBytes } from 'node:crypto';
import { TEMP_PREFIX, isEngineName, isSafeName } from '../core/paths';
import { CAUSES, errorCode } from './fsErrors';
import type { Entry, ListDirResult, SkippedEntry, TreeListing, TreeListingOptions } from './types';

export function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link (not followed)';
  if (st.isSocket()) return 'socket (not a regular file)';
  if (st.isFIFO()) return 'named pipe (not a regular file)';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'device (not a regular file)';
  return 'not a regular file or folder';
}

/** A temporary file name that tells which process wrote it: `.syncengine-tmp-<pid>-<random>`. */
export function tempName(): string {
  return `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** Left-over temporary files are removed only when older than this (and their writer is gone). */
const STALE_TEMP_MS = 60_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

/**
 * A temporary file left by a transfer that was killed: its writer process is gone and it is more
 * than a minute old. Removing it frees space; it never held the only copy of anything.
 */
function isStaleTemp(name: string, absPath: string): boolean {
  const m = /^(\d+)-/.exec(name.slice(TEMP_PREFIX.length));
  if (!m || processAlive(Number(m[1]))) return false;
  const st = fs.lstatSync(absPath, { throwIfNoEntry: false });
  return st !== undefined && st.isFile() && Date.now() - st.mtimeMs > STALE_TEMP_MS;
}

/** Mode-bit approximation of access(R_OK [| X_OK]) for this process; confirmed with accessSync when it says no. */
export class ReadAccess {
  private readonly euid = process.geteuid?.();
  private readonly groups: ReadonlySet<number>;

  constructor() {
    const groups = new Set<number>(process.getgroups?.() ?? []);
    const egid = process.getegid?.();
    if (egid !== undefined) groups.add(egid);
    this.groups = groups;
  }

  canRead(st: fs.Stats, absPath: string, dir: boolean): boolean {
    const uid = this.euid;
    if (uid === undefined || uid === 0) return true;
    const need = dir ? 5 : 4;
    const bits = st.uid === uid ? (st.mode >> 6) & 7 : this.groups.has(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & need) === need) return true;
    // Rare path: ACLs may still grant access, so ask the kernel.
    try {
      fs.accessSync(absPath, dir ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK);
      return true;
    } catch {
      return false;
    }
  }
}

function prefixOf(absDir: string): string {
  return absDir.endsWith(nodePath.sep) ? absDir : absDir + nodePath.sep;
}

/**
 * The regular files and folders directly in `dir` (relative to `root`). Symlinks, special files,
 * unsafe names and unreadable entries come back as skipped; engine-owned names are left out.
 * Errors listing `dir` itself are thrown as they come from Node.
 */
export function listLocalDir(root: string, dir: string, access: ReadAccess, removeStaleTemp = false): ListDirResult {
  const absDir = dir === '' ? root : nodePath.join(root, dir);
  const dirents = fs.readdirSync(absDir, { withFileTypes: true });
  const entries: Entry[] = [];
  const skipped: SkippedEntry[] = [];
  const prefix = prefixOf(absDir);
  for (const dirent of dirents) {
    const name = dirent.name;
    if (isEngineName(name)) {
      // Engine-owned: never listed. Temporary files of killed runs are cleaned up on the way.
      if (removeStaleTemp && name.startsWith(TEMP_PREFIX) && isStaleTemp(name, prefixOf(absDir) + name)) fs.rmSync(prefixOf(absDir) + name, { force: true });
      continue;
    }
    const path = dir === '' ? name : `${dir}/${name}`;
    if (!isSafeName(name)) {
      skipped.push({ path, reason: 'unsafe name (control character or backslash)' });
      continue;
    }
    if (dirent.isSymbolicLink()) {
      skipped.push({ path, reason: 'symbolic link (not followed)' });
      continue;
    }
    const absPath = prefix + name;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(absPath, { bigint: false, throwIfNoEntry: false });
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOTDIR') continue; // vanished (the folder was replaced) between readdir and lstat
      skipped.push({ path, reason: `cannot be examined: ${code !== undefined && CAUSES[code] !== undefined ? CAUSES[code] : String(error)}` });
      continue;
    }
    if (st === undefined) continue; // vanished between readdir and lstat
    const isFile = st.isFile();
    if (!isFile && !st.isDirectory()) {
      skipped.push({ path, reason: kindOf(st) });
      continue;
    }
    if (!access.canRead(st, absPath, !isFile)) {
      skipped.push({ path, reason: `unreadable ${isFile ? 'file' : 'folder'} (permission denied)` });
      continue;
    }
    entries.push({ path, kind: isFile ? 'file' : 'dir', size: isFile ? st.size : 0, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino });
  }
  return { entries, skipped };
}

interface WalkError {
  dir: string;
  code: string | undefined;
  message: string;
}

export function walkLocalTree(root: string, options: TreeListingOptions, onProgress?: (files: number) => void): TreeListing & { error?: WalkError } {
  const rules = new IgnoreRules(options.patterns);
  const collect = options.ignoreFiles === 'collect';
  const ignoreFiles: Record<string, string> = collect ? {} : { ...(options.ignoreFiles as Record<string, string>) };
  if (!collect) for (const [dir, content] of Object.entries(ignoreFiles)) rules.addIgnoreFile(dir, content);
  const access = new ReadAccess();
  const result: TreeListing = { files: [], dirs: [], skipped: [], ignoreFiles };
  const pending = [''];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let listing: ListDirResult;
    try {
      listing = listLocalDir(root, dir, access, options.removeStaleTemp === true);
    } catch (error) {
      if (dir === '') return { ...result, error: { dir, code: errorCode(error), message: (error as Error).message } };
      // A folder that vanished or cannot be listed: reported, the rest of the walk goes on.
      result.skipped.push({ path: dir, reason: `cannot be listed: ${CAUSES[errorCode(error) ?? ''] ?? (error as Error).message}` });
      continue;
    }
    result.skipped.push(...listing.skipped);
    if (collect) {
      const ignorePath = dir === '' ? IGNORE_FILE_NAME : `${dir}/${IGNORE_FILE_NAME}`;
      if (listing.entries.some((e) => e.kind === 'file' && e.path === ignorePath)) {
        const content = fs.readFileSync(nodePath.join(root, ignorePath), 'utf8');
        ignoreFiles[dir] = content;
        rules.addIgnoreFile(dir, content);
      }
    }
    for (const entry of listing.entries) {
      const isDir = entry.kind === 'dir';
      if (rules.isIgnored(entry.path, isDir)) continue;
      if (isDir) {
        result.dirs.push(entry.path);
        pending.push(entry.path);
      } else {
        result.files.push(entry);
        if (onProgress && result.files.length % PROGRESS_EVERY === 0) onProgress(result.files.length);
      }
    }
  }
  return result;
}

const PROGRESS_EVERY = 2000;

/** The worker's answer, packed so that tens of thousands of entries cross threads cheaply. */
interface PackedListing {
  paths: string[];
  sizes: Float64Array;
  mtimes: Float64Array;
  inos: Float64Array;
  dirs: string[];
  skipped: SkippedEntry[];
  ignoreFiles: Record<string, string>;
  error?: WalkError;
}

export function packListing(listing: TreeListing & { error?: WalkError }): PackedListing {
  const n = listing.files.length;
  const packed: PackedListing = {
    paths: new Array<string>(n),
    sizes: new Float64Array(n),
    mtimes: new Float64Array(n),
    inos: new Float64Array(n),
    dirs: listing.dirs,
    skipped: listing.skipped,
    ignoreFiles: listing.ignoreFiles,
  };
  listing.files.forEach((e, i) => {
    packed.paths[i] = e.path;
    packed.sizes[i] = e.size;
    packed.mtimes[i] = e.mtimeMs;
    packed.inos[i] = e.ino ?? -1;
  });
  if (listing.error) packed.error = listing.error;
  return packed;
}

function unpackListing(packed: PackedListing): TreeListing & { error?: WalkError } {
  const files: Entry[] = new Array<Entry>(packed.paths.length);
  for (let i = 0; i < files.length; i++) {
    const e: Entry = { path: packed.paths[i]!, kind: 'file', size: packed.sizes[i]!, mtimeMs: packed.mtimes[i]! };
    if (packed.inos[i]! >= 0) e.ino = packed.inos[i]!;
    files[i] = e;
  }
  const result: TreeListing & { error?: WalkError } = { files, dirs: packed.dirs, skipped: packed.skipped, ignoreFiles: packed.ignoreFiles };
  if (packed.error) result.error = packed.error;
  return result;
}

/** The worker script sits beside this module (dist/ in the bundle, out/src/backends/ in tests). */
const WORKER_FILE = nodePath.join(__dirname, 'localTreeWorker.js');

/** Walk in a worker thread; falls back to this thread where no worker can be started. */
/** Below this many expected files a worker costs more to start than the walk it would take over. */
const WORKER_MIN_FILES = 20_000;

export function walkInWorker(request: TreeListingOptions & { root: string }): Promise<TreeListing & { error?: WalkError }> {
  const { onProgress, expectedFiles, ...data } = request;
  const small = expectedFiles !== undefined && expectedFiles < WORKER_MIN_FILES;
  if (small || !fs.existsSync(WORKER_FILE)) return Promise.resolve(walkLocalTree(request.root, data, onProgress));
  return new Promise((resolve, reject) => {
    // A larger young generation: the walk allocates a Stats object per entry, and the default
    // size makes the worker spend much of its time in scavenges.
    const worker = new Worker(WORKER_FILE, { workerData: { ...data, patterns: [...data.patterns] }, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
    let settled = false;
    worker.on('message', (message: PackedListing | { progress: number }) => {
      if ('progress' in message) {
        onProgress?.(message.progress);
        return;
      }
      settled = true;
      resolve(unpackListing(message));
    });
    worker.once('error', (error) => {
      if (!settled) reject(error);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the folder listing worker stopped (exit code ${code})`));
      settled = true;
    });
  });
}
