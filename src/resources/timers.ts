// Interval timers (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF): remaining time
// and interval, read with getitimer inside the task and re-armed last.
import { SYS, type FrozenTask } from '../dump/freeze.js';
import type { Injector } from '../dump/inject.js';
import type { TimersRecord } from '../image/records.js';
import type { Plan } from '../restore/plan-model.js';
import { CrmError, ExitCode } from '../util/errors.js';

export function collectTimers(task: FrozenTask, inj: Injector): TimersRecord {
  const itimers: TimersRecord['itimers'] = [];
  for (let which = 0; which < 3; which++) {
    const r = inj.call(SYS.getitimer, [which, inj.scratchAddr + 128n]);
    if (r < 0n) throw new CrmError(`getitimer(${which}) inside process ${task.pid} failed (${r})`, ExitCode.SYSTEM);
    const b = inj.readScratch(128, 32);
    itimers.push({ which, intervalSec: b.readBigUInt64LE(0), intervalUsec: b.readBigUInt64LE(8), valueSec: b.readBigUInt64LE(16), valueUsec: b.readBigUInt64LE(24) });
  }
  return { itimers };
}

export function planTimers(t: TimersRecord, plan: Plan): void {
  // getitimer never reports 0 for an armed timer (it rounds up), so the
  // values can be replayed as they are: 0 means disarmed.
  for (const it of t.itimers)
    plan.task.itimers[it.which] = { intervalSec: it.intervalSec, intervalUsec: it.intervalUsec, valueSec: it.valueSec, valueUsec: it.valueUsec };
}
