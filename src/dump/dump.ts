// `crmigrate dump`: freeze a process, write its image, then kill it or let it
// go on. Nothing is changed in the process unless the image is complete.
import { hostname, release as kernelRelease } from 'node:os';
import { native } from '../native/addon.js';
import {
  RecordType, IMAGE_VERSION, PAGE_SIZE, type FdRecord, type HeaderRecord, type RegsRecord, type SignalsRecord, type TaskRecord,
  type ThreadRecord, type TimersRecord, type VmaRecord,
} from '../image/records.js';
import { ImageWriter, type ByteSink } from '../image/stream.js';
import { assignSharing, collectFds } from '../resources/files.js';
import { assignShmem, collectVmas, dumpPages, dumpShmemPages, emptyStats, inheritedRecords, rangeRecords, taskPages, type PageDumpStats } from '../resources/memory.js';
import { collectRegisters, xsaveFeatures } from '../resources/registers.js';
import { collectSignals } from '../resources/signals.js';
import { checkTaskSupported, collectTask } from '../resources/task.js';
import { collectTimers } from '../resources/timers.js';
import { collectThread } from '../resources/threads.js';
import { PagePump } from '../resources/page-pump.js';
import { processRecord } from '../resources/tree.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { VERSION } from '../version.js';
import { FrozenTree, type FrozenProcess } from './freeze.js';
import { Injector } from './inject.js';
import { PreCopy } from './precopy.js';
import { intersectRanges, subtractRanges, sumLengths } from '../util/ranges.js';

export interface DumpResult {
  pid: number;
  /** Processes in the tree, zombies included. */
  processes: number;
  /** Pages written while frozen. */
  pages: PageDumpStats;
  /** Pages copied before the freeze (--pre-copy). */
  precopyPages: number;
  imageBytes: number;
  frozenSeconds: number;
}

/** What becomes of the frozen process: killed, let go on, or held stopped (outcome in doubt). */
export type Release = 'kill' | 'continue' | 'hold';

export interface DumpOptions {
  /** After the image is written, unless beforeRelease decides otherwise. */
  after: 'kill' | 'continue';
  /** Called once the image is complete, with the PIDs of the frozen tree
   * (zombies included); may decide the release. If it throws, the process
   * is let go on as if nothing happened. */
  beforeRelease?: (frozen: number[]) => Promise<Release | void>;
  /** Copy the pages first while the tree runs; freeze only to copy what changed since. */
  preCopy?: boolean;
  /** Called once the tree is frozen (the pre-copy, if any, is done). */
  onFreeze?: () => void;
}

interface CollectedTask {
  pid: number;
  threads: number;
  record: {
    task: TaskRecord; regs: RegsRecord[]; signals: SignalsRecord[]; threads: ThreadRecord[]; timers: TimersRecord;
  };
  vmas: VmaRecord[];
  fds: FdRecord[];
}

/** Everything of one frozen process but its pages. */
function collectProcess(pid: number, proc: FrozenProcess): CollectedTask {
  checkTaskSupported(pid);
  const task = proc.threads[0];
  const memFd = native.openProcFile(pid, 'mem');
  const inj = new Injector(task, memFd);
  let record;
  try {
    inj.open();
    const injectors = proc.threads.map((t, i) => (i === 0 ? inj : inj.forThread(t)));
    record = {
      task: collectTask(pid, inj, proc.threads.map((t) => t.pid)),
      regs: proc.threads.map((t) => collectRegisters(t)),
      signals: proc.threads.map((t, i) => collectSignals(t, injectors[i], i === 0)),
      threads: proc.threads.map((t, i) => collectThread(t, injectors[i])),
      timers: collectTimers(task, inj),
    };
  } finally {
    inj.close();
    native.closeFd(memFd);
  }
  // after the injector's scratch page is gone
  return { pid, threads: proc.threads.length, record, vmas: collectVmas(pid), fds: collectFds(pid) };
}

/** The image's header; xsave: the FPU state of the root's main thread. */
function imageHeader(pid: number, xsave: Buffer): HeaderRecord {
  return {
    imageVersion: IMAGE_VERSION, toolVersion: VERSION, arch: 'x86_64', kernel: kernelRelease(), hostname: hostname(),
    pageSize: PAGE_SIZE, xsaveSize: xsave.length, xcr0: xsaveFeatures(xsave), createdMs: BigInt(Date.now()), rootPid: pid,
  };
}

