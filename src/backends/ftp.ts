// The FTP/FTPS backend (basic-ftp): a folder on an FTP server as a store.
//
// Transport: plain FTP (with a warning: the password and files travel unencrypted), explicit TLS
// (ftps:// = AUTH TLS) or implicit TLS (options.ftpsImplicit); passive mode; server certificates are
// verified unless options.allowUntrustedCertificate. A pool of connections (options.connections,
// default 4): FTP carries one transfer per connection. A connection that fails is dropped and
// replaced on the next use; the failed operation surfaces as a transient StorageError so the engine
// retries it. Idempotent operations (listing, stat, read, delete, mkdir) first try again on other
// connections by themselves, which covers idle connections the server closed (a restart closes
// them all at once); a server that is really gone fails fast when a new connection is opened.
//
// The pool opens its other connections in the background on the first transfer, so that a burst of
// parallel transfers does not wait for logins; a sync with nothing to transfer logs in once or twice.
//
// Paths: every path is checked with assertSafeRelativePath and joined to the absolute root folder,
// and every command uses the absolute path, so nothing depends on a connection's working folder
// (listing alone changes it, to list with a plain "LIST -a" or "MLSD": vsftpd and others would treat
// glob characters in a LIST argument as a pattern). Names that are not UTF-8 on the server cannot be
// addressed once decoded and are skipped with a reason, like symbolic links.
//
// Listing and modification times:
//  - Servers with MLSD/MLST (RFC 3659) list exact sizes and UTC "modify" times (seconds or better);
//    stat uses MLST, so both report the same time.
//  - Servers without MLSD (vsftpd among them) list with LIST, whose dates are in minutes at best
//    (days for files older than six months). Two versions of a file with the same size written in
//    the same minute would look the same, so the backend asks MDTM (seconds, UTC) for every file it
//    lists, pipelined (a batch of requests per round trip; one at a time, spread over idle pool
//    connections, on servers that do not answer commands sent ahead). listDirs lists a batch of
//    folders in one round trip with CWD + "STAT ." each over the control connection (ftpStatListing.ts),
//    where the first folder of a session listed the same through STAT and LIST, and asks the MDTMs of
//    the whole batch together. No MDTM is asked where the listing alone shows a file as the last
//    sync recorded it (ListDirOptions.known; see listDateSuffices). stat uses SIZE + MDTM. Only servers
//    with neither MLSD nor MDTM fall back to LIST dates: there a same-size change within the same
//    minute is not detected by size and time (documented limit; no FTP server we know of lacks MDTM).
//  - Setting times: MFMT where FEAT lists it, otherwise "MDTM YYYYMMDDHHMMSS path" (vsftpd with
//    mdtm_write=YES, its default, and several others). Whether it worked is checked on the first
//    write by reading the time back; `keepsMtime` tells. Kept times have whole-second precision
//    (the written time is rounded down to the second). Where times cannot be set, a file's listed
//    time is the time of its upload: still stable across listings and changed by every upload,
//    which is all the engine's same-side change detection needs.
//
// Writes are atomic: upload to a temporary name in the same folder (tempName()), set the time,
// check the size, then RNFR/RNTO over the target (POSIX servers rename(2), which replaces the target
// atomically; verified with vsftpd). Once the server is known to keep the times it is given (first upload)
// and to answer commands sent ahead (a pair of NOOPs, once per session), the steps after STOR go
// pipelined: [set time, SIZE] in one round trip, then [RNFR, RNTO] in another, instead of five;
// and STOR is written right behind EPSV (ftpPipeline.ts withCommandBehindEpsv; RETR and LIST
// too), one round trip fewer again. Bytes held in memory go further (writeInOneGo): [set time,
// SIZE] are written with EPSV and STOR, so the server runs them as soon as the transfer is over,
// and only [RNFR, RNTO] follow. A new file (WriteOptions.ifAbsent) is checked to be still
// absent in the same round trip as [set time, SIZE], just before the rename: the engine's own
// check before the upload would cost two more round trips (SIZE, then CWD to rule out a folder),
// and the window between the check and the rename is the shorter for it (FTP has no create-only
// rename, so a file put there by someone else within that window could still be replaced).
// A failed or aborted upload deletes the temporary file (on
// another connection if its own died) and leaves the old content. An upload whose connection turns
// out to be dead before any data was sent is tried again on another connection.
// There is no server-side copy or hard link over FTP, so the engine keeps trash copies of replaced
// files by downloading and uploading them (FTP has no cheap way), and has no hash either.
//
// rename refuses to overwrite: it checks that the target is free first; a target created by someone
// else between that check and the RNTO would be replaced (FTP has no "rename unless exists").
//
// Folders report no modification time from stat (0); listDir gives LIST's (imprecise) date.
import { Client, FileType, enterPassiveModeIPv6, parseList, type FileInfo } from 'basic-ftp';
import { PassThrough, Readable, Transform, Writable } from 'node:stream';
import type { RemoteHostTarget } from '../config/target';
import { describeTarget } from '../config/target';
import { StorageError, SyncError, TargetExistsError, UsageError } from '../core/errors';
import { assertSafeRelativePath, isEngineName, isSafeName, joinPath, parentOf } from '../core/paths';
import { tempName } from './localTree';
import { sendPipelined, storBehindEpsv, withCommandBehindEpsv } from './ftpPipeline';
import { newBatchToken, readStatBatch, statBatchCommands } from './ftpStatListing';
import { FtpPool, connectFtp, greetings, type FtpConnectSettings, type FtpTls } from './ftpPool';
import { causeOf, formatFtpTimestamp, ftpError, ftpFail, isAbortError, isReplyError, mlstFactsLine, parseListDateRange, parseMdtmReply, replyText, type CommandKind } from './ftpProtocol';
import type { Subject } from './subject';
import type { ConnectOptions } from './registry';
import type { Backend, Entry, KnownFiles, ListDirOptions, ListDirResult, SkippedEntry, WriteOptions } from './types';

export const PLAIN_FTP_WARNING = 'plain FTP sends the password and files unencrypted; use ftps:// where the server supports it';

/** Settings for tests and tools; the CLI and the extension use open(). */
export interface FtpTuning {
  /** Reply and stall timeout per connection. Default 30 s. */
  timeoutMs?: number;
}

/** What the server offers (FEAT), as the backend uses it. */
export interface FtpFeatures {
  mlsd: boolean;
  mdtm: boolean;
  size: boolean;
  mfmt: boolean;
  utf8: boolean;
}

const DEFAULT_CONNECTIONS = 4;
/**
 * vsftpd (3.0.x, TLS 1.2 and 1.3 alike) fails an upload whose TLS data connection is closed right
 * after its handshake ("SSL_accept failed: unexpected eof"), which is what an empty file does; curl
 * is slower to close and does not hit it. Against vsftpd (known from its greeting) or a server that
 * failed such an upload once, an empty upload over TLS waits this long before closing the data
 * connection, and a failed one is tried once more waiting four times as long. Measured: 5 ms
 * fails, 20 ms passes on an idle machine.
 */
const EMPTY_TLS_UPLOAD_DELAY_MS = 150;
const DEFAULT_TIMEOUT_MS = 30_000;
/** MDTM requests per pipelined batch: one round trip each (about 60 bytes a request). */
const MDTM_BATCH = 128;
/** How long the first pipelined batch of a session may take before the server is taken not to answer commands sent ahead. */
const PIPELINE_PROBE_TIMEOUT_MS = 5_000;

/** Folders per STAT batch (one write; vsftpd's reply is about 70 bytes a file). */
const STAT_BATCH_FOLDERS = 128;
/** MDTM requests a listing sends on one connection before sharing them out among others. */
const MDTM_SPREAD_FILES = 512;

type Reply = { code: number; message: string };

