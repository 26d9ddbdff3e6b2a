// The restore plan as TypeScript sees it; plan-codec.ts turns it into the
// binary layout of native/include/crm_plan.h. Each resource module fills its
// own part from the decoded image.
export const TaskFlag = { RSEQ: 1, SESSION_LEADER: 2, GROUP_LEADER: 4 } as const;

export interface PlanSigaction { handler: bigint; flags: bigint; restorer: bigint; mask: bigint }
export interface PlanItimer { intervalSec: bigint; intervalUsec: bigint; valueSec: bigint; valueUsec: bigint }

export interface PlanTask {
  pid: number;
  tid: number;
  flags: number;
  personality: number;
  umask: number;
  exePath: string;
  cwdPath: string;
  rootPath: string;
  comm: string;
  mm: {
    startCode: number; endCode: number; startData: number; endData: number; startBrk: number; brk: number;
    startStack: number; argStart: number; argEnd: number; envStart: number; envEnd: number;
  };
  auxv: Buffer;
  regs: Buffer;
  blocked: bigint;
  sigactions: PlanSigaction[]; // 64 entries, index = signal - 1
  altstack: { sp: bigint; size: bigint; flags: number };
  itimers: PlanItimer[]; // REAL, VIRTUAL, PROF
  rseq: { abi: bigint; len: number; sig: number };
  robustList: bigint;
  robustLen: bigint;
  clearChildTid: bigint;
  creds: PlanCreds;
}

export interface PlanCreds {
  uids: number[]; gids: number[]; groups: number[];
  capInh: bigint; capPrm: bigint; capEff: bigint; capBnd: bigint; capAmb: bigint;
  securebits: number; noNewPrivs: boolean; dumpable: number;
}

/** Another thread of the task (the task's own fields are its main thread). */
export interface PlanThread {
  tid: number;
  regs: Buffer;
  xsave: Buffer;
  blocked: bigint;
  altstack: { sp: bigint; size: bigint; flags: number };
  rseq: { abi: bigint; len: number; sig: number };
  robustList: bigint;
  robustLen: bigint;
  clearChildTid: bigint;
  comm: string;
}

export interface PlanVma {
  start: number; end: number; pgoff: number; kind: number; prot: number; vmFlags: number; path: string; openFlags: number; object: number;
}

export interface PlanFd {
  fd: number; kind: number; flags: number; cloexec: boolean; pos: bigint; path: string; shareId: number;
}

export interface PlanSiginfo { shared: boolean; tid: number; raw: Buffer }

export interface Plan {
  task: PlanTask;
  vmas: PlanVma[];
  fds: PlanFd[];
  siginfos: PlanSiginfo[];
  xsave: Buffer;
  threads: PlanThread[];
  /** Pages taken from the parent's restored memory (sorted, each inside one private VMA). */
  inherited: { start: number; len: number }[];
}

export function emptyTask(): PlanTask {
  const zeroTimer = (): PlanItimer => ({ intervalSec: 0n, intervalUsec: 0n, valueSec: 0n, valueUsec: 0n });
  return {
    pid: 0, tid: 0, flags: 0, personality: 0, umask: 0o022, exePath: '', cwdPath: '/', rootPath: '/', comm: '',
    mm: { startCode: 0, endCode: 0, startData: 0, endData: 0, startBrk: 0, brk: 0, startStack: 0, argStart: 0, argEnd: 0, envStart: 0, envEnd: 0 },
    auxv: Buffer.alloc(0), regs: Buffer.alloc(216), blocked: 0n,
    sigactions: Array.from({ length: 64 }, () => ({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n })),
    altstack: { sp: 0n, size: 0n, flags: 2 /* SS_DISABLE */ },
    itimers: [zeroTimer(), zeroTimer(), zeroTimer()],
    rseq: { abi: 0n, len: 0, sig: 0 },
    robustList: 0n, robustLen: 0n, clearChildTid: 0n,
    creds: { uids: [0, 0, 0, 0], gids: [0, 0, 0, 0], groups: [], capInh: 0n, capPrm: 0n, capEff: 0n, capBnd: 0n, capAmb: 0n, securebits: 0, noNewPrivs: false, dumpable: 1 },
  };
}
