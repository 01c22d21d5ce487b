// Command pipelining on a basic-ftp connection: several commands written at once, their replies
// read back in order (RFC 959 servers read commands one line at a time, so a batch costs one round
// trip instead of one per command). basic-ftp sends one command per task and refuses line breaks in
// a command, so the batch is written to the control socket directly while one task collects the
// replies. Used for the per-file MDTM requests of a LIST listing, where a round trip per file was
// most of a no-change sync.
import { FTPError, type Client, type FTPResponse } from 'basic-ftp';
import type { TLSSocket } from 'node:tls';

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
  const batch = writeBehindNextEpsv(client, [command], command);
  try {
    return await transfer();
  } finally {
    batch.restore();
    if (batch.state === 'ahead') client.close();
  }
}

/** What writeBehindNextEpsv set up. */
interface EpsvBatch {
  /** 'ahead': written with EPSV, replies after EPSV's held; 'released': handed on (see release). */
  readonly state: 'waiting' | 'ahead' | 'released';
  /** Gives basic-ftp its own send and reply dispatch back; held replies stay held. */
  restore(): void;
  /** restore(), then hands the held replies to the task running at the next microtask. */
  release(): void;
}

/**
 * Hooks `client` so that `lines` are written in the same write as basic-ftp's next EPSV, and the
 * replies after EPSV's (those to `lines`) are held until release(): basic-ftp's passive-mode set-up
 * takes EPSV's reply, and the task for the others is set up only after it. When basic-ftp itself
 * sends `sentByBasicFtp` (the command the batch wrote for it), it is not sent again: the batch is
 * released to the task basic-ftp has just set up for it.
 */
function writeBehindNextEpsv(client: Client, lines: readonly string[], sentByBasicFtp?: string): EpsvBatch {
  const ftp = client.ftp;
  const dispatch = ftp as unknown as ReplyDispatch;
  let state: EpsvBatch['state'] = 'waiting';
  let epsvAnswered = false;
  const held: (FTPResponse | Error)[] = [];
  const send = ftp.send;
  const pass = dispatch._passToHandler;
  const restore = () => {
    ftp.send = send;
    dispatch._passToHandler = pass;
  };
  const release = () => {
    state = 'released';
    restore();
    if (held.length > 0) queueMicrotask(() => held.forEach((response) => pass.call(ftp, response)));
  };
  dispatch._passToHandler = (response) => {
    if (state === 'ahead' && epsvAnswered) {
      held.push(response);
      return;
    }
    if (state === 'ahead') epsvAnswered = true;
    pass.call(ftp, response);
  };
  ftp.send = (line: string) => {
    if (state === 'waiting' && line === 'EPSV') {
      state = 'ahead';
      ftp.log(`> EPSV, ${lines.join(', ')} (pipelined)`);
      ftp.socket.write(['EPSV', ...lines, ''].join('\r\n'), ftp.encoding);
    } else if (state === 'ahead' && sentByBasicFtp !== undefined && line === sentByBasicFtp) {
      release();
    } else {
      send.call(ftp, line);
    }
  };
  return {
    get state() {
      return state;
    },
    restore,
    release,
  };
}

/** What storBehindEpsv heard: STOR's final reply, then one final reply per trailing command. */
export interface StorReplies {
  stor: FTPResponse;
  trailing: FTPResponse[];
}

/**
 * STOR of `data` held in memory, with `trailing` commands (setting the time, SIZE) written in the
 * same write as EPSV and STOR: the server reads them once the transfer is over, so the replies that
 * check the upload need no write and no round trip of their own. The data goes to the data
 * connection in one write: for many small files, a stream pipeline per file (with its
 * AbortController) cost more than the data. Same conditions as withCommandBehindEpsv. Error
 * replies come back as replies; a connection error rejects. Anything that goes wrong after the
 * batch was written and before its replies were read closes the connection, so that no late reply
 * is taken for another command's.
 */
export async function storBehindEpsv(client: Client, command: string, data: Buffer, trailing: readonly string[]): Promise<StorReplies> {
  for (const line of [command, ...trailing]) if (/[\r\n\0]/.test(line)) throw new PipelineCommandError(line);
  const ftp = client.ftp;
  const batch = writeBehindNextEpsv(client, [command, ...trailing]);
  try {
    await client.prepareTransfer(ftp);
  } catch (error) {
    batch.restore();
    if (batch.state !== 'waiting') client.close();
    throw error;
  }
  let stor: FTPResponse | undefined;
  const replies: FTPResponse[] = [];
  let started = false;
  let sent = false;
  const settle = (resolver: { resolve: (value: StorReplies) => void }) => {
    // Data that was started must have left before a success counts (one sooner would be a server's
    // error); after a refusal, what is left of it is dropped with the connection.
    if (stor === undefined || replies.length < trailing.length || (started && !sent && stor.code < 400)) return;
    ftp.dataSocket = undefined;
    resolver.resolve({ stor, trailing: replies });
  };
  const startData = (resolver: { resolve: (value: StorReplies) => void; reject: (error: Error) => void }) => {
    started = true;
    const socket = ftp.dataSocket;
    if (socket === undefined) return resolver.reject(new Error('the server is ready for the upload, but there is no data connection'));
    const go = () =>
      socket.end(data, () => {
        sent = true;
        settle(resolver);
      });
    // Over TLS the data must wait for the handshake (as in basic-ftp's uploadFrom).
    if ('getCipher' in socket && (socket as TLSSocket).getCipher() === undefined) socket.once('secureConnect', go);
    else go();
  };
  batch.release(); // the held replies reach the task set up right below
  const task = ftp.handle(undefined, (response, resolver) => {
    if (response instanceof FTPError) response = { code: response.code, message: response.message };
    else if (response instanceof Error) {
      ftp.dataSocket = undefined;
      return resolver.reject(response);
    }
    if (stor === undefined) {
      if (response.code === 150 || response.code === 125) {
        if (!started) startData(resolver);
        return;
      }
      if (response.code < 200) return;
      stor = response;
    } else if (response.code >= 200) {
      replies.push(response);
    }
    settle(resolver);
  }) as Promise<StorReplies>;
  return task;
}
