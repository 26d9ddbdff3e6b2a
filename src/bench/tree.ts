// The `tree` suite: checkpoint and restore bench_tree (test/programs), a tree
// of processes and threads sharing one large MAP_SHARED|MAP_ANONYMOUS
// region, on this machine through the real CLI, and verify after the restore
// that every byte of the shared memory, every process and every thread is
// back. Measures dump and restore wall time, the tool's frozen time, image
// size and the CLI's peak RSS, and checks that the shared memory is stored
// once in the image, not once per process.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BenchError, type BenchContext, type OptionValues, type Suite, type SuiteReport, type TargetResult } from './suite.js';
import { treeOf } from '../util/procfs.js';
import { alive, buildMaxrss, CLI, commOf, markdownTable, programPath, ROOT, runMeasured, runQuiet, waitFor } from './util.js';

const PROGRAM = 'bench_tree';
const DEFAULT_PROCS = 50;
const DEFAULT_THREADS = 200;
const DEFAULT_SHARED_MIB = 1024;
const MAX_PROCS = 4096; // bench_tree's limits
const MAX_THREADS = 65536;
const PAGE = 4096;
const MiB = 1 << 20;

/** Target: the shared region is stored once (the random half does not compress; dump --dir does not compress). */
const TARGET_IMAGE_RATIO = 1.5;

export interface TreeRow {
  procs: number;
  threads: number;
  sharedMiB: number;
  rootPid: number;
  presentPages: number;
  dumpWallS: number;
  frozenS: number;
  imageBytes: number;
  imageMiB: number;
  restoredPages: number;
  restoreWallS: number;
  restoreToolS: number;
  dumpPeakRssMiB: number;
  restorePeakRssMiB: number;
  dumpCpuS: number;
  restoreCpuS: number;
  verifyS: number;
  verified: string;
}

interface TreeOptions {
  procs: number;
  threads: number;
  sharedMiB: number;
}

function parseCount(v: string | boolean | undefined, flag: string, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new BenchError(`${flag} wants a positive whole number (got "${String(v)}")`);
  const n = Number(v);
  if (n < 1 || n > max) throw new BenchError(`${flag} must be between 1 and ${max}`);
  return n;
}

function parseOptions(opts: OptionValues): TreeOptions {
  const procs = parseCount(opts.procs, '--procs', DEFAULT_PROCS, MAX_PROCS);
  const threads = parseCount(opts.threads, '--threads', DEFAULT_THREADS, MAX_THREADS);
  const sharedMiB = parseCount(opts['shared-mib'], '--shared-mib', DEFAULT_SHARED_MIB, 1 << 20);
  if (threads < procs) throw new BenchError(`--threads counts every thread of the tree, main threads included: it must be at least --procs (${threads} < ${procs})`);
  if ((sharedMiB * MiB) / PAGE < procs) throw new BenchError(`--shared-mib ${sharedMiB} is too small for ${procs} processes (one page each)`);
  return { procs, threads, sharedMiB };
}

async function ensureBuilt(ctx: BenchContext): Promise<void> {
  if (!existsSync(CLI)) throw new BenchError(`${CLI} is missing: build with \`npx tsc -p .\``);
  if (!existsSync(join(ROOT, 'build/Release/crmigrate_native.node'))) throw new BenchError('the native addon is missing: build with `npx node-gyp build`');
  if (!existsSync(join(ROOT, 'native/build/crmigrate-restore'))) throw new BenchError('native/build/crmigrate-restore is missing: build with `make -C native`');
  if (!existsSync(programPath(PROGRAM))) {
    ctx.log(`building test/programs/bin/${PROGRAM}`);
    await runQuiet('make', ['-s', '-C', join(ROOT, 'test/programs'), `bin/${PROGRAM}`]);
  }
}

// ---- the process tree, from /proc ----

