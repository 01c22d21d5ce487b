// Joining the two scanned sides with the stored base before planning. Most paths of a re-sync are
// settled: on both sides, with the size, mtime and inode the base recorded and a known hash. Such a
// path needs no hash, no decision and no action in any mode, so it is counted and left out of the
// trees and the base the planner sees. Both listings and the base are in path order, so this is
// one merge of three sorted lists; objects are made only for the paths that are not settled (local
// listings come as columns and have none to begin with).
import type { Entry, FileColumns } from '../backends/types';
import type { BaseTable } from './baseTable';
import { entryAt } from './fileColumns';
import type { Base, BaseEntry, SideSnapshot, Tree } from './model';
import type { Side } from './options';
import { comparePaths } from './paths';
import type { ScanResult } from './scanner';

export interface JoinedScan {
  /** The files to plan: every listed file that is not settled. */
  trees: Record<Side, Tree>;
  /** The base rows of those paths (and of paths gone from a side). */
  planBase: Base;
  /** Paths left out of both because nothing can happen to them. */
  settled: number;
  /**
   * Settled paths whose base row is out of date in a way that cannot matter (see `hashDecides`),
   * with the row as it should be stored now.
   */
  refreshed: Map<string, BaseEntry>;
}

/** One side's files in path order. */
interface SortedFiles {
  readonly length: number;
  path(i: number): string;
  size(i: number): number;
  mtimeMs(i: number): number;
  /** -1: none */
  ino(i: number): number;
  /** A hash the listing itself reported (S3 ETags), if any. */
  hash(i: number): string | undefined;
  entry(i: number): Entry;
}

function fromColumns(columns: FileColumns): SortedFiles {
  return {
    length: columns.paths.length,
    path: (i) => columns.paths[i]!,
    size: (i) => columns.sizes[i]!,
    mtimeMs: (i) => columns.mtimes[i]!,
    ino: (i) => columns.inos[i]!,
    hash: () => undefined,
    entry: (i) => entryAt(columns, i),
  };
}

function fromEntries(files: Iterable<Entry>): SortedFiles {
  const sorted = [...files].sort((a, b) => comparePaths(a.path, b.path));
  return {
    length: sorted.length,
    path: (i) => sorted[i]!.path,
    size: (i) => sorted[i]!.size,
    mtimeMs: (i) => sorted[i]!.mtimeMs,
    ino: (i) => sorted[i]!.ino ?? -1,
    hash: (i) => sorted[i]!.hash,
    entry: (i) => sorted[i]!,
  };
}

/**
 * Whether one side's file is what the base recorded, with a hash known from the base: 'exact' (size,
 * mtime and inode as recorded), 'retimed' (only the mtime differs, and the listing itself reports the
 * recorded hash: the same bytes, as S3 ETags tell), or false.
 */
function settledSide(table: BaseTable, row: number, side: Side, files: SortedFiles, i: number, hashDecides: boolean): 'exact' | 'retimed' | false {
  if (table.fileSize(row, side) !== files.size(i) || !table.hasHash(row, side)) return false;
  const ino = files.ino(i);
  if (ino >= 0 && table.ino(row, side) !== ino) return false;
  const hash = files.hash(i);
  if (hash !== undefined && hash !== table.hash(row, side)) return false;
  if (table.mtimeMs(row, side) === files.mtimeMs(i)) return 'exact';
  return hashDecides && hash !== undefined ? 'retimed' : false;
}

function listedSnapshot(files: SortedFiles, i: number, hash: string | undefined): SideSnapshot {
  const ino = files.ino(i);
  return { size: files.size(i), mtimeMs: files.mtimeMs(i), ...(hash !== undefined ? { hash } : {}), ...(ino >= 0 ? { ino } : {}) };
}

/**
 * Both sides' scans joined with the base. `inScope` restricts the base to the paths a scoped run
 * looks at (its scans hold only those already). `hashDecides`: the comparison mode does not find
 * changes by mtime, so a file whose listed hash is the recorded one is settled whatever its mtime,
 * and its row is refreshed (what the planner would do with a 'record', without planning the path).
 */
export function joinWithBase(source: ScanResult, destination: ScanResult, table: BaseTable, inScope?: (path: string) => boolean, hashDecides = false): JoinedScan {
  const sides = {
    source: source.columns ? fromColumns(source.columns) : fromEntries(source.tree.files.values()),
    destination: destination.columns ? fromColumns(destination.columns) : fromEntries(destination.tree.files.values()),
  };
  const trees: Record<Side, Tree> = {
    source: { files: new Map(), dirs: source.tree.dirs },
    destination: { files: new Map(), dirs: destination.tree.dirs },
  };
  const planBase: Base = new Map();
  const sf = sides.source;
  const df = sides.destination;
  const tp = table.paths;
  const refreshed = new Map<string, BaseEntry>();
  let settled = 0;
  let t = 0;
  let s = 0;
  let d = 0;
  for (;;) {
    while (t < tp.length && inScope && !inScope(tp[t]!)) t++;
    const pt = t < tp.length ? tp[t] : undefined;
    const ps = s < sf.length ? sf.path(s) : undefined;
    const pd = d < df.length ? df.path(d) : undefined;
    if (pt === undefined && ps === undefined && pd === undefined) break;
    let p = (pt ?? ps ?? pd)!;
    if (ps !== undefined && ps < p) p = ps;
    if (pd !== undefined && pd < p) p = pd;
    const inT = pt === p;
    const inS = ps === p;
    const inD = pd === p;
    const sourceSettled = inT && inS && inD && settledSide(table, t, 'source', sf, s, hashDecides);
    const destinationSettled = sourceSettled && settledSide(table, t, 'destination', df, d, hashDecides);
    if (sourceSettled && destinationSettled) {
      settled++;
      if (sourceSettled === 'retimed' || destinationSettled === 'retimed') {
        // The row a 'record' would store: both sides as listed, with their known hashes.
        const row = table.entry(t);
        refreshed.set(p, { source: listedSnapshot(sf, s, row.source.hash), destination: listedSnapshot(df, d, row.destination.hash) });
      }
    } else {
      if (inS) trees.source.files.set(p, sf.entry(s));
      if (inD) trees.destination.files.set(p, df.entry(d));
      if (inT) planBase.set(p, table.entry(t));
    }
    if (inT) t++;
    if (inS) s++;
    if (inD) d++;
  }
  return { trees, planBase, settled, refreshed };
}
