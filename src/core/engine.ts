// The engine: scan both sides, hash what needs it, plan, check the guards, execute, and save the
// state. The CLI and the extension are thin shells over `runSync`.
import type { Backend } from '../backends/types';
import { pairHashAlgorithm, type HashAlgorithm } from './contentHash';
import { detectsChangesByMtime } from './compare';
import { SyncController } from './control';
import { GuardError, errorMessage } from './errors';
import type { SyncEvent, SyncEventListener, SyncStats } from './events';
import { Executor, emptyStats } from './executor';
import { hashesNeeded } from './hashplan';
import type { BaseTable } from './baseTable';
import type { Base, BaseEntry, Plan, Tree } from './model';
import { DEFAULT_PLAN_OPTIONS, type PlanOptions, type Side } from './options';
import { assertSafeRelativePath, parentOf } from './paths';
import { plan as makePlan } from './planner';
import { runLimited } from './pool';
import { fillKnownHashes, hashFile, inScope, sameIgnoreFiles, scanTree, type ScanOptions, type ScanResult } from './scanner';
import { joinWithBase } from './settle';
import { StateStore, type HashCacheEntry } from './state';
import { Trash, runStamp } from './trash';
import type { KnownFiles, SkippedEntry } from '../backends/types';

export interface SyncRequest {
  source: Backend;
  destination: Backend;
  /** Folder holding this pair's state (a local path). */
  stateDir: string;
  options?: Partial<PlanOptions>;
  /** Patterns from the config and `--ignore-file`, applied at the root with the lowest precedence. */
  ignorePatterns?: readonly string[];
  /** Sync only these paths (files or folders) and what is below them. */
  scope?: readonly string[];
  limits?: { transfers?: number; operations?: number };
  /** Refuse a run that would delete more than this share (percent) of a side's files. */
  maxDeletePercent?: number;
  /** Bypass the empty-side and max-delete guards. */
  force?: boolean;
  /** Plan only; change nothing (and write no state). */
  dryRun?: boolean;
  /** Days to keep trashed files; older trash runs are removed at the start of a sync. */
  trashRetentionDays?: number;
  controller?: SyncController;
  onEvent?: SyncEventListener;
  now?: Date;
}

export interface SyncResult {
  plan: Plan;
  stats: SyncStats;
  skipped: { side: Side; path: string; reason: string }[];
  /** The pair's content hash: what the base's hashes are (see contentHash.ts). */
  hashAlgorithm: HashAlgorithm;
}

export const DEFAULT_LIMITS = { transfers: 8, operations: 16 };
export const DEFAULT_MAX_DELETE_PERCENT = 50;
export const DEFAULT_TRASH_RETENTION_DAYS = 30;

/**
 * Stop before anything changes when a side looks unmounted or a run would delete too much. `files`
 * counts each side's files and `baseSize` the base's paths, settled ones included.
 */
function checkGuards(plan: Plan, files: Record<Side, number>, baseSize: number, scoped: boolean, maxDeletePercent: number): void {
  const deletes: Record<Side, number> = { source: plan.counts.deleteSource, destination: plan.counts.deleteDestination };
  for (const side of ['source', 'destination'] as const) {
    const other: Side = side === 'source' ? 'destination' : 'source';
    // A side that had files and now lists none is more likely unmounted or mistyped than emptied.
    if (!scoped && baseSize > 0 && files[side] === 0 && deletes[other] > 0) {
      throw new GuardError(
        'empty-side',
        `The ${side} side is empty but had ${baseSize} files at the last sync; syncing would delete ${deletes[other]} files on the ${other} side. ` +
          `Nothing was changed. If the ${side} side really was emptied on purpose, run again with --force.`,
      );
    }
    const existing = files[side];
    if (deletes[side] > 1 && existing > 0 && (deletes[side] / existing) * 100 > maxDeletePercent) {
      const pct = Math.round((deletes[side] / existing) * 100);
      throw new GuardError(
        'max-delete',
        `This run would delete ${deletes[side]} of ${existing} files (${pct}%) on the ${side} side, more than the limit of ${maxDeletePercent}%. ` +
          `Nothing was changed. Check the plan with "syncengine plan", then run again with --force or a higher --max-delete.`,
      );
    }
  }
}

/**
 * Leave these paths, and everything below them, out of both trees and the planning base. Returns
 * the planning base: a copy when anything is left out, so that the pair's base keeps those entries.
 */
function excludeFromPlan(paths: readonly string[], trees: Record<Side, Tree>, base: Base): Base {
  if (paths.length === 0) return base;
  const planBase = new Map(base);
  const roots = new Set(paths);
  const excluded = (p: string): boolean => {
    for (let q = p; ; q = parentOf(q)) {
      if (roots.has(q)) return true;
      if (q === '') return false;
    }
  };
  for (const tree of [trees.source, trees.destination]) for (const p of tree.files.keys()) if (excluded(p)) tree.files.delete(p);
  for (const p of planBase.keys()) if (excluded(p)) planBase.delete(p);
  return planBase;
}

