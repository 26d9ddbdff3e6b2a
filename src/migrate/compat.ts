// What both sides compare before anything is frozen: versions, architecture,
// CPU state features, and (preflight) the files, PIDs, users and groups the
// process needs on the destination.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { FdKind, VmaKind } from '../image/records.js';
import { collectFds } from '../resources/files.js';
import { collectVmas } from '../resources/memory.js';
import { probeKernelFeatures } from '../util/kernel-features.js';
import { parseStat, parseStatus, pidInUse, readProc, readProcLink, treeMemoryBytes, treeOf } from '../util/procfs.js';
import { VERSION } from '../version.js';
import { PROTOCOL_VERSION, type Hello, type PreflightFile } from './protocol.js';

/** XCR0 of this CPU, read from our own xsave area through ptrace-free means. */
export function localXcr0(): bigint {
  // /proc/cpuinfo flags give the features; XCR0 bits: x87 1, SSE 2, AVX 4, MPX 8|16, AVX-512 32|64|128, PKRU 512, AMX 0x60000
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(' '));
  let x = 0x3n;
  if (flags.has('avx')) x |= 0x4n;
  if (flags.has('avx512f')) x |= 0xe0n;
  if (flags.has('pku')) x |= 0x200n;
  if (flags.has('amx_tile')) x |= 0x60000n;
  return x;
}

/** This host, as the other side of a migration sees it (its kernel features probed for real). */
export async function localHello(): Promise<Hello> {
  return {
    t: 'hello', protocol: PROTOCOL_VERSION, version: VERSION, arch: process.arch === 'x64' ? 'x86_64' : process.arch,
    kernel: release(), hostname: hostname(), xcr0: localXcr0().toString(16), features: await probeKernelFeatures(),
  };
}

/** Kernel features (`crmigrate check` ids) the source dumps with. */
const DUMP_FEATURES = ['ptrace-seize', 'syscall-injection', 'proc-pid-mem', 'pagemap-scan'];
/** Those the destination restores with (userfaultfd is used there when it can be, not needed). */
const RESTORE_FEATURES = ['ptrace-seize', 'syscall-injection', 'clone3-set-tid', 'pr-set-mm-map', 'proc-pid-mem'];
/** Those a pre-copy needs on the source. */
const PRECOPY_FEATURES = ['syscall-injection', 'pidfd-getfd', 'userfaultfd-wp', 'pagemap-scan'];

const lacking = (h: Hello, ids: string[]): string[] => ids.filter((id) => h.features[id] !== true);

/** Why this host cannot pre-copy ('' if it can). */
export function preCopyUnavailable(src: Hello): string {
  const missing = lacking(src, PRECOPY_FEATURES);
  return missing.length ? `this kernel lacks ${missing.join(', ')} (see crmigrate check)` : '';
}

