// Engine and CLI behaviour on real folders: renames, conflict strategies, first sync, guards,
// ignore rules, bad arguments, check-before-overwrite, pause/cancel, progress, retries, failure
// isolation, the lock, subset syncs and the hash cache.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { LocalBackend } from '../src/backends/local';
import type { Entry, KnownFiles, ListDirOptions, ListDirResult, WriteOptions } from '../src/backends/types';
import { ProgressLine, humanSummary } from '../src/cli/output';
import { emptyStats } from '../src/core/executor';
import type { Plan } from '../src/core/model';
import { DEFAULT_PLAN_OPTIONS } from '../src/core/options';
import { emptyCounts } from '../src/core/planner';
import { SyncController } from '../src/core/control';
import type { HashAlgorithm } from '../src/core/contentHash';
import { copyByTransfer } from '../src/core/copyByTransfer';
import { runSync, type SyncRequest } from '../src/core/engine';
import { StorageError } from '../src/core/errors';
import type { SyncEvent, SyncStats } from '../src/core/events';
import { OFF_THREAD_MIN_BYTES } from '../src/core/offThreadHash';
import { StateStore, pairId } from '../src/core/state';
import { CLI, Fixture, runCliProcess } from './helpers/fixture';

let fixture: Fixture | undefined;
function setup(): Fixture {
  fixture = new Fixture();
  return fixture;
}
afterEach(() => {
  fixture?.cleanup();
  fixture = undefined;
});

const HOUR = 3_600_000;
const past = (hours: number) => Date.now() - hours * HOUR;

function request(fx: Fixture, extra: Partial<SyncRequest> = {}): SyncRequest {
  const source = extra.source ?? new LocalBackend(fx.src);
  const destination = extra.destination ?? new LocalBackend(fx.dst);
  return { source, destination, stateDir: path.join(fx.src, '.sync_state', pairId(new LocalBackend(fx.src).id, new LocalBackend(fx.dst).id)), ...extra };
}

/** A real local backend with faults injected on chosen operations. */
class FaultyBackend extends LocalBackend {
  writeFaults = new Map<string, { error: () => Error; times: number }>();
  reads = 0;
  override async write(p: string, data: Readable | Buffer, options?: WriteOptions): Promise<Entry> {
    const fault = this.writeFaults.get(p);
    if (fault && fault.times > 0) {
      fault.times--;
      if (!Buffer.isBuffer(data)) data.resume();
      throw fault.error();
    }
    return super.write(p, data, options);
  }
  override async read(p: string, signal?: AbortSignal): Promise<Readable> {
    this.reads++;
    return super.read(p, signal);
  }
  override async readFile(p: string, signal?: AbortSignal): Promise<Buffer> {
    this.reads++;
    return super.readFile(p, signal);
  }
  override async readFileAndStat(p: string, maxBytes: number, signal?: AbortSignal): Promise<{ data: Buffer | undefined; opened: Entry; after: Entry }> {
    this.reads++;
    return super.readFileAndStat(p, maxBytes, signal);
  }
}

describe('two-way sync of two folders', () => {
  it('copies new files both ways and converges', async () => {
    const fx = setup();
    fx.write('src', 'a.txt', 'A');
    fx.write('src', 'deep/er/b.txt', 'B');
    fx.write('dst', 'c.txt', 'C');
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fx.files('src'), { 'a.txt': 'A', 'deep/er/b.txt': 'B', 'c.txt': 'C' });
    assert.deepEqual(fx.files('dst'), fx.files('src'));
    assert.equal(r.json!.done.uploaded, 2);
    assert.equal(r.json!.done.downloaded, 1);
    const again = await fx.sync();
    assert.equal(again.json!.counts.upload + again.json!.counts.download, 0);
  });

  it('keeps modification times on copies', async () => {
    const fx = setup();
    fx.write('src', 'a.txt', 'A', past(48));
    await fx.sync();
    const mtime = (side: string) => Math.floor(fs.statSync(path.join(side, 'a.txt')).mtimeMs);
    assert.equal(mtime(fx.dst), mtime(fx.src));
    assert.ok(mtime(fx.dst) < Date.now() - 47 * HOUR);
  });

  it('replays a rename as a move on the other side: the file is not re-uploaded', async () => {
    const fx = setup();
    fx.write('src', 'docs/report.pdf', 'x'.repeat(10_000));
    await fx.sync();
    const inode = fs.statSync(path.join(fx.dst, 'docs/report.pdf')).ino;
    fs.renameSync(path.join(fx.src, 'docs/report.pdf'), path.join(fx.src, 'docs/annual.pdf'));
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json!.counts.upload, 0);
    assert.equal(r.json!.done.renamedDestination, 1);
    assert.deepEqual(r.json!.renames, [{ side: 'destination', from: 'docs/report.pdf', to: 'docs/annual.pdf' }]);
    assert.equal(fs.statSync(path.join(fx.dst, 'docs/annual.pdf')).ino, inode, 'same file, moved');
    assert.deepEqual(fx.files('dst'), { 'docs/annual.pdf': 'x'.repeat(10_000) });
  });

  it('replays a folder move with one rename and removes the emptied folder', async () => {
    const fx = setup();
    for (const n of ['a', 'b', 'c/d']) fx.write('dst', `old/${n}`, `content of ${n}`);
    await fx.sync();
    fs.renameSync(path.join(fx.dst, 'old'), path.join(fx.dst, 'new'));
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json!.counts.download, 0);
    assert.deepEqual(r.json!.renames, [{ side: 'source', from: 'old', to: 'new', folder: true }]);
    assert.deepEqual(Object.keys(fx.files('src')).sort(), ['new/a', 'new/b', 'new/c/d']);
    assert.equal(fs.existsSync(path.join(fx.src, 'old')), false);
  });

  it('deletes propagate to the trash and emptied folders go away', async () => {
    const fx = setup();
    fx.write('src', 'keep.txt', 'k');
    fx.write('src', 'dir/gone.txt', 'g');
    fx.write('src', 'dir/gone2.txt', 'g2');
    fx.write('src', 'more/x', 'x');
    await fx.sync();
    fx.remove('src', 'dir');
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fx.files('dst'), { 'keep.txt': 'k', 'more/x': 'x' });
    assert.equal(fs.existsSync(path.join(fx.dst, 'dir')), false);
    assert.deepEqual(fx.trash('dst'), { 'dir/gone.txt': ['g'], 'dir/gone2.txt': ['g2'] });
  });
});

