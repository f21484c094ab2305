/**
 * The JSON form of a failure, so a `--format json` consumer is never left with an empty stdout: config
 * problems with file, line, column and path, connection errors, Postgres's fields, the hint and the exit
 * code. The same object is the last line of an apply event stream. Documented in docs/json-output.md.
 */
import { ConfigInvalidError } from '../config/problems.js';
import { MirrorsError } from '../errors.js';

export const ERROR_FORMAT_VERSION = 1;

export interface JsonError {
  type: 'error';
  format_version: typeof ERROR_FORMAT_VERSION;
  exit_code: number;
  error: {
    code: string;
    message: string;
    hint: string | null;
    details: string[];
    problems?: { file: string; line: number; col: number; path: string; message: string; hint: string | null }[];
    postgres?: Record<string, string>;
  };
}

export function jsonError(err: unknown, exitCode: number): JsonError {
  if (err instanceof MirrorsError) {
    const postgres = err.pg
      ? Object.fromEntries(Object.entries(err.pg).filter(([, v]) => typeof v === 'string'))
      : undefined;
    return {
      type: 'error',
      format_version: ERROR_FORMAT_VERSION,
      exit_code: exitCode,
      error: {
        code: err.code,
        message: err.message,
        hint: err.hint ?? null,
        details: err.details,
        ...(err instanceof ConfigInvalidError
          ? {
              problems: err.problems.map((p) => ({
                file: p.file,
                line: p.line,
                col: p.col,
                path: p.path,
                message: p.message,
                hint: p.hint ?? null,
              })),
            }
          : {}),
        ...(postgres && Object.keys(postgres).length ? { postgres } : {}),
      },
    };
  }
  return {
    type: 'error',
    format_version: ERROR_FORMAT_VERSION,
    exit_code: exitCode,
    error: {
      code: 'INTERNAL',
      message: err instanceof Error ? err.message : String(err),
      hint: 'this is a bug in mirrors; please report it with the command you ran',
      details: [],
    },
  };
}
