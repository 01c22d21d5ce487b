// The off-thread MD5 of large transfers (src/core/offThreadHash.ts): same digests as on this
// thread, bounded backlog, and a worker that keeps the process alive exactly while it is needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { OFF_THREAD_MIN_BYTES, md5Hasher, md5OfOpenFile } from '../src/core/offThreadHash';
import { prng } from './helpers/prng';

const MiB = 1024 * 1024;

describe('off-thread MD5', () => {
  it('a large stream in pieces of any size hashes to the MD5 of its bytes; streams run side by side', async () => {
    const random = prng(7);
    const inputs = [randomBytes(20 * MiB + 123), randomBytes(OFF_THREAD_MIN_BYTES)];
    const digests = await Promise.all(
      inputs.map(async (data) => {
        const hasher = md5Hasher(data.length);
        for (let offset = 0; offset < data.length; ) {
          const size = 1 + Math.floor(random() * 3 * MiB);
          const wait = hasher.update(data.subarray(offset, offset + size));
          if (wait) await wait;
          offset += size;
        }
        return hasher.digest();
      }),
    );
    assert.deepEqual(digests, inputs.map((data) => createHash('md5').update(data).digest('hex')));
  });

  it('a sender that outruns the worker is asked to wait before 40 MiB are waiting', async () => {
    const hasher = md5Hasher(1024 * MiB);
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
    const next = md5Hasher(OFF_THREAD_MIN_BYTES);
    next.update(chunk);
    assert.equal(await next.digest(), createHash('md5').update(chunk).digest('hex'));
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
        const hasher = md5Hasher(streamData.length);
        for (let offset = 0; offset < streamData.length; offset += MiB) await hasher.update(streamData.subarray(offset, offset + MiB));
        return hasher.digest();
      })();
      const digests = await Promise.all(files.map(({ fd }) => md5OfOpenFile(fd)!));
      assert.deepEqual(digests, files.map(({ data }) => createHash('md5').update(data).digest('hex')));
      assert.equal(await streamed, createHash('md5').update(streamData).digest('hex'));
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
      const hashing = md5OfOpenFile(fd, controller.signal)!;
      setTimeout(() => controller.abort(new Error('stopped by the test')), 20);
      const started = Date.now();
      await assert.rejects(hashing, /stopped by the test/);
      assert.ok(Date.now() - started < 2000, 'stopped within a few chunks, not after reading 256 MiB');
      fs.closeSync(fd);
      await assert.rejects(md5OfOpenFile(2 ** 30)!, (error: NodeJS.ErrnoException) => error.code === 'EBADF');
      const small = fs.openSync(file, 'r');
      fs.truncateSync(file, 5);
      assert.equal(await md5OfOpenFile(small), createHash('md5').update(Buffer.alloc(5, 3)).digest('hex'));
      fs.closeSync(small);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a digest in progress keeps the process alive; the idle worker does not', () => {
    const module = path.join(__dirname, '..', 'src', 'core', 'offThreadHash.js');
    const script = `
      const { md5Hasher } = require(${JSON.stringify(module)});
      const hasher = md5Hasher(64 * 1024 * 1024);
      const chunk = Buffer.alloc(1024 * 1024, 2);
      (async () => {
        for (let i = 0; i < 64; i++) { const wait = hasher.update(chunk); if (wait) await wait; }
        hasher.digest().then((hex) => console.log(hex));
      })();`;
    const started = Date.now();
    const result = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), createHash('md5').update(Buffer.alloc(64 * MiB, 2)).digest('hex'), 'the digest was printed before the process exited');
    assert.ok(Date.now() - started < 30_000, 'and it exited by itself');
  });
});
