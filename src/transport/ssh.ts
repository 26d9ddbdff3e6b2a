// The SSH connection to the destination, as an OpenSSH user expects it: host
// key checked against known_hosts (unknown or changed: refuse, unless the
// user accepts a new one), keys from ssh-agent, -i, ~/.ssh/config and the
// default ~/.ssh/id_* files; aes128-gcm preferred.
import { existsSync, readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { Client, type ClientChannel } from 'ssh2';
import { CrmError, ExitCode } from '../util/errors.js';
import { addHostKey, checkHostKey, keyType, knownKeyTypes } from './known-hosts.js';
import type { SshTarget } from './target.js';

export interface ConnectOptions {
  acceptNewHostKey?: boolean;
  timeoutMs?: number;
}

const CIPHERS = ['aes128-gcm@openssh.com', 'aes128-gcm', 'aes256-gcm@openssh.com', 'aes256-gcm', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'];
const HOST_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

export class SshConnection {
  private constructor(readonly client: Client, readonly target: SshTarget, private readonly sock: Socket) {}

  /**
   * Runs fn (which writes to channels) with the TCP socket corked: ssh2
   * writes one packet of at most 32 KiB (OpenSSH's limit) at a time, and
   * the packets of one large channel write then leave in one system call.
   */
  batched<T>(fn: () => T): T {
    this.sock.cork();
    try {
      return fn();
    } finally {
      this.sock.uncork();
    }
  }

  static connect(target: SshTarget, opts: ConnectOptions = {}): Promise<SshConnection> {
    const where = `${target.user}@${target.host}:${target.port}`;
    const client = new Client();
    const methods: object[] = [];
    if (process.env.SSH_AUTH_SOCK) methods.push({ type: 'agent', username: target.user, agent: process.env.SSH_AUTH_SOCK });
    for (const file of target.identityFiles) {
      if (!existsSync(file)) continue;
      methods.push({ type: 'publickey', username: target.user, key: readFileSync(file) });
    }
    if (!methods.length) {
      return Promise.reject(new CrmError(`no SSH key to log in to ${where}: no ssh-agent, no -i key and no ~/.ssh/id_* file`, ExitCode.USAGE));
    }
    // our own socket, to batch writes (batched); ssh2 connects through it
    const sock = tcpConnect({ host: target.host, port: target.port });
    sock.setNoDelay(true); // ssh2 writes one small packet at a time: Nagle held them back (raw channel 262 -> 361 MB/s here)
    let hostKeyProblem: string | null = null;
    const known = knownKeyTypes(target.knownHostsFiles, target.host, target.port);
    const hostKeyOrder = [...known.filter((t) => HOST_KEY_TYPES.includes(t)), ...HOST_KEY_TYPES.filter((t) => !known.includes(t))];
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: CrmError): void => {
        if (settled) return;
        settled = true;
        client.end();
        sock.destroy();
        reject(err);
      };
      client.on('ready', () => {
        settled = true;
        resolve(new SshConnection(client, target, sock));
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (hostKeyProblem) fail(new CrmError(hostKeyProblem, ExitCode.FAILURE));
        else if (err.level === 'client-authentication')
          fail(new CrmError(`SSH authentication to ${where} failed (tried ${methods.length} key source(s))`, ExitCode.FAILURE));
        else if (err.level === 'client-timeout') fail(new CrmError(`SSH connection to ${where} timed out`, ExitCode.FAILURE));
        else fail(new CrmError(`SSH connection to ${where} failed: ${err.message}`, ExitCode.FAILURE));
      });
      client.on('close', () => fail(new CrmError(`SSH connection to ${where} closed during setup`, ExitCode.FAILURE)));
      client.connect({
        sock,
        host: target.host,
        port: target.port,
        username: target.user,
        readyTimeout: opts.timeoutMs ?? 20000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 4,
        algorithms: { cipher: CIPHERS as never, serverHostKey: hostKeyOrder as never },
        authHandler: methods as never,
        hostVerifier: (key: Buffer): boolean => {
          const verdict = checkHostKey(target.knownHostsFiles, target.host, target.port, key);
          if (verdict === 'match') return true;
          if (verdict === 'unknown' && opts.acceptNewHostKey) {
            addHostKey(target.knownHostsFiles[0], target.host, target.port, key);
            return true;
          }
          hostKeyProblem =
            verdict === 'unknown'
              ? `host key of ${target.host}:${target.port} (${keyType(key)}) is not in ${target.knownHostsFiles.join(', ')}; refusing (use --accept-new-host-key to add it)`
              : verdict === 'revoked'
                ? `host key of ${target.host}:${target.port} is revoked in known_hosts; refusing`
                : `HOST KEY OF ${target.host}:${target.port} HAS CHANGED (${keyType(key)} key differs from known_hosts); refusing: possible man-in-the-middle`;
          return false;
        },
      });
    });
  }

  /** Runs a remote command; resolves to its channel (stdin/stdout/stderr). */
  exec(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch) => (err ? reject(new CrmError(`cannot run "${command}" on ${this.target.host}: ${err.message}`)) : resolve(ch)));
    });
  }

  close(): void {
    this.client.end();
  }
}
