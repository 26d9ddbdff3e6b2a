// The `local` suite: checkpoint and restore bench_mem (test/programs) on this
// machine at several memory sizes, through the real CLI, and verify every
// byte after the restore. Measures dump and restore wall time, the tool's
// frozen time, image size, the CLI's peak RSS and, for comparison, the raw
// rate at which this machine can populate fresh memory.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError, type BenchContext, type OptionValues, type Suite, type SuiteReport, type TargetResult } from './suite.js';
import { alive, benchMemArgs, buildMaxrss, CLI, commOf, markdownTable, programPath, REWRITE_USAGE, ROOT, runMeasured, runQuiet, waitFor } from './util.js';

const DEFAULT_SIZES = [64, 512, 2048];
const PAGE = 4096;
const MiB = 1 << 20;

/** Targets (from the issue). */
const TARGET_DUMP_GBPS = 2; // present bytes / frozen seconds, GB = 1e9 bytes
const TARGET_RSS_BYTES = 150e6; // 150 MB
const TARGET_RESTORE_FILL_RATIO = 0.5; // restore throughput vs raw page-population rate

export interface LocalRow {
  sizeMiB: number;
  pid: number;
  presentPages: number;
  presentMiB: number;
  dumpWallS: number;
  dumpReadGBps: number;
  frozenS: number;
  frozenGBps: number;
  /** The same dump with the image written to /dev/null (a writer that keeps up). */
  nullFrozenS: number;
  nullFrozenGBps: number;
  /** The dump's own rate of reading pages into the image writer ("pages read at"), 0 if not reported. */
  pageReadGBps: number;
  imageBytes: number;
  imageMiB: number;
  restoredPages: number;
  restoreWallS: number;
  restoreToolS: number;
  restoreMBps: number;
  fillMBps: number;
  restoreFillRatio: number;
  dumpPeakRssMiB: number;
  restorePeakRssMiB: number;
  dumpCpuS: number;
  restoreCpuS: number;
  verifyS: number;
}

function parseSizes(v: string | boolean | undefined): number[] {
  if (v === undefined) return DEFAULT_SIZES;
  if (typeof v !== 'string' || !/^\d+(,\d+)*$/.test(v)) throw new BenchError(`--sizes wants MiB values separated by commas, e.g. 64,512 (got "${String(v)}")`);
  const sizes = v.split(',').map(Number);
  if (sizes.some((s) => s < 1 || s > 1 << 20)) throw new BenchError(`--sizes: each size must be between 1 and ${1 << 20} MiB`);
  return sizes;
}

async function ensureBuilt(ctx: BenchContext): Promise<void> {
  if (!existsSync(CLI)) throw new BenchError(`${CLI} is missing: build with \`npx tsc -p .\``);
  if (!existsSync(join(ROOT, 'build/Release/crmigrate_native.node'))) throw new BenchError('the native addon is missing: build with `npx node-gyp build`');
  if (!existsSync(join(ROOT, 'native/build/crmigrate-restore'))) throw new BenchError('native/build/crmigrate-restore is missing: build with `make -C native`');
  if (!existsSync(programPath('bench_mem'))) {
    ctx.log('building test/programs/bin/bench_mem');
    await runQuiet('make', ['-s', '-C', join(ROOT, 'test/programs'), 'bin/bench_mem']);
  }
}

/** Best of two runs: the first touch of guest memory on a VM can be much slower. */
async function fillRate(mib: number): Promise<number> {
  let best = 0;
  for (let i = 0; i < 2; i++) {
    const out = await runQuiet(programPath('bench_mem'), ['--fill-rate', String(mib)]);
    const m = /fill_rate_mb_s=([\d.]+)/.exec(out);
    if (!m) throw new BenchError(`bench_mem --fill-rate gave no rate: ${out.trim()}`);
    best = Math.max(best, Number(m[1]));
  }
  return best;
}

const lastLine = (s: string): string => s.trim().split('\n').filter(Boolean).slice(-1)[0] ?? '(no output)';

