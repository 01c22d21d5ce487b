// Connections for the FTP/FTPS backend. FTP carries one transfer per connection, so the backend
// keeps a small pool: an operation borrows a connection and gives it back; a connection that failed
// is closed and a new one is opened on demand (reconnect). Logging in is done step by step so that a
// failure says which step failed: reaching the server, TLS, or the login.
import { Client } from 'basic-ftp';
import type { ConnectionOptions } from 'node:tls';
import { StorageError } from '../core/errors';
import { causeOf, isReplyError, parseListTolerant, replyText } from './ftpProtocol';
import { readRepliesByLine } from './ftpPipeline';

export type FtpTls = 'none' | 'explicit' | 'implicit';

export interface FtpConnectSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  tls: FtpTls;
  /** Accept a certificate that does not verify (self-signed test servers). */
  allowUntrustedCertificate: boolean;
  /** Control-connection reply timeout and data-connection stall timeout. */
  timeoutMs: number;
  /** How the server is named in messages: "FTP server host:port". */
  label: string;
}

/** Thrown by connect() with the step that failed; a StorageError like any other. */
export class FtpConnectError extends StorageError {
  constructor(
    message: string,
    transient: boolean,
    readonly step: 'connect' | 'tls' | 'login' | 'setup',
    readonly tooManyConnections: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, transient, options);
  }
}

/** The server's greeting ("220 (vsFTPd 3.0.3)") per connection. */
export const greetings = new WeakMap<Client, string>();

/**
 * basic-ftp records the caller's stack (`new Error().stack`) for every command it sends, for a
 * message about its own misuse; formatting that stack costs more CPU than the command itself (a
 * profile of 2,000 uploads: 0.5 s of 7). Commands are started with stack capture off.
 */
function withoutTaskStacks(client: Client): void {
  const ftp = client.ftp;
  const handle = ftp.handle.bind(ftp);
  ftp.handle = (command, responseHandler) => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return handle(command, responseHandler);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
}

/** Opens and logs in one connection: TCP (or implicit TLS), AUTH TLS, USER/PASS, TYPE I, UTF-8, PBSZ/PROT. */
export async function connectFtp(settings: FtpConnectSettings): Promise<Client> {
  const client = new Client(settings.timeoutMs);
  client.ftp.verbose = false;
  withoutTaskStacks(client);
  readRepliesByLine(client);
  client.parseList = parseListTolerant;
  const where = `${settings.label}`;
  const tlsOptions: ConnectionOptions = { rejectUnauthorized: !settings.allowUntrustedCertificate, host: settings.host };
  let step: FtpConnectError['step'] = 'connect';
  try {
    const welcome = settings.tls === 'implicit' ? await client.connectImplicitTLS(settings.host, settings.port, tlsOptions) : await client.connect(settings.host, settings.port);
    greetings.set(client, welcome.message);
    if (settings.tls === 'explicit') {
      step = 'tls';
      await client.useTLS(tlsOptions);
    }
    step = 'login';
    await client.sendIgnoringError('OPTS UTF8 ON'); // before USER: some servers need it for non-ASCII names
    await client.login(settings.user, settings.password);
    step = 'setup';
    await client.useDefaultSettings(); // FEAT, TYPE I, STRU F, OPTS UTF8 ON, (OPTS MLST), PBSZ 0 + PROT P
    return client;
  } catch (error) {
    client.close();
    throw connectError(error, step, settings, where);
  }
}

function connectError(error: unknown, step: FtpConnectError['step'], settings: FtpConnectSettings, where: string): FtpConnectError {
  const cause = causeOf(error, 'read');
  const reply = isReplyError(error) ? replyText(error.message) : undefined;
  const code = isReplyError(error) ? error.code : undefined;
  const tooMany = code === 421 || (reply !== undefined && /too many/i.test(reply));
  switch (step) {
    case 'connect': {
      if (reply !== undefined) {
        return new FtpConnectError(`Cannot connect to ${where}: the server refused the session (server replied: ${reply})`, code === 421, step, tooMany, { cause: error });
      }
      const tlsHint = settings.tls === 'implicit' && /TLS failure/.test(cause.text) && !/certificate/.test(cause.text) ? ' (is this port really implicit FTPS? For explicit FTPS (AUTH TLS) use ftps:// without implicit TLS)' : '';
      return new FtpConnectError(`Cannot connect to ${where}: ${cause.text}${tlsHint}`, cause.transient, step, false, { cause: error });
    }
    case 'tls':
      if (reply !== undefined) {
        return new FtpConnectError(`Cannot start TLS with ${where}: the server does not offer FTPS (AUTH TLS refused; server replied: ${reply}). Use ftp:// only if you accept an unencrypted connection`, false, step, false, { cause: error });
      }
      return new FtpConnectError(`Cannot start TLS with ${where}: ${cause.text}`, cause.transient && !/TLS failure/.test(cause.text), step, false, { cause: error });
    case 'login': {
      if (reply !== undefined) {
        if (tooMany) return new FtpConnectError(`Cannot log in to ${where}: too many connections (server replied: ${reply})`, true, step, true, { cause: error });
        if (/\b(SSL|TLS|encrypt|secure)/i.test(reply)) {
          return new FtpConnectError(`Cannot log in to ${where} as "${settings.user}": the server requires an encrypted connection; use ftps:// (server replied: ${reply})`, false, step, false, { cause: error });
        }
        const what = code === 530 ? 'login failed: wrong user name or password' : 'login failed';
        return new FtpConnectError(`Cannot log in to ${where} as "${settings.user}": ${what} (server replied: ${reply})`, false, step, false, { cause: error });
      }
      return new FtpConnectError(`Cannot log in to ${where} as "${settings.user}": ${cause.text}`, cause.transient, step, false, { cause: error });
    }
    case 'setup':
      return new FtpConnectError(`Cannot set up the session with ${where}: ${cause.text}`, cause.transient, step, tooMany, { cause: error });
  }
}

