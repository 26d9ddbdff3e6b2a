// Unit tests of MetaCollector (src/restore/image-model.ts): the metadata of an
// image must be complete and consistent per thread (one THREAD, REGS and
// SIGNALS record each, main thread first, process-wide signal state only on
// the main thread) before a plan is built from it. Every refusal is an ImageError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { RecordType } from '../../dist/image/records.js';
import { ImageWriter, readImage } from '../../dist/image/stream.js';
import { MetaCollector } from '../../dist/restore/image-model.js';
import { buildPlan } from '../../dist/restore/restore.js';
import { encodePlan } from '../../dist/restore/plan-codec.js';
import { RESTORE } from '../vectors/make-plan-vector.mjs';

const PID = 4242;
const TID2 = 4250;
const XSAVE = 832;

const pattern = (n, seed) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 29 + seed * 11) & 0xff;
  return b;
};

/** A user_regs_struct of a 64-bit thread (cs = 0x33). */
function gp(seed) {
  const b = Buffer.alloc(216);
  for (let i = 0; i < 27; i++) b.writeBigUInt64LE(BigInt(seed) * 0x10000n + BigInt(i), i * 8);
  b.writeBigUInt64LE(0x33n, 17 * 8);
  b.writeBigUInt64LE(0x2bn, 20 * 8);
  return b;
}

function siginfo(signo, seed) {
  const b = pattern(128, seed);
  b.writeInt32LE(signo, 0);
  return b;
}

const HEADER = {
  imageVersion: 2, toolVersion: '0.1.0', arch: 'x86_64', kernel: '6.8.0', hostname: 'src', pageSize: 4096, xsaveSize: XSAVE,
  xcr0: 0x7n, createdMs: 1732660000123n, rootPid: PID,
};
const TASK = {
  pid: PID, tid: PID, ppid: 1, pgid: PID, sid: PID, comm: 'two-threads', exe: '/usr/bin/two', cwd: '/tmp', root: '/',
  personality: 0, umask: 0o022, uids: [0, 0, 0, 0], gids: [0, 0, 0, 0],
  startCode: 0x400000, endCode: 0x401000, startData: 0x600000, endData: 0x601000, startBrk: 0x1000000, brk: 0x1021000,
  startStack: 0x7ffc00000000, argStart: 0x7ffc00001000, argEnd: 0x7ffc00001100, envStart: 0x7ffc00001100, envEnd: 0x7ffc00002000,
  auxv: Buffer.alloc(16), rseqAbi: 0x7f0000001020n, rseqLen: 32, rseqSig: 0x53053053,
};
const TIMERS = { itimers: [{ which: 0, intervalSec: 0n, intervalUsec: 0n, valueSec: 0n, valueUsec: 0n }] };
const VMA = { start: 0x7f0000000000, end: 0x7f0000004000, kind: 1, prot: 3, vmFlags: 0, pgoff: 0x7f0000000, path: '', openWrite: false,
  file: { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n } };

const threadRec = (tid, k) => ({
  tid, rseqAbi: 0x7f0000001020n + BigInt(k) * 0x1000n, rseqLen: 32, rseqSig: 0x53053053,
  robustList: 0x7f0000001a20n + BigInt(k) * 0x1000n, robustLen: 24n, clearChildTid: 0x7f0000001a10n + BigInt(k) * 0x1000n, comm: `worker-${k}`,
});
const regsRec = (tid, k) => ({ tid, gp: gp(k + 1), xsave: pattern(XSAVE, k + 1), inSyscall: false, syscallNr: -1n });
const MAIN_SIGNALS = {
  tid: PID, blocked: 0x10000n,
  actions: [{ sig: 10, handler: 0x401234n, flags: 0x14000000n, restorer: 0x7f0000002000n, mask: 0n }],
  pending: [{ shared: false, info: siginfo(10, 1) }, { shared: true, info: siginfo(34, 2) }],
  altstackSp: 0n, altstackSize: 0n, altstackFlags: 2,
};
const SECOND_SIGNALS = {
  tid: TID2, blocked: 0x20000n, actions: [],
  pending: [{ shared: false, info: siginfo(12, 3) }], // a thread's own pending signal is per thread
  altstackSp: 0x7f0000100000n, altstackSize: 0x4000n, altstackFlags: 0,
};

/** A complete two-thread metadata set, in the order dump.ts writes it: [type, value][]. */
function records() {
  return [
    [RecordType.HEADER, HEADER], [RecordType.TASK, TASK], [RecordType.TIMERS, TIMERS],
    [RecordType.THREAD, threadRec(PID, 0)], [RecordType.REGS, regsRec(PID, 0)], [RecordType.SIGNALS, MAIN_SIGNALS],
    [RecordType.THREAD, threadRec(TID2, 1)], [RecordType.REGS, regsRec(TID2, 1)], [RecordType.SIGNALS, SECOND_SIGNALS],
    [RecordType.VMA, VMA],
  ];
}

