// Unit tests of the process tree: planTree (src/resources/tree.ts) turns the
// PROCESS records of an image into the plan that rebuilds the tree (who calls
// setsid or setpgid, who joins which group later, helpers for groups whose
// leader is gone, zombies); encodeTree (src/restore/plan-codec.ts) writes it
// in the layout of native/include/crm_plan.h; the C reader
// (native/restore/tree.c, `crmigrate-restore --print-tree`) must decode the
// same values, and refuse a damaged section cleanly (exit 1, one line on stderr).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ObjectKind, planTree, TreeFlag, treePids } from '../../dist/resources/tree.js';
import { encodeTree, TREE_MAGIC, TREE_SIZES, TREE_VERSION } from '../../dist/restore/plan-codec.js';
import { FdKind } from '../../dist/image/records.js';
import { BIN, RESTORE } from '../vectors/make-plan-vector.mjs';
import { cValues, offsetLines } from './c-layout.mjs';

const { SESSION_LEADER: SL, GROUP_LEADER: GL, JOIN_GROUP: JOIN, ZOMBIE, HELPER } = TreeFlag;

/** A live PROCESS record (single-threaded unless tids are given). */
const live = (pid, ppid, pgid, sid, o = {}) => ({ pid, ppid, pgid, sid, zombie: false, exitCode: 0, exitSignal: 0, tids: [pid], maxFd: 2, ...o });
/** A zombie PROCESS record. */
const zombie = (pid, ppid, pgid, sid, exitCode, exitSignal) => ({ pid, ppid, pgid, sid, zombie: true, exitCode, exitSignal, tids: [], maxFd: -1 });
/** The task of a plan as planTree makes it, defaults filled in. */
const task = (pid, ppid, pgid, sid, flags, o = {}) => ({ pid, ppid, pgid, sid, flags, nthreads: 1, exitCode: 0, exitSignal: 0, ...o });

/** Runs `crmigrate-restore --print-tree` with input on stdin. */
function printTree(input) {
  const r = spawnSync(RESTORE, ['--print-tree'], { input, encoding: 'utf8', timeout: 10000 });
  assert.equal(r.error, undefined, String(r.error));
  return r;
}

/** What --print-tree prints for a plan (tree_print in tree.c). */
function printed(plan) {
  return [
    `tree tasks=${plan.tasks.length} objects=${plan.objects.length} max_fd=${plan.maxFd}`,
    ...plan.tasks.map((t) => `task pid=${t.pid} ppid=${t.ppid} pgid=${t.pgid} sid=${t.sid} flags=${t.flags} threads=${t.nthreads} exit=${t.exitCode}/${t.exitSignal}`),
    ...plan.objects.map((o) => `object id=${o.id} kind=${o.kind} size=${o.size} pos=${o.pos} path=${o.kind === ObjectKind.FILE ? o.path : ''} flags=${o.flags.toString(8)} shmid=${o.shmid} uid=${o.uid} gid=${o.gid}`),
    '',
  ].join('\n');
}

/** Asserts that the C side decodes exactly the plan. */
function decodesTo(plan, label = '') {
  assert.ok(existsSync(RESTORE), `${RESTORE} missing: run make -C native`);
  const r = printTree(encodeTree(plan));
  assert.equal(r.signal, null, label);
  assert.equal(r.stderr, '', label);
  assert.equal(r.status, 0, label);
  assert.equal(r.stdout, printed(plan), label);
}

const unsupported = (re) => (e) => {
  assert.equal(e.name, 'UnsupportedError', `expected an UnsupportedError, got ${e.name}: ${e.message}`);
  assert.match(e.message, re);
  return true;
};
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exactly = (s) => new RegExp(`^${esc(s)}$`);

// ---------------------------------------------------------------------------
// planTree

test('planTree: a single process', () => {
  // a session leader (setsid implies its own group: no GROUP_LEADER)
  const sl = planTree([live(100, 1, 100, 100, { tids: [100, 101, 102], maxFd: 7 })], [], []);
  assert.deepEqual(sl, { tasks: [task(100, 1, 100, 100, SL, { nthreads: 3 })], objects: [], maxFd: 7 });
  decodesTo(sl, 'session leader');
  // a group leader in its parent's session (started from a shell)
  const gl = planTree([live(100, 90, 100, 80, { maxFd: -1 })], [], []);
  assert.deepEqual(gl, { tasks: [task(100, 90, 100, 80, GL)], objects: [], maxFd: 2 });
  decodesTo(gl, 'group leader');
  // in the group and session of its parent: nothing to do, it takes the restorer's
  const daemon = planTree([live(100, 90, 90, 80, { maxFd: 0 })], [], []);
  assert.deepEqual(daemon, { tasks: [task(100, 90, 90, 80, 0)], objects: [], maxFd: 2 });
  decodesTo(daemon, 'in its parent group');
  // maxFd: the highest of any process, at least 2 (stdin, stdout, stderr)
  assert.equal(planTree([live(100, 1, 100, 100, { maxFd: (1 << 20) - 1 })], [], []).maxFd, (1 << 20) - 1);
  assert.deepEqual(treePids(sl, [live(100, 1, 100, 100, { tids: [100, 101, 102] })]), [100, 101, 102]);
});

