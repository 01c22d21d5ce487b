// A real vsftpd on 127.0.0.1 for the FTP/FTPS backend tests.
//
// startVsftpd() writes a configuration into a fresh temporary folder, creates a dedicated,
// unprivileged system user (vsftpd authenticates local users through PAM; Debian's
// /etc/pam.d/vsftpd wants the user's shell listed in /etc/shells, so the user gets /bin/sh, a random
// password and no home folder of its own besides the test root), starts /usr/sbin/vsftpd in the
// foreground and waits for its greeting. stop() kills it, removes the user and the folder; the same
// happens at process exit if a test forgets. Needs root (useradd, vsftpd's privilege separation).
//
// killSessions() SIGKILLs the per-connection vsftpd processes (the listener's descendants), which
// drops every open FTP connection the way a network failure or a server restart would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { alive, descendants, freePort, sleep } from './processes';

export type VsftpdTls = 'none' | 'explicit' | 'implicit';

export interface VsftpdOptions {
  tls?: VsftpdTls;
  /** vsftpd's require_ssl_reuse (TLS session reuse on data connections). Default false. */
  requireSslReuse?: boolean;
  /** Extra vsftpd.conf lines (key=value), appended last. */
  extraConfig?: Record<string, string>;
}

export interface VsftpdServer {
  host: '127.0.0.1';
  port: number;
  tls: VsftpdTls;
  user: string;
  password: string;
  uid: number;
  gid: number;
  /** Absolute local path of the FTP user's writable folder (its login folder). */
  root: string;
  /** The vsftpd log (protocol and transfers), for diagnostics. */
  logFile: string;
  /** A fresh folder inside root owned by the FTP user; returns its absolute path. */
  makeFolder(name?: string): string;
  /** Kill the per-session vsftpd processes: every open connection drops. */
  killSessions(): Promise<number>;
  stop(): Promise<void>;
}

const VSFTPD = '/usr/sbin/vsftpd';
const START_TIMEOUT_MS = 15_000;

const DIR_PREFIX = 'syncengine-vsftpd-';
const running = new Set<{ pid: number | undefined; user: string; dir: string }>();
let exitHookInstalled = false;

function killTree(pid: number): void {
  for (const p of [...descendants(pid), pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Synchronous clean-up of every server this process started (exit, signals). */
function cleanupAllSync(): void {
  for (const server of running) {
    if (server.pid !== undefined) killTree(server.pid);
    spawnSync('userdel', [server.user], { stdio: 'ignore', timeout: 5_000 });
    try {
      fs.rmSync(server.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  running.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanupAllSync);
  // A test run interrupted (Ctrl-C, the runner's timeout) must not leave a server and a user behind.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupAllSync();
      process.kill(process.pid, signal); // the default action, now that our listener is gone
    });
  }
}

/**
 * Removes servers, users and folders left by test processes that died without cleaning up
 * (SIGKILL): each folder records its owner's pid; only folders of dead owners are touched.
 */
function reapStale(): void {
  let names: string[];
  try {
    names = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(os.tmpdir(), name);
    let owner: number | undefined;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'owner'), 'utf8'));
    } catch {
      // No owner file: a folder being set up right now, or one too old to tell; leave recent ones.
      const age = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < 10 * 60_000) continue;
    }
    if (owner !== undefined && Number.isInteger(owner) && owner > 0 && alive(owner)) continue;
    for (const pid of vsftpdProcessesFor(dir)) killTree(pid);
    const home = path.join(dir, 'home');
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0]?.startsWith('syncengine-ftp-') && fields[5] === home) spawnSync('userdel', [fields[0]], { stdio: 'ignore', timeout: 5_000 });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** vsftpd listeners started with a configuration inside `dir`. */
function vsftpdProcessesFor(dir: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const [command, conf] = cmdline.split('\0');
    if (command === VSFTPD && conf === path.join(dir, 'vsftpd.conf')) pids.push(Number(name));
  }
  return pids;
}

function run(command: string, args: string[], input?: string): void {
  const result = spawnSync(command, args, { input, encoding: 'utf8', timeout: 20_000 });
  if (result.error) throw new Error(`${command} failed: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status}: ${result.stderr}`);
}

/** Child processes of `pid`, recursively, from /proc. */



function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}


/** A range of `count` free ports for passive data connections. */
async function freePortRange(count: number): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 30_000 + Math.floor(Math.random() * 20_000);
    let ok = true;
    for (let port = first; port < first + count && ok; port++) ok = await canListen(port);
    if (ok) return [first, first + count - 1];
  }
  throw new Error('no free port range for passive FTP connections');
}

