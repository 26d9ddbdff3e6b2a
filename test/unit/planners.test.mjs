// Unit tests of the pure planning helpers: the system call restart fix-ups
// of resumeRegs, the smaps parser, the /proc/PID/stat parser and which
// mappings of a child may take pages from its parent's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REG, getReg, resumeRegs, setReg, SYS } from '../../dist/dump/freeze.js';
import { inheritableFrom, parseSmaps } from '../../dist/resources/memory.js';
import { parseStat } from '../../dist/util/procfs.js';

// ---------------------------------------------------------------------------
// resumeRegs

const ERESTARTSYS = 512n;
const ERESTARTNOINTR = 513n;
const ERESTARTNOHAND = 514n;
const ERESTART_RESTARTBLOCK = 516n;
const U64 = (v) => BigInt.asUintN(64, v);
const RIP = 0x7f0012345678n;

/** A user_regs_struct with every word distinct, then the given registers. */
function makeRegs(set) {
  const b = Buffer.alloc(216);
  for (let i = 0; i < 27; i++) b.writeBigUInt64LE(0x1111000000000000n + BigInt(i) * 0x10101n, i * 8);
  setReg(b, 'cs', 0x33n);
  setReg(b, 'ss', 0x2bn);
  setReg(b, 'rip', RIP);
  for (const [k, v] of Object.entries(set)) setReg(b, k, v);
  return b;
}

/** Every word of a and b equal except the listed registers. */
function assertOnlyChanged(before, after, changed) {
  assert.equal(after.length, 216);
  const skip = new Set(changed.map((r) => REG[r]));
  for (let i = 0; i < 27; i++) {
    if (skip.has(i)) continue;
    assert.equal(after.readBigUInt64LE(i * 8), before.readBigUInt64LE(i * 8), `word ${i} must not change`);
  }
}

for (const [name, code] of [['ERESTARTSYS', ERESTARTSYS], ['ERESTARTNOINTR', ERESTARTNOINTR], ['ERESTARTNOHAND', ERESTARTNOHAND]]) {
  for (const live of [true, false]) {
    test(`resumeRegs: -${name} (${live ? 'live' : 'restored'}) goes back to the syscall instruction with rax = nr`, () => {
      const raw = makeRegs({ orig_rax: 7n /* poll */, rax: U64(-code) });
      const copy = Buffer.from(raw);
      const { regs, syscall } = resumeRegs(raw, live);
      assert.equal(getReg(regs, 'rax'), 7n);
      assert.equal(getReg(regs, 'rip'), RIP - 2n);
      assert.equal(getReg(regs, 'orig_rax'), U64(-1n));
      assert.deepEqual(syscall, { inSyscall: true, nr: 7n });
      assertOnlyChanged(raw, regs, ['rax', 'rip', 'orig_rax']);
      assert.deepEqual(raw, copy, 'the input buffer must not be modified');
      assert.notEqual(regs.buffer, raw.buffer);
    });
  }
}

test('resumeRegs: system call number 0 (read) is a system call too', () => {
  const raw = makeRegs({ orig_rax: 0n, rax: U64(-ERESTARTSYS) });
  const { regs, syscall } = resumeRegs(raw, false);
  assert.equal(getReg(regs, 'rax'), 0n);
  assert.equal(getReg(regs, 'rip'), RIP - 2n);
  assert.equal(getReg(regs, 'orig_rax'), U64(-1n));
  assert.deepEqual(syscall, { inSyscall: true, nr: 0n });
});

test('resumeRegs: -ERESTART_RESTARTBLOCK, live task continues through restart_syscall', () => {
  const raw = makeRegs({ orig_rax: 35n /* nanosleep */, rax: U64(-ERESTART_RESTARTBLOCK) });
  const { regs, syscall } = resumeRegs(raw, true);
  assert.equal(SYS.restart_syscall, 219);
  assert.equal(getReg(regs, 'rax'), 219n);
  assert.equal(getReg(regs, 'rip'), RIP - 2n);
  assert.equal(getReg(regs, 'orig_rax'), U64(-1n));
  assert.equal(syscall.inSyscall, true);
  assert.equal(syscall.nr, 35n);
  assertOnlyChanged(raw, regs, ['rax', 'rip', 'orig_rax']);
});

