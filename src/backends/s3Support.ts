// Pure helpers of the S3 backend (no network): error messages, ETags, copy-source encoding, and the
// folder tree that a flat key listing implies. Kept apart from s3.ts so they can be tested alone.
import { createHash } from 'node:crypto';
import { StorageError, SyncError } from '../core/errors';
import { isEngineName, isSafeName, joinPath } from '../core/paths';
import type { Entry, SkippedEntry } from './types';
import { describeSubject, type Subject as PathSubject } from './subject';

// ---------------------------------------------------------------------------------------------
// Errors

/** Where the store is, for messages: "s3://bucket/prefix at http://127.0.0.1:9000". */
export interface S3Place {
  bucket: string;
  /** s3://bucket/prefix (+ " at <endpoint>" for S3-compatible servers). */
  where: string;
  /** The endpoint as the user knows it: the URL given, or "AWS S3 (region)". */
  endpoint: string;
}

/** A path, or a pair of paths for moves and copies, as it appears in messages. */
export type Subject = PathSubject | undefined;

/** "Cannot read "a.txt" in s3://b/p at <endpoint>", or "Cannot list s3://b/p at <endpoint>" without a path. */
export function cannot(operation: string, subject: Subject, place: S3Place): string {
  if (subject === undefined) return `Cannot ${operation} ${place.where}`;
  return `Cannot ${operation} ${describeSubject(subject)} in ${place.where}`;
}

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code (NoSuchBucket, AccessDenied, ...) or Node's error code (ECONNREFUSED, ...). */
export function errorCodeOf(error: unknown): string | undefined {
  const e = (error ?? {}) as SdkErrorShape;
  if (typeof e.Code === 'string' && e.Code !== '') return e.Code;
  if (typeof e.code === 'string' && e.code !== '') return e.code;
  if (typeof e.name === 'string' && e.name !== '' && e.name !== 'Error' && e.name !== 'UnknownError' && e.name !== 'Unknown') return e.name;
  return undefined;
}

