// The content hash of a large transfer, computed on a worker thread. MD5 takes about 1.5 ms per MiB;
// done between a transfer's reads and writes it stopped the transfer each time (a 512 MiB FTP
// upload took 2.4 s where the bare upload takes 0.6 s; 2.05 s with the hash beside it, on two
// cores shared with the server). Small files keep hashing on this thread: messages would cost
// more than they save. A local file is best read by the worker itself (hashOfOpenFile): copying
// every chunk to hand it over cost this thread as much as the upload's own reads.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { Worker } from 'node:worker_threads';
import { contentHash, type HashAlgorithm } from './contentHash';

export type HashRequest =
  | { type: 'update'; id: number; algorithm: HashAlgorithm; buffer: ArrayBuffer; length: number }
  | { type: 'digest'; id: number; algorithm: HashAlgorithm }
  | { type: 'discard'; id: number }
  | { type: 'file'; id: number; algorithm: HashAlgorithm; fd: number };
/**
 * An ack hands the buffer back for reuse: fresh memory for every chunk cost more in page faults than
 * the hashing saved. A file request ends with a digest or a failure (also when it was discarded).
 */
export type HashReply =
  | { type: 'ack'; id: number; buffer: ArrayBuffer; length: number }
  | { type: 'digest'; id: number; hex: string }
  | { type: 'failed'; id: number; message: string; code?: string };

/** Streams at least this large are hashed on the worker. */
export const OFF_THREAD_MIN_BYTES = 8 * 1024 * 1024;
/** Posted but not yet hashed: beyond this, update() asks the caller to wait (bounded memory). */
const MAX_BACKLOG_BYTES = 32 * 1024 * 1024;
/** Size of the reused buffers; larger chunks are posted in pieces of this size. */
const BUFFER_BYTES = 1024 * 1024;

/** The worker script sits beside this module (dist/ in the bundle, out/src/core/ in tests). */
const WORKER_FILE = nodePath.join(__dirname, 'hashWorker.js');

export interface StreamHasher {
  /** Adds a chunk. A promise means: wait for it before the next chunk (the worker is behind). */
  update(chunk: Buffer): Promise<void> | undefined;
  /** The hex digest of everything added. */
  digest(): Promise<string>;
  /** Drops the state of a stream that will not be finished. */
  discard(): void;
}

/** A hasher for a stream of `size` bytes: on the worker when large, on this thread otherwise. */
export function streamHasher(size: number, algorithm: HashAlgorithm): StreamHasher {
  if (size >= OFF_THREAD_MIN_BYTES) {
    const worker = HashWorker.get();
    if (worker) return worker.open(algorithm);
  }
  const hash = contentHash(algorithm);
  return {
    update: (chunk) => void hash.update(chunk),
    digest: () => Promise.resolve(hash.digest()),
    discard: () => undefined,
  };
}

/**
 * The hash of the file open as `fd` (read from its start to its end), read and hashed on the worker.
 * Undefined where no worker can be started. The caller closes `fd`, but only once the promise has
 * settled: until then the worker may be reading it. An abort stops the reading within a chunk.
 */
