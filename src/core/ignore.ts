// Ignore rules with git's semantics (gitignore(5), as `git check-ignore` implements them).
//
// Matching a path against one pattern is done by the `ignore` package (or, for the plainest shapes,
// by a string comparison: see "Speed" below). Everything around it is done here, the way git's
// dir.c does it:
//   - each `.syncignore` holds patterns relative to its own folder; for a path, the deepest file
//     with a matching pattern decides, then shallower ones, then the root config patterns (git's
//     .git/info/exclude); within one file the last matching pattern wins;
//   - a folder excluded by any rule hides everything below it (`isIgnoredDeep`, or the walker that
//     does not descend);
//   - the engine's own names are always ignored.
//
// Each line is parsed here with git's grammar and handed to the package rewritten in a form on
// which the package and git agree, because they do not agree on every pattern (the differential
// test in test/ignore.git.test.ts checks the whole against `git check-ignore`):
//   - git matches the UTF-8 bytes of a name, the package UTF-16 code units: `?` or `[...]` match
//     one byte in git. Patterns and paths with non-ASCII characters are both turned into "byte
//     strings" (one char per UTF-8 byte) before matching.
//   - git strips the literal prefix of a pattern before wildmatch() sees it, so a run of `**` right
//     after it is a globstar even mid-segment (`a**/b` matches `ab`, `a/b`, `ax/y/b`). The package
//     reads it as a plain `*`. Such a run is expanded here into equivalent package patterns.
//   - `**` next to an escaped slash (`**\/b`) is a globstar in git (with no zero-folder match);
//     the package does not see it. Rewritten here too.
//   - the package also evaluates the parent folders of a path against the same rules and reports
//     the path ignored when a parent is; git does that only across all files together. Each package
//     matcher therefore ends with `!*/`, which un-ignores every parent, so it answers for the path
//     alone; the parents are looked at here.
//
// Speed: the walker asks about every entry of large trees. A line that is a plain name, `*.ext`,
// `name*`, a plain path or `dir/**` is matched with a string comparison (git special-cases most of
// these too); any other line asks the package only when a literal part of it occurs in the path.
// The list of files that apply to a folder's entries is computed once per folder.
import ignore from 'ignore';
import { ENGINE_PREFIXES, isEngineName, joinPath, parentOf } from './paths';

export const IGNORE_FILE_NAME = '.syncignore';

/** A compiled list that applies to the paths below `dir`, with how much of a (byte) path to cut off. */
interface Layer {
  readonly list: CompiledList;
  /** Length, in byte-string characters, of `dir/` (0 at the root). */
  readonly cut: number;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** A string with one char (0-255) per UTF-8 byte: what git's byte-wise matching sees. */
function toBytes(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

// ---------------------------------------------------------------------------------------------
// Parsing one line the way git does (dir.c: add_patterns_from_buffer, trim_trailing_spaces,
// parse_path_pattern, match_basename, match_pathname; wildmatch.c: dowild).

type Token =
  | { readonly t: 'lit'; readonly c: string; readonly esc: boolean }
  | { readonly t: 'slash'; readonly esc: boolean }
  | { readonly t: 'star'; readonly n: number }
  | { readonly t: 'any' } // ?
  | { readonly t: 'class'; readonly raw: string }; // [...], passed through: the package scans it as git does

/** git's trim_trailing_spaces: drop trailing spaces, unless the first of them is escaped. */
function trimTrailingSpaces(line: string): string {
  let lastSpace = -1;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === ' ') {
      if (lastSpace < 0) lastSpace = i;
    } else if (c === '\\') {
      i++;
      if (i >= line.length) return line;
      lastSpace = -1;
    } else {
      lastSpace = -1;
    }
  }
  return lastSpace < 0 ? line : line.slice(0, lastSpace);
}

/**
 * Index of the `]` closing the bracket expression that opens at `s[start] === '['`, or -1 when git
 * would abort on it (unterminated, or an unknown `[:class:]`): such a pattern never matches.
 * Mirrors the member loop of wildmatch.c.
 */
