// Live migration between local test hosts (network + PID + mount + UTS
// namespaces with a real sshd each, made by scripts/testhosts.sh): every test
// program is moved to crm-b and verified there; and each fault (unknown host
// key, missing file, taken PID, corrupted stream, cut connection, killed
// agent) leaves the source process running with its state intact and the
// destination clean.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, assertPassed, CLI, crmigrate, TestProcess, treeOf, waitFor } from './harness.mjs';

const root = new URL('../../', import.meta.url).pathname;
const HOSTS = ['crm-a', 'crm-b'];
const DEST = 'crm-b';
const STATE = '/run/crmigrate-testhosts';
const CONFIG = `${STATE}/client/config`;
const REMOTE = `${process.execPath} ${CLI}`;
const testhosts = (...args) => execFileSync('bash', [join(root, 'scripts/testhosts.sh'), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const inDest = (cmd) => testhosts('exec', DEST, 'sh', '-c', cmd);
const destInit = () => Number(readFileSync(`${STATE}/${DEST}/init.pid`, 'utf8').trim());
const destPidNs = () => readlinkSync(`/proc/${destInit()}/ns/pid`);

/** Root-namespace PIDs of processes in the destination's PID namespace whose cmdline matches. */
function destProcesses(re) {
  const ns = destPidNs();
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/pid`) !== ns) continue;
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      const nspid = Number(/^NSpid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? 0);
      if (re.test(cmd)) out.push({ pid: Number(d), nspid, cmd, ppid: Number(/^PPid:\s+(\d+)/m.exec(status)[1]) });
    } catch {
      /* gone */
    }
  }
  return out;
}
const destHasPid = (nspid) => {
  try {
    inDest(`test -d /proc/${nspid} && ! grep -q '^State:.*Z' /proc/${nspid}/status`);
    return true;
  } catch {
    return false;
  }
};

/**
 * The destination's next PIDs (its sshd session, the agent and its threads)
 * are steered away from the IDs the tree below pid will need there: once
 * this host's PIDs wrap around (pid_max 32768) they would otherwise meet,
 * and the preflight rightly refuses a migration whose IDs are taken.
 */
function steerDestPids(pid) {
  const ids = treeOf(pid).flatMap((q) => {
    try {
      return readdirSync(`/proc/${q}/task`).map(Number);
    } catch {
      return [q];
    }
  });
  const hi = Math.max(...ids);
  const lo = Math.min(...ids);
  const next = hi + 1000 < 32000 ? hi + 300 : lo > 1500 ? 400 : null;
  if (next !== null) inDest(`echo ${next} > /proc/sys/kernel/ns_last_pid`);
}

function migrateArgs(pid, extra = []) {
  return [String(pid), DEST, '-F', CONFIG, '--remote-crmigrate', REMOTE, '--json', ...extra];
}

/** Runs a migration in the background, calling onEvent for each JSON event line. */
function migrateWithEvents(pid, onEvent, env = {}, extra = []) {
  return new Promise((resolve) => {
    steerDestPids(pid);
    const child = spawn(process.execPath, [CLI, ...migrateArgs(pid, extra)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let buf = '';
    child.stdout.on('data', (d) => {
      out += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e;
        try { e = JSON.parse(line); } catch { continue; /* not an event */ }
        try { onEvent(e, child); } catch { /* a fault with nothing left to hit: the test's own checks tell */ }
      }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

before(() => { testhosts('up', ...HOSTS); });
after(() => { testhosts('down', ...HOSTS); });

async function migratedAndVerified(name, extra = []) {
  const p = new TestProcess(name);
  try {
    await p.ready();
    steerDestPids(p.pid);
    const m = await crmigrate(migrateArgs(p.pid, extra));
    assert.equal(m.code, 0, `migration failed: ${m.stderr}\n${m.stdout}`);
    const events = m.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const result = events.find((e) => e.event === 'result');
    assert.ok(result?.ok, m.stdout);
    if (!extra.includes('--no-pre-copy')) {
      // (the default on this kernel) the memory went out before the freeze:
      // the pre-copy phase, then the frozen transfer
      const phases = events.filter((e) => e.event === 'phase').map((e) => e.phase);
      assert.deepEqual(phases.slice(phases.indexOf('pre-copy'), phases.indexOf('pre-copy') + 2), ['pre-copy', 'transfer'], m.stdout);
      assert.ok(result.precopyPages > 0, `nothing was pre-copied: ${m.stdout}`);
    }
    await p.gone();
    assert.ok(destHasPid(p.pid), `PID ${p.pid} is not running on ${DEST}:\n${p.log()}\n${m.stdout}`);
    inDest(`kill -USR2 ${p.pid}`);
    await waitFor(() => /^(PASS|FAIL)$/m.test(p.log()), `${name} to report on ${DEST}`, 20000);
    assertPassed(assert, p.log(), name);
  } finally {
    p.cleanup();
    // the whole tree: every process of its session (the root leads one)
    try { inDest(`kill -9 ${p.pid} 2>/dev/null; pkill -9 -s ${p.pid} 2>/dev/null; true`); } catch { /* gone */ }
  }
}

for (const name of ['t_regs', 't_memory', 't_signals', 't_files', 't_syscall', 't_threads', 't_tree', 't_creds', 't_sysv', 't_cow', 't_precopy']) {
  test(`${name}: migrated to ${DEST} (--no-pre-copy), every detail verified there`, () => migratedAndVerified(name, ['--no-pre-copy']));
}

// --pre-copy: pages streamed while the tree runs, staged on the destination
// until the freeze; t_precopy keeps writing its memory the whole time
for (const name of ['t_memory', 't_threads', 't_tree', 't_cow', 't_sysv', 't_precopy']) {
  test(`${name}: migrated with --pre-copy, every detail verified there`, () => migratedAndVerified(name, ['--pre-copy']));
}
test('t_files: migrated with the default options (a pre-copy on this kernel), every detail verified there', () => migratedAndVerified('t_files'));
// the image uncompressed: DATA frames carry the page buffers as they are
test('t_memory: migrated with --no-compress, every detail verified there', () => migratedAndVerified('t_memory', ['--no-compress']));

/** Asserts the source process survived a failed migration untouched and the destination is clean. */
async function assertSourceIntact(p, r, re) {
  assert.notEqual(r.code, 0, `migration should have failed:\n${r.stderr}`);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('crmigrate: ')).length, 1, r.stderr);
  assert.ok(alive(p.pid), 'the source process was lost');
  await sleep(300);
  assert.ok(!destHasPid(p.pid), `a copy of ${p.pid} is left on ${DEST}`);
  assert.equal(destProcesses(/crmigrate-restore|agent --stdio/).length, 0, 'restorer or agent left on the destination');
}

test('unknown host key: refused, nothing frozen', async () => {
  const p = new TestProcess('counter');
  try {
    await p.ready();
    const empty = join(p.dir, 'known_hosts');
    writeFileSync(empty, '');
    const r = await crmigrate(migrateArgs(p.pid, ['--known-hosts', empty]));
    await assertSourceIntact(p, r, /host key of 10\.213\.7\.\d+:22 .* is not in .*known_hosts; refusing/);
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
});

test('changed host key: refused', async () => {
  const p = new TestProcess('counter');
  try {
    await p.ready();
    const fake = join(p.dir, 'known_hosts');
    const ip = readFileSync(CONFIG, 'utf8').match(new RegExp(`Host ${DEST} (\\S+)`))[1];
    writeFileSync(fake, `${ip} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const r = await crmigrate(migrateArgs(p.pid, ['--known-hosts', fake]));
    await assertSourceIntact(p, r, /HOST KEY OF .* HAS CHANGED/);
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
});

test('a file missing on the destination: preflight refuses naming it, nothing frozen', async () => {
  const p = new TestProcess('counter');
  try {
    await p.ready();
    // Hide the process's log directory on the destination only (its mount namespace).
    inDest(`mount -t tmpfs crm-test ${p.dir}`);
    try {
      const r = await crmigrate(migrateArgs(p.pid));
      await assertSourceIntact(p, r, new RegExp(`missing file ${p.logPath.replaceAll('/', '\\/')}`));
    } finally {
      inDest(`umount ${p.dir}`);
    }
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
});

test('the PID is taken on the destination: preflight refuses, nothing frozen', async () => {
  const p = new TestProcess('counter');
  let squatter = 0;
  try {
    await p.ready();
    // Start a process that gets exactly that PID inside the destination's PID namespace.
    inDest(`echo ${p.pid - 1} > /proc/sys/kernel/ns_last_pid; setsid sleep 60 </dev/null >/dev/null 2>&1 &`);
    await waitFor(() => {
      squatter = destProcesses(/sleep 60/).find((x) => x.nspid === p.pid)?.pid ?? 0;
      return squatter !== 0;
    }, 'a process to take the PID on the destination', 3000);
    const r = await crmigrate(migrateArgs(p.pid));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`PID ${p.pid} is already in use on ${DEST}`));
    assert.ok(alive(p.pid), 'the source process was lost');
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    if (squatter) process.kill(squatter, 'SIGKILL');
    p.cleanup();
    // The destination would otherwise go on handing out PIDs (and its agents'
    // thread IDs) right where this host's next processes are: start it low.
    try { inDest('echo 1000 > /proc/sys/kernel/ns_last_pid'); } catch { /* host down */ }
  }
});

