// The planner: a pure function from (source tree, destination tree, base, options) to a plan.
// Every decision attributes a change to the side that changed relative to the base; the two sides'
// clocks are compared only to settle a conflict under newest-wins.
import type { Entry } from '../backends/types';
import { changedSinceBase, mtimeUntrusted, mtimesClose, sameContent, snapshotStale } from './compare';
import type {
  BaseEntry,
  ConflictInfo,
  ConflictReason,
  CopyReason,
  Plan,
  PlanCounts,
  PlanInput,
  PlanItem,
  RenameDirItem,
  RenameItem,
  Tree,
} from './model';
import { otherSide, type PlanOptions, type Side, type SyncMode } from './options';
import { baseName, parentOf } from './paths';

/** How one side's current entry relates to the base. */
type Status = 'none' | 'created' | 'unchanged' | 'modified' | 'deleted';

interface PathView {
  path: string;
  base?: BaseEntry;
  source?: Entry;
  destination?: Entry;
  sourceStatus: Status;
  destinationStatus: Status;
}

const SIDES: readonly Side[] = ['source', 'destination'];

export function emptyCounts(): PlanCounts {
  return {
    upload: 0,
    download: 0,
    deleteSource: 0,
    deleteDestination: 0,
    renameSource: 0,
    renameDestination: 0,
    conflicts: 0,
    conflictsResolved: 0,
    record: 0,
    forget: 0,
    unchanged: 0,
    uploadBytes: 0,
    downloadBytes: 0,
  };
}

function statusOf(base: BaseEntry | undefined, side: Side, current: Entry | undefined, options: PlanOptions): Status {
  if (!base) return current ? 'created' : 'none';
  if (!current) return 'deleted';
  return changedSinceBase(base[side], current, options.compare) ? 'modified' : 'unchanged';
}

/** `name.ext` → `name.conflict-<side>-<yyyymmdd-hhmmss>.ext` (dotfiles and extensionless names keep no ext). */
export function conflictName(path: string, loser: Side, now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-` +
    `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const dir = parentOf(path);
  const name = baseName(path);
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  const renamed = `${stem}.conflict-${loser}-${stamp}${ext}`;
  return dir ? `${dir}/${renamed}` : renamed;
}

/** The side a one-way mode copies from, or undefined for two-way. */
function authoritativeSide(mode: SyncMode): Side | undefined {
  if (mode === 'source-to-destination' || mode === 'source-backup') return 'source';
  if (mode === 'destination-to-source' || mode === 'destination-backup') return 'destination';
  return undefined;
}

function isBackupMode(mode: SyncMode): boolean {
  return mode === 'source-backup' || mode === 'destination-backup';
}

export function plan(input: PlanInput): Plan {
  const { options } = input;
  const items: PlanItem[] = [];
  const warnings: string[] = [];
  const handled = new Set<string>();
  const views = buildViews(input);
  const authority = authoritativeSide(options.mode);

  for (const item of typeMismatches(input, views, handled)) items.push(item);
  for (const item of detectRenames(input, views, handled, authority)) items.push(item);

  const unchangedPaths: string[] = [];
  for (const view of views.values()) {
    if (handled.has(view.path)) continue;
    const item = authority ? decideOneWay(view, authority, isBackupMode(options.mode), options) : decideTwoWay(view, input);
    if (item) items.push(item);
    else unchangedPaths.push(view.path);
  }

  if (input.firstSync) warnings.push(...sizeImbalanceWarnings(input));
  items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const counts = countItems(items);
  counts.unchanged = unchangedPaths.length;
  return { options, items, counts, firstSync: input.firstSync, warnings };
}

function buildViews(input: PlanInput): Map<string, PathView> {
  const views = new Map<string, PathView>();
  const view = (path: string): PathView => {
    let v = views.get(path);
    if (!v) {
      v = { path, sourceStatus: 'none', destinationStatus: 'none' };
      views.set(path, v);
    }
    return v;
  };
  for (const [path, entry] of input.source.files) view(path).source = entry;
  for (const [path, entry] of input.destination.files) view(path).destination = entry;
  for (const [path, base] of input.base) view(path).base = base;
  for (const v of views.values()) {
    v.sourceStatus = statusOf(v.base, 'source', v.source, input.options);
    v.destinationStatus = statusOf(v.base, 'destination', v.destination, input.options);
  }
  return views;
}

