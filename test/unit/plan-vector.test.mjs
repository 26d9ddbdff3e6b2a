// The restore plan is produced by TypeScript (src/restore/plan-codec.ts) and
// consumed by C (native/restore/plan.c). The shared vector test/vectors/plan-v1.*
// pins both sides to one layout; the mutation test checks that the C reader
// refuses damaged plans cleanly (exit 1, one line on stderr) and never crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { CHUNK_END, CHUNK_PAGES, chunkHeader, encodePlan, PLAN_MAGIC, PLAN_VERSION, SIZES } from '../../dist/restore/plan-codec.js';
import { TaskFlag } from '../../dist/restore/plan-model.js';
import { FdKind, VmaKind, VmFlag } from '../../dist/image/records.js';
import { BIN, buildPlan, RESTORE, TXT } from '../vectors/make-plan-vector.mjs';
import { cValues, offsetLines } from './c-layout.mjs';

const VECTOR = readFileSync(BIN);

/** Runs `crmigrate-restore --print-plan` with input on stdin; never rejects. */
function printPlan(input, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const child = spawn(RESTORE, ['--print-plan'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.stdin.on('error', () => {}); // EPIPE when the reader stops early
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input);
  });
}

async function pool(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------------------
// Layout tables (checked against the C structs by test 3). Classes:
//   free      free-form data: registers, xsave, siginfo payload, sigactions, string content
//   value     numbers with no constrained domain (masks, positions, seconds, ids)
//   unchecked a constrained domain the C reader does not check (flags, padding, gaps...)
//   checked   validated by the C reader

const HEADER_FIELDS = ['magic', 'version', 'total_size', 'header_size', 'task_offset', 'task_size', 'vma_offset', 'vma_count',
  'fd_offset', 'fd_count', 'siginfo_offset', 'siginfo_count', 'xsave_offset', 'xsave_size', 'strings_offset', 'strings_size',
  'thread_offset', 'thread_count', 'inherited_offset', 'inherited_count'];
const HEADER_SIZE = HEADER_FIELDS.length * 4;

const TASK_FIELDS = [
  ['pid', 0, 4, 'checked'], ['tid', 4, 4, 'checked'], ['flags', 8, 4, 'unchecked'], ['personality', 12, 4, 'value'],
  ['umask', 16, 4, 'unchecked'], ['exe_path', 20, 4, 'checked'], ['cwd_path', 24, 4, 'checked'], ['root_path', 28, 4, 'checked'],
  ['comm', 32, 16, 'free'],
  ['start_code', 48, 8, 'unchecked'], ['end_code', 56, 8, 'unchecked'], ['start_data', 64, 8, 'unchecked'], ['end_data', 72, 8, 'unchecked'],
  ['start_brk', 80, 8, 'unchecked'], ['brk', 88, 8, 'unchecked'], ['start_stack', 96, 8, 'unchecked'], ['arg_start', 104, 8, 'unchecked'],
  ['arg_end', 112, 8, 'unchecked'], ['env_start', 120, 8, 'unchecked'], ['env_end', 128, 8, 'unchecked'],
  ['auxv_words', 136, 4, 'checked'], ['pad0', 140, 4, 'unchecked'], ['auxv', 144, 1024, 'value'], ['regs', 1168, 216, 'free'],
  ['blocked', 1384, 8, 'value'], ['sigactions', 1392, 2048, 'free'], ['altstack_sp', 3440, 8, 'value'], ['altstack_size', 3448, 8, 'value'],
  ['altstack_flags', 3456, 4, 'unchecked'], ['pad1', 3460, 4, 'unchecked'], ['itimers', 3464, 96, 'mixed'],
  ['rseq_abi', 3560, 8, 'checked'], ['rseq_len', 3568, 4, 'checked'], ['rseq_sig', 3572, 4, 'value'],
  ['robust_list', 3576, 8, 'value'], ['robust_len', 3584, 8, 'checked'], ['clear_child_tid', 3592, 8, 'value'],
  // struct crm_creds creds
  ['creds.uid', 3600, 16, 'value'], ['creds.gid', 3616, 16, 'value'], ['creds.cap_inh', 3632, 8, 'value'], ['creds.cap_prm', 3640, 8, 'value'],
  ['creds.cap_eff', 3648, 8, 'value'], ['creds.cap_bnd', 3656, 8, 'value'], ['creds.cap_amb', 3664, 8, 'value'],
  ['creds.securebits', 3672, 4, 'unchecked'], ['creds.no_new_privs', 3676, 4, 'checked'], ['creds.dumpable', 3680, 4, 'checked'],
  ['creds.ngroups', 3684, 4, 'checked'], ['creds.groups', 3688, 256, 'value'],
];
const THREAD_FIELDS = [
  ['tid', 0, 4, 'checked'], ['pad', 4, 4, 'unchecked'], ['regs', 8, 216, 'free'], ['blocked', 224, 8, 'value'],
  ['altstack_sp', 232, 8, 'value'], ['altstack_size', 240, 8, 'value'], ['altstack_flags', 248, 4, 'unchecked'],
  ['rseq_len', 252, 4, 'checked'], ['rseq_abi', 256, 8, 'checked'], ['rseq_sig', 264, 4, 'value'], ['pad2', 268, 4, 'unchecked'],
  ['robust_list', 272, 8, 'value'], ['robust_len', 280, 8, 'checked'], ['clear_child_tid', 288, 8, 'value'],
  ['comm', 296, 16, 'checked'],
];
const VMA_FIELDS = [['start', 0, 8, 'checked'], ['end', 8, 8, 'checked'], ['pgoff', 16, 8, 'checked'], ['kind', 24, 4, 'checked'],
  ['prot', 28, 4, 'checked'], ['vm_flags', 32, 4, 'unchecked'], ['path', 36, 4, 'checked'], ['open_flags', 40, 4, 'checked'], ['object', 44, 4, 'checked']];
const FD_FIELDS = [['fd', 0, 4, 'checked'], ['kind', 4, 4, 'checked'], ['flags', 8, 4, 'unchecked'], ['cloexec', 12, 4, 'checked'],
  ['pos', 16, 8, 'value'], ['path', 24, 4, 'checked'], ['share_id', 28, 4, 'value']];
// siginfo.tid is checked for a thread's own signal (shared = 0) only
const SIGINFO_FIELDS = [['shared', 0, 4, 'checked'], ['tid', 4, 4, 'checked'], ['signo', 8, 4, 'checked'], ['payload', 12, 124, 'free']];
const RANGE_FIELDS = [['start', 0, 8, 'checked'], ['len', 8, 8, 'checked']];
const ITIMER_FIELDS = [['interval_sec', 0, 8, 'value'], ['interval_usec', 8, 8, 'checked'], ['value_sec', 16, 8, 'value'], ['value_usec', 24, 8, 'checked']];

const hdr = (buf, name) => buf.readUInt32LE(HEADER_FIELDS.indexOf(name) * 4);
const L = Object.fromEntries(HEADER_FIELDS.map((n) => [n, hdr(VECTOR, n)]));

const inTable = (table, rel) => table.find(([, o, s]) => rel >= o && rel < o + s);

/** Which field of the original vector byte `off` belongs to, and its class. */
function regionOf(off) {
  if (off < HEADER_SIZE) return { field: `header.${HEADER_FIELDS[off >> 2]}`, cls: 'checked' };
  const sec = (o, n, size) => off >= o && off < o + n * size;
  if (sec(L.task_offset, 1, SIZES.task)) {
    const rel = off - L.task_offset;
    const [name, o, , cls] = inTable(TASK_FIELDS, rel);
    if (name === 'regs' && rel - o >= 17 * 8 && rel - o < 18 * 8) return { field: 'task.regs.cs', cls: 'checked' };
    if (name === 'itimers') {
      const k = Math.floor((rel - o) / 32);
      const [f, , , c] = inTable(ITIMER_FIELDS, (rel - o) % 32);
      return { field: `task.itimers[${k}].${f}`, cls: c };
    }
    return { field: `task.${name}`, cls };
  }
  for (const [sname, o, n, size, table] of [['vma', L.vma_offset, L.vma_count, SIZES.vma, VMA_FIELDS], ['fd', L.fd_offset, L.fd_count, SIZES.fd, FD_FIELDS],
    ['siginfo', L.siginfo_offset, L.siginfo_count, SIZES.siginfo, SIGINFO_FIELDS], ['thread', L.thread_offset, L.thread_count, SIZES.thread, THREAD_FIELDS],
    ['inherited', L.inherited_offset, L.inherited_count, SIZES.range, RANGE_FIELDS]]) {
    if (sec(o, n, size)) {
      const i = Math.floor((off - o) / size);
      const rel = (off - o) % size;
      const [f, fo, , cls] = inTable(table, rel);
      if (sname === 'thread' && f === 'regs' && rel - fo >= 17 * 8 && rel - fo < 18 * 8) return { field: `thread[${i}].regs.cs`, cls: 'checked' };
      return { field: `${sname}[${i}].${f}`, cls };
    }
  }
  // one area per thread: the main thread's, then threads[] in order
  if (sec(L.xsave_offset, L.xsave_size * (1 + L.thread_count), 1)) return { field: `xsave[${Math.floor((off - L.xsave_offset) / L.xsave_size)}]`, cls: 'free' };
  if (sec(L.strings_offset, L.strings_size, 1)) return { field: 'strings', cls: 'free' };
  return { field: 'gap (alignment padding between sections)', cls: 'unchecked' };
}

// ---------------------------------------------------------------------------
// A JavaScript statement of the reader's rules (crm_plan.h, plan.c): the C
// reader must accept exactly what this accepts.

const PAGE = 4096n;
const TASK_SIZE_LIMIT = 0x7ffffffff000n;

function specReject(input) {
  if (input.length === 0) return 'no plan';
  if (input.length < HEADER_SIZE) return 'short header';
  if (input.readUInt32LE(0) !== PLAN_MAGIC) return 'magic';
  const total = input.readUInt32LE(8);
  if (total < HEADER_SIZE || total > 64 << 20) return 'size range';
  if (input.length < total) return 'truncated';
  const b = input.subarray(0, total);
  const h = (n) => hdr(b, n);
  if (h('version') !== 5) return 'version';
  if (h('header_size') !== HEADER_SIZE) return 'header size';
  const sectionOk = (off, count, elem) => off % 8 === 0 && off >= HEADER_SIZE && off + count * elem <= total;
  if (h('task_size') !== SIZES.task || !sectionOk(h('task_offset'), 1, SIZES.task)) return 'task section';
  if (h('vma_count') > 65536 || !sectionOk(h('vma_offset'), h('vma_count'), SIZES.vma)) return 'vma section';
  if (h('fd_count') > 65536 || !sectionOk(h('fd_offset'), h('fd_count'), SIZES.fd)) return 'fd section';
  if (h('siginfo_count') > 65536 || !sectionOk(h('siginfo_offset'), h('siginfo_count'), SIZES.siginfo)) return 'siginfo section';
  const nth = h('thread_count');
  if (nth > 4096 || !sectionOk(h('thread_offset'), nth, SIZES.thread)) return 'thread section';
  const nin = h('inherited_count');
  if (nin > 1 << 20 || !sectionOk(h('inherited_offset'), nin, SIZES.range)) return 'inherited section';
  // one FPU area for the main thread and one for each other thread
  if (h('xsave_size') < 576 || h('xsave_size') > 65536 || !sectionOk(h('xsave_offset'), h('xsave_size') * (1 + nth), 1)) return 'xsave section';
  const so = h('strings_offset');
  const ss = h('strings_size');
  if (ss === 0 || so + ss > total) return 'string table bounds';
  // in this order: task, vmas, fds, siginfos, xsave, strings, threads, inherited
  const sections = [[h('task_offset'), SIZES.task], [h('vma_offset'), h('vma_count') * SIZES.vma], [h('fd_offset'), h('fd_count') * SIZES.fd],
    [h('siginfo_offset'), h('siginfo_count') * SIZES.siginfo], [h('xsave_offset'), h('xsave_size') * (1 + nth)], [so, ss],
    [h('thread_offset'), nth * SIZES.thread], [h('inherited_offset'), nin * SIZES.range]];
  for (let i = 1; i < sections.length; i++) if (sections[i][0] < sections[i - 1][0] + sections[i - 1][1]) return 'sections overlap';
  if (b[so + ss - 1] !== 0 || b[so] !== 0) return 'string table unterminated';
  const strOk = (o) => o < ss;
  const t = h('task_offset');
  const pid = b.readInt32LE(t);
  if (pid <= 0 || b.readInt32LE(t + 4) !== pid) return 'pid';
  const auxvWords = b.readUInt32LE(t + 136);
  if (auxvWords > 128 || auxvWords % 2) return 'auxv';
  if (![20, 24, 28].every((o) => strOk(b.readUInt32LE(t + o)))) return 'task paths';
  if (!b.subarray(t + 32, t + 48).includes(0)) return 'comm';
  const rseqLen = b.readUInt32LE(t + 3568);
  if (rseqLen && (rseqLen < 32 || rseqLen > 4096 || b.readBigUInt64LE(t + 3560) % 32n)) return 'rseq';
  if (![0n, 24n].includes(b.readBigUInt64LE(t + 3584))) return 'robust_len';
  // credentials: at most CRM_MAX_GROUPS groups, dumpable 0..2, no_new_privs 0 or 1
  if (b.readUInt32LE(t + 3684) > 64 || b.readUInt32LE(t + 3680) > 2 || b.readUInt32LE(t + 3676) > 1) return 'creds';
  for (let i = 0; i < 3; i++) {
    const it = t + 3464 + i * 32;
    if (b.readBigUInt64LE(it + 8) >= 1000000n || b.readBigUInt64LE(it + 24) >= 1000000n) return 'itimer';
  }
  const mm = (i) => b.readBigUInt64LE(t + 48 + i * 8); // start_code..env_end
  if (mm(0) > mm(1) || mm(2) > mm(3) || mm(4) > mm(5) || mm(7) > mm(8) || mm(9) > mm(10)) return 'mm order';
  if ([1, 3, 5, 6, 8, 10].some((i) => mm(i) > TASK_SIZE_LIMIT)) return 'mm range';
  if (b.readBigUInt64LE(t + 1168 + 17 * 8) !== 0x33n) return 'cs';
  let prevEnd = 0n;
  for (let i = 0; i < h('vma_count'); i++) {
    const v = h('vma_offset') + i * SIZES.vma;
    const start = b.readBigUInt64LE(v);
    const end = b.readBigUInt64LE(v + 8);
    if (start % PAGE || end % PAGE || start >= end || end > TASK_SIZE_LIMIT) return 'vma range';
    if (start < prevEnd) return 'vma order';
    prevEnd = end;
    const kind = b.readUInt32LE(v + 24);
    if (kind < 1 || kind > 6) return 'vma kind';
    if (b.readUInt32LE(v + 28) & ~7) return 'vma prot';
    const path = b.readUInt32LE(v + 36);
    if (!strOk(path)) return 'vma path bounds';
    if ((kind === 3 || kind === 4) && b[so + path] !== 0x2f) return 'vma path';
    if (b.readBigUInt64LE(v + 16) > 1n << 40n) return 'vma pgoff';
    const of = b.readUInt32LE(v + 40);
    if (of !== 0 && of !== 2) return 'vma open_flags';
    // the id of its CRM_OBJ_SHMEM for an anonymous shared mapping, 0 for every other kind
    if ((kind === 2) !== (b.readUInt32LE(v + 44) !== 0)) return 'vma object';
  }
  // inherited pages: sorted, page aligned, each inside one private (kind 1 or 3) mapping
  let prevInherited = 0n;
  for (let i = 0; i < nin; i++) {
    const r = h('inherited_offset') + i * SIZES.range;
    const start = b.readBigUInt64LE(r);
    const len = b.readBigUInt64LE(r + 8);
    if (start % PAGE || len % PAGE || len === 0n || start < prevInherited || len > TASK_SIZE_LIMIT) return 'inherited range';
    prevInherited = start + len;
    let holder = -1;
    for (let k = 0; k < h('vma_count'); k++) {
      const v = h('vma_offset') + k * SIZES.vma;
      if (start >= b.readBigUInt64LE(v) && start < b.readBigUInt64LE(v + 8)) holder = v;
    }
    if (holder < 0 || len > b.readBigUInt64LE(holder + 8) - start || ![1, 3].includes(b.readUInt32LE(holder + 24))) return 'inherited mapping';
  }
  for (let i = 0; i < h('fd_count'); i++) {
    const f = h('fd_offset') + i * SIZES.fd;
    const fd = b.readInt32LE(f);
    if (fd < 0 || fd >= 1 << 20) return 'fd number';
    if (i && fd <= b.readInt32LE(f - SIZES.fd)) return 'fd order';
    const kind = b.readUInt32LE(f + 4);
    if (kind < 1 || kind > 3) return 'fd kind';
    const path = b.readUInt32LE(f + 24);
    if (!strOk(path) || b[so + path] !== 0x2f) return 'fd path';
    if (b.readUInt32LE(f + 12) > 1) return 'fd cloexec';
  }
  const tids = [];
  for (let i = 0; i < nth; i++) {
    const th = h('thread_offset') + i * SIZES.thread;
    const tid = b.readInt32LE(th);
    if (tid <= 0 || tid === pid) return 'thread tid';
    if (tids.includes(tid)) return 'thread tid twice';
    tids.push(tid);
    if (b.readBigUInt64LE(th + 8 + 17 * 8) !== 0x33n) return 'thread cs';
    const len = b.readUInt32LE(th + 252);
    if (len && (len < 32 || len > 4096 || b.readBigUInt64LE(th + 256) % 32n)) return 'thread rseq';
    if (![0n, 24n].includes(b.readBigUInt64LE(th + 280))) return 'thread robust_len';
    if (!b.subarray(th + 296, th + 312).includes(0)) return 'thread comm';
  }
  for (let i = 0; i < h('siginfo_count'); i++) {
    const s = h('siginfo_offset') + i * SIZES.siginfo;
    const signo = b.readInt32LE(s + 8);
    const shared = b.readUInt32LE(s);
    if (signo < 1 || signo > 64 || shared > 1) return 'siginfo';
    // a thread's own signal names its thread: the main one (the task pid) or one of threads[]
    const tid = b.readInt32LE(s + 4);
    if (!shared && tid !== pid && !tids.includes(tid)) return 'siginfo tid';
  }
  return null;
}

// ---------------------------------------------------------------------------
// 1, 2: the vector itself

test('vector: encodePlan(buildPlan()) is byte-identical to test/vectors/plan-v1.bin', () => {
  const bin = encodePlan(buildPlan());
  assert.equal(bin.length, VECTOR.length);
  const firstDiff = bin.findIndex((x, i) => x !== VECTOR[i]);
  assert.equal(firstDiff, -1, `first difference at byte ${firstDiff} (${regionOf(Math.max(firstDiff, 0)).field})`);
  assert.ok(bin.equals(VECTOR));
  // the vector is fully populated
  assert.equal(L.magic, PLAN_MAGIC);
  assert.equal(L.version, PLAN_VERSION);
  assert.equal(L.total_size, VECTOR.length);
  assert.equal(L.header_size, SIZES.header);
  assert.ok(L.vma_count >= 12 && L.fd_count >= 6 && L.siginfo_count === 3 && L.thread_count === 2 && L.xsave_size === 832);
  for (const k of [1, 2, 3, 4, 5, 6]) assert.ok(buildPlan().vmas.filter((v) => v.kind === k).length >= 2, `vma kind ${k}`);
  // crm_vma.object: the shared memory object of each anonymous shared mapping (two distinct ones), 0 elsewhere
  buildPlan().vmas.forEach((v, i) => {
    const object = VECTOR.readUInt32LE(L.vma_offset + i * SIZES.vma + 44);
    assert.equal(object, v.object, `vma[${i}].object`);
    assert.equal(v.kind === VmaKind.ANON_SHARED, object !== 0, `vma[${i}]: kind ${v.kind} with object ${object}`);
  });
  assert.deepEqual(buildPlan().vmas.filter((v) => v.object).map((v) => v.object), [3, 0xfffffffe]);
  for (const k of [1, 2, 3]) assert.ok(buildPlan().fds.some((f) => f.kind === k), `fd kind ${k}`);
  // sections in the order of crm_plan.h, inherited pages last; one xsave area per thread
  const order = ['task_offset', 'vma_offset', 'fd_offset', 'siginfo_offset', 'xsave_offset', 'strings_offset', 'thread_offset', 'inherited_offset'].map((k) => L[k]);
  assert.deepEqual(order, [...order].sort((x, y) => x - y));
  assert.equal(L.strings_offset - L.xsave_offset, L.xsave_size * (1 + L.thread_count));
  assert.equal(L.inherited_offset, L.thread_offset + L.thread_count * SIZES.thread);
  assert.equal(L.total_size, L.inherited_offset + L.inherited_count * SIZES.range);
  // the inherited pages: in a private file mapping and in the heap
  assert.equal(L.inherited_count, 3);
  buildPlan().inherited.forEach((r, i) => {
    assert.equal(VECTOR.readBigUInt64LE(L.inherited_offset + i * SIZES.range), BigInt(r.start), `inherited[${i}].start`);
    assert.equal(VECTOR.readBigUInt64LE(L.inherited_offset + i * SIZES.range + 8), BigInt(r.len), `inherited[${i}].len`);
  });
  // the pending signals: a main-thread one, a shared one, one of the second thread
  const plan = buildPlan();
  const sig = (i) => [VECTOR.readUInt32LE(L.siginfo_offset + i * SIZES.siginfo), VECTOR.readInt32LE(L.siginfo_offset + i * SIZES.siginfo + 4)];
  assert.deepEqual([0, 1, 2].map(sig), [[0, plan.task.pid], [1, 0], [0, plan.threads[1].tid]]);
  // the threads: TIDs, FPU areas and robust fields where crm_plan.h puts them
  plan.threads.forEach((th, i) => {
    const o = L.thread_offset + i * SIZES.thread;
    assert.equal(VECTOR.readInt32LE(o), th.tid);
    assert.ok(VECTOR.subarray(o + 8, o + 224).equals(th.regs));
    assert.equal(VECTOR.readBigUInt64LE(o + 272), th.robustList);
    assert.equal(VECTOR.readBigUInt64LE(o + 288), th.clearChildTid);
    assert.equal(VECTOR.subarray(o + 296, o + 312).toString('utf8').replace(/\0+$/, ''), th.comm);
    const x = L.xsave_offset + (i + 1) * L.xsave_size;
    assert.ok(VECTOR.subarray(x, x + L.xsave_size).equals(th.xsave), `xsave area of thread ${th.tid}`);
  });
  assert.ok(VECTOR.subarray(L.xsave_offset, L.xsave_offset + L.xsave_size).equals(plan.xsave));
  assert.deepEqual([3576, 3584, 3592].map((o) => VECTOR.readBigUInt64LE(L.task_offset + o)), [plan.task.robustList, plan.task.robustLen, plan.task.clearChildTid]);
  // the credentials, at the end of the task
  const cr = plan.task.creds;
  const at = (o) => L.task_offset + 3600 + o;
  assert.deepEqual([0, 4, 8, 12, 16, 20, 24, 28].map((o) => VECTOR.readUInt32LE(at(o))), [...cr.uids, ...cr.gids]);
  assert.deepEqual([32, 40, 48, 56, 64].map((o) => VECTOR.readBigUInt64LE(at(o))), [cr.capInh, cr.capPrm, cr.capEff, cr.capBnd, cr.capAmb]);
  assert.deepEqual([72, 76, 80, 84].map((o) => VECTOR.readUInt32LE(at(o))), [cr.securebits, 1, cr.dumpable, cr.groups.length]);
  assert.deepEqual(Array.from({ length: 64 }, (_, i) => VECTOR.readUInt32LE(at(88 + i * 4))), [...cr.groups, ...Array(64 - cr.groups.length).fill(0)]);
  assert.equal(specReject(VECTOR), null);
});

test('vector: encodePlan is deterministic and does not modify its input', () => {
  const plan = buildPlan();
  const snapshot = JSON.stringify(plan, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
  const a = encodePlan(plan);
  const b = encodePlan(plan);
  assert.ok(a.equals(b));
  assert.equal(JSON.stringify(plan, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)), snapshot);
});

test('vector: crmigrate-restore --print-plan prints exactly test/vectors/plan-v1.txt', async () => {
  assert.ok(existsSync(RESTORE), `${RESTORE} missing: run make -C native`);
  const r = await printPlan(VECTOR);
  assert.equal(r.signal, null);
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, readFileSync(TXT, 'utf8'));
  // the page stream may follow the plan on stdin: --print-plan reads the plan only
  const r2 = await printPlan(Buffer.concat([VECTOR, chunkHeader(CHUNK_END, 0, 0)]));
  assert.equal(r2.status, 0);
  assert.equal(r2.stdout, readFileSync(TXT, 'utf8'));
});

