// The part of OpenSSH's client configuration (~/.ssh/config, ssh_config(5)) that a sync tool needs
// to reach a host the way `ssh alias` does: HostName, User, Port, IdentityFile, IdentitiesOnly,
// IdentityAgent, ProxyJump, UserKnownHostsFile, ConnectTimeout, ServerAliveInterval/CountMax and
// HostKeyAlias. Everything else is read past without complaint (we are not a full ssh client).
//
// Semantics follow ssh_config(5):
//  - `keyword value` or `keyword=value`; keywords are case-insensitive; "double quotes" group words.
//  - `Host` patterns (`*`, `?`, `!negation`, several per line) and `Match` blocks decide which
//    following lines apply. Supported Match criteria: all, host, originalhost, user, localuser
//    (with `!` negation). `exec`, `canonical`, `final` and unknown criteria never match: we never run
//    commands from a config file.
//  - For each keyword the first obtained value wins; IdentityFile accumulates.
//  - `Include` (relative paths are under ~/.ssh, `*`/`?` wildcards in the file name part) is read in
//    place; Host/Match lines inside an included file do not change the including file's state.
//  - Tokens: `~`, %d (local home), %h (remote host name), %n (host as given), %p (port), %r (remote
//    user), %u (local user), %% in IdentityFile, UserKnownHostsFile and IdentityAgent; %h and %% in
//    HostName.
// Only the user's file is read (not /etc/ssh/ssh_config).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { UsageError } from '../core/errors';
import { matchPatternList, wildcardMatch } from './knownHosts';

/** What the config says about one host, tokens expanded. */
export interface SshHostSettings {
  /** The host as given (the alias). */
  alias: string;
  /** The real host name to connect to (HostName, else the alias). */
  hostName: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly?: boolean;
  /** IdentityAgent: a socket path, or 'none' to disable the agent. */
  identityAgent?: string;
  /** ProxyJump: `[user@]host[:port]` (one hop), or undefined. */
  proxyJump?: string;
  userKnownHostsFiles?: string[];
  connectTimeoutSeconds?: number;
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  hostKeyAlias?: string;
}

/** Settings as read, before the host name defaults to the alias. */
type RawSettings = Omit<SshHostSettings, 'alias' | 'hostName'> & { hostName?: string };

const MAX_INCLUDE_DEPTH = 16;

/** Splits the arguments of a config line into words, honouring double quotes. */
export function splitArguments(text: string, where: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /[ \t]/.test(text[i]!)) i++;
    if (i >= text.length) break;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new UsageError(`${where}: unterminated quote`);
      words.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !/[ \t]/.test(text[j]!)) j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return words;
}

/** One config line as keyword + arguments, or undefined for blank lines and comments. */
function parseLine(line: string, where: string): { keyword: string; args: string[] } | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const m = /^([A-Za-z][A-Za-z0-9]*)(?:[ \t]*=[ \t]*|[ \t]+|$)(.*)$/.exec(trimmed);
  if (!m) throw new UsageError(`${where}: cannot read this line: ${JSON.stringify(trimmed)}`);
  const args = splitArguments(m[2]!, where);
  // A trailing comment after the arguments ("Port 22 # comment") is not part of the value.
  const hash = args.findIndex((a) => a.startsWith('#'));
  return { keyword: m[1]!.toLowerCase(), args: hash >= 0 ? args.slice(0, hash) : args };
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return nodePath.join(home, p.slice(2));
  return p;
}

/** Files an Include argument names: relative to ~/.ssh, with wildcards in the last component. */
function includeFiles(arg: string, home: string): string[] {
  let p = expandHome(arg, home);
  if (!nodePath.isAbsolute(p)) p = nodePath.join(home, '.ssh', p);
  const dir = nodePath.dirname(p);
  const base = nodePath.basename(p);
  if (!/[*?]/.test(base)) return fs.existsSync(p) ? [p] : [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => wildcardMatch(base, n) && !n.startsWith('.')).sort().map((n) => nodePath.join(dir, n));
}

interface Context {
  alias: string;
  home: string;
  localUser: string;
  /** Explicit user (URL), used by `Match user` before the config names one. */
  user?: string;
  settings: RawSettings;
}