/** Thread IDs of a process, sorted ([] if it is gone). */
function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** `root` and every process below it that still exists, parents first. */
const liveTreeOf = (root: number): number[] => treeOf(root).filter((pid) => existsSync(`/proc/${pid}`));

/** Every process of the tree with its thread IDs. */
function snapshot(root: number): Map<number, number[]> {
  return new Map(liveTreeOf(root).map((pid) => [pid, threadsOf(pid)]));
}

const threadCount = (snap: Map<number, number[]>): number => [...snap.values()].reduce((n, tids) => n + tids.length, 0);

/** What differs between two snapshots ('' when they are the same). */
function snapshotDiff(want: Map<number, number[]>, got: Map<number, number[]>): string {
  const missing = [...want.keys()].filter((p) => !got.has(p));
  const extra = [...got.keys()].filter((p) => !want.has(p));
  const changed = [...want.keys()].filter((p) => got.has(p) && got.get(p)!.join(',') !== want.get(p)!.join(','));
  const list = (ps: number[]): string => ps.slice(0, 8).join(', ') + (ps.length > 8 ? `, ... (${ps.length})` : '');
  const parts: string[] = [];
  if (missing.length) parts.push(`processes missing: ${list(missing)}`);
  if (extra.length) parts.push(`processes not in the original tree: ${list(extra)}`);
  for (const p of changed.slice(0, 3)) parts.push(`PID ${p} threads [${got.get(p)!.join(',')}], expected [${want.get(p)!.join(',')}]`);
  if (changed.length > 3) parts.push(`${changed.length - 3} more processes with other threads`);
  return parts.join('; ');
}

/**
 * Kills the tree below `root` by PID: reads it first (recursively, through
 * /proc/PID/task/TID/children), then SIGKILLs each process that still runs a
 * program of ours (comm in `comms`). Nothing is done if `root` runs another
 * program (its PID was reused). Returns the PIDs it signalled.
 */