describe('conflicts on real folders', () => {
  async function conflicted(strategy: string) {
    const fx = setup();
    fx.write('src', 'f.txt', 'base');
    await fx.sync();
    fx.write('src', 'f.txt', 'source edit', past(2));
    fx.write('dst', 'f.txt', 'destination edit', past(1));
    const r = await fx.sync('--conflict', strategy);
    return { fx, r };
  }
  it('newest-wins: the newer edit wins, the other is in the trash', async () => {
    const { fx, r } = await conflicted('newest-wins');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.read('src', 'f.txt'), 'destination edit');
    assert.deepEqual(fx.trash('src')['f.txt'], ['source edit']);
  });
  it('source-wins and destination-wins', async () => {
    const a = await conflicted('source-wins');
    assert.equal(a.fx.read('dst', 'f.txt'), 'source edit');
    assert.deepEqual(a.fx.trash('dst')['f.txt'], ['destination edit']);
    a.fx.cleanup();
    const b = await conflicted('destination-wins');
    assert.equal(b.fx.read('src', 'f.txt'), 'destination edit');
    assert.deepEqual(b.fx.trash('src')['f.txt'], ['source edit']);
  });
  it('keep-both: both sides end with both versions', async () => {
    const { fx, r } = await conflicted('keep-both');
    assert.equal(r.code, 0, r.stderr);
    const files = fx.files('src');
    assert.deepEqual(fx.files('dst'), files);
    assert.equal(files['f.txt'], 'destination edit');
    const copy = Object.keys(files).find((p) => /^f\.conflict-source-\d{8}-\d{6}\.txt$/.test(p));
    assert.ok(copy, `conflict copy in ${Object.keys(files).join(', ')}`);
    assert.equal(files[copy!], 'source edit');
    const again = await fx.sync();
    assert.equal(again.json!.counts.upload + again.json!.counts.download + again.json!.counts.conflicts, 0);
  });
  it('manual: exit code 3, both versions untouched, reported again until resolved', async () => {
    const { fx, r } = await conflicted('manual');
    assert.equal(r.code, 3);
    assert.deepEqual(r.json!.conflicts, [{ path: 'f.txt', reason: 'both-modified' }]);
    assert.equal(fx.read('src', 'f.txt'), 'source edit');
    assert.equal(fx.read('dst', 'f.txt'), 'destination edit');
    const again = await fx.sync('--conflict', 'manual');
    assert.equal(again.code, 3);
    // Resolved by the user (same content on both sides): recorded, in sync.
    fx.write('dst', 'f.txt', 'source edit');
    const resolved = await fx.sync('--conflict', 'manual');
    assert.equal(resolved.code, 0);
  });
});

describe('first sync', () => {
  it('merge delete nothing and copies extras both ways', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    fx.write('dst', 'b', '2');
    fx.write('src', 'same', 'x', past(5));
    fx.write('dst', 'same', 'x', past(1));
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json!.firstSync, true);
    assert.deepEqual(fx.files('src'), { a: '1', b: '2', same: 'x' });
    assert.deepEqual(fx.files('dst'), fx.files('src'));
    assert.equal(r.json!.counts.record, 1, 'identical files are recorded, not copied');
  });
  it('--initial destination-wins settles differing files toward the destination', async () => {
    const fx = setup();
    fx.write('src', 'f', 'mine', past(1));
    fx.write('dst', 'f', 'theirs', past(5));
    const r = await fx.sync('--initial', 'destination-wins', '--conflict', 'manual');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.read('src', 'f'), 'theirs');
    assert.deepEqual(fx.trash('src')['f'], ['mine']);
  });
});

describe('safety guards', () => {
  it('refuses to propagate an emptied side, changes nothing, and --force overrides', async () => {
    const fx = setup();
    for (let i = 0; i < 5; i++) fx.write('src', `f${i}`, `${i}`);
    await fx.sync();
    for (let i = 0; i < 5; i++) fx.remove('src', `f${i}`);
    const r = await fx.sync();
    assert.equal(r.code, 4);
    assert.match(r.stderr, /source side is empty but had 5 files/);
    assert.equal(Object.keys(fx.files('dst')).length, 5, 'nothing deleted');
    const forced = await fx.sync('--force');
    assert.equal(forced.code, 0);
    assert.equal(Object.keys(fx.files('dst')).length, 0);
    assert.equal(Object.keys(fx.trash('dst')).length, 5, 'and still recoverable');
  });
  it('refuses a run that would delete more than --max-delete percent', async () => {
    const fx = setup();
    for (let i = 0; i < 10; i++) fx.write('src', `f${i}`, `${i}`);
    await fx.sync();
    for (let i = 0; i < 6; i++) fx.remove('src', `f${i}`);
    const r = await fx.sync();
    assert.equal(r.code, 4);
    assert.match(r.stderr, /delete 6 of 10 files \(60%\) on the destination side/);
    assert.equal(Object.keys(fx.files('dst')).length, 10);
    const plan = await fx.cli('plan', fx.src, fx.dst);
    assert.equal(plan.code, 4, 'the dry run reports the guard too');
    const allowed = await fx.sync('--max-delete', '70');
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(Object.keys(fx.files('dst')).length, 4);
  });
});

describe('ignore rules', () => {
  it('applies nested .syncignore files and --ignore-file to both sides', async () => {
    const fx = setup();
    fx.write('src', '.syncignore', '*.log\nbuild/\n!keep.log\n');
    fx.write('src', 'sub/.syncignore', 'secret.txt\n');
    fx.write('src', 'a.log', 'log');
    fx.write('src', 'keep.log', 'kept');
    fx.write('src', 'build/out.js', 'out');
    fx.write('src', 'sub/secret.txt', 's');
    fx.write('src', 'secret.txt', 'top level is not ignored');
    fx.write('src', 'notes.tmp', 'tmp');
    fx.write('dst', 'server.log', 'a destination log is ignored too');
    const ignoreFile = path.join(fx.root, 'extra-ignore');
    fs.writeFileSync(ignoreFile, '*.tmp\n');
    const r = await fx.sync('--ignore-file', ignoreFile);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(fx.files('dst')).sort(), ['.syncignore', 'keep.log', 'secret.txt', 'server.log', 'sub/.syncignore']);
    assert.equal(fx.read('src', 'server.log'), undefined);
  });
  it('never syncs the engine state or trash', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    await fx.sync();
    assert.ok(fs.existsSync(path.join(fx.src, '.sync_state')));
    assert.equal(fs.existsSync(path.join(fx.dst, '.sync_state')), false);
  });
});

