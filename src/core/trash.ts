// The trash of one side: files the engine deletes or overwrites are kept here, under
// `.syncengine-trash/<yyyymmdd-hhmmss>-<run>/<path>`, until the retention period has passed.
import type { Backend } from '../backends/types';
import { copyByTransfer } from './copyByTransfer';
import { TRASH_DIR, joinPath } from './paths';

export function runStamp(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  return `${stamp}-${Math.random().toString(16).slice(2, 8)}`;
}

const STAMP = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-/;

export class Trash {
  constructor(
    private readonly backend: Backend,
    private readonly stamp: string,
  ) {}

  private async freePath(path: string): Promise<string> {
    const base = `${TRASH_DIR}/${this.stamp}/${path}`;
    let candidate = base;
    for (let n = 1; await this.backend.stat(candidate); n++) candidate = `${base}.${n}`;
    return candidate;
  }

  /** Keep a copy of a file that is about to be overwritten. Returns where it went. */
  async keepCopy(path: string): Promise<string> {
    const to = await this.freePath(path);
    await this.keepCopyTo(path, to);
    return to;
  }

  /** Move a file out of the way instead of deleting it. Returns where it went. */
  async moveIn(path: string): Promise<string> {
    const to = await this.freePath(path);
    if (this.backend.rename) {
      await this.backend.rename(path, to);
    } else {
      await this.keepCopyTo(path, to);
      await this.backend.deleteFile(path);
    }
    return to;
  }

  private async keepCopyTo(path: string, to: string): Promise<void> {
    if (this.backend.hardLink) return this.backend.hardLink(path, to);
    if (this.backend.copyWithin) return this.backend.copyWithin(path, to);
    await copyByTransfer(this.backend, path, to);
  }

  /** Remove trash folders of runs older than `retentionDays`. */
  static async prune(backend: Backend, retentionDays: number, now: Date): Promise<number> {
    if (!(retentionDays >= 0)) return 0;
    let removed = 0;
    let runs;
    try {
      runs = await backend.listDir(TRASH_DIR);
    } catch {
      return 0; // no trash yet
    }
    const cutoff = now.getTime() - retentionDays * 86_400_000;
    for (const run of runs.entries) {
      const name = run.path.slice(TRASH_DIR.length + 1);
      const m = STAMP.exec(name);
      if (run.kind !== 'dir' || !m) continue;
      const time = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
      if (time >= cutoff) continue;
      await removeTree(backend, run.path);
      removed++;
    }
    await backend.rmdirIfEmpty(TRASH_DIR);
    return removed;
  }
}

async function removeTree(backend: Backend, dir: string): Promise<void> {
  const listing = await backend.listDir(dir);
  for (const entry of listing.entries) {
    if (entry.kind === 'dir') await removeTree(backend, entry.path);
    else await backend.deleteFile(entry.path);
  }
  for (const s of listing.skipped) await backend.deleteFile(joinPath(dir, s.path.slice(dir.length + 1))).catch(() => undefined);
  await backend.rmdirIfEmpty(dir);
}