// The tree of the next tests:
//   100 root, session leader, 3 threads
//   ├── 200 session leader                      SESSION_LEADER
//   │   ├── 210 inherits session and group 200  -
//   │   └── 220 group leader in session 200     GROUP_LEADER
//   ├── 300 group leader                        GROUP_LEADER
//   │   ├── 310 inherits group 300              -
//   │   ├── 320 back in the root's group 100    JOIN_GROUP
//   │   └── 330 zombie, killed by SIGKILL       ZOMBIE (inherits group 300)
//   ├── 400 joins its sibling's group 300       JOIN_GROUP
//   │   └── 410 group 300 too (it inherits 100) JOIN_GROUP
//   ├── 500 zombie, exit code 3                 ZOMBIE
//   ├── 600 zombie leading group 600            ZOMBIE | GROUP_LEADER
//   └── 700 joins the zombie's group 600        JOIN_GROUP
const THREE_LEVELS = [
  live(100, 1, 100, 100, { tids: [100, 101, 102], maxFd: 9 }),
  live(200, 100, 200, 200, { maxFd: 4 }),
  live(210, 200, 200, 200),
  live(220, 200, 220, 200, { tids: [220, 221] }),
  live(300, 100, 300, 100, { maxFd: 1000 }),
  live(310, 300, 300, 100),
  live(320, 300, 100, 100),
  zombie(330, 300, 300, 100, 0, 9),
  live(400, 100, 300, 100),
  live(410, 400, 300, 100),
  zombie(500, 100, 100, 100, 3, 0),
  zombie(600, 100, 600, 100, 0, 15),
  live(700, 100, 600, 100, { maxFd: -1 }),
];

test('planTree: three levels with session and group leaders, joiners and zombies', () => {
  const plan = planTree(THREE_LEVELS, [], []);
  assert.deepEqual(plan.tasks, [
    task(100, 1, 100, 100, SL, { nthreads: 3 }),
    task(200, 100, 200, 200, SL),
    task(210, 200, 200, 200, 0),
    task(220, 200, 220, 200, GL, { nthreads: 2 }),
    task(300, 100, 300, 100, GL),
    task(310, 300, 300, 100, 0),
    task(320, 300, 100, 100, JOIN),
    task(330, 300, 300, 100, ZOMBIE, { nthreads: 0, exitSignal: 9 }),
    task(400, 100, 300, 100, JOIN),
    task(410, 400, 300, 100, JOIN),
    task(500, 100, 100, 100, ZOMBIE, { nthreads: 0, exitCode: 3 }),
    task(600, 100, 600, 100, ZOMBIE | GL, { nthreads: 0, exitSignal: 15 }),
    task(700, 100, 600, 100, JOIN),
  ]);
  assert.equal(plan.maxFd, 1000);
  assert.deepEqual(plan.objects, []);
  // no helper: every group has its leader in the tree
  assert.ok(plan.tasks.every((t) => !(t.flags & HELPER)));
  assert.deepEqual(treePids(plan, THREE_LEVELS), [100, 200, 210, 220, 300, 310, 320, 330, 400, 410, 500, 600, 700, 101, 102, 221]);
  decodesTo(plan);
  // the input is not modified
  assert.deepEqual(THREE_LEVELS[0], live(100, 1, 100, 100, { tids: [100, 101, 102], maxFd: 9 }));
});

test('planTree: a group whose leader exited gets a helper with its PID, right after its first member', () => {
  // 100 root (session leader)
  // ├── 200 in group 150 (leader gone)  → helper 150, child of 200
  // │   └── 210 in group 150 too
  // ├── 300 in group 150
  // ├── 400 session leader
  // │   └── 420 in group 450 (leader gone) of session 400 → helper 450, in session 400
  // └── 500 in group 550 (leader gone), two threads → helper 550
  const procs = [
    live(100, 1, 100, 100),
    live(200, 100, 150, 100),
    live(210, 200, 150, 100),
    live(300, 100, 150, 100),
    live(400, 100, 400, 400),
    live(420, 400, 450, 400),
    live(500, 100, 550, 100, { tids: [500, 501] }),
  ];
  const plan = planTree(procs, [], []);
  const helper = (pid, ppid, sid) => task(pid, ppid, pid, sid, HELPER | GL, { nthreads: 0 });
  assert.deepEqual(plan.tasks, [
    task(100, 1, 100, 100, SL),
    task(200, 100, 150, 100, JOIN),
    helper(150, 200, 100),
    task(210, 200, 150, 100, JOIN),
    task(300, 100, 150, 100, JOIN),
    task(400, 100, 400, 400, SL),
    task(420, 400, 450, 400, JOIN),
    helper(450, 420, 400),
    task(500, 100, 550, 100, JOIN, { nthreads: 2 }),
    helper(550, 500, 100),
  ]);
  // one helper per group, the PIDs it takes
  assert.equal(plan.tasks.filter((t) => t.flags & HELPER).length, 3);
  assert.deepEqual(treePids(plan, procs).sort((a, b) => a - b), [100, 150, 200, 210, 300, 400, 420, 450, 500, 501, 550]);
  decodesTo(plan);
});