const collect = (recs) => {
  const m = new MetaCollector();
  for (const [type, value] of recs) m.add({ type, value });
  return m.finish();
};

/** Asserts that the metadata set is refused with an ImageError matching re. */
function refused(recs, re, label) {
  assert.throws(() => collect(recs), (e) => {
    assert.equal(e.name, 'ImageError', `${label}: expected an ImageError, got ${e.name}: ${e.message}`);
    assert.match(e.message, re, label);
    return true;
  }, label);
}

const without = (recs, type, tid) => recs.filter(([t, v]) => !(t === type && v.tid === tid));
const replace = (recs, type, tid, value) => recs.map(([t, v]) => (t === type && v.tid === tid ? [t, value] : [t, v]));

// ---------------------------------------------------------------------------

test('MetaCollector: a complete two-thread set read from an image passes, main thread first', async () => {
  const chunks = [];
  const w = new ImageWriter({ write: async (b) => { chunks.push(Buffer.from(b)); } });
  await w.start();
  for (const [type, value] of records()) await w.record(type, value);
  await w.pagesRecord(VMA.start, pattern(4096, 9));
  await w.finish();
  const m = new MetaCollector();
  for await (const item of readImage((async function* () { yield Buffer.concat(chunks); })())) {
    if (item.type === RecordType.PAGES) break;
    m.add(item);
  }
  const meta = m.finish();
  assert.deepEqual(meta.header, HEADER);
  assert.deepEqual(meta.task, TASK);
  assert.deepEqual(meta.threads, [threadRec(PID, 0), threadRec(TID2, 1)]);
  assert.deepEqual(meta.regs, [regsRec(PID, 0), regsRec(TID2, 1)]);
  assert.deepEqual(meta.signals, [MAIN_SIGNALS, SECOND_SIGNALS]);
  assert.deepEqual(meta.timers, TIMERS);
  assert.deepEqual(meta.vmas, [VMA]);
  assert.deepEqual(meta.fds, []);
});

test('MetaCollector: REGS and SIGNALS are matched to the threads by tid, whatever their order', () => {
  const r = records();
  const order = [0, 1, 2, 3, 6, 8, 7, 4, 5, 9]; // THREAD main, THREAD 2, SIGNALS 2, REGS 2, REGS main, SIGNALS main
  const meta = collect(order.map((i) => r[i]));
  assert.deepEqual(meta.threads.map((t) => t.tid), [PID, TID2]);
  assert.deepEqual(meta.regs.map((x) => x.tid), [PID, TID2]);
  assert.deepEqual(meta.signals.map((x) => x.tid), [PID, TID2]);
  assert.deepEqual(meta.regs[1], regsRec(TID2, 1));
  assert.deepEqual(meta.signals[0], MAIN_SIGNALS);
  // a single-threaded task is the degenerate case
  const single = collect([r[0], r[1], r[2], r[3], r[4], r[5]]);
  assert.equal(single.threads.length, 1);
});

