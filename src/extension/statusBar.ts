// The status bar item: idle / syncing (count and percentage) / paused / conflicts / sync on save
// off / a broken config. Clicking it toggles sync on save; the tooltip tells the last sync's outcome.
import * as vscode from 'vscode';
import type { SyncModel } from './model';
import { summarize, type RunProgress } from './targetSession';

/** How long the item waits to follow a change (changes within it come together). */
const UPDATE_DELAY_MS = 30;

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('syncengine.status', vscode.StatusBarAlignment.Left, 5);
  private readonly disposables: vscode.Disposable[] = [];
  private progress: { done: number; total: number } | undefined;

  constructor(private readonly model: SyncModel) {
    this.item.name = 'SyncEngine';
    this.item.command = 'syncengine.toggleSyncOnSave';
    this.disposables.push(this.item, model.onDidChange(() => this.updateSoon()), model.onProgress((p) => this.onProgress(p)), { dispose: () => clearTimeout(this.updateTimer) });
    this.update();
  }

  private updateTimer: NodeJS.Timeout | undefined;
  /** As the Sync view: a run's several changes of the model become one update, after a moment. */
  private updateSoon(): void {
    this.updateTimer ??= setTimeout(() => {
      this.updateTimer = undefined;
      this.update();
    }, UPDATE_DELAY_MS);
  }

  private onProgress(p: RunProgress): void {
    const e = p.event;
    if (e.type === 'sync-start') this.progress = { done: 0, total: e.totalFiles };
    else if (e.type === 'totals') this.progress = { done: e.doneFiles, total: e.totalFiles };
    else if (e.type === 'paused' || e.type === 'resumed') this.progress ??= { done: 0, total: 0 };
    else return;
    this.updateSoon();
  }

  /** The text as it is now (an update still waiting is done first). */
  get text(): string {
    if (this.updateTimer) this.update();
    return this.item.text;
  }

  update(): void {
    clearTimeout(this.updateTimer);
    this.updateTimer = undefined;
    const model = this.model;
    if (!model.hasConfig()) {
      this.item.hide();
      return;
    }
    const sessions = model.sessions();
    const running = sessions.filter((s) => s.running);
    const conflicts = sessions.reduce((n, s) => n + s.conflicts().length, 0);
    const errors = model.configErrors();
    let text: string;
    let label: string;
    this.item.backgroundColor = undefined;
    if (errors.length > 0) {
      text = '$(error) SyncEngine';
      label = 'SyncEngine: the config has errors';
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    } else if (running.some((s) => s.controller?.paused)) {
      text = '$(debug-pause) Paused';
      label = 'SyncEngine: paused';
    } else if (running.length > 0) {
      const p = this.progress;
      const pct = p && p.total > 0 ? Math.floor((p.done / p.total) * 100) : undefined;
      text = p && p.total > 0 ? `$(sync~spin) ${p.done}/${p.total} ${pct}%` : '$(sync~spin) Syncing';
      label = `SyncEngine: syncing${p && p.total > 0 ? ` ${p.done} of ${p.total} files, ${pct}%` : ''}`;
    } else if (conflicts > 0) {
      text = `$(warning) ${conflicts} conflict${conflicts === 1 ? '' : 's'}`;
      label = `SyncEngine: ${conflicts} conflict${conflicts === 1 ? '' : 's'} to resolve`;
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    } else if (!model.syncOnSave) {
      text = '$(circle-slash) Sync on save off';
      label = 'SyncEngine: sync on save is off';
    } else {
      text = '$(cloud) SyncEngine';
      label = 'SyncEngine: idle, sync on save on';
    }
    if (running.length === 0) this.progress = undefined;
    this.item.text = text;
    this.item.accessibilityInformation = { label, role: 'button' };
    this.item.tooltip = this.tooltip(errors);
    this.item.show();
  }

  private tooltip(errors: string[]): vscode.MarkdownString {
    const md = new vscode.MarkdownString('', true);
    md.appendMarkdown(`**SyncEngine** — sync on save is ${this.model.syncOnSave ? 'on' : 'off'} (click to toggle)\n\n`);
    for (const e of errors) md.appendText(`${e}\n`);
    for (const s of this.model.sessions()) {
      const last = s.lastResult;
      const what = last ? `${last.kind === 'preview' ? 'preview' : 'last sync'} ${last.at.toLocaleTimeString()}: ${summarize(last.result, last.kind === 'preview')}` : 'not synced in this session';
      md.appendMarkdown(`- ${s.label} → \`${s.config.url}\`: `);
      md.appendText(`${what}\n`);
    }
    return md;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