// ---------------------------------------------------------------------------
// 3: TypeScript sizes and offsets against the C structs

test('layout: SIZES and field offsets of plan-codec.ts match the structs of crm_plan.h', () => {
  const c = cValues(`  P("sizeof.header", sizeof(struct crm_plan_header));
  P("sizeof.task", sizeof(struct crm_task));
  P("sizeof.vma", sizeof(struct crm_vma));
  P("sizeof.fd", sizeof(struct crm_fd));
  P("sizeof.siginfo", sizeof(struct crm_siginfo));
  P("sizeof.thread", sizeof(struct crm_thread));
  P("sizeof.sigaction", sizeof(struct crm_sigaction));
  P("sizeof.itimer", sizeof(struct crm_itimer));
  P("sizeof.chunk", sizeof(struct crm_chunk));
  P("sizeof.range", sizeof(struct crm_range));
  P("const.magic", CRM_PLAN_MAGIC);
  P("const.version", CRM_PLAN_VERSION);
  P("const.auxv_words", CRM_AUXV_WORDS);
  P("const.nsig", CRM_NSIG);
  P("const.max_threads", CRM_MAX_THREADS);
  P("const.max_groups", CRM_MAX_GROUPS);
  P("sizeof.creds", sizeof(struct crm_creds));
  P("const.chunk_pages", CRM_CHUNK_PAGES);
  P("const.chunk_end", CRM_CHUNK_END);
  P("const.vma_anon_private", CRM_VMA_ANON_PRIVATE); P("const.vma_anon_shared", CRM_VMA_ANON_SHARED);
  P("const.vma_file_private", CRM_VMA_FILE_PRIVATE); P("const.vma_file_shared", CRM_VMA_FILE_SHARED);
  P("const.vma_vdso", CRM_VMA_VDSO); P("const.vma_vvar", CRM_VMA_VVAR);
  P("const.fd_file", CRM_FD_FILE); P("const.fd_dir", CRM_FD_DIR); P("const.fd_path", CRM_FD_PATH);
  P("const.task_rseq", CRM_TASK_RSEQ); P("const.task_session_leader", CRM_TASK_SESSION_LEADER); P("const.task_group_leader", CRM_TASK_GROUP_LEADER);
  P("const.vm_growsdown", CRM_VM_GROWSDOWN); P("const.vm_noreserve", CRM_VM_NORESERVE); P("const.vm_dontfork", CRM_VM_DONTFORK);
  P("const.vm_dontdump", CRM_VM_DONTDUMP); P("const.vm_wipeonfork", CRM_VM_WIPEONFORK); P("const.vm_hugepage", CRM_VM_HUGEPAGE);
  P("const.vm_nohugepage", CRM_VM_NOHUGEPAGE); P("const.vm_locked", CRM_VM_LOCKED); P("const.vm_dontexpand", CRM_VM_DONTEXPAND);
  P("const.vm_account", CRM_VM_ACCOUNT);
${offsetLines('crm_plan_header', HEADER_FIELDS)}
${offsetLines('crm_task', TASK_FIELDS.map(([n]) => n))}
${offsetLines('crm_vma', VMA_FIELDS.map(([n]) => n))}
${offsetLines('crm_fd', FD_FIELDS.map(([n]) => n))}
${offsetLines('crm_siginfo', ['shared', 'tid', 'raw'])}
${offsetLines('crm_thread', THREAD_FIELDS.map(([n]) => n))}
${offsetLines('crm_itimer', ITIMER_FIELDS.map(([n]) => n))}
${offsetLines('crm_chunk', ['addr', 'len', 'kind'])}
${offsetLines('crm_range', RANGE_FIELDS.map(([n]) => n))}
`);

  assert.deepEqual(
    { header: c['sizeof.header'], task: c['sizeof.task'], vma: c['sizeof.vma'], fd: c['sizeof.fd'], siginfo: c['sizeof.siginfo'], thread: c['sizeof.thread'], range: c['sizeof.range'] },
    { ...SIZES },
  );
  assert.equal(c['sizeof.header'], HEADER_SIZE);
  assert.equal(c['sizeof.task'], TASK_FIELDS.at(-1)[1] + TASK_FIELDS.at(-1)[2]);
  assert.equal(c['sizeof.thread'], THREAD_FIELDS.at(-1)[1] + THREAD_FIELDS.at(-1)[2]);
  assert.equal(c['const.max_threads'], 4096);
  assert.equal(c['const.max_groups'], 64);
  assert.equal(c['sizeof.creds'], SIZES.task - 3600);
  assert.equal(c['sizeof.sigaction'], 32);
  assert.equal(c['sizeof.itimer'], 32);
  assert.equal(c['sizeof.chunk'], 16);
  assert.equal(c['const.magic'], PLAN_MAGIC);
  assert.equal(c['const.version'], PLAN_VERSION);
  assert.equal(c['const.auxv_words'], 128);
  assert.equal(c['const.nsig'], 64);
  assert.equal(c['const.chunk_pages'], CHUNK_PAGES);
  assert.equal(c['const.chunk_end'], CHUNK_END);
  assert.deepEqual([c['const.vma_anon_private'], c['const.vma_anon_shared'], c['const.vma_file_private'], c['const.vma_file_shared'], c['const.vma_vdso'], c['const.vma_vvar']],
    [VmaKind.ANON_PRIVATE, VmaKind.ANON_SHARED, VmaKind.FILE_PRIVATE, VmaKind.FILE_SHARED, VmaKind.VDSO, VmaKind.VVAR]);
  assert.deepEqual([c['const.fd_file'], c['const.fd_dir'], c['const.fd_path']], [FdKind.FILE, FdKind.DIR, FdKind.PATH]);
  assert.deepEqual([c['const.task_rseq'], c['const.task_session_leader'], c['const.task_group_leader']], [TaskFlag.RSEQ, TaskFlag.SESSION_LEADER, TaskFlag.GROUP_LEADER]);
  assert.deepEqual(
    ['growsdown', 'noreserve', 'dontfork', 'dontdump', 'wipeonfork', 'hugepage', 'nohugepage', 'locked', 'dontexpand', 'account'].map((n) => c[`const.vm_${n}`]),
    [VmFlag.GROWSDOWN, VmFlag.NORESERVE, VmFlag.DONTFORK, VmFlag.DONTDUMP, VmFlag.WIPEONFORK, VmFlag.HUGEPAGE, VmFlag.NOHUGEPAGE, VmFlag.LOCKED, VmFlag.DONTEXPAND, VmFlag.ACCOUNT],
  );
  HEADER_FIELDS.forEach((n, i) => assert.equal(c[`crm_plan_header.${n}`], i * 4, `header.${n}`));
  for (const [struct, table] of [['crm_task', TASK_FIELDS], ['crm_vma', VMA_FIELDS], ['crm_fd', FD_FIELDS], ['crm_itimer', ITIMER_FIELDS], ['crm_thread', THREAD_FIELDS], ['crm_range', RANGE_FIELDS]]) {
    for (const [n, off] of table) assert.equal(c[`${struct}.${n}`], off, `${struct}.${n}`);
  }
  assert.deepEqual([c['crm_siginfo.shared'], c['crm_siginfo.tid'], c['crm_siginfo.raw']], [0, 4, 8]);
  // struct crm_chunk against chunkHeader()
  const ch = chunkHeader(CHUNK_PAGES, 0x7f0000001000, 0x3000);
  assert.equal(ch.length, c['sizeof.chunk']);
  assert.equal(ch.readBigUInt64LE(c['crm_chunk.addr']), 0x7f0000001000n);
  assert.equal(ch.readUInt32LE(c['crm_chunk.len']), 0x3000);
  assert.equal(ch.readUInt32LE(c['crm_chunk.kind']), CHUNK_PAGES);
});

