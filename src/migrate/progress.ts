// Progress of a migration: a bar on a TTY (bytes, rate, phase, ETA), one JSON
// event per line with --json, nothing with --quiet.
import { SingleBar } from 'cli-progress';

export interface Progress {
  phase(name: string, detail: Record<string, unknown>): void;
  bytes(n: number): void;
  done(result: object): void;
  stop(): void;
}

export function makeProgress(mode: 'tty' | 'json' | 'quiet', expectedBytes = 0): Progress {
  const t0 = Date.now();
  let total = 0;
  if (mode === 'json') {
    let last = 0;
    const emit = (o: object): void => void process.stdout.write(JSON.stringify({ t: Date.now() - t0, ...o }) + '\n');
    return {
      phase: (name, detail) => emit({ event: 'phase', phase: name, ...detail, bytes: total }),
      bytes: (n) => {
        total += n;
        if (Date.now() - last > 100) {
          last = Date.now();
          emit({ event: 'bytes', bytes: total, rateMBps: +(total / 1e6 / Math.max((Date.now() - t0) / 1000, 0.001)).toFixed(1) });
        }
      },
      done: (result) => emit({ event: 'result', ok: true, ...result }),
      stop: () => undefined,
    };
  }
  if (mode === 'quiet' || !process.stderr.isTTY) {
    return { phase: () => undefined, bytes: (n) => void (total += n), done: () => undefined, stop: () => undefined };
  }
  const bar = new SingleBar({
    stream: process.stderr,
    format: ' {phase} |{bar}| {mib} MiB | {rate} MB/s | ETA {eta}s',
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(Math.max(expectedBytes, 1), 0, { phase: 'connect'.padEnd(9), mib: '0.0', rate: '0.0' });
  const update = (phase?: string): void => {
    const secs = Math.max((Date.now() - t0) / 1000, 0.001);
    bar.update(Math.min(total, Math.max(expectedBytes, 1)), {
      ...(phase ? { phase: phase.padEnd(9) } : {}), mib: (total / 1048576).toFixed(1), rate: (total / 1e6 / secs).toFixed(1),
    });
  };
  return {
    phase: (name) => update(name),
    bytes: (n) => { total += n; update(); },
    done: () => bar.stop(),
    stop: () => bar.stop(),
  };
}