export async function dumpToSink(pid: number, sink: ByteSink, opts: DumpOptions): Promise<DumpResult> {
  if (!Number.isInteger(pid) || pid <= 0) throw new CrmError(`invalid PID ${pid}`, ExitCode.USAGE);
  if (pid === process.pid || pid === process.ppid) throw new CrmError(`refusing to checkpoint crmigrate itself (PID ${pid})`, ExitCode.USAGE);
  checkTaskSupported(pid);
  const out = new ImageWriter(sink);
  await out.start();
  const pump = new PagePump();
  // with pre-copy, the header and every process's pages go out first, while the tree runs
  const precopyStats = emptyStats();
  const precopy = opts.preCopy ? await PreCopy.start(pid, (x) => imageHeader(pid, x), out, pump, precopyStats) : null;
  const pages = emptyStats(); // those of the frozen window
  let tree: FrozenTree;
  let t0: bigint;
  try {
    // on disk while the tree runs: the commit in the frozen window syncs only the rest
    if (precopy) await sink.sync?.();
    t0 = process.hrtime.bigint();
    tree = FrozenTree.freeze(pid);
    opts.onFreeze?.();
  } catch (err) {
    precopy?.stop();
    throw err;
  }
  let release: Release = 'continue';
  try {
    for (const m of tree.members) if (m.pid === process.pid) throw new CrmError(`refusing to checkpoint a tree holding crmigrate itself`, ExitCode.USAGE);
    // the pre-copied pages still valid; our tracking ends before the mappings are read
    const usable = new Map(tree.live.map((m) => [m.pid, precopy?.finish(m.pid) ?? []]));
    precopy?.stop();
    // Checked again (in collectProcess) now that nothing can change under us.
    const tasks = tree.live.map((m) => collectProcess(m.pid, m.proc!));
    const shmem = assignShmem(tasks);
    const sharedFiles = assignSharing(tasks);

    if (!precopy) await out.record(RecordType.HEADER, imageHeader(pid, tasks[0].record.regs[0].xsave));
    const maxFd = new Map(tasks.map((t) => [t.pid, t.fds.length ? t.fds[t.fds.length - 1].fd : -1]));
    for (const m of tree.members) await out.record(RecordType.PROCESS, processRecord(m, maxFd.get(m.pid) ?? -1));
    for (const o of shmem) await out.record(RecordType.SHMEM, { id: o.id, size: o.size });
    for (const o of shmem) if (o.sysv) await out.record(RecordType.SYSV_SHM, o.sysv);
    for (const f of sharedFiles) await out.record(RecordType.SHARED_FILE, f);
    for (const o of shmem) {
      await out.record(RecordType.OBJECT_PAGES, { id: o.id });
      await dumpShmemPages(o, out, pump, pages);
    }
    const byPid = new Map(tasks.map((t) => [t.pid, t]));
    for (const t of tasks) {
      const r = t.record;
      await out.record(RecordType.TASK, r.task);
      await out.record(RecordType.TIMERS, r.timers);
      for (let i = 0; i < t.threads; i++) {
        await out.record(RecordType.THREAD, r.threads[i]);
        await out.record(RecordType.REGS, r.regs[i]);
        await out.record(RecordType.SIGNALS, r.signals[i]);
      }
      for (const v of t.vmas) await out.record(RecordType.VMA, v);
      for (const f of t.fds) await out.record(RecordType.FD, f);
      const own = taskPages(t, t.pid === pid ? undefined : byPid.get(r.task.ppid));
      for (const rec of inheritedRecords(own.inherited, pages)) await out.record(RecordType.INHERITED, rec);
      const fromPrecopy = intersectRanges(own.stored, usable.get(t.pid) ?? []);
      for (const rec of rangeRecords(fromPrecopy)) await out.record(RecordType.PRECOPY_USE, rec);
      pages.precopiedPages += sumLengths(fromPrecopy) / PAGE_SIZE;
      await dumpPages(t.pid, fromPrecopy.length ? subtractRanges(own.stored, fromPrecopy) : own.stored, out, pump, pages);
    }
    await out.finish();
    release = opts.beforeRelease ? ((await opts.beforeRelease(tree.members.map((m) => m.pid))) ?? opts.after) : opts.after;
    const frozenSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { pid, processes: tree.members.length, pages, precopyPages: precopyStats.pages, imageBytes: out.bytesWritten, frozenSeconds };
  } finally {
    precopy?.stop(); // (already, unless the dump failed before)
    if (release === 'kill') tree.kill();
    else if (release === 'hold') tree.holdStopped();
    else tree.thaw();
  }
}
