#!/usr/bin/env node
// `npm run bench -- [SUITE] [--json] [suite options]`: runs one benchmark
// suite (default: the first in suites.ts) and prints a markdown table and
// its targets, or with --json the rows as JSON.
//
// Restored processes are orphans re-parented to the nearest child subreaper.
// Unless the bench already runs directly under native/build/subreaper, it
// re-executes itself under it (rather than making this node process a
// subreaper: reaping with waitpid(-1) here would steal the exit statuses of
// node's own child processes).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SUITES } from './suites.js';
import { BenchError, type BenchContext, type Suite } from './suite.js';
import { Cleanup, ROOT } from './util.js';

const SUBREAPER = join(ROOT, 'native/build/subreaper');
const EXIT_USAGE = 2;

function usage(): string {
  const lines = ['usage: npm run bench -- [SUITE] [--json] [options]', '', 'suites:'];
  for (const s of SUITES) {
    lines.push(`  ${s.name}${s === SUITES[0] ? ' (default)' : ''}  ${s.description}`);
    for (const u of s.usage) lines.push(`      ${u}`);
  }
  lines.push('', 'options:', '  --json   print the results as JSON', '  --help   this text');
  return lines.join('\n');
}

function underSubreaper(): boolean {
  try {
    return existsSync(SUBREAPER) && realpathSync(`/proc/${process.ppid}/exe`) === realpathSync(SUBREAPER);
  } catch {
    return false;
  }
}

/** Runs this same command under the subreaper; resolves to its exit status. */
function reexecUnderSubreaper(): Promise<number> {
  if (!existsSync(SUBREAPER)) throw new BenchError(`${SUBREAPER} is missing: build with \`make -C native\``);
  return new Promise((resolve) => {
    const child = spawn(SUBREAPER, [process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], { stdio: 'inherit' });
    // Ctrl-C reaches the whole process group; SIGTERM is passed on (the
    // subreaper forwards it). Either way the bench cleans up, then we exit.
    const forward = (sig: NodeJS.Signals): void => { if (sig !== 'SIGINT') child.kill(sig); };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, forward);
    child.on('error', (e) => { process.stderr.write(`bench: cannot run ${SUBREAPER}: ${e.message}\n`); resolve(1); });
    child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}

async function runSuite(suite: Suite, values: Record<string, string | boolean | undefined>): Promise<number> {
  const cleanup = new Cleanup();
  const workDir = mkdtempSync(join(tmpdir(), 'crm-bench-'));
  cleanup.dir(workDir);
  process.on('exit', () => cleanup.run());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig}, cleaning up\n`);
      cleanup.run();
      process.exit(130);
    });
  }
  const ctx: BenchContext = { log: (m) => process.stderr.write(`bench: ${m}\n`), cleanup, workDir };
  try {
    const report = await suite.run(values, ctx);
    const host = { kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memMiB: Math.round(totalmem() / 2 ** 20), node: process.version };
    if (values.json) {
      process.stdout.write(JSON.stringify({ suite: suite.name, date: new Date().toISOString(), host, rows: report.rows, targets: report.targets, notes: report.notes }, null, 2) + '\n');
    } else {
      const out = [
        `## crmigrate bench: ${suite.name}`,
        '',
        `${new Date().toISOString()}, Linux ${host.kernel}, ${host.cpus} CPUs (${host.cpuModel}), ${host.memMiB} MiB RAM, node ${host.node}`,
        '',
        report.table,
        '',
        'Targets:',
        ...report.targets.map((t) => `- ${t.pass ? 'PASS' : 'FAIL'} ${t.name}: ${t.detail}`),
        '',
        'Notes:',
        ...report.notes.map((n) => `- ${n}`),
      ];
      process.stdout.write(out.join('\n') + '\n');
    }
    return 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`bench: ${suite.name}: FAILED: ${msg}\n`);
    if (!(err instanceof BenchError) && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return 1;
  } finally {
    cleanup.run();
  }
}

async function main(argv: string[]): Promise<number> {
  const named = argv[0] !== undefined && !argv[0].startsWith('-');
  const name = named ? argv[0]! : SUITES[0]!.name;
  const rest = named ? argv.slice(1) : argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const suite = SUITES.find((s) => s.name === name);
  if (!suite) {
    process.stderr.write(`bench: unknown suite "${name}" (known: ${SUITES.map((s) => s.name).join(', ')})\n`);
    return EXIT_USAGE;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: rest, options: { json: { type: 'boolean' }, ...suite.options }, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message.split('\n')[0]}\n`);
    return EXIT_USAGE;
  }
  if (!underSubreaper()) return reexecUnderSubreaper();
  return runSuite(suite, values);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
