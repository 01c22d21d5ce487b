// Differential test: IgnoreRules against git itself, on random trees and random pattern sets.
//
// Each round builds a real folder tree in a fresh git repository, writes the same random pattern
// sets to `.gitignore` files (git) and to IgnoreRules.addIgnoreFile (us), and root-level patterns
// to `.git/info/exclude` (git) and the IgnoreRules constructor (us). Then every path of the tree is
// asked of both.
//
// Which git query: the question that matters is "would git leave this path out of `git add -A`",
// i.e. is it excluded by a rule OR inside an excluded folder (a file inside an excluded folder can
// not be re-included). `git check-ignore --no-index --stdin -z` answers exactly that: for each path
// it first checks every leading folder (dir.c prep_exclude: once a folder is excluded, that pattern
// is the answer for everything below it), then the path itself, looking up whether it is a folder
// on disk; `--no-index` makes it go by the rules alone instead of calling every tracked file not
// ignored (there are none here anyway), and without `-v` a path whose last matching pattern is a
// negation is not printed, so the output is the set of excluded paths. Checked empirically (a file under `d/` stays excluded despite `!d/f`) and, every
// round, cross-checked for files against `git ls-files --others --ignored --exclude-standard -z`,
// the list `git add -A` would leave out. (Folders are not listed by ls-files, so for them
// check-ignore is the reference.)
//
// Our side of that question is isIgnoredDeep, and also a walker that uses isIgnored and does not
// descend into ignored folders (the way src/core/scanner.ts uses it): both must match git.
//
// Seed: IGNORE_FUZZ_SEED=<n> to reproduce or explore; IGNORE_FUZZ_ROUNDS=<n> to run more rounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBackend } from '../src/backends/local';
import { walkLocalTree } from '../src/backends/localTree';
import type { Backend } from '../src/backends/types';
import { IGNORE_FILE_NAME, IgnoreRules } from '../src/core/ignore';
import { scanTree } from '../src/core/scanner';
import { prng } from './helpers/prng';
import { isEngineName } from '../src/core/paths';

const DEFAULT_SEED = 0x5eed1234;
const seedFromEnv = process.env['IGNORE_FUZZ_SEED'];
const SEED = seedFromEnv !== undefined && seedFromEnv !== '' ? Number(seedFromEnv) >>> 0 : DEFAULT_SEED;
const ROUNDS = Number(process.env['IGNORE_FUZZ_ROUNDS'] ?? 40);

