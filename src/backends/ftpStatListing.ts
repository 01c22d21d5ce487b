// Listing many folders over the control connection: "CWD <folder>" and "STAT ." for each folder,
// pipelined in one write. A LIST needs a data connection of its own (EPSV, connect, transfer,
// close) per folder; STAT sends the same `ls -l` lines inside its reply, so a whole level of the
// tree costs one round trip. vsftpd, ProFTPD and Pure-FTPd answer STAT with a path so.
//
// The lines of a STAT reply carry file names as they are, and a name may hold a line break: a name
// like "x\r\n213 End\r\n250 ..." would end its folder's reply early and make up replies for the
// commands after it, so that later folders got the wrong listings. The batch therefore ends with
// "REST <random number>", whose reply repeats the number (no name can know it), then "REST 0"
// (which cancels it). A batch is accepted only when every reply has the code its command calls
// for and the one for the random REST is a single line with the number: text made up inside a
// reply adds replies (the count would be off at the token) unless it swallows real ones, and the
// only real replies it can swallow to even the count out are the CWD replies of later folders, so
// what such a name can change is its own folder's listing, as it could with LIST.
import { randomInt } from 'node:crypto';

/** One folder's share of a STAT batch. */
export type StatListingReply =
  /** The `ls -l` lines of the folder (without the reply's first and last line). */
  | { kind: 'listing'; text: string }
  /** CWD was refused: no such folder, or no permission. */
  | { kind: 'no-folder'; code: number; message: string };

export type StatBatchResult = { ok: true; folders: StatListingReply[] } | { ok: false; reason: string };

interface Reply {
  code: number;
  message: string;
}

/** A number for the REST that ends a batch: unknown to anyone who names files on the server. */
export function newBatchToken(): string {
  return String(randomInt(100_000_000, 281_474_976_710_655));
}

/** The commands of one batch for these absolute folder paths. */
export function statBatchCommands(absDirs: readonly string[], token: string): string[] {
  const commands: string[] = [];
  for (const dir of absDirs) commands.push(`CWD ${dir}`, 'STAT .');
  commands.push(`REST ${token}`, 'REST 0');
  return commands;
}

/** The lines between a multi-line reply's first and last line ('' for a one-line reply). */
function innerLines(message: string): string {
  const first = message.indexOf('\n');
  const last = message.lastIndexOf('\n');
  return first === -1 || last === first ? '' : message.slice(first + 1, last);
}

/**
 * Checks the replies of statBatchCommands(dirs, token) and takes each folder's listing out of them.
 * Any reply out of place rejects the whole batch: the caller then lists those folders with LIST
 * and does not use the connection again.
 */
export function readStatBatch(replies: readonly Reply[], folders: number, token: string): StatBatchResult {
  if (replies.length !== folders * 2 + 2) return { ok: false, reason: `${replies.length} replies for ${folders * 2 + 2} commands` };
  const rest = replies[folders * 2]!;
  if (rest.code !== 350 || rest.message.includes('\n') || !new RegExp(`(^|\\D)${token}(\\D|$)`).test(rest.message)) {
    return { ok: false, reason: `the REST reply does not repeat its number: ${JSON.stringify(rest.message.slice(0, 80))}` };
  }
  if (replies[folders * 2 + 1]!.code !== 350) return { ok: false, reason: `REST 0 answered ${replies[folders * 2 + 1]!.code}` };
  const result: StatListingReply[] = [];
  for (let i = 0; i < folders; i++) {
    const cwd = replies[i * 2]!;
    const stat = replies[i * 2 + 1]!;
    // 211-213 are the status replies; a listing is always several lines (at least "." and "..").
    if (stat.code < 211 || stat.code > 213) return { ok: false, reason: `STAT answered ${stat.code}: ${JSON.stringify(stat.message.slice(0, 80))}` };
    if (cwd.code === 250) {
      if (!stat.message.includes('\n')) return { ok: false, reason: `STAT answered one line: ${JSON.stringify(stat.message.slice(0, 80))}` };
      result.push({ kind: 'listing', text: innerLines(stat.message) });
    } else if (cwd.code >= 400 && cwd.code < 600) {
      // STAT then described the folder the connection was in before: not used.
      result.push({ kind: 'no-folder', code: cwd.code, message: cwd.message });
    } else {
      return { ok: false, reason: `CWD answered ${cwd.code}` };
    }
  }
  return { ok: true, folders: result };
}