/** A file on one side where the other side has a folder: never resolved automatically. */
function typeMismatches(input: PlanInput, views: Map<string, PathView>, handled: Set<string>): PlanItem[] {
  // Paths that are a folder on one side and a file on the other (rare: usually none at all).
  const clashes: string[] = [];
  for (const dir of input.source.dirs) if (input.destination.files.has(dir)) clashes.push(dir);
  for (const dir of input.destination.dirs) if (input.source.files.has(dir)) clashes.push(dir);
  if (clashes.length === 0) return [];
  const items: PlanItem[] = [];
  for (const v of views.values()) {
    const clash = clashes.some((c) => v.path === c || v.path.startsWith(`${c}/`));
    if (!clash || handled.has(v.path) || (!v.source && !v.destination)) continue;
    handled.add(v.path);
    items.push({
      action: 'conflict',
      path: v.path,
      source: v.source,
      destination: v.destination,
      conflict: { reason: 'type-mismatch', strategy: input.options.conflict, note: 'a file on one side is a folder on the other' },
    });
  }
  return items;
}

/**
 * Renames and moves: a new file whose hash equals the base hash of a file that vanished from the
 * same side. Replayed on the other side when that side still holds the old file unchanged and
 * nothing at the new path; otherwise left to the table as a delete plus a create, which loses nothing.
 */
function detectRenames(input: PlanInput, views: Map<string, PathView>, handled: Set<string>, authority: Side | undefined): PlanItem[] {
  const renames: RenameItem[] = [];
  const backup = isBackupMode(input.options.mode);
  for (const side of authority ? [authority] : SIDES) {
    const other = otherSide(side);
    const statusKey = side === 'source' ? 'sourceStatus' : 'destinationStatus';
    const otherStatusKey = side === 'source' ? 'destinationStatus' : 'sourceStatus';
    const vanished = new Map<string, PathView[]>();
    for (const v of views.values()) {
      if (handled.has(v.path) || v[statusKey] !== 'deleted') continue;
      const hash = v.base?.[side].hash;
      if (hash === undefined) continue;
      const key = `${v.base![side].size}:${hash}`;
      const list = vanished.get(key);
      if (list) list.push(v);
      else vanished.set(key, [v]);
    }
    if (vanished.size === 0) continue;
    const created = [...views.values()].filter((v) => !handled.has(v.path) && v[statusKey] === 'created' && v[side]?.hash !== undefined);
    created.sort((a, b) => (a.path < b.path ? -1 : 1));
    for (const target of created) {
      const entry = target[side]!;
      const candidates = vanished.get(`${entry.size}:${entry.hash}`);
      if (!candidates || candidates.length === 0) continue;
      // Prefer the vanished file with the same name (a move), then the one in the same folder (a rename).
      let index = candidates.findIndex((c) => baseName(c.path) === baseName(target.path));
      if (index < 0) index = candidates.findIndex((c) => parentOf(c.path) === parentOf(target.path));
      if (index < 0) index = 0;
      const origin = candidates[index]!;
      const otherAtOld = origin[other];
      const replayable = origin[otherStatusKey] === 'unchanged' && otherAtOld !== undefined && target[otherStatusKey] === 'none';
      if (!replayable) continue;
      candidates.splice(index, 1);
      handled.add(origin.path);
      handled.add(target.path);
      const item: RenameItem = {
        action: 'rename',
        side: other,
        fromPath: origin.path,
        path: target.path,
        fromEntry: otherAtOld,
        keepOld: backup,
        [side]: entry,
      };
      renames.push(item);
    }
  }
  return collapseDirectoryMoves(renames, input);
}

/**
 * When every file of a folder moved to the same new folder on one side, and the other side's old
 * folder holds exactly those files and the new folder does not exist there, one folder rename
 * replaces the per-file renames.
 */
function collapseDirectoryMoves(renames: RenameItem[], input: PlanInput): PlanItem[] {
  const result: PlanItem[] = [];
  const groups = new Map<string, RenameItem[]>();
  for (const r of renames) {
    const move = commonMove(r.fromPath, r.path);
    if (!move || r.keepOld) {
      result.push(r);
      continue;
    }
    const key = `${r.side}\u0000${move.from}\u0000${move.to}`;
    const list = groups.get(key);
    if (list) list.push(r);
    else groups.set(key, [r]);
  }
  for (const [key, list] of groups) {
    const [side, from, to] = key.split('\u0000') as [Side, string, string];
    const actedTree = side === 'source' ? input.source : input.destination;
    const movedTree = side === 'source' ? input.destination : input.source;
    const prefixFrom = `${from}/`;
    const prefixTo = `${to}/`;
    const filesUnderOld = [...actedTree.files.keys()].filter((p) => p.startsWith(prefixFrom));
    const movedSideHasOld = [...movedTree.files.keys()].some((p) => p.startsWith(prefixFrom)) || movedTree.dirs.has(from);
    const whole =
      list.length > 1 &&
      filesUnderOld.length === list.length &&
      !movedSideHasOld &&
      !actedTree.dirs.has(to) &&
      ![...actedTree.files.keys()].some((p) => p.startsWith(prefixTo) || p === to) &&
      ![...input.base.keys()].some((p) => p.startsWith(prefixFrom) && !list.some((r) => r.fromPath === p));
    if (!whole) {
      result.push(...list);
      continue;
    }
    const item: RenameDirItem = {
      action: 'rename-dir',
      side,
      fromPath: from,
      path: to,
      files: list.map((r) => ({ fromPath: r.fromPath, path: r.path, fromEntry: r.fromEntry, newEntry: r[otherSide(side)]! })),
    };
    result.push(item);
  }
  return result;
}

