// The base as stored: one row per path, sorted by path, in columns (paths, numbers, hashes) that
// load from one binary file without building an object per row. The engine compares listings with
// it row by row (see settle.ts) and builds BaseEntry objects only for paths that need planning;
// the whole Map is made only when a run changes something.
import type { Base, BaseEntry, SideSnapshot } from './model';
import type { Side } from './options';
import { comparePaths } from './paths';

/** Numbers per row: size, mtimeMs, ino (-1: none) for the source, then for the destination. */
const NUMS = 6;
const HASH_BYTES = 16;
/** Per-row hash flags: which side's hash is stored in the binary column. */
const SOURCE_HASH = 1;
const DESTINATION_HASH = 2;
const MAGIC = 'SEBASE3\n';
const HEX32 = /^[0-9a-f]{32}$/;

export interface BaseFileHeader {
  hashAlgorithm: string;
  pair: { source: string; destination: string };
  savedAt: string;
  /** See StateStore.listedAt. */
  listedAt?: number;
}

export class BaseTable {
  private readonly hashView: Buffer;

  /** Tables are made by fromMap, withChanges, decode and empty. */
  constructor(
    /** Sorted, without duplicates. */
    readonly paths: readonly string[],
    private readonly nums: Float64Array,
    private readonly hashBytes: Uint8Array,
    private readonly hashFlags: Uint8Array,
    /** Hashes that are not 32 hex digits (none with the stores we have): row → [source, destination]. */
    private readonly otherHashes: ReadonlyMap<number, [string | null, string | null]>,
  ) {
    this.hashView = Buffer.from(hashBytes.buffer, hashBytes.byteOffset, hashBytes.byteLength);
  }

  get rows(): number {
    return this.paths.length;
  }

  static empty(): BaseTable {
    return new BaseTable([], new Float64Array(0), new Uint8Array(0), new Uint8Array(0), new Map());
  }

  static fromMap(base: Base): BaseTable {
    const paths = [...base.keys()].sort(comparePaths);
    const builder = new TableBuilder(paths.length);
    for (const p of paths) builder.addEntry(p, base.get(p)!);
    return builder.build();
  }

  /** This table with `changes` applied (undefined: the path's row is removed). Unchanged rows are copied as they are. */
  withChanges(changes: ReadonlyMap<string, BaseEntry | undefined>): BaseTable {
    const changed = [...changes.keys()].sort(comparePaths);
    const builder = new TableBuilder(this.paths.length + changed.length);
    let i = 0;
    for (const p of changed) {
      const start = i;
      while (i < this.paths.length && this.paths[i]! < p) i++;
      this.copyRows(start, i, builder);
      if (i < this.paths.length && this.paths[i] === p) i++;
      const entry = changes.get(p);
      if (entry) builder.addEntry(p, entry);
    }
    this.copyRows(i, this.paths.length, builder);
    return builder.build();
  }

  /** Rows `start` to `end` (exclusive), unchanged, to the end of `builder`: one copy per column. */
  private copyRows(start: number, end: number, builder: TableBuilder): void {
    if (start === end) return;
    const at = builder.appendRows(this.paths.slice(start, end), this.nums.subarray(start * NUMS, end * NUMS), this.hashBytes.subarray(start * 2 * HASH_BYTES, end * 2 * HASH_BYTES), this.hashFlags.subarray(start, end));
    for (const [row, hashes] of this.otherHashes) if (row >= start && row < end) builder.setOtherHashes(at + row - start, hashes);
  }

