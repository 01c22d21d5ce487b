// OpenSSH known_hosts files: reading them and checking a server's host key against them.
//
// Format (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"): one key per line,
//   [@marker] host-patterns key-type base64-key [comment]
// host-patterns is a comma-separated list of names with `*` / `?` wildcards and `!` negation, where a
// server on a port other than 22 is written `[host]:port`; or a single hashed name
// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` (ssh-keygen -H, HashKnownHosts yes).
// Markers: `@revoked` (this key is never accepted), `@cert-authority` (certificate authorities; we
// do not do host certificates, such lines are ignored).
//
// Verdicts, as OpenSSH gives them:
//   - a line for this host with this exact key             → known (accepted)
//   - a line for this host with the same key type, other key → CHANGED (always refused: possible
//     man-in-the-middle; the user must edit the file)
//   - an @revoked line with this key                      → revoked (refused)
//   - otherwise                                           → unknown (the caller may ask the user)
// Nothing here ever writes to a known_hosts file: adding a host is the caller's decision.
//
// No ssh2 import: the CLI and the extension may load this module to show fingerprints cheaply.
import { createHash, createHmac } from 'node:crypto';
import * as fs from 'node:fs';
import { StorageError } from '../core/errors';

export interface KnownHostsLine {
  file: string;
  /** 1-based line number, for messages. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The host-patterns field as written. */
  hosts: string;
  keyType: string;
  /** The decoded public key blob (SSH wire format). */
  key: Buffer;
}

export type HostKeyVerdict =
  | { status: 'known'; entry: KnownHostsLine }
  | { status: 'changed'; entry: KnownHostsLine }
  | { status: 'revoked'; entry: KnownHostsLine }
  /** `otherTypes`: key types the files do hold for this host (the server showed a key of another type). */
  | { status: 'unknown'; otherTypes: string[] };

/**
 * A host key was refused: unknown (not confirmed), changed, or revoked. Never transient. A caller
 * that decides to trust the host (after asking the user) can append `knownHostsLine` to known_hosts.
 */
export class HostKeyError extends StorageError {
  /** `name key-type base64` for the server's key, ready for a known_hosts file. */
  readonly knownHostsLine: string;
  constructor(
    message: string,
    readonly reason: 'unknown' | 'changed' | 'revoked',
    /** The host as looked up in known_hosts: `host` or `[host]:port`. */
    readonly hostName: string,
    /** The server's key fingerprint, `SHA256:<base64 without padding>`. */
    readonly fingerprint: string,
    readonly keyType: string,
    keyBlob?: Buffer,
  ) {
    super(message, false);
    this.knownHostsLine = keyBlob ? knownHostsLineFor(hostName, keyBlob) : '';
  }
}

/** `SHA256:<base64 without padding>` of a public key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const length = keyBlob.readUInt32BE(0);
  if (length > 64 || 4 + length > keyBlob.length) return 'unknown';
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The name a host is filed under: `host` on port 22, `[host]:port` otherwise (lower-case). */
export function knownHostsName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** Glob match of OpenSSH patterns: `*` any run of characters, `?` one character; case-insensitive. */
export function wildcardMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const s = text.toLowerCase();
  // Iterative matcher with backtracking on the last '*' (linear in practice, no regex injection).
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === s[si])) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * OpenSSH's match_hostname for a comma-separated pattern list: 1 when a positive pattern matches and
 * no negated one does, -1 when a negated pattern matches, 0 when nothing matches.
 */
export function matchPatternList(patterns: string, name: string): -1 | 0 | 1 {
  let result: 0 | 1 = 0;
  for (const raw of patterns.split(',')) {
    const pattern = raw.trim();
    if (pattern === '') continue;
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return -1;
    } else if (wildcardMatch(pattern, name)) {
      result = 1;
    }
  }
  return result;
}

function hashedMatch(field: string, name: string): boolean {
  // |1|<base64 salt>|<base64 hmac>
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  if (salt.length === 0 || expected.length !== 20) return false;
  return createHmac('sha1', salt).update(name).digest().equals(expected);
}

/** Whether a known_hosts host field applies to `name` (`host` or `[host]:port`). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, name);
  return matchPatternList(field, name) === 1;
}

/** Parses the text of a known_hosts file; malformed lines are ignored (as ssh does). */
export function parseKnownHosts(text: string, file: string): KnownHostsLine[] {
  const out: KnownHostsLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/[ \t]+/);
    let marker: KnownHostsLine['marker'];
    if (fields[0]!.startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue;
    }
    if (fields.length < 3) continue;
    const [hosts, keyType, base64] = fields as [string, string, string];
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) continue;
    const key = Buffer.from(base64, 'base64');
    if (keyTypeOf(key) !== keyType) continue; // corrupt line
    out.push({ file, line: i + 1, ...(marker ? { marker } : {}), hosts, keyType, key });
  }
  return out;
}

/** Reads known_hosts files; a missing file is empty, an unreadable one is an error. */
export function readKnownHostsFiles(files: readonly string[]): KnownHostsLine[] {
  const out: KnownHostsLine[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') continue;
      throw new StorageError(`Cannot read the known hosts file ${file}: ${(error as Error).message}`, false, { cause: error });
    }
    out.push(...parseKnownHosts(text, file));
  }
  return out;
}

/** The lines of `entries` that apply to `name` (ignoring @cert-authority lines). */
export function linesFor(entries: readonly KnownHostsLine[], name: string): KnownHostsLine[] {
  return entries.filter((e) => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, name));
}

/** Checks a host key blob against the known_hosts lines for `name`. */
export function checkHostKey(entries: readonly KnownHostsLine[], name: string, keyBlob: Buffer): HostKeyVerdict {
  const lines = linesFor(entries, name);
  const revoked = lines.find((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
  if (revoked) return { status: 'revoked', entry: revoked };
  // Revoked keys are also matched regardless of host, as OpenSSH does.
  const revokedAnywhere = entries.find((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
  if (revokedAnywhere) return { status: 'revoked', entry: revokedAnywhere };
  const normal = lines.filter((e) => e.marker === undefined);
  const exact = normal.find((e) => e.key.equals(keyBlob));
  if (exact) return { status: 'known', entry: exact };
  const type = keyTypeOf(keyBlob);
  const sameType = normal.find((e) => e.keyType === type);
  if (sameType) return { status: 'changed', entry: sameType };
  return { status: 'unknown', otherTypes: [...new Set(normal.map((e) => e.keyType))] };
}

/** The key types known for `name`, for ordering the host key algorithms we offer (OpenSSH does the same). */
export function knownKeyTypes(entries: readonly KnownHostsLine[], name: string): string[] {
  return [...new Set(linesFor(entries, name).filter((e) => e.marker === undefined).map((e) => e.keyType))];
}

/** The line to add to a known_hosts file for this host and key (for messages and callers that add it). */
export function knownHostsLineFor(name: string, keyBlob: Buffer): string {
  return `${name} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}`;
}
