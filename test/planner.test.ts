// The planner over every row of the three-way table × every sync mode, renames, first sync,
// comparison modes and conflict strategies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../src/backends/types';
import type { Base, PlanItem, Tree } from '../src/core/model';
import { DEFAULT_PLAN_OPTIONS, parseSyncMode, type PlanOptions, type SyncMode } from '../src/core/options';
import { conflictName, plan } from '../src/core/planner';


function tree(...entries: Entry[]): Tree {
  const t: Tree = { files: new Map(), dirs: new Set() };
  for (const e of entries) {
    t.files.set(e.path, e);
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) t.dirs.add(parts.slice(0, i).join('/'));
  }
  return t;
}

function baseOf(...pairs: [Entry, Entry][]): Base {
  const b: Base = new Map();
  for (const [s, d] of pairs) b.set(s.path, { source: { size: s.size, mtimeMs: s.mtimeMs, hash: s.hash! }, destination: { size: d.size, mtimeMs: d.mtimeMs, hash: d.hash! } });
  return b;
}

function run(source: Tree, destination: Tree, base: Base, options: Partial<PlanOptions> = {}, firstSync = false) {
  return plan({ source, destination, base, options: { ...DEFAULT_PLAN_OPTIONS, ...options }, firstSync, now: new Date(2026, 10, 22, 8, 30, 5) });
}

/** A one-word summary of what the plan does with `p`. */
function outcome(items: PlanItem[], p = 'f'): string {
  const item = items.find((i) => i.path === p);
  if (!item) return 'none';
  switch (item.action) {
    case 'copy':
      return item.to === 'destination' ? 'upload' : 'download';
    case 'delete':
      return `delete-${item.side}`;
    default:
      return item.action;
  }
}

import { EXPECTED, ROWS, T0, dstNew, file, old, srcNew } from './helpers/table';

describe('three-way table × sync modes', () => {
  for (const mode of Object.keys(EXPECTED) as SyncMode[]) {
    for (const [row, [b, s, d]] of Object.entries(ROWS)) {
      it(`${mode}: ${row}`, () => {
        const base = b ? baseOf([b, b]) : new Map();
        const p = run(s ? tree(s) : tree(), d ? tree(d) : tree(), base, { mode, conflict: 'manual' });
        const expected = EXPECTED[mode][row];
        assert.ok(expected, `no expectation for ${mode} / ${row}`);
        assert.equal(outcome(p.items), expected);
        // One-way modes never write to their authoritative side.
        if (mode !== 'two-way') {
          const authority = mode.startsWith('source') ? 'source' : 'destination';
          for (const item of p.items) {
            if (item.action === 'copy') assert.notEqual(item.to, authority);
            if (item.action === 'delete') assert.notEqual(item.side, authority);
          }
        }
      });
    }
  }
  it('accepts every mode alias through the option parser', () => {
    assert.equal(parseSyncMode('tw'), 'two-way');
    assert.equal(parseSyncMode('std'), 'source-to-destination');
    assert.equal(parseSyncMode('sb'), 'source-backup');
    assert.equal(parseSyncMode('dts'), 'destination-to-source');
    assert.equal(parseSyncMode('db'), 'destination-backup');
    assert.throws(() => parseSyncMode('sideways'), /Unknown sync mode "sideways"/);
  });
});

describe('change attribution never compares clocks across sides', () => {
  it('a destination clock far in the future does not make an unchanged destination file win', () => {
    const b = file('f', 'old', T0);
    const dFuture = { ...b, mtimeMs: T0 + 10 * 365 * 86_400_000 };
    const base: Base = new Map([['f', { source: { size: 3, mtimeMs: T0, hash: b.hash! }, destination: { size: 3, mtimeMs: dFuture.mtimeMs, hash: b.hash! } }]]);
    const p = run(tree(file('f', 'new', T0 + 1000)), tree(dFuture), base);
    assert.equal(outcome(p.items), 'upload');
  });
  it('a touched file (same hash, new mtime) is not a change, only a base refresh', () => {
    const p = run(tree({ ...old, mtimeMs: T0 + 5000 }), tree(old), baseOf([old, old]));
    assert.equal(outcome(p.items), 'record');
  });
});

