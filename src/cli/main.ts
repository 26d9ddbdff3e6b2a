#!/usr/bin/env node
// crmigrate command line.
import { Command, CommanderError, Option } from 'commander';
import { CrmError, ExitCode } from '../util/errors.js';
import { VERSION } from '../version.js';

// Each command loads its modules when it runs: the migration side (ssh2,
// zstd) alone doubles node's start-up time and adds 10 MB to every dump and
// restore that does not need it.

let verbose = false;

const program = new Command();
program
  .name('crmigrate')
  .description('Checkpoint, restore and live-migrate Linux processes')
  .version(VERSION)
  .option('-v, --verbose', 'show stack traces and details of failures')
  .hook('preAction', (cmd) => { verbose = Boolean(cmd.opts().verbose); })
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

const parsePid = (v: string): number => {
  if (!/^\d+$/.test(v)) throw new CrmError(`invalid PID "${v}"`, ExitCode.USAGE);
  return Number(v);
};

interface SshCliOptions {
  identity?: string[];
  config?: string;
  knownHosts?: string;
  acceptNewHostKey?: boolean;
  remoteCrmigrate: string;
}

const sshOptions = (cmd: Command): Command =>
  cmd
    .option('-i, --identity <file>', 'private key for SSH (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('-F, --config <file>', 'ssh config file instead of ~/.ssh/config')
    .option('--known-hosts <file>', 'known_hosts file instead of ~/.ssh/known_hosts')
    .option('--accept-new-host-key', 'add an unknown host key to known_hosts (a changed key is still refused)')
    .option('--remote-crmigrate <command>', 'how to run crmigrate on the destination', 'crmigrate');

sshOptions(
  program
    .command('migrate', { isDefault: true })
    .description('move a running process to another host over SSH (crmigrate <pid> [user@]host[:port])')
    .argument('<pid>', 'process to move', parsePid)
    .argument('<destination>', '[user@]host[:port], or a Host of ~/.ssh/config'),
)
  .option('--compress <level>', 'zstd level (negative: faster)', '-1')
  .option('--no-compress', 'send the image uncompressed')
  .option('--pre-copy', 'stream the memory first while the process runs, then freeze it only to send what it wrote since (a short pause whatever its size; the default when this kernel can track writes)')
  .option('--no-pre-copy', 'freeze first, then send the whole memory')
  .option('--json', 'print machine-readable events, one per line')
  .option('-q, --quiet', 'print nothing but errors')
  .action(async (pid: number, destination: string, o: SshCliOptions & { compress: string | false; preCopy?: boolean; json?: boolean; quiet?: boolean }) => {
    const level = o.compress === false ? null : Number(o.compress);
    if (level !== null && (!Number.isInteger(level) || level < -7 || level > 19)) throw new CrmError(`invalid --compress level ${String(o.compress)}`, ExitCode.USAGE);
    const [{ makeProgress }, { migrate }] = await Promise.all([import('../migrate/progress.js'), import('../migrate/source.js')]);
    const progress = makeProgress(o.json ? 'json' : o.quiet ? 'quiet' : 'tty');
    try {
      const r = await migrate(pid, destination, {
        identity: o.identity, configFile: o.config, knownHosts: o.knownHosts, acceptNewHostKey: o.acceptNewHostKey,
        remoteCommand: o.remoteCrmigrate, compressLevel: level, preCopy: o.preCopy, progress,
      });
      if (!o.json && !o.quiet)
        process.stderr.write(`migrated process ${pid} to ${destination}: ${(r.imageBytes / 1048576).toFixed(1)} MiB image, ${(r.wireBytes / 1048576).toFixed(1)} MiB sent, ${r.seconds.toFixed(2)} s, frozen ${r.frozenSeconds.toFixed(2)} s${r.preCopy ? ` (${r.frozenPages} pages sent while frozen, ${r.precopyPages} before)` : ''}\n`);
    } catch (err) {
      progress.stop();
      if (o.json) process.stdout.write(JSON.stringify({ event: 'result', ok: false, error: (err as Error).message }) + '\n');
      throw err;
    }
  });

program
  .command('agent')
  .description('the destination side of a migration (started by crmigrate over SSH)')
  .requiredOption('--stdio', 'speak the migration protocol on stdin/stdout')
  .action(async () => {
    const { runAgent } = await import('../migrate/agent.js');
    process.exitCode = await runAgent(process.stdin, process.stdout);
  });

sshOptions(
  program
    .command('resolve')
    .description("finish a migration whose outcome was in doubt, from the destination agent's journal")
    .argument('<migration-id>', 'the id printed when the link was lost')
    .argument('<destination>', 'the destination of that migration'),
).action(async (id: string, destination: string, o: SshCliOptions) => {
  const { resolveMigration } = await import('../migrate/resolve.js');
  const msg = await resolveMigration(id, destination, {
    identity: o.identity, configFile: o.config, knownHosts: o.knownHosts, acceptNewHostKey: o.acceptNewHostKey, remoteCommand: o.remoteCrmigrate,
  });
  process.stderr.write(msg + '\n');
});

/** Exactly one of two options that say where the image is. */
function oneOf(a: string | boolean | undefined, b: boolean | undefined, names: string): void {
  if (!a === !b) throw new CrmError(`give exactly one of ${names}`, ExitCode.USAGE);
}

program
  .command('dump')
  .description('checkpoint a running process into a directory (or a stream), then kill it (or let it go on)')
  .argument('<pid>', 'process to checkpoint', parsePid)
  .option('-D, --dir <dir>', 'directory for the image (created with mode 0700)')
  .option('--stdout', 'write the image stream to standard output (a pipe or a file) instead; with a pipe, only the reader knows whether it was kept: add --leave-running to be safe')
  .option('--leave-running', 'let the process continue after the checkpoint instead of killing it')
  .option('--pre-copy', 'copy the memory first while the process runs, then freeze it only to copy what it wrote since (a short pause whatever its size)')
  .action(async (pid: number, o: { dir?: string; stdout?: boolean; leaveRunning?: boolean; preCopy?: boolean }) => {
    oneOf(o.dir, o.stdout, '--dir and --stdout');
    const [{ dumpToSink }, { ImageFileSink, prepareImageDir, StdoutSink }] = await Promise.all([import('../dump/dump.js'), import('../image/files.js')]);
    if (o.dir) await prepareImageDir(o.dir);
    const sink = o.dir ? await ImageFileSink.create(o.dir) : new StdoutSink();
    try {
      // The image must be durable before the process is killed; a process
      // that goes on needs no such wait, so it is let go first.
      const r = await dumpToSink(pid, sink, { after: o.leaveRunning ? 'continue' : 'kill', beforeRelease: o.leaveRunning ? undefined : () => sink.commit(), preCopy: o.preCopy });
      if (o.leaveRunning) await sink.commit();
      const readRate = r.pages.readSeconds > 0 ? `, pages read at ${(r.pages.bytes / 1e9 / r.pages.readSeconds).toFixed(2)} GB/s` : '';
      const tree = r.processes > 1 ? ` and ${r.processes - 1} below it` : '';
      const inherited = r.pages.inheritedPages ? ` (+${r.pages.inheritedPages} shared with a parent, stored once)` : '';
      const pre = o.preCopy ? ` while frozen (${r.precopyPages} copied before, ${r.pages.precopiedPages} of them used)` : '';
      process.stderr.write(`dumped process ${pid}${tree}: ${r.pages.pages} pages${inherited}${pre}, ${(r.imageBytes / 1048576).toFixed(1)} MiB image, frozen ${r.frozenSeconds.toFixed(3)} s${readRate}${o.leaveRunning ? '; left running' : ''}\n`);
    } catch (err) {
      if (sink instanceof ImageFileSink) await sink.discard();
      throw err;
    }
  });

program
  .command('restore')
  .description('restore a process from a directory (or a stream); it keeps its PID and runs detached')
  .option('-D, --dir <dir>', 'directory holding the image')
  .option('--stdin', 'read the image stream from standard input instead (pre-copied pages are held in memory until placed)')
  .option('--pidfile <file>', 'write the restored PID to this file')
  .action(async (o: { dir?: string; stdin?: boolean; pidfile?: string }) => {
    oneOf(o.dir, o.stdin, '--dir and --stdin');
    const [{ restoreFromStream }, { openImageSource, stdinImageSource }] = await Promise.all([import('../restore/restore.js'), import('../image/files.js')]);
    const r = await restoreFromStream(o.dir ? await openImageSource(o.dir) : stdinImageSource(), { pidfile: o.pidfile });
    process.stderr.write(`restored process ${r.pid} (${r.pages} pages) in ${r.seconds.toFixed(3)} s\n`);
  });

program
  .command('inspect')
  .description('print an image as readable JSON (and validate it)')
  .argument('<dir>', 'directory holding the image, or - for an image stream on standard input')
  .action(async (dir: string) => {
    const [{ inspectImage }, { openImageSource, stdinImageSource }] = await Promise.all([import('./inspect.js'), import('../image/files.js')]);
    const json = await inspectImage(dir === '-' ? stdinImageSource() : await openImageSource(dir));
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  });

program
  .command('check')
  .description('check the kernel features crmigrate needs')
  .addOption(new Option('--json', 'print the results as JSON'))
  .action(async (o: { json?: boolean }) => {
    const { runCheck } = await import('./check.js');
    process.exitCode = await runCheck({ json: Boolean(o.json) });
  });

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : ExitCode.USAGE;
      return;
    }
    const code = err instanceof CrmError ? err.exitCode : ExitCode.FAILURE;
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`crmigrate: ${msg.split('\n')[0]}\n`);
    if (verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = code;
  }
}

await main();
