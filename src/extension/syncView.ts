// The Sync view: Conflicts / Outgoing / Incoming, per target when there are several. Entries open
// VS Code's diff editor (remote on the left, local on the right); a badge counts what is pending.
import * as vscode from 'vscode';
import type { SyncModel } from './model';
import type { PendingChange, TargetSession } from './targetSession';

export type SyncViewNode =
  | { kind: 'session'; session: TargetSession }
  | { kind: 'group'; session: TargetSession; direction: PendingChange['direction']; changes: PendingChange[] }
  | { kind: 'change'; session: TargetSession; change: PendingChange };

/** How long the view waits to follow a change of the model (changes within it come together). */
const REFRESH_DELAY_MS = 30;

const GROUPS: { direction: PendingChange['direction']; label: string }[] = [
  { direction: 'conflict', label: 'Conflicts' },
  { direction: 'outgoing', label: 'Outgoing' },
  { direction: 'incoming', label: 'Incoming' },
];

export class SyncView implements vscode.TreeDataProvider<SyncViewNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<SyncViewNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  readonly view: vscode.TreeView<SyncViewNode>;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly model: SyncModel) {
    this.view = vscode.window.createTreeView('syncengine.changes', { treeDataProvider: this, showCollapseAll: true });
    this.disposables.push(this.view, this.emitter, model.onDidChange(() => this.refreshSoon()), { dispose: () => clearTimeout(this.refreshTimer) });
    this.refresh();
  }

  private refreshTimer: NodeJS.Timeout | undefined;
  /** Context keys as last sent: each change is a message to the workbench, sent only when it changes. */
  private readonly contextValues = new Map<string, string>();

  /**
   * The model changes several times during every run (a save too): the view follows a moment
   * later, once, instead of messaging the workbench in the middle of the sync each time.
   */
  private refreshSoon(): void {
    this.refreshTimer ??= setTimeout(() => {
      this.refreshTimer = undefined;
      this.refresh();
    }, REFRESH_DELAY_MS);
  }

  private setContext(key: string, value: unknown): void {
    const json = JSON.stringify(value);
    if (this.contextValues.get(key) === json) return;
    this.contextValues.set(key, json);
    void vscode.commands.executeCommand('setContext', key, value);
  }

  refresh(): void {
    const sessions = this.model.sessions();
    const pending = sessions.reduce((n, s) => n + s.pendingChanges().length, 0);
    const conflicts = sessions.reduce((n, s) => n + s.conflicts().length, 0);
    this.view.badge = pending > 0 ? { value: pending, tooltip: `${pending} pending (${conflicts} conflicts)` } : undefined;
    this.view.message = sessions.length === 0 ? undefined : pending === 0 ? 'Nothing pending. Run Preview Sync to look for changes.' : undefined;
    this.setContext('syncengine.hasConfig', this.model.hasConfig());
    this.setContext('syncengine.hasConflicts', conflicts > 0);
    // Paths, not URI strings: in a remote window (Remote-SSH, WSL, code-server) the workbench sees
    // the file as vscode-remote://…, so `resource in …` with file:// strings never matches.
    // `resourcePath` is the fsPath of a local file and the path of a remote one: both are listed.
    const conflictPaths = sessions.flatMap((s) => s.conflicts().flatMap((c) => [s.localUri(c.path).fsPath, s.localUri(c.path).path]));
    this.setContext('syncengine.conflictPaths', [...new Set(conflictPaths)]);
    this.emitter.fire(undefined);
  }

  getChildren(node?: SyncViewNode): SyncViewNode[] {
    const sessions = this.model.sessions();
    if (!node) return sessions.length === 1 ? this.groupsOf(sessions[0]!) : sessions.map((session) => ({ kind: 'session', session }));
    if (node.kind === 'session') return this.groupsOf(node.session);
    if (node.kind === 'group') return node.changes.sort((a, b) => a.path.localeCompare(b.path)).map((change) => ({ kind: 'change', session: node.session, change }));
    return [];
  }

  private groupsOf(session: TargetSession): SyncViewNode[] {
    const changes = session.pendingChanges();
    return GROUPS.map((g) => ({ kind: 'group' as const, session, direction: g.direction, changes: changes.filter((c) => c.direction === g.direction) })).filter((g) => g.changes.length > 0);
  }

  getTreeItem(node: SyncViewNode): vscode.TreeItem {
    switch (node.kind) {
      case 'session': {
        const item = new vscode.TreeItem(node.session.label, vscode.TreeItemCollapsibleState.Expanded);
        item.description = node.session.config.url;
        item.contextValue = 'session';
        item.iconPath = new vscode.ThemeIcon('cloud');
        return item;
      }
      case 'group': {
        const label = GROUPS.find((g) => g.direction === node.direction)!.label;
        const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.Expanded);
        item.description = String(node.changes.length);
        item.contextValue = `group-${node.direction}`;
        item.id = `${node.session.folder.uri}#${node.session.name}#${node.direction}`;
        return item;
      }
      case 'change': {
        const { change, session } = node;
        const uri = session.localUri(change.path);
        const item = new vscode.TreeItem(uri, vscode.TreeItemCollapsibleState.None);
        const slash = change.path.lastIndexOf('/');
        item.label = change.path.slice(slash + 1);
        item.description = `${slash > 0 ? change.path.slice(0, slash) + ' · ' : ''}${change.reason}`;
        item.tooltip = `${change.path}\n${change.direction}: ${change.reason}`;
        item.contextValue = change.direction;
        item.id = `${session.folder.uri}#${session.name}#${change.path}`;
        item.command = { command: change.direction === 'conflict' ? 'syncengine.resolveConflict' : 'syncengine.openChange', title: 'Open Changes', arguments: [node] };
        return item;
      }
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
