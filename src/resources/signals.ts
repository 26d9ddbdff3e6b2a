// Signal state: handlers (read from inside the task with rt_sigaction), the
// blocked mask, pending signals with their siginfo (process-wide and the
// thread's own), and the alternate signal stack.
import { native } from '../native/addon.js';
import { SYS, type FrozenTask } from '../dump/freeze.js';
import type { Injector } from '../dump/inject.js';
import type { SignalsRecord } from '../image/records.js';
import type { Plan } from '../restore/plan-model.js';
import { CrmError, ExitCode } from '../util/errors.js';

const SIGKILL = 9;
const SIGSTOP = 19;

/** Signal state of one thread; `main` adds what is process-wide (handlers, shared queue). */
export function collectSignals(task: FrozenTask, inj: Injector, main = true): SignalsRecord {
  const actions: SignalsRecord['actions'] = [];
  for (let sig = 1; main && sig <= 64; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    const r = inj.call(SYS.rt_sigaction, [sig, 0, inj.scratchAddr, 8]);
    if (r < 0n) throw new CrmError(`rt_sigaction(${sig}) inside process ${task.pid} failed (${r})`, ExitCode.SYSTEM);
    const b = inj.readScratch(0, 32);
    const handler = b.readBigUInt64LE(0);
    const flags = b.readBigUInt64LE(8);
    const mask = b.readBigUInt64LE(24);
    if (handler !== 0n || flags !== 0n || mask !== 0n) actions.push({ sig, handler, flags, restorer: b.readBigUInt64LE(16), mask });
  }
  const r = inj.call(SYS.sigaltstack, [0, inj.scratchAddr + 64n]);
  if (r < 0n) throw new CrmError(`sigaltstack inside process ${task.pid} failed (${r})`, ExitCode.SYSTEM);
  const ss = inj.readScratch(64, 24);
  const pending = [
    ...(main ? native.peekSiginfo(task.pid, true).map((info) => ({ shared: true, info })) : []),
    ...native.peekSiginfo(task.pid, false).map((info) => ({ shared: false, info })),
  ];
  return {
    tid: task.pid,
    blocked: task.sigmask,
    actions,
    pending,
    altstackSp: ss.readBigUInt64LE(0),
    altstackFlags: (ss.readInt32LE(8) & ~1) >>> 0 /* SS_ONSTACK is a state, not a setting */,
    altstackSize: ss.readBigUInt64LE(16),
  };
}

export function planSignals(s: SignalsRecord, plan: Plan): void {
  plan.task.blocked = s.blocked;
  for (const a of s.actions) plan.task.sigactions[a.sig - 1] = { handler: a.handler, flags: a.flags, restorer: a.restorer, mask: a.mask };
  plan.task.altstack = { sp: s.altstackSp, size: s.altstackSize, flags: s.altstackFlags };
  plan.siginfos = s.pending.map((p) => ({ shared: p.shared, tid: s.tid, raw: p.info }));
}
