// The metadata of an image gathered from its records (everything before the
// page data), with the checks that the set is complete and consistent.
import {
  RecordType, recordName, VmaKind, type FdRecord, type HeaderRecord, type InheritedRecord, type ObjectPagesRecord, type PrecopyRecord, type ProcessRecord, type RegsRecord,
  type SharedFileRecord, type ShmemRecord, type SignalsRecord, type SysvShmRecord, type TaskRecord, type ThreadRecord, type TimersRecord, type TrailerRecord,
  type VmaRecord,
} from '../image/records.js';
import { readImage, type ImageItem } from '../image/stream.js';
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
  /** Pages shared copy-on-write with the parent, taken from it (sorted). */
  inherited: InheritedRecord['ranges'];
  /** Pages taken from the task's pre-copy (sorted). */
  precopied: InheritedRecord['ranges'];
}

export class MetaCollector {
  /** header: the image's, when the records come from a tree image (whose
   * header is not repeated in each task); else a HEADER record is expected. */
  constructor(private header?: HeaderRecord) {}

  private task?: TaskRecord;
  private readonly threads: ThreadRecord[] = [];
  private readonly regs: RegsRecord[] = [];
  private readonly signals: SignalsRecord[] = [];
  private timers?: TimersRecord;
  private readonly vmas: VmaRecord[] = [];
  private readonly fds: FdRecord[] = [];
  private readonly inherited: InheritedRecord['ranges'] = [];
  private readonly precopied: InheritedRecord['ranges'] = [];

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
      case RecordType.INHERITED: for (const r of (v as unknown as InheritedRecord).ranges) this.inherited.push(r); break;
      case RecordType.PRECOPY_USE: for (const r of (v as unknown as InheritedRecord).ranges) this.precopied.push(r); break;
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
    checkRanges(this.inherited, this.vmas, 'inherited');
    checkRanges(this.precopied, this.vmas, 'pre-copied');
    return { header, task, threads: this.threads, regs, signals, timers, vmas: this.vmas, fds: this.fds, inherited: this.inherited, precopied: this.precopied };
  }
}

/** Inherited or pre-copied pages lie in order, each range inside one private mapping. */
function checkRanges(ranges: InheritedRecord['ranges'], vmas: VmaRecord[], what: string): void {
  let prevEnd = 0;
  let i = 0;
  for (const r of ranges) {
    const where = `image: ${what} pages at ${r.start.toString(16)}`;
    if (r.start < prevEnd) throw new ImageError(`${where} overlap or are unsorted`);
    prevEnd = r.start + r.len;
    while (i < vmas.length && vmas[i].end <= r.start) i++;
    const v = vmas[i];
    if (!v || v.start > r.start || prevEnd > v.end) throw new ImageError(`${where} lie outside any one mapping`);
    if (v.kind !== VmaKind.ANON_PRIVATE && v.kind !== VmaKind.FILE_PRIVATE) throw new ImageError(`${where} lie in a mapping that is not private`);
  }
}

/** The parts of a tree image, in stream order; 'pages' belong to the last
 * 'precopy', 'shmem' or 'task' before them (offsets in the object, or
 * addresses). Pre-copies come first, before the tree. */
export type Section =
  | { kind: 'precopy'; pid: number }
  | { kind: 'tree'; header: HeaderRecord; processes: ProcessRecord[]; shmem: ShmemRecord[]; sysv: SysvShmRecord[]; files: SharedFileRecord[] }
  | { kind: 'shmem'; object: ShmemRecord }
  | { kind: 'task'; meta: ImageMeta }
  | { kind: 'pages'; addr: number; data: Buffer; fileOffset?: number };

/**
 * Splits an image into its tree, its shared memory objects and its tasks,
 * checking their order against the tree: every shared memory object once,
 * in order; every live process once, in tree order; pages only inside an
 * object (within its size) or a task.
 */
