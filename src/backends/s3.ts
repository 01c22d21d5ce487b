// The S3 backend: a bucket (and a key prefix in it) of AWS S3 or an S3-compatible server as a store.
// Loaded lazily by registry.ts, so a sync that uses no S3 target never loads the AWS SDK.
//
// Mapping. The file at path "a/b.txt" is the object "<prefix>/a/b.txt". Folders are key prefixes:
// a folder exists while any key is below it. mkdir puts a zero-byte marker object "<dir>/" so that
// empty folders exist too (and rmdirIfEmpty removes it when nothing else is below); writing a file
// creates no markers, its folders are implied by its key, and a folder whose last file is deleted
// disappears unless it has a marker. A name that is both an object and a folder ("a" and "a/x"),
// which S3 allows, is listed as the folder and the object is reported as skipped (stat, which starts
// with a HEAD, reports the object). write does not look for a folder at its path first: that would
// cost a request per file.
//
// Modification times. ListObjectsV2 returns only LastModified (the time the object was stored) and
// no user metadata; reading the metadata would cost a HEAD request per object on every scan. So
// every method (listDir, listTree, stat, and the entry write returns) reports mtimeMs =
// LastModified, cut to whole seconds (HEAD has no more, some servers list milliseconds): one
// definition everywhere, so an unchanged object always looks unchanged. The engine compares times
// only with earlier times of the same store, where this is exact. The mtime given to write is kept
// in the metadata as x-amz-meta-mtime (ms since the epoch; server-side copies keep it) for other
// tools and for a later engine that can use it; the engine's Entry has no field for it today, so a
// file downloaded from S3 gets the upload time as its modification time. The entry a write returns
// comes from a HEAD after the upload, except when the engine says its comparison mode does not
// look at times (WriteOptions.mtimeEstimateOk) and the PUT's ETag is the MD5 it sent: listings will
// then show that MD5 as the hash, which the engine compares first, so the response's Date header
// stands in for LastModified and a second's difference only makes the next run refresh its record.
//
// Identity and hashes. Each file entry carries `ino` = 52 bits of its ETag: it changes whenever the
// object is rewritten, even within the same second and for multipart objects, so the engine's
// check-before-overwrite and its hash cache see every rewrite. `hash` is the ETag when that is the
// MD5 of the content: single-part uploads (no "-N" suffix) on stores whose ETags are MD5s. SSE-KMS
// and SSE-C objects have random ETags: the first listing HEADs one object and, if it is encrypted
// that way, this backend stops reporting ETags as hashes; a single-part upload whose ETag differs
// from the MD5 we sent does the same. Multipart objects have no hash in listings; hash() returns the
// ETag when it is an MD5 and otherwise reads the object and computes the MD5 (what the engine would
// do anyway). We do not store an MD5 in the metadata: it is known only after the last part is sent,
// and adding it afterwards would take a second server-side copy of the whole object.
//
// Writes. Every write goes through @aws-sdk/lib-storage's Upload: one PutObject for up to one part
// (5 MiB), a multipart upload otherwise, parts sent `connections` (default 4) at a time; the source
// is streamed, never held whole (at most `connections` + 1 parts are in memory). Each request carries
// Content-MD5, so the server rejects corrupted data. S3 replaces an object atomically: readers see the
// old object until the upload completes, and a failed upload leaves it. A failed or aborted multipart
// upload is aborted (AbortMultipartUpload) so no parts are left to pay for; when even that fails
// (the server is unreachable) the abort is retried on the next write and on close(). An upload whose
// CreateMultipartUpload got no answer may exist with an ID we never learnt: it is looked up by key
// with ListMultipartUploads at the same moments. A listTree that may clean up (removeStaleTemp)
// also aborts uploads below the prefix that are older than a day (killed processes).
//
// Create-only writes (WriteOptions.ifAbsent): PutObject with If-None-Match: *, so the server refuses
// (412) to replace an object that appeared since the engine looked; AWS has honoured it since 2024,
// other stores may ignore it, so canWriteIfAbsent() probes once (an engine-named object put twice).
// A 412 whose object holds exactly the bytes sent is our own PUT answered on a retried attempt (or an
// identical file) and counts as written. Multipart uploads are checked with a HEAD before they start:
// a store that honours the header on PutObject may not on CompleteMultipartUpload.
//
// Checksums. SDK v3 by default (requestChecksumCalculation/responseChecksumValidation
// "WHEN_SUPPORTED") adds CRC32 checksums to uploads (as trailers of aws-chunked bodies for streams)
// and validates them on downloads, which many S3-compatible servers reject, store verbatim or do not
// return; both are set to "WHEN_REQUIRED". Integrity of uploads comes from Content-MD5.
//
// Moves and copies are server-side: CopyObject (MetadataDirective COPY; UploadPartCopy in 512 MiB
// parts above the 5 GiB limit of a single copy) then DeleteObject. They refuse an existing target,
// checked with HeadObject and a listing just before the copy: a target created by someone else in
// the moment between that check and the copy would be overwritten (S3 has no portable
// copy-if-absent). A folder is moved object by object (all copies first, then the deletes): not
// atomic; a failure during the copies removes the copies made, a failure during the deletes leaves
// both (everything is at the target, some originals remain).
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandOutput,
  type S3ClientConfig,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type HeadObjectCommandOutput,
  type ListObjectsV2CommandOutput,
  type MultipartUpload,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Target } from '../config/target';
import { hashOfStream, type HashAlgorithm } from '../core/contentHash';
import { StorageError, TargetExistsError, UsageError } from '../core/errors';
import { IGNORE_FILE_NAME, IgnoreRules } from '../core/ignore';
import { assertSafeRelativePath, isEngineName, isSafeName, joinPath, parentOf } from '../core/paths';
import type { ConnectOptions } from './registry';
import {
  SHADOWED_FILE_REASON,
  UNSAFE_NAME_REASON,
  buildObjectTree,
  cannot,
  copySource,
  dirEntry,
  errorCodeOf,
  fileEntry,
  httpStatusOf,
  isAbortError,
  isNotFound,
  isPreconditionFailed,
  md5FromEtag,
  toStorageError,
  type ListedObject,
  type S3Place,
  type Subject,
} from './s3Support';
import type { Backend, Entry, ListDirResult, SkippedEntry, TreeListing, TreeListingOptions, WriteOptions } from './types';

