#!/usr/bin/env node
// Generator of the shared restore-plan test vector.
//
//   node test/vectors/make-plan-vector.mjs      (after `npx tsc -p .` and `make -C native`)
//
// writes test/vectors/plan-v1.bin (encodePlan of buildPlan()) and
// test/vectors/plan-v1.txt (what `crmigrate-restore --print-plan` prints for
// it). Both are committed; test/unit/plan-vector.test.mjs checks that the
// TypeScript encoder still produces the .bin byte for byte and that the C
// reader still prints the .txt. Regenerate only for a deliberate format change
// (and then bump PLAN_VERSION / CRM_PLAN_VERSION).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodePlan } from '../../dist/restore/plan-codec.js';

const here = new URL('./', import.meta.url);
export const BIN = fileURLToPath(new URL('plan-v1.bin', here));
export const TXT = fileURLToPath(new URL('plan-v1.txt', here));
export const RESTORE = fileURLToPath(new URL('../../native/build/crmigrate-restore', here));

/** Bytes where byte i = (i * mul + add) & 0xff: recognisable, never all zero. */
export function patternBytes(n, mul, add) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * mul + add) & 0xff;
  return b;
}

/** The fixed, fully populated plan of the vector: every field non-zero and distinct where it can be. */
export function buildPlan() {
  // struct user_regs_struct: 27 distinct words; cs/ss/eflags/rip/rsp realistic
  const regs = Buffer.alloc(216);
  for (let i = 0; i < 27; i++) regs.writeBigUInt64LE(0x0101010101010000n * BigInt(i + 1) + BigInt(i), i * 8);
  const set = (i, v) => regs.writeBigUInt64LE(v, i * 8);
  set(10, 0xe6n); // rax
  set(15, 0xffffffffffffffffn); // orig_rax = -1
  set(16, 0x401a2cn); // rip
  set(17, 0x33n); // cs
  set(18, 0x246n); // eflags
  set(19, 0x7ffc0000ff08n); // rsp
  set(20, 0x2bn); // ss
  set(21, 0x7f1e2d0b3740n); // fs_base
  set(22, 0n + 0x7f1e2d0b3000n); // gs_base

  const auxv = Buffer.alloc(8 * 12);
  const aux = [[33n, 0x7ffc001f5000n], [6n, 4096n], [3n, 0x400040n], [9n, 0x401000n], [25n, 0x7ffc0000ffb9n], [0n, 0n]];
  aux.forEach(([k, v], i) => {
    auxv.writeBigUInt64LE(k, i * 16);
    auxv.writeBigUInt64LE(v, i * 16 + 8);
  });

  const sigactions = Array.from({ length: 64 }, () => ({ handler: 0n, flags: 0n, restorer: 0n, mask: 0n }));
  const act = (sig, handler, flags, mask) => {
    sigactions[sig - 1] = { handler, flags, restorer: 0x7f1e2d042520n + BigInt(sig), mask };
  };
  act(2, 0x401100n, 0x04000000n, 0x2n); // SIGINT
  act(10, 0x401200n, 0x14000004n, 0x400n); // SIGUSR1, SA_SIGINFO|SA_RESTORER|SA_ONSTACK
  act(15, 1n, 0x04000000n, 0n); // SIGTERM: SIG_IGN
  act(17, 0x401300n, 0x1c000000n, 0x10000n); // SIGCHLD
  act(34, 0x401400n, 0x0c000004n, 0x8000000200000000n); // SIGRTMIN
  act(64, 0x401500n, 0x04000000n, 0xffffffffffffffffn); // SIGRTMAX

  const siginfo = (signo, code, seed) => {
    const raw = patternBytes(128, 13, seed);
    raw.writeInt32LE(signo, 0);
    raw.writeInt32LE(0, 4); // si_errno
    raw.writeInt32LE(code, 8);
    return raw;
  };

  return {
    task: {
      pid: 4242,
      tid: 4242,
      flags: 1 | 4, // RSEQ | GROUP_LEADER
      personality: 0x40000, // ADDR_NO_RANDOMIZE
      umask: 0o027,
      exePath: '/usr/local/bin/sleeper',
      cwdPath: '/home/user/work dir',
      rootPath: '/srv/chroot',
      comm: 'sleep(er) v1',
      mm: {
        startCode: 0x400000, endCode: 0x401f00, startData: 0x602e10, endData: 0x603100, startBrk: 0x1c5b000, brk: 0x1c7c000,
        startStack: 0x7ffc00010000, argStart: 0x7ffc00010f20, argEnd: 0x7ffc00010f3b, envStart: 0x7ffc00010f3c, envEnd: 0x7ffc00010fe4,
      },
      auxv,
      regs,
      blocked: 0x8000000000014002n,
      sigactions,
      altstack: { sp: 0x7f1e2c800000n, size: 0x8000n, flags: 1 },
      itimers: [
        { intervalSec: 1n, intervalUsec: 250000n, valueSec: 2n, valueUsec: 999999n },
        { intervalSec: 3n, intervalUsec: 1n, valueSec: 4n, valueUsec: 500000n },
        { intervalSec: 5n, intervalUsec: 123456n, valueSec: 6n, valueUsec: 654321n },
      ],
      rseq: { abi: 0x7f1e2d0b3fe0n, len: 32, sig: 0x53053053 },
      robustList: 0x7f1e2d0b3a20n, robustLen: 24n, clearChildTid: 0x7f1e2d0b3a10n,
      creds: {
        uids: [1000, 1001, 1002, 1003], gids: [100, 101, 102, 103], groups: [4, 24, 27, 30, 46, 65534, 0xfffffffe],
        capInh: 0x3400n, capPrm: 0x1fffffffeffn, capEff: 0x3000n, capBnd: 0x1ffffffffffn, capAmb: 0x1000n,
        securebits: 0x2f, noNewPrivs: true, dumpable: 2,
      },
    },
    // sorted, non-overlapping, two of each kind; the anonymous shared ones (kind 2) name their shared memory object
    vmas: [
      { start: 0x400000, end: 0x401000, pgoff: 0, kind: 3, prot: 1, vmFlags: 0x8, path: '/usr/local/bin/sleeper', openFlags: 0, object: 0 },
      { start: 0x401000, end: 0x402000, pgoff: 1, kind: 3, prot: 5, vmFlags: 0x10, path: '/usr/local/bin/sleeper', openFlags: 0, object: 0 },
      { start: 0x1c5b000, end: 0x1c7c000, pgoff: 0x1c5b, kind: 1, prot: 3, vmFlags: 0x20, path: '', openFlags: 0, object: 0 },
      { start: 0x7f1e2c000000, end: 0x7f1e2c021000, pgoff: 0x7f1e2c000, kind: 1, prot: 0, vmFlags: 0x2, path: '', openFlags: 0, object: 0 },
      { start: 0x7f1e2c100000, end: 0x7f1e2c200000, pgoff: 0, kind: 2, prot: 3, vmFlags: 0x4, path: '', openFlags: 0, object: 3 },
      { start: 0x7f1e2c300000, end: 0x7f1e2c302000, pgoff: 0, kind: 2, prot: 1, vmFlags: 0x100, path: '', openFlags: 0, object: 0xfffffffe },
      { start: 0x7f1e2d000000, end: 0x7f1e2d004000, pgoff: 3, kind: 4, prot: 3, vmFlags: 0x80, path: '/dev/shm/ring buffer', openFlags: 2, object: 0 },
      { start: 0x7f1e2d010000, end: 0x7f1e2d011000, pgoff: 7, kind: 4, prot: 1, vmFlags: 0x40, path: '/var/lib/app/state.db', openFlags: 0, object: 0 },
      { start: 0x7ffc00000000, end: 0x7ffc00021000, pgoff: 0x7ffc00000, kind: 1, prot: 3, vmFlags: 0x1, path: '', openFlags: 0, object: 0 },
      { start: 0x7ffc001f0000, end: 0x7ffc001f4000, pgoff: 0, kind: 6, prot: 1, vmFlags: 0x108, path: '', openFlags: 0, object: 0 },
      { start: 0x7ffc001f4000, end: 0x7ffc001f5000, pgoff: 0, kind: 6, prot: 1, vmFlags: 0x100, path: '', openFlags: 0, object: 0 },
      { start: 0x7ffc001f5000, end: 0x7ffc001f7000, pgoff: 0, kind: 5, prot: 5, vmFlags: 0x108, path: '', openFlags: 0, object: 0 },
      { start: 0x7ffc00200000, end: 0x7ffc00201000, pgoff: 0, kind: 5, prot: 5, vmFlags: 0x8, path: '', openFlags: 0, object: 0 },
    ],
    // sorted by number; 3 and 9 share one open file
    fds: [
      { fd: 3, kind: 1, flags: 0o102002, cloexec: true, pos: 4096n, path: '/var/log/app.log', shareId: 1 },
      { fd: 4, kind: 2, flags: 0o200000, cloexec: false, pos: 17n, path: '/home/user/work dir', shareId: 0 },
      { fd: 5, kind: 3, flags: 0o10000000, cloexec: true, pos: 0n, path: '/etc/passwd', shareId: 0 },
      { fd: 7, kind: 1, flags: 0o2000, cloexec: false, pos: 123456789012n, path: '/dev/null', shareId: 2 },
      { fd: 9, kind: 1, flags: 0o102002, cloexec: false, pos: 4096n, path: '/var/log/app.log', shareId: 1 },
      { fd: 1000, kind: 3, flags: 0o10400000, cloexec: false, pos: 0n, path: '/srv/data/ünïcode name', shareId: 0 },
    ],
    siginfos: [
      { shared: false, tid: 4242, raw: siginfo(10, -6 /* SI_TKILL */, 1) },
      { shared: true, tid: 0, raw: siginfo(34, -1 /* SI_QUEUE */, 2) },
      { shared: false, tid: 4244, raw: siginfo(12, -6 /* SI_TKILL */, 3) },
    ],
    xsave: patternBytes(832, 7, 3),
    threads: [4243, 4244].map((tid, i) => ({
      tid,
      regs: Buffer.from(Array.from({ length: 27 }, (_, k) => k === 17 ? 0x33n : k === 20 ? 0x2bn : BigInt(tid) * 0x1000n + BigInt(k))
        .reduce((b, v, k) => { b.writeBigUInt64LE(v, k * 8); return b; }, Buffer.alloc(216))),
      xsave: patternBytes(832, 11 + i, 5),
      blocked: 0x4000n << BigInt(i),
      altstack: i ? { sp: 0x7f1e2c900000n, size: 0x4000n, flags: 0 } : { sp: 0n, size: 0n, flags: 2 },
      rseq: { abi: 0x7f1e2a0b3fe0n + BigInt(i) * 0x100000n, len: 32, sig: 0x53053053 },
      robustList: 0x7f1e2a0b3a20n + BigInt(i) * 0x100000n, robustLen: 24n, clearChildTid: 0x7f1e2a0b3a10n + BigInt(i) * 0x100000n,
      comm: i ? 'wörker-9' : 'io',
    })),
    // inside the private anonymous (heap) and private file mappings
    inherited: [
      { start: 0x401000, len: 0x1000 },
      { start: 0x1c5b000, len: 0x2000 },
      { start: 0x1c60000, len: 0x1c000 },
    ],
  };
}

export const encodeVector = () => encodePlan(buildPlan());

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const bin = encodeVector();
  writeFileSync(BIN, bin);
  const txt = execFileSync(RESTORE, ['--print-plan'], { input: bin, encoding: 'utf8' });
  writeFileSync(TXT, txt);
  console.log(`wrote ${BIN} (${bin.length} bytes) and ${TXT} (${txt.split('\n').length - 1} lines)`);
}
