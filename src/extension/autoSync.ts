// Syncs that start by themselves: sync on save (every target of the file's folder that has
// "syncOnSave"), an optional watcher for changes made outside the editor, and optional polling of
// the remote for incoming changes. Nothing starts by itself in an untrusted workspace.
import * as vscode from 'vscode';
import { isEngineName } from '../core/paths';
import type { SyncResult } from '../core/engine';
import { log, showError } from './log';
import type { SyncModel } from './model';
import type { TargetSession } from './targetSession';
import { errorMessage } from '../core/errors';

/** Uploads a saved file after checking the remote copy has not changed since the last sync. */
export async function syncSavedFile(session: TargetSession, relPath: string): Promise<SyncResult | undefined> {
  const mode = session.config.options.mode ?? 'two-way';
  if (mode === 'destination-to-source' || mode === 'destination-backup') return undefined; // this target only downloads
  // A change on the remote since the last sync becomes a conflict, never an overwrite.
  const options = { mode: 'two-way' as const, conflict: 'manual' as const };
  if (mode !== 'two-way') {
    // One-way targets never download: look first, and only upload when that is all there is to do.
    const preview = await session.run({ kind: 'save', scope: [relPath], options, dryRun: true });
    const c = preview.plan.counts;
    if (c.download > 0 || c.deleteSource > 0 || c.renameSource > 0) {
      log().warn(`${session.label}: ${relPath} changed on the remote since the last sync; not uploaded (the target only uploads).`);
      return preview;
    }
    if (c.upload + c.renameDestination + c.deleteDestination === 0) return preview;
  }
  return session.run({ kind: 'save', scope: [relPath], options });
}

function describeConflict(reason: string): string {
  switch (reason) {
    case 'both-modified':
    case 'both-created':
      return 'it changed on the remote too since the last sync';
    case 'changed-during-sync':
      return 'it changed again while it was being synced';
    case 'type-mismatch':
      return 'a file on one side is a folder on the other';
    default:
      return reason;
  }
}

export class AutoSync implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** Per session and path: a save run in flight, and whether another save came in meanwhile. */
  private readonly inFlight = new Map<string, { again: boolean }>();
  private watchers: vscode.Disposable[] = [];
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(private readonly model: SyncModel) {
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((doc) => this.onSave(doc.uri)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('syncengine')) this.configure();
      }),
      model.onDidChange(() => this.configureSoon()),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.configure()),
    );
    this.configure();
  }

  private configureTimer: NodeJS.Timeout | undefined;
  private configuredFor = '';
  private configureSoon(): void {
    const key = this.model.sessions().map((s) => `${s.folder.uri}#${s.name}#${s.config.localRoot}`).join('|');
    if (key === this.configuredFor) return;
    if (this.configureTimer) clearTimeout(this.configureTimer);
    this.configureTimer = setTimeout(() => this.configure(), 100);
  }

  private configure(): void {
    this.configuredFor = this.model.sessions().map((s) => `${s.folder.uri}#${s.name}#${s.config.localRoot}`).join('|');
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    if (!vscode.workspace.isTrusted) return;
    const settings = vscode.workspace.getConfiguration('syncengine');
    if (settings.get<boolean>('watchExternalChanges', false)) {
      for (const session of this.model.sessions()) {
        const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(session.config.localRoot), '**/*'));
        const changed = (uri: vscode.Uri) => this.onExternalChange(session, uri);
        this.watchers.push(watcher, watcher.onDidChange(changed), watcher.onDidCreate(changed), watcher.onDidDelete(changed));
      }
    }
    const seconds = settings.get<number>('pollRemoteSeconds', 0);
    if (seconds > 0) {
      this.pollTimer = setInterval(() => {
        for (const session of this.model.sessions()) {
          if (session.running) continue;
          session.run({ kind: 'preview', dryRun: true }).catch((error: unknown) => log().warn(`${session.label}: polling the remote failed: ${errorMessage(error)}`));
        }
      }, Math.max(10, seconds) * 1000);
      this.pollTimer.unref?.();
    }
  }

  private onSave(uri: vscode.Uri): void {
    if (!vscode.workspace.isTrusted || !this.model.syncOnSave) return;
    for (const session of this.model.sessionsFor(uri)) {
      if (!session.config.syncOnSave) continue;
      const rel = session.relativePath(uri);
      if (!rel || rel.split('/').some(isEngineName)) continue;
      this.schedule(session, rel);
    }
  }

  private pending = new Map<string, { session: TargetSession; paths: Set<string>; timer: NodeJS.Timeout }>();
  private onExternalChange(session: TargetSession, uri: vscode.Uri): void {
    const rel = session.relativePath(uri);
    if (!rel || rel.split('/').some(isEngineName) || session.recentlyWritten.has(rel)) return;
    // Bursts (a git checkout, a build) become one scoped run after they calm down.
    const key = `${session.folder.uri}#${session.name}`;
    const entry = this.pending.get(key);
    if (entry) {
      entry.paths.add(rel);
      entry.timer.refresh();
      return;
    }
    const paths = new Set([rel]);
    const timer = setTimeout(() => {
      this.pending.delete(key);
      const scope = [...paths].filter((p) => !session.recentlyWritten.has(p));
      if (scope.length === 0) return;
      session.run({ kind: 'save', scope, options: { conflict: 'manual' } }).then(
        (result) => this.report(session, result),
        (error: unknown) => void showError(`SyncEngine: ${session.label}: ${errorMessage(error)}`),
      );
    }, 500);
    this.pending.set(key, { session, paths, timer });
  }

  /** Quick successive saves coalesce: one run at a time per file, and one more if saved meanwhile. */
  private schedule(session: TargetSession, rel: string): void {
    const key = `${session.folder.uri}#${session.name}#${rel}`;
    const running = this.inFlight.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.inFlight.set(key, state);
    const started = Date.now();
    const loop = async (): Promise<void> => {
      try {
        do {
          state.again = false;
          const result = await syncSavedFile(session, rel);
          if (result) {
            log().info(`${session.label}: saved ${rel} synced in ${Date.now() - started} ms`);
            this.report(session, result);
          }
        } while (state.again);
      } catch (error) {
        void showError(`SyncEngine: could not upload ${rel} to ${session.label}: ${errorMessage(error)}`);
      } finally {
        this.inFlight.delete(key);
      }
    };
    void loop();
  }

  private report(session: TargetSession, result: SyncResult): void {
    for (const c of result.stats.conflicts) {
      void vscode.window
        .showWarningMessage(`SyncEngine: ${c.path} was not synced with ${session.label}: ${describeConflict(c.reason)}.`, 'Resolve…')
        .then((choice) => {
          if (choice) void vscode.commands.executeCommand('syncengine.resolveConflict', { kind: 'change', session, change: { path: c.path, direction: 'conflict', reason: c.reason } });
        });
    }
    for (const e of result.stats.errors) void showError(`SyncEngine: ${session.label}: ${e.path}: ${e.message}`);
  }

  dispose(): void {
    for (const d of [...this.disposables, ...this.watchers]) d.dispose();
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }
}