const MiB = 1024 * 1024;
/** Smallest part S3 accepts (except the last); also the size up to which a write is one PutObject. */
export const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;
/** Largest object one CopyObject can copy. */
const MAX_SINGLE_COPY = 5 * 1024 * MiB;
const COPY_PART_SIZE = 512 * MiB;
/** Multipart uploads below the prefix older than this are taken for leftovers of killed runs. */
const STALE_UPLOAD_MS = 24 * 3600_000;
const DEFAULT_CONNECTIONS = 4;

// The SDK warns on every start under Node 20 that its 2027 versions will need Node 22; a user of the
// CLI can do nothing about it. Only this SDK-specific variable is set, and only when it is unset.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Options beyond ConnectOptions, for tests. */
export interface S3BackendSettings {
  /** Part size of multipart uploads (default and minimum 5 MiB; grows for huge files). */
  partSize?: number;
  /** Objects larger than this are copied with UploadPartCopy (default 5 GiB, S3's limit for CopyObject). */
  maxSingleCopyBytes?: number;
  /** Range size of UploadPartCopy (default 512 MiB, minimum 5 MiB). */
  copyPartSize?: number;
}

function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error('The operation was aborted');
  error.name = 'AbortError';
  return error;
}

function md5Of(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

/**
 * The SDK's default logger does nothing, but it has an `info`, and the SDK's logger middleware
 * builds a copy of every request's input and output (sensitive fields masked) to pass to it. A
 * logger without `info` skips that: a few percent of the client's CPU when uploading many small files.
 */
const QUIET_LOGGER = { debug: () => undefined, warn: () => undefined, error: () => undefined } as unknown as NonNullable<S3ClientConfig['logger']>;

/** Keep the Date header of a PutObject response (the SDK's output has no field for it). */
function recordServerDate(command: PutObjectCommand, state: UploadState): void {
  command.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const date = (result.response as { headers?: Record<string, string | undefined> }).headers?.['date'];
      if (date !== undefined) state.putServerDate = date;
      return result;
    },
    { step: 'deserialize', name: 'syncengineServerDate', override: true },
  );
}

function isEncryptedWithOwnKeys(head: HeadObjectCommandOutput): boolean {
  const sse = head.ServerSideEncryption;
  return (typeof sse === 'string' && sse.startsWith('aws:kms')) || head.SSECustomerAlgorithm !== undefined;
}

/** Per-write bookkeeping of the requests Upload sends (see S3Backend.sendForUpload). */
interface UploadState {
  dataRequests: AbortController;
  bytes: number;
  uploadId?: string;
  aborted: boolean;
  /** MD5 (hex) of the body of a single PutObject. */
  putMd5?: string;
  /** The MD5 (hex) the caller gave for the buffer of a single PutObject (WriteOptions.hash). */
  knownMd5?: string;
  /** The Date header of the PutObject response: the server's clock when it stored the object. */
  putServerDate?: string;
  multipart: boolean;
  /** Create only (WriteOptions.ifAbsent). */
  ifAbsent: boolean;
  firstError?: unknown;
  onBytes?: (bytes: number) => void;
}

export class S3Backend implements Backend {
  readonly displayName: string;
  /** Listed hashes are ETags, the MD5 of single-part objects. */
  readonly listedHashAlgorithm = 'md5';
  readonly id: string;
  /** The SDK client (exposed for tests and diagnostics). */
  readonly client: S3Client;
  readonly bucket: string;
  /** '' (the whole bucket) or "prefix/". */
  readonly root: string;
  private readonly place: S3Place;
  private readonly queueSize: number;
  private ifAbsentSupport?: Promise<boolean>;
  private readonly partSize: number;
  private readonly maxSingleCopy: number;
  private readonly copyPartSize: number;
  private readonly warn: (message: string) => void;
  private readonly warned = new Set<string>();
  /** Whether single-part ETags are MD5s here (no SSE-KMS/SSE-C): decided by the first listing. */
  private etagTrust: 'unknown' | 'yes' | 'no' = 'unknown';
  /** Multipart uploads whose abort failed (upload ID → key), retried on the next write and on close. */
  private readonly pendingAborts = new Map<string, string>();
  /**
   * Multipart uploads that may exist without our knowing their ID: CreateMultipartUpload failed
   * without an answer from the server (connection lost), so the server may have created it.
   */
  private readonly uncertainUploads: { key: string; from: number; to: number }[] = [];
  /** Multipart uploads of writes under way (never taken for leftovers). */
  private readonly activeUploads = new Set<string>();
  private closed = false;

