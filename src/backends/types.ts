// The storage protocol: a small required interface plus optional capabilities that the engine
// discovers at run time (the way rclone backends declare features).
import type { Readable } from 'node:stream';
import type { HashAlgorithm } from '../core/contentHash';

/** One file or folder as a store lists it. Paths are relative to the store's root, '/'-separated. */
export interface Entry {
  path: string;
  kind: 'file' | 'dir';
  /** Bytes; 0 for folders. */
  size: number;
  /** Milliseconds since the epoch, as this store reports it (never compared across stores). */
  mtimeMs: number;
  /** Identity of the file where the store has one (inode); part of the hash cache key. */
  ino?: number;
  /**
   * Lower-case hex hash of the content, in the store's `listedHashAlgorithm`, when the store has it
   * cheaply (S3: the ETag of a single-part object is its MD5).
   */
  hash?: string;
}

/** Something found while listing that is not synced, with the reason (symlink, unreadable, bad name). */
export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface ListDirResult {
  entries: Entry[];
  skipped: SkippedEntry[];
}

export interface ListDirOptions {
  removeStaleTemp?: boolean;
  /**
   * What the last sync knew of this side's files, for stores whose listings give times coarser
   * than their exact ones (FTP's LIST): where a listed file agrees with it, the exact time it
   * recorded may stand in for asking the store again. Settles once the state is read.
   */
  known?: Promise<KnownFiles | undefined>;
}

/** This side's files as the last sync left them. */
export interface KnownFiles {
  /**
   * The start of the last sync that listed the whole side and left every file of it recorded
   * (ms, this machine's clock): a file changed after its record was changed after this time.
   */
  listedAt: number;
  /** Size and modification time recorded for a file; undefined if none. */
  get(path: string): { size: number; mtimeMs: number } | undefined;
}

export interface TreeListingOptions {
  /** Root-level patterns (config, --ignore-file), lowest precedence. */
  patterns: readonly string[];
  /**
   * 'collect': read the `.syncignore` files of this tree as the walk finds them and apply them.
   * Otherwise: apply these ignore files (folder → content), taken from the other side.
   */
  ignoreFiles: 'collect' | Readonly<Record<string, string>>;
  /** Remove temporary files that killed transfers left behind (not during a dry run). */
  removeStaleTemp?: boolean;
  /** Called now and then with the number of files found so far. */
  onProgress?: (files: number) => void;
  /** About how many files the tree held last time, if known: stores may pick a strategy by it. */
  expectedFiles?: number;
}

export interface TreeListing {
  files: Entry[];
  dirs: string[];
  skipped: SkippedEntry[];
  /** The `.syncignore` files applied, folder → content. */
  ignoreFiles: Record<string, string>;
}

/** A tree's files as columns, sorted by path (code-unit order): for large trees far cheaper than an Entry each. */
export interface FileColumns {
  paths: string[];
  sizes: Float64Array;
  mtimes: Float64Array;
  /** -1 where the store has no inode number. */
  inos: Float64Array;
}

export interface ColumnTreeListing extends Omit<TreeListing, 'files'> {
  columns: FileColumns;
}

export interface WriteOptions {
  /** Modification time to give the written file (when the store can keep it). */
  mtimeMs?: number;
  /** Expected size, for progress and for stores that need it up front. */
  size?: number;
  /** Called with the running byte count as data is written. */
  onBytes?: (bytesSoFar: number) => void;
  signal?: AbortSignal;
  /**
   * Create only: when a file is already at the path, write nothing and throw TargetExistsError.
   * Given only to stores whose canWriteIfAbsent() said yes; the store checks, as part of the write.
   */
  ifAbsent?: boolean;
  /**
   * The engine tells this file's versions apart by size, hash and identity (its comparison mode does
   * not look at modification times), so the returned entry's mtimeMs may be an estimate. A store that
   * needs another request to learn the exact time its listings will show may skip it, but only when
   * its listings report this file's hash (hash-then-mtime compares times when a hash is missing);
   * the next run then sees the same hash and corrects the record.
   */
  mtimeEstimateOk?: boolean;
  /**
   * The hash of `data` when it is a buffer and the caller has computed it already: a store that
   * sends a digest along with the data (S3's Content-MD5) need not hash the bytes again.
   */
  hash?: { algorithm: HashAlgorithm; value: string };
}

export interface Backend {
  /** A human-readable name for messages: "local folder /home/me/site", "sftp://me@host/var/www". */
  readonly displayName: string;
  /** A stable identifier of the root, used to key the sync state of a pair. */
  readonly id: string;