function bracketEnd(s: string, start: number): number {
  const CLASSES = ['alnum', 'alpha', 'blank', 'cntrl', 'digit', 'graph', 'lower', 'print', 'punct', 'space', 'upper', 'xdigit'];
  let p = start + 1;
  if (s[p] === '!' || s[p] === '^') p++;
  let prev = '';
  for (;;) {
    let ch = s[p];
    if (ch === undefined) return -1;
    if (ch === '\\') {
      p++;
      ch = s[p];
      if (ch === undefined) return -1;
    } else if (ch === '-' && prev !== '' && s[p + 1] !== undefined && s[p + 1] !== ']') {
      p++;
      if (s[p] === '\\') {
        p++;
        if (s[p] === undefined) return -1;
      }
      ch = '';
    } else if (ch === '[' && s[p + 1] === ':') {
      const nameStart = p + 2;
      let q = nameStart;
      while (q < s.length && s[q] !== ']') q++;
      if (q >= s.length) return -1;
      if (q - nameStart - 1 < 0 || s[q - 1] !== ':') {
        ch = '['; // no ":]": a plain '[' member, scanning resumes after it
      } else {
        if (!CLASSES.includes(s.slice(nameStart, q - 1))) return -1;
        p = q;
        ch = '';
      }
    }
    prev = ch;
    p++;
    if (s[p] === ']') return p;
  }
}

/** Splits a pattern body (no `!`, no trailing `/`) into wildmatch tokens; null if it can never match. */
function tokenize(s: string): Token[] | null {
  const out: Token[] = [];
  for (let i = 0; i < s.length; ) {
    const c = s[i]!;
    if (c === '\\') {
      if (i + 1 >= s.length) return null; // a lone trailing backslash never matches
      const d = s[i + 1]!;
      out.push(d === '/' ? { t: 'slash', esc: true } : { t: 'lit', c: d, esc: true });
      i += 2;
    } else if (c === '/') {
      out.push({ t: 'slash', esc: false });
      i++;
    } else if (c === '*') {
      let j = i;
      while (s[j] === '*') j++;
      out.push({ t: 'star', n: j - i });
      i = j;
    } else if (c === '?') {
      out.push({ t: 'any' });
      i++;
    } else if (c === '[') {
      const end = bracketEnd(s, i);
      if (end < 0) return null;
      out.push({ t: 'class', raw: s.slice(i, end + 1) });
      i = end + 1;
    } else {
      out.push({ t: 'lit', c, esc: false });
      i++;
    }
  }
  return out;
}

/** A literal character, written so that the package reads it as exactly that character. */
function emitLiteral(c: string): string {
  if (c.charCodeAt(0) < 0x20 || c === '\x7f') return `[${c}]`; // never trimmed as a line end
  return '\\*?[]!# '.includes(c) ? `\\${c}` : c;
}

/** Where a `**` run stands, which decides whether git reads it as a globstar. */
type RunContext =
  | 'boundary' // at the start of the pattern or after a slash: the package knows this globstar
  | 'prefix' // first wildcard, right after the literal prefix git strips: globstar for git only
  | 'inside'; // after any other token: never a globstar

/**
 * Rewrites tokens[i..] of a path pattern into package syntax; several alternatives (whose union is
 * the git meaning) when a globstar has no single package equivalent.
 */
function emitPath(tokens: readonly Token[], i: number, ctx: RunContext, prefixEnd: number): string[] {
  if (i >= tokens.length) return [''];
  const tok = tokens[i]!;
  const nextCtx = (j: number): RunContext => (j === prefixEnd ? 'prefix' : 'inside');
  const prepend = (head: string, tails: string[]): string[] => tails.map((tail) => head + tail);
  switch (tok.t) {
    case 'lit':
      return prepend(emitLiteral(tok.c), emitPath(tokens, i + 1, nextCtx(i + 1), prefixEnd));
    case 'slash':
      return prepend('/', emitPath(tokens, i + 1, 'boundary', prefixEnd));
    case 'any':
      return prepend('?', emitPath(tokens, i + 1, 'inside', prefixEnd));
    case 'class':
      return prepend(tok.raw, emitPath(tokens, i + 1, 'inside', prefixEnd));
    case 'star': {
      const next = tokens[i + 1];
      const atEnd = next === undefined;
      const globstar = tok.n >= 2 && ctx !== 'inside' && (atEnd || next.t === 'slash');
      if (!globstar) return prepend('*', emitPath(tokens, i + 1, 'inside', prefixEnd));
      const escapedSlash = !atEnd && next.t === 'slash' && next.esc;
      if (ctx === 'boundary') {
        if (atEnd) return ['**'];
        // `**/` also matches zero folders; `**\/` does not (wildmatch tries the zero-folder
        // match only before a plain '/'), and after a boundary it spans one or more.
        return prepend(escapedSlash ? '*/**/' : '**/', emitPath(tokens, i + 2, 'boundary', prefixEnd));
      }
      // ctx === 'prefix': the run follows a literal in the same segment, e.g. `a**/b`. For git it
      // matches any text, slashes included, from right after the prefix.
      if (atEnd) return ['*', '*/**']; // rest of this segment, or it and anything below
      const below = prepend('*/**/', emitPath(tokens, i + 2, 'boundary', prefixEnd));
      if (escapedSlash) return below;
      // The zero-folder match: what follows `**/` goes right after the prefix, and starts a new
      // wildmatch() pattern, so a `**` run there is again in 'prefix' position.
      return [...emitPath(tokens, i + 2, 'prefix', i + 2), ...below];
    }
  }
}