function positiveInt(value: string | undefined, where: string, keyword: string): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`${where}: ${keyword} needs a whole number, not ${JSON.stringify(value ?? '')}`);
  return n;
}

function yesNo(value: string | undefined, where: string, keyword: string): boolean {
  const v = value?.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  throw new UsageError(`${where}: ${keyword} is yes or no, not ${JSON.stringify(value ?? '')}`);
}

function matchCriteria(args: string[], ctx: Context, where: string): boolean {
  if (args.length === 0) throw new UsageError(`${where}: Match needs criteria`);
  let result = true;
  for (let i = 0; i < args.length; i++) {
    let criterion = args[i]!.toLowerCase();
    const negate = criterion.startsWith('!');
    if (negate) criterion = criterion.slice(1);
    let ok: boolean;
    if (criterion === 'all') {
      ok = true;
    } else if (['host', 'originalhost', 'user', 'localuser', 'exec', 'localnetwork', 'tagged'].includes(criterion)) {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`${where}: Match ${criterion} needs an argument`);
      const subject =
        criterion === 'host' ? ctx.settings.hostName ?? ctx.alias
        : criterion === 'originalhost' ? ctx.alias
        : criterion === 'user' ? ctx.user ?? ctx.settings.user ?? ctx.localUser
        : criterion === 'localuser' ? ctx.localUser
        : undefined;
      // exec/localnetwork/tagged: never evaluated (no commands are run from a config file).
      ok = subject !== undefined && matchPatternList(value, subject) === 1;
    } else {
      ok = false; // canonical, final, unknown: not supported, the block does not apply
    }
    if (negate) ok = !ok;
    result &&= ok;
  }
  return result;
}

function readFileLines(file: string, ctx: Context, initiallyActive: boolean, depth: number): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return;
    throw new UsageError(`Cannot read the ssh config file ${file}: ${(error as Error).message}`);
  }
  let active = initiallyActive;
  const lines = text.split(/\r?\n/);
  const s = ctx.settings;
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const parsed = parseLine(lines[i]!, where);
    if (!parsed) continue;
    const { keyword, args } = parsed;
    const value = args[0];
    switch (keyword) {
      case 'host':
        if (args.length === 0) throw new UsageError(`${where}: Host needs at least one pattern`);
        active = matchPatternList(args.join(','), ctx.alias) === 1;
        continue;
      case 'match':
        active = matchCriteria(args, ctx, where);
        continue;
      case 'include':
        if (args.length === 0) throw new UsageError(`${where}: Include needs a file`);
        if (!active) continue;
        if (depth >= MAX_INCLUDE_DEPTH) throw new UsageError(`${where}: Include nested too deeply`);
        for (const arg of args) for (const f of includeFiles(arg, ctx.home)) readFileLines(f, ctx, active, depth + 1);
        continue;
    }
    if (!active) continue;
    if (value === undefined) throw new UsageError(`${where}: ${keyword} needs a value`);
    switch (keyword) {
      case 'hostname':
        s.hostName ??= value;
        break;
      case 'user':
        s.user ??= value;
        break;
      case 'port': {
        const port = positiveInt(value, where, 'Port');
        if (port < 1 || port > 65535) throw new UsageError(`${where}: Port must be between 1 and 65535`);
        s.port ??= port;
        break;
      }
      case 'identityfile':
        if (value.toLowerCase() !== 'none') s.identityFiles.push(value);
        break;
      case 'identitiesonly':
        s.identitiesOnly ??= yesNo(value, where, 'IdentitiesOnly');
        break;
      case 'identityagent':
        s.identityAgent ??= value;
        break;
      case 'proxyjump':
        s.proxyJump ??= value;
        break;
      case 'userknownhostsfile':
        s.userKnownHostsFiles ??= args;
        break;
      case 'connecttimeout':
        s.connectTimeoutSeconds ??= positiveInt(value, where, 'ConnectTimeout');
        break;
      case 'serveraliveinterval':
        s.serverAliveInterval ??= positiveInt(value, where, 'ServerAliveInterval');
        break;
      case 'serveralivecountmax':
        s.serverAliveCountMax ??= positiveInt(value, where, 'ServerAliveCountMax');
        break;
      case 'hostkeyalias':
        s.hostKeyAlias ??= value;
        break;
      default:
        break; // not needed here
    }
  }
}

