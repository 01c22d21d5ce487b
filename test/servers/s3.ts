// An S3-compatible server for the tests: s3rver (npm, a dev dependency) in a child process on
// 127.0.0.1, a free port and a temporary folder. A child process rather than in-process so that a
// test can kill it mid-transfer (a crash) and start it again on the same port and folder.
//
// What s3rver does and does not do (3.7.1), and what the tests can therefore check:
//  - It checks the access key ID (unknown ID: InvalidAccessKeyId) but not SigV4 signatures: a wrong
//    secret key is accepted. The "wrong credentials" test uses a wrong key ID.
//  - A multipart upload's ETag is the MD5 of the whole object (AWS: MD5 of the parts' MD5s + "-N").
//  - It has no AbortMultipartUpload, ListMultipartUploads or UploadPartCopy. The launcher below adds
//    them (`faithful`) on s3rver's own store layout (uploads are folders
//    `<bucket>/._S3rver_uploads/<id>`), so tests can check that no upload is left behind and can
//    exercise the multipart copy of objects over 5 GiB (with a lowered threshold).
//  - Its continuation tokens use DES: on Node 17+ (OpenSSL 3) every listing longer than a page fails
//    with InternalError unless node runs with --openssl-legacy-provider (done below).
//  - A delimited listing misses folders that hold only folders ("a/" when the only key is
//    "a/b/c.txt"); the launcher lists flat and groups (`faithful`).
//  - It decodes x-amz-copy-source with decodeURI, so copies of keys with "+", "#", "?" or "%" miss
//    their source; the launcher decodes it fully (`faithful`), as S3 does.
//  - It writes an object in place: a reader sees it half-written and a PUT cut off by a crash
//    destroys the old object, where S3 replaces objects atomically. The launcher makes its store
//    write to a temporary file and rename it over the object, swapping data and metadata under a
//    per-key lock that GET takes too (`faithful`), as S3 behaves.
//  - It ignores If-None-Match on PutObject; the launcher honours "If-None-Match: *" (`faithful`), as
//    S3 has since 2024: the PUT fails with 412 PreconditionFailed when the key exists.
//  - It creates a multipart upload in two steps (folder, then its key), and a part re-creates an
//    upload that was aborted: a crash or an abort racing a part left uploads no listing shows. The
//    launcher creates uploads whole and refuses parts of missing ones (`faithful`), as S3 does.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface S3TestServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A bucket created at start. */
  bucket: string;
  port: number;
  /** The server's data folder. */
  directory: string;
  /** Request lines the server logged ("PUT /bucket/key 200 ..."), oldest first. */
  requests(): string[];
  /** Folders of multipart uploads neither completed nor aborted, for a bucket. */
  pendingUploads(bucket?: string): string[];
  /** Kill -9 (a crash); the data folder stays. */
  kill(): Promise<void>;
  /** Start again on the same port and folder (kills a running server first). */
  restart(): Promise<void>;
  /** Stop and delete the data folder. */
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /** Buckets to create (default: one named "syncengine-test"). */
  buckets?: string[];
  /** Apply the fidelity patches described at the top (default true). */
  faithful?: boolean;
}

const START_TIMEOUT_MS = 20_000;
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });
}

