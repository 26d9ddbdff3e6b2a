// The image schema: every record type crmigrate writes, defined once. The
// interfaces are the decoded shapes; `validate` checks meaning (ranges,
// alignment, enums) on top of the structural checks of the schema codec.
import { ImageError } from '../util/errors.js';
import { decodeWith, encodeWith, Reader, Writer, type Decoded, type Schema } from './schema.js';

export const IMAGE_MAGIC = Buffer.from('CRMIMG\r\n', 'latin1');
export const IMAGE_VERSION = 4;
export const PAGE_SIZE = 4096;

export const RecordType = {
  HEADER: 1,
  TASK: 2,
  REGS: 3,
  SIGNALS: 4,
  TIMERS: 5,
  VMA: 6,
  FD: 7,
  PAGES: 8,
  THREAD: 9,
  PROCESS: 10,
  SHMEM: 11,
  OBJECT_PAGES: 12,
  SHARED_FILE: 13,
  SYSV_SHM: 14,
  INHERITED: 15,
  PRECOPY: 16,
  PRECOPY_USE: 17,
  TRAILER: 255,
} as const;
export type RecordTypeId = (typeof RecordType)[keyof typeof RecordType];

export interface HeaderRecord {
  imageVersion: number;
  toolVersion: string;
  arch: string;
  kernel: string;
  hostname: string;
  pageSize: number;
  xsaveSize: number;
  xcr0: bigint;
  createdMs: bigint;
  rootPid: number;
}

export interface TaskRecord {
  pid: number;
  tid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
  exe: string;
  cwd: string;
  root: string;
  personality: number;
  umask: number;
  uids: number[]; // real, effective, saved, fs
  gids: number[];
  startCode: number; endCode: number; startData: number; endData: number;
  startBrk: number; brk: number; startStack: number;
  argStart: number; argEnd: number; envStart: number; envEnd: number;
  auxv: Buffer;
  rseqAbi: bigint;
  rseqLen: number;
  rseqSig: number;
  groups: number[]; // supplementary groups
  capInh: bigint; capPrm: bigint; capEff: bigint; capBnd: bigint; capAmb: bigint;
  securebits: number;
  noNewPrivs: boolean;
  dumpable: number;
}

export interface RegsRecord {
  tid: number;
  gp: Buffer; // struct user_regs_struct, 216 bytes, restart-adjusted
  xsave: Buffer; // NT_X86_XSTATE
  inSyscall: boolean; // stopped inside a system call that will be restarted
  syscallNr: bigint;
}

export interface SigactionEntry { sig: number; handler: bigint; flags: bigint; restorer: bigint; mask: bigint }
export interface PendingSignal { shared: boolean; info: Buffer }
export interface SignalsRecord {
  tid: number;
  blocked: bigint;
  actions: SigactionEntry[];
  pending: PendingSignal[];
  altstackSp: bigint;
  altstackSize: bigint;
  altstackFlags: number;
}

export interface ItimerEntry { which: number; intervalSec: bigint; intervalUsec: bigint; valueSec: bigint; valueUsec: bigint }
export interface TimersRecord { itimers: ItimerEntry[] }

export const VmaKind = { ANON_PRIVATE: 1, ANON_SHARED: 2, FILE_PRIVATE: 3, FILE_SHARED: 4, VDSO: 5, VVAR: 6 } as const;
export type VmaKindId = (typeof VmaKind)[keyof typeof VmaKind];
export const VmFlag = {
  GROWSDOWN: 1 << 0, NORESERVE: 1 << 1, DONTFORK: 1 << 2, DONTDUMP: 1 << 3, WIPEONFORK: 1 << 4,
  HUGEPAGE: 1 << 5, NOHUGEPAGE: 1 << 6, LOCKED: 1 << 7, DONTEXPAND: 1 << 8, ACCOUNT: 1 << 9,
} as const;

export interface FileIdentity { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint }

export interface VmaRecord {
  start: number;
  end: number;
  kind: VmaKindId;
  prot: number;
  vmFlags: number;
  pgoff: number;
  path: string; // backing file, or the special name ([vdso], [heap], [stack]...)
  openWrite: boolean; // the backing file is open for writing (shared writable mappings)
  file: FileIdentity;
  shmId: number; // ANON_SHARED: its SHMEM object
}

