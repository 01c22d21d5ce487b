// The model: for each workspace folder, its config file and one TargetSession per target. Reads
// `.vscode/syncengine.json` (re-read when it changes), reports a broken file as a diagnostic on the
// offending line, and keeps the switches that outlive a session (sync on save, profile).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CONFIG_RELATIVE_PATH, ConfigError, parseWorkspaceConfig, type WorkspaceSyncConfig } from '../config/workspaceConfig';
import { errorMessage } from '../core/errors';
import type { Credentials } from './credentials';
import { log } from './log';
import { TargetSession, type RunProgress } from './targetSession';

const SYNC_ON_SAVE_KEY = 'syncengine.syncOnSave';
const PROFILE_KEY = 'syncengine.profile';

interface FolderState {
  folder: vscode.WorkspaceFolder;
  config?: WorkspaceSyncConfig;
  error?: string;
  sessions: TargetSession[];
  disposables: vscode.Disposable[];
  /** What the last load read (text and profile), so a save that changes nothing reloads nothing. */
  loadedFrom?: string;
}

export class SyncModel implements vscode.Disposable {
  private readonly folders = new Map<string, FolderState>();
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('syncengine');
  private readonly onDidChangeEmitter = new vscode.EventEmitter<void>();
  /** Something changed: sessions, their pending changes, a run started or ended. */
  readonly onDidChange = this.onDidChangeEmitter.event;
  private readonly onProgressEmitter = new vscode.EventEmitter<RunProgress>();
  readonly onProgress = this.onProgressEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly credentials: Credentials,
  ) {
    for (const folder of vscode.workspace.workspaceFolders ?? []) this.addFolder(folder);
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders((e) => {
        for (const f of e.removed) this.removeFolder(f);
        for (const f of e.added) this.addFolder(f);
        this.onDidChangeEmitter.fire();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.onDidChangeEmitter.fire()),
      this.diagnostics,
    );
  }

  get syncOnSave(): boolean {
    return this.context.workspaceState.get<boolean>(SYNC_ON_SAVE_KEY, true);
  }

  async setSyncOnSave(on: boolean): Promise<void> {
    await this.context.workspaceState.update(SYNC_ON_SAVE_KEY, on);
    this.onDidChangeEmitter.fire();
  }

  /** The profile chosen in the editor for a folder (overrides the file's "profile"). */
  profileOf(folder: vscode.WorkspaceFolder): string | undefined {
    return this.context.workspaceState.get<Record<string, string>>(PROFILE_KEY, {})[folder.uri.toString()];
  }

  async setProfile(folder: vscode.WorkspaceFolder, profile: string): Promise<void> {
    const all = { ...this.context.workspaceState.get<Record<string, string>>(PROFILE_KEY, {}), [folder.uri.toString()]: profile };
    await this.context.workspaceState.update(PROFILE_KEY, all);
    this.reload(folder);
  }

  sessions(): TargetSession[] {
    return [...this.folders.values()].flatMap((f) => f.sessions);
  }

  configOf(folder: vscode.WorkspaceFolder): WorkspaceSyncConfig | undefined {
    return this.folders.get(folder.uri.toString())?.config;
  }

  /** Problems with config files, for messages: "file:line:col: problem". */
  configErrors(): string[] {
    return [...this.folders.values()].flatMap((f) => (f.error ? [f.error] : []));
  }

  hasConfig(): boolean {
    return [...this.folders.values()].some((f) => f.config !== undefined || f.error !== undefined);
  }

  /** The sessions whose local root holds this file (every target of its folder). */
  sessionsFor(uri: vscode.Uri): TargetSession[] {
    return this.sessions().filter((s) => s.relativePath(uri) !== undefined);
  }

  find(folderPath: string, target: string): TargetSession | undefined {
    return this.sessions().find((s) => s.folder.uri.fsPath === folderPath && s.name === target);
  }

  private addFolder(folder: vscode.WorkspaceFolder): void {
    if (folder.uri.scheme !== 'file') return; // a remote folder opened for browsing, not a synced one
    const state: FolderState = { folder, sessions: [], disposables: [] };
    this.folders.set(folder.uri.toString(), state);
    this.load(state);
    // The watcher right after activation rather than during it (setting one up is one of the
    // costlier calls there); a change in between is caught by the reload that follows.
    const timer = setTimeout(() => {
      if (this.folders.get(folder.uri.toString()) !== state) return;
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(folder, CONFIG_RELATIVE_PATH));
      const reload = () => this.reload(folder);
      state.disposables.push(watcher, watcher.onDidChange(reload), watcher.onDidCreate(reload), watcher.onDidDelete(reload));
      reload();
    }, 0);
    state.disposables.push({ dispose: () => clearTimeout(timer) });
  }

  private removeFolder(folder: vscode.WorkspaceFolder): void {
    const state = this.folders.get(folder.uri.toString());
    if (!state) return;
    for (const s of state.sessions) s.dispose();
    for (const d of state.disposables) d.dispose();
    this.diagnostics.delete(configUri(folder));
    this.folders.delete(folder.uri.toString());
  }

  reload(folder: vscode.WorkspaceFolder): void {
    const state = this.folders.get(folder.uri.toString());
    if (!state) return;
    if (this.load(state)) this.onDidChangeEmitter.fire();
  }

  /**
   * (Re)read the folder's config. Returns false when the file and profile are as last read: a save
   * fires the watcher two or three times, and each reload must not cost the sessions their state.
   */
  private load(state: FolderState): boolean {
    const file = configUri(state.folder).fsPath;
    let text: string | undefined;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      text = undefined;
    }
    const loadedFrom = JSON.stringify([text ?? null, this.profileOf(state.folder) ?? null]);
    if (state.loadedFrom === loadedFrom) return false;
    state.loadedFrom = loadedFrom;
    const old = state.sessions;
    const kept = new Set<TargetSession>();
    state.config = undefined;
    state.error = undefined;
    state.sessions = [];
    this.diagnostics.delete(configUri(state.folder));
    if (text !== undefined) {
      const profile = this.profileOf(state.folder);
      try {
        state.config = parseWorkspaceConfig(text, file, state.folder.uri.fsPath, profile !== undefined ? { profile } : {});
        state.sessions = state.config.targets.map((t) => {
          // A target whose settings did not change keeps its session: connection, pending changes, conflicts.
          const same = old.find((s) => !kept.has(s) && JSON.stringify(s.config) === JSON.stringify(t));
          if (same) {
            kept.add(same);
            return same;
          }
          const session = new TargetSession(state.folder, t, this.credentials);
          session.onDidChange(() => this.onDidChangeEmitter.fire());
          session.onProgress((p) => this.onProgressEmitter.fire(p));
          return session;
        });
        log().info(`${path.relative(state.folder.uri.fsPath, file)}: ${state.config.targets.length} target(s): ${state.config.targets.map((t) => `${t.name} → ${t.url}`).join('; ')}`);
      } catch (error) {
        state.error = errorMessage(error);
        log().error(state.error);
        this.diagnostics.set(configUri(state.folder), diagnosticsOf(error));
      }
    }
    // A run in progress finishes on the old sessions; they close once it is done.
    for (const s of old) if (!kept.has(s)) void s.idle().then(() => s.dispose());
    return true;
  }

  dispose(): void {
    for (const f of [...this.folders.values()]) this.removeFolder(f.folder);
    for (const d of this.disposables) d.dispose();
    this.onDidChangeEmitter.dispose();
    this.onProgressEmitter.dispose();
  }
}

export function configUri(folder: vscode.WorkspaceFolder): vscode.Uri {
  return vscode.Uri.joinPath(folder.uri, ...CONFIG_RELATIVE_PATH.split('/'));
}

function diagnosticsOf(error: unknown): vscode.Diagnostic[] {
  const problems = error instanceof ConfigError ? (error.problems ?? [error]) : [];
  if (problems.length === 0) return [new vscode.Diagnostic(new vscode.Range(0, 0, 0, 1), errorMessage(error), vscode.DiagnosticSeverity.Error)];
  return problems.map((p) => {
    const d = new vscode.Diagnostic(new vscode.Range(p.line - 1, p.column - 1, p.line - 1, p.column), p.problem, vscode.DiagnosticSeverity.Error);
    d.source = 'SyncEngine';
    return d;
  });
}