describe('bad input', () => {
  const cases: [string[], RegExp][] = [
    [['frobnicate', 'a', 'b'], /Unknown command "frobnicate"/],
    [['sync', 'only-one'], /needs a source and a destination/],
    [['sync', 'SRC', 'DST', '--mode', 'sideways'], /Unknown sync mode "sideways"/],
    [['sync', 'SRC', 'DST', '--compare', 'vibes'], /Unknown comparison mode/],
    [['sync', 'SRC', 'DST', '--conflict', 'coin-flip'], /Unknown conflict strategy/],
    [['sync', 'SRC', 'DST', '--transfers', '0'], /--transfers must be a whole number/],
    [['sync', 'SRC', 'DST', '--max-delete', '150'], /--max-delete must be a percentage/],
    [['sync', 'SRC', 'DST', '--trash-days', 'soon'], /--trash-days must be a whole number/],
    [['sync', 'SRC', 'DST', '--bogus'], /Unknown option '--bogus'/],
    [['sync', 'SRC', 'gopher://host/x'], /Unknown scheme "gopher:\/\/"/],
    [['sync', 'SRC', 'sftp://me:secret@host/x'], /Put no password in the destination URL/],
    [['sync', 'SRC', 'DST', '--password', 'secret'], /Passwords are not taken on the command line/],
    [['sync', 'SRC', 'DST', '--accept-host-key', 'yes'], /--accept-host-key takes a fingerprint/],
    [['sync', 'SRC', 'DST', '--s3-endpoint', 'localhost:9000'], /--s3-endpoint must be an http/],
    [['sync', 'SRC', 's3://'], /not a valid URL|names no bucket/],
    [['sync', 'MISSING', 'DST'], /source folder .* does not exist/],
    [['sync', 'SRC', 'SRC'], /same folder/],
    [['sync', 'SRC', 'SRC/inner'], /inside one another/],
    [['sync', 'SRC', 'DST', '--ignore-file', 'NOFILE'], /Cannot read the ignore file/],
  ];
  for (const [args, message] of cases) {
    it(`${args.join(' ')} → exit 2 and nothing changes`, async () => {
      const fx = setup();
      fx.write('src', 'a', '1');
      const real = args.map((a) => a.replace('SRC', fx.src).replace('DST', fx.dst).replace('MISSING', path.join(fx.root, 'missing')).replace('NOFILE', path.join(fx.root, 'nofile')));
      const r = await fx.cli(...real);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.deepEqual(fx.files('dst'), {});
      assert.equal(fs.existsSync(path.join(fx.src, '.sync_state')), false);
    });
  }
  it('--json reports a usage error as JSON too', async () => {
    const fx = setup();
    const r = await fx.cli('sync', fx.src, fx.dst, '--json', '--mode', 'nope');
    assert.equal(r.code, 2);
    assert.equal(r.json?.exitCode, 2);
    assert.match(r.json?.error.message, /Unknown sync mode/);
  });
  // Node's recursive mkdir never returns there (mkdir answers ENOENT under an existing parent).
  it('a state folder that cannot be made (under /proc) is a prompt error; the destination is not created', { skip: !fs.existsSync('/proc/self') }, async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    const destination = path.join(fx.root, 'new-destination');
    const r = await runCliProcess(['sync', fx.src, destination, '--state-dir', '/proc/syncengine-no-such/state'], { timeoutMs: 20_000 });
    assert.equal(r.signal, null, 'the CLI hung and was killed');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Cannot create the sync state folder \/proc\/syncengine-no-such\/state\/\w+ \(ENOENT/);
    assert.equal(fs.existsSync(destination), false);
  });
  it('a destination under a file is a clear error, not a raw ENOTDIR', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    fx.write('dst', 'file', 'x');
    const r = await fx.cli('sync', fx.src, path.join(fx.dst, 'file', 'sub'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^syncengine: Cannot create folder "" \(the target folder\): a file is in the way\n$/);
    assert.deepEqual(fx.files('dst'), { file: 'x' });
  });
  it('a destination that disappeared after a sync is an error, not a re-creation', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    await fx.sync();
    fs.rmSync(fx.dst, { recursive: true });
    const r = await fx.sync();
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does not exist, although this pair was synced before/);
    assert.equal(fs.existsSync(fx.dst), false);
  });
});

/** `f` synced as "base", then edited on the source. */
async function syncedThenEdited(fx: Fixture, edit: string): Promise<void> {
  fx.write('src', 'f', 'base');
  await fx.sync();
  fx.write('src', 'f', edit);
}

/** A sync during which `change` happens once the plan is ready (after the scans, before any transfer). */
function syncChangedAfterPlan(fx: Fixture, change: () => void, extra: Partial<SyncRequest> = {}) {
  return runSync(
    request(fx, {
      ...extra,
      onEvent: (e: SyncEvent) => {
        if (e.type === 'plan-ready') change();
      },
    }),
  );
}

describe('check before overwrite', () => {
  it('a file changed after planning becomes a conflict and is not overwritten', async () => {
    const fx = setup();
    await syncedThenEdited(fx, 'source edit');
    // The user saves on the destination between the scan and the upload.
    const result = await syncChangedAfterPlan(fx, () => fx.write('dst', 'f', 'late destination edit', Date.now() + 5000));
    assert.equal(fx.read('dst', 'f'), 'late destination edit');
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    // The next run sees both edits and settles them by the strategy, keeping the loser.
    const next = await fx.sync();
    assert.equal(next.code, 0);
    assert.equal(fx.read('src', 'f'), 'late destination edit');
    assert.deepEqual(fx.trash('src')['f'], ['source edit']);
  });
});

/** The next run (conflicts left to the user) settles `f` without a conflict, both sides holding `content`. */
async function assertNextRunSettles(fx: Fixture, content: string): Promise<void> {
  const next = await fx.sync('--conflict', 'manual');
  assert.equal(next.code, 0, next.stderr);
  assert.deepEqual(next.json?.conflicts, []);
  assert.equal(fx.read('src', 'f'), content);
  assert.equal(fx.read('dst', 'f'), content);
}

const SECOND_EDIT = 'edit two, written during the upload';

/**
 * A synced file `f` edited on the source ("edit one"), then synced while a second edit lands as the
 * engine reads it: before the read's closing fstat (`during`), or just after the read.
 */
async function syncWithEditAtRead(fx: Fixture, during: boolean) {
  await syncedThenEdited(fx, 'edit one');
  class EditsAtRead extends LocalBackend {
    override async readFileAndStat(p: string, maxBytes: number, signal?: AbortSignal): Promise<{ data: Buffer | undefined; opened: Entry; after: Entry }> {
      const read = await super.readFileAndStat(p, maxBytes, signal);
      if (p !== 'f') return read;
      fx.write('src', 'f', SECOND_EDIT, Date.now() + 5000);
      return during ? { ...read, after: (await this.stat(p))! } : read;
    }
  }
  return runSync(request(fx, { source: new EditsAtRead(fx.src), options: { conflict: 'manual' } }));
}

