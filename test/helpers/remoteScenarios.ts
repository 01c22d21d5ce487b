// The engine's scenario tests, two-way between a local folder and a remote backend: every row of
// the three-way table, a rename (replayed as a move, nothing re-uploaded), keep-both, and
// convergence. Each remote backend's test file calls runRemoteScenarios with its own store.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { LocalBackend } from '../../src/backends/local';
import type { Backend } from '../../src/backends/types';
import { SyncController } from '../../src/core/control';
import { runSync, type SyncRequest } from '../../src/core/engine';
import { EXPECTED, ROWS, T0 } from './table';

export interface RemoteFixture {
  /** A backend on a fresh, empty remote folder. */
  backend: Backend;
  cleanup: () => Promise<void>;
}

export interface RemoteScenarioOptions {
  /** The store keeps mtimes only to this precision (ms); the tests' mtimes are whole seconds anyway. */
  timeoutMs?: number;
}

async function readRemote(backend: Backend, p: string): Promise<string | undefined> {
  if (!(await backend.stat(p))) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of await backend.read(p)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function writeRemote(backend: Backend, p: string, content: string, mtimeMs: number): Promise<void> {
  await backend.write(p, Readable.from([Buffer.from(content)]), { mtimeMs });
}

export function runRemoteScenarios(name: string, makeRemote: () => Promise<RemoteFixture>, options: RemoteScenarioOptions = {}): void {
  const timeout = options.timeoutMs ?? 60_000;
  const withPair = async (body: (ctx: { local: string; remote: Backend; sync: (extra?: Partial<SyncRequest>) => ReturnType<typeof runSync> }) => Promise<void>) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-remote-scenario-'));
    const local = path.join(root, 'local');
    fs.mkdirSync(local);
    const { backend, cleanup } = await makeRemote();
    try {
      const sync = (extra: Partial<SyncRequest> = {}) =>
        runSync({ source: new LocalBackend(local), destination: backend, stateDir: path.join(root, 'state'), ...extra });
      await body({ local, remote: backend, sync });
    } finally {
      await backend.close().catch(() => undefined);
      await cleanup();
      fs.rmSync(root, { recursive: true, force: true });
    }
  };

  describe(`${name}: engine scenarios two-way with a local folder`, () => {
    for (const [row, [base, source, destination]] of Object.entries(ROWS)) {
      it(row, { timeout }, async () => {
        await withPair(async ({ local, remote, sync }) => {
          const content = (e: { hash?: string }) => e.hash!.slice(2, -1);
          const writeLocal = (p: string, c: string, mtimeMs: number) => {
            fs.writeFileSync(path.join(local, p), c);
            fs.utimesSync(path.join(local, p), new Date(), new Date(mtimeMs));
          };
          writeLocal('bystander', 'b', T0);
          if (base) {
            writeLocal('f', content(base), T0);
            const first = await sync();
            assert.deepEqual(first.stats.errors, []);
          } else {
            await sync();
          }
          if (!source) fs.rmSync(path.join(local, 'f'), { force: true });
          else if (!base || content(source) !== content(base)) writeLocal('f', content(source), source.mtimeMs);
          if (!destination) await remote.deleteFile('f');
          else if (!base || content(destination) !== content(base)) await writeRemote(remote, 'f', content(destination), destination.mtimeMs);
          const before = { src: fs.existsSync(path.join(local, 'f')) ? fs.readFileSync(path.join(local, 'f'), 'utf8') : undefined, dst: await readRemote(remote, 'f') };
          const result = await sync({ options: { conflict: 'manual' } });
          assert.deepEqual(result.stats.errors, []);
          const after = { src: fs.existsSync(path.join(local, 'f')) ? fs.readFileSync(path.join(local, 'f'), 'utf8') : undefined, dst: await readRemote(remote, 'f') };
          const expected = EXPECTED['two-way'][row]!;
          const wanted =
            expected === 'upload' ? { src: before.src, dst: before.src }
            : expected === 'download' ? { src: before.dst, dst: before.dst }
            : expected === 'delete-destination' ? { src: before.src, dst: undefined }
            : expected === 'delete-source' ? { src: undefined, dst: before.dst }
            : before;
          assert.deepEqual(after, wanted, `${row}: expected ${expected}`);
          const again = await sync({ options: { conflict: 'manual' } });
          const c = again.plan.counts;
          assert.equal(c.upload + c.download + c.deleteSource + c.deleteDestination + c.record, 0, 'converged');
        });
      });
    }

    it('a local rename is replayed as a move on the remote: nothing re-uploaded', { timeout }, async () => {
      await withPair(async ({ local, remote, sync }) => {
        fs.mkdirSync(path.join(local, 'docs'));
        fs.writeFileSync(path.join(local, 'docs', 'report.txt'), 'r'.repeat(50_000));
        fs.writeFileSync(path.join(local, 'keep.txt'), 'k');
        await sync();
        fs.renameSync(path.join(local, 'docs', 'report.txt'), path.join(local, 'docs', 'final report é.txt'));
        const result = await sync();
        assert.deepEqual(result.stats.errors, []);
        assert.equal(result.stats.uploaded, 0);
        assert.equal(result.stats.renamedDestination, 1);
        assert.equal(await readRemote(remote, 'docs/report.txt'), undefined);
        assert.equal(await readRemote(remote, 'docs/final report é.txt'), 'r'.repeat(50_000));
      });
    });

    it('a file that appears on the remote between the plan and the upload is not overwritten', { timeout }, async () => {
      await withPair(async ({ local, remote, sync }) => {
        fs.writeFileSync(path.join(local, 'keep.txt'), 'k');
        await sync();
        fs.writeFileSync(path.join(local, 'new.txt'), 'local version');
        // The run is held after planning while someone else creates the same file on the server.
        const controller = new SyncController();
        const result = await sync({
          controller,
          onEvent: (e) => {
            if (e.type !== 'plan-ready') return;
            controller.pause();
            void writeRemote(remote, 'new.txt', 'written by someone else', Date.now()).finally(() => controller.resume());
          },
        });
        assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['new.txt', 'changed-during-sync']]);
        assert.equal(result.stats.uploaded, 0);
        assert.equal(await readRemote(remote, 'new.txt'), 'written by someone else');
      });
    });

    it('after an upload the next run finds nothing to do', { timeout }, async () => {
      await withPair(async ({ local, sync }) => {
        fs.mkdirSync(path.join(local, 'sub'));
        for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(local, 'sub', `f${i}.txt`), `file ${i}`);
        const first = await sync();
        assert.equal(first.stats.uploaded, 5);
        const next = await sync();
        assert.deepEqual(next.plan.counts, { ...next.plan.counts, upload: 0, download: 0, conflicts: 0, record: 0 });
      });
    });

    it('a cancel during a large upload ends the run at once, leaves no partial file, and the next run sends it', { timeout }, async () => {
      await withPair(async ({ local, remote, sync }) => {
        const big = randomBytes(48 * 1024 * 1024);
        fs.writeFileSync(path.join(local, 'big.bin'), big);
        fs.writeFileSync(path.join(local, 'small.txt'), 's');
        const controller = new SyncController();
        let cancelledAt = 0;
        const result = await sync({
          controller,
          onEvent: (event) => {
            if (event.type === 'file-progress' && event.path === 'big.bin' && event.bytes < event.total && cancelledAt === 0) {
              cancelledAt = Date.now();
              controller.cancel();
            }
          },
        });
        assert.ok(cancelledAt > 0, 'the upload reported progress before it ended');
        assert.equal(result.stats.cancelled, true);
        assert.ok(Date.now() - cancelledAt < 5000, `the run ended ${Date.now() - cancelledAt} ms after the cancel`);
        // An error the cancelled transfer left unheard would surface as an uncaught exception here.
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.equal(await remote.stat('big.bin'), undefined, 'nothing under the real name until the whole file is there');
        const next = await sync();
        assert.deepEqual(next.stats.errors, []);
        const sent: Buffer[] = [];
        for await (const chunk of await remote.read('big.bin')) sent.push(chunk as Buffer);
        assert.ok(Buffer.concat(sent).equals(big), 'the next run sent the whole file');
      });
    });

    it('a remote edit comes down; keep-both keeps both versions of a conflict on both sides', { timeout }, async () => {
      await withPair(async ({ local, remote, sync }) => {
        fs.writeFileSync(path.join(local, 'a.txt'), 'v1');
        fs.writeFileSync(path.join(local, 'keep.txt'), 'k');
        await sync();
        await writeRemote(remote, 'a.txt', 'remote edit', Date.now() + 60_000);
        const down = await sync();
        assert.equal(down.stats.downloaded, 1);
        assert.equal(fs.readFileSync(path.join(local, 'a.txt'), 'utf8'), 'remote edit');
        fs.writeFileSync(path.join(local, 'a.txt'), 'local side');
        await writeRemote(remote, 'a.txt', 'remote side!', Date.now() + 120_000);
        const result = await sync({ options: { conflict: 'keep-both' } });
        assert.deepEqual(result.stats.errors, []);
        // Whichever version won (stores that report upload times make the remote look newer or
        // equal), both versions end up on both sides: one under the name, one as the conflict copy.
        const names = fs.readdirSync(local).filter((n) => !n.startsWith('.sync'));
        const copy = names.find((n) => /^a\.conflict-(source|destination)-\d{8}-\d{6}\.txt$/.test(n));
        assert.ok(copy, names.join(', '));
        const localVersions = [fs.readFileSync(path.join(local, 'a.txt'), 'utf8'), fs.readFileSync(path.join(local, copy!), 'utf8')].sort();
        const remoteVersions = [await readRemote(remote, 'a.txt'), await readRemote(remote, copy!)].sort();
        assert.deepEqual(localVersions, ['local side', 'remote side!']);
        assert.deepEqual(remoteVersions, localVersions);
      });
    });
  });
}
