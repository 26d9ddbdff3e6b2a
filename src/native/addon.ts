// The native addon (native/addon/*.cc), typed. Everything here is a thin
// wrapper over system calls; decisions stay in TypeScript.
import { createRequire } from 'node:module';

export interface RseqConfig {
  abiPointer: bigint;
  length: number;
  signature: number;
  flags: number;
}

export interface ReapedChild {
  pid: number;
  code?: number;
  signal?: number;
}

export interface NativeAddon {
  seize(pid: number): { stopSignal: number };
  /** Detaches, delivering sig (0: none) on the way. */
  detach(pid: number, sig?: number): void;
  /** SIGKILLs the process and reaps every traced thread of it. */
  killTraced(pid: number, tids: number[]): void;
  /** get_robust_list(tid): [head, len]. */
  getRobustList(tid: number): [bigint, bigint];
  getRegs(pid: number): Buffer;
  setRegs(pid: number, regs: Buffer): void;
  getXstate(pid: number): Buffer;
  getSigmask(pid: number): bigint;
  setSigmask(pid: number, mask: bigint): void;
  peekSiginfo(pid: number, shared: boolean): Buffer[];
  getRseq(pid: number): RseqConfig;
  injectSyscall(pid: number, baseRegs: Buffer, insn: bigint, nr: number, args: (bigint | number)[]): bigint;
  openProcFile(pid: number, name: string, write?: boolean): number;
  closeFd(fd: number): void;
  scanPages(pagemapFd: number, start: number, end: number, excludeFilePages: boolean, presentOnly?: boolean): Float64Array;
  readRanges(memFd: number, dest: Buffer, ranges: Float64Array): Promise<Uint32Array>;
  /** kcmp(KCMP_FILE): pidA/fdA and pidB/fdB share one open file description. */
  sameOpenFile(pidA: number, fdA: number, pidB: number, fdB: number): boolean;
  readMem(memFd: number, addr: number | bigint, len: number): Buffer;
  crc32c(data: Uint8Array, seed?: number): number;
  /** pipe2(O_CLOEXEC), enlarged to size bytes if allowed: [readFd, writeFd] (blocking). */
  makePipe(size: number): [number, number];
  /** memfd_create(name, MFD_CLOEXEC): an anonymous memory file. */
  memfdCreate(name: string): number;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE): frees [offset, offset+len) of a file. */
  punchHole(fd: number, offset: number, len: number): void;
  /** Writes all of data to fd on a worker thread; rejects with .code (e.g. EPIPE). */
  writeAll(fd: number, data: Uint8Array): Promise<void>;
  /** Our copy of descriptor fd of process pid (pidfd_getfd). */
  pidfdGetfd(pid: number, fd: number): number;
  /** UFFDIO_API on a userfaultfd: write-protect, resolved by the kernel (WP_ASYNC). */
  uffdEnableWpAsync(uffd: number): void;
  /** UFFDIO_REGISTER(WP) of [start, start+len) in the userfaultfd's mm: 0, or why not (errno). */
  uffdRegisterWp(uffd: number, start: number, len: number): number;
  /** [start, end) pairs of pages written since last protected (PAGEMAP_SCAN); reprotect: protect them again. */
  writtenPages(pagemapFd: number, start: number, end: number, reprotect: boolean): Float64Array;
  /** Starts writing [offset, offset+len) of a file's dirty page cache to disk (sync_file_range WRITE). */
  startWriteback(fd: number, offset: number, len: number): Promise<void>;
  /** A read-only shared mapping of [offset, offset+length) of the file (offset page aligned). */
  mapFile(fd: number, offset: number, length: number): Buffer;
  /** On a view of a mapFile mapping: 'release' drops its whole pages from
   * memory (they read again from the file); 'populate' maps them all now. */
  adviseMapped(view: Uint8Array, advice: 'release' | 'populate'): void;
  setChildSubreaper(): void;
  reapChildren(): ReapedChild[];
  isAlive(pid: number): boolean;
  sendSignal(pid: number, sig: number): void;
}

const require = createRequire(import.meta.url);
export const native: NativeAddon = require('../../build/Release/crmigrate_native.node') as NativeAddon;

/** Absolute paths of the native executables built by `make -C native`. */
export const nativeBin = (name: 'crmigrate-restore' | 'crmigrate-check' | 'subreaper'): string =>
  new URL(`../../native/build/${name}`, import.meta.url).pathname;
