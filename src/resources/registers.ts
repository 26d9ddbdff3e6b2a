// CPU state: general-purpose registers (with the restart of an interrupted
// system call folded in), FPU/SSE/AVX/AVX-512 state (xsave), fs/gs base.
import { native } from '../native/addon.js';
import { resumeRegs, type FrozenTask } from '../dump/freeze.js';
import type { RegsRecord } from '../image/records.js';
import type { Plan } from '../restore/plan-model.js';

export function collectRegisters(task: FrozenTask): RegsRecord {
  const { regs, syscall } = resumeRegs(task.rawRegs, false);
  return { tid: task.pid, gp: regs, xsave: native.getXstate(task.pid), inSyscall: syscall.inSyscall, syscallNr: syscall.nr };
}

export function planRegisters(r: RegsRecord, plan: Plan): void {
  plan.task.regs = r.gp;
  plan.xsave = r.xsave;
}

/** XCR0 as recorded by ptrace in the software-reserved bytes of the xsave area. */
export const xsaveFeatures = (xsave: Buffer): bigint => (xsave.length >= 472 ? xsave.readBigUInt64LE(464) : 0n);
