// FTP protocol helpers for the FTP/FTPS backend: turning replies and socket failures into
// StorageErrors that name the server, the operation and the cause, and parsing the time stamps
// that servers report (MDTM/MLSx "YYYYMMDDHHMMSS[.sss]" in UTC, and the imprecise dates of LIST).
import { FTPError, parseList, type FileInfo } from 'basic-ftp';
import { StorageError, SyncError } from '../core/errors';
import { describeSubject, type Subject } from './subject';

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isAbortError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'AbortError';
}

/** A reply of the server that is an error (4xx/5xx), as basic-ftp reports it. */
export function isReplyError(error: unknown): error is FTPError {
  return error instanceof FTPError || (error instanceof Error && error.name === 'FTPError' && typeof (error as { code?: unknown }).code === 'number');
}

/** The first line of a server reply, without the trailing CR/LF, shortened for messages. */
export function replyText(message: string): string {
  const line = message.split(/\r?\n/)[0]?.trim() ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

const SOCKET_CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the server',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection broken',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host is down',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary failure)',
  EADDRNOTAVAIL: 'address not available',
};

/** Codes of certificate verification failures (Node's TLS layer). */
const CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

export interface Cause {
  /** The cause in words, with the server's reply or the socket error in parentheses. */
  text: string;
  /** Worth retrying: the connection failed, or the server reported a temporary condition. */
  transient: boolean;
  /** The connection can no longer be used (it failed or the server is closing it). */
  connectionLost: boolean;
}

/** What kind of command failed: it decides how an ambiguous 550 is worded. */
export type CommandKind = 'read' | 'write' | 'list';

/** The cause of a failure, in words. `kind` words the ambiguous replies (550). */
export function causeOf(error: unknown, kind: CommandKind): Cause {
  if (isReplyError(error)) {
    const code = error.code;
    const reply = `${replyText(error.message)}`;
    const say = (text: string, transient = false, connectionLost = false): Cause => ({ text: `${text} (server replied: ${reply})`, transient, connectionLost });
    switch (code) {
      case 421:
        return say('the server is closing the connection', true, true);
      case 425:
        return say('the server cannot open a data connection (passive mode blocked by a firewall or NAT?)', true);
      case 426:
        return say('the data connection was closed and the transfer aborted', true);
      case 450:
        return say('the file is busy or temporarily unavailable', true);
      case 451:
        // vsftpd and others answer a failed STOR with 451 ("Failure writing to local file"), for
        // a full disk as for an I/O error: 4xx means "try again later" (RFC 959).
        return say(kind === 'write' ? 'the server failed writing the file (disk full, or an I/O error on the server)' : 'the server had a local error while processing', true);
      case 452:
      case 552:
        return say('disk full or storage quota exceeded');
      case 530:
        return say('not logged in');
      case 532:
        return say('the server needs an account for this');
      case 534:
      case 522:
      case 533:
        return say('the server refused the TLS protection level');
      case 500:
      case 501:
      case 502:
      case 504:
        return say('the server does not support this command');
      case 553:
        return say(kind === 'write' ? 'permission denied or name not allowed' : 'name not allowed');
      case 550:
        return say(kind === 'write' ? 'permission denied, or a parent folder is missing' : kind === 'list' ? 'no such folder, or permission denied' : 'no such file, or permission denied');
      default:
        return say(code >= 500 ? 'the server refused the command' : 'the server reported a temporary failure', code < 500);
    }
  }
  if (error instanceof StorageError) return { text: error.message, transient: error.transient, connectionLost: false };
  if (error instanceof SyncError) return { text: error.message, transient: false, connectionLost: false };
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code !== undefined && CERT_CODES.has(code)) {
    return {
      text: `TLS failure: the server's certificate is not trusted (${message}). If this is your own server with a self-signed certificate, allow untrusted certificates for this target; never do that on a network you do not control`,
      transient: false,
      connectionLost: true,
    };
  }
  if ((code !== undefined && (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) || /\bSSL\b|\bTLS\b|wrong version number|handshake/i.test(message)) {
    return { text: `TLS failure: ${message}`, transient: false, connectionLost: true };
  }
  if (code !== undefined && SOCKET_CAUSES[code] !== undefined) {
    return { text: `${SOCKET_CAUSES[code]} (${code})`, transient: code !== 'ENOTFOUND', connectionLost: true };
  }
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return { text: `connection lost (the data connection closed early)`, transient: true, connectionLost: true };
  if (/^Timeout/i.test(message)) return { text: `timed out (${message})`, transient: true, connectionLost: true };
  if (/FIN packet|closed connection|Socket closed|Client is closed|closed client|connection/i.test(message)) {
    return { text: `connection lost (${message})`, transient: true, connectionLost: true };
  }
  // Anything else (a listing basic-ftp cannot parse, an unexpected reply): the session state is
  // unknown, so the connection is replaced, but retrying is unlikely to help.
  return { text: message, transient: false, connectionLost: true };
}

