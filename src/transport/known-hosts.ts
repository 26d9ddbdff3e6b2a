// Host key checking against known_hosts files (plain and hashed entries,
// [host]:port forms, @revoked markers), and adding a new key on request.
import { createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown' | 'revoked';

/** The names a host is listed under: "host" for port 22, "[host]:port" otherwise. */
export const hostPatterns = (host: string, port: number): string[] => (port === 22 ? [host] : [`[${host}]:${port}`]);

function nameMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const key = Buffer.from(salt, 'base64');
    return names.some((n) => createHmac('sha1', key).update(n).digest('base64') === hash);
  }
  const list = field.split(',');
  let matched = false;
  for (const pat of list) {
    const negated = pat.startsWith('!');
    const p = negated ? pat.slice(1) : pat;
    const re = new RegExp(`^${p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    if (names.some((n) => re.test(n))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The key type name from an SSH public key blob (string at its start). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

export function checkHostKey(files: string[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const names = hostPatterns(host, port);
  const type = keyType(key);
  let sawSameType = false;
  let sawAny = false;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const parts = line.split(/\s+/);
      let marker = '';
      if (parts[0].startsWith('@')) marker = parts.shift()!;
      if (parts.length < 3 || !nameMatches(parts[0], names)) continue;
      if (marker === '@cert-authority') continue;
      const blob = Buffer.from(parts[2], 'base64');
      if (marker === '@revoked') {
        if (blob.equals(key)) return 'revoked';
        continue;
      }
      sawAny = true;
      if (parts[1] === type) sawSameType = true;
      if (blob.equals(key)) return 'match';
    }
  }
  // A known host whose key of this type differs is a changed key; a key of
  // another type is merely unknown (the negotiation prefers known types).
  void sawAny;
  return sawSameType ? 'mismatch' : 'unknown';
}

export function addHostKey(file: string, host: string, port: number, key: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${hostPatterns(host, port)[0]} ${keyType(key)} ${key.toString('base64')}\n`, { mode: 0o600 });
}

/** Key types recorded for a host, to prefer them in the key exchange. */
export function knownKeyTypes(files: string[], host: string, port: number): string[] {
  const names = hostPatterns(host, port);
  const types = new Set<string>();
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const parts = raw.trim().split(/\s+/);
      if (parts.length >= 3 && !parts[0].startsWith('@') && !parts[0].startsWith('#') && nameMatches(parts[0], names)) types.add(parts[1]);
    }
  }
  return [...types];
}