describe('conflict strategies', () => {
  const base = baseOf([old, old]);
  const cases: [PlanOptions['conflict'], string][] = [
    ['newest-wins', 'download'], // dstNew is newer
    ['source-wins', 'upload'],
    ['destination-wins', 'download'],
    ['manual', 'conflict'],
    ['keep-both', 'keep-both'],
  ];
  for (const [conflict, expected] of cases) {
    it(`${conflict}`, () => {
      const p = run(tree(srcNew), tree(dstNew), base, { conflict });
      assert.equal(outcome(p.items), expected);
      if (conflict === 'keep-both') {
        const item = p.items[0]!;
        assert.equal(item.action, 'keep-both');
        if (item.action === 'keep-both') {
          assert.equal(item.winner, 'destination');
          assert.equal(item.conflictPath, 'f.conflict-source-20261122-083005');
        }
      }
      if (conflict === 'manual') assert.equal(p.counts.conflicts, 1);
      else assert.equal(p.counts.conflictsResolved, 1);
    });
  }
  it('newest-wins with equal times keeps both', () => {
    const p = run(tree({ ...srcNew, mtimeMs: T0 }), tree({ ...dstNew, mtimeMs: T0 + 1000 }), base);
    assert.equal(outcome(p.items), 'keep-both');
  });
  it('newest-wins cannot decide under size-only or hash-only: the conflict is left for the user', () => {
    for (const compare of ['size-only', 'hash-only'] as const) {
      const s = file('f', 'abcd', T0 + 60_000);
      const d = file('f', 'abcdef', T0 + 120_000);
      const p = run(tree(s), tree(d), baseOf([old, old]), { compare });
      assert.equal(outcome(p.items), 'conflict', compare);
    }
  });
  it('names conflict copies after the losing side, keeping the extension', () => {
    const when = new Date(2026, 0, 2, 3, 4, 5);
    assert.equal(conflictName('a/b/report.final.pdf', 'destination', when), 'a/b/report.final.conflict-destination-20260102-030405.pdf');
    assert.equal(conflictName('.env', 'source', when), '.env.conflict-source-20260102-030405');
    assert.equal(conflictName('Makefile', 'source', when), 'Makefile.conflict-source-20260102-030405');
  });
});

describe('first sync', () => {
  const s = file('f', 'source-version', T0 + 60_000);
  const d = file('f', 'destination-version!', T0 + 120_000);
  it('merge copies each side extras across and treats differing files as conflicts', () => {
    const p = run(tree(s, file('only-s', 'x')), tree(d, file('only-d', 'y')), new Map(), { conflict: 'manual' }, true);
    assert.equal(outcome(p.items, 'only-s'), 'upload');
    assert.equal(outcome(p.items, 'only-d'), 'download');
    assert.equal(outcome(p.items), 'conflict');
    assert.equal(p.counts.deleteSource + p.counts.deleteDestination, 0);
  });
  it('source-wins and destination-wins settle differing files without a conflict and delete nothing', () => {
    const a = run(tree(s, file('only-s', 'x')), tree(d, file('only-d', 'y')), new Map(), { initial: 'source-wins', conflict: 'manual' }, true);
    assert.equal(outcome(a.items), 'upload');
    assert.equal(outcome(a.items, 'only-d'), 'download');
    const b = run(tree(s), tree(d), new Map(), { initial: 'destination-wins', conflict: 'manual' }, true);
    assert.equal(outcome(b.items), 'download');
    assert.equal(b.counts.conflicts, 0);
  });
  it('warns when one side is much larger than the other', () => {
    const many = Array.from({ length: 30 }, (_, i) => file(`f${i}`, `c${i}`));
    const p = run(tree(...many), tree(file('x', 'y')), new Map(), {}, true);
    assert.match(p.warnings.join('\n'), /source has 30 files but the destination only 1/);
  });
});

