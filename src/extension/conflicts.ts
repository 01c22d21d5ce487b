// Conflict resolution: a conflict opens VS Code's diff editor (remote left, local right) with
// editor-title actions Accept Local / Accept Remote / Keep Both / Merge. A resolution is one scoped
// engine run with the matching strategy, so both sides and the state are updated the usual way and
// the losing version stays recoverable (trash or conflict copy).
import * as vscode from 'vscode';
import type { ConflictStrategy } from '../core/options';
import { errorMessage } from '../core/errors';
import { log, showError } from './log';
import type { SyncModel } from './model';
import { remoteUri, type RemoteFileSystemProvider } from './remoteFileSystem';
import type { TargetSession } from './targetSession';

export const SNAPSHOT_SCHEME = 'syncengine-snapshot';

/** Read-only in-memory documents: the local version and the base shown in the merge editor. */
export class SnapshotProvider implements vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  set(uri: vscode.Uri, content: string): void {
    this.contents.set(uri.toString(), content);
  }
  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }
}

export interface ConflictTarget {
  session: TargetSession;
  path: string;
}

export class ConflictResolver implements vscode.Disposable {
  /** Files open in the merge editor: saving the result accepts it as the local version. */
  private readonly merging = new Map<string, ConflictTarget>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly model: SyncModel,
    private readonly remoteFs: RemoteFileSystemProvider,
    private readonly snapshots: SnapshotProvider,
  ) {
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((doc) => {
        const target = this.merging.get(doc.uri.toString());
        if (!target) return;
        this.merging.delete(doc.uri.toString());
        void this.resolve(target, 'source-wins', 'Merged result uploaded');
      }),
    );
  }

  isMerging(uri: vscode.Uri): boolean {
    return this.merging.has(uri.toString());
  }

  /** The conflict a resource (a local file, or its remote version) belongs to. */
  find(uri: vscode.Uri | undefined): ConflictTarget | undefined {
    if (!uri) return undefined;
    for (const session of this.model.sessions()) {
      let rel: string | undefined;
      if (uri.scheme === 'syncengine-remote') {
        const q = new URLSearchParams(uri.query);
        if (q.get('folder') === session.folder.uri.fsPath && q.get('target') === session.name) rel = uri.path.replace(/^\/+/, '');
      } else rel = session.relativePath(uri);
      if (rel !== undefined && session.conflicts().some((c) => c.path === rel)) return { session, path: rel };
    }
    return undefined;
  }

  async pick(): Promise<ConflictTarget | undefined> {
    const all = this.model.sessions().flatMap((session) => session.conflicts().map((c) => ({ session, path: c.path, reason: c.reason })));
    if (all.length === 0) {
      void vscode.window.showInformationMessage('SyncEngine: no conflicts. Run Preview Sync to look for changes.');
      return undefined;
    }
    if (all.length === 1) return all[0];
    const picked = await vscode.window.showQuickPick(
      all.map((c) => ({ label: c.path, description: `${c.session.label} · ${c.reason}`, conflict: c })),
      { title: 'SyncEngine: Resolve Conflict', placeHolder: 'Choose a conflict to open' },
    );
    return picked?.conflict;
  }

  /** Remote on the left, local on the right, with the resolution actions in the editor title. */
  async open(target: ConflictTarget): Promise<void> {
    const local = target.session.localUri(target.path);
    const remote = remoteUri(target.session, target.path);
    this.remoteFs.refresh([remote]);
    const name = target.path.split('/').pop();
    await vscode.commands.executeCommand('vscode.diff', remote, local, `${name} (${target.session.name}) ↔ Local — Conflict`, { preview: false });
  }

  async resolve(target: ConflictTarget, strategy: ConflictStrategy, what: string): Promise<boolean> {
    const { session, path } = target;
    try {
      const result = await session.run({ kind: 'resolve', scope: [path], options: { mode: 'two-way', conflict: strategy } });
      this.remoteFs.refresh([remoteUri(session, path)]);
      if (result.stats.errors.length > 0) {
        await showError(`SyncEngine: ${path}: ${result.stats.errors.map((e) => e.message).join('; ')}`);
        return false;
      }
      if (result.stats.conflicts.some((c) => c.path === path)) {
        void vscode.window.showWarningMessage(`SyncEngine: ${path} changed again while it was being resolved; look at it once more.`);
        return false;
      }
      log().info(`${session.label}: conflict on ${path} resolved (${strategy})`);
      void vscode.window.showInformationMessage(`SyncEngine: ${what}: ${path}`);
      await this.closeDiffs(target);
      return true;
    } catch (error) {
      await showError(`SyncEngine: could not resolve ${path}: ${errorMessage(error)}`);
      return false;
    }
  }

  /** VS Code's merge editor: local and remote as the two inputs, the local file as the result. */
  async merge(target: ConflictTarget): Promise<void> {
    const { session, path } = target;
    const local = session.localUri(path);
    const remote = remoteUri(session, path);
    const localText = new TextDecoder().decode(await vscode.workspace.fs.readFile(local));
    const localSnapshot = vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: `/${path}`, query: `local&${Date.now()}` });
    const base = vscode.Uri.from({ scheme: SNAPSHOT_SCHEME, path: `/${path}`, query: `base&${Date.now()}` });
    this.snapshots.set(localSnapshot, localText);
    // The last-synced version when it was kept (files edited here); without it the merge editor
    // has no common version and shows every difference for a decision.
    const common = await session.mergeBase(path).catch(() => undefined);
    this.snapshots.set(base, common ? new TextDecoder().decode(common) : '');
    if (!common) log().info(`${session.label}: no last-synced version of ${path} is kept; the merge has no common base`);
    this.merging.set(local.toString(), target);
    await vscode.commands.executeCommand('_open.mergeEditor', {
      base,
      input1: { uri: localSnapshot, title: 'Local', description: 'your version' },
      input2: { uri: remote, title: session.name, description: 'the remote version' },
      output: local,
    });
    void vscode.window.showInformationMessage(`SyncEngine: save the merged ${path} to upload it and settle the conflict.`);
  }

  private async closeDiffs(target: ConflictTarget): Promise<void> {
    const local = target.session.localUri(target.path).toString();
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === local && t.input.original.scheme === 'syncengine-remote');
    if (tabs.length) await vscode.window.tabGroups.close(tabs);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