/** Resolves once the server sends its greeting (plain or, for implicit TLS, the port accepts TCP). */
function waitForGreeting(port: number, implicitTls: boolean, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`vsftpd exited (${child.exitCode ?? child.signalCode}) before accepting connections: ${stderr()}`));
        return;
      }
      if (Date.now() > deadline) {
        reject(new Error(`vsftpd did not accept connections on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms: ${stderr()}`));
        return;
      }
      const socket = net.connect(port, '127.0.0.1');
      let done = false;
      const retry = () => {
        if (done) return;
        done = true;
        socket.destroy();
        setTimeout(attempt, 50);
      };
      socket.setTimeout(2_000, retry);
      socket.once('error', retry);
      socket.once('connect', () => {
        if (implicitTls) {
          done = true;
          socket.destroy();
          resolve();
        }
      });
      socket.once('data', (data) => {
        if (done) return;
        done = true;
        socket.destroy();
        if (data.toString('latin1').startsWith('220')) resolve();
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startVsftpd(options: VsftpdOptions = {}): Promise<VsftpdServer> {
  const tls = options.tls ?? 'none';
  if (!fs.existsSync(VSFTPD)) throw new Error(`${VSFTPD} is missing: run scripts/install-test-deps.sh`);
  if (process.getuid?.() !== 0) throw new Error('the vsftpd tests need root (they create a system user for FTP logins)');
  installExitHook();
  reapStale();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  fs.writeFileSync(path.join(dir, 'owner'), String(process.pid));
  fs.chmodSync(dir, 0o755); // the FTP user must be able to reach its folder
  const user = `syncengine-ftp-${randomBytes(5).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');
  const record = { pid: undefined as number | undefined, user, dir };
  running.add(record);
  let child: ChildProcess | undefined;

  const cleanup = async () => {
    if (child && child.pid !== undefined) {
      for (const p of descendants(child.pid)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    // userdel fails while a process of the user still runs: the killed sessions may take a moment.
    for (let i = 0; i < 50; i++) {
      const result = spawnSync('userdel', [user], { encoding: 'utf8', timeout: 5_000 });
      if (result.status === 0 || result.status === 6 /* no such user */) break;
      await sleep(100);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    running.delete(record);
  };

  try {
    const root = path.join(dir, 'home');
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(root, { mode: 0o755 });
    fs.mkdirSync(empty, { mode: 0o755 });
    run('useradd', ['-M', '-d', root, '-s', '/bin/sh', '-c', 'SyncEngine FTP test user', user]);
    // SHA-512 with few rounds: every FTP login checks the password, and the PAM default (yescrypt)
    // costs ~100 ms of CPU per login, which would dominate the pool's connection set-up in tests.
    run('chpasswd', ['-c', 'SHA512', '-s', '1000'], `${user}:${password}\n`);
    const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
    fs.chownSync(root, uid, gid);

    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    if (tls !== 'none') {
      run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
      fs.chmodSync(keyFile, 0o600);
    }

    const port = await freePort();
    const [pasvMin, pasvMax] = await freePortRange(40);
    const logFile = path.join(dir, 'vsftpd.log');
    const config: Record<string, string> = {
      listen: 'YES',
      listen_ipv6: 'NO',
      listen_address: '127.0.0.1',
      listen_port: String(port),
      background: 'NO',
      anonymous_enable: 'NO',
      local_enable: 'YES',
      write_enable: 'YES',
      local_umask: '022',
      chroot_local_user: 'NO',
      pasv_enable: 'YES',
      pasv_min_port: String(pasvMin),
      pasv_max_port: String(pasvMax),
      pasv_address: '127.0.0.1',
      port_enable: 'NO',
      seccomp_sandbox: 'NO',
      secure_chroot_dir: empty,
      utf8_filesystem: 'YES',
      mdtm_write: 'YES',
      use_localtime: 'NO',
      pam_service_name: 'vsftpd',
      check_shell: 'NO',
      userlist_enable: 'NO',
      max_clients: '200',
      max_per_ip: '100',
      idle_session_timeout: '300',
      data_connection_timeout: '60',
      xferlog_enable: 'YES',
      xferlog_std_format: 'NO',
      log_ftp_protocol: 'YES',
      vsftpd_log_file: logFile,
      ssl_enable: tls === 'none' ? 'NO' : 'YES',
    };
    if (tls !== 'none') {
      Object.assign(config, {
        rsa_cert_file: certFile,
        rsa_private_key_file: keyFile,
        implicit_ssl: tls === 'implicit' ? 'YES' : 'NO',
        force_local_logins_ssl: 'YES',
        force_local_data_ssl: 'YES',
        allow_anon_ssl: 'NO',
        require_ssl_reuse: options.requireSslReuse ? 'YES' : 'NO',
        ssl_ciphers: 'HIGH',
      });
    }
    Object.assign(config, options.extraConfig ?? {});
    const confFile = path.join(dir, 'vsftpd.conf');
    fs.writeFileSync(confFile, Object.entries(config).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });

    let stderrText = '';
    child = spawn(VSFTPD, [confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    record.pid = child.pid;
    child.stdout?.on('data', (d: Buffer) => (stderrText += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderrText += d.toString()));
    child.once('error', (error) => (stderrText += String(error)));
    await waitForGreeting(port, tls === 'implicit', child, () => stderrText.trim() || '(no output)');
    const listenerPid = child.pid as number;
    // Do not keep the test process alive for the server: stop() or the exit hook ends it.
    (child.stdout as unknown as net.Socket | null)?.unref();
    (child.stderr as unknown as net.Socket | null)?.unref();
    child.unref();

    let folders = 0;
    let stopped: Promise<void> | undefined;
    return {
      host: '127.0.0.1',
      port,
      tls,
      user,
      password,
      uid,
      gid,
      root,
      logFile,
      makeFolder(name?: string): string {
        const folder = path.join(root, name ?? `t${++folders}-${randomBytes(3).toString('hex')}`);
        fs.mkdirSync(folder, { recursive: true });
        fs.chownSync(folder, uid, gid);
        return folder;
      },
      async killSessions(): Promise<number> {
        const pids = descendants(listenerPid);
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        const deadline = Date.now() + 5_000;
        while (pids.some(alive) && Date.now() < deadline) await sleep(20);
        return pids.length;
      },
      stop(): Promise<void> {
        stopped ??= cleanup();
        return stopped;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