/**
 * A StorageError naming the operation, the path(s), the server and the cause. `connectionLost`:
 * the connection was found closed after the failure, which makes any failure other than a TLS or
 * certificate problem worth retrying.
 */
export function ftpError(operation: string, path: Subject | undefined, server: string, error: unknown, kind: CommandKind, connectionLost = false): Error {
  if (error instanceof SyncError) return error;
  if (isAbortError(error)) return error as Error;
  const cause = causeOf(error, kind);
  const what = path === undefined ? '' : ` ${describeSubject(path)}`;
  const transient = cause.transient || (connectionLost && !isReplyError(error) && !cause.text.startsWith('TLS failure'));
  return new StorageError(`Cannot ${operation}${what} on ${server}: ${cause.text}`, transient, { cause: error });
}

/** A StorageError for a failure we detected ourselves (no server reply involved). */
export function ftpFail(operation: string, path: Subject, server: string, cause: string, transient = false): StorageError {
  return new StorageError(`Cannot ${operation} ${describeSubject(path)} on ${server}: ${cause}`, transient);
}

// ---------------------------------------------------------------------------------------------
// Time stamps

/**
 * "YYYYMMDDHHMMSS[.sss]" (RFC 3659: MDTM replies and the MLSx "modify" fact, in UTC) to epoch
 * milliseconds; undefined when it is not in that form.
 */
export function parseFtpTimestamp(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) return undefined;
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000 + 1e-6);
  const value = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, ms);
  return Number.isFinite(value) ? value : undefined;
}

/** Epoch milliseconds to "YYYYMMDDHHMMSS" in UTC (whole seconds, rounded down), for MFMT and MDTM. */
export function formatFtpTimestamp(mtimeMs: number): string {
  const d = new Date(Math.floor(mtimeMs / 1000) * 1000);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
}

/** The time stamp of an MDTM reply ("213 20240102030405"), or undefined. */
export function parseMdtmReply(message: string): number | undefined {
  const m = /^213[ -](\S+)/.exec(message.trim());
  return m ? parseFtpTimestamp(m[1]!) : undefined;
}

const MONTHS: Readonly<Record<string, number>> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };

/**
 * The date of a LIST line as basic-ftp keeps it (`FileInfo.rawModifiedAt`), taken as UTC (servers
 * such as vsftpd list in UTC unless told otherwise; only ever compared with dates of the same
 * server). Unix style: "Nov 22 06:48" (recent: minute precision, the year inferred as the latest
 * that is not in the future), "Jan 02 2020" (older than six months: day precision),
 * "2020-01-02 06:48"; DOS style: "01-02-20 06:48AM". Undefined when the format is unknown.
 * Precision is a minute at best: LIST alone cannot tell two versions of a file apart that have
 * the same size and were written within the same minute.
 */
