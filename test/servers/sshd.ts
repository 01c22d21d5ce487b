// A real OpenSSH sshd on 127.0.0.1 for the SFTP backend tests, in a fresh temporary folder.
//
// Who logs in:
//  - Running as root (CI containers, this repo's scripts): a dedicated unprivileged user
//    `sesftp<pid>x<random>` is created with useradd for this server and removed by stop() (userdel).
//    Being unprivileged, file permissions apply to it (the permission-denied tests need that), and
//    password and keyboard-interactive logins work through PAM (`UsePAM yes`). Root login stays
//    refused. Users and servers left behind by a test process that was killed (SIGKILL) are removed
//    by the next startSshd() (their owning pid is in the name and no longer alive).
//  - Running as an ordinary user: sshd runs as that user (no privilege separation) and only that
//    user can log in, with keys; `password` is undefined and tests that need a password skip.
//
// Everything is bounded in time; stop() kills the server and every session process, and runs at
// process exit too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { alive, descendants, freePort, sleep } from './processes';

export interface SshdServer {
  host: '127.0.0.1';
  port: number;
  /** The login user. */
  user: string;
  uid: number;
  gid: number;
  /** Whether `user` is a dedicated unprivileged test user (permissions apply, passwords work). */
  dedicatedUser: boolean;
  /** The user's password (undefined when password logins cannot work: not running as root). */
  password?: string;
  /** Private key without a passphrase (ed25519). */
  keyFile: string;
  /** Private key with a passphrase, and that passphrase. */
  passphraseKeyFile: string;
  passphrase: string;
  /** A known_hosts file with a plain `[127.0.0.1]:port` entry for this server's key. */
  knownHostsFile: string;
  /** The same entry hashed (`ssh-keygen -H`). */
  hashedKnownHostsFile: string;
  /** `ssh-ed25519 AAAA…` */
  hostPublicKey: string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** The login (home) folder, absolute (for a non-root user: their real home; do not write there). */
  home: string;
  /** A folder the user can write, absolute (in the temporary folder). */
  root: string;
  /** The temporary folder holding everything. */
  dir: string;
  /** A fresh empty folder below `root` owned by the user (absolute path). */
  makeDir(prefix?: string): string;
  /** Gives a path (recursively) to the login user. */
  chown(absolutePath: string): void;
  /** Kills the per-connection sshd processes: every open connection drops (the listener stays). */
  killSessions(): Promise<void>;
  /** Stops the listener and drops every connection; resume() starts it again on the same port. */
  suspend(): Promise<void>;
  resume(): Promise<void>;
  /** The server log (LogLevel VERBOSE). */
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Extra sshd_config lines; they take precedence over the defaults (sshd keeps the first value). */
  extraConfig?: string[];
}

const SSHD = '/usr/sbin/sshd';
const USER_PREFIX = 'sesftp';
const DIR_PREFIX = 'syncengine-sshd-';
const STEP_TIMEOUT_MS = 15_000;

function run(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: STEP_TIMEOUT_MS, ...(input !== undefined ? { input } : {}) });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}




function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Processes owned by a uid (from /proc). */
function processesOf(uid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.statSync(`/proc/${name}`).uid === uid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function removeUser(user: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = run('userdel', ['-f', user]);
    if (r.status === 0 || r.status === 6 /* no such user */) return;
    spawnSync('sleep', ['0.2']);
  }
}

/** Removes users and servers left by test processes that no longer exist (killed with SIGKILL). */
function cleanupStale(): void {
  const tmp = os.tmpdir();
  for (const name of fs.readdirSync(tmp)) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = path.join(tmp, name);
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'sshd.pid'), 'utf8').trim());
      if (pid > 0) killAll([...descendants(pid), pid]);
    } catch {
      // no server running
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (process.getuid?.() !== 0) return;
  let passwd = '';
  try {
    passwd = fs.readFileSync('/etc/passwd', 'utf8');
  } catch {
    return;
  }
  for (const line of passwd.split('\n')) {
    const m = new RegExp(`^(${USER_PREFIX}(\\d+)x[0-9a-f]+):[^:]*:(\\d+):`).exec(line);
    if (!m || alive(Number(m[2]))) continue;
    killAll(processesOf(Number(m[3])));
    removeUser(m[1]!);
  }
}


