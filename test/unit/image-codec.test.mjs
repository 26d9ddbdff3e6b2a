// Unit tests of the image format: schema codec, record framing, CRC-32C,
// trailer. Every corruption must surface as an ImageError naming its cause,
// never as a crash of another kind, a hang, or a silently accepted image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../dist/native/addon.js';
import { encodeWith, Writer } from '../../dist/image/schema.js';
import { decodeRecord, encodeRecord, IMAGE_MAGIC, IMAGE_VERSION, RecordType, schemas } from '../../dist/image/records.js';
import { ImageWriter, readImage } from '../../dist/image/stream.js';

const crc32c = (b, seed) => (seed === undefined ? native.crc32c(b) : native.crc32c(b, seed));
const PAGE = 4096;

// ---------------------------------------------------------------------------
// helpers

class MemSink {
  chunks = [];
  async write(b) {
    this.chunks.push(Buffer.from(b)); // copy: the writer may reuse its buffers
  }
  bytes() {
    return Buffer.concat(this.chunks);
  }
}

async function* chunked(buf, size) {
  if (!size) {
    yield buf;
    return;
  }
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** Reads a whole image; resolves to { items, trailer } or rejects. */
async function readAll(buf, size = 0) {
  const it = readImage(chunked(buf, size));
  const items = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { items, trailer: r.value };
    items.push(r.value);
  }
}

