// The stored base as a table (binary file, old JSON read once) and the join that leaves settled
// paths out of planning: the plan must be exactly the plan over the full trees and base.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Entry, FileColumns } from '../src/backends/types';
import { BaseTable } from '../src/core/baseTable';
import { hashesNeeded } from '../src/core/hashplan';
import { snapshotOf, type Base, type BaseEntry, type Tree } from '../src/core/model';
import { detectsChangesByMtime } from '../src/core/compare';
import { COMPARE_MODES, DEFAULT_PLAN_OPTIONS, SYNC_MODES, type CompareMode, type PlanOptions, type Side, type SyncMode } from '../src/core/options';
import { plan } from '../src/core/planner';
import { fillKnownHashes, type ScanResult } from '../src/core/scanner';
import { joinWithBase } from '../src/core/settle';
import { comparePaths } from '../src/core/paths';
import { StateCorruptError, StateStore } from '../src/core/state';
import { prng } from './helpers/prng';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha128 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

interface World {
  source: Entry[];
  destination: Entry[];
  base: Base;
  /** Content of each listed file, to hash on request. */
  content: Map<string, string>;
}

/** Random trees and base: unchanged, touched, modified, new inode, gone, new, renamed, with and without hashes in the base. */
function randomWorld(seed: number, destinationListsHashes = false): World {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const folders = ['', 'a', 'a/b', 'a-b', 'c', 'é', 'a/b/c d'];
  const world: World = { source: [], destination: [], base: new Map(), content: new Map() };
  let ino = 100;
  const n = 20 + Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) {
    const folder = pick(folders);
    const p = folder ? `${folder}/f${i}.txt` : `f${i}.txt`;
    const text = `content ${i} ${pick(['x', 'yy', 'zzz'])}`;
    const mtime = 1_700_000_000_000 + Math.floor(rand() * 1000) * 1000;
    const snap = { size: text.length, mtimeMs: mtime, ino: ino++ };
    const hasBase = rand() < 0.8;
    const withHash = rand() < 0.85;
    if (hasBase) {
      const entry: BaseEntry = { source: { size: snap.size, mtimeMs: snap.mtimeMs }, destination: { size: snap.size, mtimeMs: snap.mtimeMs + (rand() < 0.2 ? 2000 : 0) } };
      if (withHash) {
        entry.source.hash = md5(text);
        entry.destination.hash = md5(text);
      }
      if (rand() < 0.9) entry.source.ino = snap.ino;
      if (rand() < 0.9) entry.destination.ino = snap.ino + 10_000;
      world.base.set(p, entry);
    }
    for (const side of ['source', 'destination'] as const) {
      const b = world.base.get(p)?.[side];
      const roll = rand();
      let file: { text: string; mtimeMs: number; ino: number; at: string } | undefined;
      const sideIno = side === 'source' ? snap.ino : snap.ino + 10_000;
      if (roll < 0.55) file = { text, mtimeMs: b?.mtimeMs ?? mtime, ino: sideIno, at: p }; // as in the base
      else if (roll < 0.62) file = { text, mtimeMs: (b?.mtimeMs ?? mtime) + 5000, ino: sideIno, at: p }; // touched
      else if (roll < 0.7) file = { text: `${text}!${side}`, mtimeMs: (b?.mtimeMs ?? mtime) + 7000, ino: sideIno, at: p }; // modified
      else if (roll < 0.74) file = { text: text.replace('content', 'CONTENT'), mtimeMs: b?.mtimeMs ?? mtime, ino: sideIno, at: p }; // same size and mtime, other content
      else if (roll < 0.8) file = { text, mtimeMs: b?.mtimeMs ?? mtime, ino: ino++, at: p }; // replaced: new inode
      else if (roll < 0.88) file = { text, mtimeMs: b?.mtimeMs ?? mtime, ino: sideIno, at: `${pick(folders.filter(Boolean))}/moved-${i}.txt` }; // renamed
      // else: gone from this side
      if (!file) continue;
      const entry: Entry = { path: file.at, kind: 'file', size: file.text.length, mtimeMs: file.mtimeMs };
      if (rand() < 0.95) entry.ino = file.ino;
      if (side === 'destination' && destinationListsHashes) entry.hash = md5(file.text);
      const list = world[side];
      if (list.some((e) => e.path === entry.path)) continue;
      list.push(entry);
      world.content.set(`${side}:${entry.path}`, file.text);
    }
  }
  return world;
}

