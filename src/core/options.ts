// Sync options: modes, comparison modes, conflict strategies, first-sync preferences, and parsing of
// their names (including the short aliases of the original SyncEngine).
import { UsageError } from './errors';

export type SyncMode =
  | 'two-way'
  | 'source-to-destination'
  | 'source-backup'
  | 'destination-to-source'
  | 'destination-backup';

export type CompareMode = 'hash-then-mtime' | 'size-only' | 'hash-only' | 'mtime-only' | 'size-and-mtime';

export type ConflictStrategy = 'newest-wins' | 'source-wins' | 'destination-wins' | 'keep-both' | 'manual';

export type InitialPreference = 'merge' | 'source-wins' | 'destination-wins';

export type Side = 'source' | 'destination';

export const SYNC_MODES: readonly SyncMode[] = [
  'two-way',
  'source-to-destination',
  'source-backup',
  'destination-to-source',
  'destination-backup',
];
export const MODE_ALIASES: Readonly<Record<string, SyncMode>> = {
  tw: 'two-way',
  std: 'source-to-destination',
  sb: 'source-backup',
  dts: 'destination-to-source',
  db: 'destination-backup',
};
export const COMPARE_MODES: readonly CompareMode[] = ['hash-then-mtime', 'size-only', 'hash-only', 'mtime-only', 'size-and-mtime'];
export const CONFLICT_STRATEGIES: readonly ConflictStrategy[] = ['newest-wins', 'source-wins', 'destination-wins', 'keep-both', 'manual'];
export const INITIAL_PREFERENCES: readonly InitialPreference[] = ['merge', 'source-wins', 'destination-wins'];

/** Cross-side modification times closer than this are "the same time" (FAT, FTP and S3 granularity). */
export const MTIME_TOLERANCE_MS = 2000;

export interface PlanOptions {
  mode: SyncMode;
  compare: CompareMode;
  conflict: ConflictStrategy;
  initial: InitialPreference;
}

export const DEFAULT_PLAN_OPTIONS: PlanOptions = {
  mode: 'two-way',
  compare: 'hash-then-mtime',
  conflict: 'newest-wins',
  initial: 'merge',
};

export function otherSide(side: Side): Side {
  return side === 'source' ? 'destination' : 'source';
}

function parseChoice<T extends string>(what: string, value: string, choices: readonly T[], aliases: Readonly<Record<string, T>> = {}): T {
  const v = value.trim().toLowerCase();
  if ((choices as readonly string[]).includes(v)) return v as T;
  const alias = aliases[v];
  if (alias) return alias;
  const names = [...choices, ...Object.keys(aliases)].join(', ');
  throw new UsageError(`Unknown ${what} "${value}". Expected one of: ${names}`);
}

export const parseSyncMode = (v: string): SyncMode => parseChoice('sync mode', v, SYNC_MODES, MODE_ALIASES);
export const parseCompareMode = (v: string): CompareMode => parseChoice('comparison mode', v, COMPARE_MODES);
export const parseConflictStrategy = (v: string): ConflictStrategy => parseChoice('conflict strategy', v, CONFLICT_STRATEGIES);
export const parseInitialPreference = (v: string): InitialPreference => parseChoice('first-sync preference', v, INITIAL_PREFERENCES);

/** Which sides a mode may write to. */
export function modeWrites(mode: SyncMode): { source: boolean; destination: boolean } {
  switch (mode) {
    case 'two-way':
      return { source: true, destination: true };
    case 'source-to-destination':
    case 'source-backup':
      return { source: false, destination: true };
    case 'destination-to-source':
    case 'destination-backup':
      return { source: true, destination: false };
  }
}
