// The local-folder backend: a folder on this machine as a store.
//
// Safety rules, in order of importance:
//  1. Every path argument is checked with assertSafeRelativePath before anything is touched.
//  2. We never operate *through* a symbolic link: a folder inside the root that is (or passes through)
//     a symlink resolving outside the root is refused with UnsafePathError, so a hostile tree cannot
//     make us read, write or delete outside the root. Listing never follows symlinks (they come back
//     as skipped), reads open with O_NOFOLLOW, and writes replace a symlink at the target instead of
//     writing through it. The check is done just before the operation; Node has no openat()-style
//     API, so a tree that is changed concurrently by a hostile process between the check and the
//     operation (a classic TOCTOU race) is not fully defended against.
//  3. Writes are atomic: temp file in the same folder, fsync, rename over the target. A failed or
//     aborted write leaves the old content and no temp file.
//  4. rename/copyWithin never overwrite an existing target.
//
// listDir is on the hot path (a no-change re-sync of 50,000 files must take well under a second), so
// it uses synchronous readdir/lstat calls and string concatenation for paths; it stays async in
// signature to satisfy the Backend interface.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError, SyncError, TargetExistsError, UnsafePathError } from '../core/errors';
import { entriesFromColumns } from '../core/fileColumns';
import { hashOfOpenFile } from '../core/offThreadHash';
import { hashOfStream, type HashAlgorithm } from '../core/contentHash';
import { assertSafeRelativePath, parentOf } from '../core/paths';
import { CAUSES, errorCode, TRANSIENT_CODES } from './fsErrors';
import { kindOf, listLocalDir, ReadAccess, tempName, walkInWorker } from './localTree';
import type { Backend, ColumnTreeListing, Entry, ListDirOptions, ListDirResult, TreeListing, TreeListingOptions, WriteOptions } from './types';
import { describeSubject as describe, type Subject } from './subject';
import { makeDirs } from '../core/makeDirs';

function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'AbortError';
}


/**
 * Turns a Node file-system error into a StorageError whose message names the operation, the path and
 * the cause in words ("Cannot write "a/b.txt": disk full (ENOSPC)"); transient only for EBUSY, EAGAIN,
 * EMFILE, ENFILE and ETIMEDOUT. SyncErrors (UnsafePathError, StorageError) pass through unchanged.
 * Exported for tests.
 */
export function toStorageError(operation: string, path: Subject, error: unknown): Error {
  if (error instanceof SyncError) return error;
  const code = errorCode(error);
  const cause = code !== undefined && CAUSES[code] !== undefined ? `${CAUSES[code]} (${code})` : error instanceof Error ? error.message : String(error);
  return new StorageError(`Cannot ${operation} ${describe(path)}: ${cause}`, code !== undefined && TRANSIENT_CODES.has(code), { cause: error });
}

function fail(operation: string, path: Subject, cause: string): StorageError {
  return new StorageError(`Cannot ${operation} ${describe(path)}: ${cause}`, false);
}

/** A regular file or folder as an Entry; anything else (symlink, socket, FIFO, device) is undefined. */
function toEntry(path: string, st: fs.Stats): Entry | undefined {
  if (st.isFile()) return { path, kind: 'file', size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino };
  if (st.isDirectory()) return { path, kind: 'dir', size: 0, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino };
  return undefined;
}

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;

export class LocalBackend implements Backend {
  readonly root: string;
  readonly displayName: string;
  readonly id: string;

  // Credentials for the cheap "can we read this?" check in listDir (POSIX only).
  private readonly access = new ReadAccess();

  /** Whether writes fsync before the rename (survives power loss, costs a disk flush per file). */
  readonly durable: boolean;

  private rootReal: string | undefined;
  private readonly verifiedDirs = new Set<string>();
  /** Folders this backend made sure exist (forgotten when it moves or removes folders). */
  private readonly createdDirs = new Set<string>();

  /** A root that does not exist lists as empty (a dry run against a folder a first sync would create). */
  private readonly missingRootIsEmpty: boolean;

  constructor(root: string, options: { durable?: boolean; missingRootIsEmpty?: boolean } = {}) {
    this.durable = options.durable ?? false;
    this.missingRootIsEmpty = options.missingRootIsEmpty ?? false;
    this.root = nodePath.resolve(root);
    this.displayName = `local folder ${this.root}`;
    let real = this.root;
    try {
      real = fs.realpathSync.native(this.root);
    } catch {
      // The root does not exist yet: its own path identifies it.
    }
    this.id = `file://${real}`;
  }