test('planTree: zombies keep their exit status (code, or the signal that killed them)', () => {
  const procs = [
    live(100, 1, 100, 100),
    zombie(101, 100, 100, 100, 0, 0),
    zombie(102, 100, 100, 100, 255, 0),
    zombie(103, 100, 100, 100, 0, 9),
    zombie(104, 100, 100, 100, 0, 64),
    zombie(105, 100, 105, 100, 42, 0), // it had made its own group
    zombie(106, 100, 106, 106, 0, 11), // and its own session
  ];
  const plan = planTree(procs, [], []);
  assert.deepEqual(plan.tasks.slice(1), [
    task(101, 100, 100, 100, ZOMBIE, { nthreads: 0 }),
    task(102, 100, 100, 100, ZOMBIE, { nthreads: 0, exitCode: 255 }),
    task(103, 100, 100, 100, ZOMBIE, { nthreads: 0, exitSignal: 9 }),
    task(104, 100, 100, 100, ZOMBIE, { nthreads: 0, exitSignal: 64 }),
    task(105, 100, 105, 100, ZOMBIE | GL, { nthreads: 0, exitCode: 42 }),
    task(106, 100, 106, 106, ZOMBIE | SL, { nthreads: 0, exitSignal: 11 }),
  ]);
  assert.equal(plan.maxFd, 2);
  decodesTo(plan);
});

test('planTree: shared memory and shared files become the objects, shared memory first', () => {
  const shmem = [{ id: 1, size: 0x200000 }, { id: 2, size: 4096 }];
  const files = [
    { id: 1, kind: FdKind.FILE, path: '/var/log/app.log', flags: 0o102001, pos: 77n },
    { id: 9, kind: FdKind.DIR, path: '/srv/a dir', flags: 0o200000, pos: 0n },
    { id: 10, kind: FdKind.PATH, path: '/var/log/app.log', flags: 0o10000000, pos: 2n ** 63n },
  ];
  const sysv = [{ id: 2, shmid: 7, size: 4000, mode: 0o640, uid: 65534, gid: 100 }];
  const plan = planTree([live(100, 1, 100, 100)], shmem, files, sysv);
  assert.deepEqual(plan.objects, [
    { id: 1, kind: ObjectKind.SHMEM, size: 0x200000, pos: 0n, path: '', flags: 0, fdKind: 0, shmid: 0, uid: 0, gid: 0 },
    { id: 2, kind: ObjectKind.SYSV, size: 4000, pos: 0n, path: '', flags: 0o640, fdKind: 0, shmid: 7, uid: 65534, gid: 100 },
    { id: 1, kind: ObjectKind.FILE, size: 0, pos: 77n, path: '/var/log/app.log', flags: 0o102001, fdKind: FdKind.FILE, shmid: 0, uid: 0, gid: 0 },
    { id: 9, kind: ObjectKind.FILE, size: 0, pos: 0n, path: '/srv/a dir', flags: 0o200000, fdKind: FdKind.DIR, shmid: 0, uid: 0, gid: 0 },
    { id: 10, kind: ObjectKind.FILE, size: 0, pos: 2n ** 63n, path: '/var/log/app.log', flags: 0o10000000, fdKind: FdKind.PATH, shmid: 0, uid: 0, gid: 0 },
  ]);
  decodesTo(plan);
});

test('planTree: the unsupported shapes are refused with their reasons', () => {
  // a process in a session it did not get from its parent (its parent made a new one after forking it)
  assert.throws(() => planTree([live(100, 1, 100, 100), live(200, 100, 200, 200), live(210, 200, 100, 100)], [], []),
    unsupported(exactly('process 210 is in session 100, which it did not get from its parent 200; not supported')));
  // ... or a session from outside the tree
  assert.throws(() => planTree([live(100, 1, 100, 100), live(200, 100, 200, 999)], [], []),
    unsupported(exactly('process 200 is in session 999, which it did not get from its parent 100; not supported')));
  // the root's outside session (it is not a session leader), left and come back to by a grandchild
  assert.throws(() => planTree([live(100, 90, 100, 80), live(200, 100, 200, 200), live(210, 200, 80, 80)], [], []),
    unsupported(exactly('process 210 is in session 80, which it did not get from its parent 200; not supported')));
  // a process in the root's outside group that did not inherit it (its parent made a group of its own)
  assert.throws(() => planTree([live(100, 90, 90, 80), live(200, 100, 200, 80), live(210, 200, 90, 80)], [], []),
    unsupported(exactly("process 210 is in the process group of the root's parent (90) without inheriting it; not supported")));
  // the same for a zombie
  assert.throws(() => planTree([live(100, 90, 90, 80), live(200, 100, 200, 80), zombie(210, 200, 90, 80, 0, 9)], [], []),
    unsupported(exactly("process 210 is in the process group of the root's parent (90) without inheriting it; not supported")));
  // a process before its parent
  assert.throws(() => planTree([live(100, 1, 100, 100), live(210, 200, 100, 100), live(200, 100, 100, 100)], [], []),
    unsupported(exactly('process 210 comes before its parent 200 in the image')));
  assert.throws(() => planTree([live(100, 1, 100, 100), live(200, 999, 100, 100)], [], []),
    unsupported(exactly('process 200 comes before its parent 999 in the image')));
  // but the root's outside group inherited (directly or from a parent that kept it) is fine, no helper for it
  const ok = planTree([live(100, 90, 90, 80), live(200, 100, 90, 80), live(210, 200, 90, 80), live(300, 100, 300, 80)], [], []);
  assert.deepEqual(ok.tasks.map((t) => t.flags), [0, 0, 0, GL]);
  decodesTo(ok);
});