/** Expands %-tokens and `~` in a path-like value. */
function expandTokens(value: string, tokens: Readonly<Record<string, string>>, home: string, where: string): string {
  const expanded = value.replace(/%(.)/g, (whole, letter: string) => {
    if (letter === '%') return '%';
    const replacement = tokens[letter];
    if (replacement === undefined) throw new UsageError(`${where}: unsupported token ${whole} in ${JSON.stringify(value)}`);
    return replacement;
  });
  return expandHome(expanded, home);
}

/**
 * What `file` says about `alias`. A missing file means no settings. `explicit` carries the user and
 * port given on the command line / in the URL: they win over the file and feed its tokens.
 */
export function resolveSshHost(file: string | undefined, alias: string, explicit: { user?: string; port?: number } = {}, env: { home?: string; localUser?: string } = {}): SshHostSettings {
  const home = env.home ?? os.homedir();
  const localUser = env.localUser ?? safeLocalUser();
  const ctx: Context = { alias, home, localUser, settings: { identityFiles: [] }, ...(explicit.user !== undefined ? { user: explicit.user } : {}) };
  if (file) readFileLines(file, ctx, true, 0);
  const s = ctx.settings;
  const hostName = s.hostName ? s.hostName.replace(/%(.)/g, (w, l: string) => (l === 'h' ? alias : l === '%' ? '%' : w)) : alias;
  const user = explicit.user ?? s.user;
  const port = explicit.port ?? s.port;
  const tokens: Record<string, string> = { d: home, h: hostName, n: alias, p: String(port ?? 22), r: user ?? localUser, u: localUser, l: os.hostname() };
  const where = file ?? 'ssh config';
  const result: SshHostSettings = {
    alias,
    hostName,
    identityFiles: s.identityFiles.map((f) => expandTokens(f, tokens, home, where)),
  };
  if (user !== undefined) result.user = user;
  if (port !== undefined) result.port = port;
  if (s.identitiesOnly !== undefined) result.identitiesOnly = s.identitiesOnly;
  if (s.identityAgent !== undefined) result.identityAgent = s.identityAgent.toLowerCase() === 'none' || s.identityAgent === 'SSH_AUTH_SOCK' ? s.identityAgent : expandTokens(s.identityAgent, tokens, home, where);
  if (s.proxyJump !== undefined && s.proxyJump.toLowerCase() !== 'none') result.proxyJump = s.proxyJump;
  if (s.userKnownHostsFiles !== undefined) result.userKnownHostsFiles = s.userKnownHostsFiles.filter((f) => f.toLowerCase() !== 'none').map((f) => expandTokens(f, tokens, home, where));
  if (s.connectTimeoutSeconds !== undefined) result.connectTimeoutSeconds = s.connectTimeoutSeconds;
  if (s.serverAliveInterval !== undefined) result.serverAliveInterval = s.serverAliveInterval;
  if (s.serverAliveCountMax !== undefined) result.serverAliveCountMax = s.serverAliveCountMax;
  if (s.hostKeyAlias !== undefined) result.hostKeyAlias = s.hostKeyAlias;
  return result;
}

/** A ProxyJump value split into its parts: `[user@]host[:port]` or `ssh://[user@]host[:port]`. */
export function parseJumpSpec(spec: string): { host: string; user?: string; port?: number } {
  const where = `ProxyJump ${JSON.stringify(spec)}`;
  if (spec.includes(',')) throw new UsageError(`${where}: only one jump host is supported`);
  let rest = spec.replace(/^ssh:\/\//, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let host = rest;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  const plain = /^([^:]+):(\d+)$/.exec(rest);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if (plain) {
    host = plain[1]!;
    port = Number(plain[2]);
  }
  if (host === '' || (port !== undefined && (port < 1 || port > 65535))) throw new UsageError(`${where}: expected [user@]host[:port]`);
  return { host, ...(user ? { user } : {}), ...(port !== undefined ? { port } : {}) };
}

function safeLocalUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.LOGNAME ?? 'user';
  }
}

/** The local user name (the default remote user, as in ssh). */
export function localUserName(): string {
  return safeLocalUser();
}
