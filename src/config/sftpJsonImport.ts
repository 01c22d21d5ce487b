// Import of the popular SFTP extension's `.vscode/sftp.json` (Natizyskunk/vscode-sftp, formerly
// liximomo/vscode-sftp) into a `.vscode/syncengine.json`.
//
// Decisions (also in docs/CONFIG.md):
// - Each configuration of sftp.json (one object, or each object of an array) becomes one target,
//   named after its "name".
// - sftp.json "profiles" become SyncEngine profiles (named sets of per-target overrides), so that,
//   as in the SFTP extension, one profile is in effect at a time; "defaultProfile" becomes
//   "profile". (One target per profile would upload to every server at once on save.)
// - Every target gets "mode": "two-way": SyncEngine's state tells which side changed, so deletions
//   and renames propagate and edits made on the server are not overwritten. The report says how to
//   get upload-only behaviour ("source-backup") or a mirror of the workspace ("source-to-destination").
// - Passwords and passphrases are never copied: SyncEngine asks once and keeps them in SecretStorage.
// - Whatever cannot be mapped, or is mapped with a change of behaviour, is one line of the report
//   (and a comment at the top of the produced file).
import * as path from 'node:path';
import { getNodeValue, type Node } from 'jsonc-parser';
import { ProblemCollector, TARGET_NAME_PATTERN, hostUrl, parseJsoncTree, shownValue, withoutBom } from './workspaceConfig';

export interface SftpJsonImport {
  /** JSONC text for .vscode/syncengine.json. */
  config: string;
  /** One line per key that could not be mapped, or was mapped with a change. */
  report: string[];
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type SftpConfig = Record<string, unknown>;

/** A mapped target: our keys in output order. */
type Mapped = Map<string, Json>;

interface Note {
  key: string;
  text: string;
}

const SECRETS_NOTE = "not copied: SyncEngine asks for it once and keeps it in VS Code's SecretStorage (the CLI reads SYNCENGINE_PASSWORD / SYNCENGINE_PASSPHRASE)";

/** Keys that are not settings of one configuration. */
const STRUCTURE_KEYS = new Set(['profiles', 'defaultProfile']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
};

/** Makes a name fit the target name rule: other characters become "-". */
function cleanName(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9 _.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[ _.-]+$/, '')
    .slice(0, 64);
}

interface MapContext {
  /** The workspace folder (where .vscode/ is), to make an absolute "context" relative. */
  folder: string | undefined;
}