test('resumeRegs: -ERESTART_RESTARTBLOCK, restored task repeats the original call', () => {
  const raw = makeRegs({ orig_rax: 230n /* clock_nanosleep */, rax: U64(-ERESTART_RESTARTBLOCK) });
  const { regs, syscall } = resumeRegs(raw, false);
  assert.equal(getReg(regs, 'rax'), 230n);
  assert.equal(getReg(regs, 'rip'), RIP - 2n);
  assert.equal(getReg(regs, 'orig_rax'), U64(-1n));
  assert.deepEqual(syscall, { inSyscall: true, nr: 230n });
  // the arguments stay in place for the repeated call
  assertOnlyChanged(raw, regs, ['rax', 'rip', 'orig_rax']);
});

test('resumeRegs: not in a system call (orig_rax = -1), even with an -ERESTART-like rax', () => {
  for (const live of [true, false]) {
    for (const rax of [0x1234n, U64(-ERESTARTSYS), U64(-ERESTART_RESTARTBLOCK)]) {
      const raw = makeRegs({ orig_rax: U64(-1n), rax });
      const { regs, syscall } = resumeRegs(raw, live);
      assert.equal(getReg(regs, 'rax'), rax);
      assert.equal(getReg(regs, 'rip'), RIP);
      assert.equal(getReg(regs, 'orig_rax'), U64(-1n));
      assert.equal(syscall.inSyscall, false);
      assert.deepEqual(regs, raw);
    }
  }
});

test('resumeRegs: a finished system call (rax = result or -EINTR) is not restarted, orig_rax becomes -1', () => {
  for (const live of [true, false]) {
    for (const rax of [0n, 42n, U64(-4n) /* EINTR */, U64(-515n) /* not a restart code */, U64(-517n)]) {
      const raw = makeRegs({ orig_rax: 61n /* wait4 */, rax });
      const { regs, syscall } = resumeRegs(raw, live);
      assert.equal(getReg(regs, 'rax'), rax);
      assert.equal(getReg(regs, 'rip'), RIP);
      assert.equal(getReg(regs, 'orig_rax'), U64(-1n), 'orig_rax must be -1 so the kernel does not restart again');
      assert.equal(syscall.inSyscall, false);
      assertOnlyChanged(raw, regs, ['orig_rax']);
    }
  }
});

// ---------------------------------------------------------------------------
// parseSmaps

const kb = (n) => `${n} kB`;
const body = (size, extra = '') =>
  [
    `Size:               ${kb(size)}`, 'KernelPageSize:        4 kB', 'MMUPageSize:           4 kB', `Rss:                ${kb(size)}`,
    'Pss:                   4 kB', 'Pss_Dirty:             4 kB', 'Shared_Clean:          0 kB', 'Shared_Dirty:          0 kB',
    'Private_Clean:         0 kB', 'Private_Dirty:         4 kB', 'Referenced:            4 kB', 'Anonymous:             4 kB',
    'KSM:                   0 kB', 'LazyFree:              0 kB', 'AnonHugePages:         0 kB', 'ShmemPmdMapped:        0 kB',
    'FilePmdMapped:         0 kB', 'Shared_Hugetlb:        0 kB', 'Private_Hugetlb:       0 kB', 'Swap:                  0 kB',
    'SwapPss:               0 kB', 'Locked:                0 kB', 'THPeligible:           0', 'ProtectionKey:         0', extra,
  ].filter(Boolean).join('\n');

