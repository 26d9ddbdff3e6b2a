// Test hosts for the end-to-end tests (DESIGN.md, "Test hosts"): thin wrapper
// around scripts/testhosts.sh. A host is a network namespace with an sshd that
// runs as PID 1 of its own PID namespace (with its own UTS namespace and a
// mount namespace that differs only in /proc); the file system is shared.
//
//   const hosts = await hostsUp(['crm-a', 'crm-b']);
//   // ssh -F hosts.sshConfig crm-b ...  or  root@hosts.ips['crm-b'] with hosts.identity
//   const { code, stdout } = await execIn('crm-a', 'hostname');
//   await hostsDown(['crm-a', 'crm-b']);
//
// Processes started with execIn/spawnIn (like those started over ssh) live in
// the host's PID namespace: their PIDs there are not the PIDs the test sees,
// they show up in the host's /proc (mounted for that namespace), orphans are
// reparented to the host's sshd (PID 1 there, which reaps them), and
// hostsDown kills them all with the namespace.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
export const SCRIPT = join(root, 'scripts/testhosts.sh');
export const STATE_DIR = '/run/crmigrate-testhosts';
export const CLIENT_DIR = join(STATE_DIR, 'client');
export const DEFAULT_HOSTS = ['crm-a', 'crm-b'];

function runScript(args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile('bash', [SCRIPT, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const how = err.killed ? `killed after ${timeoutMs} ms` : `exit code ${err.code}`;
        reject(new Error(`testhosts.sh ${args.join(' ')} failed (${how}):\n${stderr}${stdout}`));
      } else resolve({ stdout, stderr });
    });
  });
}

/**
 * Brings the hosts up (idempotent; installs missing packages on first use).
 * Resolves to { names, ips, sshConfig, knownHosts, identity }: ips maps each
 * name to its address; sshConfig is an ssh_config with a `Host NAME` entry per
 * host (for `ssh -F`), knownHosts their host keys by IP, identity the client
 * private key the hosts accept for root.
 */
export async function hostsUp(names = DEFAULT_HOSTS, { timeoutMs = 600000 } = {}) {
  await runScript(['up', ...names], timeoutMs);
  const ips = Object.fromEntries(names.map((n) => [n, readFileSync(join(STATE_DIR, n, 'ip'), 'utf8').trim()]));
  return {
    names: [...names],
    ips,
    sshConfig: join(CLIENT_DIR, 'config'),
    knownHosts: join(CLIENT_DIR, 'known_hosts'),
    identity: join(CLIENT_DIR, 'id_ed25519'),
  };
}

/** Tears the hosts down (and everything in them); fine for hosts that are not up. */
export async function hostsDown(names = DEFAULT_HOSTS, { timeoutMs = 60000 } = {}) {
  await runScript(['down', ...names], timeoutMs);
}

/** Root-namespace PID of the host's PID-namespace init (its sshd). */
export function hostInitPid(name) {
  const pid = Number(readFileSync(join(STATE_DIR, name, 'init.pid'), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`testhosts: no init PID recorded for ${name}`);
  return pid;
}

/** nsenter argv running cmd inside the host's network, PID, mount and UTS namespaces. */
function nsenterArgs(name, cmd, args, cwd) {
  return [
    '--target', String(hostInitPid(name)), '--net', '--pid', '--mount', '--uts', '--',
    // cd to cwd once inside (the file system is shared, so the path is the same)
    '/bin/sh', '-c', 'cd -- "$1" 2>/dev/null || cd /; shift; exec "$@"', 'sh', cwd, cmd, ...args,
  ];
}

/**
 * Runs cmd with args inside host `name` (network + PID + mount + UTS
 * namespaces, via nsenter on the host's init). The command lives in the host's
 * PID namespace (nsenter forks it there). Resolves to { code, signal, stdout,
 * stderr }; never rejects for a failing command. On timeout nsenter is killed,
 * but the command itself (a child of nsenter) is left to hostsDown.
 */
export function execIn(name, cmd, args = [], { cwd = process.cwd(), env = process.env, timeoutMs = 120000, input } = {}) {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = execFile('nsenter', nsenterArgs(name, cmd, args, cwd), { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number' && !err.signal && err.code !== undefined) return reject(err);
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, signal: err?.signal ?? null, stdout, stderr });
      });
    } catch (e) {
      return reject(e);
    }
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/**
 * Spawns cmd inside host `name` like execIn, returning the ChildProcess. Its
 * pid is nsenter's (root namespace); the command is nsenter's child, in the
 * host's PID namespace.
 */
export function spawnIn(name, cmd, args = [], { cwd = process.cwd(), ...options } = {}) {
  return spawn('nsenter', nsenterArgs(name, cmd, args, cwd), options);
}
