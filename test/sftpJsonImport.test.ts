// Import of the SFTP extension's .vscode/sftp.json: mapping of every key, arrays, profiles, FTP(S)
// variants, the report, errors, and that what it writes parses as a SyncEngine config.
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { importSftpJson } from '../src/config/sftpJsonImport';
import { ConfigError, parseWorkspaceConfig, type SyncTargetConfig, type WorkspaceSyncConfig } from '../src/config/workspaceConfig';

const FOLDER = path.resolve(os.tmpdir(), 'syncengine-import-ws');
const SFTP_JSON = path.join(FOLDER, '.vscode', 'sftp.json');
const CONFIG = path.join(FOLDER, '.vscode', 'syncengine.json');

function imported(sftpJson: unknown, profile?: string): { config: WorkspaceSyncConfig; text: string; report: string[] } {
  const { config: text, report } = importSftpJson(typeof sftpJson === 'string' ? sftpJson : JSON.stringify(sftpJson, null, 2), SFTP_JSON);
  const config = parseWorkspaceConfig(text, CONFIG, FOLDER, profile !== undefined ? { profile } : {});
  return { config, text, report };
}

function target(config: WorkspaceSyncConfig, name: string): SyncTargetConfig {
  const t = config.targets.find((x) => x.name === name);
  assert.ok(t, `target ${name} in ${config.targets.map((x) => x.name).join(', ')}`);
  return t;
}

/** The report line about `key` of `where`, asserting there is exactly one. */
function line(report: string[], where: string, key: string): string {
  const lines = report.filter((l) => l.startsWith(`${where}: "${key}"`));
  assert.equal(lines.length, 1, `one report line for ${key} in:\n${report.join('\n')}`);
  return lines[0]!;
}

