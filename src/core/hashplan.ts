// Which files must be hashed before planning. Hashing is the expensive part of a scan, so it is
// done only where the answer can change a decision: a same-size file whose mtime moved (touched or
// modified?), a same-size pair on both sides without a base (identical or conflict?), and a new file
// that may be a vanished file renamed.
import type { Entry } from '../backends/types';
import { hashNeededVsBase } from './compare';
import type { Base, Tree } from './model';
import type { CompareMode, Side } from './options';

export interface HashRequest {
  side: Side;
  entry: Entry;
}

export function hashesNeeded(source: Tree, destination: Tree, base: Base, compare: CompareMode): HashRequest[] {
  const requests: HashRequest[] = [];
  const wanted = new Set<Entry>();
  const want = (side: Side, entry: Entry | undefined) => {
    if (!entry || entry.hash !== undefined || wanted.has(entry)) return;
    wanted.add(entry);
    requests.push({ side, entry });
  };
  const trees: Record<Side, Tree> = { source, destination };

  for (const side of ['source', 'destination'] as const) {
    const tree = trees[side];
    const other = trees[side === 'source' ? 'destination' : 'source'];
    // Sizes of files that vanished from this side since the base: rename candidates.
    const vanishedSizes = new Set<number>();
    for (const [path, entry] of base) if (!tree.files.has(path) && entry[side].hash !== undefined) vanishedSizes.add(entry[side].size);

    for (const [path, entry] of tree.files) {
      if (entry.hash !== undefined) continue;
      if (compare === 'hash-only') {
        want(side, entry);
        continue;
      }
      const snap = base.get(path)?.[side];
      if (snap) {
        if (hashNeededVsBase(snap, entry, compare)) want(side, entry);
      } else if (vanishedSizes.has(entry.size)) {
        want(side, entry);
      }
      if (compare !== 'hash-then-mtime') continue;
      // Same size on both sides and not both unchanged since the base: identical or not?
      const there = other.files.get(path);
      if (there && there.size === entry.size) {
        const b = base.get(path);
        const unchangedHere = b && b[side].size === entry.size && b[side].mtimeMs === entry.mtimeMs;
        const otherSide: Side = side === 'source' ? 'destination' : 'source';
        const unchangedThere = b && b[otherSide].size === there.size && b[otherSide].mtimeMs === there.mtimeMs;
        if (!(unchangedHere && unchangedThere)) {
          want(side, entry);
          want(otherSide, there);
        }
      }
    }
  }
  return requests;
}
