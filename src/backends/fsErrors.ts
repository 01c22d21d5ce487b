// Node file-system error codes in words, for messages that say what went wrong.

export const TRANSIENT_CODES = new Set(['EBUSY', 'EAGAIN', 'EMFILE', 'ENFILE', 'ETIMEDOUT']);

export const CAUSES: Readonly<Record<string, string>> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a parent is a file, not a folder',
  EISDIR: 'it is a folder',
  EEXIST: 'something already exists there',
  ENOTEMPTY: 'folder is not empty',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'name too long',
  EXDEV: 'crosses a file-system boundary',
  EIO: 'input/output error',
  EBUSY: 'resource busy',
  EAGAIN: 'resource temporarily unavailable',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ETIMEDOUT: 'timed out',
  EINVAL: 'invalid argument',
  EFBIG: 'file too large',
  EMLINK: 'too many links',
};

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

