// `crmigrate agent --stdio`: the destination side of a migration, run by the
// source over SSH. It answers the hello and the preflight, decompresses and
// restores the image stream as it arrives, reports READY with the task held
// stopped, and lets it run only once the commit is in its journal. Anything
// else (a lost link, a bad image) discards the restored task.
import type { Readable, Writable } from 'node:stream';
import { recyclingSource } from '../image/stream.js';
import { restoreFromStream } from '../restore/restore.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { checkPreflight, localHello } from './compat.js';
import { agentJournalPath, readJournal, writeJournal } from './journal.js';
import { controlFrame, Inbox, readFrames, writeAll, type Message } from './protocol.js';
import { decompressedChunks } from './zstd-stream.js';

export async function runAgent(input: Readable, output: Writable): Promise<number> {
  const inbox = new Inbox(readFrames(input));
  const send = (m: Message): Promise<void> => writeAll(output, controlFrame(m));
  let migrationId = '';
  try {
    await send(await localHello());
    const hello = await inbox.next(30000);
    if (hello.t === 'status') {
      await send({ t: 'status-result', migrationId: hello.migrationId, state: (readJournal('agent', hello.migrationId)?.state as string) ?? null });
      return 0;
    }
    if (hello.t !== 'hello') throw new CrmError(`protocol error: expected hello, got ${hello.t}`);
    const pre = await inbox.next(60000);
    if (pre.t !== 'preflight') throw new CrmError(`protocol error: expected preflight, got ${pre.t}`);
    migrationId = pre.migrationId;
    const problems = await checkPreflight(pre);
    await send({ t: 'preflight-result', problems });
    if (problems.length) return 0;
    writeJournal('agent', migrationId, { state: 'receiving', pids: pre.pids });

    // image (zstd-compressed unless the source said otherwise) -> restore
    const data = inbox.dataStream();
    const image = pre.compressed !== false ? recyclingSource(decompressedChunks(data)) : data;
    const result = await restoreFromStream(image, {
      commitFile: agentJournalPath(migrationId),
      commit: async (pid) => {
        writeJournal('agent', migrationId, { state: 'ready', pid });
        await send({ t: 'ready', pid });
        const m = await inbox.next();
        if (m.t !== 'commit') return false;
        // The commit point: from here on the destination copy is the one.
        writeJournal('agent', migrationId, { state: 'committed', pid });
        return true;
      },
    });
    writeJournal('agent', migrationId, { state: 'running', pid: result.pid });
    await send({ t: 'committed', pid: result.pid });
    return 0;
  } catch (err) {
    const committed = migrationId && ['committed', 'running'].includes(String(readJournal('agent', migrationId)?.state));
    if (migrationId && !committed) writeJournal('agent', migrationId, { state: 'discarded', reason: (err as Error).message });
    const code = err instanceof CrmError ? err.exitCode : ExitCode.FAILURE;
    await send({ t: 'error', message: (err as Error).message, code }).catch(() => undefined);
    process.stderr.write(`crmigrate agent: ${(err as Error).message}\n`);
    return code;
  }
}