// Shapes planTree neither refuses nor plans in a way the restorer accepts.
// Either is acceptable (UnsupportedError, or a plan crmigrate-restore takes);
// a plan the restorer refuses only fails the restore late, after the image
// was read and PIDs checked, with a message about the restore input.
function plannedOrRefused(procs) {
  let plan;
  try {
    plan = planTree(procs, [], []);
  } catch (e) {
    assert.equal(e.name, 'UnsupportedError', e.message);
    return;
  }
  const r = printTree(encodeTree(plan));
  assert.equal(r.stderr, '', `planTree made a plan crmigrate-restore refuses: ${JSON.stringify(plan.tasks)}`);
  assert.equal(r.status, 0);
}

test('planTree: a zombie as the first member of a group whose leader exited: its parent makes the helper', () => {
  const procs = [live(100, 1, 100, 100), zombie(200, 100, 150, 100, 0, 9), live(300, 100, 150, 100)];
  const plan = planTree(procs, [], []);
  const helper = plan.tasks.find((t) => t.pid === 150);
  assert.ok(helper, JSON.stringify(plan.tasks));
  assert.equal(helper.ppid, 100);
  plannedOrRefused(procs);
});

test('planTree: a group whose creator is in the tree but moved to another group is refused', () => {
  assert.throws(() => planTree([live(100, 1, 100, 100), live(200, 100, 100, 100), live(300, 200, 200, 100)], [], []),
    (e) => e.name === 'UnsupportedError' && e.message === 'process group 200 of process 300 is named after process 200, which has moved to group 100; not supported');
});

// ---------------------------------------------------------------------------
// encodeTree: the layout of crm_plan.h

const HEADER_FIELDS = ['magic', 'version', 'total_size', 'header_size', 'task_count', 'object_count', 'strings_size', 'max_fd'];
const TASK_FIELDS = [['pid', 0], ['ppid', 4], ['pgid', 8], ['sid', 12], ['flags', 16], ['nthreads', 20], ['exit_code', 24], ['exit_signal', 28]];
const OBJECT_FIELDS = [['id', 0], ['kind', 4], ['size', 8], ['pos', 16], ['path', 24], ['flags', 28], ['fd_kind', 32], ['shmid', 36], ['uid', 40], ['gid', 44]];

test('layout: TREE_SIZES, field offsets and constants match the structs of crm_plan.h', () => {
  const c = cValues(`  P("sizeof.header", sizeof(struct crm_tree_header));
  P("sizeof.task", sizeof(struct crm_tree_task));
  P("sizeof.object", sizeof(struct crm_object));
  P("const.magic", CRM_TREE_MAGIC);
  P("const.version", CRM_TREE_VERSION);
  P("const.session_leader", CRM_TREE_SESSION_LEADER); P("const.group_leader", CRM_TREE_GROUP_LEADER);
  P("const.join_group", CRM_TREE_JOIN_GROUP); P("const.zombie", CRM_TREE_ZOMBIE); P("const.helper", CRM_TREE_HELPER);
  P("const.obj_shmem", CRM_OBJ_SHMEM); P("const.obj_file", CRM_OBJ_FILE);
${offsetLines('crm_tree_header', HEADER_FIELDS)}
${offsetLines('crm_tree_task', TASK_FIELDS.map(([n]) => n))}
${offsetLines('crm_object', OBJECT_FIELDS.map(([n]) => n))}
`);
  assert.deepEqual({ header: c['sizeof.header'], task: c['sizeof.task'], object: c['sizeof.object'] }, { ...TREE_SIZES });
  assert.equal(c['const.magic'], TREE_MAGIC);
  assert.equal(c['const.version'], TREE_VERSION);
  assert.deepEqual(['session_leader', 'group_leader', 'join_group', 'zombie', 'helper'].map((n) => c[`const.${n}`]), [SL, GL, JOIN, ZOMBIE, HELPER]);
  assert.deepEqual([c['const.obj_shmem'], c['const.obj_file']], [ObjectKind.SHMEM, ObjectKind.FILE]);
  HEADER_FIELDS.forEach((n, i) => assert.equal(c[`crm_tree_header.${n}`], i * 4, `header.${n}`));
  for (const [n, off] of TASK_FIELDS) assert.equal(c[`crm_tree_task.${n}`], off, `crm_tree_task.${n}`);
  for (const [n, off] of OBJECT_FIELDS) assert.equal(c[`crm_object.${n}`], off, `crm_object.${n}`);
});

// The section the next tests take apart:
//   tasks: 100 root (SL, 3 threads) | 200 (GL) | 300 (joins 200) | 400 zombie of 200 | 500 (joins 650) | helper 650
//   objects: shmem 1 (2 MiB) | shmem 2 (1 page) | file 1 | file 5 (a directory)
const BASE_PROCS = [
  live(100, 1, 100, 100, { tids: [100, 101, 102], maxFd: 9 }),
  live(200, 100, 200, 100),
  live(300, 100, 200, 100, { maxFd: 12 }),
  zombie(400, 200, 200, 100, 0, 9),
  live(500, 100, 650, 100),
];
const BASE_SHMEM = [{ id: 1, size: 0x200000 }, { id: 2, size: 4096 }];
const BASE_FILES = [
  { id: 1, kind: FdKind.FILE, path: '/var/log/app.log', flags: 0o102001, pos: 77n },
  { id: 5, kind: FdKind.DIR, path: '/srv/dir', flags: 0o200000, pos: 3n },
];
const BASE_PLAN = planTree(BASE_PROCS, BASE_SHMEM, BASE_FILES);
const BASE = encodeTree(BASE_PLAN);
const NT = BASE_PLAN.tasks.length;
const TK = (i, o) => TREE_SIZES.header + i * TREE_SIZES.task + o;
const OB = (i, o) => TREE_SIZES.header + NT * TREE_SIZES.task + i * TREE_SIZES.object + o;
const STR = TREE_SIZES.header + NT * TREE_SIZES.task + BASE_PLAN.objects.length * TREE_SIZES.object;
const HD = (n) => HEADER_FIELDS.indexOf(n) * 4;