export const FdKind = { FILE: 1, DIR: 2, PATH: 3 } as const;
export type FdKindId = (typeof FdKind)[keyof typeof FdKind];
export interface FdRecord {
  fd: number;
  kind: FdKindId;
  path: string;
  flags: number;
  pos: bigint;
  cloexec: boolean;
  shareId: number;
  file: FileIdentity;
}

/** Per-thread kernel state that is not in the registers (one per thread, main included). */
export interface ThreadRecord {
  tid: number;
  rseqAbi: bigint;
  rseqLen: number;
  rseqSig: number;
  robustList: bigint;
  robustLen: bigint;
  clearChildTid: bigint;
  comm: string; // the thread's name (PR_SET_NAME), at most 15 bytes
}

/**
 * One process of the tree, written for every task (tree order: each after
 * its parent, the root first) before anything else of them. Zombies have no
 * other records.
 */
export interface ProcessRecord {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  zombie: boolean;
  exitCode: number; // zombie: exit status code, or
  exitSignal: number; // the signal that killed it (nonzero)
  tids: number[]; // live: every thread, main first
  maxFd: number; // live: its highest descriptor number (-1: none)
}

/** Anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS), once per object; its
 * pages follow an OBJECT_PAGES record with offsets in the object as addresses. */
export interface ShmemRecord {
  id: number;
  size: number;
}

export interface ObjectPagesRecord {
  id: number;
}

/** What makes a SHMEM object a System V segment (removed with IPC_RMID,
 * still attached): recreated with its id, permissions and owner. */
export interface SysvShmRecord {
  id: number; // the SHMEM object
  shmid: number;
  size: number; // bytes, as shmget was given
  mode: number;
  uid: number;
  gid: number;
}

/** An open file description shared by several tasks; their FD records name
 * it by shareId. */
export interface SharedFileRecord {
  id: number;
  kind: FdKindId;
  path: string;
  flags: number;
  pos: bigint;
}

/**
 * Pages of a task that it still shares copy-on-write with its parent (the
 * same physical page at the same address, as after fork): not stored again,
 * the restored task inherits them from its restored parent. Ranges are
 * sorted, page aligned and each lies inside one private mapping of the task.
 */
export interface InheritedRecord {
  ranges: { start: number; len: number }[];
}
export const MAX_INHERITED_RANGES = 65536;

/**
 * A pre-copy dump copies each process's pages while it still runs: after the
 * header, a PRECOPY record per process is followed by its PAGES as they were
 * then. In the task's own section, PRECOPY_USE lists the pages of those that
 * were not written before the freeze (the restore takes them from the
 * pre-copy); the others are in the task's PAGES. Same range rules as INHERITED.
 */
export interface PrecopyRecord {
  pid: number;
}
export interface PrecopyUseRecord {
  ranges: { start: number; len: number }[];
}

export interface TrailerRecord {
  records: number; // records before the trailer, header included
  pages: number;
  pageBytes: bigint;
  chainCrc: number; // CRC-32C over every record frame header, in order
}

const fileIdentity: Schema = [['dev', 'u64'], ['ino', 'u64'], ['size', 'u64'], ['mtimeNs', 'u64']];

