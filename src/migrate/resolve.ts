// `crmigrate resolve <migration-id> <destination>`: finishes a migration whose
// outcome was in doubt (the link was lost after the commit was sent). The
// agent's journal decides: committed there -> the held source copy is killed;
// anything else -> the source copy is let go on. Never guesses.
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
  const alive = (() => { try { process.kill(pid, 0); return true; } catch { return false; } })();
  if (state === 'committed' || state === 'running') {
    if (alive) process.kill(pid, 'SIGKILL');
    writeJournal('source', id, { ...local, state: 'done', resolvedAs: state });
    return `migration ${id} was committed on the destination: the source copy of ${pid} is killed`;
  }
  if (alive) process.kill(pid, 'SIGCONT');
  writeJournal('source', id, { ...local, state: 'thawed', resolvedAs: state ?? 'unknown' });
  return `migration ${id} was not committed on the destination (${state ?? 'no record'}): process ${pid} continues here`;
}
