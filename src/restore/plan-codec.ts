// Binary encoding of the restore plan, byte for byte the layout of
// native/include/crm_plan.h (checked by the shared vector test/vectors/plan-v1.bin).
import type { Plan } from './plan-model.js';
import type { TreePlan } from '../resources/tree.js';

export const PLAN_MAGIC = 0x504d5243;
export const PLAN_VERSION = 5;
export const SIZES = { header: 80, task: 3944, vma: 48, fd: 32, siginfo: 136, thread: 312, range: 16 } as const;
const AUXV_WORDS = 128;

class StringTable {
  private readonly parts: Buffer[] = [Buffer.from([0])];
  private readonly index = new Map<string, number>([['', 0]]);
  private size = 1;
  add(s: string): number {
    const known = this.index.get(s);
    if (known !== undefined) return known;
    const b = Buffer.from(s + '\0', 'utf8');
    const off = this.size;
    this.parts.push(b);
    this.size += b.length;
    this.index.set(s, off);
    return off;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const align8 = (n: number): number => (n + 7) & ~7;

export function encodePlan(plan: Plan): Buffer {
  const strings = new StringTable();
  const t = plan.task;
  if (t.auxv.length > AUXV_WORDS * 8 || t.auxv.length % 16) throw new Error('plan: auxv too large or not pairs');
  if (t.regs.length !== 216) throw new Error('plan: register block must be 216 bytes');

  const task = Buffer.alloc(SIZES.task);
  let o = 0;
  const u32 = (v: number): void => { task.writeUInt32LE(v >>> 0, o); o += 4; };
  const i32 = (v: number): void => { task.writeInt32LE(v, o); o += 4; };
  const u64 = (v: bigint | number): void => { task.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), o); o += 8; };
  i32(t.pid); i32(t.tid); u32(t.flags); u32(t.personality);
  u32(t.umask); u32(strings.add(t.exePath)); u32(strings.add(t.cwdPath)); u32(strings.add(t.rootPath));
  const comm = Buffer.from(t.comm, 'utf8').subarray(0, 15);
  comm.copy(task, o); o += 16;
  const m = t.mm;
  for (const v of [m.startCode, m.endCode, m.startData, m.endData, m.startBrk, m.brk, m.startStack, m.argStart, m.argEnd, m.envStart, m.envEnd]) u64(v);
  u32(t.auxv.length / 8); u32(0);
  t.auxv.copy(task, o); o += AUXV_WORDS * 8;
  t.regs.copy(task, o); o += 216;
  u64(t.blocked);
  for (let s = 0; s < 64; s++) {
    const a = t.sigactions[s];
    u64(a.handler); u64(a.flags); u64(a.restorer); u64(a.mask);
  }
  u64(t.altstack.sp); u64(t.altstack.size); u32(t.altstack.flags); u32(0);
  for (const it of t.itimers) { u64(it.intervalSec); u64(it.intervalUsec); u64(it.valueSec); u64(it.valueUsec); }
  u64(t.rseq.abi); u32(t.rseq.len); u32(t.rseq.sig);
  u64(t.robustList); u64(t.robustLen); u64(t.clearChildTid);
  const c = t.creds;
  if (c.uids.length !== 4 || c.gids.length !== 4 || c.groups.length > 64) throw new Error('plan: credentials malformed');
  c.uids.forEach(u32); c.gids.forEach(u32);
  u64(c.capInh); u64(c.capPrm); u64(c.capEff); u64(c.capBnd); u64(c.capAmb);
  u32(c.securebits); u32(c.noNewPrivs ? 1 : 0); u32(c.dumpable); u32(c.groups.length);
  for (let i = 0; i < 64; i++) u32(c.groups[i] ?? 0);
  if (o !== SIZES.task) throw new Error(`plan: task block is ${o} bytes, expected ${SIZES.task}`);