// ---------------------------------------------------------------------------
// 4: robustness of the C reader

/** Deterministic PRNG (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 300 damaged copies of the vector: { name, bytes, touched: byte offsets changed (empty for truncations) }. */
function mutations() {
  const out = [];
  const rand = rng(0x5eed1234);
  const int = (n) => Math.floor(rand() * n);
  const put32 = (name, off, v) => {
    const b = Buffer.from(VECTOR);
    b.writeUInt32LE(v >>> 0, off);
    out.push({ name, bytes: b, touched: [off, off + 1, off + 2, off + 3].filter((i) => b[i] !== VECTOR[i]) });
  };
  const put64 = (name, off, v) => {
    const b = Buffer.from(VECTOR);
    b.writeBigUInt64LE(BigInt.asUintN(64, v), off);
    out.push({ name, bytes: b, touched: [...Array(8).keys()].map((k) => off + k).filter((i) => b[i] !== VECTOR[i]) });
  };
  const H = (n) => HEADER_FIELDS.indexOf(n) * 4;
  const T = L.task_offset;
  const V = (i, o) => L.vma_offset + i * SIZES.vma + o;
  const F = (i, o) => L.fd_offset + i * SIZES.fd + o;
  const S = (i, o) => L.siginfo_offset + i * SIZES.siginfo + o;
  const TH = (i, o) => L.thread_offset + i * SIZES.thread + o;
  const IN = (i, o) => L.inherited_offset + i * SIZES.range + o;

  // truncations at many lengths
  const lens = new Set([0, 1, 4, 8, 32, 63, 64, 65, 71, 72, 73, 79, 80, 81, L.thread_offset, L.thread_offset + SIZES.thread, VECTOR.length - 1, VECTOR.length - 8]);
  for (let i = 0; lens.size < 60; i++) lens.add(Math.floor((i * 97.3) % VECTOR.length));
  for (const n of lens) out.push({ name: `truncated to ${n} bytes`, bytes: VECTOR.subarray(0, n), touched: [] });

  // header fields set to huge values
  for (const f of HEADER_FIELDS) for (const v of [0xffffffff, 0x80000000, 0x7ffffff8]) put32(`header.${f} = 0x${v.toString(16)}`, H(f), v);
  // count and size fields x1000
  for (const f of ['vma_count', 'fd_count', 'siginfo_count', 'thread_count', 'xsave_size', 'strings_size', 'task_size', 'header_size', 'total_size'])
    put32(`header.${f} x1000`, H(f), L[f] * 1000);

  // string offsets past the table
  const strFields = [['task.exe_path', T + 20], ['task.cwd_path', T + 24], ['task.root_path', T + 28]];
  for (let i = 0; i < L.vma_count; i++) strFields.push([`vma[${i}].path`, V(i, 36)]);
  for (let i = 0; i < L.fd_count; i++) strFields.push([`fd[${i}].path`, F(i, 24)]);
  for (const [n, off] of strFields) {
    put32(`${n} = strings_size`, off, L.strings_size);
    put32(`${n} = 0xffffffff`, off, 0xffffffff);
  }

  // unterminated or broken string table
  {
    const so = L.strings_offset;
    const ss = L.strings_size;
    const b1 = Buffer.from(VECTOR);
    b1[so + ss - 1] = 0x78;
    out.push({ name: 'string table: last byte not NUL', bytes: b1, touched: [so + ss - 1] });
    const b2 = Buffer.from(VECTOR);
    for (let i = so; i < so + ss; i++) if (b2[i] === 0) b2[i] = 0x41;
    out.push({ name: 'string table: no NUL at all', bytes: b2, touched: [...Array(ss).keys()].map((k) => so + k).filter((i) => VECTOR[i] === 0) });
    const b3 = Buffer.from(VECTOR);
    b3[so] = 0x2f;
    out.push({ name: 'string table: first byte (the empty string) not NUL', bytes: b3, touched: [so] });
    put32('header.strings_size - 1 (ends inside a string)', H('strings_size'), ss - 1);
    put32('header.strings_size = 0', H('strings_size'), 0);
    put32('header.strings_offset + 1', H('strings_offset'), so + 1);
    put32('header.strings_offset past the end', H('strings_offset'), L.total_size);
    put32('header.strings_size = total', H('strings_size'), L.total_size);
  }

  // targeted: each rule of the reader
  put32('header.total_size - 8 (shorter than the sections)', H('total_size'), L.total_size - 8);
  put32('header.total_size = 79', H('total_size'), 79);
  put32('header.version = 1 (the format without threads)', H('version'), 1);
  put32('header.version = 2 (the format without thread names)', H('version'), 2);
  put32('header.version = 3 (the format without credentials)', H('version'), 3);
  put32('header.version = 4 (the format without inherited pages)', H('version'), 4);
  put32('header.version = 6', H('version'), 6);
  put32('header.header_size = 64 (the v1 header)', H('header_size'), 64);
  put32('header.task_offset misaligned', H('task_offset'), L.task_offset + 4);
  put32('header.task_offset inside the header', H('task_offset'), 0);
  put32('header.vma_offset misaligned', H('vma_offset'), L.vma_offset + 4);
  put32('header.fd_offset past the end', H('fd_offset'), L.total_size);
  put32('header.siginfo_count + 100', H('siginfo_count'), L.siginfo_count + 100);
  put32('header.xsave_size = 575', H('xsave_size'), 575);
  put32('header.xsave_size = 65537', H('xsave_size'), 65537);
  put32('task.pid = 0', T, 0);
  put32('task.pid = -1', T, -1);
  put32('task.tid != pid', T + 4, 4243);
  put32('task.auxv_words = 129', T + 136, 129);
  put32('task.auxv_words = 3', T + 136, 3);
  {
    const b = Buffer.from(VECTOR);
    b.fill(0x41, T + 32, T + 48);
    out.push({ name: 'task.comm not terminated', bytes: b, touched: [...Array(16).keys()].map((k) => T + 32 + k).filter((i) => b[i] !== VECTOR[i]) });
  }
  put32('task.creds.ngroups = 65', T + 3684, 65);
  put32('task.creds.ngroups = 0xffffffff', T + 3684, 0xffffffff);
  put32('task.creds.dumpable = 3', T + 3680, 3);
  put32('task.creds.no_new_privs = 2', T + 3676, 2);
  put32('task.creds.ngroups = 64 (accepted)', T + 3684, 64);
  put32('task.creds.ngroups = 0 (accepted)', T + 3684, 0);
  put32('task.rseq_len = 16', T + 3568, 16);
  put32('task.rseq_len = 8192', T + 3568, 8192);
  put64('task.rseq_abi misaligned', T + 3560, 0x7f1e2d0b3fe8n);
  put64('task.itimers[1].interval_usec = 1000000', T + 3464 + 32 + 8, 1000000n);
  put64('task.itimers[2].value_usec = -1', T + 3464 + 64 + 24, -1n);
  put64('task.regs.cs = 0x23 (32-bit)', T + 1168 + 17 * 8, 0x23n);
  put64('vma[0].start unaligned', V(0, 0), 0x400800n);
  put64('vma[3].end = start', V(3, 8), 0x7f1e2c000000n);
  put64('vma[12].end beyond user space', V(12, 8), 0x800000000000n);
  put64('vma[5].start overlaps vma[4]', V(5, 0), 0x7f1e2c1ff000n);
  put32('vma[2].kind = 0', V(2, 24), 0);
  put32('vma[2].kind = 7', V(2, 24), 7);
  put32('vma[4].prot = 8', V(4, 28), 8);
  put32('vma[0].path = "" (file mapping)', V(0, 36), 0);
  put64('vma[6].pgoff = 2^40 + 1', V(6, 16), (1n << 40n) + 1n);
  put32('vma[4].object = 0 (anonymous shared without its object)', V(4, 44), 0);
  put32('vma[5].object = 0 (anonymous shared without its object)', V(5, 44), 0);
  put32('vma[2].object = 3 (anonymous private naming an object)', V(2, 44), 3);
  put32('vma[6].object = 1 (file shared naming an object)', V(6, 44), 1);
  put32('vma[11].object = 0xffffffff ([vdso] naming an object)', V(11, 44), 0xffffffff);
  put32('vma[4].object = vma[5].object (both views of one object: accepted)', V(4, 44), 0xfffffffe);
  put32('vma[2].kind = 2 (anonymous shared without an object)', V(2, 24), 2);
  put32('vma[4].kind = 1 (anonymous private with an object)', V(4, 24), 1);
  {
    const b = Buffer.from(VECTOR);
    VECTOR.copy(b, V(1, 0), V(2, 0), V(3, 0));
    VECTOR.copy(b, V(2, 0), V(1, 0), V(2, 0));
    out.push({ name: 'vma[1] and vma[2] swapped (unsorted)', bytes: b, touched: [...Array(96).keys()].map((k) => V(1, 0) + k).filter((i) => b[i] !== VECTOR[i]) });
  }
  put32('fd[0].fd = -1', F(0, 0), -1);
  put32('fd[5].fd = 2^20 + 1', F(5, 0), (1 << 20) + 1);
  put32('fd[2].fd = fd[1].fd (duplicate)', F(2, 0), 4);
  put32('fd[1].kind = 4', F(1, 4), 4);
  put32('fd[3].path = "" ', F(3, 24), 0);
  put32('fd[0].cloexec = 2', F(0, 12), 2);
  put32('siginfo[0].signo = 0', S(0, 8), 0);
  put32('siginfo[1].signo = 65', S(1, 8), 65);
  put32('siginfo[1].shared = 2', S(1, 0), 2);
  // inherited pages
  put64('inherited[0].start unaligned', IN(0, 0), 0x401800n);
  put64('inherited[1].len = 0', IN(1, 8), 0n);
  put64('inherited[1].len unaligned', IN(1, 8), 0x2800n);
  put64('inherited[2].start before inherited[1] ends (unsorted)', IN(2, 0), 0x1c5c000n);
  put64('inherited[2].len reaches past its mapping', IN(2, 8), 0x1d000n);
  put64('inherited[0].start in a shared mapping', IN(0, 0), 0x7f1e2d000000n);
  put64('inherited[0].start in no mapping', IN(0, 0), 0x300000n);
  put64('inherited[2].start in [vdso]', IN(2, 0), 0x7ffc001f5000n);
  put64('inherited[2].len = 2^64 - 4096', IN(2, 8), -4096n);
  put32('header.inherited_count + 1 (past the end)', H('inherited_count'), L.inherited_count + 1);
  put32('header.inherited_count = 2^20 + 1', H('inherited_count'), (1 << 20) + 1);
  put32('header.inherited_count = 0 (accepted)', H('inherited_count'), 0);
  put32('header.inherited_offset misaligned', H('inherited_offset'), L.inherited_offset + 4);
  put32('header.inherited_offset inside the threads', H('inherited_offset'), L.thread_offset);
  // threads
  put32('header.thread_count = 4097', H('thread_count'), 4097);
  put32('header.thread_count = 4096', H('thread_count'), 4096);
  put32('header.thread_count + 1 (past the end)', H('thread_count'), L.thread_count + 1);
  put32('header.thread_count = 1 (siginfo[2] names the dropped thread)', H('thread_count'), 1);
  put32('header.thread_count = 0', H('thread_count'), 0);
  put32('header.thread_offset misaligned', H('thread_offset'), L.thread_offset + 4);
  put32('header.thread_offset inside the header', H('thread_offset'), 0);
  put32('header.thread_offset = strings_offset (overlap)', H('thread_offset'), L.strings_offset);
  put32('header.thread_offset = task_offset (out of order)', H('thread_offset'), L.task_offset);
  put32('header.thread_offset past the end', H('thread_offset'), L.total_size);
  put32('header.xsave_offset + xsave_size (last area overlaps the strings)', H('xsave_offset'), L.xsave_offset + L.xsave_size);
  put32('header.strings_offset = xsave_offset + xsave_size (inside the thread areas)', H('strings_offset'), L.xsave_offset + L.xsave_size);
  put32('thread[0].tid = 0', TH(0, 0), 0);
  put32('thread[0].tid = -1', TH(0, 0), -1);
  put32('thread[0].tid = task pid', TH(0, 0), 4242);
  put32('thread[1].tid = thread[0].tid (duplicate)', TH(1, 0), 4243);
  put32('thread[0].tid = thread[1].tid (duplicate)', TH(0, 0), 4244);
  put32('thread[1].tid = 4245 (siginfo[2] names 4244)', TH(1, 0), 4245);
  put64('thread[0].regs.cs = 0x23 (32-bit)', TH(0, 8 + 17 * 8), 0x23n);
  put64('thread[1].regs.cs = 0', TH(1, 8 + 17 * 8), 0n);
  put32('thread[0].rseq_len = 16', TH(0, 252), 16);
  put32('thread[1].rseq_len = 8192', TH(1, 252), 8192);
  put64('thread[1].rseq_abi misaligned', TH(1, 256), 0x7f1e2a1b3fe8n);
  put64('thread[0].robust_len = 23', TH(0, 280), 23n);
  put64('thread[1].robust_len = 0 (no robust list: accepted)', TH(1, 280), 0n);
  put64('task.robust_len = 48', T + 3584, 48n);
  {
    const b = Buffer.from(VECTOR);
    b.fill(0x41, TH(1, 296), TH(1, 312));
    out.push({ name: 'thread[1].comm without NUL', bytes: b, touched: [...Array(16).keys()].map((k) => TH(1, 296) + k).filter((i) => b[i] !== VECTOR[i]) });
  }
  put32('siginfo[0].tid = 0', S(0, 4), 0);
  put32('siginfo[0].tid = 9999 (no such thread)', S(0, 4), 9999);
  put32('siginfo[2].tid = -4244', S(2, 4), -4244);
  // harmless: other valid targets, and the tid of a shared signal is not used
  put32('siginfo[0].tid = 4243 (another thread)', S(0, 4), 4243);
  put32('siginfo[2].tid = 4242 (the main thread)', S(2, 4), 4242);
  put32('siginfo[1].tid = 9999 (shared: tid unused)', S(1, 4), 9999);
  put32('siginfo[2].shared = 1', S(2, 0), 1);
  put32('thread[0].rseq_len = 0 (no rseq)', TH(0, 252), 0);

  // random byte flips (1 to 3 bytes each) fill up to 300
  while (out.length < 300) {
    const b = Buffer.from(VECTOR);
    const touched = [];
    for (let k = 1 + int(3); k > 0; k--) {
      const off = int(VECTOR.length);
      b[off] ^= 1 + int(255);
      touched.push(off);
    }
    const changed = [...new Set(touched)].filter((i) => b[i] !== VECTOR[i]);
    out.push({ name: `flip ${changed.map((o) => `${o} (${regionOf(o).field})`).join(', ')}`, bytes: b, touched: changed });
  }
  return out;
}

