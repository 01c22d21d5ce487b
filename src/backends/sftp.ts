// The SFTP backend: a folder on an SSH server as a store, over ssh2 (connections set up with
// ssh2-sftp-client; file operations on its raw SFTP channel for pipelining and extensions).
//
// Connecting (see open()):
//  - ~/.ssh/config host aliases (sshConfig.ts): HostName, User, Port, IdentityFile, ProxyJump (one
//    jump host: we connect to it, forwardOut to the target and run the target's SSH over that
//    channel), ServerAliveInterval, ConnectTimeout, UserKnownHostsFile, HostKeyAlias.
//  - Host keys are checked against known_hosts (knownHosts.ts), hashed entries included. Known and
//    matching: accepted. Unknown: accepted only when options.acceptHostKey is its fingerprint or the
//    user answers yes to options.prompt; otherwise a HostKeyError that shows the fingerprint. A
//    different key for a known host is always refused ("HOST KEY CHANGED"), never prompted. We never
//    write known_hosts: adding the host is the caller's decision (the CLI can print the line).
//  - Authentication, in order: options.keyFile (its passphrase from options.passphrase or the
//    prompt), ssh-agent ($SSH_AUTH_SOCK or IdentityAgent), IdentityFile keys of the ssh config or the
//    default ~/.ssh/id_* keys, options.password (password and keyboard-interactive), and when nothing
//    worked and a prompt exists, a password asked with options.prompt. A prompt that returns
//    undefined fails with a clear error, never hangs. Secrets are kept in memory only, per host (the
//    target's password is never offered to the jump host), so the pool and reconnections never ask
//    twice. The connection timeout (ConnectTimeout, default 20 s) is paused while a human answers.
//
// Connections: a small pool (options.connections, default 4) opened on demand, by transfers only
// (metadata requests share the open ones); each holds one SFTP session, many requests are in
// flight on each. A connection that drops (killed session, reset,
// keepalive timeout) fails its operations with a transient StorageError (the engine retries with
// backoff) and is replaced on the next operation. Temporary files a dropped write could not remove
// are removed after the reconnection.
//
// Transfers: reads and writes keep several large requests in flight on one session (like ssh2's
// fastGet/fastPut, but streaming): up to MAX_INFLIGHT requests of the server's maximum size (254 KiB
// on OpenSSH, 32 KiB elsewhere); writes no more than fill the server's channel window (8 on OpenSSH). A source stream is consumed with read(size) in ~1 MiB pieces, which
// makes a local file stream read ahead in large pieces too. Measured on loopback (2 cores, 256 MiB,
// end to end with connection setup, against OpenSSH 9.2 `sftp -b`): upload 1.3x and download 1.2x
// the throughput of sftp(1) (medians of 7 interleaved runs).
//
// Writes are atomic: the data goes to `.syncengine-tmp-<pid>-<hex>` in the target's folder (an
// engine-owned name, never listed), the mtime is set (whole seconds: SFTP v3), and the temp file is
// renamed over the target with posix-rename@openssh.com. Servers without it: the old file is moved
// to a second temporary name, the new one renamed in, the old one deleted; if the second rename
// fails, the old file is moved back. In that short window a reader finds no file at the path (never
// a partial one). A failed or aborted write removes its temp file and leaves the old content.
//
// Safety: every path is checked with assertSafeRelativePath; operations never go through a symlink
// that leads out of the root (parent folders are resolved with realpath on first use, then cached);
// the last component is never followed (lstat before open; symlinks, FIFOs and devices are refused),
// so a FIFO cannot block the server. rename/copyWithin/hardLink never replace an existing target.
//
// Optional capabilities are discovered at run time and only defined when present: rename (always),
// hash (exec of md5sum, when the account has a shell), copyWithin (copy-data extension, else exec of
// cp), hardLink (hardlink@openssh.com). Paths given to a shell are single-quoted with '\'' escaping.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import SftpClient from 'ssh2-sftp-client';
import { Client, utils as sshUtils, type AnyAuthMethod, type AuthenticationType, type ClientChannel, type ConnectConfig, type KeyboardInteractiveCallback, type ParsedKey, type Prompt, type SFTPWrapper, type Stats } from 'ssh2';
import type { RemoteHostTarget } from '../config/target';
import { hashOfStream, type HashAlgorithm } from '../core/contentHash';
import { StorageError, SyncError, UnsafePathError, UsageError } from '../core/errors';
import { TEMP_PREFIX, assertSafeRelativePath, isEngineName, isSafeName, joinPath, parentOf } from '../core/paths';
import { HostKeyError, checkHostKey, fingerprintOf, keyTypeOf, knownHostsName, knownKeyTypes, readKnownHostsFiles } from './knownHosts';
import { tempName } from './localTree';
import type { ConnectOptions } from './registry';
import { localUserName, parseJumpSpec, resolveSshHost, type SshHostSettings } from './sshConfig';
import type { Backend, Entry, ListDirOptions, ListDirResult, SkippedEntry, WriteOptions } from './types';
import { describeSubject as describe, type Subject } from './subject';

// ---------------------------------------------------------------------------------------------
// Tuning

const DEFAULT_CONNECTIONS = 4;
/** Requests in flight per transfer (reads and writes), each of the server's maximum size. */
const MAX_INFLIGHT = 16;
/**
 * Bytes of write requests in flight per upload: what OpenSSH's channel window takes (64 packets
 * of 32 KiB). More only waits in ssh2's buffers: 16 requests of 255 KiB made a 512 MiB upload to
 * OpenSSH on loopback about 10% slower than 8 (medians of 2.47 s and 2.07 s, interleaved runs).
 */
const WRITE_WINDOW_BYTES = 2 * 1024 * 1024;

/** Write requests kept in flight by an upload whose requests carry `requestBytes` each. */
export function writesInFlight(requestBytes: number): number {
  return Math.max(2, Math.min(MAX_INFLIGHT, Math.floor(WRITE_WINDOW_BYTES / requestBytes)));
}
/** Pieces an upload takes from its source stream at a time (see upload()). */
const SOURCE_PIECE_BYTES = 1024 * 1024;
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_KEEPALIVE_MS = 15_000;
const DEFAULT_KEEPALIVE_COUNT = 3;
/** Operations that may open another pooled connection: they move data, or make the server hash it. */
const HEAVY_OPERATIONS = new Set(['read', 'write', 'hash', 'copy']);
/** Concurrent exec channels per connection (OpenSSH allows 10 sessions per connection by default). */
const EXEC_SLOTS = 6;
const PROBE_TIMEOUT_MS = 5_000;
const PROBE_MARKER = 'syncengine-probe-8d1f';
const CLOSE_TIMEOUT_MS = 3_000;

/** SFTP v3 status codes. */
const FX = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, NO_CONNECTION: 6, CONNECTION_LOST: 7, OP_UNSUPPORTED: 8 } as const;

const TRANSIENT_NET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN']);

// ---------------------------------------------------------------------------------------------
// Errors

/** Authentication was refused (or could not be attempted). Never transient. */
export class SftpAuthError extends StorageError {
  constructor(message: string) {
    super(message, false);
  }
}

/** The connection could not be set up or was lost; `transient` for network-level causes. */
export class SftpConnectionError extends StorageError {}


function codeOf(error: unknown): string | number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' || typeof code === 'number' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'AbortError';
}

/** Carries an error of the caller's source stream through our error mapping unchanged. */
class PassThrough {
  constructor(readonly error: unknown) {}
}

/** Marks errors that mean "the connection is gone" (set on errors we create ourselves). */
const CONNECTION_LOST = Symbol('connectionLost');

/**
 * A temporary file of a transfer that was killed (by anyone: other machines sync here too). A
 * transfer in progress keeps writing (mtime moves) and sets the access time when it finishes, so a
 * temp file whose access and modification times are both a day old is no longer anyone's.
 */
const STALE_REMOTE_TEMP_MS = 24 * 3600_000;
function isStaleRemoteTemp(attrs: Stats): boolean {
  if (!attrs.isFile()) return false;
  const newest = Math.max(Number(attrs.atime) || 0, Number(attrs.mtime) || 0) * 1000;
  return newest > 0 && Date.now() - newest > STALE_REMOTE_TEMP_MS;
}

function isConnectionLevel(error: unknown): boolean {
  if ((error as { [CONNECTION_LOST]?: boolean } | null)?.[CONNECTION_LOST]) return true;
  const code = codeOf(error);
  if (code === FX.NO_CONNECTION || code === FX.CONNECTION_LOST) return true;
  if (typeof code === 'string' && TRANSIENT_NET_CODES.has(code)) return true;
  return /No response from server|Not connected|No SFTP connection|channel (is )?(not open|closed)|Unexpected (end|close) event|socket hang up|Keepalive timeout|write after end|Timed out while waiting for handshake/i.test(messageOf(error));
}

function lost(reason: string): Error {
  return Object.assign(new Error(reason), { [CONNECTION_LOST]: true });
}

// ---------------------------------------------------------------------------------------------
// Small utilities

/** A POSIX shell word: single quotes, with each ' written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A timeout that can be paused while a human answers a prompt. */
class PausableTimer {
  private timer: NodeJS.Timeout | undefined;
  private remaining: number;
  private startedAt = 0;
  private done = false;

  constructor(ms: number, private readonly onExpire: () => void) {
    this.remaining = ms;
    this.resume();
  }

  pause(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.remaining -= Date.now() - this.startedAt;
  }

