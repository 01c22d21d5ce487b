// One synced pair: a local folder of the workspace and one named target of its config. Like the git
// extension's Repository: the model the commands, views and status bar read; it knows nothing of
// how it is shown. Runs of the engine on a pair are serialized; the remote connection stays open
// between runs (sync on save needs it warm) and closes after a while without use.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { LocalBackend } from '../backends/local';
import type { Backend } from '../backends/types';
import type { SyncTargetConfig } from '../config/workspaceConfig';
import { SyncController } from '../core/control';
import type { SyncResult } from '../core/engine';
import type { SyncEvent } from '../core/events';
import type { PlanItem } from '../core/model';
import type { PlanOptions } from '../core/options';
import { PendingSecrets, type Credentials } from './credentials';
import { engine } from './engineLoader';
import { log } from './log';
import { MergeBaseStore } from './mergeBase';

const IDLE_CLOSE_MS = 5 * 60_000;

export type RunKind = 'sync' | 'preview' | 'save' | 'upload' | 'download' | 'resolve';

export interface RunRequest {
  kind: RunKind;
  /** Paths relative to the local root; undefined: everything. */
  scope?: readonly string[];
  options?: Partial<PlanOptions>;
  force?: boolean;
  /** Plan only (the engine's dry run). */
  dryRun?: boolean;
}

export interface RunProgress {
  session: TargetSession;
  kind: RunKind;
  event: SyncEvent;
}

/** A change the Sync view shows: from the last preview, or a conflict left by a run. */
export interface PendingChange {
  path: string;
  direction: 'outgoing' | 'incoming' | 'conflict';
  item?: PlanItem;
  reason: string;
}