interface Waiter {
  resolve: (client: Client) => void;
  reject: (error: unknown) => void;
}

/**
 * At most `limit` logged-in connections. acquire() hands out an idle connection, opens a new one
 * while below the limit, or waits for one to be released. A server that refuses more connections
 * ("421 too many connections") lowers the limit to what it accepted.
 */
export class FtpPool {
  private readonly all = new Set<Client>();
  private idle: Client[] = [];
  private readonly waiters: Waiter[] = [];
  private creating = 0;
  private closed = false;
  /** Connections ever opened (for tests and diagnostics). */
  opened = 0;

  constructor(
    private readonly create: () => Promise<Client>,
    private limit: number,
  ) {
    this.limit = Math.max(1, Math.floor(limit));
  }

  get maxConnections(): number {
    return this.limit;
  }

  /** Connections open or being opened. */
  get size(): number {
    return this.all.size + this.creating;
  }

  /** Adds a connection opened elsewhere (the first one, opened to check the settings) as idle. */
  adopt(client: Client): void {
    this.opened++;
    this.all.add(client);
    this.release(client);
  }

  /**
   * Opens connections up to the limit in the background, so that a burst of parallel operations
   * does not wait for logins. Failures are ignored: acquire() reports them when a connection is
   * really needed. Cheap once the pool is full.
   */
  prewarm(): void {
    while (!this.closed && this.size < this.limit) {
      this.grow().then(
        (client) => this.release(client),
        () => undefined,
      );
    }
  }

  async acquire(): Promise<Client> {
    if (this.closed) throw new StorageError('the FTP connection was closed', false);
    const idle = this.takeIdle();
    if (idle) return idle;
    if (this.size < this.limit) return this.grow();
    return new Promise<Client>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * An idle connection, or a new one while below the limit; undefined when every connection is in
   * use. Never waits for another operation: for helpers of an operation that holds a connection
   * already (two such operations waiting for each other's connection would wait forever).
   */
  tryAcquire(): Promise<Client> | undefined {
    if (this.closed) return undefined;
    const idle = this.takeIdle();
    if (idle) return Promise.resolve(idle);
    return this.size < this.limit ? this.grow() : undefined;
  }

  /** An idle connection if one is free right now; never waits and never opens one. */
  tryAcquireIdle(): Client | undefined {
    return this.closed ? undefined : this.takeIdle();
  }

  /** Gives a healthy connection back (to a waiting operation, or to the idle list). */
  release(client: Client): void {
    if (this.closed || client.closed || !this.all.has(client)) {
      this.discard(client);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(client);
    else this.idle.push(client);
  }

  /** Closes a connection that failed or whose state is unknown; a waiting operation gets a new one. */
  discard(client: Client): void {
    client.close();
    const wasOpen = this.all.delete(client);
    this.idle = this.idle.filter((c) => c !== client);
    if (wasOpen) this.serveWaiters();
  }

  close(): void {
    this.closed = true;
    for (const client of this.all) client.close();
    this.all.clear();
    this.idle = [];
    for (const waiter of this.waiters.splice(0)) waiter.reject(new StorageError('the FTP connection was closed', false));
  }

  private takeIdle(): Client | undefined {
    while (this.idle.length > 0) {
      const client = this.idle.pop() as Client;
      if (!client.closed) return client;
      // The server closed it while idle (idle timeout, restart): forget it.
      client.close();
      this.all.delete(client);
    }
    return undefined;
  }

  private serveWaiters(): void {
    while (!this.closed && this.waiters.length > 0 && this.size < this.limit) {
      const waiter = this.waiters.shift() as Waiter;
      this.grow().then(waiter.resolve, waiter.reject);
    }
  }

  private async grow(): Promise<Client> {
    this.creating++;
    let client: Client;
    try {
      client = await this.create();
    } catch (error) {
      this.creating--;
      if (!this.closed && this.all.size > 0 && error instanceof FtpConnectError) {
        // The server accepts fewer connections than we asked for: share the ones it accepted (and
        // those still being opened, which lower the limit again should they fail the same way).
        // Not only on its "421 too many connections": it may close the connection before that
        // reply is read (vsftpd over max_per_ip, seen in CI). Another connection of the same
        // settings is logged in and working, so a failure here is a limit or a passing fault.
        this.limit = Math.max(1, this.all.size + this.creating);
        return new Promise<Client>((resolve, reject) => this.waiters.push({ resolve, reject }));
      }
      // Let another waiter try (it gets the same error if the server is down).
      queueMicrotask(() => this.serveWaiters());
      throw error;
    }
    this.creating--;
    if (this.closed) {
      client.close();
      throw new StorageError('the FTP connection was closed', false);
    }
    this.opened++;
    this.all.add(client);
    return client;
  }
}

