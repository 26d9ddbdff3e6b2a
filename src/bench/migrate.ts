// The `migrate` suite: migrate bench_mem at several sizes from this host to
// the local test host crm-b over SSH (real sshd, real agent), verify every
// byte there, and compare the image rate with this machine's ceiling measured
// in the same run: raw ssh2 channel throughput into `cat >/dev/null` times
// the compression ratio of the image.
import { spawn, execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { SshConnection } from '../transport/ssh.js';
import { parseTarget } from '../transport/target.js';
import { writeAll } from '../migrate/protocol.js';
import { BenchError, type BenchContext, type OptionValues, type Suite, type SuiteReport, type TargetResult } from './suite.js';
import { benchMemArgs, buildMaxrss, machineBusySeconds, CLI, markdownTable, programPath, REWRITE_USAGE, ROOT, runMeasured, runQuiet, waitFor } from './util.js';

const DEFAULT_SIZES = [64, 512, 2048];
const MiB = 1 << 20;
const PAGE = 4096;
const DEST = 'crm-b';
const STATE = '/run/crmigrate-testhosts';
const CONFIG = `${STATE}/client/config`;
const TARGET_CEILING_RATIO = 0.9;
const TARGET_RSS_BYTES = 200e6;

interface MigrateRow {
  sizeMiB: number;
  totalS: number;
  downtimeS: number;
  /** Pages sent while the process ran (--pre-copy) and while it was frozen. */
  precopyMiB: number;
  frozenMiB: number;
  /** Cores of this machine busy during the migration (both ends, sshd, everything). */
  busyCores: number;
  streamS: number;
  imageMiB: number;
  wireMiB: number;
  imageMBps: number;
  ratio: number;
  ceilingMBps: number;
  ofCeiling: number;
  sourceRssMiB: number;
  agentRssMiB: number;
}

const testhosts = (...args: string[]): string => execFileSync('bash', [join(ROOT, 'scripts/testhosts.sh'), ...args], { encoding: 'utf8' });
const inDest = (cmd: string): string => testhosts('exec', DEST, 'sh', '-c', cmd);

/** Raw ssh2 throughput: incompressible bytes into `cat >/dev/null` on the destination. */
/** The raw channel rate, and how many of the machine's cores were busy meanwhile. */
async function rawSshMBps(mib: number): Promise<{ mbps: number; busyCores: number }> {
  const conn = await SshConnection.connect(parseTarget(DEST, { configFile: CONFIG }));
  try {
    const ch = await conn.exec('cat >/dev/null');
    ch.resume(); // the channel closes only once its (empty) output is read
    const chunk = randomFillSync(Buffer.alloc(MiB));
    const t0 = process.hrtime.bigint();
    const busy0 = machineBusySeconds();
    for (let i = 0; i < mib; i++) await writeAll(ch, chunk);
    ch.end();
    await new Promise<void>((resolve) => ch.on('close', () => resolve()));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    return { mbps: (mib * MiB) / 1e6 / secs, busyCores: (machineBusySeconds() - busy0) / secs };
  } finally {
    conn.close();
  }
}

/** Is PID nspid running in the destination's PID namespace? */
function destPidOf(nspid: number): boolean {
  try {
    inDest(`test -d /proc/${nspid}`);
    return true;
  } catch {
    return false;
  }
}

async function runSize(sizeMiB: number, maxrss: string, rawMBps: number, ctx: BenchContext, opts: OptionValues, flags: string[]): Promise<MigrateRow> {
  const dir = mkdtempSync(join(ctx.workDir, `mig-${sizeMiB}-`));
  const logPath = join(dir, 'log');
  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  const logFd = openSync(logPath, 'a');
  const child = spawn(programPath('bench_mem'), benchMemArgs(sizeMiB, opts), { stdio: ['ignore', logFd, logFd], detached: true, cwd: dir });
  closeSync(logFd);
  const pid = child.pid!;
  ctx.cleanup.process(pid, 'bench_mem');
  child.on('error', () => undefined);
  await waitFor(() => /^READY$/m.test(readLog()), `bench_mem ${sizeMiB} to be READY`, 30000 + sizeMiB * 50, 20);

  const agentRss = join(dir, 'agent-rss');
  const remote = `sh -c 'exec 3>${agentRss}; exec ${maxrss} ${process.execPath} ${CLI} "$@"' sh`;
  ctx.log(`[${sizeMiB} MiB] migrate PID ${pid} to ${DEST}`);
  const busy0 = machineBusySeconds();
  const m = await runMeasured(maxrss, process.execPath, [CLI, String(pid), DEST, '-F', CONFIG, '--remote-crmigrate', remote, '--json', ...flags], ctx.cleanup, 120000 + sizeMiB * 200);
  const busyCores = (machineBusySeconds() - busy0) / m.wallSeconds;
  if (m.code !== 0) throw new BenchError(`migration of ${sizeMiB} MiB failed (exit ${m.code}): ${m.stderr.trim().split('\n').pop()}`);
  const events = m.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const at = (phase: string): number => Number(events.find((e) => e.event === 'phase' && e.phase === phase)?.t ?? NaN);
  const result = events.find((e) => e.event === 'result') as
    { imageBytes: number; wireBytes: number; seconds: number; frozenSeconds: number; precopyPages: number; frozenPages: number } | undefined;
  if (!result) throw new BenchError('the migration printed no result event');
  // the stream starts with the pre-copy when there is one
  const streamS = (at('restore') - (Number.isNaN(at('pre-copy')) ? at('transfer') : at('pre-copy'))) / 1000;
  await waitFor(() => !existsSync(`/proc/${pid}`), `source PID ${pid} to be gone`, 10000);
  ctx.cleanup.forget(pid);
  if (!destPidOf(pid)) throw new BenchError(`PID ${pid} is not running on ${DEST} after the migration`);
  const before = readLog().length;
  inDest(`kill -USR2 ${pid}`);
  await waitFor(() => /^(PASS|FAIL.*)$/m.test(readLog().slice(before)), `bench_mem ${sizeMiB} to verify on ${DEST}`, 30000 + sizeMiB * 50, 20);
  const verdict = /^(PASS|FAIL.*)$/m.exec(readLog().slice(before))![1];
  if (verdict !== 'PASS') throw new BenchError(`VERIFICATION FAILED on ${DEST} after migrating ${sizeMiB} MiB: ${verdict}`);
  await waitFor(() => existsSync(agentRss) && /maxrss_kb=/.test(readFileSync(agentRss, 'utf8')), 'the agent RSS report', 10000);
  const agentKiB = Number(/maxrss_kb=(\d+)/.exec(readFileSync(agentRss, 'utf8'))![1]);
  const ratio = result.imageBytes / result.wireBytes;
  const imageMBps = result.imageBytes / 1e6 / streamS;
  const ceilingMBps = rawMBps * ratio;
  return {
    sizeMiB, totalS: result.seconds, downtimeS: result.frozenSeconds, precopyMiB: (result.precopyPages * PAGE) / MiB, frozenMiB: (result.frozenPages * PAGE) / MiB, streamS, imageMiB: result.imageBytes / MiB, wireMiB: result.wireBytes / MiB,
    imageMBps, ratio, ceilingMBps, busyCores, ofCeiling: imageMBps / ceilingMBps, sourceRssMiB: m.maxRssKiB / 1024, agentRssMiB: agentKiB / 1024,
  };
}

function render(rows: MigrateRow[], raw: { mbps: number; busyCores: number }): string {
  const f = (n: number, d: number): string => n.toFixed(d);
  return markdownTable(
    ['size MiB', 'total s', 'downtime s', 'pre-copied MiB', 'sent frozen MiB', 'stream s', 'image MiB', 'wire MiB', 'ratio', 'image MB/s', 'ceiling MB/s', 'of ceiling', 'cores busy', 'RSS source MiB', 'RSS agent MiB'],
    rows.map((r) => [String(r.sizeMiB), f(r.totalS, 2), f(r.downtimeS, 2), f(r.precopyMiB, 1), f(r.frozenMiB, 1), f(r.streamS, 2), f(r.imageMiB, 1), f(r.wireMiB, 1), f(r.ratio, 2), f(r.imageMBps, 0),
      f(r.ceilingMBps, 0), `${f(r.ofCeiling * 100, 0)}%`, f(r.busyCores, 2), f(r.sourceRssMiB, 1), f(r.agentRssMiB, 1)]),
  ) + `\n\nraw ssh2 channel into cat >/dev/null: ${raw.mbps.toFixed(0)} MB/s, ${raw.busyCores.toFixed(2)} of ${cpus().length} cores busy`;
}

function targets(rows: MigrateRow[]): TargetResult[] {
  return [
    {
      name: `image moves at >= ${TARGET_CEILING_RATIO * 100}% of the ceiling (raw ssh2 rate x compression ratio)`,
      pass: rows.every((r) => r.ofCeiling >= TARGET_CEILING_RATIO),
      detail: rows.map((r) => `${r.sizeMiB} MiB: ${(r.ofCeiling * 100).toFixed(0)}%`).join(', '),
    },
    {
      name: `crmigrate RSS < ${TARGET_RSS_BYTES / 1e6} MB on each side at every size`,
      pass: rows.every((r) => Math.max(r.sourceRssMiB, r.agentRssMiB) * MiB < TARGET_RSS_BYTES),
      detail: rows.map((r) => `${r.sizeMiB} MiB: source ${r.sourceRssMiB.toFixed(1)} / agent ${r.agentRssMiB.toFixed(1)} MiB`).join(', '),
    },
  ];
}

export const migrateSuite: Suite = {
  name: 'migrate',
  description: 'migrate bench_mem to the local test host crm-b over SSH, verify every byte there',
  options: { sizes: { type: 'string' }, compress: { type: 'string' }, 'pre-copy': { type: 'boolean' }, 'no-pre-copy': { type: 'boolean' }, rewrite: { type: 'string' } },
  usage: [
    `--sizes A,B,...   memory sizes in MiB (default ${DEFAULT_SIZES.join(',')})`, '--compress L|none  zstd level for the migration (default: crmigrate\'s)',
    '--pre-copy | --no-pre-copy  migrate with that flag (default: crmigrate\'s, a pre-copy where the kernel can track writes)',
    REWRITE_USAGE,
  ],
  async run(opts: OptionValues, ctx: BenchContext): Promise<SuiteReport> {
    const sizes = typeof opts.sizes === 'string' ? opts.sizes.split(',').map(Number) : DEFAULT_SIZES;
    if (sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new BenchError('--sizes wants MiB values separated by commas');
    await runQuiet('make', ['-s', '-C', join(ROOT, 'test/programs')]);
    const maxrss = await buildMaxrss(ctx.workDir);
    ctx.log('bringing up test hosts crm-a crm-b');
    testhosts('up', 'crm-a', DEST);
    const rows: MigrateRow[] = [];
    let raw = { mbps: 0, busyCores: 0 };
    try {
      ctx.log('measuring the raw ssh2 channel rate (256 MiB into cat >/dev/null)');
      raw = await rawSshMBps(256);
      for (const s of sizes) {
        const compress = typeof opts.compress !== 'string' ? [] : opts.compress === 'none' ? ['--no-compress'] : ['--compress', opts.compress];
        rows.push(await runSize(s, maxrss, raw.mbps, ctx, opts, [...compress, ...(opts['pre-copy'] ? ['--pre-copy'] : []), ...(opts['no-pre-copy'] ? ['--no-pre-copy'] : [])]));
        const r = rows[rows.length - 1]!;
        ctx.log(`[${s} MiB] done: ${r.totalS.toFixed(2)} s, downtime ${r.downtimeS.toFixed(2)} s, ${(r.ofCeiling * 100).toFixed(0)}% of ceiling, PASS`);
      }
    } finally {
      testhosts('down', 'crm-a', DEST);
    }
    return {
      rows: rows as unknown as Record<string, unknown>[],
      table: render(rows, raw),
      targets: targets(rows),
      notes: [
        'source: this host (root namespace); destination: test host crm-b (own network, PID, mount, UTS and IPC namespaces, real sshd).',
        'total s = the whole migration as crmigrate reports it (connect to exit); downtime s = freeze until the destination runs the process (COMMITTED).',
        'pre-copied MiB / sent frozen MiB = pages sent while the process ran (pre-copy) / while it was frozen; without --rewrite bench_mem writes nothing while it waits, so a pre-copy of it is the best case.',
        'stream s = from the start of the image stream (the pre-copy, if any) until the last byte is sent; image MB/s = image bytes / stream s.',
        `ratio = image bytes / bytes on the wire (${opts.compress === 'none' ? 'no compression' : `zstd level ${typeof opts.compress === 'string' ? opts.compress : '-1'}, 2 worker threads`}); ceiling = raw ssh2 MB/s x ratio.`,
        'RSS = wait4 ru_maxrss of the crmigrate CLI (source) and of the agent (destination, with crmigrate-restore).',
      ],
    };
  },
};
