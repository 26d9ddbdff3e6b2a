// Where to connect: `[user@]host[:port]` resolved through ~/.ssh/config
// (HostName, User, Port, IdentityFile, UserKnownHostsFile), as OpenSSH does.
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import { CrmError, ExitCode } from '../util/errors.js';

export interface SshTarget {
  alias: string; // what the user typed (host part)
  host: string; // HostName after ~/.ssh/config
  port: number;
  user: string;
  identityFiles: string[];
  knownHostsFiles: string[];
}

export interface TargetOptions {
  configFile?: string; // -F
  identity?: string[]; // -i
  knownHosts?: string; // --known-hosts
}

const expandHome = (p: string): string => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function parseTarget(spec: string, opts: TargetOptions = {}): SshTarget {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new CrmError(`invalid destination "${spec}" (expected [user@]host[:port])`, ExitCode.USAGE);
  const alias = m[2].replace(/^\[|\]$/g, '');
  const cfgPath = opts.configFile ?? join(homedir(), '.ssh', 'config');
  let computed: Record<string, string | string[]> = {};
  if (existsSync(cfgPath)) {
    try {
      computed = SSHConfig.parse(readFileSync(cfgPath, 'utf8')).compute(alias);
    } catch (err) {
      throw new CrmError(`cannot read ssh config ${cfgPath}: ${(err as Error).message}`, ExitCode.USAGE);
    }
  } else if (opts.configFile) {
    throw new CrmError(`ssh config ${cfgPath} does not exist`, ExitCode.USAGE);
  }
  const one = (k: string): string | undefined => {
    const v = computed[k];
    return Array.isArray(v) ? v[0] : v;
  };
  const many = (k: string): string[] => {
    const v = computed[k];
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  };
  const port = Number(m[3] ?? one('Port') ?? 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CrmError(`invalid port in "${spec}"`, ExitCode.USAGE);
  const identityFiles = opts.identity?.length
    ? opts.identity.map(expandHome)
    : many('IdentityFile').length
      ? many('IdentityFile').map(expandHome)
      : DEFAULT_KEYS.map((k) => join(homedir(), '.ssh', k)).filter((p) => existsSync(p));
  const knownHostsFiles = opts.knownHosts
    ? [opts.knownHosts]
    : many('UserKnownHostsFile').length
      ? many('UserKnownHostsFile').flatMap((s) => s.split(/\s+/)).map(expandHome)
      : [join(homedir(), '.ssh', 'known_hosts')];
  return {
    alias,
    host: one('HostName') ?? alias,
    port,
    user: m[1] ?? one('User') ?? userInfo().username,
    identityFiles,
    knownHostsFiles,
  };
}
