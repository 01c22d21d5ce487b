// Unit tests for IgnoreRules: one test per piece of gitignore semantics. The differential test
// against git itself is in ignore.git.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { IGNORE_FILE_NAME, IgnoreRules } from '../src/core/ignore';

/** Rules from one root `.syncignore` with these lines. */
function root(...lines: string[]): IgnoreRules {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('', lines.join('\n'));
  return rules;
}

const file = (rules: IgnoreRules, path: string): boolean => rules.isIgnored(path, false);
const dir = (rules: IgnoreRules, path: string): boolean => rules.isIgnored(path, true);

test('the ignore file is called .syncignore', () => {
  assert.equal(IGNORE_FILE_NAME, '.syncignore');
});

test('no rules: nothing is ignored, the root never is', () => {
  const rules = new IgnoreRules();
  assert.equal(file(rules, 'a.txt'), false);
  assert.equal(dir(rules, 'a/b'), false);
  assert.equal(root('*').isIgnored('', true), false);
  assert.equal(root('*').isIgnoredDeep('', true), false);
});

test('empty: true without patterns or ignore files; a comment-only file keeps it so, a rule ends it, removing the rule brings it back', () => {
  const rules = new IgnoreRules();
  assert.equal(rules.empty, true);
  rules.addIgnoreFile('a', '# only a comment\n\n');
  assert.equal(rules.empty, true);
  rules.addIgnoreFile('a/b', '*.log');
  assert.equal(rules.empty, false);
  rules.addIgnoreFile('a/b', '');
  assert.equal(rules.empty, true);
  assert.equal(new IgnoreRules(['*.tmp']).empty, false);
  assert.equal(new IgnoreRules(['# nothing']).empty, true);
});

test('blank lines and # comments match nothing', () => {
  const rules = root('', '   ', '# a.txt', '#b.txt', '\t#c.txt');
  assert.equal(file(rules, 'a.txt'), false);
  assert.equal(file(rules, '# a.txt'), false);
  assert.equal(file(rules, '#b.txt'), false);
  // Only a '#' in the first column starts a comment.
  assert.equal(file(rules, '\t#c.txt'), true);
});

test('\\# and \\! escape a leading # or !', () => {
  const rules = root('\\#notes', '\\!important');
  assert.equal(file(rules, '#notes'), true);
  assert.equal(file(rules, '!important'), true);
  assert.equal(file(rules, 'important'), false);
  // Literal '#' and '!' elsewhere in a pattern need no escape.
  assert.equal(file(root('a#b', 'c!d'), 'a#b'), true);
  assert.equal(file(root('a#b', 'c!d'), 'c!d'), true);
});

test('trailing spaces are dropped unless escaped with a backslash', () => {
  const trimmed = root('foo   ');
  assert.equal(file(trimmed, 'foo'), true);
  assert.equal(file(trimmed, 'foo '), false);
  const escaped = root('foo\\ ');
  assert.equal(file(escaped, 'foo '), true);
  assert.equal(file(escaped, 'foo'), false);
  // Only the spaces after the escaped one go.
  const both = root('bar\\  ');
  assert.equal(file(both, 'bar '), true);
  assert.equal(file(both, 'bar  '), false);
  // Leading spaces are part of the name, and tabs are not trimmed.
  assert.equal(file(root(' lead'), ' lead'), true);
  assert.equal(file(root(' lead'), 'lead'), false);
  assert.equal(file(root('tab\t'), 'tab'), false);
});

test('CRLF line endings and a byte order mark are handled like git', () => {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('', '\uFEFFfirst\r\nsecond\r\n');
  assert.equal(file(rules, 'first'), true);
  assert.equal(file(rules, 'second'), true);
  assert.equal(new IgnoreRules(['a\r']).isIgnored('a', false), true);
});