  private abs(path: string): string {
    return path === '' ? this.root : nodePath.join(this.root, path);
  }

  /**
   * Refuses (UnsafePathError) when the folder `dir` - or, if it does not exist yet, its deepest
   * existing ancestor - resolves outside the root through a symbolic link. A dangling symlink on the
   * way is refused too (mkdir -p through it would create folders wherever it points).
   */
  private assertInsideRoot(dir: string, path: string): void {
    if (dir === '' || this.verifiedDirs.has(dir)) return;
    // Parents first: a real folder (not a symlink) inside a verified one is inside too, which one
    // lstat tells. Only a symlink on the way needs resolving.
    const parent = parentOf(dir);
    this.assertInsideRoot(parent, path);
    if (parent !== '' && !this.verifiedDirs.has(parent)) return; // the parent does not exist, so neither does dir
    const st = this.lstat('resolve', path, this.abs(dir));
    if (st === undefined) return; // does not exist yet: the folders a write creates are real ones
    if (st.isSymbolicLink()) this.assertResolvesInside(dir, path);
    // Folders that exist and resolve inside are remembered: a sync touches thousands of files in
    // the same few folders. Folders this backend moves or removes are forgotten again.
    if (st.isDirectory() || st.isSymbolicLink()) this.verifiedDirs.add(dir);
  }

  /** The check for a folder that is a symbolic link: its target must exist and lie inside the root. */
  private assertResolvesInside(dir: string, path: string): void {
    let rootReal: string;
    try {
      rootReal = this.rootReal ??= fs.realpathSync.native(this.root);
    } catch (error) {
      throw toStorageError('resolve', '', error);
    }
    let real: string;
    try {
      real = fs.realpathSync.native(this.abs(dir));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ELOOP') throw new UnsafePathError(path, 'symbolic link loop in a parent folder');
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new UnsafePathError(path, `parent folder ${JSON.stringify(dir)} is a dangling symbolic link`);
      throw toStorageError('resolve', path, error);
    }
    if (real !== rootReal && !real.startsWith(rootReal.endsWith(nodePath.sep) ? rootReal : rootReal + nodePath.sep)) {
      throw new UnsafePathError(path, `parent folder ${JSON.stringify(dir)} resolves outside the root (symbolic link)`);
    }
  }

  /** Forget the verified folders at or below `dir` (it is being moved or removed). */
  private forgetVerified(dir: string): void {
    for (const set of [this.verifiedDirs, this.createdDirs]) for (const d of set) if (d === dir || d.startsWith(`${dir}/`)) set.delete(d);
  }

  /** Validates a path argument and checks its parent folder; returns the absolute path. */
  private checked(path: string): string {
    assertSafeRelativePath(path);
    this.assertInsideRoot(parentOf(path), path);
    return this.abs(path);
  }

  private lstat(operation: string, path: string, absPath: string): fs.Stats | undefined {
    try {
      return fs.lstatSync(absPath, { throwIfNoEntry: false });
    } catch (error) {
      if (errorCode(error) === 'ENOTDIR') return undefined;
      throw toStorageError(operation, path, error);
    }
  }

  async listDir(dir: string, options?: ListDirOptions): Promise<ListDirResult> {
    assertSafeRelativePath(dir);
    if (dir !== '') this.assertInsideRoot(dir, dir);
    try {
      return listLocalDir(this.root, dir, this.access, options?.removeStaleTemp === true);
    } catch (error) {
      // A missing root is an error, not an empty listing: the user gets a clear message instead of
      // the engine seeing "everything was deleted" (the empty-side guard would catch that too, but
      // "folder does not exist" is what the user needs to read). A missing or unreadable subfolder
      // is likewise thrown; the caller decides what to do with it.
      if (dir === '' && errorCode(error) === 'ENOENT' && this.missingRootIsEmpty) return { entries: [], skipped: [] };
      if (dir === '' && errorCode(error) === 'ENOENT') throw new StorageError(`folder does not exist: ${this.root}`, false, { cause: error });
      throw toStorageError('list folder', dir === '' ? this.root : dir, error);
    }
  }

  /**
   * The whole tree in one call, walked in a worker thread so that the two sides of a pair are
   * listed at once and the caller's thread stays free. Ignored folders are not entered.
   */
  async listTree(options: TreeListingOptions): Promise<TreeListing> {
    const { columns, ...rest } = await this.listTreeColumns(options);
    return { ...rest, files: entriesFromColumns(columns) };
  }

