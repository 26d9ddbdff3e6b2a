// `crmigrate dump`: freeze a process, write its image, then kill it or let it
// go on. Nothing is changed in the process unless the image is complete.
import { hostname, release as kernelRelease } from 'node:os';
import { native } from '../native/addon.js';
import { RecordType, IMAGE_VERSION, PAGE_SIZE, type HeaderRecord } from '../image/records.js';
import { ImageWriter, type ByteSink } from '../image/stream.js';
import { collectFds } from '../resources/files.js';
import { collectVmas, dumpPages, type PageDumpStats } from '../resources/memory.js';
import { collectRegisters, xsaveFeatures } from '../resources/registers.js';
import { collectSignals } from '../resources/signals.js';
import { checkTaskSupported, collectTask } from '../resources/task.js';
import { collectTimers } from '../resources/timers.js';
import { collectThread } from '../resources/threads.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { VERSION } from '../version.js';
import { FrozenProcess } from './freeze.js';
import { Injector } from './inject.js';

export interface DumpResult {
  pid: number;
  pages: PageDumpStats;
  imageBytes: number;
  frozenSeconds: number;
}

/** What becomes of the frozen process: killed, let go on, or held stopped (outcome in doubt). */
export type Release = 'kill' | 'continue' | 'hold';

export interface DumpOptions {
  /** After the image is written, unless beforeRelease decides otherwise. */
  after: 'kill' | 'continue';
  /** Called once the image is complete; may decide the release. If it
   * throws, the process is let go on as if nothing happened. */
  beforeRelease?: () => Promise<Release | void>;
}

export async function dumpToSink(pid: number, sink: ByteSink, opts: DumpOptions): Promise<DumpResult> {
  if (!Number.isInteger(pid) || pid <= 0) throw new CrmError(`invalid PID ${pid}`, ExitCode.USAGE);
  if (pid === process.pid || pid === process.ppid) throw new CrmError(`refusing to checkpoint crmigrate itself (PID ${pid})`, ExitCode.USAGE);
  checkTaskSupported(pid);
  const t0 = process.hrtime.bigint();
  const proc = FrozenProcess.freeze(pid);
  const task = proc.threads[0];
  let release: Release = 'continue';
  try {
    // Checked again now that nothing can change under us.
    checkTaskSupported(pid);
    const memFd = native.openProcFile(pid, 'mem');
    let record;
    const inj = new Injector(task, memFd);
    try {
      inj.open();
      const injectors = proc.threads.map((t, i) => (i === 0 ? inj : inj.forThread(t)));
      record = {
        task: collectTask(pid, inj),
        regs: proc.threads.map((t) => collectRegisters(t)),
        signals: proc.threads.map((t, i) => collectSignals(t, injectors[i], i === 0)),
        threads: proc.threads.map((t, i) => collectThread(t, injectors[i])),
        timers: collectTimers(task, inj),
      };
    } finally {
      inj.close();
      native.closeFd(memFd);
    }
    const vmas = collectVmas(pid);
    const fds = collectFds(pid);

    const out = new ImageWriter(sink);
    await out.start();
    const header: HeaderRecord = {
      imageVersion: IMAGE_VERSION, toolVersion: VERSION, arch: 'x86_64', kernel: kernelRelease(), hostname: hostname(),
      pageSize: PAGE_SIZE, xsaveSize: record.regs[0].xsave.length, xcr0: xsaveFeatures(record.regs[0].xsave),
      createdMs: BigInt(Date.now()), rootPid: pid,
    };
    await out.record(RecordType.HEADER, header);
    await out.record(RecordType.TASK, record.task);
    await out.record(RecordType.TIMERS, record.timers);
    for (let i = 0; i < proc.threads.length; i++) {
      await out.record(RecordType.THREAD, record.threads[i]);
      await out.record(RecordType.REGS, record.regs[i]);
      await out.record(RecordType.SIGNALS, record.signals[i]);
    }
    for (const v of vmas) await out.record(RecordType.VMA, v);
    for (const f of fds) await out.record(RecordType.FD, f);
    const pages = await dumpPages(pid, vmas, out);
    await out.finish();
    release = opts.beforeRelease ? ((await opts.beforeRelease()) ?? opts.after) : opts.after;
    const frozenSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { pid, pages, imageBytes: out.bytesWritten, frozenSeconds };
  } finally {
    if (release === 'kill') proc.kill();
    else if (release === 'hold') proc.holdStopped();
    else proc.thaw();
  }
}
