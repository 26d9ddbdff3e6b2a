// Unit tests of MetaCollector (src/restore/image-model.ts): the metadata of an
// image must be complete and consistent per thread (one THREAD, REGS and
// SIGNALS record each, main thread first, process-wide signal state only on
// the main thread) before a plan is built from it; and of readSections, which
// splits a tree image into its tree, shared memory objects and tasks and
// checks their order against the PROCESS records. Every refusal is an ImageError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { IMAGE_VERSION, RecordType } from '../../dist/image/records.js';
import { ImageWriter, readImage } from '../../dist/image/stream.js';
import { MetaCollector, readSections } from '../../dist/restore/image-model.js';
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
  imageVersion: IMAGE_VERSION, toolVersion: '0.1.0', arch: 'x86_64', kernel: '6.8.0', hostname: 'src', pageSize: 4096, xsaveSize: XSAVE,
  xcr0: 0x7n, createdMs: 1732660000123n, rootPid: PID,
};
const TASK = {
  pid: PID, tid: PID, ppid: 1, pgid: PID, sid: PID, comm: 'two-threads', exe: '/usr/bin/two', cwd: '/tmp', root: '/',
  personality: 0, umask: 0o022, uids: [0, 0, 0, 0], gids: [0, 0, 0, 0],
  startCode: 0x400000, endCode: 0x401000, startData: 0x600000, endData: 0x601000, startBrk: 0x1000000, brk: 0x1021000,
  startStack: 0x7ffc00000000, argStart: 0x7ffc00001000, argEnd: 0x7ffc00001100, envStart: 0x7ffc00001100, envEnd: 0x7ffc00002000,
  auxv: Buffer.alloc(16), rseqAbi: 0x7f0000001020n, rseqLen: 32, rseqSig: 0x53053053,
  groups: [], capInh: 0n, capPrm: 0n, capEff: 0n, capBnd: 0x1ffffffffffn, capAmb: 0n, securebits: 0, noNewPrivs: false, dumpable: 1,
};
const TIMERS = { itimers: [{ which: 0, intervalSec: 0n, intervalUsec: 0n, valueSec: 0n, valueUsec: 0n }] };
const VMA = { start: 0x7f0000000000, end: 0x7f0000004000, kind: 1, prot: 3, vmFlags: 0, pgoff: 0x7f0000000, path: '', openWrite: false,
  file: { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n }, shmId: 0 };

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

// ---------------------------------------------------------------------------
// readSections: a tree image split into its tree, its shared memory objects
// and its tasks, in the order of the tree. The image here:
//   HEADER | PROCESS 4242 (threads 4242, 4250) | PROCESS 4300 (child) | SHMEM 1 (4 pages)
//   OBJECT_PAGES 1 | PAGES offset 0x1000
//   TASK 4242 ... (two threads, an anonymous mapping, a view of SHMEM 1) | PAGES
//   TASK 4300 ... (one thread, a view of SHMEM 1)
//   TRAILER

const CHILD = 4300;
const NO_FILE = { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n };
const procRec = (pid, ppid, tids, o = {}) => ({ pid, ppid, pgid: PID, sid: PID, zombie: false, exitCode: 0, exitSignal: 0, tids, maxFd: -1, ...o });
const PROC_ROOT = procRec(PID, 1, [PID, TID2]);
const PROC_CHILD = procRec(CHILD, PID, [CHILD]);
const SHM = { id: 1, size: 0x4000 };
const VMA_SHM = { start: 0x7f0000100000, end: 0x7f0000104000, kind: 2, prot: 3, vmFlags: 0, pgoff: 0, path: '', openWrite: false, file: NO_FILE, shmId: 1 };
const CHILD_TASK = { ...TASK, pid: CHILD, tid: CHILD, ppid: PID, comm: 'child' };
const CHILD_SIGNALS = { tid: CHILD, blocked: 0n, actions: [], pending: [], altstackSp: 0n, altstackSize: 0n, altstackFlags: 2 };
const OBJ_PAGE = pattern(4096, 21);
const ROOT_PAGE = pattern(4096, 22);
const CHILD_PAGE = pattern(4096, 23);