function killTree(root: number, comms: ReadonlySet<string>): number[] {
  const c = commOf(root);
  if (c === null || !comms.has(c)) return [];
  const pids = treeOf(root).filter((p) => alive(p) && comms.has(commOf(p) ?? ''));
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

const lastLines = (s: string, n: number): string => s.trim().split('\n').filter(Boolean).slice(-n).join(' | ') || '(no output)';

async function runTree(o: TreeOptions, maxrss: string, ctx: BenchContext): Promise<TreeRow> {
  const { cleanup } = ctx;
  const tag = `[${o.procs} procs, ${o.threads} threads, ${o.sharedMiB} MiB]`;
  const dir = mkdtempSync(join(ctx.workDir, 'tree-'));
  const imageDir = join(dir, 'image');
  const logPath = join(dir, 'log');
  const pidfile = join(dir, 'pidfile');
  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  // Time limits grow with the memory and the size of the tree.
  const scaleMs = (perMiB: number, base: number): number => base + o.sharedMiB * perMiB + o.procs * 200 + o.threads * 20;

  // The workload, detached in its own session, output to a regular file.
  mkdirSync(dir, { recursive: true });
  const logFd = openSync(logPath, 'a');
  const child = spawn(programPath(PROGRAM), [String(o.procs), String(o.threads), String(o.sharedMiB)], { stdio: ['ignore', logFd, logFd], detached: true, cwd: dir });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new BenchError(`could not start ${PROGRAM}`);
  cleanup.process(pid, PROGRAM);
  // Programs (comm) the tree may run: bench_tree, and whatever the restored tasks are called.
  const comms = new Set([PROGRAM]);
  // Every PID of the tree seen so far (also killed at cleanup if still ours).
  const known = new Map<number, string>([[pid, PROGRAM]]);
  const remember = (snap: Map<number, number[]>): void => {
    for (const p of snap.keys()) {
      const comm = commOf(p) ?? PROGRAM;
      comms.add(comm);
      known.set(p, comm);
      cleanup.process(p, comm);
    }
  };
  let exitStatus: string | null = null;
  const exited = new Promise<void>((resolve) => child.on('exit', (code, sig) => { exitStatus = sig ?? String(code); resolve(); }));
  child.on('error', () => undefined);

  try {
    await waitFor(() => {
      const l = readLog();
      if (/^FAIL/m.test(l) || exitStatus !== null) throw new BenchError(`${PROGRAM} failed before READY (exit ${exitStatus}): ${lastLines(l, 3)}`);
      return /^READY$/m.test(l);
    }, `${PROGRAM} to print READY`, scaleMs(50, 60000), 20);
    const before = snapshot(pid);
    remember(before);
    if (before.size !== o.procs || threadCount(before) !== o.threads) {
      throw new BenchError(`${PROGRAM} is READY but /proc shows ${before.size} processes and ${threadCount(before)} threads, expected ${o.procs} and ${o.threads}`);
    }

    // Dump (the tree is killed once the image is complete).
    const dumpArgs = ['dump', String(pid), '--dir', imageDir];
    ctx.log(`${tag} dump PID ${pid} (${before.size} processes, ${threadCount(before)} threads)`);
    const dump = await runMeasured(maxrss, process.execPath, [CLI, ...dumpArgs], cleanup, scaleMs(200, 120000));
    if (dump.code !== 0) {
      throw new BenchError(`crmigrate dump failed with exit ${dump.code} after ${dump.wallSeconds.toFixed(2)} s; command: node ${CLI} ${dumpArgs.join(' ')}; output: ${lastLines(dump.stderr + dump.stdout, 10)}`);
    }
    const dm = /dumped process (\d+)(?: and \d+ below it)?: (\d+) pages(?: \([^)]*\))?, ([\d.]+) MiB image, frozen ([\d.]+) s/.exec(dump.stderr);
    if (!dm) throw new BenchError(`crmigrate dump succeeded but printed no "dumped process" line: ${lastLines(dump.stderr, 3)}`);
    const presentPages = Number(dm[2]);
    const frozenS = Number(dm[4]);
    let giveUp: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => { giveUp = setTimeout(r, 10000); })]);
    clearTimeout(giveUp);
    await waitFor(() => [...before.keys()].every((p) => !existsSync(`/proc/${p}`)),
      `all ${before.size} PIDs of the tree to be released after the dump (the dump should kill them)`, 20000);
    const imagePath = join(imageDir, 'image.crm');
    if (!existsSync(imagePath)) throw new BenchError(`crmigrate dump succeeded but ${imagePath} does not exist`);
    const imageBytes = statSync(imagePath).size;
    ctx.log(`${tag} dumped: ${dump.wallSeconds.toFixed(3)} s (frozen ${frozenS.toFixed(3)} s), image ${(imageBytes / MiB).toFixed(1)} MiB, peak RSS ${(dump.maxRssKiB / 1024).toFixed(1)} MiB`);

    // Restore.
    const restoreArgs = ['restore', '--dir', imageDir, '--pidfile', pidfile];
    ctx.log(`${tag} restore`);
    const restore = await runMeasured(maxrss, process.execPath, [CLI, ...restoreArgs], cleanup, scaleMs(200, 120000));
    if (alive(pid)) remember(snapshot(pid));
    if (restore.code !== 0) {
      throw new BenchError(`crmigrate restore failed with exit ${restore.code} after ${restore.wallSeconds.toFixed(2)} s; command: node ${CLI} ${restoreArgs.join(' ')}; output: ${lastLines(restore.stderr + restore.stdout, 10)}`);
    }
    const rm = /restored process (\d+) \((\d+) pages\) in ([\d.]+) s/.exec(restore.stderr);
    if (!rm) throw new BenchError(`crmigrate restore succeeded but printed no "restored process" line: ${lastLines(restore.stderr, 3)}`);
    if (Number(rm[1]) !== pid) throw new BenchError(`restore reports PID ${rm[1]}, expected ${pid}`);
    const pf = existsSync(pidfile) ? readFileSync(pidfile, 'utf8').trim() : '';
    if (pf !== String(pid)) throw new BenchError(`pidfile ${pidfile} holds "${pf}", expected ${pid}`);
    if (!alive(pid)) throw new BenchError(`restored root ${pid} is not running after a successful restore; its log ends: ${lastLines(readLog(), 3)}`);
    ctx.log(`${tag} restored: ${restore.wallSeconds.toFixed(3)} s, peak RSS ${(restore.maxRssKiB / 1024).toFixed(1)} MiB`);

    // The same processes with the same threads, seen from outside.
    let after = snapshot(pid);
    await waitFor(() => snapshotDiff(before, (after = snapshot(pid))) === '', 'the restored tree to match the original', 5000, 50).catch(() => {
      throw new BenchError(`the restored tree differs from the original (${before.size} processes, ${threadCount(before)} threads; now ${after.size} and ${threadCount(after)}): ${snapshotDiff(before, after)}`);
    });
    remember(after);
    const comm = commOf(pid);
    if (comm !== PROGRAM) ctx.log(`${tag} note: restored root is named "${comm}", not "${PROGRAM}"`);

    // Verify: every byte of the shared memory, every process and thread.
    ctx.log(`${tag} verify`);
    const logBefore = readLog().length;
    const v0 = process.hrtime.bigint();
    process.kill(pid, 'SIGUSR2');
    let verdict = '';
    await waitFor(() => {
      const m = /^(PASS|FAIL.*)$/m.exec(readLog().slice(logBefore));
      if (m) verdict = m[1]!;
      else if (!alive(pid)) throw new BenchError(`restored ${PROGRAM} died without a verdict after SIGUSR2; log ends: ${lastLines(readLog(), 3)}`);
      return m !== null;
    }, `restored ${PROGRAM} to report PASS or FAIL`, scaleMs(50, 90000), 20);
    const verifyS = Number(process.hrtime.bigint() - v0) / 1e9;
    if (verdict !== 'PASS') {
      const problems = readLog().slice(logBefore).split('\n').filter((l) => l.startsWith('not ok')).slice(0, 5);
      throw new BenchError(`VERIFICATION FAILED after restore: ${PROGRAM} says "${verdict}" (a bare number is the byte offset of the first difference in the shared memory; first half random, second half text)${problems.length ? `; ${problems.join(' | ')}` : ''}`);
    }
    await waitFor(() => [...after.keys()].every((p) => !existsSync(`/proc/${p}`)), `the restored tree to exit and be reaped`, 20000)
      .catch((e: Error) => ctx.log(`${tag} warning: ${e.message}`));

    return {
      procs: o.procs,
      threads: o.threads,
      sharedMiB: o.sharedMiB,
      rootPid: pid,
      presentPages,
      dumpWallS: dump.wallSeconds,
      frozenS,
      imageBytes,
      imageMiB: imageBytes / MiB,
      restoredPages: Number(rm[2]),
      restoreWallS: restore.wallSeconds,
      restoreToolS: Number(rm[3]),
      dumpPeakRssMiB: dump.maxRssKiB / 1024,
      restorePeakRssMiB: restore.maxRssKiB / 1024,
      dumpCpuS: dump.userSeconds + dump.sysSeconds,
      restoreCpuS: restore.userSeconds + restore.sysSeconds,
      verifyS,
      verified: verdict,
    };
  } finally {
    // Whatever happened: the whole tree (read from /proc first), then every PID seen, by PID.
    const killed = new Set(killTree(pid, comms));
    for (const [p, comm] of known) {
      if (!killed.has(p) && alive(p) && commOf(p) === comm) {
        try {
          process.kill(p, 'SIGKILL');
          killed.add(p);
        } catch {
          /* gone meanwhile */
        }
      }
    }
    if (killed.size) {
      ctx.log(`${tag} killed ${killed.size} leftover processes of the tree`);
      await waitFor(() => [...killed].every((p) => !alive(p)), 'the killed processes to go', 10000).catch((e: Error) => ctx.log(`${tag} warning: ${e.message}`));
    }
    for (const p of known.keys()) if (!alive(p)) cleanup.forget(p);
  }
}

