// The task itself: identity, memory layout fields (for PR_SET_MM_MAP), auxv,
// executable, working directory and root, personality, umask, credentials,
// rseq registration.
import { readFileSync } from 'node:fs';
import { native } from '../native/addon.js';
import type { Injector } from '../dump/inject.js';
import { SYS } from '../dump/freeze.js';
import type { TaskRecord } from '../image/records.js';
import { TaskFlag, type Plan } from '../restore/plan-model.js';
import { UnsupportedError } from '../util/errors.js';
import { parseStat, parseStatus, procPath, readProc, readProcLink } from '../util/procfs.js';

/** The kernel cuts comm at 15 bytes, possibly inside a UTF-8 sequence. */
export function commOf(name: string): string {
  let s = name.replace(/\uFFFD$/, '');
  while (Buffer.byteLength(s) > 15) s = s.slice(0, -1);
  return s;
}

const ids = (line: string | undefined): number[] => (line ?? '').split(/\s+/).filter(Boolean).map(Number);

export function collectTask(pid: number, inj: Injector, tids: number[]): TaskRecord {
  const stat = parseStat(readProc(pid, 'stat'));
  const status = parseStatus(readProc(pid, 'status'));
  const num = (i: number): number => Number(stat[i]);
  const exe = readProcLink(pid, 'exe');
  if (exe.endsWith(' (deleted)')) throw new UnsupportedError(`the executable of process ${pid} was deleted (${exe}); unlinked files are not supported yet`);
  const brk = inj.call(SYS.brk, [0]);
  const rseq = native.getRseq(pid);
  const auxv = readFileSync(procPath(pid, 'auxv'));
  // trim after AT_NULL, keeping the terminating pair
  let auxLen = auxv.length - (auxv.length % 16);
  for (let i = 0; i + 16 <= auxv.length; i += 16) if (auxv.readBigUInt64LE(i) === 0n) { auxLen = i + 16; break; }
  return {
    pid,
    tid: pid,
    ppid: num(4),
    pgid: num(5),
    sid: num(6),
    comm: commOf(stat[2]),
    exe,
    cwd: readProcLink(pid, 'cwd'),
    root: readProcLink(pid, 'root'),
    personality: parseInt(readProc(pid, 'personality').trim(), 16),
    umask: parseInt(status.get('Umask') ?? '22', 8),
    uids: ids(status.get('Uid')),
    gids: ids(status.get('Gid')),
    startCode: num(26), endCode: num(27), startStack: num(28),
    startData: num(45), endData: num(46), startBrk: num(47),
    brk: Number(brk),
    argStart: num(48), argEnd: num(49), envStart: num(50), envEnd: num(51),
    auxv: auxv.subarray(0, auxLen),
    rseqAbi: rseq.length ? rseq.abiPointer : 0n,
    rseqLen: rseq.length,
    rseqSig: rseq.signature,
    ...collectCreds(pid, status, inj, tids),
  };
}

const PR_GET_DUMPABLE = 3;
const PR_GET_SECUREBITS = 27;
const SYS_prctl = 157;
const CRED_KEYS = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];

/** Credentials: the same in every thread (tids, the frozen ones; refused
 * otherwise); securebits and the dumpable flag are asked in the task. */
function collectCreds(pid: number, status: Map<string, string>, inj: Injector, tids: number[]): Pick<TaskRecord,
  'groups' | 'capInh' | 'capPrm' | 'capEff' | 'capBnd' | 'capAmb' | 'securebits' | 'noNewPrivs' | 'dumpable'> {
  for (const tid of tids) {
    if (tid === pid) continue;
    const ts = parseStatus(readProc(pid, `task/${tid}/status`));
    for (const k of CRED_KEYS)
      if ((ts.get(k) ?? '') !== (status.get(k) ?? '')) throw new UnsupportedError(`thread ${tid} of process ${pid} has its own credentials (${k}); not supported`);
  }
  const groups = ids(status.get('Groups'));
  if (groups.length > 64) throw new UnsupportedError(`process ${pid} is in ${groups.length} supplementary groups; at most 64 are supported`);
  const cap = (k: string): bigint => BigInt(`0x${status.get(k) ?? '0'}`);
  const securebits = inj.call(SYS_prctl, [PR_GET_SECUREBITS, 0, 0, 0, 0]);
  const dumpable = inj.call(SYS_prctl, [PR_GET_DUMPABLE, 0, 0, 0, 0]);
  if (securebits < 0n || dumpable < 0n) throw new UnsupportedError(`cannot read the securebits of process ${pid}`);
  return {
    groups, capInh: cap('CapInh'), capPrm: cap('CapPrm'), capEff: cap('CapEff'), capBnd: cap('CapBnd'), capAmb: cap('CapAmb'),
    securebits: Number(securebits), noNewPrivs: status.get('NoNewPrivs') === '1', dumpable: Number(dumpable),
  };
}

export function planTask(t: TaskRecord, plan: Plan): void {
  const p = plan.task;
  p.pid = t.pid;
  p.tid = t.tid;
  p.comm = t.comm;
  p.exePath = t.exe;
  p.cwdPath = t.cwd;
  p.rootPath = t.root;
  p.personality = t.personality;
  p.umask = t.umask;
  p.mm = {
    startCode: t.startCode, endCode: t.endCode, startData: t.startData, endData: t.endData, startBrk: t.startBrk,
    brk: t.brk, startStack: t.startStack, argStart: t.argStart, argEnd: t.argEnd, envStart: t.envStart, envEnd: t.envEnd,
  };
  p.auxv = t.auxv;
  p.creds = {
    uids: t.uids, gids: t.gids, groups: t.groups, capInh: t.capInh, capPrm: t.capPrm, capEff: t.capEff, capBnd: t.capBnd,
    capAmb: t.capAmb, securebits: t.securebits, noNewPrivs: t.noNewPrivs, dumpable: t.dumpable,
  };
  if (t.rseqLen) {
    p.flags |= TaskFlag.RSEQ;
    p.rseq = { abi: t.rseqAbi, len: t.rseqLen, sig: t.rseqSig };
  }
  // sessions and process groups are the tree's (see resources/tree.ts)
}

/** Refuses what this version cannot move, before anything is changed. */
export function checkTaskSupported(pid: number): void {
  const status = parseStatus(readProc(pid, 'status'));
  if (status.get('State')?.startsWith('Z')) throw new UnsupportedError(`process ${pid} is a zombie`);
  if (Number(status.get('Kthread') ?? '0') === 1 || readProc(pid, 'cmdline') === '' && !readProcLink(pid, 'exe'))
    throw new UnsupportedError(`process ${pid} is a kernel thread`);
  const seccomp = Number(status.get('Seccomp') ?? '0');
  if (seccomp !== 0) throw new UnsupportedError(`process ${pid} runs under a seccomp filter (mode ${seccomp}); not supported yet`);
  const ns = ['pid', 'mnt', 'net', 'ipc', 'uts', 'user', 'time'];
  for (const n of ns) {
    if (readProcLink(pid, `ns/${n}`) !== readProcLink(process.pid, `ns/${n}`))
      throw new UnsupportedError(`process ${pid} lives in its own ${n} namespace; namespaces are not supported yet`);
  }
}
