#!/usr/bin/env node
// The test command (`npm test`): builds what the tests need, then runs every
// unit and end-to-end test with node's test runner under a subreaper, so that
// restored (daemonised) test processes are reaped.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../', import.meta.url).pathname;
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

if (process.getuid?.() !== 0) {
  console.error('run-tests: the tests checkpoint and restore real processes and must run as root');
  process.exit(1);
}
if (!existsSync(join(root, 'dist/cli/main.js')) || !existsSync(join(root, 'build/Release/crmigrate_native.node'))) run('npm', ['run', 'build']);
run('make', ['-s', '-C', 'native']);
run('make', ['-s', '-C', 'test/programs']);
run('npx', ['tsc', '-p', 'tsconfig.json']);

const only = process.argv.slice(2);
const files = ['test/unit', 'test/e2e']
  .flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => join(d, f)))
  .filter((f) => !only.length || only.some((o) => f.includes(o)));
// spec on the terminal, TAP into a file for the closing summary line
const tap = join(mkdtempSync(join(tmpdir(), 'crm-tests-')), 'results.tap');
const r = spawnSync(join(root, 'native/build/subreaper'), [process.execPath, '--test', '--test-concurrency=1',
  '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files], {
  cwd: root,
  stdio: 'inherit',
});
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
console.log(`${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped') + count('todo')} skipped`);
process.exit(r.status ?? 1);
