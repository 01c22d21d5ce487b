// The scanner: walks one side through the storage protocol, applying the ignore rules as it goes
// (ignored folders are never entered), and fills in hashes from the base and the persistent hash
// cache, so that a file is re-hashed only when its size, mtime or inode changed.
import type { Backend, Entry, FileColumns, KnownFiles, ListDirOptions, ListDirResult, SkippedEntry } from '../backends/types';
import { hashOfBytes, hashOfStream, type HashAlgorithm } from './contentHash';
import { CancelledError } from './errors';
import { OFF_THREAD_MIN_BYTES } from './offThreadHash';
import { IGNORE_FILE_NAME, IgnoreRules } from './ignore';
import type { Base, Tree } from './model';
import type { Side } from './options';
import { parentOf } from './paths';
import type { HashCacheEntry } from './state';

export interface ScanOptions {
  /** Root-level patterns (config, --ignore-file), lowest precedence. */
  patterns: readonly string[];
  /** 'collect': apply this side's `.syncignore` files as found; otherwise apply these (folder → content). */
  ignoreFiles: 'collect' | Readonly<Record<string, string>>;
  /** Remove temporary files that killed transfers left behind (stores that can tell). */
  removeStaleTemp?: boolean;
  /** About how many files the tree held last time, if known. */
  expectedFiles?: number;
  /** Only these paths (files or folders) and what is below them; undefined: the whole tree. */
  scope?: readonly string[];
  /** How many folders are listed at once (remote stores gain from more). */
  concurrency?: number;
  onProgress?: (found: number) => void;
  signal?: AbortSignal;
  /** The caller takes the files as sorted columns where the store can list them so (see ScanResult.columns). */
  columns?: boolean;
  /** What the last sync knew of this side (see ListDirOptions.known). */
  known?: Promise<KnownFiles | undefined>;
}

export interface ScanResult {
  tree: Tree;
  skipped: SkippedEntry[];
  /** The `.syncignore` files applied, folder → content. */
  ignoreFiles: Record<string, string>;
  /** With ScanOptions.columns, from stores that can: the files, sorted; `tree.files` is then empty. */
  columns?: FileColumns;
}

/** The rules for a set of ignore files. */
export function rulesFor(patterns: readonly string[], ignoreFiles: Readonly<Record<string, string>>): IgnoreRules {
  const rules = new IgnoreRules(patterns);
  for (const [dir, content] of Object.entries(ignoreFiles)) rules.addIgnoreFile(dir, content);
  return rules;
}

export function sameIgnoreFiles(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

async function readText(backend: Backend, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await backend.read(path)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Folders handed to Backend.listDirs at once. */
const LIST_DIRS_BATCH = 512;

export async function scanTree(backend: Backend, options: ScanOptions): Promise<ScanResult> {
  if (options.columns && backend.listTreeColumns && !options.scope) {
    if (options.signal?.aborted) throw new CancelledError();
    const { columns, dirs, skipped, ignoreFiles } = await backend.listTreeColumns({
      patterns: options.patterns,
      ignoreFiles: options.ignoreFiles,
      removeStaleTemp: options.removeStaleTemp === true,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.expectedFiles !== undefined ? { expectedFiles: options.expectedFiles } : {}),
    });
    options.onProgress?.(columns.paths.length);
    return { tree: { files: new Map(), dirs: new Set(dirs) }, columns, skipped, ignoreFiles };
  }
  if (backend.listTree && !options.scope) {
    if (options.signal?.aborted) throw new CancelledError();
    const listing = await backend.listTree({
      patterns: options.patterns,
      ignoreFiles: options.ignoreFiles,
      removeStaleTemp: options.removeStaleTemp === true,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.expectedFiles !== undefined ? { expectedFiles: options.expectedFiles } : {}),
    });
    const tree: Tree = { files: new Map(), dirs: new Set(listing.dirs) };
    for (const entry of listing.files) tree.files.set(entry.path, entry);
    options.onProgress?.(tree.files.size);
    return { tree, skipped: listing.skipped, ignoreFiles: listing.ignoreFiles };
  }
  const tree: Tree = { files: new Map(), dirs: new Set() };
  const skipped: SkippedEntry[] = [];
  const collect = options.ignoreFiles === 'collect';
  const ignoreFiles: Record<string, string> = collect ? {} : { ...(options.ignoreFiles as Record<string, string>) };
  const rules = rulesFor(options.patterns, ignoreFiles);
  const concurrency = Math.max(1, options.concurrency ?? 8);
  let found = 0;
  let lastReport = 0;

  const listOptions: ListDirOptions | undefined =
    options.removeStaleTemp || options.known ? { ...(options.removeStaleTemp ? { removeStaleTemp: true } : {}), ...(options.known ? { known: options.known } : {}) } : undefined;
  const visit = async (dir: string, listed?: ListDirResult): Promise<string[]> => {
    if (options.signal?.aborted) throw new CancelledError();
    const listing = listed ?? (await backend.listDir(dir, listOptions));
    skipped.push(...listing.skipped);
    if (collect) {
      const ignoreFile = listing.entries.find((e) => e.kind === 'file' && e.path === (dir ? `${dir}/${IGNORE_FILE_NAME}` : IGNORE_FILE_NAME));
      if (ignoreFile) {
        ignoreFiles[dir] = await readText(backend, ignoreFile.path);
        rules.addIgnoreFile(dir, ignoreFiles[dir]!);
      }
    }
    const subdirs: string[] = [];
    for (const entry of listing.entries) {
      const isDir = entry.kind === 'dir';
      if (rules.isIgnored(entry.path, isDir)) continue;
      if (isDir) {
        tree.dirs.add(entry.path);
        subdirs.push(entry.path);
      } else {
        tree.files.set(entry.path, entry);
        found++;
      }
    }
    if (options.onProgress && found - lastReport >= 500) {
      lastReport = found;
      options.onProgress(found);
    }
    return subdirs;
  };

  const roots = options.scope ? await scopeRoots(backend, options.scope, collect ? ignoreFiles : undefined, rules, tree) : [''];
  // Breadth-first with a bounded number of folders listed at once; a store that lists folders in
  // batches gets a larger share of a level at a time and spreads it over its connections itself.
  const batchSize = backend.listDirs ? Math.max(concurrency, LIST_DIRS_BATCH) : concurrency;
  let queue = roots;
  while (queue.length > 0) {
    const next: string[] = [];
    for (let i = 0; i < queue.length; i += batchSize) {
      const batch = queue.slice(i, i + batchSize);
      if (backend.listDirs) {
        if (options.signal?.aborted) throw new CancelledError();
        const listings = await backend.listDirs(batch, listOptions);
        for (const [k, dir] of batch.entries()) next.push(...(await visit(dir, listings[k])));
      } else {
        for (const subdirs of await Promise.all(batch.map((dir) => visit(dir)))) next.push(...subdirs);
      }
    }
    queue = next;
  }
  options.onProgress?.(found);
  return { tree, skipped, ignoreFiles };
}

