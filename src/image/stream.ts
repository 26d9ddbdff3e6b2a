// Framing of the image stream. A stream is the magic, then records:
//   frame header: u32 type | u32 payload length | u32 crc | u32 reserved (0)
//   payload:      the record (schema-encoded), or for PAGES a 16-byte prefix
//                 (u64 address | u32 page count | u32 0) and the page bytes.
// The crc is CRC-32C of the payload; for PAGES it is computed over the page
// bytes first and then the prefix (so the native reader can checksum pages as
// it reads them). The trailer counts the records and pages and carries a
// CRC-32C chained over every frame header, so a dropped, duplicated or
// reordered record is caught even when each record is intact.
import { native } from '../native/addon.js';
import { ImageError } from '../util/errors.js';
import {
  decodeRecord, encodeRecord, IMAGE_MAGIC, PAGE_SIZE, RecordType, recordName,
  type RecordTypeId, type TrailerRecord,
} from './records.js';

const FRAME = 16;
const PAGES_PREFIX = 16;
const MAX_META = 16 << 20;
export const MAX_PAGES_RECORD = 64 << 20;

export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
  /** Makes what was written so far durable, if the sink keeps anything. */
  sync?(): Promise<void>;
}

export class ImageWriter {
  private records = 0;
  private pages = 0;
  private pageBytes = 0n;
  private chain = 0;
  bytesWritten = 0;

  constructor(private readonly sink: ByteSink) {}

  async start(): Promise<void> {
    await this.emit(Buffer.from(IMAGE_MAGIC));
  }

  private async emit(b: Buffer): Promise<void> {
    this.bytesWritten += b.length;
    await this.sink.write(b);
  }

  private frame(type: number, len: number, crc: number): Buffer {
    const f = Buffer.alloc(FRAME);
    f.writeUInt32LE(type, 0);
    f.writeUInt32LE(len, 4);
    f.writeUInt32LE(crc, 8);
    this.chain = native.crc32c(f, this.chain);
    this.records++;
    return f;
  }

  async record(type: Exclude<RecordTypeId, typeof RecordType.PAGES | typeof RecordType.TRAILER>, value: object): Promise<void> {
    const payload = encodeRecord(type, value);
    await this.emit(Buffer.concat([this.frame(type, payload.length, native.crc32c(payload)), payload]));
  }

  /** data: whole pages starting at addr; dataCrc: CRC-32C of data (computed by the reader). */
  async pagesRecord(addr: number, data: Buffer, dataCrc?: number): Promise<void> {
    if (data.length % PAGE_SIZE || addr % PAGE_SIZE || data.length > MAX_PAGES_RECORD) throw new Error('pagesRecord: unaligned or oversized');
    const prefix = Buffer.alloc(PAGES_PREFIX);
    prefix.writeBigUInt64LE(BigInt(addr), 0);
    prefix.writeUInt32LE(data.length / PAGE_SIZE, 8);
    const crc = native.crc32c(prefix, dataCrc ?? native.crc32c(data));
    await this.emit(Buffer.concat([this.frame(RecordType.PAGES, PAGES_PREFIX + data.length, crc), prefix]));
    await this.emit(data);
    this.pages += data.length / PAGE_SIZE;
    this.pageBytes += BigInt(data.length);
  }

  async finish(): Promise<TrailerRecord> {
    const t: TrailerRecord = { records: this.records, pages: this.pages, pageBytes: this.pageBytes, chainCrc: this.chain };
    const payload = encodeRecord(RecordType.TRAILER, t);
    await this.emit(Buffer.concat([this.frame(RecordType.TRAILER, payload.length, native.crc32c(payload)), payload]));
    return t;
  }
}

// How a source's chunks may be used (set with recyclingSource and
// withTransientPages, read by readImage).
const SOURCE_FLAGS = Symbol('crmigrate.imageSourceFlags');
interface SourceFlags {
  /** The source reuses its chunk buffers: a chunk stays valid only until the
   * source has been pulled twice more. */
  recycles?: boolean;
  /** The stream is a file the reader may map instead of pulling chunks. */
  mapped?: MappedImage;
  /** The consumer is done with the data of each PAGES item before it resumes
   * the reader, which may then hand out data in buffers it reuses. */
  transientPages?: boolean;
}
type FlaggedSource = AsyncIterable<Buffer> & { [SOURCE_FLAGS]?: SourceFlags };

const flagsOf = (source: AsyncIterable<Buffer>): SourceFlags => (source as FlaggedSource)[SOURCE_FLAGS] ?? {};

function withFlags(source: AsyncIterable<Buffer>, more: SourceFlags): AsyncIterable<Buffer> {
  const flagged: FlaggedSource = { [Symbol.asyncIterator]: () => source[Symbol.asyncIterator]() };
  flagged[SOURCE_FLAGS] = { ...flagsOf(source), ...more };
  return flagged;
}