async function runSize(sizeMiB: number, maxrss: string, ctx: BenchContext, opts: OptionValues): Promise<LocalRow> {
  const preCopy = opts['pre-copy'] === true;
  const { cleanup } = ctx;
  const dir = mkdtempSync(join(ctx.workDir, `size-${sizeMiB}-`));
  const imageDir = join(dir, 'image');
  const logPath = join(dir, 'log');
  const pidfile = join(dir, 'pidfile');
  const scaleMs = (perMiB: number, base: number): number => base + sizeMiB * perMiB;
  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');

  ctx.log(`[${sizeMiB} MiB] raw fill rate`);
  const fillMBps = await fillRate(sizeMiB);

  // The workload, detached in its own session, output to a regular file.
  mkdirSync(dir, { recursive: true });
  const logFd = openSync(logPath, 'a');
  const child = spawn(programPath('bench_mem'), benchMemArgs(sizeMiB, opts), { stdio: ['ignore', logFd, logFd], detached: true, cwd: dir });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new BenchError('could not start bench_mem');
  cleanup.process(pid, 'bench_mem');
  let exitStatus: string | null = null;
  const exited = new Promise<void>((resolve) => child.on('exit', (code, sig) => { exitStatus = sig ?? String(code); resolve(); }));
  child.on('error', () => undefined);
  await waitFor(() => {
    const l = readLog();
    if (/^FAIL/m.test(l) || exitStatus !== null) throw new BenchError(`bench_mem ${sizeMiB} failed before READY (exit ${exitStatus}): ${lastLine(l)}`);
    return /^READY$/m.test(l);
  }, `bench_mem ${sizeMiB} to print READY`, scaleMs(50, 30000), 20);

  // The rate crmigrate reads pages into the image writer, with a writer that
  // keeps up: the image to /dev/null (the process is let go on).
  ctx.log(`[${sizeMiB} MiB] dump PID ${pid} to /dev/null (--stdout --leave-running)`);
  const devNull = openSync('/dev/null', 'w');
  const nullDump = await runMeasured(maxrss, process.execPath, [CLI, 'dump', String(pid), '--stdout', '--leave-running', ...(preCopy ? ['--pre-copy'] : [])], cleanup, scaleMs(200, 120000), devNull)
    .finally(() => closeSync(devNull));
  if (nullDump.code !== 0) throw new BenchError(`crmigrate dump --stdout of ${sizeMiB} MiB failed with exit ${nullDump.code}: ${lastLine(nullDump.stderr)}`);
  const nullFrozenS = Number(/, frozen ([\d.]+) s/.exec(nullDump.stderr)?.[1] ?? NaN);

  // Dump into a file (the process is killed once the image is complete).
  ctx.log(`[${sizeMiB} MiB] dump PID ${pid}`);
  const dump = await runMeasured(maxrss, process.execPath, [CLI, 'dump', String(pid), '--dir', imageDir, ...(preCopy ? ['--pre-copy'] : [])], cleanup, scaleMs(200, 120000));
  if (dump.code !== 0) throw new BenchError(`crmigrate dump of ${sizeMiB} MiB failed with exit ${dump.code} after ${dump.wallSeconds.toFixed(2)} s: ${lastLine(dump.stderr)}`);
  const dm = /dumped process (\d+)(?: and \d+ below it)?: (\d+) pages(?: \([^)]*\))?(?: while frozen \((\d+) copied before, (\d+) of them used\))?, ([\d.]+) MiB image, frozen ([\d.]+) s/.exec(dump.stderr);
  if (!dm) throw new BenchError(`crmigrate dump succeeded but printed no "dumped process" line: ${lastLine(dump.stderr)}`);
  // with a pre-copy: the pages copied while frozen plus those taken from the pre-copy
  const presentPages = Number(dm[2]) + Number(dm[4] ?? 0);
  const frozenS = Number(dm[6]);
  const pageReadGBps = Number(/pages read at ([\d.]+) GB\/s/.exec(dump.stderr)?.[1] ?? 0);
  let giveUp: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => { giveUp = setTimeout(r, 10000); })]);
  clearTimeout(giveUp);
  await waitFor(() => !existsSync(`/proc/${pid}`), `PID ${pid} to be released after the dump (the dump should kill it)`, 10000);
  const imagePath = join(imageDir, 'image.crm');
  if (!existsSync(imagePath)) throw new BenchError(`crmigrate dump succeeded but ${imagePath} does not exist`);
  const imageBytes = statSync(imagePath).size;

  // Restore.
  ctx.log(`[${sizeMiB} MiB] restore`);
  const restore = await runMeasured(maxrss, process.execPath, [CLI, 'restore', '--dir', imageDir, '--pidfile', pidfile], cleanup, scaleMs(200, 120000));
  if (alive(pid)) cleanup.process(pid, commOf(pid) ?? 'bench_mem');
  if (restore.code !== 0) throw new BenchError(`crmigrate restore of ${sizeMiB} MiB failed with exit ${restore.code} after ${restore.wallSeconds.toFixed(2)} s: ${lastLine(restore.stderr)}`);
  const rm = /restored process (\d+) \((\d+) pages\) in ([\d.]+) s/.exec(restore.stderr);
  if (!rm) throw new BenchError(`crmigrate restore succeeded but printed no "restored process" line: ${lastLine(restore.stderr)}`);
  if (Number(rm[1]) !== pid) throw new BenchError(`restore reports PID ${rm[1]}, expected ${pid}`);
  const pf = existsSync(pidfile) ? readFileSync(pidfile, 'utf8').trim() : '';
  if (pf !== String(pid)) throw new BenchError(`pidfile ${pidfile} holds "${pf}", expected ${pid}`);
  if (!alive(pid)) throw new BenchError(`restored process ${pid} is not running after a successful restore; its log ends: ${lastLine(readLog())}`);
  const comm = commOf(pid);
  if (comm !== 'bench_mem') ctx.log(`[${sizeMiB} MiB] note: restored process is named "${comm}", not "bench_mem"`);

  // Verify every byte.
  ctx.log(`[${sizeMiB} MiB] verify`);
  const before = readLog().length;
  const v0 = process.hrtime.bigint();
  process.kill(pid, 'SIGUSR2');
  let verdict = '';
  await waitFor(() => {
    const m = /^(PASS|FAIL.*)$/m.exec(readLog().slice(before));
    if (m) verdict = m[1]!;
    else if (!alive(pid)) throw new BenchError(`restored bench_mem ${sizeMiB} died without a verdict after SIGUSR2; log ends: ${lastLine(readLog())}`);
    return m !== null;
  }, `restored bench_mem ${sizeMiB} to report PASS or FAIL`, scaleMs(50, 30000), 20);
  const verifyS = Number(process.hrtime.bigint() - v0) / 1e9;
  if (verdict !== 'PASS') throw new BenchError(`VERIFICATION FAILED after restore of ${sizeMiB} MiB: bench_mem says "${verdict}" (byte offset into its buffer; first half random, second half text)`);
  await waitFor(() => !existsSync(`/proc/${pid}`), `restored PID ${pid} to exit and be reaped`, 10000).catch((e: Error) => ctx.log(`[${sizeMiB} MiB] warning: ${e.message}`));
  cleanup.forget(pid);

  const presentBytes = presentPages * PAGE;
  const restoredPages = Number(rm[2]);
  const restoreMBps = (restoredPages * PAGE) / 1e6 / restore.wallSeconds;
  return {
    sizeMiB,
    pid,
    presentPages,
    presentMiB: presentBytes / MiB,
    dumpWallS: dump.wallSeconds,
    dumpReadGBps: presentBytes / 1e9 / dump.wallSeconds,
    frozenS,
    frozenGBps: presentBytes / 1e9 / frozenS,
    nullFrozenS,
    nullFrozenGBps: presentBytes / 1e9 / nullFrozenS,
    pageReadGBps,
    imageBytes,
    imageMiB: imageBytes / MiB,
    restoredPages,
    restoreWallS: restore.wallSeconds,
    restoreToolS: Number(rm[3]),
    restoreMBps,
    fillMBps,
    restoreFillRatio: restoreMBps / fillMBps,
    dumpPeakRssMiB: dump.maxRssKiB / 1024,
    restorePeakRssMiB: restore.maxRssKiB / 1024,
    dumpCpuS: dump.userSeconds + dump.sysSeconds,
    restoreCpuS: restore.userSeconds + restore.sysSeconds,
    verifyS,
  };
}

