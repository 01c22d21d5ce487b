// A backend conformance suite: registers node:test tests that exercise ONLY the Backend interface, so
// the same tests run unchanged against every store (local folder, SFTP, FTP, S3).
//
// Usage (one file per backend):
//   runConformanceSuite('LocalBackend', async () => ({ backend, cleanup }), { hasInode: true });
//
// Every test gets a fresh, empty store from makeBackend() and calls cleanup() afterwards. Tests of
// optional capabilities (rename, copyWithin, hash) skip with an explicit reason when the backend does
// not have the method; they never pass silently.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Backend, Entry } from '../../src/backends/types';
import { TargetExistsError, UnsafePathError } from '../../src/core/errors';

export interface ConformanceFixture {
  backend: Backend;
  cleanup: () => Promise<void>;
  /**
   * Optional view of the world outside the store's root, used to prove that refused path escapes
   * created nothing there: `names()` lists the folder that contains the root (where "../x" would
   * land), `exists()` checks an absolute path on the store's machine.
   */
  outside?: {
    names(): Promise<string[]>;
    exists(absolutePath: string): Promise<boolean>;
  };
}

export interface ConformanceOptions {
  /** Entries carry a numeric `ino` (local folders, SFTP). Default false. */
  hasInode?: boolean;
  /** Whether `write` keeps the given mtimeMs. Default true. */
  keepsMtime?: boolean;
  /** Granularity of kept modification times: listed mtime must be within this of the one written. Default 1 (exact ms). */
  mtimePrecisionMs?: number;
  /** Whether empty folders exist on their own (S3-style stores may emulate them). Default true. */
  hasEmptyFolders?: boolean;
  /** Size of the large-file test. Default 64 MiB. */
  largeFileBytes?: number;
  /**
   * How far the source of a write may run ahead of the backend's reported progress (onBytes) before
   * the suite concludes the backend buffers the whole file. Default 16 MiB (S3 multipart parts fit).
   */
  maxBufferedBytes?: number;
  /** Per-test timeout. Default 120 s. */
  timeoutMs?: number;
}

type MakeBackend = () => Promise<ConformanceFixture>;

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Helpers (exported for backend-specific tests)

/** A byte stream (not object mode) of the given chunks. */
export function streamOf(...chunks: (Buffer | string)[]): Readable {
  return Readable.from(
    chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)),
    { objectMode: false },
  );
}

export function md5(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex');
}

/** The 'sha256-128' content hash, computed independently of src/core/contentHash. */
export function sha128(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 32);
}

export async function readAll(backend: Backend, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await backend.read(path)) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** MD5 and size of a stored file, computed while streaming (the file is never held whole). */
export async function md5Of(backend: Backend, path: string): Promise<{ md5: string; size: number }> {
  const hash = createHash('md5');
  let size = 0;
  for await (const chunk of await backend.read(path)) {
    const buffer: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    hash.update(buffer);
    size += buffer.length;
  }
  return { md5: hash.digest('hex'), size };
}

/** Every entry below `dir`, walking with listDir only, sorted by path. */
export async function walk(backend: Backend, dir = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop() as string;
    const { entries } = await backend.listDir(current);
    for (const entry of entries) {
      out.push(entry);
      if (entry.kind === 'dir') pending.push(entry.path);
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function names(backend: Backend, dir = ''): Promise<string[]> {
  return (await walk(backend, dir)).map((entry) => `${entry.path}${entry.kind === 'dir' ? '/' : ''}`);
}

/**
 * A deterministic pseudo-random source of `total` bytes in `chunkSize` chunks, produced lazily.
 * `md5` is known up front (computed without I/O); `produced` tracks how much the consumer has pulled.
 */
/**
 * A stream of `total` bytes built from `seed`. `holdAfter` chunks in, it waits for `hold` to settle
 * before sending the rest (to keep a write in progress while a test looks at the target).
 */
export function generatedSource(
  total: number,
  options: { chunkSize?: number; seed?: Buffer; delayMs?: number; holdAfter?: number; hold?: Promise<void> } = {},
) {
  const chunkSize = options.chunkSize ?? MiB;
  const seed = options.seed ?? randomBytes(chunkSize);
  const chunkAt = (index: number, size: number): Buffer => {
    const chunk = Buffer.from(seed.subarray(0, size));
    chunk.writeUInt32BE(index >>> 0, 0);
    return chunk;
  };
  const chunkCount = Math.ceil(total / chunkSize);
  const sizeAt = (index: number) => Math.min(chunkSize, total - index * chunkSize);
  const expected = createHash('md5');
  const expectedSha = createHash('sha256');
  for (let i = 0; i < chunkCount; i++) {
    expected.update(chunkAt(i, sizeAt(i)));
    expectedSha.update(chunkAt(i, sizeAt(i)));
  }
  const state = { produced: 0, md5: expected.digest('hex'), sha128: expectedSha.digest('hex').slice(0, 32), size: total };
  const delayMs = options.delayMs ?? 0;
  async function* generate() {
    for (let i = 0; i < chunkCount; i++) {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (i === options.holdAfter && options.hold) await options.hold;
      const chunk = chunkAt(i, sizeAt(i));
      state.produced += chunk.length;
      yield chunk;
    }
  }
  return { state, stream: () => Readable.from(generate(), { objectMode: false }) };
}

/** A source that sends `chunks` chunks and then fails with `error`. */
export function failingSource(chunks: number, chunkSize: number, error: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent < chunks) {
        this.push(Buffer.alloc(chunkSize, 0x61 + (sent % 26)));
        sent++;
      } else {
        setImmediate(() => this.destroy(error));
      }
    },
  });
}

