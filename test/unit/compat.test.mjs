// The hello both sides of a migration exchange: versions, architecture, CPU
// state features and the kernel features each side needs, probed for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareHellos, localHello, memoryProblem, preCopyUnavailable } from '../../dist/migrate/compat.js';

const ALL = {
  'ptrace-seize': true, 'syscall-injection': true, 'clone3-set-tid': true, 'pr-set-mm-map': true, 'pidfd-getfd': true,
  'userfaultfd-wp': true, 'pagemap-scan': true, 'proc-pid-mem': true,
};
const hello = (over = {}) => ({
  t: 'hello', protocol: 2, version: '1', arch: 'x86_64', kernel: '6.18', hostname: 'h', xcr0: '207', features: { ...ALL }, ...over,
});

test('localHello: this kernel probed by crmigrate-check (every feature the tests need passes here)', async () => {
  const h = await localHello();
  for (const id of Object.keys(ALL)) assert.equal(h.features[id], true, `${id} on this machine`);
  assert.deepEqual(compareHellos(h, h), []);
  assert.equal(preCopyUnavailable(h), '');
});

test('compareHellos: each incompatibility named, from the side that has it', () => {
  assert.deepEqual(compareHellos(hello(), hello()), []);
  assert.deepEqual(compareHellos(hello(), hello({ protocol: 3, version: '2', hostname: 'dst' })), ['protocol 2 here, 3 on dst (crmigrate 1 vs 2)']);
  assert.deepEqual(compareHellos(hello(), hello({ arch: 'aarch64', hostname: 'dst' })), ['architecture x86_64 here, aarch64 on dst']);
  assert.deepEqual(compareHellos(hello({ xcr0: 'e7' }), hello({ xcr0: '7', hostname: 'dst' })), ['CPU state features 0xe0 used here are missing on dst']);
  // the destination restores: clone3 set_tid and PR_SET_MM_MAP are needed there, not pidfd_getfd
  const dst = hello({ hostname: 'dst', features: { ...ALL, 'clone3-set-tid': false, 'pidfd-getfd': false } });
  delete dst.features['pr-set-mm-map'];
  assert.deepEqual(compareHellos(hello(), dst), ['the kernel of dst lacks clone3-set-tid, pr-set-mm-map (crmigrate check)']);
  // the source dumps: PAGEMAP_SCAN is needed here, clone3 is not
  assert.deepEqual(compareHellos(hello({ features: { ...ALL, 'pagemap-scan': false, 'clone3-set-tid': false } }), hello()),
    ['the kernel of this host lacks pagemap-scan (crmigrate check)']);
  assert.deepEqual(compareHellos(hello(), hello({ hostname: 'dst', features: {} })), ['the kernel features of dst could not be probed (crmigrate check)']);
});

test('preCopyUnavailable: why a pre-copy cannot track writes here', () => {
  assert.equal(preCopyUnavailable(hello()), '');
  assert.equal(preCopyUnavailable(hello({ features: { ...ALL, 'userfaultfd-wp': false, 'pidfd-getfd': false } })),
    'this kernel lacks pidfd-getfd, userfaultfd-wp (see crmigrate check)');
});

test('memoryProblem: the destination must have the memory the tree holds', () => {
  const meminfo = 'MemTotal:       24683480 kB\nMemFree:        20000000 kB\nMemAvailable:    2097152 kB\n';
  assert.equal(memoryProblem(2 ** 30, meminfo, 'dst'), '');
  assert.equal(memoryProblem(2 * 2 ** 30, meminfo, 'dst'), '', 'exactly what is available');
  assert.equal(memoryProblem(3 * 2 ** 30 + 1, meminfo, 'dst'), 'not enough memory on dst: the processes hold about 3073 MiB, 2048 MiB available');
  assert.equal(memoryProblem(1e15, 'MemTotal: 1 kB\n', 'dst'), '', 'no MemAvailable: no judgement');
});