  constructor(target: S3Target, options: ConnectOptions = {}, settings: S3BackendSettings = {}) {
    if (!target.bucket) throw new UsageError('An S3 target needs a bucket: s3://bucket/prefix');
    const prefix = target.prefix.replace(/^\/+|\/+$/g, '');
    if (prefix !== '') {
      try {
        assertSafeRelativePath(prefix);
      } catch (error) {
        throw new UsageError(`The S3 prefix "${target.prefix}" is not usable: ${(error as Error).message}`);
      }
    }
    this.bucket = target.bucket;
    this.root = prefix === '' ? '' : `${prefix}/`;
    const region = options.s3Region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
    let endpoint: URL | undefined;
    if (options.s3Endpoint) {
      const raw = /^[a-z][a-z0-9+.-]*:\/\//i.test(options.s3Endpoint) ? options.s3Endpoint : `https://${options.s3Endpoint}`;
      try {
        endpoint = new URL(raw);
      } catch {
        throw new UsageError(`The S3 endpoint "${options.s3Endpoint}" is not a valid URL`);
      }
      if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UsageError(`The S3 endpoint "${options.s3Endpoint}" must be an http:// or https:// URL`);
    }
    const endpointLabel = endpoint ? `${endpoint.origin}${endpoint.pathname === '/' ? '' : endpoint.pathname}` : `AWS S3 (${region})`;
    const url = `s3://${this.bucket}${prefix ? `/${prefix}` : ''}`;
    this.place = { bucket: this.bucket, endpoint: endpointLabel, where: endpoint ? `${url} at ${endpointLabel}` : url };
    this.displayName = this.place.where;
    this.id = endpoint ? `s3+${endpointLabel}/${this.bucket}/${prefix}` : `s3://${this.bucket}/${prefix}`;
    this.queueSize = Math.max(1, Math.floor(options.connections ?? DEFAULT_CONNECTIONS));
    this.partSize = Math.max(MIN_PART_SIZE, settings.partSize ?? MIN_PART_SIZE);
    this.maxSingleCopy = Math.min(MAX_SINGLE_COPY, settings.maxSingleCopyBytes ?? MAX_SINGLE_COPY);
    this.copyPartSize = Math.max(MIN_PART_SIZE, settings.copyPartSize ?? COPY_PART_SIZE);
    this.warn = options.warn ?? (() => undefined);
    if (endpoint?.protocol === 'http:' && !/^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(endpoint.hostname)) {
      this.warnOnce(`The S3 endpoint ${endpointLabel} is plain http: requests are signed, but file contents travel unencrypted.`);
    }
    const sockets = Math.max(50, this.queueSize * 16);
    this.client = new S3Client({
      region,
      ...(endpoint ? { endpoint: endpoint.href.replace(/\/$/, '') } : {}),
      // S3-compatible servers mostly need path-style requests (http://host/bucket/key); AWS prefers
      // virtual-hosted ones (http://bucket.host/key). Default: path style when an endpoint is given.
      forcePathStyle: options.s3PathStyle ?? endpoint !== undefined,
      // A bucket in another region than the one configured: follow AWS's redirect.
      followRegionRedirects: endpoint === undefined,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      logger: QUIET_LOGGER,
      requestHandler: {
        connectionTimeout: 10_000,
        // Idle time on a socket before the request fails (a server that stopped answering).
        socketTimeout: 120_000,
        httpAgent: { keepAlive: true, maxSockets: sockets },
        httpsAgent: { keepAlive: true, maxSockets: sockets },
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private key(path: string): string {
    return this.root + path;
  }

  /** The prefix of the keys below a folder ('' = the root). */
  private dirPrefix(path: string): string {
    return path === '' ? this.root : `${this.root}${path}/`;
  }

  private error(operation: string, subject: Subject, error: unknown): Error {
    return toStorageError(operation, subject, error, this.place);
  }

  private failure(operation: string, subject: Subject, cause: string, transient = false): StorageError {
    return new StorageError(`${cannot(operation, subject, this.place)}: ${cause}`, transient);
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.warn(message);
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError(`${this.displayName} is closed`, false);
  }

  /** HeadObject, or undefined when there is no such object. */
  private async head(key: string, operation: string, subject: Subject): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.error(operation, subject, error);
    }
  }

  private async listPage(prefix: string, delimiter: boolean, token: string | undefined, maxKeys: number, operation: string, subject: Subject): Promise<ListObjectsV2CommandOutput> {
    try {
      return await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          MaxKeys: maxKeys,
          ...(delimiter ? { Delimiter: '/' } : {}),
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
      );
    } catch (error) {
      throw this.error(operation, subject, error);
    }
  }

  /** All pages of a listing (ListObjectsV2 returns at most 1000 keys at a time). */
  private async *listPages(prefix: string, delimiter: boolean, operation: string, subject: Subject): AsyncGenerator<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    for (;;) {
      const page = await this.listPage(prefix, delimiter, token, 1000, operation, subject);
      yield page;
      if (!page.IsTruncated) return;
      token = page.NextContinuationToken;
      if (token === undefined) {
        // ListObjectsV1-style servers: carry on after the last key seen.
        throw this.failure(operation, subject, 'the server returned a truncated listing without a continuation token');
      }
    }
  }

  /** Whether any key lies below the folder `path`. */
  private async dirExists(path: string, operation: string, subject: Subject): Promise<boolean> {
    const page = await this.listPage(this.dirPrefix(path), false, undefined, 1, operation, subject);
    return (page.Contents?.length ?? 0) > 0 || (page.CommonPrefixes?.length ?? 0) > 0;
  }

  private entryOfHead(path: string, head: HeadObjectCommandOutput): Entry {
    if (head.ETag !== undefined && isEncryptedWithOwnKeys(head)) this.distrustEtags('objects are encrypted with SSE-KMS or SSE-C keys');
    return fileEntry(path, { size: head.ContentLength ?? 0, lastModified: head.LastModified, etag: head.ETag }, this.etagTrust !== 'no');
  }

  private distrustEtags(reason: string): void {
    if (this.etagTrust === 'no') return;
    this.etagTrust = 'no';
    this.warnOnce(`${this.displayName}: ETags are not MD5s here (${reason}); files will be hashed by reading them.`);
  }

