// Freezing one task with ptrace (seize + interrupt: no signal side effects),
// and the two ways out: thaw (it carries on as if nothing happened) or kill.
import { native } from '../native/addon.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { readdirSync } from 'node:fs';
import { childrenOf, parseStat, parseStatus, procPath, readProc } from '../util/procfs.js';

export const SYS = {
  close: 3, mmap: 9, munmap: 11, rt_sigaction: 13, getitimer: 36, brk: 12, sigaltstack: 131, restart_syscall: 219, userfaultfd: 323,
} as const;

const ERESTARTSYS = 512n;
const ERESTARTNOINTR = 513n;
const ERESTARTNOHAND = 514n;
const ERESTART_RESTARTBLOCK = 516n;

// struct user_regs_struct offsets (8-byte words)
export const REG = { r15: 0, r14: 1, r13: 2, r12: 3, rbp: 4, rbx: 5, r11: 6, r10: 7, r9: 8, r8: 9, rax: 10, rcx: 11, rdx: 12,
  rsi: 13, rdi: 14, orig_rax: 15, rip: 16, cs: 17, eflags: 18, rsp: 19, ss: 20, fs_base: 21, gs_base: 22 } as const;

export const getReg = (regs: Buffer, r: keyof typeof REG): bigint => regs.readBigUInt64LE(REG[r] * 8);
export const setReg = (regs: Buffer, r: keyof typeof REG, v: bigint): void => {
  regs.writeBigUInt64LE(BigInt.asUintN(64, v), REG[r] * 8);
};

export interface SyscallState {
  inSyscall: boolean;
  nr: bigint;
}

/**
 * Registers as they must be on resume. A task interrupted inside a system
 * call has rax = -ERESTART*; resuming means going back to the `syscall`
 * instruction with rax = the call number. For `live` (the same task goes on)
 * a RESTARTBLOCK call continues through restart_syscall, which finds its
 * state in the kernel; a restored task has no such state, so it repeats the
 * original call with its original arguments (still in its registers).
 */
export function resumeRegs(raw: Buffer, live: boolean): { regs: Buffer; syscall: SyscallState } {
  const regs = Buffer.from(raw);
  const orig = BigInt.asIntN(64, getReg(regs, 'orig_rax'));
  const rax = BigInt.asIntN(64, getReg(regs, 'rax'));
  const state: SyscallState = { inSyscall: false, nr: orig };
  if (orig >= 0n) {
    if (rax === -ERESTARTSYS || rax === -ERESTARTNOINTR || rax === -ERESTARTNOHAND) {
      setReg(regs, 'rax', orig);
      setReg(regs, 'rip', getReg(regs, 'rip') - 2n);
      state.inSyscall = true;
    } else if (rax === -ERESTART_RESTARTBLOCK) {
      setReg(regs, 'rax', live ? BigInt(SYS.restart_syscall) : orig);
      setReg(regs, 'rip', getReg(regs, 'rip') - 2n);
      state.inSyscall = true;
    }
  }
  setReg(regs, 'orig_rax', -1n);
  return { regs, syscall: state };
}

/** Every thread of one process, frozen. threads[0] is the main thread. */
export class FrozenProcess {
  private constructor(readonly pid: number, readonly threads: FrozenTask[]) {}

  /** Seizes every thread; threads made meanwhile are caught by listing again
   * until the set is stable (a stopped thread cannot make more). */
  static freeze(pid: number): FrozenProcess {
    const threads: FrozenTask[] = [FrozenTask.freeze(pid)];
    try {
      for (;;) {
        const known = new Set(threads.map((t) => t.pid));
        const more = readdirSync(procPath(pid, 'task')).map(Number).filter((tid) => !known.has(tid));
        if (!more.length) break;
        for (const tid of more) threads.push(FrozenTask.freeze(tid));
      }
    } catch (err) {
      for (const t of threads) t.thaw();
      throw err;
    }
    return new FrozenProcess(pid, threads);
  }

  thaw(): void {
    for (const t of this.threads) t.thaw();
  }

  holdStopped(): void {
    for (const t of this.threads) t.holdStopped();
  }