/** The folder-level move that turns `from` into `to` when only a leading folder changed. */
function commonMove(from: string, to: string): { from: string; to: string } | undefined {
  const a = from.split('/');
  const b = to.split('/');
  let i = 0;
  while (i < a.length && i < b.length && a[a.length - 1 - i] === b[b.length - 1 - i]) i++;
  // i = number of trailing segments shared; at least the file name, and both must keep a folder part.
  if (i === 0 || i >= a.length || i >= b.length) return undefined;
  return { from: a.slice(0, a.length - i).join('/'), to: b.slice(0, b.length - i).join('/') };
}

function copy(view: PathView, to: Side, reason: CopyReason, conflict?: ConflictInfo): PlanItem {
  const item: PlanItem = { action: 'copy', path: view.path, to, reason, source: view.source, destination: view.destination };
  if (conflict) item.conflict = conflict;
  return item;
}

/** Identical content on both sides: update the base only where it is missing or stale. */
function recordIfStale(view: PathView): PlanItem | undefined {
  const { source, destination, base } = view;
  if (!source || !destination) return undefined;
  if (base && !snapshotStale(base.source, source) && !snapshotStale(base.destination, destination)) return undefined;
  return { action: 'record', path: view.path, source, destination };
}

function decideTwoWay(view: PathView, input: PlanInput): PlanItem | undefined {
  const s = view.sourceStatus;
  const d = view.destinationStatus;
  const compare = input.options.compare;
  if (s === 'none' && d === 'none') return undefined;
  if (s === 'created' && d === 'none') return copy(view, 'destination', 'created');
  if (s === 'none' && d === 'created') return copy(view, 'source', 'created');
  if (s === 'deleted' && d === 'deleted') return { action: 'forget', path: view.path };
  if (s === 'deleted' && d === 'unchanged') return { action: 'delete', path: view.path, side: 'destination', reason: 'deleted', destination: view.destination };
  if (s === 'unchanged' && d === 'deleted') return { action: 'delete', path: view.path, side: 'source', reason: 'deleted', source: view.source };
  // Delete against modify: the modified copy wins and is restored to the side that deleted it.
  if (s === 'deleted' && d === 'modified') return copy(view, 'source', 'restored');
  if (s === 'modified' && d === 'deleted') return copy(view, 'destination', 'restored');
  if (s === 'modified' && d === 'unchanged') return copy(view, 'destination', 'modified');
  if (s === 'unchanged' && d === 'modified') return copy(view, 'source', 'modified');
  if (s === 'unchanged' && d === 'unchanged') return recordIfStale(view);
  // Both created or both modified.
  const source = view.source!;
  const destination = view.destination!;
  if (sameContent(source, destination, compare)) return recordIfStale(view);
  const reason: ConflictReason = s === 'created' ? 'both-created' : 'both-modified';
  if (input.firstSync && input.options.initial !== 'merge') {
    const winner: Side = input.options.initial === 'source-wins' ? 'source' : 'destination';
    return copy(view, otherSide(winner), 'initial');
  }
  return resolveConflict(view, reason, input);
}

