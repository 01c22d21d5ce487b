// A copy of a file within one store that has no copy of its own (FTP has no server-side copy): the
// file is read whole first, then written. Never a read and a write of the same store at once: with
// a pool of connections, every connection could end up holding a read whose write waits for a free
// connection, and the run would hang until the data connections time out.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Backend } from '../backends/types';

/** Files up to this size are held in memory on the way; larger ones go through a local temporary file. */
const IN_MEMORY_BYTES = 8 * 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function copyByTransfer(backend: Backend, from: string, to: string, signal?: AbortSignal): Promise<void> {
  const entry = await backend.stat(from);
  const mtime = entry ? { mtimeMs: entry.mtimeMs } : {};
  if (entry && entry.size <= IN_MEMORY_BYTES) {
    const data = backend.readFile ? await backend.readFile(from, signal) : await readAll(await backend.read(from, signal));
    await backend.write(to, data, { ...mtime, size: data.length, ...(signal ? { signal } : {}) });
    return;
  }
  const temp = nodePath.join(os.tmpdir(), `.syncengine-copy-${process.pid}-${randomBytes(6).toString('hex')}`);
  let source: fs.ReadStream | undefined;
  try {
    await pipeline(await backend.read(from, signal), fs.createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
    const size = fs.statSync(temp).size;
    // Opened here, not by the stream: a lazy open would fail (unheard) once the file is removed below.
    source = fs.createReadStream(temp, { fd: fs.openSync(temp, 'r'), highWaterMark: 1024 * 1024 });
    await backend.write(to, source, { ...mtime, size, ...(signal ? { signal } : {}) });
  } finally {
    source?.destroy(); // a write that failed before the end leaves it open, and the removed file with it
    fs.rmSync(temp, { force: true });
  }
}