export async function runSync(request: SyncRequest): Promise<SyncResult> {
  const startedAt = Date.now();
  const options: PlanOptions = { ...DEFAULT_PLAN_OPTIONS, ...request.options };
  const limits = { ...DEFAULT_LIMITS, ...request.limits };
  const controller = request.controller ?? new SyncController();
  const emit = (event: SyncEvent) => request.onEvent?.(event);
  const now = request.now ?? new Date();
  const scope = request.scope?.map((p) => p.replace(/^\/+|\/+$/g, ''));
  scope?.forEach(assertSafeRelativePath);
  const backends: Record<Side, Backend> = { source: request.source, destination: request.destination };

  const state = new StateStore(request.stateDir, { source: request.source.id, destination: request.destination.id });
  state.lock();
  try {
    // One set of rules for both sides, from the source's .syncignore files: a path ignored on one
    // side only would look deleted there. Both sides are listed at once; the destination with the
    // source's ignore files of the last run, and again in the rare case that they changed since.
    const patterns = request.ignorePatterns ?? [];
    const skipped: SyncResult['skipped'] = [];
    const scan = async (side: Side, ignoreFiles: ScanOptions['ignoreFiles']): Promise<ScanResult> => {
      emit({ type: 'scan-start', side });
      const result = await scanTree(backends[side], {
        patterns,
        ignoreFiles,
        removeStaleTemp: !request.dryRun,
        ...(expectedFiles !== undefined ? { expectedFiles } : {}),
        ...(scope ? { scope } : {}),
        concurrency: limits.operations,
        columns: true,
        known: known[side],
        onProgress: (files) => emit({ type: 'scan-progress', side, files }),
        signal: controller.signal,
      });
      emit({ type: 'scan-complete', side, files: result.columns?.paths.length ?? result.tree.files.size, skipped: result.skipped.length });
      return result;
    };
    // What the last sync recorded of each side, for stores whose listings are coarser than their
    // exact times (FTP): settled as soon as the state is read, which happens while the scans run.
    let settleKnown: (table: BaseTable | undefined) => void = () => undefined;
    const knownTable = new Promise<BaseTable | undefined>((resolve) => (settleKnown = resolve));
    const knownOf = (side: Side) => knownTable.then((t) => (t && state.listedAt !== undefined ? knownFilesOf(t, side, state.listedAt) : undefined));
    const known: Record<Side, Promise<KnownFiles | undefined>> = { source: knownOf('source'), destination: knownOf('destination') };
    const previousIgnoreFiles = scope ? undefined : state.loadIgnoreFiles();
    const expectedFiles = state.estimatedBaseEntries();
    const sourceScan = scan('source', 'collect');
    const earlyDestinationScan = scope ? undefined : scan('destination', previousIgnoreFiles ?? {});
    // Both scans are under way (in worker threads for local folders): read the state meanwhile.
    let table: BaseTable;
    let firstSync: boolean;
    try {
      let stored: HashAlgorithm | undefined;
      ({ table, firstSync, hashAlgorithm: stored } = state.loadTable());
      settleKnown(table);
      state.hashAlgorithm = pairHashAlgorithm(stored, [backends.source.listedHashAlgorithm, backends.destination.listedHashAlgorithm]);
      if (!request.dryRun) {
        state.commit(table); // fold the journal of an interrupted run into the base
        const retention = request.trashRetentionDays ?? DEFAULT_TRASH_RETENTION_DAYS;
        for (const side of ['source', 'destination'] as const) await Trash.prune(backends[side], retention, now);
      }
    } finally {
      settleKnown(undefined); // no-op once settled; never leaves a scan waiting
      await Promise.allSettled([sourceScan, earlyDestinationScan]);
    }
    const sourceResult = await sourceScan;
    let destinationResult = earlyDestinationScan ? await earlyDestinationScan : undefined;
    if (!destinationResult || !sameIgnoreFiles(sourceResult.ignoreFiles, previousIgnoreFiles ?? {})) {
      destinationResult = await scan('destination', sourceResult.ignoreFiles);
    }
    if (!scope && !request.dryRun && !sameIgnoreFiles(sourceResult.ignoreFiles, previousIgnoreFiles ?? {})) state.saveIgnoreFiles(sourceResult.ignoreFiles);
    for (const [side, result] of [['source', sourceResult], ['destination', destinationResult]] as const) {
      skipped.push(...result.skipped.map((s: SkippedEntry) => ({ side, ...s })));
    }
    const joined = joinWithBase(sourceResult, destinationResult, table, scope ? (p) => inScope(p, scope) : undefined, !detectsChangesByMtime(options.compare));
    const { trees, settled } = joined;

    const caches: Record<Side, Map<string, HashCacheEntry>> = { source: state.loadHashCache('source'), destination: state.loadHashCache('destination') };
    fillKnownHashes(trees.source, 'source', joined.planBase, caches.source);
    fillKnownHashes(trees.destination, 'destination', joined.planBase, caches.destination);
    // What a side skipped (unreadable, a symlink now, a bad name) must not look deleted: such paths
    // stay out of the plan on both sides, and their base is kept for when they can be read again.
    let planBase = excludeFromPlan(skipped.map((s) => s.path), trees, joined.planBase);
    const requests = hashesNeeded(trees.source, trees.destination, planBase, options.compare);
    let hashed = 0;
    const hashErrors: { path: string; message: string }[] = [];
    await runLimited(requests, limits.operations, async ({ side, entry }) => {
      await controller.checkpoint();
      try {
        entry.hash = await hashFile(backends[side], entry.path, entry.size, state.hashAlgorithm, controller.signal);
        caches[side].set(entry.path, { size: entry.size, mtimeMs: entry.mtimeMs, ...(entry.ino !== undefined ? { ino: entry.ino } : {}), hash: entry.hash });
      } catch (error) {
        // An unreadable file is reported and left out of this run; the rest goes on.
        trees[side].files.delete(entry.path);
        hashErrors.push({ path: entry.path, message: `cannot read on the ${side} side: ${errorMessage(error)}` });
      }
      if (++hashed % 200 === 0 || hashed === requests.length) emit({ type: 'hash-progress', done: hashed, total: requests.length });
    });
    planBase = excludeFromPlan(hashErrors.map((e) => e.path), trees, planBase);

    const plan = makePlan({ source: trees.source, destination: trees.destination, base: planBase, options, firstSync, now });
    plan.counts.unchanged += settled;
    emit({ type: 'plan-ready', counts: plan.counts, warnings: plan.warnings });
    const fileCounts = { source: trees.source.files.size + settled, destination: trees.destination.files.size + settled };
    if (!request.force) checkGuards(plan, fileCounts, planBase.size + settled, scope !== undefined, request.maxDeletePercent ?? DEFAULT_MAX_DELETE_PERCENT);

    if (request.dryRun) {
      const stats = emptyStats();
      stats.durationMs = Date.now() - startedAt;
      stats.errors.push(...hashErrors);
      for (const item of plan.items) if (item.action === 'conflict') stats.conflicts.push({ path: item.path, reason: item.conflict.reason, ...(item.conflict.note ? { note: item.conflict.note } : {}) });
      return { plan, stats, skipped, hashAlgorithm: state.hashAlgorithm };
    }

    // The executor updates the planning base (it holds every path the plan touches) and reports
    // each change; the stored base is the table with those changes applied.
    const changes = new Map<string, BaseEntry | undefined>();
    for (const [p, entry] of joined.refreshed) {
      changes.set(p, entry);
      state.journal(p, entry);
    }
    const stamp = runStamp(now);
    const executor = new Executor({
      backends,
      trash: { source: new Trash(backends.source, stamp), destination: new Trash(backends.destination, stamp) },
      trees,
      base: planBase,
      journal: (p, e) => {
        changes.set(p, e);
        state.journal(p, e);
      },
      limits,
      controller,
      mtimeEstimateOk: !detectsChangesByMtime(options.compare),
      hashAlgorithm: state.hashAlgorithm,
      ...(request.onEvent ? { onEvent: request.onEvent } : {}),
    });
    const stats = await executor.run(plan);
    stats.errors.unshift(...hashErrors);
    // Every file of both sides was listed by this run and is now recorded as listed or as written.
    if (!scope && stats.errors.length === 0 && stats.conflicts.length === 0 && !stats.cancelled && skipped.length === 0) state.listedAt = startedAt;
    state.commit(changes.size > 0 ? table.withChanges(changes) : table);
    for (const side of ['source', 'destination'] as const) state.saveHashCache(side, unsyncedHashes(caches[side], trees[side], planBase, side));
    stats.durationMs = Date.now() - startedAt;
    emit({ type: 'sync-complete', stats });
    return { plan, stats, skipped, hashAlgorithm: state.hashAlgorithm };
  } finally {
    state.unlock();
  }
}

/** Keep cached hashes only for files the base does not already describe (it is the cache for the rest). */
function unsyncedHashes(cache: Map<string, HashCacheEntry>, tree: Tree, base: Base, side: Side): Map<string, HashCacheEntry> {
  const result = new Map<string, HashCacheEntry>();
  for (const [p, e] of cache) {
    const current = tree.files.get(p);
    if (!current || current.size !== e.size || current.mtimeMs !== e.mtimeMs) continue;
    const snap = base.get(p)?.[side];
    if (snap && snap.hash === e.hash && snap.mtimeMs === e.mtimeMs) continue;
    result.set(p, e);
  }
  return result;
}

/** A side's files as the base records them, for ListDirOptions.known. */
function knownFilesOf(table: BaseTable, side: Side, listedAt: number): KnownFiles {
  // Made on the first question: a listing asks about every file it lists.
  let rows: Map<string, number> | undefined;
  return {
    listedAt,
    get(path) {
      rows ??= new Map(table.paths.map((p, i) => [p, i]));
      const i = rows.get(path);
      return i === undefined ? undefined : { size: table.fileSize(i, side), mtimeMs: table.mtimeMs(i, side) };
    },
  };
}