/** A path that sorts anywhere among the generated ones: before, between or after. */
function pickNewPath(rand: () => number, k: number): string {
  return ['!first', 'a/b/new', 'a-c', 'zz/last', 'é/new', 'a/b/c d/new'][Math.floor(rand() * 6)]! + k;
}

/** Columns of `files`, sorted by path (the array is sorted in place). */
function columnsFromEntries(files: Entry[]): FileColumns {
  files.sort((a, b) => comparePaths(a.path, b.path));
  const n = files.length;
  const columns: FileColumns = { paths: new Array<string>(n), sizes: new Float64Array(n), mtimes: new Float64Array(n), inos: new Float64Array(n) };
  files.forEach((e, i) => {
    columns.paths[i] = e.path;
    columns.sizes[i] = e.size;
    columns.mtimes[i] = e.mtimeMs;
    columns.inos[i] = e.ino ?? -1;
  });
  return columns;
}

function treeOf(entries: Entry[]): Tree {
  const tree: Tree = { files: new Map(), dirs: new Set() };
  for (const e of entries) {
    tree.files.set(e.path, { ...e });
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) tree.dirs.add(parts.slice(0, i).join('/'));
  }
  return tree;
}

/** What the engine does between the scans and the plan: known hashes, hashing what is needed, planning. */
function planFrom(world: World, trees: Record<Side, Tree>, base: Base, options: PlanOptions, settled: number) {
  fillKnownHashes(trees.source, 'source', base, new Map());
  fillKnownHashes(trees.destination, 'destination', base, new Map());
  const requests = hashesNeeded(trees.source, trees.destination, base, options.compare);
  for (const { side, entry } of requests) entry.hash = md5(world.content.get(`${side}:${entry.path}`)!);
  const result = plan({ source: trees.source, destination: trees.destination, base, options, firstSync: false, now: new Date(2026, 11, 2, 12, 0, 0) });
  result.counts.unchanged += settled;
  return { items: result.items, counts: result.counts, hashed: requests.map((r) => `${r.side}:${r.entry.path}`).sort() };
}

function scanned(entries: Entry[], columns: boolean): ScanResult {
  const tree = treeOf(entries);
  if (!columns) return { tree, skipped: [], ignoreFiles: {} };
  return { tree: { files: new Map(), dirs: tree.dirs }, columns: columnsFromEntries(entries.map((e) => ({ ...e }))), skipped: [], ignoreFiles: {} };
}