/** An image file read in place (see files.ts). */
export interface MappedImage {
  readonly size: number;
  /** The open file (a reader of its own may map it too). */
  readonly fd: number;
  /** Bytes [offset, offset+len) of the file; they stay valid while referenced. */
  view(offset: number, len: number): Buffer;
  /** Maps the pages of a view now (one call instead of a fault per page). */
  populate(view: Buffer): void;
  /** The reader is done with every byte before offset: their pages may leave memory. */
  release(offset: number): void;
  close(): void;
}

/** Marks a source that can be read as a mapped file (see SourceFlags.mapped). */
export const mappedSource = (source: AsyncIterable<Buffer>, mapped: MappedImage): AsyncIterable<Buffer> => withFlags(source, { mapped });

/** The mapped file behind a source, if it is one. */
export const mappedImageOf = (source: AsyncIterable<Buffer>): MappedImage | undefined => flagsOf(source).mapped;

/** Marks a source that reuses its chunk buffers (see SourceFlags.recycles). */
export const recyclingSource = (source: AsyncIterable<Buffer>): AsyncIterable<Buffer> => withFlags(source, { recycles: true });

/**
 * For a consumer of readImage that has written out (or copied) the data of a
 * PAGES item before it asks for the next item: the reader then never
 * allocates per record, and memory stays flat whatever the image size.
 */
export const withTransientPages = (source: AsyncIterable<Buffer>): AsyncIterable<Buffer> => withFlags(source, { transientPages: true });

/**
 * Pulls exact byte counts out of an async stream of chunks. It holds on to
 * one chunk only (bytes that span chunks are copied as they arrive), so it
 * works with sources that reuse their buffers.
 */
class ByteQueue {
  private cur: Buffer = Buffer.alloc(0);
  private pos = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  /** Makes a chunk with unread bytes current; false at the end of the stream. */
  private async pull(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.cur = r.value;
      this.pos = 0;
    }
    return true;
  }

  /**
   * n bytes, or null at a clean end of stream (no byte left). The result is
   * a view into the current chunk when the bytes lie in it (valid until the
   * source is pulled again, unless `own`), else they are copied into
   * into(n) or a new buffer.
   */
  async read(n: number, what: string, opts: { own?: boolean; into?: (n: number) => Buffer } = {}): Promise<Buffer | null> {
    if (n === 0) return Buffer.alloc(0);
    if (!(await this.pull())) return null;
    if (this.cur.length - this.pos >= n) {
      const view = this.cur.subarray(this.pos, this.pos + n);
      this.pos += n;
      return opts.own ? Buffer.from(view) : view;
    }
    const out = opts.into ? opts.into(n) : Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      if (!(await this.pull())) throw new ImageError(`image truncated inside ${what} (${off} of ${n} bytes)`);
      const take = Math.min(this.cur.length - this.pos, n - off);
      this.cur.copy(out, off, this.pos, this.pos + take);
      this.pos += take;
      off += take;
    }
    return out;
  }

  release(): void {}

  /** Where the next byte lies in a file: unknown for a stream. */
  position(): number | undefined {
    return undefined;
  }

  /** Lets the source go (it is not read to its end after an error). */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}

/** The same over a mapped file: every read is a view, nothing is copied. */
class MappedQueue {
  private pos = 0;
  constructor(private readonly m: MappedImage) {}

  async read(n: number, what: string, opts: { own?: boolean } = {}): Promise<Buffer | null> {
    if (n === 0) return Buffer.alloc(0);
    const left = this.m.size - this.pos;
    if (left <= 0) return null;
    if (left < n) {
      this.pos = this.m.size;
      throw new ImageError(`image truncated inside ${what} (${left} of ${n} bytes)`);
    }
    const view = this.m.view(this.pos, n);
    this.pos += n;
    // Mapped at once: no page fault per page, and a file that shrank under
    // us gives an error here rather than SIGBUS on access.
    this.m.populate(view);
    return opts.own ? Buffer.from(view) : view;
  }

  position(): number | undefined {
    return this.pos;
  }

  /** Called when the consumer has resumed the reader: everything read so far may leave memory. */
  release(): void {
    this.m.release(this.pos);
  }

  async close(): Promise<void> {
    this.m.close();
  }
}

type Queue = ByteQueue | MappedQueue;

export type ImageItem =
  | { type: typeof RecordType.PAGES; addr: number; data: Buffer; fileOffset?: number }
  | { type: Exclude<RecordTypeId, typeof RecordType.PAGES>; value: Record<string, unknown> };

/**
 * Decodes and validates an image stream record by record. Every record is
 * checked (frame, checksum, schema, meaning) before it is yielded; the
 * trailer is checked last, so a consumer must not commit to anything until
 * the generator has finished without throwing. The data of a PAGES item is
 * the consumer's to keep, unless the source was wrapped in
 * withTransientPages: then it is valid only until the generator is resumed.
 */