const SMAPS = [
  '55d4c3a00000-55d4c3a02000 r--p 00000000 08:01 1835023                    /usr/bin/cat',
  body(8, 'VmFlags: rd mr mw me dw sd '),
  '55d4c3a02000-55d4c3a07000 r-xp 00002000 08:01 1835023                    /usr/bin/cat',
  body(20, 'VmFlags: rd ex mr mw me dw sd '),
  '55d4c5000000-55d4c5021000 rw-p 00000000 00:00 0                          [heap]',
  body(132, 'VmFlags: rd wr mr mw me ac sd '),
  // anonymous mapping without a name: the kernel leaves a trailing space
  '7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0 ',
  body(132, 'VmFlags: rd wr mr mw me nr dd sd '),
  // and a nameless one without the trailing space
  '7f1e2c100000-7f1e2c101000 ---p 00000000 00:00 0',
  body(4, 'VmFlags: mr mw me sd '),
  '7f1e2d000000-7f1e2d100000 rw-s 00000000 00:01 4096                       /dev/zero (deleted)',
  body(1024, 'VmFlags: rd wr sh mr mw me ms sd '),
  '7f1e2e000000-7f1e2e003000 r--s 100003000 fd:02 98765                     /home/user/my data/file with  two spaces (1).bin',
  body(12, 'VmFlags: rd sh mr mw me ms sd '),
  '7f1e2f000000-7f1e2f001000 rw-p 00000000 00:00 0                          [anon:my buffer]',
  body(4, 'VmFlags: rd wr mr mw me ac sd hg '),
  // no VmFlags line at all (very old kernels)
  '7f1e30000000-7f1e30001000 r--p 00000000 00:00 0                          [anon:x]',
  body(4),
  '7ffd5c0a1000-7ffd5c0c2000 rw-p 00000000 00:00 0                          [stack]',
  body(132, 'VmFlags: rd wr mr mw me gd ac '),
  '7ffd5c1f0000-7ffd5c1f4000 r--p 00000000 00:00 0                          [vvar]',
  body(16, 'VmFlags: rd mr pf io de dd sd '),
  '7ffd5c1f4000-7ffd5c1f6000 r-xp 00000000 00:00 0                          [vdso]',
  body(8, 'VmFlags: rd ex mr mw me de sd '),
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
  body(4, 'VmFlags: ex '),
  '',
].join('\n');

test('parseSmaps: headers with and without paths, paths with spaces, VmFlags', () => {
  const e = parseSmaps(SMAPS);
  const brief = e.map((x) => [x.start.toString(16), x.end.toString(16), x.perms, x.offset.toString(16), x.inode, x.path]);
  assert.deepEqual(brief, [
    ['55d4c3a00000', '55d4c3a02000', 'r--p', '0', 1835023, '/usr/bin/cat'],
    ['55d4c3a02000', '55d4c3a07000', 'r-xp', '2000', 1835023, '/usr/bin/cat'],
    ['55d4c5000000', '55d4c5021000', 'rw-p', '0', 0, '[heap]'],
    ['7f1e2c000000', '7f1e2c021000', 'rw-p', '0', 0, ''],
    ['7f1e2c100000', '7f1e2c101000', '---p', '0', 0, ''],
    ['7f1e2d000000', '7f1e2d100000', 'rw-s', '0', 4096, '/dev/zero (deleted)'],
    ['7f1e2e000000', '7f1e2e003000', 'r--s', '100003000', 98765, '/home/user/my data/file with  two spaces (1).bin'],
    ['7f1e2f000000', '7f1e2f001000', 'rw-p', '0', 0, '[anon:my buffer]'],
    ['7f1e30000000', '7f1e30001000', 'r--p', '0', 0, '[anon:x]'],
    ['7ffd5c0a1000', '7ffd5c0c2000', 'rw-p', '0', 0, '[stack]'],
    ['7ffd5c1f0000', '7ffd5c1f4000', 'r--p', '0', 0, '[vvar]'],
    ['7ffd5c1f4000', '7ffd5c1f6000', 'r-xp', '0', 0, '[vdso]'],
    ['ffffffffff600000', 'ffffffffff601000', '--xp', '0', 0, '[vsyscall]'],
  ]);
  assert.equal(e[0].start, 0x55d4c3a00000);
  assert.equal(e[6].offset, 0x100003000);
  assert.deepEqual(e[0].vmFlags, ['rd', 'mr', 'mw', 'me', 'dw', 'sd']);
  assert.deepEqual(e[3].vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'nr', 'dd', 'sd']);
  assert.deepEqual(e[7].vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'ac', 'sd', 'hg']);
  assert.deepEqual(e[8].vmFlags, [], 'no VmFlags line: no flags (and not the flags of the next entry)');
  assert.deepEqual(e[9].vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'gd', 'ac']);
  assert.deepEqual(e[12].vmFlags, ['ex']);
  for (const x of e) for (const f of x.vmFlags) assert.match(f, /^[a-z0-9]{2}$/);
});