test('! negates: a later negation re-includes', () => {
  const rules = root('*.log', '!keep.log');
  assert.equal(file(rules, 'a.log'), true);
  assert.equal(file(rules, 'x/b.log'), true);
  assert.equal(file(rules, 'keep.log'), false);
  assert.equal(file(rules, 'x/keep.log'), false);
  // A lone '!' is no pattern.
  assert.equal(file(root('*', '!'), 'a'), true);
});

test('within one file the last matching pattern wins', () => {
  assert.equal(file(root('!a.txt', '*.txt'), 'a.txt'), true);
  assert.equal(file(root('*.txt', '!a.txt'), 'a.txt'), false);
  assert.equal(file(root('*.txt', '!a.txt', 'a*'), 'a.txt'), true);
});

test('a pattern without a slash matches the name at any depth', () => {
  const rules = root('foo');
  assert.equal(file(rules, 'foo'), true);
  assert.equal(file(rules, 'a/foo'), true);
  assert.equal(dir(rules, 'a/b/foo'), true);
  assert.equal(file(rules, 'foobar'), false);
  assert.equal(file(rules, 'a/xfoo'), false);
});

test('a leading slash anchors the pattern to the folder of its file', () => {
  const rules = root('/foo');
  assert.equal(file(rules, 'foo'), true);
  assert.equal(file(rules, 'a/foo'), false);
});

test('a slash in the middle anchors the pattern as well', () => {
  const rules = root('a/b');
  assert.equal(file(rules, 'a/b'), true);
  assert.equal(file(rules, 'x/a/b'), false);
  const star = root('a/*.c');
  assert.equal(file(star, 'a/x.c'), true);
  assert.equal(file(star, 'z/a/x.c'), false);
});

test('a trailing slash matches folders only', () => {
  const rules = root('build/');
  assert.equal(dir(rules, 'build'), true);
  assert.equal(dir(rules, 'x/build'), true);
  assert.equal(file(rules, 'build'), false);
  const anchored = root('/out/');
  assert.equal(dir(anchored, 'out'), true);
  assert.equal(dir(anchored, 'a/out'), false);
  assert.equal(file(anchored, 'out'), false);
});

test('* matches within one segment, including nothing', () => {
  const rules = root('a*c');
  assert.equal(file(rules, 'ac'), true);
  assert.equal(file(rules, 'abbc'), true);
  assert.equal(file(rules, 'ab'), false);
  const anchored = root('a/*');
  assert.equal(file(anchored, 'a/x'), true);
  assert.equal(file(anchored, 'a/x/y'), false); // isIgnored: the path alone; its parent a/x matched
  assert.equal(anchored.isIgnoredDeep('a/x/y', false), true);
  assert.equal(file(root('*.txt'), 'a.txt.bak'), false);
  assert.equal(file(root('*.txt'), '.txt'), true);
  assert.equal(file(root('ab*'), 'ab'), true);
  assert.equal(file(root('ab*'), 'a'), false);
});

test('? matches exactly one character, never a slash', () => {
  const rules = root('a?c');
  assert.equal(file(rules, 'abc'), true);
  assert.equal(file(rules, 'ac'), false);
  assert.equal(file(rules, 'abbc'), false);
  assert.equal(file(root('a?b/c'), 'a/b/c'), false);
});

test('[...] character classes, ranges, negated classes', () => {
  const set = root('[ab].txt');
  assert.equal(file(set, 'a.txt'), true);
  assert.equal(file(set, 'b.txt'), true);
  assert.equal(file(set, 'c.txt'), false);
  const range = root('v[0-3]');
  assert.equal(file(range, 'v2'), true);
  assert.equal(file(range, 'v4'), false);
  for (const negated of ['v[!0-3]', 'v[^0-3]']) {
    assert.equal(file(root(negated), 'v4'), true, negated);
    assert.equal(file(root(negated), 'v2'), false, negated);
  }
  assert.equal(file(root('[[:digit:]]x'), '7x'), true);
  assert.equal(file(root('[[:digit:]]x'), 'ax'), false);
  // ']' first in the class is a member; an unterminated class never matches.
  assert.equal(file(root('[]a]'), ']'), true);
  assert.equal(file(root('[!]]b'), 'ab'), true);
  assert.equal(file(root('[!]]b'), ']b'), false);
  assert.equal(file(root('[ab'), '[ab'), false);
  // Escaped brackets are literal.
  assert.equal(file(root('\\[x\\]'), '[x]'), true);
  assert.equal(file(root('\\[x\\]'), 'x'), false);
});

