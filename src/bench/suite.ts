// What a benchmark suite is: a name, its own command-line options and a run
// function that returns rows (for --json), a rendered table and targets.
// main.ts picks the suite by name; add a suite by listing it in suites.ts.
import type { ParseArgsConfig } from 'node:util';
import type { Cleanup } from './util.js';

export type SuiteOptions = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | undefined>;

export interface BenchContext {
  /** Progress messages (stderr; stdout is kept for the results). */
  log(msg: string): void;
  /** Processes and directories to remove whatever happens. */
  cleanup: Cleanup;
  /** Scratch directory for this run (removed by cleanup). */
  workDir: string;
}

export interface TargetResult {
  name: string;
  pass: boolean;
  detail: string;
}

export interface SuiteReport {
  rows: Record<string, unknown>[];
  /** Markdown table of the rows. */
  table: string;
  targets: TargetResult[];
  notes: string[];
}

export interface Suite {
  name: string;
  description: string;
  /** Extra options this suite accepts (node:util parseArgs format). */
  options: SuiteOptions;
  /** Usage lines for the options, for --help. */
  usage: string[];
  run(opts: OptionValues, ctx: BenchContext): Promise<SuiteReport>;
}

/** A failure of the tool or of verification: the benchmark stops and says why. */
export class BenchError extends Error {}
