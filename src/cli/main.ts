#!/usr/bin/env node
// crmigrate command line.
import { Command, CommanderError, Option } from 'commander';
import { dumpToSink } from '../dump/dump.js';
import { ImageFileSink, openImageSource, prepareImageDir } from '../image/files.js';
import { restoreFromStream } from '../restore/restore.js';
import { CrmError, ExitCode } from '../util/errors.js';
import { VERSION } from '../version.js';
import { runCheck } from './check.js';
import { inspectImage } from './inspect.js';

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

program
  .command('dump')
  .description('checkpoint a running process into a directory, then kill it (or let it go on)')
  .argument('<pid>', 'process to checkpoint', parsePid)
  .requiredOption('-D, --dir <dir>', 'directory for the image (created with mode 0700)')
  .option('--leave-running', 'let the process continue after the checkpoint instead of killing it')
  .action(async (pid: number, o: { dir: string; leaveRunning?: boolean }) => {
    await prepareImageDir(o.dir);
    const sink = await ImageFileSink.create(o.dir);
    try {
      const r = await dumpToSink(pid, sink, { after: o.leaveRunning ? 'continue' : 'kill', beforeRelease: () => sink.commit() });
      process.stderr.write(`dumped process ${pid}: ${r.pages.pages} pages, ${(r.imageBytes / 1048576).toFixed(1)} MiB image, frozen ${r.frozenSeconds.toFixed(3)} s${o.leaveRunning ? '; left running' : ''}\n`);
    } catch (err) {
      await sink.discard();
      throw err;
    }
  });

program
  .command('restore')
  .description('restore a process from a directory; it keeps its PID and runs detached')
  .requiredOption('-D, --dir <dir>', 'directory holding the image')
  .option('--pidfile <file>', 'write the restored PID to this file')
  .action(async (o: { dir: string; pidfile?: string }) => {
    const r = await restoreFromStream(await openImageSource(o.dir), { pidfile: o.pidfile });
    process.stderr.write(`restored process ${r.pid} (${r.pages} pages) in ${r.seconds.toFixed(3)} s\n`);
  });

program
  .command('inspect')
  .description('print an image as readable JSON (and validate it)')
  .argument('<dir>', 'directory holding the image')
  .action(async (dir: string) => {
    const json = await inspectImage(await openImageSource(dir));
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  });

program
  .command('check')
  .description('check the kernel features crmigrate needs')
  .addOption(new Option('--json', 'print the results as JSON'))
  .action(async (o: { json?: boolean }) => {
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
