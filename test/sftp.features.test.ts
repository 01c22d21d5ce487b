// SFTP backend features against real OpenSSH servers on 127.0.0.1: authentication (password, keys,
// passphrases, prompts, keyboard-interactive, ssh-agent), ~/.ssh/config aliases and ProxyJump,
// known_hosts verification (plain, hashed, unknown, changed), remote md5sum, and path safety on
// the server (symlinks leading out of the root, FIFOs, hostile names, unreadable files).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HostKeyError, checkHostKey, fingerprintOf, hostFieldMatches, knownHostsName, parseKnownHosts, wildcardMatch } from '../src/backends/knownHosts';
import type { ConnectOptions } from '../src/backends/registry';
import { SftpAuthError, SftpBackend, open, shellQuote, writesInFlight } from '../src/backends/sftp';
import { parseJumpSpec, resolveSshHost } from '../src/backends/sshConfig';
import type { Backend } from '../src/backends/types';
import type { RemoteHostTarget } from '../src/config/target';
import { StorageError, UnsafePathError, UsageError } from '../src/core/errors';
import { readAll, streamOf } from './conformance/suite';
import { startSshd, type SshdServer } from './servers/sshd';

delete process.env.SSH_AUTH_SOCK; // never use the developer's agent unless a test sets one

const T = { timeout: 60_000 };
let a: SshdServer; // the main server: keys, passwords, TCP forwarding (the jump host)
let b: SshdServer; // a second server: keyboard-interactive only (no "password" method)
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-sftp-features-'));

