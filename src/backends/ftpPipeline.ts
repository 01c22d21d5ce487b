// Command pipelining on a basic-ftp connection: several commands written at once, their replies
// read back in order (RFC 959 servers read commands one line at a time, so a batch costs one round
// trip instead of one per command). basic-ftp sends one command per task and refuses line breaks in
// a command, so the batch is written to the control socket directly while one task collects the
// replies. Used for the per-file MDTM requests of a LIST listing, where a round trip per file was
// most of a no-change sync.
import { FTPError, type Client, type FTPResponse } from 'basic-ftp';

export class PipelineCommandError extends Error {
  constructor(command: string) {
    super(`refusing to send an FTP command that contains a line break or NUL: ${JSON.stringify(command.slice(0, 80))}`);
    this.name = 'PipelineCommandError';
  }
}

/**
 * Sends `commands` in one write and resolves with one reply per command, in order. Error replies
 * (4xx/5xx) are replies like the others, not rejections; a connection error or the control timeout
 * (a server that dropped a command never sends its reply) rejects, and basic-ftp closes the
 * connection then, so no late reply can be taken for another command's.
 */
export function sendPipelined(client: Client, commands: readonly string[]): Promise<FTPResponse[]> {
  for (const command of commands) if (/[\r\n\0]/.test(command)) return Promise.reject(new PipelineCommandError(command));
  if (commands.length === 0) return Promise.resolve([]);
  const replies: FTPResponse[] = [];
  const ftp = client.ftp;
  const task = ftp.handle(undefined, (response, resolver) => {
    if (response instanceof FTPError) replies.push({ code: response.code, message: response.message });
    else if (response instanceof Error) return resolver.reject(response);
    else if (response.code < 200) return; // a preliminary reply; the final one follows
    else replies.push(response);
    if (replies.length === commands.length) resolver.resolve(replies);
  }) as Promise<FTPResponse[]>;
  ftp.log(`> ${commands.length} pipelined: ${commands[0]} …`);
  ftp.socket.write(commands.join('\r\n') + '\r\n', ftp.encoding);
  return task;
}

/** The FTPContext's dispatch of each reply (or socket error) to the running task; protected in its types. */
interface ReplyDispatch {
  _passToHandler(response: FTPResponse | Error): void;
}

/** The FTPContext's handler of control-socket data (chunks are strings: the socket has an encoding). */
interface ControlData {
  _onControlSocketData(chunk: string): void;
  closeWithError(error: Error): void;
}

/** Bound on one reply: a STAT listing of a folder of about 200,000 files. */
const MAX_REPLY_CHARS = 16 * 1024 * 1024;

/**
 * A refusal as basic-ftp hands it (FTPError), without a stack: made in the control socket's data
 * handler, whose frames say nothing, and capturing them costs several times the rest of a reply's
 * handling. Refusals are routine (the SIZE that checks an upload's target is free gets 550 for
 * every new file).
 */
export function replyError(response: FTPResponse): FTPError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new FTPError(response);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Gives `client` a reader of replies that splits lines only where a line break came. basic-ftp's
 * own takes the end of a TCP segment for the end of a line: a one-line reply cut in two ("213 2017"
 * + "0714...") is taken as complete and the rest dropped, and a line of a multi-line reply is cut
 * in two; it also refuses replies over 64 KiB. Commands sent ahead (MDTM batches, STAT listings)
 * get replies long enough to be cut anywhere on a real network. Replies are handed to the running
 * task as basic-ftp hands them (error codes as FTPError). Install before connecting.
 */
export function readRepliesByLine(client: Client): void {
  const ftp = client.ftp as unknown as ControlData & ReplyDispatch;
  let pending = '';
  let group: { code: string; lines: string[]; chars: number } | undefined;
  let socket: unknown;
  const dispatch = (message: string) => {
    const code = Number.parseInt(message.slice(0, 3), 10);
    const response = { code, message };
    ftp._passToHandler(code >= 400 ? replyError(response) : response);
  };
  ftp._onControlSocketData = (chunk: string) => {
    if (client.ftp.socket !== socket) {
      // A new control socket (TLS upgrade, reconnection): nothing carries over.
      socket = client.ftp.socket;
      pending = '';
      group = undefined;
    }
    client.ftp.log(`< ${chunk}`);
    pending += chunk;
    let start = 0;
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n', start)) {
      const line = pending.slice(start, end > start && pending[end - 1] === '\r' ? end - 1 : end);
      start = end + 1;
      if (line.trim() === '') continue;
      if (group === undefined) {
        if (/^\d\d\d-/.test(line)) group = { code: line.slice(0, 3), lines: [line], chars: line.length };
        else if (/^\d\d\d(?: |$)/.test(line)) dispatch(line);
        continue;
      }
      group.lines.push(line);
      group.chars += line.length + 1;
      if (line.startsWith(group.code) && (line.length === 3 || line[3] === ' ')) {
        const message = group.lines.join('\n');
        group = undefined;
        dispatch(message);
      }
    }
    pending = pending.slice(start);
    if ((group?.chars ?? 0) + pending.length > MAX_REPLY_CHARS) ftp.closeWithError(new Error(`FTP control reply longer than ${MAX_REPLY_CHARS} characters`));
  };
}

/**
 * Runs `transfer`, a basic-ftp call that enters passive mode with EPSV and then sends `command`
 * (STOR, RETR, LIST), with `command` written right behind EPSV in the same write: one round trip
 * and one control-socket write fewer per transfer. The server answers EPSV, then takes `command`
 * and waits for the data connection that basic-ftp opens from the EPSV reply, as it would anyway.
 * Replies that come before basic-ftp has set up the task for `command` (the server may answer as
 * soon as the data connection is accepted, or refuse `command` at once) are held back and handed
 * to that task, not dropped. Only for connections whose server is known to take commands sent
 * ahead and to do EPSV. If `command` was written but basic-ftp never came to send it (EPSV
 * refused, no data connection), its reply is still to come and would be taken for another
 * command's: the connection is closed.
 */
export async function withCommandBehindEpsv<T>(client: Client, command: string, transfer: () => Promise<T>): Promise<T> {
  if (/[\r\n\0]/.test(command)) throw new PipelineCommandError(command);
  const ftp = client.ftp;
  const dispatch = ftp as unknown as ReplyDispatch;
  const sent = { state: 'waiting' as 'waiting' | 'ahead' | 'done', epsvAnswered: false };
  const held: (FTPResponse | Error)[] = [];
  const send = ftp.send;
  const pass = dispatch._passToHandler;
  const restore = () => {
    ftp.send = send;
    dispatch._passToHandler = pass;
  };
  dispatch._passToHandler = (response) => {
    if (sent.state === 'ahead' && sent.epsvAnswered) {
      held.push(response);
      return;
    }
    if (sent.state === 'ahead') sent.epsvAnswered = true;
    pass.call(ftp, response);
  };
  ftp.send = (line: string) => {
    if (sent.state === 'waiting' && line === 'EPSV') {
      sent.state = 'ahead';
      ftp.log(`> EPSV, ${command} (pipelined)`);
      ftp.socket.write(`EPSV\r\n${command}\r\n`, ftp.encoding);
    } else if (sent.state === 'ahead' && line === command) {
      // Written already. The task for its replies is set up now: hand it those that came early.
      sent.state = 'done';
      restore();
      if (held.length > 0) queueMicrotask(() => held.forEach((response) => pass.call(ftp, response)));
    } else {
      send.call(ftp, line);
    }
  };
  try {
    return await transfer();
  } finally {
    restore();
    if (sent.state === 'ahead') client.close();
  }
}
