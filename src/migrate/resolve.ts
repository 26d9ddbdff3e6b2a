// `crmigrate resolve <migration-id> <destination>`: finishes a migration whose
// outcome was in doubt (the link was lost after the commit was sent). The
// agent's journal decides: committed there -> the held source copy is killed;
// anything else -> the source copy is let go on. Never guesses.
import { stillSame, type ProcessRef } from './compat.js';
import { readJournal, writeJournal } from './journal.js';
import { controlFrame, Inbox, readFrames, writeAll } from './protocol.js';
import { SshConnection } from '../transport/ssh.js';
import { parseTarget, type TargetOptions } from '../transport/target.js';
import { CrmError, ExitCode } from '../util/errors.js';

export async function resolveMigration(id: string, destination: string, opts: TargetOptions & { remoteCommand: string; acceptNewHostKey?: boolean }): Promise<string> {
  const local = readJournal('source', id);
  if (!local) throw new CrmError(`no migration ${id} in this host's journal`, ExitCode.USAGE);
  const pid = Number(local.pid);
  const conn = await SshConnection.connect(parseTarget(destination, opts), { acceptNewHostKey: opts.acceptNewHostKey });
  let state: string | null;
  try {
    const ch = await conn.exec(`${opts.remoteCommand} agent --stdio`);
    const inbox = new Inbox(readFrames(ch));
    await writeAll(ch, controlFrame({ t: 'status', migrationId: id }));
    let m = await inbox.next(30000);
    if (m.t === 'hello') m = await inbox.next(30000);
    if (m.t !== 'status-result') throw new CrmError(`protocol error: expected status-result, got ${m.t}`);
    state = m.state;
    ch.end();
  } finally {
    conn.close();
  }
  // every process of the held tree that is still the same process
  const tree = (Array.isArray(local.tree) ? (local.tree as ProcessRef[]) : []).filter(stillSame);
  const signal = (sig: NodeJS.Signals): void => {
    for (const p of tree) try { process.kill(p.pid, sig); } catch { /* gone meanwhile */ }
  };
  if (state === 'committed' || state === 'running') {
    signal('SIGKILL');
    writeJournal('source', id, { ...local, state: 'done', resolvedAs: state });
    return `migration ${id} was committed on the destination: the source copy of ${pid} is killed`;
  }
  signal('SIGCONT');
  writeJournal('source', id, { ...local, state: 'thawed', resolvedAs: state ?? 'unknown' });
  return `migration ${id} was not committed on the destination (${state ?? 'no record'}): process ${pid} continues here`;
}
