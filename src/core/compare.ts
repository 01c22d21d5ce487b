// The comparison modes: whether a side changed a file since the base (same-side comparison), and
// whether the two sides hold the same content (cross-side comparison).
import type { Entry } from '../backends/types';
import { SyncError } from './errors';
import type { SideSnapshot } from './model';
import { MTIME_TOLERANCE_MS, type CompareMode } from './options';

export class HashUnavailableError extends SyncError {
  constructor(path: string, side: string) {
    super(`hash-only comparison needs a hash of ${path} on the ${side} side, and that store cannot provide one`);
  }
}

/**
 * Whether `current` differs from the base snapshot of the same side. Timestamps are compared only
 * with timestamps from the same store, so clock skew between machines never matters.
 */
export function changedSinceBase(base: SideSnapshot, current: Entry, compare: CompareMode): boolean {
  switch (compare) {
    case 'hash-then-mtime':
      if (base.size !== current.size) return true;
      if (base.hash !== undefined && current.hash !== undefined) return base.hash !== current.hash;
      return base.mtimeMs !== current.mtimeMs;
    case 'size-only':
      return base.size !== current.size;
    case 'hash-only':
      if (base.hash === undefined || current.hash === undefined) return true;
      return base.hash !== current.hash;
    case 'mtime-only':
      return base.mtimeMs !== current.mtimeMs;
    case 'size-and-mtime':
      return base.size !== current.size || base.mtimeMs !== current.mtimeMs;
  }
}

/** Whether the base snapshot is stale although the content is unchanged (touched file, new inode). */
export function snapshotStale(base: SideSnapshot, current: Entry): boolean {
  return (
    base.mtimeMs !== current.mtimeMs ||
    base.size !== current.size ||
    (current.ino !== undefined && base.ino !== current.ino) ||
    (current.hash !== undefined && base.hash !== current.hash)
  );
}

export function mtimesClose(a: number, b: number): boolean {
  return Math.abs(a - b) <= MTIME_TOLERANCE_MS;
}

/** Whether the two sides hold the same content, by the comparison mode's rule. */
export function sameContent(source: Entry, destination: Entry, compare: CompareMode): boolean {
  switch (compare) {
    case 'hash-then-mtime':
      if (source.size !== destination.size) return false;
      if (source.hash !== undefined && destination.hash !== undefined) return source.hash === destination.hash;
      return mtimesClose(source.mtimeMs, destination.mtimeMs);
    case 'size-only':
      return source.size === destination.size;
    case 'hash-only':
      if (source.hash === undefined) throw new HashUnavailableError(source.path, 'source');
      if (destination.hash === undefined) throw new HashUnavailableError(destination.path, 'destination');
      return source.hash === destination.hash;
    case 'mtime-only':
      return mtimesClose(source.mtimeMs, destination.mtimeMs);
    case 'size-and-mtime':
      return source.size === destination.size && mtimesClose(source.mtimeMs, destination.mtimeMs);
  }
}

/** Whether the mode looks at modification times to see that a side changed a file since the base. */
export function detectsChangesByMtime(compare: CompareMode): boolean {
  return compare === 'mtime-only' || compare === 'size-and-mtime';
}

/** Comparison modes chosen because modification times cannot be trusted: newest-wins cannot decide. */
export function mtimeUntrusted(compare: CompareMode): boolean {
  return compare === 'size-only' || compare === 'hash-only';
}

/**
 * Whether the engine must hash a file before planning, so that the planner never mistakes a touched
 * file for a modified one, and can match renames and identical files across sides.
 */
export function hashNeededVsBase(base: SideSnapshot, current: Entry, compare: CompareMode): boolean {
  if (current.hash !== undefined) return false;
  if (compare === 'hash-only') return true;
  if (compare !== 'hash-then-mtime') return false;
  if (base.size !== current.size) return false;
  return base.mtimeMs !== current.mtimeMs || (current.ino !== undefined && base.ino !== undefined && base.ino !== current.ino);
}