/** The records of the root's task: records() without the header, with a view of SHMEM 1. */
const rootTask = (vmaShm = VMA_SHM) => [...records().slice(1), [RecordType.VMA, vmaShm]];
const childTask = (vmaShm = VMA_SHM, pid = CHILD) => [
  [RecordType.TASK, { ...CHILD_TASK, pid, tid: pid }], [RecordType.TIMERS, TIMERS],
  [RecordType.THREAD, threadRec(pid, 2)], [RecordType.REGS, regsRec(pid, 2)], [RecordType.SIGNALS, { ...CHILD_SIGNALS, tid: pid }],
  [RecordType.VMA, vmaShm],
];
const PAGES = 'pages';
const pages = (addr, data) => [PAGES, addr, data];

/** The valid two-process image: [type, value] and [PAGES, addr, data] items. */
const treeImage = () => [
  [RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], [RecordType.PROCESS, PROC_CHILD], [RecordType.SHMEM, SHM],
  [RecordType.OBJECT_PAGES, { id: 1 }], pages(0x1000, OBJ_PAGE),
  ...rootTask(), pages(VMA.start, ROOT_PAGE),
  ...childTask(),
];

async function writeItems(items) {
  const chunks = [];
  const w = new ImageWriter({ write: async (b) => { chunks.push(Buffer.from(b)); } });
  await w.start();
  for (const it of items) {
    if (it[0] === PAGES) await w.pagesRecord(it[1], it[2]);
    else await w.record(it[0], it[1]);
  }
  const trailer = await w.finish();
  return { bytes: Buffer.concat(chunks), trailer };
}

/** Runs readSections over the image of items: the sections it yields, then its return value or its error. */
async function sectionsOf(items, chunk = 0) {
  const { bytes, trailer } = await writeItems(items);
  const source = (async function* () {
    if (!chunk) yield bytes;
    else for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk);
  })();
  const gen = readSections(source);
  const sections = [];
  try {
    for (;;) {
      const r = await gen.next();
      if (r.done) return { sections, result: r.value, written: trailer };
      // page data is only valid until the generator resumes: keep a copy
      sections.push(r.value.kind === 'pages' ? { ...r.value, data: Buffer.from(r.value.data) } : r.value);
    }
  } catch (error) {
    return { sections, error };
  }
}

/** Asserts that readSections refuses the image with an ImageError matching re; resolves to the kinds yielded before. */
async function sectionsRefused(items, re, label) {
  const { sections, error } = await sectionsOf(items);
  assert.ok(error, `${label}: the image was accepted`);
  assert.equal(error.name, 'ImageError', `${label}: expected an ImageError, got ${error.name}: ${error.message}`);
  assert.match(error.message, re, label);
  return sections.map((s) => s.kind);
}

const replaceItem = (items, type, pred, value) => items.map((it) => (it[0] === type && pred(it[1]) ? [type, value] : it));
const dropItems = (items, pred) => items.filter((it) => !pred(it));
const insertAfter = (items, pred, ...more) => {
  const i = items.findIndex(pred);
  assert.ok(i >= 0);
  return [...items.slice(0, i + 1), ...more, ...items.slice(i + 1)];
};
const isTask = (pid) => (it) => it[0] === RecordType.TASK && it[1].pid === pid;

test('readSections: a two-process tree with one shared memory object: tree, shmem, pages, task, pages, task', async () => {
  for (const chunk of [0, 1, 4093]) {
    const { sections, result, error, written } = await sectionsOf(treeImage(), chunk);
    assert.equal(error, undefined, error?.message);
    assert.deepEqual(sections.map((s) => s.kind), ['tree', 'shmem', 'pages', 'task', 'pages', 'task'], `chunks of ${chunk}`);
    const [tree, shmem, objPages, root, rootPages, child] = sections;
    assert.deepEqual(tree, { kind: 'tree', header: HEADER, processes: [PROC_ROOT, PROC_CHILD], shmem: [SHM], sysv: [], files: [] });
    assert.deepEqual(shmem, { kind: 'shmem', object: SHM });
    assert.equal(objPages.addr, 0x1000);
    assert.ok(objPages.data.equals(OBJ_PAGE));
    assert.deepEqual(root.meta.header, HEADER);
    assert.deepEqual(root.meta.task, TASK);
    assert.deepEqual(root.meta.threads.map((t) => t.tid), [PID, TID2]);
    assert.deepEqual(root.meta.vmas, [VMA, VMA_SHM]);
    assert.equal(rootPages.addr, VMA.start);
    assert.ok(rootPages.data.equals(ROOT_PAGE));
    assert.deepEqual(child.meta.task, CHILD_TASK);
    assert.deepEqual(child.meta.threads, [threadRec(CHILD, 2)]);
    assert.deepEqual(child.meta.signals, [CHILD_SIGNALS]);
    assert.deepEqual(child.meta.vmas, [VMA_SHM]);
    assert.deepEqual(result, written, 'the trailer is the return value');
  }
});