test('leading **/ matches in every folder', () => {
  const rules = root('**/foo');
  assert.equal(file(rules, 'foo'), true);
  assert.equal(file(rules, 'a/foo'), true);
  assert.equal(file(rules, 'a/b/foo'), true);
  const deeper = root('**/foo/bar');
  assert.equal(file(deeper, 'foo/bar'), true);
  assert.equal(file(deeper, 'x/y/foo/bar'), true);
  assert.equal(file(deeper, 'x/foo/y/bar'), false);
});

test('trailing /** matches everything inside, not the folder itself', () => {
  const rules = root('a/**');
  assert.equal(file(rules, 'a/x'), true);
  assert.equal(file(rules, 'a/x/y'), true);
  assert.equal(dir(rules, 'a'), false);
  assert.equal(file(rules, 'b/a/x'), false);
});

test('middle /**/ matches zero or more folders', () => {
  const rules = root('a/**/b');
  assert.equal(file(rules, 'a/b'), true);
  assert.equal(file(rules, 'a/x/b'), true);
  assert.equal(file(rules, 'a/x/y/b'), true);
  assert.equal(file(rules, 'a/xb'), false);
  assert.equal(file(rules, 'x/a/b'), false);
});

test('** right after a literal prefix is a globstar, as in git (a**/b matches ab, a/b, ax/y/b)', () => {
  const rules = root('a**/b');
  assert.equal(file(rules, 'ab'), true);
  assert.equal(file(rules, 'a/b'), true);
  assert.equal(file(rules, 'ax/y/b'), true);
  assert.equal(file(rules, 'b'), false);
  assert.equal(file(rules, 'x/ab'), false);
  const twice = root('a**/**/b');
  assert.equal(file(twice, 'ab'), true);
  assert.equal(file(twice, 'a/x/b'), true);
  // Before an escaped slash it is a globstar too, but without the zero-folder match.
  const escaped = root('a/**\\/b');
  assert.equal(file(escaped, 'a/x/b'), true);
  assert.equal(file(escaped, 'a/y/z/b'), true);
  assert.equal(file(escaped, 'a/b'), false);
  const trailing = root('x/ab**');
  assert.equal(file(trailing, 'x/abc'), true);
  assert.equal(file(trailing, 'x/abc/d/e'), true);
  assert.equal(file(trailing, 'x/a'), false);
});

test('matching is on UTF-8 bytes, as in git: ? is one byte, é is two', () => {
  assert.equal(file(root('é.txt'), 'é.txt'), true);
  assert.equal(file(root('x?y'), 'xéy'), false);
  assert.equal(file(root('x??y'), 'xéy'), true);
  assert.equal(file(root('*é'), 'café'), true);
  assert.equal(dir(root('dé/'), 'a/dé'), true);
});

test('matching is case-sensitive', () => {
  const rules = root('*.LOG', 'Build/', 'x.L[O]G', 'A[B]C', 'y[L]og');
  assert.equal(file(rules, 'a.log'), false);
  assert.equal(file(rules, 'a.LOG'), true);
  assert.equal(dir(rules, 'build'), false);
  assert.equal(file(rules, 'x.log'), false);
  assert.equal(file(rules, 'x.LOG'), true);
  assert.equal(file(rules, 'abc'), false);
  assert.equal(file(rules, 'ABC'), true);
  assert.equal(file(rules, 'ylog'), false);
  assert.equal(file(rules, 'yLog'), true);
});