  /** The row of `path`, or -1 (binary search: the rows are sorted). */
  find(path: string): number {
    let lo = 0;
    let hi = this.paths.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = comparePaths(this.paths[mid]!, path);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  fileSize(i: number, side: Side): number {
    return this.nums[i * NUMS + (side === 'source' ? 0 : 3)]!;
  }

  mtimeMs(i: number, side: Side): number {
    return this.nums[i * NUMS + (side === 'source' ? 1 : 4)]!;
  }

  /** The inode recorded for a side, or -1. */
  ino(i: number, side: Side): number {
    return this.nums[i * NUMS + (side === 'source' ? 2 : 5)]!;
  }

  hasHash(i: number, side: Side): boolean {
    return (this.hashFlags[i]! & (side === 'source' ? SOURCE_HASH : DESTINATION_HASH)) !== 0 || (this.otherHashes.get(i)?.[side === 'source' ? 0 : 1] ?? null) !== null;
  }

  hash(i: number, side: Side): string | undefined {
    const k = side === 'source' ? 0 : 1;
    if (this.hashFlags[i]! & (k === 0 ? SOURCE_HASH : DESTINATION_HASH)) {
      const start = (i * 2 + k) * HASH_BYTES;
      return this.hashView.toString('hex', start, start + HASH_BYTES);
    }
    return this.otherHashes.get(i)?.[k] ?? undefined;
  }

  snapshot(i: number, side: Side): SideSnapshot {
    const s: SideSnapshot = { size: this.fileSize(i, side), mtimeMs: this.mtimeMs(i, side) };
    const hash = this.hash(i, side);
    if (hash !== undefined) s.hash = hash;
    const ino = this.ino(i, side);
    if (ino >= 0) s.ino = ino;
    return s;
  }

  entry(i: number): BaseEntry {
    return { source: this.snapshot(i, 'source'), destination: this.snapshot(i, 'destination') };
  }

  toMap(): Base {
    const base: Base = new Map();
    for (let i = 0; i < this.paths.length; i++) base.set(this.paths[i]!, this.entry(i));
    return base;
  }

  /**
   * The file: magic, a JSON header (with the row count and section sizes), then the paths joined by
   * newlines (store paths never hold control characters), the numbers as float64, the hash flags
   * and the hashes as 16 bytes each. Sections are 8-byte aligned so the numbers are read in place.
   */
  encode(header: BaseFileHeader): Buffer {
    const pathBytes = Buffer.from(this.paths.join('\n'), 'utf8');
    const meta = Buffer.from(
      JSON.stringify({ ...header, version: 3, rows: this.paths.length, pathBytes: pathBytes.length, otherHashes: [...this.otherHashes] }),
      'utf8',
    );
    const parts: Buffer[] = [];
    let length = 0;
    const push = (b: Buffer | Uint8Array | Float64Array) => {
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      parts.push(buf);
      length += buf.length;
      const pad = (8 - (length % 8)) % 8;
      if (pad) {
        parts.push(Buffer.alloc(pad));
        length += pad;
      }
    };
    const metaLength = Buffer.alloc(4);
    metaLength.writeUInt32LE(meta.length);
    push(Buffer.concat([Buffer.from(MAGIC, 'latin1'), metaLength, meta]));
    push(pathBytes);
    push(this.nums);
    push(this.hashFlags);
    push(this.hashBytes);
    return Buffer.concat(parts, length);
  }

  /** Throws on anything but a well-formed file of this format. */
  static decode(data: Buffer): { table: BaseTable; header: BaseFileHeader } {
    if (data.toString('latin1', 0, MAGIC.length) !== MAGIC) throw new Error('not a SyncEngine base file');
    const metaLength = data.readUInt32LE(MAGIC.length);
    const metaStart = MAGIC.length + 4;
    const meta = JSON.parse(data.toString('utf8', metaStart, metaStart + metaLength)) as BaseFileHeader & {
      version: number;
      rows: number;
      pathBytes: number;
      otherHashes: [number, [string | null, string | null]][];
    };
    if (meta.version !== 3) throw new Error(`unknown state version ${meta.version}`);
    const n = meta.rows;
    const align = (x: number) => x + ((8 - (x % 8)) % 8);
    let offset = align(metaStart + metaLength);
    const section = (bytes: number) => {
      if (offset + bytes > data.length) throw new Error('the file is cut short');
      const start = offset;
      offset = align(offset + bytes);
      return start;
    };
    const pathsStart = section(meta.pathBytes);
    const paths = n === 0 ? [] : data.toString('utf8', pathsStart, pathsStart + meta.pathBytes).split('\n');
    if (paths.length !== n) throw new Error(`${paths.length} paths for ${n} rows`);
    for (let i = 1; i < n; i++) if (!(paths[i - 1]! < paths[i]!)) throw new Error('rows out of order');
    const numsStart = section(n * NUMS * 8);
    // Float64Array needs an 8-byte aligned offset into the ArrayBuffer; copy when the Buffer is not.
    const nums =
      (data.byteOffset + numsStart) % 8 === 0
        ? new Float64Array(data.buffer, data.byteOffset + numsStart, n * NUMS)
        : new Float64Array(new Uint8Array(data.subarray(numsStart, numsStart + n * NUMS * 8)).buffer);
    const flagsStart = section(n);
    const hashStart = section(n * 2 * HASH_BYTES);
    const table = new BaseTable(
      paths,
      nums,
      data.subarray(hashStart, hashStart + n * 2 * HASH_BYTES),
      data.subarray(flagsStart, flagsStart + n),
      new Map(meta.otherHashes),
    );
    const listedAt = typeof meta.listedAt === 'number' && Number.isFinite(meta.listedAt) ? { listedAt: meta.listedAt } : {};
    return { table, header: { hashAlgorithm: meta.hashAlgorithm, pair: meta.pair, savedAt: meta.savedAt, ...listedAt } };
  }
}

/** Builds a table row by row, in path order. */
class TableBuilder {
  private readonly paths: string[] = [];
  private readonly nums: Float64Array;
  private readonly hashBytes: Uint8Array;
  private readonly hashView: Buffer;
  private readonly hashFlags: Uint8Array;
  private readonly otherHashes = new Map<number, [string | null, string | null]>();

