// Memory mappings: which VMAs the task has (smaps), what kind each is, which
// of their pages hold data (PAGEMAP_SCAN: present or swapped, not the zero
// page, and for private file mappings only the copy-on-write copies), and the
// page bytes themselves (pread of /proc/PID/mem on worker threads).
import { lstatSync, readFileSync, readSync, statSync } from 'node:fs';
import { native } from '../native/addon.js';
import { MAX_INHERITED_RANGES, PAGE_SIZE, VmaKind, VmFlag, type FileIdentity, type InheritedRecord, type SysvShmRecord, type VmaKindId, type VmaRecord } from '../image/records.js';
import type { ImageWriter } from '../image/stream.js';
import type { PagePump } from './page-pump.js';
import { sumLengths } from '../util/ranges.js';
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
  if (p.startsWith('/SYSV')) return { kind: VmaKind.ANON_SHARED, path: p };
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
    // shmId: the shmem inode for now; numbered by assignShmem
    const shmId = c.kind === VmaKind.ANON_SHARED ? e.inode : 0;
    if (c.kind === VmaKind.ANON_SHARED && !shmId) throw new UnsupportedError(`mapping ${e.start.toString(16)} of process ${pid} is shared memory without an inode`);
    out.push({ start: e.start, end: e.end, kind: c.kind, prot, vmFlags, pgoff: e.offset / PAGE_SIZE, path: c.path, openWrite, file, shmId });
  }
  return out;
}

/** Does a task's own page data cover this kind of mapping? (Shared
 * anonymous memory is stored once, with its object.) */
export const holdsPages = (kind: number): boolean => kind === VmaKind.ANON_PRIVATE || kind === VmaKind.FILE_PRIVATE;

export interface PageDumpStats {
  pages: number;
  bytes: number;
  readSeconds: number;
  /** Pages not stored: a child takes them from its parent. */
  inheritedPages: number;
  /** Pages not stored again: taken from the pre-copy. */
  precopiedPages: number;
}

export const emptyStats = (): PageDumpStats => ({ pages: 0, bytes: 0, readSeconds: 0, inheritedPages: 0, precopiedPages: 0 });

/**
 * Streams [addr, len] ranges of one process into the image as PAGES records
 * at imageAddr(addr) (see page-pump.ts: bounded, reused buffers; reads on
 * worker threads run ahead of the writes).
 */
async function streamRanges(pid: number, ranges: number[], imageAddr: (addr: number) => number, out: ImageWriter, pump: PagePump, stats: PageDumpStats): Promise<void> {
  if (!ranges.length) return;
  const memFd = native.openProcFile(pid, 'mem');
  try {
    await pump.pump(memFd, ranges, imageAddr, out, stats);
  } finally {
    native.closeFd(memFd);
  }
}

/** Present pages of the given mappings of one process as [addr, len] pairs
 * (one pagemap descriptor for all of them); inMemoryOnly: not those swapped
 * out (a page write-protected by userfaultfd but never mapped looks swapped). */
export function presentPages(pid: number, vmas: VmaRecord[], inMemoryOnly = false): number[] {
  const pagemapFd = native.openProcFile(pid, 'pagemap');
  try {
    const out: number[] = [];
    for (const v of vmas) {
      const found = native.scanPages(pagemapFd, v.start, v.end, v.kind === VmaKind.FILE_PRIVATE, inMemoryOnly);
      // appended one by one: a very sparse mapping has more ranges than a spread call takes
      for (let i = 0; i < found.length; i += 2) out.push(found[i], found[i + 1] - found[i]);
    }
    return out;
  } finally {
    native.closeFd(pagemapFd);
  }
}

/** The task's own data pages, split into those to store and those it still
 * shares copy-on-write with its parent (both as [addr, len] pairs). */
export interface TaskPages {
  stored: number[];
  inherited: number[];
}

/** A process and its mappings, as the page planner needs them. */
export interface ProcessMemory {
  pid: number;
  vmas: VmaRecord[];
}

// Flags that make a child's mapping differ from what fork gave it.
const NOT_INHERITED = VmFlag.DONTFORK | VmFlag.WIPEONFORK | VmFlag.LOCKED;

/** The parent mapping a child's mapping can take its pages from: one that
 * holds all of it with the same kind, protection, flags and file position,
 * as fork leaves it. */
export function inheritableFrom(v: VmaRecord, parentVmas: VmaRecord[]): VmaRecord | undefined {
  if (!holdsPages(v.kind) || v.vmFlags & NOT_INHERITED) return undefined;
  const u = parentVmas.find((p) => p.start <= v.start && v.end <= p.end);
  if (!u || u.kind !== v.kind || u.prot !== v.prot || u.vmFlags !== v.vmFlags) return undefined;
  if (v.kind === VmaKind.FILE_PRIVATE && (u.path !== v.path || u.pgoff + (v.start - u.start) / PAGE_SIZE !== v.pgoff)) return undefined;
  return u;
}