  kill(): void {
    native.killTraced(this.pid, this.threads.map((t) => t.pid));
    for (const t of this.threads) t.forget();
  }
}

/** One process of a frozen tree: frozen with its threads, or a zombie. */
export interface TreeMember {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Live processes: every thread, frozen. */
  proc?: FrozenProcess;
  /** Zombies: how they ended (waitpid form split). */
  exit?: { code: number; signal: number };
}

/** /proc/PID/stat: state, ids and (for a zombie) the exit status as waitpid splits it. */
function statOf(pid: number): { state: string; ppid: number; pgid: number; sid: number; exit: { code: number; signal: number } } | null {
  try {
    const s = parseStat(readProc(pid, 'stat'));
    const status = Number(s[52] ?? 0);
    return { state: s[3], ppid: Number(s[4]), pgid: Number(s[5]), sid: Number(s[6]), exit: { code: (status >> 8) & 0xff, signal: status & 0x7f } };
  } catch {
    return null;
  }
}

/**
 * A process and every process below it, frozen. Children forked while the
 * tree is being frozen are caught by listing the children of every frozen
 * process again until nothing new appears (a frozen process forks no more).
 * members is in tree order: the root first, every process after its parent.
 */
export class FrozenTree {
  private constructor(readonly root: number, readonly members: TreeMember[]) {}

  static freeze(root: number): FrozenTree {
    const found = new Map<number, TreeMember>();
    const add = (pid: number, isRoot: boolean): void => {
      if (found.has(pid)) return;
      const st = statOf(pid);
      if (!st) {
        if (isRoot) throw new CrmError(`no process with PID ${root}`, ExitCode.NO_PROCESS);
        return; // exited and reaped meanwhile
      }
      const m: TreeMember = { pid, ppid: st.ppid, pgid: st.pgid, sid: st.sid };
      if (st.state === 'Z' || st.state === 'X') {
        if (isRoot) throw new CrmError(`process ${pid} is a zombie`, ExitCode.UNSUPPORTED);
        m.exit = st.exit;
      } else {
        try {
          m.proc = FrozenProcess.freeze(pid);
        } catch (err) {
          const again = statOf(pid);
          if (isRoot || (again && again.state !== 'Z')) throw err;
          if (!again) return;
          m.exit = again.exit;
        }
      }
      found.set(pid, m);
    };
    try {
      add(root, true);
      for (;;) {
        const before = found.size;
        for (const m of [...found.values()]) if (m.proc) for (const c of childrenOf(m.pid)) add(c, false);
        if (found.size === before) break;
      }
    } catch (err) {
      for (const m of found.values()) m.proc?.thaw();
      throw err;
    }
    // ids read before the freeze may be stale; read them again now that nothing moves
    for (const m of found.values()) {
      const st = statOf(m.pid);
      if (st) Object.assign(m, { ppid: st.ppid, pgid: st.pgid, sid: st.sid });
    }
    const order: TreeMember[] = [];
    const visit = (m: TreeMember): void => {
      order.push(m);
      for (const c of [...found.values()].filter((x) => x.ppid === m.pid && x.pid !== root).sort((a, b) => a.pid - b.pid)) visit(c);
    };
    visit(found.get(root)!);
    return new FrozenTree(root, order);
  }

  get live(): TreeMember[] {
    return this.members.filter((m) => m.proc);
  }

  thaw(): void {
    for (const m of this.members) m.proc?.thaw();
  }

  holdStopped(): void {
    for (const m of this.members) m.proc?.holdStopped();
  }

  /** Children first, so no parent sees a child's death while it still runs. */
  kill(): void {
    for (const m of [...this.members].reverse()) m.proc?.kill();
  }
}

// Every task we hold frozen, so that an interrupt (Ctrl-C, kill, hangup)
// lets it go instead of leaving it stopped or with injected registers.
const frozenTasks = new Set<FrozenTask>();
let interruptPolicy: 'thaw' | 'hold' = 'thaw';
let interruptHandlers = false;

/** What an interrupt does to the frozen tasks: thaw (nothing happened) or,
 * once a migration's commit may have happened, hold them stopped. */
