// Bad input and refusals: each gets a one-line error naming the cause, a
// distinct exit code, and changes nothing: the process is never lost and
// never runs twice.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, assertPassed, CLI, crmigrate, TestProcess, treeOf, waitFor } from './harness.mjs';

const EXIT = { UNSUPPORTED: 65, BAD_IMAGE: 66, NO_PROCESS: 67, PID_TAKEN: 68, MISSING_FILE: 69, USAGE: 64 };
const oneLine = (stderr) => stderr.trim().split('\n').length === 1 && stderr.startsWith('crmigrate: ');

/** A counter checkpointed into its image dir and killed; the PID is free again. */
async function dumpedCounter() {
  const p = new TestProcess('counter');
  await p.ready();
  const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir]);
  assert.equal(d.code, 0, d.stderr);
  await p.gone();
  return p;
}

test('dump refuses a process holding a socket, and the process carries on untouched', async () => {
  const p = new TestProcess('counter', [], { extraStdio: ['pipe'] });
  try {
    await p.ready();
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir]);
    assert.equal(d.code, EXIT.UNSUPPORTED, d.stderr);
    assert.ok(oneLine(d.stderr), d.stderr);
    assert.match(d.stderr, /descriptor 3 of process \d+ is a (pipe|socket)/);
    assert.ok(!existsSync(join(p.imageDir, 'image.crm')), 'an image was left behind');
    const before = p.countLines(/^count /);
    await waitFor(() => p.countLines(/^count /) > before, 'the counter to keep counting', 5000);
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
});

const statusOf = (pid) => Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':\t')));

test('dump refuses a tree where a child holds a pipe; every process of it carries on untraced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-pipe-'));
  const sh = spawn('sh', ['-c', 'sleep 300 | sleep 301 & sleep 302 & wait'], { stdio: 'ignore', detached: true });
  let pids = [];
  try {
    await waitFor(() => (pids = treeOf(sh.pid)).length >= 4, 'the shell to start its children');
    const d = await crmigrate(['dump', String(sh.pid), '--dir', dir]);
    assert.equal(d.code, EXIT.UNSUPPORTED, d.stderr);
    assert.ok(oneLine(d.stderr), d.stderr);
    assert.match(d.stderr, /descriptor [01] of process \d+ is a pipe/);
    assert.ok(!existsSync(join(dir, 'image.crm')), 'an image was left behind');
    for (const pid of pids) {
      assert.ok(alive(pid), `process ${pid} of the tree is gone`);
      const st = statusOf(pid);
      assert.equal(st.TracerPid, '0', `process ${pid} is still traced`);
      assert.ok(!/^t/.test(st.State), `process ${pid} is still stopped: ${st.State}`);
    }
  } finally {
    for (const pid of pids.reverse()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dump refuses a process another tracer holds, and leaves it to that tracer', async () => {
  const p = new TestProcess('counter');
  let tracer;
  try {
    await p.ready();
    // a second tracer: the addon's seize in another node process
    const addon = join(process.cwd(), 'build/Release/crmigrate_native.node');
    tracer = spawn(process.execPath, ['-e', `require(${JSON.stringify(addon)}).seize(${p.pid}); setTimeout(() => {}, 60000)`], { stdio: 'ignore' });
    await waitFor(() => statusOf(p.pid).TracerPid === String(tracer.pid), 'the other tracer to attach');
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir]);
    assert.equal(d.code, EXIT.UNSUPPORTED, d.stderr);
    assert.ok(oneLine(d.stderr), d.stderr);
    assert.match(d.stderr, new RegExp(`process ${p.pid} is already traced by PID ${tracer.pid}`));
    assert.equal(statusOf(p.pid).TracerPid, String(tracer.pid), 'the other tracer lost the process');
    tracer.kill('SIGKILL');
    await waitFor(() => statusOf(p.pid).TracerPid === '0', 'the other tracer to let go');
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    tracer?.kill('SIGKILL');
    p.cleanup();
  }
});

test('a dump interrupted by SIGTERM lets the process go on untouched and leaves no image', async () => {
  const p = new TestProcess('bench_mem', ['512'], { workdirArg: false });
  try {
    await p.ready();
    const dump = spawn(process.execPath, [CLI, 'dump', String(p.pid), '--dir', p.imageDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    dump.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((resolve) => dump.on('close', (code) => resolve(code)));
    await waitFor(() => statusOf(p.pid).TracerPid === String(dump.pid), 'the dump to freeze the process', 10000);
    dump.kill('SIGTERM');
    assert.equal(await exited, 143, stderr);
    assert.ok(oneLine(stderr), stderr);
    assert.match(stderr, /interrupted by SIGTERM; the frozen processes carry on untouched/);
    const st = statusOf(p.pid);
    assert.equal(st.TracerPid, '0', 'the process is still traced');
    assert.ok(!/^t/.test(st.State), `the process is still stopped: ${st.State}`);
    assert.deepEqual(existsSync(p.imageDir) ? readdirSync(p.imageDir) : [], [], 'image files left behind');
    assertPassed(assert, await p.verdict(60000), 'bench_mem');
  } finally {
    p.cleanup();
  }
});

test('dump of a PID that does not exist', async () => {
  const d = await crmigrate(['dump', '999999', '--dir', '/tmp/crm-nonexistent-dump']);
  assert.equal(d.code, EXIT.NO_PROCESS, d.stderr);
  assert.ok(oneLine(d.stderr), d.stderr);
  assert.match(d.stderr, /no process with PID 999999/);
  rmSync('/tmp/crm-nonexistent-dump', { recursive: true, force: true });
});

test('usage errors are one line with exit 64', async () => {
  const d = await crmigrate(['dump', 'abc', '--dir', '/tmp/x']);
  assert.equal(d.code, EXIT.USAGE, d.stderr);
  const r = await crmigrate(['restore']);
  assert.equal(r.code, EXIT.USAGE, r.stderr);
});

test('restore refuses when the PID is taken; the running original is untouched', async () => {
  const p = new TestProcess('counter');
  try {
    await p.ready();
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir, '--leave-running']);
    assert.equal(d.code, 0, d.stderr);
    const r = await crmigrate(['restore', '--dir', p.imageDir]);
    assert.equal(r.code, EXIT.PID_TAKEN, r.stderr);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, new RegExp(`PID ${p.pid} is already in use`));
    assertPassed(assert, await p.verdict(), 'counter');
    assert.equal(p.countLines(/^PASS$/), 1, 'the process ran twice');
  } finally {
    p.cleanup();
  }
});

