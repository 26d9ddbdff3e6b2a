// Open files: regular files, directories, O_PATH descriptors and the harmless
// character devices, reopened by path with their flags, offset and
// close-on-exec bit; descriptors sharing one open file description (dup)
// are found with kcmp and stay shared. Plus the checks that the files are
// the same on the restoring side.
import { readdirSync, statSync } from 'node:fs';
import { native } from '../native/addon.js';
import { FdKind, VmaKind, type FdKindId, type FdRecord, type FileIdentity, type SharedFileRecord, type VmaRecord } from '../image/records.js';
import type { Plan } from '../restore/plan-model.js';
import { UnsupportedError } from '../util/errors.js';
import { parseFdinfo, procPath, readProc, readProcLink } from '../util/procfs.js';
import { NO_FILE, fileIdentity } from './memory.js';

const O_CLOEXEC = 0o2000000;
const O_PATH = 0o10000000;
const SAFE_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom']);

function describeSpecial(target: string): string {
  if (target.startsWith('pipe:')) return 'a pipe';
  if (target.startsWith('socket:')) return 'a socket';
  const anon = /^anon_inode:\[?([^\]]+)\]?/.exec(target);
  if (anon) return `an ${anon[1]} descriptor`;
  return target;
}

export function collectFds(pid: number): FdRecord[] {
  const fds = readdirSync(procPath(pid, 'fd')).map(Number).sort((a, b) => a - b);
  const out: FdRecord[] = [];
  for (const fd of fds) {
    let target: string;
    try {
      target = readProcLink(pid, `fd/${fd}`);
    } catch {
      continue; // closed meanwhile (cannot happen while frozen, but harmless)
    }
    const info = parseFdinfo(readProc(pid, `fdinfo/${fd}`));
    const rawFlags = parseInt(info.get('flags') ?? '0', 8);
    const where = `descriptor ${fd} of process ${pid}`;
    if (!target.startsWith('/')) throw new UnsupportedError(`${where} is ${describeSpecial(target)}; not supported yet`);
    if (target.endsWith(' (deleted)')) throw new UnsupportedError(`${where} refers to a deleted file ${target}; unlinked files are not supported yet`);
    const st = statSync(procPath(pid, `fd/${fd}`));
    let kind: FdKindId;
    if (rawFlags & O_PATH) kind = FdKind.PATH;
    else if (st.isDirectory()) kind = FdKind.DIR;
    else if (st.isFile()) kind = FdKind.FILE;
    else if (st.isCharacterDevice() && SAFE_DEVICES.has(target)) kind = FdKind.FILE;
    else if (st.isCharacterDevice()) throw new UnsupportedError(`${where} is the character device ${target} (a terminal?); not supported yet`);
    else if (st.isFIFO()) throw new UnsupportedError(`${where} is a FIFO ${target}; not supported yet`);
    else throw new UnsupportedError(`${where} is ${target}, a kind of file not supported`);
    const file: FileIdentity = st.isFile() ? fileIdentity(procPath(pid, `fd/${fd}`)) : NO_FILE;
    out.push({
      fd, kind, path: target, flags: rawFlags & ~O_CLOEXEC, pos: BigInt(info.get('pos') ?? '0'),
      cloexec: (rawFlags & O_CLOEXEC) !== 0, shareId: 0, file,
    });
  }
  return out;
}

/**
 * Descriptors of one open file description (dup, dup2, inherited across
 * fork) get one share id, unique in the tree (found with kcmp). Returns the
 * descriptions used by more than one task: they are made once on restore
 * and inherited by every task.
 */
export function assignSharing(tasks: { pid: number; fds: FdRecord[] }[]): SharedFileRecord[] {
  interface Description { pid: number; fd: FdRecord; users: Set<number>; count: number; id: number }
  const byPath = new Map<string, Description[]>();
  const of = new Map<FdRecord, Description>();
  for (const t of tasks) {
    for (const f of t.fds) {
      const candidates = byPath.get(f.path) ?? [];
      let d = candidates.find((c) => native.sameOpenFile(c.pid, c.fd.fd, t.pid, f.fd));
      if (!d) {
        d = { pid: t.pid, fd: f, users: new Set(), count: 0, id: 0 };
        candidates.push(d);
        byPath.set(f.path, candidates);
      }
      d.users.add(t.pid);
      d.count++;
      of.set(f, d);
    }
  }
  let next = 1;
  const shared: SharedFileRecord[] = [];
  for (const t of tasks) {
    for (const f of t.fds) {
      const d = of.get(f)!;
      if (d.count < 2) { f.shareId = 0; continue; }
      if (!d.id) {
        d.id = next++;
        if (d.users.size > 1) shared.push({ id: d.id, kind: d.fd.kind, path: d.fd.path, flags: d.fd.flags, pos: d.fd.pos });
      }
      f.shareId = d.id;
    }
  }
  return shared;
}

export function planFds(fds: FdRecord[], plan: Plan): void {
  plan.fds = fds.map((f) => ({ fd: f.fd, kind: f.kind, flags: f.flags, cloexec: f.cloexec, pos: f.pos, path: f.path, shareId: f.shareId }));
}

/**
 * Every file the image reopens or maps must exist here. Privately mapped
 * files (the executable, libraries) must also be the very same file: pages
 * not stored in the image come from them. Files open for reading or writing
 * and shared mappings may have changed legitimately (logs grow). Returns the
 * problems found, one line each.
 */
export function checkFilesPresent(vmas: VmaRecord[], fds: FdRecord[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const want: { path: string; file: FileIdentity; what: string }[] = [
    ...vmas.filter((v) => v.kind === VmaKind.FILE_PRIVATE).map((v) => ({ path: v.path, file: v.file, what: 'mapped' })),
    ...vmas.filter((v) => v.kind === VmaKind.FILE_SHARED).map((v) => ({ path: v.path, file: NO_FILE, what: 'mapped shared' })),
    ...fds.map((f) => ({ path: f.path, file: NO_FILE, what: `open as descriptor ${f.fd}` })),
  ];
  for (const w of want) {
    if (seen.has(w.path)) continue;
    seen.add(w.path);
    let now: FileIdentity;
    try {
      now = fileIdentity(w.path);
    } catch {
      problems.push(`missing file ${w.path} (${w.what})`);
      continue;
    }
    if (w.file.ino === 0n) continue; // directories, devices: presence is enough
    if (now.size !== w.file.size || now.mtimeNs !== w.file.mtimeNs)
      problems.push(`file ${w.path} (${w.what}) differs from the checkpointed one (size ${now.size} vs ${w.file.size}, or modification time)`);
  }
  return problems;
}