export function hashOfOpenFile(fd: number, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> | undefined {
  return HashWorker.get()?.hashFile(fd, algorithm, signal);
}

interface Stream {
  backlog: number;
  waiting: (() => void) | undefined;
  digest: { resolve: (hex: string) => void; reject: (error: Error) => void } | undefined;
}

class HashWorker {
  private static instance: HashWorker | undefined;
  private static unavailable = false;
  private nextId = 1;
  private readonly streams = new Map<number, Stream>();
  private readonly spare: ArrayBuffer[] = [];
  /** Set once the worker failed: this instance takes no more work. */
  private failure: Error | undefined;

  /** The shared worker, started on first use; undefined where none can be started. */
  static get(): HashWorker | undefined {
    if (HashWorker.unavailable) return undefined;
    if (!HashWorker.instance) {
      if (!fs.existsSync(WORKER_FILE)) {
        HashWorker.unavailable = true;
        return undefined;
      }
      try {
        HashWorker.instance = new HashWorker(new Worker(WORKER_FILE));
      } catch {
        HashWorker.unavailable = true;
        return undefined;
      }
    }
    return HashWorker.instance;
  }

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: HashReply) => this.onReply(reply));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`the hashing worker stopped (exit code ${code})`)));
    // Held only while a stream is open: idle, it must not keep the process alive; busy, it must
    // (a digest may be all the process still waits for). After the listeners: they ref it again.
    worker.unref();
  }

  private opened(id: number, stream: Stream): void {
    if (this.streams.size === 0) this.worker.ref();
    this.streams.set(id, stream);
  }

  private closed(id: number): boolean {
    const had = this.streams.delete(id);
    if (had && this.streams.size === 0) this.worker.unref();
    return had;
  }

  private onReply(reply: HashReply): void {
    const stream = this.streams.get(reply.id);
    if (reply.type === 'ack') this.recycle(reply.buffer);
    if (!stream) return;
    if (reply.type === 'ack') {
      stream.backlog -= reply.length;
      if (stream.waiting && stream.backlog <= MAX_BACKLOG_BYTES / 2) {
        const resume = stream.waiting;
        stream.waiting = undefined;
        resume();
      }
    } else if (reply.type === 'digest') {
      this.closed(reply.id);
      stream.digest?.resolve(reply.hex);
    } else {
      this.closed(reply.id);
      stream.digest?.reject(Object.assign(new Error(reply.message), reply.code !== undefined ? { code: reply.code } : {}));
    }
  }

  /** Keeps a handed-back buffer for the next chunks, up to what a full backlog of two streams needs. */
  private recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength === BUFFER_BYTES && this.spare.length < (2 * MAX_BACKLOG_BYTES) / BUFFER_BYTES) this.spare.push(buffer);
  }

  /** Every stream in progress fails (its transfer reports the error); the next one starts a new worker. */
  private fail(error: Error): void {
    if (HashWorker.instance === this) HashWorker.instance = undefined;
    for (const stream of this.streams.values()) {
      stream.waiting?.();
      stream.digest?.reject(error);
    }
    this.streams.clear();
    this.worker.unref();
    this.failure = error;
  }

  hashFile(fd: number, algorithm: HashAlgorithm, signal?: AbortSignal): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<string>((resolve, reject) => {
      const stream: Stream = { backlog: 0, waiting: undefined, digest: undefined };
      const abort = () => this.worker.postMessage({ type: 'discard', id } satisfies HashRequest);
      const settle = () => signal?.removeEventListener('abort', abort);
      stream.digest = {
        resolve: (hex) => {
          settle();
          resolve(hex);
        },
        // Settled only by the worker's last word on it (or its failure): the fd is not in use after.
        reject: (error) => {
          settle();
          reject(signal?.aborted ? signal.reason : error);
        },
      };
      this.opened(id, stream);
      this.worker.postMessage({ type: 'file', id, algorithm, fd } satisfies HashRequest);
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
    });
  }

  open(algorithm: HashAlgorithm): StreamHasher {
    const id = this.nextId++;
    const stream: Stream = { backlog: 0, waiting: undefined, digest: undefined };
    this.opened(id, stream);
    const post = (message: HashRequest, transfer?: ArrayBuffer[]) => this.worker.postMessage(message, transfer);
    return {
      update: (chunk) => {
        if (this.failure) return undefined; // digest() reports it
        // A copy to hand over (the chunk itself goes on with the transfer), in a reused buffer.
        for (let offset = 0; offset < chunk.length; offset += BUFFER_BYTES) {
          const piece = chunk.subarray(offset, offset + BUFFER_BYTES);
          const buffer = this.spare.pop() ?? new ArrayBuffer(BUFFER_BYTES);
          new Uint8Array(buffer, 0, piece.length).set(piece);
          post({ type: 'update', id, algorithm, buffer, length: piece.length }, [buffer]);
        }
        stream.backlog += chunk.length;
        if (stream.backlog <= MAX_BACKLOG_BYTES) return undefined;
        return new Promise<void>((resolve) => (stream.waiting = resolve));
      },
      digest: () => {
        if (this.failure) return Promise.reject(this.failure);
        return new Promise<string>((resolve, reject) => {
          stream.digest = { resolve, reject };
          post({ type: 'digest', id, algorithm });
        });
      },
      discard: () => {
        if (!this.closed(id) || this.failure) return;
        post({ type: 'discard', id });
      },
    };
  }
}