test('robustness: 300 damaged plans are refused cleanly by crmigrate-restore --print-plan', { timeout: 180000 }, async (t) => {
  const muts = mutations();
  assert.equal(muts.length, 300);
  const results = await pool(muts, 8, (m) => printPlan(m.bytes, 5000));
  const problems = [];
  const acceptedOutsideFree = new Map(); // field -> mutation names
  let refused = 0;
  let acceptedFree = 0;
  results.forEach((r, i) => {
    const m = muts[i];
    const what = `${m.name}: `;
    if (r.timedOut) return problems.push(`${what}hung (killed after 5 s)`);
    if (r.signal !== null) return problems.push(`${what}killed by ${r.signal}`);
    const spec = specReject(m.bytes);
    if (r.status === 1) {
      refused++;
      if (!/^crmigrate-restore: [^\n]+\n$/.test(r.stderr)) problems.push(`${what}stderr is not one "crmigrate-restore: " line: ${JSON.stringify(r.stderr)}`);
      if (r.stdout !== '') problems.push(`${what}printed on stdout although it failed`);
      if (spec === null) problems.push(`${what}refused (${r.stderr.trim()}) but valid by the rules of crm_plan.h/plan.c`);
      return;
    }
    if (r.status !== 0) return problems.push(`${what}exit status ${r.status}: ${r.stderr.trim()}`);
    // accepted: the damage must be harmless by the rules, and the output a full listing
    if (spec !== null) problems.push(`${what}accepted although it breaks the rule "${spec}"`);
    if (r.stderr !== '') problems.push(`${what}accepted with stderr output ${JSON.stringify(r.stderr)}`);
    if (!/^task pid=/.test(r.stdout) || !/\nxsave \d+ bytes x \d+\n$/.test(r.stdout)) problems.push(`${what}accepted, but printed ${JSON.stringify(r.stdout.slice(0, 80))}`);
    const regions = m.touched.map(regionOf);
    if (m.touched.length && regions.every((x) => x.cls === 'free')) {
      acceptedFree++;
      return;
    }
    for (const x of regions.filter((y) => y.cls !== 'free')) {
      const key = `${x.field} [${x.cls}]`;
      acceptedOutsideFree.set(key, [...(acceptedOutsideFree.get(key) ?? []), m.name]);
    }
    if (!m.touched.length) problems.push(`${what}accepted a truncated plan`);
  });
  t.diagnostic(`refused ${refused}, accepted with damage only in free-form data ${acceptedFree}, accepted otherwise ${300 - refused - acceptedFree}`);
  for (const [field, names] of [...acceptedOutsideFree].sort()) t.diagnostic(`accepted outside free-form data: ${field}: ${names.length} (e.g. ${names[0]})`);
  assert.deepEqual(problems, []);
  assert.ok(refused >= 200, `only ${refused} of 300 refused`);
});