describe('joining the scans with the stored base', () => {
  it('plans, hashes and counts exactly as over the full trees and base, in every mode and comparison', () => {
    let settledSeen = 0;
    let plannedSeen = 0;
    let refreshedSeen = 0;
    for (let seed = 1; seed <= 60; seed++) {
      // Local listings come as columns, remote ones as entries (with the hashes some stores list).
      const kinds = [[true, true], [true, false], [false, false]] as const;
      const [sourceColumns, destinationColumns] = kinds[seed % kinds.length]!;
      // Half the remote destinations list content hashes (S3 ETags); columns never do.
      const world = randomWorld(seed, !destinationColumns && seed % 2 === 0);
      for (const mode of SYNC_MODES as readonly SyncMode[]) {
        for (const compare of COMPARE_MODES as readonly CompareMode[]) {
          const options: PlanOptions = { ...DEFAULT_PLAN_OPTIONS, mode, compare };
          const full = planFrom(world, { source: treeOf(world.source), destination: treeOf(world.destination) }, world.base, options, 0);
          const table = BaseTable.fromMap(world.base);
          const hashDecides = !detectsChangesByMtime(compare);
          const joined = joinWithBase(scanned(world.source, sourceColumns), scanned(world.destination, destinationColumns), table, undefined, hashDecides);
          const fast = planFrom(world, joined.trees, joined.planBase, options, joined.settled);
          const label = `seed ${seed}, ${mode}, ${compare}, columns ${sourceColumns}/${destinationColumns}`;
          // A refreshed row is exactly the record the full plan makes for that path, without planning it.
          for (const [p, row] of joined.refreshed) {
            const item = full.items.find((i) => i.path === p);
            assert.ok(item?.action === 'record', `${label}: ${p} refreshed, the full plan has ${item?.action}`);
            assert.deepEqual(row, { source: snapshotOf(item.source), destination: snapshotOf(item.destination) }, `${label}: ${p}`);
          }
          const expectedItems = full.items.filter((i) => !joined.refreshed.has(i.path));
          const expectedCounts = { ...full.counts, record: full.counts.record - joined.refreshed.size, unchanged: full.counts.unchanged + joined.refreshed.size };
          assert.deepEqual(fast.items, expectedItems, label);
          assert.deepEqual(fast.counts, expectedCounts, label);
          assert.deepEqual(fast.hashed, full.hashed, label);
          settledSeen += joined.settled;
          refreshedSeen += joined.refreshed.size;
          plannedSeen += joined.trees.source.files.size;
        }
      }
    }
    // The worlds must exercise both kinds of path, or the test proves nothing.
    assert.ok(settledSeen > 1000, `settled paths seen: ${settledSeen}`);
    assert.ok(plannedSeen > 1000, `planned paths seen: ${plannedSeen}`);
    assert.ok(refreshedSeen > 100, `refreshed paths seen: ${refreshedSeen}`);
  });

  it('in a scoped run (sync on save), plans the scope exactly as over the whole base restricted to it', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const world = randomWorld(seed);
      const inScope = (p: string) => p.startsWith('a/');
      const scoped = (entries: Entry[]) => entries.filter((e) => inScope(e.path));
      const options: PlanOptions = { ...DEFAULT_PLAN_OPTIONS };
      const full = planFrom(world, { source: treeOf(scoped(world.source)), destination: treeOf(scoped(world.destination)) }, new Map([...world.base].filter(([p]) => inScope(p))), options, 0);
      const table = BaseTable.fromMap(world.base);
      const joined = joinWithBase(scanned(scoped(world.source), false), scanned(scoped(world.destination), false), table, inScope);
      assert.ok([...joined.planBase.keys()].every(inScope), `seed ${seed}: only rows in the scope are planned`);
      const fast = planFrom(world, joined.trees, joined.planBase, options, joined.settled);
      assert.deepEqual(fast.items, full.items, `seed ${seed}`);
      assert.deepEqual(fast.counts, full.counts, `seed ${seed}`);
    }
  });

  it('a hash the listing reports (S3) that differs from the base is a change, whatever size and mtime say', () => {
    const p = 'a/f.txt';
    const base: Base = new Map([[p, { source: { size: 3, mtimeMs: 1000, hash: md5('abc') }, destination: { size: 3, mtimeMs: 1000, hash: md5('abc') } }]]);
    const table = BaseTable.fromMap(base);
    const source: Entry = { path: p, kind: 'file', size: 3, mtimeMs: 1000 };
    const destination: Entry = { path: p, kind: 'file', size: 3, mtimeMs: 1000, hash: md5('xyz') };
    const joined = joinWithBase(scanned([source], false), scanned([destination], false), table);
    assert.equal(joined.settled, 0);
    const same = joinWithBase(scanned([source], false), scanned([{ ...destination, hash: md5('abc') }], false), table);
    assert.equal(same.settled, 1);
  });
});