// The launcher runs in the child: s3rver from the project's node_modules, optionally patched.
const LAUNCHER = String.raw`
const [main, directory, port, faithful, ...buckets] = process.argv.slice(1);
// Exit with the test process, however it ends: its end of the stdin pipe closes.
process.stdin.on('close', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
const path = require('path');
const fs = require(require.resolve('fs-extra', { paths: [path.dirname(main)] }));
const S3rver = require(main);
if (faithful === '1') {
  const root = path.dirname(main);
  const FilesystemStore = require(path.join(root, 'stores', 'filesystem.js'));
  const S3Error = require(path.join(root, 'models', 'error.js'));
  const crypto = require('crypto');
  const { Transform } = require('stream');
  const keyLocks = new Map();
  async function underKeyLock(objectPath, body) {
    while (keyLocks.has(objectPath)) await keyLocks.get(objectPath);
    let release;
    keyLocks.set(objectPath, new Promise((resolve) => (release = resolve)));
    try {
      return await body();
    } finally {
      keyLocks.delete(objectPath);
      release();
    }
  }
  // GET reads the metadata, then opens the data file (the open file keeps its content whatever is
  // renamed over it later): under the key's lock, so that a PUT cannot swap them in between.
  const getObject = FilesystemStore.prototype.getObject;
  FilesystemStore.prototype.getObject = function (bucket, key, options) {
    return underKeyLock(this.getResourcePath(bucket, key, 'object'), () => getObject.call(this, bucket, key, options));
  };
  // PutObject with If-None-Match: * creates the object only if the key is free, checked as the
  // object is swapped in (AWS since 2024; s3rver ignores the header). The header reaches the store
  // through the request's async context.
  const putConditions = new (require('async_hooks').AsyncLocalStorage)();
  const objectCtrl = require(path.join(root, 'controllers', 'object.js'));
  const putObjectHandler = objectCtrl.putObject;
  objectCtrl.putObject = function (ctx) {
    return putConditions.run({ ifNoneMatch: ctx.headers['if-none-match'] }, () => putObjectHandler(ctx));
  };
  // Atomic PUT: write a temporary file and rename it over the object, as S3 replaces objects.
  FilesystemStore.prototype.putObject = async function putObject(object) {
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    await fs.mkdirp(path.dirname(objectPath));
    const temp = objectPath + '.tmp-' + crypto.randomBytes(6).toString('hex');
    try {
      const [size, md5] = await new Promise((resolve, reject) => {
        const out = fs.createWriteStream(temp);
        const hash = crypto.createHash('md5');
        let total = 0;
        out.on('error', reject);
        if (Buffer.isBuffer(object.content)) {
          hash.update(object.content);
          out.end(object.content, () => resolve([object.content.length, hash.digest('hex')]));
          return;
        }
        const src = object.content;
        src.on('error', reject);
        src.on('aborted', () => reject(new Error('request aborted')));
        src.pipe(new Transform({ transform(chunk, enc, cb) { hash.update(chunk); total += chunk.length; cb(null, chunk); } }))
          .on('error', reject)
          .pipe(out)
          .on('finish', () => {
            if (src.complete === false) reject(new Error('request aborted'));
            else resolve([total, hash.digest('hex')]);
          });
      });
      // Data first, then metadata (which holds the ETag): a server killed between the two leaves
      // new bytes under the old ETag, so a client re-sends them; the other order would leave old
      // bytes under the new ETag, a torn object that S3 itself never shows.
      // Both under the key's lock, which GET takes too: a reader gets the old pair or the new one,
      // never new bytes cut to the old length (S3 shows a replaced object whole or not at all).
      await underKeyLock(objectPath, async () => {
        if (putConditions.getStore()?.ifNoneMatch === '*' && fs.existsSync(objectPath)) {
          throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
        }
        await fs.rename(temp, objectPath);
        await this.putMetadata(object.bucket, object.key, object.metadata, md5);
      });
      return { size, md5 };
    } catch (err) {
      await fs.remove(temp).catch(() => {});
      throw err;
    }
  };
  // Multipart uploads as S3 keeps them: created whole (s3rver made the folder, then wrote its key,
  // so a crash in between left an upload no listing shows and nobody can abort), and a part for an
  // upload that is gone is refused (s3rver re-created the folder, leaving a keyless upload behind).
  FilesystemStore.prototype.initiateUpload = async function initiateUpload(bucket, key, uploadId, metadata) {
    const uploadDir = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const temp = uploadDir + '.tmp-' + crypto.randomBytes(6).toString('hex');
    await fs.mkdirp(temp);
    await fs.writeFile(path.join(temp, 'key'), key);
    await fs.writeFile(path.join(temp, 'metadata'), JSON.stringify(metadata));
    await fs.rename(temp, uploadDir);
  };
  const putPart = FilesystemStore.prototype.putPart;
  FilesystemStore.prototype.putPart = async function (bucket, uploadId, partNumber, content) {
    const uploadDir = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    if (!fs.existsSync(path.join(uploadDir, 'key'))) {
      if (content && typeof content.resume === 'function') content.resume();
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
    }
    return putPart.call(this, bucket, uploadId, partNumber, content);
  };
  // (Temporary files do not end in "._S3rver_object", so listings never show them.)
  // Common prefixes: s3rver's walk does not go below a folder that would become a common prefix, so
  // a folder holding only folders ("a/" with just "a/b/c.txt") went missing from delimited listings.
  // List flat and group by the delimiter instead (and count only objects against max-keys, as s3rver does).
  const listObjects = FilesystemStore.prototype.listObjects;
  FilesystemStore.prototype.listObjects = async function (bucket, options) {
    const { delimiter = '', prefix = '', maxKeys = Infinity } = options;
    if (!delimiter) return listObjects.call(this, bucket, options);
    const flat = await listObjects.call(this, bucket, { ...options, delimiter: '', maxKeys: Infinity });
    const objects = [];
    const common = new Set();
    let isTruncated = false;
    for (const object of flat.objects) {
      const rest = object.key.slice(prefix.length);
      const i = rest.indexOf(delimiter);
      if (i !== -1) {
        common.add(prefix + rest.slice(0, i + delimiter.length));
        continue;
      }
      if (objects.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      objects.push(object);
    }
    return { objects, commonPrefixes: [...common].sort(), isTruncated };
  };
  // Copy sources: s3rver decodes x-amz-copy-source with decodeURI, which leaves %2B, %23, %3F, %25
  // and the other reserved characters' escapes alone; S3 decodes them all.
  const putObjectCopy = objectCtrl.putObjectCopy;
  objectCtrl.putObjectCopy = async function (ctx) {
    const raw = ctx.headers['x-amz-copy-source'];
    if (typeof raw === 'string') ctx.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(raw));
    return putObjectCopy(ctx);
  };
  // AbortMultipartUpload and ListMultipartUploads on s3rver's upload folders.
  const router = require(path.join(root, 'routes.js'));
  const uploadsDir = (store, bucket) => store.getResourcePath(bucket, undefined, 'uploads');
  router.stack.unshift(...(() => {
    const Router = require(require.resolve('@koa/router', { paths: [root] }));
    const extra = new Router();
    extra.delete('/:bucket/:key+', async (ctx, next) => {
      if (!('uploadId' in ctx.query)) return next();
      if (!(await ctx.store.getBucket(ctx.params.bucket))) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: ctx.params.bucket });
      const dir = path.join(uploadsDir(ctx.store, ctx.params.bucket), path.basename(String(ctx.query.uploadId)));
      if (!fs.existsSync(dir)) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: ctx.query.uploadId });
      await fs.remove(dir);
      ctx.status = 204;
    });
    // UploadPartCopy: a byte range of an object as a part of a multipart upload.
    extra.put('/:bucket/:key+', async (ctx, next) => {
      const header = ctx.headers['x-amz-copy-source'];
      if (!('uploadId' in ctx.query) || typeof header !== 'string') return next();
      const uploadDir = path.join(uploadsDir(ctx.store, ctx.params.bucket), path.basename(String(ctx.query.uploadId)));
      if (!fs.existsSync(uploadDir)) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: ctx.query.uploadId });
      const [srcBucket, ...rest] = decodeURIComponent(header).replace(/^\//, '').split('/');
      const range = /^bytes=(\d+)-(\d+)$/.exec(ctx.headers['x-amz-copy-source-range'] || '');
      const object = await ctx.store.getObject(srcBucket, rest.join('/'), range ? { start: Number(range[1]), end: Number(range[2]) } : undefined);
      if (!object) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: rest.join('/') });
      const ifMatch = ctx.headers['x-amz-copy-source-if-match'];
      if (ifMatch && ifMatch !== object.metadata.etag) {
        object.content.destroy();
        throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      }
      const { md5 } = await ctx.store.putPart(ctx.params.bucket, ctx.query.uploadId, Number(ctx.query.partNumber), object.content);
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult><LastModified>' + new Date().toISOString() + '</LastModified><ETag>"' + md5 + '"</ETag></CopyPartResult>';
    });
    extra.get('/:bucket', async (ctx, next) => {
      if (!('uploads' in ctx.query)) return next();
      if (!(await ctx.store.getBucket(ctx.params.bucket))) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: ctx.params.bucket });
      const base = uploadsDir(ctx.store, ctx.params.bucket);
      const prefix = ctx.query.prefix || '';
      const uploads = [];
      for (const id of fs.existsSync(base) ? fs.readdirSync(base) : []) {
        if (id.includes('.tmp-')) continue; // a creation cut short: not an upload
        const keyFile = path.join(base, id, 'key');
        if (!fs.existsSync(keyFile)) continue;
        const key = fs.readFileSync(keyFile, 'utf8');
        if (!key.startsWith(prefix)) continue;
        uploads.push({ Key: key, UploadId: id, Initiated: fs.statSync(keyFile).mtime.toISOString(), StorageClass: 'STANDARD' });
      }
      ctx.type = 'application/xml';
      const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>' + esc(ctx.params.bucket) + '</Bucket><Prefix>' + esc(prefix) +
        '</Prefix><IsTruncated>false</IsTruncated>' + uploads.map((u) => '<Upload><Key>' + esc(u.Key) + '</Key><UploadId>' + u.UploadId + '</UploadId><Initiated>' + u.Initiated + '</Initiated><StorageClass>STANDARD</StorageClass></Upload>').join('') +
        '</ListMultipartUploadsResult>';
    });
    return extra.stack;
  })());
}
new S3rver({ directory, address: '127.0.0.1', port: Number(port), silent: false, vhostBuckets: false, configureBuckets: buckets.map((name) => ({ name, configs: [] })) })
  .run()
  .then(({ port }) => console.log('S3RVER-READY ' + port))
  .catch((err) => { console.error(err); process.exit(1); });
`;

