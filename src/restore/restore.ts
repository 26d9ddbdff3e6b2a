// Restoring from an image stream: decode and check the metadata, preflight
// (files, PID), build the plan, run crmigrate-restore and feed it the pages.
// The restored task is only let go once the whole stream, trailer included,
// has been verified; any failure before that kills it.
import { spawn, type ChildProcessByStdio, type StdioOptions } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { nativeBin } from '../native/addon.js';
import { checkFilesPresent } from '../resources/files.js';
import { planVmas } from '../resources/memory.js';
import { planRegisters } from '../resources/registers.js';
import { planSignals } from '../resources/signals.js';
import { planTask } from '../resources/task.js';
import { planTimers } from '../resources/timers.js';
import { planThreads } from '../resources/threads.js';
import { planTree, treePids } from '../resources/tree.js';
import { planFds } from '../resources/files.js';
import { CrmError, ExitCode, ImageError } from '../util/errors.js';
import { pidInUse } from '../util/procfs.js';
import { mappedImageOf, withTransientPages } from '../image/stream.js';
import { RestorerInput } from './feed.js';
import { PrecopyIndex } from './precopy-index.js';
import { PageStaging } from './staging.js';
import { readSections, type ImageMeta, type Section } from './image-model.js';
import { chunkHeader, CHUNK_END, CHUNK_PAGES, encodePlan, encodeTree, fileChunk } from './plan-codec.js';
import { emptyTask, type Plan } from './plan-model.js';

export function buildPlan(meta: ImageMeta): Plan {
  const plan: Plan = { task: emptyTask(), vmas: [], fds: [], siginfos: [], xsave: Buffer.alloc(0), threads: [], inherited: [] };
  planTask(meta.task, plan);
  planRegisters(meta.regs[0], plan);
  planSignals(meta.signals[0], plan);
  planThreads(meta.task.tid, meta.threads, meta.regs, meta.signals, plan);
  planTimers(meta.timers, plan);
  planVmas(meta.vmas, meta.inherited, plan);
  planFds(meta.fds, plan);
  return plan;
}

/** Every PID and TID the tree takes must be free here. */
export function checkPidsFree(pids: number[], processes: Set<number>): void {
  const taken = pids.filter(pidInUse);
  if (!taken.length) return;
  const what = taken.map((pid) => (processes.has(pid) ? `PID ${pid}` : `thread ID ${pid}`)).join(', ');
  throw new CrmError(`cannot restore: ${what} ${taken.length > 1 ? 'are' : 'is'} already in use on this host`, ExitCode.PID_TAKEN);
}

/** Every file a task needs must be here, as it was. */
export function checkTaskFiles(meta: ImageMeta): void {
  const problems = checkFilesPresent(meta.vmas, meta.fds);
  if (problems.length) throw new CrmError(`cannot restore: ${problems.join('; ')}`, ExitCode.MISSING_FILE);
}

export interface RestoreOptions {
  pidfile?: string;
  /** Journal file consulted by the restorer if crmigrate goes away after READY. */
  commitFile?: string;
  /** Decides whether the restored task may run (migration commit); default: yes. */
  commit?: (pid: number) => Promise<boolean>;
}

export interface RestoreResult {
  pid: number;
  pages: number;
  seconds: number;
}

export async function restoreFromStream(source: AsyncIterable<Buffer>, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const t0 = process.hrtime.bigint();
  const sections = readSections(withTransientPages(source));
  try {
    return await restoreSections(sections, opts, t0, mappedImageOf(source)?.fd);
  } finally {
    // closes the image source (a file or mapping) however the restore ended
    await sections.return(undefined as never).catch(() => undefined);
  }
}

/**
 * imageFd: the image file, when the source is one mapped in place. The
 * restorer then maps it too and takes page data straight from it (checked
 * here first, as every record is); only where the pages lie crosses the pipe.
 */
async function restoreSections(sections: AsyncGenerator<Section, unknown>, opts: RestoreOptions, t0: bigint, imageFd?: number): Promise<RestoreResult> {
  const staging = imageFd === undefined ? new PageStaging() : undefined;
  try {
    return await restoreTree(sections, opts, t0, imageFd, staging);
  } finally {
    staging?.close();
  }
}

