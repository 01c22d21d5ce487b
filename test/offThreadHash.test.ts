// The off-thread content hash of large transfers (src/core/offThreadHash.ts): same digests as on
// this thread in either algorithm, bounded backlog, and a worker that keeps the process alive
// exactly while it is needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { HashAlgorithm } from '../src/core/contentHash';
import { OFF_THREAD_MIN_BYTES, hashOfOpenFile, streamHasher } from '../src/core/offThreadHash';
import { prng } from './helpers/prng';

const MiB = 1024 * 1024;

/** The expected digest, computed here without src/core/contentHash. */
function expected(data: Buffer, algorithm: HashAlgorithm): string {
  return algorithm === 'md5' ? createHash('md5').update(data).digest('hex') : createHash('sha256').update(data).digest('hex').slice(0, 32);
}

describe('off-thread content hash', () => {
  it('a large stream in pieces of any size hashes to the digest of its bytes; streams of either algorithm run side by side', async () => {
    const random = prng(7);
    const inputs = [randomBytes(20 * MiB + 123), randomBytes(OFF_THREAD_MIN_BYTES), randomBytes(9 * MiB + 5)];
    const algorithms: HashAlgorithm[] = ['md5', 'sha256-128', 'sha256-128'];
    const digests = await Promise.all(
      inputs.map(async (data, i) => {
        const hasher = streamHasher(data.length, algorithms[i]!);
        for (let offset = 0; offset < data.length; ) {
          const size = 1 + Math.floor(random() * 3 * MiB);
          const wait = hasher.update(data.subarray(offset, offset + size));
          if (wait) await wait;
          offset += size;
        }
        return hasher.digest();
      }),
    );
    assert.deepEqual(digests, inputs.map((data, i) => expected(data, algorithms[i]!)));
  });

  it('a sender that outruns the worker is asked to wait before 40 MiB are waiting', async () => {
    const hasher = streamHasher(1024 * MiB, 'sha256-128');
    const chunk = Buffer.alloc(MiB, 1);
    let posted = 0;
    let wait: Promise<void> | undefined;
    while (!wait && posted < 1024 * MiB) {
      wait = hasher.update(chunk);
      posted += chunk.length;
    }
    assert.ok(wait, 'update() returned a promise');
    assert.ok(posted <= 40 * MiB, `asked to wait after ${posted / MiB} MiB`);
    await wait;
    hasher.discard();
    // A discarded stream leaves the worker usable.
    const next = streamHasher(OFF_THREAD_MIN_BYTES, 'md5');
    next.update(chunk);
    assert.equal(await next.digest(), expected(chunk, 'md5'));
  });

  it('an open file is read and hashed by the worker, beside a posted stream; the fd stays open', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-hash-'));
    try {
      const files = [randomBytes(12 * MiB + 7), Buffer.alloc(0), randomBytes(100)].map((data, i) => {
        const file = path.join(dir, `f${i}`);
        fs.writeFileSync(file, data);
        return { data, fd: fs.openSync(file, 'r') };
      });
      const streamData = randomBytes(10 * MiB);
      const streamed = (async () => {
        const hasher = streamHasher(streamData.length, 'md5');
        for (let offset = 0; offset < streamData.length; offset += MiB) await hasher.update(streamData.subarray(offset, offset + MiB));
        return hasher.digest();
      })();
      const digests = await Promise.all(files.flatMap(({ fd }) => [hashOfOpenFile(fd, 'sha256-128')!, hashOfOpenFile(fd, 'md5')!]));
      assert.deepEqual(digests, files.flatMap(({ data }) => [expected(data, 'sha256-128'), expected(data, 'md5')]));
      assert.equal(await streamed, expected(streamData, 'md5'));
      for (const { fd } of files) fs.closeSync(fd); // still open: the worker left them to the caller
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an aborted file hash rejects with the reason; a bad fd rejects with its code; the worker goes on', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-hash-'));
    try {
      const file = path.join(dir, 'big');
      fs.writeFileSync(file, Buffer.alloc(256 * MiB, 3));
      const fd = fs.openSync(file, 'r');
      const controller = new AbortController();
      const hashing = hashOfOpenFile(fd, 'sha256-128', controller.signal)!;
      setTimeout(() => controller.abort(new Error('stopped by the test')), 20);
      const started = Date.now();
      await assert.rejects(hashing, /stopped by the test/);
      assert.ok(Date.now() - started < 2000, 'stopped within a few chunks, not after reading 256 MiB');
      fs.closeSync(fd);
      await assert.rejects(hashOfOpenFile(2 ** 30, 'md5')!, (error: NodeJS.ErrnoException) => error.code === 'EBADF');
      const small = fs.openSync(file, 'r');
      fs.truncateSync(file, 5);
      assert.equal(await hashOfOpenFile(small, 'sha256-128'), expected(Buffer.alloc(5, 3), 'sha256-128'));
      fs.closeSync(small);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a digest in progress keeps the process alive; the idle worker does not', () => {
    const module = path.join(__dirname, '..', 'src', 'core', 'offThreadHash.js');
    const script = `
      const { streamHasher } = require(${JSON.stringify(module)});
      const hasher = streamHasher(64 * 1024 * 1024, 'sha256-128');
      const chunk = Buffer.alloc(1024 * 1024, 2);
      (async () => {
        for (let i = 0; i < 64; i++) { const wait = hasher.update(chunk); if (wait) await wait; }
        hasher.digest().then((hex) => console.log(hex));
      })();`;
    const started = Date.now();
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), expected(Buffer.alloc(64 * MiB, 2), 'sha256-128'), 'the digest was printed before the process exited');
    assert.ok(Date.now() - started < 30_000, 'and it exited by itself');
  });
});