test('parseSmaps: plain maps text (no detail lines) and empty input', () => {
  assert.deepEqual(parseSmaps(''), []);
  const e = parseSmaps('00400000-00401000 r-xp 00000000 fd:00 42 /opt/a b/c\n00600000-00601000 rw-p 00000000 00:00 0\n');
  assert.equal(e.length, 2);
  assert.equal(e[0].path, '/opt/a b/c');
  assert.equal(e[0].start, 0x400000);
  assert.equal(e[1].path, '');
  assert.deepEqual(e[1].vmFlags, []);
});

// ---------------------------------------------------------------------------
// parseStat

/** A /proc/PID/stat line with 52 fields; field n (n >= 3) is `f<n>` unless given. */
function statLine(pid, comm, set = {}) {
  const fields = [];
  for (let n = 3; n <= 52; n++) fields.push(set[n] ?? String(n === 3 ? 'S' : 1000 + n));
  return `${pid} (${comm}) ${fields.join(' ')}\n`;
}

test('parseStat: comm with spaces and parentheses', () => {
  for (const comm of ['cat', 'my prog', 'a (b) c', 'x) S 9 9 9 (', ') )', '((', '', 'tab\there', 'sp  ace ']) {
    const f = parseStat(statLine(4321, comm, { 4: '1', 5: '4321', 6: '77', 26: '94000000000', 27: '94000000900', 28: '140720000000' }));
    assert.equal(f.length, 53, `comm ${JSON.stringify(comm)}`);
    assert.equal(f[0], '');
    assert.equal(f[1], '4321');
    assert.equal(f[2], comm);
    assert.equal(f[3], 'S');
    assert.equal(f[4], '1');
    assert.equal(f[5], '4321');
    assert.equal(f[6], '77');
    assert.equal(f[26], '94000000000');
    assert.equal(f[27], '94000000900');
    assert.equal(f[28], '140720000000');
    for (let n = 45; n <= 51; n++) assert.equal(f[n], String(1000 + n));
    assert.equal(f[52], '1052');
  }
});

test('parseStat: a real /proc/self/stat', async () => {
  const { readFileSync } = await import('node:fs');
  const f = parseStat(readFileSync('/proc/self/stat', 'utf8'));
  assert.equal(f[1], String(process.pid));
  assert.match(f[3], /^[RSDTtZXIPWKx]$/);
  assert.equal(f[4], String(process.ppid));
  assert.ok(f.length >= 53);
});

test('parseStat: malformed input is rejected', () => {
  assert.throws(() => parseStat(''), /malformed/);
  assert.throws(() => parseStat('123 no-parens S 1'), /malformed/);
  assert.throws(() => parseStat('123 )oops( S 1'), /malformed/);
});

// ---------------------------------------------------------------------------
// inheritableFrom: the parent mapping a child's mapping came from by fork

test('inheritableFrom: only a private mapping held whole by a parent mapping of the same kind, protection, flags and file position', () => {
  const NO_FILE = { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n };
  const anon = (start, end, o = {}) => ({ start, end, kind: 1, prot: 3, vmFlags: 0x200, pgoff: start / 4096, path: '', openWrite: false, file: NO_FILE, shmId: 0, ...o });
  const file = (start, end, pgoff, o = {}) => anon(start, end, { kind: 3, prot: 3, vmFlags: 0x200, pgoff, path: '/usr/bin/x', ...o });
  const parent = [anon(0x10000, 0x20000), file(0x400000, 0x410000, 4), anon(0x500000, 0x510000, { kind: 2, shmId: 1 }), anon(0x600000, 0x610000, { prot: 1 })];
  // the same mapping, or a part of it
  assert.equal(inheritableFrom(anon(0x10000, 0x20000), parent), parent[0]);
  assert.equal(inheritableFrom(anon(0x12000, 0x13000), parent), parent[0]);
  assert.equal(inheritableFrom(file(0x401000, 0x402000, 5), parent), parent[1]);
  // reaching out of it, or not in the parent at all
  assert.equal(inheritableFrom(anon(0x1f000, 0x21000), parent), undefined);
  assert.equal(inheritableFrom(anon(0x30000, 0x31000), parent), undefined);
  // another kind, protection, flags, file or file position
  assert.equal(inheritableFrom(anon(0x10000, 0x20000, { prot: 1 }), parent), undefined);
  assert.equal(inheritableFrom(anon(0x10000, 0x20000, { vmFlags: 0x201 }), parent), undefined);
  assert.equal(inheritableFrom(anon(0x600000, 0x610000, { prot: 3 }), parent), undefined);
  assert.equal(inheritableFrom(file(0x401000, 0x402000, 4), parent), undefined);
  assert.equal(inheritableFrom(file(0x401000, 0x402000, 5, { path: '/usr/bin/y' }), parent), undefined);
  assert.equal(inheritableFrom(anon(0x400000, 0x401000), parent), undefined);
  // shared mappings are objects of their own; DONTFORK, WIPEONFORK and locked mappings never come from fork as they are
  assert.equal(inheritableFrom(anon(0x500000, 0x510000, { kind: 2, shmId: 1 }), parent), undefined);
  for (const flag of [0x4, 0x10, 0x80]) {
    const p = [anon(0x10000, 0x20000, { vmFlags: 0x200 | flag })];
    assert.equal(inheritableFrom(anon(0x10000, 0x20000, { vmFlags: 0x200 | flag }), p), undefined, `flag ${flag}`);
  }
});

