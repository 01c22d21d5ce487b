// Tests of LocalBackend that only make sense for a local folder: symlinks, special files, hostile
// trees, permissions, file modes, and error messages.
// The behaviour every backend shares is covered by test/local.conformance.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
// The module object itself (not an import-star copy), so t.mock.method can replace its functions.
import fsModule = require('node:fs');
import { LocalBackend, toStorageError } from '../src/backends/local';
import { StorageError, TargetExistsError, UnsafePathError } from '../src/core/errors';
import { TEMP_PREFIX } from '../src/core/paths';
import { failingSource, generatedSource, streamOf, walk } from './conformance/suite';

interface Sandbox {
  /** Temporary folder holding the root and an "outside" folder next to it. */
  parent: string;
  root: string;
  outside: string;
  backend: LocalBackend;
}

async function withSandbox(body: (s: Sandbox) => Promise<void>): Promise<void> {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-local-'));
  const root = path.join(parent, 'root');
  const outside = path.join(parent, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  try {
    await body({ parent, root, outside, backend: new LocalBackend(root) });
  } finally {
    // Undo permission changes so the cleanup can remove everything.
    const unlock = (dir: string) => {
      for (const dirent of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, dirent.name);
        if (dirent.isDirectory()) {
          fs.chmodSync(p, 0o755);
          unlock(p);
        }
      }
    };
    try {
      unlock(parent);
    } catch {
      // best effort
    }
    fs.rmSync(parent, { recursive: true, force: true });
  }
}

function tempFilesIn(dir: string): string[] {
  const found: string[] = [];
  const visit = (d: string) => {
    for (const dirent of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, dirent.name);
      if (dirent.name.startsWith(TEMP_PREFIX)) found.push(p);
      if (dirent.isDirectory()) visit(p);
    }
  };
  visit(dir);
  return found;
}

const isUnsafe = (error: unknown) => error instanceof UnsafePathError;