  resume(): void {
    if (this.done || this.timer !== undefined) return;
    this.startedAt = Date.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.onExpire();
    }, Math.max(0, this.remaining));
  }

  clear(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints: where to connect, resolved from the target, the ssh config and the options

interface Endpoint {
  /** The host as the user named it (alias). */
  alias: string;
  host: string;
  port: number;
  user: string;
  /** `host:port` or `alias (host:port)`, for messages. */
  label: string;
  /** Name looked up in known_hosts: `host` or `[host]:port` (HostKeyAlias if set). */
  knownHostsName: string;
  identityFiles: string[];
  identitiesOnly: boolean;
  /** Agent socket, or undefined for none. */
  agent: string | undefined;
  connectTimeoutMs: number;
  keepaliveMs: number;
  keepaliveCount: number;
  jump?: Endpoint;
}

function endpointFrom(settings: SshHostSettings, defaults: { user: string }): Omit<Endpoint, 'jump'> {
  const host = settings.hostName;
  const port = settings.port ?? 22;
  const user = settings.user ?? defaults.user;
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`; // IPv6 in brackets
  const label = settings.alias.toLowerCase() === host.toLowerCase() ? hostPort : `${settings.alias} (${hostPort})`;
  const agentSetting = settings.identityAgent;
  const agent =
    agentSetting === undefined || agentSetting === 'SSH_AUTH_SOCK' ? process.env.SSH_AUTH_SOCK || undefined
    : agentSetting.toLowerCase() === 'none' ? undefined
    : agentSetting.startsWith('$') ? process.env[agentSetting.slice(1)] || undefined
    : agentSetting;
  return {
    alias: settings.alias,
    host,
    port,
    user,
    label,
    knownHostsName: settings.hostKeyAlias ? knownHostsName(settings.hostKeyAlias, 22) : knownHostsName(host, port),
    identityFiles: settings.identityFiles,
    identitiesOnly: settings.identitiesOnly ?? false,
    agent,
    connectTimeoutMs: settings.connectTimeoutSeconds !== undefined ? settings.connectTimeoutSeconds * 1000 : DEFAULT_CONNECT_TIMEOUT_MS,
    keepaliveMs: settings.serverAliveInterval !== undefined && settings.serverAliveInterval > 0 ? settings.serverAliveInterval * 1000 : DEFAULT_KEEPALIVE_MS,
    keepaliveCount: settings.serverAliveCountMax ?? DEFAULT_KEEPALIVE_COUNT,
  };
}

/** ssh2's default host key algorithms; those with a key in known_hosts for the host go first (as OpenSSH does). */
const HOST_KEY_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

function hostKeyAlgorithmsFor(knownTypes: readonly string[]): string[] {
  const preferred = knownTypes.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])).filter((a) => HOST_KEY_ALGORITHMS.includes(a));
  return [...new Set([...preferred, ...HOST_KEY_ALGORITHMS])];
}

// ---------------------------------------------------------------------------------------------
// Keys

interface KeySource {
  file: string;
  /** Given by the user (options.keyFile): problems are errors, not skipped. */
  explicit: boolean;
}

// ---------------------------------------------------------------------------------------------
// The connector: opens authenticated SSH connections with an SFTP session

interface AttemptState {
  hostKeyError?: StorageError;
  authError?: SftpAuthError;
  tried: string[];
  serverMethods?: string[];
  notes: string[];
  lastError?: Error;
}

class Connector {
  private readonly keys = new Map<string, ParsedKey | null>();
  /**
   * Passwords per `user@host:port` (options.password is the target's, never sent to the jump host),
   * given or prompted once: the pool and reconnections do not ask again.
   */
  private readonly passwords = new Map<string, string>();
  /** Host key fingerprints accepted in this session (by prompt or acceptHostKey), per known_hosts name. */
  private readonly accepted = new Map<string, string>();
  private readonly knownHostsFiles: string[];
  private nextId = 1;

  constructor(
    readonly endpoint: Endpoint,
    private readonly options: ConnectOptions,
    knownHostsFiles: string[],
  ) {
    if (options.password !== undefined) this.passwords.set(passwordKey(endpoint), options.password);
    this.knownHostsFiles = knownHostsFiles;
  }

  /** Checks and decrypts options.keyFile up front, so a wrong passphrase is reported before any connection. */
  async prepareExplicitKey(): Promise<void> {
    if (this.options.keyFile !== undefined) await this.loadKey({ file: this.options.keyFile, explicit: true });
  }

  private async ask(question: string, secret: boolean, timer?: PausableTimer): Promise<string | undefined> {
    if (!this.options.prompt) return undefined;
    timer?.pause();
    try {
      return await this.options.prompt(question, { secret });
    } finally {
      timer?.resume();
    }
  }

  /** Parses a private key file; null when it cannot be used (skipped, with a note). */
  private async loadKey(source: KeySource, notes: string[] = [], timer?: PausableTimer): Promise<ParsedKey | null> {
    const cached = this.keys.get(source.file);
    if (cached !== undefined) return cached;
    const fail = (message: string): null => {
      if (source.explicit) throw new SftpAuthError(message);
      notes.push(message);
      return null;
    };
    let data: Buffer;
    try {
      data = fs.readFileSync(source.file);
    } catch (error) {
      const code = codeOf(error);
      if (!source.explicit && code === 'ENOENT') return null;
      return fail(`Cannot read the private key ${source.file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : messageOf(error)}`);
    }
    const parse = (passphrase?: string): ParsedKey | Error => {
      const parsed = sshUtils.parseKey(data, passphrase);
      if (parsed instanceof Error) return parsed;
      const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
      if (!key) return new Error('no key in the file');
      if (!key.isPrivateKey()) return new Error('it is not a private key (give the private key, not the .pub file)');
      return key;
    };
    let key = parse(this.options.passphrase);
    if (key instanceof Error && /no passphrase given/i.test(key.message)) {
      const answer = await this.ask(`Passphrase for the private key ${source.file}: `, true, timer);
      if (answer === undefined) {
        this.keys.set(source.file, null);
        return fail(`The private key ${source.file} is protected by a passphrase and none was given (set SYNCENGINE_PASSPHRASE or answer the prompt)`);
      }
      key = parse(answer);
    }
    if (key instanceof Error) {
      this.keys.set(source.file, null);
      if (/bad passphrase|integrity check failed|decrypt/i.test(key.message)) return fail(`Wrong passphrase for the private key ${source.file}: it could not be decrypted`);
      return fail(`Cannot use the private key ${source.file}: ${key.message}`);
    }
    this.keys.set(source.file, key);
    return key;
  }

  /** Keys to try: options.keyFile (the target's; also tried on the jump host), IdentityFile, else ~/.ssh/id_*. */
  private keySources(ep: Endpoint, isTarget: boolean): KeySource[] {
    const sources: KeySource[] = [];
    if (isTarget && this.options.keyFile !== undefined) sources.push({ file: this.options.keyFile, explicit: true });
    for (const file of ep.identityFiles) sources.push({ file, explicit: false });
    if (sources.length === 0) {
      const ssh = nodePath.join(os.homedir(), '.ssh');
      for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) sources.push({ file: nodePath.join(ssh, name), explicit: false });
    }
    if (!isTarget && this.options.keyFile !== undefined && !sources.some((s) => s.file === this.options.keyFile)) sources.push({ file: this.options.keyFile, explicit: false });
    return sources;
  }

  /** Verifies a server's host key; throws HostKeyError when it is not accepted. */
  private async verifyHostKey(ep: Endpoint, isTarget: boolean, key: Buffer, timer: PausableTimer): Promise<void> {
    const name = ep.knownHostsName;
    const fingerprint = fingerprintOf(key);
    const type = keyTypeOf(key);
    const lines = readKnownHostsFiles(this.knownHostsFiles);
    const verdict = checkHostKey(lines, name, key);
    const files = this.knownHostsFiles.join(', ');
    // "[10.0.0.5]:2222 (myalias)" when the user named the host by an alias, else just the name.
    const aliasNote = ep.alias.toLowerCase() === ep.host.toLowerCase() ? '' : ` (${ep.alias})`;
    const who = `${name}${aliasNote}`;
    switch (verdict.status) {
      case 'known':
        return;
      case 'changed':
        throw new HostKeyError(
          `HOST KEY CHANGED for ${who}: the server now presents the ${type} key ${fingerprint}, but ${verdict.entry.file} line ${verdict.entry.line} holds a different key for this host. ` +
            `Someone could be intercepting the connection (man-in-the-middle), or the server was reinstalled. Nothing was transferred. ` +
            `If you know the key changed legitimately, remove the old entry (ssh-keygen -R '${name}' -f ${verdict.entry.file}) and connect again.`,
          'changed',
          name,
          fingerprint,
          type,
          key,
        );
      case 'revoked':
        throw new HostKeyError(`The host key ${fingerprint} of ${who} is marked @revoked in ${verdict.entry.file} line ${verdict.entry.line}; refusing to connect.`, 'revoked', name, fingerprint, type, key);
      case 'unknown':
        break;
    }
    if (this.accepted.get(name) === fingerprint) return;
    const acceptFlag = this.options.acceptHostKey?.trim();
    if (acceptFlag !== undefined && acceptFlag !== '') {
      if (acceptFlag === fingerprint || acceptFlag.replace(/=+$/, '') === fingerprint) {
        this.accepted.set(name, fingerprint);
        return;
      }
      // The fingerprint given is for the target; a jump host that is not known is handled below.
      if (isTarget) throw new HostKeyError(
        `The host key of ${who} is ${type} ${fingerprint}, not the ${acceptFlag} given to accept; refusing to connect. Check the fingerprint with the server's administrator.`,
        'unknown',
        name,
        fingerprint,
        type,
        key,
      );
    }
    const other = verdict.otherTypes.length > 0 ? ` (keys of other types, ${verdict.otherTypes.join(', ')}, are known for this host)` : '';
    const answer = await this.ask(`The authenticity of host '${name}'${aliasNote} can't be established${other}.\n${type} key fingerprint is ${fingerprint}.\nTrust it? (yes/no)`, false, timer);
    if (answer !== undefined && /^\s*y(es)?\s*$/i.test(answer)) {
      this.accepted.set(name, fingerprint);
      return;
    }
    throw new HostKeyError(
      `The authenticity of host '${name}'${aliasNote} can't be established: it is not in ${files}${other}. ` +
        `Its ${type} key fingerprint is ${fingerprint}. ${answer === undefined ? 'Check' : 'You did not confirm it. Check'} this fingerprint with the server's administrator; ` +
        `if it matches, connect again with --accept-host-key ${fingerprint} (or add the host to known_hosts).`,
      'unknown',
      name,
      fingerprint,
      type,
      key,
    );
  }

  /** The authentication sequence for one connection attempt (ssh2 authHandler). */
  private authHandler(ep: Endpoint, isTarget: boolean, state: AttemptState, timer: PausableTimer): (methodsLeft: AuthenticationType[] | null, partial: boolean | null, next: (method: AnyAuthMethod | false) => void) => void {
    type Step = { type: 'publickey' | 'password' | 'keyboard-interactive' | 'none'; make: () => Promise<AnyAuthMethod | undefined> };
    const user = ep.user;
    const pwKey = passwordKey(ep);
    const steps: Step[] = [{ type: 'none', make: async () => ({ type: 'none', username: user }) }];
    const sources = this.keySources(ep, isTarget);
    const explicitFirst = sources.filter((s) => s.explicit);
    const others = sources.filter((s) => !s.explicit);
    const keyStep = (source: KeySource): Step => ({
      type: 'publickey',
      make: async () => {
        const key = await this.loadKey(source, state.notes, timer);
        if (!key) return undefined;
        state.tried.push(`publickey (${source.file})`);
        return { type: 'publickey', username: user, key };
      },
    });
    for (const source of explicitFirst) steps.push(keyStep(source));
    if (ep.agent !== undefined && !(ep.identitiesOnly && isTarget && this.options.keyFile !== undefined)) {
      const agent = ep.agent;
      steps.push({
        type: 'publickey',
        make: async () => {
          if (!fs.existsSync(agent)) {
            state.notes.push(`ssh-agent socket ${agent} does not exist`);
            return undefined;
          }
          state.tried.push('ssh-agent');
          return { type: 'agent', username: user, agent };
        },
      });
    }
    for (const source of others) steps.push(keyStep(source));
    // The password given (or confirmed earlier in this session).
    steps.push({
      type: 'password',
      make: async () => {
        const password = this.passwords.get(pwKey);
        if (password === undefined) return undefined;
        state.tried.push('password');
        return { type: 'password', username: user, password };
      },
    });
    // Nothing worked and there is no password: ask for one, once.
    steps.push({
      type: 'password',
      make: async () => {
        if (this.passwords.has(pwKey) || !this.options.prompt) return undefined;
        const answer = await this.ask(`Password for ${user}@${ep.label}${isTarget ? '' : ' (jump host)'}: `, true, timer);
        if (answer === undefined) {
          state.authError = new SftpAuthError(`Authentication to ${user}@${ep.label} failed: no password was given (nobody answered the prompt)${state.tried.length > 0 ? `; the server refused ${state.tried.join(', ')}` : ''}.`);
          return undefined;
        }
        this.passwords.set(pwKey, answer);
        state.tried.push('password (prompted)');
        return { type: 'password', username: user, password: answer };
      },
    });
    // Servers that only take keyboard-interactive (PAM, one-time codes): answer with the password,
    // or pass the server's questions on to the prompt. Skipped when a password was just refused.
    steps.push({
      type: 'keyboard-interactive',
      make: async () => {
        if (state.tried.some((t) => t.startsWith('password'))) return undefined;
        if (!this.passwords.has(pwKey) && !this.options.prompt) return undefined;
        state.tried.push('keyboard-interactive');
        return { type: 'keyboard-interactive', username: user, prompt: (_name, _instructions, _lang, prompts, finish) => void this.answerKeyboard(ep, prompts, finish, state, timer) };
      },
    });
    let index = 0;
    return (methodsLeft, _partial, next) => {
      if (methodsLeft) state.serverMethods = methodsLeft;
      void (async () => {
        try {
          while (index < steps.length) {
            const step = steps[index++]!;
            if (state.authError) break;
            if (methodsLeft && step.type !== 'none' && !methodsLeft.includes(step.type)) continue;
            const method = await step.make();
            if (method) {
              next(method);
              return;
            }
          }
        } catch (error) {
          state.authError = error instanceof SftpAuthError ? error : new SftpAuthError(messageOf(error));
        }
        next(false);
      })();
    };
  }

  private async answerKeyboard(ep: Endpoint, prompts: Prompt[], finish: KeyboardInteractiveCallback, state: AttemptState, timer: PausableTimer): Promise<void> {
    const answers: string[] = [];
    const pwKey = passwordKey(ep);
    for (const p of prompts) {
      const password = this.passwords.get(pwKey);
      if (/pass(word|code|phrase)?/i.test(p.prompt) && password !== undefined) {
        answers.push(password);
        continue;
      }
      const answer = await this.ask(`(${ep.user}@${ep.label}) ${p.prompt}`, !p.echo, timer);
      if (answer === undefined) {
        state.notes.push(`keyboard-interactive prompt "${p.prompt.trim()}" was not answered`);
        answers.push('');
      } else {
        if (/pass(word|code)/i.test(p.prompt) && !this.passwords.has(pwKey)) this.passwords.set(pwKey, answer);
        answers.push(answer);
      }
    }
    finish(answers);
  }

  private connectErrorFor(ep: Endpoint, error: unknown, state: AttemptState, reconnect: boolean, what: string): StorageError {
    if (state.hostKeyError) return state.hostKeyError;
    if (state.authError) return state.authError;
    if (error instanceof StorageError) return error;
    const raw = state.lastError ?? (error as Error);
    const level = (raw as { level?: string }).level;
    const code = codeOf(raw) ?? codeOf(error);
    const where = `${what} ${ep.user}@${ep.label}`;
    if (level === 'client-authentication' || /authentication methods failed/i.test(messageOf(raw))) {
      const tried = state.tried.length > 0 ? state.tried.join(', ') : 'no method (no key, agent or password available)';
      const accepts = state.serverMethods ? `; the server accepts ${state.serverMethods.join(', ')}` : '';
      const notes = state.notes.length > 0 ? ` (${state.notes.join('; ')})` : '';
      const hint = !this.passwords.has(passwordKey(ep)) && !this.options.prompt ? ' Give a password (SYNCENGINE_PASSWORD) or a private key (--key).' : '';
      return new SftpAuthError(`Authentication to ${where} failed: the server refused ${tried}${accepts}${notes}.${hint}`);
    }
    let cause: string;
    switch (code) {
      case 'ECONNREFUSED':
        cause = 'connection refused (is an SSH server listening on that port?)';
        break;
      case 'ENOTFOUND':
        cause = 'host not found (check the host name)';
        break;
      case 'EAI_AGAIN':
        cause = 'the host name could not be resolved right now (DNS)';
        break;
      case 'ETIMEDOUT':
        cause = 'connection timed out';
        break;
      case 'EHOSTUNREACH':
        cause = 'host unreachable';
        break;
      case 'ENETUNREACH':
        cause = 'network unreachable';
        break;
      case 'ECONNRESET':
        cause = 'connection reset by the server';
        break;
      default:
        if (level === 'client-timeout' || /timed out/i.test(messageOf(raw))) cause = `timed out after ${Math.round(ep.connectTimeoutMs / 1000)} s waiting for the SSH handshake`;
        else if (level === 'handshake' || level === 'protocol') cause = `SSH handshake failed: ${messageOf(raw)}`;
        else if (/subsystem|sftp/i.test(messageOf(raw))) cause = `the server does not offer SFTP (${messageOf(raw)})`;
        else if (/Unexpected (close|end)|closed/i.test(messageOf(raw))) cause = 'the server closed the connection during setup';
        else cause = messageOf(raw);
    }
    const transient = (typeof code === 'string' && TRANSIENT_NET_CODES.has(code)) || level === 'client-timeout' || /timed out|closed the connection/.test(cause) || (reconnect && isConnectionLevel(raw));
    return new SftpConnectionError(`Cannot connect to ${where}: ${cause}${code !== undefined && typeof code === 'string' ? ` (${code})` : ''}`, transient, { cause: raw });
  }

  /** Connects (and authenticates) one ssh2 Client; `start` performs client.connect(config). */
  private async handshake<T>(ep: Endpoint, isTarget: boolean, client: Client, start: (config: ConnectConfig) => Promise<T>, reconnect: boolean, sock?: Duplex): Promise<T> {
    const state: AttemptState = { tried: [], notes: [] };
    const what = isTarget ? 'SFTP server' : 'jump host';
    let timedOut = false;
    let rejectTimeout: (error: Error) => void = () => undefined;
    const timeout = new Promise<never>((_, reject) => {
      rejectTimeout = reject;
    });
    timeout.catch(() => undefined);
    const timer = new PausableTimer(ep.connectTimeoutMs, () => {
      timedOut = true;
      const error = Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' });
      state.lastError = error;
      rejectTimeout(error);
      client.destroy();
    });
    const onError = (error: Error) => {
      if (!timedOut) state.lastError ??= error;
    };
    client.prependListener('error', onError);
    // Small requests (stat, readdir) must not wait for Nagle's algorithm and delayed ACKs (40 ms each).
    client.once('connect', () => client.setNoDelay(true));
    let knownTypes: string[] = [];
    try {
      knownTypes = knownKeyTypes(readKnownHostsFiles(this.knownHostsFiles), ep.knownHostsName);
    } catch (error) {
      timer.clear();
      throw error;
    }
    const config: ConnectConfig = {
      host: ep.host,
      port: ep.port,
      username: ep.user,
      readyTimeout: 0, // our own timer, paused while a prompt waits for a human
      keepaliveInterval: ep.keepaliveMs,
      keepaliveCountMax: ep.keepaliveCount,
      algorithms: { serverHostKey: hostKeyAlgorithmsFor(knownTypes) as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] },
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        this.verifyHostKey(ep, isTarget, key, timer).then(
          () => verify(true),
          (error: unknown) => {
            state.hostKeyError = error instanceof StorageError ? error : new StorageError(messageOf(error), false);
            verify(false);
          },
        );
      },
      authHandler: this.authHandler(ep, isTarget, state, timer) as unknown as ConnectConfig['authHandler'],
      ...(sock ? { sock: sock as unknown as ConnectConfig['sock'] } : {}),
    };
    try {
      const started = start(config);
      started.catch(() => undefined); // a late rejection after a timeout is not unhandled
      return await Promise.race([started, timeout]);
    } catch (error) {
      client.destroy();
      throw this.connectErrorFor(ep, error, state, reconnect, what);
    } finally {
      timer.clear();
      client.removeListener('error', onError);
    }
  }

  /** Opens one connection with its SFTP session (through the jump host when there is one). */
  async connect(reconnect: boolean): Promise<Connection> {
    const ep = this.endpoint;
    let jumpClient: Client | undefined;
    let sock: Duplex | undefined;
    if (ep.jump) {
      const jump = ep.jump;
      jumpClient = new Client();
      jumpClient.on('error', () => undefined);
      const jc = jumpClient;
      await this.handshake(
        jump,
        false,
        jc,
        (config) =>
          new Promise<void>((resolve, reject) => {
            jc.once('ready', () => resolve());
            jc.once('error', reject);
            jc.once('close', () => reject(lost('the jump host closed the connection during setup')));
            jc.connect(config);
          }),
        reconnect,
      );
      try {
        sock = await new Promise<Duplex>((resolve, reject) => {
          jc.forwardOut('127.0.0.1', 0, ep.host, ep.port, (error, channel) => (error ? reject(error) : resolve(channel as unknown as Duplex)));
        });
      } catch (error) {
        jc.end();
        throw new SftpConnectionError(`Cannot connect to ${ep.user}@${ep.label} through the jump host ${jump.user}@${jump.label}: the jump host could not open a channel to ${ep.host}:${ep.port} (${messageOf(error)})`, reconnect, { cause: error });
      }
    }
    // ssh2-sftp-client reports connection events through these callbacks; we watch the ssh2 client ourselves.
    const wrapper = new SftpClient(`syncengine-${this.nextId}`, { error: () => undefined, end: () => undefined, close: () => undefined });
    const client = (wrapper as unknown as { client: Client }).client;
    let sftp: SFTPWrapper;
    try {
      sftp = await this.handshake(ep, true, client, (config) => wrapper.connect(config as SftpClient.ConnectOptions), reconnect, sock);
    } catch (error) {
      jumpClient?.end();
      throw error;
    }
    return new Connection(this.nextId++, client, sftp, ep, jumpClient);
  }
}

