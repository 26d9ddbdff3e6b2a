// `crmigrate inspect`: an image as readable JSON. Every record is decoded and
// validated on the way, so this is also the way to check an image.
import { VmaKind, type VmaRecord } from '../image/records.js';
import { readSections, type ImageMeta, type Section } from '../restore/image-model.js';
import { getReg } from '../dump/freeze.js';

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const kindName = (k: number): string => Object.entries(VmaKind).find(([, v]) => v === k)?.[0].toLowerCase() ?? String(k);
const protString = (p: number): string => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`;

export async function inspectImage(source: AsyncIterable<Buffer>): Promise<object> {
  const sections = readSections(source);
  let tree: Extract<Section, { kind: 'tree' }> | undefined;
  const tasks: { meta: ImageMeta; pages: Map<VmaRecord, number> }[] = [];
  const shmemPages = new Map<number, number>();
  const precopyPages = new Map<number, number>();
  let precopy: number | null = null;
  let object: number | null = null;
  let pages = 0;
  let r = await sections.next();
  for (; !r.done; r = await sections.next()) {
    const s = r.value;
    if (s.kind === 'precopy') precopy = s.pid;
    else if (s.kind === 'tree') { precopy = null; tree = s; }
    else if (s.kind === 'shmem') object = s.object.id;
    else if (s.kind === 'task') { object = null; tasks.push({ meta: s.meta, pages: new Map() }); }
    else {
      const n = s.data.length / 4096;
      pages += n;
      if (precopy !== null) { precopyPages.set(precopy, (precopyPages.get(precopy) ?? 0) + n); continue; }
      if (object !== null) { shmemPages.set(object, (shmemPages.get(object) ?? 0) + n); continue; }
      const t = tasks[tasks.length - 1];
      const v = t.meta.vmas.find((x) => s.addr >= x.start && s.addr < x.end);
      if (v) t.pages.set(v, (t.pages.get(v) ?? 0) + n);
    }
  }
  const trailer = r.value;
  const h = tree!.header;
  return {
    header: { ...h, xcr0: hex(h.xcr0), createdAt: new Date(Number(h.createdMs)).toISOString(), createdMs: undefined },
    processes: tree!.processes.map((p) => ({
      pid: p.pid, ppid: p.ppid, pgid: p.pgid, sid: p.sid, threads: p.tids.length,
      zombie: p.zombie ? (p.exitSignal ? { signal: p.exitSignal } : { code: p.exitCode }) : undefined,
    })),
    preCopy: precopyPages.size ? [...precopyPages].map(([pid, n]) => ({ pid, pages: n })) : undefined,
    sharedMemory: tree!.shmem.map((o) => ({ id: o.id, bytes: o.size, pages: shmemPages.get(o.id) ?? 0 })),
    sharedFiles: tree!.files.map((f) => ({ id: f.id, path: f.path, pos: Number(f.pos), flags: `0${f.flags.toString(8)}` })),
    tasks: tasks.map((t) => describeTask(t.meta, t.pages)),
    pages: { count: pages, bytes: pages * 4096 },
    trailer: { records: trailer.records, pages: trailer.pages },
  };
}

/** One task of the image as JSON. */
/** Pages of the mapping the task takes from its parent (copy-on-write shared). */
function inheritedIn(ranges: ImageMeta['inherited'], v: VmaRecord): number {
  let n = 0;
  for (const r of ranges) if (r.start >= v.start && r.start < v.end) n += r.len / 4096;
  return n;
}

function describeTask(m: ImageMeta, pagesPerVma: Map<VmaRecord, number>): object {
  const gp = m.regs[0].gp;
  return {
    pid: m.task.pid, ppid: m.task.ppid, pgid: m.task.pgid, sid: m.task.sid, comm: m.task.comm, exe: m.task.exe,
    cwd: m.task.cwd, root: m.task.root, uids: m.task.uids, gids: m.task.gids, umask: m.task.umask.toString(8),
    personality: hex(m.task.personality),
    mm: { code: [hex(m.task.startCode), hex(m.task.endCode)], data: [hex(m.task.startData), hex(m.task.endData)], brk: [hex(m.task.startBrk), hex(m.task.brk)], stack: hex(m.task.startStack) },
    rseq: m.task.rseqLen ? { abi: hex(m.task.rseqAbi), length: m.task.rseqLen, signature: hex(m.task.rseqSig) } : null,
    registers: {
      rip: hex(getReg(gp, 'rip')), rsp: hex(getReg(gp, 'rsp')), rax: hex(getReg(gp, 'rax')), fsBase: hex(getReg(gp, 'fs_base')),
      gsBase: hex(getReg(gp, 'gs_base')), xsaveBytes: m.regs[0].xsave.length,
      inSyscall: m.regs[0].inSyscall ? Number(m.regs[0].syscallNr) : null,
    },
    threads: m.threads.map((t, k) => ({
      tid: t.tid, name: t.comm, rip: hex(getReg(m.regs[k].gp, 'rip')), fsBase: hex(getReg(m.regs[k].gp, 'fs_base')),
      inSyscall: m.regs[k].inSyscall ? Number(m.regs[k].syscallNr) : null, blocked: hex(m.signals[k].blocked),
      pending: m.signals[k].pending.filter((p) => !p.shared).map((p) => p.info.readInt32LE(0)),
      rseq: t.rseqLen ? hex(t.rseqAbi) : null, robustList: hex(t.robustList), clearChildTid: hex(t.clearChildTid),
    })),
    signals: {
      blocked: hex(m.signals[0].blocked),
      handlers: m.signals[0].actions.map((a) => ({ signal: a.sig, handler: hex(a.handler), flags: hex(a.flags), mask: hex(a.mask) })),
      pending: m.signals.flatMap((s) => s.pending.map((p) => ({ signal: p.info.readInt32LE(0), code: p.info.readInt32LE(8), shared: p.shared, tid: p.shared ? undefined : s.tid }))),
      altstack: { sp: hex(m.signals[0].altstackSp), size: Number(m.signals[0].altstackSize), flags: m.signals[0].altstackFlags },
    },
    itimers: m.timers.itimers.map((t) => ({ which: ['real', 'virtual', 'prof'][t.which], interval: `${t.intervalSec}.${String(t.intervalUsec).padStart(6, '0')}`, value: `${t.valueSec}.${String(t.valueUsec).padStart(6, '0')}` })),
    mappings: m.vmas.map((v) => ({
      start: hex(v.start), end: hex(v.end), kind: kindName(v.kind), prot: protString(v.prot), path: v.path || undefined,
      offset: v.pgoff ? hex(v.pgoff * 4096) : undefined, pages: pagesPerVma.get(v) ?? 0, sharedMemory: v.shmId || undefined,
      inheritedPages: inheritedIn(m.inherited, v) || undefined,
    })),
    inheritedPages: m.inherited.reduce((n, r) => n + r.len / 4096, 0),
    preCopiedPages: m.precopied.length ? m.precopied.reduce((n, r) => n + r.len / 4096, 0) : undefined,
    files: m.fds.map((f) => ({ fd: f.fd, path: f.path, kind: ['', 'file', 'dir', 'path'][f.kind], flags: `0${f.flags.toString(8)}`, pos: Number(f.pos), cloexec: f.cloexec, shared: f.shareId || undefined })),
  };
}