test('encodeTree: every field where crm_plan.h puts it', () => {
  const plan = BASE_PLAN;
  assert.deepEqual(plan.tasks.map((t) => [t.pid, t.flags]), [[100, SL], [200, GL], [300, JOIN], [400, ZOMBIE], [500, JOIN], [650, HELPER | GL]]);
  const b = BASE;
  const strings = Buffer.from('\0/var/log/app.log\0/srv/dir\0', 'utf8');
  assert.equal(b.length, 32 + 6 * 32 + 4 * 48 + strings.length);
  // header
  assert.deepEqual(HEADER_FIELDS.map((n, i) => (n === 'max_fd' ? b.readInt32LE(i * 4) : b.readUInt32LE(i * 4))),
    [TREE_MAGIC, TREE_VERSION, b.length, 32, 6, 4, strings.length, 12]);
  assert.equal(b.toString('latin1', 0, 4), 'CMRT');
  // tasks, in plan order
  plan.tasks.forEach((t, i) => {
    const at = (o) => TK(i, o);
    assert.deepEqual([b.readInt32LE(at(0)), b.readInt32LE(at(4)), b.readInt32LE(at(8)), b.readInt32LE(at(12))], [t.pid, t.ppid, t.pgid, t.sid], `task ${i} ids`);
    assert.equal(b.readUInt32LE(at(16)), t.flags, `task ${i} flags`);
    assert.equal(b.readUInt32LE(at(20)), t.nthreads, `task ${i} nthreads`);
    assert.equal(b.readInt32LE(at(24)), t.exitCode, `task ${i} exit_code`);
    assert.equal(b.readInt32LE(at(28)), t.exitSignal, `task ${i} exit_signal`);
  });
  assert.deepEqual([TK(0, 20), TK(3, 28), TK(5, 0)].map((o) => b.readInt32LE(o)), [3, 9, 650]);
  // objects: shared memory (no path), then files (path as a string offset)
  const expect = [
    [1, 1, 0x200000n, 0n, 0, 0, 0],
    [2, 1, 4096n, 0n, 0, 0, 0],
    [1, 2, 0n, 77n, 1, 0o102001, FdKind.FILE],
    [5, 2, 0n, 3n, 1 + '/var/log/app.log'.length + 1, 0o200000, FdKind.DIR],
  ];
  expect.forEach((e, i) => {
    const got = [b.readUInt32LE(OB(i, 0)), b.readUInt32LE(OB(i, 4)), b.readBigUInt64LE(OB(i, 8)), b.readBigUInt64LE(OB(i, 16)),
      b.readUInt32LE(OB(i, 24)), b.readUInt32LE(OB(i, 28)), b.readUInt32LE(OB(i, 32))];
    assert.deepEqual(got, e, `object ${i}`);
    assert.equal(b.readUInt32LE(OB(i, 36)), 0, `object ${i} padding`);
  });
  // strings: the empty string first, each path once, NUL-terminated
  assert.ok(b.subarray(STR).equals(strings));
  // a path used twice is stored once
  const twice = encodeTree(planTree([live(100, 1, 100, 100)], [], [BASE_FILES[0], { ...BASE_FILES[0], id: 2 }]));
  assert.equal(twice.readUInt32LE(HD('strings_size')), 1 + '/var/log/app.log'.length + 1);
  assert.equal(twice.readUInt32LE(32 + 32 + 24), twice.readUInt32LE(32 + 32 + 48 + 24));
  // a negative exit status or descriptor bound is written as such (the reader refuses it)
  const neg = encodeTree({ tasks: [task(1, 0, 1, 1, 0, { exitCode: -1, exitSignal: -2 })], objects: [], maxFd: -1 });
  assert.deepEqual([neg.readInt32LE(TK(0, 24)), neg.readInt32LE(TK(0, 28)), neg.readInt32LE(HD('max_fd'))], [-1, -2, -1]);
  // deterministic, input untouched
  assert.ok(encodeTree(BASE_PLAN).equals(BASE));
  assert.deepEqual(BASE_PLAN, planTree(BASE_PROCS, BASE_SHMEM, BASE_FILES));
});