  /**
   * Decide once whether this store's single-part ETags are MD5s: HEAD one listed object and look at
   * its encryption. Listed entries get their hashes removed if not.
   */
  private async settleEtagTrust(entries: readonly Entry[]): Promise<void> {
    if (this.etagTrust !== 'unknown') {
      if (this.etagTrust === 'no') for (const entry of entries) delete entry.hash;
      return;
    }
    const sample = entries.find((e) => e.kind === 'file' && e.hash !== undefined);
    if (!sample) return;
    let head: HeadObjectCommandOutput | undefined;
    try {
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(sample.path) }));
    } catch {
      return; // gone meanwhile, or no permission: decide on a later listing
    }
    if (isEncryptedWithOwnKeys(head)) {
      this.distrustEtags('objects are encrypted with SSE-KMS or SSE-C keys');
      for (const entry of entries) delete entry.hash;
    } else {
      this.etagTrust = 'yes';
    }
  }

  // -------------------------------------------------------------------------------------------
  // Listing

  async listDir(dir: string): Promise<ListDirResult> {
    assertSafeRelativePath(dir);
    this.assertOpen();
    const prefix = this.dirPrefix(dir);
    const files = new Map<string, Entry>();
    const dirs = new Map<string, Entry>();
    const skipped: SkippedEntry[] = [];
    const subject = dir === '' ? undefined : dir;
    for await (const page of this.listPages(prefix, true, 'list folder', subject)) {
      for (const cp of page.CommonPrefixes ?? []) {
        const name = (cp.Prefix ?? '').slice(prefix.length, -1);
        if (isEngineName(name)) continue;
        const path = joinPath(dir, name);
        if (!isSafeName(name)) {
          skipped.push({ path, reason: UNSAFE_NAME_REASON });
          continue;
        }
        dirs.set(name, dirEntry(path));
      }
      for (const object of page.Contents ?? []) {
        const name = (object.Key ?? '').slice(prefix.length);
        if (name === '') continue; // the folder's own marker
        if (isEngineName(name)) continue;
        const path = joinPath(dir, name);
        if (!isSafeName(name)) {
          skipped.push({ path, reason: UNSAFE_NAME_REASON });
          continue;
        }
        files.set(name, fileEntry(path, { size: object.Size ?? 0, lastModified: object.LastModified, etag: object.ETag }, this.etagTrust !== 'no'));
      }
    }
    for (const [name, entry] of files) {
      if (dirs.has(name)) {
        files.delete(name);
        skipped.push({ path: entry.path, reason: SHADOWED_FILE_REASON });
      }
    }
    const entries = [...dirs.values(), ...files.values()];
    await this.settleEtagTrust(entries);
    return { entries, skipped };
  }

  /**
   * The whole tree from one flat, paginated ListObjectsV2 of the prefix (1000 keys a request instead
   * of a request per folder), then walked in memory like a folder walk: ignore rules applied as it
   * goes, ignored folders not entered, `.syncignore` files read (GET) as the walk finds them.
   */
  async listTree(options: TreeListingOptions): Promise<TreeListing> {
    this.assertOpen();
    const objects: ListedObject[] = [];
    let pages = 0;
    for await (const page of this.listPages(this.root, false, 'list', undefined)) {
      for (const object of page.Contents ?? []) {
        const key = object.Key ?? '';
        if (!key.startsWith(this.root)) continue;
        objects.push({ rel: key.slice(this.root.length), size: object.Size ?? 0, lastModified: object.LastModified, etag: object.ETag });
      }
      if (++pages % 5 === 0) options.onProgress?.(objects.length);
    }
    if (options.removeStaleTemp) await this.abortStaleUploads();

    const tree = buildObjectTree(objects);
    const rules = new IgnoreRules(options.patterns);
    const collect = options.ignoreFiles === 'collect';
    const ignoreFiles: Record<string, string> = collect ? {} : { ...(options.ignoreFiles as Record<string, string>) };
    if (!collect) for (const [dir, content] of Object.entries(ignoreFiles)) rules.addIgnoreFile(dir, content);
    const trust = this.etagTrust !== 'no';
    const result: TreeListing = { files: [], dirs: [], skipped: [], ignoreFiles };
    const pending = [''];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      const node = tree.get(dir);
      if (!node) continue;
      result.skipped.push(...node.skipped);
      if (collect && node.files.has(IGNORE_FILE_NAME)) {
        const path = joinPath(dir, IGNORE_FILE_NAME);
        const content = (await this.readFile(path)).toString('utf8');
        ignoreFiles[dir] = content;
        rules.addIgnoreFile(dir, content);
      }
      for (const name of node.dirs) {
        const path = joinPath(dir, name);
        if (rules.isIgnored(path, true)) continue;
        result.dirs.push(path);
        pending.push(path);
      }
      for (const [name, object] of node.files) {
        const path = joinPath(dir, name);
        if (rules.isIgnored(path, false)) continue;
        result.files.push(fileEntry(path, object, trust));
      }
    }
    await this.settleEtagTrust(result.files);
    options.onProgress?.(result.files.length);
    return result;
  }

  async stat(path: string): Promise<Entry | undefined> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') return dirEntry('');
    const head = await this.head(this.key(path), 'examine', path);
    if (head) return this.entryOfHead(path, head);
    return (await this.dirExists(path, 'examine', path)) ? dirEntry(path) : undefined;
  }

  /** One HEAD: the engine's check before a transfer needs no folder lookup (a second request). */
  async statFile(path: string): Promise<Entry | undefined> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') return undefined;
    const head = await this.head(this.key(path), 'examine', path);
    return head ? this.entryOfHead(path, head) : undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  async read(path: string, signal?: AbortSignal): Promise<Readable> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') throw this.failure('read', path, 'it is the root folder');
    signal?.throwIfAborted();
    let body: Readable;
    let expected: number | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), signal ? { abortSignal: signal } : {});
      body = out.Body as Readable;
      expected = out.ContentLength;
    } catch (error) {
      if (isAbortError(error) || signal?.aborted) throw abortError(signal);
      if (isNotFound(error)) throw this.failure('read', path, (await this.dirExists(path, 'read', path).catch(() => false)) ? 'it is a folder' : 'no such file');
      throw this.error('read', path, error);
    }
    // The body is passed through a counter so that a dropped connection surfaces as a (transient)
    // StorageError and a short body is noticed, and so that the signal stops a download under way.
    let received = 0;
    const backend = this;
    const out = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        done(null, chunk);
      },
      flush(done) {
        if (expected !== undefined && received !== expected) done(backend.failure('read', path, `the download ended after ${received} of ${expected} bytes`, true));
        else done();
      },
    });
    const onAbort = () => out.destroy(abortError(signal));
    body.on('error', (error) => out.destroy(isAbortError(error) && signal?.aborted ? abortError(signal) : this.error('read', path, error)));
    out.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      if (!body.destroyed) body.destroy();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    body.pipe(out);
    return out;
  }

  async readFile(path: string, signal?: AbortSignal): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.read(path, signal)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** The hash of a file: its ETag when that is its MD5 and MD5 is asked for, else computed by reading the object. */
  async hash(path: string, algorithm: HashAlgorithm): Promise<string> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') throw this.failure('hash', path, 'it is the root folder');
    const head = await this.head(this.key(path), 'hash', path);
    if (!head) throw this.failure('hash', path, 'no such file');
    const entry = this.entryOfHead(path, head);
    if (entry.hash !== undefined && algorithm === this.listedHashAlgorithm) return entry.hash;
    return hashOfStream(await this.read(path), algorithm);
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  /** Whether the server honours If-None-Match: * on PutObject; asked once, on first use. */
  canWriteIfAbsent(): Promise<boolean> {
    this.ifAbsentSupport ??= this.probeIfAbsent();
    return this.ifAbsentSupport;
  }

  /**
   * Put an empty probe object twice with If-None-Match: *: a server that honours the header refuses
   * the second (412). One that ignores it, rejects it or forbids the probe gets the engine's check
   * before each new file instead. The probe has an engine name (never synced) and is deleted.
   */
  private async probeIfAbsent(): Promise<boolean> {
    const Key = `${this.root}.syncengine-probe-${randomBytes(8).toString('hex')}`;
    const empty = Buffer.alloc(0);
    const put = () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: empty, ContentMD5: md5Of(empty).toString('base64'), IfNoneMatch: '*' }));
    try {
      await put();
    } catch {
      return false;
    }
    try {
      await put();
      return false; // the condition was ignored
    } catch (error) {
      return isPreconditionFailed(error);
    } finally {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key })).catch(() => undefined);
    }
  }

  private partSizeFor(size: number | undefined): number {
    // Keep well under 10,000 parts for the expected size (the file may still grow a little).
    const needed = size !== undefined && size > 0 ? Math.ceil(size / (MAX_PARTS * 0.9) / MiB) * MiB : 0;
    return Math.max(this.partSize, needed);
  }

  /**
   * Stands in for the client in Upload. Adds Content-MD5 to the data requests, lets the write's
   * abort stop them, counts the bytes the server has acknowledged (progress), remembers the
   * multipart upload's ID, and keeps a failed abort from hiding the error that caused it.
   */
  private async sendForUpload(command: unknown, state: UploadState): Promise<unknown> {
    if (command instanceof PutObjectCommand || command instanceof UploadPartCommand) {
      const body = command.input.Body as Uint8Array;
      // The caller's hash of these very bytes, where it has one (servers that check Content-MD5 refuse a wrong one).
      const md5 = state.knownMd5 !== undefined && command instanceof PutObjectCommand && /^[0-9a-f]{32}$/.test(state.knownMd5) ? Buffer.from(state.knownMd5, 'hex') : md5Of(body);
      command.input.ContentMD5 = md5.toString('base64');
      if (command instanceof PutObjectCommand) {
        state.putMd5 = md5.toString('hex');
        recordServerDate(command, state);
      } else {
        state.multipart = true;
      }
      // A signal per request, linked to the write's: the SDK leaves its listener on the signal it
      // is given, and a large file has thousands of parts.
      const request = new AbortController();
      const onAbort = () => request.abort();
      const shared = state.dataRequests.signal;
      if (shared.aborted) request.abort();
      else shared.addEventListener('abort', onAbort, { once: true });
      try {
        const out = await (this.client.send as (c: unknown, o: unknown) => Promise<unknown>)(command, { abortSignal: request.signal });
        state.bytes += body.byteLength;
        state.onBytes?.(state.bytes);
        return out;
      } catch (error) {
        state.firstError ??= error;
        state.dataRequests.abort(); // the other parts in flight are useless now
        throw error;
      } finally {
        shared.removeEventListener('abort', onAbort);
      }
    }
    if (command instanceof CreateMultipartUploadCommand) {
      // Servers that honour If-None-Match on PutObject may ignore it on CompleteMultipartUpload
      // (AWS does not): large files are also checked just before their upload starts.
      if (state.ifAbsent && command.input.Key !== undefined && (await this.head(command.input.Key, 'write', command.input.Key.slice(this.root.length)))) {
        throw new TargetExistsError(command.input.Key.slice(this.root.length), this.displayName);
      }
      const from = Date.now();
      try {
        const out = await this.client.send(command);
        state.uploadId = out.UploadId;
        if (out.UploadId !== undefined) this.activeUploads.add(out.UploadId);
        // A retried request may have created an upload on an attempt whose answer was lost.
        if ((out.$metadata.attempts ?? 1) > 1 && command.input.Key !== undefined) this.uncertainUploads.push({ key: command.input.Key, from, to: Date.now() });
        return out;
      } catch (error) {
        if (httpStatusOf(error) === undefined && command.input.Key !== undefined) this.uncertainUploads.push({ key: command.input.Key, from, to: Date.now() });
        throw error;
      }
    }
    if (command instanceof AbortMultipartUploadCommand) {
      const { Key, UploadId } = command.input;
      if (UploadId !== undefined && Key !== undefined) state.aborted = await this.abortUpload(Key, UploadId);
      return {};
    }
    return (this.client.send as (c: unknown) => Promise<unknown>)(command);
  }

  /** Abort a multipart upload; true when it is gone. Failures are remembered and retried later. */
  private async abortUpload(key: string, uploadId: string): Promise<boolean> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
      this.pendingAborts.delete(uploadId);
      return true;
    } catch (error) {
      const code = errorCodeOf(error);
      if (code === 'NoSuchUpload') {
        this.pendingAborts.delete(uploadId);
        return true;
      }
      if (code === 'MethodNotAllowed' || code === 'NotImplemented') {
        this.pendingAborts.delete(uploadId);
        this.warnOnce(`${this.displayName}: the server cannot abort multipart uploads (${code}); parts of failed uploads may stay on it.`);
        return false;
      }
      this.pendingAborts.set(uploadId, key);
      return false;
    }
  }

  private get hasLeftovers(): boolean {
    return this.pendingAborts.size > 0 || this.uncertainUploads.length > 0;
  }

  /**
   * Abort the uploads whose abort failed, and look for uploads whose creation went unanswered: an
   * upload of the same key started in that time window (widened by the 15 minutes of clock skew S3
   * tolerates) is taken for ours. Another writer uploading the very same key at the very same time
   * would see its upload fail and retry.
   */
  private async retryPendingAborts(): Promise<void> {
    for (const [uploadId, key] of [...this.pendingAborts]) await this.abortUpload(key, uploadId);
    const skew = 15 * 60_000;
    for (const uncertain of [...this.uncertainUploads]) {
      let uploads: MultipartUpload[];
      try {
        uploads = (await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: uncertain.key }))).Uploads ?? [];
      } catch (error) {
        if (httpStatusOf(error) === undefined) continue; // still unreachable: later
        uploads = []; // the server cannot list uploads (or we may not): nothing more to do
      }
      for (const upload of uploads) {
        const initiated = upload.Initiated?.getTime();
        if (upload.Key !== uncertain.key || upload.UploadId === undefined || initiated === undefined || this.activeUploads.has(upload.UploadId)) continue;
        if (initiated >= uncertain.from - skew && initiated <= uncertain.to + skew) await this.abortUpload(upload.Key, upload.UploadId);
      }
      this.uncertainUploads.splice(this.uncertainUploads.indexOf(uncertain), 1);
    }
  }

  /** Abort multipart uploads below the prefix that were started more than a day ago (killed runs). */
  private async abortStaleUploads(): Promise<void> {
    try {
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (let page = 0; page < 100; page++) {
        const out = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.root,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
        for (const upload of out.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined) continue;
          if (upload.Initiated && Date.now() - upload.Initiated.getTime() > STALE_UPLOAD_MS) await this.abortUpload(upload.Key, upload.UploadId);
        }
        if (!out.IsTruncated) return;
        keyMarker = out.NextKeyMarker;
        uploadIdMarker = out.NextUploadIdMarker;
      }
    } catch {
      // Best effort: not every server lists multipart uploads, and a user may lack the permission.
    }
  }

  async write(path: string, data: Readable | Buffer, options: WriteOptions = {}): Promise<Entry> {
    const { mtimeMs, onBytes, signal, size, ifAbsent = false, mtimeEstimateOk = false } = options;
    const isBuffer = Buffer.isBuffer(data);
    const release = () => {
      if (!isBuffer && !data.destroyed) data.destroy();
    };
    try {
      assertSafeRelativePath(path);
      this.assertOpen();
      if (path === '') throw this.failure('write', path, 'it is the root folder');
      signal?.throwIfAborted();
    } catch (error) {
      release(); // nothing will consume the source: release it
      throw error;
    }
    if (this.hasLeftovers) await this.retryPendingAborts();
    const key = this.key(path);
    const state: UploadState = { dataRequests: new AbortController(), bytes: 0, aborted: false, multipart: false, ifAbsent, ...(onBytes ? { onBytes } : {}) };
    let sourceError: unknown;
    const onSourceError = (error: unknown) => {
      // Only an error of the source itself: once a request has failed, Upload stops reading and the
      // source is destroyed with an AbortError of its own making.
      if (state.firstError !== undefined || sourceError !== undefined) return;
      sourceError = error;
      state.dataRequests.abort();
    };
    const onAbort = () => {
      state.dataRequests.abort();
      if (!isBuffer) data.destroy(abortError(signal));
    };
    if (!isBuffer) data.on('error', onSourceError);
    signal?.addEventListener('abort', onAbort, { once: true });
    const client = { config: this.client.config, send: (command: unknown) => this.sendForUpload(command, state) };
    const metadata = mtimeMs !== undefined && Number.isFinite(mtimeMs) ? { mtime: String(Math.round(mtimeMs)) } : undefined;
    let etag: string | undefined;
    /** What a create-only write found at the key when that holds the very bytes it sent. */
    let found: HeadObjectCommandOutput | undefined;
    const params = { Bucket: this.bucket, Key: key, ...(metadata ? { Metadata: metadata } : {}), ...(ifAbsent ? { IfNoneMatch: '*' } : {}) };
    const partSize = this.partSizeFor(size ?? (isBuffer ? data.length : undefined));
    try {
      if (isBuffer && data.length <= partSize) {
        // One PutObject, sent here: Upload would send the same request, and then work out the
        // object's URL, which nobody reads, at about the cost of the request itself.
        if (options.hash?.algorithm === 'md5') state.knownMd5 = options.hash.value;
        const result = (await this.sendForUpload(new PutObjectCommand({ ...params, Body: data }), state)) as PutObjectCommandOutput;
        etag = result.ETag;
      } else {
        const upload = new Upload({ client: client as unknown as S3Client, params: { ...params, Body: data }, queueSize: this.queueSize, partSize, leavePartsOnError: false });
        const result = await upload.done();
        etag = result.ETag;
      }
    } catch (error) {
      release();
      if (state.uploadId !== undefined && !state.aborted) {
        // Upload aborts a failed multipart upload itself; make sure (it skips the abort in some races).
        await this.abortUpload(key, state.uploadId);
      }
      if (signal?.aborted) throw abortError(signal);
      if (sourceError !== undefined) throw sourceError; // the source's own error, unchanged
      const cause = state.firstError ?? error;
      if (cause instanceof TargetExistsError) throw cause;
      if (!(ifAbsent && isPreconditionFailed(cause))) throw this.error('write', path, cause);
      // Something is at the key. The bytes we sent (our own PUT, when only a retried attempt was
      // answered, or an identical file) count as written; anything else was left alone.
      found = await this.head(key, 'write', path);
      if (found === undefined || state.putMd5 === undefined || md5FromEtag(found.ETag) !== state.putMd5) throw new TargetExistsError(path, this.displayName);
      etag = found.ETag;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!isBuffer) data.off('error', onSourceError);
      if (state.uploadId !== undefined) this.activeUploads.delete(state.uploadId);
    }
    if (onBytes && state.bytes === 0) onBytes(0);
    if (!found && mtimeEstimateOk && this.etagTrust !== 'no' && !state.multipart && state.putMd5 !== undefined && md5FromEtag(etag) === state.putMd5) {
      // Listings will report this ETag as the file's MD5, and the engine's comparison looks at that
      // before any time: the server's Date stands in for the LastModified it stamped (a second
      // boundary may fall between the two; the next run then refreshes the record, nothing more).
      const stamped = state.putServerDate === undefined ? Number.NaN : Date.parse(state.putServerDate);
      return fileEntry(path, { size: state.bytes, lastModified: new Date(Number.isFinite(stamped) ? stamped : Date.now()), etag }, true);
    }
    // The entry as listings will report it: only a HEAD tells the LastModified the server stamped.
    // This clock cannot stand in for it (clocks differ, and a second boundary may fall between the
    // server's stamp and the response), and the engine compares the next listing with it exactly.
    const head = found ?? (await this.head(key, 'write', path));
    if (!head) throw this.failure('write', path, 'the object vanished right after it was written', true);
    if (etag !== undefined && head.ETag !== undefined && etag !== head.ETag) {
      throw this.failure('write', path, 'another writer replaced the object right after this upload; it will be looked at again next run');
    }
    if (!state.multipart && state.putMd5 !== undefined && !isEncryptedWithOwnKeys(head) && md5FromEtag(etag) !== state.putMd5) {
      this.distrustEtags('the ETag of an upload differs from the MD5 of its content');
    }
    return this.entryOfHead(path, head);
  }

  // -------------------------------------------------------------------------------------------
  // Deleting and folders

  async deleteFile(path: string): Promise<void> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') throw this.failure('delete', path, 'it is the root folder');
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.error('delete', path, error);
    }
  }

  /** Creates the folder and any missing parents as zero-byte "<dir>/" marker objects. */
  async mkdir(path: string): Promise<void> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') return;
    const missing: string[] = [];
    for (let dir = path; dir !== ''; dir = parentOf(dir)) {
      if (await this.dirExists(dir, 'create folder', path)) break;
      missing.push(dir);
    }
    for (const dir of missing) {
      if (await this.head(this.key(dir), 'create folder', path)) throw this.failure('create folder', path, `a file is in the way: "${dir}"`);
    }
    for (const dir of missing.reverse()) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${this.key(dir)}/`, Body: Buffer.alloc(0), ContentMD5: md5Of(Buffer.alloc(0)).toString('base64') }));
      } catch (error) {
        throw this.error('create folder', path, error);
      }
    }
  }

  /** Removes the folder's marker when it is the only key below the folder. The root is never removed. */
  async rmdirIfEmpty(path: string): Promise<void> {
    assertSafeRelativePath(path);
    this.assertOpen();
    if (path === '') return;
    const prefix = this.dirPrefix(path);
    const page = await this.listPage(prefix, false, undefined, 2, 'remove folder', path);
    const keys = (page.Contents ?? []).map((o) => o.Key);
    if (keys.length !== 1 || keys[0] !== prefix || (page.CommonPrefixes?.length ?? 0) > 0) return;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: prefix }));
    } catch (error) {
      if (!isNotFound(error)) throw this.error('remove folder', path, error);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Server-side moves and copies

  /** Refuses when a file or folder is at `to`. */
  private async assertTargetFree(operation: string, label: Subject, to: string): Promise<void> {
    if (await this.head(this.key(to), operation, label)) throw this.failure(operation, label, `the target ${JSON.stringify(to)} already exists`);
    if (await this.dirExists(to, operation, label)) throw this.failure(operation, label, `a folder exists at the target ${JSON.stringify(to)}`);
  }

  /** Server-side copy of one object (metadata kept), multipart above 5 GiB. */
  private async copyObject(fromKey: string, toKey: string, head: { ContentLength?: number; ETag?: string }, operation: string, label: Subject): Promise<void> {
    const size = head.ContentLength ?? 0;
    try {
      if (size <= this.maxSingleCopy) {
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: toKey,
            CopySource: copySource(this.bucket, fromKey),
            MetadataDirective: 'COPY',
            ...(head.ETag !== undefined ? { CopySourceIfMatch: head.ETag } : {}),
          }),
        );
        return;
      }
    } catch (error) {
      if (errorCodeOf(error) === 'PreconditionFailed') throw this.failure(operation, label, 'the source changed during the copy', true);
      throw this.error(operation, label, error);
    }
    await this.multipartCopy(fromKey, toKey, size, operation, label);
  }

  /** A copy of an object larger than 5 GiB: UploadPartCopy in 512 MiB ranges, `connections` at a time; aborted on failure. */
  private async multipartCopy(fromKey: string, toKey: string, size: number, operation: string, label: Subject): Promise<void> {
    const source = await this.head(fromKey, operation, label);
    if (!source) throw this.failure(operation, label, 'the source vanished');
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: toKey,
          ...(source.Metadata ? { Metadata: source.Metadata } : {}),
          ...(source.ContentType ? { ContentType: source.ContentType } : {}),
          ...(source.CacheControl ? { CacheControl: source.CacheControl } : {}),
          ...(source.ContentDisposition ? { ContentDisposition: source.ContentDisposition } : {}),
          ...(source.ContentEncoding ? { ContentEncoding: source.ContentEncoding } : {}),
          ...(source.ContentLanguage ? { ContentLanguage: source.ContentLanguage } : {}),
          ...(source.StorageClass ? { StorageClass: source.StorageClass } : {}),
        }),
      );
      uploadId = created.UploadId;
      const partSize = Math.max(this.copyPartSize, Math.ceil(size / MAX_PARTS));
      const count = Math.ceil(size / partSize);
      const etags: string[] = new Array<string>(count);
      let next = 0;
      let failed: unknown;
      const worker = async () => {
        while (failed === undefined && next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          try {
            const out = await this.client.send(
              new UploadPartCopyCommand({
                Bucket: this.bucket,
                Key: toKey,
                UploadId: uploadId,
                PartNumber: i + 1,
                CopySource: copySource(this.bucket, fromKey),
                CopySourceRange: `bytes=${start}-${end}`,
                ...(source.ETag !== undefined ? { CopySourceIfMatch: source.ETag } : {}),
              }),
            );
            etags[i] = out.CopyPartResult?.ETag ?? '';
          } catch (error) {
            failed ??= error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.queueSize, count) }, worker));
      if (failed !== undefined) throw failed;
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: toKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    } catch (error) {
      if (uploadId !== undefined) await this.abortUpload(toKey, uploadId);
      throw this.error(operation, label, error);
    }
  }

  private async deleteKey(key: string, operation: string, label: Subject): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (!isNotFound(error)) throw this.error(operation, label, error);
    }
  }

  /** Runs `task` over `items`, `limit` at a time; stops taking new items after the first failure. */
  private async eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<unknown[]> {
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (errors.length === 0 && next < items.length) {
        const item = items[next++]!;
        try {
          await task(item);
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
    return errors;
  }

  /**
   * Moves a file (CopyObject + DeleteObject) or a folder (each object below it), server-side.
   * Refuses an existing target; see the top of this file for the check-then-copy window and for
   * why a folder move is not atomic.
   */
  async rename(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    this.assertOpen();
    const label = [from, to] as const;
    if (from === '' || to === '') throw this.failure('move', label, 'the root folder cannot be moved');
    const fromKey = this.key(from);
    const head = await this.head(fromKey, 'move', label);
    if (head) {
      if (from === to) return;
      await this.assertTargetFree('move', label, to);
      await this.copyObject(fromKey, this.key(to), head, 'move', label);
      try {
        await this.deleteKey(fromKey, 'move', label);
      } catch (error) {
        // Roll back so that the file does not exist twice.
        await this.deleteKey(this.key(to), 'move', label).catch(() => undefined);
        throw error;
      }
      return;
    }
    // A folder: every key below it.
    const fromPrefix = this.dirPrefix(from);
    const objects: { key: string; size: number; etag: string | undefined }[] = [];
    for await (const page of this.listPages(fromPrefix, false, 'move', label)) {
      for (const object of page.Contents ?? []) if (object.Key !== undefined) objects.push({ key: object.Key, size: object.Size ?? 0, etag: object.ETag });
    }
    if (objects.length === 0) throw this.failure('move', label, `no such file or folder: ${JSON.stringify(from)}`);
    if (from === to) return;
    if (to.startsWith(`${from}/`)) throw this.failure('move', label, 'a folder cannot be moved into itself');
    await this.assertTargetFree('move', label, to);
    const toPrefix = this.dirPrefix(to);
    const limit = Math.min(16, this.queueSize * 2);
    const copied: string[] = [];
    const copyErrors = await this.eachLimited(objects, limit, async (object) => {
      const toKey = toPrefix + object.key.slice(fromPrefix.length);
      await this.copyObject(object.key, toKey, { ContentLength: object.size, ...(object.etag !== undefined ? { ETag: object.etag } : {}) }, 'move', label);
      copied.push(toKey);
    });
    if (copyErrors.length > 0) {
      // Undo: remove the copies made so far; the originals are all still there.
      await this.eachLimited(copied, limit, (key) => this.deleteKey(key, 'move', label)).catch(() => undefined);
      throw copyErrors[0];
    }
    const deleteErrors: unknown[] = [];
    await this.eachLimited(objects, limit, async (object) => {
      try {
        await this.deleteKey(object.key, 'move', label);
      } catch (error) {
        deleteErrors.push(error);
      }
    });
    if (deleteErrors.length > 0) {
      const first = deleteErrors[0] instanceof Error ? deleteErrors[0].message : String(deleteErrors[0]);
      throw this.failure('move', label, `everything was copied to the target, but ${deleteErrors.length} of ${objects.length} originals could not be removed (first: ${first})`, deleteErrors[0] instanceof StorageError && deleteErrors[0].transient);
    }
  }

  /** A server-side copy (CopyObject); refuses an existing target. */
  async copyWithin(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    this.assertOpen();
    const label = [from, to] as const;
    if (from === '' || to === '') throw this.failure('copy', label, 'the root folder cannot be copied');
    const head = await this.head(this.key(from), 'copy', label);
    if (!head) throw this.failure('copy', label, `no such file: ${JSON.stringify(from)}`);
    await this.assertTargetFree('copy', label, to);
    await this.copyObject(this.key(from), this.key(to), head, 'copy', label);
  }

  // -------------------------------------------------------------------------------------------

  /** Checks that the bucket can be listed with these credentials (a clear error now, not mid-sync). */
  async check(): Promise<void> {
    await this.listPage(this.root, true, undefined, 1, 'connect to', undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.hasLeftovers) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.retryPendingAborts(), new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    this.client.destroy();
  }
}

/** Opens an S3 target: the client is created and the bucket listed once, so that a wrong bucket,
 * wrong credentials or an unreachable endpoint fail here with a clear message. */
export async function open(target: S3Target, options: ConnectOptions): Promise<Backend> {
  return openS3(target, options);
}

export async function openS3(target: S3Target, options: ConnectOptions = {}, settings: S3BackendSettings = {}): Promise<S3Backend> {
  const backend = new S3Backend(target, options, settings);
  try {
    await backend.check();
  } catch (error) {
    await backend.close().catch(() => undefined);
    throw error;
  }
  return backend;
}
