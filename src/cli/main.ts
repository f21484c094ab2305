#!/usr/bin/env node
/**
 * The mirrors command line: argument parsing, and the one exit point of the process. Commands return
 * an exit code; a MirrorsError becomes one clear message with its hint (no stack trace).
 */
import { Command, Option } from 'commander';
import { MirrorsError } from '../errors.js';
import { processIo, setColor, type Io } from './io.js';
import { VERSION } from './version.js';
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from '../worker/metrics-address.js';
import { jsonError } from './json-error.js';
import type { ApplyCliOptions } from './apply.js';
import type { ShowOptions } from './show.js';

const EXIT_CODES = {
  validate: '\nExit codes: 0 valid (warnings allowed), 1 invalid.\n',
  plan: '\nExit codes: 0 success (no changes, or changes without --detailed-exitcode), 1 error (bad config,\nunreachable peer, a diagnostic of severity error, --fail-on matched), 2 with --detailed-exitcode: changes\npresent, or schema drift of severity warning (MR154-MR156, MR159). Drift the stream cannot apply through\n(MR150-MR153, MR157, MR158) is an error: exit 1.\n',
  show: '\nExit codes: 0 shown, 1 not a valid plan file.\n',
  apply:
    '\nExit codes: 0 applied (or nothing to do), 1 error (stale or edited plan, lock held, plan errors,\nirreversible actions without --allow-irreversible, a promotion without its source\nwithout --allow-data-loss, a failed action), 130 interrupted (SIGINT/SIGTERM).\n',
  run: '\nExit codes: 0 after SIGTERM/SIGINT (the batch in flight is committed and acknowledged first), 1 configuration error.\n',
  status: '\nExit codes: 0 every selected mirror is Following (or Promoted), 2 otherwise, 1 error.\n',
  check:
    '\nExit codes: 0 nothing to look at (a mirror whose apply is in progress is not checked), 2 something to look at\n(config or schema drift, a table verify found different, not Following, lag over its threshold, a slot losing\nWAL or near max_slot_wal_keep_size, no worker, a sampled verify that differs or cannot run), 1 error.\n',
  verify:
    '\nExit codes: 0 every compared table is equal, 2 differences found (the keys are printed), 1 error (a mirror could\nnot be compared: no worker streaming it, paused, sync, unreachable).\n',
};
// Each command's module is imported when that command runs: a command loads only what it uses (start-up
// time counts for `mirrors run` restarts and for every `mirrors plan` in CI).

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildProgram(io: Io, done: (code: number) => void): Command {
  const program = new Command('mirrors')
    .description('PostgreSQL mirrors as code: plan, apply and run logical-replication mirrors declared in mirrors.yaml')
    .version(VERSION)
    .option('--no-color', 'disable colors (also NO_COLOR=1)')
    .showHelpAfterError()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride();

  // Every command's failure goes through reportError here, so a --format json caller gets a JSON document.
  const run =
    <O>(fn: (opts: O) => Promise<number>) =>
    async (opts: O, cmd: Command) => {
      const all = { ...cmd.optsWithGlobals(), ...opts } as O & { color?: boolean; format?: string };
      setColor(all.color, io);
      try {
        done(await fn(all));
      } catch (err) {
        done(reportError(err, io, all.format === 'json'));
      }
    };

  program
    .command('validate')
    .description(
      'check mirrors.yaml without connecting to any database or needing its secrets: unset ${env:NAME} is a warning (exit 0 valid, 1 invalid)',
    )
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', EXIT_CODES.validate)
    .action(run(async (o) => (await import('./validate.js')).validateCommand(o, io)));

  program
    .command('plan')
    .description('inspect the peers and print the actions that would make them match mirrors.yaml')
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'plan only this mirror (repeatable)', collect)
    .option('-o, --out <file>', 'save the plan to a file for `mirrors apply FILE`')
    .option(
      '--replace <address>',
      'copy this table (mirror.NAME.table.SCHEMA.TABLE) or every table of this mirror (mirror.NAME) again, keeping the slot (repeatable)',
      collect,
    )
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'),
    )
    .option('--detailed-exitcode', 'exit 2 when the plan has changes or schema drift (0 none, 1 error)')
    .option(
      '--docs-url <url>',
      "base URL of the documentation links in markdown (default: this version's docs; also MIRRORS_DOCS_URL)",
    )
    .addOption(
      new Option('--fail-on <risk>', 'exit 1 with a diagnostic (MR137) when an action is this risky or more').choices([
        'disruptive',
        'irreversible',
      ]),
    )
    .addHelpText('after', EXIT_CODES.plan)
    .action(run(async (o) => (await import('./plan.js')).planCommand(o, io)));

  program
    .command('show')
    .description(
      'render a plan saved with `mirrors plan --out`, with every statement it runs (for the approver of a deploy)',
    )
    .argument('<planfile>', 'a plan saved with `mirrors plan --out`')
    .option(
      '--docs-url <url>',
      "base URL of the documentation links in markdown (default: this version's docs; also MIRRORS_DOCS_URL)",
    )
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'),
    )
    .addHelpText('after', EXIT_CODES.show)
    .action(async (planfile: string, opts: ShowOptions, cmd: Command) =>
      run(async (o: ShowOptions) => (await import('./show.js')).showCommand(planfile, o, io))(opts, cmd),
    );

  program
    .command('apply')
    .description(
      'carry out a plan: without PLANFILE, plan and ask for approval; with PLANFILE, apply exactly that saved plan',
    )
    .argument('[planfile]', 'a plan saved with `mirrors plan --out`')
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'apply only this mirror (repeatable)', collect)
    .option(
      '--replace <address>',
      'copy this table or every table of this mirror again, keeping the slot (repeatable; not with PLANFILE, whose plan says it)',
      collect,
    )
    .option('--auto-approve', 'do not ask for approval')
    .option(
      '--allow-irreversible',
      'let irreversible actions (dropping a slot, destroying a mirror) run without a prompt',
    )
    .option(
      '--allow-data-loss',
      'let a promotion whose source cannot be reached run (disaster recovery: unfenced, writes may be lost); valid for this apply only',
    )
    .option('--lock-timeout <duration>', 'how long to wait for a mirror locked by another apply', '0s')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', EXIT_CODES.apply)
    .action(async (planfile: string | undefined, opts: ApplyCliOptions, cmd: Command) =>
      run(async (o: ApplyCliOptions) => (await import('./apply.js')).applyCommand(planfile, o, io))(opts, cmd),
    );

  program
    .command('run')
    .description(
      'stream every bootstrapped mirror until SIGTERM/SIGINT (one active worker per mirror; others wait as standbys)',
    )
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'run only this mirror (repeatable)', collect)
    .option(
      '--metrics-port <port>',
      `port of the Prometheus metrics (/metrics) and health (/healthz) server; 0 picks a free one (default: ${DEFAULT_METRICS_PORT})`,
    )
    .option('--metrics-host <host>', `address of the metrics server (default: ${DEFAULT_METRICS_HOST}, this host only)`)
    .option('--no-metrics', 'serve no metrics and no health endpoint')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
    .addHelpText('after', EXIT_CODES.run)
    .action(run(async (o) => (await import('./run.js')).runCommand(o, io)));

  program
    .command('status')
    .description(
      'show what every mirror is doing: status, lag, worker, slot, tables (exit 0 all Following or Promoted, 2 otherwise, 1 error)',
    )
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'show only this mirror (repeatable)', collect)
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', EXIT_CODES.status)
    .action(run(async (o) => (await import('./status.js')).statusCommand(o, io)));

  program
    .command('verify')
    .description(
      "compare live mirrors' source and destination contents at one point of the stream, without stopping either (exit 0 equal, 2 different, 1 error)",
    )
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'verify only this mirror (repeatable)', collect)
    .option('--table <address>', 'verify only this table (mirror.NAME.table.SCHEMA.TABLE; repeatable)', collect)
    .option(
      '--sample <fraction>',
      'compare about this fraction of each table, in chunks picked by --seed (default: 1, all)',
    )
    .option('--seed <n>', 'which chunks --sample picks (the same seed picks the same pages)', '0')
    .option('--chunk-rows <n>', 'rows hashed per chunk; a differing chunk is compared row by row', '10000')
    .option('--timeout <duration>', "how long to wait for the worker and for the source's snapshot", '30s')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', EXIT_CODES.verify)
    .action(run(async (o) => (await import('./verify.js')).verifyCommand(o, io)));

  program
    .command('check')
    .description(
      'what a scheduled job looks at: config and schema drift, data verify found different, health of every mirror (exit 0 clean, 2 something to look at, 1 error)',
    )
    .option('-c, --config <file>', 'configuration file (default: discover mirrors.yaml)')
    .option('-m, --mirror <name>', 'check only this mirror (repeatable)', collect)
    .option('--verify-sample <fraction>', 'also verify about this fraction of each table of every streaming mirror')
    .option(
      '--docs-url <url>',
      "base URL of the documentation links in markdown (default: this version's docs; also MIRRORS_DOCS_URL)",
    )
    .addOption(
      new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'markdown']).default('text'),
    )
    .addHelpText('after', EXIT_CODES.check)
    .action(run(async (o) => (await import('./check.js')).checkCommand(o, io)));

  return program;
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    return reportError(err, io, asksForJson(argv));
  }
}

