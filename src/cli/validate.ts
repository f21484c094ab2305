/**
 * `mirrors validate`: the configuration alone, no network, no secrets needed: an unset `${env:NAME}` is a
 * warning here (a pull request from a fork has no secrets but must still lint the file), while every
 * command that connects refuses it. Text for people, or one JSON document on stdout (docs/validate-json.md).
 * Exit 0 valid (warnings allowed), 1 invalid or not found.
 */
import {
  ConfigInvalidError,
  formatProblem,
  validateConfigFile,
  type ConfigProblem,
  type ValidationResult,
} from '../config/load.js';
import { moreLine } from '../config/problems.js';
import { MirrorsError } from '../errors.js';
import type { Io } from './io.js';

export interface ValidateOptions {
  config?: string;
  format?: 'text' | 'json';
}

export async function validateCommand(opts: ValidateOptions, io: Io): Promise<number> {
  const load = () =>
    validateConfigFile({ configPath: opts.config, cwd: process.cwd(), env: process.env, missingEnv: 'warn' });
  if (opts.format === 'json') {
    let doc: ValidateJson;
    try {
      doc = validateJson(await load());
    } catch (err) {
      if (!(err instanceof MirrorsError)) throw err;
      doc = failureJson(err);
    }
    io.out(JSON.stringify(doc, null, 2) + '\n');
    return doc.valid ? 0 : 1;
  }
  const r = await load();
  for (const w of r.warnings) io.err(`warning: ${formatProblem(w)}\n`);
  for (const line of moreLine(r.warnings.length, r.warningCount, 'warning')) io.err(`warning: ${line}\n`);
  if (r.errorCount > 0 || !r.counts) throw new ConfigInvalidError(r.file, r.problems, r.errorCount);
  const c = r.counts;
  const warned =
    r.warningCount > 0 ? ` ${r.warningCount} warning(s): the checks that need unset variables were skipped.` : '';
  io.out(
    `${r.file} is valid: ${c.peers} peer(s), ${c.mirrors} mirror(s), ${c.tableMappings} table mapping(s).${warned}\n`,
  );
  return 0;
}

/** The `--format json` document; docs/validate-json.md is its reference. */
export interface ValidateJson {
  format_version: 1;
  valid: boolean;
  /** Absolute path of the file checked; null when none was found. */
  file: string | null;
  /** Errors first, then warnings, each in file order; at most 50 of each (see summary.omitted). */
  problems: ProblemJson[];
  /** Counts of the problems found in the file (0 when none was read: see `error`). */
  summary: {
    errors: number;
    warnings: number;
    /** Problems counted in errors/warnings but not listed. */
    omitted: number;
    /** What the file declares; null unless valid. */
    peers: number | null;
    mirrors: number | null;
    table_mappings: number | null;
  };
  /** Why no file could be checked (CONFIG_NOT_FOUND); null when a file was checked. */
  error: { code: string; message: string; hint: string | null } | null;
}

interface ProblemJson {
  severity: 'error' | 'warning';
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
  hint: string | null;
}

function validateJson(r: ValidationResult & { file: string }): ValidateJson {
  const json =
    (severity: ProblemJson['severity']) =>
    (p: ConfigProblem): ProblemJson => ({ severity, ...p, hint: p.hint ?? null });
  const valid = r.errorCount === 0 && r.counts !== undefined;
  return {
    format_version: 1,
    valid,
    file: r.file,
    problems: [...r.problems.map(json('error')), ...r.warnings.map(json('warning'))],
    summary: {
      errors: r.errorCount,
      warnings: r.warningCount,
      omitted: r.errorCount + r.warningCount - r.problems.length - r.warnings.length,
      peers: valid ? r.counts!.peers : null,
      mirrors: valid ? r.counts!.mirrors : null,
      table_mappings: valid ? r.counts!.tableMappings : null,
    },
    error: null,
  };
}

function failureJson(err: MirrorsError): ValidateJson {
  return {
    format_version: 1,
    valid: false,
    file: null,
    problems: [],
    summary: { errors: 0, warnings: 0, omitted: 0, peers: null, mirrors: null, table_mappings: null },
    error: { code: err.code, message: err.message, hint: err.hint ?? null },
  };
}
