// Every test program, checkpointed, killed, restored and verified with the
// real CLI; and each one run without checkpoint as a control. Images in a
// --dir and as streams (--stdout / --stdin).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { test } from 'node:test';
import { alive, assertPassed, CLI, crmigrate, TestProcess } from './harness.mjs';

const programs = ['t_regs', 't_memory', 't_signals', 't_files', 't_syscall', 't_threads', 't_tree', 't_creds', 't_sysv', 't_cow', 't_precopy'];

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

  test(`${name}: checkpoint, kill, restore keeps every detail`, () =>
    dumpKillRestore(name, [], async (p) => {
      const i = await crmigrate(['inspect', p.imageDir]);
      assert.equal(i.code, 0, `inspect failed: ${i.stderr}`);
      assert.equal(JSON.parse(i.stdout).tasks[0].pid, p.pid);
    }));

  // The same with a pre-copy: memory copied while the program runs, then
  // only what it wrote since while frozen.
  test(`${name}: checkpoint with --pre-copy, kill, restore keeps every detail`, () =>
    dumpKillRestore(name, ['--pre-copy'], async (_p, d) => {
      assert.match(d.stderr, /pages( \([^)]*\))? while frozen \(\d+ copied before, \d+ of them used\)/);
    }));
}

/** Where the image goes: a --dir, or a file written through --stdout and read back through --stdin. */
const viaDir = {
  dump: (p, args) => crmigrate(['dump', String(p.pid), '--dir', p.imageDir, ...args]),
  restore: (p) => crmigrate(['restore', '--dir', p.imageDir, '--pidfile', `${p.dir}/pidfile`]),
};
const streamFile = (p) => `${p.dir}/stream.crm`;
const viaStream = {
  dump: (p, args) => crmigrateWithFile(['dump', String(p.pid), '--stdout', ...args], streamFile(p), 'stdout'),
  restore: (p) => crmigrateWithFile(['restore', '--stdin', '--pidfile', `${p.dir}/pidfile`], streamFile(p), 'stdin'),
};

/** Dumps a test program (killing it), checks the image with check(p, dump), restores it and reads its verdict.
 * program: its arguments and TestProcess options, and how long its verdict may take. */
async function dumpKillRestore(name, dumpArgs, check, via = viaDir, program = { args: undefined, opts: undefined, verdictMs: undefined }) {
  const p = new TestProcess(name, program.args, program.opts);
  try {
    await p.ready();
    const d = await via.dump(p, dumpArgs);
    assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
    await p.gone();
    await check(p, d);
    const r = await via.restore(p);
    assert.equal(r.code, 0, `restore failed: ${r.stderr}`);
    assert.ok(alive(p.pid), 'restored process is not running');
    assertPassed(assert, await p.verdict(program.verdictMs), name);
  } finally {
    p.cleanup();
  }
}

test('t_cow: pages shared copy-on-write with a parent are stored once (inspect shows them inherited)', async () => {
  const p = new TestProcess('t_cow');
  try {
    await p.ready();
    const d = await crmigrate(['dump', String(p.pid), '--dir', p.imageDir, '--leave-running']);
    assert.equal(d.code, 0, `dump failed: ${d.stderr}`);
    const m = /: (\d+) pages \(\+(\d+) shared with a parent, stored once\)/.exec(d.stderr);
    assert.ok(m, `the dump reports no inherited pages: ${d.stderr}`);
    const i = await crmigrate(['inspect', p.imageDir]);
    assert.equal(i.code, 0, `inspect failed: ${i.stderr}`);
    const tasks = JSON.parse(i.stdout).tasks;
    assert.equal(tasks.length, 3);
    const [r, a, a1] = tasks;
    assert.equal(r.inheritedPages, 0, 'the root inherits nothing');
    // M is 16 MiB of 4 KiB pages: A shares [N/2, N) with R, A1 shares all of M with A but the
    // 16 pages A dropped and the 8 it wrote itself
    // (M may have merged with a neighbour: the mapping that inherits the most)
    const inM = (t) => t.mappings.reduce((best, v) => ((v.inheritedPages ?? 0) > (best?.inheritedPages ?? 0) ? v : best), null);
    const mA = inM(a);
    const mA1 = inM(a1);
    assert.ok(mA && mA.inheritedPages >= 2048, `A inherits ${mA?.inheritedPages} pages of M from R`);
    assert.ok(mA1 && mA1.inheritedPages >= 4096 - 16 - 8, `A1 inherits ${mA1?.inheritedPages} pages of M from A`);
    assert.equal(Number(m[2]), a.inheritedPages + a1.inheritedPages);
    // stored: R's M, A's own quarter and the pages R rewrote, A1's 8: about 1.5 M, not 3
    assert.ok(Number(m[1]) < 1.75 * 4096 + 2048, `${m[1]} pages stored`);
    assert.ok(!/"inheritedPages"/.test(JSON.stringify(r.mappings)), 'no mapping of the root inherits');
  } finally {
    p.cleanup();
  }
});

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

