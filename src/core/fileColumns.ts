// Conversions between a listing's files as Entry objects and as sorted columns (FileColumns).
import type { Entry, FileColumns } from '../backends/types';
import { comparePaths } from './paths';

/** Columns of `files`, sorted by path (the array is sorted in place). */
export function columnsFromEntries(files: Entry[]): FileColumns {
  files.sort((a, b) => comparePaths(a.path, b.path));
  const n = files.length;
  const columns: FileColumns = { paths: new Array<string>(n), sizes: new Float64Array(n), mtimes: new Float64Array(n), inos: new Float64Array(n) };
  files.forEach((e, i) => {
    columns.paths[i] = e.path;
    columns.sizes[i] = e.size;
    columns.mtimes[i] = e.mtimeMs;
    columns.inos[i] = e.ino ?? -1;
  });
  return columns;
}

/** The file at row `i` as an Entry. */
export function entryAt(columns: FileColumns, i: number): Entry {
  const e: Entry = { path: columns.paths[i]!, kind: 'file', size: columns.sizes[i]!, mtimeMs: columns.mtimes[i]! };
  if (columns.inos[i]! >= 0) e.ino = columns.inos[i]!;
  return e;
}

export function entriesFromColumns(columns: FileColumns): Entry[] {
  const files = new Array<Entry>(columns.paths.length);
  for (let i = 0; i < files.length; i++) files[i] = entryAt(columns, i);
  return files;
}