function render(rows: TreeRow[]): string {
  const f = (n: number, d: number): string => n.toFixed(d);
  return markdownTable(
    ['processes', 'threads', 'shared MiB', 'dump s', 'frozen s', 'image MiB', 'restore s', 'dump peak RSS MiB', 'restore peak RSS MiB', 'verified'],
    rows.map((r) => [
      String(r.procs), String(r.threads), String(r.sharedMiB), f(r.dumpWallS, 3), f(r.frozenS, 3), f(r.imageMiB, 1), f(r.restoreWallS, 3),
      f(r.dumpPeakRssMiB, 1), f(r.restorePeakRssMiB, 1), r.verified,
    ]),
  );
}

function targets(rows: TreeRow[]): TargetResult[] {
  return [
    {
      name: `shared memory stored once: image MiB < ${TARGET_IMAGE_RATIO} x shared MiB`,
      pass: rows.every((r) => r.imageMiB < TARGET_IMAGE_RATIO * r.sharedMiB),
      detail: rows.map((r) => `${r.procs} processes sharing ${r.sharedMiB} MiB: image ${r.imageMiB.toFixed(1)} MiB, limit ${(TARGET_IMAGE_RATIO * r.sharedMiB).toFixed(1)} MiB (${(r.imageMiB / r.sharedMiB).toFixed(2)} x)`).join(', '),
    },
  ];
}

