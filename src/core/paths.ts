// Relative store paths: '/'-separated, no leading or trailing '/', no '.' or '..' segments.
import { UnsafePathError } from './errors';

// Control characters are legal on POSIX file systems but break terminals, logs and other stores.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** Throws UnsafePathError unless `path` is a normalised relative path that stays inside the root. */
export function assertSafeRelativePath(path: string): void {
  if (path === '') return; // the root itself
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw new UnsafePathError(path, 'absolute path');
  if (path.includes('\\')) throw new UnsafePathError(path, 'backslash in name');
  if (CONTROL_CHARS.test(path)) throw new UnsafePathError(path, 'control character in name');
  for (const segment of path.split('/')) {
    if (segment === '') throw new UnsafePathError(path, 'empty path segment');
    if (segment === '.' || segment === '..') throw new UnsafePathError(path, `"${segment}" segment`);
  }
}

/** Whether a single name (one segment) is safe to create; used to screen names a store lists. */
export function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\\') && !CONTROL_CHARS.test(name);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Code-unit order: the order of the stored base and of the sorted listings merged with it. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Names of the engine's own folders and temporary files: never synced, never listed. */
export const ENGINE_PREFIXES = ['.syncengine', '.sync_state'] as const;

export function isEngineName(name: string): boolean {
  return ENGINE_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** The trash folder kept at the root of each side. */
export const TRASH_DIR = '.syncengine-trash';
/** Prefix of temporary files written before an atomic rename. */
export const TEMP_PREFIX = '.syncengine-tmp-';
