// Where an image lives: a --dir (the byte sink/source over its file), or a
// descriptor (--stdout / --stdin: a pipe, a socket or a file).
import { fdatasync, fstatSync, read, rmSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isatty } from 'node:tty';
import { promisify } from 'node:util';
import { CrmError, ExitCode } from '../util/errors.js';
import { PAGE_SIZE } from './records.js';
import { native } from '../native/addon.js';
import { mappedSource, recyclingSource, type ByteSink, type MappedImage } from './stream.js';

export const IMAGE_FILE = 'image.crm';

export async function prepareImageDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if (!st.isDirectory()) throw new CrmError(`${dir} is not a directory`, ExitCode.USAGE);
}

/** Writes to <dir>/image.crm.partial; commit() makes it image.crm atomically. */
/** Bytes written between two starts of writeback. */
const WRITEBACK_STEP = 32 << 20;

export class ImageFileSink implements ByteSink {
  private written = 0;
  private flushedTo = 0;
  private writeback: Promise<void> = Promise.resolve();
  // an interrupted dump (process.exit from a signal) leaves no partial image
  private readonly onExit = (): void => rmSync(join(this.dir, `${IMAGE_FILE}.partial`), { force: true });

  private constructor(private readonly fh: FileHandle, private readonly dir: string) {
    process.on('exit', this.onExit);
  }

  static async create(dir: string): Promise<ImageFileSink> {
    const fh = await open(join(dir, `${IMAGE_FILE}.partial`), 'w', 0o600);
    return new ImageFileSink(fh, dir);
  }

  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
    this.written += chunk.length;
    if (this.written - this.flushedTo >= WRITEBACK_STEP) {
      // the disk starts on what is written while the dump goes on (one at a time)
      const from = this.flushedTo;
      this.flushedTo = this.written;
      await this.writeback;
      this.writeback = native.startWriteback(this.fh.fd, from, this.flushedTo - from).catch(() => undefined);
    }
  }

  /** Makes what was written so far durable (a pre-copy, before the freeze). */
  async sync(): Promise<void> {
    await this.writeback;
    await this.fh.datasync();
  }

  /** Makes the image durable under its final name: its data, then the
   * rename (the directory is synced too, or a crash could lose the name). */
  async commit(): Promise<void> {
    await this.writeback;
    await this.fh.datasync();
    await this.fh.close();
    await rename(join(this.dir, `${IMAGE_FILE}.partial`), join(this.dir, IMAGE_FILE));
    process.off('exit', this.onExit);
    const d = await open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async discard(): Promise<void> {
    await this.writeback;
    await this.fh.close().catch(() => undefined);
    await rm(join(this.dir, `${IMAGE_FILE}.partial`), { force: true });
    process.off('exit', this.onExit);
  }
}

const CHUNK_BYTES = 8 << 20;
const RING = 3;

/** Reads up to len bytes into b at off; 0 at the end. */
type ReadFn = (b: Buffer, off: number, len: number) => Promise<number>;

/**
 * The image file (or stream) as chunks read into RING reused buffers, the
 * next chunk read ahead while the current one is used (so memory stays flat
 * however large the image): a chunk is valid until the source is pulled
 * twice more. close: called once the source is done with.
 */
async function* chunksOf(readFn: ReadFn, close: () => Promise<void>): AsyncGenerator<Buffer> {
  const ring: Buffer[] = [];
  const readInto = async (i: number): Promise<Buffer> => {
    ring[i] ??= Buffer.allocUnsafeSlow(CHUNK_BYTES);
    const b = ring[i];
    let n = 0;
    while (n < b.length) {
      const got = await readFn(b, n, b.length - n);
      if (!got) break;
      n += got;
    }
    return b.subarray(0, n);
  };
  let i = 0;
  let pending: Promise<Buffer> = readInto(0);
  try {
    for (;;) {
      const chunk = await pending;
      if (!chunk.length) return;
      i = (i + 1) % RING;
      pending = readInto(i);
      yield chunk;
    }
  } finally {
    await pending.catch(() => undefined);
    await close();
  }
}