export function httpStatusOf(error: unknown): number | undefined {
  const status = ((error ?? {}) as SdkErrorShape).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** 412: a condition of the request (If-None-Match, If-Match, copy-source-if-match) did not hold. */
export function isPreconditionFailed(error: unknown): boolean {
  return httpStatusOf(error) === 412 || errorCodeOf(error) === 'PreconditionFailed';
}

export function isAbortError(error: unknown): boolean {
  const name = ((error ?? {}) as SdkErrorShape).name;
  return name === 'AbortError';
}

/** "Not found" for GET/HEAD/copy: HEAD answers a bare 404 without a body (no error code). */
export function isNotFound(error: unknown): boolean {
  const code = errorCodeOf(error);
  if (code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchVersion') return true;
  return code === undefined && httpStatusOf(error) === 404;
}

const NETWORK_CAUSES: Readonly<Record<string, [cause: (endpoint: string) => string, transient: boolean]>> = {
  ECONNREFUSED: [(e) => `connection refused by ${e} (is the server running?)`, true],
  ECONNRESET: [(e) => `the connection to ${e} was reset`, true],
  EPIPE: [(e) => `the connection to ${e} was closed`, true],
  ECONNABORTED: [(e) => `the connection to ${e} was aborted`, true],
  ETIMEDOUT: [(e) => `timed out talking to ${e}`, true],
  TimeoutError: [(e) => `timed out talking to ${e}`, true],
  ENOTFOUND: [(e) => `host not found: ${e}`, false],
  EAI_AGAIN: [(e) => `name resolution failed for ${e} (temporary)`, true],
  EHOSTUNREACH: [(e) => `host unreachable: ${e}`, true],
  ENETUNREACH: [(e) => `network unreachable for ${e}`, true],
  ERR_STREAM_PREMATURE_CLOSE: [(e) => `the connection to ${e} closed before the transfer ended`, true],
  ECONNCLOSED: [(e) => `the connection to ${e} was closed`, true],
};

const TLS_CODES = /^(CERT_|UNABLE_TO_VERIFY|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|ERR_TLS_CERT|ERR_SSL)/;

/**
 * Turns an AWS SDK or network error into a StorageError whose message names the store (bucket and
 * endpoint), the operation, the path and the cause in words:
 *   Cannot read "a.txt" in s3://b/p at http://127.0.0.1:9000: connection refused by http://127.0.0.1:9000 (ECONNREFUSED)
 * Transient (retried by the engine): throttling (SlowDown, 503), 5xx, timeouts and dropped
 * connections. SyncErrors and aborts pass through unchanged.
 */
export function toStorageError(operation: string, subject: Subject, error: unknown, place: S3Place): Error {
  if (error instanceof SyncError || isAbortError(error)) return error as Error;
  const code = errorCodeOf(error);
  const status = httpStatusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const { bucket, endpoint } = place;
  let cause: string;
  let transient = false;
  const network = code !== undefined ? NETWORK_CAUSES[code] : undefined;
  if (network) {
    cause = `${network[0](endpoint)} (${code})`;
    transient = network[1];
  } else if (code !== undefined && TLS_CODES.test(code)) {
    cause = `the TLS certificate of ${endpoint} is not trusted (${code})`;
  } else {
    switch (code) {
      case 'NoSuchBucket':
        cause = `the bucket "${bucket}" does not exist (NoSuchBucket)`;
        break;
      case 'InvalidAccessKeyId':
        cause = 'authentication failed: the server does not know this access key ID (InvalidAccessKeyId); check AWS_ACCESS_KEY_ID or the AWS profile in use';
        break;
      case 'SignatureDoesNotMatch':
        cause = 'authentication failed: the secret access key is wrong (SignatureDoesNotMatch); check AWS_SECRET_ACCESS_KEY or the AWS profile in use';
        break;
      case 'InvalidToken':
      case 'ExpiredToken':
      case 'TokenRefreshRequired':
      case 'InvalidSecurity':
        cause = `authentication failed: the session token is invalid or expired (${code})`;
        break;
      case 'CredentialsProviderError':
        cause = 'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or configure ~/.aws/credentials';
        break;
      case 'AccessDenied':
      case 'Forbidden':
      case 'AllAccessDisabled':
        cause = `access denied (${code}): the credentials in use lack permission for this`;
        break;
      case 'NoSuchKey':
      case 'NotFound':
        cause = 'no such file';
        break;
      case 'SlowDown':
      case 'Throttling':
      case 'ThrottlingException':
      case 'TooManyRequests':
      case 'RequestLimitExceeded':
        cause = `the server asks to slow down (${code})`;
        transient = true;
        break;
      case 'InternalError':
      case 'ServiceUnavailable':
      case 'InternalServerError':
        cause = `server error (${code})`;
        transient = true;
        break;
      case 'RequestTimeout':
        cause = 'the server timed out waiting for data (RequestTimeout)';
        transient = true;
        break;
      case 'RequestTimeTooSkewed':
        cause = "this machine's clock differs from the server's by more than 15 minutes (RequestTimeTooSkewed)";
        break;
      case 'PermanentRedirect':
      case 'AuthorizationHeaderMalformed':
      case 'IllegalLocationConstraintException':
        cause = `the bucket is in another region than the one configured: set the S3 region (${code}: ${message})`;
        break;
      case 'InvalidObjectState':
        cause = 'the object is archived (Glacier/Deep Archive storage class): restore it before it can be read (InvalidObjectState)';
        break;
      case 'EntityTooLarge':
        cause = 'the object is larger than the server accepts (EntityTooLarge)';
        break;
      case 'InvalidBucketName':
        cause = `"${bucket}" is not a valid bucket name (InvalidBucketName)`;
        break;
      default:
        if (status === 403) {
          cause = `access denied (HTTP 403)${code ? ` (${code})` : ''}`;
        } else if (status === 404) {
          cause = `not found (HTTP 404)${code ? ` (${code})` : ''}`;
        } else if (status === 301 || status === 307) {
          cause = `the bucket is in another region or needs another endpoint (HTTP ${status})`;
        } else if (status !== undefined && status >= 500) {
          cause = `server error (HTTP ${status}${code ? `, ${code}` : ''}): ${message}`;
          transient = true;
        } else {
          cause = code !== undefined && !message.includes(code) ? `${message} (${code})` : message;
          const e = (error ?? {}) as SdkErrorShape;
          transient = e.$fault === 'server' || e.$retryable !== undefined;
        }
    }
  }
  return new StorageError(`${cannot(operation, subject, place)}: ${cause}`, transient, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// ETags, identities, times

/**
 * The MD5 an ETag stands for, when it has the form of one: 32 hex digits, no "-N" suffix (multipart
 * ETags are an MD5 of the parts' MD5s, not of the content). Whether the store's ETags are MD5s at
 * all (SSE-KMS and SSE-C objects have random ones) is decided by the caller.
 */
export function md5FromEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  const m = /^(?:W\/)?"?([0-9a-fA-F]{32})"?$/.exec(etag.trim());
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * A number that changes whenever the object is rewritten: 52 bits of its ETag. Reported as the
 * entry's `ino` (identity), so that a rewrite within the same second as the previous one (S3 keeps
 * modification times to the second) is still seen as a change, also for multipart objects whose
 * ETag is no MD5. Two keys with the same content share it, like hard links do.
 */
export function identityFromEtag(etag: string | undefined): number | undefined {
  if (etag === undefined || etag === '') return undefined;
  let hex = etag.replace(/[^0-9a-fA-F]/g, '');
  if (hex.length < 13) hex = createHash('md5').update(etag).digest('hex');
  return parseInt(hex.slice(0, 13), 16);
}

/** S3's times as the entries carry them: whole seconds (HEAD has no more; listings may have ms). */
export function wholeSecondMs(date: Date | undefined): number {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return 0;
  return Math.floor(date.getTime() / 1000) * 1000;
}

// ---------------------------------------------------------------------------------------------
// Copy sources

/**
 * The x-amz-copy-source header for a key: "bucket/key" URL-encoded segment by segment. Characters
 * that are safe unencoded in a header and carry no meaning to S3 (":@&=$,;") stay as they are:
 * simpler S3-compatible servers decode this header with decodeURI, which leaves their %-escapes alone.
 */
export function copySource(bucket: string, key: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%40/gi, '@').replace(/%26/gi, '&').replace(/%3D/gi, '=').replace(/%24/gi, '$').replace(/%2C/gi, ',').replace(/%3B/gi, ';');
  return `${enc(bucket)}/${key.split('/').map(enc).join('/')}`;
}

// ---------------------------------------------------------------------------------------------
// The folder tree of a flat listing

/** One listed object, relative to the store's root. */
export interface ListedObject {
  /** The key without the root prefix; ends with '/' for folder marker objects. */
  rel: string;
  size: number;
  lastModified: Date | undefined;
  etag: string | undefined;
}

export interface TreeNode {
  files: Map<string, ListedObject>;
  dirs: Set<string>;
  /** Entries of this folder that cannot be synced (reported when the folder is walked). */
  skipped: SkippedEntry[];
}

/** Folder path ('' = root) → its direct files, subfolders (names) and skipped entries. */
export type ObjectTree = Map<string, TreeNode>;

function nodeOf(nodes: ObjectTree, dir: string): TreeNode {
  let node = nodes.get(dir);
  if (!node) {
    node = { files: new Map(), dirs: new Set(), skipped: [] };
    nodes.set(dir, node);
  }
  return node;
}

export const UNSAFE_NAME_REASON = 'unsafe name (empty, "." or "..", control character or backslash)';
export const SHADOWED_FILE_REASON = 'an object and a folder share this name; the folder is synced, the object is left alone';

/**
 * Folders implied by a flat list of keys (every prefix ending in '/' is a folder; a key ending in
 * '/' is a folder marker). Engine-owned names are left out with everything below them; unsafe names
 * are reported once and left out with everything below them.
 */
export function buildObjectTree(objects: Iterable<ListedObject>): ObjectTree {
  const nodes: ObjectTree = new Map();
  nodeOf(nodes, '');
  const reported = new Set<string>();
  const skip = (dir: string, path: string, reason: string) => {
    if (reported.has(path)) return;
    reported.add(path);
    nodeOf(nodes, dir).skipped.push({ path, reason });
  };
  for (const object of objects) {
    const rel = object.rel;
    if (rel === '') continue; // the marker of the root itself
    const segments = rel.split('/');
    const isMarker = rel.endsWith('/');
    if (isMarker) segments.pop();
    let dir = '';
    for (let i = 0; i < segments.length; i++) {
      const name = segments[i]!;
      const path = joinPath(dir, name);
      if (isEngineName(name)) break;
      if (!isSafeName(name)) {
        skip(dir, path, UNSAFE_NAME_REASON);
        break;
      }
      const last = i === segments.length - 1;
      if (last && !isMarker) {
        nodeOf(nodes, dir).files.set(name, object);
      } else {
        nodeOf(nodes, dir).dirs.add(name);
        nodeOf(nodes, path);
      }
      dir = path;
    }
  }
  // A name that is both a folder and an object: the folder wins (listDir does the same).
  for (const [dir, node] of nodes) {
    for (const name of node.files.keys()) {
      if (node.dirs.has(name)) {
        node.files.delete(name);
        skip(dir, joinPath(dir, name), SHADOWED_FILE_REASON);
      }
    }
  }
  return nodes;
}

/** The entry of a listed file. `trustEtag`: whether this store's single-part ETags are MD5s. */
export function fileEntry(path: string, object: { size: number; lastModified: Date | undefined; etag: string | undefined }, trustEtag: boolean): Entry {
  const entry: Entry = { path, kind: 'file', size: object.size, mtimeMs: wholeSecondMs(object.lastModified) };
  const ino = identityFromEtag(object.etag);
  if (ino !== undefined) entry.ino = ino;
  if (trustEtag) {
    const md5 = md5FromEtag(object.etag);
    if (md5 !== undefined) entry.hash = md5;
  }
  return entry;
}

export function dirEntry(path: string): Entry {
  return { path, kind: 'dir', size: 0, mtimeMs: 0 };
}
