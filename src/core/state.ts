// The state of a pair: the base (written atomically), a journal of what finished since the base was
// last written (so a killed run resumes without redoing work), a lock (one sync per pair), and the
// hash caches of both sides. Lives in `<source>/.sync_state/<pair id>/` by default.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isHashAlgorithm, type HashAlgorithm } from './contentHash';
import { BaseTable } from './baseTable';
import { LockedError, SyncError, errorMessage } from './errors';
import type { Base, BaseEntry, SideSnapshot } from './model';
import type { Side } from './options';
import { makeDirs } from './makeDirs';

/** Journal records are written when this many are pending, or this long after the first of them. */
const JOURNAL_BATCH = 256;
const JOURNAL_FLUSH_MS = 100;
/** A base row takes about this many bytes (path, two snapshots, hashes). */
const BASE_BYTES_PER_ENTRY = 100;

/** The pair id: stable for the same two roots, whatever order of options. */
export function pairId(sourceId: string, destinationId: string): string {
  return createHash('sha256').update(`${sourceId}\u0000${destinationId}`).digest('hex').slice(0, 16);
}

type PackedSnapshot = [size: number, mtimeMs: number, hash: string | null, ino: number | null];
type PackedEntry = [...source: PackedSnapshot, ...destination: PackedSnapshot];
/** A base row on disk: the path, then both snapshots; a destination hash equal to the source's is stored as 0. */
type BaseRow = [path: string, ...entry: PackedEntry];

function pack(s: SideSnapshot): PackedSnapshot {
  return [s.size, s.mtimeMs, s.hash ?? null, s.ino ?? null];
}

function unpack(size: number, mtimeMs: number, hash: string | null, ino: number | null): SideSnapshot {
  const s: SideSnapshot = { size, mtimeMs };
  if (hash !== null) s.hash = hash;
  if (ino !== null) s.ino = ino;
  return s;
}

function packEntry(e: BaseEntry): PackedEntry {
  return [...pack(e.source), ...pack(e.destination)];
}

function unpackEntry(p: PackedEntry): BaseEntry {
  return { source: unpack(p[0], p[1], p[2], p[3]), destination: unpack(p[4], p[5], p[6], p[7]) };
}

export class StateCorruptError extends SyncError {
  constructor(file: string, cause: unknown) {
    super(`The sync state in ${file} cannot be read (${errorMessage(cause)}). Run "syncengine clear" on this pair to start over with a full comparison.`, { cause });
  }
}

export class StateFolderError extends SyncError {
  constructor(dir: string, cause: unknown) {
    super(`Cannot create the sync state folder ${dir} (${errorMessage(cause)}). Nothing was changed; give a folder that can be written.`, { cause });
  }
}

/**
 * Write a file so that a process killed at any instant leaves either the old or the new content.
 * No fsync: on ext4 (data=ordered) an fsync commits the journal and with it every file written
 * since, so it made a sync wait for the disk to take all the data just copied (276 ms after a
 * 512 MiB upload to a server on the same disk), which rclone and rsync do not do either. What a
 * power cut could still cost is this state, never files: without a base the next run compares
 * both sides in full, keeps equal files, and settles differing ones as conflicts (losers in the
 * trash). ext4 also flushes a file renamed over another before the rename commits.
 */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  const temp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(temp, data);
  fs.renameSync(temp, file);
}

export interface HashCacheEntry {
  size: number;
  mtimeMs: number;
  ino?: number;
  hash: string;
}

interface HashCacheFile {
  algorithm: string;
  /** path → size, mtime, inode, hash */
  entries: Record<string, [number, number, number | null, string]>;
}

export class StateStore {
  /**
   * The pair's content hash, which the base, the journal and the hash cache are written with. Set
   * by the engine from loadTable()'s answer (or for a new pair) before anything is written.
   */
  hashAlgorithm: HashAlgorithm = 'md5';
  /**
   * The start (ms) of the last run that listed both sides whole and left every file recorded as
   * listed or as it wrote it (no error, conflict, skipped file or cancel): a file changed after its
   * record was changed after this time. Kept in the base's header; loadTable reads it (undefined
   * for a base without one), and a commit writes what is set here. Never set later than the truth:
   * an older time only makes listings that rely on it (FTP's LIST dates) ask more often.
   */
  listedAt: number | undefined;
  private journalFd: number | undefined;
  private journalPending: string[] = [];
  private journalTimer: NodeJS.Timeout | undefined;
  private locked = false;
  /** Whether the base on disk lags behind: a journal was found or written since the last commit. */
  private dirty = false;

  constructor(
    readonly dir: string,
    private readonly pairInfo: { source: string; destination: string },
  ) {}

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  /** The base (binary, see BaseTable). */
  get basePath(): string {
    return this.file('base.bin');
  }

  /** Where bases were kept before version 3: read once, replaced by base.bin at the next commit. */
  private get legacyBasePath(): string {
    return this.file('base.json');
  }

  /** Whether this pair was synced before (a base or the journal of an interrupted first run). */
  static hasState(dir: string): boolean {
    return ['base.bin', 'base.json', 'journal.log'].some((name) => fs.existsSync(path.join(dir, name)));
  }