function passwordKey(ep: Endpoint): string {
  return `${ep.user}@${ep.host}:${ep.port}`;
}

// ---------------------------------------------------------------------------------------------
// One connection: an SSH client with one SFTP session, promisified

class Connection {
  busy = 0;
  dead = false;
  private socketClosed = false;
  private deathReason = 'connection closed';
  readonly maxRead: number;
  readonly maxWrite: number;
  readonly extensions: Readonly<Record<string, string>>;
  readonly execSlots = new Semaphore(EXEC_SLOTS);

  constructor(
    readonly id: number,
    readonly ssh: Client,
    readonly sftp: SFTPWrapper,
    readonly endpoint: Endpoint,
    private readonly jump: Client | undefined,
  ) {
    const internals = sftp as unknown as { _maxReadLen?: number; _maxWriteLen?: number; _extensions?: Record<string, string> };
    this.maxRead = typeof internals._maxReadLen === 'number' && internals._maxReadLen > 0 ? internals._maxReadLen : 32 * 1024;
    this.maxWrite = typeof internals._maxWriteLen === 'number' && internals._maxWriteLen > 0 ? internals._maxWriteLen : 32 * 1024;
    this.extensions = { ...(internals._extensions ?? {}) };
    const die = (reason: string) => () => this.markDead(reason);
    ssh.on('close', () => {
      this.socketClosed = true;
      this.markDead('the server closed the connection');
    });
    ssh.on('end', die('the server ended the connection'));
    ssh.on('error', (error: Error) => this.markDead(error.message));
    sftp.on('close', die('the SFTP session was closed'));
    sftp.on('end', die('the SFTP session ended'));
    sftp.on('error', (error: Error) => this.markDead(`SFTP session error: ${error.message}`));
    jump?.on('close', die('the jump host connection closed'));
  }