  async listTreeColumns(options: TreeListingOptions): Promise<ColumnTreeListing> {
    const result = await walkInWorker({ root: this.root, ...options });
    if (result.error !== undefined) {
      const empty = { paths: [], sizes: new Float64Array(0), mtimes: new Float64Array(0), inos: new Float64Array(0) };
      if (result.error.code === 'ENOENT' && result.error.dir === '' && this.missingRootIsEmpty) return { columns: empty, dirs: [], skipped: [], ignoreFiles: {} };
      if (result.error.code === 'ENOENT' && result.error.dir === '') throw new StorageError(`folder does not exist: ${this.root}`, false);
      throw toStorageError('list folder', result.error.dir === '' ? this.root : result.error.dir, Object.assign(new Error(result.error.message), { code: result.error.code }));
    }
    return { columns: result.columns, dirs: result.dirs, skipped: result.skipped, ignoreFiles: result.ignoreFiles };
  }

  async stat(path: string): Promise<Entry | undefined> {
    const absPath = this.checked(path);
    const st = this.lstat('examine', path, absPath);
    return st === undefined ? undefined : toEntry(path, st);
  }

  /** Open a regular file for reading: never through a symlink, never hanging on a FIFO. Returns the fd. */
  private openForRead(path: string, signal?: AbortSignal): { fd: number; absPath: string; opened: fs.Stats } {
    const absPath = this.checked(path);
    signal?.throwIfAborted();
    let fd: number;
    try {
      // O_NOFOLLOW: never read through a symlink; O_NONBLOCK: opening a FIFO must not hang.
      fd = fs.openSync(absPath, fs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if (errorCode(error) === 'ELOOP') throw fail('read', path, 'it is a symbolic link (not followed)');
      throw toStorageError('read', path, error);
    }
    let opened: fs.Stats;
    try {
      opened = fs.fstatSync(fd);
      if (!opened.isFile()) throw fail('read', path, opened.isDirectory() ? 'it is a folder' : kindOf(opened));
    } catch (error) {
      fs.closeSync(fd);
      throw toStorageError('read', path, error);
    }
    return { fd, absPath, opened };
  }

  async read(path: string, signal?: AbortSignal): Promise<Readable> {
    const { fd, absPath } = this.openForRead(path, signal);
    // 1 MiB reads: with the default 64 KiB, uploads to remote stores are capped by chunk overhead.
    return fs.createReadStream(absPath, { fd, signal, autoClose: true, highWaterMark: 1024 * 1024 });
  }

  /** The whole of a small file, read in one go (cheaper than a stream for the many small files of a tree). */
  async readFile(path: string, signal?: AbortSignal): Promise<Buffer> {
    const { fd } = this.openForRead(path, signal);
    try {
      return fs.readFileSync(fd);
    } catch (error) {
      throw toStorageError('read', path, error);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * readFile through one descriptor, with the file as opened and as it is once read: five system
   * calls (open, fstat, read, fstat, close) where stat, readFile and stat again take seven, two of
   * them path look-ups. Reads the size fstat gave; a file that grew or shrank meanwhile shows in
   * `after`. A file above `maxBytes` (it grew since it was listed) is not read at all.
   */
  async readFileAndStat(path: string, maxBytes: number, signal?: AbortSignal): Promise<{ data: Buffer | undefined; opened: Entry; after: Entry }> {
    const { fd, opened } = this.openForRead(path, signal);
    try {
      if (opened.size > maxBytes) return { data: undefined, opened: toEntry(path, opened)!, after: toEntry(path, opened)! };
      const data = Buffer.allocUnsafe(opened.size);
      let filled = 0;
      while (filled < data.length) {
        const n = fs.readSync(fd, data, filled, data.length - filled, null);
        if (n === 0) break;
        filled += n;
      }
      const after = fs.fstatSync(fd);
      return { data: filled === data.length ? data : data.subarray(0, filled), opened: toEntry(path, opened)!, after: toEntry(path, after)! };
    } catch (error) {
      throw toStorageError('read', path, error);
    } finally {
      fs.closeSync(fd);
    }
  }

  async hashOffThread(path: string, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
    const { fd } = this.openForRead(path, signal);
    try {
      const digest = hashOfOpenFile(fd, algorithm, signal);
      if (digest) return await digest;
      // No worker here: hash a stream on this thread.
      return await hashOfStream(fs.createReadStream('', { fd, autoClose: false, signal, highWaterMark: 1024 * 1024 }), algorithm);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw toStorageError('read', path, error);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Create-only writes look at the path just before the temporary file is made, the look the
   * engine would otherwise take itself a moment earlier: one lstat per new file instead of two. A
   * file or folder found there is refused; the window until the rename stays (no create-only
   * rename is reachable from Node), as with the engine's own check.
   */
  canWriteIfAbsent(): Promise<boolean> {
    return Promise.resolve(true);
  }

  /**
   * What a write finds at its target, for both write paths: the mode of a file it replaces (set-id
   * and sticky bits are not carried over), undefined where nothing is. A folder is in the way; with
   * `ifAbsent` a file or folder there is refused (TargetExistsError).
   */
  private replacedMode(path: string, absPath: string, ifAbsent: boolean): number | undefined {
    const old = this.lstat('write', path, absPath);
    if (ifAbsent && old !== undefined && toEntry(path, old) !== undefined) throw new TargetExistsError(path, this.displayName);
    if (old?.isDirectory()) throw fail('write', path, 'a folder is in the way');
    return old?.isFile() ? old.mode & 0o777 : undefined;
  }

  async write(path: string, content: Readable | Buffer, options: WriteOptions = {}): Promise<Entry> {
    if (Buffer.isBuffer(content)) return this.writeBuffer(path, content, options);
    const data = content;
    const { mtimeMs, onBytes, signal } = options;
    let absPath: string;
    let parentAbs: string;
    let oldMode: number | undefined;
    try {
      absPath = this.checked(path);
      if (path === '') throw fail('write', path, 'it is the root folder');
      signal?.throwIfAborted();
      oldMode = this.replacedMode(path, absPath, options.ifAbsent === true);
      parentAbs = nodePath.dirname(absPath);
      this.ensureFolder(path, parentAbs);
    } catch (error) {
      data.destroy(); // nothing will consume the source: release it (remote handles, open files)
      if (isAbortError(error)) throw error;
      throw toStorageError('write', path, error);
    }

    const tempPath = nodePath.join(parentAbs, tempName());
    // Errors of the source stream and aborts pass through unchanged; errors of our own file
    // operations (including the temp file's write stream) are turned into StorageErrors.
    let passThrough = false;
    let sinkClosed: Promise<void> | undefined;
    try {
      // The temp file is created synchronously (so it exists before anything can fail and the
      // cleanup below always finds it) with the old file's mode: the umask can only remove bits,
      // so a private file never becomes readable to others, even briefly. fchmod then restores the
      // exact mode. New files get the default mode (0666 minus the umask).
      const fd = fs.openSync(tempPath, 'wx', oldMode ?? 0o666);
      let sink: fs.WriteStream;
      try {
        if (oldMode !== undefined) fs.fchmodSync(fd, oldMode);
        // The stream owns the descriptor from here: it closes it when done or destroyed, after any
        // write in flight (closing it ourselves could race with such a write). With `durable`,
        // flush fsyncs before the close, so the content is on disk before the rename makes it
        // visible even across a power cut; without it the rename is still atomic for every reader
        // and for a killed process (ext4 and others also flush on rename-over-replace).
        sink = fs.createWriteStream(tempPath, { fd, flush: this.durable });
      } catch (error) {
        fs.closeSync(fd);
        throw error;
      }
      sinkClosed = new Promise((resolve) => sink.once('close', () => resolve()));
      let sinkError: unknown;
      sink.on('error', (error) => {
        sinkError = error;
      });
      let bytes = 0;
      try {
        await pipeline(
          data,
          async function* count(source: AsyncIterable<Buffer | string>) {
            for await (const chunk of source) {
              bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
              onBytes?.(bytes);
              yield chunk;
            }
          },
          sink,
          signal === undefined ? {} : { signal },
        );
        await sinkClosed; // fsync-ed and closed
      } catch (error) {
        passThrough = error !== sinkError;
        throw error;
      }
      if (sinkError !== undefined) throw sinkError; // e.g. the fsync on close failed
      if (mtimeMs !== undefined) {
        // +0.5 ms: a float number of seconds such as 1700000000.123 is stored by utimes as
        // ...122999 µs, which would read back one millisecond early; the half millisecond makes
        // Math.floor(stat.mtimeMs) come back exactly as mtimeMs.
        fs.utimesSync(tempPath, Date.now() / 1000, (mtimeMs + 0.5) / 1000);
      }
      fs.renameSync(tempPath, absPath);
    } catch (error) {
      // Wait for the stream to close its descriptor (it will: it was destroyed or finished).
      if (sinkClosed !== undefined) await sinkClosed;
      try {
        fs.unlinkSync(tempPath);
      } catch {
        // never created, or already gone
      }
      if (!data.destroyed) data.destroy();
      if (passThrough || isAbortError(error)) throw error;
      throw toStorageError('write', path, error);
    }
    const st = this.lstat('write', path, absPath);
    const entry = st === undefined ? undefined : toEntry(path, st);
    if (entry === undefined) throw fail('write', path, 'the file vanished right after it was written');
    return entry;
  }

  /** The atomic write of an in-memory buffer: the same steps as a stream write, done synchronously. */
  private writeBuffer(path: string, data: Buffer, options: WriteOptions): Entry {
    const { mtimeMs, onBytes, signal } = options;
    const absPath = this.checked(path);
    if (path === '') throw fail('write', path, 'it is the root folder');
    signal?.throwIfAborted();
    let tempPath: string | undefined;
    let written: fs.Stats;
    try {
      const oldMode = this.replacedMode(path, absPath, options.ifAbsent === true);
      const parentAbs = nodePath.dirname(absPath);
      this.ensureFolder(path, parentAbs);
      tempPath = nodePath.join(parentAbs, tempName());
      const fd = fs.openSync(tempPath, 'wx', oldMode ?? 0o666);
      try {
        if (oldMode !== undefined) fs.fchmodSync(fd, oldMode);
        for (let offset = 0; offset < data.length; ) offset += fs.writeSync(fd, data, offset, data.length - offset);
        if (this.durable) fs.fsyncSync(fd);
        // Through the descriptor: no more path look-ups, and the stat describes exactly what we wrote.
        if (mtimeMs !== undefined) fs.futimesSync(fd, Date.now() / 1000, (mtimeMs + 0.5) / 1000); // +0.5: see write
        written = fs.fstatSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tempPath, absPath);
      tempPath = undefined;
      onBytes?.(data.length);
    } catch (error) {
      if (tempPath !== undefined) {
        try {
          fs.unlinkSync(tempPath);
        } catch {
          // never created
        }
      }
      throw toStorageError('write', path, error);
    }
    return toEntry(path, written)!;
  }

  /** mkdir -p of a file's folder, remembered: a sync writes many files into the same few folders. */
  private ensureFolder(path: string, parentAbs: string): void {
    const dir = parentOf(path);
    if (this.createdDirs.has(dir)) return;
    try {
      makeDirs(parentAbs);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST' || code === 'ENOTDIR') throw fail('write', path, 'a parent is a file, not a folder');
      throw error;
    }
    this.createdDirs.add(dir);
  }


  async deleteFile(path: string): Promise<void> {
    const absPath = this.checked(path);
    if (path === '') throw fail('delete', path, 'it is the root folder');
    const st = this.lstat('delete', path, absPath);
    if (st === undefined) return;
    if (st.isDirectory()) throw fail('delete', path, 'it is a folder, not a file');
    try {
      fs.unlinkSync(absPath);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw toStorageError('delete', path, error);
    }
  }

  async mkdir(path: string): Promise<void> {
    assertSafeRelativePath(path);
    this.assertInsideRoot(path, path);
    try {
      makeDirs(this.abs(path));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST' || code === 'ENOTDIR') throw fail('create folder', path, 'a file is in the way');
      throw toStorageError('create folder', path, error);
    }
  }

  /** Removes an empty folder. The root itself is never removed (a no-op). */
  async rmdirIfEmpty(path: string): Promise<void> {
    const absPath = this.checked(path);
    if (path === '') return;
    this.forgetVerified(path);
    try {
      fs.rmdirSync(absPath);
    } catch (error) {
      const code = errorCode(error);
      if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return;
      throw toStorageError('remove folder', path, error);
    }
  }

  /**
   * Moves a file or folder; refuses to overwrite. Files are moved with link() + unlink(): link fails
   * with EEXIST if the target appeared, so no existing file is ever replaced. Folders (and file systems
   * without hard links) use rename() after checking that the target is free; a target created by
   * someone else in the short window between that check and the rename could be replaced (an empty
   * folder) - POSIX rename has no no-replace flag reachable from Node.
   */
  async rename(from: string, to: string): Promise<void> {
    const fromAbs = this.checked(from);
    const toAbs = this.checked(to);
    const label = [from, to] as const;
    if (from === '' || to === '') throw fail('move', label, 'the root folder cannot be moved');
    const source = this.lstat('move', from, fromAbs);
    if (source === undefined) throw fail('move', label, `no such file or folder: ${JSON.stringify(from)}`);
    const target = this.lstat('move', to, toAbs);
    // A case-only rename on a case-insensitive file system finds the source itself at the target.
    const sameFile = target !== undefined && target.ino === source.ino && target.dev === source.dev && from.toLowerCase() === to.toLowerCase();
    if (target !== undefined && !sameFile) throw fail('move', label, `the target ${JSON.stringify(to)} already exists`);
    if (from === to) return;
    if (to.startsWith(`${from}/`)) throw fail('move', label, 'a folder cannot be moved into itself');
    this.ensureParent('move', to);
    try {
      if (source.isDirectory() || sameFile) {
        this.forgetVerified(from);
        fs.renameSync(fromAbs, toAbs);
        return;
      }
      try {
        fs.linkSync(fromAbs, toAbs);
      } catch (error) {
        const code = errorCode(error);
        if (code === 'EEXIST') throw fail('move', label, `the target ${JSON.stringify(to)} already exists`);
        if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK' || code === 'ENOSYS') {
          // No hard links here: check again and rename (the check-then-rename window applies).
          if (this.lstat('move', to, toAbs) !== undefined) throw fail('move', label, `the target ${JSON.stringify(to)} already exists`);
          fs.renameSync(fromAbs, toAbs);
          return;
        }
        throw error;
      }
      try {
        fs.unlinkSync(fromAbs);
      } catch (error) {
        // Roll back so we do not leave two names for one file.
        try {
          fs.unlinkSync(toAbs);
        } catch {
          // best effort
        }
        throw error;
      }
    } catch (error) {
      throw toStorageError('move', label, error);
    }
  }

  /**
   * A second copy of a file inside the root without transferring it: a hard link, or a plain copy
   * (keeping the modification time) where links are not possible. Never overwrites. Safe because
   * write() always replaces a file by rename, so the engine never changes one name through the other.
   */
  /** An independent copy (a reflink where the file system has them): editing one never changes the other. */
  async copyWithin(from: string, to: string): Promise<void> {
    return this.duplicate(from, to, false);
  }

  /** A second name for the same content; the trash uses it for a file that is about to be replaced by rename. */
  async hardLink(from: string, to: string): Promise<void> {
    return this.duplicate(from, to, true);
  }

  private duplicate(from: string, to: string, link: boolean): void {
    const fromAbs = this.checked(from);
    const toAbs = this.checked(to);
    const label = [from, to] as const;
    const source = this.lstat('copy', from, fromAbs);
    if (source === undefined) throw fail('copy', label, `no such file: ${JSON.stringify(from)}`);
    if (!source.isFile()) throw fail('copy', label, `${JSON.stringify(from)} is not a regular file`);
    if (this.lstat('copy', to, toAbs) !== undefined) throw fail('copy', label, `the target ${JSON.stringify(to)} already exists`);
    this.ensureParent('copy', to);
    try {
      if (link) {
        try {
          fs.linkSync(fromAbs, toAbs);
          return;
        } catch (error) {
          const code = errorCode(error);
          if (code === 'EEXIST') throw fail('copy', label, `the target ${JSON.stringify(to)} already exists`);
          if (!(code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK' || code === 'ENOSYS')) throw error;
        }
      }
      fs.copyFileSync(fromAbs, toAbs, fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
      // Same modification time as the source to the millisecond listDir reports (see write).
      fs.utimesSync(toAbs, source.atimeMs / 1000, (Math.floor(source.mtimeMs) + 0.5) / 1000);
    } catch (error) {
      throw toStorageError('copy', label, error);
    }
  }


  async close(): Promise<void> {
    // Nothing to release.
  }

  private ensureParent(operation: string, path: string): void {
    const parent = parentOf(path);
    if (parent === '') return;
    try {
      makeDirs(this.abs(parent));
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST' || code === 'ENOTDIR') throw fail(operation, path, 'a parent is a file, not a folder');
      throw toStorageError(operation, path, error);
    }
  }
}
