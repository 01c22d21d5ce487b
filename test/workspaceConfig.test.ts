// The workspace config file .vscode/syncengine.json: every key, profiles, aliases, paths, and every
// kind of error with its exact line and column.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../src/core/errors';
import { COMPARE_MODES, CONFLICT_STRATEGIES, INITIAL_PREFERENCES, MODE_ALIASES, SYNC_MODES } from '../src/core/options';
import {
  CONFIG_RELATIVE_PATH,
  ConfigError,
  PROTOCOLS,
  S3_KEYS,
  TARGET_KEYS,
  configTemplate,
  parseWorkspaceConfig,
  type SyncTargetConfig,
} from '../src/config/workspaceConfig';

const FOLDER = path.resolve(os.tmpdir(), 'syncengine-ws');
const FILE = path.join(FOLDER, '.vscode', 'syncengine.json');
const HOME = os.homedir();

function parse(text: string, options?: { profile?: string }) {
  return parseWorkspaceConfig(text, FILE, FOLDER, options);
}

function problemsOf(text: string, options?: { profile?: string }): ConfigError[] {
  try {
    parse(text, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

/** Asserts exactly these problems, in order: [line, column, exact text or pattern]. */
function expectProblems(text: string, expected: [number, number, string | RegExp][], options?: { profile?: string }): ConfigError[] {
  const problems = problemsOf(text, options);
  const got = problems.map((p) => `${p.line}:${p.column} ${p.problem}`);
  assert.equal(problems.length, expected.length, `problems:\n${got.join('\n')}`);
  expected.forEach(([line, column, want], i) => {
    const p = problems[i]!;
    assert.deepEqual([p.line, p.column], [line, column], `position of problem ${i}: ${got[i]}`);
    if (typeof want === 'string') assert.equal(p.problem, want);
    else assert.match(p.problem, want);
  });
  return problems;
}

/** A file with one target whose body is `body` (put on line 3, after 6 spaces: columns start at 7). */
function oneTarget(body: string): string {
  return ['{', '  "targets": {', `    "prod": { ${body} }`, '  }', '}'].join('\n');
}
const BODY_COLUMN = 15; // where `body` starts on line 3 of oneTarget()

function only(text: string, options?: { profile?: string }): SyncTargetConfig {
  const config = parse(text, options);
  assert.equal(config.targets.length, 1);
  return config.targets[0]!;
}

describe('workspace config: the format', () => {
  it('the documented example parses, with every key', () => {
    const text = [
      '{',
      '  // patterns ignored by every target',
      '  "$schema": "../schemas/syncengine.schema.json",',
      '  "ignore": ["node_modules/", "*.log"],',
      '  "targets": {',
      '    "production": {',
      '      "url": "sftp://deploy@example.com/var/www/site",   /* a comment */',
      '      "localPath": "public",',
      '      "mode": "two-way",',
      '      "compare": "hash-then-mtime",',
      '      "conflict": "keep-both",',
      '      "initial": "source-wins",',
      '      "ignore": ["dist/"],',
      '      "syncOnSave": true,',
      '      "transfers": 8, "operations": 16, "connections": 4,',
      '      "maxDeletePercent": 12.5,',
      '      "trashDays": 0,',
      '      "privateKey": "~/.ssh/id_ed25519",',
      '      "knownHosts": "keys/known_hosts",',
      '      "sshConfig": "/etc/ssh/ssh_config",',
      '    },',
      '    "ftp site": { "url": "ftps://me@ftp.example.com/www", "ftpsImplicit": true, "allowUntrustedCertificate": false },',
      '    "bucket.1": { "url": "s3://bucket/prefix/", "s3": { "endpoint": "http://127.0.0.1:9000", "region": "us-east-1", "pathStyle": true } },',
      '  },',
      '}',
    ].join('\n');
    const config = parse(text);
    assert.equal(config.file, FILE);
    assert.equal(config.folder, FOLDER);
    assert.deepEqual(config.profiles, []);
    assert.equal(config.activeProfile, undefined);
    assert.deepEqual(
      config.targets.map((t) => t.name),
      ['production', 'ftp site', 'bucket.1'],
    );
    const [prod, ftp, s3] = config.targets as [SyncTargetConfig, SyncTargetConfig, SyncTargetConfig];
    assert.deepEqual(prod, {
      name: 'production',
      target: { kind: 'sftp', raw: 'sftp://deploy@example.com/var/www/site', host: 'example.com', user: 'deploy', path: '/var/www/site' },
      url: 'sftp://deploy@example.com/var/www/site',
      localRoot: path.join(FOLDER, 'public'),
      options: { mode: 'two-way', compare: 'hash-then-mtime', conflict: 'keep-both', initial: 'source-wins' },
      ignore: ['node_modules/', '*.log', 'dist/'],
      syncOnSave: true,
      limits: { transfers: 8, operations: 16 },
      maxDeletePercent: 12.5,
      trashDays: 0,
      connect: {
        keyFile: path.join(HOME, '.ssh', 'id_ed25519'),
        knownHostsFile: path.join(FOLDER, 'keys', 'known_hosts'),
        sshConfigFile: '/etc/ssh/ssh_config',
        connections: 4,
      },
    });
    assert.deepEqual(ftp.target, { kind: 'ftps', raw: 'ftps://me@ftp.example.com/www', host: 'ftp.example.com', user: 'me', path: '/www' });
    assert.deepEqual(ftp.connect, { ftpsImplicit: true, allowUntrustedCertificate: false });
    assert.equal(ftp.localRoot, FOLDER);
    assert.deepEqual(ftp.options, {});
    assert.deepEqual(ftp.ignore, ['node_modules/', '*.log']);
    assert.equal(ftp.syncOnSave, false);
    assert.deepEqual(ftp.limits, {});
    assert.equal('maxDeletePercent' in ftp, false);
    assert.equal('trashDays' in ftp, false);
    assert.deepEqual(s3.target, { kind: 's3', raw: 's3://bucket/prefix/', bucket: 'bucket', prefix: 'prefix' });
    assert.equal(s3.url, 's3://bucket/prefix');
    assert.deepEqual(s3.connect, { s3Endpoint: 'http://127.0.0.1:9000', s3Region: 'us-east-1', s3PathStyle: true });
  });

  it('mode aliases and any case are accepted and normalised', () => {
    for (const [alias, mode] of Object.entries(MODE_ALIASES)) {
      assert.equal(only(oneTarget(`"url": "sftp://h/x", "mode": "${alias}"`)).options.mode, mode);
    }
    assert.equal(only(oneTarget('"url": "sftp://h/x", "mode": " Source-Backup "')).options.mode, 'source-backup');
    assert.equal(only(oneTarget('"url": "sftp://h/x", "compare": "SIZE-ONLY"')).options.compare, 'size-only');
    for (const mode of SYNC_MODES) assert.equal(only(oneTarget(`"url": "sftp://h/x", "mode": "${mode}"`)).options.mode, mode);
  });

  it('local targets: relative to the workspace folder, ~ expanded, absolute, file://', () => {
    const rel = only(oneTarget('"url": "../backup/site"'));
    assert.deepEqual(rel.target, { kind: 'local', raw: path.resolve(FOLDER, '../backup/site'), path: path.resolve(FOLDER, '../backup/site') });
    assert.equal(rel.url, path.resolve(FOLDER, '../backup/site'));
    assert.equal(only(oneTarget('"url": "~/Backups/site"')).target.kind === 'local' && only(oneTarget('"url": "~/Backups/site"')).url, path.join(HOME, 'Backups', 'site'));
    assert.equal(only(oneTarget('"url": "/srv/mirror"')).url, '/srv/mirror');
    assert.equal(only(oneTarget('"url": "file:///srv/a%20b"')).url, '/srv/a b');
    // The structured form.
    assert.equal(only(oneTarget('"protocol": "local", "path": "../out"')).url, path.resolve(FOLDER, '../out'));
    // A folder inside the synced folder is fine when localPath is a sibling of it.
    assert.equal(only(oneTarget('"url": "mirror", "localPath": "site"')).url, path.join(FOLDER, 'mirror'));
  });

  it('paths of keys: ~ expanded, relative to the workspace folder; sshConfig "" reads none', () => {
    const t = only(oneTarget('"url": "sftp://h/x", "privateKey": "~", "knownHosts": "./kh", "sshConfig": ""'));
    assert.deepEqual(t.connect, { keyFile: HOME, knownHostsFile: path.join(FOLDER, 'kh'), sshConfigFile: '' });
    assert.equal(only(oneTarget('"url": "sftp://h/x", "sshConfig": "~/.ssh/other"')).connect.sshConfigFile, path.join(HOME, '.ssh', 'other'));
  });

  it('localPath: nested folders, "" and "." are the folder itself', () => {
    assert.equal(only(oneTarget('"url": "sftp://h/x", "localPath": "src/site/"')).localRoot, path.join(FOLDER, 'src', 'site'));
    assert.equal(only(oneTarget('"url": "sftp://h/x", "localPath": ""')).localRoot, FOLDER);
    assert.equal(only(oneTarget('"url": "sftp://h/x", "localPath": "."')).localRoot, FOLDER);
    assert.equal(only(oneTarget('"url": "sftp://h/x", "localPath": "a/../b"')).localRoot, path.join(FOLDER, 'b'));
  });

  it('the structured form (sftp.json style) becomes the same target as a URL', () => {
    const abs = only(oneTarget('"protocol": "sftp", "host": "example.com", "port": 2222, "username": "me@corp", "remotePath": "/var/www/my site"'));
    assert.deepEqual(abs.target, { kind: 'sftp', raw: 'sftp://me%40corp@example.com:2222/var/www/my%20site', host: 'example.com', port: 2222, user: 'me@corp', path: '/var/www/my site' });
    assert.equal(abs.url, 'sftp://me@corp@example.com:2222/var/www/my site');
    for (const [remotePath, expected] of [['site', 'site'], ['./site', 'site'], ['~/site', 'site'], ['~', ''], ['.', '']] as const) {
      const t = only(oneTarget(`"protocol": "sftp", "host": "h", "remotePath": "${remotePath}"`)).target;
      assert.equal(t.kind === 'sftp' && t.path, expected, remotePath);
    }
    const v6 = only(oneTarget('"protocol": "ftp", "host": "::1", "remotePath": "/pub"')).target;
    assert.deepEqual(v6, { kind: 'ftp', raw: 'ftp://[::1]/pub', host: '::1', path: '/pub' });
    const ftps = only(oneTarget('"protocol": "FTPS", "host": "h", "remotePath": "/", "ftpsImplicit": true'));
    assert.equal(ftps.target.kind, 'ftps');
    assert.deepEqual(ftps.connect, { ftpsImplicit: true });
    assert.deepEqual(only(oneTarget('"protocol": "s3", "bucket": "b", "prefix": "/x/y/"')).target, { kind: 's3', raw: 's3://b/x/y', bucket: 'b', prefix: 'x/y' });
    assert.deepEqual(only(oneTarget('"protocol": "s3", "bucket": "b"')).target, { kind: 's3', raw: 's3://b', bucket: 'b', prefix: '' });
  });

  it('comments, trailing commas, a byte order mark and CRLF line ends are fine', () => {
    const text = '\uFEFF{\r\n  // c\r\n  "targets": { "a": { "url": "sftp://h/x", }, },\r\n}\r\n';
    assert.equal(parse(text).targets[0]!.name, 'a');
  });

  it('TARGET_KEYS and the constants', () => {
    assert.equal(CONFIG_RELATIVE_PATH, '.vscode/syncengine.json');
    assert.equal(new Set(TARGET_KEYS).size, TARGET_KEYS.length);
  });
});

describe('workspace config: profiles', () => {
  const text = [
    '{',
    '  "targets": {',
    '    "web": { "url": "sftp://deploy@prod.example.com/var/www", "syncOnSave": true, "ignore": ["a"] },',
    '    "files": { "url": "s3://bucket/p", "s3": { "region": "eu-west-1", "pathStyle": true } },',
    '    "box": { "protocol": "sftp", "host": "box", "username": "me", "remotePath": "/srv" }',
    '  },',
    '  "profiles": {',
    '    "staging": {',
    '      "web": { "url": "sftp://deploy@staging.example.com/var/www", "syncOnSave": false, "ignore": ["b"] },',
    '      "files": { "s3": { "endpoint": "http://127.0.0.1:9000" } },',
    '      "box": { "host": "staging-box", "port": 2200 }',
    '    },',
    '    "local": { "web": { "url": "../mirror", "mode": "sb" } },',
    '    "empty": {}',
    '  },',
    '  "profile": "staging"',
    '}',
  ].join('\n');

  it('the file\'s profile applies its overrides: keys replaced, "s3" merged key by key', () => {
    const config = parse(text);
    assert.deepEqual(config.profiles, ['staging', 'local', 'empty']);
    assert.equal(config.activeProfile, 'staging');
    const [web, files, box] = config.targets as [SyncTargetConfig, SyncTargetConfig, SyncTargetConfig];
    assert.equal(web.url, 'sftp://deploy@staging.example.com/var/www');
    assert.equal(web.syncOnSave, false);
    assert.deepEqual(web.ignore, ['b']);
    assert.deepEqual(files.connect, { s3Endpoint: 'http://127.0.0.1:9000', s3Region: 'eu-west-1', s3PathStyle: true });
    assert.deepEqual(box.target, { kind: 'sftp', raw: 'sftp://me@staging-box:2200/srv', host: 'staging-box', port: 2200, user: 'me', path: '/srv' });
  });

  it('the caller\'s profile wins over the file\'s; "" means no profile', () => {
    const local = parse(text, { profile: 'local' });
    assert.equal(local.activeProfile, 'local');
    const web = local.targets[0]!;
    assert.equal(web.target.kind, 'local');
    assert.equal(web.url, path.resolve(FOLDER, '../mirror'));
    assert.deepEqual(web.options, { mode: 'source-backup' });
    assert.equal(web.syncOnSave, true);
    assert.equal(local.targets[2]!.url, 'sftp://me@box/srv');

    const none = parse(text, { profile: '' });
    assert.equal(none.activeProfile, undefined);
    assert.equal(none.targets[0]!.url, 'sftp://deploy@prod.example.com/var/www');
    assert.deepEqual(none.targets[1]!.connect, { s3Region: 'eu-west-1', s3PathStyle: true });

    const empty = parse(text, { profile: 'empty' });
    assert.equal(empty.activeProfile, 'empty');
    assert.equal(empty.targets[0]!.url, 'sftp://deploy@prod.example.com/var/www');
  });

  it('without "profile" no profile applies', () => {
    const config = parse(text.replace('  "profile": "staging"', '  "$schema": "x"'));
    assert.equal(config.activeProfile, undefined);
    assert.equal(config.targets[0]!.url, 'sftp://deploy@prod.example.com/var/www');
  });

  it('a profile that sets "url" replaces a structured location; structured keys over a "url" need a protocol', () => {
    const t = [
      '{',
      '  "targets": { "a": { "protocol": "sftp", "host": "h", "remotePath": "/x" }, "b": { "url": "sftp://h/x" } },',
      '  "profiles": { "p": { "a": { "url": "s3://bucket" }, "b": { "host": "other" } } }',
      '}',
    ].join('\n');
    expectProblems(t, [[3, 62, 'target "b" sets "host" but no "protocol" (with profile "p"): add "protocol" ("sftp", "ftp", "ftps", "s3", "local") or give a "url" instead']]);
    const fixed = t.replace('{ "host": "other" }', '{ "url": "sftp://other/x" }');
    assert.equal(parse(fixed, { profile: 'p' }).targets[0]!.url, 's3://bucket');
    assert.equal(parse(fixed, { profile: 'p' }).targets[1]!.url, 'sftp://other/x');
  });

  it('a profile that is not active is still checked', () => {
    const t = ['{', '  "targets": { "a": { "url": "sftp://h/x" } },', '  "profiles": { "p": { "a": { "url": "gopher://h/x" } } }', '}'].join('\n');
    expectProblems(t, [[3, 38, 'target "a" (with profile "p"): Unknown scheme "gopher://" in the URL "gopher://h/x". Use a folder path, or sftp://, ftp://, ftps:// or s3://']]);
  });

  it('a target completed only by the profiles needs a profile selected', () => {
    const t = ['{', '  "targets": { "a": { "mode": "tw" } },', '  "profiles": { "p": { "a": { "url": "sftp://h/x" } } },', '  "profile": "p"', '}'].join('\n');
    assert.equal(parse(t).targets[0]!.url, 'sftp://h/x');
    expectProblems(t, [[2, 16, /^target "a" has no "url": add one/]], { profile: '' });
  });

  it('errors: unknown target, unknown profile, bad names and values', () => {
    const t = [
      '{',
      '  "targets": { "production": { "url": "sftp://h/x" }, "-x": {} },',
      '  "profiles": {',
      '    "staging": { "prodution": {}, "-x": {}, "other": {}, "production": { "mode": "up", "hots": "h" } },',
      '    "bad/name": {},',
      '    "list": [],',
      '    "p2": { "production": "sftp://h/y" }',
      '  },',
      '  "profile": "stagign"',
      '}',
    ].join('\n');
    expectProblems(t, [
      [2, 55, /^the target name "-x" may only hold letters, digits, spaces, "_", "." and "-", and must start with a letter or digit$/],
      [4, 18, 'profile "staging" names an unknown target "prodution" (did you mean "production"?)'],
      [4, 45, 'profile "staging" names an unknown target "other" (targets: "production")'],
      [4, 82, /^"mode" in profile "staging" for target "production" must be one of "two-way", .*, not "up"$/],
      [4, 88, 'unknown key "hots" in profile "staging" for target "production" (did you mean "host"?)'],
      [5, 5, /^the profile name "bad\/name" may only hold/],
      [6, 13, 'profile "list" must be an object of target overrides, like { "production": { "url": "sftp://…" } }, not a list'],
      [7, 27, 'profile "p2" for target "production" must be an object of settings to override, like { "url": "sftp://…" }, not "sftp://h/y"'],
      [9, 14, '"profile" names an unknown profile "stagign" (did you mean "staging"?) (profiles: "staging", "p2")'],
    ]);
  });

  it('errors: the caller selects a profile the file does not define', () => {
    const t = ['{', '  "targets": { "a": { "url": "sftp://h/x" } },', '  "profiles": { "p": {} }', '}'].join('\n');
    expectProblems(t, [[3, 3, 'the selected profile "q" is not defined in this file (profiles: "p")']], { profile: 'q' });
    expectProblems('{ "targets": { "a": { "url": "sftp://h/x" } } }', [[1, 1, 'the selected profile "q" is not defined in this file (there are no "profiles")']], { profile: 'q' });
    expectProblems('{ "targets": { "a": { "url": "sftp://h/x" } }, "profile": 3 }', [[1, 59, '"profile" must be a string, not 3']]);
  });
});

describe('workspace config: errors point at the offending text', () => {
  it('ConfigError is a UsageError with file:line:column in its message', () => {
    const [p] = expectProblems('{\n  "targets": 1\n}', [[2, 14, '"targets" must be an object of named targets, like { "production": { "url": "sftp://…" } }, not 1']]);
    assert.ok(p instanceof UsageError);
    assert.equal(p!.message, `${FILE}:2:14: "targets" must be an object of named targets, like { "production": { "url": "sftp://…" } }, not 1`);
    assert.equal(p!.file, FILE);
    assert.equal(p!.offset, 15);
    assert.equal(p!.length, 1);
    assert.equal(p!.name, 'ConfigError');
  });

  it('syntax errors, in words, with every one listed', () => {
    expectProblems(['{', '  "targets": {', '    "a": { "url": "sftp://h/x" }', '    "b": { "url": "sftp://h/y" }', '  }', '}'].join('\n'), [
      [4, 5, 'syntax error: comma expected (is a comma missing at the end of the previous line?)'],
    ]);
    expectProblems(['{', '  "targets": {', '    "a": { "url": "sftp://h/x }', '  }', '}'].join('\n'), [
      [3, 19, 'syntax error: unexpected end of string (a closing " is missing)'],
      [5, 2, 'syntax error: close brace expected (a closing } is missing)'],
    ]);
    expectProblems('{\n  targets: {}\n}', [
      [2, 3, 'syntax error: invalid symbol (strings and keys need "double quotes")'],
      [2, 10, 'syntax error: property name expected (keys need "double quotes")'],
      [2, 13, 'syntax error: value expected'],
      [3, 1, 'syntax error: end of file expected'],
    ]);
    expectProblems('{ "targets": { "a": { "url": "sftp://h/x" } } /* open', [
      [1, 47, 'syntax error: unexpected end of comment (a closing */ is missing)'],
      [1, 54, 'syntax error: close brace expected (a closing } is missing)'],
    ]);
    expectProblems('{ "transfers": 1. }', [[1, 16, 'syntax error: unexpected end of number']]);
    expectProblems('{ "a": "\\q" }', [[1, 8, 'syntax error: invalid escape character']]);
  });

  it('lines and columns with CRLF, CR and tabs', () => {
    expectProblems('{\r\n\t"targets": {},\r\n\t"bogus": 1\r\n}', [
      [2, 13, /^no targets/],
      [3, 2, 'unknown key "bogus" at the top level'],
    ]);
    expectProblems('{\r"targets": {}}', [[2, 12, /^no targets/]]);
    expectProblems('\uFEFF{"targets": {"a": {"url": "sftp://h/x", "nope": 1}}}', [[1, 41, 'unknown key "nope" in target "a"']]);
  });

  it('an empty file, a file that is not an object, no targets', () => {
    expectProblems('', [[1, 1, /^the file is empty/]]);
    expectProblems('\n  // only a comment\n', [[1, 1, /^the file is empty/]]);
    expectProblems('\n[]', [[2, 1, 'the file must hold an object like { "targets": { … } }, not a list']]);
    expectProblems('{\n  "ignore": []\n}', [[1, 1, 'no targets: add one under "targets", like "targets": { "production": { "url": "sftp://user@example.com/var/www" } }']]);
    expectProblems('{\n  "targets": {  }\n}', [[2, 14, 'no targets: add one under "targets", like "production": { "url": "sftp://user@example.com/var/www" }']]);
  });

  it('unknown keys, with a suggestion when one is close', () => {
    expectProblems(oneTarget('"url": "sftp://h/x", "hots": "h"'), [[3, BODY_COLUMN + 21, 'unknown key "hots" in target "prod" (did you mean "host"?)']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "syncOnsave": true'), [[3, BODY_COLUMN + 21, 'unknown key "syncOnsave" in target "prod" (did you mean "syncOnSave"?)']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "uploadOnSave": true'), [[3, BODY_COLUMN + 21, 'unknown key "uploadOnSave" in target "prod" (did you mean "syncOnSave"?)']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "privateKeyPath": "k"'), [[3, BODY_COLUMN + 21, 'unknown key "privateKeyPath" in target "prod" (did you mean "privateKey"?)']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "frobnicate": 1'), [[3, BODY_COLUMN + 21, 'unknown key "frobnicate" in target "prod"']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "constructor": 1'), [[3, BODY_COLUMN + 21, /^unknown key "constructor" in target "prod"/]]);
    expectProblems('{ "targts": {} }', [
      [1, 1, /^no targets/],
      [1, 3, 'unknown key "targts" at the top level (did you mean "targets"?)'],
    ]);
    expectProblems('{ "targets": { "a": { "url": "sftp://h/x" } }, "mode": "tw" }', [[1, 48, 'unknown key "mode" at the top level: settings of a target go inside "targets", like "targets": { "production": { "mode": … } }']]);
    expectProblems(oneTarget('"url": "s3://b", "s3": { "regoin": "x" }'), [[3, BODY_COLUMN + 25, 'unknown key "regoin" in "s3" of target "prod" (did you mean "region"?)']]);
  });

  it('duplicate keys', () => {
    expectProblems(oneTarget('"url": "sftp://h/x", "url": "sftp://h/y"'), [[3, BODY_COLUMN + 21, 'duplicate key "url" in target "prod"']]);
  });

  it('passwords, passphrases and S3 keys are refused with the way secrets are handled', () => {
    const secret = /^"(password|passphrase)" in target "prod" does not belong in this file: SyncEngine asks for passwords and passphrases once and keeps them in VS Code's SecretStorage \(the CLI reads SYNCENGINE_PASSWORD and SYNCENGINE_PASSPHRASE or asks\)\. Remove it$/;
    expectProblems(oneTarget('"url": "sftp://h/x", "password": "hunter2"'), [[3, BODY_COLUMN + 21, secret]]);
    expectProblems(oneTarget('"url": "sftp://h/x", "passphrase": "x"'), [[3, BODY_COLUMN + 21, secret]]);
    expectProblems('{ "password": "x", "targets": { "a": { "url": "sftp://h/x" } } }', [[1, 3, /^"password" does not belong in this file: .*SecretStorage/]]);
    expectProblems(oneTarget('"url": "sftp://me:hunter2@h/x"'), [[3, BODY_COLUMN + 7, /^the URL of target "prod" holds a password, which does not belong in this file: .*SecretStorage.*Remove it from the URL$/]]);
    expectProblems(oneTarget('"url": "s3://b", "s3": { "secretAccessKey": "k" }'), [[3, BODY_COLUMN + 25, /^"secretAccessKey" in "s3" of target "prod" does not belong in this file: S3 keys come from the usual AWS sources/]]);
    expectProblems(oneTarget('"url": "s3://AKIA:secret@b"'), [[3, BODY_COLUMN + 7, /^the URL of target "prod" holds a key, .*AWS_ACCESS_KEY_ID/]]);
    expectProblems('{ "targets": { "a": { "url": "sftp://h/x" } }, "profiles": { "p": { "a": { "password": "x" } } } }', [[1, 76, /^"password" in profile "p" for target "a" does not belong in this file/]]);
  });

  it('wrong types and ranges', () => {
    const cases: [string, string][] = [
      ['"transfers": 0', '"transfers" in target "prod" must be a whole number from 1 to 64, not 0'],
      ['"transfers": 65', '"transfers" in target "prod" must be a whole number from 1 to 64, not 65'],
      ['"transfers": 2.5', '"transfers" in target "prod" must be a whole number from 1 to 64, not 2.5'],
      ['"transfers": "8"', '"transfers" in target "prod" must be a whole number from 1 to 64, not "8"'],
      ['"operations": 0', '"operations" in target "prod" must be a whole number from 1 to 256, not 0'],
      ['"connections": 100', '"connections" in target "prod" must be a whole number from 1 to 64, not 100'],
      ['"maxDeletePercent": 101', '"maxDeletePercent" in target "prod" must be a percentage from 0 to 100, not 101'],
      ['"maxDeletePercent": -1', '"maxDeletePercent" in target "prod" must be a percentage from 0 to 100, not -1'],
      ['"trashDays": -1', '"trashDays" in target "prod" must be a whole number from 0 to 36500, not -1'],
      ['"syncOnSave": "yes"', '"syncOnSave" in target "prod" must be true or false, not "yes"'],
      ['"ftpsImplicit": 1', '"ftpsImplicit" in target "prod" must be true or false, not 1'],
      ['"ignore": "dist/"', '"ignore" in target "prod" must be a list of patterns (gitignore syntax), like ["node_modules/", "*.log"], not "dist/"'],
      ['"privateKey": ""', '"privateKey" in target "prod" must not be empty'],
      ['"privateKey": null', '"privateKey" in target "prod" must be a string, not null'],
      ['"s3": true', '"s3" in target "prod" must be an object like { "endpoint": "https://…", "region": "us-east-1", "pathStyle": true }, not true'],
      ['"localPath": "/srv/site"', '"localPath" in target "prod" must be a folder relative to the workspace folder, like "public" or "src/site" ("" for the whole folder), not an absolute path'],
      ['"localPath": "~/site"', '"localPath" in target "prod" must be a folder relative to the workspace folder, like "public" or "src/site" ("" for the whole folder), not an absolute path'],
      ['"localPath": "a/../../b"', '"localPath" in target "prod" must be a folder inside the workspace folder, not "a/../../b"'],
    ];
    for (const [kv, message] of cases) {
      const valueColumn = BODY_COLUMN + 21 + kv.indexOf(':') + 2;
      expectProblems(oneTarget(`"url": "sftp://h/x", ${kv}`), [[3, valueColumn, message]]);
    }
    expectProblems(oneTarget('"url": "sftp://h/x", "ignore": ["a", "", 3]'), [
      [3, BODY_COLUMN + 37, '"ignore" in target "prod": each pattern must be a non-empty string, not ""'],
      [3, BODY_COLUMN + 41, '"ignore" in target "prod": each pattern must be a non-empty string, not 3'],
    ]);
    expectProblems('{ "ignore": {}, "targets": { "a": { "url": "sftp://h/x" } } }', [[1, 13, '"ignore" must be a list of patterns (gitignore syntax), like ["node_modules/", "*.log"], not an object']]);
    expectProblems(oneTarget('"url": "s3://b", "s3": { "endpoint": "ftp://x", "pathStyle": "yes" }'), [
      [3, BODY_COLUMN + 37, '"endpoint" in "s3" of target "prod" must be an http:// or https:// URL, like "https://s3.example.com" or "http://127.0.0.1:9000", not "ftp://x"'],
      [3, BODY_COLUMN + 61, '"pathStyle" in "s3" of target "prod" must be true or false, not "yes"'],
    ]);
    expectProblems(oneTarget('"protocol": "sftp", "host": "h", "port": 0, "remotePath": "/"'), [[3, BODY_COLUMN + 41, '"port" in target "prod" must be a whole number from 1 to 65535, not 0']]);
    expectProblems(oneTarget('"protocol": "sftp", "host": "h:22", "remotePath": "/"'), [[3, BODY_COLUMN + 28, '"host" in target "prod" must be the host alone: put the port in "port"']]);
    expectProblems(oneTarget('"protocol": "sftp", "host": "sftp://h", "remotePath": "/"'), [[3, BODY_COLUMN + 28, /^"host" in target "prod" is a host name, not a URL/]]);
    expectProblems(oneTarget('"protocol": "sftp", "host": "me@h", "remotePath": "/"'), [[3, BODY_COLUMN + 28, /^"host" in target "prod" must be a host name or IP address/]]);
    expectProblems(oneTarget('"protocol": "s3", "bucket": "b/x"'), [[3, BODY_COLUMN + 28, /^"bucket" in target "prod" must be a bucket name/]]);
  });

  it('bad choices list the choices', () => {
    expectProblems(oneTarget('"url": "sftp://h/x", "mode": "twoway"'), [
      [3, BODY_COLUMN + 29, '"mode" in target "prod" must be one of "two-way", "source-to-destination", "source-backup", "destination-to-source", "destination-backup" (or the short forms tw, std, sb, dts, db), not "twoway" (did you mean "two-way"?)'],
    ]);
    expectProblems(oneTarget('"url": "sftp://h/x", "compare": "checksum"'), [
      [3, BODY_COLUMN + 32, '"compare" in target "prod" must be one of "hash-then-mtime", "size-only", "hash-only", "mtime-only", "size-and-mtime", not "checksum"'],
    ]);
    expectProblems(oneTarget('"url": "sftp://h/x", "conflict": "newest"'), [
      [3, BODY_COLUMN + 33, '"conflict" in target "prod" must be one of "newest-wins", "source-wins", "destination-wins", "keep-both", "manual", not "newest"'],
    ]);
    expectProblems(oneTarget('"url": "sftp://h/x", "initial": "merg"'), [
      [3, BODY_COLUMN + 32, '"initial" in target "prod" must be one of "merge", "source-wins", "destination-wins", not "merg" (did you mean "merge"?)'],
    ]);
    expectProblems(oneTarget('"protocol": "scp", "host": "h"'), [[3, BODY_COLUMN + 12, '"protocol" in target "prod" must be one of "sftp", "ftp", "ftps", "s3", "local", not "scp"']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "mode": 2'), [[3, BODY_COLUMN + 29, /^"mode" in target "prod" must be one of .*, not 2$/]]);
  });

  it('bad URLs, with parseTarget\'s reason', () => {
    const cases: [string, string][] = [
      ['gopher://x/y', 'target "prod": Unknown scheme "gopher://" in the URL "gopher://x/y". Use a folder path, or sftp://, ftp://, ftps:// or s3://'],
      ['sftp:///x', 'target "prod": the URL "sftp:///x" names no host'],
      ['s3://b/x?v=1', 'target "prod": the URL "s3://b/x?v=1" has a query or fragment, which targets do not take'],
      ['sftp://h/%E0%A4%A', 'target "prod": the URL "sftp://h/%E0%A4%A" has a malformed %-escape'],
      ['s3://b:9000/x', 'target "prod": the URL "s3://b:9000/x": an s3:// URL is s3://bucket/prefix; give the endpoint with "s3": { "endpoint": … } and keys in the AWS environment variables'],
      ['sftp://h x/', 'target "prod": the URL "sftp://h x/" is not a valid URL'],
    ];
    for (const [url, message] of cases) expectProblems(oneTarget(`"url": ${JSON.stringify(url)}`), [[3, BODY_COLUMN + 7, message]]);
    expectProblems(oneTarget('"url": ""'), [[3, BODY_COLUMN + 7, '"url" in target "prod" must not be empty']]);
  });

  it('where the target is: missing, ambiguous, incomplete', () => {
    expectProblems(oneTarget('"mode": "tw"'), [[3, 5, 'target "prod" has no "url": add one, like "sftp://user@example.com/var/www/site", "ftps://…", "s3://bucket/prefix" or a folder path']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "host": "h", "protocol": "sftp"'), [
      [3, BODY_COLUMN + 21, /^"host" cannot be used together with "url" in target "prod": put everything in the URL/],
      [3, BODY_COLUMN + 34, /^"protocol" cannot be used together with "url" in target "prod"/],
    ]);
    expectProblems(oneTarget('"protocol": "sftp", "host": "h"'), [[3, 5, 'target "prod" has "protocol": "sftp" but no "remotePath": add "remotePath": "/var/www/site" (absolute) or "~/site" (in the login folder)']]);
    expectProblems(oneTarget('"protocol": "ftp", "remotePath": "/"'), [[3, 5, 'target "prod" has "protocol": "ftp" but no "host": add "host": "example.com"']]);
    expectProblems(oneTarget('"protocol": "s3", "prefix": "x"'), [[3, 5, 'target "prod" has "protocol": "s3" but no "bucket": add "bucket": "my-bucket"']]);
    expectProblems(oneTarget('"protocol": "local"'), [[3, 5, /^target "prod" has "protocol": "local" but no "path"/]]);
    expectProblems(oneTarget('"protocol": "s3", "bucket": "b", "host": "h"'), [[3, BODY_COLUMN + 33, '"host" applies to sftp, ftp and ftps targets, but target "prod" has "protocol": "s3"']]);
    expectProblems(oneTarget('"host": "h", "remotePath": "/"'), [[3, BODY_COLUMN, 'target "prod" sets "host" but no "protocol": add "protocol" ("sftp", "ftp", "ftps", "s3", "local") or give a "url" instead']]);
  });

  it('keys that do not apply to the kind of target', () => {
    expectProblems(oneTarget('"url": "s3://b", "privateKey": "k"'), [[3, BODY_COLUMN + 17, '"privateKey" applies to sftp targets, but target "prod" is an s3 target']]);
    expectProblems(oneTarget('"url": "sftp://h/x", "s3": {}'), [[3, BODY_COLUMN + 21, '"s3" applies to s3 targets, but target "prod" is an sftp target']]);
    expectProblems(oneTarget('"url": "ftp://h/x", "ftpsImplicit": true'), [[3, BODY_COLUMN + 20, '"ftpsImplicit" applies to ftps targets, but target "prod" is an ftp target (use an ftps:// URL for FTP over TLS)']]);
    expectProblems(oneTarget('"url": "/srv/x", "connections": 2'), [[3, BODY_COLUMN + 17, '"connections" applies to sftp, ftp, ftps and s3 targets, but target "prod" is a local folder']]);
  });

  it('a local target that overlaps the synced folder', () => {
    expectProblems(oneTarget('"url": "."'), [[3, BODY_COLUMN + 7, `target "prod" is the folder ${FOLDER}, which is (or is inside) the synced folder ${FOLDER}: it would sync into itself`]]);
    expectProblems(oneTarget('"url": "backup"'), [[3, BODY_COLUMN + 7, /^target "prod" is the folder .*backup, which is \(or is inside\) the synced folder/]]);
    expectProblems(oneTarget('"url": "..", "localPath": "site"'), [[3, BODY_COLUMN + 7, /, which contains the synced folder .*site: it would sync into itself$/]]);
  });

  it('target names and target values', () => {
    expectProblems('{ "targets": { "": { "url": "sftp://h/x" } } }', [[1, 16, 'a target name cannot be empty']]);
    expectProblems('{ "targets": { "a/b": { "url": "sftp://h/x" } } }', [[1, 16, 'the target name "a/b" may only hold letters, digits, spaces, "_", "." and "-", and must start with a letter or digit']]);
    expectProblems('{ "targets": { "a": "sftp://h/x" } }', [[1, 21, 'target "a" must be an object like { "url": "sftp://…" }, not "sftp://h/x"']]);
    assert.equal(parse('{ "targets": { "My site_2.0 - x": { "url": "sftp://h/x" } } }').targets[0]!.name, 'My site_2.0 - x');
  });

  it('every problem of the file is collected in document order; the first is thrown', () => {
    const text = [
      '{',
      '  "targets": {',
      '    "a": { "transfers": 0, "url": "sftp://h/x" },',
      '    "b": { "mode": "x", "url": "gopher://h" }',
      '  },',
      '  "bogus": true',
      '}',
    ].join('\n');
    let thrown: unknown;
    try {
      parse(text);
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof ConfigError);
    assert.equal(thrown.line, 3);
    assert.equal(thrown.column, 25);
    assert.equal(thrown.problems[0], thrown);
    assert.deepEqual(
      thrown.problems.map((p) => [p.line, p.column]),
      [
        [3, 25],
        [4, 20],
        [4, 32],
        [6, 3],
      ],
    );
    for (const p of thrown.problems) assert.equal(p.problems, thrown.problems);
  });
});

describe('configTemplate', () => {
  it('produces commented JSONC that parses to what was asked for', () => {
    const text = configTemplate({ name: 'production', url: 'sftp://deploy@example.com/var/www/site', syncOnSave: true });
    assert.match(text, /^\/\/ /);
    assert.match(text, /SecretStorage/);
    const t = only(text);
    assert.equal(t.name, 'production');
    assert.equal(t.url, 'sftp://deploy@example.com/var/www/site');
    assert.equal(t.syncOnSave, true);
    assert.deepEqual(t.options, { mode: 'two-way' });
    assert.equal(t.localRoot, FOLDER);
  });
  it('takes a mode (aliases normalised) and quotes what it is given', () => {
    const t = only(configTemplate({ name: 'my "odd" name'.replace(/"/g, ''), url: '../mirror "x"', syncOnSave: false, mode: 'SB' }));
    assert.equal(t.name, 'my odd name');
    assert.equal(t.url, path.resolve(FOLDER, '../mirror "x"'));
    assert.deepEqual(t.options, { mode: 'source-backup' });
    assert.equal(t.syncOnSave, false);
  });
  it('refuses a bad name or mode', () => {
    assert.throws(() => configTemplate({ name: '-x', url: 'sftp://h/x', syncOnSave: false }), UsageError);
    assert.throws(() => configTemplate({ name: 'x', url: 'sftp://h/x', syncOnSave: false, mode: 'sideways' }), /Unknown sync mode "sideways"/);
  });
});

describe('docs/CONFIG.md', () => {
  it('its examples parse', () => {
    const md = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'CONFIG.md'), 'utf8');
    const [small, full] = [...md.matchAll(/```jsonc\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.equal(only(small!).url, 'sftp://deploy@example.com/var/www/site');
    const config = parse(full!);
    assert.deepEqual(
      config.targets.map((t) => t.url),
      ['sftp://deploy@staging.example.com/var/www/site', 'ftps://me@ftp.example.com:990/htdocs', 's3://my-bucket/backups/site', '/media/me/usb/site'],
    );
    // Every target key is documented.
    for (const key of [...TARGET_KEYS, ...S3_KEYS]) assert.ok(md.includes(`\`${key}\``) || md.includes(`\`s3.${key}\``), `${key} is documented`);
  });
});

describe('the JSON schema agrees with the parser', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'schemas', 'syncengine.schema.json'), 'utf8'));
  const settings = schema.definitions.targetSettings;

  it('is draft-07, strict about keys, and takes comments', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.equal(schema.additionalProperties, false);
    assert.equal(settings.additionalProperties, false);
    assert.equal(settings.properties.s3.additionalProperties, false);
    assert.equal(schema.allowComments, true);
    assert.deepEqual(Object.keys(schema.properties).sort(), ['$schema', 'ignore', 'profile', 'profiles', 'targets']);
  });
  it('has the same target keys, each described; secrets are refused', () => {
    const keys = Object.keys(settings.properties).filter((k) => k !== 'password' && k !== 'passphrase');
    assert.deepEqual(keys.sort(), [...TARGET_KEYS].sort());
    for (const k of keys) assert.ok(settings.properties[k].description, `${k} has a description`);
    assert.deepEqual(settings.properties.password.not, {});
    assert.match(settings.properties.password.errorMessage, /SecretStorage/);
    assert.deepEqual(
      Object.keys(settings.properties.s3.properties).filter((k) => !['accessKeyId', 'secretAccessKey', 'sessionToken'].includes(k)).sort(),
      [...S3_KEYS].sort(),
    );
  });
  it('has the same choices and name pattern', () => {
    assert.deepEqual(settings.properties.mode.enum, [...SYNC_MODES, ...Object.keys(MODE_ALIASES)]);
    assert.equal(settings.properties.mode.enumDescriptions.length, settings.properties.mode.enum.length);
    assert.deepEqual(settings.properties.compare.enum, [...COMPARE_MODES]);
    assert.deepEqual(settings.properties.conflict.enum, [...CONFLICT_STRATEGIES]);
    assert.deepEqual(settings.properties.initial.enum, [...INITIAL_PREFERENCES]);
    assert.deepEqual(settings.properties.protocol.enum, [...PROTOCOLS]);
    assert.deepEqual(Object.keys(schema.properties.targets.patternProperties), ['^[A-Za-z0-9][A-Za-z0-9 _.-]*$']);
    assert.equal(settings.properties.transfers.maximum, 64);
    assert.equal(settings.properties.operations.maximum, 256);
    assert.equal(settings.properties.trashDays.maximum, 36500);
  });
});
