// The zstd stages of a migration, with no allocation per chunk. zstd-napi's
// stream classes allocate a fresh output buffer for every chunk they produce
// (and the source then concatenated the frame header in front, a second
// copy); at migration rates that churn showed up as page zeroing and copies
// in the profile, and as RSS.
//   source: zstd writes straight into a ring of reused buffers, just after
//           room left for the DATA frame header; a buffer is used again only
//           once the channel has taken it.
//   agent:  the image is decompressed into a ring of large reused buffers,
//           so that most image records lie inside one (the reader then needs
//           no copy of them).
import { createRequire } from 'node:module';
import type * as ZstdBinding from 'zstd-napi/binding.js';
import { ImageError } from '../util/errors.js';
import { FRAME_HEADER, FrameKind, frameHeaderInto } from './protocol.js';

// zstd-napi's low-level binding (a CommonJS module around the native addon)
const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as typeof ZstdBinding;

/** Buffers in the ring: how many frames may be on their way to the channel at once. */
const RING = 8;

export interface CompressorOptions {
  level: number;
  /** zstd's own worker threads (0: compress in the calling thread). */
  workers: number;
}

export class ImageCompressor {
  private readonly cctx = new binding.CCtx();
  private readonly ring: Buffer[] = [];
  private readonly inFlight: Promise<void>[] = [];
  private next = 0;
  private failed: unknown = null;

  /**
   * emit(frame) sends one whole DATA frame and resolves once the frame's
   * bytes have been taken (its buffer is then reused).
   */
  constructor(opts: CompressorOptions, private readonly emit: (frame: Buffer) => Promise<void>) {
    this.cctx.setParameter(binding.CParameter.compressionLevel, opts.level);
    if (opts.workers > 0) this.cctx.setParameter(binding.CParameter.nbWorkers, opts.workers);
    const size = FRAME_HEADER + binding.cStreamOutSize();
    for (let i = 0; i < RING; i++) {
      this.ring.push(Buffer.allocUnsafeSlow(size));
      this.inFlight.push(Promise.resolve());
    }
  }

  /** Compresses chunk; when it resolves, zstd has taken all of it (the caller may reuse it). */
  write(chunk: Buffer): Promise<void> {
    return this.run(chunk, binding.EndDirective.continue);
  }

  /** Ends the zstd frame and waits until every DATA frame has been taken. */
  async end(): Promise<void> {
    await this.run(Buffer.alloc(0), binding.EndDirective.end);
    await Promise.all(this.inFlight);
    if (this.failed) throw this.failed;
  }

  private async run(input: Buffer, end: ZstdBinding.EndDirective): Promise<void> {
    for (;;) {
      if (this.failed) throw this.failed;
      const i = this.next;
      await this.inFlight[i];
      const out = this.ring[i];
      const [left, produced, consumed] = this.cctx.compressStream2(out.subarray(FRAME_HEADER), input, end);
      input = input.subarray(consumed);
      if (produced > 0) {
        frameHeaderInto(out, FrameKind.DATA, produced);
        // a failed send is reported by the next call (or end)
        this.inFlight[i] = this.emit(out.subarray(0, FRAME_HEADER + produced)).catch((err: unknown) => {
          this.failed ??= err;
        });
        this.next = (i + 1) % RING;
      }
      if (!input.length && (end === binding.EndDirective.continue || left === 0)) return;
      // zstd's workers hold all the input they can take: let them work
      if (!produced && !consumed) await new Promise((r) => setImmediate(r));
    }
  }
}

/** Bytes of decompressed image per chunk: more than a page record (4 MiB). */
const OUT_CHUNK = 8 << 20;
/** Decompressed chunks in the ring: a chunk is valid until the consumer has
 * pulled twice more (see recyclingSource). */
const OUT_RING = 3;

/** The decompressed image, in chunks of reused buffers (wrap the result in
 * recyclingSource for readImage). */
export async function* decompressedChunks(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const dctx = new binding.DCtx();
  const ring = Array.from({ length: OUT_RING }, () => Buffer.allocUnsafeSlow(OUT_CHUNK));
  let r = 0;
  let filled = 0;
  let inFrame = false;
  const step = (src: Buffer): { produced: number; consumed: number } => {
    const [left, produced, consumed] = dctx.decompressStream(ring[r].subarray(filled), src);
    filled += produced;
    // 0 once a frame is whole and flushed (a call that moved nothing says
    // how much input the next frame needs instead)
    if (produced || consumed) inFrame = left !== 0;
    return { produced, consumed };
  };
  for await (let src of source) {
    while (src.length) {
      const { consumed } = step(src);
      src = src.subarray(consumed);
      if (filled === OUT_CHUNK) {
        yield ring[r];
        r = (r + 1) % OUT_RING;
        filled = 0;
      }
    }
  }
  // what zstd still holds once the input is all in
  for (;;) {
    const { produced } = step(Buffer.alloc(0));
    if (filled === OUT_CHUNK || (!produced && filled)) {
      yield ring[r].subarray(0, filled);
      r = (r + 1) % OUT_RING;
      filled = 0;
    }
    if (!produced) break;
  }
  if (inFrame) throw new ImageError('the compressed image stream ended inside a zstd frame');
}
