// Shared pieces of the benchmark suites: paths, process bookkeeping and
// cleanup by PID, running a command with its wall time and peak RSS, tables.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError, type OptionValues } from './suite.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const CLI = new URL('../cli/main.js', import.meta.url).pathname;
export const programPath = (name: string): string => join(ROOT, 'test/programs/bin', name);

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The process's command name (comm), or null if it is gone. */
export function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs: number, everyMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return;
    if (Date.now() > end) throw new BenchError(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Everything a run leaves behind, removed in reverse order by cleanup():
 * processes (killed by PID, only if still running the expected program),
 * running commands and directories.
 */
export class Cleanup {
  private readonly pids = new Map<number, string>();
  private readonly children = new Set<ChildProcess>();
  private readonly dirs: string[] = [];

  /** Kill `pid` at cleanup if it still runs a program named `comm`. */
  process(pid: number, comm: string): void {
    this.pids.set(pid, comm);
  }

  forget(pid: number): void {
    this.pids.delete(pid);
  }

  child(c: ChildProcess): void {
    this.children.add(c);
    c.once('close', () => this.children.delete(c));
  }

  dir(d: string): void {
    this.dirs.push(d);
  }

  /** Synchronous so it can also run from a signal handler or at exit. */
  run(): void {
    for (const c of this.children) {
      try {
        c.kill('SIGTERM');
      } catch {
        /* gone */
      }
    }
    for (const [pid, comm] of this.pids) {
      if (alive(pid) && commOf(pid) === comm) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }
    }
    this.pids.clear();
    for (const d of this.dirs.splice(0).reverse()) rmSync(d, { recursive: true, force: true });
  }
}

export interface Measured {
  code: number;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  /** Peak RSS of the command (or of a descendant it waited for), KiB. */
  maxRssKiB: number;
  /** CPU seconds (user + system) of the command and its waited-for descendants. */
  userSeconds: number;
  sysSeconds: number;
}

/**
 * Runs `cmd args` under the maxrss helper and resolves when it is done
 * (never rejects for a failing command: look at `code`).
 */
/** stdoutFd: a descriptor for the command's standard output instead of a pipe read here. */
export function runMeasured(maxrssBin: string, cmd: string, args: string[], cleanup: Cleanup, timeoutMs: number, stdoutFd?: number): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(maxrssBin, [cmd, ...args], { stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe', 'pipe'] });
    cleanup.child(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const rep: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (b: Buffer) => rep.push(b));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new BenchError(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      const report = Buffer.concat(rep).toString();
      const m = /maxrss_kb=(\d+) utime=([\d.]+) stime=([\d.]+) status=(\d+)/.exec(report);
      const stderr = Buffer.concat(err).toString();
      if (!m) {
        reject(new BenchError(`maxrss helper gave no report for ${cmd} ${args.join(' ')} (exit ${code ?? signal}): ${stderr.trim()}`));
        return;
      }
      resolve({ code: code ?? 128, stdout: Buffer.concat(out).toString(), stderr, wallSeconds, maxRssKiB: Number(m[1]), userSeconds: Number(m[2]), sysSeconds: Number(m[3]) });
    });
  });
}

/** Runs a short command, resolving to its stdout; rejects with its stderr on failure. */
export function runQuiet(cmd: string, args: string[], timeoutMs = 600000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new BenchError(`${cmd} ${args.join(' ')} failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' | ')}`));
      else resolve(stdout);
    });
  });
}

/** Compiles src/bench/maxrss.c into dir; returns the executable's path. */
export async function buildMaxrss(dir: string): Promise<string> {
  const src = join(ROOT, 'src/bench/maxrss.c');
  if (!existsSync(src)) throw new BenchError(`${src} is missing`);
  const bin = join(dir, 'maxrss');
  await runQuiet('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, src]);
  return bin;
}

export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...rows.map(line)].join('\n');
}

/** --rewrite N: bench_mem rewrites N MiB/s of its pages (same bytes) while it waits, so a pre-copy has writes to chase. */
export const REWRITE_USAGE = '--rewrite N       bench_mem writes N MiB/s of its pages (the same bytes) the whole time';

export function benchMemArgs(sizeMiB: number, opts: OptionValues): string[] {
  const r = opts.rewrite;
  if (r === undefined) return [String(sizeMiB)];
  if (typeof r !== 'string' || !/^\d+$/.test(r) || Number(r) < 1) throw new BenchError(`--rewrite wants MiB per second, e.g. 50 (got "${String(r)}")`);
  return [String(sizeMiB), '--rewrite', r];
}

/** Busy CPU time of the whole machine so far (/proc/stat: all but idle and iowait), in seconds. */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return (total - (f[3] ?? 0) - (f[4] ?? 0)) / 100; // USER_HZ
}