/** Moves this process's clock (Date.now, new Date()) ahead by `ms` until the returned function is called. */
function skewClock(ms: number): () => void {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + ms);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return RealDate.now() + ms;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
  return () => {
    globalThis.Date = RealDate;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------

export function runConformanceSuite(name: string, makeBackend: MakeBackend, options: ConformanceOptions = {}): void {
  const hasInode = options.hasInode ?? false;
  const keepsMtime = options.keepsMtime ?? true;
  const precision = options.mtimePrecisionMs ?? 1;
  const hasEmptyFolders = options.hasEmptyFolders ?? true;
  const largeBytes = options.largeFileBytes ?? 64 * MiB;
  const maxBuffered = options.maxBufferedBytes ?? 16 * MiB;
  const testOptions = { timeout: options.timeoutMs ?? 120_000 };

  /** Registers a test that gets a fresh store and always cleans it up. */
  function test(title: string, body: (backend: Backend, t: TestContext, fixture: ConformanceFixture) => Promise<void>): void {
    it(title, testOptions, async (t) => {
      const fixture = await makeBackend();
      try {
        await body(fixture.backend, t, fixture);
      } finally {
        try {
          await fixture.backend.close();
        } finally {
          await fixture.cleanup();
        }
      }
    });
  }

  function assertMtime(actual: number, expected: number, what: string): void {
    if (!keepsMtime) return;
    assert.ok(Math.abs(actual - expected) < precision, `${what}: mtimeMs ${actual} should be ${expected} (precision ${precision} ms)`);
  }

  describe(`${name}: backend conformance`, () => {
    describe('identity', () => {
      test('has a displayName and an id', async (backend) => {
        assert.equal(typeof backend.displayName, 'string');
        assert.ok(backend.displayName.length > 0);
        assert.equal(typeof backend.id, 'string');
        assert.ok(backend.id.length > 0);
      });
    });

    describe('listing', () => {
      test('an empty store lists nothing', async (backend) => {
        const result = await backend.listDir('');
        assert.deepEqual(result.entries, []);
        assert.deepEqual(result.skipped, []);
      });

      test('lists files and folders at the root and nested, with kinds, sizes and mtimes', async (backend) => {
        const m1 = 1_600_000_000_123;
        const m2 = 1_650_000_000_987;
        await backend.write('f1.txt', streamOf('hello'), { mtimeMs: m1 });
        await backend.write('sub/f2.txt', streamOf('nested file'), { mtimeMs: m2 });
        await backend.write('sub/deeper/f3.bin', streamOf(Buffer.alloc(1000, 7)), { mtimeMs: m1 });
        if (hasEmptyFolders) await backend.mkdir('emptydir');

        const root = await backend.listDir('');
        assert.deepEqual(root.skipped, []);
        const byPath = new Map(root.entries.map((e) => [e.path, e]));
        assert.deepEqual(
          [...byPath.keys()].sort(),
          hasEmptyFolders ? ['emptydir', 'f1.txt', 'sub'] : ['f1.txt', 'sub'],
        );
        const f1 = byPath.get('f1.txt') as Entry;
        assert.equal(f1.kind, 'file');
        assert.equal(f1.size, 5);
        assertMtime(f1.mtimeMs, m1, 'f1.txt');
        assert.equal(byPath.get('sub')?.kind, 'dir');
        assert.equal(byPath.get('sub')?.size, 0);
        if (hasEmptyFolders) assert.equal(byPath.get('emptydir')?.kind, 'dir');

        const sub = await backend.listDir('sub');
        const subPaths = sub.entries.map((e) => `${e.path}:${e.kind}`).sort();
        assert.deepEqual(subPaths, ['sub/deeper:dir', 'sub/f2.txt:file']);
        const f2 = sub.entries.find((e) => e.path === 'sub/f2.txt') as Entry;
        assert.equal(f2.size, 'nested file'.length);
        assertMtime(f2.mtimeMs, m2, 'sub/f2.txt');

        const deeper = await backend.listDir('sub/deeper');
        assert.equal(deeper.entries.length, 1);
        assert.equal(deeper.entries[0]?.path, 'sub/deeper/f3.bin');
        assert.equal(deeper.entries[0]?.size, 1000);

        if (hasEmptyFolders) assert.deepEqual((await backend.listDir('emptydir')).entries, []);

        for (const entry of [...root.entries, ...sub.entries, ...deeper.entries]) {
          assert.equal(typeof entry.mtimeMs, 'number');
          assert.ok(Number.isFinite(entry.mtimeMs), `${entry.path}: finite mtime`);
          if (hasInode) assert.equal(typeof entry.ino, 'number', `${entry.path}: ino`);
          if (entry.hash !== undefined) assert.match(entry.hash, /^[0-9a-f]{32}$/);
        }
        if (hasInode) {
          const inos = new Set([f1.ino, f2.ino, deeper.entries[0]?.ino]);
          assert.equal(inos.size, 3, 'distinct files have distinct inodes');
        }
      });

      test('write returns the entry as stored', async (backend) => {
        const mtimeMs = 1_700_000_000_456;
        const entry = await backend.write('w/returned.txt', streamOf('abc', 'def'), { mtimeMs, size: 6 });
        assert.equal(entry.path, 'w/returned.txt');
        assert.equal(entry.kind, 'file');
        assert.equal(entry.size, 6);
        assertMtime(entry.mtimeMs, mtimeMs, 'returned entry');
        const stat = await backend.stat('w/returned.txt');
        assert.equal(stat?.size, 6);
        assertMtime(stat?.mtimeMs ?? NaN, mtimeMs, 'stat');
      });

      // The engine records the returned entry as the synced version and compares the next listing
      // with it exactly: a returned time that differs from what the store reports makes the next run
      // see a change nobody made (a download back, or a conflict, in the mtime comparison modes).
      // With this process's clock 90 s ahead of the store's, a backend that takes its own clock for
      // the store's time is caught every time.
      test('the entry a write returns is exactly what stat and listings report, whatever our clock says', async (backend) => {
        await backend.mkdir('b');
        const written: Entry[] = [];
        const restoreClock = skewClock(90_000);
        try {
          for (let i = 0; i < 3; i++) written.push(await backend.write(`b/file-${i}.txt`, Buffer.from(`file ${i}`), { size: 6 }));
        } finally {
          restoreClock();
        }
        const listed = new Map((await backend.listDir('b')).entries.map((e) => [e.path, e]));
        for (const entry of written) {
          const stat = await backend.stat(entry.path);
          for (const [what, other] of [['stat', stat], ['listDir', listed.get(entry.path)]] as const) {
            assert.ok(other, `${what} finds ${entry.path}`);
            assert.equal(entry.size, other.size, `${what}: size of ${entry.path}`);
            assert.equal(entry.mtimeMs, other.mtimeMs, `${what}: mtimeMs of ${entry.path}`);
            if (entry.hash !== undefined && other.hash !== undefined) assert.equal(entry.hash, other.hash, `${what}: hash of ${entry.path}`);
          }
        }
      });

      test('engine-owned names are not listed', async (backend) => {
        await backend.write('visible.txt', streamOf('v'));
        await backend.write('.syncengine-foo', streamOf('engine'));
        await backend.write('.sync_state', streamOf('state'));
        await backend.write('.syncengine-trash/old.txt', streamOf('trashed'));
        await backend.write('sub/.syncengine-tmp-0123456789abcdef', streamOf('temp'));
        await backend.write('sub/.sync_state-x/y', streamOf('state'));
        const root = await backend.listDir('');
        assert.deepEqual(root.entries.map((e) => e.path).sort(), ['sub', 'visible.txt']);
        assert.deepEqual(root.skipped, []);
        const sub = await backend.listDir('sub');
        assert.deepEqual(sub.entries, []);
        assert.deepEqual(sub.skipped, []);
      });

      test('unicode and space-containing names round-trip', async (backend) => {
        const files = ['é.txt', '日本語/ファイル.txt', 'a b.txt', 'dir with space/x y.txt', 'ümlaut dir/ß', 'emoji-😀.md'];
        for (const file of files) await backend.write(file, streamOf(`content of ${file}`));
        const listed = (await walk(backend)).filter((e) => e.kind === 'file').map((e) => e.path.normalize('NFC'));
        assert.deepEqual(listed.sort(), files.map((f) => f.normalize('NFC')).sort());
        for (const file of files) {
          assert.equal((await readAll(backend, file)).toString(), `content of ${file}`);
          assert.equal((await backend.stat(file))?.kind, 'file');
        }
        const rootNames = (await backend.listDir('')).entries.map((e) => e.path.normalize('NFC'));
        assert.ok(rootNames.includes('日本語'));
        assert.ok(rootNames.includes('a b.txt'));
      });

      test('deep trees (depth 12) are created by write and walked by listDir', async (backend) => {
        const dirs = Array.from({ length: 12 }, (_, i) => `d${i + 1}`);
        const deepPath = `${dirs.join('/')}/leaf.txt`;
        await backend.write(deepPath, streamOf('deep'));
        let current = '';
        for (const dir of dirs) {
          const listing = await backend.listDir(current);
          const next = current === '' ? dir : `${current}/${dir}`;
          assert.deepEqual(listing.entries.map((e) => `${e.path}:${e.kind}`), [`${next}:dir`]);
          current = next;
        }
        const leaf = await backend.listDir(current);
        assert.deepEqual(leaf.entries.map((e) => e.path), [deepPath]);
        assert.equal((await backend.stat(deepPath))?.size, 4);
        assert.equal((await readAll(backend, deepPath)).toString(), 'deep');
      });
    });

    describe('read and write', () => {
      test('empty files', async (backend) => {
        const entry = await backend.write('empty.txt', streamOf());
        assert.equal(entry.size, 0);
        assert.equal((await backend.stat('empty.txt'))?.size, 0);
        assert.equal((await readAll(backend, 'empty.txt')).length, 0);
        const listed = (await backend.listDir('')).entries.find((e) => e.path === 'empty.txt');
        assert.equal(listed?.kind, 'file');
        assert.equal(listed?.size, 0);
        // Replacing a non-empty file with an empty one.
        await backend.write('was-full.txt', streamOf('x'.repeat(100)));
        await backend.write('was-full.txt', streamOf());
        assert.equal((await backend.stat('was-full.txt'))?.size, 0);
      });

      test('replacing a file changes its content, size and mtime', async (backend) => {
        await backend.write('r.txt', streamOf('first version, long'), { mtimeMs: 1_500_000_000_000 });
        await backend.write('r.txt', streamOf('second'), { mtimeMs: 1_500_000_100_000 });
        assert.equal((await readAll(backend, 'r.txt')).toString(), 'second');
        const stat = await backend.stat('r.txt');
        assert.equal(stat?.size, 6);
        assertMtime(stat?.mtimeMs ?? NaN, 1_500_000_100_000, 'replaced');
      });

      test(`a large file (${Math.round(largeBytes / MiB)} MiB) streams in and out intact`, async (backend) => {
        const source = generatedSource(largeBytes, { chunkSize: MiB });
        let reported = 0;
        let maxLag = 0;
        const entry = await backend.write('large/big.bin', source.stream(), {
          size: largeBytes,
          onBytes: (bytes) => {
            reported = bytes;
            maxLag = Math.max(maxLag, source.state.produced - bytes);
          },
        });
        assert.equal(entry.size, largeBytes);
        assert.equal(reported, largeBytes);
        assert.ok(maxLag <= maxBuffered, `the source ran ${maxLag} bytes ahead of the written data: the write is buffered, not streamed`);
        const back = await md5Of(backend, 'large/big.bin');
        assert.equal(back.size, largeBytes);
        assert.equal(back.md5, source.state.md5);
        if (backend.hash) assert.equal(await backend.hash('large/big.bin', 'md5'), source.state.md5);
        if (backend.hash) assert.equal(await backend.hash('large/big.bin', 'sha256-128'), source.state.sha128);
      });

      test('onBytes progress is monotonic and reaches the size', async (backend) => {
        const size = MiB + 12_345;
        const source = generatedSource(size, { chunkSize: 64 * 1024 });
        const seen: number[] = [];
        await backend.write('progress.bin', source.stream(), { size, onBytes: (b) => seen.push(b) });
        assert.ok(seen.length > 0, 'onBytes was called');
        for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as number) >= (seen[i - 1] as number), 'monotonic');
        assert.equal(seen[seen.length - 1], size);
      });

      test('read of a missing file rejects', async (backend) => {
        await assert.rejects(async () => readAll(backend, 'missing.txt'));
        await assert.rejects(async () => readAll(backend, 'missing-dir/missing.txt'));
      });

      test('read honours an abort signal', async (backend) => {
        const source = generatedSource(8 * MiB, { chunkSize: MiB });
        await backend.write('abortable.bin', source.stream());
        const controller = new AbortController();
        const stream = await backend.read('abortable.bin', controller.signal);
        let bytes = 0;
        await assert.rejects(async () => {
          for await (const chunk of stream) {
            bytes += (chunk as Buffer).length;
            controller.abort();
          }
        });
        assert.ok(bytes < 8 * MiB, 'stopped before the end');
        // An already-aborted signal.
        await assert.rejects(async () => {
          const aborted = AbortSignal.abort();
          for await (const chunk of await backend.read('abortable.bin', aborted)) void chunk;
        });
      });

      test('ifAbsent, where offered: a missing path is created; a file already there is refused with TargetExistsError and kept', async (backend, t) => {
        if (!(await backend.canWriteIfAbsent?.())) {
          t.skip('no create-only writes');
          return;
        }
        await backend.write('ia/theirs.txt', streamOf('theirs'), { mtimeMs: 1_600_000_000_000 });
        for (const attempt of [() => Buffer.from('ours'), () => streamOf('ours, streamed')]) {
          await assert.rejects(backend.write('ia/theirs.txt', attempt(), { ifAbsent: true, mtimeMs: 1_700_000_000_000 }), TargetExistsError);
          assert.equal((await readAll(backend, 'ia/theirs.txt')).toString(), 'theirs');
        }
        const created = await backend.write('ia/new.txt', streamOf('new'), { ifAbsent: true, mtimeMs: 1_700_000_000_000 });
        assert.equal(created.size, 3);
        assert.equal((await readAll(backend, 'ia/new.txt')).toString(), 'new');
        assert.deepEqual((await backend.listDir('ia')).entries.map((e) => e.path).sort(), ['ia/new.txt', 'ia/theirs.txt']);
      });

      test('hash, when present, is the content hash in the algorithm asked for', async (backend, t) => {
        if (!backend.hash) {
          t.skip('no hash capability');
          return;
        }
        await backend.write('h.txt', streamOf('hash me'));
        assert.equal(await backend.hash('h.txt', 'md5'), md5('hash me'));
        assert.equal(await backend.hash('h.txt', 'sha256-128'), sha128('hash me'));
        await backend.write('h-empty.txt', streamOf());
        assert.equal(await backend.hash('h-empty.txt', 'md5'), md5(''));
        assert.equal(await backend.hash('h-empty.txt', 'sha256-128'), sha128(''));
      });

      test('hashOffThread, when present, is the content hash in the algorithm asked for; a missing file or an abort rejects', async (backend, t) => {
        if (!backend.hashOffThread) {
          t.skip('no hashOffThread capability');
          return;
        }
        const source = generatedSource(9 * MiB + 11, { chunkSize: MiB });
        await backend.write('dir/large.bin', source.stream());
        assert.equal(await backend.hashOffThread('dir/large.bin', 'md5'), source.state.md5);
        assert.equal(await backend.hashOffThread('dir/large.bin', 'sha256-128'), source.state.sha128);
        await backend.write('h-empty.txt', streamOf());
        assert.equal(await backend.hashOffThread('h-empty.txt', 'md5'), md5(''));
        assert.equal(await backend.hashOffThread('h-empty.txt', 'sha256-128'), sha128(''));
        await assert.rejects(backend.hashOffThread('missing.bin', 'sha256-128'));
        await assert.rejects(backend.hashOffThread('dir', 'sha256-128'), 'a folder is not a file');
        await assert.rejects(backend.hashOffThread('dir/large.bin', 'sha256-128', AbortSignal.abort()));
      });
    });

    describe('atomicity', () => {
      test('a concurrent read during a large write sees the old content or nothing, never a part', async (backend) => {
        const old = Buffer.from('old content\n'.repeat(1000));
        await backend.write('atomic.bin', streamOf(old));
        const oldMd5 = md5(old);
        // Both writes stop halfway until the reader has looked a few times (or 20 s have passed), so the
        // reads below surely run while the writes are in progress, however fast the server is.
        const readsBeforeRelease = 3;
        let release = () => {};
        const hold = new Promise<void>((resolve) => {
          release = resolve;
        });
        const holdTimer = setTimeout(release, 20_000);
        const replacementBytes = Math.min(largeBytes, 32 * MiB);
        const replacement = generatedSource(replacementBytes, { chunkSize: MiB, delayMs: 2, holdAfter: Math.ceil(replacementBytes / MiB / 2), hold });
        const fresh = generatedSource(8 * MiB, { chunkSize: 512 * 1024, delayMs: 5, holdAfter: 8, hold });
        let done = false;
        const writes = Promise.all([
          backend.write('atomic.bin', replacement.stream()),
          backend.write('fresh.bin', fresh.stream()),
        ]).finally(() => {
          done = true;
        });
        let readsDuringWrite = 0;
        let freshMissingDuringWrite = 0;
        try {
          while (!done) {
            const startedDuringWrite = !done;
            try {
              const freshSeen = await md5Of(backend, 'fresh.bin');
              assert.equal(freshSeen.md5, fresh.state.md5, `a reader saw ${freshSeen.size} bytes of a file still being written`);
            } catch (error) {
              if (error instanceof assert.AssertionError) throw error;
              freshMissingDuringWrite++; // nothing there yet: fine
            }
            const seen = await md5Of(backend, 'atomic.bin');
            assert.ok(
              (seen.md5 === oldMd5 && seen.size === old.length) || (seen.md5 === replacement.state.md5 && seen.size === replacement.state.size),
              `a reader saw ${seen.size} bytes that are neither the old nor the new content`,
            );
            if (startedDuringWrite && seen.md5 === oldMd5) readsDuringWrite++;
            if (readsDuringWrite >= readsBeforeRelease) release();
            // No temporary file shows through listDir while the write runs.
            const listed = (await backend.listDir('')).entries.map((e) => e.path);
            for (const path of listed) assert.ok(path === 'atomic.bin' || path === 'fresh.bin', `unexpected entry ${path} during a write`);
            await sleep(5);
          }
        } finally {
          release();
          clearTimeout(holdTimer);
          await writes.catch(() => undefined);
        }
        await writes;
        assert.ok(readsDuringWrite > 0, 'at least one read ran while the write was in progress');
        assert.ok(freshMissingDuringWrite > 0, 'the fresh file was absent while being written');
        assert.equal((await md5Of(backend, 'atomic.bin')).md5, replacement.state.md5);
        assert.equal((await md5Of(backend, 'fresh.bin')).md5, fresh.state.md5);
        assert.deepEqual(await names(backend), ['atomic.bin', 'fresh.bin']);
      });

      test('a write whose source fails midway rejects and leaves the old content and no temp file', async (backend) => {
        const old = Buffer.from('precious old content');
        await backend.write('keep/doc.txt', streamOf(old), { mtimeMs: 1_600_000_000_000 });
        const before = await names(backend);
        const sourceError = new Error('source failed on purpose');
        await assert.rejects(async () => backend.write('keep/doc.txt', failingSource(5, 64 * 1024, sourceError)));
        assert.equal((await readAll(backend, 'keep/doc.txt')).toString(), old.toString());
        const stat = await backend.stat('keep/doc.txt');
        assert.equal(stat?.size, old.length);
        assertMtime(stat?.mtimeMs ?? NaN, 1_600_000_000_000, 'untouched mtime');
        // A new file whose source fails is not created.
        await assert.rejects(async () => backend.write('keep/new.txt', failingSource(3, 64 * 1024, new Error('fails too'))));
        assert.equal(await backend.stat('keep/new.txt'), undefined);
        assert.deepEqual(await names(backend), before);
      });

      test('a write aborted through its signal rejects and leaves the old content and no temp file', async (backend) => {
        const old = Buffer.from('old content that must survive');
        await backend.write('abort/doc.txt', streamOf(old));
        const before = await names(backend);
        const controller = new AbortController();
        const source = generatedSource(largeBytes, { chunkSize: 64 * 1024, delayMs: 1 });
        await assert.rejects(async () =>
          backend.write('abort/doc.txt', source.stream(), {
            signal: controller.signal,
            onBytes: (bytes) => {
              if (bytes >= 256 * 1024) controller.abort();
            },
          }),
        );
        assert.ok(source.state.produced < largeBytes, 'the write stopped early');
        assert.equal((await readAll(backend, 'abort/doc.txt')).toString(), old.toString());
        assert.deepEqual(await names(backend), before);
        // An already-aborted signal: nothing is written at all.
        await assert.rejects(async () => backend.write('abort/never.txt', streamOf('never'), { signal: AbortSignal.abort() }));
        assert.equal(await backend.stat('abort/never.txt'), undefined);
        assert.deepEqual(await names(backend), before);
      });
    });

    describe('folders and deletion', () => {
      test('mkdir creates parents; an existing folder is fine', async (backend) => {
        await backend.mkdir('m1/m2/m3');
        await backend.mkdir('m1/m2/m3');
        await backend.mkdir('m1');
        for (const path of ['m1', 'm1/m2', 'm1/m2/m3']) assert.equal((await backend.stat(path))?.kind, 'dir', path);
        if (hasEmptyFolders) assert.deepEqual(await names(backend), ['m1/', 'm1/m2/', 'm1/m2/m3/']);
      });

      test('deleteFile removes a file; a missing path is fine', async (backend) => {
        await backend.write('del/a.txt', streamOf('a'));
        await backend.write('del/b.txt', streamOf('b'));
        await backend.deleteFile('del/a.txt');
        assert.equal(await backend.stat('del/a.txt'), undefined);
        assert.equal((await backend.stat('del/b.txt'))?.size, 1);
        await backend.deleteFile('del/a.txt');
        await backend.deleteFile('never-existed.txt');
        await backend.deleteFile('no/such/folder/file.txt');
        assert.deepEqual(await names(backend), ['del/', 'del/b.txt']);
      });

      test('rmdirIfEmpty removes an empty folder and leaves a non-empty or missing one alone', async (backend, t) => {
        await backend.write('full/keep.txt', streamOf('keep'));
        await backend.rmdirIfEmpty('full');
        assert.equal((await readAll(backend, 'full/keep.txt')).toString(), 'keep');
        await backend.rmdirIfEmpty('missing-folder');
        await backend.rmdirIfEmpty('missing/deeper');
        if (!hasEmptyFolders) {
          t.diagnostic('store has no empty folders: removal of an empty folder not checked');
          return;
        }
        await backend.mkdir('empty/inner');
        await backend.rmdirIfEmpty('empty'); // not empty: holds inner
        assert.equal((await backend.stat('empty'))?.kind, 'dir');
        await backend.rmdirIfEmpty('empty/inner');
        assert.equal(await backend.stat('empty/inner'), undefined);
        await backend.rmdirIfEmpty('empty');
        assert.equal(await backend.stat('empty'), undefined);
        assert.deepEqual(await names(backend), ['full/', 'full/keep.txt']);
      });

      test('stat: files, folders, and undefined for missing paths', async (backend) => {
        await backend.write('s/file.txt', streamOf('12345'), { mtimeMs: 1_650_000_000_321 });
        const file = await backend.stat('s/file.txt');
        assert.equal(file?.path, 's/file.txt');
        assert.equal(file?.kind, 'file');
        assert.equal(file?.size, 5);
        assertMtime(file?.mtimeMs ?? NaN, 1_650_000_000_321, 'stat');
        if (hasInode) assert.equal(typeof file?.ino, 'number');
        const dir = await backend.stat('s');
        assert.equal(dir?.kind, 'dir');
        assert.equal(dir?.path, 's');
        assert.equal(await backend.stat('missing.txt'), undefined);
        assert.equal(await backend.stat('s/missing.txt'), undefined);
        assert.equal(await backend.stat('missing/dir/file.txt'), undefined);
      });
    });

    describe('rename', () => {
      test('moves a file', async (backend, t) => {
        if (!backend.rename) {
          t.skip('no rename capability');
          return;
        }
        await backend.write('a.txt', streamOf('content a'), { mtimeMs: 1_600_000_000_000 });
        await backend.mkdir('target');
        await backend.rename('a.txt', 'target/b.txt');
        assert.equal(await backend.stat('a.txt'), undefined);
        assert.equal((await readAll(backend, 'target/b.txt')).toString(), 'content a');
        assertMtime((await backend.stat('target/b.txt'))?.mtimeMs ?? NaN, 1_600_000_000_000, 'moved file keeps its mtime');
        await backend.rename('target/b.txt', 'target/c.txt');
        assert.deepEqual(await names(backend), ['target/', 'target/c.txt']);
      });

      test('moves a folder with its contents', async (backend, t) => {
        if (!backend.rename) {
          t.skip('no rename capability');
          return;
        }
        await backend.write('dir/a.txt', streamOf('a'));
        await backend.write('dir/sub/b.txt', streamOf('b'));
        await backend.rename('dir', 'moved');
        assert.equal(await backend.stat('dir'), undefined);
        assert.deepEqual(await names(backend), ['moved/', 'moved/a.txt', 'moved/sub/', 'moved/sub/b.txt']);
        assert.equal((await readAll(backend, 'moved/sub/b.txt')).toString(), 'b');
      });

      test('refuses to overwrite an existing target', async (backend, t) => {
        if (!backend.rename) {
          t.skip('no rename capability');
          return;
        }
        const rename = backend.rename.bind(backend);
        await backend.write('x.txt', streamOf('x content'));
        await backend.write('y.txt', streamOf('y content'));
        await assert.rejects(async () => rename('x.txt', 'y.txt'));
        assert.equal((await readAll(backend, 'x.txt')).toString(), 'x content');
        assert.equal((await readAll(backend, 'y.txt')).toString(), 'y content');
        // A folder onto an existing folder, and a file onto a folder.
        await backend.write('d1/one.txt', streamOf('1'));
        await backend.write('d2/two.txt', streamOf('2'));
        await assert.rejects(async () => rename('d1', 'd2'));
        await assert.rejects(async () => rename('x.txt', 'd2'));
        if (hasEmptyFolders) {
          await backend.mkdir('empty-target');
          await assert.rejects(async () => rename('d1', 'empty-target'));
        }
        assert.deepEqual(
          (await names(backend)).filter((n) => !n.startsWith('empty-target')),
          ['d1/', 'd1/one.txt', 'd2/', 'd2/two.txt', 'x.txt', 'y.txt'],
        );
      });

      test('rejects a missing source', async (backend, t) => {
        if (!backend.rename) {
          t.skip('no rename capability');
          return;
        }
        const rename = backend.rename.bind(backend);
        await assert.rejects(async () => rename('nope.txt', 'other.txt'));
        assert.equal(await backend.stat('other.txt'), undefined);
      });
    });

    describe('copyWithin', () => {
      test('copies a file; the copy is independent of the original', async (backend, t) => {
        if (!backend.copyWithin) {
          t.skip('no copyWithin capability');
          return;
        }
        await backend.write('orig.txt', streamOf('original content'));
        await backend.mkdir('copies');
        await backend.copyWithin('orig.txt', 'copies/copy.txt');
        assert.equal((await readAll(backend, 'copies/copy.txt')).toString(), 'original content');
        assert.equal((await readAll(backend, 'orig.txt')).toString(), 'original content');
        // Writing one must not change the other (a hard link plus an in-place write would).
        await backend.write('copies/copy.txt', streamOf('changed copy'));
        assert.equal((await readAll(backend, 'orig.txt')).toString(), 'original content');
        await backend.write('orig.txt', streamOf('changed original'));
        assert.equal((await readAll(backend, 'copies/copy.txt')).toString(), 'changed copy');
      });

      test('refuses to overwrite an existing target', async (backend, t) => {
        if (!backend.copyWithin) {
          t.skip('no copyWithin capability');
          return;
        }
        const copyWithin = backend.copyWithin.bind(backend);
        await backend.write('src.txt', streamOf('source'));
        await backend.write('dst.txt', streamOf('destination'));
        await assert.rejects(async () => copyWithin('src.txt', 'dst.txt'));
        assert.equal((await readAll(backend, 'dst.txt')).toString(), 'destination');
        await assert.rejects(async () => copyWithin('missing.txt', 'other.txt'));
        assert.equal(await backend.stat('other.txt'), undefined);
      });
    });

    describe('path safety', () => {
      test('path escapes are refused with UnsafePathError by every method, and nothing is created outside', async (backend, _t, fixture) => {
        const tag = randomBytes(6).toString('hex');
        await backend.write('a/keep.txt', streamOf('keep'));
        await backend.write('ok.txt', streamOf('ok'));
        const before = await names(backend);
        const outsideBefore = fixture.outside ? (await fixture.outside.names()).sort() : undefined;
        // "/etc/passwd" is only given to methods that read; methods that change things get a harmless
        // absolute path, so a broken backend under test cannot damage the machine it runs on.
        const absoluteProbe = `/tmp/syncengine-escape-${tag}`;
        const common = [`../escape-${tag}`, `a/../../escape-${tag}`, 'a\\b', `a\nb-${tag}`, '..', './ok.txt', 'a//keep.txt', 'a/', '/', 'C:/x', `a/\u0007bell`];
        const readPaths = [...common, '/etc/passwd'];
        const writePaths = [...common, absoluteProbe, `${absoluteProbe}/x`];

        const isUnsafe = (error: unknown) => {
          assert.ok(error instanceof UnsafePathError, `expected UnsafePathError, got ${String(error)}`);
          return true;
        };
        const refused = async (what: string, call: () => Promise<unknown>) => {
          await assert.rejects(async () => call(), isUnsafe, what);
        };
        let checked = 0;
        for (const p of readPaths) {
          const label = JSON.stringify(p);
          await refused(`listDir(${label})`, () => backend.listDir(p));
          await refused(`stat(${label})`, () => backend.stat(p));
          await refused(`read(${label})`, () => backend.read(p));
          const hash = backend.hash?.bind(backend);
          if (hash) await refused(`hash(${label})`, () => hash(p, 'sha256-128'));
          checked += 3;
        }
        for (const p of writePaths) {
          const label = JSON.stringify(p);
          await refused(`write(${label})`, () => backend.write(p, streamOf('evil')));
          await refused(`deleteFile(${label})`, () => backend.deleteFile(p));
          await refused(`mkdir(${label})`, () => backend.mkdir(p));
          await refused(`rmdirIfEmpty(${label})`, () => backend.rmdirIfEmpty(p));
          checked += 4;
          const rename = backend.rename?.bind(backend);
          if (rename) {
            await refused(`rename(ok.txt, ${label})`, () => rename('ok.txt', p));
            await refused(`rename(${label}, moved.txt)`, () => rename(p, 'moved.txt'));
            checked += 2;
          }
          const copyWithin = backend.copyWithin?.bind(backend);
          if (copyWithin) {
            await refused(`copyWithin(ok.txt, ${label})`, () => copyWithin('ok.txt', p));
            await refused(`copyWithin(${label}, copied.txt)`, () => copyWithin(p, 'copied.txt'));
            checked += 2;
          }
        }
        assert.ok(checked > 50);
        assert.deepEqual(await names(backend), before, 'nothing changed inside the root');
        assert.equal((await readAll(backend, 'ok.txt')).toString(), 'ok');
        if (fixture.outside) {
          assert.deepEqual((await fixture.outside.names()).sort(), outsideBefore, 'nothing created next to the root');
          assert.equal(await fixture.outside.exists(absoluteProbe), false, 'nothing created at an absolute path');
        }
      });
    });
  });
}