  private markDead(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.deathReason = reason;
  }

  get alive(): boolean {
    if (this.dead) return false;
    const state = (this.sftp as unknown as { outgoing?: { state?: string } }).outgoing?.state;
    return state === undefined || state === 'open';
  }

  lostError(): Error {
    return lost(this.deathReason);
  }

  has(extension: string): boolean {
    return this.extensions[extension] !== undefined;
  }

  /** Runs one SFTP request; fails at once (never hangs) when the connection is gone. */
  call<T = void>(issue: (callback: (error: Error | undefined | null, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.alive) {
        reject(this.lostError());
        return;
      }
      try {
        issue((error, value) => {
          if (error) reject(this.dead && !codeOf(error) ? this.lostError() : error);
          else resolve(value as T);
        });
      } catch (error) {
        reject(this.alive ? error : this.lostError());
      }
    });
  }

  lstat(abs: string): Promise<Stats> {
    return this.call<Stats>((cb) => this.sftp.lstat(abs, cb));
  }

  async lstatOrUndefined(abs: string): Promise<Stats | undefined> {
    try {
      return await this.lstat(abs);
    } catch (error) {
      if (codeOf(error) === FX.NO_SUCH_FILE) return undefined;
      throw error;
    }
  }

  realpath(abs: string): Promise<string> {
    return this.call<string>((cb) => this.sftp.realpath(abs, cb));
  }

  open(abs: string, flags: 'r' | 'wx' | 'w', mode?: number): Promise<Buffer> {
    return this.call<Buffer>((cb) => (mode === undefined ? this.sftp.open(abs, flags, cb) : this.sftp.open(abs, flags, { mode }, cb)));
  }

  close(handle: Buffer): Promise<void> {
    return this.call((cb) => this.sftp.close(handle, cb));
  }

  /** Closes a handle without waiting (reads): errors are ignored. */
  closeQuietly(handle: Buffer): void {
    if (!this.alive) return;
    try {
      this.sftp.close(handle, () => undefined);
    } catch {
      // the connection is going away
    }
  }

  readdir(abs: string): Promise<{ filename: string; longname: string; attrs: Stats }[]> {
    return this.call((cb) => this.sftp.readdir(abs, cb as never));
  }

  mkdir(abs: string): Promise<void> {
    return this.call((cb) => this.sftp.mkdir(abs, cb));
  }

  rmdir(abs: string): Promise<void> {
    return this.call((cb) => this.sftp.rmdir(abs, cb));
  }

  unlink(abs: string): Promise<void> {
    return this.call((cb) => this.sftp.unlink(abs, cb));
  }

  rename(from: string, to: string): Promise<void> {
    return this.call((cb) => this.sftp.rename(from, to, cb));
  }

  posixRename(from: string, to: string): Promise<void> {
    return this.call((cb) => this.sftp.ext_openssh_rename(from, to, cb));
  }

  hardlink(from: string, to: string): Promise<void> {
    return this.call((cb) => this.sftp.ext_openssh_hardlink(from, to, cb));
  }

  setstat(abs: string, attrs: { mode?: number; atime?: number; mtime?: number }): Promise<void> {
    return this.call((cb) => this.sftp.setstat(abs, attrs, cb));
  }

  copyData(from: Buffer, to: Buffer): Promise<void> {
    return this.call((cb) => this.sftp.ext_copy_data(from, 0, 0, to, 0, cb));
  }

  statvfs(abs: string): Promise<{ f_bavail: number | bigint; f_frsize: number | bigint; f_bsize: number | bigint } | undefined> {
    if (!this.has('statvfs@openssh.com')) return Promise.resolve(undefined);
    return this.call((cb) => this.sftp.ext_openssh_statvfs(abs, cb));
  }

  /** Runs a command through the server's shell; stdin is closed at once. */
  async exec(command: string, timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    await this.execSlots.acquire();
    try {
      return await new Promise((resolve, reject) => {
        if (!this.alive) {
          reject(this.lostError());
          return;
        }
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          fn();
        };
        try {
          this.ssh.exec(command, (error: Error | undefined, channel: ClientChannel) => {
            if (error) {
              settle(() => reject(this.alive ? error : this.lostError()));
              return;
            }
            const out: Buffer[] = [];
            const err: Buffer[] = [];
            channel.on('data', (d: Buffer) => out.push(d));
            channel.stderr.on('data', (d: Buffer) => err.push(d));
            channel.on('error', (e: Error) => settle(() => reject(e)));
            channel.on('close', (code: number | null) => {
              settle(() => (this.dead ? reject(this.lostError()) : resolve({ code: typeof code === 'number' ? code : null, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })));
            });
            channel.end(); // no input: a command waiting on stdin (a forced sftp-server) ends at once
            if (timeoutMs !== undefined) {
              timer = setTimeout(() => {
                settle(() => reject(new Error(`no answer within ${timeoutMs} ms`)));
                channel.close();
              }, timeoutMs);
            }
          });
        } catch (error) {
          settle(() => reject(this.alive ? error : this.lostError()));
        }
      });
    } finally {
      this.execSlots.release();
    }
  }

  async end(): Promise<void> {
    const ssh = this.ssh;
    this.markDead('closed');
    if (this.socketClosed) {
      this.jump?.end();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ssh.destroy();
        resolve();
      }, CLOSE_TIMEOUT_MS);
      ssh.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        ssh.end();
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
    this.jump?.end();
  }
}

// ---------------------------------------------------------------------------------------------
// The pool

class Pool {
  private readonly connections: Connection[] = [];
  private opening: Promise<Connection> | undefined;
  private everConnected = false;
  private closed = false;
  /** After a failed attempt to add a connection (servers that limit sessions per user), stay smaller for a while. */
  private growBlockedUntil = 0;
  /** Called after a connection replaced one that was lost. */
  onReconnect: ((connection: Connection) => Promise<void>) | undefined;

  constructor(
    private readonly connector: Connector,
    private readonly max: number,
  ) {}

  private prune(): void {
    for (let i = this.connections.length - 1; i >= 0; i--) if (!this.connections[i]!.alive) this.connections.splice(i, 1);
  }

  private async openOne(): Promise<Connection> {
    if (this.opening) return this.opening;
    const reconnect = this.everConnected;
    const hadLoss = reconnect;
    this.opening = (async () => {
      const connection = await this.connector.connect(reconnect);
      if (this.closed) {
        await connection.end();
        throw new StorageError('The SFTP connection was closed', false);
      }
      this.everConnected = true;
      this.connections.push(connection);
      if (hadLoss && this.onReconnect) {
        connection.busy++;
        try {
          await this.onReconnect(connection);
        } catch {
          // best effort
        } finally {
          connection.busy--;
        }
      }
      return connection;
    })();
    try {
      return await this.opening;
    } finally {
      this.opening = undefined;
    }
  }

  /**
   * A live connection for one operation; release() it afterwards. Only work that moves data (or
   * makes the server hash it) opens more connections: one SFTP session carries many metadata
   * requests at once, and each new connection costs the server a login (about 170 ms of sshd's time
   * on loopback, which a no-change sync of 5,000 files paid three times).
   */
  async acquire(heavy: boolean): Promise<Connection> {
    if (this.closed) throw new StorageError('The SFTP backend is closed', false);
    this.prune();
    let best: Connection | undefined;
    for (const c of this.connections) if (!best || c.busy < best.busy) best = c;
    const canGrow = heavy && this.connections.length < this.max && this.opening === undefined && Date.now() >= this.growBlockedUntil;
    if (best && (best.busy === 0 || !canGrow)) {
      best.busy++;
      return best;
    }
    try {
      const connection = await this.openOne();
      connection.busy++;
      return connection;
    } catch (error) {
      this.prune();
      const fallback = this.connections.reduce<Connection | undefined>((a, c) => (!a || c.busy < a.busy ? c : a), undefined);
      if (fallback) {
        this.growBlockedUntil = Date.now() + 60_000;
        fallback.busy++;
        return fallback;
      }
      throw error;
    }
  }

  release(connection: Connection): void {
    connection.busy = Math.max(0, connection.busy - 1);
  }

  /** The first connection, opened at once (open() reports connection errors up front). */
  async first(): Promise<Connection> {
    const connection = await this.openOne();
    return connection;
  }

  /** Live connections (for tests and logs). */
  get size(): number {
    this.prune();
    return this.connections.length;
  }

  liveConnection(): Connection | undefined {
    this.prune();
    return this.connections[0];
  }

