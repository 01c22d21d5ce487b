// Worker-thread entry: content hashes of streams whose chunks the main thread posts (see offThreadHash.ts),
// and of open files it reads itself. Each posted chunk is acknowledged once hashed, with its buffer
// handed back for reuse; the acks are what lets the sender keep its backlog bounded.
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { contentHash, type ContentHash, type HashAlgorithm } from './contentHash';
import type { HashReply, HashRequest } from './offThreadHash';

const hashes = new Map<number, ContentHash>();
/** Files being read, by id; set to true when the main thread discards one. */
const files = new Map<number, { discarded: boolean }>();
const port = parentPort!;
const FILE_CHUNK_BYTES = 1024 * 1024;
/** Chunks read between two turns of the event loop, where posted chunks and discards are taken in. */
const CHUNKS_PER_TURN = 8;

function hashFile(id: number, algorithm: HashAlgorithm, fd: number): void {
  const state = { discarded: false };
  files.set(id, state);
  const hash = contentHash(algorithm);
  const buffer = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
  let position = 0;
  const finish = (reply: HashReply) => {
    files.delete(id);
    port.postMessage(reply);
  };
  const step = () => {
    try {
      for (let i = 0; i < CHUNKS_PER_TURN; i++) {
        if (state.discarded) return finish({ type: 'failed', id, message: 'discarded' });
        const read = fs.readSync(fd, buffer, 0, FILE_CHUNK_BYTES, position);
        if (read === 0) return finish({ type: 'digest', id, hex: hash.digest() });
        hash.update(read === FILE_CHUNK_BYTES ? buffer : buffer.subarray(0, read));
        position += read;
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return finish({ type: 'failed', id, message: (error as Error).message, ...(code !== undefined ? { code } : {}) });
    }
    setImmediate(step);
  };
  step();
}

port.on('message', (message: HashRequest) => {
  if (message.type === 'update') {
    let hash = hashes.get(message.id);
    if (!hash) hashes.set(message.id, (hash = contentHash(message.algorithm)));
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    port.postMessage({ type: 'ack', id: message.id, buffer: message.buffer, length: message.length } satisfies HashReply, [message.buffer]);
  } else if (message.type === 'digest') {
    const hash = hashes.get(message.id) ?? contentHash(message.algorithm);
    hashes.delete(message.id);
    port.postMessage({ type: 'digest', id: message.id, hex: hash.digest() } satisfies HashReply);
  } else if (message.type === 'file') {
    hashFile(message.id, message.algorithm, message.fd);
  } else {
    hashes.delete(message.id);
    const file = files.get(message.id);
    if (file) file.discarded = true;
  }
});
