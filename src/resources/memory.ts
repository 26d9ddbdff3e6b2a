// Memory mappings: which VMAs the task has (smaps), what kind each is, which
// of their pages hold data (PAGEMAP_SCAN: present or swapped, not the zero
// page, and for private file mappings only the copy-on-write copies), and the
// page bytes themselves (pread of /proc/PID/mem on worker threads).
import { lstatSync, statSync } from 'node:fs';
import { native } from '../native/addon.js';
import { PAGE_SIZE, VmaKind, VmFlag, type FileIdentity, type VmaKindId, type VmaRecord } from '../image/records.js';
import type { ImageWriter } from '../image/stream.js';
import type { Plan } from '../restore/plan-model.js';
import { UnsupportedError } from '../util/errors.js';
import { procPath, readProc } from '../util/procfs.js';

const O_RDONLY = 0;
const O_RDWR = 2;

const VMFLAG_BY_NAME: Record<string, number> = {
  gd: VmFlag.GROWSDOWN, nr: VmFlag.NORESERVE, dc: VmFlag.DONTFORK, dd: VmFlag.DONTDUMP, wf: VmFlag.WIPEONFORK,
  hg: VmFlag.HUGEPAGE, nh: VmFlag.NOHUGEPAGE, lo: VmFlag.LOCKED, de: VmFlag.DONTEXPAND, ac: VmFlag.ACCOUNT,
};
// VmFlags that mean a mapping crmigrate cannot recreate.
const UNSUPPORTED_VMFLAGS: Record<string, string> = {
  io: 'a device I/O mapping', pf: 'a PFN mapping (device memory)', um: 'a userfaultfd-registered mapping',
  uw: 'a userfaultfd-registered mapping', ui: 'a userfaultfd-registered mapping', sl: 'a sealed mapping',
};

export const NO_FILE: FileIdentity = { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n };

export function fileIdentity(path: string): FileIdentity {
  const st = statSync(path, { bigint: true });
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs };
}

interface SmapsEntry {
  start: number;
  end: number;
  perms: string;
  offset: number;
  inode: number;
  path: string;
  vmFlags: string[];
}

export function parseSmaps(text: string): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/;
  for (const line of text.split('\n')) {
    const m = header.exec(line);
    if (m) {
      out.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16), inode: Number(m[5]), path: m[6], vmFlags: [] });
    } else if (line.startsWith('VmFlags:') && out.length) {
      out[out.length - 1].vmFlags = line.slice(8).trim().split(/\s+/);
    }
  }
  return out;
}

function classify(pid: number, e: SmapsEntry): { kind: VmaKindId; path: string } | null {
  const where = `mapping ${e.start.toString(16)}-${e.end.toString(16)} of process ${pid}`;
  const shared = e.perms[3] === 's';
  const p = e.path;
  if (p === '[vsyscall]') return null;
  if (p === '[vdso]') return { kind: VmaKind.VDSO, path: p };
  if (p === '[vvar]' || p === '[vvar_vclock]') return { kind: VmaKind.VVAR, path: p };
  if (p === '' || p === '[heap]' || p === '[stack]' || p.startsWith('[anon:'))
    return { kind: shared ? VmaKind.ANON_SHARED : VmaKind.ANON_PRIVATE, path: p };
  if (p.startsWith('[anon_shmem:') || (p === '/dev/zero (deleted)' && shared)) return { kind: VmaKind.ANON_SHARED, path: '' };
  if (p.startsWith('/memfd:')) throw new UnsupportedError(`${where} is a memfd (${p}); not supported yet`);
  if (p.startsWith('/SYSV')) throw new UnsupportedError(`${where} is System V shared memory; not supported yet`);
  if (p.startsWith('[')) throw new UnsupportedError(`${where} is a special mapping ${p}; not supported`);
  if (p.endsWith(' (deleted)')) throw new UnsupportedError(`${where} maps a deleted file ${p}; unlinked files are not supported yet`);
  return { kind: shared ? VmaKind.FILE_SHARED : VmaKind.FILE_PRIVATE, path: p };
}