async function restoreTree(sections: AsyncGenerator<Section, unknown>, opts: RestoreOptions, t0: bigint, imageFd: number | undefined, staging: PageStaging | undefined): Promise<RestoreResult> {
  // pre-copied pages come first: only where they lie in the file is kept
  // (a stream's are staged in memory until their task is restored)
  const precopies = new Map<number, PrecopyIndex>();
  let first = await sections.next();
  for (let pid = 0; !first.done && (first.value.kind === 'precopy' || first.value.kind === 'pages'); first = await sections.next()) {
    const v = first.value;
    if (v.kind === 'precopy') {
      pid = v.pid;
      if (!precopies.has(pid)) precopies.set(pid, new PrecopyIndex());
    } else {
      const fileOffset = staging ? await staging.add(v.data) : v.fileOffset;
      if (fileOffset === undefined) throw new ImageError('image: pre-copied pages with no place in the image file');
      // a page copied again replaces its earlier copy (a staged one is freed)
      const replaced = precopies.get(pid)!.add(v.addr, v.data.length, fileOffset);
      if (staging) for (const old of replaced) staging.release(old.fileOffset, old.len);
    }
  }
  if (first.done || first.value.kind !== 'tree') throw new ImageError('image has no process tree');
  const tree = first.value;
  const treePlan = planTree(tree.processes, tree.shmem, tree.files, tree.sysv);
  checkPidsFree(treePids(treePlan, tree.processes), new Set(treePlan.tasks.map((t) => t.pid)));

  // stdin: the plan and the page stream, through a pipe of our own (feed.ts)
  const input = new RestorerInput();
  // fd 3: the image file that file chunks point into, or the staged pages
  const pageFile = staging?.bytes ? { fd: staging.fd, flag: '--staged-fd' } : imageFd !== undefined ? { fd: imageFd, flag: '--image-fd' } : undefined;
  const args = [...(opts.commitFile ? ['--commit-file', opts.commitFile] : []), ...(pageFile ? [pageFile.flag, '3'] : [])];
  const stdio: StdioOptions = [input.childFd, 'pipe', 'pipe', ...(pageFile ? [pageFile.fd] : [])];
  const child = spawn(nativeBin('crmigrate-restore'), args, { stdio }) as unknown as ChildProcessByStdio<null, Readable, Readable>;
  input.spawned();
  child.on('close', () => input.close());
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l));
  const lines = createInterface({ input: child.stdout });
  const status: string[] = [];
  let wake: (() => void) | null = null;
  lines.on('line', (l) => { status.push(l); wake?.(); });
  let exitCode: number | null = null;
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, sig) => {
      exitCode = code ?? 128 + (sig ? 9 : 0);
      wake?.();
      resolve(exitCode);
    }));

  const failure = async (fallback: string): Promise<never> => {
    child.kill('SIGKILL');
    const code = await exited;
    const msg = stderr.find((l) => l.startsWith('crmigrate-restore: '))?.slice('crmigrate-restore: '.length) ?? fallback;
    throw new CrmError(`restore failed: ${msg}`, code === 2 ? ExitCode.PID_TAKEN : ExitCode.FAILURE);
  };
  const write = (b: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      if (exitCode !== null) { reject(new Error('restorer exited')); return; }
      input.write(b).then(resolve, reject); // EPIPE when it dies: reported through its exit
    });
  const nextStatus = async (): Promise<string | null> => {
    while (!status.length) {
      if (exitCode !== null) return null;
      await new Promise<void>((r) => { wake = r; });
      wake = null;
    }
    return status.shift()!;
  };

  // tree section, then each shared memory object's pages and each task's
  // plan and pages, every one ended by CHUNK_END
  let pages = 0;
  try {
    await write(encodeTree(treePlan));
    let open = false;
    for (let s = await sections.next(); !s.done; s = await sections.next()) {
      const v = s.value;
      if (v.kind === 'pages') {
        if (imageFd !== undefined && v.fileOffset !== undefined) {
          await write(fileChunk(v.addr, v.data.length, v.fileOffset));
        } else {
          await write(chunkHeader(CHUNK_PAGES, v.addr, v.data.length));
          await write(v.data);
        }
        pages += v.data.length / 4096;
        continue;
      }
      if (open) await write(chunkHeader(CHUNK_END, 0, 0));
      open = true;
      if (v.kind === 'task') {
        checkTaskFiles(v.meta);
        await write(encodePlan(buildPlan(v.meta)));
        // the pages taken from the pre-copy, then (below) the task's own
        const chunks = precopies.get(v.meta.task.pid)?.chunks(v.meta.precopied) ?? [];
        const named = v.meta.precopied.reduce((n, r) => n + r.len, 0);
        if (chunks.reduce((n, c) => n + c.len, 0) !== named) throw new ImageError(`image: task ${v.meta.task.pid} takes pre-copied pages its pre-copy does not have`);
        for (const c of chunks) {
          await write(fileChunk(c.addr, c.len, c.fileOffset));
          pages += c.len / 4096;
        }
      }
    }
    if (open) await write(chunkHeader(CHUNK_END, 0, 0));
  } catch (err) {
    if (err instanceof CrmError) { // ImageError included
      child.kill('SIGKILL');
      await exited;
      throw err;
    }
    return failure((err as Error).message);
  }
  const ready = await nextStatus();
  if (!ready?.startsWith('READY ')) return failure('the restorer stopped before the tree was complete');
  const pid = Number(ready.slice(6));
  const go = opts.commit ? await opts.commit(pid).catch(() => false) : true;
  await write(Buffer.from(go ? 'G' : 'A')).catch(() => undefined);
  const running = await nextStatus();
  const code = await exited;
  if (!go) throw new CrmError('restore discarded before the task ran', ExitCode.FAILURE);
  if (!running?.startsWith('RUNNING ') || code !== 0) return failure(`the restorer exited with status ${code}`);
  if (opts.pidfile) await writeFile(opts.pidfile, `${pid}\n`);
  return { pid, pages, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}