export const schemas: Record<Exclude<RecordTypeId, typeof RecordType.PAGES>, Schema> = {
  [RecordType.HEADER]: [
    ['imageVersion', 'u32'], ['toolVersion', { str: 64 }], ['arch', { str: 32 }], ['kernel', { str: 256 }],
    ['hostname', { str: 256 }], ['pageSize', 'u32'], ['xsaveSize', 'u32'], ['xcr0', 'u64'], ['createdMs', 'u64'],
    ['rootPid', 'i32'],
  ],
  [RecordType.TASK]: [
    ['pid', 'i32'], ['tid', 'i32'], ['ppid', 'i32'], ['pgid', 'i32'], ['sid', 'i32'], ['comm', { str: 15 }],
    ['exe', { str: 4096 }], ['cwd', { str: 4096 }], ['root', { str: 4096 }], ['personality', 'u32'], ['umask', 'u32'],
    ['uids', { list: [['id', 'u32']], max: 4 }], ['gids', { list: [['id', 'u32']], max: 4 }],
    ['startCode', 'addr'], ['endCode', 'addr'], ['startData', 'addr'], ['endData', 'addr'], ['startBrk', 'addr'],
    ['brk', 'addr'], ['startStack', 'addr'], ['argStart', 'addr'], ['argEnd', 'addr'], ['envStart', 'addr'],
    ['envEnd', 'addr'], ['auxv', { bytes: 1024 }], ['rseqAbi', 'u64'], ['rseqLen', 'u32'], ['rseqSig', 'u32'],
    ['groups', { list: [['id', 'u32']], max: 64 }], ['capInh', 'u64'], ['capPrm', 'u64'], ['capEff', 'u64'], ['capBnd', 'u64'],
    ['capAmb', 'u64'], ['securebits', 'u32'], ['noNewPrivs', 'bool'], ['dumpable', 'u8'],
  ],
  [RecordType.REGS]: [['tid', 'i32'], ['gp', { bytes: 216 }], ['xsave', { bytes: 65536 }], ['inSyscall', 'bool'], ['syscallNr', 'i64']],
  [RecordType.SIGNALS]: [
    ['tid', 'i32'], ['blocked', 'u64'],
    ['actions', { list: [['sig', 'u8'], ['handler', 'u64'], ['flags', 'u64'], ['restorer', 'u64'], ['mask', 'u64']], max: 64 }],
    ['pending', { list: [['shared', 'bool'], ['info', { bytes: 128 }]], max: 65536 }],
    ['altstackSp', 'u64'], ['altstackSize', 'u64'], ['altstackFlags', 'u32'],
  ],
  [RecordType.TIMERS]: [
    ['itimers', { list: [['which', 'u8'], ['intervalSec', 'u64'], ['intervalUsec', 'u64'], ['valueSec', 'u64'], ['valueUsec', 'u64']], max: 3 }],
  ],
  [RecordType.VMA]: [
    ['start', 'addr'], ['end', 'addr'], ['kind', 'u8'], ['prot', 'u8'], ['vmFlags', 'u32'], ['pgoff', 'addr'],
    ['path', { str: 4096 }], ['openWrite', 'bool'], ['file', { struct: fileIdentity }], ['shmId', 'u32'],
  ],
  [RecordType.FD]: [
    ['fd', 'i32'], ['kind', 'u8'], ['path', { str: 4096 }], ['flags', 'u32'], ['pos', 'u64'], ['cloexec', 'bool'],
    ['shareId', 'u32'], ['file', { struct: fileIdentity }],
  ],
  [RecordType.THREAD]: [
    ['tid', 'i32'], ['rseqAbi', 'u64'], ['rseqLen', 'u32'], ['rseqSig', 'u32'], ['robustList', 'u64'], ['robustLen', 'u64'], ['clearChildTid', 'u64'], ['comm', { str: 15 }],
  ],
  [RecordType.PROCESS]: [
    ['pid', 'i32'], ['ppid', 'i32'], ['pgid', 'i32'], ['sid', 'i32'], ['zombie', 'bool'], ['exitCode', 'i32'], ['exitSignal', 'i32'],
    ['tids', { list: [['id', 'i32']], max: 4097 }], ['maxFd', 'i32'],
  ],
  [RecordType.SHMEM]: [['id', 'u32'], ['size', 'addr']],
  [RecordType.OBJECT_PAGES]: [['id', 'u32']],
  [RecordType.SYSV_SHM]: [['id', 'u32'], ['shmid', 'i32'], ['size', 'addr'], ['mode', 'u32'], ['uid', 'u32'], ['gid', 'u32']],
  [RecordType.SHARED_FILE]: [['id', 'u32'], ['kind', 'u8'], ['path', { str: 4096 }], ['flags', 'u32'], ['pos', 'u64']],
  [RecordType.INHERITED]: [['ranges', { list: [['start', 'addr'], ['len', 'addr']], max: MAX_INHERITED_RANGES }]],
  [RecordType.PRECOPY]: [['pid', 'i32']],
  [RecordType.PRECOPY_USE]: [['ranges', { list: [['start', 'addr'], ['len', 'addr']], max: MAX_INHERITED_RANGES }]],
  [RecordType.TRAILER]: [['records', 'u32'], ['pages', 'u32'], ['pageBytes', 'u64'], ['chainCrc', 'u32']],
};

export const recordName = (t: number): string =>
  Object.entries(RecordType).find(([, v]) => v === t)?.[0].toLowerCase() ?? `type-${t}`;