  /** Create a pair's state folder (and those above it), or say clearly why it cannot be. */
  static makeFolder(dir: string): void {
    try {
      makeDirs(dir);
    } catch (error) {
      throw new StateFolderError(dir, error);
    }
  }

  /** Take the pair's lock; a lock left by a dead process on this machine is taken over. */
  lock(): void {
    StateStore.makeFolder(this.dir);
    const lockFile = this.file('lock');
    const info = JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(lockFile, info, { flag: 'wx' });
        this.locked = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readLock(lockFile);
      if (holder && holder.host === os.hostname() && !processAlive(holder.pid)) {
        fs.rmSync(lockFile, { force: true });
        continue;
      }
      const who = holder ? `process ${holder.pid} on ${holder.host}, since ${holder.startedAt}` : 'another process';
      throw new LockedError(`Another sync of this pair is running (${who}). Wait for it to finish, or remove ${lockFile} if it is not running.`);
    }
    throw new LockedError(`Could not take the lock ${lockFile}`);
  }

  unlock(): void {
    this.closeJournal();
    if (this.locked) fs.rmSync(this.file('lock'), { force: true });
    this.locked = false;
  }

  /** About how many files the base holds, from its size on disk (cheap: it is not read). */
  estimatedBaseEntries(): number | undefined {
    const size = fs.statSync(this.basePath, { throwIfNoEntry: false })?.size ?? fs.statSync(this.legacyBasePath, { throwIfNoEntry: false })?.size;
    return size === undefined ? undefined : Math.round(size / BASE_BYTES_PER_ENTRY);
  }

  /**
   * The base as a table (cheap to load: no object per row), with the journal of an interrupted run
   * applied. `firstSync` when there is none.
   */
  loadTable(): { table: BaseTable; firstSync: boolean; hashAlgorithm?: HashAlgorithm } {
    let table: BaseTable | undefined;
    let legacy: Base | undefined;
    let hashAlgorithm: string | undefined;
    const basePath = this.basePath;
    this.listedAt = undefined;
    if (fs.existsSync(basePath)) {
      try {
        ({ table, header: { hashAlgorithm, listedAt: this.listedAt } } = BaseTable.decode(fs.readFileSync(basePath)));
      } catch (error) {
        throw new StateCorruptError(basePath, error);
      }
      if (!isHashAlgorithm(hashAlgorithm)) throw new StateCorruptError(basePath, new Error(`it was written with the content hash "${String(hashAlgorithm)}", which this version does not know`));
    } else {
      legacy = this.loadLegacyBase();
      // Written in the current format at the next commit.
      if (legacy) {
        this.dirty = true;
        hashAlgorithm = 'md5';
      }
    }
    const journalPath = this.file('journal.log');
    const known = () => (isHashAlgorithm(hashAlgorithm) ? { hashAlgorithm } : {});
    if (!fs.existsSync(journalPath)) return { table: table ?? (legacy ? BaseTable.fromMap(legacy) : BaseTable.empty()), firstSync: !table && !legacy, ...known() };
    this.dirty = true;
    const base = legacy ?? table?.toMap() ?? new Map<string, BaseEntry>();
    const lines = fs.readFileSync(journalPath, 'utf8').split('\n');
    for (const line of lines) {
      if (!line) continue;
      let record: [string, string, PackedEntry?];
      try {
        record = JSON.parse(line) as [string, string, PackedEntry?];
      } catch {
        continue; // a line cut short by a kill: the work it described is re-examined next run
      }
      const [op, p, packed] = record;
      if (op === 'set' && packed) base.set(p, unpackEntry(packed));
      else if (op === 'del') base.delete(p);
      // The journal of a first run that was interrupted says which hash its records use.
      else if (op === 'hash' && !table && !legacy) hashAlgorithm = p;
    }
    // Journals from before the algorithm was recorded hold MD5s.
    hashAlgorithm ??= 'md5';
    if (!isHashAlgorithm(hashAlgorithm)) throw new StateCorruptError(journalPath, new Error(`it was written with the content hash "${hashAlgorithm}", which this version does not know`));
    return { table: BaseTable.fromMap(base), firstSync: false, hashAlgorithm };
  }

  /** A base written by version 2 (JSON rows), or undefined when there is none. */
  private loadLegacyBase(): Base | undefined {
    const file = this.legacyBasePath;
    if (!fs.existsSync(file)) return undefined;
    const base: Base = new Map();
    try {
      const data = JSON.parse(fs.readFileSync(file, 'utf8')) as { version: number; rows: BaseRow[] };
      if (data.version !== 2) throw new Error(`unknown state version ${data.version}`);
      for (const r of data.rows) {
        base.set(r[0], {
          source: unpack(r[1], r[2], r[3], r[4]),
          destination: unpack(r[5], r[6], (r[7] as string | null | 0) === 0 ? r[3] : r[7], r[8]),
        });
      }
    } catch (error) {
      throw new StateCorruptError(file, error);
    }
    return base;
  }

  /**
   * Record one finished change. Records reach the file in batches, at most JOURNAL_FLUSH_MS after
   * they are made (one write per file cost a tenth of an initial sync of small files). A kill
   * loses at most those records: the next run finds both sides equal without a base entry and
   * records them again, as it does for a change made just before a kill.
   */
  journal(p: string, entry: BaseEntry | undefined): void {
    this.dirty = true;
    this.journalPending.push(entry ? JSON.stringify(['set', p, packEntry(entry)]) : JSON.stringify(['del', p]));
    if (this.journalPending.length >= JOURNAL_BATCH) this.flushJournal();
    else this.journalTimer ??= setTimeout(() => this.flushJournal(), JOURNAL_FLUSH_MS).unref();
  }

  /** Write the pending journal records. */
  flushJournal(): void {
    if (this.journalTimer !== undefined) clearTimeout(this.journalTimer);
    this.journalTimer = undefined;
    if (this.journalPending.length === 0) return;
    if (this.journalFd === undefined) {
      makeDirs(this.dir);
      this.journalFd = fs.openSync(this.file('journal.log'), 'a');
      // For a first run killed before its commit, where no base says it (read by loadTable).
      this.journalPending.unshift(JSON.stringify(['hash', this.hashAlgorithm]));
    }
    const text = this.journalPending.join('\n') + '\n';
    this.journalPending = [];
    fs.writeSync(this.journalFd, text);
  }

  private closeJournal(): void {
    this.flushJournal();
    if (this.journalFd !== undefined) fs.closeSync(this.journalFd);
    this.journalFd = undefined;
  }

  /** Whether the base on disk lags behind what this run knows (a journal, or an old format). */
  get needsCommit(): boolean {
    return this.dirty || !fs.existsSync(this.basePath);
  }

  /** Write the whole base atomically and drop the journal it now contains (when anything changed). */
  commit(base: Base | BaseTable): void {
    if (!this.needsCommit) return;
    makeDirs(this.dir);
    const table = base instanceof BaseTable ? base : BaseTable.fromMap(base);
    const listedAt = this.listedAt !== undefined ? { listedAt: this.listedAt } : {};
    writeFileAtomic(this.basePath, table.encode({ hashAlgorithm: this.hashAlgorithm, pair: this.pairInfo, savedAt: new Date().toISOString(), ...listedAt }));
    this.journalPending = []; // the base just written holds them
    this.closeJournal();
    fs.rmSync(this.file('journal.log'), { force: true });
    fs.rmSync(this.legacyBasePath, { force: true });
    this.dirty = false;
  }

  /** Hashes of files the base does not describe, in the pair's algorithm (another one's are dropped). */
  loadHashCache(side: Side): Map<string, HashCacheEntry> {
    const cache = new Map<string, HashCacheEntry>();
    try {
      const stored = JSON.parse(fs.readFileSync(this.file(`hashes-${side}.json`), 'utf8')) as HashCacheFile | HashCacheFile['entries'];
      // The first format was the bare entries, of MD5s.
      const { algorithm, entries } = typeof stored.algorithm === 'string' ? (stored as HashCacheFile) : { algorithm: 'md5', entries: stored as HashCacheFile['entries'] };
      if (algorithm !== this.hashAlgorithm) return cache;
      for (const [p, [size, mtimeMs, ino, hash]] of Object.entries(entries)) {
        const e: HashCacheEntry = { size, mtimeMs, hash };
        if (ino !== null) e.ino = ino;
        cache.set(p, e);
      }
    } catch {
      // A missing or damaged cache only costs re-hashing.
    }
    return cache;
  }

  saveHashCache(side: Side, cache: Map<string, HashCacheEntry>): void {
    const file = this.file(`hashes-${side}.json`);
    if (cache.size === 0) {
      fs.rmSync(file, { force: true });
      return;
    }
    const data: HashCacheFile = { algorithm: this.hashAlgorithm, entries: {} };
    for (const [p, e] of cache) data.entries[p] = [e.size, e.mtimeMs, e.ino ?? null, e.hash];
    makeDirs(this.dir);
    writeFileAtomic(file, JSON.stringify(data));
  }

  /** The source's `.syncignore` files as of the last run (folder → content), if known. */
  loadIgnoreFiles(): Record<string, string> | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file('ignore-files.json'), 'utf8')) as Record<string, string>;
    } catch {
      return undefined;
    }
  }

  saveIgnoreFiles(files: Record<string, string>): void {
    makeDirs(this.dir);
    writeFileAtomic(this.file('ignore-files.json'), JSON.stringify(files));
  }

  /** Forget everything about this pair: the next run is a first sync with a full comparison. */
  clear(): void {
    if (!fs.existsSync(this.dir)) return;
    this.lock();
    try {
      for (const name of fs.readdirSync(this.dir)) if (name !== 'lock') fs.rmSync(this.file(name), { force: true, recursive: true });
    } finally {
      this.unlock();
    }
    fs.rmSync(this.dir, { force: true, recursive: true });
  }
}

function readLock(file: string): { pid: number; host: string; startedAt: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { pid: number; host: string; startedAt: string };
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
