// The migration journals: one small JSON file per migration and side, written
// atomically at each step. The agent's journal is the commit point: once it
// says "committed", the destination copy is the one that lives. State lives
// under a directory named after this host, so two test hosts sharing one
// file system (and two migrations at once) never collide.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export type AgentState = 'receiving' | 'ready' | 'committed' | 'running' | 'discarded';
export type SourceState = 'dumping' | 'committing' | 'done' | 'thawed' | 'in-doubt';

export const stateDir = (): string => process.env.CRMIGRATE_STATE_DIR ?? join('/var/lib/crmigrate', hostname());

const journalPath = (side: 'agent' | 'source', id: string): string => {
  if (!/^[0-9a-f-]{8,64}$/.test(id)) throw new Error(`invalid migration id ${id}`);
  return join(stateDir(), `${side}-${id}.json`);
};

export function writeJournal(side: 'agent' | 'source', id: string, entry: Record<string, unknown>): string {
  const dir = stateDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = journalPath(side, id);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  writeSync(fd, JSON.stringify({ ...entry, id, updated: new Date().toISOString() }) + '\n');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dir, 'r');
  fsyncSync(dfd);
  closeSync(dfd);
  return path;
}

export function readJournal(side: 'agent' | 'source', id: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(journalPath(side, id), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export const agentJournalPath = (id: string): string => journalPath('agent', id);