/** One folder's listing before the MDTM requests for its files. */
interface FolderListing {
  entries: Entry[];
  skipped: SkippedEntry[];
  /** Files whose exact time MDTM is asked for, unless their LIST date suffices (see listDateSuffices). */
  needTimes: { entry: Entry; range: { start: number; end: number } | undefined }[];
}

/**
 * How long before the start of the last full sync a file's LIST date must end for that date to
 * stand for the exact time recorded then: it covers the server's clock running behind this
 * machine's and LIST dates in the server's local time instead of UTC (up to 14 hours).
 */
const LIST_DATE_TRUST_MARGIN_MS = 2 * 86_400_000;

/**
 * Whether a file's LIST date and size are enough to know it unchanged since the last sync: the
 * size is the one recorded, the recorded exact time falls within the listed date's minute (or day),
 * and that minute ended well before the last sync began. A file changed after the last sync gets
 * a time after its start (unless whoever wrote it set an older one on purpose), which LIST would
 * show as another date. Then the recorded time is taken, and no MDTM is asked.
 */
function listDateSuffices(entry: Entry, range: { start: number; end: number } | undefined, known: KnownFiles): boolean {
  const recorded = known.get(entry.path);
  if (range === undefined || recorded === undefined || recorded.size !== entry.size) return false;
  if (recorded.mtimeMs < range.start || recorded.mtimeMs >= range.end || range.end > known.listedAt - LIST_DATE_TRUST_MARGIN_MS) return false;
  entry.mtimeMs = recorded.mtimeMs;
  return true;
}

/** Whether two listings of a folder name the same entries, of the same kinds, sizes and listed dates. */
function sameListing(a: FolderListing, b: FolderListing): boolean {
  const key = (listing: FolderListing) =>
    [...listing.entries.map((e) => `${e.kind} ${e.size} ${e.mtimeMs} ${e.path}`), ...listing.skipped.map((s) => `skipped ${s.path}`)].sort().join('\n');
  return key(a) === key(b);
}

