// The workspace config file `.vscode/syncengine.json` (JSON with comments): its types, parsing and
// validation. Every problem points at the line and column of the offending text; all of them are
// collected (for the editor's diagnostics) and the first one is thrown.
//
// No `vscode` import: the CLI reads the same file.
import * as os from 'node:os';
import * as path from 'node:path';
import { getNodeValue, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { UsageError, errorMessage } from '../core/errors';
import {
  COMPARE_MODES,
  CONFLICT_STRATEGIES,
  INITIAL_PREFERENCES,
  MODE_ALIASES,
  SYNC_MODES,
  parseCompareMode,
  parseConflictStrategy,
  parseInitialPreference,
  parseSyncMode,
  type PlanOptions,
} from '../core/options';
import { describeTarget, parseTarget, type Target, type TargetKind } from './target';

export const CONFIG_RELATIVE_PATH = '.vscode/syncengine.json';

/** A subset of ConnectOptions (src/backends/registry.ts), same field names; paths are absolute. */
export interface TargetConnectConfig {
  keyFile?: string;
  knownHostsFile?: string;
  /** '' disables reading an ssh config file. */
  sshConfigFile?: string;
  ftpsImplicit?: boolean;
  allowUntrustedCertificate?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  connections?: number;
}

export interface SyncTargetConfig {
  name: string;
  /** Parsed with parseTarget(); local paths resolved against the workspace folder. */
  target: Target;
  /** The target as a URL or path, without secrets (for display). */
  url: string;
  /** Absolute path of the synced local folder (the workspace folder + localPath). */
  localRoot: string;
  /** Only what the file sets. */
  options: Partial<PlanOptions>;
  /** Top-level ignore patterns, then the target's. */
  ignore: string[];
  syncOnSave: boolean;
  limits: { transfers?: number; operations?: number };
  maxDeletePercent?: number;
  trashDays?: number;
  connect: TargetConnectConfig;
}

export interface WorkspaceSyncConfig {
  file: string;
  folder: string;
  /** In file order. */
  targets: SyncTargetConfig[];
  /** Profile names, in file order. */
  profiles: string[];
  /** The profile in effect (the caller's choice, else the file's "profile"); undefined: none. */
  activeProfile?: string;
}

/** A problem in a config file, at a 1-based line and column. */
export class ConfigError extends UsageError {
  /** Every problem found in the file, in document order; this error is the first of them. */
  problems: ConfigError[];

  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly problem: string,
    /** Offset and length (UTF-16 code units) of the offending text, for editor ranges. */
    readonly offset?: number,
    readonly length?: number,
  ) {
    super(`${file}:${line}:${column}: ${problem}`);
    this.problems = [this];
  }
}

// ---------------------------------------------------------------------------------------------
// Positions and problem collection (shared with the sftp.json importer).

/** Collects problems at text offsets and throws them as ConfigErrors with lines and columns. */
export class ProblemCollector {
  private readonly found: { offset: number; length: number; message: string }[] = [];
  private lineStarts: number[] | undefined;

  constructor(
    readonly text: string,
    readonly file: string,
  ) {}

  add(at: { offset: number; length: number } | undefined, message: string): void {
    const offset = at?.offset ?? 0;
    const length = at?.length ?? 0;
    if (this.found.some((p) => p.offset === offset && p.message === message)) return;
    this.found.push({ offset, length, message });
  }

  get count(): number {
    return this.found.length;
  }

  /** 1-based line and column (in UTF-16 code units, as editors count) of an offset. */
  position(offset: number): { line: number; column: number } {
    if (!this.lineStarts) {
      const starts = [0];
      const t = this.text;
      for (let i = 0; i < t.length; i++) {
        const c = t.charCodeAt(i);
        if (c === 13) {
          if (t.charCodeAt(i + 1) === 10) i++;
          starts.push(i + 1);
        } else if (c === 10) {
          starts.push(i + 1);
        }
      }
      this.lineStarts = starts;
    }
    const starts = this.lineStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - starts[lo]! + 1 };
  }

  errors(): ConfigError[] {
    const sorted = this.found.map((p, i) => ({ ...p, i })).sort((a, b) => a.offset - b.offset || a.i - b.i);
    const errors = sorted.map((p) => {
      const { line, column } = this.position(p.offset);
      return new ConfigError(this.file, line, column, p.message, p.offset, p.length);
    });
    for (const e of errors) e.problems = errors;
    return errors;
  }

  throwIfAny(): void {
    const errors = this.errors();
    if (errors.length > 0) throw errors[0];
  }
}

const SYNTAX_HINTS: Partial<Record<string, string>> = {
  InvalidSymbol: ' (strings and keys need "double quotes")',
  PropertyNameExpected: ' (keys need "double quotes")',
  CommaExpected: ' (is a comma missing at the end of the previous line?)',
  UnexpectedEndOfString: ' (a closing " is missing)',
  UnexpectedEndOfComment: ' (a closing */ is missing)',
  CloseBraceExpected: ' (a closing } is missing)',
  CloseBracketExpected: ' (a closing ] is missing)',
};

function syntaxProblem(error: ParseError): string {
  const code = printParseErrorCode(error.error);
  const words = code.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return `syntax error: ${words}${SYNTAX_HINTS[code] ?? ''}`;
}

