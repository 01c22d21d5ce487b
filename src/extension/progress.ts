// Progress of a run in a cancellable notification: files, bytes and ETA from the engine's totals.
import * as vscode from 'vscode';
import type { SyncResult } from '../core/engine';
import type { TargetSession } from './targetSession';

function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `, ${Math.ceil(seconds)} s left`;
  return `, ${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s left`;
}

/** Run with a notification that shows progress and whose Cancel button cancels the run. */
export function withSyncProgress(session: TargetSession, title: string, run: () => Promise<SyncResult>): Promise<SyncResult> {
  return Promise.resolve(
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `SyncEngine: ${title}`, cancellable: true }, async (progress, token) => {
      let lastPct = 0;
      const sub = session.onProgress(({ event }) => {
        switch (event.type) {
          case 'scan-start':
            progress.report({ message: `listing the ${event.side === 'source' ? 'local' : 'remote'} files…` });
            break;
          case 'hash-progress':
            progress.report({ message: `comparing content ${event.done}/${event.total}…` });
            break;
          case 'totals': {
            const pct = event.totalBytes > 0 ? (event.doneBytes / event.totalBytes) * 100 : event.totalFiles > 0 ? (event.doneFiles / event.totalFiles) * 100 : 0;
            const increment = Math.max(0, pct - lastPct);
            lastPct = pct;
            progress.report({
              increment,
              message: `${event.doneFiles}/${event.totalFiles} files, ${formatBytes(event.doneBytes)} of ${formatBytes(event.totalBytes)}${formatEta(event.etaSeconds)}`,
            });
            break;
          }
          case 'paused':
            progress.report({ message: 'paused' });
            break;
          default:
            break;
        }
      });
      const cancel = token.onCancellationRequested(() => session.controller?.cancel());
      try {
        return await run();
      } finally {
        sub.dispose();
        cancel.dispose();
      }
    }),
  );
}
