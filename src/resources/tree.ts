// The process tree: which processes there are, their parents, sessions and
// process groups, and zombies (PROCESS records); and the plan that rebuilds
// that shape on restore: who calls setsid or setpgid when, who joins which
// group later, and the helper processes that stand in for group leaders
// that have exited.
import type { TreeMember } from '../dump/freeze.js';
import type { ProcessRecord, SharedFileRecord, ShmemRecord, SysvShmRecord } from '../image/records.js';
import { UnsupportedError } from '../util/errors.js';

export function processRecord(m: TreeMember, maxFd: number): ProcessRecord {
  return {
    pid: m.pid, ppid: m.ppid, pgid: m.pgid, sid: m.sid, zombie: !m.proc, exitCode: m.exit?.code ?? 0, exitSignal: m.exit?.signal ?? 0,
    tids: m.proc ? m.proc.threads.map((t) => t.pid) : [], maxFd: m.proc ? maxFd : -1,
  };
}

// crm_tree_task.flags (native/include/crm_plan.h)
export const TreeFlag = { SESSION_LEADER: 1, GROUP_LEADER: 2, JOIN_GROUP: 4, ZOMBIE: 8, HELPER: 16 } as const;
export const ObjectKind = { SHMEM: 1, FILE: 2, SYSV: 3 } as const;

export interface TreePlanTask {
  pid: number; ppid: number; pgid: number; sid: number; flags: number; nthreads: number; exitCode: number; exitSignal: number;
}
export interface TreePlanObject {
  id: number; kind: number; size: number; pos: bigint; path: string; flags: number; fdKind: number;
  shmid: number; uid: number; gid: number; // System V segments
}
export interface TreePlan {
  tasks: TreePlanTask[];
  objects: TreePlanObject[];
  maxFd: number;
}

/**
 * Plans the rebuilding of the tree. Every task is created by its parent; a
 * session leader calls setsid and a group leader setpgid(0, 0) right away,
 * so its children inherit them; once every task exists, the tasks whose
 * group is not the inherited one join it. A group whose leader has exited
 * gets a helper process with the leader's PID that exits once the group is
 * joined. The root's own session and group, when it leads neither, are
 * those of the restorer (it is restored as a daemon).
 */
export function planTree(procs: ProcessRecord[], shmem: ShmemRecord[], files: SharedFileRecord[], sysv: SysvShmRecord[] = []): TreePlan {
  const root = procs[0];
  const initial = new Map<number, { sid: number; pgid: number }>(); // what each task has right after it is created
  const tasks: TreePlanTask[] = [];
  const helpers = new Set<number>();
  for (const p of procs) {
    let flags = p.zombie ? TreeFlag.ZOMBIE : 0;
    const parent = p === root ? { sid: root.sid, pgid: root.pgid } : initial.get(p.ppid);
    if (!parent) throw new UnsupportedError(`process ${p.pid} comes before its parent ${p.ppid} in the image`);
    let now = { ...parent };
    if (p.sid === p.pid) {
      flags |= TreeFlag.SESSION_LEADER;
      now = { sid: p.pid, pgid: p.pid };
    } else if (p.sid !== parent.sid) {
      throw new UnsupportedError(`process ${p.pid} is in session ${p.sid}, which it did not get from its parent ${p.ppid}; not supported`);
    } else if (p.pgid === p.pid) {
      flags |= TreeFlag.GROUP_LEADER;
      now.pgid = p.pid;
    }
    initial.set(p.pid, now);
    const helpersHere: TreePlanTask[] = [];
    if (p.pgid !== now.pgid) {
      const outside = p.pgid === root.pgid && root.pgid !== root.pid;
      if (outside) throw new UnsupportedError(`process ${p.pid} is in the process group of the root's parent (${p.pgid}) without inheriting it; not supported`);
      flags |= TreeFlag.JOIN_GROUP;
      const leader = procs.find((x) => x.pid === p.pgid);
      if (leader && leader.pgid !== leader.pid)
        throw new UnsupportedError(`process group ${p.pgid} of process ${p.pid} is named after process ${p.pgid}, which has moved to group ${leader.pgid}; not supported`);
      if (!leader && !helpers.has(p.pgid)) {
        helpers.add(p.pgid);
        // made by the first member (a zombie cannot make it: its parent does, in the same session)
        helpersHere.push({ pid: p.pgid, ppid: p.zombie ? p.ppid : p.pid, pgid: p.pgid, sid: now.sid, flags: TreeFlag.HELPER | TreeFlag.GROUP_LEADER, nthreads: 0, exitCode: 0, exitSignal: 0 });
      }
    }
    tasks.push({ pid: p.pid, ppid: p.ppid, pgid: p.pgid, sid: p.sid, flags, nthreads: p.tids.length, exitCode: p.exitCode, exitSignal: p.exitSignal });
    tasks.push(...helpersHere);
  }
  const objects: TreePlanObject[] = [
    ...shmem.map((o) => {
      const s = sysv.find((x) => x.id === o.id);
      return s
        ? { id: o.id, kind: ObjectKind.SYSV, size: s.size, pos: 0n, path: '', flags: s.mode, fdKind: 0, shmid: s.shmid, uid: s.uid, gid: s.gid }
        : { id: o.id, kind: ObjectKind.SHMEM, size: o.size, pos: 0n, path: '', flags: 0, fdKind: 0, shmid: 0, uid: 0, gid: 0 };
    }),
    ...files.map((f) => ({ id: f.id, kind: ObjectKind.FILE, size: 0, pos: f.pos, path: f.path, flags: f.flags, fdKind: f.kind, shmid: 0, uid: 0, gid: 0 })),
  ];
  const maxFd = Math.max(2, ...procs.map((p) => p.maxFd));
  return { tasks, objects, maxFd };
}

/** Every PID the restored tree takes: processes, threads and helpers. */
export function treePids(plan: TreePlan, procs: ProcessRecord[]): number[] {
  return [...new Set([...plan.tasks.map((t) => t.pid), ...procs.flatMap((p) => p.tids)])];
}
