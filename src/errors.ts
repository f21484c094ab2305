/**
 * The one error type of mirrors. Every failure the CLI reports is a MirrorsError with a code from a closed
 * set, a hint for the user, and the exit code it maps to. Postgres error fields are kept, not flattened.
 */
export type ErrorCode =
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_INVALID'
  | 'PEER_UNREACHABLE'
  | 'PEER_AUTH_FAILED'
  | 'PEER_DATABASE_MISSING'
  | 'PEER_ERROR'
  | 'PLAN_HAS_ERRORS'
  | 'PLAN_FILE_INVALID'
  | 'PLAN_STALE'
  | 'APPLY_FAILED'
  | 'APPLY_NOT_APPROVED'
  | 'LOCK_TIMEOUT'
  | 'INTERRUPTED'
  | 'IRREVERSIBLE_NOT_ALLOWED'
  | 'DATA_LOSS_NOT_ALLOWED'
  | 'USAGE'
  | 'VERIFY_FAILED'
  | 'INTERNAL';

export interface PgErrorFields {
  code?: string;
  detail?: string;
  hint?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
}

export class MirrorsError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly exitCode: number;
  readonly pg?: PgErrorFields;
  /** Extra lines (e.g. every config problem) printed under the message. */
  readonly details: string[];

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; exitCode?: number; pg?: PgErrorFields; details?: string[]; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MirrorsError';
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? 1;
    this.pg = opts.pg;
    this.details = opts.details ?? [];
  }
}

export function pgFields(err: unknown): PgErrorFields | undefined {
  // Postgres's errors only: a MirrorsError's code (APPLY_FAILED) is not a SQLSTATE.
  if (!err || typeof err !== 'object' || err instanceof MirrorsError) return undefined;
  const e = err as Record<string, unknown>;
  if (typeof e.code !== 'string' || !/^[0-9A-Z]{5}$/.test(e.code)) return undefined;
  const pick = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : undefined);
  return {
    code: pick('code'),
    detail: pick('detail'),
    hint: pick('hint'),
    schema: pick('schema'),
    table: pick('table'),
    column: pick('column'),
    constraint: pick('constraint'),
  };
}
