// The zstd stages of a migration (src/migrate/zstd-stream.ts): the source's
// compressor writes whole DATA frames out of a ring of reused buffers, the
// agent's decompressor yields the image in reused chunks. Round trips with
// slow and failing channels, and damaged streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImageCompressor, decompressedChunks } from '../../dist/migrate/zstd-stream.js';
import { FRAME_HEADER, FrameKind } from '../../dist/migrate/protocol.js';

/** Half pseudo-random, half text: the shape of the benchmark's memory. */
function imageLike(n, seed) {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n / 2; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  const text = Buffer.from('2026-11-27 05:14:06 INFO worker[17] processed request id=');
  for (let i = n / 2; i < n; i++) b[i] = text[i % text.length];
  return b;
}

/**
 * Compresses the chunks (each written as the dump does: the caller reuses its
 * buffer once write resolves), collecting the DATA frames; emitDelay makes
 * the channel slow so that frames wait in the ring.
 */
async function compressAll(chunks, { level = -1, workers = 2, emitDelay = 0 } = {}) {
  const payloads = [];
  const comp = new ImageCompressor({ level, workers }, async (frame) => {
    assert.equal(frame.readUInt8(0), FrameKind.DATA);
    assert.equal(frame.readUInt32BE(1), frame.length - FRAME_HEADER);
    const copy = Buffer.from(frame.subarray(FRAME_HEADER)); // what the channel would send
    if (emitDelay) await new Promise((r) => setTimeout(r, emitDelay));
    payloads.push(copy);
  });
  const scratch = Buffer.alloc(Math.max(0, ...chunks.map((c) => c.length)));
  for (const c of chunks) {
    c.copy(scratch);
    await comp.write(scratch.subarray(0, c.length));
    scratch.fill(0xee); // reused as soon as write resolved
  }
  await comp.end();
  return payloads;
}

async function decompressAll(payloads, hold = 0) {
  const out = [];
  const held = [];
  async function* src() { for (const p of payloads) yield p; }
  for await (const chunk of decompressedChunks(src())) {
    out.push(Buffer.from(chunk));
    held.push(chunk);
    // a chunk stays valid while the consumer pulls at most twice more
    if (hold && held.length > 2) assert.ok(held.at(-3).equals(out.at(-3)), 'a chunk changed before two more pulls');
  }
  return Buffer.concat(out);
}

test('zstd stages: round trip of 20 MiB in chunks of odd sizes, fast and slow channel, with and without workers', async () => {
  const image = imageLike(20 << 20, 3);
  const cuts = [];
  for (let off = 0, k = 1; off < image.length; k++) {
    const n = Math.min(image.length - off, (k * 777_777) % (4 << 20) + 1);
    cuts.push(image.subarray(off, off + n));
    off += n;
  }
  for (const opts of [{}, { emitDelay: 1 }, { workers: 0 }, { level: 3, workers: 2 }]) {
    const payloads = await compressAll(cuts, opts);
    const wire = payloads.reduce((s, p) => s + p.length, 0);
    assert.ok(wire < image.length * 0.75, `compressed ${wire} of ${image.length} bytes (${JSON.stringify(opts)})`);
    const back = await decompressAll(payloads, 1);
    assert.equal(back.length, image.length);
    assert.ok(back.equals(image), `round trip ${JSON.stringify(opts)}`);
  }
});

test('zstd stages: an empty image, and payloads cut at every byte boundary', async () => {
  const none = await compressAll([]);
  assert.equal((await decompressAll(none)).length, 0);
  const image = imageLike(300_000, 9);
  const joined = Buffer.concat(await compressAll([image]));
  const bytewise = [];
  for (let i = 0; i < joined.length; i += 1 + (i % 5)) bytewise.push(joined.subarray(i, Math.min(joined.length, i + 1 + (i % 5))));
  assert.ok((await decompressAll(bytewise)).equals(image));
});

test('zstd stages: a stream cut short or corrupted is an error, never silent', async () => {
  const image = imageLike(2 << 20, 5);
  const joined = Buffer.concat(await compressAll([image]));
  for (const keep of [joined.length - 1, Math.floor(joined.length / 2), 10]) {
    await assert.rejects(decompressAll([joined.subarray(0, keep)]), /ended inside a zstd frame/, `cut at ${keep}`);
  }
  const bad = Buffer.from(joined);
  bad[0] ^= 0xff; // the frame magic
  await assert.rejects(decompressAll([bad]));
});

test('zstd stages: a channel that fails makes write or end reject', async () => {
  let n = 0;
  const comp = new ImageCompressor({ level: -1, workers: 0 }, async () => {
    if (++n === 2) throw new Error('channel closed');
  });
  const image = imageLike(8 << 20, 7);
  await assert.rejects(async () => {
    for (let off = 0; off < image.length; off += 1 << 20) await comp.write(image.subarray(off, off + (1 << 20)));
    await comp.end();
  }, /channel closed/);
});
