// Memory mappings: which VMAs the task has (smaps), what kind each is, which
// of their pages hold data (PAGEMAP_SCAN: present or swapped, not the zero
// page, and for private file mappings only the copy-on-write copies), and the
// page bytes themselves (pread of /proc/PID/mem on worker threads).
import { lstatSync, readFileSync, statSync } from 'node:fs';
import { native } from '../native/addon.js';
import { PAGE_SIZE, VmaKind, VmFlag, type FileIdentity, type SysvShmRecord, type VmaKindId, type VmaRecord } from '../image/records.js';
import type { ImageWriter } from '../image/stream.js';
import { pumpPages } from './page-pump.js';
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
}

export const emptyStats = (): PageDumpStats => ({ pages: 0, bytes: 0, readSeconds: 0 });

/**
 * Streams [addr, len] ranges of one process into the image as PAGES records
 * at imageAddr(addr) (see page-pump.ts: bounded, reused buffers; reads on
 * worker threads run ahead of the writes).
 */
async function streamRanges(pid: number, ranges: number[], imageAddr: (addr: number) => number, out: ImageWriter, stats: PageDumpStats): Promise<void> {
  if (!ranges.length) return;
  const memFd = native.openProcFile(pid, 'mem');
  try {
    await pumpPages(memFd, ranges, imageAddr, out, stats);
  } finally {
    native.closeFd(memFd);
  }
}

/** Present pages of the given mappings of one process as [addr, len] pairs
 * (one pagemap descriptor for all of them). */
function scan(pid: number, vmas: VmaRecord[]): number[] {
  const pagemapFd = native.openProcFile(pid, 'pagemap');
  try {
    const out: number[] = [];
    for (const v of vmas) {
      const found = native.scanPages(pagemapFd, v.start, v.end, v.kind === VmaKind.FILE_PRIVATE);
      // appended one by one: a very sparse mapping has more ranges than a spread call takes
      for (let i = 0; i < found.length; i += 2) out.push(found[i], found[i + 1] - found[i]);
    }
    return out;
  } finally {
    native.closeFd(pagemapFd);
  }
}

/** Streams the data pages of the task's own mappings into the image. */
export async function dumpPages(pid: number, vmas: VmaRecord[], out: ImageWriter, stats: PageDumpStats): Promise<void> {
  await streamRanges(pid, scan(pid, vmas.filter((v) => holdsPages(v.kind))), (a) => a, out, stats);
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
export async function dumpShmemPages(o: ShmemObject, out: ImageWriter, stats: PageDumpStats): Promise<void> {
  const done = new Uint8Array(Math.ceil(o.size / PAGE_SIZE));
  for (const { pid, vma } of o.users) {
    const base = vma.pgoff * PAGE_SIZE;
    const fresh: number[] = [];
    const found = scan(pid, [vma]);
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
    await streamRanges(pid, fresh, (a) => a - vma.start + base, out, stats);
  }
}

export function planVmas(vmas: VmaRecord[], plan: Plan): void {
  plan.vmas = vmas.map((v) => ({
    start: v.start, end: v.end, pgoff: v.pgoff, kind: v.kind, prot: v.prot, vmFlags: v.vmFlags,
    path: v.kind === VmaKind.FILE_PRIVATE || v.kind === VmaKind.FILE_SHARED ? v.path : '',
    openFlags: v.openWrite ? O_RDWR : O_RDONLY, object: v.shmId,
  }));
}
