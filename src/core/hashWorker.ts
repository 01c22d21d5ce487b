// Worker-thread entry: MD5 of streams whose chunks the main thread posts (see offThreadHash.ts).
// Each chunk is acknowledged once hashed, with its buffer handed back for reuse; the acks are what
// lets the sender keep its backlog bounded.
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HashReply, HashRequest } from './offThreadHash';

const hashes = new Map<number, Hash>();
const port = parentPort!;

port.on('message', (message: HashRequest) => {
  if (message.type === 'update') {
    let hash = hashes.get(message.id);
    if (!hash) hashes.set(message.id, (hash = createHash('md5')));
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    port.postMessage({ type: 'ack', id: message.id, buffer: message.buffer, length: message.length } satisfies HashReply, [message.buffer]);
  } else if (message.type === 'digest') {
    const hash = hashes.get(message.id) ?? createHash('md5');
    hashes.delete(message.id);
    port.postMessage({ type: 'digest', id: message.id, hex: hash.digest('hex') } satisfies HashReply);
  } else {
    hashes.delete(message.id);
  }
});
