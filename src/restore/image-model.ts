// The metadata of an image gathered from its records (everything before the
// page data), with the checks that the set is complete and consistent.
import {
  RecordType, type FdRecord, type HeaderRecord, type RegsRecord, type SignalsRecord, type TaskRecord,
  type TimersRecord, type VmaRecord,
} from '../image/records.js';
import type { ImageItem } from '../image/stream.js';
import { ImageError } from '../util/errors.js';

export interface ImageMeta {
  header: HeaderRecord;
  task: TaskRecord;
  regs: RegsRecord;
  signals: SignalsRecord;
  timers: TimersRecord;
  vmas: VmaRecord[];
  fds: FdRecord[];
}

export class MetaCollector {
  private header?: HeaderRecord;
  private task?: TaskRecord;
  private regs?: RegsRecord;
  private signals?: SignalsRecord;
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
      case RecordType.REGS: this.regs = once(this.regs, 'registers'); break;
      case RecordType.SIGNALS: this.signals = once(this.signals, 'signals'); break;
      case RecordType.TIMERS: this.timers = once(this.timers, 'timers'); break;
      case RecordType.VMA: this.vmas.push(v as unknown as VmaRecord); break;
      case RecordType.FD: this.fds.push(v as unknown as FdRecord); break;
      default: throw new ImageError(`unexpected record type ${item.type} before the page data`);
    }
  }

  finish(): ImageMeta {
    const { header, task, regs, signals, timers } = this;
    if (!header || !task || !regs || !signals || !timers) {
      const missing = Object.entries({ header, task, registers: regs, signals, timers }).filter(([, v]) => !v).map(([k]) => k);
      throw new ImageError(`image is missing its ${missing.join(', ')} record(s)`);
    }
    if (regs.tid !== task.tid || signals.tid !== task.tid) throw new ImageError('image records belong to different tasks');
    if (regs.xsave.length !== header.xsaveSize) throw new ImageError('image FPU state size does not match its header');
    for (let i = 1; i < this.vmas.length; i++)
      if (this.vmas[i].start < this.vmas[i - 1].end) throw new ImageError(`image mappings overlap at ${this.vmas[i].start.toString(16)}`);
    for (let i = 1; i < this.fds.length; i++)
      if (this.fds[i].fd <= this.fds[i - 1].fd) throw new ImageError(`image descriptors are duplicated or unsorted at ${this.fds[i].fd}`);
    return { header, task, regs, signals, timers, vmas: this.vmas, fds: this.fds };
  }
}
