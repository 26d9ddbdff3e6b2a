// Every test program, checkpointed, killed, restored and verified with the
// real CLI; and each one run without checkpoint as a control.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alive, assertPassed, crmigrate, TestProcess } from './harness.mjs';

const programs = ['t_regs', 't_memory', 't_signals', 't_files', 't_syscall', 't_threads', 't_tree', 't_creds', 't_sysv', 't_cow'];

for (const name of programs) {
  test(`${name}: passes without checkpoint (control)`, async () => {
    const p = new TestProcess(name);
    try {
      await p.ready();
      assertPassed(assert, await p.verdict(), name);
    } finally {
      p.cleanup();
    }
  });

  test(`${name}: checkpoint, kill, restore keeps every detail`, async () => {
    const p = new TestProcess(name);
    try {
      await p.ready();
      const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir]);
      assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
      await p.gone();
      const i = await crmigrate(['inspect', p.imageDir]);
      assert.equal(i.code, 0, `inspect failed: ${i.stderr}`);
      assert.equal(JSON.parse(i.stdout).tasks[0].pid, p.pid);
      const r = await crmigrate(['restore', '--dir', p.imageDir, '--pidfile', `${p.dir}/pidfile`]);
      assert.equal(r.code, 0, `restore failed: ${r.stderr}`);
      assert.ok(alive(p.pid), 'restored process is not running');
      assertPassed(assert, await p.verdict(), name);
    } finally {
      p.cleanup();
    }
  });
}

test('t_signals: --leave-running checkpoint lets the process go on untouched', async () => {
  const p = new TestProcess('t_signals');
  try {
    await p.ready();
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir, '--leave-running']);
    assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
    assert.ok(alive(p.pid), 'process was killed despite --leave-running');
    assertPassed(assert, await p.verdict(), 't_signals');
  } finally {
    p.cleanup();
  }
});
