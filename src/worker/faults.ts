/**
 * Why a worker session ended, as a closed set (issue 8): what the worker does next depends only on the kind.
 *   transient        connection lost, server restarting, timeouts: reconnect with backoff (Disconnected)
 *   catalog_changed  `mirrors apply` moved the catalog under the session (resync, slot replaced): restart now
 *   paused           the catalog says paused: wait, streaming nothing, until it says otherwise
 *   drift            the source's tables no longer fit the destination: Failed until a person fixes it
 *   gap              the slot cannot deliver everything after the mirror's position: Failed, needs a resync
 *   fatal            privileges, authentication, a missing database: Failed until a person fixes it
 *   promoted         the mirror was promoted: stop for good
 * Failed kinds keep the mirror's position and acknowledge nothing past it; the worker retries slowly, so a
 * fix is picked up without restarting `mirrors run`.
 */
import { MirrorsError } from '../errors.js';
import { CatalogChanged } from './sink.js';

export type FaultKind = 'transient' | 'catalog_changed' | 'paused' | 'drift' | 'gap' | 'fatal' | 'promoted';

/** An ending the worker chose or recognised, with what a person needs to know. */
export class Fault extends Error {
  constructor(
    readonly kind: FaultKind,
    message: string,
    readonly code: string | null = null,
    readonly hint: string | null = null,
    /** A unified diff of the table definitions (drift). */
    readonly diff: string | null = null,
  ) {
    super(message);
  }
}

/** Kinds after which the mirror needs a person: status Failed. */
export function needsPerson(kind: FaultKind): boolean {
  return kind === 'drift' || kind === 'gap' || kind === 'fatal';
}

/** Raised by mirrors.begin_batch for a paused mirror (catalog migration 5). */
const PAUSED_SQLSTATE = 'MRPAU';

/**
 * SQLSTATEs no reconnect can cure: authentication and authorization (class 28), privileges, a missing
 * database, role or object the worker needs.
 */
function isFatalSqlState(code: string): boolean {
  return code.startsWith('28') || code === '42501' || code === '3D000' || code === '42704' || code === '42883';
}

/**
 * SQLSTATEs of a destination that refuses the source's rows even in exact order (sink.ts): a constraint the source
 * does not have or rows that differ (class 23), a value its column cannot hold (class 22), a column or table it
 * lacks. The same batch fails the same way after any reconnect: a person must act.
 */
function isRefusedRow(code: string): boolean {
  return code.startsWith('23') || code.startsWith('22') || code === '42703' || code === '42P01';
}

/** Classifies anything a session threw. Unknown errors are transient: reconnecting is the safe default. */
export function classify(err: unknown): Fault {
  if (err instanceof Fault) return err;
  if (err instanceof CatalogChanged) return new Fault('catalog_changed', err.message);
  if (err instanceof MirrorsError) {
    const state = err.pg?.code ?? null;
    const fatal =
      err.code === 'PEER_AUTH_FAILED' || err.code === 'PEER_DATABASE_MISSING' || (state && isFatalSqlState(state));
    return new Fault(fatal ? 'fatal' : 'transient', err.message, state ?? err.code, err.hint ?? null);
  }
  const e = err as { code?: unknown; message?: unknown; hint?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = typeof e?.code === 'string' ? e.code : null;
  const hint = typeof e?.hint === 'string' ? e.hint : null;
  if (code === PAUSED_SQLSTATE) return new Fault('paused', message);
  if (code && /^[0-9A-Z]{5}$/.test(code) && isFatalSqlState(code)) return new Fault('fatal', message, code, hint);
  if (code && isRefusedRow(code)) {
    const where =
      typeof (e as { table?: unknown }).table === 'string' ? ` (table ${(e as { table: string }).table})` : '';
    return new Fault(
      'drift',
      `the destination refuses a change from the source${where}: ${message}`,
      code,
      'run `mirrors plan`: it shows the schema drift if the tables differ; if they match, the destination rows differ from the source: resync the table with `mirrors apply --replace mirror.NAME.table.SCHEMA.TABLE` (resync_strategy merge repairs it in place: docs/resync.md)',
    );
  }
  return new Fault('transient', message, code, hint);
}