/** The text without a leading byte order mark: editors do not count it in columns. */
export function withoutBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Parses JSON with comments (trailing commas allowed), reporting syntax errors to `problems`.
 * Returns undefined for an empty file or one with syntax errors.
 */
export function parseJsoncTree(text: string, problems: ProblemCollector): Node | undefined {
  const errors: ParseError[] = [];
  const root = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: true });
  for (const e of errors) problems.add({ offset: e.offset, length: e.length }, syntaxProblem(e));
  return errors.length > 0 ? undefined : root;
}

export interface JsonProperty {
  key: string;
  keyNode: Node;
  valueNode: Node;
}

/** The properties of an object node; a repeated key is reported (where: ' in target "x"') and skipped. */
export function objectProperties(obj: Node, problems: ProblemCollector, where: string): JsonProperty[] {
  const out: JsonProperty[] = [];
  const seen = new Set<string>();
  for (const prop of obj.children ?? []) {
    const keyNode = prop.children?.[0];
    const valueNode = prop.children?.[1];
    if (!keyNode || !valueNode) continue;
    const key = String(keyNode.value);
    if (seen.has(key)) {
      problems.add(keyNode, `duplicate key "${key}"${where}`);
      continue;
    }
    seen.add(key);
    out.push({ key, keyNode, valueNode });
  }
  return out;
}

/** A value as messages show it: strings quoted, objects and lists by kind. */
export function shownValue(node: Node): string {
  switch (node.type) {
    case 'object':
      return 'an object';
    case 'array':
      return 'a list';
    case 'string': {
      const s = JSON.stringify(node.value);
      return s.length > 50 ? `${s.slice(0, 47)}…"` : s;
    }
    default:
      return String(getNodeValue(node));
  }
}

/** Edit distance where swapping two neighbouring letters counts as one edit ("hots" → "host"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a small edit distance (case-insensitive), if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.min(3, Math.floor(w.length / 3))) ? best : undefined;
}

// ---------------------------------------------------------------------------------------------
// The keys of the format.

export const TARGET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9 _.-]*$/;
const NAME_RULE = 'may only hold letters, digits, spaces, "_", "." and "-", and must start with a letter or digit';

export const TOP_LEVEL_KEYS = ['$schema', 'ignore', 'targets', 'profiles', 'profile'] as const;

/** Every key a target (or a profile's override of a target) takes. */
export const TARGET_KEYS = [
  'url',
  'protocol',
  'host',
  'port',
  'username',
  'remotePath',
  'bucket',
  'prefix',
  'path',
  'localPath',
  'mode',
  'compare',
  'conflict',
  'initial',
  'ignore',
  'syncOnSave',
  'transfers',
  'operations',
  'connections',
  'maxDeletePercent',
  'trashDays',
  'privateKey',
  'knownHosts',
  'sshConfig',
  'ftpsImplicit',
  'allowUntrustedCertificate',
  's3',
] as const;

export const S3_KEYS = ['endpoint', 'region', 'pathStyle'] as const;

export const PROTOCOLS = ['sftp', 'ftp', 'ftps', 's3', 'local'] as const;

/** Keys that hold secrets: refused with an explanation. */
const SECRET_KEYS = new Set(['password', 'passphrase']);
const AWS_SECRET_KEYS = new Set(['accessKeyId', 'secretAccessKey', 'sessionToken', 'accessKey', 'secretKey']);

/** Names users bring from other tools (mostly the SFTP extension's sftp.json), and ours. */
const KEY_HINTS: Readonly<Record<string, string>> = {
  user: 'username',
  uploadOnSave: 'syncOnSave',
  privateKeyPath: 'privateKey',
  keyFile: 'privateKey',
  identityFile: 'privateKey',
  context: 'localPath',
  concurrency: 'transfers',
  sshConfigPath: 'sshConfig',
  knownHostsFile: 'knownHosts',
  remote: 'url',
  destination: 'url',
  target: 'url',
  secure: 'url": "ftps://…',
  endpoint: 's3": { "endpoint',
  region: 's3": { "region',
  pathStyle: 's3": { "pathStyle',
  s3Endpoint: 's3": { "endpoint',
  s3Region: 's3": { "region',
  s3PathStyle: 's3": { "pathStyle',
  maxDelete: 'maxDeletePercent',
  syncMode: 'mode',
  exclude: 'ignore',
};

const LOCATION_KEYS = ['url', 'protocol', 'host', 'port', 'username', 'remotePath', 'bucket', 'prefix', 'path'] as const;
const HOST_KINDS: readonly TargetKind[] = ['sftp', 'ftp', 'ftps'];
/** The kinds of target a key applies to (keys not listed apply to all). */
const KEY_KINDS: Partial<Record<string, readonly TargetKind[]>> = {
  host: HOST_KINDS,
  port: HOST_KINDS,
  username: HOST_KINDS,
  remotePath: HOST_KINDS,
  bucket: ['s3'],
  prefix: ['s3'],
  path: ['local'],
  privateKey: ['sftp'],
  knownHosts: ['sftp'],
  sshConfig: ['sftp'],
  ftpsImplicit: ['ftps'],
  allowUntrustedCertificate: ['ftps'],
  s3: ['s3'],
  connections: ['sftp', 'ftp', 'ftps', 's3'],
};

