// Progress of a migration: a bar on a TTY (image bytes against the tree's
// memory, wire rate, phase, ETA), one JSON event per line with --json,
// nothing with --quiet.
import { SingleBar } from 'cli-progress';

export interface Progress {
  phase(name: string, detail: Record<string, unknown>): void;
  /** About how many image bytes the migration will send (the tree's memory). */
  expect(imageBytes: number): void;
  /** Image bytes handed to the stream (before compression). */
  image(n: number): void;
  /** Bytes sent on the wire. */
  bytes(n: number): void;
  done(result: object): void;
  stop(): void;
}

const MiB = 1048576;

export function makeProgress(mode: 'tty' | 'json' | 'quiet'): Progress {
  const t0 = Date.now();
  let wire = 0;
  let image = 0;
  let expected = 0;
  const rate = (): string => (wire / 1e6 / Math.max((Date.now() - t0) / 1000, 0.001)).toFixed(1);
  if (mode === 'json') {
    let last = 0;
    const emit = (o: object): void => void process.stdout.write(JSON.stringify({ t: Date.now() - t0, ...o }) + '\n');
    return {
      phase: (name, detail) => emit({ event: 'phase', phase: name, ...detail, bytes: wire, imageBytes: image }),
      expect: (n) => { expected = n; emit({ event: 'expect', imageBytes: n }); },
      image: (n) => void (image += n),
      bytes: (n) => {
        wire += n;
        if (Date.now() - last > 100) {
          last = Date.now();
          emit({ event: 'bytes', bytes: wire, imageBytes: image, expectedImageBytes: expected, rateMBps: +rate() });
        }
      },
      done: (result) => emit({ event: 'result', ok: true, ...result }),
      stop: () => undefined,
    };
  }
  if (mode === 'quiet' || !process.stderr.isTTY) {
    return { phase: () => undefined, expect: () => undefined, image: () => undefined, bytes: () => undefined, done: () => undefined, stop: () => undefined };
  }
  // the bar follows the image against the tree's memory (a pre-copy that
  // sends pages again can pass it: the bar then stays full)
  const bar = new SingleBar({
    stream: process.stderr,
    format: ' {phase} |{bar}| {mib} of ~{total_mib} MiB | {rate} MB/s sent | ETA {left}',
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(1, 0, { phase: 'connect'.padEnd(9), mib: '0.0', total_mib: '?', rate: '0.0', left: '?' });
  let streamStart = 0;
  // the time left at the image rate so far (cli-progress's own ETA jumps
  // about: the bar moves in bursts, one DATA frame at a time)
  const left = (): string => {
    const secs = (Date.now() - streamStart) / 1000;
    if (!expected || !streamStart || secs < 0.5 || !image) return '?';
    return image >= expected ? '0s' : `${Math.ceil((expected - image) / (image / secs))}s`;
  };
  const update = (phase?: string): void => {
    const total = Math.max(expected, 1);
    bar.setTotal(total);
    bar.update(Math.min(image, total), {
      ...(phase ? { phase: phase.padEnd(9) } : {}), mib: (image / MiB).toFixed(1), total_mib: expected ? (expected / MiB).toFixed(0) : '?', rate: rate(), left: left(),
    });
  };
  return {
    phase: (name) => update(name),
    expect: (n) => { expected = n; update(); },
    image: (n) => {
      if (!streamStart) streamStart = Date.now();
      image += n;
    },
    bytes: (n) => { wire += n; update(); },
    done: () => bar.stop(),
    stop: () => bar.stop(),
  };
}