test('encodeTree: crmigrate-restore --print-tree decodes the same values', () => {
  decodesTo(BASE_PLAN);
  const r = printTree(BASE);
  assert.equal(r.stdout, [
    'tree tasks=6 objects=4 max_fd=12',
    'task pid=100 ppid=1 pgid=100 sid=100 flags=1 threads=3 exit=0/0',
    'task pid=200 ppid=100 pgid=200 sid=100 flags=2 threads=1 exit=0/0',
    'task pid=300 ppid=100 pgid=200 sid=100 flags=4 threads=1 exit=0/0',
    'task pid=400 ppid=200 pgid=200 sid=100 flags=8 threads=0 exit=0/9',
    'task pid=500 ppid=100 pgid=650 sid=100 flags=4 threads=1 exit=0/0',
    'task pid=650 ppid=500 pgid=650 sid=100 flags=18 threads=0 exit=0/0',
    'object id=1 kind=1 size=2097152 pos=0 path= flags=0 shmid=0 uid=0 gid=0',
    'object id=2 kind=1 size=4096 pos=0 path= flags=0 shmid=0 uid=0 gid=0',
    'object id=1 kind=2 size=0 pos=77 path=/var/log/app.log flags=102001 shmid=0 uid=0 gid=0',
    'object id=5 kind=2 size=0 pos=3 path=/srv/dir flags=200000 shmid=0 uid=0 gid=0',
    '',
  ].join('\n'));
  // the rest of the restore input may follow: --print-tree reads the section only
  const more = printTree(Buffer.concat([BASE, readFileSync(BIN)]));
  assert.equal(more.status, 0);
  assert.equal(more.stdout, r.stdout);
  // extreme values
  decodesTo({
    tasks: [task(2147483647, 0, 2147483647, 2147483647, SL, { nthreads: 4097 }), task(1, 2147483647, 1, 2147483647, ZOMBIE | GL, { nthreads: 0, exitCode: 255, exitSignal: 64 })],
    objects: [
      { id: 0xffffffff, kind: ObjectKind.SHMEM, size: 2 ** 40, pos: 0n, path: '', flags: 0, fdKind: 0, shmid: 0, uid: 0, gid: 0 },
      { id: 0xffffffff, kind: ObjectKind.FILE, size: 0, pos: 2n ** 64n - 1n, path: '/ünï côdé', flags: 0xffffffff, fdKind: FdKind.PATH, shmid: 0, uid: 0, gid: 0 },
    ],
    maxFd: (1 << 20) - 1,
  });
});

// ---------------------------------------------------------------------------
// damaged tree sections: refused by the C reader, exit 1, one line

function patched(edits, base = BASE) {
  const b = Buffer.from(base);
  for (const [off, kind, v] of edits) {
    if (kind === 'u64') b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), off);
    else b.writeUInt32LE(Number(BigInt.asUintN(32, BigInt(v))), off);
  }
  return b;
}
const swapTasks = (i, j) => {
  const b = Buffer.from(BASE);
  BASE.copy(b, TK(i, 0), TK(j, 0), TK(j, 32));
  BASE.copy(b, TK(j, 0), TK(i, 0), TK(i, 32));
  return b;
};
const flags = (i) => BASE.readUInt32LE(TK(i, 16));