function render(rows: LocalRow[]): string {
  const f = (n: number, d: number): string => n.toFixed(d);
  return markdownTable(
    ['size MiB', 'present MiB', 'frozen s /dev/null', 'frozen GB/s /dev/null', 'dump s', 'dump read GB/s', 'frozen s', 'frozen GB/s', 'page read GB/s', 'image MiB', 'restore s', 'restore s (tool)', 'restore MB/s', 'fill MB/s', 'restore/fill', 'peak RSS dump MiB', 'peak RSS restore MiB', 'CPU s dump/restore'],
    rows.map((r) => [
      String(r.sizeMiB), f(r.presentMiB, 1), f(r.nullFrozenS, 3), f(r.nullFrozenGBps, 2), f(r.dumpWallS, 3), f(r.dumpReadGBps, 2), f(r.frozenS, 3), f(r.frozenGBps, 2), r.pageReadGBps ? f(r.pageReadGBps, 2) : '-', f(r.imageMiB, 1),
      f(r.restoreWallS, 3), f(r.restoreToolS, 3), f(r.restoreMBps, 0), f(r.fillMBps, 0), f(r.restoreFillRatio, 2), f(r.dumpPeakRssMiB, 1), f(r.restorePeakRssMiB, 1),
      `${f(r.dumpCpuS, 2)} / ${f(r.restoreCpuS, 2)}`,
    ]),
  );
}

