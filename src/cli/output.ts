// What the CLI prints: the live progress line, the plan, the summary, and the JSON summary.
import type { SyncEvent } from '../core/events';
import type { PlanItem } from '../core/model';
import type { SyncResult } from '../core/engine';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.ceil(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A single, rewritten status line on a terminal (stderr), throttled. */
export class ProgressLine {
  private last = 0;
  private shown = false;

  constructor(private readonly stream: { write(text: string): unknown; columns?: number }) {}

  handle(event: SyncEvent): void {
    let text: string | undefined;
    switch (event.type) {
      case 'scan-progress':
        text = `Scanning ${event.side}: ${event.files.toLocaleString('en-US')} files`;
        break;
      case 'hash-progress':
        text = `Hashing: ${event.done}/${event.total} files`;
        break;
      case 'totals': {
        const eta = event.etaSeconds !== undefined ? ` · ETA ${formatSeconds(event.etaSeconds)}` : '';
        text = `Syncing: ${event.doneFiles}/${event.totalFiles} files · ${formatBytes(event.doneBytes)}/${formatBytes(event.totalBytes)} · ${formatBytes(event.bytesPerSecond)}/s${eta}`;
        break;
      }
      case 'paused':
        text = 'Paused (send SIGUSR2 to resume)';
        break;
      case 'sync-complete':
        this.clear();
        return;
      default:
        return;
    }
    const now = Date.now();
    if (now - this.last < 100 && event.type !== 'paused') return;
    this.last = now;
    const width = this.stream.columns ?? 100;
    this.stream.write(`\r\x1b[2K${text.slice(0, width - 1)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stream.write('\r\x1b[2K');
    this.shown = false;
  }
}

export function describeItem(item: PlanItem): string {
  switch (item.action) {
    case 'copy': {
      const verb = item.to === 'destination' ? 'upload  ' : 'download';
      const why = item.conflict ? `conflict, ${item.conflict.winner} wins` : item.reason;
      return `${verb}             ${item.path}  (${why})`;
    }
    case 'delete':
      return `delete ${item.side === 'source' ? 'source     ' : 'destination'}   ${item.path}`;
    case 'rename':
      return `${item.keepOld ? 'copy' : 'move'} on ${item.side === 'source' ? 'source     ' : 'destination'} ${item.fromPath} -> ${item.path}`;
    case 'rename-dir':
      return `move folder on ${item.side} ${item.fromPath}/ -> ${item.path}/ (${item.files.length} files)`;
    case 'keep-both':
      return `keep both            ${item.path}  (${item.winner} wins; other version kept as ${item.conflictPath})`;
    case 'conflict':
      return `CONFLICT             ${item.path}  (${item.conflict.reason}${item.conflict.note ? `: ${item.conflict.note}` : ''})`;
    case 'record':
      return `record               ${item.path}  (identical)`;
    case 'forget':
      return `forget               ${item.path}  (gone on both sides)`;
  }
}

export function jsonSummary(command: string, source: string, destination: string, result: SyncResult, exitCode: number, dryRun: boolean): object {
  const { plan, stats, skipped } = result;
  const renames: { side: string; from: string; to: string; folder?: boolean }[] = [];
  for (const item of plan.items) {
    if (item.action === 'rename') renames.push({ side: item.side, from: item.fromPath, to: item.path });
    else if (item.action === 'rename-dir') renames.push({ side: item.side, from: item.fromPath, to: item.path, folder: true });
  }
  const summary: Record<string, unknown> = {
    command,
    source,
    destination,
    mode: plan.options.mode,
    compare: plan.options.compare,
    conflictStrategy: plan.options.conflict,
    firstSync: plan.firstSync,
    dryRun,
    counts: plan.counts,
    renames,
    conflicts: stats.conflicts,
    errors: stats.errors,
    skipped,
    warnings: plan.warnings,
    exitCode,
  };
  if (!dryRun) {
    summary.done = {
      uploaded: stats.uploaded,
      downloaded: stats.downloaded,
      deletedSource: stats.deletedSource,
      deletedDestination: stats.deletedDestination,
      renamedSource: stats.renamedSource,
      renamedDestination: stats.renamedDestination,
      conflictsResolved: stats.conflictsResolved,
      recorded: stats.recorded,
      bytesTransferred: stats.bytesTransferred,
      durationMs: stats.durationMs,
      cancelled: stats.cancelled,
    };
  }
  if (command === 'plan') summary.items = plan.items.map((i) => ({ ...i }));
  return summary;
}

export function humanSummary(result: SyncResult, dryRun: boolean): string {
  const { plan, stats, skipped } = result;
  const c = plan.counts;
  const lines: string[] = [];
  const parts = (pairs: [number, string][]) => pairs.filter(([n]) => n > 0).map(([n, s]) => `${n} ${s}`);
  if (dryRun) {
    const todo = parts([
      [c.upload, `to upload (${formatBytes(c.uploadBytes)})`],
      [c.download, `to download (${formatBytes(c.downloadBytes)})`],
      [c.deleteDestination, 'to delete on the destination'],
      [c.deleteSource, 'to delete on the source'],
      [c.renameDestination, 'to move on the destination'],
      [c.renameSource, 'to move on the source'],
      [c.conflictsResolved, 'conflicts to settle by strategy'],
      [c.conflicts, 'conflicts left for you'],
    ]);
    lines.push(todo.length ? `Would change: ${todo.join(', ')}.` : 'In sync: nothing to do.');
  } else {
    const done = parts([
      [stats.uploaded, 'uploaded'],
      [stats.downloaded, 'downloaded'],
      [stats.deletedDestination, 'deleted on the destination'],
      [stats.deletedSource, 'deleted on the source'],
      [stats.renamedDestination, 'moved on the destination'],
      [stats.renamedSource, 'moved on the source'],
      [stats.conflictsResolved, 'conflicts settled'],
    ]);
    const took = `${(stats.durationMs / 1000).toFixed(2)}s`;
    const what = `${done.join(', ')} (${formatBytes(stats.bytesTransferred)} transferred)`;
    // "In sync" only when it is true: not after a cancel, an error or a conflict left open.
    if (stats.cancelled) lines.push(`Cancelled after ${took}${done.length ? `, with ${what} before that` : ''}; finished work is saved and the next run goes on from there.`);
    else if (done.length) lines.push(`Done in ${took}: ${what}.`);
    else if (stats.errors.length === 0 && stats.conflicts.length === 0) lines.push(`In sync (${took}): nothing to do.`);
    else lines.push(`Nothing changed (${took}).`);
  }
  for (const w of plan.warnings) lines.push(`Warning: ${w}`);
  for (const s of skipped.slice(0, 20)) lines.push(`Skipped on the ${s.side}: ${s.path} (${s.reason})`);
  if (skipped.length > 20) lines.push(`…and ${skipped.length - 20} more skipped`);
  for (const k of stats.conflicts) lines.push(`Conflict: ${k.path} (${k.reason}${k.note ? `: ${k.note}` : ''})`);
  for (const e of stats.errors) lines.push(`Error: ${e.path}: ${e.message}`);
  return lines.join('\n');
}
