// The metadata of an image gathered from its records (everything before the
// page data), with the checks that the set is complete and consistent.
import {
  RecordType, type FdRecord, type HeaderRecord, type RegsRecord, type SignalsRecord, type TaskRecord,
  type ThreadRecord, type TimersRecord, type VmaRecord,
} from '../image/records.js';
import type { ImageItem } from '../image/stream.js';
import { ImageError } from '../util/errors.js';

export interface ImageMeta {
  header: HeaderRecord;
  task: TaskRecord;
  /** Per thread, main thread first. */
  threads: ThreadRecord[];
  regs: RegsRecord[];
  signals: SignalsRecord[];
  timers: TimersRecord;
  vmas: VmaRecord[];
  fds: FdRecord[];
}

export class MetaCollector {
  private header?: HeaderRecord;
  private task?: TaskRecord;
  private readonly threads: ThreadRecord[] = [];
  private readonly regs: RegsRecord[] = [];
  private readonly signals: SignalsRecord[] = [];
  private timers?: TimersRecord;
  private readonly vmas: VmaRecord[] = [];
  private readonly fds: FdRecord[] = [];

  add(item: ImageItem): void {
    if (item.type === RecordType.PAGES) throw new Error('MetaCollector.add: page record');
    const v = item.value;
    const once = <T>(cur: T | undefined, name: string): T => {
      if (cur !== undefined) throw new ImageError(`image has a second ${name} record`);
      return v as unknown as T;
    };
    switch (item.type) {
      case RecordType.HEADER: this.header = once(this.header, 'header'); break;
      case RecordType.TASK: this.task = once(this.task, 'task'); break;
      case RecordType.THREAD: this.threads.push(v as unknown as ThreadRecord); break;
      case RecordType.REGS: this.regs.push(v as unknown as RegsRecord); break;
      case RecordType.SIGNALS: this.signals.push(v as unknown as SignalsRecord); break;
      case RecordType.TIMERS: this.timers = once(this.timers, 'timers'); break;
      case RecordType.VMA: this.vmas.push(v as unknown as VmaRecord); break;
      case RecordType.FD: this.fds.push(v as unknown as FdRecord); break;
      default: throw new ImageError(`unexpected record type ${item.type} before the page data`);
    }
  }

  finish(): ImageMeta {
    const { header, task, timers } = this;
    if (!header || !task || !timers || !this.threads.length) {
      const missing = Object.entries({ header, task, timers, thread: this.threads[0] }).filter(([, v]) => !v).map(([k]) => k);
      throw new ImageError(`image is missing its ${missing.join(', ')} record(s)`);
    }
    const tids = this.threads.map((t) => t.tid);
    if (tids[0] !== task.tid) throw new ImageError('image: the first thread is not the main thread');
    if (new Set(tids).size !== tids.length) throw new ImageError('image has a thread twice');
    const byTid = <T extends { tid: number }>(list: T[], what: string): T[] => {
      if (list.length !== tids.length) throw new ImageError(`image has ${list.length} ${what} records for ${tids.length} threads`);
      return tids.map((tid) => {
        const r = list.find((x) => x.tid === tid);
        if (!r) throw new ImageError(`image has no ${what} record for thread ${tid}`);
        return r;
      });
    };
    const regs = byTid(this.regs, 'registers');
    const signals = byTid(this.signals, 'signals');
    for (const r of regs) if (r.xsave.length !== header.xsaveSize) throw new ImageError('image FPU state size does not match its header');
    for (const s of signals.slice(1))
      if (s.actions.length || s.pending.some((p) => p.shared)) throw new ImageError(`image: thread ${s.tid} carries process-wide signal state`);
    for (let i = 1; i < this.vmas.length; i++)
      if (this.vmas[i].start < this.vmas[i - 1].end) throw new ImageError(`image mappings overlap at ${this.vmas[i].start.toString(16)}`);
    for (let i = 1; i < this.fds.length; i++)
      if (this.fds[i].fd <= this.fds[i - 1].fd) throw new ImageError(`image descriptors are duplicated or unsorted at ${this.fds[i].fd}`);
    return { header, task, threads: this.threads, regs, signals, timers, vmas: this.vmas, fds: this.fds };
  }
}
