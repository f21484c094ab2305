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
  /**
   * A function when the hint is costly (a did-you-mean search): it is called only for the problems that
   * are shown, so a file with a hundred thousand mistakes costs no more than the fifty reported.
   */
  hint?: string | (() => string | undefined);
}

/** How many problems are listed; the rest are counted ("and N more"), so the report stays readable. */
export const MAX_SHOWN_PROBLEMS = 50;

/** `FILE:LINE:COL  PATH  MESSAGE (hint: HINT)`: the form editors and terminals turn into links. */
export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.col}`;
  const hint = p.hint ? ` (hint: ${p.hint})` : '';
  return p.path ? `${where}  ${p.path}  ${p.message}${hint}` : `${where}  ${p.message}${hint}`;
}

/** Document order, so the first line printed is the first thing to fix. */
export function sortProblems<P extends Pick<ConfigProblem, 'line' | 'col' | 'path'>>(problems: P[]): P[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
}

/** `… and N more problems` after the listed ones, or nothing when every problem is listed. */
export function moreLine(listed: number, total: number, noun = 'problem'): string[] {
  const more = total - listed;
  return more > 0 ? [`… and ${more} more ${noun}${more === 1 ? '' : 's'}`] : [];
}

/** CONFIG_INVALID with every listed problem as a detail line, and the structured list for tools. */
export class ConfigInvalidError extends MirrorsError {
  readonly problems: readonly ConfigProblem[];
  /** How many problems the file has; `problems` lists at most MAX_SHOWN_PROBLEMS of them. */
  readonly total: number;

  constructor(file: string, problems: ConfigProblem[], total = problems.length) {
    super('CONFIG_INVALID', `${basename(file)} has ${total} problem${total === 1 ? '' : 's'}`, {
      details: [...problems.map(formatProblem), ...moreLine(problems.length, total)],
      hint: 'docs/config.md describes every key',
    });
    this.problems = problems;
    this.total = total;
  }
}