// Enough pages (256 MiB) that the restorer places them with a helper process
// next to the task (half the chunks each); bench_mem checks every byte.
for (const [how, args] of [['', []], [' with --pre-copy', ['--pre-copy']]]) {
  test(`bench_mem 256 MiB${how}: checkpoint, kill, restore by two placers keeps every byte`, () =>
    dumpKillRestore('bench_mem', args, async () => undefined, viaDir, { args: ['256'], opts: { workdirArg: false }, verdictMs: 60000 }));
}

/** Runs the CLI with a file as standard input or output (the image as a stream). */
function crmigrateWithFile(args, file, which) {
  return new Promise((resolve) => {
    const fd = which === 'stdout' ? openSync(file, 'w', 0o600) : openSync(file, 'r');
    const child = spawn(process.execPath, [CLI, ...args], { stdio: which === 'stdout' ? ['ignore', fd, 'pipe'] : [fd, 'pipe', 'pipe'] });
    closeSync(fd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// The image as a stream (dump --stdout, restore --stdin, inspect -), plain and
// pre-copied (its pages then wait in memory for their task)
for (const [name, extra] of [['t_memory', []], ['t_tree', []], ['t_precopy', ['--pre-copy']]]) {
  test(`${name}: dump --stdout ${extra.join(' ')} into a file, kill, restore --stdin keeps every detail`, () =>
    dumpKillRestore(name, extra, async (p) => {
      const i = await crmigrateWithFile(['inspect', '-'], streamFile(p), 'stdin');
      assert.equal(i.code, 0, `inspect - failed: ${i.stderr}`);
      assert.equal(JSON.parse(i.stdout).tasks[0].pid, p.pid);
    }, viaStream));
}

test('dump --stdout into a pipe whose reader goes away: a clear error, the process runs on untouched', async () => {
  const p = new TestProcess('t_signals');
  try {
    await p.ready();
    // the reader takes 4 KiB and leaves
    const d = await new Promise((resolve) => {
      const sh = spawn('sh', ['-c', `"$0" "$1" dump ${p.pid} --stdout | head -c 4096 >/dev/null`, process.execPath, CLI], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      sh.stderr.on('data', (x) => { stderr += x; });
      sh.on('close', (code) => resolve({ code, stderr }));
    });
    assert.match(d.stderr, /^crmigrate: the reader of standard output went away before the image was complete$/m);
    assert.ok(alive(p.pid), 'the process was lost');
    assertPassed(assert, await p.verdict(), 't_signals');
  } finally {
    p.cleanup();
  }
});

test('dump and restore want exactly one place for the image', async () => {
  for (const args of [['dump', String(process.pid)], ['dump', String(process.pid), '--dir', '/tmp/x', '--stdout'], ['restore'], ['restore', '--dir', '/tmp/x', '--stdin']]) {
    const r = await crmigrate(args);
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^crmigrate: give exactly one of --dir and --std(out|in)\n$/);
  }
});