  const vmas = Buffer.alloc(plan.vmas.length * SIZES.vma);
  plan.vmas.forEach((v, i) => {
    const b = i * SIZES.vma;
    vmas.writeBigUInt64LE(BigInt(v.start), b);
    vmas.writeBigUInt64LE(BigInt(v.end), b + 8);
    vmas.writeBigUInt64LE(BigInt(v.pgoff), b + 16);
    vmas.writeUInt32LE(v.kind, b + 24);
    vmas.writeUInt32LE(v.prot, b + 28);
    vmas.writeUInt32LE(v.vmFlags, b + 32);
    vmas.writeUInt32LE(strings.add(v.path), b + 36);
    vmas.writeUInt32LE(v.openFlags, b + 40);
    vmas.writeUInt32LE(v.object, b + 44);
  });
  const fds = Buffer.alloc(plan.fds.length * SIZES.fd);
  plan.fds.forEach((f, i) => {
    const b = i * SIZES.fd;
    fds.writeInt32LE(f.fd, b);
    fds.writeUInt32LE(f.kind, b + 4);
    fds.writeUInt32LE(f.flags >>> 0, b + 8);
    fds.writeUInt32LE(f.cloexec ? 1 : 0, b + 12);
    fds.writeBigUInt64LE(f.pos, b + 16);
    fds.writeUInt32LE(strings.add(f.path), b + 24);
    fds.writeUInt32LE(f.shareId, b + 28);
  });
  const sigs = Buffer.alloc(plan.siginfos.length * SIZES.siginfo);
  plan.siginfos.forEach((s, i) => {
    const b = i * SIZES.siginfo;
    sigs.writeUInt32LE(s.shared ? 1 : 0, b);
    sigs.writeInt32LE(s.shared ? 0 : s.tid, b + 4);
    s.raw.copy(sigs, b + 8, 0, 128);
  });
  const str = strings.bytes();
  const threads = Buffer.alloc(plan.threads.length * SIZES.thread);
  plan.threads.forEach((th, i) => {
    let b = i * SIZES.thread;
    const w64 = (v: bigint | number): void => { threads.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), b); b += 8; };
    const w32 = (v: number): void => { threads.writeUInt32LE(v >>> 0, b); b += 4; };
    threads.writeInt32LE(th.tid, b); b += 8;
    if (th.regs.length !== 216) throw new Error('plan: thread register block must be 216 bytes');
    th.regs.copy(threads, b); b += 216;
    w64(th.blocked); w64(th.altstack.sp); w64(th.altstack.size); w32(th.altstack.flags); w32(th.rseq.len);
    w64(th.rseq.abi); w32(th.rseq.sig); w32(0); w64(th.robustList); w64(th.robustLen); w64(th.clearChildTid);
    Buffer.from(th.comm, 'utf8').subarray(0, 15).copy(threads, b);
  });
  for (const th of plan.threads) if (th.xsave.length !== plan.xsave.length) throw new Error('plan: threads differ in FPU state size');
  const xsave = Buffer.concat([plan.xsave, ...plan.threads.map((th) => th.xsave)]);

  const inherited = Buffer.alloc(plan.inherited.length * SIZES.range);
  plan.inherited.forEach((r, i) => {
    inherited.writeBigUInt64LE(BigInt(r.start), i * SIZES.range);
    inherited.writeBigUInt64LE(BigInt(r.len), i * SIZES.range + 8);
  });

  const sections = [task, vmas, fds, sigs, xsave, str, threads, inherited];
  const offsets: number[] = [];
  let at: number = SIZES.header;
  for (const s of sections) {
    offsets.push(at);
    at = align8(at + s.length);
  }
  const total = at;
  const out = Buffer.alloc(total);
  const h = [PLAN_MAGIC, PLAN_VERSION, total, SIZES.header, offsets[0], SIZES.task, offsets[1], plan.vmas.length,
    offsets[2], plan.fds.length, offsets[3], plan.siginfos.length, offsets[4], plan.xsave.length, offsets[5], str.length,
    offsets[6], plan.threads.length, offsets[7], plan.inherited.length];
  h.forEach((v, i) => out.writeUInt32LE(v >>> 0, i * 4));
  sections.forEach((s, i) => s.copy(out, offsets[i]));
  return out;
}

/** Page stream chunk header (struct crm_chunk). */
export const CHUNK_PAGES = 1;
export const CHUNK_END = 2;
export const CHUNK_FILE = 3;
export function chunkHeader(kind: number, addr: number, len: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(addr), 0);
  b.writeUInt32LE(len, 8);
  b.writeUInt32LE(kind, 12);
  return b;
}

/** A CHUNK_FILE chunk: len bytes of page data for addr, at offset in the image file the restorer was given. */
export function fileChunk(addr: number, len: number, offset: number): Buffer {
  const b = Buffer.alloc(24);
  chunkHeader(CHUNK_FILE, addr, len).copy(b);
  b.writeBigUInt64LE(BigInt(offset), 16);
  return b;
}

/** The tree section (struct crm_tree_header, crm_tree_task[], crm_object[], strings). */
export const TREE_MAGIC = 0x54524d43;
export const TREE_VERSION = 1;
export const TREE_SIZES = { header: 32, task: 32, object: 48 } as const;

export function encodeTree(tree: TreePlan): Buffer {
  const strings = new StringTable();
  const objects = Buffer.alloc(tree.objects.length * TREE_SIZES.object);
  tree.objects.forEach((o, i) => {
    const b = i * TREE_SIZES.object;
    objects.writeUInt32LE(o.id, b);
    objects.writeUInt32LE(o.kind, b + 4);
    objects.writeBigUInt64LE(BigInt(o.size), b + 8);
    objects.writeBigUInt64LE(o.pos, b + 16);
    objects.writeUInt32LE(strings.add(o.path), b + 24);
    objects.writeUInt32LE(o.flags >>> 0, b + 28);
    objects.writeUInt32LE(o.fdKind, b + 32);
    objects.writeInt32LE(o.shmid, b + 36);
    objects.writeUInt32LE(o.uid >>> 0, b + 40);
    objects.writeUInt32LE(o.gid >>> 0, b + 44);
  });
  const tasks = Buffer.alloc(tree.tasks.length * TREE_SIZES.task);
  tree.tasks.forEach((t, i) => {
    const b = i * TREE_SIZES.task;
    [t.pid, t.ppid, t.pgid, t.sid].forEach((v, k) => tasks.writeInt32LE(v, b + k * 4));
    tasks.writeUInt32LE(t.flags, b + 16);
    tasks.writeUInt32LE(t.nthreads, b + 20);
    tasks.writeInt32LE(t.exitCode, b + 24);
    tasks.writeInt32LE(t.exitSignal, b + 28);
  });
  const str = strings.bytes();
  const total = TREE_SIZES.header + tasks.length + objects.length + str.length;
  const header = Buffer.alloc(TREE_SIZES.header);
  [TREE_MAGIC, TREE_VERSION, total, TREE_SIZES.header, tree.tasks.length, tree.objects.length, str.length].forEach((v, i) => header.writeUInt32LE(v >>> 0, i * 4));
  header.writeInt32LE(tree.maxFd, 28);
  return Buffer.concat([header, tasks, objects, str]);
}