/** One line of an ignore file, parsed. */
interface ParsedLine {
  readonly negative: boolean;
  readonly dirOnly: boolean;
  /** git's PATTERN_FLAG_NODIR: matched against the last path segment only. */
  readonly basename: boolean;
  /** The pattern without `!`, trailing `/` or leading `/`, as wildmatch tokens. */
  readonly tokens: readonly Token[];
  /** The same in package syntax: alternatives whose union is the line's meaning. */
  readonly bodies: readonly string[];
}

/** Parses one line (already split, in byte-string form); null for blanks, comments, never-matching lines. */
function parseLine(rawLine: string): ParsedLine | null {
  if (rawLine === '' || rawLine[0] === '#') return null;
  let s = trimTrailingSpaces(rawLine);
  let negative = false;
  if (s[0] === '!') {
    negative = true;
    s = s.slice(1);
  }
  let dirOnly = false;
  if (s.endsWith('/')) {
    dirOnly = true;
    s = s.slice(0, -1);
  }
  if (s === '') return null;
  const basename = !s.includes('/'); // no slash anywhere, even escaped or in [...]
  if (!basename && s[0] === '/') s = s.slice(1); // anchored at the ignore file's folder either way
  const tokens = tokenize(s);
  if (tokens === null || tokens.length === 0) return null;
  let bodies: string[];
  if (basename) {
    // Matched against one segment, so `**` is just `*` there.
    let body = '';
    for (const tok of tokens) {
      if (tok.t === 'lit') body += emitLiteral(tok.c);
      else if (tok.t === 'star') body += '*';
      else if (tok.t === 'any') body += '?';
      else if (tok.t === 'class') body += tok.raw;
    }
    bodies = [body];
  } else {
    // git's simple_length(): the literal prefix compared before wildmatch() runs.
    let prefixEnd = 0;
    while (prefixEnd < tokens.length) {
      const tok = tokens[prefixEnd]!;
      if ((tok.t === 'lit' || tok.t === 'slash') && !tok.esc) prefixEnd++;
      else break;
    }
    // Token 0 is either the first wildcard with nothing before it, or a literal (context unused).
    bodies = emitPath(tokens, 0, 'boundary', prefixEnd)
      // A path never starts or ends with '/', nor holds '//': an alternative that needs one never
      // matches. (A pattern like `a**//b` still can: its zero-folder case, `a/b`, has a single one.)
      .filter((body) => body !== '' && !body.startsWith('/') && !body.endsWith('/') && !body.includes('//'))
      // Explicitly anchored: the package anchors at a leading slash.
      .map((body) => `/${body}`);
  }
  return bodies.length === 0 ? null : { negative, dirOnly, basename, tokens, bodies };
}