async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    // Wait for the SSH banner: a listening socket that accepts is not enough.
    socket.once('data', (data) => done(data.toString('latin1').startsWith('SSH-')));
    socket.once('error', () => done(false));
  });
}

function opensshVersion(): [number, number] {
  const r = run('ssh', ['-V']);
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(r.stderr + r.stdout);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const running = new Set<() => void>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const stop of [...running]) stop();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const stop of [...running]) stop();
      process.exit(130);
    });
  }
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} is missing: run scripts/install-test-deps.sh (Debian package openssh-server)`);
  cleanupStale();
  installExitHook();
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${DIR_PREFIX}${process.pid}-`));
  fs.chmodSync(dir, 0o755); // sshd reads authorized_keys as the user
  let user: string;
  let uid: number;
  let gid: number;
  let password: string | undefined;
  // The login folder: the test user's (in the temp folder), or the real home of a non-root user.
  const home = asRoot ? path.join(dir, 'home') : os.userInfo().homedir;
  let createdUser: string | undefined;
  let child: ChildProcess | undefined;
  let stopped = false;

  const syncStop = () => {
    if (child?.pid !== undefined) killAll([...descendants(child.pid), child.pid]);
    child = undefined;
    if (createdUser !== undefined) {
      killAll(processesOf(uid));
      removeUser(createdUser);
      createdUser = undefined;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  running.add(syncStop);

  try {
    if (asRoot) {
      user = `${USER_PREFIX}${process.pid}x${randomBytes(3).toString('hex')}`;
      fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation folder
      let created = false;
      for (let attempt = 0; attempt < 10 && !created; attempt++) {
        // /etc/passwd is locked while another useradd runs (parallel test files): retry.
        const r = run('useradd', ['--home-dir', home, '--no-create-home', '--shell', '/bin/sh', '--user-group', user]);
        if (r.status === 0) created = true;
        else if (attempt === 9) throw new Error(`useradd failed: ${r.stderr.trim()}`);
        else await sleep(200 + attempt * 100);
      }
      createdUser = user;
      password = `pw-${randomBytes(9).toString('base64url')}`;
      must('chpasswd', [], `${user}:${password}\n`);
      uid = Number(must('id', ['-u', user]).trim());
      gid = Number(must('id', ['-g', user]).trim());
    } else {
      user = os.userInfo().username;
      uid = process.getuid?.() ?? 0;
      gid = process.getgid?.() ?? 0;
    }
    if (asRoot) {
      fs.mkdirSync(home, { mode: 0o755 });
      fs.chownSync(home, uid, gid);
    }
    const root = asRoot ? path.join(home, 'data') : path.join(dir, 'data');
    fs.mkdirSync(root, { mode: 0o755 });
    fs.chownSync(root, uid, gid);

    const keygen = (file: string, passphrase: string, type = 'ed25519') => must('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', path.basename(file), '-f', file]);
    const hostKey = path.join(dir, 'ssh_host_ed25519_key');
    keygen(hostKey, '');
    const keyFile = path.join(dir, 'id_ed25519');
    keygen(keyFile, '');
    const passphrase = `pp-${randomBytes(6).toString('hex')}`;
    const passphraseKeyFile = path.join(dir, 'id_ed25519_pass');
    keygen(passphraseKeyFile, passphrase);
    for (const f of [keyFile, passphraseKeyFile]) fs.chmodSync(f, 0o600);
    const authorizedKeys = path.join(dir, 'authorized_keys');
    fs.writeFileSync(authorizedKeys, [keyFile, passphraseKeyFile].map((f) => fs.readFileSync(`${f}.pub`, 'utf8').trim()).join('\n') + '\n', { mode: 0o644 });

    const hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const hostKeyFingerprint = must('ssh-keygen', ['-lf', `${hostKey}.pub`]).split(/\s+/)[1]!;

    let port = await freePort();
    const writeConfig = () => {
      const [major, minor] = opensshVersion();
      const lines = [
        // sshd keeps the first value of a keyword: the caller's lines win over the defaults below.
        ...(options.extraConfig ?? []),
        'ListenAddress 127.0.0.1',
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        `UsePAM ${asRoot ? 'yes' : 'no'}`,
        'PubkeyAuthentication yes',
        `PasswordAuthentication ${asRoot ? 'yes' : 'no'}`,
        `KbdInteractiveAuthentication ${asRoot ? 'yes' : 'no'}`,
        'PermitRootLogin no',
        `AllowUsers ${user}`,
        'Subsystem sftp internal-sftp',
        'AllowTcpForwarding yes',
        'X11Forwarding no',
        'PrintMotd no',
        'UseDNS no',
        'MaxStartups 100:30:200',
        'MaxSessions 32',
        'MaxAuthTries 20',
        'LoginGraceTime 30',
        'LogLevel VERBOSE',
        // OpenSSH 9.8+ slows down clients after failed logins; the tests fail logins on purpose.
        ...(major > 9 || (major === 9 && minor >= 8) ? ['PerSourcePenalties no'] : []),
      ];
      fs.writeFileSync(path.join(dir, 'sshd_config'), lines.join('\n') + '\n');
    };
    writeConfig();

    const logFile = path.join(dir, 'sshd.log');
    const launch = async (): Promise<void> => {
      const out = fs.openSync(logFile, 'a');
      const proc = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', out, out], detached: true });
      fs.closeSync(out);
      child = proc;
      let exited = false;
      proc.once('exit', () => {
        exited = true;
      });
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      while (Date.now() < deadline) {
        if (exited) throw new Error(`sshd exited at start:\n${fs.readFileSync(logFile, 'utf8')}`);
        if (await canConnect(port)) return;
        await sleep(50);
      }
      killAll([proc.pid!]);
      throw new Error(`sshd did not start within ${STEP_TIMEOUT_MS} ms:\n${fs.readFileSync(logFile, 'utf8')}`);
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await launch();
        break;
      } catch (error) {
        // Another process took the port between freePort() and the bind: pick another one.
        if (attempt < 3 && /Address already in use|Cannot bind/i.test(String(error))) {
          port = await freePort();
          writeConfig();
          continue;
        }
        throw error;
      }
    }

    const knownHostsFile = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const hashedKnownHostsFile = path.join(dir, 'known_hosts.hashed');
    fs.writeFileSync(hashedKnownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    must('ssh-keygen', ['-q', '-H', '-f', hashedKnownHostsFile]);
    fs.rmSync(`${hashedKnownHostsFile}.old`, { force: true });

    let counter = 0;
    const chown = (p: string) => {
      fs.lchownSync(p, uid, gid);
      if (fs.lstatSync(p).isDirectory()) for (const name of fs.readdirSync(p)) chown(path.join(p, name));
    };
    const killSessions = async () => {
      if (child?.pid === undefined) return;
      const pids = descendants(child.pid);
      killAll(pids);
      const deadline = Date.now() + 5000;
      while (pids.some(alive) && Date.now() < deadline) await sleep(20);
    };
    const server: SshdServer = {
      host: '127.0.0.1',
      port,
      user,
      uid,
      gid,
      dedicatedUser: asRoot,
      ...(password !== undefined ? { password } : {}),
      keyFile,
      passphraseKeyFile,
      passphrase,
      knownHostsFile,
      hashedKnownHostsFile,
      hostPublicKey,
      hostKeyFingerprint,
      home,
      root,
      dir,
      makeDir(prefix = 't') {
        const p = path.join(root, `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`);
        fs.mkdirSync(p);
        fs.chownSync(p, uid, gid);
        return p;
      },
      chown,
      killSessions,
      async suspend() {
        const pid = child?.pid;
        if (pid === undefined) return;
        const proc = child!;
        const exited = new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
        killAll([...descendants(pid), pid]);
        child = undefined;
        await Promise.race([exited, sleep(5000)]);
      },
      async resume() {
        if (child !== undefined) return;
        await launch();
      },
      log: () => {
        try {
          return fs.readFileSync(logFile, 'utf8');
        } catch {
          return '';
        }
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        const proc = child;
        const exited = proc ? new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve()))) : Promise.resolve();
        if (proc?.pid !== undefined) killAll([...descendants(proc.pid), proc.pid]);
        child = undefined;
        await Promise.race([exited, sleep(5000)]);
        syncStop();
        running.delete(syncStop);
      },
    };
    return server;
  } catch (error) {
    syncStop();
    running.delete(syncStop);
    throw error;
  }
}
