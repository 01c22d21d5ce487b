// The executor: carries out a plan with separate limits for transfers and other operations, checks
// every file against what the plan saw just before touching it, keeps what it replaces or deletes in
// the side's trash, journals each finished change, retries transient errors, and isolates failures.
import { Transform, type Readable } from 'node:stream';
import type { Backend, Entry, WriteOptions } from '../backends/types';
import type { SyncController } from './control';
import { hashOfBytes, type HashAlgorithm } from './contentHash';
import { copyByTransfer } from './copyByTransfer';
import { CancelledError, ChangedDuringSyncError, StorageError, TargetExistsError, errorMessage } from './errors';
import type { FileAction, SyncEventListener, SyncStats } from './events';
import type { Base, BaseEntry, CopyItem, DeleteItem, KeepBothItem, Plan, PlanItem, RenameDirItem, RenameItem, SideSnapshot, Tree } from './model';
import { snapshotOf } from './model';
import { otherSide, type Side } from './options';
import { parentOf } from './paths';
import { OFF_THREAD_MIN_BYTES, streamHasher } from './offThreadHash';
import { runLimited } from './pool';
import { SMALL_FILE_BYTES } from './scanner';
import type { Trash } from './trash';

export interface ExecutorContext {
  backends: Record<Side, Backend>;
  trash: Record<Side, Trash>;
  trees: Record<Side, Tree>;
  /** The full base of the pair; updated in place as changes finish. */
  base: Base;
  journal: (path: string, entry: BaseEntry | undefined) => void;
  limits: { transfers: number; operations: number };
  controller: SyncController;
  onEvent?: SyncEventListener;
  retry?: { attempts: number; baseDelayMs: number };
  /** The comparison mode finds changes without modification times (WriteOptions.mtimeEstimateOk). */
  mtimeEstimateOk?: boolean;
  /** The pair's content hash (see contentHash.ts). */
  hashAlgorithm: HashAlgorithm;
}

export function emptyStats(): SyncStats {
  return {
    uploaded: 0,
    downloaded: 0,
    deletedSource: 0,
    deletedDestination: 0,
    renamedSource: 0,
    renamedDestination: 0,
    conflictsResolved: 0,
    recorded: 0,
    bytesTransferred: 0,
    conflicts: [],
    errors: [],
    durationMs: 0,
    cancelled: false,
  };
}