const ANSI = /\x1b\[[0-9;]*m/g;

export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  installExitHook();
  const buckets = options.buckets ?? ['syncengine-test'];
  const faithful = options.faithful ?? true;
  const main = require.resolve('s3rver');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-s3rver-'));
  dirs.add(directory);
  const log: string[] = [];
  let child: ChildProcess | undefined;
  let port = 0;

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        port = await launchOnce();
        return;
      } catch (error) {
        // The port of a killed server can take a moment to be free again.
        if (attempt >= 20 || port === 0 || !/EADDRINUSE/.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };

  const launchOnce = (): Promise<number> =>
    new Promise((resolve, reject) => {
      // --openssl-legacy-provider: s3rver makes its continuation tokens (listings longer than one
      // page) with DES, which OpenSSL 3 only has in its legacy provider.
      const proc = spawn(process.execPath, ['--openssl-legacy-provider', '-e', LAUNCHER, main, directory, String(port), faithful ? '1' : '0', ...buckets], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
      });
      child = proc;
      live.add(proc);
      let stderr = '';
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        proc.kill('SIGKILL');
        reject(new Error(`s3rver did not start within ${START_TIMEOUT_MS} ms: ${stderr}`));
      }, START_TIMEOUT_MS);
      let buffered = '';
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (text: string) => {
        buffered += text;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).replace(ANSI, '').trim();
          buffered = buffered.slice(nl + 1);
          const ready = /^S3RVER-READY (\d+)$/.exec(line);
          if (ready && !settled) {
            settled = true;
            clearTimeout(timer);
            resolve(Number(ready[1]));
          } else if (line !== '') {
            log.push(line.replace(/^info:\s*/, ''));
            if (log.length > 20_000) log.splice(0, 10_000);
          }
        }
      });
      proc.stderr!.setEncoding('utf8');
      proc.stderr!.on('data', (text: string) => {
        stderr += text;
      });
      proc.once('exit', (code, sig) => {
        live.delete(proc);
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(new Error(`s3rver exited (${code ?? sig}) before it was ready: ${stderr.trim()}`));
        }
      });
    });

  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await launch();
  } catch (error) {
    await killChild('SIGKILL');
    fs.rmSync(directory, { recursive: true, force: true });
    dirs.delete(directory);
    throw error;
  }

  const server: S3TestServer = {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    bucket: buckets[0]!,
    port,
    directory,
    requests: () => [...log],
    pendingUploads(bucket = buckets[0]!) {
      const base = path.join(directory, bucket, '._S3rver_uploads');
      return fs.existsSync(base) ? fs.readdirSync(base).filter((name) => !name.includes('.tmp-')) : [];
    },
    kill: () => killChild('SIGKILL'),
    async restart() {
      await killChild('SIGKILL');
      await launch();
    },
    async stop() {
      await killChild('SIGTERM');
      fs.rmSync(directory, { recursive: true, force: true });
      dirs.delete(directory);
    },
  };
  return server;
}

/**
 * Points the AWS SDK's default credential chain (environment variables first) at the server's keys,
 * and keeps the chain from ever asking the EC2 metadata service on the network.
 */
export function s3Env(server: Pick<S3TestServer, 'accessKeyId' | 'secretAccessKey' | 'region'>): void {
  process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_REGION = server.region;
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}
