// Target strings: a folder path, or a URL whose scheme names the kind of store.
//   /path/to/folder, ./rel, file:///abs
//   sftp://[user@]host[:port]/path      (path relative to the login folder; //path or /~/… see below)
//   ftp://[user@]host[:port]/path, ftps://… (explicit TLS; --ftps-implicit for implicit TLS)
//   s3://bucket[/prefix]
import * as path from 'node:path';
import { UsageError } from '../core/errors';

export interface LocalTarget {
  kind: 'local';
  raw: string;
  /** The absolute folder path. */
  path: string;
}

export interface RemoteHostTarget {
  kind: 'sftp' | 'ftp' | 'ftps';
  raw: string;
  host: string;
  /** Undefined: the scheme's default (22, 21, 21) or what ~/.ssh/config says. */
  port?: number;
  user?: string;
  /**
   * The remote root folder. `sftp://host/var/www` is the absolute /var/www, as in most tools;
   * `sftp://host/~/site` is relative to the login folder.
   */
  path: string;
}

export interface S3Target {
  kind: 's3';
  raw: string;
  bucket: string;
  /** Key prefix without leading or trailing '/', '' for the whole bucket. */
  prefix: string;
}

export type Target = LocalTarget | RemoteHostTarget | S3Target;
export type TargetKind = Target['kind'];

// A URL scheme of two or more letters; "C:\" is a Windows drive, not a scheme.
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):\/\//;

/** What a target looks like in messages: the URL without any password. */
export function describeTarget(target: Target): string {
  switch (target.kind) {
    case 'local':
      return target.path;
    case 's3':
      return `s3://${target.bucket}${target.prefix ? `/${target.prefix}` : ''}`;
    default:
      return `${target.kind}://${target.user ? `${target.user}@` : ''}${target.host}${target.port ? `:${target.port}` : ''}${target.path.startsWith('/') ? '' : '/~/'}${target.path}`;
  }
}

export function parseTarget(raw: string, what: 'source' | 'destination'): Target {
  if (raw.trim() === '') throw new UsageError(`The ${what} is empty`);
  const m = SCHEME.exec(raw);
  if (!m) return { kind: 'local', raw, path: path.resolve(raw) };
  const scheme = m[1]!.toLowerCase();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`The ${what} "${raw}" is not a valid URL`);
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new UsageError(`The ${what} "${raw}" has a malformed %-escape`);
    }
  };
  if (url.search || url.hash) throw new UsageError(`The ${what} "${raw}" has a query or fragment, which targets do not take`);
  switch (scheme) {
    case 'file':
      return { kind: 'local', raw, path: path.resolve(decode(url.pathname)) };
    case 'sftp':
    case 'ftp':
    case 'ftps': {
      if (!url.hostname) throw new UsageError(`The ${what} "${raw}" names no host`);
      if (url.password) throw new UsageError(`Put no password in the ${what} URL: it would end up in shell history and logs. Use the SYNCENGINE_PASSWORD environment variable or the prompt.`);
      let remotePath = decode(url.pathname);
      // "/~/x" and "/~" are relative to the login folder; anything else is absolute.
      if (remotePath === '/~' || remotePath.startsWith('/~/')) remotePath = remotePath.slice(3);
      else if (remotePath === '') remotePath = '/';
      const target: RemoteHostTarget = { kind: scheme, raw, host: url.hostname.replace(/^\[|\]$/g, ''), path: remotePath.replace(/\/+$/, '') || (remotePath.startsWith('/') ? '/' : '') };
      if (url.port) target.port = Number(url.port);
      if (url.username) target.user = decode(url.username);
      return target;
    }
    case 's3': {
      const bucket = url.hostname;
      if (!bucket) throw new UsageError(`The ${what} "${raw}" names no bucket (s3://bucket/prefix)`);
      if (url.username || url.password || url.port) throw new UsageError(`The ${what} "${raw}": an s3:// URL is s3://bucket/prefix; give the endpoint with --s3-endpoint and keys in the AWS environment variables`);
      return { kind: 's3', raw, bucket, prefix: decode(url.pathname).replace(/^\/+|\/+$/g, '') };
    }
    default:
      throw new UsageError(`Unknown scheme "${scheme}://" in the ${what} "${raw}". Use a folder path, or sftp://, ftp://, ftps:// or s3://`);
  }
}
