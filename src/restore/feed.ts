// The standard input of crmigrate-restore (plan, then page stream): a pipe of
// our own instead of a libuv stream. Writes are blocking write(2)s on a
// worker thread, so the event loop never copies page data and is free to read
// and check the next record meanwhile. (Page data of an image file does not
// come this way at all: the restorer reads it from the file.) The pipe is
// enlarged (to /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE) so that
// we can run ahead of the restorer instead of waking it every 64 KiB.
import { native } from '../native/addon.js';

const PIPE_BYTES = 4 << 20;

export class RestorerInput {
  /** The read end, for the child's stdio[0]; closed here by spawned(). */
  readonly childFd: number;
  private readonly fd: number;
  private childEndOpen = true;
  private closed = false;
  private inflight: Promise<void> | null = null;

  constructor() {
    [this.childFd, this.fd] = native.makePipe(PIPE_BYTES);
  }

  /** Once the child has it: without our copy of the read end, a write fails
   * (EPIPE) as soon as the restorer is gone instead of blocking. */
  spawned(): void {
    if (this.childEndOpen) {
      this.childEndOpen = false;
      native.closeFd(this.childFd);
    }
  }

  /** Writes all of b; one write at a time (the caller awaits each). */
  write(b: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the restorer input is closed'));
    if (this.inflight) return Promise.reject(new Error('RestorerInput: overlapping writes'));
    const p = native.writeAll(this.fd, b).finally(() => { this.inflight = null; });
    this.inflight = p.catch(() => undefined);
    return p;
  }

  /** Closes our end, after a write in flight (a descriptor number must not
   * be reused under a worker thread that is about to write to it). */
  close(): void {
    this.spawned();
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd;
    if (this.inflight) void this.inflight.then(() => native.closeFd(fd));
    else native.closeFd(fd);
  }
}