function resolveConflict(view: PathView, reason: ConflictReason, input: PlanInput): PlanItem {
  const { conflict: strategy, compare } = input.options;
  const source = view.source!;
  const destination = view.destination!;
  const info: ConflictInfo = { reason, strategy };
  const newer = (): Side | undefined => {
    if (mtimesClose(source.mtimeMs, destination.mtimeMs)) return undefined;
    return source.mtimeMs > destination.mtimeMs ? 'source' : 'destination';
  };
  switch (strategy) {
    case 'manual':
      return { action: 'conflict', path: view.path, source, destination, conflict: info };
    case 'source-wins':
    case 'destination-wins': {
      const winner: Side = strategy === 'source-wins' ? 'source' : 'destination';
      return copy(view, otherSide(winner), 'conflict', { ...info, winner });
    }
    case 'newest-wins': {
      if (mtimeUntrusted(compare)) {
        info.note = `${compare} comparison trusts no modification time, so newest-wins cannot choose`;
        return { action: 'conflict', path: view.path, source, destination, conflict: info };
      }
      const winner = newer();
      if (winner) return copy(view, otherSide(winner), 'conflict', { ...info, winner });
      // Same time to within the tolerance: keep both rather than guess.
      info.note = 'both versions have the same modification time; both kept';
      return keepBoth(view, 'source', input, info);
    }
    case 'keep-both':
      return keepBoth(view, mtimeUntrusted(compare) ? 'source' : newer() ?? 'source', input, info);
  }
}

function keepBoth(view: PathView, winner: Side, input: PlanInput, info: ConflictInfo): PlanItem {
  const loser = otherSide(winner);
  return {
    action: 'keep-both',
    path: view.path,
    source: view.source!,
    destination: view.destination!,
    winner,
    conflictPath: conflictName(view.path, loser, input.now),
    conflict: { ...info, winner },
  };
}

/**
 * One-way modes: the target side is made to hold what the authoritative side holds. Mirrors delete
 * what the authoritative side lacks; backups never delete. Nothing is ever written to the
 * authoritative side. Overwritten and deleted target files go to the target's trash.
 */
function decideOneWay(view: PathView, authority: Side, backup: boolean, options: PlanOptions): PlanItem | undefined {
  const target = otherSide(authority);
  const have = view[authority];
  const there = view[target];
  if (have) {
    if (!there) return copy(view, target, view.base ? 'restored' : 'created');
    const statusA = authority === 'source' ? view.sourceStatus : view.destinationStatus;
    const statusT = target === 'source' ? view.sourceStatus : view.destinationStatus;
    const same = statusA === 'unchanged' && statusT === 'unchanged' ? true : sameContent(view.source!, view.destination!, options.compare);
    if (same) return recordIfStale(view);
    return copy(view, target, statusA === 'created' || statusA === 'modified' ? (view.base ? 'modified' : 'created') : 'mirror');
  }
  if (there && !backup) return { action: 'delete', path: view.path, side: target, reason: view.base ? 'deleted' : 'mirror', [target]: there };
  return view.base ? { action: 'forget', path: view.path } : undefined;
}

function sizeImbalanceWarnings(input: PlanInput): string[] {
  const count = (tree: Tree) => tree.files.size;
  const s = count(input.source);
  const d = count(input.destination);
  const [big, small, bigName, smallName] = s >= d ? [s, d, 'source', 'destination'] : [d, s, 'destination', 'source'];
  if (small > 0 && big >= 10 && big >= small * 10) {
    return [`First sync: the ${bigName} has ${big} files but the ${smallName} only ${small}. Check that both paths are the ones you meant.`];
  }
  return [];
}

export function countItems(items: readonly PlanItem[]): PlanCounts {
  const c = emptyCounts();
  for (const item of items) {
    switch (item.action) {
      case 'copy': {
        const from = item.to === 'destination' ? item.source : item.destination;
        if (item.to === 'destination') {
          c.upload++;
          c.uploadBytes += from?.size ?? 0;
        } else {
          c.download++;
          c.downloadBytes += from?.size ?? 0;
        }
        if (item.conflict) c.conflictsResolved++;
        break;
      }
      case 'delete':
        if (item.side === 'source') c.deleteSource++;
        else c.deleteDestination++;
        break;
      case 'rename':
        if (item.side === 'source') c.renameSource++;
        else c.renameDestination++;
        break;
      case 'rename-dir':
        if (item.side === 'source') c.renameSource += item.files.length;
        else c.renameDestination += item.files.length;
        break;
      case 'record':
        c.record++;
        break;
      case 'forget':
        c.forget++;
        break;
      case 'conflict':
        c.conflicts++;
        break;
      case 'keep-both': {
        c.conflictsResolved++;
        const loser = otherSide(item.winner);
        const size = (loser === 'source' ? item.source : item.destination).size;
        const winSize = (item.winner === 'source' ? item.source : item.destination).size;
        // The loser's copy crosses to the winner's side, the winner's content to the loser's side.
        if (loser === 'source') {
          c.upload++;
          c.uploadBytes += size;
          c.download++;
          c.downloadBytes += winSize;
        } else {
          c.download++;
          c.downloadBytes += size;
          c.upload++;
          c.uploadBytes += winSize;
        }
        break;
      }
    }
  }
  return c;
}