test('readSections: zombies, shared files, an object without pages, pages at the end of an object and of the last task', async () => {
  const zombie = { ...procRec(4310, PID, []), zombie: true, exitSignal: 9 };
  const file = { id: 3, kind: 1, path: '/var/log/app.log', flags: 0o102001, pos: 5n };
  const shm2 = { id: 2, size: 0x1000 };
  const items = [
    [RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], [RecordType.PROCESS, zombie], [RecordType.PROCESS, PROC_CHILD],
    [RecordType.SHMEM, SHM], [RecordType.SHMEM, shm2], [RecordType.SHARED_FILE, file],
    [RecordType.OBJECT_PAGES, { id: 1 }], pages(0, OBJ_PAGE), pages(0x3000, OBJ_PAGE),
    [RecordType.OBJECT_PAGES, { id: 2 }], // all zero: no pages
    ...rootTask(),
    ...childTask({ ...VMA_SHM, start: 0x7f0000200000, end: 0x7f0000201000, pgoff: 0, shmId: 2 }), pages(0x7f0000200000, CHILD_PAGE),
  ];
  const { sections, error } = await sectionsOf(items);
  assert.equal(error, undefined, error?.message);
  assert.deepEqual(sections.map((s) => s.kind), ['tree', 'shmem', 'pages', 'pages', 'shmem', 'task', 'task', 'pages']);
  assert.deepEqual(sections[0].processes, [PROC_ROOT, zombie, PROC_CHILD]);
  assert.deepEqual(sections[0].shmem, [SHM, shm2]);
  assert.deepEqual(sections[0].files, [file]);
  assert.deepEqual(sections.filter((s) => s.kind === 'shmem').map((s) => s.object), [SHM, shm2]);
  assert.deepEqual(sections.filter((s) => s.kind === 'task').map((s) => s.meta.task.pid), [PID, CHILD]);
  assert.equal(sections[7].addr, 0x7f0000200000);
  // a tree without shared memory: tree, then the tasks
  const plain = [[RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], ...records().slice(1), pages(VMA.start, ROOT_PAGE)];
  const r = await sectionsOf(plain);
  assert.equal(r.error, undefined, r.error?.message);
  assert.deepEqual(r.sections.map((s) => s.kind), ['tree', 'task', 'pages']);
});

test('readSections: a TASK before any PROCESS record, or PROCESS records that are not a tree', async () => {
  assert.deepEqual(await sectionsRefused([[RecordType.HEADER, HEADER], ...records().slice(1)], /^image has no process records$/, 'v1-style image'), []);
  const base = treeImage();
  await sectionsRefused(dropItems(base, (it) => it[0] === RecordType.PROCESS), /^image has no process records$/, 'no PROCESS at all');
  await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === PID, procRec(PID + 1, 1, [PID + 1])), /^image: the first process is not the root$/, 'root not first');
  await sectionsRefused(insertAfter(base, (it) => it[0] === RecordType.PROCESS && it[1].pid === CHILD, [RecordType.PROCESS, PROC_CHILD]),
    /^image has process 4300 twice$/, 'a process twice');
  await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === CHILD, procRec(CHILD, 4299, [CHILD])),
    /^image: process 4300 comes before its parent 4299$/, 'parent not in the tree');
  await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === PID, { ...procRec(PID, 1, []), zombie: true }),
    /^image: the root is a zombie$/, 'zombie root');
});