export function setInterruptPolicy(policy: 'thaw' | 'hold'): void {
  interruptPolicy = policy;
}

/** Lets every frozen task go, or holds it stopped, as the policy says. */
function releaseAll(): void {
  for (const t of [...frozenTasks]) {
    try {
      if (interruptPolicy === 'hold') t.holdStopped();
      else t.thaw();
    } catch {
      /* gone meanwhile */
    }
  }
}

function installInterruptHandlers(): void {
  if (interruptHandlers) return;
  interruptHandlers = true;
  // Any other way out with tasks still frozen (an exception nobody caught, an
  // event loop left with nothing to wait for) must not leave them stopped or
  // with injected registers either.
  process.on('exit', () => {
    if (!frozenTasks.size) return;
    releaseAll();
    const what = interruptPolicy === 'hold' ? 'held stopped (see crmigrate resolve)' : 'let go untouched';
    process.stderr.write(`crmigrate: exiting with processes still frozen; they were ${what}\n`);
    // our failure code, not node's (13: a top-level await that never settled)
    process.exitCode = ExitCode.FAILURE;
  });
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const sig of Object.keys(codes) as (keyof typeof codes)[]) {
    process.on(sig, () => {
      const frozen = frozenTasks.size > 0;
      releaseAll();
      const what = !frozen
        ? 'nothing was frozen: the processes run on untouched'
        : interruptPolicy === 'hold' ? 'the frozen processes are held stopped (see crmigrate resolve)' : 'the frozen processes carry on untouched';
      process.stderr.write(`crmigrate: interrupted by ${sig}; ${what}\n`);
      process.exit(codes[sig]);
    });
  }
}

export class FrozenTask {
  /** Registers at the freeze, untouched. */
  readonly rawRegs: Buffer;
  readonly sigmask: bigint;
  private live = true;
  private touched = false;

  private constructor(readonly pid: number) {
    this.rawRegs = native.getRegs(pid);
    this.sigmask = native.getSigmask(pid);
    frozenTasks.add(this);
  }

  static freeze(pid: number): FrozenTask {
    // before the seize: a signal that comes between the two would end us
    // with the task seized (node acts on a signal only once it listens)
    installInterruptHandlers();
    const status = parseStatus(readProc(pid, 'status'));
    const tracer = Number(status.get('TracerPid') ?? '0');
    if (tracer !== 0 && tracer !== process.pid) throw new CrmError(`process ${pid} is already traced by PID ${tracer} (a debugger?); refusing to touch it`, ExitCode.UNSUPPORTED);
    try {
      native.seize(pid);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ESRCH') throw new CrmError(`no process with PID ${pid}`, ExitCode.NO_PROCESS);
      if (code === 'EPERM') throw new CrmError(`not permitted to trace process ${pid} (run as root, or it is already traced)`, ExitCode.SYSTEM);
      throw new CrmError(`cannot freeze process ${pid}: ${(err as Error).message}`, ExitCode.SYSTEM);
    }
    return new FrozenTask(pid);
  }

  /** Called before injecting system calls: registers must be put back. */
  markTouched(): void {
    this.touched = true;
  }

  /** Lets the task carry on exactly where it was. */
  thaw(): void {
    this.release(0);
  }

  /** Puts back what syscall injection changed and detaches, delivering sig. */
  private release(sig: number): void {
    if (!this.live) return;
    this.live = false;
    frozenTasks.delete(this);
    if (this.touched) {
      native.setRegs(this.pid, resumeRegs(this.rawRegs, true).regs);
      native.setSigmask(this.pid, this.sigmask);
    }
    native.detach(this.pid, sig);
  }

  /** Leaves the task stopped (group stop) when we let go of it: used when
   * the outcome of a migration is in doubt, so that it runs nowhere until
   * `crmigrate resolve` decides. */
  holdStopped(): void {
    this.release(19 /* SIGSTOP */);
  }

  /** The task is gone (killed with its process). */
  forget(): void {
    this.live = false;
    frozenTasks.delete(this);
  }
}
