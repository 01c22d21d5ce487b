// A listing's files as sorted columns (FileColumns), turned into Entry objects where needed.
import type { Entry, FileColumns } from '../backends/types';

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