export async function* readImage(source: AsyncIterable<Buffer>): AsyncGenerator<ImageItem, TrailerRecord> {
  const flags = flagsOf(source);
  const q: Queue = flags.mapped ? new MappedQueue(flags.mapped) : new ByteQueue(source[Symbol.asyncIterator]());
  try {
    return yield* readRecords(q, flags);
  } finally {
    await q.close().catch(() => undefined);
  }
}

async function* readRecords(q: Queue, flags: SourceFlags): AsyncGenerator<ImageItem, TrailerRecord> {
  // Page data: with transient pages, a view of the source's chunk or one
  // reused buffer; otherwise a buffer the consumer may keep.
  let scratch = Buffer.alloc(0);
  const pageOpts = flags.transientPages
    ? { into: (n: number): Buffer => (scratch.length >= n ? scratch : (scratch = Buffer.allocUnsafeSlow(n))).subarray(0, n) }
    : { own: flags.recycles };
  const magic = await q.read(IMAGE_MAGIC.length, 'the magic');
  if (!magic) throw new ImageError('image is empty');
  if (!magic.equals(IMAGE_MAGIC)) throw new ImageError('not a crmigrate image (bad magic)');
  let records = 0;
  let pages = 0;
  let pageBytes = 0n;
  let chain = 0;
  for (;;) {
    q.release(); // the consumer is done with what was yielded before
    // (own: the payload read below may pull the source past this header's chunk)
    const f = await q.read(FRAME, `the frame header of record ${records + 1}`, { own: true });
    if (!f) throw new ImageError(`image truncated: it ends after ${records} records without a trailer`);
    const type = f.readUInt32LE(0);
    const len = f.readUInt32LE(4);
    const crc = f.readUInt32LE(8);
    const what = `record ${records + 1} (${recordName(type)})`;
    if (f.readUInt32LE(12) !== 0) throw new ImageError(`${what}: reserved frame field is not zero`);
    if (records === 0 && type !== RecordType.HEADER) throw new ImageError('image does not start with a header record');
    const max = type === RecordType.PAGES ? PAGES_PREFIX + MAX_PAGES_RECORD : MAX_META;
    if (len > max) throw new ImageError(`${what}: length ${len} exceeds the limit of ${max}`);
    const payload = await q.read(len, what, type === RecordType.PAGES ? pageOpts : {});
    if (!payload) throw new ImageError(`image truncated inside ${what}`);
    if (type === RecordType.PAGES) {
      if (len < PAGES_PREFIX + PAGE_SIZE || (len - PAGES_PREFIX) % PAGE_SIZE) throw new ImageError(`${what}: length ${len} is not whole pages`);
      const data = payload.subarray(PAGES_PREFIX);
      const prefix = payload.subarray(0, PAGES_PREFIX);
      if (native.crc32c(prefix, native.crc32c(data)) !== crc) throw new ImageError(`${what}: checksum mismatch (corrupted image)`);
      const addr = prefix.readBigUInt64LE(0);
      const count = prefix.readUInt32LE(8);
      if (count * PAGE_SIZE !== data.length || prefix.readUInt32LE(12) !== 0) throw new ImageError(`${what}: page count does not match its length`);
      if (addr % BigInt(PAGE_SIZE) !== 0n || addr + BigInt(data.length) > 0x7ffffffff000n) throw new ImageError(`${what}: bad page address 0x${addr.toString(16)}`);
      chain = native.crc32c(f, chain);
      records++;
      pages += count;
      pageBytes += BigInt(data.length);
      // where the data lies in a mapped image file
      const end = q.position();
      yield { type: RecordType.PAGES, addr: Number(addr), data, fileOffset: end === undefined ? undefined : end - data.length };
      continue;
    }
    if (native.crc32c(payload) !== crc) throw new ImageError(`${what}: checksum mismatch (corrupted image)`);
    const value = decodeRecord(type, payload);
    if (type === RecordType.TRAILER) {
      const t = value as unknown as TrailerRecord;
      if (t.records !== records || t.pages !== pages || t.pageBytes !== pageBytes || t.chainCrc !== chain)
        throw new ImageError(`image trailer does not match its content (records ${records}/${t.records}, pages ${pages}/${t.pages}): records missing or reordered`);
      const extra = await q.read(1, 'data after the trailer');
      if (extra) throw new ImageError('image has data after its trailer');
      return t;
    }
    chain = native.crc32c(f, chain);
    records++;
    if (records > 1 && type === RecordType.HEADER) throw new ImageError(`${what}: a second header`);
    yield { type: type as Exclude<RecordTypeId, typeof RecordType.PAGES>, value };
  }
}