describe('a file that changes while it is being copied', () => {
  it('a small file changed after the plan: nothing is written, the next run uploads it without a conflict', async () => {
    const fx = setup();
    await syncedThenEdited(fx, 'edit one');
    // The editor saves again between the plan and the transfer; the read sees another file.
    const result = await syncChangedAfterPlan(fx, () => fx.write('src', 'f', 'edit two, longer', Date.now() + 5000), { options: { conflict: 'manual' } });
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'f'), 'base');
    await assertNextRunSettles(fx, 'edit two, longer');
  });
  it('a streamed file changed before it is read: the next run finds both sides equal, without a conflict', async () => {
    const fx = setup();
    const size = 300 * 1024; // above SMALL_FILE_BYTES: streamed, checked with stat before and after
    fx.write('src', 'f', 'a'.repeat(size));
    await fx.sync();
    fx.write('src', 'f', 'b'.repeat(size));
    const result = await runSync(
      request(fx, {
        options: { conflict: 'manual' },
        onEvent: (e: SyncEvent) => {
          // The editor saves again between the check and the read: the upload carries the new bytes.
          if (e.type === 'file-start' && e.path === 'f') fx.write('src', 'f', 'c'.repeat(size + 1), Date.now() + 5000);
        },
      }),
    );
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'f'), 'c'.repeat(size + 1));
    await assertNextRunSettles(fx, 'c'.repeat(size + 1));
  });
  it('changed while it was read: what was read is recorded, the next run uploads the finished file, without a conflict', async () => {
    const fx = setup();
    const result = await syncWithEditAtRead(fx, true);
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'f'), 'edit one');
    await assertNextRunSettles(fx, SECOND_EDIT);
  });
  it('changed just after it was read: the next run uploads the finished file', async () => {
    const fx = setup();
    const result = await syncWithEditAtRead(fx, false);
    // The bytes held are one whole version, recorded as such; the newer one is the next run's.
    assert.deepEqual(result.stats.conflicts, []);
    assert.equal(fx.read('dst', 'f'), 'edit one');
    await assertNextRunSettles(fx, SECOND_EDIT);
  });
  it('a small file that grew large after the plan is not read whole: a change during the sync', async () => {
    const fx = setup();
    await syncedThenEdited(fx, 'edit one');
    const limits: number[] = [];
    class RecordsLimit extends LocalBackend {
      override async readFileAndStat(p: string, maxBytes: number, signal?: AbortSignal): Promise<{ data: Buffer | undefined; opened: Entry; after: Entry }> {
        limits.push(maxBytes);
        const read = await super.readFileAndStat(p, maxBytes, signal);
        assert.equal(read.data, undefined, 'nothing read beyond the planned size');
        return read;
      }
    }
    const result = await syncChangedAfterPlan(fx, () => fx.write('src', 'f', 'x'.repeat(1024 * 1024), Date.now() + 5000), { source: new RecordsLimit(fx.src) });
    assert.deepEqual(limits, ['edit one'.length], 'the read is limited to the size the plan saw');
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'f'), 'base');
  });
  it('a small file that vanished before it is read is a change during the sync, not a read error', async () => {
    const fx = setup();
    await syncedThenEdited(fx, 'edit one');
    const result = await syncChangedAfterPlan(fx, () => fs.rmSync(path.join(fx.src, 'f')));
    assert.deepEqual(result.stats.errors, []);
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['f', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'f'), 'base');
  });
});

describe('large files hashed apart from the transfer', () => {
  const large = (fill: string) => fill.repeat(OFF_THREAD_MIN_BYTES + 4096);

  it('the hash read on its own is recorded: a later touch uploads nothing', async () => {
    const fx = setup();
    fx.write('src', 'big.bin', large('a'), past(2));
    const hashedApart: string[] = [];
    class Counting extends LocalBackend {
      override async hashOffThread(p: string, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
        hashedApart.push(p);
        return super.hashOffThread(p, algorithm, signal);
      }
    }
    const first = await runSync(request(fx, { source: new Counting(fx.src) }));
    assert.equal(first.stats.uploaded, 1);
    assert.deepEqual(hashedApart, ['big.bin']);
    fx.write('src', 'big.bin', large('a'), past(1)); // same bytes, new mtime
    const next = await fx.sync();
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.json!.counts.upload, 0, 'the recorded hash matched the content');
    assert.equal(next.json!.counts.record, 1);
  });

  it('a large file the plan needs a hash of (equal sizes, first sync) is hashed on the worker; equal content is recorded, not copied', async () => {
    const fx = setup();
    fx.write('src', 'big.bin', large('a'), past(2));
    fx.write('dst', 'big.bin', large('a'), past(1));
    const hashedApart: string[] = [];
    class Counting extends LocalBackend {
      override async hashOffThread(p: string, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
        hashedApart.push(`${this === source ? 'source' : 'destination'}:${p}`);
        return super.hashOffThread(p, algorithm, signal);
      }
    }
    const source = new Counting(fx.src);
    const result = await runSync(request(fx, { source, destination: new Counting(fx.dst) }));
    assert.deepEqual(hashedApart.sort(), ['destination:big.bin', 'source:big.bin']);
    assert.equal(result.stats.uploaded + result.stats.downloaded, 0);
    assert.equal(result.stats.recorded, 1);
  });

  it('a hash read that saw newer bytes than were sent is not recorded: the next run sends the newer bytes', async () => {
    const fx = setup();
    fx.write('src', 'big.bin', large('a'), past(3));
    await fx.sync();
    // A new size, so that the scan needs no hash of it and the transfer is its first read.
    fx.write('src', 'big.bin', `${large('b')}+`, past(2));
    // The file changes (same size again) once the transfer has read it and before it is hashed.
    let sent: (() => void) | undefined;
    const readDone = new Promise<void>((resolve) => (sent = resolve));
    class ChangesBetweenReads extends LocalBackend {
      override async read(p: string, signal?: AbortSignal): Promise<Readable> {
        const stream = await super.read(p, signal);
        stream.once('end', () => {
          fx.write('src', 'big.bin', `${large('c')}+`, past(1));
          sent!();
        });
        return stream;
      }
      override async hashOffThread(p: string, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
        await readDone;
        return super.hashOffThread(p, algorithm, signal);
      }
    }
    const result = await runSync(request(fx, { source: new ChangesBetweenReads(fx.src), options: { conflict: 'manual' } }));
    assert.deepEqual(result.stats.conflicts.map((c) => [c.path, c.reason]), [['big.bin', 'changed-during-sync']]);
    assert.equal(fx.read('dst', 'big.bin')![0], 'b', 'what was read reached the destination');
    const next = await fx.sync('--conflict', 'manual');
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.json!.counts.upload, 1);
    assert.equal(fx.read('dst', 'big.bin'), `${large('c')}+`);
    assert.equal(fx.read('src', 'big.bin'), `${large('c')}+`);
  });
});