/**
 * For a scoped scan: load the ignore files of every folder above each scope path, add scoped files
 * directly, and return the scoped folders to walk.
 */
async function scopeRoots(backend: Backend, scope: readonly string[], collected: Record<string, string> | undefined, rules: IgnoreRules, tree: Tree): Promise<string[]> {
  const roots: string[] = [];
  const loadedIgnoreDirs = new Set<string>();
  for (const scopePath of scope) {
    if (collected) {
      const ancestors: string[] = [];
      for (let d = parentOf(scopePath); ; d = parentOf(d)) {
        ancestors.unshift(d);
        if (d === '') break;
      }
      for (const dir of ancestors) {
        if (loadedIgnoreDirs.has(dir)) continue;
        loadedIgnoreDirs.add(dir);
        const file = dir ? `${dir}/${IGNORE_FILE_NAME}` : IGNORE_FILE_NAME;
        const entry = await backend.stat(file);
        if (entry?.kind === 'file') {
          collected[dir] = await readText(backend, file);
          rules.addIgnoreFile(dir, collected[dir]!);
        }
      }
    }
    const entry = scopePath === '' ? ({ kind: 'dir' } as const) : await backend.stat(scopePath);
    if (!entry) continue;
    const isDir = entry.kind === 'dir';
    if (scopePath !== '' && rules.isIgnoredDeep(scopePath, isDir)) continue;
    if (isDir) {
      if (scopePath !== '') tree.dirs.add(scopePath);
      roots.push(scopePath);
    } else {
      tree.files.set(scopePath, entry as Entry);
    }
  }
  return roots;
}

/** Whether `path` is one of the scope paths or below one. */
export function inScope(path: string, scope: readonly string[] | undefined): boolean {
  if (!scope) return true;
  return scope.some((s) => s === '' || path === s || path.startsWith(`${s}/`));
}

/** Take hashes from the base snapshot or the hash cache where the file's identity has not changed. */
export function fillKnownHashes(tree: Tree, side: Side, base: Base, cache: Map<string, HashCacheEntry>): void {
  for (const [path, entry] of tree.files) {
    if (entry.hash !== undefined) continue;
    const snap = base.get(path)?.[side];
    if (snap?.hash !== undefined && sameIdentity(snap, entry)) {
      entry.hash = snap.hash;
      continue;
    }
    const cached = cache.get(path);
    if (cached && sameIdentity(cached, entry)) entry.hash = cached.hash;
  }
}

function sameIdentity(known: { size: number; mtimeMs: number; ino?: number }, entry: Entry): boolean {
  return known.size === entry.size && known.mtimeMs === entry.mtimeMs && (known.ino === undefined || entry.ino === undefined || known.ino === entry.ino);
}

/** Files up to this size are read in one piece rather than streamed. */
export const SMALL_FILE_BYTES = 256 * 1024;

/**
 * The hash of a file: from the store when it can compute it, else by reading the content; a large
 * local file on the hashing worker, so that this thread goes on with listings and transfers.
 */
export async function hashFile(backend: Backend, path: string, size: number, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
  if (backend.hash) return backend.hash(path, algorithm);
  if (backend.hashOffThread && size >= OFF_THREAD_MIN_BYTES) return backend.hashOffThread(path, algorithm, signal);
  if (backend.readFile && size <= SMALL_FILE_BYTES) return hashOfBytes(await backend.readFile(path, signal), algorithm);
  return hashOfStream(await backend.read(path, signal), algorithm);
}