/** A byte of the compressed stream flipped: the destination refuses the image, the source counts on. */
async function corruptedStream(extra) {
  const p = new TestProcess('counter');
  try {
    await p.ready();
    const r = await migrateWithEvents(p.pid, () => undefined, { CRMIGRATE_FAULT_CORRUPT_AT: '3000' }, extra);
    await assertSourceIntact(p, r, /destination: .*(checksum|Unknown frame descriptor|corrupt|Data corruption|image)/i);
    const before = p.countLines(/^count /);
    await waitFor(() => p.countLines(/^count /) > before, 'the source to keep counting', 5000);
    assertPassed(assert, await p.verdict(), 'counter');
  } finally {
    p.cleanup();
  }
}

test('a corrupted byte in the stream: the destination refuses the image, the source thaws', () => corruptedStream(['--no-pre-copy']));

test('a corrupted byte in the pre-copy (--pre-copy): the destination refuses the image, the source runs on untouched', () => corruptedStream(['--pre-copy']));

test('crmigrate ends with nothing left to wait for mid-stream: the frozen source is let go untouched, the destination is clean', async () => {
  const p = new TestProcess('bench_mem', ['256'], { workdirArg: false });
  try {
    await p.ready();
    const r = await migrateWithEvents(p.pid, () => undefined, { CRMIGRATE_FAULT_STALL_AT: String(2 << 20) }, ['--no-pre-copy']);
    await assertSourceIntact(p, r, /exiting with processes still frozen; they were let go untouched/);
    assert.equal(r.code, 1, 'crmigrate exits with its failure code, not node\'s');
    assertPassed(assert, await p.verdict(60000), 'bench_mem');
  } finally {
    p.cleanup();
  }
});