export const treeSuite: Suite = {
  name: 'tree',
  description: 'dump and restore a bench_tree process tree (threads, shared memory) through the CLI, verify it',
  options: { procs: { type: 'string' }, threads: { type: 'string' }, 'shared-mib': { type: 'string' } },
  usage: [
    `--procs N        processes in the tree, root included (default ${DEFAULT_PROCS})`,
    `--threads N      threads in the whole tree, main threads included (default ${DEFAULT_THREADS})`,
    `--shared-mib N   MiB of MAP_SHARED|MAP_ANONYMOUS memory mapped in every process (default ${DEFAULT_SHARED_MIB})`,
  ],
  async run(opts: OptionValues, ctx: BenchContext): Promise<SuiteReport> {
    const o = parseOptions(opts);
    await ensureBuilt(ctx);
    const maxrss = await buildMaxrss(ctx.workDir);
    const row = await runTree(o, maxrss, ctx);
    ctx.log(`[${o.procs} procs, ${o.threads} threads, ${o.sharedMiB} MiB] done: dump ${row.dumpWallS.toFixed(3)} s (frozen ${row.frozenS.toFixed(3)} s), restore ${row.restoreWallS.toFixed(3)} s, ${row.verified}`);
    const rows = [row];
    return {
      rows: rows as unknown as Record<string, unknown>[],
      table: render(rows),
      targets: targets(rows),
      notes: [
        'bench_tree: the root fills the shared region (first half xorshift64* random, second half log-like text), forks processes-1 children; every thread of the tree waits on a futex word in the shared control region.',
        'dump s / restore s = wall time of `crmigrate dump PID --dir` / `crmigrate restore --dir` (includes node start-up); frozen s = the frozen time the tool reports.',
        'image MiB = size of DIR/image.crm (not compressed with --dir); MiB = 2^20 bytes.',
        'peak RSS = wait4 ru_maxrss of the CLI: the largest of the node process and (restore) crmigrate-restore, not their sum. The shared region is made and filled by the restored root itself, so it counts in the restored tree, not in crmigrate-restore.',
        'verified = after the restore the same PIDs with the same TIDs are in /proc, and on SIGUSR2 the root re-checks every byte of the shared memory, every process and thread answers, each child still shares the region (sees a write of the root), and all exit cleanly.',
      ],
    };
  },
};
