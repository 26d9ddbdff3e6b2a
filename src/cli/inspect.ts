// `crmigrate inspect`: an image as readable JSON. Every record is decoded and
// validated on the way, so this is also the way to check an image.
import { RecordType, VmaKind, type VmaRecord } from '../image/records.js';
import { readImage } from '../image/stream.js';
import { MetaCollector } from '../restore/image-model.js';
import { getReg } from '../dump/freeze.js';

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const kindName = (k: number): string => Object.entries(VmaKind).find(([, v]) => v === k)?.[0].toLowerCase() ?? String(k);
const protString = (p: number): string => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`;

export async function inspectImage(source: AsyncIterable<Buffer>): Promise<object> {
  const meta = new MetaCollector();
  const pagesPerVma = new Map<VmaRecord, number>();
  let vmas: VmaRecord[] = [];
  const items = readImage(source);
  let pages = 0;
  let r = await items.next();
  let metaDone = false;
  while (!r.done) {
    const item = r.value;
    if (item.type === RecordType.PAGES) {
      if (!metaDone) { vmas = meta.finish().vmas; metaDone = true; }
      const n = item.data.length / 4096;
      pages += n;
      const v = vmas.find((x) => item.addr >= x.start && item.addr < x.end);
      if (v) pagesPerVma.set(v, (pagesPerVma.get(v) ?? 0) + n);
    } else {
      meta.add(item);
    }
    r = await items.next();
  }
  const trailer = r.value;
  const m = meta.finish();
  const gp = m.regs[0].gp;
  return {
    header: { ...m.header, xcr0: hex(m.header.xcr0), createdAt: new Date(Number(m.header.createdMs)).toISOString(), createdMs: undefined },
    tasks: [{
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
        offset: v.pgoff ? hex(v.pgoff * 4096) : undefined, pages: pagesPerVma.get(v) ?? 0,
      })),
      files: m.fds.map((f) => ({ fd: f.fd, path: f.path, kind: ['', 'file', 'dir', 'path'][f.kind], flags: `0${f.flags.toString(8)}`, pos: Number(f.pos), cloexec: f.cloexec, shared: f.shareId || undefined })),
    }],
    pages: { count: pages, bytes: pages * 4096 },
    trailer: { records: trailer.records, pages: trailer.pages },
  };
}