test('readSections: tasks not in tree order, missing, extra, or with other threads than their PROCESS record', async () => {
  const base = treeImage();
  const objPart = base.slice(0, 6);
  // the child's task before the root's: nothing of either task is yielded
  const swapped = [...objPart, ...childTask(), ...rootTask(), pages(VMA.start, ROOT_PAGE)];
  assert.deepEqual(await sectionsRefused(swapped, /^image: task 4300 is not the next process of the tree$/, 'child first'), ['tree', 'shmem', 'pages']);
  // the last task missing
  assert.deepEqual(await sectionsRefused([...objPart, ...rootTask(), pages(VMA.start, ROOT_PAGE)], /^image ended before task 4300$/, 'child missing'),
    ['tree', 'shmem', 'pages', 'task', 'pages']);
  // every task missing
  await sectionsRefused(objPart, /^image ended before task 4242$/, 'no task');
  // a task for a process that is not in the tree, or a zombie
  await sectionsRefused([...base, ...childTask(VMA_SHM, 4400)], /^image: task 4400 is not the next process of the tree$/, 'a task too many');
  await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === CHILD, { ...procRec(CHILD, PID, []), zombie: true }),
    /^image: task 4300 is not the next process of the tree$/, 'a task for a zombie');
  await sectionsRefused([...base, ...childTask()], /^image: task 4300 is not the next process of the tree$/, 'a task twice');
  // threads other than the PROCESS record's
  for (const tids of [[PID], [PID, 4251], [PID, TID2, 4251]]) {
    assert.deepEqual(await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === PID, procRec(PID, 1, tids)),
      /^image: the threads of task 4242 differ from its process record$/, `PROCESS tids ${tids}`), ['tree', 'shmem', 'pages']);
  }
  await sectionsRefused(replaceItem(base, RecordType.PROCESS, (v) => v.pid === CHILD, procRec(CHILD, PID, [CHILD, 4301])),
    /^image: the threads of task 4300 differ from its process record$/, 'child with a thread it lacks');
  // a task's own records still checked (MetaCollector)
  await sectionsRefused(dropItems(base, (it) => it[0] === RecordType.TIMERS && base.indexOf(it) > base.findIndex(isTask(CHILD))),
    /^image is missing its timers record\(s\)$/, 'child without TIMERS');
});

test('readSections: OBJECT_PAGES out of order, unknown, twice or missing', async () => {
  const shm2 = { id: 2, size: 0x2000 };
  const head = [[RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], [RecordType.PROCESS, PROC_CHILD], [RecordType.SHMEM, SHM], [RecordType.SHMEM, shm2]];
  const tasks = [...rootTask(), ...childTask()];
  const obj = (id) => [RecordType.OBJECT_PAGES, { id }];
  // valid: both objects in order
  const ok = await sectionsOf([...head, obj(1), pages(0x1000, OBJ_PAGE), obj(2), ...tasks]);
  assert.equal(ok.error, undefined, ok.error?.message);
  assert.deepEqual(ok.sections.map((s) => s.kind), ['tree', 'shmem', 'pages', 'shmem', 'task', 'task']);
  assert.deepEqual(await sectionsRefused([...head, obj(2), obj(1), ...tasks], /^image: shared memory pages out of order$/, '2 before 1'), ['tree']);
  assert.deepEqual(await sectionsRefused([...head, obj(1), pages(0, OBJ_PAGE), obj(1), obj(2), ...tasks], /^image: shared memory pages out of order$/, '1 twice'),
    ['tree', 'shmem', 'pages']);
  await sectionsRefused([...head, obj(1), obj(7), ...tasks], /^image: shared memory pages out of order$/, 'unknown object');
  await sectionsRefused([...head, obj(1), obj(2), obj(2), ...tasks], /^image: shared memory pages out of order$/, 'one more than there are');
  await sectionsRefused([...head, obj(0), ...tasks], /^image: shared memory pages out of order$/, 'object 0');
  // missing: before the first task, or at the end of an image without tasks
  assert.deepEqual(await sectionsRefused([...head, obj(1), ...tasks], /^image lacks the pages of a shared memory object$/, 'object 2 missing'), ['tree', 'shmem']);
  await sectionsRefused([...head, ...tasks], /^image lacks the pages of a shared memory object$/, 'both missing');
  await sectionsRefused([...head, obj(1)], /^image lacks the pages of a shared memory object$/, 'object 2 missing, no tasks');
  // the second object's pages after the first task: it lacks them when the task begins
  await sectionsRefused([...head, obj(1), ...rootTask(), obj(2), ...childTask()], /^image lacks the pages of a shared memory object$/, 'object 2 after a task');
  // an object's pages once more after a task (its records, or its pages)
  const base = treeImage();
  assert.deepEqual(await sectionsRefused(insertAfter(base, isTask(PID), obj(1)), /^image has shared memory pages after a task$/, 'after a TASK record'),
    ['tree', 'shmem', 'pages']);
  await sectionsRefused(insertAfter(base, (it) => it[0] === PAGES && it[1] === VMA.start, obj(1), pages(0, OBJ_PAGE)),
    /^image has shared memory pages after a task$/, 'after a task\'s pages');
  await sectionsRefused([...base, obj(1)], /^image has shared memory pages after a task$/, 'after the last task');
  // an object without SHMEM records at all
  await sectionsRefused([[RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], obj(1), ...records().slice(1)], /^image: shared memory pages out of order$/, 'no SHMEM');
});

