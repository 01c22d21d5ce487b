// The whole-tree walk returns its files in comparePaths order without sorting the whole tree: it
// visits each folder's entries in path order and enters a folder where its name sorts. Names that
// continue a folder's name with a character below '/' (`lib` beside `lib.d.ts`, `lib-2`, `lib 3`)
// are where listing order and path order differ.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { walkLocalTreeColumns } from '../src/backends/localTree';
import { comparePaths } from '../src/core/paths';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-walk-order-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));

/** Seeded PRNG (mulberry32): the same tree on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Stems that collide, and continuations below '/' (space ! # - .), around it (0 A _ a) and beyond ASCII.
const STEMS = ['lib', 'lib-2', 'a', 'A', 'é', '日本'];
const TAILS = ['', ' 3', '!', '#x', '-b', '.d.ts', '.', '0', 'Z', '_', 'z', 'é', '\u{1F600}'];

function makeTree(root: string, seed: number): { files: Map<string, number>; dirs: string[] } {
  const rand = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const files = new Map<string, number>();
  const dirs: string[] = [];
  const fill = (dir: string, level: number): void => {
    const used = new Set<string>();
    for (let n = 0; n < 14; n++) {
      const name = pick(STEMS) + pick(TAILS);
      if (name === '.' || used.has(name)) continue;
      used.add(name);
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (level < 3 && rand() < 0.3) {
        fs.mkdirSync(path.join(root, rel));
        dirs.push(rel);
        fill(rel, level + 1);
      } else {
        const size = Math.floor(rand() * 64);
        fs.writeFileSync(path.join(root, rel), Buffer.alloc(size, 1));
        files.set(rel, size);
      }
    }
  };
  fs.mkdirSync(root);
  fill('', 0);
  return { files, dirs };
}

describe('whole-tree walk order', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`returns the files in comparePaths order, each with its own size, time and inode (seed ${seed})`, () => {
      const root = path.join(base, `t${seed}`);
      const { files, dirs } = makeTree(root, seed);
      const { columns, dirs: listedDirs, skipped } = walkLocalTreeColumns(root, { patterns: [], ignoreFiles: 'collect' });
      assert.deepEqual(skipped, []);
      assert.deepEqual(columns.paths, [...files.keys()].sort(comparePaths));
      assert.deepEqual([...listedDirs].sort(comparePaths), [...dirs].sort(comparePaths));
      columns.paths.forEach((p, i) => {
        const st = fs.lstatSync(path.join(root, p));
        assert.equal(columns.sizes[i], files.get(p), p);
        assert.equal(columns.mtimes[i], Math.floor(st.mtimeMs), p);
        assert.equal(columns.inos[i], st.ino, p);
      });
    });
  }

  it('keeps path order with ignore rules that remove files and whole folders', () => {
    const root = path.join(base, 'rules');
    const { files } = makeTree(root, 9);
    fs.writeFileSync(path.join(root, '.syncignore'), 'lib-2*/\n*.d.ts\n');
    // `lib-2*/` matches folders only; `*.d.ts` files and folders.
    const ignored = (p: string) => p.split('/').some((part, i, parts) => (i < parts.length - 1 && part.startsWith('lib-2')) || part.endsWith('.d.ts'));
    const expected = [...files.keys(), '.syncignore'].filter((p) => !ignored(p)).sort(comparePaths);
    assert.ok(expected.length < files.size, 'the rules leave something out');
    assert.deepEqual(walkLocalTreeColumns(root, { patterns: [], ignoreFiles: 'collect' }).columns.paths, expected);
  });
});