const DAMAGED = [
  // the header
  ['bad magic', patched([[HD('magic'), 'u32', 0x54524d44]]), /restore input does not start with a tree section/],
  ['a restore plan where the tree section belongs', readFileSync(BIN), /restore input does not start with a tree section/],
  ['version 2', patched([[HD('version'), 'u32', 2]]), /restore tree version 2 is not supported \(want 1\)/],
  ['version 0', patched([[HD('version'), 'u32', 0]]), /restore tree version 0 is not supported \(want 1\)/],
  ['empty input', Buffer.alloc(0), /restore input is empty/],
  ['truncated to 1 byte', BASE.subarray(0, 1), /restore tree section truncated/],
  ['truncated inside the header', BASE.subarray(0, 31), /restore tree section truncated/],
  ['truncated after the header', BASE.subarray(0, 32), /restore tree section truncated/],
  ['truncated inside the tasks', BASE.subarray(0, TK(3, 4)), /restore tree section truncated/],
  ['truncated inside the objects', BASE.subarray(0, OB(2, 8)), /restore tree section truncated/],
  ['truncated by one byte', BASE.subarray(0, BASE.length - 1), /restore tree section truncated/],
  ['total_size smaller than the header', patched([[HD('total_size'), 'u32', 16]]), /restore tree section size 16 out of range/],
  ['total_size over 16 MiB', patched([[HD('total_size'), 'u32', (16 << 20) + 1]]), /out of range/],
  ['total_size 0xffffffff', patched([[HD('total_size'), 'u32', 0xffffffff]]), /out of range/],
  ['total_size 8 more than the sections', Buffer.concat([patched([[HD('total_size'), 'u32', BASE.length + 8]]), Buffer.alloc(8)]), /restore tree sections do not add up/],
  ['header_size 28', patched([[HD('header_size'), 'u32', 28]]), /restore tree section has a bad size/],
  ['task_count 0', patched([[HD('task_count'), 'u32', 0]]), /restore tree has 0 tasks/],
  ['task_count 4097', patched([[HD('task_count'), 'u32', 4097]]), /restore tree has 4097 tasks/],
  ['task_count one more', patched([[HD('task_count'), 'u32', NT + 1]]), /restore tree sections do not add up/],
  ['task_count one less', patched([[HD('task_count'), 'u32', NT - 1]]), /restore tree sections do not add up/],
  ['object_count 65537', patched([[HD('object_count'), 'u32', 65537]]), /restore tree has too many shared objects/],
  ['object_count one more', patched([[HD('object_count'), 'u32', 5]]), /restore tree sections do not add up/],
  ['strings_size one more', patched([[HD('strings_size'), 'u32', BASE.length - STR + 1]]), /restore tree sections do not add up/],
  ['max_fd 1', patched([[HD('max_fd'), 'u32', 1]]), /restore tree descriptor range invalid/],
  ['max_fd -1', patched([[HD('max_fd'), 'u32', -1]]), /restore tree descriptor range invalid/],
  ['max_fd 2^20', patched([[HD('max_fd'), 'u32', 1 << 20]]), /restore tree descriptor range invalid/],
  ['string table not terminated', patched([[BASE.length - 4, 'u32', 0x78787878]]), /restore tree string table not terminated/],
  ['string table not starting with the empty string', (() => { const b = Buffer.from(BASE); b[STR] = 0x2f; return b; })(), /restore tree string table not terminated/],
  // the tasks
  ['pid 0', patched([[TK(2, 0), 'u32', 0]]), /restore tree task 2 has an invalid pid 0/],
  ['negative pid', patched([[TK(4, 0), 'u32', -500]]), /restore tree task 4 has an invalid pid -500/],
  ['duplicate pid', patched([[TK(2, 0), 'u32', 200]]), /restore tree has PID 200 twice/],
  ['a helper with the PID of a task', patched([[TK(5, 0), 'u32', 100]]), /restore tree has PID 100 twice/],
  ['child before its parent (swapped)', swapTasks(1, 3), /restore tree task 400 comes before its parent 200/],
  ['helper before the task that makes it', swapTasks(4, 5), /restore tree task 650 comes before its parent 500/],
  ['parent outside the tree', patched([[TK(2, 4), 'u32', 999]]), /restore tree task 300 comes before its parent 999/],
  ['a task that is its own parent', patched([[TK(2, 4), 'u32', 300]]), /restore tree task 300 comes before its parent 300/],
  ['child of a zombie', patched([[TK(4, 4), 'u32', 400]]), /restore tree task 500 has a zombie or helper parent/],
  ['child of a helper', Buffer.concat([patched([[HD('task_count'), 'u32', NT + 1], [HD('total_size'), 'u32', BASE.length + 32]]).subarray(0, OB(0, 0)),
    (() => { const t = Buffer.alloc(32); [700, 650, 650, 100].forEach((v, k) => t.writeInt32LE(v, k * 4)); t.writeUInt32LE(1, 20); return t; })(),
    BASE.subarray(OB(0, 0))]), /restore tree task 700 has a zombie or helper parent/],
  ['JOIN_GROUP of a group nobody has', patched([[TK(2, 8), 'u32', 999]]), /restore tree task 300 joins group 999, which nobody leads/],
  ['JOIN_GROUP of a group whose leader does not lead it', patched([[TK(1, 16), 'u32', 0]]), /restore tree task 300 joins group 200, which nobody leads/],
  ['JOIN_GROUP of its own group', patched([[TK(2, 8), 'u32', 300]]), /restore tree task 300 joins group 300, which nobody leads/],
  ['JOIN_GROUP of a group whose helper is gone', patched([[TK(5, 16), 'u32', HELPER]]), /restore tree helper 650 leads no group/],
  ['JOIN_GROUP of a group led by a plain task', patched([[TK(2, 8), 'u32', 500]]), /restore tree task 300 joins group 500, which nobody leads/],
  ['a zombie with threads', patched([[TK(3, 20), 'u32', 1]]), /restore tree task 400 exits but has threads/],
  ['a helper with threads', patched([[TK(5, 20), 'u32', 1]]), /restore tree task 650 exits but has threads/],
  ['a zombie with exit signal 65', patched([[TK(3, 28), 'u32', 65]]), /restore tree zombie 400 has an invalid exit status/],
  ['a zombie with exit signal -1', patched([[TK(3, 28), 'u32', -1]]), /restore tree zombie 400 has an invalid exit status/],
  ['a zombie with exit code 256', patched([[TK(3, 24), 'u32', 256]]), /restore tree zombie 400 has an invalid exit status/],
  ['a zombie with exit code -1', patched([[TK(3, 24), 'u32', -1]]), /restore tree zombie 400 has an invalid exit status/],
  ['a zombie root', patched([[TK(0, 16), 'u32', SL | ZOMBIE], [TK(0, 20), 'u32', 0]]), /restore tree root cannot be a zombie or helper/],
  ['a helper root', patched([[TK(0, 16), 'u32', GL | HELPER], [TK(0, 20), 'u32', 0]]), /restore tree root cannot be a zombie or helper/],
  ['a live task without threads', patched([[TK(2, 20), 'u32', 0]]), /restore tree task 300 has 0 threads/],
  ['a live task with 4098 threads', patched([[TK(2, 20), 'u32', 4098]]), /restore tree task 300 has 4098 threads/],
  ['unknown flags', patched([[TK(1, 16), 'u32', flags(1) | 32]]), /restore tree task 200 has unknown flags/],
  ['zombie and helper', patched([[TK(5, 16), 'u32', GL | HELPER | ZOMBIE]]), /restore tree task 650 is both zombie and helper/],
  ['session leader of a session not its own', patched([[TK(1, 16), 'u32', SL]]), /restore tree task 200 leads a session that is not its own/],
  ['group leader of a group not its own', patched([[TK(2, 16), 'u32', GL]]), /restore tree task 300 leads a group that is not its own/],
  ['leading and joining a group', patched([[TK(1, 16), 'u32', GL | JOIN]]), /restore tree task 200 both leads and joins a group/],
  ['leading a session and joining a group', patched([[TK(0, 16), 'u32', SL | JOIN]]), /restore tree task 100 both leads and joins a group/],
  // the objects
  ['object id 0', patched([[OB(1, 0), 'u32', 0]]), /restore tree object 1 has id 0/],
  ['the same shared memory twice', patched([[OB(1, 0), 'u32', 1]]), /restore tree has object 1 twice/],
  ['the same shared file twice', patched([[OB(3, 0), 'u32', 1]]), /restore tree has object 1 twice/],
  ['shared memory of size 0', patched([[OB(0, 8), 'u64', 0]]), /restore tree shared memory 1 has a bad size/],
  ['shared memory not whole pages', patched([[OB(1, 8), 'u64', 4095]]), /restore tree shared memory 2 has a bad size/],
  ['shared memory of 1 TiB and a page', patched([[OB(0, 8), 'u64', 2n ** 40n + 4096n]]), /restore tree shared memory 1 has a bad size/],
  ['shared memory of 2^64 - 4096 bytes', patched([[OB(0, 8), 'u64', -4096n]]), /restore tree shared memory 1 has a bad size/],
  ['object kind 0', patched([[OB(0, 4), 'u32', 0]]), /restore tree object 1 has unknown kind 0/],
  ['object kind 4', patched([[OB(3, 4), 'u32', 4]]), /restore tree object 5 has unknown kind 4/],
  ['a System V segment with id -1', patched([[OB(0, 4), 'u32', 3], [OB(0, 36), 'u32', -1]]), /restore tree System V segment 1 is invalid/],
  ['a System V segment with mode 01640', patched([[OB(0, 4), 'u32', 3], [OB(0, 28), 'u32', 0o1640]]), /restore tree System V segment 1 is invalid/],
  ['a System V segment of size 0', patched([[OB(0, 4), 'u32', 3], [OB(0, 8), 'u64', 0]]), /restore tree shared memory 1 has a bad size/],
  ['shared file with the empty path', patched([[OB(2, 24), 'u32', 0]]), /restore tree shared file 1 has a bad path/],
  ['shared file with a relative path', patched([[OB(2, 24), 'u32', 2]]), /restore tree shared file 1 has a bad path/],
  ['shared file with a path past the string table', patched([[OB(3, 24), 'u32', BASE.length - STR]]), /restore tree shared file 5 has a bad path/],
  ['shared file with path offset 0xffffffff', patched([[OB(3, 24), 'u32', 0xffffffff]]), /restore tree shared file 5 has a bad path/],
  ['shared file of descriptor kind 0', patched([[OB(2, 32), 'u32', 0]]), /restore tree shared file 1 has a bad kind/],
  ['shared file of descriptor kind 4', patched([[OB(3, 32), 'u32', 4]]), /restore tree shared file 5 has a bad kind/],
  ['shared memory turned into a file without a path', patched([[OB(1, 4), 'u32', 2]]), /restore tree shared file 2 has a bad path/],
];