export function parseListDate(raw: string, now: number = Date.now()): number | undefined {
  return parseListDateRange(raw, now)?.start;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/**
 * The times a LIST date stands for (see parseListDate): from `start` up to, not including, `end`
 * (a minute, or a day for dates shown without a time).
 */
export function parseListDateRange(raw: string, now: number = Date.now()): { start: number; end: number } | undefined {
  const minute = (start: number) => ({ start, end: start + MINUTE_MS });
  const day = (start: number) => ({ start, end: start + DAY_MS });
  const text = raw.trim().replace(/\s+/g, ' ');
  let m = /^([A-Za-z]{3}) (\d{1,2}) (\d{1,2}):(\d{2})$/.exec(text);
  if (m) {
    const month = MONTHS[m[1]!.toLowerCase()];
    if (month === undefined) return undefined;
    const thisYear = new Date(now).getUTCFullYear();
    let value = Date.UTC(thisYear, month, +m[2]!, +m[3]!, +m[4]!);
    // A date more than a day ahead belongs to last year (ls shows recent dates without a year).
    if (value > now + DAY_MS) value = Date.UTC(thisYear - 1, month, +m[2]!, +m[3]!, +m[4]!);
    return minute(value);
  }
  m = /^([A-Za-z]{3}) (\d{1,2}) (\d{4})$/.exec(text);
  if (m) {
    const month = MONTHS[m[1]!.toLowerCase()];
    return month === undefined ? undefined : day(Date.UTC(+m[3]!, month, +m[2]!));
  }
  m = /^(\d{1,2}) ([A-Za-z]{3}) (?:(\d{4})|(\d{1,2}):(\d{2}))$/.exec(text);
  if (m) {
    const month = MONTHS[m[2]!.toLowerCase()];
    if (month === undefined) return undefined;
    if (m[3] !== undefined) return day(Date.UTC(+m[3], month, +m[1]!));
    return parseListDateRange(`${m[2]} ${m[1]} ${m[4]}:${m[5]}`, now);
  }
  m = /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})$/.exec(text);
  if (m) return minute(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!));
  m = /^(\d{1,2})-(\d{1,2})-(\d{2}|\d{4}) (\d{1,2}):(\d{2}) ?([AaPp][Mm])?$/.exec(text);
  if (m) {
    let year = +m[3]!;
    if (m[3]!.length === 2) year += year < 70 ? 2000 : 1900;
    let hour = +m[4]!;
    const half = m[6]?.toLowerCase();
    if (half === 'pm' && hour < 12) hour += 12;
    if (half === 'am' && hour === 12) hour = 0;
    return minute(Date.UTC(year, +m[1]! - 1, +m[2]!, hour, +m[5]!));
  }
  return undefined;
}

/**
 * The facts line of an MLST reply ("250-...\n type=file;size=5;modify=...; /path\n250 End"), with
 * the path replaced by a plain name so that a listing parser takes it; undefined if there is none.
 */
export function mlstFactsLine(message: string): string | undefined {
  const lines = message.split(/\r?\n/);
  for (const line of lines.slice(1)) {
    if (/^\d{3}[ -]/.test(line)) continue;
    const text = line.replace(/^ /, '');
    const space = text.indexOf(' ');
    if (space <= 0 || !text.slice(0, space).includes('=')) continue;
    return `${text.slice(0, space)} entry`;
  }
  return undefined;
}

/** Lines at the end of a listing that no listing format knows, dropped at most (see parseListTolerant). */
const MAX_UNKNOWN_TRAILING_LINES = 8;

/**
 * basic-ftp's parseList, which takes the listing's format from its last line, tolerating a few
 * last lines in no known format: a file name with line breaks in it ends a listing so. Those lines
 * name no entry; a listing that still has no known format is an error, never an empty folder.
 */
export function parseListTolerant(raw: string): FileInfo[] {
  const lines = raw.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  let firstError: unknown;
  for (let dropped = 0; dropped <= MAX_UNKNOWN_TRAILING_LINES && dropped < lines.length; dropped++) {
    try {
      const files = parseList(lines.slice(0, lines.length - dropped).join('\n'));
      // Lines dropped, nothing left that names an entry: the format is unknown after all.
      if (dropped === 0 || files.length > 0) return files;
    } catch (error) {
      firstError ??= error;
    }
  }
  if (firstError !== undefined) throw firstError;
  return [];
}