describe('renames and moves', () => {
  const a = file('docs/report.pdf', 'the report');
  it('a file renamed at the source is moved on the destination, not re-uploaded', () => {
    const renamed = { ...a, path: 'docs/annual-report.pdf', mtimeMs: T0 + 10 };
    const p = run(tree(renamed), tree(a), baseOf([a, a]));
    assert.equal(p.items.length, 1);
    const item = p.items[0]!;
    assert.equal(item.action, 'rename');
    if (item.action === 'rename') {
      assert.equal(item.side, 'destination');
      assert.equal(item.fromPath, 'docs/report.pdf');
      assert.equal(item.path, 'docs/annual-report.pdf');
    }
    assert.equal(p.counts.upload, 0);
  });
  it('a file moved at the destination is moved on the source', () => {
    const moved = { ...a, path: 'archive/report.pdf' };
    const p = run(tree(a), tree(moved), baseOf([a, a]));
    assert.deepEqual(p.items.map((i) => [i.action, 'side' in i ? i.side : '']), [['rename', 'source']]);
  });
  it('a whole folder moved becomes one folder rename', () => {
    const files = ['x', 'y', 'sub/z'].map((n) => file(`old/${n}`, `content ${n}`));
    const moved = files.map((f) => ({ ...f, path: f.path.replace(/^old/, 'new') }));
    const p = run(tree(...moved), tree(...files), baseOf(...files.map((f) => [f, f] as [Entry, Entry])));
    assert.equal(p.items.length, 1);
    const item = p.items[0]!;
    assert.equal(item.action, 'rename-dir');
    if (item.action === 'rename-dir') {
      assert.equal(item.fromPath, 'old');
      assert.equal(item.path, 'new');
      assert.equal(item.files.length, 3);
    }
    assert.equal(p.counts.renameDestination, 3);
  });
  it('a rename whose old file was modified on the other side falls back to delete + create, losing nothing', () => {
    const renamed = { ...a, path: 'docs/new.pdf' };
    const modified = file('docs/report.pdf', 'edited report', T0 + 500);
    const p = run(tree(renamed), tree(modified), baseOf([a, a]));
    assert.equal(outcome(p.items, 'docs/report.pdf'), 'download'); // modified copy wins over the delete
    assert.equal(outcome(p.items, 'docs/new.pdf'), 'upload');
  });
  it('the same rename on both sides needs no action but a base update', () => {
    const renamed = { ...a, path: 'docs/new.pdf' };
    const p = run(tree(renamed), tree(renamed), baseOf([a, a]));
    assert.equal(outcome(p.items, 'docs/report.pdf'), 'forget');
    assert.equal(outcome(p.items, 'docs/new.pdf'), 'record');
  });
  it('backup modes duplicate instead of moving, so nothing disappears from the backup', () => {
    const renamed = { ...a, path: 'docs/new.pdf' };
    const p = run(tree(renamed), tree(a), baseOf([a, a]), { mode: 'source-backup' });
    const item = p.items.find((i) => i.action === 'rename');
    assert.ok(item && item.action === 'rename' && item.keepOld);
  });
});

describe('comparison modes', () => {
  it('size-only ignores content and mtime changes of the same size', () => {
    const s = file('f', 'abc', T0 + 99_000);
    const p = run(tree({ ...s, hash: 'other' }), tree(old), baseOf([old, old]), { compare: 'size-only' });
    assert.equal(p.counts.upload + p.counts.download + p.counts.conflicts, 0);
  });
  it('mtime-only sees a touched file as modified', () => {
    const p = run(tree({ ...old, mtimeMs: T0 + 5000 }), tree(old), baseOf([old, old]), { compare: 'mtime-only' });
    assert.equal(outcome(p.items), 'upload');
  });
  it('size-and-mtime needs both to match across sides within 2 s', () => {
    const s = file('f', 'abc', T0);
    const d1 = { ...file('f', 'xyz'), mtimeMs: T0 + 1500 };
    const d2 = { ...file('f', 'xyz'), mtimeMs: T0 + 2500 };
    assert.equal(outcome(run(tree(s), tree(d1), new Map(), { compare: 'size-and-mtime' }, true).items), 'record');
    assert.notEqual(outcome(run(tree(s), tree(d2), new Map(), { compare: 'size-and-mtime', conflict: 'manual' }, true).items), 'record');
  });
  it('hash-only refuses to guess when a hash is missing', () => {
    const s = { ...file('f', 'abc') };
    delete s.hash;
    assert.throws(() => run(tree(s), tree(file('f', 'abc')), new Map(), { compare: 'hash-only' }, true), /hash-only comparison needs a hash/);
  });
  it('hash-then-mtime falls back to mtime when a side has no hash', () => {
    const s = { ...file('f', 'abc') };
    delete s.hash;
    const d = { ...file('f', 'abc'), mtimeMs: T0 + 1000 };
    delete d.hash;
    assert.equal(outcome(run(tree(s), tree(d), new Map(), {}, true).items), 'record');
  });
});

describe('file against folder', () => {
  it('a file on one side where the other has a folder is a conflict, never an overwrite', () => {
    const p = run(tree(file('a', 'x')), tree(file('a/inner', 'y')), new Map(), {}, true);
    assert.equal(outcome(p.items, 'a'), 'conflict');
    assert.equal(outcome(p.items, 'a/inner'), 'conflict');
  });
});
