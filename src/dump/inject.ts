// Running system calls inside the frozen task (no parasite code): a `syscall`
// instruction of its [vdso] is the entry point, and one scratch page mapped
// in the task receives what the calls write.
import { native } from '../native/addon.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { readProc } from '../util/procfs.js';
import { FrozenTask, resumeRegs, SYS } from './freeze.js';

const PAGE = 4096;

export class Injector {
  private insn = 0n;
  private scratch = 0n;
  private readonly base: Buffer;
  private owner = true;

  constructor(private readonly task: FrozenTask, private readonly memFd: number) {
    this.base = resumeRegs(task.rawRegs, true).regs;
  }

  /** An injector for another thread of the same process, sharing the scratch page. */
  forThread(thread: FrozenTask): Injector {
    const other = new Injector(thread, this.memFd);
    other.insn = this.insn;
    other.scratch = this.scratch;
    other.owner = false;
    thread.markTouched();
    native.setSigmask(thread.pid, ~0n & 0xffffffffffffffffn);
    return other;
  }

  open(): void {
    const vdso = readProc(this.task.pid, 'maps').split('\n').find((l) => l.endsWith('[vdso]'));
    if (!vdso) throw new CrmError(`process ${this.task.pid} has no [vdso] to run system calls through`, ExitCode.UNSUPPORTED);
    const [s, e] = vdso.split(' ')[0].split('-').map((x) => parseInt(x, 16));
    const code = native.readMem(this.memFd, s, e - s);
    let at = -1;
    for (let i = 0; i + 1 < code.length; i++) if (code[i] === 0x0f && code[i + 1] === 0x05) { at = i; break; }
    if (at < 0) throw new CrmError('no syscall instruction in the [vdso]', ExitCode.SYSTEM);
    this.insn = BigInt(s + at);
    this.task.markTouched();
    // No signal may be delivered while we drive the task: block them all.
    native.setSigmask(this.task.pid, ~0n & 0xffffffffffffffffn);
    const addr = this.call(SYS.mmap, [0, PAGE, 3 /* RW */, 0x22 /* PRIVATE|ANON */, -1, 0]);
    if (addr < 0n || addr > 0x7fffffffffffn) throw new CrmError(`mmap inside process ${this.task.pid} failed (${addr})`, ExitCode.SYSTEM);
    this.scratch = addr;
  }

  get scratchAddr(): bigint {
    return this.scratch;
  }

  call(nr: number, args: (number | bigint)[]): bigint {
    return native.injectSyscall(this.task.pid, this.base, this.insn, nr, args.map((a) => BigInt.asUintN(64, BigInt(a))));
  }

  readScratch(offset: number, len: number): Buffer {
    return native.readMem(this.memFd, this.scratch + BigInt(offset), len);
  }

  close(): void {
    if (this.scratch && this.owner) this.call(SYS.munmap, [this.scratch, PAGE]);
    this.scratch = 0n;
  }
}