/** pagemap entries of [start, start + pages * PAGE_SIZE) as 32-bit halves. */
function readPagemap(fd: number, start: number, pages: number): Uint32Array {
  const buf = Buffer.allocUnsafeSlow(pages * 8);
  for (let got = 0; got < buf.length; ) {
    const n = readSync(fd, buf, got, buf.length - got, (start / PAGE_SIZE) * 8 + got);
    if (n <= 0) throw new Error(`short read of pagemap at ${start.toString(16)}`);
    got += n;
  }
  return new Uint32Array(buf.buffer, buf.byteOffset, pages * 2);
}

// High half of a pagemap entry: bit 63 present, bit 62 swapped, bits 32-54 the PFN's top.
const PM_PRESENT = 0x80000000;
const PM_SWAPPED = 0x40000000;
const PFN_HIGH = 0x7fffff;
const PAGEMAP_BATCH = 1 << 16; // pages per pagemap read
/** In memory, not swapped out (bitwise results are signed: compare unsigned). */
const mapped = (hi: number): boolean => ((hi & (PM_PRESENT | PM_SWAPPED)) >>> 0) === PM_PRESENT;

/**
 * Splits present pages into stored and inherited ranges: a page is
 * inherited when the parent has the same physical page at the same address
 * in a mapping the child's came from by fork (PFNs are visible to root;
 * without them nothing is inherited and every page is stored).
 */
export function splitInherited(present: number[], vmas: VmaRecord[], parent: ProcessMemory, childFd: number, parentFd: number): TaskPages {
  const stored: number[] = [];
  const inherited: number[] = [];
  let floor = 0; // ranges never join across mappings
  const add = (list: number[], a: number, len: number): void => {
    const n = list.length;
    if (n && list[n - 2] >= floor && list[n - 2] + list[n - 1] === a) list[n - 1] += len;
    else list.push(a, len);
  };
  let vi = 0;
  for (let i = 0; i < present.length; i += 2) {
    const start = present[i];
    floor = start;
    const end = start + present[i + 1];
    while (vmas[vi].end <= start) vi++;
    if (!inheritableFrom(vmas[vi], parent.vmas)) {
      add(stored, start, end - start);
      continue;
    }
    for (let a = start; a < end; a += PAGEMAP_BATCH * PAGE_SIZE) {
      const pages = Math.min(PAGEMAP_BATCH, (end - a) / PAGE_SIZE);
      const mine = readPagemap(childFd, a, pages);
      const theirs = readPagemap(parentFd, a, pages);
      for (let p = 0; p < pages; p++) {
        const lo = mine[2 * p];
        const hi = mine[2 * p + 1];
        const same = mapped(hi) && (lo !== 0 || (hi & PFN_HIGH) !== 0) &&
          lo === theirs[2 * p] && (hi & PFN_HIGH) === (theirs[2 * p + 1] & PFN_HIGH) && mapped(theirs[2 * p + 1]);
        add(same ? inherited : stored, a + p * PAGE_SIZE, PAGE_SIZE);
      }
    }
  }
  return { stored, inherited };
}

/** The task's data pages; with its parent in the tree, those still shared
 * with the parent are inherited instead of stored. */
export function taskPages(task: ProcessMemory, parent?: ProcessMemory): TaskPages {
  const own = task.vmas.filter((v) => holdsPages(v.kind));
  const present = presentPages(task.pid, own);
  if (!parent || !own.some((v) => inheritableFrom(v, parent.vmas))) return { stored: present, inherited: [] };
  const childFd = native.openProcFile(task.pid, 'pagemap');
  try {
    const parentFd = native.openProcFile(parent.pid, 'pagemap');
    try {
      return splitInherited(present, own, parent, childFd, parentFd);
    } finally {
      native.closeFd(parentFd);
    }
  } finally {
    native.closeFd(childFd);
  }
}

/** Records of [addr, len] pairs (INHERITED, PRECOPY_USE): as many as the record limit needs. */
export function rangeRecords(pairs: number[]): InheritedRecord[] {
  const out: InheritedRecord[] = [];
  for (let i = 0; i < pairs.length; i += 2 * MAX_INHERITED_RANGES) {
    const ranges = [];
    for (let k = i; k < Math.min(pairs.length, i + 2 * MAX_INHERITED_RANGES); k += 2) ranges.push({ start: pairs[k], len: pairs[k + 1] });
    out.push({ ranges });
  }
  return out;
}

/** INHERITED records for [addr, len] pairs, counted in stats. */
export function inheritedRecords(inherited: number[], stats: PageDumpStats): InheritedRecord[] {
  stats.inheritedPages += sumLengths(inherited) / PAGE_SIZE;
  return rangeRecords(inherited);
}