test('readSections: pages outside an object\'s size, or outside any object or task', async () => {
  const base = treeImage();
  const objPage = (addr, data) => base.map((it) => (it[0] === PAGES && it[1] === 0x1000 ? pages(addr, data) : it));
  // the last page of the object is fine, one past it is not
  assert.equal((await sectionsOf(objPage(0x3000, OBJ_PAGE))).error, undefined);
  assert.equal((await sectionsOf(objPage(0, Buffer.concat([OBJ_PAGE, OBJ_PAGE, OBJ_PAGE, OBJ_PAGE])))).error, undefined);
  assert.deepEqual(await sectionsRefused(objPage(0x4000, OBJ_PAGE), /^image: pages past the end of shared memory 1$/, 'one page past the end'), ['tree', 'shmem']);
  await sectionsRefused(objPage(0x3000, Buffer.concat([OBJ_PAGE, OBJ_PAGE])), /^image: pages past the end of shared memory 1$/, 'running past the end');
  await sectionsRefused(objPage(0, Buffer.concat([OBJ_PAGE, OBJ_PAGE, OBJ_PAGE, OBJ_PAGE, OBJ_PAGE])), /^image: pages past the end of shared memory 1$/, 'five pages of four');
  await sectionsRefused(objPage(0x7f0000100000, OBJ_PAGE), /^image: pages past the end of shared memory 1$/, 'a task address in an object');
  // pages right after the tree records: before any object or task
  const head = [[RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], [RecordType.PROCESS, PROC_CHILD]];
  assert.deepEqual(await sectionsRefused([...head, pages(VMA.start, ROOT_PAGE), ...rootTask(), ...childTask()],
    /^image has page data outside any task or object$/, 'pages before the first task'), []);
  await sectionsRefused([...head, [RecordType.SHMEM, SHM], pages(0, OBJ_PAGE), [RecordType.OBJECT_PAGES, { id: 1 }], ...rootTask(), ...childTask()],
    /^image has page data outside any task or object$/, 'pages before OBJECT_PAGES');
  await sectionsRefused([[RecordType.HEADER, HEADER], pages(VMA.start, ROOT_PAGE)], /^image has page data outside any task or object$/, 'pages right after the header');
});

test('readSections: a mapping naming a shared memory object the image does not have', async () => {
  const base = treeImage();
  for (const shmId of [2, 0xffffffff]) {
    const items = base.map((it) => (it[0] === RecordType.VMA && it[1].shmId ? [RecordType.VMA, { ...it[1], shmId }] : it));
    assert.deepEqual(await sectionsRefused(items, new RegExp(`^image: mapping at 7f0000100000 names unknown shared memory ${shmId}$`), `shmId ${shmId}`),
      ['tree', 'shmem', 'pages']);
  }
  // only the child's mapping is wrong: the root's task goes through first
  const childWrong = [...base.slice(0, base.findIndex(isTask(CHILD))), ...childTask({ ...VMA_SHM, shmId: 3 })];
  assert.deepEqual(await sectionsRefused(childWrong, /^image: mapping at 7f0000100000 names unknown shared memory 3$/, 'child'),
    ['tree', 'shmem', 'pages', 'task', 'pages']);
  // an image without any SHMEM record
  await sectionsRefused([[RecordType.HEADER, HEADER], [RecordType.PROCESS, procRec(PID, 1, [PID, TID2])], ...rootTask()],
    /^image: mapping at 7f0000100000 names unknown shared memory 1$/, 'no SHMEM');
});

