// Runs the C test programs (test/programs) through the real CLI: start the
// program, wait for READY, checkpoint it, restore it, trigger it with
// SIGUSR2 and read its verdict. Processes are always cleaned up by PID.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const root = new URL('../../', import.meta.url).pathname;
export const CLI = join(root, 'dist/cli/main.js');
export const programPath = (name) => join(root, 'test/programs/bin', name);

/** Runs the crmigrate CLI; resolves to { code, stdout, stderr } (never rejects). */
export function crmigrate(args, { timeoutMs = 120000 } = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Every process of the tree under pid, read from /proc (the root first). */
export function treeOf(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
      const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
      if (kids) out.push(...kids.split(' ').map(Number));
    }
  }
  return out;
}

export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitFor(cond, what, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A started test program with its scratch directory and log. */
export class TestProcess {
  /** extraStdio: more descriptors for the program from fd 3 on (e.g. 'pipe'). */
  constructor(name, args = [], { extraStdio = [], workdirArg = true } = {}) {
    this.name = name;
    this.dir = mkdtempSync(join(tmpdir(), `crm-${name}-`));
    this.workdir = join(this.dir, 'work');
    this.imageDir = join(this.dir, 'image');
    this.logPath = join(this.dir, 'log');
    mkdirSync(this.workdir, { recursive: true });
    const log = openSync(this.logPath, 'a');
    this.child = spawn(programPath(name), workdirArg ? [this.workdir, ...args] : args, { stdio: ['ignore', log, log, ...extraStdio], detached: true, cwd: this.dir });
    closeSync(log);
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  log() {
    return existsSync(this.logPath) ? readFileSync(this.logPath, 'utf8') : '';
  }

  async ready() {
    await waitFor(async () => {
      const l = this.log();
      if (l.includes('FAIL')) throw new Error(`${this.name} failed during setup:\n${l}`);
      return /^READY$/m.test(l);
    }, `${this.name} to print READY`);
    await waitFor(() => this.workdirReady(), 'work directory');
  }

  workdirReady() {
    return existsSync(this.workdir);
  }

  /** Sends the trigger and waits for the verdict line; returns the log. */
  async verdict(timeoutMs = 20000) {
    process.kill(this.pid, 'SIGUSR2');
    await waitFor(() => /^(PASS|FAIL)$/m.test(this.log()), `${this.name} to report PASS or FAIL`, timeoutMs);
    await waitFor(() => !alive(this.pid), `${this.name} to exit`, 5000).catch(() => undefined);
    return this.log();
  }

  /** Waits until the original (our child) is gone and reaped. */
  async gone() {
    await Promise.race([this.exited, sleep(10000)]);
    await waitFor(() => !existsSync(`/proc/${this.pid}`), `PID ${this.pid} to be released`, 10000);
  }

  countLines(re) {
    return this.log().split('\n').filter((l) => re.test(l)).length;
  }

  cleanup() {
    try {
      if (alive(this.pid)) process.kill(this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Asserts a test program's log says PASS with no failed check. */
export function assertPassed(assert, log, name) {
  const failed = log.split('\n').filter((l) => l.startsWith('not ok'));
  assert.deepEqual(failed, [], `${name} reported failed checks:\n${log}`);
  assert.match(log, /^PASS$/m, `${name} did not pass:\n${log}`);
}