const fileChunks = (fh: FileHandle): AsyncGenerator<Buffer> =>
  chunksOf(async (b, off, len) => (await fh.read(b, off, len, null)).bytesRead, () => fh.close());

const readFd = promisify(read);

/** The image stream on our standard input (crmigrate restore --stdin). */
export function stdinImageSource(): AsyncIterable<Buffer> {
  if (isatty(0)) throw new CrmError('refusing to read an image from a terminal (--stdin wants a pipe or a file)', ExitCode.USAGE);
  return recyclingSource({ [Symbol.asyncIterator]: () => chunksOf(async (b, off, len) => (await readFd(0, b, off, len, null)).bytesRead, async () => undefined) });
}

/**
 * The image written to our standard output (crmigrate dump --stdout): a
 * pipe, a socket or a file. commit() makes a file durable; of a pipe or a
 * socket we only know that the reader took every byte.
 */
export class StdoutSink implements ByteSink {
  private readonly fd = 1;

  constructor() {
    if (isatty(this.fd)) throw new CrmError('refusing to write an image to a terminal (redirect --stdout to a pipe or a file)', ExitCode.USAGE);
  }

  async write(chunk: Buffer): Promise<void> {
    try {
      await native.writeAll(this.fd, chunk);
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new CrmError(code === 'EPIPE' ? 'the reader of standard output went away before the image was complete' : `writing the image to standard output: ${(err as Error).message}`);
    }
  }

  async commit(): Promise<void> {
    if (fstatSync(this.fd).isFile()) await promisify(fdatasync)(this.fd);
  }
}

/** Bytes mapped at a time: more than the largest read of the image reader
 * (a record of at most 64 MiB), so that every read is one view. */
const WINDOW = 256 << 20;

/**
 * The image file mapped window by window. Only address space is taken: the
 * pages the reader is done with are dropped from memory as it goes.
 */
class MappedImageFile implements MappedImage {
  private win: { start: number; buf: Buffer } | null = null;
  private released = 0;
  private closed = false;

  constructor(private readonly fh: FileHandle, readonly size: number) {}

  get fd(): number {
    return this.fh.fd;
  }

  view(offset: number, len: number): Buffer {
    let w = this.win;
    if (!w || offset < w.start || offset + len > w.start + w.buf.length) {
      if (this.closed) throw new Error('the image file is closed');
      if (w) native.adviseMapped(w.buf, 'release');
      const start = offset - (offset % PAGE_SIZE);
      w = this.win = { start, buf: native.mapFile(this.fh.fd, start, Math.min(this.size - start, WINDOW)) };
      this.released = start;
    }
    return w.buf.subarray(offset - w.start, offset - w.start + len);
  }

  populate(view: Buffer): void {
    native.adviseMapped(view, 'populate');
  }

  release(offset: number): void {
    const w = this.win;
    if (!w || offset <= this.released) return;
    const end = Math.min(offset, w.start + w.buf.length);
    native.adviseMapped(w.buf.subarray(this.released - w.start, end - w.start), 'release');
    this.released = end;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.win) native.adviseMapped(this.win.buf, 'release');
    this.win = null;
    void this.fh.close().catch(() => undefined);
  }
}

/** The image of a --dir: read in place through a mapping, or (if the file
 * cannot be mapped) as chunks in reused buffers. */
export async function openImageSource(dir: string): Promise<AsyncIterable<Buffer>> {
  const path = join(dir, IMAGE_FILE);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    throw new CrmError(`no image in ${dir} (${IMAGE_FILE} is missing)`, ExitCode.BAD_IMAGE);
  }
  const chunks = recyclingSource({ [Symbol.asyncIterator]: () => fileChunks(fh) });
  const st = await fh.stat();
  if (!st.isFile() || st.size === 0) return chunks;
  try {
    native.mapFile(fh.fd, 0, Math.min(st.size, PAGE_SIZE)); // can it be mapped at all?
  } catch {
    return chunks;
  }
  return mappedSource(chunks, new MappedImageFile(fh, st.size));
}
