// Progress events emitted by a sync, for the CLI's progress line and the editor's notifications.
import type { PlanCounts } from './model';
import type { Side } from './options';

export type FileAction = 'upload' | 'download' | 'delete' | 'rename' | 'keep-both' | 'hash';

export interface SyncStats {
  uploaded: number;
  downloaded: number;
  deletedSource: number;
  deletedDestination: number;
  renamedSource: number;
  renamedDestination: number;
  conflictsResolved: number;
  recorded: number;
  bytesTransferred: number;
  /** Conflicts left for the user (manual strategy, or a file that changed during the run). */
  conflicts: { path: string; reason: string; note?: string }[];
  errors: { path: string; message: string }[];
  durationMs: number;
  cancelled: boolean;
}

export type SyncEvent =
  | { type: 'scan-start'; side: Side }
  | { type: 'scan-progress'; side: Side; files: number }
  | { type: 'scan-complete'; side: Side; files: number; skipped: number }
  | { type: 'hash-progress'; done: number; total: number }
  | { type: 'plan-ready'; counts: PlanCounts; warnings: string[] }
  | { type: 'sync-start'; totalFiles: number; totalBytes: number }
  | { type: 'file-start'; path: string; action: FileAction; side: Side; bytes: number }
  | { type: 'file-progress'; path: string; bytes: number; total: number }
  | { type: 'file-complete'; path: string; action: FileAction; side: Side }
  | { type: 'file-error'; path: string; action: FileAction; message: string; willRetry: boolean }
  | { type: 'totals'; doneFiles: number; totalFiles: number; doneBytes: number; totalBytes: number; bytesPerSecond: number; etaSeconds: number | undefined }
  | { type: 'paused' }
  | { type: 'resumed' }
  | { type: 'sync-complete'; stats: SyncStats };

export type SyncEventListener = (event: SyncEvent) => void;
