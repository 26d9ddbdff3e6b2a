// The migration protocol on the SSH channel between `crmigrate` (source) and
// `crmigrate agent --stdio` (destination). Frames: u8 kind | u32 length |
// payload. CONTROL frames carry one JSON message; DATA frames carry the
// zstd-compressed image stream; DATA_END closes it.
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { CrmError, ExitCode } from '../util/errors.js';

export const PROTOCOL_VERSION = 2;
export const FrameKind = { CONTROL: 1, DATA: 2, DATA_END: 3 } as const;
const MAX_FRAME = 32 << 20;

export interface Hello {
  t: 'hello';
  protocol: number;
  version: string;
  arch: string;
  kernel: string;
  hostname: string;
  xcr0: string; // hex: xsave features this CPU supports / the image needs
  features: Record<string, boolean>;
}

export interface PreflightFile {
  path: string;
  use: string; // "executable", "mapped", "open as descriptor 3", ...
  size: string; // bigint as decimal (regular files), "" when only presence matters
  mtimeNs: string;
  sha256: string; // content hash of executables and libraries, "" otherwise
}

export type Message =
  | Hello
  | { t: 'preflight'; migrationId: string; compressed: boolean; pids: number[]; uids: number[]; gids: number[]; files: PreflightFile[]; memoryBytes: number }
  | { t: 'preflight-result'; problems: string[] }
  | { t: 'ready'; pid: number }
  | { t: 'commit' }
  | { t: 'committed'; pid: number }
  | { t: 'abort'; reason: string }
  | { t: 'error'; message: string; code: number }
  | { t: 'status'; migrationId: string }
  | { t: 'status-result'; migrationId: string; state: string | null };

/** A frame is kind (u8), payload length (u32 BE), payload. */
export const FRAME_HEADER = 5;

/** Writes a frame header for a payload of len bytes at the start of buf. */
export function frameHeaderInto(buf: Buffer, kind: number, len: number): void {
  buf.writeUInt8(kind, 0);
  buf.writeUInt32BE(len, 1);
}

export function frame(kind: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frameHeaderInto(b, kind, payload.length);
  payload.copy(b, FRAME_HEADER);
  return b;
}

export const controlFrame = (m: Message): Buffer => frame(FrameKind.CONTROL, Buffer.from(JSON.stringify(m)));

/** Writes with back-pressure; rejects if the stream is gone. */
export async function writeAll(w: Writable, b: Buffer): Promise<void> {
  if (w.destroyed || w.writableEnded) throw new CrmError('the connection to the other side is closed');
  if (!w.write(b)) {
    // the listeners of the race's loser are removed, or every wait would leave two behind
    const done = new AbortController();
    try {
      await Promise.race([
        once(w, 'drain', { signal: done.signal }),
        once(w, 'close', { signal: done.signal }).then(() => { throw new CrmError('the connection to the other side closed'); }),
      ]);
    } finally {
      done.abort();
    }
  }
}

/**
 * Writes to a stream whose write callbacks may never come once it closes:
 * each write resolves once the stream has taken its bytes (then the buffer
 * may be reused), and every write still pending rejects when the stream
 * closes. One 'close' listener serves all writes: an AbortController and a
 * listener per write cost more than the write itself at migration rates.
 */
export class TakenWriter {
  private readonly pending = new Set<(err: Error) => void>();
  private closed = false;

  constructor(private readonly w: Writable) {
    w.once('close', () => {
      this.closed = true;
      const err = new CrmError('the connection to the other side closed');
      for (const reject of this.pending) reject(err);
      this.pending.clear();
    });
  }

  write(b: Buffer): Promise<void> {
    if (this.closed || this.w.destroyed || this.w.writableEnded) return Promise.reject(new CrmError('the connection to the other side is closed'));
    return new Promise<void>((resolve, reject) => {
      this.pending.add(reject);
      this.w.write(b, (err) => {
        this.pending.delete(reject);
        if (err) reject(new CrmError(`the connection to the other side failed: ${err.message}`));
        else resolve();
      });
    });
  }
}

export type Frame = { kind: typeof FrameKind.CONTROL; message: Message } | { kind: typeof FrameKind.DATA; data: Buffer } | { kind: typeof FrameKind.DATA_END };