describe('the base table', () => {
  it('keeps every row through the file format: unicode paths, missing and unusual hashes, missing inodes', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const world = randomWorld(seed);
      const base = new Map(world.base);
      base.set('日本/ファイル name.txt', { source: { size: 0, mtimeMs: 0 }, destination: { size: 0, mtimeMs: 1.5, hash: 'not-hex', ino: 0 } });
      base.set('z/big', { source: { size: 2 ** 40, mtimeMs: 1_700_000_000_123, hash: 'A'.repeat(32) }, destination: { size: 2 ** 40, mtimeMs: 1_700_000_000_123, hash: md5('x') } });
      const table = BaseTable.fromMap(base);
      const decoded = BaseTable.decode(table.encode({ hashAlgorithm: 'md5', pair: { source: 's', destination: 'd' }, savedAt: 'now' })).table;
      assert.deepEqual(decoded.toMap(), new Map([...base].sort(([a], [b]) => (a < b ? -1 : 1))), `seed ${seed}`);
    }
    const empty = BaseTable.decode(BaseTable.empty().encode({ hashAlgorithm: 'md5', pair: { source: 's', destination: 'd' }, savedAt: 'now' })).table;
    assert.equal(empty.rows, 0);
  });

  it('applies a run\'s changes (set, replace, remove, new paths before, between and after the rows) as the whole Map would', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rand = prng(seed * 7);
      const base = randomWorld(seed).base;
      const table = BaseTable.fromMap(base);
      const changes = new Map<string, BaseEntry | undefined>();
      const keys = [...base.keys()];
      for (let k = 0; k < 15; k++) {
        const roll = rand();
        const hash = rand() < 0.5 ? md5(`h${k}`) : rand() < 0.5 ? undefined : `sha1:${k}`;
        const entry: BaseEntry = { source: { size: k, mtimeMs: 1000 * k }, destination: { size: k, mtimeMs: 1000 * k + 1, ino: k } };
        if (hash) entry.source.hash = entry.destination.hash = hash;
        if (roll < 0.3 && keys.length > 0) changes.set(keys[Math.floor(rand() * keys.length)]!, undefined);
        else if (roll < 0.6 && keys.length > 0) changes.set(keys[Math.floor(rand() * keys.length)]!, entry);
        else changes.set(pickNewPath(rand, k), entry);
      }
      const expected = new Map(base);
      for (const [p, e] of changes) {
        if (e) expected.set(p, e);
        else expected.delete(p);
      }
      const updated = table.withChanges(changes);
      assert.deepEqual(updated.toMap(), BaseTable.fromMap(expected).toMap(), `seed ${seed}`);
      assert.deepEqual([...updated.paths], [...expected.keys()].sort(), `seed ${seed}: rows in order`);
      assert.deepEqual(table.toMap(), BaseTable.fromMap(base).toMap(), `seed ${seed}: the original table is unchanged`);
    }
  });

  it('refuses a damaged file', () => {
    const table = BaseTable.fromMap(randomWorld(3).base);
    const data = table.encode({ hashAlgorithm: 'md5', pair: { source: 's', destination: 'd' }, savedAt: 'now' });
    assert.throws(() => BaseTable.decode(data.subarray(0, data.length - 9)), /cut short/);
    assert.throws(() => BaseTable.decode(Buffer.from('{"version":2,"rows":[]}')), /not a SyncEngine base file/);
  });
});