export class TargetSession implements vscode.Disposable {
  private localBackend: LocalBackend | undefined;
  private remote: Backend | undefined;
  private opening: Promise<Backend> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private active: SyncController | undefined;
  /** What the last preview found (cleared by a full sync), keyed by path. */
  private changes = new Map<string, PendingChange>();
  private readonly onDidChangeEmitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.onDidChangeEmitter.event;
  private readonly onProgressEmitter = new vscode.EventEmitter<RunProgress>();
  readonly onProgress = this.onProgressEmitter.event;
  lastResult: { kind: RunKind; result: SyncResult; at: Date } | undefined;
  /** Paths the engine wrote on the local side in the current run (a watcher must not send them back). */
  readonly recentlyWritten = new Set<string>();

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    readonly config: SyncTargetConfig,
    private readonly credentials: Credentials,
  ) {}

  get local(): LocalBackend {
    this.localBackend ??= new (engine().LocalBackend)(this.config.localRoot);
    return this.localBackend;
  }

  get name(): string {
    return this.config.name;
  }

  get label(): string {
    return vscode.workspace.workspaceFolders && vscode.workspace.workspaceFolders.length > 1 ? `${this.folder.name}: ${this.config.name}` : this.config.name;
  }

  get running(): boolean {
    return this.active !== undefined;
  }

  get controller(): SyncController | undefined {
    return this.active;
  }

  pendingChanges(): PendingChange[] {
    return [...this.changes.values()];
  }

  conflicts(): PendingChange[] {
    return this.pendingChanges().filter((c) => c.direction === 'conflict');
  }

  /** The path of a local file relative to this pair's root, or undefined when it is not inside it. */
  relativePath(uri: vscode.Uri): string | undefined {
    if (uri.scheme !== 'file') return undefined;
    const rel = path.relative(this.config.localRoot, uri.fsPath);
    if (rel === '' ) return '';
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    return rel.split(path.sep).join('/');
  }

  localUri(relPath: string): vscode.Uri {
    return vscode.Uri.file(path.join(this.config.localRoot, ...relPath.split('/')));
  }

  /** The remote backend, connected (once; reused until idle). */
  async backend(): Promise<Backend> {
    this.touch();
    if (this.remote) return this.remote;
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<Backend> {
    const pending = new PendingSecrets();
    const options = await this.credentials.connectOptions(this.config, pending, (message) => log().warn(`${this.label}: ${message}`));
    log().info(`${this.label}: connecting to ${this.config.url}`);
    try {
      const backend = await engine().openBackend(this.config.target, options);
      await this.credentials.commit(pending);
      this.remote = backend;
      this.touch();
      return backend;
    } catch (error) {
      if (error instanceof Error && /authenticat|password|passphrase|login/i.test(error.name + error.message)) await this.credentials.forget(this.config);
      throw error;
    }
  }

  private touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.closeRemote(), IDLE_CLOSE_MS);
    this.idleTimer.unref?.();
  }

  async closeRemote(): Promise<void> {
    if (this.running) return this.touch();
    const remote = this.remote;
    this.remote = undefined;
    if (remote) await remote.close().catch(() => undefined);
  }

  async stateDir(): Promise<string> {
    const remote = await this.backend();
    return path.join(this.config.localRoot, '.sync_state', engine().pairId(this.local.id, remote.id));
  }

  /** Runs of one pair never overlap: the engine's lock would refuse the second one anyway. */
  run(request: RunRequest): Promise<SyncResult> {
    const next = this.queue.then(() => this.runNow(request));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Resolves when the runs queued so far are over. */
  idle(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  private async runNow(request: RunRequest): Promise<SyncResult> {
    const controller = new SyncController();
    this.active = controller;
    this.onDidChangeEmitter.fire();
    const started = Date.now();
    try {
      const remote = await this.backend();
      const stateDir = await this.stateDir();
      const cfg = this.config;
      // A first sync creates the remote folder, as the CLI does; later ones expect it to be there.
      const synced = engine().StateStore.hasState(stateDir);
      if (!synced && !request.dryRun) await remote.mkdir('');
      const result = await engine().runSync({
        source: this.local,
        destination: remote,
        stateDir,
        options: { ...cfg.options, ...request.options },
        ignorePatterns: cfg.ignore,
        ...(request.scope ? { scope: request.scope } : {}),
        limits: cfg.limits,
        ...(cfg.maxDeletePercent !== undefined ? { maxDeletePercent: cfg.maxDeletePercent } : {}),
        ...(cfg.trashDays !== undefined ? { trashRetentionDays: cfg.trashDays } : {}),
        ...(request.force ? { force: true } : {}),
        ...(request.dryRun ? { dryRun: true } : {}),
        controller,
        onEvent: (event) => {
          if (event.type === 'file-complete' && event.side === 'source') this.recentlyWritten.add(event.path);
          this.onProgressEmitter.fire({ session: this, kind: request.kind, event });
        },
      });
      this.absorb(request, result);
      if (!request.dryRun && (request.kind === 'save' || request.kind === 'resolve' || request.kind === 'sync')) this.rememberOpenFiles(stateDir, result);
      this.lastResult = { kind: request.kind, result, at: new Date() };
      log().info(`${this.label}: ${request.kind}${request.scope ? ` ${request.scope.join(', ')}` : ''} finished in ${Date.now() - started} ms: ${summarize(result, request.dryRun === true)}`);
      for (const e of result.stats.errors) log().error(`${this.label}: ${e.path}: ${e.message}`);
      return result;
    } finally {
      this.active = undefined;
      setTimeout(() => this.recentlyWritten.clear(), 2000).unref?.();
      this.touch();
      this.onDidChangeEmitter.fire();
    }
  }

  /** Keep the synced content of files open in editors: the common version for a later merge. */
  private rememberOpenFiles(stateDir: string, result: SyncResult): void {
    const open = new Set(vscode.workspace.textDocuments.filter((d) => d.uri.scheme === 'file' && !d.isDirty).map((d) => d.uri.fsPath));
    if (open.size === 0) return;
    const conflicted = new Set(result.stats.conflicts.map((c) => c.path));
    const store = new MergeBaseStore(path.join(stateDir, 'merge-base'));
    for (const file of open) {
      const rel = this.relativePath(vscode.Uri.file(file));
      if (rel && !conflicted.has(rel) && !result.stats.errors.some((e) => e.path === rel)) store.remember(file, result.hashAlgorithm);
    }
  }

  /** The last-synced content of a path, when it was kept (see MergeBaseStore). */
  async mergeBase(relPath: string): Promise<Buffer | undefined> {
    const stateDir = await this.stateDir();
    const remote = await this.backend();
    const { table } = new (engine().StateStore)(stateDir, { source: this.local.id, destination: remote.id }).loadTable();
    const row = table.find(relPath);
    return new MergeBaseStore(path.join(stateDir, 'merge-base')).lookup(row >= 0 ? table.hash(row, 'source') : undefined);
  }

  /** Fold a run's outcome into the pending changes the view shows. */
  private absorb(request: RunRequest, result: SyncResult): void {
    const inRequest = (p: string) => !request.scope || engine().inScope(p, request.scope);
    for (const p of [...this.changes.keys()]) if (inRequest(p)) this.changes.delete(p);
    if (request.dryRun) {
      for (const item of result.plan.items) {
        const change = pendingChangeOf(item);
        if (change) this.changes.set(change.path, change);
      }
    } else {
      for (const c of result.stats.conflicts) this.changes.set(c.path, { path: c.path, direction: 'conflict', reason: c.note ? `${c.reason}: ${c.note}` : c.reason });
    }
    this.onDidChangeEmitter.fire();
  }

  /** Forget the pair's state: the next sync is a first sync. */
  async clearState(): Promise<void> {
    const remote = await this.backend();
    new (engine().StateStore)(await this.stateDir(), { source: this.local.id, destination: remote.id }).clear();
    this.changes.clear();
    this.onDidChangeEmitter.fire();
  }

  dispose(): void {
    this.active?.cancel();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    void this.closeRemote();
    this.onDidChangeEmitter.dispose();
    this.onProgressEmitter.dispose();
  }
}

function pendingChangeOf(item: PlanItem): PendingChange | undefined {
  switch (item.action) {
    case 'copy':
      if (item.conflict && !item.conflict.winner) return { path: item.path, direction: 'conflict', item, reason: item.conflict.reason };
      return { path: item.path, direction: item.to === 'destination' ? 'outgoing' : 'incoming', item, reason: item.conflict ? `conflict, ${item.conflict.strategy}` : item.reason };
    case 'delete':
      return { path: item.path, direction: item.side === 'destination' ? 'outgoing' : 'incoming', item, reason: `delete (${item.reason})` };
    case 'rename':
      return { path: item.path, direction: item.side === 'destination' ? 'outgoing' : 'incoming', item, reason: `${item.keepOld ? 'copy' : 'rename'} from ${item.fromPath}` };
    case 'rename-dir':
      return { path: item.path, direction: item.side === 'destination' ? 'outgoing' : 'incoming', item, reason: `folder moved from ${item.fromPath}` };
    case 'conflict':
      return { path: item.path, direction: 'conflict', item, reason: item.conflict.reason };
    case 'keep-both':
      return { path: item.path, direction: 'conflict', item, reason: `keep both (${item.conflict.reason})` };
    default:
      return undefined;
  }
}

export function summarize(result: SyncResult, dryRun: boolean): string {
  const c = result.plan.counts;
  const s = result.stats;
  if (dryRun) {
    const parts = [
      c.upload && `${c.upload} to upload`,
      c.download && `${c.download} to download`,
      c.deleteDestination && `${c.deleteDestination} to delete on the remote`,
      c.deleteSource && `${c.deleteSource} to delete locally`,
      c.renameDestination + c.renameSource && `${c.renameDestination + c.renameSource} renames`,
      c.conflicts && `${c.conflicts} conflict${c.conflicts === 1 ? '' : 's'}`,
    ].filter(Boolean);
    return parts.length ? parts.join(', ') : 'in sync';
  }
  const parts = [
    s.uploaded && `${s.uploaded} uploaded`,
    s.downloaded && `${s.downloaded} downloaded`,
    s.deletedDestination && `${s.deletedDestination} deleted on the remote`,
    s.deletedSource && `${s.deletedSource} deleted locally`,
    s.renamedDestination + s.renamedSource && `${s.renamedDestination + s.renamedSource} renamed`,
    s.conflicts.length && `${s.conflicts.length} conflict${s.conflicts.length === 1 ? '' : 's'} left`,
    s.errors.length && `${s.errors.length} errors`,
    s.cancelled && 'cancelled',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'nothing to do';
}
