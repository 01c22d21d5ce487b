// The last-synced version of files being edited, kept so that VS Code's merge editor can show a
// real common ancestor for a conflict. The engine's base holds hashes, not content: after a save or
// a resolution is synced, the content of a file open in an editor is stored under its hash (the
// pair's content hash, as in the base) in the pair's state folder (never synced). A merge looks up
// the base hash of the path there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hashOfBytes, type HashAlgorithm } from '../core/contentHash';
import { makeDirs } from '../core/makeDirs';

const MAX_BYTES = 512 * 1024;
const MAX_ENTRIES = 200;

export class MergeBaseStore {
  constructor(private readonly dir: string) {}

  /** Keep the current content of a local file that has just been synced. */
  remember(file: string, algorithm: HashAlgorithm): void {
    try {
      const st = fs.statSync(file);
      if (!st.isFile() || st.size > MAX_BYTES) return;
      const data = fs.readFileSync(file);
      const hash = hashOfBytes(data, algorithm);
      makeDirs(this.dir);
      const target = path.join(this.dir, hash);
      if (fs.existsSync(target)) {
        const now = new Date();
        fs.utimesSync(target, now, now);
        return;
      }
      const temp = `${target}.tmp-${process.pid}`;
      fs.writeFileSync(temp, data);
      fs.renameSync(temp, target);
      this.prune();
    } catch {
      // Only a convenience for merges: a failure here must never fail a sync.
    }
  }

  /** The stored content with this hash, if any. */
  lookup(hash: string | undefined): Buffer | undefined {
    if (!hash || !/^[0-9a-f]{32}$/.test(hash)) return undefined;
    try {
      return fs.readFileSync(path.join(this.dir, hash));
    } catch {
      return undefined;
    }
  }

  private prune(): void {
    const names = fs.readdirSync(this.dir).filter((n) => /^[0-9a-f]{32}$/.test(n));
    if (names.length <= MAX_ENTRIES) return;
    const byAge = names.map((n) => ({ n, t: fs.statSync(path.join(this.dir, n)).mtimeMs })).sort((a, b) => a.t - b.t);
    for (const { n } of byAge.slice(0, names.length - MAX_ENTRIES)) fs.rmSync(path.join(this.dir, n), { force: true });
  }
}