describe('executor control and events', () => {
  it('pause holds new transfers until resume; progress events come in order', async () => {
    const fx = setup();
    for (let i = 0; i < 40; i++) fx.write('src', `f${i}`, 'x'.repeat(1000));
    const controller = new SyncController();
    const events: SyncEvent[] = [];
    let completedWhilePaused = -1;
    const done = runSync(
      request(fx, {
        controller,
        limits: { transfers: 1 },
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'file-complete' && events.filter((x) => x.type === 'file-complete').length === 5) {
            controller.pause();
            const count = events.filter((x) => x.type === 'file-complete').length;
            setTimeout(() => {
              completedWhilePaused = events.filter((x) => x.type === 'file-complete').length - count;
              controller.resume();
            }, 150);
          }
        },
      }),
    );
    const result = await done;
    assert.equal(completedWhilePaused, 0, 'nothing completed while paused');
    assert.equal(result.stats.uploaded, 40);
    const types = [...new Set(events.map((e) => e.type))];
    for (const t of ['scan-start', 'scan-complete', 'plan-ready', 'sync-start', 'file-start', 'file-complete', 'totals', 'sync-complete']) assert.ok(types.includes(t as SyncEvent['type']), t);
    assert.ok(types.indexOf('scan-start') < types.indexOf('sync-start'));
    const last = events.filter((e) => e.type === 'totals').at(-1);
    assert.ok(last && last.type === 'totals' && last.doneFiles === 40 && last.doneBytes === 40_000);
  });

  it('cancel stops starting new work; the next run finishes without redoing what was done', async () => {
    const fx = setup();
    for (let i = 0; i < 30; i++) fx.write('src', `f${i}`, `${i}`);
    const controller = new SyncController();
    let completed = 0;
    const first = await runSync(
      request(fx, {
        controller,
        limits: { transfers: 1 },
        onEvent: (e) => {
          if (e.type === 'file-complete' && ++completed === 10) controller.cancel();
        },
      }),
    );
    assert.equal(first.stats.cancelled, true);
    assert.ok(first.stats.uploaded >= 10 && first.stats.uploaded < 30);
    const second = await fx.sync();
    assert.equal(second.code, 0);
    assert.equal(second.json!.done.uploaded, 30 - first.stats.uploaded, 'only the rest is uploaded');
    assert.equal(Object.keys(fx.files('dst')).length, 30);
  });

  it('a cancel while the destination is not reading the file ends the run cleanly, and closes the source', async () => {
    const fx = setup();
    fx.write('src', 'big.bin', Buffer.alloc(4 * 1024 * 1024, 7));
    const controller = new SyncController();
    let source: Readable | undefined;
    // A destination that takes one chunk, then stops reading (waits for acknowledgements, say) and
    // gives up on the abort without listening to its source any more: the source's abort error
    // then comes when nobody reads.
    class StallingBackend extends LocalBackend {
      override async write(_path: string, data: Buffer | Readable, options: WriteOptions = {}): Promise<Entry> {
        source = data as Readable;
        await new Promise<void>((resolve) => source!.once('data', () => resolve()));
        source.pause();
        controller.cancel();
        await new Promise((resolve) => setTimeout(resolve, 50)); // finishing its requests in flight
        options.signal?.throwIfAborted();
        throw new Error('not cancelled');
      }
    }
    const result = await runSync(request(fx, { destination: new StallingBackend(fx.dst), controller }));
    assert.equal(result.stats.cancelled, true);
    await new Promise((resolve) => setTimeout(resolve, 100)); // an unheard stream error would end the process here
    assert.equal(source!.destroyed, true, 'the source handed to the destination is closed');
    assert.deepEqual(fx.files('dst'), {});
    const next = await fx.sync();
    assert.equal(next.code, 0, next.stderr);
    assert.equal(fx.files('dst')['big.bin']?.length, 4 * 1024 * 1024);
  });

  it('a destination that fails without reading the whole file gets its source closed (no open file left behind)', async () => {
    const fx = setup();
    fx.write('src', 'big.bin', Buffer.alloc(4 * 1024 * 1024, 7));
    let source: Readable | undefined;
    class FailingBackend extends LocalBackend {
      override async write(_path: string, data: Buffer | Readable): Promise<Entry> {
        source = data as Readable;
        await new Promise<void>((resolve) => source!.once('data', () => resolve()));
        source.pause();
        throw new StorageError('the server refused the upload', false);
      }
    }
    const result = await runSync(request(fx, { destination: new FailingBackend(fx.dst) }));
    assert.deepEqual(result.stats.errors.map((e) => e.path), ['big.bin']);
    assert.equal(source!.destroyed, true);
  });

  it('a copy through a local temporary file (stores without a copy of their own) closes that file when the write fails', async () => {
    const fx = setup();
    fx.write('dst', 'big.bin', Buffer.alloc(9 * 1024 * 1024, 3)); // above the in-memory limit
    let source: Readable | undefined;
    class RefusingBackend extends LocalBackend {
      override async write(_path: string, data: Buffer | Readable): Promise<Entry> {
        source = data as Readable;
        throw new StorageError('the server refused the upload', false);
      }
    }
    await assert.rejects(copyByTransfer(new RefusingBackend(fx.dst), 'big.bin', 'copy.bin'), /refused/);
    assert.equal(source?.destroyed, true);
  });

  it('retries transient errors, isolates permanent ones, and converges next run', async () => {
    const fx = setup();
    for (const n of ['a', 'b', 'c']) fx.write('src', n, n);
    const destination = new FaultyBackend(fx.dst);
    destination.writeFaults.set('a', { error: () => new StorageError('connection reset', true), times: 1 });
    destination.writeFaults.set('b', { error: () => new StorageError('permission denied', false), times: 1 });
    const result = await runSync(request(fx, { destination }));
    assert.equal(fx.read('dst', 'a'), 'a', 'retried and succeeded');
    assert.equal(fx.read('dst', 'b'), undefined);
    assert.equal(fx.read('dst', 'c'), 'c', 'the rest goes on');
    assert.equal(result.stats.errors.length, 1);
    assert.match(result.stats.errors[0]!.message, /upload on the destination side failed: permission denied/);
    const next = await fx.sync();
    assert.equal(next.code, 0);
    assert.equal(next.json!.done.uploaded, 1, 'b was not marked synced, so it goes now');
    assert.equal(fx.read('dst', 'b'), 'b');
  });

  it('a second sync of the same pair while one runs is refused', async () => {
    const fx = setup();
    for (let i = 0; i < 20; i++) fx.write('src', `f${i}`, 'x');
    const controller = new SyncController();
    controller.pause();
    const running = runSync(request(fx, { controller }));
    await new Promise((r) => setTimeout(r, 50));
    const second = await fx.sync();
    assert.equal(second.code, 1);
    assert.match(second.stderr, /Another sync of this pair is running/);
    controller.resume();
    await running;
  });
});

