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
