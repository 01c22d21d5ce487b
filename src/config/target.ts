// Target strings: a folder path, or a URL whose scheme names the kind of store.
import * as path from 'node:path';
import { UsageError } from '../core/errors';

export type TargetKind = 'local' | 'sftp' | 'ftp' | 'ftps' | 's3';

export interface Target {
  kind: TargetKind;
  /** What the user typed, for messages. */
  raw: string;
  /** For local targets: the absolute folder path. */
  path: string;
}

const REMOTE_SCHEMES = new Set(['sftp', 'ftp', 'ftps', 's3']);
// A URL scheme of two or more letters; "C:\" is a Windows drive, not a scheme.
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):\/\//;

export function parseTarget(raw: string, what: 'source' | 'destination'): Target {
  if (raw.trim() === '') throw new UsageError(`The ${what} is empty`);
  const m = SCHEME.exec(raw);
  if (!m) return { kind: 'local', raw, path: path.resolve(raw) };
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'file') {
    let p: string;
    try {
      p = new URL(raw).pathname;
    } catch {
      throw new UsageError(`The ${what} "${raw}" is not a valid file:// URL`);
    }
    return { kind: 'local', raw, path: path.resolve(decodeURIComponent(p)) };
  }
  if (REMOTE_SCHEMES.has(scheme)) {
    throw new UsageError(`${scheme}:// targets are not available in this version yet; the ${what} must be a local folder for now`);
  }
  throw new UsageError(`Unknown scheme "${scheme}://" in the ${what} "${raw}". Use a folder path, or sftp://, ftp://, ftps:// or s3://`);
}