describe('subset syncs', () => {
  it('--path syncs one file by the same rules and leaves the rest alone', async () => {
    const fx = setup();
    fx.write('src', 'a', 'a0');
    fx.write('src', 'dir/b', 'b0');
    await fx.sync();
    fx.write('src', 'a', 'a1 changed');
    fx.write('src', 'dir/b', 'b1 changed');
    fx.write('dst', 'dir/c', 'new at destination');
    const r = await fx.cli('sync', fx.src, fx.dst, '--json', '--path', 'a');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.read('dst', 'a'), 'a1 changed');
    assert.equal(fx.read('dst', 'dir/b'), 'b0');
    assert.equal(fx.read('src', 'dir/c'), undefined);
    // A subset sync of a file the other side changed too is a conflict, not an overwrite.
    fx.write('src', 'a', 'a2 source', past(2));
    fx.write('dst', 'a', 'a2 destination', past(1));
    const c = await fx.cli('sync', fx.src, fx.dst, '--json', '--path', 'a', '--conflict', 'manual');
    assert.equal(c.code, 3);
    assert.equal(fx.read('dst', 'a'), 'a2 destination');
    // A folder subset.
    const d = await fx.cli('sync', fx.src, fx.dst, '--json', '--path', 'dir');
    assert.equal(d.code, 0);
    assert.equal(fx.read('dst', 'dir/b'), 'b1 changed');
    assert.equal(fx.read('src', 'dir/c'), 'new at destination');
  });
  it('a deleted file synced alone is deleted on the other side, not guarded', async () => {
    const fx = setup();
    fx.write('src', 'a', 'a');
    fx.write('src', 'b', 'b');
    await fx.sync();
    fx.remove('src', 'a');
    const r = await fx.cli('sync', fx.src, fx.dst, '--json', '--path', 'a');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.read('dst', 'a'), undefined);
    assert.equal(fx.read('dst', 'b'), 'b');
  });
});

describe('hash cache', () => {
  it('re-hashes a file only when its size, mtime or inode changed', async () => {
    const fx = setup();
    for (let i = 0; i < 10; i++) fx.write('src', `f${i}`, `content ${i}`);
    await fx.sync();
    const source = new FaultyBackend(fx.src);
    const destination = new FaultyBackend(fx.dst);
    await runSync(request(fx, { source, destination }));
    assert.equal(source.reads + destination.reads, 0, 'no change: nothing read');
    // Touch one file (same content, new mtime): hashed once, recognised as unchanged, not copied.
    fs.utimesSync(path.join(fx.src, 'f3'), new Date(), new Date(Date.now() + 10_000));
    const touched = await runSync(request(fx, { source, destination }));
    assert.equal(source.reads, 1);
    assert.equal(touched.stats.uploaded, 0);
    assert.equal(touched.stats.recorded, 1);
    source.reads = 0;
    await runSync(request(fx, { source, destination }));
    assert.equal(source.reads, 0, 'the new mtime is remembered');
  });
});

describe('the content hash of a pair', () => {
  const sha128 = (data: string) => createHash('sha256').update(data).digest('hex').slice(0, 32);
  const md5 = (data: string) => createHash('md5').update(data).digest('hex');
  const WHOLE_SECOND = Math.floor(past(5) / 1000) * 1000;

  it('a new pair hashes with SHA-256 (first 128 bits), and its base says so', async () => {
    const fx = setup();
    fx.write('src', 'a.txt', 'alpha');
    fx.write('dst', 'b.txt', 'beta');
    const result = await runSync(request(fx));
    assert.equal(result.hashAlgorithm, 'sha256-128');
    const { table, hashAlgorithm } = new StateStore(request(fx).stateDir, { source: '', destination: '' }).loadTable();
    assert.equal(hashAlgorithm, 'sha256-128');
    for (const [p, text] of [['a.txt', 'alpha'], ['b.txt', 'beta']] as const) {
      const row = table.find(p);
      assert.equal(table.hash(row, 'source'), sha128(text), p);
      assert.equal(table.hash(row, 'destination'), sha128(text), p);
    }
  });

  it('a pair whose base holds MD5s (written by an earlier version) keeps MD5: renames are still found, same-size edits still seen', async () => {
    const fx = setup();
    const texts: Record<string, string> = { 'keep.txt': 'kept as it is', 'move.txt': 'this one moves', 'edit.txt': 'edit me please' };
    for (const [p, text] of Object.entries(texts)) fx.write('src', p, text, WHOLE_SECOND);
    await runSync(request(fx));
    // Rewrite the state as an earlier version left it: MD5s in the base, no hash cache.
    const stateDir = request(fx).stateDir;
    const store = new StateStore(stateDir, { source: new LocalBackend(fx.src).id, destination: new LocalBackend(fx.dst).id });
    const base = store.loadTable().table.toMap();
    for (const [p, entry] of base) for (const side of ['source', 'destination'] as const) entry[side].hash = md5(texts[p]!);
    store.hashAlgorithm = 'md5';
    fs.rmSync(path.join(stateDir, 'base.bin'));
    store.commit(base);
    for (const side of ['source', 'destination']) fs.rmSync(path.join(stateDir, `hashes-${side}.json`), { force: true });

    fs.renameSync(path.join(fx.src, 'move.txt'), path.join(fx.src, 'moved.txt'));
    fx.write('src', 'edit.txt', 'EDIT me please', WHOLE_SECOND + 60_000); // same size
    fs.utimesSync(path.join(fx.src, 'keep.txt'), new Date(), new Date(WHOLE_SECOND + 60_000)); // touched only
    const result = await runSync(request(fx));
    assert.equal(result.hashAlgorithm, 'md5');
    assert.equal(result.stats.renamedDestination, 1, 'the rename was recognised by its MD5');
    assert.equal(result.stats.uploaded, 1, 'only the edited file was sent');
    assert.equal(fx.read('dst', 'moved.txt'), 'this one moves');
    assert.equal(fx.read('dst', 'edit.txt'), 'EDIT me please');
    const after = new StateStore(stateDir, { source: '', destination: '' }).loadTable();
    assert.equal(after.hashAlgorithm, 'md5');
    assert.equal(after.table.hash(after.table.find('moved.txt'), 'destination'), md5('this one moves'));
    assert.equal(after.table.hash(after.table.find('edit.txt'), 'source'), md5('EDIT me please'));
  });

  it('hashes cached in another algorithm are not used (an equal file on both sides is not taken for a conflict)', async () => {
    for (const format of ['bare entries (first format)', 'with its algorithm']) {
      const fx = setup();
      fx.write('src', 'same.txt', 'identical content', WHOLE_SECOND);
      fx.write('dst', 'same.txt', 'identical content', WHOLE_SECOND + 3_600_000);
      const stateDir = request(fx).stateDir;
      fs.mkdirSync(stateDir, { recursive: true });
      const entries = { 'same.txt': ['identical content'.length, WHOLE_SECOND, null, md5('identical content')] };
      fs.writeFileSync(path.join(stateDir, 'hashes-source.json'), JSON.stringify(format === 'with its algorithm' ? { algorithm: 'md5', entries } : entries));
      const result = await runSync(request(fx));
      assert.equal(result.hashAlgorithm, 'sha256-128', format);
      assert.equal(result.stats.uploaded + result.stats.downloaded, 0, `${format}: the equal files were recognised`);
      assert.equal(result.stats.recorded, 1, format);
      fx.cleanup();
    }
  });
});

