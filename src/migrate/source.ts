// `crmigrate <pid> [user@]host[:port]`: the source side of a migration.
// Connect, start the agent, compare, preflight (nothing frozen yet), then
// freeze and stream the compressed image, and follow the commit protocol:
//   agent READY (task held stopped there)  ->  COMMIT  ->  agent journals it,
//   lets the task run  ->  COMMITTED  ->  the frozen source copy is killed.
// Any failure before COMMIT thaws the source process; a link lost after
// COMMIT leaves the outcome in doubt: the source copy is held stopped until
// `crmigrate resolve` reads the agent's journal.
import { randomUUID } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { dumpToSink, type Release } from '../dump/dump.js';
import { setInterruptPolicy } from '../dump/freeze.js';
import { checkTaskSupported } from '../resources/task.js';
import { SshConnection } from '../transport/ssh.js';
import { parseTarget, type TargetOptions } from '../transport/target.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { compareHellos, localHello, preCopyUnavailable, preflightRequest, processRef } from './compat.js';
import { writeJournal } from './journal.js';
import { ImageCompressor } from './zstd-stream.js';
import { controlFrame, frame, FRAME_HEADER, FrameKind, frameHeaderInto, Inbox, readFrames, TakenWriter, writeAll, type Message } from './protocol.js';
import type { Progress } from './progress.js';

export interface MigrateOptions extends TargetOptions {
  acceptNewHostKey?: boolean;
  remoteCommand: string;
  compressLevel: number | null; // null: no compression
  /** Stream the memory first while the tree runs; freeze only for what it
   * wrote since. Default: when this kernel can track the writes. */
  preCopy?: boolean;
  progress: Progress;
}

export interface MigrateResult {
  migrationId: string;
  pid: number;
  preCopy: boolean;
  /** Pages copied while the tree ran (pre-copy), and the pages copied while it was frozen. */
  precopyPages: number;
  frozenPages: number;
  imageBytes: number;
  wireBytes: number;
  seconds: number;
  frozenSeconds: number;
}

export const EXIT_IN_DOUBT = 75;

