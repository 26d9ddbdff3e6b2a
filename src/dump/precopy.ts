// Pre-copy (`crmigrate dump --pre-copy`): the pages of every process are
// copied into the image while the tree still runs, so the frozen window only
// has to copy what was written since. Writes are tracked without soft-dirty
// bits (not in this kernel): a userfaultfd is made inside each process (an
// injected system call; it binds to the caller's mm), taken over with
// pidfd_getfd and closed there, then registered write-protect with WP_ASYNC
// on the mappings that hold pages. The kernel resolves each first write by
// itself and PAGEMAP_SCAN lists the pages written since the protection.
//
// A pre-copied page is used only if, at the freeze, it is still in a mapping
// registered by us (a mapping made, moved or remapped since is not, and is
// copied whole then) and was not written. Closing our userfaultfd at the
// freeze unregisters everything; so does our exit, whatever happens.
import { native } from '../native/addon.js';
import { PAGE_SIZE, RecordType, type HeaderRecord, type VmaRecord } from '../image/records.js';
import type { ImageWriter } from '../image/stream.js';
import { collectVmas, dumpPages, holdsPages, parseSmaps, presentPages, type PageDumpStats } from '../resources/memory.js';
import type { PagePump } from '../resources/page-pump.js';
import { collectRegisters } from '../resources/registers.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { readProc } from '../util/procfs.js';
import { intersectRanges, subtractRanges, sumLengths, unionRanges } from '../util/ranges.js';
import { FrozenTree, SYS, type FrozenTask } from './freeze.js';
import { Injector } from './inject.js';

/** Rounds of copying while the tree runs, at most. */
const MAX_ROUNDS = 4;
/** Below this many pages written in a round, the freeze copies them. */
const MIN_ROUND_PAGES = 256;

const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const UFFD_USER_MODE_ONLY = 1;

interface Tracked {
  pid: number;
  uffd: number;
  /** The mappings registered. */
  registered: VmaRecord[];
  /** [addr, len] pairs copied while running. */
  copied: number[];
}

export class PreCopy {
  private constructor(private readonly tracked: Map<number, Tracked>) {}


  /**
   * Freezes the tree for a moment to hand each process a userfaultfd, then
   * copies every page of the registered mappings while the tree runs on,
   * and again what was written meanwhile (a few rounds): the header, then
   * per round and process a PRECOPY record and the PAGES.
   */
  static async start(pid: number, makeHeader: (xsave: Buffer) => HeaderRecord, out: ImageWriter, pump: PagePump, stats: PageDumpStats): Promise<PreCopy> {
    const tracked = new Map<number, Tracked>();
    try {
      const tree = FrozenTree.freeze(pid);
      let header: HeaderRecord;
      try {
        header = makeHeader(collectRegisters(tree.live[0].proc!.threads[0]).xsave);
        for (const m of tree.live) tracked.set(m.pid, { pid: m.pid, uffd: takeUserfaultfd(m.pid, m.proc!.threads[0]), registered: [], copied: [] });
      } finally {
        tree.thaw();
      }
      for (const t of tracked.values()) register(t);
      await out.record(RecordType.HEADER, header);
      // Round 0 copies every page; each further round copies again what was
      // written meanwhile, while that still shrinks enough to be worth it.
      let last = Infinity;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        let copied = 0;
        for (const t of tracked.values()) copied += await copyRound(t, round, out, pump, stats);
        if (copied < MIN_ROUND_PAGES || copied > last / 4) break;
        last = copied;
      }
      return new PreCopy(tracked);
    } catch (err) {
      for (const t of tracked.values()) native.closeFd(t.uffd);
      throw err;
    }
  }

  /**
   * At the freeze, before anything else looks at the mappings: the pages of
   * the pre-copy of pid still valid ([addr, len] pairs), and its tracking
   * ends (the userfaultfd is closed: its mappings are unregistered).
   */
  finish(pid: number): number[] {
    const t = this.tracked.get(pid);
    if (!t) return [];
    this.tracked.delete(pid);
    try {
      return subtractRanges(intersectRanges(t.copied, stillTracked(pid)), writtenSinceLast(pid, false));
    } catch {
      return []; // gone
    } finally {
      native.closeFd(t.uffd);
    }
  }

  /** Ends the tracking of every process left (a failed dump). */
  stop(): void {
    for (const t of this.tracked.values()) native.closeFd(t.uffd);
    this.tracked.clear();
  }
}