  constructor(capacity: number) {
    this.nums = new Float64Array(capacity * NUMS);
    this.hashBytes = new Uint8Array(capacity * 2 * HASH_BYTES);
    this.hashView = Buffer.from(this.hashBytes.buffer, this.hashBytes.byteOffset, this.hashBytes.byteLength);
    this.hashFlags = new Uint8Array(capacity);
  }

  addEntry(path: string, entry: BaseEntry): void {
    const i = this.paths.length;
    this.paths.push(path);
    let other: [string | null, string | null] | undefined;
    [entry.source, entry.destination].forEach((s, k) => {
      this.nums[i * NUMS + k * 3] = s.size;
      this.nums[i * NUMS + k * 3 + 1] = s.mtimeMs;
      this.nums[i * NUMS + k * 3 + 2] = s.ino ?? -1;
      if (s.hash === undefined) return;
      if (HEX32.test(s.hash)) {
        this.hashView.write(s.hash, (i * 2 + k) * HASH_BYTES, 'hex');
        this.hashFlags[i]! |= k === 0 ? SOURCE_HASH : DESTINATION_HASH;
      } else {
        other ??= [null, null];
        other[k] = s.hash;
      }
    });
    if (other) this.otherHashes.set(i, other);
  }

  /** Appends rows given as columns; returns the index of the first. */
  appendRows(paths: readonly string[], nums: Float64Array, hashBytes: Uint8Array, hashFlags: Uint8Array): number {
    const at = this.paths.length;
    for (const path of paths) this.paths.push(path); // not push(...paths): tens of thousands of arguments overflow the stack
    this.nums.set(nums, at * NUMS);
    this.hashBytes.set(hashBytes, at * 2 * HASH_BYTES);
    this.hashFlags.set(hashFlags, at);
    return at;
  }

  setOtherHashes(row: number, hashes: [string | null, string | null]): void {
    this.otherHashes.set(row, hashes);
  }

  build(): BaseTable {
    const n = this.paths.length;
    return new BaseTable(this.paths, this.nums.slice(0, n * NUMS), this.hashBytes.slice(0, n * 2 * HASH_BYTES), this.hashFlags.slice(0, n), this.otherHashes);
  }
}
