// Reading /proc/PID files: one place for the parsing rules.
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { CrmError, ExitCode } from './errors.js';

export const procPath = (pid: number, name: string): string => `/proc/${pid}/${name}`;

export function readProc(pid: number, name: string): string {
  try {
    return readFileSync(procPath(pid, name), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH')
      throw new CrmError(`no process with PID ${pid}`, ExitCode.NO_PROCESS);
    throw err;
  }
}

export function readProcLink(pid: number, name: string): string {
  return readlinkSync(procPath(pid, name));
}

/** /proc/PID/stat fields, 1-based as in proc(5); field 2 (comm) kept whole. */
export function parseStat(text: string): string[] {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('malformed /proc/PID/stat');
  const rest = text.slice(close + 2).trim().split(' ');
  return ['', text.slice(0, open).trim(), text.slice(open + 1, close), ...rest];
}

/** "Key:\tvalue" lines of /proc/PID/status. */
export function parseStatus(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** /proc/PID/fdinfo/N: "pos", "flags" (octal), "mnt_id", ... */
export function parseFdinfo(text: string): Map<string, string> {
  return parseStatus(text);
}

/** Is the PID (or thread ID) taken on this host? Zombies count. */
export const pidInUse = (pid: number): boolean => existsSync(procPath(pid, ''));

/** The children of a process (made by any of its threads); [] once it is gone. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = readdirSync(procPath(pid, 'task'));
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      for (const c of readProc(pid, `task/${tid}/children`).trim().split(/\s+/).filter(Boolean)) out.push(Number(c));
    } catch {
      /* thread gone */
    }
  }
  return out;
}

/** A process and every process below it, the process first. */
export function treeOf(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const c of childrenOf(out[i])) if (!out.includes(c)) out.push(c);
  return out;
}

/** About how many bytes a dump of the tree under pid copies: its resident
 * anonymous and shared memory (RssAnon + RssShmem of each process). */
export function treeMemoryBytes(pid: number): number {
  let kib = 0;
  let tree: number[];
  try {
    tree = treeOf(pid);
  } catch {
    return 0; // gone: the freeze will say so
  }
  for (const p of tree) {
    try {
      const st = parseStatus(readProc(p, 'status'));
      kib += parseInt(st.get('RssAnon') ?? '0', 10) + parseInt(st.get('RssShmem') ?? '0', 10);
    } catch {
      /* gone */
    }
  }
  return kib * 1024;
}