describe('importSftpJson: one configuration', () => {
  const sftpJson = {
    name: 'My Server',
    protocol: 'sftp',
    host: 'example.com',
    port: 2222,
    username: 'deploy',
    password: 'hunter2',
    remotePath: '/var/www/site',
    context: 'public/',
    uploadOnSave: true,
    ignore: ['.vscode', '.git', 'node_modules'],
    privateKeyPath: '~/.ssh/id_ed25519',
    passphrase: 'secret phrase',
    sshConfigPath: '~/.ssh/other_config',
    concurrency: 8,
  };

  it('maps the connection, folders, sync on save, ignore, concurrency and key paths', () => {
    const { config, text } = imported(sftpJson);
    assert.equal(config.targets.length, 1);
    const t = target(config, 'My Server');
    assert.deepEqual(t.target, { kind: 'sftp', raw: 'sftp://deploy@example.com:2222/var/www/site', host: 'example.com', port: 2222, user: 'deploy', path: '/var/www/site' });
    assert.equal(t.localRoot, path.join(FOLDER, 'public'));
    assert.equal(t.syncOnSave, true);
    assert.deepEqual(t.ignore, ['.vscode', '.git', 'node_modules']);
    assert.deepEqual(t.limits, { transfers: 8 });
    assert.deepEqual(t.options, { mode: 'two-way' });
    assert.deepEqual(t.connect, { keyFile: path.join(os.homedir(), '.ssh', 'id_ed25519'), sshConfigFile: path.join(os.homedir(), '.ssh', 'other_config') });
    assert.deepEqual(config.profiles, []);
    // Comments explain the mode; secrets are nowhere.
    assert.match(text, /^\/\/ Imported by SyncEngine from \.vscode\/sftp\.json/);
    assert.match(text, /\/\/ Upload only, never delete or download: "source-backup"/);
    assert.doesNotMatch(text, /hunter2|secret phrase|"password"\s*:|"passphrase"\s*:/);
  });

  it('reports the mode choice first, then every key not mapped or mapped with a change', () => {
    const { report, text } = imported(sftpJson);
    assert.match(report[0]!, /^mode: every target is "two-way" .*"source-backup".*"source-to-destination"$/);
    assert.match(line(report, 'target "My Server"', 'password'), /not copied: SyncEngine asks for it once and keeps it in VS Code's SecretStorage/);
    assert.match(line(report, 'target "My Server"', 'passphrase'), /not copied: .*SecretStorage/);
    assert.match(line(report, 'target "My Server"', 'uploadOnSave'), /became "syncOnSave": a saved file is uploaded only if the server's copy has not changed/);
    assert.equal(report.length, 4, report.join('\n'));
    // The notes are in the file too, as comments.
    assert.match(text, /\/\/ Not imported, or imported with a change:\n\/\/ - target "My Server": "uploadOnSave" became/);
  });

  it('default ports are left out; relative and missing remote paths are in the login folder', () => {
    const { config, report } = imported([
      { name: 'a', host: 'h', port: 22, remotePath: 'site' },
      { name: 'b', host: 'h', protocol: 'ftp', port: 21, remotePath: './pub/x/' },
      { name: 'c', host: 'h' },
      { name: 'd', host: 'h', remotePath: '~/x' },
      { name: 'e', host: 'h', port: '2200', remotePath: '/' },
      { name: 'f', host: 'h', port: 'abc', remotePath: '/' },
    ]);
    assert.equal(target(config, 'a').target.raw, 'sftp://h/~/site');
    assert.deepEqual(target(config, 'a').target, { kind: 'sftp', raw: 'sftp://h/~/site', host: 'h', path: 'site' });
    assert.equal(target(config, 'b').target.raw, 'ftp://h/~/pub/x/');
    assert.equal(target(config, 'c').target.raw, 'sftp://h/~');
    assert.equal(target(config, 'd').target.raw, 'sftp://h/~/x');
    assert.equal(target(config, 'e').target.raw, 'sftp://h:2200/');
    assert.equal(target(config, 'f').target.raw, 'sftp://h/');
    assert.match(line(report, 'target "c"', 'remotePath'), /is not set: the target is the login folder on the server \(sftp:\/\/…\/~\)/);
    assert.match(line(report, 'target "f"', 'port'), /"port" "abc" is not a port number/);
  });

  it('context: workspace-relative, "/sub", absolute inside the folder, outside', () => {
    const { config, report } = imported([
      { name: 'a', host: 'h', remotePath: '/', context: '/web' },
      { name: 'b', host: 'h', remotePath: '/', context: './web/sub/' },
      { name: 'c', host: 'h', remotePath: '/', context: path.join(FOLDER, 'site') },
      { name: 'd', host: 'h', remotePath: '/', context: '.' },
      { name: 'e', host: 'h', remotePath: '/', context: '../elsewhere' },
    ]);
    assert.equal(target(config, 'a').localRoot, path.join(FOLDER, 'web'));
    assert.equal(target(config, 'b').localRoot, path.join(FOLDER, 'web', 'sub'));
    assert.equal(target(config, 'c').localRoot, path.join(FOLDER, 'site'));
    assert.equal(target(config, 'd').localRoot, FOLDER);
    assert.equal(target(config, 'e').localRoot, FOLDER);
    assert.match(line(report, 'target "e"', 'context'), /is outside the workspace folder: not imported, the whole workspace folder is synced/);
  });

  it('a user name with special characters is %-encoded in the URL', () => {
    const t = target(imported({ name: 'x', host: 'h', username: 'me@corp', remotePath: '/a b' }).config, 'x');
    assert.deepEqual(t.target, { kind: 'sftp', raw: 'sftp://me%40corp@h/a%20b', host: 'h', user: 'me@corp', path: '/a b' });
  });

  it('protocol "local" becomes a local folder target', () => {
    const t = target(imported({ name: 'l', protocol: 'local', remotePath: '/srv/mirror' }).config, 'l');
    assert.deepEqual(t.target, { kind: 'local', raw: '/srv/mirror', path: '/srv/mirror' });
  });
});

describe('importSftpJson: every other key is explained', () => {
  it('one report line per key, with the reason', () => {
    const { report, config } = imported({
      name: 'all',
      host: 'h',
      remotePath: '/r',
      useTempFile: true,
      openSsh: true,
      downloadOnOpen: true,
      watcher: { files: '**/*', autoUpload: true, autoDelete: true },
      syncOption: { delete: true, skipCreate: true, ignoreExisting: false, update: true },
      ignoreFile: '.gitignore',
      passive: false,
      interactiveAuth: true,
      algorithms: { cipher: ['aes128-ctr'] },
      agent: '$SSH_AUTH_SOCK',
      hop: { host: 'bastion' },
      connectTimeout: 5000,
      limitOpenFilesOnRemote: true,
      remoteExplorer: { filesExclude: ['x'] },
      remoteTimeOffsetInHours: 2,
      filePerm: 644,
      dirPerm: 755,
      sshCustomParams: '-v',
      remote: 'myremote',
      secure: true,
      debug: true,
      concurrency: 100,
      passphrase: true,
    });
    const w = 'target "all"';
    const expected: [string, RegExp][] = [
      ['useTempFile', /is not needed: SyncEngine always writes to a temporary file and renames it into place/],
      ['openSsh', /is not needed/],
      ['downloadOnOpen', /has no equivalent/],
      ['watcher', /has no equivalent: SyncEngine finds every change, including deletions and renames made outside the editor/],
      ['syncOption', /"delete": SyncEngine propagates deletions itself.*"source-to-destination".*"skipCreate", "update" have no equivalent/],
      ['ignoreFile', /is not read: copy its patterns into a \.syncignore file/],
      ['passive', /active FTP\) is not supported/],
      ['interactiveAuth', /is not needed: SyncEngine passes the server's keyboard-interactive questions/],
      ['algorithms', /is not supported/],
      ['agent', /SSH_AUTH_SOCK/],
      ['hop', /ProxyJump/],
      ['connectTimeout', /is not supported/],
      ['limitOpenFilesOnRemote', /lower "transfers"/],
      ['remoteExplorer', /SFTP extension's own view/],
      ['remoteTimeOffsetInHours', /is not needed: SyncEngine never compares a server's times/],
      ['filePerm', /is not supported/],
      ['dirPerm', /is not supported/],
      ['sshCustomParams', /Open SSH in Terminal/],
      ['remote', /remoteFs\.remote/],
      ['secure', /only applies to FTP/],
      ['debug', /is not a setting SyncEngine knows: not imported/],
      ['concurrency', /became "transfers": 64/],
      ['passphrase', /"passphrase": true is how SyncEngine always works/],
    ];
    for (const [key, why] of expected) assert.match(line(report, w, key), why, key);
    assert.equal(report.length, expected.length + 1, report.join('\n'));
    assert.deepEqual(target(config, 'all').limits, { transfers: 64 });
  });

  it('keys whose value changes nothing are not reported', () => {
    const { report } = imported({ name: 'q', host: 'h', remotePath: '/', useTempFile: false, passive: true, interactiveAuth: false, password: null, remoteTimeOffsetInHours: 0, uploadOnSave: false, syncOption: {} });
    assert.equal(report.length, 1, report.join('\n'));
  });
});

describe('importSftpJson: arrays of configurations', () => {
  it('one target per configuration; names made valid and unique', () => {
    const { config, report } = imported([
      { name: 'Prod', host: 'prod.example.com', remotePath: '/www' },
      { name: 'Prod', host: 'other.example.com', remotePath: '/www' },
      { name: 'Büro/Server!', host: 'b.example.com', remotePath: '/' },
      { host: 'noname.example.com', remotePath: '/' },
      { name: '!!!', host: '::1', remotePath: '/' },
    ]);
    assert.deepEqual(
      config.targets.map((t) => [t.name, t.url]),
      [
        ['Prod', 'sftp://prod.example.com/www'],
        ['Prod-2', 'sftp://other.example.com/www'],
        ['B-ro-Server', 'sftp://b.example.com/'],
        ['noname.example.com', 'sftp://noname.example.com/'],
        ['1', 'sftp://::1/'],
      ],
    );
    assert.ok(report.includes('target "Prod-2": the name "Prod" became "Prod-2" (target names take letters, digits, spaces, "_", "." and "-")'), report.join('\n'));
    assert.ok(report.some((l) => l.startsWith('target "B-ro-Server": the name "Büro/Server!" became "B-ro-Server"')));
  });
});

describe('importSftpJson: FTP and FTPS', () => {
  const variants = (secure: unknown, extra: Record<string, unknown> = {}) => imported({ name: 'f', protocol: 'ftp', host: 'ftp.example.com', username: 'u', remotePath: '/htdocs', secure, ...extra });

  it('no "secure" (or false): plain ftp', () => {
    assert.equal(target(variants(false).config, 'f').url, 'ftp://u@ftp.example.com/htdocs');
    assert.equal(target(variants(undefined).config, 'f').target.kind, 'ftp');
    assert.equal(variants(false).report.length, 1);
  });
  it('"secure": true → ftps:// (explicit TLS)', () => {
    const { config, report } = variants(true);
    assert.equal(target(config, 'f').url, 'ftps://u@ftp.example.com/htdocs');
    assert.deepEqual(target(config, 'f').connect, {});
    assert.equal(report.length, 1);
  });
  it('"secure": "control" → ftps://, reported: the data connection is encrypted too', () => {
    const { config, report } = variants('control');
    assert.equal(target(config, 'f').target.kind, 'ftps');
    assert.match(line(report, 'target "f"', 'secure'), /"control" became ftps:\/\/: SyncEngine encrypts the data connections too/);
  });
  it('"secure": "implicit" → ftps:// with ftpsImplicit; port 990 kept', () => {
    const { config } = variants('implicit', { port: 990 });
    const t = target(config, 'f');
    assert.deepEqual(t.target, { kind: 'ftps', raw: 'ftps://u@ftp.example.com:990/htdocs', host: 'ftp.example.com', port: 990, user: 'u', path: '/htdocs' });
    assert.deepEqual(t.connect, { ftpsImplicit: true });
  });
  it('an unknown "secure" value stays plain FTP, reported', () => {
    const { config, report } = variants('yes');
    assert.equal(target(config, 'f').target.kind, 'ftp');
    assert.match(line(report, 'target "f"', 'secure'), /is not true, "control" or "implicit": imported as plain FTP/);
  });
  it('secureOptions: rejectUnauthorized false → allowUntrustedCertificate; the rest reported', () => {
    const { config, report } = variants(true, { secureOptions: { rejectUnauthorized: false, ca: 'x', servername: 'y' } });
    assert.deepEqual(target(config, 'f').connect, { allowUntrustedCertificate: true });
    assert.match(line(report, 'target "f"', 'secureOptions'), /"ca", "servername": not imported/);
    const plain = variants(false, { secureOptions: { rejectUnauthorized: false } });
    assert.deepEqual(target(plain.config, 'f').connect, {});
    assert.match(line(plain.report, 'target "f"', 'secureOptions'), /only applies to FTPS/);
  });
});

describe('importSftpJson: profiles', () => {
  const sftpJson = {
    name: 'site',
    protocol: 'sftp',
    host: 'dev.example.com',
    username: 'dev',
    remotePath: '/var/www',
    uploadOnSave: true,
    profiles: {
      dev: {},
      staging: { host: 'staging.example.com' },
      prod: { host: 'example.com', username: 'deploy', uploadOnSave: false, ignore: ['uploads/'], filePerm: 644, password: 'p' },
    },
    defaultProfile: 'staging',
  };

  it('become SyncEngine profiles of the target; defaultProfile becomes "profile"', () => {
    const { config } = imported(sftpJson);
    assert.deepEqual(config.profiles, ['dev', 'staging', 'prod']);
    assert.equal(config.activeProfile, 'staging');
    assert.equal(config.targets.length, 1);
    assert.equal(target(config, 'site').url, 'sftp://dev@staging.example.com/var/www');
    const prod = target(imported(sftpJson, 'prod').config, 'site');
    assert.equal(prod.url, 'sftp://deploy@example.com/var/www');
    assert.equal(prod.syncOnSave, false);
    assert.deepEqual(prod.ignore, ['uploads/']);
    const dev = target(imported(sftpJson, 'dev').config, 'site');
    assert.equal(dev.url, 'sftp://dev@dev.example.com/var/www');
    assert.equal(dev.syncOnSave, true);
    assert.equal(target(imported(sftpJson, '').config, 'site').url, 'sftp://dev@dev.example.com/var/www');
  });

  it('what a profile sets that cannot be imported is reported against the profile', () => {
    const { report } = imported(sftpJson);
    assert.match(line(report, 'profile "prod" of target "site"', 'filePerm'), /is not supported/);
    assert.match(line(report, 'profile "prod" of target "site"', 'password'), /not copied/);
    assert.equal(report.filter((l) => l.includes('uploadOnSave')).length, 1, report.join('\n'));
  });

  it('only the differences are written into the profiles', () => {
    const { text } = imported(sftpJson);
    assert.match(text, /"dev": \{\},/);
    assert.match(text, /"staging": \{\n\s+"site": \{\n\s+"url": "sftp:\/\/dev@staging\.example\.com\/var\/www"\n\s+\}\n\s+\},/);
    assert.match(text, /"profile": "staging"\n\}\n$/);
  });

  it('several configurations share profiles by name', () => {
    const { config } = imported(
      [
        { name: 'a', host: 'a-dev', remotePath: '/', profiles: { dev: {}, prod: { host: 'a-prod' } }, defaultProfile: 'prod' },
        { name: 'b', host: 'b-dev', remotePath: '/', profiles: { prod: { host: 'b-prod' }, qa: { host: 'b-qa' } }, defaultProfile: 'qa' },
      ],
      undefined,
    );
    assert.deepEqual(config.profiles, ['dev', 'prod', 'qa']);
    assert.equal(config.activeProfile, 'prod');
    assert.deepEqual(
      config.targets.map((t) => t.url),
      ['sftp://a-prod/', 'sftp://b-prod/'],
    );
    const qa = imported(
      [
        { name: 'a', host: 'a-dev', remotePath: '/', profiles: { prod: { host: 'a-prod' } } },
        { name: 'b', host: 'b-dev', remotePath: '/', profiles: { qa: { host: 'b-qa' } } },
      ],
      'qa',
    );
    assert.deepEqual(
      qa.config.targets.map((t) => t.url),
      ['sftp://a-dev/', 'sftp://b-qa/'],
    );
    const { report } = imported([
      { name: 'a', host: 'a', remotePath: '/', profiles: { x: {} }, defaultProfile: 'x' },
      { name: 'b', host: 'b', remotePath: '/', profiles: { y: {} }, defaultProfile: 'y' },
    ]);
    assert.ok(report.some((l) => l === 'target "b": "defaultProfile" "y" is not imported: SyncEngine has one active profile per workspace folder, "x"'), report.join('\n'));
  });

  it('a host given only in the profiles: the target takes the default profile\'s', () => {
    const onlyInProfiles = {
      name: 'p',
      remotePath: '/srv',
      profiles: { one: { host: 'one.example.com' }, two: { host: 'two.example.com', remotePath: '/two' } },
      defaultProfile: 'two',
    };
    const { config, report } = imported(onlyInProfiles);
    assert.equal(target(config, 'p').url, 'sftp://two.example.com/two');
    assert.ok(report.includes('target "p": there is no "host" outside the profiles: without a profile selected, the target uses the settings of profile "two"'), report.join('\n'));
    assert.equal(target(imported(onlyInProfiles, 'one').config, 'p').url, 'sftp://one.example.com/srv');
    assert.equal(target(imported(onlyInProfiles, '').config, 'p').url, 'sftp://two.example.com/two');
  });

  it('profile names are made valid; an unknown defaultProfile is reported', () => {
    const { config, report } = imported({ name: 'n', host: 'h', remotePath: '/', profiles: { 'my/profile': { host: 'x' } }, defaultProfile: 'nope' });
    assert.deepEqual(config.profiles, ['my-profile']);
    assert.equal(config.activeProfile, undefined);
    assert.ok(report.includes('profile "my/profile" became "my-profile" (profile names take letters, digits, spaces, "_", "." and "-")'), report.join('\n'));
    assert.ok(report.includes('target "n": "defaultProfile" "nope" names no profile of this configuration: not imported'), report.join('\n'));
  });
});

describe('importSftpJson: errors', () => {
  function errorOf(text: string): ConfigError {
    try {
      importSftpJson(text, SFTP_JSON);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error;
    }
    assert.fail('expected a ConfigError');
  }

  it('a file that is not JSON: line and column', () => {
    const e = errorOf('{\n  "host": "h",\n  "remotePath": "/"\n  "username": "u"\n}');
    assert.deepEqual([e.line, e.column, e.problem], [4, 3, 'syntax error: comma expected (is a comma missing at the end of the previous line?)']);
    assert.equal(e.message, `${SFTP_JSON}:4:3: syntax error: comma expected (is a comma missing at the end of the previous line?)`);
  });

  it('comments and trailing commas are fine, as in the SFTP extension', () => {
    const { config } = imported('// c\n{ "host": "h", /* x */ "remotePath": "/", }');
    assert.equal(config.targets[0]!.url, 'sftp://h/');
  });

  it('not a configuration', () => {
    assert.deepEqual([errorOf('').line, errorOf('').problem], [1, 'the file is empty: there is nothing to import']);
    const s = errorOf('\n"x"');
    assert.deepEqual([s.line, s.column, s.problem], [2, 1, 'sftp.json must hold a configuration object (or a list of them), not "x"']);
    const a = errorOf('[{ "host": "h" }, 3]');
    assert.deepEqual([a.line, a.column, a.problem], [1, 19, 'each configuration in sftp.json must be an object, not 3']);
    assert.equal(errorOf('[]').problem, 'the list of configurations is empty: there is nothing to import');
  });

  it('a configuration without a host', () => {
    const e = errorOf('[\n  { "host": "h" },\n  { "name": "x", "remote": "r" }\n]');
    assert.deepEqual([e.line, e.column], [3, 3]);
    assert.equal(e.problem, 'configuration "x" has no "host": SyncEngine needs to know the server (it refers to the "remoteFs.remote" user setting "r": copy the host and username from there into sftp.json)');
    assert.equal(errorOf('{ "profiles": { "a": {} } }').problem, 'configuration 1 has no "host", neither do its profiles: SyncEngine needs to know the server');
  });
});