describe('the state store with the table', () => {
  const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-state-'));
  const pair = { source: 'file:///a', destination: 'file:///b' };

  it('reads a base written by version 2 (JSON) and replaces it with base.bin at the next commit', () => {
    const d = dir();
    const rows = [
      ['x/a.txt', 3, 1000, md5('abc'), 7, 3, 1000, 0, 8],
      ['b.txt', 1, 2000, null, null, 1, 2000, md5('b'), null],
    ];
    fs.writeFileSync(path.join(d, 'base.json'), JSON.stringify({ version: 2, hashAlgorithm: 'md5', pair, rows }));
    const store = new StateStore(d, pair);
    assert.equal(StateStore.hasState(d), true);
    const { table, firstSync } = store.loadTable();
    assert.equal(firstSync, false);
    const expected: Base = new Map([
      ['b.txt', { source: { size: 1, mtimeMs: 2000 }, destination: { size: 1, mtimeMs: 2000, hash: md5('b') } }],
      ['x/a.txt', { source: { size: 3, mtimeMs: 1000, hash: md5('abc'), ino: 7 }, destination: { size: 3, mtimeMs: 1000, hash: md5('abc'), ino: 8 } }],
    ]);
    assert.deepEqual(table.toMap(), expected);
    assert.equal(store.needsCommit, true);
    store.lock();
    store.commit(table);
    store.unlock();
    assert.deepEqual(fs.readdirSync(d).sort(), ['base.bin']);
    assert.deepEqual(new StateStore(d, pair).loadTable().table.toMap(), expected);
    assert.equal(new StateStore(d, pair).needsCommit, false);
  });

  it('a damaged base.bin is a clear error that names the way out, and nothing is overwritten', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'base.bin'), 'SEBASE3\n\u0005\u0000\u0000\u0000{"ver');
    assert.throws(
      () => new StateStore(d, pair).loadTable(),
      (error: unknown) => error instanceof StateCorruptError && /syncengine clear/.test((error as Error).message),
    );
    assert.equal(fs.readFileSync(path.join(d, 'base.bin'), 'utf8').length, 17);
  });

  it('applies the journal of an interrupted run on top of the table', () => {
    const d = dir();
    const store = new StateStore(d, pair);
    store.lock();
    store.commit(new Map<string, BaseEntry>([['keep', { source: { size: 1, mtimeMs: 1, hash: md5('k') }, destination: { size: 1, mtimeMs: 1, hash: md5('k') } }], ['gone', { source: { size: 2, mtimeMs: 2 }, destination: { size: 2, mtimeMs: 2 } }]]));
    store.journal('new', { source: { size: 3, mtimeMs: 3, hash: md5('n') }, destination: { size: 3, mtimeMs: 4, hash: md5('n') } });
    store.journal('gone', undefined);
    store.unlock();
    const { table } = new StateStore(d, pair).loadTable();
    assert.deepEqual([...table.paths], ['keep', 'new']);
    assert.equal(table.hash(1, 'destination'), md5('n'));
  });

  it('says which content hash the state was written with: the base, the journal of a first run, or MD5 for older state', () => {
    const entry = (hash: string): BaseEntry => ({ source: { size: 1, mtimeMs: 1, hash }, destination: { size: 1, mtimeMs: 1, hash } });
    // A committed base.
    const committed = dir();
    const store = new StateStore(committed, pair);
    store.hashAlgorithm = 'sha256-128';
    store.commit(new Map([['a', entry(sha128('a'))]]));
    assert.equal(new StateStore(committed, pair).loadTable().hashAlgorithm, 'sha256-128');
    // The journal of a first run killed before its commit.
    const killed = dir();
    const first = new StateStore(killed, pair);
    first.hashAlgorithm = 'sha256-128';
    first.journal('a', entry(sha128('a')));
    first.flushJournal();
    const loaded = new StateStore(killed, pair).loadTable();
    assert.equal(loaded.firstSync, false);
    assert.equal(loaded.hashAlgorithm, 'sha256-128');
    assert.equal(loaded.table.hash(0, 'source'), sha128('a'));
    // A journal from before the algorithm was recorded holds MD5s.
    const old = dir();
    fs.writeFileSync(path.join(old, 'journal.log'), `${JSON.stringify(['set', 'a', [1, 1, md5('a'), null, 1, 1, md5('a'), null]])}\n`);
    assert.equal(new StateStore(old, pair).loadTable().hashAlgorithm, 'md5');
    // No state at all: the engine chooses.
    assert.equal(new StateStore(dir(), pair).loadTable().hashAlgorithm, undefined);
  });

  it('a base written with a content hash this version does not know is a clear error, not a wrong comparison', () => {
    const d = dir();
    const data = BaseTable.empty().encode({ hashAlgorithm: 'blake3', pair, savedAt: 'now' });
    fs.writeFileSync(path.join(d, 'base.bin'), data);
    assert.throws(
      () => new StateStore(d, pair).loadTable(),
      (error: unknown) => error instanceof StateCorruptError && /"blake3"/.test((error as Error).message) && /syncengine clear/.test((error as Error).message),
    );
  });
});