/** Maps one (merged) sftp.json configuration; `notes` gets one line per unmapped or changed key. */
function mapConfig(cfg: SftpConfig, notes: Note[], mctx: MapContext): { mapped: Mapped; hasHost: boolean } {
  const mapped: Mapped = new Map();
  const note = (key: string, text: string) => notes.push({ key, text });
  const str = (key: string): string | undefined => {
    const v = cfg[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    note(key, `"${key}" ${show(v)} is not a string: not imported`);
    return undefined;
  };

  // Where: protocol, host, port, username, remotePath, secure → "url".
  let protocol = str('protocol')?.toLowerCase() ?? 'sftp';
  if (protocol !== 'sftp' && protocol !== 'ftp' && protocol !== 'local') {
    note('protocol', `"protocol" ${show(cfg.protocol)} is not sftp, ftp or local: imported as sftp`);
    protocol = 'sftp';
  }
  const secure = cfg.secure;
  let kind: 'sftp' | 'ftp' | 'ftps' = protocol === 'ftp' ? 'ftp' : 'sftp';
  let ftpsImplicit = false;
  if (secure !== undefined && secure !== null && secure !== false) {
    if (protocol !== 'ftp') note('secure', `"secure" only applies to FTP: not imported (SFTP is always encrypted)`);
    else if (secure === true) kind = 'ftps';
    else if (secure === 'control') {
      kind = 'ftps';
      note('secure', `"secure": "control" became ftps://: SyncEngine encrypts the data connections too, not only the control connection`);
    } else if (secure === 'implicit') {
      kind = 'ftps';
      ftpsImplicit = true;
    } else note('secure', `"secure" ${show(secure)} is not true, "control" or "implicit": imported as plain FTP`);
  }
  const host = str('host')?.trim() || undefined;
  const username = str('username') || undefined;
  let port: number | undefined;
  if (cfg.port !== undefined && cfg.port !== null) {
    const p = typeof cfg.port === 'string' && /^\d+$/.test(cfg.port) ? Number(cfg.port) : cfg.port;
    if (typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535) {
      if (!(p === 22 && kind === 'sftp') && !(p === 21 && kind !== 'sftp' && !ftpsImplicit)) port = p;
    } else note('port', `"port" ${show(cfg.port)} is not a port number: not imported, the default port is used`);
  }
  const remotePath = str('remotePath');
  let url: string | undefined;
  if (protocol === 'local') {
    if (remotePath) url = remotePath;
    else note('remotePath', '"protocol": "local" without "remotePath": no target folder to import');
  } else if (host) {
    if (remotePath === undefined || remotePath.trim() === '') {
      note('remotePath', `"remotePath" is not set: the target is the login folder on the server (${kind}://…/~); put another folder in "url" if you meant one`);
    }
    url = hostUrl(kind, host, remotePath?.trim() || '~', username, port);
  }
  if (url !== undefined) mapped.set('url', url);

  // The sync.
  mapped.set('mode', 'two-way');

  const context = str('context');
  if (context !== undefined) {
    const local = localPathOf(context, mctx.folder);
    if (local === undefined) note('context', `"context" ${show(context)} is outside the workspace folder: not imported, the whole workspace folder is synced`);
    else if (local !== '') mapped.set('localPath', local);
  }

  if (cfg.uploadOnSave !== undefined) {
    if (typeof cfg.uploadOnSave === 'boolean') {
      mapped.set('syncOnSave', cfg.uploadOnSave);
      if (cfg.uploadOnSave) note('uploadOnSave', `"uploadOnSave" became "syncOnSave": a saved file is uploaded only if the server's copy has not changed since the last sync (otherwise it is a conflict, not an overwrite)`);
    } else note('uploadOnSave', `"uploadOnSave" ${show(cfg.uploadOnSave)} is not true or false: not imported`);
  }

  if (cfg.ignore !== undefined) {
    if (Array.isArray(cfg.ignore)) {
      const patterns = cfg.ignore.filter((p): p is string => typeof p === 'string' && p.trim() !== '');
      if (patterns.length !== cfg.ignore.length) note('ignore', `"ignore": entries that are not patterns were left out`);
      if (patterns.length > 0) mapped.set('ignore', patterns);
    } else if (typeof cfg.ignore === 'string' && cfg.ignore.trim() !== '') {
      mapped.set('ignore', [cfg.ignore]);
    } else note('ignore', `"ignore" ${show(cfg.ignore)} is not a list of patterns: not imported`);
  }

  if (cfg.concurrency !== undefined) {
    const c = cfg.concurrency;
    if (typeof c === 'number' && Number.isInteger(c) && c >= 1) {
      mapped.set('transfers', Math.min(c, 64));
      if (c > 64) note('concurrency', `"concurrency" ${c} became "transfers": 64, the most SyncEngine runs at once`);
    } else note('concurrency', `"concurrency" ${show(c)} is not a positive whole number: not imported`);
  }

  // Authentication and connection.
  const key = str('privateKeyPath');
  if (key) mapped.set('privateKey', key);
  const sshConfig = str('sshConfigPath');
  if (sshConfig !== undefined) mapped.set('sshConfig', sshConfig);
  if (ftpsImplicit) mapped.set('ftpsImplicit', true);
  if (cfg.secureOptions !== undefined && cfg.secureOptions !== null) {
    if (isObject(cfg.secureOptions)) {
      const { rejectUnauthorized, ...rest } = cfg.secureOptions;
      if (rejectUnauthorized === false) {
        if (kind === 'ftps') mapped.set('allowUntrustedCertificate', true);
        else note('secureOptions', `"secureOptions": "rejectUnauthorized" only applies to FTPS: not imported`);
      }
      const others = Object.keys(rest);
      if (others.length > 0) note('secureOptions', `"secureOptions" ${others.map((k) => `"${k}"`).join(', ')}: not imported (SyncEngine verifies the certificate against the system's CAs; "allowUntrustedCertificate" accepts a self-signed one)`);
    } else note('secureOptions', `"secureOptions" ${show(cfg.secureOptions)} is not an object: not imported`);
  }

  // Everything else: explained, not mapped.
  const handled = new Set(['name', 'protocol', 'host', 'port', 'username', 'remotePath', 'secure', 'context', 'uploadOnSave', 'ignore', 'concurrency', 'privateKeyPath', 'sshConfigPath', 'secureOptions']);
  for (const [k, v] of Object.entries(cfg)) {
    if (handled.has(k) || STRUCTURE_KEYS.has(k) || v === undefined) continue;
    const why = explainUnmapped(k, v);
    if (why !== undefined) note(k, why);
  }
  return { mapped, hasHost: url !== undefined };
}

/** Why a key is not imported (undefined: nothing to say, e.g. a value that changes nothing). */
function explainUnmapped(key: string, v: unknown): string | undefined {
  switch (key) {
    case 'password':
      return v === null || v === '' ? undefined : `"password" ${SECRETS_NOTE}`;
    case 'passphrase':
      return v === null || v === '' || v === false ? undefined : v === true ? `"passphrase": true is how SyncEngine always works: it asks for the passphrase of an encrypted key once and keeps it in VS Code's SecretStorage` : `"passphrase" ${SECRETS_NOTE}`;
    case 'useTempFile':
    case 'openSsh':
      return v ? `"${key}" is not needed: SyncEngine always writes to a temporary file and renames it into place` : undefined;
    case 'downloadOnOpen':
      return v ? `"downloadOnOpen" has no equivalent: SyncEngine keeps the whole folder in sync instead; run SyncEngine: Sync Now to bring in the server's changes` : undefined;
    case 'watcher':
      return `"watcher" has no equivalent: SyncEngine finds every change, including deletions and renames made outside the editor, each time it syncs (SyncEngine: Sync Now)`;
    case 'syncOption': {
      if (!isObject(v)) return `"syncOption" ${show(v)}: not imported`;
      const parts: string[] = [];
      if (v.delete) parts.push(`"delete": SyncEngine propagates deletions itself, from the side where a file was deleted; "mode": "source-to-destination" makes the server a mirror of the workspace`);
      const others = ['skipCreate', 'ignoreExisting', 'update'].filter((k) => v[k]);
      if (others.length > 0) parts.push(`${others.map((k) => `"${k}"`).join(', ')} ${others.length > 1 ? 'have' : 'has'} no equivalent (SyncEngine copies what changed, from the side that changed it)`);
      return parts.length > 0 ? `"syncOption": ${parts.join('; ')}` : undefined;
    }
    case 'ignoreFile':
      return `"ignoreFile" ${show(v)} is not read: copy its patterns into a .syncignore file at the top of the synced folder (SyncEngine reads .syncignore files, gitignore syntax)`;
    case 'passive':
      return v === false ? `"passive": false (active FTP) is not supported: SyncEngine always uses passive mode` : undefined;
    case 'interactiveAuth':
      return v ? `"interactiveAuth" is not needed: SyncEngine passes the server's keyboard-interactive questions (one-time codes…) on to you` : undefined;
    case 'algorithms':
      return `"algorithms" is not supported: SyncEngine offers ssh2's default algorithms`;
    case 'agent':
      return `"agent" ${show(v)} is not imported: SyncEngine uses the ssh-agent at $SSH_AUTH_SOCK, or the IdentityAgent of ~/.ssh/config`;
    case 'hop':
      return `"hop" (jump host) is not imported: add "ProxyJump" for this host to ~/.ssh/config, which SyncEngine follows (one jump host)`;
    case 'connectTimeout':
      return `"connectTimeout" is not supported: SyncEngine uses its own connection timeout and retries`;
    case 'limitOpenFilesOnRemote':
      return v ? `"limitOpenFilesOnRemote" is not imported: lower "transfers" if the server limits open files` : undefined;
    case 'remoteExplorer':
      return `"remoteExplorer" is not imported: it configures the SFTP extension's own view`;
    case 'remoteTimeOffsetInHours':
      return v ? `"remoteTimeOffsetInHours" is not needed: SyncEngine never compares a server's times with this computer's` : undefined;
    case 'filePerm':
    case 'dirPerm':
      return `"${key}" is not supported: a replaced file keeps its permissions on the server, a new one gets the server's default`;
    case 'sshCustomParams':
      return `"sshCustomParams" is not imported: it is for the SFTP extension's "Open SSH in Terminal"`;
    case 'remote':
      return `"remote" ${show(v)} refers to a "remoteFs.remote" user setting, which is not read: its host and user must be in sftp.json or in the "url"`;
    default:
      return `"${key}" is not a setting SyncEngine knows: not imported`;
  }
}

/** sftp.json "context" as a localPath ('' for the folder itself; undefined when outside it). */
function localPathOf(context: string, folder: string | undefined): string | undefined {
  let c = context.trim().replace(/\\/g, '/');
  // An absolute path inside the workspace folder; otherwise "/sub" means the workspace's "sub", as
  // in the SFTP extension's documentation.
  if (folder !== undefined && (path.isAbsolute(context) || path.win32.isAbsolute(context))) {
    const rel = path.relative(folder, context);
    if (!rel.startsWith('..') && !path.isAbsolute(rel)) c = rel.replace(/\\/g, '/');
    else if (path.win32.isAbsolute(context) && !context.startsWith('/')) return undefined;
  }
  const normal = path.posix.normalize(c.replace(/^\/+/, '') || '.').replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) return undefined;
  return normal === '.' ? '' : normal;
}