test('readSections: tree records after the tree, task records outside a task', async () => {
  const base = treeImage();
  const afterRoot = (item) => insertAfter(base, isTask(PID), item);
  await sectionsRefused(afterRoot([RecordType.PROCESS, procRec(4500, PID, [4500])]), /^image has a process record out of place$/, 'PROCESS after a TASK');
  await sectionsRefused([...base, [RecordType.PROCESS, procRec(4500, PID, [4500])]], /^image has a process record out of place$/, 'PROCESS at the end');
  await sectionsRefused(afterRoot([RecordType.SHMEM, { id: 2, size: 4096 }]), /^image has a shmem record out of place$/, 'SHMEM after a TASK');
  await sectionsRefused(afterRoot([RecordType.SHARED_FILE, { id: 2, kind: 1, path: '/x', flags: 0, pos: 0n }]), /^image has a shared_file record out of place$/, 'SHARED_FILE after a TASK');
  const afterObj = (item) => insertAfter(base, (it) => it[0] === RecordType.OBJECT_PAGES, item);
  await sectionsRefused(afterObj([RecordType.PROCESS, procRec(4500, PID, [4500])]), /^image has a process record out of place$/, 'PROCESS after OBJECT_PAGES');
  await sectionsRefused(afterObj([RecordType.SHMEM, { id: 2, size: 4096 }]), /^image has a shmem record out of place$/, 'SHMEM after OBJECT_PAGES');
  // task records before the first TASK, or after a task's pages
  await sectionsRefused(afterObj([RecordType.TIMERS, TIMERS]), /^image has a timers record outside a task$/, 'TIMERS before the first TASK');
  await sectionsRefused(insertAfter(base, (it) => it[0] === PAGES && it[1] === VMA.start, [RecordType.VMA, { ...VMA, start: 0x7f0000200000, end: 0x7f0000201000 }]),
    /^image has a vma record outside a task$/, 'VMA after the pages of a task');
  await sectionsRefused([[RecordType.HEADER, HEADER], [RecordType.PROCESS, PROC_ROOT], [RecordType.THREAD, threadRec(PID, 0)]],
    /^image has a thread record outside a task$/, 'THREAD right after the tree');
});

test('readSections: two SHMEM or SHARED_FILE records with one id', async () => {
  const base = treeImage();
  const twice = insertAfter(base, (it) => it[0] === RecordType.SHMEM, [RecordType.SHMEM, { id: 1, size: 0x1000 }]);
  await sectionsRefused(insertAfter(twice, (it) => it[0] === PAGES && it[1] === 0x1000, [RecordType.OBJECT_PAGES, { id: 1 }]), /shared memory 1/, 'SHMEM 1 twice');
  const file = { id: 3, kind: 1, path: '/var/log/app.log', flags: 0, pos: 0n };
  await sectionsRefused(insertAfter(base, (it) => it[0] === RecordType.SHMEM, [RecordType.SHARED_FILE, file], [RecordType.SHARED_FILE, { ...file, path: '/etc/hosts' }]),
    /shared file 3/, 'SHARED_FILE 3 twice');
});

// ---------------------------------------------------------------------------
// INHERITED: pages a child still shares copy-on-write with its parent