// ---------------------------------------------------------------------------
// pre-copy: range arithmetic of the dump, file chunks of the restore

test('subtractRanges / intersectRanges / unionRanges on sorted [addr, len] pairs', async () => {
  const { subtractRanges, intersectRanges, unionRanges } = await import('../../dist/util/ranges.js');
  assert.deepEqual(unionRanges([0x1000, 0x1000], [0x2000, 0x1000, 0x5000, 0x1000]), [0x1000, 0x2000, 0x5000, 0x1000]);
  const a = [0x1000, 0x4000, 0x10000, 0x2000];
  assert.deepEqual(subtractRanges(a, []), a);
  assert.deepEqual(subtractRanges(a, a), []);
  assert.deepEqual(subtractRanges(a, [0x2000, 0x1000]), [0x1000, 0x1000, 0x3000, 0x2000, 0x10000, 0x2000]);
  assert.deepEqual(subtractRanges(a, [0x0, 0x2000, 0x4000, 0xd000]), [0x2000, 0x2000, 0x11000, 0x1000]);
  assert.deepEqual(intersectRanges(a, [0x4000, 0xd000]), [0x4000, 0x1000, 0x10000, 0x1000]);
  assert.deepEqual(intersectRanges(a, [0x20000, 0x1000]), []);
  // every page: the same answer as a page-by-page set
  const pages = (r) => { const s = new Set(); for (let i = 0; i < r.length; i += 2) for (let p = r[i]; p < r[i] + r[i + 1]; p += 0x1000) s.add(p); return s; };
  const rnd = (seed) => { const out = []; let x = seed; for (let p = 0; p < 64; p++) { x = (x * 1103515245 + 12345) & 0x7fffffff; if (x & 1) { if (out.length && out.at(-2) + out.at(-1) === p * 0x1000) out[out.length - 1] += 0x1000; else out.push(p * 0x1000, 0x1000); } } return out; };
  for (let s = 1; s < 30; s++) {
    const x = rnd(s), y = rnd(s + 100);
    const px = pages(x), py = pages(y);
    assert.deepEqual(pages(subtractRanges(x, y)), new Set([...px].filter((p) => !py.has(p))), `subtract ${s}`);
    assert.deepEqual(pages(intersectRanges(x, y)), new Set([...px].filter((p) => py.has(p))), `intersect ${s}`);
    const u = unionRanges(x, y);
    assert.deepEqual(pages(u), new Set([...px, ...py]), `union ${s}`);
    for (let i = 2; i < u.length; i += 2) assert.ok(u[i] > u[i - 2] + u[i - 1], `union ${s} merged and sorted`);
  }
});

const indexOf = async (records) => {
  const { PrecopyIndex } = await import('../../dist/restore/precopy-index.js');
  const ix = new PrecopyIndex();
  for (const r of records) ix.add(r.addr, r.len, r.fileOffset);
  return ix;
};