export function collectVmas(pid: number): VmaRecord[] {
  const out: VmaRecord[] = [];
  for (const e of parseSmaps(readProc(pid, 'smaps'))) {
    const c = classify(pid, e);
    if (!c) continue;
    const special = c.kind === VmaKind.VDSO || c.kind === VmaKind.VVAR;
    for (const f of e.vmFlags) {
      if (UNSUPPORTED_VMFLAGS[f] && !special) throw new UnsupportedError(`mapping ${e.start.toString(16)}-${e.end.toString(16)} of process ${pid} is ${UNSUPPORTED_VMFLAGS[f]}; not supported`);
    }
    let vmFlags = 0;
    for (const f of e.vmFlags) vmFlags |= VMFLAG_BY_NAME[f] ?? 0;
    const prot = (e.perms[0] === 'r' ? 1 : 0) | (e.perms[1] === 'w' ? 2 : 0) | (e.perms[2] === 'x' ? 4 : 0);
    let file = NO_FILE;
    let openWrite = false;
    if (c.kind === VmaKind.FILE_PRIVATE || c.kind === VmaKind.FILE_SHARED) {
      file = fileIdentity(c.path);
      if (Number(file.ino) !== e.inode)
        throw new UnsupportedError(`${c.path} was replaced on disk after process ${pid} mapped it; cannot restore that mapping`);
      // map_files links carry the open mode of the mapped file
      openWrite = (lstatSync(procPath(pid, `map_files/${e.start.toString(16)}-${e.end.toString(16)}`)).mode & 0o200) !== 0;
    }
    out.push({ start: e.start, end: e.end, kind: c.kind, prot, vmFlags, pgoff: e.offset / PAGE_SIZE, path: c.path, openWrite, file });
  }
  return out;
}

/** Does the image carry page data for this kind of mapping? */
export const holdsPages = (kind: number): boolean =>
  kind === VmaKind.ANON_PRIVATE || kind === VmaKind.ANON_SHARED || kind === VmaKind.FILE_PRIVATE;

export interface PageDumpStats {
  pages: number;
  bytes: number;
  readSeconds: number;
}

const BATCH_BYTES = 16 << 20;

/**
 * Streams the data pages of every mapping into the image. Two buffers
 * alternate: while one is written out, the next is read on a worker thread.
 */
export async function dumpPages(pid: number, vmas: VmaRecord[], out: ImageWriter): Promise<PageDumpStats> {
  const pagemapFd = native.openProcFile(pid, 'pagemap');
  const memFd = native.openProcFile(pid, 'mem');
  const stats: PageDumpStats = { pages: 0, bytes: 0, readSeconds: 0 };
  try {
    // ranges of at most BATCH_BYTES, grouped into batches of at most BATCH_BYTES
    const batches: number[][] = [];
    let cur: number[] = [];
    let curBytes = 0;
    for (const v of vmas) {
      if (!holdsPages(v.kind)) continue;
      const found = native.scanPages(pagemapFd, v.start, v.end, v.kind === VmaKind.FILE_PRIVATE);
      for (let i = 0; i < found.length; i += 2) {
        for (let s = found[i]; s < found[i + 1]; ) {
          const len = Math.min(found[i + 1] - s, BATCH_BYTES);
          if (curBytes + len > BATCH_BYTES) { batches.push(cur); cur = []; curBytes = 0; }
          cur.push(s, len);
          curBytes += len;
          s += len;
        }
      }
    }
    if (cur.length) batches.push(cur);
    const buffers = [Buffer.allocUnsafe(BATCH_BYTES), Buffer.allocUnsafe(BATCH_BYTES)];
    const read = (i: number): Promise<Uint32Array> => {
      const t0 = process.hrtime.bigint();
      return native.readRanges(memFd, buffers[i % 2], Float64Array.from(batches[i])).then((crcs) => {
        stats.readSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
        return crcs;
      });
    };
    let pending = batches.length ? read(0) : null;
    for (let i = 0; i < batches.length; i++) {
      const crcs = await pending!;
      pending = i + 1 < batches.length ? read(i + 1) : null;
      const buf = buffers[i % 2];
      let off = 0;
      for (let k = 0; k < batches[i].length; k += 2) {
        const len = batches[i][k + 1];
        await out.pagesRecord(batches[i][k], buf.subarray(off, off + len), crcs[k / 2]);
        off += len;
        stats.pages += len / PAGE_SIZE;
        stats.bytes += len;
      }
    }
  } finally {
    native.closeFd(pagemapFd);
    native.closeFd(memFd);
  }
  return stats;
}

export function planVmas(vmas: VmaRecord[], plan: Plan): void {
  plan.vmas = vmas.map((v) => ({
    start: v.start, end: v.end, pgoff: v.pgoff, kind: v.kind, prot: v.prot, vmFlags: v.vmFlags,
    path: v.kind === VmaKind.FILE_PRIVATE || v.kind === VmaKind.FILE_SHARED ? v.path : '',
    openFlags: v.openWrite ? O_RDWR : O_RDONLY,
  }));
}