describe('what the last sync knew, for listings coarser than exact times', () => {
  /** A destination listed folder by folder (as remote stores are) that keeps what the engine tells its listings. */
  class ListingByFolder extends LocalBackend {
    known: (Promise<KnownFiles | undefined> | undefined)[] = [];
    constructor(root: string) {
      super(root);
      Object.defineProperty(this, 'listTreeColumns', { value: undefined });
      Object.defineProperty(this, 'listTree', { value: undefined });
    }
    override async listDir(dir: string, options?: ListDirOptions): Promise<ListDirResult> {
      if (dir === '') this.known.push(options?.known);
      return super.listDir(dir, options);
    }
  }
  const knownOfRun = async (fx: Fixture, extra: Partial<SyncRequest> = {}) => {
    const destination = new ListingByFolder(fx.dst);
    const before = Date.now();
    const result = await runSync(request(fx, { destination, ...extra }));
    const known = await destination.known[0];
    return { result, known, before, after: Date.now() };
  };

  it('listings are told the start of the last clean run and each file as it recorded it; runs with conflicts, errors or a subset do not move that time', async () => {
    const fx = setup();
    fx.write('src', 'a.txt', 'A', past(30));
    fx.write('src', 'deep/b.txt', 'BB', past(30));
    const first = await knownOfRun(fx);
    assert.equal(first.known, undefined, 'a first sync knows nothing');
    const second = await knownOfRun(fx);
    assert.ok(second.known !== undefined);
    assert.ok(second.known.listedAt >= first.before && second.known.listedAt <= first.after, 'the first run was clean: its start');
    const onDisk = fs.statSync(path.join(fx.dst, 'deep/b.txt'));
    assert.deepEqual(second.known.get('deep/b.txt'), { size: 2, mtimeMs: Math.floor(onDisk.mtimeMs) });
    assert.equal(second.known.get('nothing.txt'), undefined);

    // A run that writes something but leaves a conflict (manual strategy): the time stays.
    fx.write('src', 'new.txt', 'N', past(1));
    fx.write('src', 'a.txt', 'A from the source', past(1));
    fx.write('dst', 'a.txt', 'A from the destination', past(1));
    const third = await knownOfRun(fx, { options: { conflict: 'manual' } });
    assert.equal(third.result.stats.conflicts.length, 1);
    assert.equal(third.result.stats.uploaded, 1);
    const fourth = await knownOfRun(fx, { options: { conflict: 'manual' } });
    assert.equal(fourth.known?.listedAt, second.known.listedAt, 'not moved by a run that left a conflict');

    // A subset sync that writes something: the time stays.
    fx.write('dst', 'a.txt', 'A from the source', past(1)); // conflict settled by hand
    fx.write('src', 'deep/c.txt', 'C', past(1));
    await runSync(request(fx, { scope: ['deep'] }));
    const fifth = await knownOfRun(fx);
    assert.equal(fifth.known?.listedAt, second.known.listedAt, 'not moved by a subset sync');
    // That fifth run was whole and clean (it recorded a.txt as equal): its start from now on.
    const sixth = await knownOfRun(fx);
    assert.ok(sixth.known !== undefined && sixth.known.listedAt >= fifth.before && sixth.known.listedAt <= fifth.after, 'moved by a clean run');
  });
});

describe('housekeeping', () => {
  it('removes trash runs older than the retention period and keeps recent ones', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    fx.write('dst', '.syncengine-trash/20200101-000000-abcdef/old.txt', 'old');
    const recent = new Date(Date.now() - 86_400_000);
    const stamp = recent.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    fx.write('dst', `.syncengine-trash/${stamp}-123456/recent.txt`, 'recent');
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(fx.trash('dst'), { 'recent.txt': ['recent'] });
  });

  it('removes temporary files left by killed transfers, and only those', async () => {
    const fx = setup();
    fx.write('src', 'a', '1');
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
    const old = Date.now() - 5 * 60_000;
    fx.write('dst', `sub/.syncengine-tmp-${deadPid}-aaaa`, 'half a file', old);
    fx.write('dst', `.syncengine-tmp-${process.pid}-bbbb`, 'a write in progress', old);
    fx.write('dst', `.syncengine-tmp-${deadPid}-cccc`, 'too recent to judge');
    const plan = await fx.cli('plan', fx.src, fx.dst);
    assert.equal(plan.code, 0);
    assert.ok(fs.existsSync(path.join(fx.dst, 'sub', `.syncengine-tmp-${deadPid}-aaaa`)), 'a dry run removes nothing');
    await fx.sync();
    assert.equal(fs.existsSync(path.join(fx.dst, 'sub', `.syncengine-tmp-${deadPid}-aaaa`)), false);
    assert.ok(fs.existsSync(path.join(fx.dst, `.syncengine-tmp-${process.pid}-bbbb`)));
    assert.ok(fs.existsSync(path.join(fx.dst, `.syncengine-tmp-${deadPid}-cccc`)));
  });
});

