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
  for (const it of t.itimers) {
    let { valueSec, valueUsec } = it;
    // An ITIMER_REAL that has just expired reads 0 left: it re-arms itself
    // only when its SIGALRM is dequeued (that signal is in the image's pending
    // list). Replaying 0 would disarm it for good, so arm it for one interval.
    if (it.which === 0 && valueSec === 0n && valueUsec === 0n) ({ intervalSec: valueSec, intervalUsec: valueUsec } = it);
    plan.task.itimers[it.which] = { intervalSec: it.intervalSec, intervalUsec: it.intervalUsec, valueSec, valueUsec };
  }
}