/** Whether the command line asks for JSON, read from argv itself: commander refused it before parsing. */
function asksForJson(argv: string[]): boolean {
  return argv.some(
    (a, i) => a === '--format=json' || a === '-fjson' || ((a === '--format' || a === '-f') && argv[i + 1] === 'json'),
  );
}

export function reportError(err: unknown, io: Io, json = false): number {
  const e = err as { code?: string; exitCode?: number };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) {
    // commander has printed its own message (help, version, usage error); a JSON caller gets it as JSON too.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    const usage = new MirrorsError('USAGE', (err as Error).message.replace(/^error: /, ''), { hint: 'see --help' });
    if (json) io.out(JSON.stringify(jsonError(usage, 1)) + '\n');
    return 1;
  }
  const exitCode = err instanceof MirrorsError ? err.exitCode : 1;
  if (json) io.out(JSON.stringify(jsonError(err, exitCode)) + '\n');
  if (err instanceof MirrorsError) {
    io.err(`error: ${err.message}\n`);
    for (const d of err.details) io.err(`  ${d}\n`);
    if (err.pg?.code)
      io.err(
        `  postgres: SQLSTATE ${err.pg.code}${err.pg.detail ? `, ${err.pg.detail}` : ''}${err.pg.hint ? ` (hint: ${err.pg.hint})` : ''}\n`,
      );
    if (err.hint) io.err(`hint: ${err.hint}\n`);
    return err.exitCode;
  }
  io.err(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  io.err('hint: this is a bug in mirrors; please report it with the command you ran\n');
  return 1;
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