/** Problems that make a migration from `src` to `dst` impossible. */
export function compareHellos(src: Hello, dst: Hello): string[] {
  const p: string[] = [];
  if (src.protocol !== dst.protocol) p.push(`protocol ${src.protocol} here, ${dst.protocol} on ${dst.hostname} (crmigrate ${src.version} vs ${dst.version})`);
  if (src.arch !== dst.arch) p.push(`architecture ${src.arch} here, ${dst.arch} on ${dst.hostname}`);
  const need = BigInt(`0x${src.xcr0}`);
  const have = BigInt(`0x${dst.xcr0}`);
  if ((need & ~have) !== 0n) p.push(`CPU state features 0x${(need & ~have).toString(16)} used here are missing on ${dst.hostname}`);
  for (const [h, ids, where] of [[src, DUMP_FEATURES, 'this host'], [dst, RESTORE_FEATURES, dst.hostname]] as const) {
    const missing = lacking(h, ids);
    if (!Object.keys(h.features).length) p.push(`the kernel features of ${where} could not be probed (crmigrate check)`);
    else if (missing.length) p.push(`the kernel of ${where} lacks ${missing.join(', ')} (crmigrate check)`);
  }
  return p;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface PreflightRequest {
  pids: number[];
  uids: number[];
  gids: number[];
  files: PreflightFile[];
  /** About how much memory the tree holds (treeMemoryBytes): the destination must have it. */
  memoryBytes: number;
}

/** What the process tree needs on the destination, read from /proc without freezing it. */
export async function preflightRequest(pid: number): Promise<PreflightRequest> {
  const files = new Map<string, PreflightFile>();
  const pids: number[] = [];
  const uids = new Set<number>();
  const gids = new Set<number>();
  const tree = treeOf(pid);
  // the leaders of process groups that have exited come back as helpers with their PIDs
  const root = parseStat(readProc(pid, 'stat'));
  const outsideGroup = Number(root[5]) !== pid ? Number(root[5]) : 0;
  for (const p of tree) {
    const pgid = Number(parseStat(readProc(p, 'stat'))[5]);
    if (!tree.includes(pgid) && pgid !== outsideGroup && !pids.includes(pgid)) pids.push(pgid);
  }
  for (const p of tree) {
    const status = parseStatus(readProc(p, 'status'));
    const ids = (k: string): number[] => (status.get(k) ?? '').split(/\s+/).filter(Boolean).map(Number);
    ids('Uid').forEach((u) => uids.add(u));
    [...ids('Gid'), ...ids('Groups')].forEach((g) => gids.add(g));
    if (status.get('State')?.startsWith('Z')) {
      pids.push(p);
      continue;
    }
    pids.push(p, ...readdirSync(`/proc/${p}/task`).map(Number).filter((tid) => tid !== p));
    await neededFiles(p, files);
  }
  return { pids, uids: [...uids], gids: [...gids], files: [...files.values()], memoryBytes: treeMemoryBytes(pid) };
}

const MiB = 1048576;

/** Why a host whose /proc/meminfo reads meminfo cannot take a tree holding
 * need bytes ('' if it can): the restored tree needs them, and a pre-copy's
 * staged pages are freed only as they are placed. */
export function memoryProblem(need: number, meminfo: string, host: string): string {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(meminfo);
  if (!m) return '';
  const available = Number(m[1]) * 1024;
  return need > available ? `not enough memory on ${host}: the processes hold about ${Math.ceil(need / MiB)} MiB, ${Math.floor(available / MiB)} MiB available` : '';
}

/** The files one process has mapped or open. */
async function neededFiles(pid: number, files: Map<string, PreflightFile>): Promise<void> {
  const exe = readProcLink(pid, 'exe');
  for (const v of collectVmas(pid)) {
    if (v.kind !== VmaKind.FILE_PRIVATE && v.kind !== VmaKind.FILE_SHARED) continue;
    if (files.has(v.path)) continue;
    const identity = v.kind === VmaKind.FILE_PRIVATE;
    files.set(v.path, {
      path: v.path, use: v.path === exe ? 'executable' : v.kind === VmaKind.FILE_PRIVATE ? 'mapped' : 'mapped shared',
      size: identity ? String(v.file.size) : '', mtimeNs: identity ? String(v.file.mtimeNs) : '',
      sha256: identity ? await sha256(v.path) : '',
    });
  }
  for (const f of collectFds(pid)) {
    if (files.has(f.path)) continue;
    files.set(f.path, { path: f.path, use: `open as descriptor ${f.fd}${f.kind === FdKind.DIR ? ' (directory)' : ''}`, size: '', mtimeNs: '', sha256: '' });
  }
}

/** A process as the journal names it: PID plus start time, so a PID used
 * again by another process is never signalled. */
export interface ProcessRef { pid: number; start: string }

export function processRef(pid: number): ProcessRef {
  return { pid, start: parseStat(readProc(pid, 'stat'))[22] };
}

export function stillSame(ref: ProcessRef): boolean {
  try {
    return parseStat(readProc(ref.pid, 'stat'))[22] === ref.start;
  } catch {
    return false;
  }
}

function idsIn(file: string): Set<number> {
  try {
    return new Set(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split(':')[2])));
  } catch {
    return new Set();
  }
}

/** The destination's side of the preflight: every problem, one line each. */
export async function checkPreflight(req: PreflightRequest): Promise<string[]> {
  const problems: string[] = [];
  for (const f of req.files) {
    let st;
    try {
      st = statSync(f.path, { bigint: true });
    } catch {
      problems.push(`missing file ${f.path} (${f.use})`);
      continue;
    }
    if (!f.size) continue;
    if (String(st.size) !== f.size) problems.push(`file ${f.path} (${f.use}) differs: size ${st.size}, expected ${f.size}`);
    else if (f.sha256 && (await sha256(f.path)) !== f.sha256) problems.push(`file ${f.path} (${f.use}) differs: content hash mismatch`);
  }
  for (const pid of req.pids) if (pidInUse(pid)) problems.push(`PID ${pid} is already in use on ${hostname()}`);
  const users = idsIn('/etc/passwd');
  const groups = idsIn('/etc/group');
  for (const u of req.uids) if (!users.has(u)) problems.push(`user id ${u} does not exist on ${hostname()}`);
  for (const g of req.gids) if (!groups.has(g)) problems.push(`group id ${g} does not exist on ${hostname()}`);
  const memory = memoryProblem(req.memoryBytes ?? 0, readFileSync('/proc/meminfo', 'utf8'), hostname());
  if (memory) problems.push(memory);
  return problems;
}
