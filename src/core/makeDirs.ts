// mkdir -p for local folders. Node's own `{ recursive: true }` spins forever at full CPU (the sync
// call never returns, the async one never settles) where mkdir answers ENOENT although the parent
// exists: /proc, /sys and some FUSE file systems. A mistyped --state-dir or destination there must
// be an error, not a hang.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';

function isDir(absPath: string): boolean {
  return fs.statSync(absPath, { throwIfNoEntry: false })?.isDirectory() === true;
}

/**
 * Creates `absPath` and the folders above it that are missing. Throws Node's error (EEXIST for a
 * file in the way, ENOTDIR for a file above, ENOENT where a folder cannot be made, EACCES, ...).
 */
export function makeDirs(absPath: string): void {
  let existing = nodePath.resolve(absPath);
  if (isDir(existing)) return;
  const missing: string[] = [];
  for (;;) {
    const st = fs.statSync(existing, { throwIfNoEntry: false });
    if (st !== undefined) break; // a folder, or something that makes the next mkdir fail with ENOTDIR
    const parent = nodePath.dirname(existing);
    missing.push(existing);
    if (parent === existing) break;
    existing = parent;
  }
  // Top down, each level once: a level that cannot be made ends it with that level's error.
  for (let i = missing.length - 1; i >= 0; i--) {
    const dir = missing[i]!;
    try {
      fs.mkdirSync(dir);
    } catch (error) {
      // Made by someone else meanwhile: fine when it is a folder.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && isDir(dir)) continue;
      throw error;
    }
  }
  if (missing.length === 0) fs.mkdirSync(absPath); // `absPath` itself exists and is not a folder: EEXIST
}
