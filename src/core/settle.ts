// Joining the two scanned sides with the stored base before planning. Most paths of a re-sync are
// settled: on both sides, with the size, mtime and inode the base recorded and a known hash. Such a
// path needs no hash, no decision and no action in any mode, so it is counted and left out of the
// trees and the base the planner sees. When both sides came as sorted columns, this is one merge
// of three sorted lists, and objects are made only for the paths that are not settled.
import type { FileColumns } from '../backends/types';
import type { BaseTable } from './baseTable';
import { entryAt } from './fileColumns';
import type { Base, Tree } from './model';
import type { Side } from './options';
import type { ScanResult } from './scanner';

export interface JoinedScan {
  /** The files to plan: every listed file that is not settled. */
  trees: Record<Side, Tree>;
  /** The base rows of those paths (and of paths gone from a side). */
  planBase: Base;
  /** Paths left out of both because nothing can happen to them. */
  settled: number;
}

/** Whether one side's file is exactly what the base recorded, with a hash known from the base. */
function settledSide(table: BaseTable, row: number, side: Side, columns: FileColumns, i: number): boolean {
  if (table.fileSize(row, side) !== columns.sizes[i] || table.mtimeMs(row, side) !== columns.mtimes[i] || !table.hasHash(row, side)) return false;
  const ino = columns.inos[i]!;
  return ino < 0 || table.ino(row, side) === ino;
}

/**
 * Both sides' scans joined with the base. Without columns on both sides (remote stores, scoped
 * runs) every file is planned: `planBase` is then `wholeBase()` restricted to `inScope`.
 */
export function joinWithBase(source: ScanResult, destination: ScanResult, table: BaseTable, wholeBase: () => Base, inScope?: (path: string) => boolean): JoinedScan {
  const trees: Record<Side, Tree> = { source: source.tree, destination: destination.tree };
  if (!source.columns || !destination.columns || inScope) {
    for (const [side, result] of [['source', source], ['destination', destination]] as const) {
      if (!result.columns) continue;
      for (let i = 0; i < result.columns.paths.length; i++) trees[side].files.set(result.columns.paths[i]!, entryAt(result.columns, i));
    }
    let planBase = wholeBase();
    if (inScope) planBase = new Map([...planBase].filter(([p]) => inScope(p)));
    return { trees, planBase, settled: 0 };
  }
  const sc = source.columns;
  const dc = destination.columns;
  const planBase: Base = new Map();
  const tp = table.paths;
  const [nt, ns, nd] = [tp.length, sc.paths.length, dc.paths.length];
  let settled = 0;
  let t = 0;
  let s = 0;
  let d = 0;
  while (t < nt || s < ns || d < nd) {
    const pt = t < nt ? tp[t] : undefined;
    const ps = s < ns ? sc.paths[s] : undefined;
    const pd = d < nd ? dc.paths[d] : undefined;
    let p = pt ?? ps ?? pd!;
    if (ps !== undefined && ps < p) p = ps;
    if (pd !== undefined && pd < p) p = pd;
    const inT = pt === p;
    const inS = ps === p;
    const inD = pd === p;
    if (inT && inS && inD && settledSide(table, t, 'source', sc, s) && settledSide(table, t, 'destination', dc, d)) {
      settled++;
    } else {
      if (inS) trees.source.files.set(p, entryAt(sc, s));
      if (inD) trees.destination.files.set(p, entryAt(dc, d));
      if (inT) planBase.set(p, table.entry(t));
    }
    if (inT) t++;
    if (inS) s++;
    if (inD) d++;
  }
  return { trees, planBase, settled };
}