/** Starts a 256 MiB process and migrates it, running `fault` once the stream is flowing. */
async function faultDuringTransfer(fault, re, extra = ['--no-pre-copy']) {
  const p = new TestProcess('bench_mem', ['256'], { workdirArg: false });
  try {
    await p.ready();
    let injected = false;
    let phase = '';
    let faultPhase = '';
    const r = await migrateWithEvents(p.pid, (e) => {
      if (e.event === 'phase') phase = e.phase;
      if (!injected && e.event === 'bytes' && e.bytes > 1 << 20) {
        injected = true;
        faultPhase = phase;
        fault();
      }
    }, {}, extra);
    assert.ok(injected, `the fault was never injected:\n${r.stdout}\n${r.stderr}`);
    // with --pre-copy the fault comes while the tree still runs
    assert.equal(faultPhase, extra.includes('--pre-copy') ? 'pre-copy' : 'transfer');
    await assertSourceIntact(p, r, re);
    assertPassed(assert, await p.verdict(60000), 'bench_mem');
  } finally {
    p.cleanup();
  }
}

test('the SSH connection is cut during the stream: the source thaws, the destination is clean', () =>
  faultDuringTransfer(() => {
    // the per-connection sshd processes are the children of the namespace's sshd
    for (const s of destProcesses(/^sshd/)) if (s.ppid === destInit()) process.kill(s.pid, 'SIGKILL');
  }, /connection|lost|closed/i));