function abortErrorOf(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error('The operation was aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `then` once `stream` is being read (piped into the data connection). */
function whenFlowing(stream: Readable, then: () => void): void {
  if (stream.readableFlowing === true) then();
  else stream.once('resume', then);
}

export class FtpBackend implements Backend {
  readonly displayName: string;
  readonly id: string;
  /** Absolute root folder on the server ('/'-separated, no trailing '/' except for '/'). */
  readonly root: string;
  readonly features: FtpFeatures;
  readonly tls: FtpTls;

  /** Folders known to exist (relative paths), to save a MKD per upload. */
  private readonly knownDirs = new Set<string>();
  /** Folders being created right now, by path: other connections wait for the one creating it. */
  private readonly creatingDirs = new Map<string, Promise<boolean>>();
  /** Setting modification times: unknown until the first write that sets one. */
  private mtimeWrite: 'unknown' | 'yes' | 'no';
  private warnedMtime = false;
  /** See EMPTY_TLS_UPLOAD_DELAY_MS. */
  private emptyTlsUploadDelayMs: number;
  private useMlst: boolean;
  private useSizeMdtm: boolean;
  /** Whether the server answers commands sent ahead (see fetchTimesPipelined). */
  private pipelining: 'unknown' | 'yes' | 'no' = 'unknown';
  private pipeliningProbe?: Promise<void>;
  /** Whether folders are listed with STAT over the control connection (see listDirs): unknown until the first listDirs. */
  private statListing: 'unknown' | 'yes' | 'no' = 'unknown';
  private poolWarmed = false;
  /** MDTM reads a kept time back as exactly the whole second that was set. */
  private mtimeReadBackExact = false;
  private readonly label: string;

  private constructor(
    private readonly pool: FtpPool,
    target: RemoteHostTarget,
    settings: FtpConnectSettings,
    root: string,
    features: FtpFeatures,
    greeting: string,
    private readonly warn: ((message: string) => void) | undefined,
  ) {
    this.root = root;
    this.features = features;
    this.tls = settings.tls;
    this.label = settings.label;
    this.useMlst = features.mlsd;
    this.useSizeMdtm = features.size && features.mdtm;
    this.mtimeWrite = features.mfmt || features.mdtm ? 'unknown' : 'no';
    this.emptyTlsUploadDelayMs = settings.tls !== 'none' && /vsftpd/i.test(greeting) ? EMPTY_TLS_UPLOAD_DELAY_MS : 0;
    const shown = describeTarget(target);
    this.displayName = settings.tls === 'implicit' ? `${shown} (implicit TLS)` : shown;
    this.id = `ftp://${encodeURIComponent(settings.user)}@${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${settings.port}${root.startsWith('/') ? '' : '/'}${root}`;
  }

  /**
   * Connects (one connection, to check address, TLS and credentials), reads FEAT, resolves the root
   * folder (a relative target path is relative to the login folder) and returns the backend.
   */
  static async connect(target: RemoteHostTarget, options: ConnectOptions = {}, tuning: FtpTuning = {}): Promise<FtpBackend> {
    const tls: FtpTls = options.ftpsImplicit ? 'implicit' : target.kind === 'ftps' ? 'explicit' : 'none';
    const port = target.port ?? (tls === 'implicit' ? 990 : 21);
    const hostPort = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${port}`;
    const label = `${tls === 'none' ? 'FTP' : 'FTPS'} server ${hostPort}`;
    let user = target.user;
    let password = options.password;
    if (user === undefined || user === '') {
      user = 'anonymous';
      password ??= 'anonymous@';
    } else if (password === undefined) {
      password = await options.prompt?.(`Password for ${user}@${hostPort}: `, { secret: true });
      if (password === undefined) {
        throw new UsageError(`A password is needed to log in to ${label} as "${user}": set the SYNCENGINE_PASSWORD environment variable, or run where a prompt can be shown`);
      }
    }
    if (tls === 'none') options.warn?.(`${target.host}: ${PLAIN_FTP_WARNING}`);
    const settings: FtpConnectSettings = {
      host: target.host,
      port,
      user,
      password,
      tls,
      allowUntrustedCertificate: options.allowUntrustedCertificate === true,
      timeoutMs: tuning.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      label,
    };
    const first = await connectFtp(settings);
    let root: string;
    let features: FtpFeatures;
    try {
      const feat = await first.features();
      features = { mlsd: feat.has('MLST'), mdtm: feat.has('MDTM'), size: feat.has('SIZE'), mfmt: feat.has('MFMT'), utf8: feat.has('UTF8') };
      root = target.path.replace(/\/+$/, '');
      if (!target.path.startsWith('/')) {
        const home = (await first.pwd()).replace(/\/+$/, '');
        root = root === '' ? home || '/' : `${home}/${root}`;
      } else if (root === '') {
        root = '/';
      }
    } catch (error) {
      first.close();
      throw ftpError('open', target.path, label, error, 'read');
    }
    const pool = new FtpPool(() => connectFtp(settings), options.connections ?? DEFAULT_CONNECTIONS);
    pool.adopt(first);
    return new FtpBackend(pool, target, settings, root, features, greetings.get(first) ?? '', options.warn);
  }

  /**
   * On the first transfer of the session, logs the pool's other connections in, in the background:
   * transfers come in bursts, which then do not wait for logins one by one.
   */
  private warmPool(): void {
    if (this.poolWarmed) return;
    this.poolWarmed = true;
    this.pool.prewarm();
  }

  /** Whether written modification times are kept: undefined until the first write that sets one. */
  get keepsMtime(): boolean | undefined {
    return this.mtimeWrite === 'unknown' ? undefined : this.mtimeWrite === 'yes';
  }

  /** Whether MDTM requests are pipelined: 'unknown' until the first listing that needs them. */
  get commandPipelining(): 'unknown' | 'yes' | 'no' {
    return this.pipelining;
  }

  /** Whether listDirs lists folders with STAT over the control connection: 'unknown' until its first call. */
  get statFolderListing(): 'unknown' | 'yes' | 'no' {
    return this.statListing;
  }

  /** How files are listed: 'MLSD' (exact), 'LIST+MDTM' (exact to the second), 'LIST' (minutes at best). */
  get listingMode(): 'MLSD' | 'LIST+MDTM' | 'LIST' {
    return this.useMlst ? 'MLSD' : this.features.mdtm ? 'LIST+MDTM' : 'LIST';
  }

  /** Connections opened so far (replacements included). */
  get connectionsOpened(): number {
    return this.pool.opened;
  }

  get maxConnections(): number {
    return this.pool.maxConnections;
  }

  private abs(path: string): string {
    if (path === '') return this.root;
    return this.root === '/' ? `/${path}` : `${this.root}/${path}`;
  }

  /**
   * How often an operation that has not changed anything yet is tried again on another connection
   * when its connection turns out to be dead: every idle connection may have died at once (server
   * restart, network change) before the pool noticed, so up to one per pooled connection, plus one.
   * A server that is really gone fails fast: opening a new connection reports it.
   */
  private get retriesOnLostConnection(): number {
    return this.pool.maxConnections + 1;
  }

  /**
   * Runs `body` on a borrowed connection. A connection that failed is discarded (the next use opens
   * a new one); `idempotent` operations are tried again on another connection when the connection
   * failed, since that is usually an idle connection the server had closed.
   */
  private async withConnection<T>(operation: string, path: Subject, kind: CommandKind, body: (client: Client) => Promise<T>, idempotent = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.acquire();
      try {
        const result = await body(client);
        this.pool.release(client);
        return result;
      } catch (error) {
        const lost = client.closed || (!(error instanceof SyncError) && causeOf(error, kind).connectionLost);
        if (lost) this.pool.discard(client);
        else this.pool.release(client);
        if (lost && idempotent && attempt <= this.retriesOnLostConnection && !isAbortError(error)) continue;
        throw ftpError(operation, path, this.label, error, kind, lost);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Listing

  async listDir(dir: string, options?: ListDirOptions): Promise<ListDirResult> {
    assertSafeRelativePath(dir);
    return this.withConnection('list folder', dir === '' ? this.root : dir, 'list', (client) => this.listWith(client, dir, options?.known), true);
  }

  private async cwd(client: Client, dir: string): Promise<boolean> {
    const reply = await client.sendIgnoringError(`CWD ${this.abs(dir)}`);
    return reply.code < 400;
  }

  private async listWith(client: Client, dir: string, known?: ListDirOptions['known']): Promise<ListDirResult> {
    if (!(await this.cwd(client, dir))) throw this.noSuchFolder(dir);
    const listed = this.folderListing(dir, await this.listWorkingDir(client));
    return this.withExactTimes(client, [listed], known).then(([result]) => result!);
  }

  private noSuchFolder(dir: string): StorageError {
    if (dir === '') return new StorageError(`folder does not exist or cannot be opened on ${this.label}: ${this.root}`, false);
    return ftpFail('list folder', dir, this.label, 'no such folder, or permission denied');
  }

  /** A folder's entries from its listing lines; the files whose time only MDTM can tell are in needTimes. */
  private folderListing(dir: string, infos: readonly FileInfo[]): FolderListing {
    const entries: Entry[] = [];
    const skipped: SkippedEntry[] = [];
    const needTimes: FolderListing['needTimes'] = [];
    // The files of a folder share a few dates: each is parsed once.
    const dates = new Map<string, { start: number; end: number } | undefined>();
    const listDate = (raw: string) => {
      if (!dates.has(raw)) dates.set(raw, parseListDateRange(raw));
      return dates.get(raw);
    };
    for (const info of infos) {
      const name = info.name;
      if (name === '.' || name === '..' || name === '') continue;
      if (isEngineName(name)) continue;
      const path = joinPath(dir, name);
      if (!isSafeName(name)) {
        skipped.push({ path, reason: 'unsafe name (control character or backslash)' });
        continue;
      }
      if (name.includes('\uFFFD')) {
        // Not UTF-8 on the server: the decoded name no longer addresses the file.
        skipped.push({ path, reason: 'name is not valid UTF-8 (cannot be addressed over FTP)' });
        continue;
      }
      if (info.type === FileType.SymbolicLink) {
        skipped.push({ path, reason: 'symbolic link (not followed)' });
        continue;
      }
      if (info.type !== FileType.File && info.type !== FileType.Directory) {
        skipped.push({ path, reason: 'not a regular file or folder' });
        continue;
      }
      const isFile = info.type === FileType.File;
      const range = info.modifiedAt === undefined ? listDate(info.rawModifiedAt) : undefined;
      const listed = info.modifiedAt?.getTime() ?? range?.start ?? 0;
      const entry: Entry = { path, kind: isFile ? 'file' : 'dir', size: isFile ? info.size : 0, mtimeMs: Number.isFinite(listed) ? listed : 0 };
      entries.push(entry);
      // LIST dates are minutes at best: MDTM tells the exact time (unless listDateSuffices).
      if (isFile && info.modifiedAt === undefined && this.features.mdtm) needTimes.push({ entry, range });
    }
    return { entries, skipped, needTimes };
  }

  /**
   * The folders' results, with the times of their files asked with MDTM on `client` (one batch for
   * all), but for files whose LIST date agrees with what the last sync recorded (`known`).
   */
  private async withExactTimes(client: Client, folders: readonly FolderListing[], known: ListDirOptions['known']): Promise<ListDirResult[]> {
    const needed = folders.flatMap((folder) => folder.needTimes);
    const knownFiles = needed.length > 0 && known ? await known : undefined;
    const files = needed.filter(({ entry, range }) => knownFiles === undefined || !listDateSuffices(entry, range, knownFiles)).map(({ entry }) => entry);
    const gone = files.length > 0 ? await this.fetchTimesSpread(client, files) : new Set<Entry>();
    return folders.map(({ entries, skipped }) => ({ entries: gone.size > 0 ? entries.filter((e) => !gone.has(e)) : entries, skipped }));
  }

  /**
   * Several folders at once. Where the server lists a folder with STAT over the control connection
   * (checked once per session against LIST, see ftpStatListing.ts), a batch of folders costs one
   * round trip on one connection, and their MDTM requests go out together; batches run on several
   * connections. Elsewhere, listDir for each.
   */
  async listDirs(dirs: readonly string[], options?: ListDirOptions): Promise<ListDirResult[]> {
    const known = options?.known;
    for (const dir of dirs) assertSafeRelativePath(dir);
    if (dirs.length === 0) return [];
    const results: (ListDirResult | undefined)[] = new Array(dirs.length);
    let start = 0;
    if (this.statListing === 'unknown' && this.canListWithStat()) {
      results[0] = await this.withConnection('list folder', dirs[0] === '' ? this.root : dirs[0]!, 'list', (client) => this.listCheckingStat(client, dirs[0]!, known), true);
      start = 1;
    }
    if (start < dirs.length) {
      const listed = await this.listBatch(dirs.slice(start), known);
      listed.forEach((result, k) => (results[start + k] = result));
    }
    return results as ListDirResult[];
  }

  private canListWithStat(): boolean {
    return this.statListing !== 'no' && !this.useMlst && this.pipelining !== 'no';
  }

  /**
   * Folders of listDirs: with STAT where that is known to work, a batch per round trip, all on one
   * connection (logging more in costs the server more than the batches do); else LIST folder by folder.
   */
  private async listBatch(dirs: readonly string[], known: ListDirOptions['known']): Promise<ListDirResult[]> {
    const oneByOne = () => Promise.all(dirs.map((dir) => this.listDir(dir, known ? { known } : undefined)));
    if (this.statListing !== 'yes' || !this.canListWithStat()) return oneByOne();
    const subject = dirs[0] === '' ? this.root : dirs[0]!;
    const listed = await this.withConnection('list folder', subject, 'list', (client) => this.listWithStat(client, dirs, known), true);
    // A batch whose replies were out of place: STAT is not used again this session (see listWithStat).
    return listed ?? oneByOne();
  }

  /**
   * The folders' listings from one STAT batch on `client`, or undefined when the replies were out of
   * place: then the connection is closed (a reply may still be on its way) and STAT listing is off.
   */
  private async listWithStat(client: Client, dirs: readonly string[], known: ListDirOptions['known']): Promise<ListDirResult[] | undefined> {
    const folders: FolderListing[] = [];
    for (let i = 0; i < dirs.length; i += STAT_BATCH_FOLDERS) {
      const batch = await this.statFolders(client, dirs.slice(i, i + STAT_BATCH_FOLDERS));
      if (batch === undefined) return undefined;
      folders.push(...batch);
    }
    return this.withExactTimes(client, folders, known);
  }

  private async statFolders(client: Client, dirs: readonly string[]): Promise<FolderListing[] | undefined> {
    const token = newBatchToken();
    let replies: Reply[];
    try {
      replies = await sendPipelined(client, statBatchCommands(dirs.map((dir) => this.abs(dir)), token));
    } catch (error) {
      // No answer to some command (a reply swallowed by another, or the connection died): LIST from now on.
      this.statListing = 'no';
      throw error;
    }
    const read = readStatBatch(replies, dirs.length, token);
    if (!read.ok) {
      this.statListing = 'no';
      client.ftp.log(`STAT listing off: ${read.reason}`);
      client.close();
      return undefined;
    }
    return read.folders.map((folder, i) => {
      const dir = dirs[i]!;
      if (folder.kind === 'no-folder') throw this.noSuchFolder(dir);
      return this.folderListing(dir, client.parseList(folder.text));
    });
  }

  /**
   * The first listDirs of a session lists its first folder with LIST and with STAT; STAT is used
   * from then on only if the server takes commands sent ahead and both listings say the same. An
   * empty folder proves nothing (a server whose STAT describes the folder itself, as `ls -ld`,
   * would pass): the check waits for the first folder of a later listDirs that has something in it.
   */
  private async listCheckingStat(client: Client, dir: string, known: ListDirOptions['known']): Promise<ListDirResult> {
    if (!(await this.cwd(client, dir))) throw this.noSuchFolder(dir);
    const listed = this.folderListing(dir, await this.listWorkingDir(client));
    if (this.statListing === 'unknown' && (listed.entries.length > 0 || listed.skipped.length > 0)) {
      const byStat = (await this.probePipelining(client)) ? await this.statFolders(client, [dir]).catch(() => undefined) : undefined;
      if (this.statListing === 'unknown') this.statListing = byStat !== undefined && sameListing(listed, byStat[0]!) ? 'yes' : 'no';
    }
    if (client.closed) throw new StorageError(`connection closed while checking STAT listing on ${this.label}`, true);
    return (await this.withExactTimes(client, [listed], known))[0]!;
  }

  /**
   * fetchTimes, with a long list shared out (pipelined) among up to all the pool's connections: MDTM
   * costs the server a look at each file, and several sessions spread that over its CPUs. Helpers
   * are only connections free or openable right now; a share whose helper failed is done on `client`.
   */
  private async fetchTimesSpread(client: Client, files: Entry[]): Promise<Set<Entry>> {
    const wanted = this.pipelining === 'yes' ? Math.min(this.pool.maxConnections, Math.floor(files.length / MDTM_SPREAD_FILES)) - 1 : 0;
    const helpers: Promise<Client>[] = [];
    while (helpers.length < wanted) {
      const helper = this.pool.tryAcquire();
      if (helper === undefined) break;
      helper.catch(() => undefined); // a failed login: its share is done on `client`
      helpers.push(helper);
    }
    if (helpers.length === 0) return this.fetchTimes(client, files);
    const size = Math.ceil(files.length / (helpers.length + 1));
    const shares = Array.from({ length: helpers.length + 1 }, (_, k) => files.slice(k * size, (k + 1) * size));
    const byHelpers = helpers.map(async (acquired, k): Promise<Set<Entry> | undefined> => {
      let helper: Client | undefined;
      try {
        helper = await acquired;
        const gone = await this.fetchTimes(helper, shares[k + 1]!);
        this.pool.release(helper);
        return gone;
      } catch {
        if (helper) this.pool.discard(helper);
        return undefined;
      }
    });
    const gone = new Set(await this.fetchTimes(client, shares[0]!));
    for (const [k, result] of (await Promise.all(byHelpers)).entries()) {
      for (const entry of result ?? (await this.fetchTimes(client, shares[k + 1]!))) gone.add(entry);
    }
    return gone;
  }

  /**
   * Sets each entry's mtime from MDTM, on `client` and on whatever pool connections are idle right
   * now (one request per file; a busy pool just means fewer helpers). Returns the entries that
   * vanished since the listing.
   */
  private async fetchTimes(client: Client, files: Entry[]): Promise<Set<Entry>> {
    if (this.pipelining !== 'no') return this.fetchTimesPipelined(client, files);
    const gone = new Set<Entry>();
    const helpers: Client[] = [];
    for (let wanted = Math.min(3, Math.floor(files.length / 24)); helpers.length < wanted; ) {
      const helper = this.pool.tryAcquireIdle();
      if (!helper) break;
      helpers.push(helper);
    }
    let next = 0;
    const timeOf = async (worker: Client, entry: Entry): Promise<void> => {
      await this.applyMdtmReply(worker, entry, await worker.sendIgnoringError(`MDTM ${this.abs(entry.path)}`), gone);
    };
    const work = async (worker: Client, own: boolean): Promise<void> => {
      while (next < files.length) {
        const entry = files[next++] as Entry;
        try {
          await timeOf(worker, entry);
        } catch (error) {
          if (own) throw error;
          // A helper failed: give its file back to the others and drop the helper.
          files.push(entry);
          this.pool.discard(worker);
          return;
        }
      }
      if (!own) this.pool.release(worker);
    };
    const results = await Promise.allSettled([work(client, true), ...helpers.map((h) => work(h, false))]);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
    return gone;
  }

  /**
   * fetchTimes with the MDTM requests pipelined on `client`, a batch per round trip. The first batch
   * of a session is two requests: a server that does not answer both within a few seconds (some
   * drop commands sent ahead) gets one request at a time from then on, after its connection is
   * closed (the listing is then tried again on another connection).
   */
  private async fetchTimesPipelined(client: Client, files: Entry[]): Promise<Set<Entry>> {
    const gone = new Set<Entry>();
    for (let start = 0; start < files.length; ) {
      const probe = this.pipelining === 'unknown';
      const batch = files.slice(start, start + (probe ? 2 : MDTM_BATCH));
      const timer = probe ? setTimeout(() => client.close(), PIPELINE_PROBE_TIMEOUT_MS) : undefined;
      let replies: Reply[];
      try {
        replies = await sendPipelined(client, batch.map((entry) => `MDTM ${this.abs(entry.path)}`));
      } catch (error) {
        if (probe) this.pipelining = 'no';
        throw error;
      } finally {
        clearTimeout(timer);
      }
      this.pipelining = 'yes';
      for (const [i, entry] of batch.entries()) await this.applyMdtmReply(client, entry, replies[i] as Reply, gone);
      start += batch.length;
    }
    return gone;
  }

  private async applyMdtmReply(client: Client, entry: Entry, reply: Reply, gone: Set<Entry>): Promise<void> {
    const time = reply.code === 213 ? parseMdtmReply(reply.message) : undefined;
    if (time !== undefined) {
      entry.mtimeMs = time;
    } else if (reply.code === 550) {
      // Deleted since the listing? Only a second look may drop it: a file that is listed but
      // cannot be examined must not look deleted; it keeps LIST's date.
      const size = await client.sendIgnoringError(`SIZE ${this.abs(entry.path)}`);
      if (size.code === 550) gone.add(entry);
    }
  }

  // -------------------------------------------------------------------------------------------
  // stat

  async stat(path: string): Promise<Entry | undefined> {
    assertSafeRelativePath(path);
    return this.withConnection('examine', path, 'read', (client) => this.statWith(client, path), true);
  }

  private async statWith(client: Client, path: string): Promise<Entry | undefined> {
    if (path === '') return (await this.cwd(client, '')) ? { path, kind: 'dir', size: 0, mtimeMs: 0 } : undefined;
    const abs = this.abs(path);
    if (this.useMlst) {
      const reply = await client.sendIgnoringError(`MLST ${abs}`);
      if (reply.code >= 500 && reply.code <= 502) {
        this.useMlst = false; // advertised but not understood: use SIZE/MDTM from now on
      } else if (reply.code >= 400) {
        return undefined;
      } else {
        const line = mlstFactsLine(reply.message);
        const info = line === undefined ? undefined : parseList(line)[0];
        if (info === undefined) throw new Error(`cannot parse the MLST reply: ${replyText(reply.message)}`);
        if (info.type === FileType.File) return { path, kind: 'file', size: info.size, mtimeMs: info.modifiedAt?.getTime() ?? 0 };
        if (info.type === FileType.Directory) return { path, kind: 'dir', size: 0, mtimeMs: 0 };
        return undefined; // a symbolic link or something else: not a file or folder we sync
      }
    }
    if (this.useSizeMdtm) {
      const size = await client.sendIgnoringError(`SIZE ${abs}`);
      if (size.code === 213) {
        const bytes = Number.parseInt(size.message.slice(4), 10);
        const mdtm = await client.sendIgnoringError(`MDTM ${abs}`);
        const time = mdtm.code === 213 ? parseMdtmReply(mdtm.message) : undefined;
        if (Number.isFinite(bytes) && time !== undefined) return { path, kind: 'file', size: bytes, mtimeMs: time };
        if (mdtm.code === 550) return undefined; // vanished between the two commands
      } else if (size.code >= 500 && size.code <= 502) {
        this.useSizeMdtm = false;
      } else {
        // Not a file (or missing): a folder if we can enter it.
        return (await this.cwd(client, path)) ? { path, kind: 'dir', size: 0, mtimeMs: 0 } : undefined;
      }
    }
    // No MLST, SIZE or MDTM: find the entry in its folder's listing.
    const parent = parentOf(path);
    if (!(await this.cwd(client, parent))) return undefined;
    const listing = await this.listWith(client, parent);
    const found = listing.entries.find((e) => e.path === path);
    return found === undefined ? undefined : found.kind === 'dir' ? { ...found, mtimeMs: 0 } : found;
  }

  // -------------------------------------------------------------------------------------------
  // read

  async read(path: string, signal?: AbortSignal): Promise<Readable> {
    assertSafeRelativePath(path);
    this.warmPool();
    if (path === '') throw ftpFail('read', path, this.label, 'it is the root folder');
    signal?.throwIfAborted();
    for (let attempt = 1; ; attempt++) {
      const started = await this.startDownload(path, signal, attempt <= this.retriesOnLostConnection);
      if (started !== 'retry') return started;
    }
  }

  /**
   * Starts a download into a stream and resolves once data flows (or the download ended): a
   * missing file rejects here rather than in the middle of the stream.
   */
  private async startDownload(path: string, signal: AbortSignal | undefined, mayRetry: boolean): Promise<Readable | 'retry'> {
    const client = await this.pool.acquire();
    let flowing!: () => void;
    const started = new Promise<void>((resolve) => (flowing = resolve));
    const out = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        flowing();
        callback(null, chunk);
      },
    });
    let settled = false;
    let outcome: { ok: true } | { ok: false; error: unknown } | undefined;
    const onAbort = () => {
      if (!out.destroyed) out.destroy(abortErrorOf(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finished = this.retr(client, out, this.abs(path)).then(
      () => {
        outcome = { ok: true };
        this.pool.release(client);
      },
      (error: unknown) => {
        outcome = { ok: false, error };
        // Stopped early (abort, the reader gave up) or failed mid-way: the session's state is
        // unknown (a late "426" could be taken as the reply to the next command). Replace it.
        const lost = client.closed || out.destroyed || !isReplyError(error) || causeOf(error, 'read').connectionLost;
        if (lost) this.pool.discard(client);
        else this.pool.release(client);
        if (settled && !out.destroyed) out.destroy(ftpError('read', path, this.label, error, 'read', client.closed));
      },
    );
    out.once('close', () => signal?.removeEventListener('abort', onAbort));
    await Promise.race([started, finished]);
    settled = true;
    if (outcome !== undefined && !outcome.ok) {
      signal?.removeEventListener('abort', onAbort);
      const error = outcome.error;
      if (signal?.aborted) throw abortErrorOf(signal);
      if (mayRetry && client.closed && !isReplyError(error) && causeOf(error, 'read').transient) return 'retry';
      throw ftpError('read', path, this.label, error, 'read', client.closed);
    }
    return out;
  }

  async readFile(path: string, signal?: AbortSignal): Promise<Buffer> {
    assertSafeRelativePath(path);
    this.warmPool();
    if (path === '') throw ftpFail('read', path, this.label, 'it is the root folder');
    signal?.throwIfAborted();
    return this.withConnection(
      'read',
      path,
      'read',
      async (client) => {
        const chunks: Buffer[] = [];
        const sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            chunks.push(chunk);
            callback();
          },
        });
        const onAbort = () => {
          client.close(); // the connection is replaced; the download rejects
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          await this.retr(client, sink, this.abs(path));
        } catch (error) {
          if (signal?.aborted) throw abortErrorOf(signal);
          throw error;
        } finally {
          signal?.removeEventListener('abort', onAbort);
        }
        return Buffer.concat(chunks);
      },
      true,
    );
  }

  // -------------------------------------------------------------------------------------------
  // write

  /** New files are checked just before their rename, with the upload's last commands (see the header). */
  canWriteIfAbsent(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async write(path: string, content: Readable | Buffer, options: WriteOptions = {}): Promise<Entry> {
    this.warmPool();
    if (Buffer.isBuffer(content) && options.mtimeMs !== undefined && this.finishesPipelined && (content.length > 0 || this.tls === 'none')) {
      const written = await this.writeInOneGo(path, content, options.mtimeMs, options);
      if (written !== undefined) return written;
    }
    const data: Readable = Buffer.isBuffer(content) ? new PassThrough().end(content) : content;
    const { mtimeMs, onBytes, signal } = options;
    let parent: string, temp: string, client: Client;
    try {
      ({ parent, temp } = this.startWrite(path, signal));
      client = await this.acquireForWrite(path);
    } catch (error) {
      data.destroy();
      throw error;
    }

    // Count what passes to the server (onBytes) and remember errors of the source itself, which
    // pass through unchanged (as from the local backend).
    let bytes = 0;
    let sourceError: unknown;
    let aborted = false;
    let sourceEnded = false;
    const emptyCloseDelay = this.emptyTlsUploadDelayMs;
    const counter = new Transform({
      transform(chunk: Buffer | string, _encoding, callback) {
        bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        onBytes?.(bytes);
        callback(null, chunk);
      },
      flush(callback) {
        sourceEnded = true;
        // See EMPTY_TLS_UPLOAD_DELAY_MS: counted from the moment the data connection takes the stream.
        if (bytes === 0 && emptyCloseDelay > 0) whenFlowing(this, () => setTimeout(callback, emptyCloseDelay));
        else callback();
      },
    });
    // Not pipeline(): it would destroy the source with the upload's own error (a dropped data
    // connection), which must not be mistaken for a failure of the source.
    data.on('error', (error) => {
      sourceError ??= error;
      counter.destroy(error);
    });
    counter.once('close', () => {
      if (!data.destroyed) data.destroy();
    });
    data.pipe(counter);
    const onAbort = () => {
      aborted = true;
      counter.destroy(abortErrorOf(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    let uploadStarted = false;
    let uploadSource: Readable = counter;
    let retriedEmpty = false;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.ensureDir(client, parent);
          if (sourceError !== undefined) throw sourceError;
          if (aborted && signal) throw abortErrorOf(signal);
          uploadStarted = true;
          await this.upload(client, uploadSource, temp, parent);
          break;
        } catch (error) {
          const lost = client.closed || (!(error instanceof SyncError) && error !== sourceError && !isAbortError(error) && causeOf(error, 'write').connectionLost);
          const fine = sourceError === undefined && !aborted;
          if (fine && !retriedEmpty && this.tls !== 'none' && bytes === 0 && sourceEnded && !isReplyError(error) && !(error instanceof SyncError)) {
            // An empty file over TLS that the server refused: once more, waiting longer, and wait
            // from now on for this server.
            retriedEmpty = true;
            this.emptyTlsUploadDelayMs = EMPTY_TLS_UPLOAD_DELAY_MS;
            const empty = new PassThrough();
            whenFlowing(empty, () => setTimeout(() => empty.end(), 4 * EMPTY_TLS_UPLOAD_DELAY_MS));
            uploadSource = empty;
          } else if (!lost || uploadSource !== counter || counter.readableDidRead || counter.destroyed || !fine || attempt > this.retriesOnLostConnection) {
            // Otherwise only a connection that was dead before any data was taken from the source
            // (an idle connection the server had closed) is worth another try: nothing is lost.
            throw error;
          }
          this.pool.discard(client);
          if (uploadStarted) await this.removeTemp(undefined, temp);
          uploadStarted = false;
          client = await this.pool.acquire();
        }
      }
      if (sourceError !== undefined) throw sourceError;
      if (aborted && signal) throw abortErrorOf(signal);
      const pipelined = mtimeMs !== undefined && (await this.canFinishPipelined(client));
      if (client.closed) {
        // The server did not answer commands sent ahead (the probe closed the connection): the
        // upload is complete, finish it on another connection.
        this.pool.discard(client);
        client = await this.pool.acquire();
      }
      const stored =
        (pipelined ? await this.finishPipelined(client, temp, path, mtimeMs, bytes, options.ifAbsent === true) : undefined) ??
        (await this.finishStepByStep(client, temp, path, mtimeMs, bytes, options.ifAbsent === true));
      signal?.removeEventListener('abort', onAbort);
      this.pool.release(client);
      return { ...stored, path };
    } catch (error) {
      signal?.removeEventListener('abort', onAbort);
      if (!data.destroyed) data.destroy();
      if (!counter.destroyed) counter.destroy();
      const lost = client.closed || (!(error instanceof SyncError) && (error === sourceError || isAbortError(error) || causeOf(error, 'write').connectionLost));
      if (lost) this.pool.discard(client);
      if (uploadStarted) await this.removeTemp(lost ? undefined : client, temp);
      if (!lost) this.pool.release(client);
      if (sourceError !== undefined) throw sourceError;
      if (aborted && signal) throw abortErrorOf(signal);
      throw ftpError('write', path, this.label, error, 'write', lost);
    }
  }

  /** The checks a write starts with, and its temporary name beside the target. */
  private startWrite(path: string, signal: AbortSignal | undefined): { parent: string; temp: string } {
    assertSafeRelativePath(path);
    if (path === '') throw ftpFail('write', path, this.label, 'it is the root folder');
    signal?.throwIfAborted();
    const parent = parentOf(path);
    return { parent, temp: joinPath(parent, tempName()) };
  }

  private async acquireForWrite(path: string): Promise<Client> {
    try {
      return await this.pool.acquire();
    } catch (error) {
      throw ftpError('write', path, this.label, error, 'write');
    }
  }

  /**
   * STOR into the temporary file. A folder we thought existed may have been removed by someone
   * else: then it is created and the upload tried once more (the server refused before any data).
   */
  private async upload(client: Client, source: Readable, temp: string, parent: string): Promise<void> {
    try {
      await this.stor(client, source, this.abs(temp));
    } catch (error) {
      // Refused before any data, into a folder we had made or seen: make sure it (still) exists, and
      // try once more (a second refusal is the real answer).
      if (!source.readableDidRead && !source.destroyed && isReplyError(error) && (error.code === 550 || error.code === 553) && this.forgetDir(parent)) {
        await this.ensureDir(client, parent);
        await this.stor(client, source, this.abs(temp));
      } else {
        throw error;
      }
    }
  }

  /**
   * Whether a transfer command can go right behind EPSV (withCommandBehindEpsv): this connection
   * has settled on EPSV and the server takes commands sent ahead.
   */
  private canSendBehindEpsv(client: Client): boolean {
    return this.pipelining === 'yes' && client.prepareTransfer === enterPassiveModeIPv6;
  }

  /** basic-ftp's uploadFrom, with STOR behind EPSV where it can go there. */
  private async stor(client: Client, source: Readable, remotePath: string): Promise<void> {
    if (this.canSendBehindEpsv(client)) {
      await withCommandBehindEpsv(client, `STOR ${remotePath}`, () => client.uploadFrom(source, remotePath));
    } else {
      await client.uploadFrom(source, remotePath);
    }
  }

  /** basic-ftp's downloadTo, with RETR behind EPSV where it can go there. */
  private async retr(client: Client, sink: Writable, remotePath: string): Promise<void> {
    if (this.canSendBehindEpsv(client)) {
      await withCommandBehindEpsv(client, `RETR ${remotePath}`, () => client.downloadTo(sink, remotePath));
    } else {
      await client.downloadTo(sink, remotePath);
    }
  }

  /**
   * basic-ftp's list() of the working folder, with the listing command behind EPSV where it can go
   * there and basic-ftp has settled on one ("LIST -a", or "LIST" where that is refused).
   */
  private async listWorkingDir(client: Client): Promise<FileInfo[]> {
    const [command, ...others] = client.availableListCommands;
    if (command !== undefined && others.length === 0 && this.canSendBehindEpsv(client)) {
      return withCommandBehindEpsv(client, command, () => client.list());
    }
    return client.list();
  }

  /**
   * Whether an upload can be finished with pipelined commands: the server takes commands sent ahead
   * (asked once per session with two NOOPs, like fetchTimesPipelined: a server that does not answer
   * them has this connection closed after a few seconds), keeps the times it is given to
   * the second (learnt from the first upload), and answers SIZE and MDTM (no MLST).
   */
  private async canFinishPipelined(client: Client): Promise<boolean> {
    if (!this.finishChecksKnown) return false;
    return this.probePipelining(client);
  }

  /**
   * Whether the server takes commands sent ahead: asked once per session with two NOOPs on
   * `client`; a server that does not answer them has that connection closed after a few seconds.
   */
  private async probePipelining(client: Client): Promise<boolean> {
    if (this.pipelining === 'unknown') {
      this.pipeliningProbe ??= (async () => {
        const timer = setTimeout(() => client.close(), PIPELINE_PROBE_TIMEOUT_MS);
        try {
          await sendPipelined(client, ['NOOP', 'NOOP']);
          this.pipelining = 'yes';
        } catch {
          this.pipelining = 'no';
        } finally {
          clearTimeout(timer);
        }
      })();
      await this.pipeliningProbe;
    }
    return this.pipelining === 'yes';
  }

  /**
   * After an upload: [set the time, SIZE] in one round trip, then [RNFR, RNTO] in another, instead of
   * five. The time the server keeps is the one given, to the second (see canFinishPipelined).
   * Undefined when the first two replies are not the expected ones (nothing renamed yet): the caller
   * then goes step by step. `ifAbsent`: the first round trip also asks SIZE of the target, and a
   * file found there is not replaced (see canWriteIfAbsent).
   */
  private async finishPipelined(client: Client, temp: string, path: string, mtimeMs: number, bytes: number, ifAbsent: boolean): Promise<Entry | undefined> {
    const replies = await sendPipelined(client, this.finishCommands(temp, path, mtimeMs, ifAbsent));
    return this.finishWithReplies(client, replies, temp, path, mtimeMs, bytes);
  }

  /** The checks after an upload, for finishPipelined: [set the time, SIZE] and, for `ifAbsent`, SIZE of the target. */
  private finishCommands(temp: string, path: string, mtimeMs: number, ifAbsent: boolean): string[] {
    const commands = [this.setMtimeCommand(temp, mtimeMs), `SIZE ${this.abs(temp)}`];
    if (ifAbsent) commands.push(`SIZE ${this.abs(path)}`);
    return commands;
  }

  /** finishPipelined from the replies to finishCommands. */
  private async finishWithReplies(client: Client, replies: readonly Reply[], temp: string, path: string, mtimeMs: number, bytes: number): Promise<Entry | undefined> {
    const [set, size, target] = replies as [Reply, Reply, Reply | undefined];
    if (set.code < 200 || set.code >= 300 || size.code !== 213) return undefined;
    const stored = Number.parseInt(size.message.slice(4), 10);
    if (stored !== bytes) throw ftpFail('write', path, this.label, `incomplete upload: the server has ${stored} of ${bytes} bytes`, true);
    // 550 is "no such file" (or a folder, which the rename then refuses); any other answer, a file.
    if (target !== undefined && target.code !== 550) {
      if (target.code === 213) throw new TargetExistsError(path, this.displayName);
      return undefined; // an answer we cannot read: the caller looks step by step
    }
    await this.renameOver(client, temp, path, true);
    return { path, kind: 'file', size: bytes, mtimeMs: Math.floor(mtimeMs / 1000) * 1000 };
  }

  /** The end of an upload one command a round trip: set the time, check the size (and that the target is free), rename. */
  private async finishStepByStep(client: Client, temp: string, path: string, mtimeMs: number | undefined, bytes: number, ifAbsent: boolean): Promise<Entry> {
    if (mtimeMs !== undefined) await this.setMtime(client, temp, mtimeMs);
    const stored = await this.statWith(client, temp);
    if (stored === undefined || stored.kind !== 'file') throw ftpFail('write', path, this.label, 'the uploaded file vanished before it could be renamed into place', true);
    if (stored.size !== bytes) throw ftpFail('write', path, this.label, `incomplete upload: the server has ${stored.size} of ${bytes} bytes`, true);
    if (mtimeMs !== undefined && this.mtimeWrite === 'unknown') this.learnMtimeSupport(stored.mtimeMs, mtimeMs);
    if (ifAbsent && (await this.statWith(client, path)) !== undefined) throw new TargetExistsError(path, this.displayName);
    await this.renameOver(client, temp, path);
    return { ...stored, path };
  }

  /**
   * Whether uploads are finished with pipelined commands (canFinishPipelined), known without asking:
   * what writeInOneGo needs.
   */
  private get finishesPipelined(): boolean {
    return this.finishChecksKnown && this.pipelining === 'yes';
  }

  /** The server keeps the times it is given, to the second, and answers SIZE and MDTM (no MLST). */
  private get finishChecksKnown(): boolean {
    return this.mtimeWrite === 'yes' && this.mtimeReadBackExact && !this.useMlst && this.useSizeMdtm;
  }

  /**
   * A write of bytes held in memory in two round trips: [EPSV, STOR, set the time, SIZE (, SIZE of
   * the target)] in one write (storBehindEpsv), then [RNFR, RNTO]; the server runs the commands in
   * the order of the step-by-step path, only the waits between them are gone. Undefined, with
   * nothing left behind, when this connection cannot do it or the server refused the STOR (a folder
   * removed meanwhile, a dropped idle connection): write() then goes the general way, which knows
   * what to do about those. Once the upload is stored and checked, errors are final, as there.
   */
  private async writeInOneGo(path: string, data: Buffer, mtimeMs: number, options: WriteOptions): Promise<Entry | undefined> {
    const { signal } = options;
    const { parent, temp } = this.startWrite(path, signal);
    const client = await this.acquireForWrite(path);
    let replies: Reply[];
    try {
      await this.ensureDir(client, parent);
      if (!this.canSendBehindEpsv(client)) {
        this.pool.release(client);
        return undefined;
      }
      const commands = this.finishCommands(temp, path, mtimeMs, options.ifAbsent === true);
      const { stor, trailing } = await storBehindEpsv(client, `STOR ${this.abs(temp)}`, data, commands);
      if (stor.code >= 300) {
        if (stor.code === 550 || stor.code === 553) this.forgetDir(parent);
        await this.removeTemp(client, temp);
        this.pool.release(client);
        return undefined;
      }
      replies = trailing;
    } catch (error) {
      if (error instanceof SyncError) {
        this.pool.release(client);
        throw error;
      }
      // The connection failed somewhere between EPSV and the last check: nothing was renamed.
      this.pool.discard(client);
      await this.removeTemp(undefined, temp);
      if (signal?.aborted) throw abortErrorOf(signal);
      return undefined;
    }
    try {
      options.onBytes?.(data.length);
      if (signal?.aborted) throw abortErrorOf(signal);
      const stored = (await this.finishWithReplies(client, replies, temp, path, mtimeMs, data.length)) ?? (await this.finishStepByStep(client, temp, path, mtimeMs, data.length, options.ifAbsent === true));
      this.pool.release(client);
      return stored;
    } catch (error) {
      const lost = client.closed || (!(error instanceof SyncError) && (isAbortError(error) || causeOf(error, 'write').connectionLost));
      if (lost) this.pool.discard(client);
      await this.removeTemp(lost ? undefined : client, temp);
      if (!lost) this.pool.release(client);
      if (signal?.aborted) throw abortErrorOf(signal);
      throw ftpError('write', path, this.label, error, 'write', lost);
    }
  }

  /** Rename the uploaded temporary file over the target (RNFR/RNTO; `pipelined`: in one round trip). */
  private async renameOver(client: Client, temp: string, path: string, pipelined = false): Promise<void> {
    const rnfr = `RNFR ${this.abs(temp)}`;
    const rnto = `RNTO ${this.abs(path)}`;
    const [from, pipelinedTo] = pipelined ? ((await sendPipelined(client, [rnfr, rnto])) as [Reply, Reply]) : [await client.sendIgnoringError(rnfr), undefined];
    // (After a refused RNFR, a pipelined RNTO is refused too: "RNFR first".)
    if (from.code >= 400) throw ftpError('write', path, this.label, replyAsError(from), 'write');
    const to = pipelinedTo ?? (await client.sendIgnoringError(rnto));
    if (to.code < 400) return;
    const existing = await this.statWith(client, path).catch(() => undefined);
    if (existing?.kind === 'dir') throw ftpFail('write', path, this.label, 'a folder is in the way');
    throw ftpError('write', path, this.label, replyAsError(to), 'write');
  }

  /**
   * Best effort: delete the temporary file of a failed upload, on `client` if it still works, else
   * on other connections (idle ones may have died with it). Bounded in time: a server that stopped
   * answering must not hold up the error report. Whatever is left is an engine-owned name that no
   * listing shows.
   */
  private async removeTemp(client: Client | undefined, temp: string): Promise<void> {
    const command = `DELE ${this.abs(temp)}`;
    const attempt = async (): Promise<void> => {
      if (client && !client.closed) {
        try {
          // Any answer settles it: gone, or not ours to delete; another connection would hear the same.
          await client.sendIgnoringError(command);
          return;
        } catch {
          // fall through to another connection
        }
      }
      for (let i = 0; i <= this.retriesOnLostConnection; i++) {
        const other = await this.pool.acquire();
        try {
          let reply = await other.sendIgnoringError(command);
          if (reply.code >= 400) {
            // The session that was writing may not have created the file yet when its connection
            // was cut: look once more a moment later.
            await sleep(250);
            reply = await other.sendIgnoringError(command);
          }
          this.pool.release(other);
          return;
        } catch {
          this.pool.discard(other);
        }
      }
    };
    // The timer is cleared: left pending, it would keep the process alive for the full 10 s.
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, 10_000)));
    try {
      await Promise.race([attempt().catch(() => undefined), limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sets a file's modification time: MFMT, or MDTM with a time argument (vsftpd and others). */
  private async setMtime(client: Client, path: string, mtimeMs: number): Promise<void> {
    if (this.mtimeWrite === 'no') return;
    const reply = await client.sendIgnoringError(this.setMtimeCommand(path, mtimeMs));
    if (reply.code >= 200 && reply.code < 300) return;
    if (this.mtimeWrite === 'unknown') {
      this.mtimeWrite = 'no';
      this.warnNoMtime(`the server refused to set modification times (${replyText(reply.message)})`);
    }
  }

  private setMtimeCommand(path: string, mtimeMs: number): string {
    const stamp = formatFtpTimestamp(mtimeMs);
    return this.features.mfmt ? `MFMT ${stamp} ${this.abs(path)}` : `MDTM ${stamp} ${this.abs(path)}`;
  }

  private learnMtimeSupport(stored: number, wanted: number): void {
    if (Math.floor(stored / 1000) === Math.floor(wanted / 1000)) {
      this.mtimeWrite = 'yes';
      this.mtimeReadBackExact = stored === Math.floor(wanted / 1000) * 1000;
    } else {
      this.mtimeWrite = 'no';
      this.warnNoMtime('the server did not keep the modification time it was given');
    }
  }

  private warnNoMtime(reason: string): void {
    if (this.warnedMtime) return;
    this.warnedMtime = true;
    this.warn?.(`${this.label}: ${reason}; uploaded files get the time of the upload (changes are still detected)`);
  }

  // -------------------------------------------------------------------------------------------
  // Folders

  private forgetDir(dir: string): boolean {
    let forgot = false;
    for (const known of this.knownDirs) {
      if (known === dir || known.startsWith(`${dir}/`)) {
        this.knownDirs.delete(known);
        forgot = true;
      }
    }
    return forgot;
  }

  /**
   * Makes sure a folder (relative) exists, creating missing parents. Returns whether this call
   * created it. The root itself is expected to exist. Parallel uploads into a new folder go over
   * several connections: one of them creates each folder, the others wait for it, and a folder that
   * another client made meanwhile counts as there (its MKD fails, CWD into it works).
   */
  private ensureDir(client: Client, dir: string): Promise<boolean> {
    if (dir === '' || this.knownDirs.has(dir)) return Promise.resolve(false);
    const pending = this.creatingDirs.get(dir);
    // Another connection is on it; if it fails, this one tries for itself.
    if (pending) return pending.then(() => false, () => this.ensureDir(client, dir));
    const creating = this.createDir(client, dir).finally(() => this.creatingDirs.delete(dir));
    this.creatingDirs.set(dir, creating);
    return creating;
  }

  private async createDir(client: Client, dir: string): Promise<boolean> {
    const abs = this.abs(dir);
    const made = await client.sendIgnoringError(`MKD ${abs}`);
    if (made.code < 400) {
      this.knownDirs.add(dir);
      return true;
    }
    if (await this.cwd(client, dir)) {
      this.knownDirs.add(dir);
      return false;
    }
    // Missing parent? Create it (or find it made by another connection), then this one.
    const parent = parentOf(dir);
    if (parent !== '') {
      this.forgetDir(parent);
      await this.ensureDir(client, parent);
      const again = await client.sendIgnoringError(`MKD ${abs}`);
      if (again.code < 400) {
        this.knownDirs.add(dir);
        return true;
      }
      if (await this.cwd(client, dir)) {
        this.knownDirs.add(dir);
        return false;
      }
    }
    const size = this.features.size ? await client.sendIgnoringError(`SIZE ${abs}`) : undefined;
    if (size?.code === 213) throw ftpFail('create folder', dir, this.label, 'a file is in the way');
    throw ftpError('create folder', dir, this.label, replyAsError(made), 'write');
  }

  async mkdir(path: string): Promise<void> {
    assertSafeRelativePath(path);
    await this.withConnection(
      'create folder',
      path,
      'write',
      async (client) => {
        if (path === '') {
          // The root folder itself, with its missing parents (the first sync to a new folder).
          if (await this.cwd(client, '')) return;
          const segments = this.root.split('/').filter((segment) => segment !== '');
          for (let i = 1; i <= segments.length; i++) {
            const prefix = `${this.root.startsWith('/') ? '/' : ''}${segments.slice(0, i).join('/')}`;
            if ((await client.sendIgnoringError(`CWD ${prefix}`)).code < 400) continue;
            const made = await client.sendIgnoringError(`MKD ${prefix}`);
            if (made.code >= 400) throw replyAsError(made);
          }
          return;
        }
        await this.ensureDir(client, path);
      },
      true,
    );
  }

  /** Removes an empty folder. FTP servers answer 550 alike for "not empty", "missing" and "not a folder": all are left alone. */
  async rmdirIfEmpty(path: string): Promise<void> {
    assertSafeRelativePath(path);
    if (path === '') return;
    this.forgetDir(path);
    await this.withConnection(
      'remove folder',
      path,
      'write',
      async (client) => {
        const reply = await client.sendIgnoringError(`RMD ${this.abs(path)}`);
        if (reply.code < 400 || reply.code === 550) return;
        throw replyAsError(reply);
      },
      true,
    );
  }

  async deleteFile(path: string): Promise<void> {
    assertSafeRelativePath(path);
    if (path === '') throw ftpFail('delete', path, this.label, 'it is the root folder');
    await this.withConnection(
      'delete',
      path,
      'write',
      async (client) => {
        const reply = await client.sendIgnoringError(`DELE ${this.abs(path)}`);
        if (reply.code < 400) return;
        const existing = await this.statWith(client, path);
        if (existing === undefined) return; // already gone: not an error
        if (existing.kind === 'dir') throw ftpFail('delete', path, this.label, 'it is a folder, not a file');
        throw replyAsError(reply);
      },
      true,
    );
  }

  /** Moves a file or folder (RNFR/RNTO). Refuses an existing target (checked just before; see the header). */
  async rename(from: string, to: string): Promise<void> {
    assertSafeRelativePath(from);
    assertSafeRelativePath(to);
    const label = [from, to] as const;
    if (from === '' || to === '') throw ftpFail('move', label, this.label, 'the root folder cannot be moved');
    if (to.startsWith(`${from}/`)) throw ftpFail('move', label, this.label, 'a folder cannot be moved into itself');
    await this.withConnection('move', label, 'write', async (client) => {
      const source = await this.statWith(client, from);
      if (source === undefined) throw ftpFail('move', label, this.label, `no such file or folder: ${JSON.stringify(from)}`);
      if (from === to) return;
      const target = await this.statWith(client, to);
      if (target !== undefined) throw ftpFail('move', label, this.label, `the target ${JSON.stringify(to)} already exists`);
      await this.ensureDir(client, parentOf(to));
      const rnfr = await client.sendIgnoringError(`RNFR ${this.abs(from)}`);
      if (rnfr.code >= 400) throw replyAsError(rnfr);
      const rnto = await client.sendIgnoringError(`RNTO ${this.abs(to)}`);
      if (rnto.code >= 400) throw replyAsError(rnto);
      if (source.kind === 'dir') this.forgetDir(from);
    });
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}

/** A reply turned into the error basic-ftp would have thrown, for ftpError(). */
function replyAsError(reply: Reply): Error {
  const error = new Error(reply.message) as Error & { code: number };
  error.name = 'FTPError';
  error.code = reply.code;
  return error;
}

/** The backend module entry point (see registry.ts): kinds 'ftp' and 'ftps'. */
export async function open(target: RemoteHostTarget, options: ConnectOptions): Promise<Backend> {
  return FtpBackend.connect(target, options);
}
