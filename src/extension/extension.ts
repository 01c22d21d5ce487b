// Activation: wire the model to its views and commands. Nothing connects here: backends (ssh2,
// basic-ftp, the AWS SDK) load on the first sync that needs them.
import * as vscode from 'vscode';
import type { SyncResult } from '../core/engine';
import { Commands } from './commands';
import { ConflictResolver, SNAPSHOT_SCHEME, SnapshotProvider } from './conflicts';
import { Credentials } from './credentials';
import { disposeLog, log } from './log';
import { SyncModel } from './model';
import { REMOTE_SCHEME, RemoteFileSystemProvider } from './remoteFileSystem';
import { StatusBar } from './statusBar';
import { AutoSync } from './autoSync';
import { SyncView } from './syncView';

/** What the extension exports: used by its own in-editor tests and by other extensions. */
export interface SyncEngineApi {
  syncNow(): Promise<SyncResult[] | undefined>;
  state(): { syncOnSave: boolean; status: string; conflicts: number; targets: string[]; configErrors: string[] };
  /** Resolves when no run is in progress or queued. */
  idle(): Promise<void>;
  activationMs: number;
  /** activate()'s parts, "name ms" each (model, providers, status bar, sync view, auto sync, commands). */
  activationSteps: string[];
}

export function activate(context: vscode.ExtensionContext): SyncEngineApi {
  const started = performance.now();
  // Where activation time goes, for the log (a slow start is easier to report with it).
  const steps: string[] = [];
  const step = <T>(name: string, make: () => T): T => {
    const t = performance.now();
    const value = make();
    steps.push(`${name} ${(performance.now() - t).toFixed(1)}`);
    return value;
  };
  step('log', () => log());
  const model = step('model', () => new SyncModel(context, new Credentials(context)));
  const remoteFs = new RemoteFileSystemProvider(model);
  const snapshots = new SnapshotProvider();
  const conflicts = new ConflictResolver(model, remoteFs, snapshots);
  context.subscriptions.push(
    model,
    step('providers', () => vscode.workspace.registerFileSystemProvider(REMOTE_SCHEME, remoteFs, { isReadonly: true, isCaseSensitive: true })),
    vscode.workspace.registerTextDocumentContentProvider(SNAPSHOT_SCHEME, snapshots),
    conflicts,
  );
  const statusBar = step('status bar', () => new StatusBar(model));
  context.subscriptions.push(
    statusBar,
    step('sync view', () => new SyncView(model)),
    step('auto sync', () => new AutoSync(model)),
    step('commands', () => new Commands(model, conflicts)),
    { dispose: disposeLog },
  );
  const activationMs = performance.now() - started;
  log().info(`SyncEngine activated in ${activationMs.toFixed(1)} ms (${steps.join(', ')} ms)${vscode.workspace.isTrusted ? '' : ' (Restricted Mode: nothing connects by itself)'}`);
  return {
    syncNow: () => Promise.resolve(vscode.commands.executeCommand<SyncResult[] | undefined>('syncengine.syncNow')),
    state: () => {
      const sessions = model.sessions();
      return {
        syncOnSave: model.syncOnSave,
        status: statusBarText(statusBar),
        conflicts: sessions.reduce((n, s) => n + s.conflicts().length, 0),
        targets: sessions.map((s) => s.label),
        configErrors: model.configErrors(),
      };
    },
    idle: async () => {
      await Promise.all(model.sessions().map((s) => s.idle()));
    },
    activationMs,
    activationSteps: steps,
  };
}

function statusBarText(statusBar: StatusBar): string {
  return statusBar.text;
}

export function deactivate(): void {
  // Everything is in context.subscriptions; open connections close as their sessions are disposed.
}
