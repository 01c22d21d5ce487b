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
import { entriesFromColumns } from '../core/fileColumns';
import type { ColumnTreeListing, Entry, ListDirResult, SkippedEntry, TreeListing, TreeListingOptions } from './types';

export function kindOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link (not followed)';
  if (st.isSocket()) return 'socket (not a regular file)';
  if (st.isFIFO()) return 'named pipe (not a regular file)';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'device (not a regular file)';
  return 'not a regular file or folder';
}

/** Random per process, so that names from processes on other machines writing to the same store differ too. */
const TEMP_SESSION = randomBytes(6).toString('hex');
let tempCounter = 0;

/** A temporary file name that tells which process wrote it: `.syncengine-tmp-<pid>-<random><counter>`. */
export function tempName(): string {
  return `${TEMP_PREFIX}${process.pid}-${TEMP_SESSION}${(tempCounter++).toString(36)}`;
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
 * One folder's regular files and folders, in parallel arrays reused from folder to folder: a walk
 * through tens of thousands of files makes no object per file.
 */
class FolderListing {
  length = 0;
  readonly paths: string[] = [];
  readonly isFile: boolean[] = [];
  readonly sizes: number[] = [];
  readonly mtimes: number[] = [];
  readonly inos: number[] = [];

  hasFile(path: string): boolean {
    for (let i = 0; i < this.length; i++) if (this.isFile[i] && this.paths[i] === path) return true;
    return false;
  }

  add(path: string, isFile: boolean, st: fs.Stats): void {
    const i = this.length++;
    this.paths[i] = path;
    this.isFile[i] = isFile;
    this.sizes[i] = isFile ? st.size : 0;
    this.mtimes[i] = Math.floor(st.mtimeMs);
    this.inos[i] = st.ino;
  }
}

/**
 * Lists the regular files and folders directly in `dir` (relative to `root`) into `into`.
 * Symlinks, special files, unsafe names and unreadable entries go to `skipped`; engine-owned names
 * are left out. Errors listing `dir` itself are thrown as they come from Node.
 */
function readLocalDir(root: string, dir: string, access: ReadAccess, removeStaleTemp: boolean, into: FolderListing, skipped: SkippedEntry[]): void {
  const absDir = dir === '' ? root : nodePath.join(root, dir);
  // Names only: every entry is lstat-ed anyway, and Dirent objects would cost one more allocation each.
  // In code-unit order: the order of comparePaths, which the whole-tree walk keeps (see pathOrder).
  const names = fs.readdirSync(absDir).sort();
  const prefix = prefixOf(absDir);
  into.length = 0;
  for (const name of names) {
    if (isEngineName(name)) {
      // Engine-owned: never listed. Temporary files of killed runs are cleaned up on the way.
      if (removeStaleTemp && name.startsWith(TEMP_PREFIX) && isStaleTemp(name, prefix + name)) fs.rmSync(prefix + name, { force: true });
      continue;
    }
    const path = dir === '' ? name : `${dir}/${name}`;
    if (!isSafeName(name)) {
      skipped.push({ path, reason: 'unsafe name (control character or backslash)' });
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
    into.add(path, isFile, st);
  }
}

/**
 * The regular files and folders directly in `dir` (relative to `root`). Symlinks, special files,
 * unsafe names and unreadable entries come back as skipped; engine-owned names are left out.
 * Errors listing `dir` itself are thrown as they come from Node.
 */
export function listLocalDir(root: string, dir: string, access: ReadAccess, removeStaleTemp = false): ListDirResult {
  const listing = new FolderListing();
  const skipped: SkippedEntry[] = [];
  readLocalDir(root, dir, access, removeStaleTemp, listing, skipped);
  const entries: Entry[] = [];
  for (let i = 0; i < listing.length; i++) {
    const isFile = listing.isFile[i]!;
    entries.push({ path: listing.paths[i]!, kind: isFile ? 'file' : 'dir', size: listing.sizes[i]!, mtimeMs: listing.mtimes[i]!, ino: listing.inos[i]! });
  }
  return { entries, skipped };
}

interface WalkError {
  dir: string;
  code: string | undefined;
  message: string;
}

/** The worker's answer: the files as sorted columns, so that tens of thousands cross threads cheaply. */
export type ColumnWalkResult = ColumnTreeListing & { error?: WalkError };

/** Growable float64 column. */
class NumberColumn {
  values = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  /** The values pushed, in a buffer of their own. */
  toArray(): Float64Array {
    return this.values.slice(0, this.length);
  }
}

/**
 * The indexes of a folder's entries in the order of their paths (comparePaths), into `order`. The
 * walk visits entries in this order and enters each folder where its name sorts, so its files come
 * out sorted with no sort of the whole tree. readLocalDir lists names in code-unit order; a folder
 * sorts as its name plus '/', which differs only where a sibling continues its name with a
 * character below '/' (folder `lib`, file `lib.d.ts`): an insertion sort moves those few.
 */
function pathOrder(folder: FolderListing, order: number[]): void {
  order.length = folder.length;
  const key = (i: number): string => (folder.isFile[i] ? folder.paths[i]! : `${folder.paths[i]!}/`);
  for (let i = 0; i < folder.length; i++) {
    const k = key(i);
    let j = i - 1;
    while (j >= 0 && key(order[j]!) > k) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = i;
  }
}

/** A folder being walked: its listing, its entries in path order, and how far the walk is. */
interface WalkLevel {
  readonly listing: FolderListing;
  readonly order: number[];
  next: number;
  /** Whether any ignore rule may apply to its entries. */
  checkRules: boolean;
}

/** The whole tree under `root`, ignore rules applied as it goes (ignored folders are not entered), files as sorted columns. */
export function walkLocalTreeColumns(root: string, options: TreeListingOptions, onProgress?: (files: number) => void): ColumnWalkResult {
  const rules = new IgnoreRules(options.patterns);
  const collect = options.ignoreFiles === 'collect';
  const ignoreFiles: Record<string, string> = collect ? {} : { ...(options.ignoreFiles as Record<string, string>) };
  if (!collect) for (const [dir, content] of Object.entries(ignoreFiles)) rules.addIgnoreFile(dir, content);
  const access = new ReadAccess();
  const dirs: string[] = [];
  const skipped: SkippedEntry[] = [];
  const paths: string[] = [];
  const sizes = new NumberColumn();
  const mtimes = new NumberColumn();
  const inos = new NumberColumn();
  const finish = (error?: WalkError): ColumnWalkResult => {
    const result: ColumnWalkResult = { columns: { paths, sizes: sizes.toArray(), mtimes: mtimes.toArray(), inos: inos.toArray() }, dirs, skipped, ignoreFiles };
    if (error) result.error = error;
    return result;
  };
  // One level per folder depth, reused: the folders being walked, from the root down.
  const levels: WalkLevel[] = [];
  let depth = -1;
  /** Lists `dir` one level below the current one and makes it current; throws as readLocalDir does. */
  const enter = (dir: string): void => {
    const level = (levels[depth + 1] ??= { listing: new FolderListing(), order: [], next: 0, checkRules: false });
    readLocalDir(root, dir, access, options.removeStaleTemp === true, level.listing, skipped);
    if (collect) {
      const ignorePath = dir === '' ? IGNORE_FILE_NAME : `${dir}/${IGNORE_FILE_NAME}`;
      if (level.listing.hasFile(ignorePath)) {
        const content = fs.readFileSync(nodePath.join(root, ignorePath), 'utf8');
        ignoreFiles[dir] = content;
        rules.addIgnoreFile(dir, content);
      }
    }
    pathOrder(level.listing, level.order);
    level.next = 0;
    // readLocalDir has left out engine-owned names, the only ones ignored without rules.
    level.checkRules = !rules.empty;
    depth++;
  };
  try {
    enter('');
  } catch (error) {
    return finish({ dir: '', code: errorCode(error), message: (error as Error).message });
  }
  while (depth >= 0) {
    const level = levels[depth]!;
    if (level.next === level.order.length) {
      depth--;
      continue;
    }
    const i = level.order[level.next++]!;
    const { listing } = level;
    const path = listing.paths[i]!;
    const isDir = !listing.isFile[i];
    if (level.checkRules && rules.isIgnored(path, isDir)) continue;
    if (isDir) {
      dirs.push(path);
      try {
        enter(path);
      } catch (error) {
        // A folder that vanished or cannot be listed: reported, the rest of the walk goes on.
        skipped.push({ path, reason: `cannot be listed: ${CAUSES[errorCode(error) ?? ''] ?? (error as Error).message}` });
      }
      continue;
    }
    paths.push(path);
    sizes.push(listing.sizes[i]!);
    mtimes.push(listing.mtimes[i]!);
    inos.push(listing.inos[i]!);
    if (onProgress && paths.length % PROGRESS_EVERY === 0) onProgress(paths.length);
  }
  return finish();
}

/** walkLocalTree with the files as Entry objects. */
export function walkLocalTree(root: string, options: TreeListingOptions, onProgress?: (files: number) => void): TreeListing & { error?: WalkError } {
  const { columns, ...rest } = walkLocalTreeColumns(root, options, onProgress);
  return { ...rest, files: entriesFromColumns(columns) };
}

const PROGRESS_EVERY = 2000;

/** The worker script sits beside this module (dist/ in the bundle, out/src/backends/ in tests). */
const WORKER_FILE = nodePath.join(__dirname, 'localTreeWorker.js');

/**
 * Below this many expected files the walk runs on this thread: starting a worker (a new isolate
 * loading its bundle) costs about what walking 10,000 files takes on a 2-core machine. Above it
 * both sides are walked at once, and this thread (the extension host's, in VS Code) stays free.
 */
const WORKER_MIN_FILES = 20_000;

/** Walks running in worker threads right now. */
let walksInWorkers = 0;
/** Set by processes whose thread has nothing else to do while a sync scans (the CLI). */
let thisThreadMayBlock = false;

/**
 * For a process whose thread waits anyway while a sync lists its folders (the CLI, not the
 * extension host): a walk that starts while another runs in a worker runs on this thread. Both
 * sides of a local pair are still walked at once, with one worker fewer to start and to copy a
 * listing back from (a no-change re-sync of 50,000 files: about 0.86 s → 0.76 s here).
 */
export function letTreeWalksBlockThisThread(): void {
  thisThreadMayBlock = true;
}

/** Walk in a worker thread; falls back to this thread where no worker can be started. */
export function walkInWorker(request: TreeListingOptions & { root: string }): Promise<ColumnWalkResult> {
  const { onProgress, expectedFiles, ...data } = request;
  const small = expectedFiles !== undefined && expectedFiles < WORKER_MIN_FILES;
  const besideAnother = thisThreadMayBlock && walksInWorkers > 0;
  if (small || besideAnother || !fs.existsSync(WORKER_FILE)) return Promise.resolve(walkLocalTreeColumns(request.root, data, onProgress));
  walksInWorkers++;
  return new Promise<ColumnWalkResult>((resolve, reject) => {
    // A larger young generation: the walk allocates a Stats object per entry, and the default
    // size makes the worker spend much of its time in scavenges.
    const worker = new Worker(WORKER_FILE, { workerData: { ...data, patterns: [...data.patterns] }, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
    let settled = false;
    worker.on('message', (message: ColumnWalkResult | { progress: number }) => {
      if ('progress' in message) {
        onProgress?.(message.progress);
        return;
      }
      settled = true;
      resolve(message);
    });
    worker.once('error', (error) => {
      if (!settled) reject(error);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the folder listing worker stopped (exit code ${code})`));
      settled = true;
    });
  }).finally(() => walksInWorkers--);
}
