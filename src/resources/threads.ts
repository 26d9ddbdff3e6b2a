// Threads: each one's TID and the per-thread kernel state that is not in its
// registers: rseq registration, robust futex list, clear_child_tid (read in
// the thread with prctl(PR_GET_TID_ADDRESS)). Registers, FPU state, blocked
// mask, own pending signals and sigaltstack are per thread too and live in
// registers.ts and signals.ts.
import { native } from '../native/addon.js';
import type { FrozenTask } from '../dump/freeze.js';
import type { Injector } from '../dump/inject.js';
import type { RegsRecord, SignalsRecord, ThreadRecord } from '../image/records.js';
import type { Plan } from '../restore/plan-model.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { readProc } from '../util/procfs.js';
import { commOf } from './task.js';

const SYS_prctl = 157;
const PR_GET_TID_ADDRESS = 40;

export function collectThread(thread: FrozenTask, inj: Injector): ThreadRecord {
  const rseq = native.getRseq(thread.pid);
  const [robustList, robustLen] = native.getRobustList(thread.pid);
  const r = inj.call(SYS_prctl, [PR_GET_TID_ADDRESS, inj.scratchAddr + 256n, 0, 0, 0]);
  if (r < 0n) throw new CrmError(`prctl(PR_GET_TID_ADDRESS) in thread ${thread.pid} failed (${r})`, ExitCode.SYSTEM);
  return {
    tid: thread.pid,
    rseqAbi: rseq.length ? rseq.abiPointer : 0n,
    rseqLen: rseq.length,
    rseqSig: rseq.signature,
    robustList,
    robustLen,
    clearChildTid: inj.readScratch(256, 8).readBigUInt64LE(0),
    comm: commOf(readProc(thread.pid, 'comm').replace(/\n$/, '')),
  };
}

/** The main thread's extras go to the task; every other thread becomes a plan thread. */
export function planThreads(mainTid: number, threads: ThreadRecord[], regs: RegsRecord[], signals: SignalsRecord[], plan: Plan): void {
  for (const t of threads) {
    if (t.tid === mainTid) {
      plan.task.robustList = t.robustList;
      plan.task.robustLen = t.robustLen;
      plan.task.clearChildTid = t.clearChildTid;
      continue;
    }
    const r = regs.find((x) => x.tid === t.tid)!;
    const s = signals.find((x) => x.tid === t.tid)!;
    plan.threads.push({
      tid: t.tid, regs: r.gp, xsave: r.xsave, blocked: s.blocked,
      altstack: { sp: s.altstackSp, size: s.altstackSize, flags: s.altstackFlags },
      rseq: { abi: t.rseqAbi, len: t.rseqLen, sig: t.rseqSig },
      robustList: t.robustList, robustLen: t.robustLen, clearChildTid: t.clearChildTid, comm: t.comm,
    });
    for (const p of s.pending) plan.siginfos.push({ shared: p.shared, tid: t.tid, raw: p.info });
  }
}