function targets(rows: LocalRow[]): TargetResult[] {
  const rssOk = rows.every((r) => Math.max(r.dumpPeakRssMiB, r.restorePeakRssMiB) * MiB < TARGET_RSS_BYTES);
  const largest = rows.reduce((a, b) => (b.sizeMiB > a.sizeMiB ? b : a));
  const dumpOk = largest.nullFrozenGBps >= TARGET_DUMP_GBPS;
  return [
    {
      name: `dump reads >= ${TARGET_DUMP_GBPS} GB/s of present pages into the image writer at the largest size (${largest.sizeMiB} MiB; present bytes / frozen s, the image to /dev/null: a writer that keeps up; a small process's frozen window is mostly fixed costs, ~20 ms)`,
      pass: dumpOk,
      detail: rows.map((r) => `${r.sizeMiB} MiB: ${r.nullFrozenGBps.toFixed(2)} GB/s (into a file here: ${r.frozenGBps.toFixed(2)} GB/s)`).join(', '),
    },
    {
      name: `crmigrate peak RSS < ${TARGET_RSS_BYTES / 1e6} MB (${(TARGET_RSS_BYTES / MiB).toFixed(1)} MiB) at every size, dump and restore`,
      pass: rssOk,
      detail: rows.map((r) => `${r.sizeMiB} MiB: dump ${r.dumpPeakRssMiB.toFixed(1)} / restore ${r.restorePeakRssMiB.toFixed(1)} MiB`).join(', '),
    },
    {
      name: `restore bounded by the page-fault rate: restore MB/s >= ${TARGET_RESTORE_FILL_RATIO} x raw fill rate at the largest size (${largest.sizeMiB} MiB)`,
      pass: largest.restoreFillRatio >= TARGET_RESTORE_FILL_RATIO,
      detail: rows.map((r) => `${r.sizeMiB} MiB: ${r.restoreMBps.toFixed(0)} of ${r.fillMBps.toFixed(0)} MB/s = ${r.restoreFillRatio.toFixed(2)}`).join(', '),
    },
  ];
}

export const localSuite: Suite = {
  name: 'local',
  description: 'dump and restore bench_mem on this machine through the CLI, verify every byte',
  options: { sizes: { type: 'string' }, 'pre-copy': { type: 'boolean' }, rewrite: { type: 'string' } },
  usage: [
    `--sizes A,B,...   memory sizes in MiB (default ${DEFAULT_SIZES.join(',')})`, '--pre-copy        dump with --pre-copy (frozen s is then the pause after the pre-copy)',
    REWRITE_USAGE,
  ],
  async run(opts: OptionValues, ctx: BenchContext): Promise<SuiteReport> {
    const sizes = parseSizes(opts.sizes);
    await ensureBuilt(ctx);
    const maxrss = await buildMaxrss(ctx.workDir);
    const rows: LocalRow[] = [];
    try {
      for (const s of sizes) {
        rows.push(await runSize(s, maxrss, ctx, opts));
        const r = rows[rows.length - 1]!;
        ctx.log(`[${s} MiB] done: dump ${r.dumpWallS.toFixed(3)} s (frozen ${r.frozenS.toFixed(3)} s), restore ${r.restoreWallS.toFixed(3)} s, PASS`);
      }
    } catch (err) {
      if (rows.length) ctx.log(`results before the failure:\n${render(rows)}`);
      throw err;
    }
    return {
      rows: rows as unknown as Record<string, unknown>[],
      table: render(rows),
      targets: targets(rows),
      notes: [
        'present = pages the tool dumped (its "P pages"); GB/MB = 10^9/10^6 bytes, MiB = 2^20 bytes.',
        'frozen s /dev/null = the frozen time of `crmigrate dump --stdout --leave-running` into /dev/null (every record made and checksummed, nothing kept): crmigrate\'s own rate; the dump into a file that follows is bound by this machine\'s page cache and disk.',
        'dump read GB/s = present / dump wall time (includes node start-up); frozen GB/s = present / the frozen time the tool reports (it ends once the image is durable: fdatasync included); page read GB/s = the rate the dump itself reports for reading pages into the image writer (bytes / time with a read in progress).',
        'restore s = wall time of `crmigrate restore` (image read from the page cache); restore s (tool) = the time it reports itself; restore MB/s = restored pages / wall time.',
        'fill MB/s = `bench_mem --fill-rate SIZE` (best of 2): memset of fresh anonymous memory, the raw page-population rate of this machine.',
        'peak RSS = wait4 ru_maxrss of the CLI: the largest of the node process and (restore) crmigrate-restore, not their sum. CPU s = user+system CPU of the same processes.',
      ],
    };
  },
};