function storageErrorMatching(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

const isRoot = process.getuid?.() === 0;

describe('LocalBackend (local-only behaviour)', () => {
  describe('construction', () => {
    it('resolves the root, names itself, and uses the real path in its id', async () => {
      await withSandbox(async ({ parent, root }) => {
        const relative = path.relative(process.cwd(), root);
        const backend = new LocalBackend(relative);
        assert.equal(backend.root, root);
        assert.ok(path.isAbsolute(backend.root));
        assert.equal(backend.displayName, `local folder ${root}`);
        assert.equal(backend.id, `file://${fs.realpathSync(root)}`);
        const link = path.join(parent, 'root-link');
        fs.symlinkSync(root, link);
        const viaLink = new LocalBackend(link);
        assert.equal(viaLink.root, link);
        assert.equal(viaLink.id, `file://${fs.realpathSync(root)}`, 'the same folder has the same id through a symlink');
        // A symlinked root is the user's choice: everything inside it works normally.
        await viaLink.write('sub/through-root-link.txt', streamOf('ok'));
        assert.equal(fs.readFileSync(path.join(root, 'sub', 'through-root-link.txt'), 'utf8'), 'ok');
        assert.deepEqual((await viaLink.listDir('sub')).entries.map((e) => e.path), ['sub/through-root-link.txt']);
        const missing = new LocalBackend(path.join(parent, 'not-yet'));
        assert.equal(missing.id, `file://${path.join(parent, 'not-yet')}`);
        await backend.close();
      });
    });

    it('listing a missing root throws a clear StorageError; mkdir("") creates it', async () => {
      await withSandbox(async ({ parent }) => {
        const missingRoot = path.join(parent, 'missing-root');
        const backend = new LocalBackend(missingRoot);
        await assert.rejects(backend.listDir(''), storageErrorMatching(/folder does not exist: .*missing-root/));
        assert.equal(await backend.stat(''), undefined);
        await backend.mkdir('');
        assert.deepEqual(await backend.listDir(''), { entries: [], skipped: [] });
      });
    });
  });

  describe('listing', () => {
    it('skips symlinks (file, folder, outside, dangling, loops) and never follows them', async () => {
      await withSandbox(async ({ root, outside, backend }) => {
        fs.writeFileSync(path.join(root, 'real.txt'), 'real');
        fs.mkdirSync(path.join(root, 'dir'));
        fs.writeFileSync(path.join(root, 'dir', 'inner.txt'), 'inner');
        fs.writeFileSync(path.join(outside, 'secret.txt'), 'outside secret');
        fs.symlinkSync('real.txt', path.join(root, 'link-to-file'));
        fs.symlinkSync('dir', path.join(root, 'link-to-dir'));
        fs.symlinkSync(outside, path.join(root, 'link-outside'));
        fs.symlinkSync('/nonexistent/target', path.join(root, 'dangling'));
        fs.symlinkSync('loop-b', path.join(root, 'loop-a'));
        fs.symlinkSync('loop-a', path.join(root, 'loop-b'));
        fs.symlinkSync('self', path.join(root, 'self'));
        fs.symlinkSync('..', path.join(root, 'dir', 'up'));

        const listing = await backend.listDir('');
        assert.deepEqual(listing.entries.map((e) => `${e.path}:${e.kind}`).sort(), ['dir:dir', 'real.txt:file']);
        const skipped = new Map(listing.skipped.map((s) => [s.path, s.reason]));
        assert.deepEqual([...skipped.keys()].sort(), ['dangling', 'link-outside', 'link-to-dir', 'link-to-file', 'loop-a', 'loop-b', 'self']);
        for (const reason of skipped.values()) assert.equal(reason, 'symbolic link (not followed)');

        const all = await walk(backend);
        assert.deepEqual(all.map((e) => e.path), ['dir', 'dir/inner.txt', 'real.txt']);
        assert.deepEqual((await backend.listDir('dir')).skipped, [{ path: 'dir/up', reason: 'symbolic link (not followed)' }]);

        for (const link of ['link-to-file', 'link-to-dir', 'dangling', 'loop-a', 'self']) {
          assert.equal(await backend.stat(link), undefined, `stat(${link})`);
          await assert.rejects(backend.read(link), (e: unknown) => e instanceof StorageError || e instanceof UnsafePathError, `read(${link})`);
        }
        await assert.rejects(backend.read('link-to-file'), storageErrorMatching(/symbolic link/));
        // Listing through a symlinked folder: inside the root is allowed, outside refused, loops refused.
        await assert.rejects(backend.listDir('link-outside'), isUnsafe);
        await assert.rejects(backend.listDir('loop-a'), isUnsafe);
        await assert.rejects(backend.stat('link-outside/secret.txt'), isUnsafe);
        await assert.rejects(backend.read('link-outside/secret.txt'), isUnsafe);
      });
    });

    it('skips sockets and named pipes', async (t) => {
      await withSandbox(async ({ root, backend }) => {
        fs.writeFileSync(path.join(root, 'plain.txt'), 'x');
        const server = net.createServer();
        const socketPath = path.join(root, 'app.sock');
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(socketPath, resolve);
        });
        try {
          const fifo = spawnSync('mkfifo', [path.join(root, 'pipe')]);
          const haveFifo = fifo.status === 0;
          if (!haveFifo) t.diagnostic('mkfifo not available: named pipes not checked');
          const listing = await backend.listDir('');
          assert.deepEqual(listing.entries.map((e) => e.path), ['plain.txt']);
          const skipped = new Map(listing.skipped.map((s) => [s.path, s.reason]));
          assert.match(skipped.get('app.sock') ?? '', /socket/);
          if (haveFifo) {
            assert.match(skipped.get('pipe') ?? '', /named pipe/);
            assert.equal(await backend.stat('pipe'), undefined);
            // Reading a FIFO must neither hang nor succeed.
            await assert.rejects(backend.read('pipe'), storageErrorMatching(/named pipe/));
          }
          assert.equal(await backend.stat('app.sock'), undefined);
        } finally {
          await new Promise((resolve) => server.close(resolve));
        }
      });
    });

    it('skips unsafe names with a reason and omits engine-owned names', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.writeFileSync(path.join(root, 'ok.txt'), 'ok');
        fs.writeFileSync(path.join(root, 'back\\slash.txt'), 'b');
        fs.writeFileSync(path.join(root, 'ctl\u0001.txt'), 'c');
        fs.mkdirSync(path.join(root, 'new\nline'));
        fs.writeFileSync(path.join(root, `${TEMP_PREFIX}deadbeef`), 'temp');
        fs.mkdirSync(path.join(root, '.syncengine-trash'));
        fs.mkdirSync(path.join(root, '.sync_state'));
        const listing = await backend.listDir('');
        assert.deepEqual(listing.entries.map((e) => e.path), ['ok.txt']);
        assert.deepEqual(listing.skipped.map((s) => s.path).sort(), ['back\\slash.txt', 'ctl\u0001.txt', 'new\nline'].sort());
        for (const s of listing.skipped) assert.match(s.reason, /unsafe name/);
      });
    });

    it('a whole-tree listing without rules leaves out engine-owned names at every depth; a nested .syncignore applies from its folder on', async () => {
      await withSandbox(async ({ root, backend }) => {
        for (const rel of ['a/keep.log', 'a/b/keep.txt', 'c/d/drop.log', 'c/d/keep.txt', 'c/e/keep.log']) {
          fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
          fs.writeFileSync(path.join(root, rel), rel);
        }
        fs.writeFileSync(path.join(root, `a/b/${TEMP_PREFIX}1-x`), 'temp');
        fs.mkdirSync(path.join(root, 'a/.sync_state/pair'), { recursive: true });
        fs.writeFileSync(path.join(root, 'a/.sync_state/pair/base'), 'state');
        fs.mkdirSync(path.join(root, '.syncengine-trash/run'), { recursive: true });
        fs.writeFileSync(path.join(root, '.syncengine-trash/run/old.txt'), 'old');
        fs.writeFileSync(path.join(root, 'c/d/.syncignore'), '*.log\n');
        const listing = await backend.listTree!({ patterns: [], ignoreFiles: 'collect' });
        assert.deepEqual(listing.files.map((e) => e.path), ['a/b/keep.txt', 'a/keep.log', 'c/d/.syncignore', 'c/d/keep.txt', 'c/e/keep.log']);
        assert.deepEqual([...listing.dirs].sort(), ['a', 'a/b', 'c', 'c/d', 'c/e']);
        assert.deepEqual(listing.ignoreFiles, { 'c/d': '*.log\n' });
      });
    });

    it('omits an entry that vanishes between readdir and lstat; reports one that cannot be examined', async (t) => {
      await withSandbox(async ({ root, backend }) => {
        for (const name of ['a.txt', 'gone.txt', 'noaccess.txt']) fs.writeFileSync(path.join(root, name), name);
        const original = fs.lstatSync;
        t.mock.method(fsModule, 'lstatSync', ((p: fs.PathLike, options?: fs.StatSyncOptions) => {
          const name = path.basename(String(p));
          if (name === 'gone.txt') return undefined; // throwIfNoEntry: false and the file is gone
          if (name === 'noaccess.txt') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
          return original(p, options);
        }) as typeof fs.lstatSync);
        const listing = await backend.listDir('');
        assert.deepEqual(listing.entries.map((e) => e.path), ['a.txt']);
        assert.deepEqual(listing.skipped, [{ path: 'noaccess.txt', reason: 'cannot be examined: permission denied' }]);
      });
    });

    it('an unreadable folder being listed throws a non-transient StorageError naming it', async (t) => {
      await withSandbox(async ({ root, backend }) => {
        fs.mkdirSync(path.join(root, 'locked'));
        const original = fs.readdirSync;
        t.mock.method(fsModule, 'readdirSync', ((p: fs.PathLike, options?: unknown) => {
          if (path.basename(String(p)) === 'locked') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
          return (original as (p: fs.PathLike, o?: unknown) => unknown)(p, options);
        }) as typeof fs.readdirSync);
        await assert.rejects(backend.listDir('locked'), (error: unknown) => {
          assert.ok(error instanceof StorageError);
          assert.equal(error.transient, false);
          assert.match(error.message, /"locked".*permission denied/);
          return true;
        });
        // The parent still lists it: the caller decides what to do with the failure.
        assert.deepEqual((await backend.listDir('')).entries.map((e) => e.path), ['locked']);
      });
    });

    it('listing a file or a missing subfolder throws a StorageError', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.writeFileSync(path.join(root, 'file.txt'), 'x');
        await assert.rejects(backend.listDir('file.txt'), storageErrorMatching(/"file\.txt".*not a folder/));
        await assert.rejects(backend.listDir('missing'), storageErrorMatching(/"missing".*no such file or folder/));
      });
    });

    it('reports integer mtimes that match what was written, for many values', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.writeFileSync(path.join(root, 'seed.txt'), '');
        for (let i = 0; i < 200; i++) {
          const mtimeMs = 1_000_000_000_000 + Math.floor(Math.random() * 1_000_000_000_000);
          const entry = await backend.write('m.txt', streamOf('x'), { mtimeMs });
          assert.equal(entry.mtimeMs, mtimeMs);
          assert.equal(Math.floor(fs.statSync(path.join(root, 'm.txt')).mtimeMs), mtimeMs);
          assert.ok(Number.isInteger((await backend.listDir('')).entries.find((e) => e.path === 'm.txt')?.mtimeMs));
        }
      });
    });
  });

  describe('hostile trees', () => {
    it('refuses every operation through a symlinked folder that points outside the root', async () => {
      await withSandbox(async ({ root, outside, backend }) => {
        fs.writeFileSync(path.join(outside, 'victim.txt'), 'do not touch');
        fs.mkdirSync(path.join(outside, 'emptydir'));
        fs.symlinkSync(outside, path.join(root, 'out'));
        fs.mkdirSync(path.join(root, 'real'));
        fs.symlinkSync(outside, path.join(root, 'real', 'nested-out'));
        fs.writeFileSync(path.join(root, 'mine.txt'), 'mine');
        const before = fs.readdirSync(outside).sort();

        for (const dir of ['out', 'real/nested-out']) {
          await assert.rejects(backend.write(`${dir}/new.txt`, streamOf('evil')), isUnsafe, `write ${dir}/new.txt`);
          await assert.rejects(backend.write(`${dir}/victim.txt`, streamOf('evil')), isUnsafe, `overwrite ${dir}/victim.txt`);
          await assert.rejects(backend.write(`${dir}/deep/er/new.txt`, streamOf('evil')), isUnsafe, 'mkdir -p through the link');
          await assert.rejects(backend.deleteFile(`${dir}/victim.txt`), isUnsafe);
          await assert.rejects(backend.mkdir(`${dir}/newdir`), isUnsafe);
          await assert.rejects(backend.mkdir(`${dir}/new/deeper`), isUnsafe);
          await assert.rejects(backend.rmdirIfEmpty(`${dir}/emptydir`), isUnsafe);
          await assert.rejects(backend.rename('mine.txt', `${dir}/mine.txt`), isUnsafe);
          await assert.rejects(backend.rename(`${dir}/victim.txt`, 'stolen.txt'), isUnsafe);
          await assert.rejects(backend.copyWithin('mine.txt', `${dir}/copy.txt`), isUnsafe);
          await assert.rejects(backend.copyWithin(`${dir}/victim.txt`, 'copy.txt'), isUnsafe);
          await assert.rejects(backend.read(`${dir}/victim.txt`), isUnsafe);
          await assert.rejects(backend.stat(`${dir}/victim.txt`), isUnsafe);
          await assert.rejects(backend.listDir(dir), isUnsafe);
        }
        assert.deepEqual(fs.readdirSync(outside).sort(), before);
        assert.equal(fs.readFileSync(path.join(outside, 'victim.txt'), 'utf8'), 'do not touch');
        assert.ok(fs.existsSync(path.join(outside, 'emptydir')));
        assert.equal(fs.readFileSync(path.join(root, 'mine.txt'), 'utf8'), 'mine');
        assert.ok(!fs.existsSync(path.join(root, 'stolen.txt')));
        assert.ok(!fs.existsSync(path.join(root, 'copy.txt')));
      });
    });

    it('refuses to create folders through a dangling symlink or a symlink loop', async () => {
      await withSandbox(async ({ parent, root, backend }) => {
        const target = path.join(parent, 'would-be-created');
        fs.symlinkSync(target, path.join(root, 'dangling'));
        fs.symlinkSync('loop2', path.join(root, 'loop1'));
        fs.symlinkSync('loop1', path.join(root, 'loop2'));
        await assert.rejects(backend.write('dangling/x.txt', streamOf('evil')), isUnsafe);
        await assert.rejects(backend.mkdir('dangling/sub'), isUnsafe);
        await assert.rejects(backend.write('loop1/x.txt', streamOf('evil')), isUnsafe);
        assert.ok(!fs.existsSync(target));
      });
    });

    it('allows a symlinked folder that stays inside the root', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.mkdirSync(path.join(root, 'real'));
        fs.symlinkSync('real', path.join(root, 'alias'));
        await backend.write('alias/file.txt', streamOf('through alias'));
        assert.equal(fs.readFileSync(path.join(root, 'real', 'file.txt'), 'utf8'), 'through alias');
      });
    });

    it('write replaces a symlink at the target instead of writing through it; deleteFile removes only the link', async () => {
      await withSandbox(async ({ root, outside, backend }) => {
        const victim = path.join(outside, 'victim.txt');
        fs.writeFileSync(victim, 'outside content');
        fs.symlinkSync(victim, path.join(root, 'link.txt'));
        fs.symlinkSync(victim, path.join(root, 'link2.txt'));
        await backend.write('link.txt', streamOf('new content'));
        assert.equal(fs.readFileSync(victim, 'utf8'), 'outside content');
        assert.ok(fs.lstatSync(path.join(root, 'link.txt')).isFile());
        assert.equal(fs.readFileSync(path.join(root, 'link.txt'), 'utf8'), 'new content');
        await backend.deleteFile('link2.txt');
        assert.ok(!fs.existsSync(path.join(root, 'link2.txt')));
        assert.equal(fs.readFileSync(victim, 'utf8'), 'outside content');
      });
    });
  });

  describe('readFileAndStat', () => {
    it('reads the whole file and tells the entry as opened and as read; refuses symlinks and folders like read', async () => {
      await withSandbox(async ({ root, outside, backend }) => {
        const content = Buffer.from('x'.repeat(70_000) + 'end'); // more than one read may return
        fs.writeFileSync(path.join(root, 'f.bin'), content);
        fs.writeFileSync(path.join(root, 'empty'), '');
        const read = await backend.readFileAndStat('f.bin', content.length);
        assert.deepEqual(read.data, content);
        const stat = await backend.stat('f.bin');
        assert.deepEqual(read.opened, stat);
        assert.deepEqual(read.after, stat);
        const empty = await backend.readFileAndStat('empty', 0);
        assert.equal(empty.data?.length, 0);
        // A file larger than allowed (it grew since it was listed) is not read.
        const tooBig = await backend.readFileAndStat('f.bin', content.length - 1);
        assert.equal(tooBig.data, undefined);
        assert.deepEqual(tooBig.opened, stat);
        assert.deepEqual(empty.opened, await backend.stat('empty'));
        fs.writeFileSync(path.join(outside, 'secret'), 'outside');
        fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'link'));
        fs.mkdirSync(path.join(root, 'dir'));
        await assert.rejects(backend.readFileAndStat('link', 100), (e: unknown) => e instanceof StorageError && /symbolic link/.test(e.message));
        await assert.rejects(backend.readFileAndStat('dir', 100), (e: unknown) => e instanceof StorageError && /folder/.test(e.message));
        await assert.rejects(backend.readFileAndStat('missing', 100), StorageError);
      });
    });
  });

  describe('create-only writes', () => {
    it('ifAbsent refuses a file or folder at the path, like the engine check it replaces, and replaces a symlink as any write does; nothing is left behind', async () => {
      await withSandbox(async ({ root, outside, backend }) => {
        assert.equal(await backend.canWriteIfAbsent(), true);
        fs.mkdirSync(path.join(root, 'folder'));
        fs.writeFileSync(path.join(root, 'file.txt'), 'theirs');
        for (const target of ['folder', 'file.txt']) {
          await assert.rejects(backend.write(target, Buffer.from('ours'), { ifAbsent: true }), TargetExistsError, target);
          await assert.rejects(backend.write(target, streamOf('ours'), { ifAbsent: true }), TargetExistsError, target);
        }
        assert.ok(fs.statSync(path.join(root, 'folder')).isDirectory());
        assert.equal(fs.readFileSync(path.join(root, 'file.txt'), 'utf8'), 'theirs');
        // A symlink is not a file the engine syncs (listings skip it): a write replaces the link.
        fs.symlinkSync(path.join(outside, 'nowhere'), path.join(root, 'link.txt'));
        await backend.write('link.txt', Buffer.from('ours'), { ifAbsent: true });
        assert.ok(fs.lstatSync(path.join(root, 'link.txt')).isFile());
        assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith(TEMP_PREFIX)), [], 'no temporary file left');
      });
    });
  });

  describe('permissions', () => {
    it('keeps the mode of a replaced file; new files get the default mode', async () => {
      await withSandbox(async ({ root, backend }) => {
        for (const mode of [0o640, 0o600, 0o755, 0o444]) {
          const file = path.join(root, `m${mode.toString(8)}.txt`);
          fs.writeFileSync(file, 'old');
          fs.chmodSync(file, mode);
          await backend.write(path.basename(file), streamOf('new'));
          assert.equal(fs.statSync(file).mode & 0o7777, mode, `mode ${mode.toString(8)} kept`);
          assert.equal(fs.readFileSync(file, 'utf8'), 'new');
        }
        // Set-id bits are not carried over to new content.
        const setuid = path.join(root, 'setuid.sh');
        fs.writeFileSync(setuid, 'old');
        fs.chmodSync(setuid, 0o4755);
        await backend.write('setuid.sh', streamOf('new'));
        assert.equal(fs.statSync(setuid).mode & 0o7777, 0o755);
        // New file: the same mode as a file created by plain fs calls (0666 minus the umask).
        const reference = path.join(root, 'reference.txt');
        fs.writeFileSync(reference, 'ref');
        await backend.write('brand-new.txt', streamOf('new'));
        assert.equal(fs.statSync(path.join(root, 'brand-new.txt')).mode & 0o7777, fs.statSync(reference).mode & 0o7777);
      });
    });

    it('unreadable files and folders (checked as an unprivileged user)', async (t) => {
      // root ignores permission bits, so when the tests run as root the checks run in a child
      // process as uid/gid 65534 (nobody); otherwise in a child as the current user.
      await withSandbox(async ({ parent, root }) => {
        const modulePath = path.resolve(__dirname, '../src/backends/local.js');
        fs.chmodSync(parent, 0o755);
        fs.chmodSync(root, 0o755);
        fs.writeFileSync(path.join(root, 'readable.txt'), 'readable');
        fs.writeFileSync(path.join(root, 'secret.txt'), 'secret');
        fs.chmodSync(path.join(root, 'secret.txt'), 0o000);
        fs.mkdirSync(path.join(root, 'locked'));
        fs.writeFileSync(path.join(root, 'locked', 'inner.txt'), 'inner');
        fs.chmodSync(path.join(root, 'locked'), 0o000);
        fs.mkdirSync(path.join(root, 'ro'));
        fs.writeFileSync(path.join(root, 'ro', 'existing.txt'), 'existing');
        fs.chmodSync(path.join(root, 'ro', 'existing.txt'), 0o644);
        fs.chmodSync(path.join(root, 'ro'), 0o555);

        const script = `
          const { LocalBackend } = require(process.env.MODULE_PATH);
          const { Readable } = require('node:stream');
          const outcome = (p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, name: e.constructor.name, message: e.message, transient: e.transient }));
          (async () => {
            const b = new LocalBackend(process.env.ROOT);
            const result = {
              list: await outcome(b.listDir('')),
              listLocked: await outcome(b.listDir('locked')),
              readSecret: await outcome(b.read('secret.txt').then((s) => { s.destroy(); return 'opened'; })),
              writeRo: await outcome(b.write('ro/existing.txt', Readable.from([Buffer.from('new')]))),
              writeRoNew: await outcome(b.write('ro/new.txt', Readable.from([Buffer.from('new')]))),
              deleteRo: await outcome(b.deleteFile('ro/existing.txt')),
            };
            process.stdout.write(JSON.stringify(result));
          })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(2); });
        `;
        const child = spawnSync(process.execPath, ['-e', script], {
          env: { ...process.env, MODULE_PATH: modulePath, ROOT: root },
          encoding: 'utf8',
          timeout: 30_000,
          ...(isRoot ? { uid: 65534, gid: 65534 } : {}),
        });
        if (child.status !== 0) {
          const why = `${child.error?.message ?? ''} ${child.stderr ?? ''}`.trim();
          if (/Cannot find module|EACCES|permission denied|EPERM/i.test(why)) {
            t.skip(`cannot run the backend as an unprivileged user here: ${why.split('\n')[0]}`);
            return;
          }
          assert.fail(`child failed: ${why}`);
        }
        type Outcome = { ok: boolean; v?: unknown; name?: string; message?: string; transient?: boolean };
        const r = JSON.parse(child.stdout) as Record<string, Outcome>;
        const list = r.list?.v as { entries: { path: string }[]; skipped: { path: string; reason: string }[] };
        assert.deepEqual(list.entries.map((e) => e.path).sort(), ['readable.txt', 'ro']);
        assert.deepEqual(
          list.skipped.sort((a, b) => a.path.localeCompare(b.path)),
          [
            { path: 'locked', reason: 'unreadable folder (permission denied)' },
            { path: 'secret.txt', reason: 'unreadable file (permission denied)' },
          ],
        );
        assert.equal(r.listLocked?.ok, false);
        assert.equal(r.listLocked?.name, 'StorageError');
        assert.equal(r.listLocked?.transient, false);
        assert.match(r.listLocked?.message ?? '', /"locked".*permission denied/);
        assert.equal(r.readSecret?.ok, false);
        assert.match(r.readSecret?.message ?? '', /read "secret\.txt": permission denied/);
        for (const key of ['writeRo', 'writeRoNew']) {
          assert.equal(r[key]?.ok, false, key);
          assert.equal(r[key]?.name, 'StorageError', key);
          assert.match(r[key]?.message ?? '', /permission denied/, key);
        }
        assert.equal(r.deleteRo?.ok, false);
        assert.match(r.deleteRo?.message ?? '', /delete "ro\/existing\.txt": permission denied/);
        assert.equal(fs.readFileSync(path.join(root, 'ro', 'existing.txt'), 'utf8'), 'existing');
        fs.chmodSync(path.join(root, 'ro'), 0o755);
        assert.deepEqual(tempFilesIn(root), []);
      });
    });
  });

  describe('writes', () => {
    it('a failed write leaves no temp file on disk and passes the source error through', async () => {
      await withSandbox(async ({ root, backend }) => {
        await backend.write('dir/doc.txt', streamOf('old'));
        const sourceError = new Error('remote read broke');
        await assert.rejects(backend.write('dir/doc.txt', failingSource(4, 100_000, sourceError)), (e: unknown) => e === sourceError);
        assert.deepEqual(tempFilesIn(root), []);
        assert.equal(fs.readFileSync(path.join(root, 'dir', 'doc.txt'), 'utf8'), 'old');

        const controller = new AbortController();
        const source = generatedSource(32 * 1024 * 1024, { chunkSize: 64 * 1024, delayMs: 1 });
        await assert.rejects(
          backend.write('dir/doc.txt', source.stream(), { signal: controller.signal, onBytes: (b) => b > 100_000 && controller.abort() }),
          (e: unknown) => (e as Error).name === 'AbortError',
        );
        assert.deepEqual(tempFilesIn(root), []);
        assert.equal(fs.readFileSync(path.join(root, 'dir', 'doc.txt'), 'utf8'), 'old');
      });
    });

    it('the temp file lives in the target folder and is named with the engine prefix', async () => {
      await withSandbox(async ({ root, backend }) => {
        let seen: string[] = [];
        await backend.write('folder/big.bin', generatedSource(2 * 1024 * 1024, { chunkSize: 64 * 1024 }).stream(), {
          onBytes: () => {
            if (seen.length === 0) seen = fs.readdirSync(path.join(root, 'folder'));
          },
        });
        assert.equal(seen.length, 1);
        assert.match(seen[0] as string, new RegExp(`^${TEMP_PREFIX.replace(/[.-]/g, '\\$&')}${process.pid}-[0-9a-f]{12}[0-9a-z]+$`), 'the name tells which process wrote it');
        assert.deepEqual(fs.readdirSync(path.join(root, 'folder')), ['big.bin']);
      });
    });

    it('a write whose source is never consumed is released on early failure', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.mkdirSync(path.join(root, 'folder'));
        const source = streamOf('data');
        await assert.rejects(backend.write('folder', source), storageErrorMatching(/write "folder": a folder is in the way/));
        assert.ok(source.destroyed);
        const unsafe = streamOf('data');
        await assert.rejects(backend.write('../x', unsafe), isUnsafe);
        assert.ok(unsafe.destroyed);
      });
    });
  });

  describe('error messages', () => {
    it('name the operation, the path and the cause', async () => {
      await withSandbox(async ({ root, backend }) => {
        fs.writeFileSync(path.join(root, 'f.txt'), 'file');
        fs.mkdirSync(path.join(root, 'dir'));
        await assert.rejects(backend.write('f.txt/child.txt', streamOf('x')), storageErrorMatching(/^Cannot write "f\.txt\/child\.txt": a parent is a file, not a folder$/));
        await assert.rejects(backend.write('f.txt/a/b/c.txt', streamOf('x')), storageErrorMatching(/a parent is a file, not a folder/));
        await assert.rejects(backend.write('dir', streamOf('x')), storageErrorMatching(/^Cannot write "dir": a folder is in the way$/));
        await assert.rejects(backend.deleteFile('dir'), storageErrorMatching(/^Cannot delete "dir": it is a folder, not a file$/));
        await assert.rejects(backend.mkdir('f.txt'), storageErrorMatching(/^Cannot create folder "f\.txt": a file is in the way$/));
        await assert.rejects(backend.mkdir('f.txt/sub'), storageErrorMatching(/^Cannot create folder "f\.txt\/sub"/));
        await assert.rejects(backend.read('missing.txt'), storageErrorMatching(/^Cannot read "missing\.txt": no such file or folder \(ENOENT\)$/));
        await assert.rejects(backend.read('dir'), storageErrorMatching(/^Cannot read "dir": it is a folder$/));
        await assert.rejects(backend.rename('missing.txt', 'x.txt'), storageErrorMatching(/^Cannot move "missing\.txt" to "x\.txt": no such file or folder/));
        await assert.rejects(backend.rename('dir', 'dir/inside'), storageErrorMatching(/cannot be moved into itself/));
        await assert.rejects(backend.copyWithin('dir', 'dir2'), storageErrorMatching(/^Cannot copy "dir" to "dir2": "dir" is not a regular file$/));
        await assert.rejects(backend.deleteFile(''), storageErrorMatching(/root folder/));
        await backend.rmdirIfEmpty(''); // the root is never removed
        assert.ok(fs.existsSync(root));
      });
    });

    it('map Node error codes to words, transient only for temporary conditions', () => {
      const make = (code: string) => Object.assign(new Error(`${code}: raw message`), { code, syscall: 'open' });
      const cases: [string, RegExp, boolean][] = [
        ['ENOSPC', /disk full/, false],
        ['EACCES', /permission denied/, false],
        ['EPERM', /permission denied/, false],
        ['EROFS', /read-only file system/, false],
        ['ENOENT', /no such file or folder/, false],
        ['EDQUOT', /quota/, false],
        ['EBUSY', /busy/, true],
        ['EAGAIN', /temporarily/, true],
        ['EMFILE', /too many open files/, true],
        ['ENFILE', /too many open files/, true],
        ['ETIMEDOUT', /timed out/, true],
      ];
      for (const [code, words, transient] of cases) {
        const error = toStorageError('write', 'a/b.txt', make(code));
        assert.ok(error instanceof StorageError);
        assert.match(error.message, new RegExp(`^Cannot write "a/b\\.txt": .*\\(${code}\\)$`));
        assert.match(error.message, words);
        assert.equal(error.transient, transient, code);
        assert.equal((error as StorageError & { cause?: unknown }).cause instanceof Error, true);
      }
      const odd = toStorageError('read', 'x', Object.assign(new Error('EWEIRD: something odd'), { code: 'EWEIRD' }));
      assert.match(odd.message, /^Cannot read "x": EWEIRD: something odd$/);
      const already = new UnsafePathError('../x', 'test');
      assert.equal(toStorageError('read', '../x', already), already);
    });
  });

  describe('rename and copyWithin', () => {
    it('rename keeps the inode, creates the target parent, and refuses an existing empty folder', async () => {
      await withSandbox(async ({ root, backend }) => {
        await backend.write('a.txt', streamOf('a'));
        const before = fs.statSync(path.join(root, 'a.txt')).ino;
        await backend.rename('a.txt', 'new/parent/a.txt');
        assert.equal(fs.statSync(path.join(root, 'new', 'parent', 'a.txt')).ino, before);
        assert.ok(!fs.existsSync(path.join(root, 'a.txt')));
        // POSIX rename() would silently replace an empty folder: we must refuse.
        fs.mkdirSync(path.join(root, 'src-dir'));
        fs.writeFileSync(path.join(root, 'src-dir', 'f'), 'f');
        fs.mkdirSync(path.join(root, 'empty'));
        await assert.rejects(backend.rename('src-dir', 'empty'), storageErrorMatching(/already exists/));
        assert.ok(fs.existsSync(path.join(root, 'src-dir', 'f')));
        // A file onto a symlink: the link is an existing target too.
        fs.symlinkSync('/nonexistent', path.join(root, 'link'));
        await assert.rejects(backend.rename('new/parent/a.txt', 'link'), storageErrorMatching(/already exists/));
      });
    });

    it('rename falls back to rename() where hard links fail, still refusing to overwrite', async (t) => {
      await withSandbox(async ({ root, backend }) => {
        t.mock.method(fsModule, 'linkSync', () => {
          throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
        });
        await backend.write('a.txt', streamOf('a'));
        await backend.write('b.txt', streamOf('b'));
        await backend.rename('a.txt', 'c.txt');
        assert.equal(fs.readFileSync(path.join(root, 'c.txt'), 'utf8'), 'a');
        await assert.rejects(backend.rename('c.txt', 'b.txt'), storageErrorMatching(/already exists/));
        assert.equal(fs.readFileSync(path.join(root, 'b.txt'), 'utf8'), 'b');
      });
    });

    it('copyWithin makes an independent copy that keeps the mtime', async () => {
      await withSandbox(async ({ root, backend }) => {
        await backend.write('orig.txt', streamOf('content'), { mtimeMs: 1_600_000_000_123 });
        await backend.copyWithin('orig.txt', 'sub/copy.txt');
        const copied = fs.statSync(path.join(root, 'sub', 'copy.txt'));
        assert.notEqual(copied.ino, fs.statSync(path.join(root, 'orig.txt')).ino);
        assert.equal(Math.floor(copied.mtimeMs), 1_600_000_000_123);
        // Editing one in place must not change the other (a hard link would).
        fs.appendFileSync(path.join(root, 'orig.txt'), ' more');
        assert.equal(fs.readFileSync(path.join(root, 'sub', 'copy.txt'), 'utf8'), 'content');
        await assert.rejects(backend.copyWithin('orig.txt', 'sub/copy.txt'), storageErrorMatching(/already exists/));
      });
    });

    it('hardLink makes a second name for the same content; falls back to a copy across devices', async (t) => {
      await withSandbox(async ({ root, backend }) => {
        await backend.write('orig.txt', streamOf('content'), { mtimeMs: 1_600_000_000_123 });
        await backend.hardLink('orig.txt', 'sub/linked.txt');
        assert.equal(fs.statSync(path.join(root, 'sub', 'linked.txt')).ino, fs.statSync(path.join(root, 'orig.txt')).ino);
        await assert.rejects(backend.hardLink('orig.txt', 'sub/linked.txt'), storageErrorMatching(/already exists/));

        t.mock.method(fsModule, 'linkSync', () => {
          throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
        });
        await backend.hardLink('orig.txt', 'other/copied.txt');
        const copied = fs.statSync(path.join(root, 'other', 'copied.txt'));
        assert.notEqual(copied.ino, fs.statSync(path.join(root, 'orig.txt')).ino);
        assert.equal(fs.readFileSync(path.join(root, 'other', 'copied.txt'), 'utf8'), 'content');
        assert.equal(Math.floor(copied.mtimeMs), 1_600_000_000_123);
      });
    });
  });
});
