/**
 * The worker's errors as the catalog keeps them (mirrors.mirrors.last_error and error_history, migration 5:
 * `{at, kind, code, message, hint}`, plus `diff` for drift), read defensively: a row written by hand or by
 * an older tool may hold any JSON, and status must still say something true about it rather than fail.
 */

/** One stored error, as `mirrors status --format json` carries it (docs/status-json.md). */
export interface ErrorRecord {
  /** When the worker hit it (ISO 8601, the worker's clock); null if not recorded. */
  at: string | null;
  /** transient | catalog_changed | drift | gap | fatal (as written by the worker); null if not recorded. */
  kind: string | null;
  /** SQLSTATE or MirrorsError code; null if none. */
  code: string | null;
  message: string;
  hint: string | null;
  /** drift: a unified diff of the table definitions (source against destination); null otherwise. */
  diff: string | null;
}

/** Kinds after which the worker cannot go on without a person (it marks the mirror Failed). */
const NEEDS_A_PERSON = new Set(['drift', 'gap', 'fatal']);

const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** A stored value as an ErrorRecord; null for SQL NULL / JSON null. */
export function toErrorRecord(v: unknown): ErrorRecord | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return { at: null, kind: null, code: null, message: v, hint: null, diff: null };
  if (typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    return {
      at: text(o.at),
      kind: text(o.kind),
      code: text(o.code),
      message: text(o.message) ?? JSON.stringify(v),
      hint: text(o.hint),
      diff: text(o.diff),
    };
  }
  return { at: null, kind: null, code: null, message: JSON.stringify(v), hint: null, diff: null };
}

/** error_history (newest first) as records; null when the catalog keeps none (before migration 5). */
export function toErrorHistory(v: unknown): ErrorRecord[] | null {
  if (!Array.isArray(v)) return null;
  return v.map(toErrorRecord).filter((e): e is ErrorRecord => e !== null);
}

/** Whether the error is one the worker retries by itself (reconnecting), as opposed to one that needs a person. */
export function isRetried(e: ErrorRecord): boolean {
  return e.kind === null || !NEEDS_A_PERSON.has(e.kind);
}

/** "message (code)": the short form, for a status's `error`. */
export function describeError(e: ErrorRecord): string {
  return e.code && !e.message.includes(e.code) ? `${e.message} (${e.code})` : e.message;
}

/** "at T: message (code); hint: H": the full form, for a status's reason. */
export function errorSentence(e: ErrorRecord): string {
  return `${e.at ? `at ${e.at}: ` : ''}${describeError(e)}${e.hint ? `; hint: ${e.hint}` : ''}`;
}