// ---------------------------------------------------------------------------
// Values outside the domain of fields the C reader does not check. Each of
// these plans is structurally sound but means nothing valid; the reader
// ("every offset/count is validated", "each ... value is checked before use")
// should refuse it rather than let the restore fail later or do something odd.
// (Non-zero padding, unknown flag bits, umask > 0777 and odd altstack flags
// are accepted too; they are harmless and left out here.)

function patched(edits) {
  const b = Buffer.from(VECTOR);
  for (const [off, size, v] of edits) {
    if (size === 4) b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(v))), off);
    else b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
  }
  return b;
}

const T0 = L.task_offset;
const DOMAIN = [
  { name: 'task.start_code > task.end_code (TS validate() refuses this in the image)', edits: [[T0 + 48, 8, 0x402000]] },
  { name: 'task.brk beyond the user address space', edits: [[T0 + 88, 8, 0x900000000000n]] },
  { name: 'fd[5].fd = 2^20 (TS validate() requires fd < 2^20 = the largest nr_open)', edits: [[L.fd_offset + 5 * SIZES.fd, 4, 1 << 20]] },
  { name: 'vma[6].open_flags = O_WRONLY (only O_RDONLY / O_RDWR are meaningful)', edits: [[L.vma_offset + 6 * SIZES.vma + 40, 4, 1]] },
  { name: 'xsave section overlapping the task section', edits: [[12 * 4, 4, L.task_offset]] },
  // already refused (kept as regression tests)
  { name: 'fd[5].fd = 2^20 + 1', edits: [[L.fd_offset + 5 * SIZES.fd, 4, (1 << 20) + 1]] },
  { name: 'vma[6].pgoff = 2^40 + 1', edits: [[L.vma_offset + 6 * SIZES.vma + 16, 8, (1n << 40n) + 1n]] },
];