test('MetaCollector: the two-thread set gives a plan that crmigrate-restore accepts', () => {
  const meta = collect(records());
  const plan = buildPlan(meta);
  assert.deepEqual(plan.threads.map((t) => t.tid), [TID2]);
  assert.deepEqual([plan.task.robustList, plan.task.robustLen, plan.task.clearChildTid], [0x7f0000001a20n, 24n, 0x7f0000001a10n]);
  assert.deepEqual(plan.threads[0].altstack, { sp: 0x7f0000100000n, size: 0x4000n, flags: 0 });
  assert.equal(plan.threads[0].blocked, 0x20000n);
  assert.ok(plan.threads[0].xsave.equals(pattern(XSAVE, 2)));
  assert.deepEqual(plan.siginfos.map((s) => [s.shared, s.tid, s.raw.readInt32LE(0)]), [[false, PID, 10], [true, PID, 34], [false, TID2, 12]]);
  assert.ok(existsSync(RESTORE), `${RESTORE} missing: run make -C native`);
  const r = spawnSync(RESTORE, ['--print-plan'], { input: encodePlan(plan), encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /\nsiginfo shared=0 tid=4242 signo=10\nsiginfo shared=1 tid=0 signo=34\nsiginfo shared=0 tid=4250 signo=12\n/);
  assert.match(r.stdout, /\nthread 4250 rip=20010 rsp=20013 fs_base=20015 blocked=20000 altstack=7f0000100000\/16384 rseq=7f0000002020\/32 robust=7f0000002a20\/24 ctid=7f0000002a10\n/);
  assert.match(r.stdout, /\nrobust=7f0000001a20\/24 ctid=7f0000001a10\nxsave 832 bytes x 2\n$/);
});

test('MetaCollector: a thread without its REGS, SIGNALS or THREAD record is refused', () => {
  for (const tid of [PID, TID2]) {
    refused(without(records(), RecordType.REGS, tid), /image has 1 registers records for 2 threads/, `no REGS for ${tid}`);
    refused(without(records(), RecordType.SIGNALS, tid), /image has 1 signals records for 2 threads/, `no SIGNALS for ${tid}`);
  }
  refused(without(records(), RecordType.THREAD, TID2), /image has 2 registers records for 1 threads/, 'no THREAD for the second thread');
  refused(without(records(), RecordType.THREAD, PID), /the first thread is not the main thread/, 'no THREAD for the main thread');
  refused(records().filter(([t]) => t !== RecordType.THREAD), /missing its thread record/, 'no THREAD record at all');
  // as many records as threads, but one belongs to a thread that does not exist
  refused(replace(records(), RecordType.REGS, TID2, regsRec(4251, 1)), /no registers record for thread 4250/, 'REGS of an unknown thread');
  refused(replace(records(), RecordType.SIGNALS, TID2, { ...SECOND_SIGNALS, tid: 4251 }), /no signals record for thread 4250/, 'SIGNALS of an unknown thread');
  refused(replace(records(), RecordType.REGS, TID2, regsRec(PID, 1)), /no registers record for thread 4250/, 'REGS of the main thread twice');
  // the per-process records
  refused(records().filter(([t]) => t !== RecordType.TIMERS), /missing its timers record/, 'no TIMERS');
  refused(records().filter(([t]) => t !== RecordType.TASK), /missing its task record/, 'no TASK');
  refused(records().filter(([t]) => t !== RecordType.HEADER), /missing its header record/, 'no HEADER');
});

test('MetaCollector: a duplicated thread is refused', () => {
  const r = records();
  // the same THREAD record twice
  refused([...r, r[6]], /image has a thread twice/, 'THREAD twice');
  // the whole per-thread trio twice
  refused([...r, r[6], r[7], r[8]], /image has a thread twice/, 'THREAD, REGS, SIGNALS twice');
  // a second thread with the main thread's tid
  refused(replace(records(), RecordType.THREAD, TID2, threadRec(PID, 1)), /image has a thread twice/, 'second thread with the main tid');
  // an extra REGS or SIGNALS for a known thread
  refused([...r, r[7]], /image has 3 registers records for 2 threads/, 'REGS twice');
  refused([...r, r[8]], /image has 3 signals records for 2 threads/, 'SIGNALS twice');
});

test('MetaCollector: a second thread carrying process-wide signal state is refused', () => {
  const act = { sig: 2, handler: 0x401100n, flags: 0x04000000n, restorer: 0n, mask: 0n };
  refused(replace(records(), RecordType.SIGNALS, TID2, { ...SECOND_SIGNALS, actions: [act] }),
    /image: thread 4250 carries process-wide signal state/, 'sigactions on the second thread');
  refused(replace(records(), RecordType.SIGNALS, TID2, { ...SECOND_SIGNALS, pending: [...SECOND_SIGNALS.pending, { shared: true, info: siginfo(34, 5) }] }),
    /image: thread 4250 carries process-wide signal state/, 'a shared pending signal on the second thread');
  refused(replace(records(), RecordType.SIGNALS, TID2, { ...SECOND_SIGNALS, pending: [{ shared: true, info: siginfo(15, 6) }] }),
    /carries process-wide signal state/, 'only a shared pending signal on the second thread');
  // the main thread may carry them (see the passing set), and the second thread its own pending signals
  collect(replace(records(), RecordType.SIGNALS, TID2, { ...SECOND_SIGNALS, pending: [] }));
});

test('MetaCollector: a main thread that is not first is refused', () => {
  const r = records();
  // THREAD of the second thread (with its REGS and SIGNALS) before the main thread's
  refused([r[0], r[1], r[2], r[6], r[7], r[8], r[3], r[4], r[5], r[9]], /the first thread is not the main thread/, 'second thread first');
  // only the THREAD records swapped
  refused([r[0], r[1], r[2], r[6], r[4], r[5], r[3], r[7], r[8], r[9]], /the first thread is not the main thread/, 'THREAD records swapped');
  // a task whose tid is none of the threads
  refused(replace(r, RecordType.TASK, PID, { ...TASK, tid: 4300 }), /the first thread is not the main thread/, 'task tid not a thread');
});

test('MetaCollector: other inconsistencies are ImageErrors', () => {
  const r = records();
  refused(replace(r, RecordType.REGS, TID2, { ...regsRec(TID2, 1), xsave: pattern(XSAVE + 64, 1) }),
    /FPU state size does not match its header/, 'second thread FPU state of another size');
  refused([...r, [RecordType.TASK, TASK]], /a second task record/, 'TASK twice');
  refused([...r, [RecordType.TIMERS, TIMERS]], /a second timers record/, 'TIMERS twice');
  refused([...r, [RecordType.TRAILER, { records: 1, pages: 0, pageBytes: 0n, chainCrc: 0 }]], /unexpected record type 255/, 'TRAILER');
  assert.throws(() => new MetaCollector().add({ type: RecordType.PAGES, addr: 0, data: Buffer.alloc(0) }), /page record/);
});