before(async () => {
  [a, b] = await Promise.all([startSshd(), startSshd({ extraConfig: ['PasswordAuthentication no', 'KbdInteractiveAuthentication yes'] })]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  fs.rmSync(scratch, { recursive: true, force: true });
});

function target(s: SshdServer, dir: string, host = s.host): RemoteHostTarget {
  return { kind: 'sftp', raw: `sftp://${host}${dir}`, host, port: s.port, user: s.user, path: dir };
}

/** Opens with the given options only (no key, no known_hosts unless given). */
async function openWith(s: SshdServer, dir: string, options: ConnectOptions): Promise<Backend> {
  return open(target(s, dir), { sshConfigFile: '', ...options });
}

function tmpFile(name: string, content: string): string {
  const file = path.join(scratch, `${randomBytes(3).toString('hex')}-${name}`);
  fs.writeFileSync(file, content);
  return file;
}

async function roundTrip(backend: Backend): Promise<void> {
  const content = `hello ${randomBytes(4).toString('hex')}`;
  await backend.write('probe.txt', streamOf(content));
  assert.equal((await readAll(backend, 'probe.txt')).toString(), content);
}

async function withBackend(backend: Backend, body: (backend: Backend) => Promise<void>): Promise<void> {
  try {
    await body(backend);
  } finally {
    await backend.close();
  }
}

describe('SFTP: authentication', () => {
  it('password authentication', T, async (t) => {
    if (!a.password) return t.skip('password logins need root to create a test user');
    await withBackend(await openWith(a, a.makeDir('pw'), { password: a.password, knownHostsFile: a.knownHostsFile }), roundTrip);
  });

  it('private key authentication', T, async () => {
    await withBackend(await openWith(a, a.makeDir('key'), { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile }), roundTrip);
  });

  it('a private key with a passphrase', T, async () => {
    await withBackend(await openWith(a, a.makeDir('pass'), { keyFile: a.passphraseKeyFile, passphrase: a.passphrase, knownHostsFile: a.knownHostsFile }), roundTrip);
  });

  it('a wrong passphrase is a clear error naming the key file (nothing is tried on the server)', T, async () => {
    const before = a.log().length;
    await assert.rejects(
      () => openWith(a, a.root, { keyFile: a.passphraseKeyFile, passphrase: 'not the passphrase', knownHostsFile: a.knownHostsFile }),
      (error: unknown) => {
        assert.ok(error instanceof SftpAuthError, String(error));
        assert.equal(error.transient, false);
        assert.match(error.message, /Wrong passphrase/);
        assert.ok(error.message.includes(a.passphraseKeyFile), error.message);
        return true;
      },
    );
    assert.doesNotMatch(a.log().slice(before), /Connection from/, 'no connection was made');
  });

  it('an encrypted key without passphrase: asked through the prompt, or a clear error without one', T, async () => {
    await assert.rejects(
      () => openWith(a, a.root, { keyFile: a.passphraseKeyFile, knownHostsFile: a.knownHostsFile }),
      /protected by a passphrase and none was given/,
    );
    const questions: string[] = [];
    const prompt = async (question: string, options: { secret: boolean }) => {
      questions.push(question);
      assert.equal(options.secret, true);
      return a.passphrase;
    };
    await withBackend(await openWith(a, a.makeDir('askpass'), { keyFile: a.passphraseKeyFile, knownHostsFile: a.knownHostsFile, prompt }), roundTrip);
    assert.equal(questions.length, 1);
    assert.ok(questions[0]!.includes(a.passphraseKeyFile));
  });

  it('no credentials: the password is asked once through the prompt, even for several connections', T, async (t) => {
    if (!a.password) return t.skip('password logins need root to create a test user');
    const questions: { question: string; secret: boolean }[] = [];
    const prompt = async (question: string, options: { secret: boolean }) => {
      questions.push({ question, secret: options.secret });
      return a.password;
    };
    const backend = await openWith(a, a.makeDir('prompted'), { knownHostsFile: a.knownHostsFile, prompt, connections: 3 });
    await withBackend(backend, async () => {
      await Promise.all(Array.from({ length: 12 }, (_, i) => backend.write(`f${i}.txt`, Buffer.from(`file ${i}`))));
      await Promise.all(Array.from({ length: 12 }, (_, i) => backend.stat(`f${i}.txt`)));
      assert.ok((backend as SftpBackend).connectionCount > 1, 'the pool grew');
      assert.ok((backend as SftpBackend).connectionCount <= 3, 'at most `connections` connections');
    });
    assert.equal(questions.length, 1, JSON.stringify(questions));
    assert.equal(questions[0]!.secret, true);
    assert.match(questions[0]!.question, new RegExp(`Password for ${a.user}@127\\.0\\.0\\.1:${a.port}`));
  });

  it('an upload keeps about one channel window of writes in flight: 8 of 255 KiB on OpenSSH, never fewer than 2 or more than 16', () => {
    // OpenSSH's limits@openssh.com max-write-length, and ssh2's default without that extension.
    assert.equal(writesInFlight(261_120), 8);
    assert.equal(writesInFlight(34_000 - 13), 16);
    assert.equal(writesInFlight(4 * 1024 * 1024), 2);
  });

  it('listing and stat share one connection however many are in flight; transfers open more', T, async () => {
    const backend = await openWith(a, a.makeDir('pool'), { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile, connections: 3 });
    await withBackend(backend, async () => {
      const count = () => (backend as SftpBackend).connectionCount;
      await Promise.all(Array.from({ length: 8 }, (_, i) => backend.mkdir(`d${i}`)));
      await Promise.all(Array.from({ length: 16 }, (_, i) => backend.stat(`d${i % 8}/missing-${i}`)));
      await Promise.all(Array.from({ length: 16 }, (_, i) => backend.listDir(`d${i % 8}`)));
      assert.equal(count(), 1, 'metadata requests did not open connections');
      await Promise.all(Array.from({ length: 12 }, (_, i) => backend.write(`d0/f${i}.txt`, Buffer.from(`file ${i}`))));
      assert.ok(count() > 1, 'parallel uploads did');
      assert.ok(count() <= 3, 'at most `connections` connections');
    });
  });

  it('no credentials and nobody answers the prompt: a clear error, no hang', T, async (t) => {
    if (!a.password) return t.skip('the server must accept passwords for the prompt to be asked');
    const started = Date.now();
    await assert.rejects(
      () => openWith(a, a.root, { knownHostsFile: a.knownHostsFile, prompt: async () => undefined }),
      (error: unknown) => {
        assert.ok(error instanceof SftpAuthError, String(error));
        assert.match(error.message, /no password was given \(nobody answered the prompt\)/);
        assert.ok(error.message.includes(`127.0.0.1:${a.port}`), error.message);
        return true;
      },
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it('no credentials and no prompt: the error says what to give', T, async () => {
    await assert.rejects(
      () => openWith(a, a.root, { knownHostsFile: a.knownHostsFile }),
      (error: unknown) => {
        assert.ok(error instanceof SftpAuthError, String(error));
        assert.match(error.message, new RegExp(`Authentication to SFTP server ${a.user}@127\\.0\\.0\\.1:${a.port} failed`));
        assert.match(error.message, /Give a password \(SYNCENGINE_PASSWORD\) or a private key \(--key\)/);
        return true;
      },
    );
  });

  it('keyboard-interactive, with the password or by passing the questions to the prompt', T, async (t) => {
    if (!b.password) return t.skip('keyboard-interactive logins need root to create a test user (PAM)');
    await withBackend(await openWith(b, b.makeDir('kbd'), { password: b.password, knownHostsFile: b.knownHostsFile }), roundTrip);
    const questions: { question: string; secret: boolean }[] = [];
    const prompt = async (question: string, options: { secret: boolean }) => {
      questions.push({ question, secret: options.secret });
      return b.password;
    };
    await withBackend(await openWith(b, b.makeDir('kbd2'), { prompt, knownHostsFile: b.knownHostsFile }), roundTrip);
    assert.equal(questions.length, 1);
    assert.match(questions[0]!.question, /Password/);
    assert.equal(questions[0]!.secret, true, 'the server said not to echo');
    // A wrong password through keyboard-interactive is an authentication error.
    await assert.rejects(() => openWith(b, b.root, { password: 'wrong', knownHostsFile: b.knownHostsFile }), SftpAuthError);
  });

  it('ssh-agent ($SSH_AUTH_SOCK)', T, async () => {
    const socket = path.join(scratch, `agent-${randomBytes(3).toString('hex')}.sock`);
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const added = spawnSync('ssh-add', [a.keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, encoding: 'utf8', timeout: 10_000 });
      assert.equal(added.status, 0, added.stderr);
      process.env.SSH_AUTH_SOCK = socket;
      await withBackend(await openWith(a, a.makeDir('agent'), { knownHostsFile: a.knownHostsFile }), roundTrip);
    } finally {
      delete process.env.SSH_AUTH_SOCK;
      agent.kill();
    }
  });
});

describe('SFTP: ~/.ssh/config', () => {
  it('a host alias gives HostName, Port, User and IdentityFile', T, async () => {
    const config = tmpFile(
      'config',
      `# test config\nHost other\n  Port 1\n\nHost mybox *.example\n  HostName 127.0.0.1\n  Port ${a.port}\n  User ${a.user}\n  IdentityFile ${a.keyFile}\n\nHost *\n  Port 2\n  User nobody\n`,
    );
    const dir = a.makeDir('alias');
    const backend = await open({ kind: 'sftp', raw: `sftp://mybox${dir}`, host: 'mybox', path: dir }, { sshConfigFile: config, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      await roundTrip(backend);
      assert.ok(backend.displayName.includes('mybox'), backend.displayName);
      assert.equal(backend.id, `sftp://${a.user}@127.0.0.1:${a.port}${fs.realpathSync(dir)}`);
    });
  });

  it('ProxyJump: the target is reached through a jump host', T, async () => {
    // b is the target; a is the jump host (AllowTcpForwarding yes). Each checks its own host key.
    const knownHosts = tmpFile('known_hosts', `[127.0.0.1]:${a.port} ${a.hostPublicKey}\n[127.0.0.1]:${b.port} ${b.hostPublicKey}\n`);
    const config = tmpFile(
      'config',
      `Host target\n  HostName 127.0.0.1\n  Port ${b.port}\n  User ${b.user}\n  IdentityFile ${b.keyFile}\n  ProxyJump jumpbox\n\nHost jumpbox\n  HostName 127.0.0.1\n  Port ${a.port}\n  User ${a.user}\n  IdentityFile ${a.keyFile}\n`,
    );
    const aLog = a.log().length;
    const dir = b.makeDir('jumped');
    const backend = await open({ kind: 'sftp', raw: `sftp://target${dir}`, host: 'target', path: dir }, { sshConfigFile: config, knownHostsFile: knownHosts });
    await withBackend(backend, roundTrip);
    const log = a.log().slice(aLog);
    assert.match(log, new RegExp(`Accepted publickey for ${a.user}`), 'logged in on the jump host');
    assert.ok(fs.readdirSync(dir).includes('probe.txt'), 'the file is on the target');
    // An unknown jump host key is refused like any other.
    const onlyTarget = tmpFile('known_hosts', `[127.0.0.1]:${b.port} ${b.hostPublicKey}\n`);
    await assert.rejects(
      () => open({ kind: 'sftp', raw: '', host: 'target', path: dir }, { sshConfigFile: config, knownHostsFile: onlyTarget }),
      (error: unknown) => error instanceof HostKeyError && error.hostName === `[127.0.0.1]:${a.port}` && error.message.includes('jumpbox'),
    );
  });

  it('parsing: patterns, negation, first value wins, IdentityFile accumulates, tokens, Match, Include', () => {
    const home = fs.mkdtempSync(path.join(scratch, 'home-'));
    fs.mkdirSync(path.join(home, '.ssh'));
    fs.writeFileSync(path.join(home, '.ssh', 'extra.conf'), 'Host inc\n  HostName included.example\n');
    const file = path.join(home, '.ssh', 'config');
    fs.writeFileSync(
      file,
      [
        'Include extra.conf',
        'Host web-* !web-secret',
        '  HostName %h.internal',
        '  User deploy',
        '  IdentityFile ~/.ssh/id_%r_%h',
        'Host web-?? ',
        '  Port 2222',
        '  User ignored-first-wins',
        'Match host *.internal',
        '  IdentityFile "/keys/with space"',
        'Host *',
        '  Port=22',
        '  ServerAliveInterval 30',
        '  ProxyJump "jump.example:2200"',
      ].join('\n'),
    );
    const env = { home, localUser: 'me' };
    const web = resolveSshHost(file, 'web-01', {}, env);
    assert.equal(web.hostName, 'web-01.internal');
    assert.equal(web.user, 'deploy');
    assert.equal(web.port, 2222);
    assert.deepEqual(web.identityFiles, [path.join(home, '.ssh', 'id_deploy_web-01.internal'), '/keys/with space']);
    assert.equal(web.serverAliveInterval, 30);
    assert.deepEqual(parseJumpSpec(web.proxyJump!), { host: 'jump.example', port: 2200 });
    const secret = resolveSshHost(file, 'web-secret', {}, env);
    assert.equal(secret.hostName, 'web-secret');
    assert.equal(secret.port, 22);
    assert.equal(secret.user, undefined);
    assert.equal(resolveSshHost(file, 'inc', {}, env).hostName, 'included.example');
    // Explicit user and port (from the URL) win over the file.
    const explicit = resolveSshHost(file, 'web-01', { user: 'root', port: 2022 }, env);
    assert.equal(explicit.user, 'root');
    assert.equal(explicit.port, 2022);
    assert.deepEqual(parseJumpSpec('ssh://u@[::1]:22'), { host: '::1', user: 'u', port: 22 });
    assert.throws(() => parseJumpSpec('a,b'), /only one jump host/);
    // Malformed lines name the file and line.
    const bad = path.join(home, 'bad');
    fs.writeFileSync(bad, 'Host x\n  Port twenty\n');
    assert.throws(() => resolveSshHost(bad, 'x', {}, env), (error: unknown) => error instanceof UsageError && error.message.includes(`${bad}:2`));
    // A missing file means no settings.
    assert.equal(resolveSshHost(path.join(home, 'missing'), 'x', {}, env).hostName, 'x');
  });
});

describe('SFTP: host keys (known_hosts)', () => {
  it('a plain and a hashed known_hosts entry are accepted', T, async () => {
    assert.match(fs.readFileSync(a.hashedKnownHostsFile, 'utf8'), /^\|1\|/);
    for (const knownHostsFile of [a.knownHostsFile, a.hashedKnownHostsFile]) {
      await withBackend(await openWith(a, a.makeDir('kh'), { keyFile: a.keyFile, knownHostsFile }), roundTrip);
    }
  });

  it('an unknown host without confirmation is refused with its fingerprint and the flag to accept it', T, async () => {
    const empty = tmpFile('known_hosts', '');
    await assert.rejects(
      () => openWith(a, a.root, { keyFile: a.keyFile, knownHostsFile: empty }),
      (error: unknown) => {
        assert.ok(error instanceof HostKeyError, String(error));
        assert.equal(error.reason, 'unknown');
        assert.equal(error.fingerprint, a.hostKeyFingerprint);
        assert.match(error.message, /can't be established/);
        assert.ok(error.message.includes(`--accept-host-key ${a.hostKeyFingerprint}`), error.message);
        assert.equal(error.knownHostsLine, `[127.0.0.1]:${a.port} ${a.hostPublicKey}`, 'the line a caller may add');
        return true;
      },
    );
    assert.equal(fs.readFileSync(empty, 'utf8'), '', 'known_hosts is never written');
  });

  it('an unknown host is accepted with --accept-host-key <its fingerprint>, refused with another', T, async () => {
    const empty = tmpFile('known_hosts', '');
    await withBackend(await openWith(a, a.makeDir('accept'), { keyFile: a.keyFile, knownHostsFile: empty, acceptHostKey: a.hostKeyFingerprint }), roundTrip);
    await assert.rejects(
      () => openWith(a, a.root, { keyFile: a.keyFile, knownHostsFile: empty, acceptHostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
      (error: unknown) => error instanceof HostKeyError && error.message.includes(a.hostKeyFingerprint),
    );
  });

  it('an unknown host: the prompt shows the fingerprint; yes accepts (once for all connections), no refuses', T, async () => {
    const empty = tmpFile('known_hosts', '');
    const questions: string[] = [];
    const say = (answer: string) => async (question: string) => {
      questions.push(question);
      return answer;
    };
    await assert.rejects(() => openWith(a, a.root, { keyFile: a.keyFile, knownHostsFile: empty, prompt: say('no') }), HostKeyError);
    const backend = await openWith(a, a.makeDir('tofu'), { keyFile: a.keyFile, knownHostsFile: empty, prompt: say('yes'), connections: 3 });
    await withBackend(backend, async () => {
      await Promise.all(Array.from({ length: 10 }, (_, i) => backend.write(`p${i}`, Buffer.from('x'))));
    });
    assert.equal(questions.length, 2, 'asked once per backend');
    assert.match(questions[1]!, new RegExp(`The authenticity of host '\\[127\\.0\\.0\\.1\\]:${a.port}'.*can't be established`, 's'));
    assert.ok(questions[1]!.includes(`key fingerprint is ${a.hostKeyFingerprint}`));
    assert.match(questions[1]!, /Trust it\? \(yes\/no\)$/);
  });

  it('a CHANGED host key is refused even when the prompt would say yes, naming the file and line', T, async () => {
    const other = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(scratch, `other-${randomBytes(3).toString('hex')}`)], { encoding: 'utf8' });
    assert.equal(other.status, 0, other.stderr);
    const otherPub = fs.readdirSync(scratch).filter((n) => n.startsWith('other-') && n.endsWith('.pub')).map((n) => fs.readFileSync(path.join(scratch, n), 'utf8'))[0]!.trim().split(' ').slice(0, 2).join(' ');
    const content = `# comment\nunrelated.example ${a.hostPublicKey}\n[127.0.0.1]:${a.port} ${otherPub}\n`;
    const changed = tmpFile('known_hosts', content);
    let prompted = 0;
    await assert.rejects(
      () => openWith(a, a.root, { keyFile: a.keyFile, knownHostsFile: changed, acceptHostKey: a.hostKeyFingerprint, prompt: async () => (prompted++, 'yes') }),
      (error: unknown) => {
        assert.ok(error instanceof HostKeyError, String(error));
        assert.equal(error.reason, 'changed');
        assert.equal(error.transient, false);
        assert.match(error.message, /^HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+/);
        assert.ok(error.message.includes(`${changed} line 3`), error.message);
        assert.ok(error.message.includes(a.hostKeyFingerprint), error.message);
        return true;
      },
    );
    assert.equal(prompted, 0, 'never prompted');
    assert.equal(fs.readFileSync(changed, 'utf8'), content, 'known_hosts untouched');
  });

  it('parsing: patterns, negation, hashed names, ports, @revoked, fingerprints', () => {
    const key = Buffer.from(a.hostPublicKey.split(' ')[1]!, 'base64');
    assert.equal(fingerprintOf(key), a.hostKeyFingerprint);
    assert.equal(knownHostsName('Example.COM', 22), 'example.com');
    assert.equal(knownHostsName('10.0.0.1', 2222), '[10.0.0.1]:2222');
    assert.ok(wildcardMatch('*.example.com', 'a.b.example.com'));
    assert.ok(wildcardMatch('h?st', 'host'));
    assert.ok(!wildcardMatch('h?st', 'hoost'));
    assert.ok(hostFieldMatches('*.example.com,!bad.example.com', 'good.example.com'));
    assert.ok(!hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com'));
    assert.ok(hostFieldMatches('[10.0.0.1]:2222', '[10.0.0.1]:2222'));
    assert.ok(!hostFieldMatches('10.0.0.1', '[10.0.0.1]:2222'));
    const hashedLine = fs.readFileSync(a.hashedKnownHostsFile, 'utf8');
    const entries = parseKnownHosts(hashedLine, 'f');
    assert.equal(checkHostKey(entries, `[127.0.0.1]:${a.port}`, key).status, 'known');
    assert.equal(checkHostKey(entries, `[127.0.0.2]:${a.port}`, key).status, 'unknown');
    const revoked = parseKnownHosts(`@revoked * ${a.hostPublicKey}\n* ${a.hostPublicKey}\n`, 'f');
    assert.equal(checkHostKey(revoked, 'any', key).status, 'revoked');
    const garbage = parseKnownHosts('not a line\nhost ssh-ed25519 !!!\n@weird host ssh-ed25519 AAAA\n', 'f');
    assert.deepEqual(garbage, []);
  });
});

describe('SFTP: capabilities and safety on the server', () => {
  it('hash runs md5sum or sha256sum on the server and matches the local digest, whatever the name', T, async () => {
    const backend = await openWith(a, a.makeDir('hash'), { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      assert.ok(backend.hash, 'the test account has a shell: hash is available');
      assert.deepEqual((backend as SftpBackend).capabilities, { exec: true, hashTools: ['md5', 'sha256-128'], posixRename: true, copyData: true, hardlink: true });
      const data = randomBytes(3 * 1024 * 1024 + 17);
      for (const name of ['plain.bin', `it's a "quoted" $(touch pwned) \`x\` ; name.bin`, '-starts-with-dash.bin', 'ünï cødé/file.bin']) {
        await backend.write(name, data);
        assert.equal(await backend.hash!(name, 'md5'), createHash('md5').update(data).digest('hex'), name);
        assert.equal(await backend.hash!(name, 'sha256-128'), createHash('sha256').update(data).digest('hex').slice(0, 32), name);
      }
      assert.ok(!fs.existsSync(path.join(a.home, 'pwned')), 'no command ran from a name');
      assert.equal(shellQuote("a'b"), `'a'\\''b'`);
      await assert.rejects(() => backend.hash!('missing.bin', 'sha256-128'), /no such file/);
      await backend.mkdir('folder');
      await assert.rejects(() => backend.hash!('folder', 'md5'), /it is a folder/);
    });
  });

  it('a login shell that prints a banner does not confuse the hash-tool probe or results; a missing tool means reading the file, a missing id is no matter', T, async (t) => {
    if (!b.dedicatedUser) return t.skip('changing the login shell needs root');
    const changed = spawnSync('usermod', ['-s', '/bin/bash', b.user], { encoding: 'utf8', timeout: 10_000 });
    if (changed.status !== 0) return t.skip(`usermod failed: ${changed.stderr}`);
    // bash run by sshd reads ~/.bashrc even for a command; this one talks on stdout.
    // It also hides sha256sum and id, as on a server without them.
    const emptySha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const hidden = ['sha256sum', 'id'].map((tool) => `${tool}() { echo "${tool}: command not found" >&2; return 127; }\n`).join('');
    fs.writeFileSync(path.join(b.home, '.bashrc'), `echo "Welcome to the test server"\necho d41d8cd98f00b204e9800998ecf8427e  /fake\necho ${emptySha}  /fake\n${hidden}`);
    b.chown(path.join(b.home, '.bashrc'));
    try {
      const backend = await openWith(b, b.makeDir('banner'), { keyFile: b.keyFile, knownHostsFile: b.knownHostsFile });
      await withBackend(backend, async () => {
        const check = spawnSync('ssh', ['-o', `UserKnownHostsFile=${b.knownHostsFile}`, '-o', 'BatchMode=yes', '-i', b.keyFile, '-p', String(b.port), `${b.user}@127.0.0.1`, 'true'], { encoding: 'utf8', timeout: 10_000 });
        assert.match(check.stdout, /Welcome to the test server/, 'the banner is really printed');
        assert.ok(backend.hash, 'hash found despite the banner');
        assert.deepEqual((backend as SftpBackend).capabilities.hashTools, ['md5'], 'sha256sum is not taken for there');
        const data = randomBytes(100_000);
        await backend.write('x.bin', data);
        assert.equal(await backend.hash!('x.bin', 'md5'), createHash('md5').update(data).digest('hex'));
        assert.equal(await backend.hash!('x.bin', 'sha256-128'), createHash('sha256').update(data).digest('hex').slice(0, 32), 'read and hashed here');
      });
    } finally {
      spawnSync('usermod', ['-s', '/bin/sh', b.user], { timeout: 10_000 });
      fs.rmSync(path.join(b.home, '.bashrc'), { force: true });
    }
  });

  it('a relative root is under the login folder; a missing root is created by the first write', T, async () => {
    const name = `rel-${randomBytes(3).toString('hex')}`;
    // Relative to the login folder ("data" for the test user; "../../tmp/..." for a non-root run).
    const relativeRoot = path.relative(fs.realpathSync(a.home), fs.realpathSync(a.root));
    const backend = await openWith(a, `${relativeRoot}/${name}/inner`, { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      assert.equal((backend as SftpBackend).root, path.join(fs.realpathSync(a.root), name, 'inner'));
      await assert.rejects(() => backend.listDir(''), (error: unknown) => error instanceof StorageError && /folder does not exist/.test(error.message));
      await backend.write('x.txt', Buffer.from('x'));
      assert.equal(fs.readFileSync(path.join(a.root, name, 'inner', 'x.txt'), 'utf8'), 'x');
      assert.deepEqual((await backend.listDir('')).entries.map((e) => e.path), ['x.txt']);
    });
  });

  it('symlinks leading out of the root are never followed; FIFOs, hostile names and unreadable files are skipped', T, async () => {
    const dir = a.makeDir('hostile');
    const outside = a.makeDir('outside');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'outside secret');
    fs.symlinkSync(outside, path.join(dir, 'out'));
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(dir, 'link.txt'));
    fs.symlinkSync('/nonexistent/target', path.join(dir, 'dangling'));
    spawnSync('mkfifo', [path.join(dir, 'fifo')]);
    fs.writeFileSync(path.join(dir, 'back\\slash.txt'), 'x');
    fs.writeFileSync(path.join(dir, 'new\nline.txt'), 'x');
    fs.writeFileSync(path.join(dir, 'ok.txt'), 'ok');
    a.chown(dir);
    a.chown(outside);
    if (a.dedicatedUser) {
      fs.writeFileSync(path.join(dir, 'unreadable.txt'), 'root only');
      fs.chmodSync(path.join(dir, 'unreadable.txt'), 0o600); // owned by root: the login user cannot read it
    }
    const backend = await openWith(a, dir, { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      const listing = await backend.listDir('');
      assert.deepEqual(listing.entries.map((e) => e.path), ['ok.txt']);
      const reasons = Object.fromEntries(listing.skipped.map((s) => [s.path, s.reason]));
      assert.equal(reasons.out, 'symbolic link (not followed)');
      assert.equal(reasons['link.txt'], 'symbolic link (not followed)');
      assert.equal(reasons.dangling, 'symbolic link (not followed)');
      assert.equal(reasons.fifo, 'named pipe (not a regular file)');
      assert.match(reasons['back\\slash.txt']!, /unsafe name/);
      assert.match(reasons['new\nline.txt']!, /unsafe name/);
      if (a.dedicatedUser) assert.equal(reasons['unreadable.txt'], 'unreadable file (permission denied)');
      const unsafe = (error: unknown) => error instanceof UnsafePathError;
      await assert.rejects(() => backend.write('out/evil.txt', Buffer.from('evil')), unsafe);
      await assert.rejects(() => backend.write('dangling/evil.txt', Buffer.from('evil')), unsafe);
      await assert.rejects(() => backend.read('out/secret.txt'), unsafe);
      await assert.rejects(() => backend.stat('out/secret.txt'), unsafe);
      await assert.rejects(() => backend.listDir('out'), unsafe);
      await assert.rejects(() => backend.mkdir('out/sub'), unsafe);
      await assert.rejects(() => backend.deleteFile('out/secret.txt'), unsafe);
      await assert.rejects(() => backend.rename!('ok.txt', 'out/ok.txt'), unsafe);
      await assert.rejects(() => backend.hash!('out/secret.txt', 'sha256-128'), unsafe);
      // The last component is not followed either: a symlink or a FIFO is refused (a FIFO would block the server).
      await assert.rejects(() => backend.read('link.txt'), /symbolic link/);
      await assert.rejects(() => backend.read('fifo'), /named pipe/);
      await assert.rejects(() => backend.hash!('fifo', 'sha256-128'), /named pipe/);
      assert.equal(await backend.stat('link.txt'), undefined);
      // Writing over a symlink replaces the link, never the file it points to.
      await backend.write('link.txt', Buffer.from('replaced'));
      assert.equal(fs.readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'outside secret');
      assert.equal(fs.lstatSync(path.join(dir, 'link.txt')).isFile(), true);
      assert.deepEqual(fs.readdirSync(outside), ['secret.txt'], 'nothing created outside');
      if (a.dedicatedUser) await assert.rejects(() => backend.read('unreadable.txt'), /permission denied/);
    });
  });

  it('a replaced file keeps its permissions', T, async () => {
    const dir = a.makeDir('mode');
    const backend = await openWith(a, dir, { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      await backend.write('script.sh', Buffer.from('#!/bin/sh\n'));
      fs.chmodSync(path.join(dir, 'script.sh'), 0o750);
      await backend.write('script.sh', Buffer.from('#!/bin/sh\necho new\n'));
      assert.equal(fs.statSync(path.join(dir, 'script.sh')).mode & 0o777, 0o750);
    });
  });

  it('temp files of killed transfers (a day untouched) are removed by a listing that may clean up; others are kept', T, async () => {
    const dir = a.makeDir('stale-temp');
    const dayAgo = Date.now() / 1000 - 25 * 3600;
    const put = (rel: string, atime: number, mtime: number) => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), 'partial');
      fs.utimesSync(path.join(dir, rel), atime, mtime);
    };
    put('sub/.syncengine-tmp-1-aaaa', dayAgo, dayAgo); // stale
    put('.syncengine-tmp-2-bbbb', Date.now() / 1000, Date.now() / 1000); // being written
    put('.syncengine-tmp-3-cccc', Date.now() / 1000, dayAgo); // mtime set from the source, about to be renamed
    put('keep.txt', dayAgo, dayAgo);
    a.chown(dir);
    const backend = await openWith(a, dir, { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      assert.deepEqual((await backend.listDir('sub')).entries, [], 'temp files are never listed');
      assert.ok(fs.existsSync(path.join(dir, 'sub', '.syncengine-tmp-1-aaaa')), 'a plain listing (a dry run) removes nothing');
      await backend.listDir('sub', { removeStaleTemp: true });
      await backend.listDir('', { removeStaleTemp: true });
      assert.equal(fs.existsSync(path.join(dir, 'sub', '.syncengine-tmp-1-aaaa')), false, 'the stale temp file is gone');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['.syncengine-tmp-2-bbbb', '.syncengine-tmp-3-cccc', 'keep.txt', 'sub']);
    });
  });

  it('servers without posix-rename or copy-data: replace by moving the old file aside, copy with cp', T, async () => {
    const dir = a.makeDir('fallback');
    const backend = await openWith(a, dir, { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile, connections: 1 });
    await withBackend(backend, async () => {
      const connection = (backend as unknown as { pool: { liveConnection(): { extensions: Record<string, string> } } }).pool.liveConnection();
      delete connection.extensions['posix-rename@openssh.com'];
      delete connection.extensions['copy-data'];
      await backend.write('doc.txt', Buffer.from('version 1'));
      fs.chmodSync(path.join(dir, 'doc.txt'), 0o640);
      const entry = await backend.write('doc.txt', streamOf('version 2, longer'), { mtimeMs: 1_650_000_000_000 });
      assert.equal(entry.size, 'version 2, longer'.length);
      assert.equal(entry.mtimeMs, 1_650_000_000_000);
      assert.equal(fs.readFileSync(path.join(dir, 'doc.txt'), 'utf8'), 'version 2, longer');
      assert.equal(fs.statSync(path.join(dir, 'doc.txt')).mode & 0o777, 0o640);
      await backend.copyWithin!('doc.txt', 'copies/doc.txt');
      assert.equal(fs.readFileSync(path.join(dir, 'copies', 'doc.txt'), 'utf8'), 'version 2, longer');
      assert.equal((await backend.stat('copies/doc.txt'))?.mtimeMs, 1_650_000_000_000, 'cp -p keeps the mtime');
      await assert.rejects(() => backend.copyWithin!('doc.txt', 'copies/doc.txt'), /already exists/);
      assert.deepEqual(fs.readdirSync(dir).sort(), ['copies', 'doc.txt'], 'no temporary file left');
      assert.deepEqual(fs.readdirSync(path.join(dir, 'copies')), ['doc.txt']);
    });
  });

  it('hardLink and copyWithin use server extensions and never overwrite', T, async () => {
    const backend = await openWith(a, a.makeDir('links'), { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile });
    await withBackend(backend, async () => {
      await backend.write('a.txt', Buffer.from('content a'), { mtimeMs: 1_600_000_000_000 });
      await backend.write('b.txt', Buffer.from('content b'));
      await backend.hardLink!('a.txt', 'trash/run/a.txt');
      assert.equal((await readAll(backend, 'trash/run/a.txt')).toString(), 'content a');
      await assert.rejects(() => backend.hardLink!('a.txt', 'b.txt'), /already exists/);
      await backend.copyWithin!('a.txt', 'copy/a.txt');
      assert.equal((await backend.stat('copy/a.txt'))?.mtimeMs, 1_600_000_000_000, 'the copy keeps the mtime');
      await assert.rejects(() => backend.copyWithin!('a.txt', 'b.txt'), /already exists/);
      assert.equal((await readAll(backend, 'b.txt')).toString(), 'content b');
    });
  });
});

describe('SFTP: memory of a large upload', () => {
  it('an upload with an abort signal does not keep the pieces it already sent', T, async () => {
    // 96 MiB from a local file stream (1 MiB chunks), with the engine's AbortSignal. Pieces already
    // sent must become garbage: a retained piece per step would hold the whole file by the end.
    const total = 96 * 1024 * 1024;
    const file = path.join(scratch, 'large.bin');
    const block = randomBytes(1024 * 1024);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < total / block.length; i++) fs.writeSync(fd, block);
    fs.closeSync(fd);
    await withBackend(await openWith(a, a.makeDir('memory'), { keyFile: a.keyFile, knownHostsFile: a.knownHostsFile }), async (backend) => {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const before = process.memoryUsage().arrayBuffers;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      }, 10);
      try {
        await backend.write('large.bin', fs.createReadStream(file, { highWaterMark: 1024 * 1024 }), { size: total, signal: new AbortController().signal });
      } finally {
        clearInterval(sampler);
      }
      const grown = peak - before;
      assert.ok(grown < total / 2, `external memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB during a ${total / 2 ** 20} MiB upload`);
      assert.equal((await backend.stat('large.bin'))?.size, total);
    });
    fs.rmSync(file);
  });
});