test('PrecopyIndex: the used parts of the pre-copied records, with their file offsets', async () => {
  const records = [{ addr: 0x10000, len: 0x4000, fileOffset: 1000 }, { addr: 0x1000, len: 0x2000, fileOffset: 50 }, { addr: 0x14000, len: 0x1000, fileOffset: 90000 }];
  const ix = await indexOf(records);
  assert.deepEqual(ix.chunks([]), []);
  assert.deepEqual(ix.chunks([{ start: 0x2000, len: 0x1000 }, { start: 0x11000, len: 0x4000 }]), [
    { addr: 0x2000, len: 0x1000, fileOffset: 50 + 0x1000 },
    { addr: 0x11000, len: 0x3000, fileOffset: 1000 + 0x1000 },
    { addr: 0x14000, len: 0x1000, fileOffset: 90000 },
  ]);
  // a range the records do not cover gives less than it names (the restore refuses that)
  assert.deepEqual(ix.chunks([{ start: 0x5000, len: 0x1000 }]), []);
  // a later round's copy of a page replaces the earlier one
  const rounds = await indexOf([{ addr: 0x10000, len: 0x4000, fileOffset: 1000 }, { addr: 0x11000, len: 0x1000, fileOffset: 70000 }, { addr: 0x12000, len: 0x2000, fileOffset: 80000 }, { addr: 0x13000, len: 0x1000, fileOffset: 99000 }]);
  assert.deepEqual(rounds.chunks([{ start: 0x10000, len: 0x4000 }]), [
    { addr: 0x10000, len: 0x1000, fileOffset: 1000 },
    { addr: 0x11000, len: 0x1000, fileOffset: 70000 },
    { addr: 0x12000, len: 0x1000, fileOffset: 80000 },
    { addr: 0x13000, len: 0x1000, fileOffset: 99000 },
  ]);
});

test('PrecopyIndex: what a later copy replaces (freed from the staging memfd), against a page-by-page model', async () => {
  const { PrecopyIndex } = await import('../../dist/restore/precopy-index.js');
  const P = 0x1000;
  const ix = new PrecopyIndex();
  assert.deepEqual(ix.add(0x10000, 0x4000, 0), []);
  assert.deepEqual(ix.add(0x20000, 0x2000, 0x4000), [], 'no overlap');
  assert.deepEqual(ix.add(0x13000, 0x1000, 0x6000), [{ addr: 0x13000, len: 0x1000, fileOffset: 0x3000 }]);
  // across two earlier records and the gap between them
  assert.deepEqual(ix.add(0x12000, 0xf000, 0x7000), [
    { addr: 0x12000, len: 0x1000, fileOffset: 0x2000 },
    { addr: 0x13000, len: 0x1000, fileOffset: 0x6000 },
    { addr: 0x20000, len: 0x1000, fileOffset: 0x4000 },
  ]);
  // random rounds: every page's latest copy is found, every replaced copy reported once
  let seed = 7;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let trial = 0; trial < 200; trial++) {
    const x = new PrecopyIndex();
    const owner = new Map(); // page -> file offset of its latest copy
    let off = 0;
    for (let r = 0; r < 12; r++) {
      const start = rnd(64) * P;
      const len = (1 + rnd(16)) * P;
      const expected = [];
      for (let a = start; a < start + len; a += P) if (owner.has(a)) expected.push(owner.get(a));
      const got = x.add(start, len, off).flatMap((p) => Array.from({ length: p.len / P }, (_, k) => p.fileOffset + k * P));
      assert.deepEqual(got.sort((a, b) => a - b), expected.sort((a, b) => a - b), `trial ${trial} record ${r}`);
      for (let a = start; a < start + len; a += P) owner.set(a, off + (a - start));
      off += len;
    }
    const chunks = x.chunks([{ start: 0, len: 80 * P }]);
    const pages = new Map(chunks.flatMap((c) => Array.from({ length: c.len / P }, (_, k) => [c.addr + k * P, c.fileOffset + k * P])));
    assert.deepEqual([...pages].sort((a, b) => a[0] - b[0]), [...owner].sort((a, b) => a[0] - b[0]), `trial ${trial}: latest copies`);
    for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i].addr >= chunks[i - 1].addr + chunks[i - 1].len, 'chunks in order, disjoint');
  }
});
