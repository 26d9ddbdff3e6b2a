// The hot path of page data: CRC-32C on long buffers (folded and 3-way
// paths), the image reader over sources that reuse their buffers and over a
// mapped file, read jobs of the dump, and the restorer's input pipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../dist/native/addon.js';
import { IMAGE_MAGIC, IMAGE_VERSION, RecordType } from '../../dist/image/records.js';
import { ImageWriter, readImage, recyclingSource, withTransientPages } from '../../dist/image/stream.js';
import { ImageFileSink, openImageSource, prepareImageDir, IMAGE_FILE } from '../../dist/image/files.js';
import { planJobs } from '../../dist/resources/page-pump.js';
import { RestorerInput } from '../../dist/restore/feed.js';
import { PageStaging } from '../../dist/restore/staging.js';

const PAGE = 4096;

function crcRef(b, seed = 0) {
  let c = ~seed >>> 0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

/** Deterministic pseudo-random bytes. */
function bytes(n, seed) {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

test('crc32c on long buffers: every path agrees with the bitwise definition', () => {
  const big = bytes(200000, 3);
  // around the thresholds of the folded (256, 128-byte steps) and 3-way (768, 24576) loops
  const lens = [255, 256, 257, 271, 383, 384, 767, 768, 769, 1000, 4095, 4096, 4097, 24575, 24576, 24577, 65536, 100003, 199990];
  for (const len of lens) {
    for (const off of [0, 1, 7, 8, 13]) {
      const b = big.subarray(off, off + len);
      assert.equal(native.crc32c(b), crcRef(b), `length ${len} offset ${off}`);
    }
  }
  // chained in pieces of every kind of size, with a seed
  const b = big.subarray(5, 150005);
  for (const cut of [1, 100, 255, 256, 4096, 70000, 149999]) {
    assert.equal(native.crc32c(b.subarray(cut), native.crc32c(b.subarray(0, cut), 0x12345678)), crcRef(b, 0x12345678), `cut ${cut}`);
  }
});

const HEADER = {
  imageVersion: IMAGE_VERSION, toolVersion: '0.1.0', arch: 'x86_64', kernel: '6.1.0', hostname: 'h',
  pageSize: 4096, xsaveSize: 832, xcr0: 0x2e7n, createdMs: 1n, rootPid: 42,
};
// page records of several sizes, some larger than the chunks the tests use
const PAGES = [
  [0x7f0000000000, bytes(PAGE, 1)],
  [0x7f0000100000, bytes(5 * PAGE, 2)],
  [0x7f0000200000, bytes(64 * PAGE, 3)],
  [0x7f0000400000, bytes(3 * PAGE, 4)],
  [0x7f0000500000, bytes(300 * PAGE, 5)],
];

async function imageBytes() {
  const chunks = [];
  const w = new ImageWriter({ write: async (b) => { chunks.push(Buffer.from(b)); } });
  await w.start();
  await w.record(RecordType.HEADER, HEADER);
  for (const [addr, data] of PAGES) await w.pagesRecord(addr, data);
  await w.finish();
  return Buffer.concat(chunks);
}

/** A source that copies the image into `ring` reused buffers of `size` bytes
 * and poisons a buffer as soon as it is taken back (as a file reader would). */
function ringSource(image, size, ring) {
  const bufs = Array.from({ length: ring }, () => Buffer.alloc(size));
  return recyclingSource({
    async *[Symbol.asyncIterator]() {
      let k = 0;
      for (let off = 0; off < image.length; off += size, k++) {
        const b = bufs[k % ring];
        b.fill(0xee);
        const n = image.copy(b, 0, off, Math.min(image.length, off + size));
        yield b.subarray(0, n);
        // the buffer after next is refilled: poison it now
        bufs[(k + 2) % ring].fill(0xdd);
      }
    },
  });
}

for (const size of [7, 4099, 16384, 65536, 1 << 20]) {
  test(`readImage over a source that reuses 3 buffers of ${size} bytes: kept data and transient data`, async () => {
    const image = await imageBytes();
    // kept: every PAGES item is the consumer's own
    const kept = [];
    for await (const it of readImage(ringSource(image, size, 3))) if (it.type === RecordType.PAGES) kept.push(it);
    assert.equal(kept.length, PAGES.length);
    kept.forEach((it, i) => {
      assert.equal(it.addr, PAGES[i][0]);
      assert.ok(it.data.equals(PAGES[i][1]), `record ${i} kept`);
    });
    // transient: valid until the reader is resumed
    let n = 0;
    for await (const it of readImage(withTransientPages(ringSource(image, size, 3)))) {
      if (it.type !== RecordType.PAGES) continue;
      assert.equal(it.addr, PAGES[n][0]);
      assert.ok(it.data.equals(PAGES[n][1]), `record ${n} transient`);
      n++;
    }
    assert.equal(n, PAGES.length);
  });
}

test('readImage over a mapped image file: same records; truncation and corruption are image errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-page-path-'));
  try {
    await prepareImageDir(dir);
    const image = await imageBytes();
    const sink = await ImageFileSink.create(dir);
    await sink.write(image);
    await sink.commit();
    assert.ok(readFileSync(join(dir, IMAGE_FILE)).equals(image));
    for (const transient of [false, true]) {
      const src = await openImageSource(dir);
      const got = [];
      for await (const it of readImage(transient ? withTransientPages(src) : src)) {
        if (it.type === RecordType.PAGES) got.push([it.addr, transient ? Buffer.from(it.data) : it.data]);
      }
      assert.equal(got.length, PAGES.length);
      got.forEach(([addr, data], i) => {
        assert.equal(addr, PAGES[i][0]);
        assert.ok(data.equals(PAGES[i][1]), `record ${i}`);
      });
    }
    const readAll = async () => {
      for await (const _ of readImage(withTransientPages(await openImageSource(dir)))) void _;
    };
    // truncated inside a page record, inside a frame header, at the very end
    for (const cut of [image.length - 1, image.length - 40, IMAGE_MAGIC.length + 100, IMAGE_MAGIC.length + 3]) {
      writeFileSync(join(dir, IMAGE_FILE), image.subarray(0, cut));
      await assert.rejects(readAll(), (e) => e.name === 'ImageError' && /truncated/.test(e.message), `cut at ${cut}`);
    }
    // a flipped byte in the page data of the largest record
    const bad = Buffer.from(image);
    bad[image.length - 1000] ^= 1;
    writeFileSync(join(dir, IMAGE_FILE), bad);
    await assert.rejects(readAll(), (e) => e.name === 'ImageError' && /checksum mismatch/.test(e.message));
    // an empty file
    truncateSync(join(dir, IMAGE_FILE), 0);
    await assert.rejects(readAll(), (e) => e.name === 'ImageError' && /empty/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('planJobs: ranges cut into jobs of bounded size, in order, nothing lost', () => {
  const MiB = 1 << 20;
  const ranges = [0x10000, 3 * MiB, 0x1000000, 10 * MiB, 0x2000000, PAGE, 0x3000000, 4 * MiB];
  const jobs = planJobs(ranges, 4 * MiB);
  const flat = jobs.flat();
  let total = 0;
  for (const j of jobs) {
    let n = 0;
    for (let k = 1; k < j.length; k += 2) n += j[k];
    assert.ok(n > 0 && n <= 4 * MiB, `job of ${n} bytes`);
    total += n;
  }
  assert.equal(total, 3 * MiB + 10 * MiB + PAGE + 4 * MiB);
  // consecutive pieces of one range follow each other
  for (let k = 2; k < flat.length; k += 2) assert.ok(flat[k] >= flat[k - 2] + flat[k - 1] || flat[k] > flat[k - 2]);
  assert.deepEqual(planJobs([], 4 * MiB), []);
});

test('RestorerInput: writes of buffers and of mapped views arrive in order; EPIPE once the reader is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-feed-'));
  try {
    const file = join(dir, 'mapped');
    const content = bytes(3 * (1 << 20) + 123, 9);
    writeFileSync(file, content);
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(file, 'r');
    const mapped = native.mapFile(fd, 0, content.length);
    closeSync(fd);
    const out = join(dir, 'out');
    const input = new RestorerInput();
    const child = spawn('sh', ['-c', `cat > '${out}'`], { stdio: [input.childFd, 'ignore', 'inherit'] });
    input.spawned();
    const done = new Promise((r) => child.on('close', r));
    const head = Buffer.from('head');
    await input.write(head);
    await input.write(mapped.subarray(5, 2 * (1 << 20)));
    await input.write(bytes(100000, 4));
    await input.write(mapped.subarray(2 * (1 << 20)));
    input.close();
    assert.equal(await done, 0);
    assert.ok(readFileSync(out).equals(Buffer.concat([head, content.subarray(5, 2 * (1 << 20)), bytes(100000, 4), content.subarray(2 * (1 << 20))])));
    await assert.rejects(input.write(head), /closed/);

    const input2 = new RestorerInput();
    const quitter = spawn('sh', ['-c', 'exit 0'], { stdio: [input2.childFd, 'ignore', 'inherit'] });
    input2.spawned();
    await new Promise((r) => quitter.on('close', r));
    await assert.rejects(input2.write(bytes(4 << 20, 1)), (e) => e.code === 'EPIPE');
    input2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PageStaging: pre-copied pages of a stream kept in a memfd, each copy at the page offset it reports', async () => {
  const st = new PageStaging();
  assert.equal(st.fd, -1, 'no memfd until the first pages');
  const a = bytes(3 * PAGE, 7);
  const b = bytes(PAGE, 8);
  const viewOf = Buffer.alloc(5 * PAGE);
  a.copy(viewOf, PAGE);
  assert.equal(await st.add(viewOf.subarray(PAGE, 4 * PAGE)), 0);
  viewOf.fill(0); // the caller's buffer is reused at once: the staged copy must not change
  assert.equal(await st.add(b), 3 * PAGE);
  assert.equal(st.bytes, 4 * PAGE);
  assert.ok(st.fd >= 0);
  const staged = readFileSync(`/proc/self/fd/${st.fd}`);
  assert.ok(staged.subarray(0, 3 * PAGE).equals(a));
  assert.ok(staged.subarray(3 * PAGE).equals(b));
  // a copy that will never be used is freed: it reads as zeros and holds no memory
  const blocks = () => statSync(`/proc/self/fd/${st.fd}`).blocks;
  const before = blocks();
  st.release(PAGE, 2 * PAGE);
  assert.equal(blocks(), before - (2 * PAGE) / 512);
  const after = readFileSync(`/proc/self/fd/${st.fd}`);
  assert.ok(after.subarray(PAGE, 3 * PAGE).equals(Buffer.alloc(2 * PAGE)));
  assert.ok(after.subarray(0, PAGE).equals(a.subarray(0, PAGE)) && after.subarray(3 * PAGE).equals(b));
  const fd = st.fd;
  st.close();
  st.close(); // once only
  assert.throws(() => readFileSync(`/proc/self/fd/${fd}`), /ENOENT/);
  await assert.rejects(st.add(b), /closed/);
});