for (const d of DOMAIN) {
  test(`domain: crmigrate-restore refuses ${d.name}`, d.todo ? { todo: d.todo } : {}, async () => {
    const r = await printPlan(patched(d.edits));
    assert.equal(r.signal, null);
    assert.equal(r.status, 1, `accepted: ${r.stdout.split('\n').slice(0, 1)}`);
    assert.match(r.stderr, /^crmigrate-restore: [^\n]+\n$/);
  });
}

// ---------------------------------------------------------------------------
// The thread rules of plan v2, one by one: the C reader and specReject refuse
// each plan for the same reason (and accept the harmless ones).

const TH0 = (i, o) => L.thread_offset + i * SIZES.thread + o;
const SI0 = (i, o) => L.siginfo_offset + i * SIZES.siginfo + o;
const HO = (n) => HEADER_FIELDS.indexOf(n) * 4;
const THREAD_RULES = [
  { name: 'thread_count above CRM_MAX_THREADS', edits: [[HO('thread_count'), 4, 4097]], spec: 'thread section', c: /thread section out of bounds/ },
  { name: 'thread section past the end', edits: [[HO('thread_count'), 4, L.thread_count + 1]], spec: 'thread section', c: /thread section out of bounds/ },
  { name: 'thread section misaligned', edits: [[HO('thread_offset'), 4, L.thread_offset + 4]], spec: 'thread section', c: /thread section out of bounds/ },
  { name: 'thread section inside the header', edits: [[HO('thread_offset'), 4, 8]], spec: 'thread section', c: /thread section out of bounds/ },
  { name: 'thread section on the string table', edits: [[HO('thread_offset'), 4, L.strings_offset]], spec: 'sections overlap', c: /sections overlap or are out of order/ },
  { name: 'thread section before the task', edits: [[HO('thread_offset'), 4, L.task_offset]], spec: 'sections overlap', c: /sections overlap or are out of order/ },
  { name: 'xsave areas of the threads running into the strings', edits: [[HO('xsave_offset'), 4, L.xsave_offset + 8]], spec: 'sections overlap', c: /sections overlap or are out of order/ },
  { name: 'xsave areas past the end', edits: [[HO('xsave_offset'), 4, L.total_size - L.xsave_size]], spec: 'xsave section', c: /FPU state section out of bounds/ },
  { name: 'thread tid 0', edits: [[TH0(0, 0), 4, 0]], spec: 'thread tid', c: /thread 0 has an invalid tid 0/ },
  { name: 'thread tid negative', edits: [[TH0(1, 0), 4, -7]], spec: 'thread tid', c: /thread 1 has an invalid tid -7/ },
  { name: 'thread tid = task pid', edits: [[TH0(1, 0), 4, 4242]], spec: 'thread tid', c: /thread 1 has an invalid tid 4242/ },
  { name: 'the same thread twice', edits: [[TH0(1, 0), 4, 4243]], spec: 'thread tid twice', c: /has thread 4243 twice/ },
  { name: 'a 32-bit thread', edits: [[TH0(1, 8 + 17 * 8), 8, 0x23]], spec: 'thread cs', c: /thread 4244 is not 64-bit/ },
  { name: 'thread rseq_len 31', edits: [[TH0(0, 252), 4, 31]], spec: 'thread rseq', c: /thread 4243 rseq invalid/ },
  { name: 'thread rseq_len 4097', edits: [[TH0(0, 252), 4, 4097]], spec: 'thread rseq', c: /thread 4243 rseq invalid/ },
  { name: 'thread rseq_abi not 32-byte aligned', edits: [[TH0(1, 256), 8, 0x7f1e2a1b3ff0n]], spec: 'thread rseq', c: /thread 4244 rseq invalid/ },
  { name: 'own signal of an unknown thread', edits: [[SI0(0, 4), 4, 9999]], spec: 'siginfo tid', c: /pending signal 0 is for an unknown thread 9999/ },
  { name: 'own signal with tid 0', edits: [[SI0(2, 4), 4, 0]], spec: 'siginfo tid', c: /pending signal 2 is for an unknown thread 0/ },
  { name: 'the thread of a pending signal dropped', edits: [[HO('thread_count'), 4, 1]], spec: 'siginfo tid', c: /pending signal 2 is for an unknown thread 4244/ },
  { name: 'the thread of a pending signal renamed', edits: [[TH0(1, 0), 4, 4245]], spec: 'siginfo tid', c: /pending signal 2 is for an unknown thread 4244/ },
  // valid
  { name: 'no threads and no thread signal', edits: [[HO('thread_count'), 4, 0], [SI0(2, 4), 4, 4242]], spec: null },
  { name: 'own signal moved to the other thread', edits: [[SI0(2, 4), 4, 4243]], spec: null },
  { name: 'a shared signal with any tid', edits: [[SI0(1, 4), 4, -1]], spec: null },
  { name: 'a thread without rseq', edits: [[TH0(1, 252), 4, 0], [TH0(1, 256), 8, 3]], spec: null },
  { name: 'rseq_len 4096 in a thread', edits: [[TH0(0, 252), 4, 4096]], spec: null },
];

