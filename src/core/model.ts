// The data the planner works on and produces: scanned trees, the base, and the plan.
import type { Entry } from '../backends/types';
import type { ConflictStrategy, PlanOptions, Side } from './options';

/** What one side held at the last sync of a path. */
export interface SideSnapshot {
  size: number;
  mtimeMs: number;
  hash?: string;
  ino?: number;
}

/** The base of one path: both sides' snapshots at the moment they were last known to be in sync. */
export interface BaseEntry {
  source: SideSnapshot;
  destination: SideSnapshot;
}

export type Base = Map<string, BaseEntry>;

/** The files of one side (folders are in `dirs`), keyed by path. */
export interface Tree {
  files: Map<string, Entry>;
  dirs: Set<string>;
}

export type ConflictReason = 'both-modified' | 'both-created' | 'type-mismatch' | 'changed-during-sync';

/** How a conflict was (or was not) settled by the strategy in force. */
export interface ConflictInfo {
  reason: ConflictReason;
  strategy: ConflictStrategy;
  /** The side whose version ends up at the path; undefined when left for the user. */
  winner?: Side;
  /** Why the strategy could not decide, when it fell back to leaving the conflict alone. */
  note?: string;
}

export type CopyReason = 'created' | 'modified' | 'restored' | 'conflict' | 'mirror' | 'initial';

interface ItemBase {
  path: string;
  /** What each side held at `path` when the plan was made (undefined: nothing). */
  source?: Entry;
  destination?: Entry;
}

/** Copy a file's content to `to` (upload when `to` is destination, download when source). */
export interface CopyItem extends ItemBase {
  action: 'copy';
  to: Side;
  reason: CopyReason;
  conflict?: ConflictInfo;
}

/** Delete a file on `side` (moved to that side's trash). */
export interface DeleteItem extends ItemBase {
  action: 'delete';
  side: Side;
  reason: 'deleted' | 'mirror';
}

/** Replay on `side` a rename that happened on the other side: `fromPath` → `path`. */
export interface RenameItem extends ItemBase {
  action: 'rename';
  side: Side;
  fromPath: string;
  /** What `side` held at `fromPath` (must still be there, unchanged). */
  fromEntry: Entry;
  /** Backup modes keep the old name too: the file is duplicated instead of moved. */
  keepOld: boolean;
}

/** A folder moved as a whole on the other side: one rename replaces the renames of its files. */
export interface RenameDirItem {
  action: 'rename-dir';
  side: Side;
  fromPath: string;
  path: string;
  /** The files moved, with the entries each side held (old path on `side`, new path on the other). */
  files: { fromPath: string; path: string; fromEntry: Entry; newEntry: Entry }[];
}

/** Both sides already agree: only the base changes. */
export interface RecordItem extends ItemBase {
  action: 'record';
  source: Entry;
  destination: Entry;
}

/** Gone on both sides (or no longer tracked): drop from the base. */
export interface ForgetItem {
  action: 'forget';
  path: string;
}

/** Both sides changed and the strategy left it to the user (manual, or could not decide). */
export interface ConflictItem extends ItemBase {
  action: 'conflict';
  conflict: ConflictInfo;
}

/** Keep both versions: the loser is kept beside the winner under a conflict name on both sides. */
export interface KeepBothItem extends ItemBase {
  action: 'keep-both';
  source: Entry;
  destination: Entry;
  winner: Side;
  conflictPath: string;
  conflict: ConflictInfo;
}

export type PlanItem = CopyItem | DeleteItem | RenameItem | RenameDirItem | RecordItem | ForgetItem | ConflictItem | KeepBothItem;

export interface PlanCounts {
  upload: number;
  download: number;
  deleteSource: number;
  deleteDestination: number;
  renameSource: number;
  renameDestination: number;
  conflicts: number;
  conflictsResolved: number;
  record: number;
  forget: number;
  unchanged: number;
  uploadBytes: number;
  downloadBytes: number;
}

export interface Plan {
  options: PlanOptions;
  items: PlanItem[];
  counts: PlanCounts;
  firstSync: boolean;
  warnings: string[];
}

export interface PlanInput {
  source: Tree;
  destination: Tree;
  base: Base;
  options: PlanOptions;
  /** No base at all for this pair: the first-sync preference applies. */
  firstSync: boolean;
  /** Used to stamp conflict copies. */
  now: Date;
}

/** A file is "changed" on a side when its entry differs from that side's snapshot in the base. */
export function snapshotOf(entry: Entry): SideSnapshot {
  const s: SideSnapshot = { size: entry.size, mtimeMs: entry.mtimeMs };
  if (entry.hash !== undefined) s.hash = entry.hash;
  if (entry.ino !== undefined) s.ino = entry.ino;
  return s;
}

export function emptyTree(): Tree {
  return { files: new Map(), dirs: new Set() };
}
