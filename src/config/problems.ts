/**
 * A configuration problem as reported to the user: file:line:col, config path, message, hint; and the one
 * error that carries all of them. Messages never contain secrets (see validate.ts).
 */
import { basename } from 'node:path';
import { MirrorsError } from '../errors.js';

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  /** Config path such as `mirrors.prod_to_staging.tables[1].exclude_columns`; '' for the whole file. */
  path: string;
  message: string;
  hint?: string;
}

/** A problem before it has a position: the validator resolves `path` (and `at`) to line:col. */
export interface Finding {
  path: (string | number)[];
  /** Point at the key of the last path element (unknown keys, bad names) rather than at its value. */
  at?: 'key' | 'value';
  message: string;
  hint?: string;
}

/** `FILE:LINE:COL  PATH  MESSAGE (hint: HINT)`: the form editors and terminals turn into links. */
export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.col}`;
  const hint = p.hint ? ` (hint: ${p.hint})` : '';
  return p.path ? `${where}  ${p.path}  ${p.message}${hint}` : `${where}  ${p.message}${hint}`;
}

/** Document order, so the first line printed is the first thing to fix. */
export function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
}

/** CONFIG_INVALID with every problem as a detail line, and the structured list for tools. */
export class ConfigInvalidError extends MirrorsError {
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    const n = problems.length;
    super('CONFIG_INVALID', `${basename(file)} has ${n} problem${n === 1 ? '' : 's'}`, {
      details: problems.map(formatProblem),
      hint: 'docs/config.md describes every key',
    });
    this.problems = problems;
  }
}