export async function migrate(pid: number, destination: string, opts: MigrateOptions): Promise<MigrateResult> {
  const t0 = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  const progress = opts.progress;
  const target = parseTarget(destination, opts);
  checkTaskSupported(pid);
  progress.phase('connect', { host: target.host, port: target.port, user: target.user });
  const conn = await SshConnection.connect(target, { acceptNewHostKey: opts.acceptNewHostKey });
  const migrationId = randomUUID();
  let channel: ClientChannel | null = null;
  const remoteErr: string[] = [];
  try {
    channel = await conn.exec(`${opts.remoteCommand} agent --stdio`);
    channel.stderr.on('data', (d: Buffer) => remoteErr.push(d.toString()));
    const ch = channel;
    const inbox = new Inbox(readFrames(ch));
    const send = (m: Message): Promise<void> => writeAll(ch, controlFrame(m));
    const expect = async <T extends Message['t']>(t: T, timeoutMs = 0): Promise<Extract<Message, { t: T }>> => {
      let m: Message;
      try {
        m = await inbox.next(timeoutMs);
      } catch (err) {
        const why = remoteErr.join('').trim().split('\n').pop();
        throw new CrmError(`${(err as Error).message}${why ? ` (agent: ${why})` : ''}`);
      }
      if (m.t === 'error') throw new CrmError(`destination: ${m.message}`, m.code as never);
      if (m.t !== t) throw new CrmError(`protocol error: expected ${t}, got ${m.t}`);
      return m as Extract<Message, { t: T }>;
    };

    const mine = await localHello();
    await send(mine);
    const peer = await expect('hello', 30000).catch((err: Error) => {
      throw new CrmError(`no crmigrate agent answered on ${target.host} (is "${opts.remoteCommand}" installed there? use --remote-crmigrate): ${err.message}`);
    });
    const incompatible = compareHellos(mine, peer);
    if (incompatible.length) throw new CrmError(`cannot migrate to ${peer.hostname}: ${incompatible.join('; ')}`, ExitCode.UNSUPPORTED);
    const noPreCopy = preCopyUnavailable(mine);
    if (opts.preCopy && noPreCopy) throw new CrmError(`cannot pre-copy: ${noPreCopy}; migrate with --no-pre-copy`, ExitCode.UNSUPPORTED);
    const preCopy = opts.preCopy ?? !noPreCopy;

    progress.phase('preflight', {});
    const req = await preflightRequest(pid);
    await send({ t: 'preflight', migrationId, compressed: opts.compressLevel !== null, ...req });
    const pre = await expect('preflight-result', 120000);
    if (pre.problems.length)
      throw new CrmError(`cannot migrate process ${pid} to ${peer.hostname}: ${pre.problems.join('; ')}`, ExitCode.MISSING_FILE);

    // The image: writer -> zstd (its worker threads) -> DATA frames -> channel.
    let wireBytes = 0;
    // Fault injection for the tests: flip one byte of the compressed stream.
    const corruptAt = Number(process.env.CRMIGRATE_FAULT_CORRUPT_AT ?? -1);
    // and: a channel that never takes the bytes past this point, with nothing
    // left for the event loop to wait for (node then exits on its own)
    const stallAt = Number(process.env.CRMIGRATE_FAULT_STALL_AT ?? -1);
    const taken = new TakenWriter(ch);
    /** Sends one DATA frame: head (the frame header, followed by the payload
     * when the compressor made the frame in its buffer), then body (the
     * payload itself, uncompressed: not copied into a frame). Resolves once
     * the channel has taken it all. */
    const toWire = async (head: Buffer, body?: Buffer): Promise<void> => {
      const payload = head.length + (body?.length ?? 0) - FRAME_HEADER;
      if (corruptAt >= wireBytes && corruptAt < wireBytes + payload) {
        head = Buffer.concat(body ? [head, body] : [head]);
        body = undefined;
        head[FRAME_HEADER + corruptAt - wireBytes] ^= 0x55;
      }
      if (stallAt >= 0 && wireBytes >= stallAt) {
        conn.close();
        await new Promise(() => undefined);
      }
      wireBytes += payload;
      // its ssh2 packets leave together
      await conn.batched(() => (body ? Promise.all([taken.write(head), taken.write(body)]) : taken.write(head)));
      progress.bytes(payload);
    };
    const comp = opts.compressLevel === null ? null : new ImageCompressor({ level: opts.compressLevel, workers: 2 }, (f) => toWire(f));
    const rawFrame = (b: Buffer): Promise<void> => {
      const head = Buffer.allocUnsafe(FRAME_HEADER);
      frameHeaderInto(head, FrameKind.DATA, b.length);
      return toWire(head, b);
    };
    // The dump reuses a page buffer once its write resolves: both paths
    // resolve only when the bytes have been taken.
    const sink = {
      write: (b: Buffer): Promise<void> => {
        progress.image(b.length);
        return comp ? comp.write(b) : rawFrame(b);
      },
    };

    writeJournal('source', migrationId, { state: 'dumping', pid, destination: `${target.user}@${target.host}:${target.port}` });
    // with --pre-copy the stream starts while the tree runs; 'transfer' marks the freeze
    progress.expect(req.memoryBytes);
    progress.phase(preCopy ? 'pre-copy' : 'transfer', {});
    let inDoubt = false;
    const finish = async (frozen: number[]): Promise<Release> => {
      if (comp) await comp.end();
      await writeAll(ch, frame(FrameKind.DATA_END, Buffer.alloc(0)));
      progress.phase('restore', {});
      const ready = await expect('ready');
      progress.phase('commit', { pid: ready.pid });
      // the frozen tree, for `crmigrate resolve` if the outcome is in doubt
      const tree = frozen.map(processRef);
      writeJournal('source', migrationId, { state: 'committing', pid, tree });
      setInterruptPolicy('hold'); // from here an interrupt must not let the source copy run

      inDoubt = true;
      try {
        await send({ t: 'commit' });
        // Fault injection for the tests: the link goes down once the commit
        // is out, before its answer is read.
        if (process.env.CRMIGRATE_FAULT_LOSE_LINK_AFTER_COMMIT) {
          await new Promise((r) => setTimeout(r, 1000));
          conn.close();
          throw new CrmError('connection lost (fault injection)');
        }
        await expect('committed');
      } catch (err) {
        writeJournal('source', migrationId, { state: 'in-doubt', pid, tree, reason: (err as Error).message });
        return 'hold';
      }
      inDoubt = false;
      writeJournal('source', migrationId, { state: 'done', pid });
      return 'kill';
    };
    let dump;
    try {
      dump = await dumpToSink(pid, sink, {
        after: 'continue', beforeRelease: finish, preCopy,
        onFreeze: preCopy ? () => progress.phase('transfer', { frozen: true }) : undefined,
      });
    } catch (err) {
      writeJournal('source', migrationId, { state: 'thawed', pid, reason: (err as Error).message });
      throw err;
    }
    if (inDoubt) {
      throw new CrmError(
        `the link to ${target.host} was lost after the commit was sent: process ${pid} is held stopped here; run "crmigrate resolve ${migrationId} ${destination}" to finish`,
        EXIT_IN_DOUBT as never,
      );
    }
    const result = { migrationId, pid, preCopy, precopyPages: dump.precopyPages, frozenPages: dump.pages.pages, imageBytes: dump.imageBytes, wireBytes, seconds: elapsed(), frozenSeconds: dump.frozenSeconds };
    progress.done(result);
    return result;
  } finally {
    channel?.end();
    conn.close();
  }
}
