// The commands of the palette, the Explorer and editor menus, and the Sync view: thin adapters
// that pick what to act on and hand it to the model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_RELATIVE_PATH, configTemplate } from '../config/workspaceConfig';
import { importSftpJson } from '../config/sftpJsonImport';
import type { SyncResult } from '../core/engine';
import { errorMessage } from '../core/errors';
import { engine } from './engineLoader';
import { parseTarget } from '../config/target';
import type { ConflictResolver } from './conflicts';
import { log, showError } from './log';
import { configUri, type SyncModel } from './model';
import { withSyncProgress } from './progress';
import { remoteUri, REMOTE_SCHEME } from './remoteFileSystem';
import type { SyncViewNode } from './syncView';
import { summarize, type RunRequest, type TargetSession } from './targetSession';
import { makeDirs } from '../core/makeDirs';

export class Commands implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly model: SyncModel,
    private readonly conflicts: ConflictResolver,
  ) {
    const register = (id: string, fn: (...args: never[]) => unknown) =>
      this.disposables.push(
        vscode.commands.registerCommand(id, async (...args: never[]) => {
          try {
            return await fn.apply(this, args);
          } catch (error) {
            void showError(`SyncEngine: ${errorMessage(error)}`); // the command ends; the notification stays
            return undefined;
          }
        }),
      );
    register('syncengine.syncNow', this.syncNow);
    register('syncengine.preview', this.preview);
    register('syncengine.upload', this.upload);
    register('syncengine.download', this.download);
    register('syncengine.diffWithRemote', this.diffWithRemote);
    register('syncengine.openChange', this.openChange);
    register('syncengine.pause', () => this.eachRunning((c) => c.pause()));
    register('syncengine.resume', () => this.eachRunning((c) => c.resume()));
    register('syncengine.cancel', () => this.eachRunning((c) => c.cancel()));
    register('syncengine.toggleSyncOnSave', this.toggleSyncOnSave);
    register('syncengine.resolveConflict', this.resolveConflict);
    register('syncengine.acceptLocal', (arg?: vscode.Uri | SyncViewNode) => this.settle(arg, 'source-wins', 'Local version kept'));
    register('syncengine.acceptRemote', (arg?: vscode.Uri | SyncViewNode) => this.settle(arg, 'destination-wins', 'Remote version kept'));
    register('syncengine.keepBoth', (arg?: vscode.Uri | SyncViewNode) => this.settle(arg, 'keep-both', 'Both versions kept'));
    register('syncengine.merge', this.merge);
    register('syncengine.openRemoteFolder', this.openRemoteFolder);
    register('syncengine.showLog', () => log().show());
    register('syncengine.createConfig', this.createConfig);
    register('syncengine.importSftpJson', this.importSftpJson);
    register('syncengine.clearState', this.clearState);
    register('syncengine.switchProfile', this.switchProfile);
  }

  // ---- what to act on

  private trusted(): boolean {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window.showWarningMessage('SyncEngine does not connect or sync in Restricted Mode. Trust this workspace first.', 'Manage Workspace Trust').then((c) => {
      if (c) void vscode.commands.executeCommand('workbench.trust.manage');
    });
    return false;
  }

  private noTargets(): undefined {
    const errors = this.model.configErrors();
    if (errors.length > 0) void showError(`SyncEngine: fix the config first: ${errors[0]}`);
    else {
      void vscode.window.showInformationMessage(`SyncEngine: no targets yet. Create ${CONFIG_RELATIVE_PATH} to start.`, 'Create Config', 'Import sftp.json').then((c) => {
        if (c === 'Create Config') void vscode.commands.executeCommand('syncengine.createConfig');
        if (c === 'Import sftp.json') void vscode.commands.executeCommand('syncengine.importSftpJson');
      });
    }
    return undefined;
  }

  /** The targets a command acts on: those of a resource, or all (asking when there are several). */
  private async pickSessions(uri: vscode.Uri | undefined, allowAll: boolean): Promise<TargetSession[] | undefined> {
    const candidates = uri ? this.model.sessionsFor(uri) : this.model.sessions();
    if (candidates.length === 0) return this.noTargets();
    if (candidates.length === 1) return candidates;
    type Pick = vscode.QuickPickItem & { sessions: TargetSession[] };
    const items: Pick[] = candidates.map((s) => ({ label: s.label, description: s.config.url, sessions: [s] }));
    if (allowAll) items.unshift({ label: 'All targets', description: `${candidates.length} targets`, sessions: candidates });
    const picked = await vscode.window.showQuickPick(items, { title: 'SyncEngine', placeHolder: 'Which target?' });
    return picked?.sessions;
  }

  private resourceOf(arg: unknown): vscode.Uri | undefined {
    if (arg instanceof vscode.Uri) return arg;
    return vscode.window.activeTextEditor?.document.uri;
  }

  private eachRunning(fn: (c: NonNullable<TargetSession['controller']>) => void): void {
    const running = this.model.sessions().filter((s) => s.controller);
    if (running.length === 0) {
      void vscode.window.showInformationMessage('SyncEngine: no sync is running.');
      return;
    }
    for (const s of running) fn(s.controller!);
  }

  // ---- running the engine

  /** A run with progress; a safety guard's refusal is explained and can be overridden knowingly. */
  private async runWithProgress(session: TargetSession, title: string, request: RunRequest): Promise<SyncResult | undefined> {
    try {
      return await withSyncProgress(session, `${title} (${session.label})`, () => session.run(request));
    } catch (error) {
      if (error instanceof engine().GuardError) {
        const choice = await vscode.window.showWarningMessage(`SyncEngine: ${session.label}: ${error.message.replace(/run again with --force.*$/, 'sync anyway only if that is what you want.')}`, { modal: true }, 'Sync Anyway');
        if (choice !== 'Sync Anyway') return undefined;
        return withSyncProgress(session, `${title} (${session.label})`, () => session.run({ ...request, force: true }));
      }
      throw error;
    }
  }

  private report(session: TargetSession, result: SyncResult, dryRun: boolean): void {
    const summary = summarize(result, dryRun);
    const conflicts = result.stats.conflicts.length;
    const errors = result.stats.errors;
    if (errors.length > 0) {
      void showError(`SyncEngine: ${session.label}: ${errors.length} file(s) failed: ${errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; ')}`);
    } else if (conflicts > 0) {
      void vscode.window.showWarningMessage(`SyncEngine: ${session.label}: ${summary}.`, 'Show Conflicts').then((c) => {
        if (c) void vscode.commands.executeCommand('syncengine.changes.focus');
      });
    } else {
      void vscode.window.showInformationMessage(`SyncEngine: ${session.label}: ${summary}.`);
    }
  }

  private async syncNow(arg?: unknown): Promise<SyncResult[] | undefined> {
    if (!this.trusted()) return undefined;
    const sessions = await this.pickSessions(arg instanceof vscode.Uri ? arg : undefined, true);
    if (!sessions) return undefined;
    const results: SyncResult[] = [];
    for (const session of sessions) {
      const result = await this.runWithProgress(session, 'Syncing', { kind: 'sync' });
      if (result) {
        results.push(result);
        this.report(session, result, false);
      }
    }
    return results;
  }

  private async preview(): Promise<SyncResult[] | undefined> {
    if (!this.trusted()) return undefined;
    const sessions = await this.pickSessions(undefined, true);
    if (!sessions) return undefined;
    const results: SyncResult[] = [];
    for (const session of sessions) {
      const result = await withSyncProgress(session, `Preview (${session.label})`, () => session.run({ kind: 'preview', dryRun: true }));
      results.push(result);
      log().info(`${session.label}: preview: ${summarize(result, true)}`);
    }
    await vscode.commands.executeCommand('syncengine.changes.focus');
    return results;
  }

  private async transfer(arg: unknown, direction: 'upload' | 'download'): Promise<SyncResult | undefined> {
    if (!this.trusted()) return undefined;
    const uri = this.resourceOf(arg);
    if (!uri) {
      void vscode.window.showInformationMessage(`SyncEngine: choose a file or folder to ${direction} (Explorer context menu, or an open editor).`);
      return undefined;
    }
    const sessions = await this.pickSessions(uri, false);
    if (!sessions) return undefined;
    const session = sessions[0]!;
    const rel = session.relativePath(uri)!;
    if (direction === 'upload') await vscode.workspace.saveAll(false);
    // Upload and download copy one way and never delete; what they replace goes to the trash.
    const request: RunRequest =
      direction === 'upload'
        ? { kind: 'upload', options: { mode: 'source-backup', conflict: 'source-wins' } }
        : { kind: 'download', options: { mode: 'destination-backup', conflict: 'destination-wins' } };
    if (rel !== '') request.scope = [rel];
    const result = await this.runWithProgress(session, direction === 'upload' ? 'Uploading' : 'Downloading', request);
    if (result) this.report(session, result, false);
    return result;
  }

  private upload(arg?: unknown): Promise<SyncResult | undefined> {
    return this.transfer(arg, 'upload');
  }

  private download(arg?: unknown): Promise<SyncResult | undefined> {
    return this.transfer(arg, 'download');
  }

  private async diffWithRemote(arg?: unknown): Promise<void> {
    if (!this.trusted()) return;
    const uri = this.resourceOf(arg);
    if (!uri) return;
    const sessions = await this.pickSessions(uri, false);
    if (!sessions) return;
    const session = sessions[0]!;
    const rel = session.relativePath(uri)!;
    const name = rel.split('/').pop();
    await vscode.commands.executeCommand('vscode.diff', remoteUri(session, rel), uri, `${name} (${session.name}) ↔ Local`);
  }

  private async openChange(node: SyncViewNode): Promise<void> {
    if (node.kind !== 'change') return;
    const { session, change } = node;
    const local = session.localUri(change.path);
    const remote = remoteUri(session, change.path);
    const item = change.item;
    const name = change.path.split('/').pop();
    const localExists = fs.existsSync(local.fsPath);
    // A rename's new path exists on one side only; otherwise the plan says what the remote held.
    const remoteExists = item === undefined || item.action === 'rename-dir' || item.action === 'forget' ? true : item.action === 'rename' ? item.side === 'source' : item.destination !== undefined;
    if (!localExists) await vscode.commands.executeCommand('vscode.open', remote);
    else if (!remoteExists) await vscode.commands.executeCommand('vscode.open', local);
    else await vscode.commands.executeCommand('vscode.diff', remote, local, `${name} (${session.name}) ↔ Local`);
  }

  private async toggleSyncOnSave(): Promise<boolean> {
    const on = !this.model.syncOnSave;
    await this.model.setSyncOnSave(on);
    vscode.window.setStatusBarMessage(`SyncEngine: sync on save ${on ? 'on' : 'off'}`, 3000);
    return on;
  }

  // ---- conflicts

  /** The conflict a command is about: a Sync view entry, a file (only if it is in conflict), or one to pick. */
  private async conflictFor(arg: vscode.Uri | SyncViewNode | undefined) {
    if (arg && !(arg instanceof vscode.Uri)) return arg.kind === 'change' ? { session: arg.session, path: arg.change.path } : undefined;
    const uri = this.resourceOf(arg);
    const found = this.conflicts.find(uri);
    if (found || arg instanceof vscode.Uri) {
      if (!found) void vscode.window.showInformationMessage(`SyncEngine: ${vscode.workspace.asRelativePath(arg as vscode.Uri)} is not in conflict.`);
      return found;
    }
    return this.conflicts.pick();
  }

  private async resolveConflict(arg?: vscode.Uri | SyncViewNode): Promise<void> {
    const target = await this.conflictFor(arg);
    if (target) await this.conflicts.open(target);
  }

  private async settle(arg: vscode.Uri | SyncViewNode | undefined, strategy: 'source-wins' | 'destination-wins' | 'keep-both', what: string): Promise<boolean> {
    if (!this.trusted()) return false;
    const target = await this.conflictFor(arg);
    if (!target) return false;
    return this.conflicts.resolve(target, strategy, what);
  }

  private async merge(arg?: vscode.Uri | SyncViewNode): Promise<void> {
    if (!this.trusted()) return;
    const target = await this.conflictFor(arg);
    if (target) await this.conflicts.merge(target);
  }

  // ---- the rest

  private async openRemoteFolder(): Promise<void> {
    if (!this.trusted()) return;
    const sessions = await this.pickSessions(undefined, false);
    if (!sessions) return;
    const session = sessions[0]!;
    const uri = remoteUri(session, '');
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.some((f) => f.uri.scheme === REMOTE_SCHEME && f.uri.query === uri.query)) {
      await vscode.commands.executeCommand('workbench.view.explorer');
      return;
    }
    vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri, name: `${session.label} (remote, read-only)` });
  }

  private async folderFor(title: string): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
    if (folders.length === 0) {
      void vscode.window.showInformationMessage('SyncEngine: open a folder first.');
      return undefined;
    }
    if (folders.length === 1) return folders[0];
    return vscode.window.showWorkspaceFolderPick({ placeHolder: title });
  }

  private async createConfig(): Promise<vscode.Uri | undefined> {
    const folder = await this.folderFor('Create the SyncEngine config for which folder?');
    if (!folder) return undefined;
    const file = configUri(folder);
    if (fs.existsSync(file.fsPath)) {
      await vscode.window.showTextDocument(file);
      return file;
    }
    const url = await vscode.window.showInputBox({
      title: 'SyncEngine: Create Config (1/3)',
      prompt: 'Where to sync this folder: sftp://user@host/path, ftp://…, ftps://…, s3://bucket/prefix, or a local folder path',
      placeHolder: 'sftp://deploy@example.com/var/www/site',
      ignoreFocusOut: true,
      validateInput: (value) => {
        try {
          parseTarget(value.trim(), 'destination');
          return undefined;
        } catch (error) {
          return errorMessage(error);
        }
      },
    });
    if (!url) return undefined;
    const name = await vscode.window.showInputBox({ title: 'SyncEngine: Create Config (2/3)', prompt: 'A name for this target', value: 'server', ignoreFocusOut: true, validateInput: (v) => (/^[A-Za-z0-9][A-Za-z0-9 _.-]*$/.test(v) ? undefined : 'Letters, digits, space, _ . - (starting with a letter or digit)') });
    if (!name) return undefined;
    const onSave = await vscode.window.showQuickPick(['Yes', 'No'], { title: 'SyncEngine: Create Config (3/3)', placeHolder: 'Upload files when you save them?' });
    if (!onSave) return undefined;
    makeDirs(path.dirname(file.fsPath));
    fs.writeFileSync(file.fsPath, configTemplate({ name, url: url.trim(), syncOnSave: onSave === 'Yes' }), { flag: 'wx' });
    await vscode.window.showTextDocument(file);
    return file;
  }

  private async importSftpJson(): Promise<vscode.Uri | undefined> {
    const folder = await this.folderFor('Import the sftp.json of which folder?');
    if (!folder) return undefined;
    const source = vscode.Uri.joinPath(folder.uri, '.vscode', 'sftp.json');
    if (!fs.existsSync(source.fsPath)) {
      void vscode.window.showInformationMessage(`SyncEngine: there is no .vscode/sftp.json in ${folder.name}.`);
      return undefined;
    }
    const { config, report } = importSftpJson(fs.readFileSync(source.fsPath, 'utf8'), source.fsPath);
    const file = configUri(folder);
    if (fs.existsSync(file.fsPath)) {
      const choice = await vscode.window.showWarningMessage(`${CONFIG_RELATIVE_PATH} exists already. Replace it with the imported settings?`, { modal: true }, 'Replace');
      if (choice !== 'Replace') return undefined;
    }
    makeDirs(path.dirname(file.fsPath));
    fs.writeFileSync(file.fsPath, config);
    log().info(`Imported ${source.fsPath} into ${file.fsPath}:`);
    for (const line of report) log().info(`  ${line}`);
    await vscode.window.showTextDocument(file);
    if (report.length > 0) {
      void vscode.window.showWarningMessage(`SyncEngine: sftp.json imported; ${report.length} setting(s) need your attention (see the log).`, 'Show Log').then((c) => {
        if (c) log().show();
      });
    }
    return file;
  }

  private async clearState(): Promise<void> {
    const sessions = await this.pickSessions(undefined, true);
    if (!sessions) return;
    const choice = await vscode.window.showWarningMessage(
      `Forget what SyncEngine knows about the last sync of ${sessions.map((s) => s.label).join(', ')}?`,
      { modal: true, detail: 'The next sync will be a first sync: files that differ on both sides become conflicts, nothing is deleted.' },
      'Clear State',
    );
    if (choice !== 'Clear State') return;
    for (const s of sessions) await s.clearState();
    void vscode.window.showInformationMessage('SyncEngine: sync state cleared.');
  }

  private async switchProfile(): Promise<void> {
    const folder = await this.folderFor('Switch the profile of which folder?');
    if (!folder) return;
    const config = this.model.configOf(folder);
    if (!config || config.profiles.length === 0) {
      void vscode.window.showInformationMessage('SyncEngine: this folder\'s config has no "profiles".');
      return;
    }
    const picked = await vscode.window.showQuickPick(config.profiles.map((p) => ({ label: p, description: p === config.activeProfile ? 'active' : '' })), { title: 'SyncEngine: Switch Profile' });
    if (picked) await this.model.setProfile(folder, picked.label);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