function kindList(kinds: readonly TargetKind[]): string {
  const names = kinds.map((k) => (k === 'local' ? 'local folder' : k));
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

// ---------------------------------------------------------------------------------------------
// Value checks. Each reports its problem at the value and returns INVALID.

const INVALID = Symbol('invalid');
type Checked<T> = T | typeof INVALID;
type Check = (node: Node, label: string, problems: ProblemCollector) => Checked<unknown>;

function quotedList(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(', ');
}

const stringValue =
  (options: { nonEmpty?: boolean } = {}): Check =>
  (node, label, problems) => {
    if (node.type !== 'string') {
      problems.add(node, `${label} must be a string, not ${shownValue(node)}`);
      return INVALID;
    }
    if (options.nonEmpty && String(node.value).trim() === '') {
      problems.add(node, `${label} must not be empty`);
      return INVALID;
    }
    return node.value as string;
  };

const booleanValue: Check = (node, label, problems) => {
  if (node.type !== 'boolean') {
    problems.add(node, `${label} must be true or false, not ${shownValue(node)}`);
    return INVALID;
  }
  return node.value as boolean;
};

const wholeNumber =
  (min: number, max: number): Check =>
  (node, label, problems) => {
    const v: unknown = node.value;
    if (node.type !== 'number' || typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      problems.add(node, `${label} must be a whole number from ${min} to ${max}, not ${shownValue(node)}`);
      return INVALID;
    }
    return v;
  };

const percentage: Check = (node, label, problems) => {
  const v: unknown = node.value;
  if (node.type !== 'number' || typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) {
    problems.add(node, `${label} must be a percentage from 0 to 100, not ${shownValue(node)}`);
    return INVALID;
  }
  return v;
};

const choice =
  (choices: readonly string[], parse: (v: string) => unknown = (v) => v, aliases: Readonly<Record<string, string>> = {}): Check =>
  (node, label, problems) => {
    const aliasText = Object.keys(aliases).length > 0 ? ` (or the short forms ${Object.keys(aliases).join(', ')})` : '';
    if (node.type !== 'string') {
      problems.add(node, `${label} must be one of ${quotedList(choices)}${aliasText}, not ${shownValue(node)}`);
      return INVALID;
    }
    const normal = String(node.value).trim().toLowerCase();
    if (choices.includes(normal) || Object.prototype.hasOwnProperty.call(aliases, normal)) return parse(normal);
    const guess = closest(String(node.value), [...choices, ...Object.keys(aliases)]);
    problems.add(node, `${label} must be one of ${quotedList(choices)}${aliasText}, not ${shownValue(node)}${guess ? ` (did you mean "${guess}"?)` : ''}`);
    return INVALID;
  };

const patterns: Check = (node, label, problems) => {
  if (node.type !== 'array') {
    problems.add(node, `${label} must be a list of patterns (gitignore syntax), like ["node_modules/", "*.log"], not ${shownValue(node)}`);
    return INVALID;
  }
  const out: string[] = [];
  let ok = true;
  for (const item of node.children ?? []) {
    if (item.type !== 'string' || String(item.value).trim() === '') {
      problems.add(item, `${label}: each pattern must be a non-empty string, not ${shownValue(item)}`);
      ok = false;
    } else {
      out.push(item.value as string);
    }
  }
  return ok ? out : INVALID;
};

const hostValue: Check = (node, label, problems) => {
  const v = stringValue({ nonEmpty: true })(node, label, problems);
  if (v === INVALID) return INVALID;
  const host = String(v).trim();
  if (/:\/\//.test(host)) {
    problems.add(node, `${label} is a host name, not a URL: use "url" for the whole URL, or give the host alone`);
    return INVALID;
  }
  if (/^[^:]+:\d+$/.test(host)) {
    problems.add(node, `${label} must be the host alone: put the port in "port"`);
    return INVALID;
  }
  if (!/^[^\s/@?#]+$/.test(host)) {
    problems.add(node, `${label} must be a host name or IP address (no "user@", spaces or path), not ${shownValue(node)}`);
    return INVALID;
  }
  return host;
};

const bucketValue: Check = (node, label, problems) => {
  const v = stringValue({ nonEmpty: true })(node, label, problems);
  if (v === INVALID) return INVALID;
  if (!/^[^\s/]+$/.test(String(v))) {
    problems.add(node, `${label} must be a bucket name (no "/" or spaces; the folder inside it goes in "prefix"), not ${shownValue(node)}`);
    return INVALID;
  }
  return v;
};

const localPathValue: Check = (node, label, problems) => {
  const v = stringValue()(node, label, problems);
  if (v === INVALID) return INVALID;
  const p = String(v);
  if (path.isAbsolute(p) || path.win32.isAbsolute(p) || p === '~' || p.startsWith('~/')) {
    problems.add(node, `${label} must be a folder relative to the workspace folder, like "public" or "src/site" ("" for the whole folder), not an absolute path`);
    return INVALID;
  }
  const normal = path.posix.normalize(p.replace(/\\/g, '/'));
  if (normal === '..' || normal.startsWith('../')) {
    problems.add(node, `${label} must be a folder inside the workspace folder, not ${shownValue(node)}`);
    return INVALID;
  }
  return p;
};

const httpUrl: Check = (node, label, problems) => {
  const v = stringValue({ nonEmpty: true })(node, label, problems);
  if (v === INVALID) return INVALID;
  if (!/^https?:\/\/[^/\s]/.test(String(v))) {
    problems.add(node, `${label} must be an http:// or https:// URL, like "https://s3.example.com" or "http://127.0.0.1:9000", not ${shownValue(node)}`);
    return INVALID;
  }
  return v;
};

function secretProblem(key: string, label: string): string {
  if (AWS_SECRET_KEYS.has(key)) {
    return `${label} does not belong in this file: S3 keys come from the usual AWS sources (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, AWS_PROFILE). Remove it`;
  }
  return `${label} does not belong in this file: SyncEngine asks for passwords and passphrases once and keeps them in VS Code's SecretStorage (the CLI reads SYNCENGINE_PASSWORD and SYNCENGINE_PASSPHRASE or asks). Remove it`;
}

interface Field {
  key: string;
  keyNode: Node;
  valueNode: Node;
  value: unknown;
}

function unknownKey(key: string, where: string, candidates: readonly string[]): string {
  const hint = KEY_HINTS[key];
  const guess = hint ?? closest(key, candidates);
  return `unknown key "${key}"${where}${guess ? ` (did you mean "${guess}"?)` : ''}`;
}

/** Checks the keys of an object against `checks`; returns the valid fields (null = invalid). */
function checkFields(obj: Node, where: string, checks: Readonly<Record<string, Check>>, problems: ProblemCollector): Map<string, Field | null> {
  const fields = new Map<string, Field | null>();
  for (const { key, keyNode, valueNode } of objectProperties(obj, problems, ` in ${where}`)) {
    const label = `"${key}" in ${where}`;
    if (SECRET_KEYS.has(key) || AWS_SECRET_KEYS.has(key)) {
      problems.add(keyNode, secretProblem(key, label));
      continue;
    }
    const check = Object.prototype.hasOwnProperty.call(checks, key) ? checks[key] : undefined;
    if (!check) {
      problems.add(keyNode, unknownKey(key, ` in ${where}`, Object.keys(checks)));
      continue;
    }
    const value = check(valueNode, label, problems);
    fields.set(key, value === INVALID ? null : { key, keyNode, valueNode, value });
  }
  return fields;
}

const S3_CHECKS: Readonly<Record<(typeof S3_KEYS)[number], Check>> = {
  endpoint: httpUrl,
  region: stringValue({ nonEmpty: true }),
  pathStyle: booleanValue,
};

const s3Object: Check = (node, label, problems) => {
  if (node.type !== 'object') {
    problems.add(node, `${label} must be an object like { "endpoint": "https://…", "region": "us-east-1", "pathStyle": true }, not ${shownValue(node)}`);
    return INVALID;
  }
  const fields = checkFields(node, label.replace(/^"s3" in /, '"s3" of '), S3_CHECKS, problems);
  if ([...fields.values()].some((f) => f === null)) return INVALID;
  const out: Record<string, unknown> = {};
  for (const [k, f] of fields) out[k] = f!.value;
  return out;
};

const TARGET_CHECKS: Readonly<Record<(typeof TARGET_KEYS)[number], Check>> = {
  url: stringValue({ nonEmpty: true }),
  protocol: choice(PROTOCOLS),
  host: hostValue,
  port: wholeNumber(1, 65535),
  username: stringValue({ nonEmpty: true }),
  remotePath: stringValue({ nonEmpty: true }),
  bucket: bucketValue,
  prefix: stringValue(),
  path: stringValue({ nonEmpty: true }),
  localPath: localPathValue,
  mode: choice(SYNC_MODES, parseSyncMode, MODE_ALIASES),
  compare: choice(COMPARE_MODES, parseCompareMode),
  conflict: choice(CONFLICT_STRATEGIES, parseConflictStrategy),
  initial: choice(INITIAL_PREFERENCES, parseInitialPreference),
  ignore: patterns,
  syncOnSave: booleanValue,
  transfers: wholeNumber(1, 64),
  operations: wholeNumber(1, 256),
  connections: wholeNumber(1, 64),
  maxDeletePercent: percentage,
  trashDays: wholeNumber(0, 36500),
  privateKey: stringValue({ nonEmpty: true }),
  knownHosts: stringValue({ nonEmpty: true }),
  sshConfig: stringValue(),
  ftpsImplicit: booleanValue,
  allowUntrustedCertificate: booleanValue,
  s3: s3Object,
};

// ---------------------------------------------------------------------------------------------
// Paths.

function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/') || p.startsWith('~\\')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/** A path from the file: ~ is the home folder, relative paths are relative to the workspace folder. */
export function resolveConfigPath(p: string, folder: string): string {
  return path.resolve(folder, expandHome(p));
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]+):\/\//;

function encodePath(p: string): string {
  return p
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** The URL of a remote folder: absolute paths stay absolute, others are in the login folder (/~/). */
export function remoteUrlPath(remotePath: string): string {
  const p = remotePath.trim().replace(/\\/g, '/');
  if (p.startsWith('/')) return encodePath(p);
  const rel = p.replace(/^~(\/|$)/, '').replace(/^(\.\/)+/, '').replace(/^\.$/, '');
  return rel === '' ? '/~' : `/~/${encodePath(rel)}`;
}

/** sftp://user@host:port/path from its parts (user name and path %-encoded). */
export function hostUrl(kind: 'sftp' | 'ftp' | 'ftps', host: string, remotePath: string, user?: string, port?: number): string {
  const userPart = user !== undefined ? `${encodeURIComponent(user)}@` : '';
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${kind}://${userPart}${hostPart}${port !== undefined ? `:${port}` : ''}${remoteUrlPath(remotePath)}`;
}

// ---------------------------------------------------------------------------------------------
// Parsing.

interface TargetDecl {
  name: string;
  nameNode: Node;
  fields: Map<string, Field | null>;
}

interface ProfileDecl {
  name: string;
  nameNode: Node;
  overrides: Map<string, { nameNode: Node; fields: Map<string, Field | null> }>;
}

/** Base fields with a profile's override on top ("s3" merged key by key, everything else replaced). */
function mergeFields(base: Map<string, Field | null>, override: Map<string, Field | null> | undefined): Map<string, Field | null> {
  if (!override) return base;
  const merged = new Map(base);
  const overridesUrl = override.has('url');
  const overridesStructured = LOCATION_KEYS.some((k) => k !== 'url' && override.has(k));
  // A "url" in the profile replaces the whole location of the base.
  if (overridesUrl) for (const k of LOCATION_KEYS) merged.delete(k);
  // Structured keys in the profile over a base "url": the base URL goes, so that a missing
  // "protocol"/"host" is reported instead of an ambiguous mix.
  if (overridesStructured && base.has('url')) merged.delete('url');
  for (const [k, f] of override) {
    const b = merged.get(k);
    if (k === 's3' && f && b) merged.set(k, { ...f, value: { ...(b.value as object), ...(f.value as object) } });
    else merged.set(k, f);
  }
  return merged;
}

interface ResolveContext {
  folder: string;
  topIgnore: string[];
  problems: ProblemCollector;
}

function resolveTarget(decl: TargetDecl, fields: Map<string, Field | null>, suffix: string, ctx: ResolveContext): SyncTargetConfig | undefined {
  const { problems, folder } = ctx;
  const where = `target "${decl.name}"`;
  const has = (k: string) => fields.has(k);
  const get = (k: string) => fields.get(k) ?? undefined;
  const val = <T>(k: string) => get(k)?.value as T | undefined;

  // Invalid fields have been reported already; the location is checked only when its keys are valid.
  const broken = [...fields.values()].some((f) => f === null);
  if (LOCATION_KEYS.some((k) => fields.get(k) === null)) return undefined;

  let target: Target | undefined;
  const urlField = get('url');
  const protocolField = get('protocol');
  const structured = LOCATION_KEYS.filter((k) => k !== 'url' && k !== 'protocol' && has(k));
  if (urlField) {
    for (const k of [...structured, ...(protocolField ? ['protocol'] : [])]) {
      problems.add(get(k)!.keyNode, `"${k}" cannot be used together with "url" in ${where}${suffix}: put everything in the URL, or drop "url" and use "protocol", "host", "username", "remotePath" (or "bucket"/"prefix", "path")`);
    }
    if (structured.length > 0 || protocolField) return undefined;
    target = targetFromUrl(String(urlField.value), urlField.valueNode, where + suffix, ctx);
  } else if (protocolField) {
    const kind = protocolField.value as TargetKind;
    for (const k of structured) {
      const kinds = KEY_KINDS[k]!;
      if (!kinds.includes(kind)) problems.add(get(k)!.keyNode, `"${k}" applies to ${kindList(kinds)} targets, but ${where} has "protocol": "${kind}"${suffix}`);
    }
    if (structured.some((k) => !KEY_KINDS[k]!.includes(kind))) return undefined;
    const needs = (k: string, example: string): boolean => {
      if (has(k)) return true;
      problems.add(decl.nameNode, `${where} has "protocol": "${kind}" but no "${k}"${suffix}: add ${example}`);
      return false;
    };
    let raw: string;
    if (kind === 'sftp' || kind === 'ftp' || kind === 'ftps') {
      const ok = [needs('host', '"host": "example.com"'), needs('remotePath', '"remotePath": "/var/www/site" (absolute) or "~/site" (in the login folder)')].every(Boolean);
      if (!ok) return undefined;
      raw = hostUrl(kind, val<string>('host')!, val<string>('remotePath')!, val<string>('username'), val<number>('port'));
    } else if (kind === 's3') {
      if (!needs('bucket', '"bucket": "my-bucket"')) return undefined;
      const prefix = (val<string>('prefix') ?? '').replace(/^\/+|\/+$/g, '');
      raw = `s3://${val<string>('bucket')}${prefix ? `/${encodePath(prefix)}` : ''}`;
    } else {
      if (!needs('path', '"path": "/backups/site" (absolute, ~/…, or relative to the workspace folder)')) return undefined;
      raw = val<string>('path')!;
    }
    const at = get(kind === 'local' ? 'path' : kind === 's3' ? 'bucket' : 'host')!.valueNode;
    target = targetFromUrl(raw, at, where + suffix, ctx);
  } else if (structured.length > 0) {
    problems.add(get(structured[0]!)!.keyNode, `${where} sets "${structured[0]}" but no "protocol"${suffix}: add "protocol" (${quotedList(PROTOCOLS)}) or give a "url" instead`);
    return undefined;
  } else {
    problems.add(decl.nameNode, `${where} has no "url"${suffix}: add one, like "sftp://user@example.com/var/www/site", "ftps://…", "s3://bucket/prefix" or a folder path`);
    return undefined;
  }
  if (!target) return undefined;

  // Keys that do not apply to this kind of target.
  let misplaced = false;
  for (const [k, f] of fields) {
    if (!f || LOCATION_KEYS.includes(k as (typeof LOCATION_KEYS)[number])) continue;
    const kinds = KEY_KINDS[k];
    if (kinds && !kinds.includes(target.kind)) {
      const fix = target.kind === 'ftp' && (k === 'ftpsImplicit' || k === 'allowUntrustedCertificate') ? ' (use an ftps:// URL for FTP over TLS)' : '';
      problems.add(f.keyNode, `"${k}" applies to ${kindList(kinds)} targets, but ${where} is ${target.kind === 'local' ? 'a local folder' : `an ${target.kind} target`}${suffix}${fix}`);
      misplaced = true;
    }
  }
  if (misplaced || broken) return undefined;

  const localPath = val<string>('localPath') ?? '';
  const localRoot = path.resolve(folder, localPath.replace(/\\/g, '/') || '.');
  if (target.kind === 'local' && (isInside(target.path, localRoot) || isInside(localRoot, target.path))) {
    const at = (get('url') ?? get('path'))!.valueNode;
    problems.add(at, `${where}${suffix} is the folder ${target.path}, which ${isInside(target.path, localRoot) ? 'is (or is inside) the synced folder' : 'contains the synced folder'} ${localRoot}: it would sync into itself`);
    return undefined;
  }

  const options: Partial<PlanOptions> = {};
  if (has('mode')) options.mode = val<PlanOptions['mode']>('mode')!;
  if (has('compare')) options.compare = val<PlanOptions['compare']>('compare')!;
  if (has('conflict')) options.conflict = val<PlanOptions['conflict']>('conflict')!;
  if (has('initial')) options.initial = val<PlanOptions['initial']>('initial')!;

  const limits: SyncTargetConfig['limits'] = {};
  if (has('transfers')) limits.transfers = val<number>('transfers')!;
  if (has('operations')) limits.operations = val<number>('operations')!;

  const connect: TargetConnectConfig = {};
  if (has('privateKey')) connect.keyFile = resolveConfigPath(val<string>('privateKey')!, folder);
  if (has('knownHosts')) connect.knownHostsFile = resolveConfigPath(val<string>('knownHosts')!, folder);
  if (has('sshConfig')) connect.sshConfigFile = val<string>('sshConfig') === '' ? '' : resolveConfigPath(val<string>('sshConfig')!, folder);
  if (has('ftpsImplicit')) connect.ftpsImplicit = val<boolean>('ftpsImplicit')!;
  if (has('allowUntrustedCertificate')) connect.allowUntrustedCertificate = val<boolean>('allowUntrustedCertificate')!;
  const s3 = val<{ endpoint?: string; region?: string; pathStyle?: boolean }>('s3');
  if (s3?.endpoint !== undefined) connect.s3Endpoint = s3.endpoint;
  if (s3?.region !== undefined) connect.s3Region = s3.region;
  if (s3?.pathStyle !== undefined) connect.s3PathStyle = s3.pathStyle;
  if (has('connections')) connect.connections = val<number>('connections')!;

  const result: SyncTargetConfig = {
    name: decl.name,
    target,
    url: describeTarget(target),
    localRoot,
    options,
    ignore: [...ctx.topIgnore, ...(val<string[]>('ignore') ?? [])],
    syncOnSave: val<boolean>('syncOnSave') ?? false,
    limits,
    connect,
  };
  if (has('maxDeletePercent')) result.maxDeletePercent = val<number>('maxDeletePercent')!;
  if (has('trashDays')) result.trashDays = val<number>('trashDays')!;
  return result;
}

/** A url string (or folder path) to a Target, reporting parseTarget's message at `at`. */
function targetFromUrl(untrimmed: string, at: Node, where: string, ctx: ResolveContext): Target | undefined {
  const raw = untrimmed.trim();
  if (!SCHEME.test(raw)) return parseTarget(resolveConfigPath(raw, ctx.folder), 'destination');
  try {
    const url = new URL(raw);
    if (url.password && url.protocol === 's3:') {
      ctx.problems.add(at, `the URL of ${where} holds a key, which does not belong in this file: S3 keys come from the usual AWS sources (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, AWS_PROFILE). Remove it from the URL`);
      return undefined;
    }
    if (url.password) {
      ctx.problems.add(at, `the URL of ${where} holds a password, which does not belong in this file: SyncEngine asks for passwords once and keeps them in VS Code's SecretStorage (the CLI reads SYNCENGINE_PASSWORD or asks). Remove it from the URL`);
      return undefined;
    }
  } catch {
    // parseTarget explains.
  }
  try {
    return parseTarget(raw, 'destination');
  } catch (error) {
    const message = errorMessage(error)
      .replace(/\b([Tt])he destination\b/g, 'the URL')
      .replace('--s3-endpoint', '"s3": { "endpoint": … }');
    ctx.problems.add(at, `${where}: ${message}`);
    return undefined;
  }
}

/**
 * Parses and validates `.vscode/syncengine.json`.
 * folder: absolute workspace folder path. profile: overrides the file's "profile" (undefined: use
 * the file's; '': no profile). Throws ConfigError (the first problem; all of them in `problems`).
 */
export function parseWorkspaceConfig(rawText: string, file: string, folder: string, options: { profile?: string } = {}): WorkspaceSyncConfig {
  const text = withoutBom(rawText);
  const problems = new ProblemCollector(text, file);
  const root = parseJsoncTree(text, problems);
  problems.throwIfAny();
  if (!root) {
    problems.add(undefined, 'the file is empty: it needs an object like { "targets": { "production": { "url": "sftp://user@example.com/var/www" } } }');
    problems.throwIfAny();
  }
  if (root!.type !== 'object') {
    problems.add(root, `the file must hold an object like { "targets": { … } }, not ${shownValue(root!)}`);
    problems.throwIfAny();
  }

  let topIgnore: string[] = [];
  let targetsNode: JsonProperty | undefined;
  let profilesNode: JsonProperty | undefined;
  let profileNode: JsonProperty | undefined;
  for (const prop of objectProperties(root!, problems, '')) {
    switch (prop.key) {
      case '$schema':
        stringValue()(prop.valueNode, '"$schema"', problems);
        break;
      case 'ignore': {
        const v = patterns(prop.valueNode, '"ignore"', problems);
        if (v !== INVALID) topIgnore = v as string[];
        break;
      }
      case 'targets':
        targetsNode = prop;
        break;
      case 'profiles':
        profilesNode = prop;
        break;
      case 'profile':
        profileNode = prop;
        break;
      default:
        if (SECRET_KEYS.has(prop.key) || AWS_SECRET_KEYS.has(prop.key)) problems.add(prop.keyNode, secretProblem(prop.key, `"${prop.key}"`));
        else if ((TARGET_KEYS as readonly string[]).includes(prop.key) || prop.key in KEY_HINTS) {
          problems.add(prop.keyNode, `unknown key "${prop.key}" at the top level: settings of a target go inside "targets", like "targets": { "production": { "${prop.key}": … } }`);
        } else problems.add(prop.keyNode, unknownKey(prop.key, ' at the top level', TOP_LEVEL_KEYS));
    }
  }

  // Targets.
  const targets: TargetDecl[] = [];
  const declaredTargets = new Set<string>();
  if (!targetsNode) {
    problems.add(root, 'no targets: add one under "targets", like "targets": { "production": { "url": "sftp://user@example.com/var/www" } }');
  } else if (targetsNode.valueNode.type !== 'object') {
    problems.add(targetsNode.valueNode, `"targets" must be an object of named targets, like { "production": { "url": "sftp://…" } }, not ${shownValue(targetsNode.valueNode)}`);
  } else {
    const props = objectProperties(targetsNode.valueNode, problems, ' in "targets"');
    if (props.length === 0) problems.add(targetsNode.valueNode, 'no targets: add one under "targets", like "production": { "url": "sftp://user@example.com/var/www" }');
    for (const { key, keyNode, valueNode } of props) {
      declaredTargets.add(key);
      if (!TARGET_NAME_PATTERN.test(key)) {
        problems.add(keyNode, key === '' ? 'a target name cannot be empty' : `the target name "${key}" ${NAME_RULE}`);
        continue;
      }
      if (valueNode.type !== 'object') {
        problems.add(valueNode, `target "${key}" must be an object like { "url": "sftp://…" }, not ${shownValue(valueNode)}`);
        continue;
      }
      targets.push({ name: key, nameNode: keyNode, fields: checkFields(valueNode, `target "${key}"`, TARGET_CHECKS, problems) });
    }
  }
  const targetNames = targets.map((t) => t.name);

  // Profiles.
  const profiles: ProfileDecl[] = [];
  const declaredProfiles = new Set<string>();
  if (profilesNode) {
    if (profilesNode.valueNode.type !== 'object') {
      problems.add(profilesNode.valueNode, `"profiles" must be an object of named profiles, like { "staging": { "production": { "url": "sftp://…" } } }, not ${shownValue(profilesNode.valueNode)}`);
    } else {
      for (const { key, keyNode, valueNode } of objectProperties(profilesNode.valueNode, problems, ' in "profiles"')) {
        declaredProfiles.add(key);
        if (!TARGET_NAME_PATTERN.test(key)) {
          problems.add(keyNode, key === '' ? 'a profile name cannot be empty' : `the profile name "${key}" ${NAME_RULE}`);
          continue;
        }
        if (valueNode.type !== 'object') {
          problems.add(valueNode, `profile "${key}" must be an object of target overrides, like { "production": { "url": "sftp://…" } }, not ${shownValue(valueNode)}`);
          continue;
        }
        const decl: ProfileDecl = { name: key, nameNode: keyNode, overrides: new Map() };
        for (const o of objectProperties(valueNode, problems, ` in profile "${key}"`)) {
          if (!targetNames.includes(o.key)) {
            // A target that is there but broken has been reported already.
            if (!declaredTargets.has(o.key)) {
              const guess = closest(o.key, targetNames);
              problems.add(o.keyNode, `profile "${key}" names an unknown target "${o.key}"${guess ? ` (did you mean "${guess}"?)` : targetNames.length > 0 ? ` (targets: ${quotedList(targetNames)})` : ''}`);
            }
            continue;
          }
          if (o.valueNode.type !== 'object') {
            problems.add(o.valueNode, `profile "${key}" for target "${o.key}" must be an object of settings to override, like { "url": "sftp://…" }, not ${shownValue(o.valueNode)}`);
            continue;
          }
          decl.overrides.set(o.key, { nameNode: o.keyNode, fields: checkFields(o.valueNode, `profile "${key}" for target "${o.key}"`, TARGET_CHECKS, problems) });
        }
        profiles.push(decl);
      }
    }
  }
  const profileNames = profiles.map((p) => p.name);
  const known = (): string => (profileNames.length > 0 ? `profiles: ${quotedList(profileNames)}` : 'there are no "profiles"');

  // The active profile.
  let fileProfile: string | undefined;
  if (profileNode) {
    const v = stringValue()(profileNode.valueNode, '"profile"', problems);
    if (v !== INVALID && v !== '') {
      if (profileNames.includes(v as string)) fileProfile = v as string;
      else if (!declaredProfiles.has(v as string)) {
        const guess = closest(v as string, profileNames);
        problems.add(profileNode.valueNode, `"profile" names an unknown profile "${v}"${guess ? ` (did you mean "${guess}"?)` : ''} (${known()})`);
      }
    }
  }
  let active: ProfileDecl | undefined;
  const wanted = options.profile !== undefined ? options.profile : fileProfile;
  if (wanted !== undefined && wanted !== '') {
    active = profiles.find((p) => p.name === wanted);
    if (!active && options.profile !== undefined) {
      problems.add(profilesNode?.keyNode ?? profileNode?.keyNode ?? root, `the selected profile "${wanted}" is not defined in this file (${known()})`);
    }
  }

  // Resolve every target as the active profile makes it, and as every other profile would, so that
  // a broken profile is reported before someone switches to it.
  const ctx: ResolveContext = { folder, topIgnore, problems };
  const resolved: SyncTargetConfig[] = [];
  for (const t of targets) {
    const activeOverride = active?.overrides.get(t.name);
    const r = resolveTarget(t, mergeFields(t.fields, activeOverride?.fields), activeOverride ? ` (with profile "${active!.name}")` : '', ctx);
    if (r) resolved.push(r);
    for (const p of profiles) {
      if (p === active) continue;
      const o = p.overrides.get(t.name);
      resolveTarget(t, mergeFields(t.fields, o?.fields), o ? ` (with profile "${p.name}")` : '', ctx);
    }
  }

  problems.throwIfAny();
  const config: WorkspaceSyncConfig = { file, folder, targets: resolved, profiles: profileNames };
  if (active) config.activeProfile = active.name;
  return config;
}

/** A starting config for a new user, as JSONC text with comments. */
export function configTemplate(fields: { name: string; url: string; syncOnSave: boolean; mode?: string }): string {
  if (!TARGET_NAME_PATTERN.test(fields.name)) throw new UsageError(`The target name "${fields.name}" ${NAME_RULE}`);
  if (fields.url.trim() === '') throw new UsageError('The target URL is empty');
  const mode = fields.mode !== undefined ? parseSyncMode(fields.mode) : 'two-way';
  const q = (v: unknown) => JSON.stringify(v);
  return `// SyncEngine: what this workspace folder syncs with (JSON with comments).
// Ctrl+Space lists every setting; all of them are described in the SyncEngine documentation (CONFIG.md).
// Passwords and passphrases never go in this file: SyncEngine asks once and keeps them in
// VS Code's SecretStorage.
{
  // Patterns (gitignore syntax) that no target syncs, in addition to .syncignore files.
  "ignore": [".git/", ".vscode/", "node_modules/", ".DS_Store"],

  "targets": {
    ${q(fields.name)}: {
      // sftp://user@host/path (/path is absolute; /~/path is in the login folder), ftp://…,
      // ftps://…, s3://bucket/prefix, or a folder (absolute, ~/…, or relative to this workspace folder).
      "url": ${q(fields.url)},

      // two-way, source-to-destination (mirror this folder to the target), source-backup (upload
      // only, never delete), destination-to-source (mirror the target here), destination-backup
      // (download only, never delete).
      "mode": ${q(mode)},

      // Sync a file when you save it (after checking that the target's copy has not changed since
      // the last sync).
      "syncOnSave": ${q(fields.syncOnSave)},

      // Which folder of the workspace folder is synced: "" for all of it, or e.g. "public".
      "localPath": ""

      // More: "compare", "conflict" (newest-wins, keep-both, manual, …), "initial", "ignore",
      // "transfers", "maxDeletePercent", "trashDays", "privateKey", "s3": { "endpoint", … }.
    }
  }

  // Profiles switch targets between servers, e.g.:
  // "profiles": { "staging": { ${q(fields.name)}: { "url": "sftp://user@staging.example.com/var/www" } } },
  // "profile": "staging"
}
`;
}