/**
 * One rule of the C reader against the model: both refuse (one line naming
 * the cause, on stderr) or both accept; `accepted` checks the decoded plan.
 */
async function checkRule(r, { emptyStdoutOnRefusal, accepted }) {
  const b = patched(r.edits);
  assert.equal(specReject(b), r.spec);
  const out = await printPlan(b);
  assert.equal(out.signal, null);
  if (r.spec) {
    assert.equal(out.status, 1, `accepted: ${out.stdout.split('\n')[0]}`);
    assert.match(out.stderr, /^crmigrate-restore: [^\n]+\n$/);
    assert.match(out.stderr, r.c);
    if (emptyStdoutOnRefusal) assert.equal(out.stdout, '');
  } else {
    assert.equal(out.stderr, '');
    assert.equal(out.status, 0);
    accepted(out, b);
  }
}

for (const r of THREAD_RULES) {
  test(`threads: ${r.spec ? 'refuses' : 'accepts'} ${r.name}`, () => checkRule(r, {
    emptyStdoutOnRefusal: false,
    accepted: (out, b) => assert.match(out.stdout, new RegExp(`\\nxsave 832 bytes x ${1 + b.readUInt32LE(HO('thread_count'))}\\n$`)),
  }));
}

// ---------------------------------------------------------------------------
// crm_vma.object (process trees): an anonymous shared mapping names its
// CRM_OBJ_SHMEM in the tree section, and no other kind names one.

