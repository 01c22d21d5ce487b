// Pause, resume and cancel a running sync from outside (the CLI's signals, the editor's buttons).
import { setMaxListeners } from 'node:events';
import { CancelledError } from './errors';

export class SyncController {
  private readonly abort = new AbortController();
  private pausedWaiters: (() => void)[] = [];
  private isPaused = false;
  private listeners: ((state: 'paused' | 'resumed' | 'cancelled') => void)[] = [];

  constructor() {
    // Every transfer in flight listens on the signal; that is expected, not a leak.
    setMaxListeners(0, this.abort.signal);
  }

  /** Aborted on cancel: in-flight transfers stop (their atomic writes leave the old content). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get cancelled(): boolean {
    return this.abort.signal.aborted;
  }

  onStateChange(listener: (state: 'paused' | 'resumed' | 'cancelled') => void): void {
    this.listeners.push(listener);
  }

  /** Operations in flight finish; no new one starts until resume. */
  pause(): void {
    if (this.isPaused || this.cancelled) return;
    this.isPaused = true;
    for (const l of this.listeners) l('paused');
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    const waiters = this.pausedWaiters;
    this.pausedWaiters = [];
    for (const w of waiters) w();
    for (const l of this.listeners) l('resumed');
  }

  /** No new operation starts; what finished is kept in the state, so the next run resumes from there. */
  cancel(): void {
    if (this.cancelled) return;
    this.abort.abort(new CancelledError());
    this.resume();
    for (const l of this.listeners) l('cancelled');
  }

  /** Resolves when not paused; throws CancelledError once cancelled. */
  async checkpoint(): Promise<void> {
    if (this.isPaused) await new Promise<void>((resolve) => this.pausedWaiters.push(resolve));
    if (this.cancelled) throw new CancelledError();
  }
}