export async function* readSections(source: AsyncIterable<Buffer>): AsyncGenerator<Section, TrailerRecord> {
  const items = readImage(source);
  let header: HeaderRecord | undefined;
  const processes: ProcessRecord[] = [];
  const shmem: ShmemRecord[] = [];
  const files: SharedFileRecord[] = [];
  const sysv: SysvShmRecord[] = [];
  let treeDone = false;
  let liveLeft: ProcessRecord[] = [];
  let objectsSeen = 0;
  const precopies = new Set<number>();
  // where we are: inside a pre-copy, a shared memory object's pages, a task's records, or a task's pages
  let precopy = false;
  let object: ShmemRecord | null = null;
  let task: MetaCollector | null = null;
  let taskPages = false;
  const treeSection = (): Section => {
    if (!header) throw new ImageError('image has no header record');
    if (!processes.length) throw new ImageError('image has no process records');
    if (processes[0].pid !== header.rootPid) throw new ImageError('image: the first process is not the root');
    const pids = new Set<number>();
    for (const p of processes) {
      if (pids.has(p.pid)) throw new ImageError(`image has process ${p.pid} twice`);
      if (p !== processes[0] && !pids.has(p.ppid)) throw new ImageError(`image: process ${p.pid} comes before its parent ${p.ppid}`);
      pids.add(p.pid);
    }
    if (processes[0].zombie) throw new ImageError('image: the root is a zombie');
    for (const s of sysv) {
      const o = shmem.find((x) => x.id === s.id);
      if (!o || s.size > o.size) throw new ImageError(`image: System V segment ${s.shmid} has no matching shared memory object`);
    }
    for (const [list, what] of [[shmem, 'shared memory'], [files, 'shared file'], [sysv, 'System V segment of shared memory']] as const)
      if (new Set(list.map((o) => o.id)).size !== list.length) throw new ImageError(`image has ${what} ${[...list].map((o) => o.id).find((id, i, a) => a.indexOf(id) !== i)} twice`);
    liveLeft = processes.filter((p) => !p.zombie);
    treeDone = true;
    return { kind: 'tree', header, processes, shmem, sysv, files };
  };
  const finishTask = (c: MetaCollector): Section => {
    const meta = c.finish();
    const p = liveLeft.shift();
    if (!p || p.pid !== meta.task.pid) throw new ImageError(`image: task ${meta.task.pid} is not the next process of the tree`);
    const tids = meta.threads.map((t) => t.tid);
    if (tids.length !== p.tids.length || tids.some((t, i) => t !== p.tids[i])) throw new ImageError(`image: the threads of task ${p.pid} differ from its process record`);
    if (meta.inherited.length && p === processes[0]) throw new ImageError(`image: the root ${p.pid} inherits pages but has no parent in the image`);
    if (meta.precopied.length && !precopies.has(p.pid)) throw new ImageError(`image: task ${p.pid} takes pre-copied pages but has no pre-copy`);
    for (const v of meta.vmas) {
      if (v.kind !== VmaKind.ANON_SHARED) continue;
      const o = shmem.find((x) => x.id === v.shmId);
      if (!o) throw new ImageError(`image: mapping at ${v.start.toString(16)} names unknown shared memory ${v.shmId}`);
      if (v.pgoff * 4096 + (v.end - v.start) > o.size) throw new ImageError(`image: mapping at ${v.start.toString(16)} reaches past the end of shared memory ${o.id}`);
    }
    return { kind: 'task', meta };
  };
  // the reader is closed however this ends (its source may hold a file or mapping)
  try {
    let r = await items.next();
    for (; !r.done; r = await items.next()) {
      const item = r.value;
      if (item.type === RecordType.PAGES) {
        if (task) {
          yield finishTask(task);
          task = null;
          taskPages = true;
        }
        if (!object && !taskPages && !precopy) throw new ImageError('image has page data outside any task or object');
        if (object && item.addr + item.data.length > object.size) throw new ImageError(`image: pages past the end of shared memory ${object.id}`);
        yield { kind: 'pages', addr: item.addr, data: item.data, fileOffset: item.fileOffset };
        continue;
      }
      const v = item.value;
      switch (item.type) {
        case RecordType.HEADER:
          if (header) throw new ImageError('image has a second header record');
          header = v as unknown as HeaderRecord;
          break;
        case RecordType.PRECOPY: {
          const pid = (v as unknown as PrecopyRecord).pid;
          if (!header || processes.length) throw new ImageError('image has a pre-copy record out of place');
          precopies.add(pid); // once per round: a later copy of a page replaces an earlier one
          precopy = true;
          yield { kind: 'precopy', pid };
          break;
        }
        case RecordType.PROCESS:
        case RecordType.SHMEM:
        case RecordType.SYSV_SHM:
        case RecordType.SHARED_FILE:
          if (treeDone || !header) throw new ImageError(`image has a ${recordName(item.type)} record out of place`);
          precopy = false;
          if (item.type === RecordType.PROCESS) processes.push(v as unknown as ProcessRecord);
          else if (item.type === RecordType.SHMEM) shmem.push(v as unknown as ShmemRecord);
          else if (item.type === RecordType.SYSV_SHM) sysv.push(v as unknown as SysvShmRecord);
          else files.push(v as unknown as SharedFileRecord);
          break;
        case RecordType.OBJECT_PAGES: {
          if (!treeDone) yield treeSection();
          if (task || taskPages) throw new ImageError('image has shared memory pages after a task');
          const o = shmem[objectsSeen++];
          if (!o || o.id !== (v as unknown as ObjectPagesRecord).id) throw new ImageError('image: shared memory pages out of order');
          object = o;
          yield { kind: 'shmem', object: o };
          break;
        }
        case RecordType.TASK: {
          if (!treeDone) yield treeSection();
          if (objectsSeen !== shmem.length) throw new ImageError('image lacks the pages of a shared memory object');
          if (task) yield finishTask(task);
          object = null;
          taskPages = false;
          task = new MetaCollector(header);
          task.add(item);
          break;
        }
        default:
          if (!task) throw new ImageError(`image has a ${recordName(item.type)} record outside a task`);
          task.add(item);
      }
    }
    if (!treeDone) yield treeSection();
    if (task) yield finishTask(task);
    if (objectsSeen !== shmem.length) throw new ImageError('image lacks the pages of a shared memory object');
    if (liveLeft.length) throw new ImageError(`image ended before task ${liveLeft[0].pid}`);
    return r.value;
  } finally {
    await items.return(undefined as never);
  }
}