test('restore refuses when one thread ID is taken; the squatter is untouched and nothing runs', async () => {
  const p = new TestProcess('t_threads');
  let squatter = 0;
  try {
    await p.ready();
    // the highest TID: the processes started after the squatter take the next PIDs
    const tid = Math.max(...readdirSync(`/proc/${p.pid}/task`).map(Number));
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir]);
    assert.equal(d.code, 0, d.stderr);
    await p.gone();
    // the next PID the kernel hands out is tid (retried if another process takes it first)
    await waitFor(() => {
      const pid = Number(execFileSync('sh', ['-c', `echo ${tid - 1} > /proc/sys/kernel/ns_last_pid; setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $!`]));
      if (pid === tid) return (squatter = pid), true;
      process.kill(pid, 'SIGKILL');
      return false;
    }, `a process with PID ${tid}`, 5000);
    const r = await crmigrate(['restore', '--dir', p.imageDir]);
    assert.equal(r.code, EXIT.PID_TAKEN, r.stderr);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, new RegExp(`thread ID ${tid} is already in use`));
    await sleep(200);
    assert.ok(!alive(p.pid), 'part of the process was restored');
    assert.ok(alive(tid), 'the squatter was touched');
  } finally {
    if (squatter) process.kill(squatter, 'SIGKILL');
    p.cleanup();
  }
});

test('a corrupted byte in the page data: restore fails, nothing runs', async () => {
  const p = await dumpedCounter();
  try {
    const img = join(p.imageDir, 'image.crm');
    const buf = readFileSync(img);
    const at = buf.length - 36 - 2048; // the middle of the last page (36: the trailer record)
    buf[at] ^= 0x40;
    writeFileSync(img, buf);
    const r = await crmigrate(['restore', '--dir', p.imageDir]);
    assert.equal(r.code, EXIT.BAD_IMAGE, r.stderr);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, /checksum mismatch/);
    await sleep(200);
    assert.ok(!alive(p.pid), 'a half-restored process is running');
    const i = await crmigrate(['inspect', p.imageDir]);
    assert.equal(i.code, EXIT.BAD_IMAGE, i.stderr);
  } finally {
    p.cleanup();
  }
});

test('a truncated image: restore fails, nothing runs', async () => {
  const p = await dumpedCounter();
  try {
    const img = join(p.imageDir, 'image.crm');
    for (const keep of [statSync(img).size - 10, Math.floor(statSync(img).size / 2), 100, 0]) {
      truncateSync(img, keep);
      const r = await crmigrate(['restore', '--dir', p.imageDir]);
      assert.equal(r.code, EXIT.BAD_IMAGE, `truncated to ${keep}: ${r.stderr}`);
      assert.ok(oneLine(r.stderr), r.stderr);
      assert.match(r.stderr, /truncated|empty|without a trailer/);
      assert.ok(!alive(p.pid), 'a half-restored process is running');
    }
  } finally {
    p.cleanup();
  }
});

test('a file the image needs is missing: restore refuses naming it', async () => {
  const p = await dumpedCounter();
  try {
    rmSync(p.logPath);
    const r = await crmigrate(['restore', '--dir', p.imageDir]);
    assert.equal(r.code, EXIT.MISSING_FILE, r.stderr);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.ok(r.stderr.includes(`missing file ${p.logPath}`), r.stderr);
    assert.ok(!alive(p.pid));
  } finally {
    p.cleanup();
  }
});

test('restore from a directory without an image', async () => {
  const r = await crmigrate(['restore', '--dir', '/tmp']);
  assert.equal(r.code, EXIT.BAD_IMAGE, r.stderr);
  assert.match(r.stderr, /no image in \/tmp/);
});

test('the restored process keeps its PID and runs detached (reparented)', async () => {
  const p = await dumpedCounter();
  try {
    const r = await crmigrate(['restore', '--dir', p.imageDir, '--pidfile', join(p.dir, 'pid')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(p.dir, 'pid'), 'utf8').trim(), String(p.pid));
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    assert.notEqual(Number(fields[1]), process.pid, 'restored process is a child of the test');
    assert.equal(Number(fields[3]), p.pid, 'session id not restored (it was a session leader)');
    assert.equal(readFileSync(`/proc/${p.pid}/status`, 'utf8').match(/TracerPid:\s+(\d+)/)[1], '0');
    const before = p.countLines(/^count /);
    await waitFor(() => p.countLines(/^count /) > before, 'the restored counter to count', 5000);
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
});