/** Parses frames from a byte stream; ends at EOF (an unexpected EOF is the caller's to judge). */
export async function* readFrames(r: Readable): AsyncGenerator<Frame> {
  // Incoming chunks wait in a list; a frame is copied out only when it
  // spans chunks (concatenating on every chunk made large frames quadratic).
  const chunks: Buffer[] = [];
  let have = 0;
  const take = (n: number, consume: boolean): Buffer => {
    if (chunks[0].length >= n) {
      const b = chunks[0].subarray(0, n);
      if (consume) {
        chunks[0] = chunks[0].subarray(n);
        if (!chunks[0].length) chunks.shift();
        have -= n;
      }
      return b;
    }
    const out = Buffer.allocUnsafe(n);
    for (let o = 0, i = 0; o < n; i++) {
      const c = chunks[i];
      const k = Math.min(c.length, n - o);
      c.copy(out, o, 0, k);
      o += k;
    }
    if (consume) {
      have -= n;
      for (let left = n; left > 0; ) {
        if (chunks[0].length <= left) left -= chunks.shift()!.length;
        else { chunks[0] = chunks[0].subarray(left); left = 0; }
      }
    }
    return out;
  };
  for await (const chunk of r as AsyncIterable<Buffer>) {
    if (!chunk.length) continue;
    chunks.push(chunk);
    have += chunk.length;
    while (have >= FRAME_HEADER) {
      const head = take(FRAME_HEADER, false);
      const kind = head.readUInt8(0);
      const len = head.readUInt32BE(1);
      if (len > MAX_FRAME) throw new CrmError(`protocol error: frame of ${len} bytes`, ExitCode.FAILURE);
      if (have < FRAME_HEADER + len) break;
      take(FRAME_HEADER, true);
      const payload = len ? take(len, true) : Buffer.alloc(0);
      if (kind === FrameKind.CONTROL) {
        let message: Message;
        try {
          message = JSON.parse(payload.toString('utf8')) as Message;
        } catch {
          throw new CrmError('protocol error: malformed control message');
        }
        if (typeof message !== 'object' || message === null || typeof (message as { t?: unknown }).t !== 'string')
          throw new CrmError('protocol error: control message without a type');
        yield { kind, message };
      } else if (kind === FrameKind.DATA) {
        yield { kind, data: payload };
      } else if (kind === FrameKind.DATA_END) {
        yield { kind };
      } else {
        throw new CrmError(`protocol error: unknown frame kind ${kind}`);
      }
    }
  }
}

/** Bytes of image data an Inbox holds at most before it stops reading. */
export const INBOX_MAX_DATA = 8 << 20;

/** A queue of incoming control messages and data chunks, read by one consumer each. */
export class Inbox {
  private readonly messages: Message[] = [];
  private readonly data: (Buffer | null)[] = [];
  private dataBytes = 0;
  private waiters: (() => void)[] = [];
  private drained: (() => void) | null = null;
  private closedWith: Error | null = null;
  closed = false;

  /** Data waiting for its consumer is bounded by maxData bytes: past it the
   * link is not read (the sender is held back by the channel's window). */
  constructor(source: AsyncGenerator<Frame>, private readonly maxData = INBOX_MAX_DATA) {
    void (async () => {
      try {
        for await (const f of source) {
          if (f.kind === FrameKind.CONTROL) this.messages.push(f.message);
          else if (f.kind === FrameKind.DATA) {
            this.data.push(f.data);
            this.dataBytes += f.data.length;
          } else this.data.push(null);
          this.wake();
          while (this.dataBytes > this.maxData) await new Promise<void>((r) => { this.drained = r; });
        }
        this.closedWith = new CrmError('the connection to the other side was lost');
      } catch (err) {
        this.closedWith = err as Error;
      }
      this.closed = true;
      this.wake();
    })();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }

  /** Next control message; rejects when the link is lost. */
  async next(timeoutMs = 0): Promise<Message> {
    const deadline = timeoutMs ? Date.now() + timeoutMs : 0;
    for (;;) {
      if (this.messages.length) return this.messages.shift()!;
      if (this.closed) throw this.closedWith ?? new CrmError('the connection to the other side was lost');
      if (deadline && Date.now() > deadline) throw new CrmError('timed out waiting for the other side');
      await (deadline ? Promise.race([this.wait(), new Promise<void>((r) => setTimeout(r, 200))]) : this.wait());
    }
  }

  /** The data stream, until DATA_END; throws if the link is lost first. */
  async *dataStream(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.data.length) {
        const d = this.data.shift()!;
        if (d === null) return;
        this.dataBytes -= d.length;
        if (this.dataBytes <= this.maxData && this.drained) {
          this.drained();
          this.drained = null;
        }
        yield d;
        continue;
      }
      if (this.closed) throw this.closedWith ?? new CrmError('the image stream was cut');
      await this.wait();
    }
  }
}