// ---------------------------------------------------------------------------------------------
// Output.

function jsonInline(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(jsonInline).join(', ')}]`;
  if (isObject(v)) {
    const entries = Object.entries(v);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${JSON.stringify(k)}: ${jsonInline(x)}`).join(', ')} }`;
  }
  return JSON.stringify(v);
}

const MODE_COMMENT = [
  '// "two-way": changes on either side (edits, deletions, renames) reach the other one.',
  '// Upload only, never delete or download: "source-backup"; mirror this folder onto the',
  '// server (deleting what is not here): "source-to-destination".',
];

function emitTarget(mapped: Mapped, indent: string, explainMode: boolean): string[] {
  const lines: string[] = [];
  const entries = [...mapped];
  entries.forEach(([k, v], i) => {
    if (k === 'mode' && explainMode) lines.push(...MODE_COMMENT.map((c) => indent + c));
    lines.push(`${indent}${JSON.stringify(k)}: ${jsonInline(v)}${i < entries.length - 1 ? ',' : ''}`);
  });
  return lines;
}

/**
 * Reads an sftp.json (one configuration, or an array of them) and produces the equivalent
 * .vscode/syncengine.json. Throws ConfigError (with line and column) for a file that is not JSON.
 */
export function importSftpJson(rawText: string, file: string): SftpJsonImport {
  const text = withoutBom(rawText);
  const problems = new ProblemCollector(text, file);
  const root = parseJsoncTree(text, problems);
  problems.throwIfAny();
  if (!root) {
    problems.add(undefined, 'the file is empty: there is nothing to import');
    problems.throwIfAny();
  }
  let nodes: Node[];
  if (root!.type === 'object') nodes = [root!];
  else if (root!.type === 'array') {
    nodes = root!.children ?? [];
    for (const n of nodes) if (n.type !== 'object') problems.add(n, `each configuration in sftp.json must be an object, not ${shownValue(n)}`);
    if (nodes.length === 0) problems.add(root, 'the list of configurations is empty: there is nothing to import');
  } else {
    problems.add(root, `sftp.json must hold a configuration object (or a list of them), not ${shownValue(root!)}`);
    nodes = [];
  }
  problems.throwIfAny();

  // The workspace folder: sftp.json lives in <folder>/.vscode/.
  const dir = path.dirname(path.resolve(file));
  const mctx: MapContext = { folder: path.basename(dir) === '.vscode' ? path.dirname(dir) : undefined };

  const report: string[] = [];
  const usedNames = new Set<string>();
  const targets: { name: string; mapped: Mapped }[] = [];
  const profileOverrides = new Map<string, Map<string, Mapped>>(); // profile → target → overrides
  const profileNames = new Map<string, string>(); // sftp.json profile name → ours
  let defaultProfile: string | undefined;

  nodes.forEach((node, index) => {
    const cfg = getNodeValue(node) as SftpConfig;
    // The target's name.
    const rawName = typeof cfg.name === 'string' ? cfg.name : '';
    let name = cleanName(rawName) || cleanName(typeof cfg.host === 'string' ? cfg.host : '') || (nodes.length > 1 ? `server-${index + 1}` : 'server');
    if (!TARGET_NAME_PATTERN.test(name)) name = `server-${index + 1}`;
    const base = name;
    for (let n = 2; usedNames.has(name.toLowerCase()); n++) name = `${base}-${n}`;
    usedNames.add(name.toLowerCase());
    const where = `target "${name}"`;
    if (rawName !== '' && rawName !== name) report.push(`${where}: the name ${show(rawName)} became "${name}" (target names take letters, digits, spaces, "_", "." and "-")`);

    const profiles = isObject(cfg.profiles) ? cfg.profiles : {};
    if (cfg.profiles !== undefined && !isObject(cfg.profiles)) report.push(`${where}: "profiles" ${show(cfg.profiles)} is not an object: not imported`);
    const profileEntries = Object.entries(profiles).filter(([p, o]) => {
      if (isObject(o)) return true;
      report.push(`${where}: profile ${show(p)} is not an object: not imported`);
      return false;
    }) as [string, SftpConfig][];

    // Without a host outside the profiles, the target's own settings are those of its default
    // profile (or its first profile with a host).
    const notes: Note[] = [];
    const own = mapConfig(cfg, notes, mctx);
    let mapped = own.mapped;
    const defaultName = typeof cfg.defaultProfile === 'string' ? cfg.defaultProfile : undefined;
    if (!own.hasHost) {
      const candidates = [...profileEntries].sort(([a], [b]) => Number(b === defaultName) - Number(a === defaultName));
      const withHost = candidates.find(([, o]) => mapConfig({ ...cfg, ...o }, [], mctx).hasHost);
      if (!withHost) {
        const hint = cfg.remote !== undefined ? ` (it refers to the "remoteFs.remote" user setting ${show(cfg.remote)}: copy the host and username from there into sftp.json)` : '';
        problems.add(node, `configuration ${rawName ? `"${rawName}"` : index + 1} has no "host"${profileEntries.length > 0 ? ', neither do its profiles' : ''}: SyncEngine needs to know the server${hint}`);
        return;
      }
      mapped = mapConfig({ ...cfg, ...withHost[1] }, [], mctx).mapped;
      report.push(`${where}: there is no "host" outside the profiles: without a profile selected, the target uses the settings of profile "${withHost[0]}"`);
    }
    const seen = new Set<string>();
    for (const n of notes) {
      const line = `${where}: ${n.text}`;
      if (!seen.has(line)) report.push(line);
      seen.add(line);
    }
    targets.push({ name, mapped });

    // Profiles: what each changes in this target.
    for (const [rawProfile, overrides] of profileEntries) {
      let ours = profileNames.get(rawProfile);
      if (ours === undefined) {
        ours = cleanName(rawProfile) || `profile-${profileNames.size + 1}`;
        const taken = new Set(profileNames.values());
        for (let n = 2; taken.has(ours); n++) ours = `${cleanName(rawProfile) || 'profile'}-${n}`;
        profileNames.set(rawProfile, ours);
        if (ours !== rawProfile) report.push(`profile ${show(rawProfile)} became "${ours}" (profile names take letters, digits, spaces, "_", "." and "-")`);
      }
      const pNotes: Note[] = [];
      const merged = mapConfig({ ...cfg, ...overrides }, pNotes, mctx);
      const ownKeys = new Set(Object.keys(overrides));
      for (const n of pNotes) if (ownKeys.has(n.key) && !notes.some((b) => b.text === n.text)) report.push(`profile "${ours}" of ${where}: ${n.text}`);
      for (const k of ['name', 'profiles', 'defaultProfile'].filter((k) => ownKeys.has(k))) report.push(`profile "${ours}" of ${where}: "${k}" inside a profile is not imported`);
      if (!merged.hasHost) report.push(`profile "${ours}" of ${where}: it has no "host": it uses the target's server`);
      const diff: Mapped = new Map();
      for (const [k, v] of merged.mapped) if (JSON.stringify(v) !== JSON.stringify(mapped.get(k))) diff.set(k, v);
      for (const [k] of mapped) {
        if (merged.mapped.has(k) || k === 'url') continue;
        const reset: Record<string, Json> = { syncOnSave: false, ftpsImplicit: false, allowUntrustedCertificate: false, localPath: '', ignore: [] };
        if (k in reset) diff.set(k, reset[k]!);
        else report.push(`profile "${ours}" of ${where}: it drops "${k}", which a SyncEngine profile cannot unset: the target's value applies`);
      }
      let perTarget = profileOverrides.get(ours);
      if (!perTarget) profileOverrides.set(ours, (perTarget = new Map()));
      perTarget.set(name, diff);
    }

    if (defaultName !== undefined) {
      const ours = profileNames.get(defaultName);
      if (ours === undefined) report.push(`${where}: "defaultProfile" ${show(defaultName)} names no profile of this configuration: not imported`);
      else if (defaultProfile === undefined) defaultProfile = ours;
      else if (defaultProfile !== ours) report.push(`${where}: "defaultProfile" "${ours}" is not imported: SyncEngine has one active profile per workspace folder, "${defaultProfile}"`);
    } else if (cfg.defaultProfile !== undefined) {
      report.push(`${where}: "defaultProfile" ${show(cfg.defaultProfile)} is not a profile name: not imported`);
    }
  });
  problems.throwIfAny();

  report.unshift(`mode: every target is "two-way" (SyncEngine syncs both ways and remembers the last sync, so deletions and renames propagate and changes made on the server are not overwritten). For upload-only as with the SFTP extension, set "mode": "source-backup" (never deletes or downloads); to mirror the workspace onto the server, "source-to-destination"`);

  // The file.
  const out: string[] = [];
  out.push(`// Imported by SyncEngine from ${path.basename(path.dirname(path.resolve(file))) === '.vscode' ? '.vscode/' : ''}${path.basename(file)} (the SFTP extension's config).`);
  out.push(`// Passwords and passphrases were not copied: SyncEngine asks for them once and keeps them in`);
  out.push(`// VS Code's SecretStorage.`);
  const notes = report.slice(1);
  if (notes.length > 0) {
    out.push('//', '// Not imported, or imported with a change:');
    for (const line of notes) out.push(...wrapComment(`- ${line}`));
  }
  out.push('{');
  out.push('  "targets": {');
  targets.forEach((t, i) => {
    out.push(`    ${JSON.stringify(t.name)}: {`);
    out.push(...emitTarget(t.mapped, '      ', i === 0));
    out.push(`    }${i < targets.length - 1 ? ',' : ''}`);
  });
  const hasProfiles = profileOverrides.size > 0;
  out.push(`  }${hasProfiles ? ',' : ''}`);
  if (hasProfiles) {
    out.push('  // Named sets of changes to the targets; the one in effect is "profile" (the editor can switch it).');
    out.push('  "profiles": {');
    const profiles = [...profileOverrides];
    profiles.forEach(([p, perTarget], i) => {
      const entries = [...perTarget].filter(([, d]) => d.size > 0);
      out.push(`    ${JSON.stringify(p)}: {${entries.length === 0 ? `}${i < profiles.length - 1 ? ',' : ''}` : ''}`);
      if (entries.length === 0) return;
      entries.forEach(([t, d], j) => {
        out.push(`      ${JSON.stringify(t)}: {`);
        const keys = [...d];
        keys.forEach(([k, v], n) => out.push(`        ${JSON.stringify(k)}: ${jsonInline(v)}${n < keys.length - 1 ? ',' : ''}`));
        out.push(`      }${j < entries.length - 1 ? ',' : ''}`);
      });
      out.push(`    }${i < profiles.length - 1 ? ',' : ''}`);
    });
    out.push(`  }${defaultProfile !== undefined ? ',' : ''}`);
    if (defaultProfile !== undefined) out.push(`  "profile": ${JSON.stringify(defaultProfile)}`);
  }
  out.push('}');
  return { config: `${out.join('\n')}\n`, report };
}

/** A comment line of at most ~100 columns per line. */
function wrapComment(text: string): string[] {
  const words = text.replace(/[\r\n]+/g, ' ').split(' ');
  const lines: string[] = [];
  let line = '//';
  for (const w of words) {
    if (line.length + 1 + w.length > 100 && line !== '//' && line !== '//  ') {
      lines.push(line);
      line = '//  ';
    }
    line += (line.endsWith(' ') ? '' : ' ') + w;
  }
  lines.push(line);
  return lines;
}