/** Streams the given [addr, len] pages of a task into the image. */
export async function dumpPages(pid: number, ranges: number[], out: ImageWriter, pump: PagePump, stats: PageDumpStats): Promise<void> {
  await streamRanges(pid, ranges, (a) => a, out, pump, stats);
}

/** One anonymous shared memory object and the mappings of it in the tree. */
export interface ShmemObject {
  id: number;
  size: number;
  users: { pid: number; vma: VmaRecord }[];
  sysv?: SysvShmRecord;
}

/** /proc/sysvipc/shm: the segment with this id, or why it cannot move. */
function sysvSegment(shmid: number, objectId: number): SysvShmRecord {
  const rows = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  // key shmid perms size cpid lpid nattch uid gid cuid cgid ...
  const r = rows.find((x) => Number(x[1]) === shmid);
  if (!r) throw new UnsupportedError(`System V shared memory ${shmid} is not in /proc/sysvipc/shm`);
  const perms = parseInt(r[2], 8);
  const SHM_DEST = 0o1000;
  if (!(perms & SHM_DEST))
    throw new UnsupportedError(`System V shared memory ${shmid} (key 0x${(Number(r[0]) >>> 0).toString(16)}) outlives the processes (not removed with IPC_RMID); not supported`);
  return { id: objectId, shmid, size: Number(r[3]), mode: perms & 0o777, uid: Number(r[7]), gid: Number(r[8]) };
}

/**
 * Finds the shared memory objects of a tree (one per shmem inode, however
 * many tasks map it) and numbers them; the tasks' VMA records get the ids.
 */
export function assignShmem(tasks: { pid: number; vmas: VmaRecord[] }[]): ShmemObject[] {
  // shmem inodes and System V ids are numbered apart
  const byInode = new Map<string, ShmemObject>();
  for (const t of tasks) {
    for (const v of t.vmas) {
      if (v.kind !== VmaKind.ANON_SHARED) continue;
      const sysv = v.path.startsWith('/SYSV');
      const key = `${sysv ? 'sysv' : 'shmem'}:${v.shmId}`;
      let o = byInode.get(key);
      if (!o) {
        const id = byInode.size + 1;
        if (sysv) {
          const seg = sysvSegment(v.shmId, id);
          o = { id, size: Math.ceil(seg.size / PAGE_SIZE) * PAGE_SIZE, users: [], sysv: seg };
        } else {
          const size = Number(statSync(procPath(t.pid, `map_files/${v.start.toString(16)}-${v.end.toString(16)}`)).size);
          o = { id, size: Math.max(size, v.pgoff * PAGE_SIZE + (v.end - v.start)), users: [] };
        }
        byInode.set(key, o);
      }
      o.users.push({ pid: t.pid, vma: v });
    }
  }
  for (const [, o] of byInode) for (const u of o.users) u.vma.shmId = o.id;
  return [...byInode.values()];
}

/** Streams the pages of one shared memory object, each page once, with its
 * offset in the object as the address. A page is present in the mappings of
 * the tasks that touched it, so every mapping is scanned. */
export async function dumpShmemPages(o: ShmemObject, out: ImageWriter, pump: PagePump, stats: PageDumpStats): Promise<void> {
  const done = new Uint8Array(Math.ceil(o.size / PAGE_SIZE));
  for (const { pid, vma } of o.users) {
    const base = vma.pgoff * PAGE_SIZE;
    const fresh: number[] = [];
    const found = presentPages(pid, [vma]);
    for (let i = 0; i < found.length; i += 2) {
      for (let a = found[i]; a < found[i] + found[i + 1]; a += PAGE_SIZE) {
        const page = (a - vma.start + base) / PAGE_SIZE;
        if (page >= done.length || done[page]) continue;
        done[page] = 1;
        const n = fresh.length;
        if (n && fresh[n - 2] + fresh[n - 1] === a) fresh[n - 1] += PAGE_SIZE;
        else fresh.push(a, PAGE_SIZE);
      }
    }
    await streamRanges(pid, fresh, (a) => a - vma.start + base, out, pump, stats);
  }
}

export function planVmas(vmas: VmaRecord[], inherited: InheritedRecord['ranges'], plan: Plan): void {
  plan.inherited = inherited.map((r) => ({ start: r.start, len: r.len }));
  plan.vmas = vmas.map((v) => ({
    start: v.start, end: v.end, pgoff: v.pgoff, kind: v.kind, prot: v.prot, vmFlags: v.vmFlags,
    path: v.kind === VmaKind.FILE_PRIVATE || v.kind === VmaKind.FILE_SHARED ? v.path : '',
    openFlags: v.openWrite ? O_RDWR : O_RDONLY, object: v.shmId,
  }));
}
