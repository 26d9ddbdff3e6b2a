// Where an image lives in a --dir, and the byte sink/source over a file.
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CrmError, ExitCode } from '../util/errors.js';
import type { ByteSink } from './stream.js';

export const IMAGE_FILE = 'image.crm';

export async function prepareImageDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if (!st.isDirectory()) throw new CrmError(`${dir} is not a directory`, ExitCode.USAGE);
}

/** Writes to <dir>/image.crm.partial; commit() makes it image.crm atomically. */
export class ImageFileSink implements ByteSink {
  private constructor(private readonly fh: FileHandle, private readonly dir: string) {}

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
  }

  async commit(): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
    await rename(join(this.dir, `${IMAGE_FILE}.partial`), join(this.dir, IMAGE_FILE));
  }

  async discard(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(join(this.dir, `${IMAGE_FILE}.partial`), { force: true });
  }
}

export async function openImageSource(dir: string): Promise<AsyncIterable<Buffer>> {
  const path = join(dir, IMAGE_FILE);
  try {
    await stat(path);
  } catch {
    throw new CrmError(`no image in ${dir} (${IMAGE_FILE} is missing)`, ExitCode.BAD_IMAGE);
  }
  return createReadStream(path, { highWaterMark: 8 << 20 }) as AsyncIterable<Buffer>;
}