/** git's line splitting: LF, with one CR before it dropped; a UTF-8 BOM at the start skipped. */
function splitLines(content: string): string[] {
  if (content.charCodeAt(0) === 0xfeff) content = content.slice(1);
  return content.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** How a compiled line is matched: a string comparison, or the package behind cheap literal checks. */
const EXACT = 0;
const ENDS_WITH = 1;
const STARTS_WITH = 2;
const PACKAGE = 3;

/** One line, compiled. Plain data with one shape, so that the matching loop stays monomorphic. */
interface Rule {
  readonly negative: boolean;
  /** Whether it is matched against the last segment of the path rather than the path relative to the file's folder. */
  readonly basename: boolean;
  readonly kind: typeof EXACT | typeof ENDS_WITH | typeof STARTS_WITH | typeof PACKAGE;
  /** EXACT, ENDS_WITH, STARTS_WITH: the literal text; PACKAGE: literal text every match contains. */
  readonly text: string;
  /** PACKAGE: literal text every match starts and ends with. */
  readonly prefix: string;
  readonly suffix: string;
  readonly inPackage: ((subject: string) => boolean) | null;
}

function ruleMatches(rule: Rule, subject: string): boolean {
  switch (rule.kind) {
    case EXACT:
      return subject === rule.text;
    case ENDS_WITH:
      return subject.endsWith(rule.text);
    case STARTS_WITH:
      return subject.startsWith(rule.text);
    default:
      return subject.endsWith(rule.suffix) && subject.startsWith(rule.prefix) && subject.includes(rule.text) && rule.inPackage!(subject);
  }
}

/** One ignore file (or the config patterns), compiled: its rules, last first. */
interface CompiledList {
  /** For files: directory-only rules left out. */
  readonly files: readonly Rule[];
  readonly dirs: readonly Rule[];
}

const PACKAGE_OPTIONS = { ignorecase: false, allowRelativePaths: true } as const;
/** After this many questions a rule's matcher is renewed, which drops the package's result cache. */
const CACHE_RENEWAL = 4096;

/**
 * Whether the package matches `subject` against one line's alternatives. The package caches every
 * answer forever; renewing the instance from the compiled template now and then bounds that memory
 * (the compiled rules, and their regular expressions, are shared, so this costs next to nothing).
 */
function packageMatcher(bodies: readonly string[], basename: boolean): (subject: string) => boolean {
  // For a path, the package also asks about its parent folders and answers "ignored" when one of
  // them is. `!*/` un-ignores every folder, so the answer is about the path alone; the parents are
  // looked at by IgnoreRules, across all files. A single segment has no parents.
  const template = ignore(PACKAGE_OPTIONS).add(basename ? [...bodies] : [...bodies, '!*/']);
  let matcher = ignore(PACKAGE_OPTIONS).add(template);
  let asked = 0;
  return (subject) => {
    if (++asked > CACHE_RENEWAL) {
      asked = 0;
      matcher = ignore(PACKAGE_OPTIONS).add(template);
    }
    return matcher.test(subject).ignored;
  };
}

/**
 * Compiles a parsed line into a predicate. The shapes git itself special-cases (dir.c:
 * match_basename's literal and "*literal" cases, match_pathname's literal prefix) and a couple more
 * just as plain are plain string comparisons; the others go to the package, behind a cheap check
 * that a literal part of the pattern is there at all, since most paths match no rule.
 */
function compileRule(line: ParsedLine): Rule {
  const { tokens, negative, basename } = line;
  const allLiteral = (from: number, to: number): boolean =>
    tokens.slice(from, to).every((tok) => tok.t === 'lit' || tok.t === 'slash');
  const text = (from: number, to: number): string =>
    tokens
      .slice(from, to)
      .map((tok) => (tok.t === 'lit' ? tok.c : '/'))
      .join('');
  const plain = (kind: Rule['kind'], literal: string): Rule => ({ negative, basename, kind, text: literal, prefix: '', suffix: '', inPackage: null });
  const n = tokens.length;
  const first = tokens[0]!;
  const last = tokens[n - 1]!;
  if (allLiteral(0, n)) return plain(EXACT, text(0, n)); // `name`, or a path `a/b`
  if (basename && first.t === 'star' && allLiteral(1, n)) return plain(ENDS_WITH, text(1, n)); // `*.log`
  if (basename && last.t === 'star' && allLiteral(0, n - 1)) return plain(STARTS_WITH, text(0, n - 1)); // `name*`
  if (!basename && n >= 3 && last.t === 'star' && last.n >= 2 && tokens[n - 2]!.t === 'slash' && allLiteral(0, n - 1)) {
    return plain(STARTS_WITH, text(0, n - 1)); // `a/b/**`
  }
  // Literal text that every match contains: the longest run of literal tokens. A slash right after
  // a `**` does not count: the zero-folder match (`a/**/b` matching `a/b`) drops it.
  const literalAt = (k: number): boolean => {
    const tok = tokens[k];
    return tok !== undefined && (tok.t === 'lit' || (tok.t === 'slash' && tokens[k - 1]?.t !== 'star'));
  };
  let required = '';
  let run = '';
  for (let k = 0; k < n; k++) {
    if (literalAt(k)) {
      run += text(k, k + 1);
      if (run.length > required.length) required = run;
    } else {
      run = '';
    }
  }
  // The literal text it starts and ends with (same exception).
  let suffixStart = n;
  while (suffixStart > 0 && literalAt(suffixStart - 1)) suffixStart--;
  let prefixEnd = 0;
  while (prefixEnd < n && literalAt(prefixEnd)) prefixEnd++;
  return {
    negative,
    basename,
    kind: PACKAGE,
    text: required,
    prefix: text(0, prefixEnd),
    suffix: text(suffixStart, n),
    inPackage: packageMatcher(line.bodies, basename),
  };
}

function compile(lines: readonly string[]): CompiledList | null {
  const files: Rule[] = [];
  const dirs: Rule[] = [];
  for (const line of lines) {
    const parsed = parseLine(toBytes(line));
    if (!parsed) continue;
    const rule = compileRule(parsed);
    dirs.push(rule);
    if (!parsed.dirOnly) files.push(rule);
  }
  if (dirs.length === 0) return null;
  return { files: files.reverse(), dirs: dirs.reverse() };
}

// ---------------------------------------------------------------------------------------------

export class IgnoreRules {
  private readonly base: CompiledList | null;
  private readonly files = new Map<string, CompiledList>();
  /** Per parent folder: the lists that apply to its entries, deepest first. */
  private readonly chains = new Map<string, Layer[]>();
  /** The last folder asked about, its chain and its byte form: the walker asks about a folder's entries in a row. */
  private lastParent = '';
  private lastChain: Layer[] | null = null;
  private lastParentBytes = '';

  /** `patterns`: lines from the user's config (and from an extra --ignore-file), applied at the root with the LOWEST precedence, like git's .git/info/exclude. */
  constructor(patterns: readonly string[] = []) {
    this.base = compile(patterns.flatMap((p) => splitLines(p)));
  }

  /** No pattern and no ignore file: nothing is ignored but engine-owned names. */
  get empty(): boolean {
    return this.base === null && this.files.size === 0;
  }

  /** Add the content of a `.syncignore` found in folder `dir` ('' = root, '/'-separated relative path). Its patterns are relative to `dir`, like a nested .gitignore. Adding again for the same folder replaces its previous content. */
  addIgnoreFile(dir: string, content: string): void {
    const key = dir.replace(/^\/+|\/+$/g, '');
    const list = compile(splitLines(content));
    if (list) this.files.set(key, list);
    else if (!this.files.delete(key)) return;
    this.chains.clear();
    this.lastChain = null;
  }

  /** Whether a path (relative, '/'-separated, no leading/trailing slash) is ignored. `isDir` tells if it is a folder. Assumes the caller did not descend into an ignored parent folder (the walker prunes). */
  isIgnored(path: string, isDir: boolean): boolean {
    if (path === '') return false;
    if (hasEngineSegment(path)) return true;
    const chain = this.chainFor(path);
    if (chain.length === 0) return false;
    let bytes = path;
    let name: string;
    if (NON_ASCII.test(path)) {
      name = toBytes(path.slice(path.lastIndexOf('/') + 1));
      bytes = this.lastParent === '' ? name : `${this.lastParentBytes}/${name}`;
    } else {
      name = path.slice(path.lastIndexOf('/') + 1);
    }
    for (const layer of chain) {
      const rel = layer.cut === 0 ? bytes : bytes.slice(layer.cut);
      // Within one file, the last matching rule decides; a file with none leaves it to the next.
      for (const rule of isDir ? layer.list.dirs : layer.list.files) {
        if (ruleMatches(rule, rule.basename ? name : rel)) return !rule.negative;
      }
    }
    return false;
  }

  /** Like isIgnored, but also true when any parent folder of `path` is ignored (git: a file inside an excluded folder cannot be re-included). For checking a single path without walking. */
  isIgnoredDeep(path: string, isDir: boolean): boolean {
    if (path === '') return false;
    if (hasEngineSegment(path)) return true;
    let dir = '';
    for (const segment of path.split('/').slice(0, -1)) {
      dir = joinPath(dir, segment);
      if (this.isIgnored(dir, true)) return true;
    }
    return this.isIgnored(path, isDir);
  }

  /** The lists that apply to `path`: those of its parent folder and above, deepest first. */
  private chainFor(path: string): Layer[] {
    const slash = path.lastIndexOf('/');
    const last = this.lastParent;
    if (this.lastChain !== null && (slash < 0 ? last === '' : slash === last.length && path.startsWith(last))) return this.lastChain;
    const parent = slash < 0 ? '' : path.slice(0, slash);
    let chain = this.chains.get(parent);
    if (!chain) {
      chain = [];
      for (let dir = parent; ; dir = parentOf(dir)) {
        const list = this.files.get(dir);
        if (list) chain.push({ list, cut: dir === '' ? 0 : Buffer.byteLength(dir, 'utf8') + 1 });
        if (dir === '') break;
      }
      if (this.base) chain.push({ list: this.base, cut: 0 });
      this.chains.set(parent, chain);
    }
    this.lastParent = parent;
    this.lastChain = chain;
    this.lastParentBytes = toBytes(parent);
    return chain;
  }
}

function hasEngineSegment(path: string): boolean {
  if (!ENGINE_PREFIXES.some((prefix) => path.includes(prefix))) return false; // the usual case, without splitting
  return path.split('/').some(isEngineName);
}
