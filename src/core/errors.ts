// Typed errors with messages meant for the user. The CLI maps each class to an exit code.

export class SyncError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad arguments or configuration: nothing was touched. */
export class UsageError extends SyncError {}

/** A path that would escape the root, or that no store can hold safely. */
export class UnsafePathError extends SyncError {
  constructor(readonly path: string, reason: string) {
    super(`Refused unsafe path ${JSON.stringify(path)}: ${reason}`);
  }
}

/** A safety guard stopped the run before anything changed. */
export class GuardError extends SyncError {
  constructor(readonly guard: 'empty-side' | 'max-delete', message: string) {
    super(message);
  }
}

/** Another sync of the same pair holds the lock. */
export class LockedError extends SyncError {}

/** The run was cancelled by the caller. */
export class CancelledError extends SyncError {
  constructor() {
    super('Sync cancelled');
  }
}

/** A file changed between planning and the moment the engine was about to touch it. */
export class ChangedDuringSyncError extends SyncError {
  constructor(readonly path: string, readonly side: string) {
    super(`${path} changed on the ${side} side during the sync; left untouched, it will be looked at again next run`);
  }
}

/** A storage operation failed; `transient` errors are retried with backoff. */
export class StorageError extends SyncError {
  constructor(
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A create-only write (WriteOptions.ifAbsent) found a file already at the path and wrote nothing. */
export class TargetExistsError extends StorageError {
  constructor(readonly path: string, store: string) {
    super(`${store}: ${path} already exists; it was not overwritten`, false);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
