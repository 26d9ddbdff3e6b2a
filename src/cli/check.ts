/**
 * `crmigrate check [--json]`: report whether this kernel offers what crmigrate
 * needs. The probing is done by the native helper (util/kernel-features.ts);
 * this module maps its feature ids to human descriptions, prints a table (or
 * JSON) and computes the exit code.
 */
import { CHECKER_PATH, CheckerError, parseOutput, runChecker, type Status } from '../util/kernel-features.js';

interface FeatureInfo {
  /** Short display name. */
  label: string;
  /** What crmigrate uses the feature for. */
  purpose: string;
  /** A failed required feature makes `crmigrate check` exit 1. */
  required: boolean;
}

/** The single source of truth for feature descriptions, in display order. */
const FEATURES: Readonly<Record<string, FeatureInfo>> = {
  'ptrace-seize': {
    label: 'ptrace SEIZE/INTERRUPT',
    purpose: 'Freezes tasks and reads their registers and FPU state.',
    required: true,
  },
  'syscall-injection': {
    label: 'Syscall injection',
    purpose: 'Runs syscalls inside a frozen task (state queries, mmap).',
    required: true,
  },
  'clone3-set-tid': {
    label: 'clone3 set_tid',
    purpose: 'Recreates tasks with their original PIDs on restore.',
    required: true,
  },
  'pr-set-mm-map': {
    label: 'PR_SET_MM_MAP',
    purpose: 'Restores mm layout fields (brk, stack, args, env, auxv).',
    required: true,
  },
  'pidfd-getfd': {
    label: 'pidfd_getfd',
    purpose: 'Takes over the userfaultfd made inside each task for a pre-copy (dump --pre-copy; migrations by default).',
    required: true,
  },
  'userfaultfd-wp': {
    label: 'userfaultfd write-protect',
    purpose: 'Tracks the pages a running task writes (WP_ASYNC) for a pre-copy; without it a migration freezes first (--no-pre-copy).',
    required: false,
  },
  'pagemap-scan': {
    label: 'PAGEMAP_SCAN',
    purpose: 'Finds the present pages of each mapping when dumping, and the pages written since a pre-copy.',
    required: true,
  },
  'tcp-repair': {
    label: 'TCP repair mode',
    purpose: 'Dumps and restores established TCP connections.',
    required: false,
  },
  nftables: {
    label: 'nftables',
    purpose: 'Blocks a migrating connection\'s packets while it moves.',
    required: false,
  },
  'time-namespace': {
    label: 'Time namespace',
    purpose: 'Keeps CLOCK_MONOTONIC continuous across hosts.',
    required: false,
  },
  'proc-pid-mem': {
    label: '/proc/PID/mem',
    purpose: 'Reads and writes task memory.',
    required: true,
  },
  kcmp: {
    label: 'kcmp',
    purpose: 'Detects files shared between tasks (dumped once).',
    required: false,
  },
};


interface CheckResult {
  id: string;
  label: string;
  status: Status;
  required: boolean;
  purpose: string;
  detail: string;
}

function collect(raw: Map<string, { status: Status; required: boolean; detail: string }>): CheckResult[] {
  const results: CheckResult[] = [];
  for (const [id, info] of Object.entries(FEATURES)) {
    const r = raw.get(id);
    results.push({
      id,
      label: info.label,
      status: r?.status ?? 'FAIL',
      required: info.required,
      purpose: info.purpose,
      detail: r ? r.detail : 'not reported by the checker (outdated native build?)',
    });
  }
  for (const [id, r] of raw) {
    if (id in FEATURES) continue;
    results.push({ id, label: id, status: r.status, required: r.required, purpose: '', detail: r.detail });
  }
  return results;
}

function printTable(results: CheckResult[]): void {
  const header = ['Feature', 'Result', 'Used for', 'Detail'];
  const rows = results.map((r) => [
    r.label,
    r.required || r.status === 'PASS' ? r.status : `${r.status} (optional)`,
    r.purpose,
    r.detail,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)];

  const failedRequired = results.filter((r) => r.required && r.status === 'FAIL');
  const failedOptional = results.filter((r) => !r.required && r.status === 'FAIL');
  lines.push('');
  if (failedRequired.length === 0) {
    lines.push(
      failedOptional.length === 0
        ? 'All features available.'
        : `All required features available; ${failedOptional.length} optional feature(s) missing: ` +
            failedOptional.map((r) => r.label).join(', ') + '.',
    );
  } else {
    lines.push(
      `crmigrate cannot work on this system: ${failedRequired.length} required feature(s) missing: ` +
        failedRequired.map((r) => r.label).join(', ') + '.',
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * Run the kernel feature checker and print its results.
 * Returns 0 if every required feature is available, 1 if not, 2 if the
 * checker could not be run or produced unusable output.
 */
export async function runCheck(opts: { json: boolean }): Promise<number> {
  let results: CheckResult[];
  try {
    const out = await runChecker();
    if (out.signal !== null) {
      throw new CheckerError(`${CHECKER_PATH} crashed (killed by ${out.signal})`);
    }
    if (out.code !== 0 && out.code !== 1) {
      const why = out.stderr.trim().split('\n')[0] ?? '';
      throw new CheckerError(`${CHECKER_PATH} failed with exit status ${out.code}${why ? `: ${why}` : ''}`);
    }
    const raw = parseOutput(out.stdout);
    if (raw.size === 0) {
      throw new CheckerError(`${CHECKER_PATH} produced no results`);
    }
    results = collect(raw);
  } catch (e) {
    if (!(e instanceof CheckerError)) throw e;
    process.stderr.write(`crmigrate check: ${e.message}\n`);
    return 2;
  }

  if (opts.json) {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  } else {
    printTable(results);
  }
  return results.some((r) => r.required && r.status === 'FAIL') ? 1 : 0;
}