/**
 * One round for one process: all its pages in memory (round 0), or those
 * written since the last round (protected again as they are listed). A
 * PRECOPY record and the pages; later copies of a page replace earlier ones.
 * Returns the pages copied.
 */
async function copyRound(t: Tracked, round: number, out: ImageWriter, pump: PagePump, stats: PageDumpStats): Promise<number> {
  if (round > 0 && !t.copied.length) return 0;
  let pages: number[];
  try {
    // swapped pages are left for the freeze: they would be read in for nothing
    const present = presentPages(t.pid, t.registered, true);
    pages = round === 0 ? present : intersectRanges(writtenSinceLast(t.pid, true), present);
    if (!pages.length) return 0;
    await out.record(RecordType.PRECOPY, { pid: t.pid });
    await dumpPages(t.pid, pages, out, pump, stats);
  } catch (err) {
    // the process unmapped or exited under us: none of its pre-copy is used
    if (!['EIO', 'EFAULT', 'ESRCH', 'ENOENT'].includes(String((err as { code?: unknown }).code))) throw err;
    t.copied = [];
    return 0;
  }
  t.copied = unionRanges(t.copied, pages);
  return sumLengths(pages) / PAGE_SIZE;
}

/** [addr, len] pairs of the mappings still registered by us (smaps "uw"). */
function stillTracked(pid: number): number[] {
  const out: number[] = [];
  for (const v of parseSmaps(readProc(pid, 'smaps'))) if (v.vmFlags.includes('uw')) out.push(v.start, v.end - v.start);
  return out;
}

/** Pages of the tracked mappings written since they were last protected;
 * reprotect: protect them again in the same walk. */
function writtenSinceLast(pid: number, reprotect: boolean): number[] {
  const ours = stillTracked(pid);
  const pagemap = native.openProcFile(pid, 'pagemap');
  const written: number[] = [];
  try {
    for (let i = 0; i < ours.length; i += 2) {
      const w = native.writtenPages(pagemap, ours[i], ours[i] + ours[i + 1], reprotect);
      for (let k = 0; k < w.length; k += 2) written.push(w[k], w[k + 1] - w[k]);
    }
  } finally {
    native.closeFd(pagemap);
  }
  return written;
}

/** A userfaultfd of the process's mm, made inside it and moved to us. */
function takeUserfaultfd(pid: number, thread: FrozenTask): number {
  const memFd = native.openProcFile(pid, 'mem');
  const inj = new Injector(thread, memFd);
  try {
    inj.open();
    const fd = inj.call(SYS.userfaultfd, [O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY]);
    if (fd < 0n) throw new CrmError(`cannot track the writes of process ${pid}: userfaultfd failed there (${-fd})`, ExitCode.UNSUPPORTED);
    try {
      return native.pidfdGetfd(pid, Number(fd));
    } finally {
      inj.call(SYS.close, [fd]);
    }
  } finally {
    inj.close();
    native.closeFd(memFd);
  }
}

/** Registers the mappings that hold pages and protects all their pages. */
function register(t: Tracked): void {
  native.uffdEnableWpAsync(t.uffd);
  const pagemap = native.openProcFile(t.pid, 'pagemap');
  try {
    for (const v of collectVmas(t.pid)) {
      if (!holdsPages(v.kind)) continue;
      // a mapping the kernel will not track is copied whole at the freeze
      if (native.uffdRegisterWp(t.uffd, v.start, v.end - v.start) !== 0) continue;
      native.writtenPages(pagemap, v.start, v.end, true);
      t.registered.push(v);
    }
  } finally {
    native.closeFd(pagemap);
  }
}