test('patterns of a nested file are relative to its folder', () => {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('sub', '/x\ny/z\n*.tmp\n');
  assert.equal(file(rules, 'sub/x'), true);
  assert.equal(file(rules, 'x'), false);
  assert.equal(file(rules, 'sub/deeper/x'), false);
  assert.equal(file(rules, 'sub/y/z'), true);
  assert.equal(file(rules, 'y/z'), false);
  assert.equal(file(rules, 'sub/q/w.tmp'), true);
  assert.equal(file(rules, 'w.tmp'), false);
  assert.equal(file(rules, 'subx/w.tmp'), false);
});

test('a deeper file beats a shallower one', () => {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('', '*.log\n');
  rules.addIgnoreFile('keep', '!*.log\n');
  rules.addIgnoreFile('keep/drop', 'a.log\n');
  assert.equal(file(rules, 'x.log'), true);
  assert.equal(file(rules, 'keep/x.log'), false);
  assert.equal(file(rules, 'keep/y/x.log'), false);
  assert.equal(file(rules, 'keep/drop/a.log'), true);
  assert.equal(file(rules, 'keep/drop/b.log'), false);
  // Order of discovery does not matter.
  const reversed = new IgnoreRules();
  reversed.addIgnoreFile('keep', '!*.log\n');
  assert.equal(file(reversed, 'keep/x.log'), false);
  reversed.addIgnoreFile('', '*.log\n');
  assert.equal(file(reversed, 'keep/x.log'), false);
  assert.equal(file(reversed, 'x.log'), true);
});

test('a file without a matching pattern leaves the decision to shallower ones', () => {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('', '*.log\n');
  rules.addIgnoreFile('a', 'unrelated\n');
  assert.equal(file(rules, 'a/x.log'), true);
});

test('constructor patterns apply at the root with the lowest precedence', () => {
  const config = new IgnoreRules(['*.log', '/top']);
  assert.equal(file(config, 'x.log'), true);
  assert.equal(file(config, 'a/x.log'), true);
  assert.equal(file(config, 'top'), true);
  assert.equal(file(config, 'a/top'), false);
  const overridden = new IgnoreRules(['*.log']);
  overridden.addIgnoreFile('', '!keep.log\n');
  assert.equal(file(overridden, 'keep.log'), false);
  assert.equal(file(overridden, 'other.log'), true);
  // Even a negation in the config cannot beat a .syncignore.
  const lowest = new IgnoreRules(['!*.log']);
  lowest.addIgnoreFile('', '*.log\n');
  assert.equal(file(lowest, 'a.log'), true);
});

test('a folder re-included by a higher-precedence file exposes its content to the path rules only', () => {
  // The config excludes folders named foo; the root file re-includes them. What is below is then
  // decided by the patterns matching those paths themselves: `foo/` does not match foo/bar.
  const rules = new IgnoreRules(['foo/']);
  rules.addIgnoreFile('', '!foo/\n');
  assert.equal(dir(rules, 'foo'), false);
  assert.equal(file(rules, 'foo/bar'), false);
  assert.equal(rules.isIgnoredDeep('foo/bar', false), false);
  const nested = new IgnoreRules();
  nested.addIgnoreFile('', 'cache/\n');
  nested.addIgnoreFile('src', '!cache/\n');
  assert.equal(dir(nested, 'src/cache'), false);
  assert.equal(file(nested, 'src/cache/x'), false);
  assert.equal(dir(nested, 'lib/cache'), true);
});

test('nothing below an excluded folder can be re-included', () => {
  const rules = root('build/', '!build/keep.txt');
  assert.equal(dir(rules, 'build'), true);
  assert.equal(rules.isIgnoredDeep('build/keep.txt', false), true);
  assert.equal(rules.isIgnoredDeep('build/other', false), true);
  // isIgnored assumes the walker never went in: it judges the path alone.
  assert.equal(file(rules, 'build/keep.txt'), false);
  // Not even from a file inside the excluded folder.
  const nested = root('out/');
  nested.addIgnoreFile('out', '!*\n');
  assert.equal(nested.isIgnoredDeep('out/a', false), true);
  assert.equal(nested.isIgnoredDeep('out/x/y', true), true);
  assert.equal(nested.isIgnoredDeep('other/a', false), false);
});

