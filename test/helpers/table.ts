// The three-way table: each row as entries (base, source, destination), and the outcome expected
// for it under each sync mode (conflict strategy manual). Shared by the planner and folder tests.
import type { Entry } from '../../src/backends/types';
import type { SyncMode } from '../../src/core/options';

export const T0 = 1_700_000_000_000;

export function file(path: string, content: string, mtimeMs = T0): Entry {
  return { path, kind: 'file', size: content.length, mtimeMs, hash: `h(${content})` };
}

// Row name → [base?, source?, destination?]. "old" is the base content; mtimes move with changes.
export const old = file('f', 'old', T0);
export const srcNew = file('f', 'source-version', T0 + 60_000);
export const dstNew = file('f', 'destination-version!', T0 + 120_000);
export const same = file('f', 'same-new-content', T0 + 30_000);
export const ROWS: Record<string, [Entry | undefined, Entry | undefined, Entry | undefined]> = {
  'created at source': [undefined, srcNew, undefined],
  'created at destination': [undefined, undefined, dstNew],
  'created on both, identical': [undefined, same, { ...same, mtimeMs: T0 + 90_000 }],
  'created on both, different': [undefined, srcNew, dstNew],
  'modified at source': [old, srcNew, old],
  'modified at destination': [old, old, dstNew],
  'modified on both, identical': [old, same, { ...same, mtimeMs: T0 + 90_000 }],
  'modified on both, different': [old, srcNew, dstNew],
  'deleted at source': [old, undefined, old],
  'deleted at destination': [old, old, undefined],
  'deleted at source, modified at destination': [old, undefined, dstNew],
  'modified at source, deleted at destination': [old, srcNew, undefined],
  'deleted on both': [old, undefined, undefined],
  unchanged: [old, old, old],
};

// Expected outcome per row for each mode (conflict strategy: manual, so conflicts show as such).
export const EXPECTED: Record<SyncMode, Record<string, string>> = {
  'two-way': {
    'created at source': 'upload',
    'created at destination': 'download',
    'created on both, identical': 'record',
    'created on both, different': 'conflict',
    'modified at source': 'upload',
    'modified at destination': 'download',
    'modified on both, identical': 'record',
    'modified on both, different': 'conflict',
    'deleted at source': 'delete-destination',
    'deleted at destination': 'delete-source',
    'deleted at source, modified at destination': 'download',
    'modified at source, deleted at destination': 'upload',
    'deleted on both': 'forget',
    unchanged: 'none',
  },
  'source-to-destination': {
    'created at source': 'upload',
    'created at destination': 'delete-destination',
    'created on both, identical': 'record',
    'created on both, different': 'upload',
    'modified at source': 'upload',
    'modified at destination': 'upload',
    'modified on both, identical': 'record',
    'modified on both, different': 'upload',
    'deleted at source': 'delete-destination',
    'deleted at destination': 'upload',
    'deleted at source, modified at destination': 'delete-destination',
    'modified at source, deleted at destination': 'upload',
    'deleted on both': 'forget',
    unchanged: 'none',
  },
  'source-backup': {
    'created at source': 'upload',
    'created at destination': 'none',
    'created on both, identical': 'record',
    'created on both, different': 'upload',
    'modified at source': 'upload',
    'modified at destination': 'upload',
    'modified on both, identical': 'record',
    'modified on both, different': 'upload',
    'deleted at source': 'forget',
    'deleted at destination': 'upload',
    'deleted at source, modified at destination': 'forget',
    'modified at source, deleted at destination': 'upload',
    'deleted on both': 'forget',
    unchanged: 'none',
  },
  'destination-to-source': {},
  'destination-backup': {},
};
// The destination-led modes are the mirror images of the source-led ones.
const mirrorRow = (row: string) => {
  const swapped = row.replace(/source|destination/g, (w) => (w === 'source' ? 'destination' : 'source'));
  return swapped in ROWS ? swapped : swapped.split(', ').reverse().join(', ');
};
const mirrorOutcome = (o: string) =>
  ({ upload: 'download', download: 'upload', 'delete-destination': 'delete-source', 'delete-source': 'delete-destination' })[o] ?? o;
for (const [from, to] of [
  ['source-to-destination', 'destination-to-source'],
  ['source-backup', 'destination-backup'],
] as const) {
  for (const [row, o] of Object.entries(EXPECTED[from])) EXPECTED[to][mirrorRow(row)] = mirrorOutcome(o);
}