  /**
   * Direct children of a folder ('' is the root). Symlinks and unreadable entries come back as skipped.
   * With removeStaleTemp, temporary files that killed transfers left behind may be removed (where the
   * store can tell them apart from a transfer in progress).
   */
  listDir(dir: string, options?: ListDirOptions): Promise<ListDirResult>;
  /**
   * listDir for several folders, results in the same order; fails as listDir would for any of them.
   * Optional: for stores that list a batch of folders faster together than one by one (FTP).
   */
  listDirs?(dirs: readonly string[], options?: ListDirOptions): Promise<ListDirResult[]>;
  /**
   * The whole tree at once, ignore rules applied as it is walked (ignored folders are not entered).
   * Optional: stores that list a tree faster in one go than folder by folder provide it.
   */
  listTree?(options: TreeListingOptions): Promise<TreeListing>;
  /**
   * listTree with the files as sorted columns, which the engine compares with the stored base
   * without making an object per file. Optional: for stores that list large trees fast (local folders).
   */
  listTreeColumns?(options: TreeListingOptions): Promise<ColumnTreeListing>;
  /** The entry at a path, or undefined if nothing is there. */
  stat(path: string): Promise<Entry | undefined>;
  /**
   * The file at a path, or undefined when there is no file there (a folder counts as none).
   * Optional: for stores where telling a folder apart costs a request of its own (S3 "folders" are
   * key prefixes); the engine's checks before a transfer use it, where only files matter.
   */
  statFile?(path: string): Promise<Entry | undefined>;
  /** The content of a file as a stream. */
  read(path: string, signal?: AbortSignal): Promise<Readable>;
  /** The whole content of a (small) file at once; the engine uses it where it beats a stream. */
  readFile?(path: string, signal?: AbortSignal): Promise<Buffer>;
  /**
   * readFile with the entry of the file as it was opened and as it was once read (the same file,
   * even if the path was replaced meanwhile); `data` is undefined, nothing read, when the opened
   * file is larger than `maxBytes`. Optional: for stores where this costs less than stat, readFile
   * and stat (local folders); the engine checks a small source file with it.
   */
  readFileAndStat?(path: string, maxBytes: number, signal?: AbortSignal): Promise<{ data: Buffer | undefined; opened: Entry; after: Entry }>;
  /**
   * Replace (or create) a file atomically from a stream or a buffer (small files): a reader sees the old content or the new, never a part;
   * a failed write leaves the old content. Parent folders are created. Returns the entry as stored.
   */
  write(path: string, data: Readable | Buffer, options?: WriteOptions): Promise<Entry>;
  /** Delete a file. Deleting a path that does not exist is not an error. */
  deleteFile(path: string): Promise<void>;
  /** Create a folder and its parents; an existing folder is not an error. */
  mkdir(path: string): Promise<void>;
  /** Remove an empty folder; a folder that is not empty or missing is left alone and not an error. */
  rmdirIfEmpty(path: string): Promise<void>;
  /**
   * Move a file or folder within the store, creating the target's parent folders. Must refuse
   * (throw) rather than overwrite an existing target. Optional: without it the engine copies and deletes.
   */
  rename?(from: string, to: string): Promise<void>;
  /**
   * Make an independent copy of a file inside the store without transferring it (server-side copy,
   * reflink). Creates the target's parent folders; refuses to overwrite an existing target.
   */
  copyWithin?(from: string, to: string): Promise<void>;
  /**
   * A second name for the same content (hard link). Used only for trash copies of a file that is
   * about to be replaced by an atomic rename, where sharing the content is free and safe.
   */
  hardLink?(from: string, to: string): Promise<void>;
  /**
   * The algorithm of the hashes that listings and writes carry. A pair that includes such a store
   * hashes with it, so those hashes count (see core/contentHash.ts). Undefined: entries carry none.
   */
  readonly listedHashAlgorithm?: HashAlgorithm;
  /**
   * The hash of a file computed by the store (remote md5sum/sha256sum, ETag); the engine hashes a
   * stream otherwise. Undefined, or refused with a StorageError, for an algorithm it cannot compute.
   */
  hash?(path: string, algorithm: HashAlgorithm): Promise<string>;
  /**
   * The hash of a file, read and hashed off the calling thread (local folders: a worker thread reads
   * the file itself). Optional: the engine uses it for large transfers from the store, which it
   * otherwise hashes as the bytes stream past, at the cost of a copy of each chunk on its thread.
   */
  hashOffThread?(path: string, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string>;
  /**
   * Whether write() honours `ifAbsent`. The engine then creates new files with it instead of first
   * asking whether something appeared at the path since the scan (a request per file on remote
   * stores, and a window between the question and the write). Optional; may find out on first call.
   */
  canWriteIfAbsent?(): Promise<boolean>;
  /** Release connections. */
  close(): Promise<void>;
}