test('engine names are always ignored, whatever the rules say', () => {
  const rules = new IgnoreRules(['!*']);
  rules.addIgnoreFile('', '!.syncengine*\n!.sync_state*\n!**\n');
  assert.equal(dir(rules, '.syncengine-trash'), true);
  assert.equal(dir(rules, '.syncengine'), true);
  assert.equal(file(rules, '.sync_state.json'), true);
  assert.equal(file(rules, 'a/b/.syncengine-tmp-123'), true);
  assert.equal(file(rules, '.syncengine/x'), true);
  assert.equal(rules.isIgnoredDeep('.syncengine-trash/a/b', false), true);
  assert.equal(file(rules, 'a/.sync_state/b'), true);
  assert.equal(file(rules, 'sync_state'), false);
  assert.equal(file(rules, 'x.syncengine'), false);
  assert.equal(file(rules, '.sync'), false);
});

test('adding a file again for the same folder replaces its patterns', () => {
  const rules = new IgnoreRules();
  rules.addIgnoreFile('', 'a\n');
  assert.equal(file(rules, 'a'), true);
  rules.addIgnoreFile('', 'b\n');
  assert.equal(file(rules, 'a'), false);
  assert.equal(file(rules, 'b'), true);
  rules.addIgnoreFile('', '# nothing\n');
  assert.equal(file(rules, 'b'), false);
});

test('50,000 isIgnored calls with ~20 patterns in 3 nested files give stable answers', (t) => {
  const makeRules = (): IgnoreRules => {
    const rules = new IgnoreRules(['*.tmp', '.DS_Store', 'Thumbs.db', 'node_modules/', '/dist/']);
    rules.addIgnoreFile('', ['# root', '*.log', '!important.log', 'build/', '/coverage', '**/cache/**', '*.o', '[Dd]ebug/', '*~'].join('\n'));
    rules.addIgnoreFile('src', ['generated/', '*.map', '!keep.map', 'a/**/b.ts', 'tmp?'].join('\n'));
    rules.addIgnoreFile('src/lib', ['*.test.ts', '!core.test.ts', '/old', 'fixtures/*.bin'].join('\n'));
    return rules;
  };
  // In walker order: the entries of one folder after another.
  const paths: Array<[string, boolean]> = [];
  const folders = ['', 'src', 'src/lib', 'src/lib/deep', 'docs', 'src/a/x', 'src/lib/fixtures', 'assets/é'];
  for (let i = 0; paths.length < 50_000; i++) {
    const folder = folders[Math.floor((i * folders.length) / 50_000)]!;
    const name = [`file${i}.ts`, `file${i}.log`, `mod${i % 97}`, `x${i}.test.ts`, `img ${i}.png`][i % 5]!;
    paths.push([folder === '' ? name : `${folder}/${name}`, name.startsWith('mod')]);
  }
  // Fresh rules each run: the walker asks about each path once, so no result cache may help.
  const runs: number[] = [];
  let ignored = 0;
  for (let run = 0; run < 3; run++) {
    const rules = makeRules();
    const started = performance.now();
    ignored = 0;
    for (const [p, isDir] of paths) if (rules.isIgnored(p, isDir)) ignored++;
    runs.push(performance.now() - started);
  }
  assert.ok(ignored > 0 && ignored < paths.length);
  assert.equal(file(makeRules(), 'src/lib/x.test.ts'), true);
  // Speed is reported, not asserted: figures belong to the benchmarks, not to pass/fail.
  t.diagnostic(`50,000 isIgnored calls on fresh rules: ${runs.map((ms) => ms.toFixed(1)).join(' / ')} ms (${ignored} ignored)`);
});