class Random {
  constructor(private readonly next: () => number) {}
  chance(p: number): boolean {
    return this.next() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

// Names: dots, spaces (leading, inner, trailing), brackets, glob characters, '#' and '!' at the
// start, non-ASCII (é is two UTF-8 bytes), and case variants.
const NAMES = [
  'a', 'b', 'c', 'ab', 'ba', 'abc', 'A', 'Ab', 'foo', 'Foo', 'build', 'x.y', 'x.y.z', 'a.txt', 'b.txt', 'c.log', 'a.log',
  '.h', '.hidden', '.a.b', 'a b', 'b ', ' a', 'a  b', '[a]', 'a]', '[ab', 'é', 'éa', 'aé', 'ée.txt', 'x€', '#a', '!a', 'a!',
  'a*', 'q?', 'a-b', 'a_b', '1', '12', 'a1', 'b2',
];
// Rarely: names the engine always ignores.
const ENGINE_NAMES = ['.syncengine-x', '.sync_state', '.syncengine'];
const CLASSES = [
  '[ab]', '[a-c]', '[!a]', '[^b]', '[a-z]', '[A-Z]', '[[:alpha:]]', '[[:digit:]]', '[[:space:]]', '[[:lower:]]', '[]a]',
  '[a-]', '[!]]', '[é]', '[!é]', '[.]', '[*]', '[?]', '[\\]]', '[\\[]', '[a-c.]', '[c-a]', '[[:bogus:]]', '[ab',
];

interface Tree {
  dirs: string[]; // every folder, parents before children
  files: string[];
}

function makeTree(rnd: Random): Tree {
  const dirs: string[] = [];
  const files: string[] = [];
  const taken = new Set<string>();
  const childName = (parent: string): string | null => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const name = rnd.chance(0.01) ? rnd.pick(ENGINE_NAMES) : rnd.pick(NAMES);
      const p = parent === '' ? name : `${parent}/${name}`;
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
    return null;
  };
  const depth = (p: string): number => (p === '' ? 0 : p.split('/').length);
  const dirCount = rnd.int(40, 90);
  for (let i = 0; i < dirCount; i++) {
    const candidates = ['', ...dirs].filter((d) => depth(d) < 3);
    const p = childName(rnd.pick(candidates));
    if (p !== null) dirs.push(p);
  }
  const fileCount = rnd.int(200, 350);
  for (let i = 0; i < fileCount; i++) {
    const p = childName(rnd.pick(['', ...dirs]));
    if (p !== null) files.push(p);
  }
  return { dirs, files };
}

/** A literal pattern for a name, usually escaped where needed, sometimes deliberately not. */
function literal(rnd: Random, name: string): string {
  if (rnd.chance(0.15)) return name;
  // Escape what needs it, and now and then an ordinary character too (`\a` is just `a`).
  let out = name.replace(/[\\*?[\]]|./gu, (c) => (/[\\*?[\]]/.test(c) || rnd.chance(0.04) ? `\\${c}` : c));
  if (out.startsWith('#') || out.startsWith('!')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** A segment pattern derived from a name: wildcards, classes, or the literal. */
function segmentPattern(rnd: Random, name: string): string {
  const chars = [...name];
  switch (rnd.int(0, 11)) {
    case 0:
      return '*';
    case 1:
      return rnd.pick(['**', '***']);
    case 2:
      return `*${literal(rnd, chars.slice(1).join(''))}`;
    case 3:
      return `${literal(rnd, chars.slice(0, -1).join(''))}*`;
    case 4: {
      const i = rnd.int(0, chars.length - 1);
      chars[i] = '?';
      return chars.map((c, k) => (k === i ? c : literal(rnd, c))).join('');
    }
    case 5: {
      const i = rnd.int(0, chars.length - 1);
      return chars.map((c, k) => (k === i ? rnd.pick(CLASSES) : literal(rnd, c))).join('');
    }
    case 6:
      return `${literal(rnd, chars[0]!)}*${rnd.chance(0.5) ? literal(rnd, chars[chars.length - 1]!) : ''}`;
    case 7:
      return rnd.pick(['*.txt', '*.log', '.*', '*.*', '?', '??', 'a?', '*a*', '*é*', 'é?', '[!.]*', '*\\ ', '*[ ]*']);
    default:
      return literal(rnd, name);
  }
}

// Patterns where git's `**` rules are subtle, built around a real path so that they match things:
// a run right after a literal prefix (`x/a**/b`: git strips the prefix first, so it is a globstar
// there, zero folders included), at the end (`x/ab**`), next to an escaped slash (`**\/b`).
function globstarOddity(rnd: Random, rel: string[]): string {
  const k = rnd.int(0, rel.length - 1);
  const seg = [...rel[k]!];
  const cut = rnd.int(0, seg.length);
  const left = literal(rnd, seg.slice(0, cut).join(''));
  const right = literal(rnd, seg.slice(cut).join(''));
  const pre = rel.slice(0, k).map((s) => literal(rnd, s)).join('/');
  const post = rel.slice(k + 1).map((s) => literal(rnd, s)).join('/');
  const head = pre === '' ? '' : `${pre}/`;
  const tail = post === '' ? '' : `/${post}`;
  const run = rnd.pick(['**', '**', '***']);
  switch (rnd.int(0, 9)) {
    case 0:
      return `${head}${left}${run}/${right}${tail}`; // matches rel itself only through the zero-folder case
    case 1:
      return `${head}${left}${run}${tail === '' ? '' : `/${post.split('/').pop()!}`}`;
    case 2:
      return `${head}${left}${run}`;
    case 3:
      return `${head}${left}${run}\\/${right}${tail}`;
    case 4:
      return `${head}${run}\\/${right}${tail}`;
    case 5:
      return `${head}${left}\\/${run}/${right}${tail}`;
    case 6:
      return `${head}${left}${run}/${run}/${right}${tail}`;
    case 7:
      return `${head}${left}${run}${right}${tail}`;
    case 8:
      return `/${run}/${left}${run}${tail}`;
    default:
      return `${head}${left}*${run}/${right}${tail}`;
  }
}

/** A random pattern line for an ignore file in `dir`, usually derived from a path below it. */
function patternLine(rnd: Random, tree: Tree, dir: string, focus: readonly string[]): string {
  const below = [...tree.dirs, ...tree.files].filter((p) => dir === '' || p.startsWith(`${dir}/`));
  const target = below.length > 0 && rnd.chance(0.9) ? rnd.pick(below) : `${dir ? `${dir}/` : ''}${rnd.pick(NAMES)}`;
  const rel = (dir === '' ? target : target.slice(dir.length + 1)).split('/');
  const roll = rnd.int(0, 99);
  let line: string;
  if (roll < 4) return rnd.pick(['', '#comment', '# *', '   ', '!', '/', '\\', '*', '**', '/*', '!*', '/**', '**/']);
  if (roll < 20) {
    line = globstarOddity(rnd, rel);
  } else if (roll < 28) {
    // Re-include a folder (or a file) that broader patterns exclude, so that what is below it is
    // decided by patterns matching the paths themselves.
    const dirsBelow = tree.dirs.filter((p) => dir === '' || p.startsWith(`${dir}/`));
    const pick = (dirsBelow.length > 0 ? rnd.pick(dirsBelow) : target).slice(dir === '' ? 0 : dir.length + 1).split('/');
    const body = (rnd.chance(0.5) ? pick : pick.slice(-1)).map((seg) => literal(rnd, seg)).join('/');
    return `!${rnd.chance(0.3) ? '/' : ''}${body}${rnd.chance(0.3) ? '/' : ''}`;
  } else if (roll < 45) {
    // Names shared by the files of a round, so that deeper files re-include what shallower ones
    // exclude and the other way round.
    const name = literal(rnd, rnd.pick(focus));
    line = rnd.pick([name, name, `${name}/`, `**/${name}`, `${name}/*`, `${name}/**`, `*/${name}`, `**/${name}/**`, `${name}*`]);
  } else {
    // Use a tail of the path (floating) or the whole of it (anchored).
    let segs = rnd.chance(0.5) ? rel.slice(rnd.int(0, rel.length - 1)) : rel;
    segs = segs.map((s) => (rnd.chance(0.45) ? segmentPattern(rnd, s) : literal(rnd, s)));
    if (segs.length > 2 && rnd.chance(0.2)) segs.splice(rnd.int(1, segs.length - 2), 1, '**');
    line = segs.join('/');
    const shape = rnd.int(0, 9);
    if (shape === 0) line = `/${line}`;
    else if (shape === 1) line = `**/${line}`;
    else if (shape === 2) line = `${line}/**`;
    else if (shape === 3 && segs.length > 1) line = `${segs[0]}/**/${segs.slice(1).join('/')}`;
  }
  if (rnd.chance(0.2)) line = `${line}/`;
  if (rnd.chance(0.35)) line = `!${line}`;
  if (rnd.chance(0.1)) line += rnd.pick([' ', '  ', '\t', '\\ ', ' \\ ']);
  return line;
}

function patternFile(rnd: Random, tree: Tree, dir: string, count: number, focus: readonly string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(patternLine(rnd, tree, dir, focus));
  const eol = rnd.chance(0.15) ? '\r\n' : '\n';
  return lines.join(eol) + (rnd.chance(0.8) ? eol : '');
}

const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  LC_ALL: 'C',
};

function git(cwd: string, args: string[], input?: string | Buffer, okCodes = [0]): string {
  const result = spawnSync('git', ['-c', 'core.ignorecase=false', '-c', 'core.quotepath=off', ...args], {
    cwd,
    input,
    env: { ...GIT_ENV, HOME: cwd, XDG_CONFIG_HOME: path.join(cwd, '.xdg') }, // no user core.excludesFile
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (!okCodes.includes(result.status ?? -1)) throw new Error(`git ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

const nulList = (out: string): string[] => out.split('\0').filter((s) => s !== '');

function hasEngineSegment(p: string): boolean {
  return p.split('/').some(isEngineName);
}

/** The local backend without its whole-tree listing, so that scanTree walks folder by folder. */
function withoutListTree(b: LocalBackend): Backend {
  return {
    displayName: b.displayName,
    id: b.id,
    listDir: (d) => b.listDir(d),
    stat: (p) => b.stat(p),
    read: (p, signal) => b.read(p, signal),
    write: (p, data, options) => b.write(p, data, options),
    deleteFile: (p) => b.deleteFile(p),
    mkdir: (p) => b.mkdir(p),
    rmdirIfEmpty: (p) => b.rmdirIfEmpty(p),
    close: () => b.close(),
  };
}

const gitAvailable = spawnSync('git', ['--version']).status === 0;

test('IgnoreRules agrees with git check-ignore on random trees and patterns', { skip: !gitAvailable && 'git not installed' }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-ignore-fuzz-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  let checked = 0;
  let ignoredCount = 0;
  const started = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    const roundSeed = (SEED + Math.imul(round, 0x9e3779b9)) >>> 0;
    const rnd = new Random(prng(roundSeed));
    const repo = path.join(root, `r${round}`);
    fs.mkdirSync(repo);
    git(repo, ['init', '-q', '--template=', '.']);

    const tree = makeTree(rnd);
    for (const d of tree.dirs) fs.mkdirSync(path.join(repo, d));
    for (const f of tree.files) fs.writeFileSync(path.join(repo, f), '');

    // Ignore files: the root, and a few folders at various depths.
    const focus = [0, 1, 2].map(() => rnd.pick(tree.dirs.length > 0 ? tree.dirs : NAMES).split('/').pop()!);
    const ignoreDirs = ['', ...tree.dirs.filter(() => rnd.chance(0.08))];
    const ignoreFiles = new Map<string, string>();
    for (const d of ignoreDirs) ignoreFiles.set(d, patternFile(rnd, tree, d, rnd.int(3, 12), focus));
    const excludeLines = patternFile(rnd, tree, '', rnd.int(0, 6), focus)
      .split('\n')
      .map((l) => l.replace(/\r$/, ''));
    for (const [d, content] of ignoreFiles) fs.writeFileSync(path.join(repo, d, '.gitignore'), content);
    fs.mkdirSync(path.join(repo, '.git', 'info'), { recursive: true });
    fs.writeFileSync(path.join(repo, '.git', 'info', 'exclude'), excludeLines.join('\n'));

    const rules = new IgnoreRules(excludeLines);
    for (const [d, content] of ignoreFiles) rules.addIgnoreFile(d, content);

    const paths = [...tree.dirs, ...tree.files];
    const isDir = new Set(tree.dirs);
    const gitIgnored = new Set(nulList(git(repo, ['check-ignore', '--no-index', '-z', '--stdin'], paths.join('\0') + '\0', [0, 1])));
    // Cross-check of the oracle for files: what `git add -A` leaves out.
    const lsIgnored = new Set(nulList(git(repo, ['ls-files', '--others', '--ignored', '--exclude-standard', '-z'])));
    for (const f of tree.files) {
      assert.equal(lsIgnored.has(f), gitIgnored.has(f), `seed ${roundSeed}: git check-ignore and git ls-files disagree on ${JSON.stringify(f)}`);
    }

    // The walkers' view: the production code that lists a tree, folder by folder through the
    // storage protocol (scanTree) and in one go (walkLocalTree, what LocalBackend.listTree runs in
    // a worker). Both add each folder's .syncignore on entry and never enter an ignored folder, so
    // everything below one counts as ignored. `.git` itself is left out like git leaves it out.
    for (const [d, content] of ignoreFiles) fs.writeFileSync(path.join(repo, d, IGNORE_FILE_NAME), content);
    const patterns = [...excludeLines, '/.git/'];
    const listing = walkLocalTree(repo, { patterns, ignoreFiles: 'collect' });
    const treeSeen = new Set([...listing.dirs, ...listing.files.map((f) => f.path)]);
    const local = new LocalBackend(repo);
    const folderByFolder = withoutListTree(local);
    const scanned = await scanTree(folderByFolder, { patterns, ignoreFiles: 'collect' });
    const scanSeen = new Set([...scanned.tree.dirs, ...scanned.tree.files.keys()]);
    const walkerIgnored = new Set(paths.filter((p) => !treeSeen.has(p)));
    const scannerIgnored = new Set(paths.filter((p) => !scanSeen.has(p)));

    const mismatches: string[] = [];
    for (const p of paths) {
      const expected = gitIgnored.has(p) || hasEngineSegment(p);
      const deep = rules.isIgnoredDeep(p, isDir.has(p));
      const walked = walkerIgnored.has(p);
      const scanned = scannerIgnored.has(p);
      if ((deep !== expected || walked !== expected || scanned !== expected) && mismatches.length < 25) {
        const verbose = git(repo, ['check-ignore', '--no-index', '-v', '-n', '--', p], undefined, [0, 1]).trim();
        mismatches.push(`${JSON.stringify(p)}${isDir.has(p) ? ' (dir)' : ''}: git=${expected} isIgnoredDeep=${deep} walkLocalTree=${walked} scanTree=${scanned}  [git -v: ${verbose}]`);
      }
      checked++;
      if (expected) ignoredCount++;
    }
    if (mismatches.length > 0) {
      const files = [...ignoreFiles]
        .map(([d, content]) => `--- ${d || '(root)'}/.gitignore\n${content}`)
        .concat(`--- .git/info/exclude (constructor patterns)\n${excludeLines.join('\n')}`)
        .join('\n');
      assert.fail(
        `IgnoreRules disagrees with git (IGNORE_FUZZ_SEED=${SEED}, round ${round}, round seed ${roundSeed}):\n` +
          `${mismatches.join('\n')}\n${files}`,
      );
    }
    fs.rmSync(repo, { recursive: true, force: true });
  }
  t.diagnostic(`seed ${SEED}: ${ROUNDS} rounds, ${checked} paths checked against git (${ignoredCount} ignored) in ${Date.now() - started} ms`);
});