// Lists of u32 ids are stored as [{id}] for the schema; flatten them here.
const idLists = new Set(['uids', 'gids', 'tids', 'groups']);

export function encodeRecord(type: Exclude<RecordTypeId, typeof RecordType.PAGES>, value: object): Buffer {
  const w = new Writer();
  const v: Decoded = { ...(value as Decoded) };
  for (const k of idLists) if (Array.isArray(v[k])) v[k] = (v[k] as number[]).map((id) => ({ id }));
  encodeWith(w, schemas[type], v, recordName(type));
  return w.finish();
}

export function decodeRecord(type: number, payload: Buffer): Decoded {
  if (type === RecordType.PAGES || !(type in schemas)) throw new ImageError(`unknown record type ${type}`);
  const name = recordName(type);
  const r = new Reader(payload, name);
  const v = decodeWith(r, schemas[type as keyof typeof schemas], name);
  r.end();
  for (const k of idLists) if (Array.isArray(v[k])) v[k] = (v[k] as { id: number }[]).map((x) => x.id);
  validate(type as RecordTypeId, v);
  return v;
}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new ImageError(msg);
}

const pageAligned = (n: number): boolean => n % PAGE_SIZE === 0;

/** Semantic checks of a decoded record. */
export function validate(type: RecordTypeId, v: Decoded): void {
  switch (type) {
    case RecordType.HEADER: {
      check(v.imageVersion === IMAGE_VERSION, `image version ${String(v.imageVersion)} is not supported (this crmigrate reads ${IMAGE_VERSION})`);
      check(v.arch === 'x86_64', `image is for ${String(v.arch)}, not x86_64`);
      check(v.pageSize === PAGE_SIZE, `image page size ${String(v.pageSize)} is not ${PAGE_SIZE}`);
      check((v.xsaveSize as number) >= 576 && (v.xsaveSize as number) <= 65536, 'image header has an invalid xsave size');
      break;
    }
    case RecordType.TASK: {
      const t = v as unknown as TaskRecord;
      check(t.pid > 0 && t.tid > 0, `task record has an invalid pid ${t.pid}`);
      check(t.startCode <= t.endCode && t.startData <= t.endData && t.startBrk <= t.brk && t.argStart <= t.argEnd && t.envStart <= t.envEnd,
        `task ${t.pid} has inconsistent memory layout fields`);
      check(t.auxv.length % 16 === 0, `task ${t.pid} auxv is not a list of pairs`);
      check(t.rseqLen === 0 || (t.rseqLen >= 32 && t.rseqAbi % 32n === 0n), `task ${t.pid} has an invalid rseq registration`);
      check(t.uids.length === 4 && t.gids.length === 4, `task ${t.pid} credentials incomplete`);
      check(t.dumpable <= 2 && (t.capEff & ~t.capPrm) === 0n && (t.capAmb & ~(t.capPrm & t.capInh)) === 0n, `task ${t.pid} has inconsistent capabilities`);
      break;
    }
    case RecordType.REGS: {
      const r = v as unknown as RegsRecord;
      check(r.gp.length === 216, `registers of ${r.tid}: general-purpose block is ${r.gp.length} bytes, expected 216`);
      check(r.xsave.length >= 576, `registers of ${r.tid}: FPU state too short`);
      break;
    }
    case RecordType.SIGNALS: {
      const s = v as unknown as SignalsRecord;
      for (const a of s.actions) check(a.sig >= 1 && a.sig <= 64 && a.sig !== 9 && a.sig !== 19, `signal action for invalid signal ${a.sig}`);
      for (const p of s.pending) {
        check(p.info.length === 128, 'pending signal siginfo must be 128 bytes');
        const signo = p.info.readInt32LE(0);
        check(signo >= 1 && signo <= 64, `pending signal has invalid number ${signo}`);
      }
      break;
    }
    case RecordType.TIMERS: {
      const t = v as unknown as TimersRecord;
      for (const it of t.itimers) {
        check(it.which <= 2, `itimer ${it.which} unknown`);
        check(it.intervalUsec < 1000000n && it.valueUsec < 1000000n, 'itimer microseconds out of range');
      }
      break;
    }
    case RecordType.VMA: {
      const m = v as unknown as VmaRecord;
      check(m.start < m.end && pageAligned(m.start) && pageAligned(m.end) && m.end <= 0x7ffffffff000,
        `mapping ${m.start.toString(16)}-${m.end.toString(16)} has a bad range`);
      check(m.kind >= 1 && m.kind <= 6, `mapping at ${m.start.toString(16)} has unknown kind ${m.kind}`);
      check((m.prot & ~7) === 0, `mapping at ${m.start.toString(16)} has bad protection ${m.prot}`);
      if (m.kind === VmaKind.FILE_PRIVATE || m.kind === VmaKind.FILE_SHARED)
        check(m.path.startsWith('/'), `file mapping at ${m.start.toString(16)} has no absolute path`);
      check((m.kind === VmaKind.ANON_SHARED) === (m.shmId !== 0), `mapping at ${m.start.toString(16)} has a bad shared memory id`);
      break;
    }
    case RecordType.FD: {
      const f = v as unknown as FdRecord;
      check(f.fd >= 0 && f.fd < 1 << 20, `descriptor number ${f.fd} out of range`);
      check(f.kind >= 1 && f.kind <= 3, `descriptor ${f.fd} has unknown kind ${f.kind}`);
      check(f.path.startsWith('/'), `descriptor ${f.fd} has no absolute path`);
      break;
    }
    case RecordType.THREAD: {
      const t = v as unknown as ThreadRecord;
      check(t.tid > 0, `thread record has an invalid tid ${t.tid}`);
      check(t.rseqLen === 0 || (t.rseqLen >= 32 && t.rseqLen <= 4096 && t.rseqAbi % 32n === 0n), `thread ${t.tid} has an invalid rseq registration`);
      check(t.robustLen === 0n || t.robustLen === 24n, `thread ${t.tid} has an invalid robust list length ${t.robustLen}`);
      check(!t.comm.includes('\0'), `thread ${t.tid} has an invalid name`);
      break;
    }
    case RecordType.PROCESS: {
      const p = v as unknown as ProcessRecord;
      check(p.pid > 0 && p.ppid >= 0 && p.pgid > 0 && p.sid > 0, `process record ${p.pid} has invalid ids`);
      if (p.zombie) {
        check(p.tids.length === 0, `zombie ${p.pid} has threads`);
        check(p.exitCode >= 0 && p.exitCode <= 255 && p.exitSignal >= 0 && p.exitSignal <= 64, `zombie ${p.pid} has an invalid exit status`);
      } else {
        check(p.tids.length >= 1 && p.tids[0] === p.pid, `process ${p.pid} does not list its main thread first`);
        check(p.tids.every((t) => t > 0) && new Set(p.tids).size === p.tids.length, `process ${p.pid} has invalid thread ids`);
        check(p.maxFd >= -1 && p.maxFd < 1 << 20, `process ${p.pid} has an invalid descriptor range`);
      }
      break;
    }
    case RecordType.SHMEM: {
      const s = v as unknown as ShmemRecord;
      check(s.id > 0 && s.size > 0 && pageAligned(s.size), `shared memory ${s.id} has an invalid size`);
      break;
    }
    case RecordType.SHARED_FILE: {
      const f = v as unknown as SharedFileRecord;
      check(f.id > 0 && f.kind >= 1 && f.kind <= 3 && f.path.startsWith('/'), `shared file ${f.id} is invalid`);
      break;
    }
    case RecordType.SYSV_SHM: {
      const s = v as unknown as SysvShmRecord;
      check(s.id > 0 && s.shmid >= 0 && s.size > 0 && s.mode <= 0o777, `System V segment ${s.shmid} is invalid`);
      break;
    }
    case RecordType.INHERITED:
    case RecordType.PRECOPY_USE: {
      const what = type === RecordType.INHERITED ? 'inherited' : 'pre-copied';
      let prevEnd = 0;
      for (const { start, len } of (v as unknown as InheritedRecord).ranges) {
        check(len > 0 && pageAligned(start) && pageAligned(len) && start >= prevEnd && start + len <= 0x7ffffffff000,
          `${what} pages at ${start.toString(16)} (+${len.toString(16)}) are misaligned, unsorted or out of range`);
        prevEnd = start + len;
      }
      break;
    }
    case RecordType.PRECOPY:
      check((v as unknown as PrecopyRecord).pid > 0, `pre-copy record has an invalid pid ${String(v.pid)}`);
      break;
    case RecordType.OBJECT_PAGES:
    case RecordType.TRAILER:
      break;
  }
}