const VO = (i, o) => L.vma_offset + i * SIZES.vma + o;
const OBJECT_RULES = [
  { name: 'anonymous shared mapping with object 0', edits: [[VO(4, 44), 4, 0]], spec: 'vma object', c: /mapping 4 has a bad shared memory object/ },
  { name: 'second anonymous shared mapping with object 0', edits: [[VO(5, 44), 4, 0]], spec: 'vma object', c: /mapping 5 has a bad shared memory object/ },
  { name: 'anonymous private mapping with an object', edits: [[VO(2, 44), 4, 3]], spec: 'vma object', c: /mapping 2 has a bad shared memory object/ },
  { name: 'private file mapping with an object', edits: [[VO(0, 44), 4, 1]], spec: 'vma object', c: /mapping 0 has a bad shared memory object/ },
  { name: 'shared file mapping with an object', edits: [[VO(7, 44), 4, 0xffffffff]], spec: 'vma object', c: /mapping 7 has a bad shared memory object/ },
  { name: '[vvar] with an object', edits: [[VO(9, 44), 4, 2]], spec: 'vma object', c: /mapping 9 has a bad shared memory object/ },
  { name: '[vdso] with an object', edits: [[VO(12, 44), 4, 2]], spec: 'vma object', c: /mapping 12 has a bad shared memory object/ },
  { name: 'an anonymous private mapping turned shared, without an object', edits: [[VO(3, 24), 4, 2]], spec: 'vma object', c: /mapping 3 has a bad shared memory object/ },
  { name: 'an anonymous shared mapping turned private, keeping its object', edits: [[VO(4, 24), 4, 1]], spec: 'vma object', c: /mapping 4 has a bad shared memory object/ },
  // valid
  { name: 'both shared mappings naming one object', edits: [[VO(4, 44), 4, 0xfffffffe]], spec: null },
  { name: 'object id 0xffffffff', edits: [[VO(5, 44), 4, 0xffffffff]], spec: null },
  { name: 'an anonymous private mapping turned shared with an object', edits: [[VO(3, 24), 4, 2], [VO(3, 44), 4, 1]], spec: null },
  { name: 'an anonymous shared mapping turned private without its object', edits: [[VO(4, 24), 4, 1], [VO(4, 44), 4, 0]], spec: null },
];

for (const r of OBJECT_RULES) {
  test(`vma objects: ${r.spec ? 'refuses' : 'accepts'} ${r.name}`, () => checkRule(r, {
    emptyStdoutOnRefusal: true,
    accepted: (out) => {
      // the object ids as written
      const vmaLines = out.stdout.split('\n').filter((l) => l.startsWith('vma '));
      for (const [off, , v] of r.edits) {
        if ((off - L.vma_offset) % SIZES.vma === 44) assert.match(vmaLines[Math.floor((off - L.vma_offset) / SIZES.vma)], new RegExp(` object=${v} `));
      }
    },
  }));
}
