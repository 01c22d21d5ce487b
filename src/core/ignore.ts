// Ignore rules with git's semantics (gitignore(5), as `git check-ignore` implements them).
//
// Pattern matching within one ignore file is done by the `ignore` package. Everything around it is
// done here, the way git's dir.c does it:
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
//   - the package evaluates the parent folders of a path against the same file and reports the path
//     ignored when a parent is; git only does that across all files together. Each compiled list
//     therefore ends with `!*/`, which un-ignores every parent, so the package answers for the path
//     alone; the parents are checked here.
import ignore from 'ignore';
import { isEngineName, joinPath, parentOf } from './paths';

export const IGNORE_FILE_NAME = '.syncignore';

type Matcher = ReturnType<typeof ignore>;

/** One ignore file (or the config patterns), compiled. */
interface CompiledList {
  /** Queried with a file's path: directory-only rules keep their trailing slash, so never match. */
  readonly files: Matcher;
  /** Queried with a folder's path in file form: directory-only rules lose the slash, so they match. */
  readonly dirs: Matcher;
}

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

/** One line of an ignore file, in package syntax: the patterns to add for files and for folders. */
interface ParsedLine {
  readonly negative: boolean;
  readonly dirOnly: boolean;
  /** Alternatives whose union is the line's meaning (no `!`, no trailing `/`). */
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
  const basenameOnly = !s.includes('/'); // git's PATTERN_FLAG_NODIR: no slash anywhere, even escaped or in [...]
  if (!basenameOnly && s[0] === '/') s = s.slice(1); // anchored at the ignore file's folder either way
  const tokens = tokenize(s);
  if (tokens === null || tokens.length === 0) return null;
  let bodies: string[];
  if (basenameOnly) {
    // Matched against the last path segment only; `**` there is just `*`.
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
  return bodies.length === 0 ? null : { negative, dirOnly, bodies };
}

/** git's line splitting: LF, with one CR before it dropped; a UTF-8 BOM at the start skipped. */
function splitLines(content: string): string[] {
  if (content.charCodeAt(0) === 0xfeff) content = content.slice(1);
  return content.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function compile(lines: readonly string[]): CompiledList | null {
  const forFiles: string[] = [];
  const forDirs: string[] = [];
  for (const line of lines) {
    const parsed = parseLine(toBytes(line));
    if (!parsed) continue;
    const bang = parsed.negative ? '!' : '';
    for (const body of parsed.bodies) {
      forFiles.push(bang + body + (parsed.dirOnly ? '/' : ''));
      forDirs.push(bang + body);
    }
  }
  if (forFiles.length === 0) return null;
  // `!*/` un-ignores every folder the package looks at on its own (the parents of the path asked
  // about, which it asks in 'dir/' form): only the path's own rules decide. See the top comment.
  const make = (patterns: string[]): Matcher => ignore({ ignorecase: false, allowRelativePaths: true }).add([...patterns, '!*/']);
  return { files: make(forFiles), dirs: make(forDirs) };
}

// ---------------------------------------------------------------------------------------------

export class IgnoreRules {
  private readonly base: CompiledList | null;
  private readonly files = new Map<string, CompiledList>();
  /** Per parent folder: the lists that apply to its entries, deepest first. */
  private readonly chains = new Map<string, Layer[]>();

  /** `patterns`: lines from the user's config (and from an extra --ignore-file), applied at the root with the LOWEST precedence, like git's .git/info/exclude. */
  constructor(patterns: readonly string[] = []) {
    this.base = compile(patterns.flatMap((p) => splitLines(p)));
  }

  /** Add the content of a `.syncignore` found in folder `dir` ('' = root, '/'-separated relative path). Its patterns are relative to `dir`, like a nested .gitignore. Adding again for the same folder replaces its previous content. */
  addIgnoreFile(dir: string, content: string): void {
    const key = dir.replace(/^\/+|\/+$/g, '');
    const list = compile(splitLines(content));
    if (list) this.files.set(key, list);
    else if (!this.files.delete(key)) return;
    this.chains.clear();
  }

  /** Whether a path (relative, '/'-separated, no leading/trailing slash) is ignored. `isDir` tells if it is a folder. Assumes the caller did not descend into an ignored parent folder (the walker prunes). */
  isIgnored(path: string, isDir: boolean): boolean {
    if (path === '') return false;
    if (hasEngineSegment(path)) return true;
    const chain = this.chainFor(parentOf(path));
    if (chain.length === 0) return false;
    const bytes = toBytes(path);
    for (const layer of chain) {
      const result = (isDir ? layer.list.dirs : layer.list.files).test(layer.cut === 0 ? bytes : bytes.slice(layer.cut));
      if (result.ignored) return true;
      if (result.unignored) return false;
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

  private chainFor(parent: string): Layer[] {
    let chain = this.chains.get(parent);
    if (chain) return chain;
    chain = [];
    for (let dir = parent; ; dir = parentOf(dir)) {
      const list = this.files.get(dir);
      if (list) chain.push({ list, cut: dir === '' ? 0 : Buffer.byteLength(dir, 'utf8') + 1 });
      if (dir === '') break;
    }
    if (this.base) chain.push({ list: this.base, cut: 0 });
    this.chains.set(parent, chain);
    return chain;
  }
}

function hasEngineSegment(path: string): boolean {
  if (!path.includes('.sync')) return false; // fast path: every engine prefix starts with '.sync'
  return path.split('/').some(isEngineName);
}