test('damaged tree sections are refused by crmigrate-restore --print-tree with one line and exit status 1', () => {
  assert.ok(existsSync(RESTORE), `${RESTORE} missing: run make -C native`);
  assert.equal(printTree(BASE).status, 0);
  const problems = [];
  for (const [name, input, re] of DAMAGED) {
    const r = printTree(input);
    const what = `${name}: `;
    if (r.signal !== null) problems.push(`${what}killed by ${r.signal}`);
    else if (r.status !== 1) problems.push(`${what}exit status ${r.status}, stdout ${JSON.stringify(r.stdout.slice(0, 60))}, stderr ${JSON.stringify(r.stderr)}`);
    else if (!/^crmigrate-restore: [^\n]+\n$/.test(r.stderr)) problems.push(`${what}stderr is not one "crmigrate-restore: " line: ${JSON.stringify(r.stderr)}`);
    else if (!re.test(r.stderr)) problems.push(`${what}refused for another reason: ${r.stderr.trim()} (expected ${re})`);
    else if (r.stdout !== '') problems.push(`${what}printed on stdout although it failed`);
  }
  assert.deepEqual(problems, []);
});

test('damaged tree sections: the harmless changes are accepted', () => {
  for (const [name, input] of [
    ['object padding', patched([[OB(0, 36), 'u32', 0xffffffff]])],
    ['a file position and flags of shared memory', patched([[OB(0, 16), 'u64', 5], [OB(0, 28), 'u32', 0o2]])],
    ['a shared memory id equal to a file id', patched([[OB(1, 0), 'u32', 5]])],
    ['a live task exit status (not used)', patched([[TK(2, 24), 'u32', -7], [TK(2, 28), 'u32', 99]])],
    ['a JOIN_GROUP of a group led by a session leader', patched([[TK(2, 8), 'u32', 100]])],
    ['a JOIN_GROUP of a group led by a zombie', patched([[TK(3, 16), 'u32', ZOMBIE | GL], [TK(3, 8), 'u32', 400], [TK(2, 8), 'u32', 400]])],
    ['max_fd 2^20 - 1', patched([[HD('max_fd'), 'u32', (1 << 20) - 1]])],
  ]) {
    const r = printTree(input);
    assert.equal(r.stderr, '', name);
    assert.equal(r.status, 0, name);
  }
});