test('readSections: a child inheriting pages gets them in its meta; the ranges must lie in one private mapping each', async () => {
  const childVma = { ...VMA }; // the child's own copy of the root's anonymous mapping
  const base = treeImage();
  const cut = base.findIndex(isTask(CHILD));
  const child = (vmas, ranges) => [...base.slice(0, cut), ...childTask().slice(0, -1), ...vmas.map((v) => [RecordType.VMA, v]),
    ...(ranges ? [[RecordType.INHERITED, { ranges }]] : [])];
  const ok = await sectionsOf(child([childVma, VMA_SHM], [{ start: 0x7f0000000000, len: 0x1000 }, { start: 0x7f0000002000, len: 0x2000 }]));
  assert.equal(ok.error, undefined, ok.error?.message);
  assert.deepEqual(ok.sections.at(-1).meta.inherited, [{ start: 0x7f0000000000, len: 0x1000 }, { start: 0x7f0000002000, len: 0x2000 }]);
  assert.deepEqual(ok.sections.at(-1).meta.vmas, [childVma, VMA_SHM]);
  // two records add up
  const two = await sectionsOf([...child([childVma, VMA_SHM], [{ start: 0x7f0000000000, len: 0x1000 }]), [RecordType.INHERITED, { ranges: [{ start: 0x7f0000003000, len: 0x1000 }] }]]);
  assert.equal(two.error, undefined, two.error?.message);
  assert.deepEqual(two.sections.at(-1).meta.inherited.map((r) => r.start), [0x7f0000000000, 0x7f0000003000]);
  // no INHERITED record: none
  assert.deepEqual((await sectionsOf(base)).sections.at(-1).meta.inherited, []);

  await sectionsRefused(child([childVma, VMA_SHM], [{ start: 0x7f0000003000, len: 0x2000 }]), /^image: inherited pages at 7f0000003000 lie outside any one mapping$/, 'past the end');
  await sectionsRefused(child([childVma, VMA_SHM], [{ start: 0x7f0000010000, len: 0x1000 }]), /^image: inherited pages at 7f0000010000 lie outside any one mapping$/, 'in a gap');
  await sectionsRefused(child([childVma, VMA_SHM], [{ start: 0x7f0000100000, len: 0x1000 }]), /^image: inherited pages at 7f0000100000 lie in a mapping that is not private$/, 'in shared memory');
  await sectionsRefused([...child([childVma, VMA_SHM], [{ start: 0x7f0000002000, len: 0x1000 }]), [RecordType.INHERITED, { ranges: [{ start: 0x7f0000001000, len: 0x1000 }] }]],
    /^image: inherited pages at 7f0000001000 overlap or are unsorted$/, 'unsorted across records');
  // the root has no parent to inherit from
  const rootInherits = [...base.slice(0, base.findIndex(isTask(PID))), ...rootTask(), [RecordType.INHERITED, { ranges: [{ start: 0x7f0000000000, len: 0x1000 }] }], ...base.slice(base.findIndex((it) => it[0] === PAGES && it[1] === VMA.start))];
  await sectionsRefused(rootInherits, /^image: the root 4242 inherits pages but has no parent in the image$/, 'root');
});

// ---------------------------------------------------------------------------
// Pre-copy: PRECOPY sections (pages copied while the tree ran) before the tree

test('readSections: pre-copy sections come first and the tasks name the pages they take from them', async () => {
  const base = treeImage();
  const header = base[0];
  const pre = [[RecordType.PRECOPY, { pid: PID }], pages(VMA.start, ROOT_PAGE), [RecordType.PRECOPY, { pid: CHILD }]];
  const withUse = (items, pid, ranges) => {
    const i = items.findIndex(isTask(pid));
    const end = items.findIndex((it, k) => k > i && (it[0] === PAGES || it[0] === RecordType.TASK));
    const at = end < 0 ? items.length : end;
    return [...items.slice(0, at), [RecordType.PRECOPY_USE, { ranges }], ...items.slice(at)];
  };
  const good = withUse([header, ...pre, ...base.slice(1)], PID, [{ start: VMA.start, len: 0x1000 }]);
  const { sections, error } = await sectionsOf(good);
  assert.equal(error, undefined, error?.message);
  assert.deepEqual(sections.slice(0, 4).map((s) => s.kind), ['precopy', 'pages', 'precopy', 'tree']);
  assert.equal(sections[0].pid, PID);
  assert.deepEqual(sections.find((s) => s.kind === 'task').meta.precopied, [{ start: VMA.start, len: 0x1000 }]);

  await sectionsRefused([...base.slice(0, 2), [RecordType.PRECOPY, { pid: PID }], ...base.slice(2)], /^image has a pre-copy record out of place$/, 'after a PROCESS record');
  // a later round of the same process is another section
  const rounds = await sectionsOf([header, ...pre, [RecordType.PRECOPY, { pid: PID }], pages(VMA.start, ROOT_PAGE), ...base.slice(1)]);
  assert.equal(rounds.error, undefined, rounds.error?.message);
  assert.deepEqual(rounds.sections.slice(0, 6).map((s) => s.kind), ['precopy', 'pages', 'precopy', 'precopy', 'pages', 'tree']);
  await sectionsRefused(withUse([header, [RecordType.PRECOPY, { pid: CHILD }], ...base.slice(1)], PID, [{ start: VMA.start, len: 0x1000 }]),
    /^image: task 4242 takes pre-copied pages but has no pre-copy$/, 'no pre-copy of the task');
  await sectionsRefused(withUse([header, ...pre, ...base.slice(1)], PID, [{ start: 0x7f0000100000, len: 0x1000 }]),
    /^image: pre-copied pages at 7f0000100000 lie in a mapping that is not private$/, 'in shared memory');
});
