// Faults with a real OpenSSH sshd on 127.0.0.1: connections dropped mid-transfer and mid-sync, the
// server going away, wrong credentials, a host key that changes between connections, unreachable
// and silent hosts, permission denied, a full disk. Every test checks that the message is clear and
// that nothing is lost.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HostKeyError } from '../src/backends/knownHosts';
import { LocalBackend } from '../src/backends/local';
import type { ConnectOptions } from '../src/backends/registry';
import { SftpAuthError, SftpBackend, open } from '../src/backends/sftp';
import type { Backend } from '../src/backends/types';
import { runSync } from '../src/core/engine';
import { StorageError } from '../src/core/errors';
import { generatedSource, md5Of, readAll } from './conformance/suite';
import { startSshd, type SshdServer } from './servers/sshd';

delete process.env.SSH_AUTH_SOCK;

const T = { timeout: 90_000 };
const MiB = 1024 * 1024;
let s: SshdServer;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'syncengine-sftp-faults-'));

before(async () => {
  s = await startSshd();
});
after(async () => {
  await s?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

async function openAt(dir: string, extra: ConnectOptions = {}, port = s.port): Promise<Backend> {
  return open({ kind: 'sftp', raw: `sftp://127.0.0.1:${port}${dir}`, host: '127.0.0.1', port, user: s.user, path: dir }, { keyFile: s.keyFile, knownHostsFile: s.knownHostsFile, sshConfigFile: '', ...extra });
}

const md5 = (data: Buffer | string) => createHash('md5').update(data).digest('hex');

/** Every file below `dir` (relative path → content), engine folders and temp files included. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = fs.lstatSync(path.join(dir, p));
      if (st.isDirectory()) walk(p);
      else out[p] = md5(fs.readFileSync(path.join(dir, p)));
    }
  };
  walk('');
  return out;
}

function tempFiles(dir: string): string[] {
  return Object.keys(tree(dir)).filter((p) => p.split('/').pop()!.startsWith('.syncengine-tmp-'));
}

function isClearConnectionLoss(error: unknown): boolean {
  assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
  assert.equal(error.transient, true, `transient: ${error.message}`);
  assert.ok(error.message.includes(`127.0.0.1:${s.port}`), `names the host: ${error.message}`);
  assert.match(error.message, /connection .*(lost|refused|reset|closed)|Cannot connect/);
  return true;
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

describe('SFTP faults: dropped connections', () => {
  it('a connection dropped during a large write: transient error, old content kept, the next write reconnects', T, async () => {
    const dir = s.makeDir('drop-write');
    const old = randomBytes(100_000);
    fs.writeFileSync(path.join(dir, 'big.bin'), old);
    s.chown(dir);
    const backend = await openAt(dir);
    try {
      const source = generatedSource(64 * MiB, { chunkSize: 256 * 1024, delayMs: 2 });
      let killed: Promise<void> | undefined;
      const error = await backend
        .write('big.bin', source.stream(), {
          onBytes: (bytes) => {
            if (bytes >= 4 * MiB) killed ??= s.killSessions();
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      await killed;
      assert.ok(killed, 'the connection was killed mid-transfer');
      assert.ok(error !== undefined, 'the write failed');
      isClearConnectionLoss(error);
      assert.match((error as Error).message, /Cannot write "big\.bin"/);
      assert.ok(source.state.produced < 64 * MiB, 'the write stopped early');
      assert.equal(md5(fs.readFileSync(path.join(dir, 'big.bin'))), md5(old), 'the old content is intact');
      // The next write reconnects, succeeds, and removes the temp file the dropped one left.
      const fresh = Buffer.from('new content after the reconnection');
      const entry = await backend.write('big.bin', fresh);
      assert.equal(entry.size, fresh.length);
      assert.equal(fs.readFileSync(path.join(dir, 'big.bin'), 'utf8'), fresh.toString());
      assert.deepEqual(tempFiles(dir), [], 'no temporary file left behind');
    } finally {
      await backend.close();
    }
  });

  it('a connection dropped during a read: the stream fails with a transient error; the next read works', T, async () => {
    const dir = s.makeDir('drop-read');
    const data = randomBytes(48 * MiB);
    fs.writeFileSync(path.join(dir, 'big.bin'), data);
    s.chown(dir);
    const backend = await openAt(dir);
    try {
      const stream = await backend.read('big.bin');
      let bytes = 0;
      let killed: Promise<void> | undefined;
      const error = await (async () => {
        for await (const chunk of stream) {
          bytes += (chunk as Buffer).length;
          if (bytes >= 2 * MiB && !killed) {
            killed = s.killSessions();
            await killed;
          }
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error !== undefined, `the read failed (got ${bytes} bytes)`);
      isClearConnectionLoss(error);
      assert.match((error as Error).message, /Cannot read "big\.bin"/);
      const again = await md5Of(backend, 'big.bin');
      assert.equal(again.md5, md5(data));
      assert.equal(md5(fs.readFileSync(path.join(dir, 'big.bin'))), md5(data), 'the file is intact');
    } finally {
      await backend.close();
    }
  });

  it('an idle connection dropped by the server: the next operations reconnect without an error', T, async () => {
    const dir = s.makeDir('drop-idle');
    const backend = await openAt(dir);
    try {
      await backend.write('a.txt', Buffer.from('a'));
      await s.killSessions();
      assert.deepEqual((await backend.listDir('')).entries.map((e) => e.path), ['a.txt']);
      await s.killSessions();
      assert.equal((await readAll(backend, 'a.txt')).toString(), 'a');
      await s.killSessions();
      assert.equal((await backend.stat('a.txt'))?.size, 1);
    } finally {
      await backend.close();
    }
  });

  it('the server goes away in the middle of a sync: the run reports clear errors, nothing is lost, the next run converges', T, async () => {
    const local = path.join(scratch, `local-${randomBytes(3).toString('hex')}`);
    const stateDir = path.join(scratch, `state-${randomBytes(3).toString('hex')}`);
    const remote = s.makeDir('mid-sync');
    const expected: Record<string, string> = {};
    const put = (p: string, data: Buffer) => {
      fs.mkdirSync(path.dirname(path.join(local, p)), { recursive: true });
      fs.writeFileSync(path.join(local, p), data);
      expected[p] = md5(data);
    };
    for (let i = 0; i < 40; i++) put(`dir${i % 4}/file-${i}.dat`, randomBytes(64 * 1024 + i));
    for (let i = 0; i < 3; i++) put(`large/big-${i}.bin`, randomBytes(6 * MiB));
    // Files that exist on the remote side only must come down intact too.
    const remoteOnly = randomBytes(200_000);
    fs.mkdirSync(path.join(remote, 'remote'));
    fs.writeFileSync(path.join(remote, 'remote', 'only.bin'), remoteOnly);
    s.chown(remote);
    expected['remote/only.bin'] = md5(remoteOnly);
    const backend = await openAt(remote);
    try {
      const sync = (onEvent?: Parameters<typeof runSync>[0]['onEvent']) =>
        runSync({ source: new LocalBackend(local), destination: backend, stateDir, ...(onEvent ? { onEvent } : {}) });
      let completed = 0;
      let suspended: Promise<void> | undefined;
      const first = await sync((event) => {
        if (event.type === 'file-complete' && ++completed === 6) suspended = s.suspend();
      });
      await suspended;
      assert.ok(suspended, 'the server went away during the run');
      assert.ok(first.stats.errors.length > 0, 'the run reports errors');
      for (const error of first.stats.errors) {
        assert.ok(error.message.includes(`127.0.0.1:${s.port}`), `names the host: ${error.message}`);
        assert.match(error.message, /connection .*lost|connection refused|Cannot connect/, error.message);
      }
      // Nothing lost: the local side is untouched, and every remote file is whole.
      const localTree = tree(local);
      for (const [p, sum] of Object.entries(expected)) if (p !== 'remote/only.bin' || localTree[p]) assert.equal(localTree[p], sum, `local ${p}`);
      const remoteTree = tree(remote);
      for (const [p, sum] of Object.entries(remoteTree)) {
        if (p.split('/').pop()!.startsWith('.syncengine-tmp-')) continue; // left by dropped writes, never listed
        assert.equal(sum, expected[p], `remote ${p} is complete`);
      }
      assert.equal(remoteTree['remote/only.bin'], expected['remote/only.bin']);

      await s.resume();
      const second = await sync();
      assert.deepEqual(second.stats.errors, [], 'the next run succeeds');
      assert.deepEqual(tree(local), expected, 'the local side has everything');
      const finalRemote = tree(remote);
      assert.deepEqual(Object.fromEntries(Object.entries(finalRemote).filter(([p]) => !p.startsWith('.syncengine'))), expected, 'the remote side has everything');
      assert.deepEqual(tempFiles(remote), [], 'the temp files of the dropped writes are gone');
      const third = await sync();
      const c = third.plan.counts;
      assert.equal(c.upload + c.download + c.deleteSource + c.deleteDestination, 0, 'converged');
    } finally {
      await s.resume();
      await backend.close();
    }
  });
});

describe('SFTP faults: refused connections', () => {
  it('a wrong password: a clear authentication error naming the user and host', T, async (t) => {
    if (!s.password) return t.skip('password logins need root to create a test user');
    const dir = s.makeDir('wrong-pw');
    await assert.rejects(
      () => openAt(dir, { keyFile: undefined as unknown as string, password: 'not-the-password' }),
      (error: unknown) => {
        assert.ok(error instanceof SftpAuthError, String(error));
        assert.equal(error.transient, false);
        assert.equal(error.message, `Authentication to SFTP server ${s.user}@127.0.0.1:${s.port} failed: the server refused password; the server accepts publickey, password, keyboard-interactive.`);
        return true;
      },
    );
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing created');
  });

  it('a host key that changes between connections is refused on reconnection, nothing is written', T, async () => {
    const dir = s.makeDir('changed-key');
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'keep');
    s.chown(dir);
    const knownHosts = path.join(scratch, `known_hosts-${randomBytes(3).toString('hex')}`);
    fs.copyFileSync(s.knownHostsFile, knownHosts);
    const backend = await openAt(dir, { knownHostsFile: knownHosts });
    try {
      assert.equal((await readAll(backend, 'keep.txt')).toString(), 'keep');
      // Another key for this host (as after a man-in-the-middle), then a dropped connection.
      const otherKey = path.join(scratch, `otherkey-${randomBytes(3).toString('hex')}`);
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
      const otherPub = fs.readFileSync(`${otherKey}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
      fs.writeFileSync(knownHosts, `[127.0.0.1]:${s.port} ${otherPub}\n`);
      await s.killSessions();
      await assert.rejects(
        () => backend.write('keep.txt', Buffer.from('overwritten')),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.transient, false, 'not retried');
          assert.match(error.message, /HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+/);
          assert.ok(error.message.includes(`${knownHosts} line 1`), error.message);
          assert.ok(error.cause instanceof HostKeyError);
          return true;
        },
      );
      assert.equal(fs.readFileSync(path.join(dir, 'keep.txt'), 'utf8'), 'keep');
      assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
    } finally {
      await backend.close();
    }
  });

  it('an unreachable host (closed port): "connection refused" naming host:port', T, async () => {
    const port = await closedPort();
    await assert.rejects(
      () => openAt('/tmp', {}, port),
      (error: unknown) => {
        assert.ok(error instanceof StorageError, String(error));
        assert.equal(error.message, `Cannot connect to SFTP server ${s.user}@127.0.0.1:${port}: connection refused (is an SSH server listening on that port?) (ECONNREFUSED)`);
        return true;
      },
    );
  });

  it('a host that accepts but never answers: a timeout (ConnectTimeout from the ssh config), no hang', T, async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as net.AddressInfo).port;
    const config = path.join(scratch, `config-${randomBytes(3).toString('hex')}`);
    fs.writeFileSync(config, `Host silent\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n`);
    const started = Date.now();
    try {
      await assert.rejects(
        () => open({ kind: 'sftp', raw: 'sftp://silent/x', host: 'silent', path: '/x' }, { keyFile: s.keyFile, knownHostsFile: s.knownHostsFile, sshConfigFile: config }),
        (error: unknown) => {
          assert.ok(error instanceof StorageError, String(error));
          assert.equal(error.transient, true);
          assert.match(error.message, new RegExp(`Cannot connect to SFTP server .*@silent \\(127\\.0\\.0\\.1:${port}\\): timed out after 1 s`));
          return true;
        },
      );
      assert.ok(Date.now() - started < 5_000, 'bounded by ConnectTimeout');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe('SFTP faults: permissions and space', () => {
  it('permission denied on one file and a read-only folder: reported clearly, the rest syncs, nothing lost', T, async (t) => {
    if (!s.dedicatedUser) return t.skip('permissions need an unprivileged login user (run as root to create one)');
    const remote = s.makeDir('perm');
    fs.writeFileSync(path.join(remote, 'a.txt'), 'a');
    fs.writeFileSync(path.join(remote, 'b.txt'), 'b');
    s.chown(remote);
    // Owned by root: the login user can neither read locked.txt nor write into ro/.
    fs.writeFileSync(path.join(remote, 'locked.txt'), 'root only');
    fs.chmodSync(path.join(remote, 'locked.txt'), 0o600);
    fs.mkdirSync(path.join(remote, 'ro'));
    fs.writeFileSync(path.join(remote, 'ro', 'file.txt'), 'read-only folder');
    const local = path.join(scratch, `perm-local-${randomBytes(3).toString('hex')}`);
    fs.mkdirSync(local);
    const stateDir = path.join(scratch, `perm-state-${randomBytes(3).toString('hex')}`);
    const backend = await openAt(remote);
    try {
      const sync = () => runSync({ source: new LocalBackend(local), destination: backend, stateDir });
      const first = await sync();
      assert.deepEqual(first.stats.errors, []);
      assert.deepEqual(first.skipped.map((x) => [x.side, x.path, x.reason]), [['destination', 'locked.txt', 'unreadable file (permission denied)']]);
      assert.deepEqual(fs.readdirSync(local).filter((n) => !n.startsWith('.sync')).sort(), ['a.txt', 'b.txt', 'ro']);
      await assert.rejects(() => backend.read('locked.txt'), new RegExp(`Cannot read "locked\\.txt" on 127\\.0\\.0\\.1:${s.port}: permission denied`));

      // An edit that cannot be uploaded into the read-only folder.
      fs.writeFileSync(path.join(local, 'ro', 'file.txt'), 'local edit');
      const second = await sync();
      assert.equal(second.stats.errors.length, 1, JSON.stringify(second.stats.errors));
      assert.equal(second.stats.errors[0]!.path, 'ro/file.txt');
      assert.match(second.stats.errors[0]!.message, new RegExp(`on 127\\.0\\.0\\.1:${s.port}: permission denied`));
      assert.equal(fs.readFileSync(path.join(remote, 'ro', 'file.txt'), 'utf8'), 'read-only folder', 'remote unchanged');
      assert.equal(fs.readFileSync(path.join(local, 'ro', 'file.txt'), 'utf8'), 'local edit', 'local edit kept');
      assert.equal(fs.readFileSync(path.join(remote, 'locked.txt'), 'utf8'), 'root only');
    } finally {
      await backend.close();
    }
  });

  it('a full disk: the write fails with "disk full", the old content stays, no temp file is left', T, async (t) => {
    const dir = s.makeDir('full');
    const mountPoint = path.join(dir, 'small');
    fs.mkdirSync(mountPoint);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint], { encoding: 'utf8', timeout: 10_000 });
    if (mounted.status !== 0) return t.skip(`cannot mount a small tmpfs here (${mounted.stderr.trim() || 'not permitted'})`);
    try {
      fs.writeFileSync(path.join(mountPoint, 'doc.bin'), Buffer.alloc(500_000, 1));
      s.chown(dir);
      const backend = await openAt(dir);
      try {
        await assert.rejects(
          () => backend.write('small/doc.bin', Buffer.alloc(3 * MiB, 2)),
          (error: unknown) => {
            assert.ok(error instanceof StorageError, String(error));
            assert.equal(error.message, `Cannot write "small/doc.bin" on 127.0.0.1:${s.port}: disk full (no space left on the server)`);
            return true;
          },
        );
        assert.equal(md5(fs.readFileSync(path.join(mountPoint, 'doc.bin'))), md5(Buffer.alloc(500_000, 1)), 'old content intact');
        assert.deepEqual(fs.readdirSync(mountPoint), ['doc.bin'], 'no temp file left');
        assert.equal((backend as SftpBackend).connectionCount, 1);
      } finally {
        await backend.close();
      }
    } finally {
      spawnSync('umount', [mountPoint], { timeout: 10_000 });
    }
  });
});
