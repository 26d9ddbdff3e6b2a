// The hot path of a dump: page bytes from /proc/PID/mem into the image.
//
// The ranges to copy are cut into read jobs of at most JOB_BYTES. A job is
// read (pread in 1 MiB pieces, each checksummed while still in the cache) by
// a libuv worker thread into one of BUFFERS reused buffers; up to MAX_READS
// jobs are read at once, and jobs are written out in order as they complete.
// Small jobs keep the buffers warm in the CPU caches.
// So reading runs ahead of writing by at most BUFFERS jobs: the memory used is
// BUFFERS * JOB_BYTES whatever the size of the process or of the tree (one
// pump, one set of buffers per dump), and no page buffer is ever left to the
// garbage collector.
import { native } from '../native/addon.js';
import { PAGE_SIZE } from '../image/records.js';
import type { ImageWriter } from '../image/stream.js';

/** Bytes per read job, and so the largest PAGES record a dump writes. */
export const JOB_BYTES = 4 << 20;
const BUFFERS = 6;
/** Concurrent reads. One more than the 2 cores of this machine class keeps
 * both busy across the hops through the event loop; libuv's pool has 4
 * threads, so one stays free for the sink's file writes. (Measured on a
 * 512 MiB process: 2 reads of 8 MiB 2.5 GB/s, 3 reads of 4 MiB 3.3 GB/s.) */
const MAX_READS = 3;

export interface PumpStats {
  pages: number;
  bytes: number;
  /** Time during which at least one read was in progress. */
  readSeconds: number;
}

/** Cuts [addr, len] pairs into jobs of at most maxBytes, each a list of [addr, len] pairs. */
export function planJobs(ranges: number[], maxBytes = JOB_BYTES): number[][] {
  const jobs: number[][] = [];
  let cur: number[] = [];
  let curBytes = 0;
  for (let i = 0; i + 1 < ranges.length; i += 2) {
    for (let s = ranges[i], end = ranges[i] + ranges[i + 1]; s < end; ) {
      const len = Math.min(end - s, maxBytes);
      if (curBytes + len > maxBytes) {
        jobs.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(s, len);
      curBytes += len;
      s += len;
    }
  }
  if (cur.length) jobs.push(cur);
  return jobs;
}

/**
 * Copies page ranges into the image. One pump serves a whole dump: its
 * BUFFERS buffers of JOB_BYTES are made as the first jobs need them and
 * reused for every task and object after.
 */
export class PagePump {
  private readonly buffers: Buffer[] = [];

  /**
   * Copies [addr, len] ranges of the process behind memFd into the image as
   * PAGES records at imageAddr(addr). The sink must be done with each buffer
   * it is given when its write resolves (buffers are reused).
   */
  async pump(memFd: number, ranges: number[], imageAddr: (addr: number) => number, out: ImageWriter, stats: PumpStats): Promise<void> {
    const jobs = planJobs(ranges);
    if (!jobs.length) return;
    while (this.buffers.length < Math.min(BUFFERS, jobs.length)) this.buffers.push(Buffer.allocUnsafeSlow(JOB_BYTES));
    const free = [...this.buffers];
    const bufferOf: Buffer[] = new Array(jobs.length);
    const results: Promise<Uint32Array>[] = new Array(jobs.length);
    let next = 0;
    let reading = 0;
    let busySince = 0n;

    const launch = (): void => {
      while (next < jobs.length && reading < MAX_READS && free.length) {
        const j = next++;
        const buf = free.pop()!;
        bufferOf[j] = buf;
        if (reading++ === 0) busySince = process.hrtime.bigint();
        results[j] = native.readRanges(memFd, buf, Float64Array.from(jobs[j])).finally(() => {
          if (--reading === 0) stats.readSeconds += Number(process.hrtime.bigint() - busySince) / 1e9;
          launch();
        });
        results[j].catch(() => undefined); // reported when its turn comes
      }
    };

    try {
      launch();
      for (let j = 0; j < jobs.length; j++) {
        const crcs = await results[j];
        const buf = bufferOf[j];
        const job = jobs[j];
        let off = 0;
        for (let k = 0; k < job.length; k += 2) {
          const len = job[k + 1];
          await out.pagesRecord(imageAddr(job[k]), buf.subarray(off, off + len), crcs[k / 2]);
          off += len;
          stats.pages += len / PAGE_SIZE;
          stats.bytes += len;
        }
        free.push(buf);
        launch();
      }
    } finally {
      // Reads still in flight use memFd and our buffers: let them finish
      // before the caller closes the descriptor.
      next = jobs.length;
      await Promise.allSettled(results.filter(Boolean));
    }
  }
}