test('the SSH connection is cut during the pre-copy (--pre-copy): the source runs on, the destination is clean', () =>
  faultDuringTransfer(() => {
    for (const s of destProcesses(/^sshd/)) if (s.ppid === destInit()) process.kill(s.pid, 'SIGKILL');
  }, /connection|lost|closed/i, ['--pre-copy']));

test('crmigrate interrupted (SIGINT) during the pre-copy: nothing was frozen, the source runs on, the destination is clean', async () => {
  const p = new TestProcess('bench_mem', ['256'], { workdirArg: false });
  try {
    await p.ready();
    let phase = '';
    let sent = false;
    const r = await migrateWithEvents(p.pid, (e, child) => {
      if (e.event === 'phase') phase = e.phase;
      if (!sent && phase === 'pre-copy' && e.event === 'bytes' && e.bytes > 1 << 20) {
        sent = true;
        child.kill('SIGINT');
      }
    }, {}, ['--pre-copy']);
    assert.ok(sent, `never reached the pre-copy:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.code, 130, r.stderr);
    await assertSourceIntact(p, r, /^crmigrate: interrupted by SIGINT; nothing was frozen: the processes run on untouched$/m);
    assertPassed(assert, await p.verdict(60000), 'bench_mem');
  } finally {
    p.cleanup();
  }
});

test('the agent is killed mid-restore: the source thaws, the destination is clean', () =>
  faultDuringTransfer(() => {
    for (const a of destProcesses(/agent --stdio/)) process.kill(a.pid, 'SIGKILL');
  }, /connection|lost|closed|agent/i));

test('the link is lost after the commit: the source tree is held stopped, resolve finishes from the agent journal', async () => {
  const p = new TestProcess('t_tree');
  let tree = [];
  try {
    await p.ready();
    tree = treeOf(p.pid);
    assert.ok(tree.length >= 8, `t_tree has ${tree.length} processes`);
    const r = await migrateWithEvents(p.pid, () => undefined, { CRMIGRATE_FAULT_LOSE_LINK_AFTER_COMMIT: '1' });
    assert.equal(r.code, 75, `expected an outcome in doubt:\n${r.stderr}`);
    const id = r.stderr.match(/crmigrate resolve (\S+) /)?.[1];
    assert.ok(id, r.stderr);
    // nothing runs twice: the source copy of every live process is stopped
    for (const pid of tree) {
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0];
      assert.ok(state === 'T' || state === 'Z', `source process ${pid} is not held (state ${state})`);
    }
    const res = await crmigrate(['resolve', id, DEST, '-F', CONFIG, '--remote-crmigrate', REMOTE]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout + res.stderr, /committed on the destination/);
    await waitFor(() => tree.every((pid) => !alive(pid)), 'the held source tree to be killed', 10000);
    assert.ok(destHasPid(p.pid), `PID ${p.pid} is not running on ${DEST}`);
    inDest(`kill -USR2 ${p.pid}`);
    await waitFor(() => /^(PASS|FAIL)$/m.test(p.log()), `t_tree to report on ${DEST}`, 20000);
    assertPassed(assert, p.log(), 't_tree');
  } finally {
    for (const pid of tree) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    p.cleanup();
    try { inDest(`kill -9 ${p.pid} 2>/dev/null; pkill -9 -s ${p.pid} 2>/dev/null; true`); } catch { /* gone */ }
  }
});