/** Asserts that reading buf fails with an ImageError whose message matches re. */
async function rejects(buf, re, label = '', size = 0) {
  let err;
  try {
    await readAll(buf, size);
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${label}: the image was accepted`);
  assert.equal(err.name, 'ImageError', `${label}: expected an ImageError, got ${err.name}: ${err.message}`);
  if (re) assert.match(err.message, re, label);
  return err;
}

const pattern = (n, seed) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
};

function siginfo(signo, seed) {
  const b = pattern(128, seed);
  b.writeInt32LE(signo, 0);
  return b;
}

const FILE_ID = { dev: 0x803n, ino: 1835023n, size: 35280n, mtimeNs: 1700000000123456789n };
const NO_FILE = { dev: 0n, ino: 0n, size: 0n, mtimeNs: 0n };

const HEADER = {
  imageVersion: IMAGE_VERSION, toolVersion: '0.1.0', arch: 'x86_64', kernel: '6.8.0-48-generic #48-Ubuntu SMP', hostname: 'source-höst',
  pageSize: 4096, xsaveSize: 832, xcr0: 0x2e7n, createdMs: 1732660000123n, rootPid: 4242,
};
const TASK = {
  pid: 4242, tid: 4242, ppid: 1, pgid: 4242, sid: 4200, comm: 'sleeper (v1)', exe: '/usr/local/bin/sleeper',
  cwd: '/home/user/work dir', root: '/', personality: 0x40000, umask: 0o027, uids: [1000, 1001, 1002, 1003], gids: [100, 101, 102, 103],
  startCode: 0x400000, endCode: 0x401000, startData: 0x600000, endData: 0x601000, startBrk: 0x1000000, brk: 0x1021000,
  startStack: 0x7ffc00000000, argStart: 0x7ffc00001000, argEnd: 0x7ffc00001100, envStart: 0x7ffc00001100, envEnd: 0x7ffc00002000,
  auxv: Buffer.concat([Buffer.from('0600000000000000', 'hex'), Buffer.from('0010000000000000', 'hex'), Buffer.alloc(16)]),
  rseqAbi: 0x7f0000001020n, rseqLen: 32, rseqSig: 0x53053053,
  // credentials: effective within permitted, ambient within permitted and inheritable
  groups: [4, 24, 27, 65534], capInh: 0x3400n, capPrm: 0x1fffffffeffn, capEff: 0x3000n, capBnd: 0x1ffffffffffn, capAmb: 0x1000n,
  securebits: 0x2f, noNewPrivs: true, dumpable: 2,
};
const THREAD = {
  tid: 4242, rseqAbi: 0x7f0000001020n, rseqLen: 32, rseqSig: 0x53053053, robustList: 0x7f0000001a20n, robustLen: 24n, clearChildTid: 0x7f0000001a10n, comm: 'wörker-1',
};
const REGS = { tid: 4242, gp: pattern(216, 1), xsave: pattern(832, 2), inSyscall: true, syscallNr: -1n };
const SIGNALS = {
  tid: 4242, blocked: 0x8000000000010002n,
  actions: [
    { sig: 10, handler: 0x401234n, flags: 0x14000000n, restorer: 0x7f0000002000n, mask: 0x200n },
    { sig: 64, handler: 1n, flags: 0n, restorer: 0n, mask: 0xffffffffffffffffn },
  ],
  pending: [{ shared: false, info: siginfo(10, 3) }, { shared: true, info: siginfo(34, 4) }],
  altstackSp: 0x7f0000100000n, altstackSize: 0x4000n, altstackFlags: 0,
};
const TIMERS = {
  itimers: [
    { which: 0, intervalSec: 1n, intervalUsec: 500000n, valueSec: 0n, valueUsec: 999999n },
    { which: 2, intervalSec: 0n, intervalUsec: 0n, valueSec: 5n, valueUsec: 1n },
  ],
};
const VMA_FILE = {
  start: 0x400000, end: 0x402000, kind: 3, prot: 5, vmFlags: 0, pgoff: 0, path: '/usr/local/bin/sleeper', openWrite: false, file: FILE_ID, shmId: 0,
};
const VMA_ANON = { start: 0x7f0000000000, end: 0x7f0000004000, kind: 1, prot: 3, vmFlags: 0x21, pgoff: 0x7f0000000, path: '[anon:x y]', openWrite: false, file: NO_FILE, shmId: 0 };
const VMA_SHARED = { start: 0x7f0000010000, end: 0x7f0000011000, kind: 4, prot: 3, vmFlags: 0, pgoff: 3, path: '/dev/shm/a b', openWrite: true, file: FILE_ID, shmId: 0 };
// anonymous shared memory: a view of SHMEM object 0xfffffffe from its second page on
const VMA_SHMEM = { start: 0x7f0000020000, end: 0x7f0000022000, kind: 2, prot: 3, vmFlags: 0x4, pgoff: 1, path: '', openWrite: false, file: NO_FILE, shmId: 0xfffffffe };
const FD = { fd: 3, kind: 1, path: '/var/log/app.log', flags: 0o102001, pos: 12345678901n, cloexec: true, shareId: 7, file: FILE_ID };
const FD_DIR = { fd: 1048575, kind: 2, path: '/', flags: 0o200000, pos: 0n, cloexec: false, shareId: 0, file: NO_FILE };
// the tree: a live root with three threads, a zombie killed by a signal, a zombie that exited
const PROCESS = { pid: 4242, ppid: 1, pgid: 4242, sid: 4200, zombie: false, exitCode: 0, exitSignal: 0, tids: [4242, 4243, 2147483647], maxFd: 1048575 };
const ZOMBIE = { pid: 4250, ppid: 4242, pgid: 4242, sid: 4200, zombie: true, exitCode: 0, exitSignal: 9, tids: [], maxFd: -1 };
const ZOMBIE_EXITED = { pid: 4251, ppid: 4242, pgid: 4251, sid: 4200, zombie: true, exitCode: 255, exitSignal: 0, tids: [], maxFd: -1 };
const SHMEM = { id: 0xfffffffe, size: 0x200000 };
const OBJECT_PAGES = { id: 0xfffffffe };
const SHARED_FILE = { id: 7, kind: 1, path: '/var/log/ä pp.log', flags: 0o102001, pos: 12345678901n };
const SYSV_SHM = { id: 0xfffffffe, shmid: 2147483647, size: 0x1fff01, mode: 0o640, uid: 65534, gid: 4294967295 };

const INHERITED = { ranges: [{ start: 0x7f0000000000, len: 0x1000 }, { start: 0x7f0000002000, len: 0x2000 }] };

const PAGES_A = pattern(2 * PAGE, 5);
const PAGES_B = pattern(PAGE, 6);

/** Every record type, in a plausible order. */
const RECORDS = [
  [RecordType.HEADER, HEADER], [RecordType.PROCESS, PROCESS], [RecordType.PROCESS, ZOMBIE], [RecordType.PROCESS, ZOMBIE_EXITED],
  [RecordType.SHMEM, SHMEM], [RecordType.SYSV_SHM, SYSV_SHM], [RecordType.SHARED_FILE, SHARED_FILE], [RecordType.OBJECT_PAGES, OBJECT_PAGES],
  [RecordType.TASK, TASK], [RecordType.THREAD, THREAD], [RecordType.REGS, REGS], [RecordType.SIGNALS, SIGNALS],
  [RecordType.TIMERS, TIMERS], [RecordType.VMA, VMA_FILE], [RecordType.VMA, VMA_ANON], [RecordType.VMA, VMA_SHARED], [RecordType.VMA, VMA_SHMEM],
  [RecordType.FD, FD], [RecordType.FD, FD_DIR], [RecordType.INHERITED, INHERITED],
  [RecordType.PRECOPY, { pid: 2147483647 }], [RecordType.PRECOPY_USE, INHERITED],
];

async function writeImage(records, pages = []) {
  const sink = new MemSink();
  const w = new ImageWriter(sink);
  await w.start();
  for (const [type, value] of records) await w.record(type, value);
  for (const [addr, data] of pages) await w.pagesRecord(addr, data);
  const trailer = await w.finish();
  assert.equal(w.bytesWritten, sink.bytes().length);
  return { bytes: sink.bytes(), trailer };
}

// Hand-made frames, with correct checksums unless told otherwise.
function frame(type, payload, { crc, len, reserved = 0 } = {}) {
  const f = Buffer.alloc(16);
  f.writeUInt32LE(type, 0);
  f.writeUInt32LE(len ?? payload.length, 4);
  f.writeUInt32LE(crc ?? crc32c(payload), 8);
  f.writeUInt32LE(reserved, 12);
  return Buffer.concat([f, payload]);
}

function pagesFrame(addr, data, { count, prefixPad = 0 } = {}) {
  const prefix = Buffer.alloc(16);
  prefix.writeBigUInt64LE(BigInt(addr), 0);
  prefix.writeUInt32LE(count ?? data.length / PAGE, 8);
  prefix.writeUInt32LE(prefixPad, 12);
  return frame(RecordType.PAGES, Buffer.concat([prefix, data]), { crc: crc32c(prefix, crc32c(data)) });
}

/** magic + frames + a trailer that matches them (chain, counts), unless trailer is given. */
function imageOf(frames, { trailer, extra = Buffer.alloc(0) } = {}) {
  let chain = 0;
  let pages = 0;
  let pageBytes = 0n;
  for (const f of frames) {
    chain = crc32c(f.subarray(0, 16), chain);
    if (f.readUInt32LE(0) === RecordType.PAGES && f.length >= 32) {
      pages += f.readUInt32LE(16 + 8);
      pageBytes += BigInt(f.length - 32);
    }
  }
  const t = { records: frames.length, pages, pageBytes, chainCrc: chain, ...trailer };
  return Buffer.concat([IMAGE_MAGIC, ...frames, frame(RecordType.TRAILER, encodeRecord(RecordType.TRAILER, t)), extra]);
}

const rec = (type, value) => frame(type, encodeRecord(type, value));
const headerFrame = rec(RecordType.HEADER, HEADER);

/** Encodes a record with some fields re-typed (e.g. looser limits) to produce schema violations. */
function encodeLoose(type, value0, retype) {
  const value = { ...value0 };
  for (const k of ['uids', 'gids', 'groups']) if (Array.isArray(value[k]) && typeof value[k][0] === 'number') value[k] = value[k].map((id) => ({ id }));
  const schema = schemas[type].map(([name, t]) => [name, retype[name] ?? t]);
  const w = new Writer();
  encodeWith(w, schema, value, 'loose');
  return w.finish();
}

/** Splits a valid image (from writeImage) into magic, frames and the trailer frame. */
function splitFrames(bytes) {
  const frames = [];
  let o = IMAGE_MAGIC.length;
  while (o < bytes.length) {
    const len = bytes.readUInt32LE(o + 4);
    frames.push(bytes.subarray(o, o + 16 + len));
    o += 16 + len;
  }
  return { frames: frames.slice(0, -1), trailer: frames.at(-1) };
}

// ---------------------------------------------------------------------------
// CRC-32C: the native implementation against a bitwise reference

function crcRef(buf, seed = 0) {
  let c = ~seed >>> 0;
  for (const x of buf) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c: check value, every length and alignment, chaining', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  const big = pattern(300, 9);
  for (let off = 0; off < 9; off++) {
    for (let len = 0; len <= 70; len++) {
      const b = big.subarray(off, off + len);
      assert.equal(crc32c(b), crcRef(b), `offset ${off} length ${len}`);
    }
  }
  for (let cut = 0; cut <= 300; cut += 13) assert.equal(crc32c(big.subarray(cut), crc32c(big.subarray(0, cut))), crc32c(big));
  assert.equal(crc32c(big, 0xdeadbeef), crcRef(big, 0xdeadbeef));
});

// ---------------------------------------------------------------------------
// round trips

test('every record type round-trips through encodeRecord/decodeRecord', () => {
  for (const [type, value] of [...RECORDS, [RecordType.TRAILER, { records: 3, pages: 2, pageBytes: 8192n, chainCrc: 0xfedcba98 }]]) {
    const back = decodeRecord(type, encodeRecord(type, value));
    assert.deepEqual(back, value, `record type ${type}`);
  }
  // every schema is exercised
  const types = new Set([...RECORDS.map(([t]) => t), RecordType.TRAILER]);
  assert.deepEqual(Object.keys(schemas).map(Number).filter((t) => !types.has(t)), []);
});

test('THREAD record: type 9, field layout, extreme values round-trip', () => {
  assert.equal(RecordType.THREAD, 9);
  const p = encodeRecord(RecordType.THREAD, THREAD);
  // tid i32 | rseqAbi u64 | rseqLen u32 | rseqSig u32 | robustList u64 | robustLen u64 | clearChildTid u64 | comm (u32 length, UTF-8)
  const comm = Buffer.from(THREAD.comm, 'utf8');
  assert.equal(p.length, 4 + 8 + 4 + 4 + 8 + 8 + 8 + 4 + comm.length);
  assert.equal(p.readInt32LE(0), THREAD.tid);
  assert.equal(p.readBigUInt64LE(4), THREAD.rseqAbi);
  assert.equal(p.readUInt32LE(12), THREAD.rseqLen);
  assert.equal(p.readUInt32LE(16), THREAD.rseqSig);
  assert.equal(p.readBigUInt64LE(20), THREAD.robustList);
  assert.equal(p.readBigUInt64LE(28), THREAD.robustLen);
  assert.equal(p.readBigUInt64LE(36), THREAD.clearChildTid);
  assert.equal(p.readUInt32LE(44), comm.length);
  assert.deepEqual(p.subarray(48), comm);
  for (const v of [
    { ...THREAD, tid: 2147483647, rseqSig: 0xffffffff, robustList: 2n ** 64n - 1n, clearChildTid: 2n ** 64n - 1n },
    { tid: 1, rseqAbi: 0n, rseqLen: 0, rseqSig: 0, robustList: 0n, robustLen: 0n, clearChildTid: 0n, comm: '' }, // no rseq, no robust list, no name
    { ...THREAD, rseqAbi: 0x7fffffffffe0n, rseqLen: 4096, comm: '123456789012345' },
  ]) assert.deepEqual(decodeRecord(RecordType.THREAD, encodeRecord(RecordType.THREAD, v)), v);
  assert.throws(() => encodeRecord(RecordType.THREAD, { ...THREAD, comm: '1234567890123456' }), (e) => e.name === 'ImageError' && /comm longer than 15 bytes/.test(e.message));
  assert.throws(() => encodeRecord(RecordType.THREAD, { ...THREAD, robustLen: 24 }), (e) => e.name === 'ImageError' && /robustLen must be a bigint/.test(e.message));
});

test('tree records: types 10-13, field layouts, extreme values round-trip', () => {
  assert.deepEqual([RecordType.PROCESS, RecordType.SHMEM, RecordType.OBJECT_PAGES, RecordType.SHARED_FILE], [10, 11, 12, 13]);
  // PROCESS: pid i32 | ppid i32 | pgid i32 | sid i32 | zombie u8 | exitCode i32 | exitSignal i32 | tids (u32 count, i32 each) | maxFd i32
  const p = encodeRecord(RecordType.PROCESS, PROCESS);
  assert.equal(p.length, 4 * 4 + 1 + 4 + 4 + 4 + 4 * PROCESS.tids.length + 4);
  assert.deepEqual([0, 4, 8, 12].map((o) => p.readInt32LE(o)), [PROCESS.pid, PROCESS.ppid, PROCESS.pgid, PROCESS.sid]);
  assert.equal(p[16], 0);
  assert.equal(p.readInt32LE(17), PROCESS.exitCode);
  assert.equal(p.readInt32LE(21), PROCESS.exitSignal);
  assert.equal(p.readUInt32LE(25), 3);
  assert.deepEqual([29, 33, 37].map((o) => p.readInt32LE(o)), PROCESS.tids);
  assert.equal(p.readInt32LE(41), PROCESS.maxFd);
  const z = encodeRecord(RecordType.PROCESS, ZOMBIE);
  assert.equal(z.length, 4 * 4 + 1 + 4 + 4 + 4 + 4);
  assert.equal(z[16], 1);
  assert.equal(z.readInt32LE(21), 9);
  assert.equal(z.readUInt32LE(25), 0);
  assert.equal(z.readInt32LE(29), -1);
  // SHMEM: id u32 | size u64; OBJECT_PAGES: id u32
  const sh = encodeRecord(RecordType.SHMEM, SHMEM);
  assert.equal(sh.length, 12);
  assert.equal(sh.readUInt32LE(0), SHMEM.id);
  assert.equal(sh.readBigUInt64LE(4), BigInt(SHMEM.size));
  const op = encodeRecord(RecordType.OBJECT_PAGES, OBJECT_PAGES);
  assert.equal(op.length, 4);
  assert.equal(op.readUInt32LE(0), OBJECT_PAGES.id);
  // SHARED_FILE: id u32 | kind u8 | path (u32 length, UTF-8) | flags u32 | pos u64
  const sf = encodeRecord(RecordType.SHARED_FILE, SHARED_FILE);
  const path = Buffer.from(SHARED_FILE.path, 'utf8');
  assert.equal(sf.length, 4 + 1 + 4 + path.length + 4 + 8);
  assert.equal(sf.readUInt32LE(0), SHARED_FILE.id);
  assert.equal(sf[4], SHARED_FILE.kind);
  assert.equal(sf.readUInt32LE(5), path.length);
  assert.deepEqual(sf.subarray(9, 9 + path.length), path);
  assert.equal(sf.readUInt32LE(9 + path.length), SHARED_FILE.flags);
  assert.equal(sf.readBigUInt64LE(13 + path.length), SHARED_FILE.pos);
  // VMA: shmId is the last field, a u32
  const v = encodeRecord(RecordType.VMA, VMA_SHMEM);
  assert.equal(v.readUInt32LE(v.length - 4), VMA_SHMEM.shmId);
  const anon = encodeRecord(RecordType.VMA, VMA_ANON);
  assert.equal(anon.readUInt32LE(anon.length - 4), 0);
  const tids = Array.from({ length: 4097 }, (_, i) => 1000 + i); // a main thread and CRM_MAX_THREADS others
  for (const [type, value] of [
    [RecordType.PROCESS, { ...PROCESS, pid: 1000, ppid: 0, pgid: 2147483647, sid: 2147483647, tids, maxFd: -1 }],
    [RecordType.PROCESS, { ...PROCESS, tids: [4242], maxFd: 0 }],
    [RecordType.PROCESS, { ...ZOMBIE, exitCode: 0, exitSignal: 64 }],
    [RecordType.PROCESS, { ...ZOMBIE, exitCode: 0, exitSignal: 0 }],
    [RecordType.SHMEM, { id: 1, size: 4096 }],
    [RecordType.SHMEM, { id: 0xffffffff, size: 2 ** 53 - 4096 }],
    [RecordType.OBJECT_PAGES, { id: 0 }],
    [RecordType.OBJECT_PAGES, { id: 0xffffffff }],
    [RecordType.SHARED_FILE, { id: 0xffffffff, kind: 3, path: '/', flags: 0xffffffff, pos: 2n ** 64n - 1n }],
    [RecordType.SHARED_FILE, { ...SHARED_FILE, kind: 2, path: '/' + 'd'.repeat(4095) }],
    [RecordType.VMA, { ...VMA_SHMEM, shmId: 1 }],
  ]) assert.deepEqual(decodeRecord(type, encodeRecord(type, value)), value);
  const isImageError = (re) => (e) => e.name === 'ImageError' && re.test(e.message);
  assert.throws(() => encodeRecord(RecordType.PROCESS, { ...PROCESS, tids: [...tids, 99999] }), isImageError(/tids has more than 4097 entries/));
  assert.throws(() => encodeRecord(RecordType.SHARED_FILE, { ...SHARED_FILE, path: '/' + 'd'.repeat(4096) }), isImageError(/path longer than 4096 bytes/));
  assert.throws(() => encodeRecord(RecordType.SHARED_FILE, { ...SHARED_FILE, pos: 0 }), isImageError(/pos must be a bigint/));
  assert.throws(() => encodeRecord(RecordType.VMA, { ...VMA_ANON, shmId: undefined }), isImageError(/vma: field shmId must be an integer/));
  assert.throws(() => encodeRecord(RecordType.SHMEM, { id: 1, size: 4096.5 }), isImageError(/size must be an address/));
});

for (const size of [0, 1, 7]) {
  test(`every record type and PAGES round-trip through ImageWriter/readImage (${size ? `${size}-byte chunks` : 'one chunk'})`, async () => {
    const { bytes, trailer } = await writeImage(RECORDS, [[0x7f0000000000, PAGES_A], [0x7f0000010000, PAGES_B]]);
    assert.ok(bytes.subarray(0, 8).equals(IMAGE_MAGIC));
    const { items, trailer: t } = await readAll(bytes, size);
    assert.equal(items.length, RECORDS.length + 2);
    RECORDS.forEach(([type, value], i) => {
      assert.equal(items[i].type, type);
      assert.deepEqual(items[i].value, value, `record ${i}`);
    });
    const p = items.slice(RECORDS.length);
    assert.equal(p[0].type, RecordType.PAGES);
    assert.equal(p[0].addr, 0x7f0000000000);
    assert.ok(p[0].data.equals(PAGES_A));
    assert.equal(p[1].addr, 0x7f0000010000);
    assert.ok(p[1].data.equals(PAGES_B));
    assert.deepEqual(t, trailer);
    assert.deepEqual(t, { records: RECORDS.length + 2, pages: 3, pageBytes: 3n * 4096n, chainCrc: trailer.chainCrc });
  });
}

test('PAGES record: round trip, precomputed data CRC, interleaved with records', async () => {
  const sink = new MemSink();
  const w = new ImageWriter(sink);
  await w.start();
  await w.record(RecordType.HEADER, HEADER);
  await w.record(RecordType.VMA, VMA_ANON);
  await w.pagesRecord(VMA_ANON.start, PAGES_A, crc32c(PAGES_A));
  await w.record(RecordType.VMA, VMA_SHARED);
  await w.pagesRecord(0x7ffffffee000, PAGES_B); // last page below the user-space limit
  await assert.rejects(w.pagesRecord(0x1001, PAGES_B), /unaligned/);
  await assert.rejects(w.pagesRecord(0x1000, Buffer.alloc(100)), /unaligned/);
  const t = await w.finish();
  assert.deepEqual({ ...t, chainCrc: 0 }, { records: 5, pages: 3, pageBytes: 12288n, chainCrc: 0 });
  for (const size of [0, 1, 7, 4096]) {
    const { items } = await readAll(sink.bytes(), size);
    assert.deepEqual(items.map((x) => x.type), [1, 6, 8, 6, 8]);
    assert.equal(items[2].addr, VMA_ANON.start);
    assert.ok(items[2].data.equals(PAGES_A));
    assert.equal(items[4].addr, 0x7ffffffee000);
    assert.ok(items[4].data.equals(PAGES_B));
  }
  // a wrong precomputed CRC is caught by the reader
  const bad = new MemSink();
  const w2 = new ImageWriter(bad);
  await w2.start();
  await w2.record(RecordType.HEADER, HEADER);
  await w2.pagesRecord(0x10000, PAGES_B, crc32c(PAGES_B) ^ 1);
  await w2.finish();
  await rejects(bad.bytes(), /record 2 \(pages\): checksum mismatch/);
});

test('hand-built frames read like ImageWriter output', async () => {
  const { bytes } = await writeImage(RECORDS, [[0x7f0000000000, PAGES_A]]);
  const hand = imageOf([...RECORDS.map(([t, v]) => rec(t, v)), pagesFrame(0x7f0000000000, PAGES_A)]);
  assert.ok(hand.equals(bytes));
});

// ---------------------------------------------------------------------------
// corruption: framing

const SMALL = () => writeImage([[RecordType.HEADER, HEADER], [RecordType.VMA, VMA_ANON], [RecordType.FD, FD]], [[0x7f0000000000, PAGES_B]]);

test('bad magic', async () => {
  const { bytes } = await SMALL();
  for (const i of [0, 3, 6, 7]) {
    const b = Buffer.from(bytes);
    b[i] ^= 0x20;
    await rejects(b, /not a crmigrate image \(bad magic\)/, `magic byte ${i}`);
  }
  await rejects(Buffer.from('#!/bin/sh\necho hi\n'), /bad magic/);
});

test('empty input', async () => {
  await rejects(Buffer.alloc(0), /image is empty/);
  const it = readImage((async function* () { yield Buffer.alloc(0); yield Buffer.alloc(0); })());
  await assert.rejects(it.next(), (e) => e.name === 'ImageError' && /image is empty/.test(e.message));
  await rejects(IMAGE_MAGIC, /ends after 0 records without a trailer/);
});

test('truncation at every byte offset of a small image is rejected', { timeout: 120000 }, async () => {
  const { bytes } = await SMALL();
  for (let n = 0; n < bytes.length; n++) {
    // the stream split into 7-byte chunks for a third of the offsets, to vary the buffering
    await rejects(bytes.subarray(0, n), /image is empty|truncated/, `truncated to ${n} of ${bytes.length}`, n % 3 === 0 ? 7 : 0);
  }
  await readAll(bytes); // and the whole image is fine
});

test('a flipped byte at every offset of a small image is rejected', { timeout: 240000 }, async () => {
  const { bytes } = await SMALL();
  const accepted = [];
  const wrongError = [];
  for (const mask of [0x01, 0x80, 0xff]) {
    for (let i = 0; i < bytes.length; i++) {
      const b = Buffer.from(bytes);
      b[i] ^= mask;
      try {
        await readAll(b);
        accepted.push(`offset ${i} ^ 0x${mask.toString(16)}`);
      } catch (e) {
        if (e.name !== 'ImageError' || !e.message) wrongError.push(`offset ${i} ^ 0x${mask.toString(16)}: ${e.name}: ${e.message}`);
      }
    }
  }
  assert.deepEqual(wrongError, [], 'every corruption must be an ImageError');
  // every byte (magic, frame headers, payloads, page data, trailer) is covered
  // by the magic check, a payload CRC, the reserved-zero check or the chain CRC
  assert.deepEqual(accepted, [], 'bytes not covered by any check');
});

test('the trailer frame header (outside every CRC) rejects every other value of each byte', { timeout: 120000 }, async () => {
  // The chain CRC covers the frame headers before the trailer and each payload
  // CRC its payload; the trailer's own frame header is covered by no checksum,
  // only by the type/length/reserved checks. Make sure they leave no hole.
  const { bytes } = await SMALL();
  const { trailer } = splitFrames(bytes);
  const at = bytes.length - trailer.length;
  const accepted = [];
  for (let i = at; i < at + 16; i++) {
    for (let v = 0; v < 256; v++) {
      if (v === bytes[i]) continue;
      const b = Buffer.from(bytes);
      b[i] = v;
      try {
        await readAll(b);
        accepted.push(`byte ${i - at} = ${v}`);
      } catch (e) {
        assert.equal(e.name, 'ImageError', `byte ${i - at} = ${v}: ${e.message}`);
      }
    }
  }
  assert.deepEqual(accepted, []);
});

test('frame length field set to 0xffffffff (and just over the limits)', async () => {
  const { bytes } = await SMALL();
  const { frames, trailer } = splitFrames(bytes);
  for (const k of [0, 1, 3, 4]) {
    const all = [...frames, trailer];
    const b = Buffer.concat([IMAGE_MAGIC, ...all]);
    const at = IMAGE_MAGIC.length + all.slice(0, k).reduce((s, f) => s + f.length, 0);
    b.writeUInt32LE(0xffffffff, at + 4);
    await rejects(b, /length 4294967295 exceeds the limit/, `frame ${k}`);
  }
  await rejects(imageOf([headerFrame, frame(RecordType.VMA, Buffer.alloc(0), { len: (16 << 20) + 1 })]), /length 16777217 exceeds the limit of 16777216/);
  await rejects(imageOf([headerFrame, frame(RecordType.PAGES, Buffer.alloc(0), { len: (64 << 20) + 17 })]), /exceeds the limit of 67108880/);
});

test('reserved frame field not zero', async () => {
  await rejects(imageOf([frame(RecordType.HEADER, encodeRecord(RecordType.HEADER, HEADER), { reserved: 1 })]), /record 1 \(header\): reserved frame field is not zero/);
});

test('checksum mismatch in a record payload', async () => {
  const p = encodeRecord(RecordType.HEADER, HEADER);
  await rejects(imageOf([frame(RecordType.HEADER, p, { crc: (crc32c(p) ^ 0x100) >>> 0 })]), /record 1 \(header\): checksum mismatch/);
});

test('a dropped record is caught by the trailer', async () => {
  const { bytes } = await writeImage(RECORDS, [[0x7f0000000000, PAGES_A]]);
  const { frames, trailer } = splitFrames(bytes);
  for (let k = 1; k < frames.length; k++) {
    const b = Buffer.concat([IMAGE_MAGIC, ...frames.filter((_, i) => i !== k), trailer]);
    await rejects(b, /image trailer does not match its content .*records missing or reordered/, `record ${k} dropped`);
  }
  // the header itself dropped
  await rejects(Buffer.concat([IMAGE_MAGIC, ...frames.slice(1), trailer]), /does not start with a header record/);
  // a record duplicated
  await rejects(Buffer.concat([IMAGE_MAGIC, ...frames, frames[5], trailer]), /trailer does not match/);
});

test('two records swapped are caught by the chained CRC', async () => {
  const { bytes } = await writeImage(RECORDS, [[0x7f0000000000, PAGES_A], [0x7f0000010000, PAGES_B]]);
  const { frames, trailer } = splitFrames(bytes);
  // every pair of neighbours after the header, the last record and the first PAGES included
  assert.equal(frames.length, RECORDS.length + 2);
  for (let a = 1; a + 1 < frames.length; a++) {
    const b = a + 1;
    const f = [...frames];
    [f[a], f[b]] = [f[b], f[a]];
    await rejects(Buffer.concat([IMAGE_MAGIC, ...f, trailer]), /trailer does not match its content/, `records ${a} and ${b} swapped`);
  }
});

test('data after the trailer', async () => {
  const { bytes } = await SMALL();
  for (const extra of [Buffer.from([0]), IMAGE_MAGIC, bytes]) {
    for (const size of [0, 1, 7]) await rejects(Buffer.concat([bytes, extra]), /data after its trailer/, `extra ${extra.length}`, size);
  }
});

test('a second header record', async () => {
  await rejects(imageOf([headerFrame, rec(RecordType.VMA, VMA_ANON), headerFrame]), /record 3 \(header\): a second header/);
});

test('an unknown record type', async () => {
  for (const type of [0, 18, 77, 254, 0x100, 0xffffffff]) {
    const p = Buffer.from('0123456789abcdef');
    await rejects(imageOf([headerFrame, frame(type, p)]), new RegExp(`unknown record type ${type}\\b`), `type ${type}`);
  }
  // 9 is THREAD now: those 16 bytes are a short THREAD record, not an unknown one
  await rejects(imageOf([headerFrame, frame(RecordType.THREAD, Buffer.from('0123456789abcdef'))]), /thread: field rseqSig runs past the end of the record/);
  // and 10 to 13 are the tree's records (PROCESS, SHMEM, OBJECT_PAGES, SHARED_FILE)
  const p16 = Buffer.from('0123456789abcdef');
  await rejects(imageOf([headerFrame, frame(RecordType.PROCESS, p16)]), /process: field zombie runs past the end of the record/);
  await rejects(imageOf([headerFrame, frame(RecordType.SHMEM, p16)]), /shmem: field size is not a user-space address/);
  await rejects(imageOf([headerFrame, frame(RecordType.OBJECT_PAGES, p16)]), /object_pages: 12 unexpected trailing bytes/);
  await rejects(imageOf([headerFrame, frame(RecordType.SHARED_FILE, p16)]), /shared_file: field path length 943142453 exceeds 4096/);
  await rejects(imageOf([frame(77, Buffer.from('x'))]), /does not start with a header record/);
  await rejects(imageOf([rec(RecordType.THREAD, THREAD)]), /does not start with a header record/);
  await rejects(imageOf([pagesFrame(0x10000, PAGES_B)]), /does not start with a header record/);
});

const EMPTY_PAYLOAD = /unknown record type 77|vma: field start runs past the end|thread: field tid runs past the end/;

test('a zero-length record payload in the middle of a one-chunk stream', async () => {
  for (const type of [77, RecordType.VMA, RecordType.THREAD]) {
    await rejects(imageOf([headerFrame, frame(type, Buffer.alloc(0))]), EMPTY_PAYLOAD, `type ${type}`);
  }
});

test('a zero-length record payload is an ImageError however the stream is chunked', async () => {
  // e.g. a corrupted length field; the reader must not crash on the empty read
  for (const size of [0, 1, 7]) {
    for (const type of [77, RecordType.VMA, RecordType.THREAD]) {
      const img = Buffer.concat([IMAGE_MAGIC, headerFrame, frame(type, Buffer.alloc(0))]);
      await rejects(img, EMPTY_PAYLOAD, `type ${type}, ${size}-byte chunks, at the end`, size);
      await rejects(imageOf([headerFrame, frame(type, Buffer.alloc(0))]), EMPTY_PAYLOAD, `type ${type}, ${size}-byte chunks`, size);
    }
  }
});

test('PAGES records with bad prefixes (correct CRCs)', async () => {
  const h = headerFrame;
  await rejects(imageOf([h, pagesFrame(0x10000, PAGES_B, { count: 2 })]), /page count does not match its length/);
  await rejects(imageOf([h, pagesFrame(0x10000, PAGES_B, { count: 0 })]), /page count does not match its length/);
  await rejects(imageOf([h, pagesFrame(0x10000, PAGES_B, { prefixPad: 1 })]), /page count does not match its length/);
  await rejects(imageOf([h, pagesFrame(0x10001, PAGES_B)]), /bad page address 0x10001/);
  await rejects(imageOf([h, pagesFrame(0x7ffffffff000, PAGES_B)]), /bad page address 0x7ffffffff000/);
  await rejects(imageOf([h, pagesFrame(0xfffffffffffff000n, PAGES_B)]), /bad page address/);
  // length not whole pages (the prefix alone, and a page and a half)
  const prefix = Buffer.alloc(16);
  prefix.writeBigUInt64LE(0x10000n);
  await rejects(imageOf([h, frame(RecordType.PAGES, prefix, { crc: crc32c(prefix, 0) })]), /is not whole pages/);
  const half = Buffer.concat([prefix, Buffer.alloc(PAGE + 2048)]);
  await rejects(imageOf([h, frame(RecordType.PAGES, half)]), /is not whole pages/);
  // a valid pages record whose data was changed
  const good = pagesFrame(0x10000, PAGES_B);
  good[good.length - 1] ^= 1;
  await rejects(imageOf([h, good]), /checksum mismatch/);
});

test('trailer with wrong counts', async () => {
  const frames = [headerFrame, pagesFrame(0x10000, PAGES_B)];
  await rejects(imageOf(frames, { trailer: { records: 3 } }), /records 2\/3/);
  await rejects(imageOf(frames, { trailer: { pages: 2 } }), /pages 1\/2/);
  await rejects(imageOf(frames, { trailer: { pageBytes: 8192n } }), /trailer does not match/);
  await rejects(imageOf(frames, { trailer: { chainCrc: 1 } }), /trailer does not match/);
  await readAll(imageOf(frames));
});

// ---------------------------------------------------------------------------
// schema violations (structurally wrong payloads with correct CRCs)

const loose = (type, value, retype) => imageOf(type === RecordType.HEADER ? [frame(type, encodeLoose(type, value, retype))] : [headerFrame, frame(type, encodeLoose(type, value, retype))]);

test('schema: string longer than its limit', async () => {
  await rejects(loose(RecordType.HEADER, { ...HEADER, toolVersion: 'v'.repeat(65) }, { toolVersion: { str: 1 << 20 } }), /header: field toolVersion length 65 exceeds 64/);
  await rejects(loose(RecordType.TASK, { ...TASK, comm: 'sixteen-chars-xx' }, { comm: { str: 99 } }), /task: field comm length 16 exceeds 15/);
  await rejects(loose(RecordType.FD, { ...FD, path: '/' + 'a'.repeat(4096) }, { path: { str: 1 << 20 } }), /fd: field path length 4097 exceeds 4096/);
  // a huge length must not be trusted (no allocation, no read past the record)
  const p = encodeRecord(RecordType.VMA, VMA_ANON);
  p.writeUInt32LE(0xfffffff0, 8 + 8 + 1 + 1 + 4 + 8);
  await rejects(imageOf([headerFrame, frame(RecordType.VMA, p)]), /vma: field path length 4294967280 exceeds 4096/);
  // within the limit, but past the end of the record
  const q = encodeRecord(RecordType.VMA, VMA_ANON);
  q.writeUInt32LE(4000, 8 + 8 + 1 + 1 + 4 + 8);
  await rejects(imageOf([headerFrame, frame(RecordType.VMA, q)]), /vma: field path runs past the end of the record/);
});

test('schema: list count larger than its limit', async () => {
  await rejects(loose(RecordType.TASK, { ...TASK, uids: [1, 2, 3, 4, 5].map((id) => ({ id })), gids: TASK.gids.map((id) => ({ id })) },
    { uids: { list: [['id', 'u32']], max: 99 }, gids: { list: [['id', 'u32']], max: 99 } }), /task: field uids count 5 exceeds 4/);
  const it = TIMERS.itimers[0];
  await rejects(loose(RecordType.TIMERS, { itimers: [it, it, it, it] }, { itimers: { list: schemas[RecordType.TIMERS][0][1].list, max: 99 } }),
    /timers: field itimers count 4 exceeds 3/);
  // a huge count with no data behind it
  const p = Buffer.alloc(4);
  p.writeUInt32LE(0xffffffff);
  await rejects(imageOf([headerFrame, frame(RecordType.TIMERS, p)]), /count 4294967295 exceeds 3/);
  const s = Buffer.from(encodeRecord(RecordType.SIGNALS, { ...SIGNALS, actions: [], pending: [] }).subarray(0, 20));
  s.writeUInt32LE(65536, 4 + 8 + 4); // pending count within the limit, entries missing
  await rejects(imageOf([headerFrame, frame(RecordType.SIGNALS, s)]), /signals: field shared runs past the end of the record/);
});

test('schema: string that is not UTF-8', async () => {
  const bad = (hex) => Buffer.concat([Buffer.from('/tmp/'), Buffer.from(hex, 'hex')]);
  for (const hex of ['ff', 'c0af', 'eda080', 'e282', 'fe']) {
    await rejects(loose(RecordType.FD, { ...FD, path: bad(hex) }, { path: { bytes: 4096 } }), /fd: field path is not valid UTF-8/, `bytes ${hex}`);
  }
  await rejects(loose(RecordType.HEADER, { ...HEADER, hostname: Buffer.from('ab\xffcd', 'latin1') }, { hostname: { bytes: 256 } }), /hostname is not valid UTF-8/);
});

test('schema: string that is not UTF-8 (truncated 4-byte sequence)', async () => {
  for (const hex of ['f09f98', 'f09f98f09f98', 'f48fbf']) {
    const path = Buffer.concat([Buffer.from('/tmp/'), Buffer.from(hex, 'hex')]);
    await rejects(loose(RecordType.FD, { ...FD, path }, { path: { bytes: 4096 } }), /not valid UTF-8/, `bytes ${hex}`);
  }
});

test('schema: boolean byte that is not 0 or 1', async () => {
  for (const v of [2, 0xff]) {
    await rejects(loose(RecordType.FD, { ...FD, cloexec: v }, { cloexec: 'u8' }), new RegExp(`fd: field cloexec is not a boolean \\(${v}\\)`));
    await rejects(loose(RecordType.REGS, { ...REGS, inSyscall: v }, { inSyscall: 'u8' }), /regs: field inSyscall is not a boolean/);
    await rejects(loose(RecordType.SIGNALS, { ...SIGNALS, pending: [{ shared: v, info: siginfo(10, 1) }] },
      { pending: { list: [['shared', 'u8'], ['info', { bytes: 128 }]], max: 65536 } }), /signals.pending\[0\]: field shared is not a boolean/);
  }
});

test('schema: address at or above 2^53', async () => {
  for (const v of [2n ** 53n, 2n ** 64n - 1n, 0x8000000000000000n]) {
    await rejects(loose(RecordType.VMA, { ...VMA_ANON, end: v }, { end: 'u64' }), /vma: field end is not a user-space address \(0x/);
    await rejects(loose(RecordType.TASK, { ...TASK, uids: TASK.uids.map((id) => ({ id })), gids: TASK.gids.map((id) => ({ id })), brk: v }, { brk: 'u64' }),
      /task: field brk is not a user-space address/);
  }
  // the encoder refuses them too
  assert.throws(() => encodeRecord(RecordType.VMA, { ...VMA_ANON, start: 2 ** 53 }), (e) => e.name === 'ImageError' && /must be an address/.test(e.message));
});

test('schema: trailing bytes and short records', async () => {
  const p = encodeRecord(RecordType.FD, FD);
  await rejects(imageOf([headerFrame, frame(RecordType.FD, Buffer.concat([p, Buffer.from([0])]))]), /fd: 1 unexpected trailing bytes/);
  await rejects(imageOf([headerFrame, frame(RecordType.FD, p.subarray(0, p.length - 1))]), /fd: field mtimeNs runs past the end/);
});

test('schema: encoder limits', () => {
  const isImageError = (re) => (e) => e.name === 'ImageError' && re.test(e.message);
  assert.throws(() => encodeRecord(RecordType.TASK, { ...TASK, comm: 'x'.repeat(16) }), isImageError(/comm longer than 15 bytes/));
  assert.throws(() => encodeRecord(RecordType.TASK, { ...TASK, uids: [1, 2, 3, 4, 5] }), isImageError(/uids has more than 4 entries/));
  assert.throws(() => encodeRecord(RecordType.REGS, { ...REGS, gp: Buffer.alloc(217) }), isImageError(/gp longer than 216 bytes/));
  assert.throws(() => encodeRecord(RecordType.FD, { ...FD, fd: 1.5 }), isImageError(/fd must be an integer/));
  assert.throws(() => encodeRecord(RecordType.FD, { ...FD, pos: 1 }), isImageError(/pos must be a bigint/));
});

// ---------------------------------------------------------------------------
// semantic violations (schema-valid records that mean nothing sensible)

const sem = (type, value) => imageOf(type === RecordType.HEADER ? [rec(type, value)] : [headerFrame, rec(type, value)]);

test('semantic: VMA with start >= end, unaligned, beyond user space, unknown kind, bad prot, relative path', async () => {
  await rejects(sem(RecordType.INHERITED, { ranges: [{ start: 0x7f0000000800, len: 0x1000 }] }), /inherited pages at 7f0000000800 .* misaligned/);
  await rejects(sem(RecordType.INHERITED, { ranges: [{ start: 0x7f0000000000, len: 0 }] }), /inherited pages/);
  await rejects(sem(RecordType.INHERITED, { ranges: [{ start: 0x7f0000000000, len: 0x1800 }] }), /inherited pages/);
  await rejects(sem(RecordType.INHERITED, { ranges: [{ start: 0x7f0000002000, len: 0x1000 }, { start: 0x7f0000001000, len: 0x2000 }] }), /inherited pages at 7f0000001000 .* unsorted/);
  await rejects(sem(RecordType.INHERITED, { ranges: [{ start: 0x7ffffffff000, len: 0x2000 }] }), /out of range/);
  await rejects(sem(RecordType.PRECOPY_USE, { ranges: [{ start: 0x7f0000002000, len: 0x1000 }, { start: 0x7f0000001000, len: 0x2000 }] }), /pre-copied pages at 7f0000001000 .* unsorted/);
  await rejects(sem(RecordType.PRECOPY, { pid: 0 }), /pre-copy record has an invalid pid 0/);
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, end: VMA_ANON.start }), /mapping 7f0000000000-7f0000000000 has a bad range/);
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, start: 0x7f0000005000 }), /mapping 7f0000005000-7f0000004000 has a bad range/);
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, start: 0x7f0000000800 }), /has a bad range/);
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, end: 0x7f0000004001 }), /has a bad range/);
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, start: 0x7ffffffff000, end: 0x800000000000 }), /has a bad range/);
  for (const kind of [0, 7, 255]) await rejects(sem(RecordType.VMA, { ...VMA_ANON, kind }), new RegExp(`mapping at 7f0000000000 has unknown kind ${kind}`));
  await rejects(sem(RecordType.VMA, { ...VMA_ANON, prot: 8 }), /has bad protection 8/);
  await rejects(sem(RecordType.VMA, { ...VMA_FILE, path: 'usr/lib/x.so' }), /file mapping at 400000 has no absolute path/);
  await rejects(sem(RecordType.VMA, { ...VMA_SHARED, path: '' }), /has no absolute path/);
});

test('semantic: VMA shared memory id set exactly for ANON_SHARED', async () => {
  await rejects(sem(RecordType.VMA, { ...VMA_SHMEM, shmId: 0 }), /^mapping at 7f0000020000 has a bad shared memory id$/);
  for (const v of [VMA_ANON, VMA_FILE, VMA_SHARED]) {
    for (const shmId of [1, 0xffffffff]) {
      await rejects(sem(RecordType.VMA, { ...v, shmId }), new RegExp(`^mapping at ${v.start.toString(16)} has a bad shared memory id$`), `kind ${v.kind} shmId ${shmId}`);
    }
  }
  for (const kind of [5, 6]) await rejects(sem(RecordType.VMA, { ...VMA_ANON, kind, path: '[vdso]', shmId: 3 }), /has a bad shared memory id/, `kind ${kind}`);
  for (const shmId of [1, 0xffffffff]) {
    const { items } = await readAll(sem(RecordType.VMA, { ...VMA_SHMEM, shmId }));
    assert.deepEqual(items[1].value, { ...VMA_SHMEM, shmId });
  }
});

test('semantic: PROCESS with invalid ids, zombie with threads or a bad status, live process without its main thread first', async () => {
  const P = (o) => sem(RecordType.PROCESS, { ...PROCESS, ...o });
  const Z = (o) => sem(RecordType.PROCESS, { ...ZOMBIE, ...o });
  for (const o of [{ pid: 0 }, { pid: -1 }, { ppid: -1 }, { pgid: 0 }, { pgid: -4242 }, { sid: 0 }, { sid: -2147483648 }]) {
    const pid = o.pid ?? PROCESS.pid;
    await rejects(P({ ...o, tids: [pid] }), new RegExp(`^process record ${pid} has invalid ids$`), JSON.stringify(o));
  }
  await rejects(Z({ sid: 0 }), /^process record 4250 has invalid ids$/);
  await rejects(Z({ tids: [4250] }), /^zombie 4250 has threads$/);
  await rejects(Z({ tids: [4250, 4251] }), /^zombie 4250 has threads$/);
  for (const o of [{ exitCode: -1 }, { exitCode: 256 }, { exitSignal: -1 }, { exitSignal: 65 }, { exitCode: 2147483647 }]) {
    await rejects(Z(o), /^zombie 4250 has an invalid exit status$/, JSON.stringify(o));
  }
  await rejects(P({ tids: [] }), /^process 4242 does not list its main thread first$/);
  await rejects(P({ tids: [4243, 4242] }), /^process 4242 does not list its main thread first$/);
  await rejects(P({ tids: [4243] }), /^process 4242 does not list its main thread first$/);
  for (const tids of [[4242, 4243, 4243], [4242, 4242], [4242, 0], [4242, -4243]]) {
    await rejects(P({ tids }), /^process 4242 has invalid thread ids$/, JSON.stringify(tids));
  }
  for (const maxFd of [-2, 1 << 20, -2147483648]) await rejects(P({ maxFd }), /^process 4242 has an invalid descriptor range$/, `maxFd ${maxFd}`);
  // accepted: a root whose parent is outside the PID namespace (ppid 0), no descriptors, a zombie's ignored fields
  for (const o of [{ ppid: 0 }, { maxFd: -1 }, { maxFd: (1 << 20) - 1 }, { exitCode: 7, exitSignal: 15 }]) {
    const { items } = await readAll(P(o));
    assert.deepEqual(items[1].value, { ...PROCESS, ...o });
  }
  for (const o of [{ maxFd: 5 }, { maxFd: -77 }, { exitCode: 255, exitSignal: 64 }]) {
    const { items } = await readAll(Z(o));
    assert.deepEqual(items[1].value, { ...ZOMBIE, ...o });
  }
});

test('semantic: SHMEM with id 0 or a size that is zero or not whole pages; SHARED_FILE with id 0, a bad kind or a relative path', async () => {
  await rejects(sem(RecordType.SHMEM, { id: 0, size: 4096 }), /^shared memory 0 has an invalid size$/);
  for (const size of [0, 1, 4095, 4097, 0x200800]) await rejects(sem(RecordType.SHMEM, { id: 5, size }), /^shared memory 5 has an invalid size$/, `size ${size}`);
  const F = (o) => sem(RecordType.SHARED_FILE, { ...SHARED_FILE, ...o });
  await rejects(F({ id: 0 }), /^shared file 0 is invalid$/);
  for (const kind of [0, 4, 255]) await rejects(F({ kind }), /^shared file 7 is invalid$/, `kind ${kind}`);
  for (const path of ['', 'var/log/app.log', './x']) await rejects(F({ path }), /^shared file 7 is invalid$/, `path ${JSON.stringify(path)}`);
  // OBJECT_PAGES has nothing to check on its own (its id is checked against the SHMEM records by readSections)
  for (const id of [0, 1, 0xffffffff]) {
    const { items } = await readAll(sem(RecordType.OBJECT_PAGES, { id }));
    assert.deepEqual(items[1].value, { id });
  }
});

test('semantic: FD with negative or huge number, unknown kind, relative path', async () => {
  for (const fd of [-1, -2147483648]) await rejects(sem(RecordType.FD, { ...FD, fd }), new RegExp(`descriptor number ${fd} out of range`));
  await rejects(sem(RecordType.FD, { ...FD, fd: 1 << 20 }), /descriptor number 1048576 out of range/);
  for (const kind of [0, 4]) await rejects(sem(RecordType.FD, { ...FD, kind }), new RegExp(`descriptor 3 has unknown kind ${kind}`));
  await rejects(sem(RecordType.FD, { ...FD, path: 'relative' }), /descriptor 3 has no absolute path/);
});

test('semantic: pending signal with signo 0 or > 64, bad sigactions', async () => {
  for (const signo of [0, 65, -1]) {
    await rejects(sem(RecordType.SIGNALS, { ...SIGNALS, pending: [{ shared: true, info: siginfo(signo, 1) }] }), new RegExp(`pending signal has invalid number ${signo}`));
  }
  await rejects(sem(RecordType.SIGNALS, { ...SIGNALS, pending: [{ shared: true, info: Buffer.alloc(127, 1) }] }), /siginfo must be 128 bytes/);
  for (const sig of [0, 9, 19, 65]) {
    await rejects(sem(RecordType.SIGNALS, { ...SIGNALS, actions: [{ ...SIGNALS.actions[0], sig }] }), new RegExp(`signal action for invalid signal ${sig}`));
  }
});

test('semantic: header with the wrong arch, version, page size or xsave size', async () => {
  await rejects(sem(RecordType.HEADER, { ...HEADER, arch: 'aarch64' }), /image is for aarch64, not x86_64/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, arch: '' }), /image is for , not x86_64/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, imageVersion: 3 }), /image version 3 is not supported/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, imageVersion: 2 }), /image version 2 is not supported/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, pageSize: 16384 }), /page size 16384 is not 4096/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, xsaveSize: 512 }), /invalid xsave size/);
  await rejects(sem(RecordType.HEADER, { ...HEADER, xsaveSize: 65537 }), /invalid xsave size/);
});

test('semantic: task, registers and timers', async () => {
  const T = (o) => sem(RecordType.TASK, { ...TASK, ...o });
  await rejects(T({ pid: 0 }), /invalid pid 0/);
  await rejects(T({ tid: -5 }), /invalid pid/);
  await rejects(T({ startCode: 0x402000 }), /task 4242 has inconsistent memory layout fields/);
  await rejects(T({ brk: 0x100 }), /inconsistent memory layout/);
  await rejects(T({ auxv: Buffer.alloc(24) }), /auxv is not a list of pairs/);
  await rejects(T({ rseqLen: 16 }), /invalid rseq registration/);
  await rejects(T({ rseqAbi: 0x7f0000001010n }), /invalid rseq registration/);
  await rejects(T({ uids: [1, 2, 3] }), /credentials incomplete/);
  for (const o of [{ dumpable: 3 }, { dumpable: 255 }, { capEff: 0x100n }, { capEff: 0x3000n | (1n << 63n) }, { capAmb: 0x800n }, { capAmb: 0x100n }, { capInh: 0n }]) {
    await rejects(T(o), /^task 4242 has inconsistent capabilities$/, JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
  assert.throws(() => encodeRecord(RecordType.TASK, { ...TASK, groups: Array.from({ length: 65 }, (_, i) => i) }), (e) => e.name === 'ImageError' && /groups has more than 64 entries/.test(e.message));
  // accepted: no capabilities at all, all of them, no groups, 64 groups, not dumpable
  for (const o of [{ capInh: 0n, capPrm: 0n, capEff: 0n, capBnd: 0n, capAmb: 0n }, { capInh: 2n ** 64n - 1n, capPrm: 2n ** 64n - 1n, capEff: 2n ** 64n - 1n, capAmb: 2n ** 64n - 1n },
    { groups: [] }, { groups: Array.from({ length: 64 }, (_, i) => 0xffffffff - i) }, { dumpable: 0, noNewPrivs: false, securebits: 0 }]) {
    const { items } = await readAll(T(o));
    assert.deepEqual(items[1].value, { ...TASK, ...o });
  }
  await rejects(sem(RecordType.REGS, { ...REGS, gp: Buffer.alloc(200) }), /general-purpose block is 200 bytes, expected 216/);
  await rejects(sem(RecordType.REGS, { ...REGS, xsave: Buffer.alloc(575) }), /FPU state too short/);
  await rejects(sem(RecordType.TIMERS, { itimers: [{ ...TIMERS.itimers[0], which: 3 }] }), /itimer 3 unknown/);
  await rejects(sem(RecordType.TIMERS, { itimers: [{ ...TIMERS.itimers[0], intervalUsec: 1000000n }] }), /microseconds out of range/);
  await rejects(sem(RecordType.TIMERS, { itimers: [{ ...TIMERS.itimers[0], valueUsec: 1000000n }] }), /microseconds out of range/);
});

test('semantic: THREAD with an invalid tid or rseq registration', async () => {
  const T = (o) => sem(RecordType.THREAD, { ...THREAD, ...o });
  for (const tid of [0, -1, -2147483648]) await rejects(T({ tid }), new RegExp(`^thread record has an invalid tid ${tid}$`));
  for (const rseqLen of [1, 16, 31]) await rejects(T({ rseqLen }), /thread 4242 has an invalid rseq registration/, `rseqLen ${rseqLen}`);
  for (const rseqAbi of [0x7f0000001010n, 0x7f0000001021n, 1n]) await rejects(T({ rseqAbi }), /thread 4242 has an invalid rseq registration/, `rseqAbi ${rseqAbi}`);
  await rejects(T({ rseqLen: 4128 }), /thread 4242 has an invalid rseq registration/, 'rseqLen 4128');
  for (const robustLen of [1n, 23n, 25n, 2n ** 64n - 1n]) await rejects(T({ robustLen }), /thread 4242 has an invalid robust list length/, `robustLen ${robustLen}`);
  await rejects(T({ comm: 'a\0b' }), /thread 4242 has an invalid name/);
  // accepted: no rseq at all (whatever the pointer), the smallest registration, no robust list
  for (const o of [{ rseqLen: 0, rseqAbi: 0x7f0000001011n }, { rseqLen: 32 }, { robustList: 0n, robustLen: 0n, clearChildTid: 0n }]) {
    const { items } = await readAll(T(o));
    assert.deepEqual(items[1].value, { ...THREAD, ...o });
  }
});

test('a corrupted record stops the reader before anything after it is yielded', async () => {
  const { bytes } = await SMALL();
  const { frames, trailer } = splitFrames(bytes);
  const f = Buffer.from(frames[1]);
  f[f.length - 1] ^= 1;
  const it = readImage(chunked(Buffer.concat([IMAGE_MAGIC, frames[0], f, ...frames.slice(2), trailer]), 0));
  const first = await it.next();
  assert.equal(first.value.type, RecordType.HEADER);
  await assert.rejects(it.next(), (e) => e.name === 'ImageError' && /record 2 \(vma\): checksum mismatch/.test(e.message));
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});
