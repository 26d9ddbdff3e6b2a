// What this kernel offers crmigrate, as probed by the native helper
// native/build/crmigrate-check (source: native/tools/crmigrate-check.c). It
// tries each feature for real and prints one tab-separated line per feature:
//
//     <id>\t<PASS|FAIL>\t<required|optional>\t<detail>
//
// `crmigrate check` reports them; a migration compares both hosts' (hello).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type Status = 'PASS' | 'FAIL';

export const CHECKER_PATH = fileURLToPath(new URL('../../native/build/crmigrate-check', import.meta.url));
/** The checker promises to finish in under 5 s; allow slack before giving up. */
const CHECKER_TIMEOUT_MS = 15_000;

export class CheckerError extends Error {}

interface CheckerOutput {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runChecker(): Promise<CheckerOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(CHECKER_PATH, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, CHECKER_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(spawnError(e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new CheckerError(`${CHECKER_PATH} did not finish within ${CHECKER_TIMEOUT_MS / 1000} s`));
        return;
      }
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

function spawnError(e: unknown): CheckerError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') {
    return new CheckerError(`checker binary not found at ${CHECKER_PATH} (build the native helpers first)`);
  }
  if (code === 'EACCES') {
    return new CheckerError(`checker binary at ${CHECKER_PATH} is not executable`);
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new CheckerError(`cannot run ${CHECKER_PATH}: ${msg}`);
}

/** Parse the checker's lines; unknown ids are kept, listed after the known ones. */
export function parseOutput(stdout: string): Map<string, { status: Status; required: boolean; detail: string }> {
  const results = new Map<string, { status: Status; required: boolean; detail: string }>();
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split('\t');
    const [id, status, req] = fields;
    if (
      fields.length < 4 ||
      !id ||
      (status !== 'PASS' && status !== 'FAIL') ||
      (req !== 'required' && req !== 'optional')
    ) {
      throw new CheckerError(`unexpected output from ${CHECKER_PATH}: ${JSON.stringify(line.slice(0, 120))}`);
    }
    results.set(id, { status, required: req === 'required', detail: fields.slice(3).join(' ') });
  }
  return results;
}

/** Which features this kernel offers, by id; empty if the probe cannot run. */
export async function probeKernelFeatures(): Promise<Record<string, boolean>> {
  try {
    const out = await runChecker();
    if (out.signal !== null || (out.code !== 0 && out.code !== 1)) return {};
    return Object.fromEntries([...parseOutput(out.stdout)].map(([id, r]) => [id, r.status === 'PASS']));
  } catch {
    return {};
  }
}