describe('plan and status', () => {
  it('plan lists each action and changes nothing; status gives counts', async () => {
    const fx = setup();
    fx.write('src', 'new.txt', 'n');
    fx.write('dst', 'theirs.txt', 't');
    const plan = await fx.cli('plan', fx.src, fx.dst);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /upload +new\.txt +\(created\)/);
    assert.match(plan.stdout, /download +theirs\.txt +\(created\)/);
    assert.match(plan.stdout, /Would change: 1 to upload \(1 B\), 1 to download \(1 B\)\./);
    assert.deepEqual(fx.files('dst'), { 'theirs.txt': 't' });
    assert.equal(fs.existsSync(path.join(fx.src, '.sync_state')), true, 'the state folder may exist (lock) ...');
    assert.equal(fs.readdirSync(path.join(fx.src, '.sync_state')).flatMap((d) => fs.readdirSync(path.join(fx.src, '.sync_state', d))).length, 0, '... but holds nothing');
    const status = await fx.cli('status', fx.src, fx.dst, '--json');
    assert.equal(status.code, 0);
    assert.equal(status.json!.dryRun, true);
    assert.equal(status.json!.counts.upload, 1);
    assert.equal(status.json!.counts.download, 1);
    assert.equal(status.json!.items, undefined, 'status gives counts, not the list');
    const planJson = await fx.cli('plan', fx.src, fx.dst, '--json');
    assert.deepEqual(planJson.json!.items.map((i: { action: string; path: string }) => [i.action, i.path]), [['copy', 'new.txt'], ['copy', 'theirs.txt']]);
  });

  it('plan and status against a destination folder that a first sync would create: everything to upload, nothing created', async () => {
    const fx = setup();
    fx.write('src', 'a.txt', 'a');
    fx.write('src', 'sub/b.txt', 'bb');
    const missing = path.join(path.dirname(fx.dst), 'not-yet');
    const plan = await fx.cli('plan', fx.src, missing);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /Would change: 2 to upload \(3 B\)\./);
    const status = await fx.cli('status', fx.src, missing, '--json');
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.json!.counts.upload, 2);
    assert.equal(fs.existsSync(missing), false, 'a dry run creates nothing');
    const sync = await fx.cli('sync', fx.src, missing);
    assert.equal(sync.code, 0, sync.stderr);
    assert.equal(fs.readFileSync(path.join(missing, 'sub', 'b.txt'), 'utf8'), 'bb');
  });

  it('output into a pipe whose reader has gone (plan | head) ends quietly, after the sync is done', async () => {
    const fx = setup();
    for (let i = 0; i < 200; i++) fx.write('src', `f${i}.txt`, String(i));
    for (const command of ['plan', 'sync']) {
      const child = spawn(process.execPath, [CLI, command, fx.src, fx.dst], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before the CLI writes anything
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 0, `${command}: ${stderr}`);
      assert.doesNotMatch(stderr, /EPIPE|Error/, command);
    }
    assert.equal(fx.files('dst')['f199.txt'], '199', 'the sync itself went through');
  });
});

describe('progress line', () => {
  it('shows files, bytes, speed and ETA on one rewritten line', () => {
    let out = '';
    const line = new ProgressLine({ write: (t: string) => (out += t), columns: 120 });
    line.handle({ type: 'totals', doneFiles: 3, totalFiles: 10, doneBytes: 3 * 1024 * 1024, totalBytes: 10 * 1024 * 1024, bytesPerSecond: 1024 * 1024, etaSeconds: 7 });
    assert.match(out, /\r\x1b\[2KSyncing: 3\/10 files · 3\.0 MiB\/10\.0 MiB · 1\.0 MiB\/s · ETA 7s/);
    line.clear();
    assert.ok(out.endsWith('\r\x1b[2K'));
  });

  it('the summary says "In sync" only when it is: not after a cancel, an error or an open conflict', () => {
    const summary = (change: (stats: SyncStats) => void) => {
      const stats = emptyStats();
      stats.durationMs = 1500;
      change(stats);
      const plan: Plan = { options: DEFAULT_PLAN_OPTIONS, items: [], counts: emptyCounts(), firstSync: false, warnings: [] };
      return humanSummary({ plan, stats, skipped: [], hashAlgorithm: 'sha256-128' }, false);
    };
    assert.equal(summary(() => undefined), 'In sync (1.50s): nothing to do.');
    assert.equal(summary((s) => (s.cancelled = true)), 'Cancelled after 1.50s; finished work is saved and the next run goes on from there.');
    assert.equal(
      summary((s) => Object.assign(s, { cancelled: true, uploaded: 2, bytesTransferred: 2048 })),
      'Cancelled after 1.50s, with 2 uploaded (2.0 KiB transferred) before that; finished work is saved and the next run goes on from there.',
    );
    assert.equal(summary((s) => s.errors.push({ path: 'a', message: 'cannot read' })), 'Nothing changed (1.50s).\nError: a: cannot read');
    assert.match(summary((s) => s.conflicts.push({ path: 'b', reason: 'both-modified' })), /^Nothing changed \(1\.50s\)\.\nConflict: b/);
    assert.equal(summary((s) => Object.assign(s, { uploaded: 1, bytesTransferred: 10 })), 'Done in 1.50s: 1 uploaded (10 B transferred).');
  });
});

describe('skipped entries', () => {
  it('a synced file that a side now skips (a symlink in its place) is not deleted on the other side', async () => {
    const fx = setup();
    fx.write('src', 'config.ini', 'real settings');
    fx.write('src', 'other', 'o');
    fx.write('src', 'dir/inner.txt', 'inner');
    await fx.sync();
    fx.remove('src', 'config.ini');
    fs.symlinkSync('/etc/hostname', path.join(fx.src, 'config.ini'));
    fx.remove('src', 'dir');
    fs.symlinkSync('/tmp', path.join(fx.src, 'dir'));
    const r = await fx.sync();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.read('dst', 'config.ini'), 'real settings');
    assert.equal(fx.read('dst', 'dir/inner.txt'), 'inner');
    assert.deepEqual(
      r.json!.skipped.map((s: { side: string; path: string }) => [s.side, s.path]).sort(),
      [['source', 'config.ini'], ['source', 'dir']],
    );
    // Once the real file is back, it syncs as before.
    fx.remove('src', 'config.ini');
    fx.write('src', 'config.ini', 'new settings');
    const back = await fx.sync();
    assert.equal(back.code, 0);
    assert.equal(fx.read('dst', 'config.ini'), 'new settings');
  });
});