function sameFile(expected: Entry | undefined, actual: Entry | undefined): boolean {
  if (!expected || !actual) return expected === actual || (!expected && !actual);
  if (actual.kind !== 'file') return false;
  return (
    expected.size === actual.size &&
    expected.mtimeMs === actual.mtimeMs &&
    (expected.ino === undefined || actual.ino === undefined || expected.ino === actual.ino)
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Executor {
  private readonly stats = emptyStats();
  private totalFiles = 0;
  private totalBytes = 0;
  private doneFiles = 0;
  private doneBytes = 0;
  private readonly started = Date.now();
  private lastTotals = 0;
  /** Folders on each side that may have become empty through our deletes and moves. */
  private readonly vacated: Record<Side, Set<string>> = { source: new Set(), destination: new Set() };

  constructor(private readonly ctx: ExecutorContext) {}

  async run(plan: Plan): Promise<SyncStats> {
    const { ctx } = this;
    const renames: PlanItem[] = [];
    const transfers: PlanItem[] = [];
    const operations: PlanItem[] = [];
    for (const item of plan.items) {
      if (item.action === 'rename' || item.action === 'rename-dir') renames.push(item);
      else if (item.action === 'copy' || item.action === 'keep-both') transfers.push(item);
      else operations.push(item);
    }
    this.totalFiles = renames.length + transfers.length + operations.filter((i) => i.action === 'delete').length;
    this.totalBytes = plan.counts.uploadBytes + plan.counts.downloadBytes;
    ctx.onEvent?.({ type: 'sync-start', totalFiles: this.totalFiles, totalBytes: this.totalBytes });

    const checkpoint = () => ctx.controller.checkpoint();
    try {
      // Renames first: a copy into a moved folder must not create the folder a rename needs free.
      await runLimited(renames, ctx.limits.operations, (item) => this.isolated(item), checkpoint);
      await Promise.all([
        runLimited(transfers, ctx.limits.transfers, (item) => this.isolated(item), checkpoint),
        runLimited(operations, ctx.limits.operations, (item) => this.isolated(item), checkpoint),
      ]);
      await this.removeVacatedFolders();
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      this.stats.cancelled = true;
    }
    this.stats.durationMs = Date.now() - this.started;
    this.emitTotals(true);
    return this.stats;
  }

  private actionOf(item: PlanItem): { action: FileAction; side: Side } {
    switch (item.action) {
      case 'copy':
        return { action: item.to === 'destination' ? 'upload' : 'download', side: item.to };
      case 'delete':
        return { action: 'delete', side: item.side };
      case 'rename':
      case 'rename-dir':
        return { action: 'rename', side: item.side };
      case 'keep-both':
        return { action: 'keep-both', side: otherSide(item.winner) };
      default:
        return { action: 'hash', side: 'source' };
    }
  }

  /** One item, with retries for transient errors; a failure is reported and the run goes on. */
  private async isolated(item: PlanItem): Promise<void> {
    const { action, side } = this.actionOf(item);
    const attempts = this.ctx.retry?.attempts ?? 3;
    const baseDelay = this.ctx.retry?.baseDelayMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.execute(item);
        return;
      } catch (error) {
        if (error instanceof CancelledError || this.ctx.controller.cancelled) throw new CancelledError();
        if (error instanceof ChangedDuringSyncError) {
          this.stats.conflicts.push({ path: error.path, reason: 'changed-during-sync', note: error.message });
          this.ctx.onEvent?.({ type: 'file-error', path: item.path, action, message: error.message, willRetry: false });
          return;
        }
        const transient = error instanceof StorageError && error.transient;
        const willRetry = transient && attempt < attempts;
        this.ctx.onEvent?.({ type: 'file-error', path: item.path, action, message: errorMessage(error), willRetry });
        if (!willRetry) {
          this.stats.errors.push({ path: item.path, message: `${action} on the ${side} side failed: ${errorMessage(error)}` });
          return;
        }
        await sleep(baseDelay * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
  }

  private async execute(item: PlanItem): Promise<void> {
    switch (item.action) {
      case 'copy':
        return this.copy(item);
      case 'delete':
        return this.delete(item);
      case 'rename':
        return this.rename(item);
      case 'rename-dir':
        return this.renameDir(item);
      case 'keep-both':
        return this.keepBoth(item);
      case 'record':
        this.setBase(item.path, { source: snapshotOf(item.source), destination: snapshotOf(item.destination) });
        this.stats.recorded++;
        return;
      case 'forget':
        if (this.ctx.base.has(item.path)) this.setBase(item.path, undefined);
        return;
      case 'conflict':
        this.stats.conflicts.push({ path: item.path, reason: item.conflict.reason, ...(item.conflict.note ? { note: item.conflict.note } : {}) });
        return;
    }
  }

  private setBase(path: string, entry: BaseEntry | undefined): void {
    if (entry) this.ctx.base.set(path, entry);
    else this.ctx.base.delete(path);
    this.ctx.journal(path, entry);
  }

  /** Check-before-overwrite: the file must still be what the plan saw. */
  private async expect(side: Side, path: string, expected: Entry | undefined): Promise<Entry | undefined> {
    const backend = this.ctx.backends[side];
    const actual = backend.statFile ? await backend.statFile(path) : await backend.stat(path);
    if (!sameFile(expected, actual)) throw new ChangedDuringSyncError(path, side);
    return actual;
  }

  /**
   * The whole of a small source file, read by readFileAndStat, which must show the file the plan
   * saw. A read that fails gets the usual check: a file that changed or went away is a change
   * during the sync, not a read error.
   */
  private async readChecked(side: Side, path: string, expected: Entry): Promise<{ data: Buffer; after: Entry }> {
    let read: { data: Buffer | undefined; opened: Entry; after: Entry };
    try {
      read = await this.ctx.backends[side].readFileAndStat!(path, expected.size, this.ctx.controller.signal);
    } catch (error) {
      if (!this.ctx.controller.signal.aborted) await this.expect(side, path, expected);
      throw error;
    }
    // (A file that grew past the planned size is not read: it is not the file the plan saw.)
    if (!sameFile(expected, read.opened) || read.data === undefined) throw new ChangedDuringSyncError(path, side);
    return { data: read.data, after: read.after };
  }

  /**
   * Stream a file from one side to the other (same path or `toPath`), hashing on the way, and return
   * both sides' entries with the hash. The target must hold `expectedTarget` (checked just before).
   */
  private async transfer(from: Side, path: string, expectedSource: Entry, toPath: string, expectedTarget: Entry | undefined): Promise<{ source: Entry; target: Entry }> {
    const to = otherSide(from);
    const { backends, trash, controller } = this.ctx;
    const small = expectedSource.size <= SMALL_FILE_BYTES;
    // A small source is read before anything else: the read itself tells whether it is still the
    // file the plan saw, and it is held in memory from then on.
    const read = small && backends[from].readFileAndStat ? await this.readChecked(from, path, expectedSource) : undefined;
    if (!read) await this.expect(from, path, expectedSource);
    // A new file on a store that creates files only where none is: the store checks as it writes.
    const createOnly = expectedTarget === undefined && (await backends[to].canWriteIfAbsent?.()) === true;
    const existing = createOnly ? undefined : await this.expect(to, toPath, expectedTarget);
    if (existing) await trash[to].keepCopy(toPath);
    const write = async (data: Parameters<Backend['write']>[1], options: WriteOptions): Promise<Entry> => {
      try {
        return await backends[to].write(toPath, data, { ...options, ...(createOnly ? { ifAbsent: true } : {}), ...(this.ctx.mtimeEstimateOk ? { mtimeEstimateOk: true } : {}) });
      } catch (error) {
        if (error instanceof TargetExistsError) throw new ChangedDuringSyncError(toPath, to);
        throw error;
      }
    };

    const action: FileAction = to === 'destination' ? 'upload' : 'download';
    this.ctx.onEvent?.({ type: 'file-start', path: toPath, action, side: to, bytes: expectedSource.size });
    let counted = 0;
    let written: Entry;
    let hash: string;
    /** The hash came from a read of its own, not from the bytes that were sent. */
    let separateRead = false;
    if (small && (read || backends[from].readFile)) {
      // Small files in one piece: for trees of many small files, stream set-up costs more than the data.
      const data = read ? read.data : await backends[from].readFile!(path, controller.signal);
      hash = hashOfBytes(data, this.ctx.hashAlgorithm);
      counted = data.length;
      written = await write(data, { mtimeMs: expectedSource.mtimeMs, size: data.length, signal: controller.signal, hash: { algorithm: this.ctx.hashAlgorithm, value: hash } });
      this.doneBytes += counted;
    } else {
      // A store that reads its own files elsewhere hashes them there, beside the transfer (a second
      // read, from the page cache); other sources are hashed as the bytes stream past.
      const hashElsewhere = expectedSource.size >= OFF_THREAD_MIN_BYTES && backends[from].hashOffThread !== undefined;
      const stopHashing = new AbortController();
      const hashedElsewhere = hashElsewhere ? backends[from].hashOffThread!(path, this.ctx.hashAlgorithm, AbortSignal.any([controller.signal, stopHashing.signal])) : undefined;
      hashedElsewhere?.catch(() => undefined); // awaited below, once the transfer is done
      const hasher = hashElsewhere ? undefined : streamHasher(expectedSource.size, this.ctx.hashAlgorithm);
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, done) {
          counted += chunk.length;
          const behind = hasher?.update(chunk);
          if (behind) void behind.then(() => done(null, chunk));
          else done(null, chunk);
        },
      });
      // The backend sees an error through the stream while it reads; once it has given up (a
      // cancel, a failed request) nobody listens, and an unheard 'error' would end the process.
      hashing.on('error', () => undefined);
      let input: Readable | undefined;
      let reported = 0;
      try {
        input = await backends[from].read(path, controller.signal);
        input.on('error', (e) => hashing.destroy(e));
        written = await write(input.pipe(hashing), {
          mtimeMs: expectedSource.mtimeMs,
          size: expectedSource.size,
          signal: controller.signal,
          onBytes: (bytes) => {
            this.doneBytes += bytes - reported;
            reported = bytes;
            this.ctx.onEvent?.({ type: 'file-progress', path: toPath, bytes, total: expectedSource.size });
            this.emitTotals(false);
          },
        });
      } catch (error) {
        hasher?.discard();
        stopHashing.abort();
        // A backend that stopped reading leaves the source open: close it (and its file) here.
        hashing.destroy();
        input?.destroy();
        throw error;
      }
      this.doneBytes += counted - reported;
      hash = hashedElsewhere ? await hashedElsewhere : await hasher!.digest();
      separateRead = hashedElsewhere !== undefined;
    }
    this.stats.bytesTransferred += counted;
    // The source must not have changed while it was read; otherwise what we wrote may be torn.
    const after = read ? read.after : await backends[from].stat(path);
    if (!sameFile(expectedSource, after) || (expectedSource.hash !== undefined && expectedSource.hash !== hash) || counted !== expectedSource.size) {
      // The target already holds what was read. Record exactly that as the synced version on both
      // sides, so the next run compares the source's real content with it: an upload of the
      // finished file if they differ, nothing if they do not, and never a false conflict with our
      // own write.
      // A hash from a read of its own may not be that of the bytes sent: the record then has none.
      if (path === toPath) {
        const sentHash = separateRead ? {} : { hash };
        const asRead: SideSnapshot = { size: counted, mtimeMs: expectedSource.mtimeMs, ...sentHash };
        const target = snapshotOf({ ...written, ...sentHash });
        this.setBase(path, from === 'source' ? { source: asRead, destination: target } : { source: target, destination: asRead });
      }
      throw new ChangedDuringSyncError(path, from);
    }
    return { source: { ...after!, hash }, target: { ...written, hash } };
  }

  private fileDone(path: string, action: FileAction, side: Side): void {
    this.doneFiles++;
    this.ctx.onEvent?.({ type: 'file-complete', path, action, side });
    this.emitTotals(false);
  }

  private async copy(item: CopyItem): Promise<void> {
    const from = otherSide(item.to);
    const expectedSource = item[from]!;
    const { source, target } = await this.transfer(from, item.path, expectedSource, item.path, item[item.to]);
    this.setBase(item.path, from === 'source' ? { source: snapshotOf(source), destination: snapshotOf(target) } : { source: snapshotOf(target), destination: snapshotOf(source) });
    if (item.to === 'destination') this.stats.uploaded++;
    else this.stats.downloaded++;
    if (item.conflict) this.stats.conflictsResolved++;
    this.fileDone(item.path, item.to === 'destination' ? 'upload' : 'download', item.to);
  }

  private async delete(item: DeleteItem): Promise<void> {
    await this.ctx.controller.checkpoint();
    await this.expect(item.side, item.path, item[item.side]);
    this.ctx.onEvent?.({ type: 'file-start', path: item.path, action: 'delete', side: item.side, bytes: 0 });
    await this.ctx.trash[item.side].moveIn(item.path);
    this.vacated[item.side].add(parentOf(item.path));
    if (this.ctx.base.has(item.path)) this.setBase(item.path, undefined);
    if (item.side === 'source') this.stats.deletedSource++;
    else this.stats.deletedDestination++;
    this.fileDone(item.path, 'delete', item.side);
  }

  private async moveWithin(side: Side, from: string, to: string, keepOld: boolean): Promise<void> {
    const backend = this.ctx.backends[side];
    if (keepOld) {
      if (backend.copyWithin) return backend.copyWithin(from, to);
    } else if (backend.rename) {
      return backend.rename(from, to);
    }
    await copyByTransfer(backend, from, to, this.ctx.controller.signal);
    if (!keepOld) await backend.deleteFile(from);
  }

  private async rename(item: RenameItem): Promise<void> {
    const side = item.side;
    const moved = otherSide(side);
    await this.expect(side, item.fromPath, item.fromEntry);
    await this.expect(side, item.path, undefined);
    this.ctx.onEvent?.({ type: 'file-start', path: item.path, action: 'rename', side, bytes: 0 });
    await this.moveWithin(side, item.fromPath, item.path, item.keepOld);
    const now = await this.ctx.backends[side].stat(item.path);
    if (!now) throw new StorageError(`${item.path} is missing after moving it from ${item.fromPath}`, false);
    const hash = this.ctx.base.get(item.fromPath)?.[side].hash ?? item.fromEntry.hash;
    const here = snapshotOf({ ...now, ...(hash !== undefined ? { hash } : {}) });
    const there = snapshotOf(item[moved]!);
    this.setBase(item.fromPath, undefined);
    this.setBase(item.path, side === 'source' ? { source: here, destination: there } : { source: there, destination: here });
    if (!item.keepOld) this.vacated[side].add(parentOf(item.fromPath));
    if (side === 'source') this.stats.renamedSource++;
    else this.stats.renamedDestination++;
    this.fileDone(item.path, 'rename', side);
  }

  private async renameDir(item: RenameDirItem): Promise<void> {
    const side = item.side;
    const backend = this.ctx.backends[side];
    if (!backend.rename) {
      for (const f of item.files) await this.rename({ action: 'rename', side, fromPath: f.fromPath, path: f.path, fromEntry: f.fromEntry, keepOld: false, [otherSide(side)]: f.newEntry });
      return;
    }
    for (const f of item.files) await this.expect(side, f.fromPath, f.fromEntry);
    if (await backend.stat(item.path)) throw new ChangedDuringSyncError(item.path, side);
    this.ctx.onEvent?.({ type: 'file-start', path: item.path, action: 'rename', side, bytes: 0 });
    await backend.rename(item.fromPath, item.path);
    for (const f of item.files) {
      const now = await backend.stat(f.path);
      if (!now) throw new StorageError(`${f.path} is missing after moving ${item.fromPath} to ${item.path}`, false);
      const hash = this.ctx.base.get(f.fromPath)?.[side].hash ?? f.fromEntry.hash;
      const here = snapshotOf({ ...now, ...(hash !== undefined ? { hash } : {}) });
      const there = snapshotOf(f.newEntry);
      this.setBase(f.fromPath, undefined);
      this.setBase(f.path, side === 'source' ? { source: here, destination: there } : { source: there, destination: here });
      if (side === 'source') this.stats.renamedSource++;
      else this.stats.renamedDestination++;
    }
    this.vacated[side].add(parentOf(item.fromPath));
    this.fileDone(item.path, 'rename', side);
  }

  /**
   * Keep both versions: the loser moves aside to the conflict name on its side, is copied to the
   * winner's side under that name, and the winner's version is copied to the loser's side.
   */
  private async keepBoth(item: KeepBothItem): Promise<void> {
    const winner = item.winner;
    const loser = otherSide(winner);
    const loserEntry = item[loser];
    await this.expect(winner, item.path, item[winner]);
    await this.expect(loser, item.path, loserEntry);
    await this.expect(loser, item.conflictPath, undefined);
    await this.expect(winner, item.conflictPath, undefined);
    await this.moveWithin(loser, item.path, item.conflictPath, false);
    const movedLoser = await this.ctx.backends[loser].stat(item.conflictPath);
    if (!movedLoser) throw new StorageError(`${item.conflictPath} is missing after moving ${item.path} aside`, false);
    const loserCopy = await this.transfer(loser, item.conflictPath, movedLoser, item.conflictPath, undefined);
    this.setBase(item.conflictPath, loser === 'source' ? { source: snapshotOf(loserCopy.source), destination: snapshotOf(loserCopy.target) } : { source: snapshotOf(loserCopy.target), destination: snapshotOf(loserCopy.source) });
    const winnerCopy = await this.transfer(winner, item.path, item[winner], item.path, undefined);
    this.setBase(item.path, winner === 'source' ? { source: snapshotOf(winnerCopy.source), destination: snapshotOf(winnerCopy.target) } : { source: snapshotOf(winnerCopy.target), destination: snapshotOf(winnerCopy.source) });
    this.stats.conflictsResolved++;
    if (loser === 'source') {
      this.stats.uploaded++;
      this.stats.downloaded++;
    } else {
      this.stats.downloaded++;
      this.stats.uploaded++;
    }
    this.fileDone(item.path, 'keep-both', loser);
  }

  /** Remove folders our deletes and moves emptied, where the other side no longer has them either. */
  private async removeVacatedFolders(): Promise<void> {
    for (const side of ['source', 'destination'] as const) {
      const otherDirs = this.ctx.trees[otherSide(side)].dirs;
      const candidates = new Set<string>();
      for (let dir of this.vacated[side]) {
        for (; dir !== ''; dir = parentOf(dir)) candidates.add(dir);
      }
      // Deepest first, so a parent is tried after its children are gone.
      const ordered = [...candidates].filter((d) => !otherDirs.has(d)).sort((a, b) => b.split('/').length - a.split('/').length);
      for (const dir of ordered) await this.ctx.backends[side].rmdirIfEmpty(dir).catch(() => undefined);
    }
  }

  private emitTotals(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastTotals < 200) return;
    this.lastTotals = now;
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? this.doneBytes / elapsed : 0;
    const remaining = Math.max(0, this.totalBytes - this.doneBytes);
    this.ctx.onEvent?.({
      type: 'totals',
      doneFiles: this.doneFiles,
      totalFiles: this.totalFiles,
      doneBytes: this.doneBytes,
      totalBytes: this.totalBytes,
      bytesPerSecond: rate,
      etaSeconds: rate > 0 ? remaining / rate : undefined,
    });
  }
}
