#!/usr/bin/env node
// The test command (`npm test`): builds what the tests need, then runs every
// unit and end-to-end test with node's test runner under a subreaper, so that
// restored (daemonised) test processes are reaped.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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
const r = spawnSync(join(root, 'native/build/subreaper'), [process.execPath, '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
