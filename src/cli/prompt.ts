// Questions to the user on the terminal: passwords (typed without echo) and yes/no confirmations.
// Without a terminal (CI, pipes) nobody can answer: the answer is undefined and the caller fails
// with a clear error instead of hanging.
import * as readline from 'node:readline';
import { Writable } from 'node:stream';

export async function promptOnTerminal(question: string, options: { secret: boolean }): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  let muted = false;
  // Echo goes through this stream, so that a secret answer is not shown while it is typed.
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question.endsWith(' ') ? question : `${question} `, resolve));
    muted = options.secret;
    const value = await answer;
    if (options.secret) process.stderr.write('\n');
    return value;
  } finally {
    rl.close();
  }
}
