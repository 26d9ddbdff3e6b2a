// The local test hosts (scripts/testhosts.sh): two network namespaces with an
// sshd each in its own PID namespace, reachable from the root namespace and
// from each other, and nothing left behind after `down`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { execIn, hostInitPid, hostsDown, hostsUp, STATE_DIR } from './testhosts.mjs';

const NAMES = ['crm-a', 'crm-b'];
let hosts;
const initPids = {};

/** Runs a command in the root namespace; resolves to { code, stdout, stderr }. */
function run(cmd, args) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const ssh = (name, command) => run('ssh', ['-F', hosts.sshConfig, name, command]);

/** Live (not zombie) process? */
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !'ZX'.includes(stat.slice(stat.lastIndexOf(')') + 2)[0]);
  } catch {
    return false;
  }
}

before(async () => {
  hosts = await hostsUp(NAMES);
  for (const n of NAMES) initPids[n] = hostInitPid(n);
});

after(async () => {
  await hostsDown(NAMES);
});

test('hostsUp reports addresses and client files', () => {
  assert.deepEqual(hosts.names, NAMES);
  assert.deepEqual(hosts.ips, { 'crm-a': '10.213.7.11', 'crm-b': '10.213.7.12' });
  for (const f of [hosts.sshConfig, hosts.knownHosts, hosts.identity]) assert.ok(existsSync(f), f);
  const known = readFileSync(hosts.knownHosts, 'utf8');
  for (const ip of Object.values(hosts.ips)) assert.match(known, new RegExp(`^${ip.replaceAll('.', '\\.')} ssh-ed25519 `, 'm'));
});

test('each host is a network namespace', async () => {
  const { stdout } = await run('ip', ['netns', 'list']);
  const list = stdout.split('\n').map((l) => l.split(' ')[0]);
  for (const n of NAMES) assert.ok(list.includes(n), `netns ${n} in: ${stdout}`);
});

test('ssh to crm-b by name lands on crm-b', async () => {
  const r = await ssh('crm-b', 'hostname');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'crm-b');
});

test('a process started over ssh is in the host PID namespace', async () => {
  const rootNs = readlinkSync('/proc/self/ns/pid');
  const r = await ssh('crm-b', 'readlink /proc/self/ns/pid; cat /proc/1/comm');
  assert.equal(r.code, 0, r.stderr);
  const [ns, comm] = r.stdout.trim().split('\n');
  assert.match(ns, /^pid:\[\d+\]$/);
  assert.notEqual(ns, rootNs);
  assert.ok(['sshd', 'sh'].includes(comm), `PID 1 in crm-b is ${comm}`);
  // the host's PID namespace is the one of its recorded init
  assert.equal(ns, readlinkSync(`/proc/${initPids['crm-b']}/ns/pid`));
});

test('execIn runs inside the host namespaces', async () => {
  const r = await execIn('crm-a', 'sh', ['-c', 'hostname; readlink /proc/self/ns/pid /proc/self/ns/net; pwd']);
  assert.equal(r.code, 0, r.stderr);
  const [name, pidNs, netNs, cwd] = r.stdout.trim().split('\n');
  assert.equal(name, 'crm-a');
  assert.equal(pidNs, readlinkSync(`/proc/${initPids['crm-a']}/ns/pid`));
  assert.notEqual(pidNs, readlinkSync('/proc/self/ns/pid'));
  assert.equal(netNs, readlinkSync(`/proc/${initPids['crm-a']}/ns/net`));
  assert.equal(cwd, process.cwd());
  const f = await execIn('crm-a', 'sh', ['-c', 'exit 3']);
  assert.equal(f.code, 3);
});

test('the hosts reach each other by IP', async () => {
  const args = ['-i', hosts.identity, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${hosts.knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];
  const ab = await execIn('crm-a', 'ssh', [...args, `root@${hosts.ips['crm-b']}`, 'hostname']);
  assert.equal(ab.code, 0, ab.stderr);
  assert.equal(ab.stdout.trim(), 'crm-b');
  const ba = await execIn('crm-b', 'ssh', [...args, `root@${hosts.ips['crm-a']}`, 'hostname']);
  assert.equal(ba.code, 0, ba.stderr);
  assert.equal(ba.stdout.trim(), 'crm-a');
});

test('up again keeps the running hosts', async () => {
  const again = await hostsUp(NAMES);
  assert.deepEqual(again.ips, hosts.ips);
  for (const n of NAMES) assert.equal(hostInitPid(n), initPids[n]);
});

test('down leaves nothing behind', async () => {
  // something running inside a host goes down with it
  const sleeper = await ssh('crm-b', 'setsid sleep 600 </dev/null >/dev/null 2>&1 & echo started');
  assert.equal(sleeper.code, 0, sleeper.stderr);
  await hostsDown(NAMES);
  const netns = await run('ip', ['netns', 'list']);
  assert.doesNotMatch(netns.stdout, /^crm-/m);
  const br = await run('ip', ['link', 'show', 'dev', 'crm-br0']);
  assert.notEqual(br.code, 0, 'crm-br0 still exists');
  const links = await run('ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(links.stdout, /\bv-crm-/);
  for (const n of NAMES) assert.ok(!alive(initPids[n]), `sshd of ${n} (PID ${initPids[n]}) still running`);
  assert.ok(!existsSync(STATE_DIR), `${STATE_DIR} still exists`);
  // and down of hosts that are not up is fine
  await hostsDown(NAMES);
});