  async close(): Promise<void> {
    this.closed = true;
    const opening = this.opening;
    if (opening) await opening.then((c) => c.end()).catch(() => undefined);
    const all = this.connections.splice(0);
    await Promise.all(all.map((c) => c.end().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------
// Consuming a source stream in large pieces

/**
 * The next piece, or the signal's abort while the source has nothing to give. One listener per
 * call, removed when the piece comes: a Promise.race against one long-lived abort promise would
 * keep every race, and with it every piece already sent, reachable until the write ends (all of a
 * 512 MiB file in memory, and twice the time in GC and page faults).
 */
function nextOrAbort(pieces: AsyncGenerator<Buffer>, signal: AbortSignal | undefined): Promise<IteratorResult<Buffer>> {
  if (!signal) return pieces.next();
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    pieces.next().then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The data of a stream in pieces of `size` bytes (the last one shorter), read in paused mode with
 * readable.read(size): Node raises the stream's highWaterMark to `size`, so a file stream reads
 * ahead in large pieces instead of its default 64 KiB ones (on loopback this alone takes an upload
 * from ~240 to ~430 MiB/s). Errors of the stream are thrown as they are.
 */
async function* readInPieces(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let error: unknown;
  let ended = stream.readableEnded;
  let closed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onError = (e: unknown) => {
    error ??= e;
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onClose = () => {
    closed = true;
    notify();
  };
  stream.on('readable', notify);
  stream.on('error', onError);
  stream.on('end', onEnd);
  stream.on('close', onClose);
  try {
    for (;;) {
      if (error === undefined && stream.errored) error = stream.errored;
      if (error !== undefined) throw error;
      const chunk: unknown = stream.read(size);
      if (chunk !== null) {
        yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        continue;
      }
      if (ended) return;
      if (closed || (stream.destroyed && !stream.readableEnded)) {
        if (error !== undefined) throw error;
        if (stream.errored) throw stream.errored;
        throw Object.assign(new Error('The source stream closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stream.off('readable', notify);
    stream.off('error', onError);
    stream.off('end', onEnd);
    stream.off('close', onClose);
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming reads with requests in flight

class RemoteReadStream extends Readable {
  private nextOffset = 0;
  private eofAt = Infinity;
  /** The furthest byte known to exist (lstat size, or data received). */
  private knownEnd: number;
  private inflight = 0;
  private readonly queue: { pos: number; len: number; data?: Buffer; done: boolean }[] = [];
  private finished = false;
  private released = false;

  constructor(
    private readonly connection: Connection,
    private readonly handle: Buffer,
    expectedSize: number,
    private readonly release: () => void,
    private readonly toError: (error: unknown) => Error,
    private readonly signal: AbortSignal | undefined,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.knownEnd = expectedSize;
    if (signal) {
      this.onAbort = this.onAbort.bind(this);
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  private onAbort(): void {
    this.destroy(Object.assign(new Error('The read was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
  }

  override _read(): void {
    // The consumer wants data: keep requests in flight whatever is buffered (Node calls _read in
    // flowing mode even with a full buffer, and not again until we push: never return idle here).
    this.fill(true);
  }

  /** Issues read requests; `wanted`: called from _read, else only while little is buffered. */
  private fill(wanted = false): void {
    const chunk = this.connection.maxRead;
    const maxBuffered = MAX_INFLIGHT * chunk;
    while (!this.destroyed && !this.finished && this.inflight < MAX_INFLIGHT && this.nextOffset < this.eofAt && this.nextOffset <= this.knownEnd && (wanted || this.readableLength + this.inflight * chunk < maxBuffered)) {
      const pos = this.nextOffset;
      // Up to the expected end in full requests, then one request at the end itself: it finds the
      // end of the file (or more data, if the file grew) in the same round trip.
      const len = pos < this.knownEnd ? Math.min(chunk, this.knownEnd - pos) : chunk;
      this.nextOffset += len;
      this.request(pos, len, this.queue.length);
    }
  }

  private request(pos: number, len: number, index: number): void {
    const slot: { pos: number; len: number; data?: Buffer; done: boolean } = { pos, len, done: false };
    this.queue.splice(index, 0, slot);
    this.inflight++;
    const buffer = Buffer.allocUnsafe(len);
    this.connection
      .call<Buffer>((cb) => this.connection.sftp.read(this.handle, buffer, 0, len, pos, (error, bytesRead, data) => cb(error, bytesRead > 0 ? data.subarray(0, bytesRead) : Buffer.alloc(0))))
      .then(
        (data) => {
          this.inflight--;
          if (this.destroyed || this.finished) return;
          slot.done = true;
          slot.data = data;
          if (data.length === 0) {
            this.eofAt = Math.min(this.eofAt, pos);
          } else {
            this.knownEnd = Math.max(this.knownEnd, pos + data.length);
            if (data.length < len) {
              // A short read: ask for the rest right after this piece (it may be the end of the file).
              const at = this.queue.indexOf(slot) + 1;
              this.request(pos + data.length, len - data.length, at);
            }
          }
          this.deliver();
        },
        (error: unknown) => {
          this.inflight--;
          if (!this.destroyed && !this.finished) this.destroy(this.toError(error));
        },
      );
  }

  private deliver(): void {
    while (this.queue.length > 0 && this.queue[0]!.done) {
      const slot = this.queue.shift()!;
      if (slot.pos >= this.eofAt || !slot.data || slot.data.length === 0) continue;
      const data = slot.pos + slot.data.length > this.eofAt ? slot.data.subarray(0, this.eofAt - slot.pos) : slot.data;
      this.push(data);
    }
    if (this.nextOffset >= this.eofAt && this.queue.every((s) => s.pos >= this.eofAt)) {
      // Everything before the end has been delivered; requests past it are answered before the
      // close (the server handles requests in order) and ignored.
      this.finished = true;
      this.cleanup();
      this.push(null);
      return;
    }
    this.fill();
  }

  private cleanup(): void {
    if (this.released) return;
    this.released = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.connection.closeQuietly(this.handle);
    this.release();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.cleanup();
    callback(error);
  }
}

// ---------------------------------------------------------------------------------------------
// The backend

/** The server-side tool for each algorithm, and its output for an empty file (how the probe finds it). */
const HASH_TOOLS: Record<HashAlgorithm, { command: string; empty: string; digits: number }> = {
  md5: { command: 'md5sum', empty: 'd41d8cd98f00b204e9800998ecf8427e', digits: 32 },
  'sha256-128': { command: 'sha256sum', empty: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', digits: 64 },
};

interface Probe {
  exec: boolean;
  /** Algorithms whose tool runs on the server. */
  hashTools?: Set<HashAlgorithm>;
  uid?: number;
  groups?: Set<number>;
}

export class SftpBackend implements Backend {
  readonly displayName: string;
  readonly id: string;
  /** Hashes by `md5sum`/`sha256sum` on the server; defined only when the account may run commands. */
  hash?: (path: string, algorithm: HashAlgorithm) => Promise<string>;
  /** Server-side copy (copy-data extension or `cp`); defined only when available. */
  copyWithin?: (from: string, to: string) => Promise<void>;
  /** Hard link (hardlink@openssh.com); defined only when available. */
  hardLink?: (from: string, to: string) => Promise<void>;

  /** Folders (relative) known to exist and to resolve inside the root. */
  private readonly verifiedDirs = new Set<string>();
  /** Temporary files a dropped connection kept us from removing (absolute). */
  private readonly orphans = new Set<string>();
  private probe: Probe = { exec: false };
  private closed = false;

  /** @internal Use open(). */
  constructor(
    private readonly pool: Pool,
    private readonly endpoint: Endpoint,
    /** The root folder, absolute and resolved (realpath) on the server. */
    readonly root: string,
    private rootExists: boolean,
  ) {
    const portPart = endpoint.port === 22 ? '' : `:${endpoint.port}`;
    this.displayName = `sftp://${endpoint.user}@${endpoint.alias}${portPart}${root}`;
    this.id = `sftp://${endpoint.user}@${endpoint.host.toLowerCase()}:${endpoint.port}${root}`;
    pool.onReconnect = (connection) => this.removeOrphans(connection);
  }

  /** Discovers optional capabilities on the first connection and defines the matching methods. */
  async discover(connection: Connection): Promise<void> {
    try {
      // A marker first: a login shell may print a banner (.bashrc) before the output we want.
      // Each hash tool's output for an empty file shows that it runs; commands work at all when
      // one of them does (a restricted shell may allow neither).
      const tools = Object.values(HASH_TOOLS).map((t) => `${t.command} -- /dev/null 2>/dev/null`).join('; ');
      const r = await connection.exec(`echo ${PROBE_MARKER} && id -u && id -G; ${tools}; true`, PROBE_TIMEOUT_MS);
      const lines = r.stdout.split('\n');
      const at = lines.lastIndexOf(PROBE_MARKER);
      // Searched in every line after the marker: without `id` the digests come right after it.
      const after = at >= 0 ? lines.slice(at + 1) : [];
      const hashTools = new Set((Object.keys(HASH_TOOLS) as HashAlgorithm[]).filter((a) => after.some((line) => new RegExp(`^\\\\?${HASH_TOOLS[a].empty}\\b`).test(line))));
      if (at >= 0 && hashTools.size > 0) {
        this.probe = { exec: true, hashTools };
        const uid = Number(lines[at + 1]);
        if (lines[at + 1] !== '' && Number.isInteger(uid)) this.probe.uid = uid;
        const groups = (lines[at + 2] ?? '').trim().split(/\s+/).filter((g) => g !== '').map(Number).filter(Number.isInteger);
        if (groups.length > 0) this.probe.groups = new Set(groups);
      }
    } catch {
      this.probe = { exec: false };
    }
    if (this.probe.exec) this.hash = (path, algorithm) => this.remoteHash(path, algorithm);
    if (connection.has('copy-data') || this.probe.exec) this.copyWithin = (from, to) => this.serverCopy(from, to);
    if (connection.has('hardlink@openssh.com')) this.hardLink = (from, to) => this.link(from, to);
  }

  /** Capabilities found at open (for logs and tests). */
  get capabilities(): { exec: boolean; hashTools: HashAlgorithm[]; posixRename: boolean; copyData: boolean; hardlink: boolean } {
    const c = this.pool.liveConnection();
    return { exec: this.probe.exec, hashTools: [...(this.probe.hashTools ?? [])], posixRename: c?.has('posix-rename@openssh.com') ?? false, copyData: c?.has('copy-data') ?? false, hardlink: c?.has('hardlink@openssh.com') ?? false };
  }

  /** Open connections right now (the pool grows on demand up to options.connections). */
  get connectionCount(): number {
    return this.pool.size;
  }

  private abs(path: string): string {
    if (path === '') return this.root;
    return this.root === '/' ? `/${path}` : `${this.root}/${path}`;
  }

  // -- errors ----------------------------------------------------------------------------------

  private fail(operation: string, path: Subject, cause: string): StorageError {
    return new StorageError(`Cannot ${operation} ${describe(path)} on ${this.endpoint.label}: ${cause}`, false);
  }

  /** Turns an SFTP or connection error into a StorageError naming the operation, the path and the host. */
  private toError(operation: string, path: Subject, error: unknown, connection?: Connection): Error {
    if (error instanceof SyncError || isAbortError(error)) return error as Error;
    if ((connection && !connection.alive) || isConnectionLevel(error)) {
      return new StorageError(
        `Cannot ${operation} ${describe(path)}: the connection to ${this.endpoint.label} was lost (${messageOf(error)}); it is reopened on the next try`,
        true,
        { cause: error },
      );
    }
    const code = codeOf(error);
    let cause: string;
    switch (code) {
      case FX.NO_SUCH_FILE:
        cause = 'no such file or folder';
        break;
      case FX.PERMISSION_DENIED:
        cause = 'permission denied';
        break;
      case FX.FAILURE:
        cause = `the server reported a failure (${messageOf(error)})`;
        break;
      case FX.BAD_MESSAGE:
        cause = 'the server rejected the request (bad message)';
        break;
      case FX.OP_UNSUPPORTED:
        cause = 'the server does not support this operation';
        break;
      default:
        cause = messageOf(error);
    }
    return new StorageError(`Cannot ${operation} ${describe(path)} on ${this.endpoint.label}: ${cause}`, false, { cause: error });
  }

  private async acquire(operation: string, path: Subject): Promise<Connection> {
    if (this.closed) throw this.fail(operation, path, 'the SFTP backend is closed');
    try {
      return await this.pool.acquire(HEAVY_OPERATIONS.has(operation));
    } catch (error) {
      if (error instanceof StorageError) throw new StorageError(`Cannot ${operation} ${describe(path)}: ${error.message}`, error.transient, { cause: error });
      throw this.toError(operation, path, error);
    }
  }

  /**
   * Runs an operation on a pooled connection, mapping errors. An operation that meets a connection
   * that died since its last use (an idle connection dropped by the server or a NAT) is run once more
   * on a fresh connection when that is safe: `idempotent` operations always, the others as long as
   * they have not changed anything yet (they set `progress.changed` before their first change).
   * Otherwise the error is a transient StorageError and the engine retries.
   */
  private async withConnection<T>(operation: string, path: Subject, body: (connection: Connection, progress: { changed: boolean }) => Promise<T>, idempotent = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const connection = await this.acquire(operation, path);
      const progress = { changed: false };
      try {
        return await body(connection, progress);
      } catch (error) {
        if (error instanceof PassThrough) throw error;
        const lostConnection = !(error instanceof SyncError) && (!connection.alive || isConnectionLevel(error));
        if ((idempotent || !progress.changed) && attempt === 1 && lostConnection && !this.closed) continue;
        throw this.toError(operation, path, error, connection);
      } finally {
        this.pool.release(connection);
      }
    }
  }

  // -- path safety -----------------------------------------------------------------------------

  private isInsideRoot(real: string): boolean {
    return real === this.root || this.root === '/' || real.startsWith(`${this.root}/`);
  }

  /**
   * Refuses (UnsafePathError) when the folder `dir` - or, if it does not exist yet, its deepest
   * existing ancestor - resolves outside the root through a symbolic link, or is a dangling link.
   */
  private async assertInsideRoot(connection: Connection, dir: string, path: string): Promise<void> {
    if (dir === '' || this.verifiedDirs.has(dir)) return;
    let current = dir;
    for (;;) {
      let real: string | undefined;
      try {
        real = await connection.realpath(this.abs(current));
      } catch (error) {
        if (codeOf(error) !== FX.NO_SUCH_FILE) throw error;
        const st = await connection.lstatOrUndefined(this.abs(current)).catch(() => undefined);
        if (st?.isSymbolicLink()) throw new UnsafePathError(path, `parent folder ${JSON.stringify(current)} is a dangling or looping symbolic link`);
      }
      if (real !== undefined) {
        // realpath resolved every existing component (OpenSSH accepts a missing last one).
        if (!this.isInsideRoot(real)) throw new UnsafePathError(path, `parent folder ${JSON.stringify(current)} resolves outside the root (symbolic link)`);
        // Remember folders that exist (a sync touches many files in the same few folders).
        if (current === dir) {
          const st = await connection.lstatOrUndefined(this.abs(dir));
          if (st?.isDirectory() || st?.isSymbolicLink()) this.verifiedDirs.add(dir);
        }
        return;
      }
      current = parentOf(current);
      if (current === '') return; // the root itself is what the user named
    }
  }

  private forgetVerified(dir: string): void {
    for (const d of this.verifiedDirs) if (d === dir || d.startsWith(`${dir}/`)) this.verifiedDirs.delete(d);
  }

  /** Validates a path argument and checks its parent folder. */
  private async checked(connection: Connection, path: string): Promise<string> {
    await this.assertInsideRoot(connection, parentOf(path), path);
    return this.abs(path);
  }

  private async mkdirs(connection: Connection, dir: string): Promise<void> {
    if (dir === '') {
      if (!this.rootExists) await this.mkdirAbsolute(connection, this.root);
      this.rootExists = true;
      return;
    }
    if (this.verifiedDirs.has(dir)) return;
    try {
      await connection.mkdir(this.abs(dir));
    } catch (error) {
      const code = codeOf(error);
      if (code === FX.NO_SUCH_FILE) {
        await this.mkdirs(connection, parentOf(dir));
        try {
          await connection.mkdir(this.abs(dir));
        } catch (again) {
          const st = await connection.lstatOrUndefined(this.abs(dir));
          if (!st?.isDirectory()) throw st ? this.fail('create folder', dir, 'a file is in the way') : again;
        }
      } else {
        const st = await connection.lstatOrUndefined(this.abs(dir));
        if (st === undefined) throw error;
        if (st.isSymbolicLink()) throw new UnsafePathError(dir, 'a symbolic link is in the way');
        if (!st.isDirectory()) throw this.fail('create folder', dir, 'a file is in the way');
      }
    }
    this.verifiedDirs.add(dir);
  }

  /** mkdir -p of an absolute path (only for the root itself, which the user named). */
  private async mkdirAbsolute(connection: Connection, abs: string): Promise<void> {
    try {
      await connection.mkdir(abs);
    } catch (error) {
      const st = await connection.lstatOrUndefined(abs);
      if (st?.isDirectory()) return;
      if (st !== undefined || codeOf(error) !== FX.NO_SUCH_FILE) throw error;
      const parent = nodePath.posix.dirname(abs);
      if (parent === abs) throw error;
      await this.mkdirAbsolute(connection, parent);
      await connection.mkdir(abs);
    }
  }

  // -- listing ---------------------------------------------------------------------------------

  private canRead(attrs: Stats, dir: boolean): boolean {
    const uid = this.probe.uid;
    if (uid === undefined || uid === 0 || attrs.uid === undefined) return true;
    const need = dir ? 5 : 4;
    const mode = attrs.mode;
    const bits = attrs.uid === uid ? (mode >> 6) & 7 : this.probe.groups?.has(attrs.gid) ? (mode >> 3) & 7 : mode & 7;
    return (bits & need) === need;
  }

  async listDir(dir: string, options?: ListDirOptions): Promise<ListDirResult> {
    assertSafeRelativePath(dir);
    return this.withConnection('list folder', dir === '' ? this.root : dir, async (connection) => {
      if (dir !== '') await this.assertInsideRoot(connection, dir, dir);
      let list: { filename: string; longname: string; attrs: Stats }[];
      try {
        list = await connection.readdir(this.abs(dir));
      } catch (error) {
        if (dir === '' && codeOf(error) === FX.NO_SUCH_FILE) throw new StorageError(`folder does not exist: ${this.root} on ${this.endpoint.label}`, false, { cause: error });
        throw error;
      }
      if (dir === '') this.rootExists = true;
      const entries: Entry[] = [];
      const skipped: SkippedEntry[] = [];
      for (const item of list) {
        const name = item.filename;
        if (options?.removeStaleTemp && name.startsWith(TEMP_PREFIX) && isStaleRemoteTemp(item.attrs)) {
          await connection.unlink(this.abs(joinPath(dir, name))).catch(() => undefined);
          continue;
        }
        if (name === '.' || name === '..' || isEngineName(name)) continue;
        const path = joinPath(dir, name);
        if (!isSafeName(name)) {
          skipped.push({ path, reason: 'unsafe name (control character or backslash)' });
          continue;
        }
        if (name.includes('\uFFFD')) {
          skipped.push({ path, reason: 'name is not valid UTF-8' });
          continue;
        }
        const attrs = item.attrs;
        const kind = kindFromAttrs(attrs, item.longname);
        if (kind === 'symlink') {
          skipped.push({ path, reason: 'symbolic link (not followed)' });
          continue;
        }
        if (kind !== 'file' && kind !== 'dir') {
          skipped.push({ path, reason: kind });
          continue;
        }
        if (typeof attrs.mode === 'number' && !this.canRead(attrs, kind === 'dir')) {
          skipped.push({ path, reason: `unreadable ${kind === 'file' ? 'file' : 'folder'} (permission denied)` });
          continue;
        }
        entries.push({ path, kind, size: kind === 'file' ? Number(attrs.size ?? 0) : 0, mtimeMs: Number(attrs.mtime ?? 0) * 1000 });
      }
      return { entries, skipped };
    }, true);
  }

  async stat(path: string): Promise<Entry | undefined> {
    assertSafeRelativePath(path);
    return this.withConnection('examine', path, async (connection) => {
      const abs = await this.checked(connection, path);
      let st: Stats | undefined;
      try {
        st = await connection.lstatOrUndefined(abs);
      } catch (error) {
        if (codeOf(error) === FX.NO_SUCH_FILE) return undefined;
        throw error;
      }
      return st === undefined ? undefined : toEntry(path, st);
    }, true);
  }

  // -- reading ---------------------------------------------------------------------------------

  /** lstat + open for reading: refuses symlinks, folders and special files before opening. */
  private async openForRead(connection: Connection, path: string): Promise<{ handle: Buffer; size: number }> {
    const abs = await this.checked(connection, path);
    const st = await connection.lstatOrUndefined(abs);
    if (st === undefined) throw this.fail('read', path, 'no such file');
    if (st.isSymbolicLink()) throw this.fail('read', path, 'it is a symbolic link (not followed)');
    if (st.isDirectory()) throw this.fail('read', path, 'it is a folder');
    if (!st.isFile()) throw this.fail('read', path, kindFromAttrs(st, ''));
    const handle = await connection.open(abs, 'r');
    return { handle, size: Number(st.size ?? 0) };
  }

  async read(path: string, signal?: AbortSignal): Promise<Readable> {
    assertSafeRelativePath(path);
    signal?.throwIfAborted();
    for (let attempt = 1; ; attempt++) {
      const connection = await this.acquire('read', path);
      let opened: { handle: Buffer; size: number };
      try {
        opened = await this.openForRead(connection, path);
      } catch (error) {
        this.pool.release(connection);
        // Opening is idempotent: once more on a fresh connection if this one had died (see withConnection).
        if (attempt === 1 && !(error instanceof SyncError) && (!connection.alive || isConnectionLevel(error)) && !this.closed) continue;
        throw this.toError('read', path, error, connection);
      }
      if (signal?.aborted) {
        connection.closeQuietly(opened.handle);
        this.pool.release(connection);
        signal.throwIfAborted();
      }
      return new RemoteReadStream(connection, opened.handle, opened.size, () => this.pool.release(connection), (error) => this.toError('read', path, error, connection), signal);
    }
  }

  async readFile(path: string, signal?: AbortSignal): Promise<Buffer> {
    const stream = await this.read(path, signal);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  // -- writing ---------------------------------------------------------------------------------

  async write(path: string, data: Readable | Buffer, options: WriteOptions = {}): Promise<Entry> {
    const { signal } = options;
    const release = () => {
      if (!Buffer.isBuffer(data) && !data.destroyed) data.destroy();
    };
    try {
      assertSafeRelativePath(path);
      if (path === '') throw this.fail('write', path, 'it is the root folder');
      signal?.throwIfAborted();
    } catch (error) {
      release();
      throw error;
    }
    let sourceError: PassThrough | undefined;
    try {
      return await this.withConnection('write', path, async (connection, progress) => {
        const abs = await this.checked(connection, path);
        const old = await connection.lstatOrUndefined(abs);
        if (old?.isDirectory()) throw this.fail('write', path, 'a folder is in the way');
        const mode = old?.isFile() && typeof old.mode === 'number' ? old.mode & 0o777 : undefined;
        const parent = parentOf(path);
        const temp = `${parent === '' ? this.root : this.abs(parent)}/${tempName()}`.replace(/^\/\//, '/');
        let handle: Buffer;
        progress.changed = true; // from here on the source is consumed: no silent retry
        try {
          try {
            handle = await connection.open(temp, 'wx', mode);
          } catch (error) {
            if (codeOf(error) !== FX.NO_SUCH_FILE) throw error;
            await this.mkdirs(connection, parent);
            handle = await connection.open(temp, 'wx', mode);
          }
        } catch (error) {
          // The server may have created the file before the connection dropped with the reply.
          if (!connection.alive || isConnectionLevel(error)) this.orphans.add(temp);
          throw error;
        }
        let open = true;
        try {
          const outcome = await this.upload(connection, handle, data, options);
          if (outcome.sourceError) {
            sourceError = outcome.sourceError;
            throw sourceError;
          }
          open = false;
          await connection.close(handle);
          const attrs: { mode?: number; atime?: number; mtime?: number } = {};
          if (mode !== undefined) attrs.mode = mode;
          if (options.mtimeMs !== undefined) {
            attrs.mtime = Math.max(0, Math.floor(options.mtimeMs / 1000));
            attrs.atime = Math.floor(Date.now() / 1000);
          }
          if (attrs.mode !== undefined || attrs.mtime !== undefined) await connection.setstat(temp, attrs);
          await this.replace(connection, temp, abs, path);
        } catch (error) {
          if (open) await connection.close(handle).catch(() => undefined);
          // Look at the free space before the temp file is removed (that frees the space again).
          const explained = connection.alive && !(error instanceof PassThrough) && !isAbortError(error) && codeOf(error) === FX.FAILURE ? await this.explainFailure(connection, 'write', path, error) : error;
          await this.removeTemp(connection, temp);
          release();
          throw explained;
        }
        const st = await connection.lstatOrUndefined(abs);
        const entry = st === undefined ? undefined : toEntry(path, st);
        if (entry === undefined) throw this.fail('write', path, 'the file vanished right after it was written');
        return entry;
      });
    } catch (error) {
      release();
      if (error instanceof PassThrough) throw error.error; // the source's own error, unchanged
      throw error;
    }
  }

  /** Sends the data with several write requests in flight; reports acknowledged bytes. */
  private async upload(connection: Connection, handle: Buffer, data: Readable | Buffer, options: WriteOptions): Promise<{ bytes: number; sourceError?: PassThrough }> {
    const { onBytes, signal } = options;
    const chunkSize = connection.maxWrite;
    let offset = 0;
    let acked = 0;
    let inflight = 0;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    const check = () => {
      if (failure !== undefined) throw failure;
      signal?.throwIfAborted();
    };
    const issue = (buffer: Buffer) => {
      const position = offset;
      offset += buffer.length;
      inflight++;
      connection
        .call((cb) => connection.sftp.write(handle, buffer, 0, buffer.length, position, cb))
        .then(
          () => {
            acked += buffer.length;
            onBytes?.(acked);
          },
          (error: unknown) => {
            failure ??= error;
          },
        )
        .finally(() => {
          inflight--;
          const w = wake;
          wake = undefined;
          w?.();
        });
    };
    const waitBelow = async (limit: number, abortable: boolean) => {
      while (inflight > limit && (failure === undefined || limit === 0) && !(abortable && signal?.aborted)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    };
    const maxInFlight = writesInFlight(chunkSize);
    const send = async (buffer: Buffer) => {
      for (let at = 0; at < buffer.length; at += chunkSize) {
        await waitBelow(maxInFlight - 1, true);
        check();
        issue(buffer.subarray(at, Math.min(buffer.length, at + chunkSize)));
      }
    };
    try {
      if (Buffer.isBuffer(data)) {
        await send(data);
      } else {
        // 1 MiB pieces, cut into requests of the server's maximum size. No copy is needed: ssh2
        // copies the data into its packet when the request is issued. A piece the size of the
        // source's own chunks (a local file stream reads 1 MiB at a time) is handed over as it is;
        // pieces of four requests would each be copied together from two chunks.
        const pieces = readInPieces(data, SOURCE_PIECE_BYTES);
        try {
          for (;;) {
            let next: IteratorResult<Buffer>;
            try {
              next = await nextOrAbort(pieces, signal);
            } catch (error) {
              await waitBelow(0, false);
              if (isAbortError(error)) throw error;
              return { bytes: acked, sourceError: new PassThrough(error) };
            }
            if (next.done) break;
            check();
            await send(next.value);
          }
        } finally {
          // Not awaited: after an abort, a pending next() only settles once the caller destroys the source.
          pieces.return(undefined).catch(() => undefined);
        }
      }
      await waitBelow(0, false);
      check();
      return { bytes: acked };
    } catch (error) {
      await waitBelow(0, false);
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Renames the temp file over the target (atomic with posix-rename@openssh.com). */
  private async replace(connection: Connection, temp: string, abs: string, path: string): Promise<void> {
    if (connection.has('posix-rename@openssh.com')) {
      await connection.posixRename(temp, abs);
      return;
    }
    try {
      await connection.rename(temp, abs);
      return;
    } catch (error) {
      const existing = await connection.lstatOrUndefined(abs);
      if (existing === undefined) throw error;
      if (existing.isDirectory()) throw this.fail('write', path, 'a folder is in the way');
    }
    // No atomic replace on this server: move the old file aside, move the new one in, drop the old.
    const aside = `${nodePath.posix.dirname(abs)}/${tempName()}`;
    await connection.rename(abs, aside);
    try {
      await connection.rename(temp, abs);
    } catch (error) {
      await connection.rename(aside, abs).catch(() => undefined);
      throw error;
    }
    await connection.unlink(aside).catch(() => this.orphans.add(aside));
  }

  private async removeTemp(connection: Connection, temp: string): Promise<void> {
    if (!connection.alive) {
      this.orphans.add(temp);
      return;
    }
    try {
      await connection.unlink(temp);
    } catch (error) {
      if (codeOf(error) !== FX.NO_SUCH_FILE) this.orphans.add(temp);
    }
  }

  /** Removes temp files left by writes whose connection dropped (after a reconnection). */
  private async removeOrphans(connection: Connection): Promise<void> {
    for (const temp of [...this.orphans]) {
      try {
        await connection.unlink(temp);
        this.orphans.delete(temp);
      } catch (error) {
        if (codeOf(error) === FX.NO_SUCH_FILE) this.orphans.delete(temp);
        else if (!connection.alive) return;
      }
    }
  }

  /** SSH_FX_FAILURE is vague: a full disk is the common cause of a failed write; check the free space. */
  private async explainFailure(connection: Connection, operation: string, path: string, error: unknown): Promise<Error> {
    try {
      const parent = parentOf(path);
      const vfs = await connection.statvfs(parent === '' ? this.root : this.abs(parent));
      if (vfs && Number(vfs.f_bavail) * Number(vfs.f_frsize || vfs.f_bsize) < 1024 * 1024) {
        return new StorageError(`Cannot ${operation} ${describe(path)} on ${this.endpoint.label}: disk full (no space left on the server)`, false, { cause: error });
      }
    } catch {
      // keep the original error
    }
    return this.toError(operation, path, error, connection);
  }

  // -- deleting and folders --------------------------------------------------------------------

  async deleteFile(path: string): Promise<void> {
    assertSafeRelativePath(path);
    if (path === '') throw this.fail('delete', path, 'it is the root folder');
    await this.withConnection('delete', path, async (connection) => {
      const abs = await this.checked(connection, path);
      this.forgetVerified(path); // it may have been a symbolic link to a folder
      try {
        await connection.unlink(abs);
      } catch (error) {
        if (codeOf(error) === FX.NO_SUCH_FILE) return;
        const st = await connection.lstatOrUndefined(abs);
        if (st === undefined) return;
        if (st.isDirectory()) throw this.fail('delete', path, 'it is a folder, not a file');
        throw error;
      }
    }, true);
  }

  async mkdir(path: string): Promise<void> {
    assertSafeRelativePath(path);
    await this.withConnection('create folder', path, async (connection) => {
      await this.assertInsideRoot(connection, path, path);
      await this.mkdirs(connection, path);
    }, true);
  }

  async rmdirIfEmpty(path: string): Promise<void> {
    assertSafeRelativePath(path);
    if (path === '') return;
    await this.withConnection('remove folder', path, async (connection) => {
      const abs = await this.checked(connection, path);
      this.forgetVerified(path);
      try {
        await connection.rmdir(abs);
      } catch (error) {
        const code = codeOf(error);
        // Not empty (FAILURE), missing or not a folder (NO_SUCH_FILE): left alone, as promised.
        if (code === FX.NO_SUCH_FILE || code === FX.FAILURE) return;
        throw error;
      }
    }, true);
  }

  // -- moving and copying ----------------------------------------------------------------------

  /**
   * Moves a file or folder; refuses to overwrite. Plain SFTP rename (not posix-rename): SFTP v3 says
   * it fails on an existing target, and OpenSSH implements it with link()+unlink() for files, so a
   * file that appears at the target meanwhile is never replaced.
   */
  async rename(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    const label = [from, to] as const;
    if (from === '' || to === '') throw this.fail('move', label, 'the root folder cannot be moved');
    await this.withConnection('move', label, async (connection, progress) => {
      const fromAbs = await this.checked(connection, from);
      const toAbs = await this.checked(connection, to);
      const source = await connection.lstatOrUndefined(fromAbs);
      if (source === undefined) throw this.fail('move', label, `no such file or folder: ${JSON.stringify(from)}`);
      if (from === to) return;
      if (to.startsWith(`${from}/`)) throw this.fail('move', label, 'a folder cannot be moved into itself');
      if ((await connection.lstatOrUndefined(toAbs)) !== undefined) throw this.fail('move', label, `the target ${JSON.stringify(to)} already exists`);
      await this.mkdirs(connection, parentOf(to));
      if (source.isDirectory()) this.forgetVerified(from);
      progress.changed = true;
      try {
        await connection.rename(fromAbs, toAbs);
      } catch (error) {
        if ((await connection.lstatOrUndefined(toAbs)) !== undefined) throw this.fail('move', label, `the target ${JSON.stringify(to)} already exists`);
        throw error;
      }
    });
  }

  /** Server-side copy into a temp file, then a rename that cannot overwrite. */
  private async serverCopy(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    const label = [from, to] as const;
    await this.withConnection('copy', label, async (connection, progress) => {
      const fromAbs = await this.checked(connection, from);
      const toAbs = await this.checked(connection, to);
      const source = await connection.lstatOrUndefined(fromAbs);
      if (source === undefined) throw this.fail('copy', label, `no such file: ${JSON.stringify(from)}`);
      if (!source.isFile()) throw this.fail('copy', label, `${JSON.stringify(from)} is not a regular file`);
      if ((await connection.lstatOrUndefined(toAbs)) !== undefined) throw this.fail('copy', label, `the target ${JSON.stringify(to)} already exists`);
      await this.mkdirs(connection, parentOf(to));
      const temp = `${nodePath.posix.dirname(toAbs)}/${tempName()}`;
      progress.changed = true;
      try {
        if (connection.has('copy-data')) {
          const src = await connection.open(fromAbs, 'r');
          try {
            const dst = await connection.open(temp, 'wx', source.mode & 0o777);
            try {
              await connection.copyData(src, dst);
            } finally {
              await connection.close(dst).catch(() => undefined);
            }
          } finally {
            connection.closeQuietly(src);
          }
          await connection.setstat(temp, { mode: source.mode & 0o777, atime: Math.floor(Date.now() / 1000), mtime: source.mtime });
        } else {
          if (!this.probe.exec) throw this.fail('copy', label, 'this server offers no server-side copy');
          const r = await connection.exec(`cp -p --reflink=auto -- ${shellQuote(fromAbs)} ${shellQuote(temp)} || cp -p -- ${shellQuote(fromAbs)} ${shellQuote(temp)}`);
          if (r.code !== 0) throw this.fail('copy', label, (r.stderr.trim().split('\n').pop() ?? '') || `cp exited with ${r.code}`);
        }
        // Plain rename: refuses an existing target (link()+unlink() on OpenSSH).
        await connection.rename(temp, toAbs);
      } catch (error) {
        await this.removeTemp(connection, temp);
        if (connection.alive && (await connection.lstatOrUndefined(toAbs).catch(() => undefined)) !== undefined && !(error instanceof SyncError)) {
          throw this.fail('copy', label, `the target ${JSON.stringify(to)} already exists`);
        }
        throw error;
      }
    });
  }

  private async link(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    const label = [from, to] as const;
    await this.withConnection('link', label, async (connection, progress) => {
      const fromAbs = await this.checked(connection, from);
      const toAbs = await this.checked(connection, to);
      const source = await connection.lstatOrUndefined(fromAbs);
      if (source === undefined) throw this.fail('link', label, `no such file: ${JSON.stringify(from)}`);
      if (!source.isFile()) throw this.fail('link', label, `${JSON.stringify(from)} is not a regular file`);
      if ((await connection.lstatOrUndefined(toAbs)) !== undefined) throw this.fail('link', label, `the target ${JSON.stringify(to)} already exists`);
      await this.mkdirs(connection, parentOf(to));
      progress.changed = true;
      await connection.hardlink(fromAbs, toAbs);
    });
  }

  // -- hashing ---------------------------------------------------------------------------------

  /** The hash by the server's own tool; where it lacks the one for this algorithm, of the bytes read. */
  private async remoteHash(path: string, algorithm: HashAlgorithm): Promise<string> {
    assertSafeRelativePath(path);
    if (!this.probe.hashTools?.has(algorithm)) {
      return hashOfStream(await this.read(path), algorithm);
    }
    const tool = HASH_TOOLS[algorithm];
    return this.withConnection('hash', path, async (connection) => {
      const abs = await this.checked(connection, path);
      const st = await connection.lstatOrUndefined(abs);
      if (st === undefined) throw this.fail('hash', path, 'no such file');
      if (!st.isFile()) throw this.fail('hash', path, st.isDirectory() ? 'it is a folder' : st.isSymbolicLink() ? 'it is a symbolic link (not followed)' : kindFromAttrs(st, ''));
      const r = await connection.exec(`${tool.command} -- ${shellQuote(abs)}`);
      // The last line that looks like the tool's output (a login shell may print a banner first).
      const m = new RegExp(`(?:^|\\n)\\\\?([0-9a-f]{${tool.digits}}) [ *][^\\n]*\\n?$`).exec(r.stdout);
      if (r.code === 0 && m) return m[1]!.slice(0, 32);
      const detail = r.stderr.trim().split('\n').pop() ?? '';
      throw this.fail('hash', path, /permission denied/i.test(detail) ? 'permission denied' : /no such file/i.test(detail) ? 'no such file' : `${tool.command} failed: ${detail || `exit code ${r.code}`}`);
    }, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const connection = this.pool.liveConnection();
    if (connection && this.orphans.size > 0) await this.removeOrphans(connection).catch(() => undefined);
    this.closed = true;
    await this.pool.close();
  }
}

function kindFromAttrs(attrs: Stats, longname: string): 'file' | 'dir' | 'symlink' | string {
  if (typeof attrs.mode === 'number') {
    if (attrs.isFile()) return 'file';
    if (attrs.isDirectory()) return 'dir';
    if (attrs.isSymbolicLink()) return 'symlink';
    if (attrs.isSocket()) return 'socket (not a regular file)';
    if (attrs.isFIFO()) return 'named pipe (not a regular file)';
    if (attrs.isBlockDevice() || attrs.isCharacterDevice()) return 'device (not a regular file)';
    return 'not a regular file or folder';
  }
  switch (longname[0]) {
    case '-':
      return 'file';
    case 'd':
      return 'dir';
    case 'l':
      return 'symlink';
    default:
      return 'not a regular file or folder';
  }
}

function toEntry(path: string, st: Stats): Entry | undefined {
  const kind = kindFromAttrs(st, '');
  if (kind === 'file') return { path, kind: 'file', size: Number(st.size ?? 0), mtimeMs: Number(st.mtime ?? 0) * 1000 };
  if (kind === 'dir') return { path, kind: 'dir', size: 0, mtimeMs: Number(st.mtime ?? 0) * 1000 };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Opening

function defaultKnownHostsFiles(): string[] {
  const ssh = nodePath.join(os.homedir(), '.ssh');
  return [nodePath.join(ssh, 'known_hosts'), nodePath.join(ssh, 'known_hosts2'), '/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];
}

/** Where to connect for a target: the ssh config applied, the jump host resolved. */
export function resolveEndpoint(target: Pick<RemoteHostTarget, 'host' | 'port' | 'user'>, options: Pick<ConnectOptions, 'sshConfigFile'> = {}): { endpoint: Endpoint; userKnownHostsFiles?: string[] } {
  const configFile = options.sshConfigFile === undefined ? nodePath.join(os.homedir(), '.ssh', 'config') : options.sshConfigFile || undefined;
  const explicit: { user?: string; port?: number } = {};
  if (target.user !== undefined) explicit.user = target.user;
  if (target.port !== undefined) explicit.port = target.port;
  const settings = resolveSshHost(configFile, target.host, explicit);
  const localUser = localUserName();
  const endpoint: Endpoint = endpointFrom(settings, { user: localUser });
  if (settings.proxyJump !== undefined) {
    const spec = parseJumpSpec(settings.proxyJump);
    const jumpExplicit: { user?: string; port?: number } = {};
    if (spec.user !== undefined) jumpExplicit.user = spec.user;
    if (spec.port !== undefined) jumpExplicit.port = spec.port;
    const jumpSettings = resolveSshHost(configFile, spec.host, jumpExplicit);
    if (jumpSettings.proxyJump !== undefined) throw new UsageError(`The jump host ${spec.host} of ${target.host} has a ProxyJump of its own in ${configFile}: only one jump host is supported`);
    endpoint.jump = endpointFrom(jumpSettings, { user: localUser });
  }
  return { endpoint, ...(settings.userKnownHostsFiles ? { userKnownHostsFiles: settings.userKnownHostsFiles } : {}) };
}

/** The root folder on the server, absolute and resolved; whether it exists. */
async function resolveRoot(connection: Connection, targetPath: string, label: string): Promise<{ root: string; exists: boolean }> {
  const wrap = (error: unknown, what: string) =>
    error instanceof SyncError ? error : new StorageError(`Cannot resolve the remote folder ${JSON.stringify(targetPath)} on ${label}: ${what}: ${codeOf(error) === FX.PERMISSION_DENIED ? 'permission denied' : messageOf(error)}`, isConnectionLevel(error), { cause: error });
  let base: string;
  if (targetPath.startsWith('/')) {
    base = nodePath.posix.normalize(targetPath);
  } else {
    let home: string;
    try {
      home = await connection.realpath('.');
    } catch (error) {
      throw wrap(error, 'the login folder cannot be found');
    }
    base = nodePath.posix.normalize(nodePath.posix.join(home, targetPath === '' ? '.' : targetPath));
  }
  if (base.length > 1) base = base.replace(/\/+$/, '');
  // Resolve symlinks of the existing part; the missing rest is appended as is.
  let existing = base;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await connection.realpath(existing);
      const st = await connection.lstatOrUndefined(real);
      if (st === undefined) throw Object.assign(new Error('missing'), { code: FX.NO_SUCH_FILE });
      if (!st.isDirectory()) {
        if (missing.length === 0) throw new StorageError(`The remote folder ${base} on ${label} is a file, not a folder`, false);
        throw new StorageError(`Cannot use the remote folder ${base} on ${label}: ${real} is a file, not a folder`, false);
      }
      const root = missing.length === 0 ? real : nodePath.posix.join(real, ...missing.reverse());
      return { root, exists: missing.length === 0 };
    } catch (error) {
      if (error instanceof SyncError) throw error;
      if (codeOf(error) !== FX.NO_SUCH_FILE) throw wrap(error, 'realpath failed');
      const parent = nodePath.posix.dirname(existing);
      if (parent === existing) throw wrap(error, 'no folder of its path exists');
      missing.push(nodePath.posix.basename(existing));
      existing = parent;
    }
  }
}

/** Opens an SFTP target: connects (errors are reported here), resolves the root, discovers capabilities. */
export async function open(target: RemoteHostTarget, options: ConnectOptions): Promise<Backend> {
  const { endpoint, userKnownHostsFiles } = resolveEndpoint(target, options);
  const knownHostsFiles = options.knownHostsFile !== undefined ? [options.knownHostsFile] : userKnownHostsFiles ? [...userKnownHostsFiles, '/etc/ssh/ssh_known_hosts'] : defaultKnownHostsFiles();
  const connector = new Connector(endpoint, options, knownHostsFiles);
  await connector.prepareExplicitKey();
  const max = Math.max(1, Math.floor(options.connections ?? DEFAULT_CONNECTIONS));
  const pool = new Pool(connector, max);
  try {
    const connection = await pool.first();
    connection.busy++;
    try {
      const { root, exists } = await resolveRoot(connection, target.path, endpoint.label);
      const backend = new SftpBackend(pool, endpoint, root, exists);
      await backend.discover(connection);
      return backend;
    } finally {
      connection.busy--;
    }
  } catch (error) {
    await pool.close();
    throw error;
  }
}
