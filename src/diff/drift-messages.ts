/**
 * The words of schema drift: each code's message and hint (the DDL that fixes it on the destination, or how to
 * copy the table afresh), for drift.ts. Pure.
 */
import { displayIdent } from '../config/names.js';
import type { GuardState } from '../inspect/types.js';
import type { DiagnosticCode } from '../plan/diagnostics.js';
import type { ColumnChange, ColumnFacts } from './drift-columns.js';
import { columnLine } from './drift-text.js';

/** Fixing drift by copying the table afresh, as it can be done today (a later version will do it itself). */
const COPY_AFRESH =
  'copy the table afresh: remove it from `tables:` and apply, drop the destination table, then add it back and apply';

type Group = { code: DiagnosticCode; changes: ColumnChange[] };

const CODE_OF: Record<ColumnChange['kind'], DiagnosticCode> = {
  added: 'MR150',
  dropped: 'MR151',
  renamed: 'MR152',
  type: 'MR153',
  not_null: 'MR154',
  default: 'MR155',
  lost: 'MR158',
  extra: 'MR158',
};

/** One group per code, in code order; `recode` may file a change under another code (the worker's four). */
export function groupByCode(changes: ColumnChange[], recode: (c: ColumnChange) => DiagnosticCode | null): Group[] {
  const groups = new Map<DiagnosticCode, ColumnChange[]>();
  for (const c of changes) {
    const code = recode(c) ?? CODE_OF[c.kind];
    groups.set(code, [...(groups.get(code) ?? []), c]);
  }
  return [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([code, cs]) => ({ code, changes: cs }));
}

export type Names = { source: string; destination: string; sourcePeer?: string };

/** The message and hint of one code's changes; hints are the DDL that fixes them on the destination. */
export function describe(code: DiagnosticCode, changes: ColumnChange[], n: Names): { message: string; hint: string } {
  const alter = (what: string) => `ALTER TABLE ${n.destination} ${what};`;
  const ddl = (f: (c: ColumnChange) => string) => `on the destination: ${changes.map((c) => alter(f(c))).join(' ')}`;
  const cols = (f: (c: ColumnChange) => string) => changes.map(f).join(', ');
  const src = (c: ColumnChange) => ('source' in c ? c.source : c.destination);
  const dst = (c: ColumnChange) => ('destination' in c ? c.destination : c.source);
  const name = (c: ColumnFacts) => displayIdent(c.name);
  const s = changes.length === 1 ? '' : 's';
  switch (code) {
    case 'MR150':
      return {
        message: `source ${n.source}${n.sourcePeer ? ` on peer ${n.sourcePeer}` : ''} has column${s} ${cols((c) => columnLine(src(c)))} that destination ${n.destination} lacks (added on the source after the table was copied): the stream cannot apply its rows`,
        hint: `${ddl((c) => `ADD COLUMN ${columnLine(src(c))}`)} (rows copied before then read the default there, as on the source); or ${COPY_AFRESH}`,
      };
    case 'MR151':
      return {
        message: `destination ${n.destination} has column${s} ${cols((c) => name(dst(c)))} that source ${n.source} no longer has (dropped on the source): the stream writes no value into ${s ? 'them' : 'it'}`,
        hint: `${ddl((c) => `DROP COLUMN ${name(dst(c))}`)}; or ${COPY_AFRESH}`,
      };
    case 'MR152':
      return {
        message: `column${s} ${cols((c) => `${name(dst(c))} of destination ${n.destination} is ${name(src(c))}`)} on source ${n.source} (renamed on the source): the stream cannot apply its rows`,
        hint: ddl((c) => `RENAME COLUMN ${name(dst(c))} TO ${name(src(c))}`),
      };
    case 'MR153':
      return {
        message: `${s ? 'column types differ' : 'column type differs'}: ${cols((c) => `${name(src(c))} is ${src(c).type} on source ${n.source} and ${dst(c).type} on destination ${n.destination}`)}`,
        hint: `${ddl((c) => `ALTER COLUMN ${name(dst(c))} TYPE ${src(c).type}`)} (add USING when there is no implicit cast); or ${COPY_AFRESH}`,
      };
    case 'MR154':
      return {
        message: `NOT NULL differs: ${cols((c) =>
          dst(c).notNull
            ? `${name(dst(c))} is NOT NULL on destination ${n.destination} but not on the source: the first NULL written there stops the stream`
            : `${name(src(c))} is NOT NULL on source ${n.source} but not on the destination (after promotion it would accept NULLs)`,
        )}`,
        hint: ddl((c) => `ALTER COLUMN ${name(dst(c))} ${dst(c).notNull ? 'DROP' : 'SET'} NOT NULL`),
      };
    case 'MR155':
      return {
        message: `${s ? 'defaults differ' : 'default differs'}: ${cols((c) => `${name(dst(c))} ${dst(c).generated ? 'is generated as' : 'defaults to'} ${dst(c).default ?? '(nothing)'} on destination ${n.destination}, ${src(c).generated ? 'generated as' : 'defaults to'} ${src(c).default ?? '(nothing)'} on the source`)}`,
        hint: changes.some((c) => !!src(c).generated !== !!dst(c).generated)
          ? `a column generated on one side only cannot be altered into the other: ${COPY_AFRESH}`
          : `${ddl((c) =>
              src(c).generated
                ? `ALTER COLUMN ${name(dst(c))} SET EXPRESSION AS (${src(c).default})`
                : `ALTER COLUMN ${name(dst(c))} DROP DEFAULT`,
            )}${changes.some((c) => src(c).generated) ? ' (SET EXPRESSION: PostgreSQL 17+; before, copy the table afresh)' : ''}`,
      };
    default: // MR158: the destination lost a column the source had when the table was copied, or gained one.
      return {
        message: `destination ${n.destination} was altered by hand: ${cols((c) =>
          c.kind === 'extra'
            ? `it has column ${name(c.destination)}, which source ${n.source} never had`
            : `it lacks column ${name(src(c))}, which the source had when the table was copied`,
        )}`,
        hint: changes.every((c) => c.kind === 'extra')
          ? ddl((c) => `DROP COLUMN ${name(dst(c))}`)
          : `${COPY_AFRESH} (adding the column back by hand leaves it empty in the rows already copied)`,
      };
  }
}

export function guardDrift(
  hasGuard: boolean | undefined,
  state: GuardState | undefined,
  table: string,
): { message: string; hint: string } | null {
  if (hasGuard === false) {
    return {
      message: `destination ${table} has lost its read-only guard (trigger mirrors_read_only): anyone may write to it, and the stream then overwrites or keeps what they wrote`,
      hint: 'apply this plan: its update of the table creates the guard again; then find out who dropped it',
    };
  }
  if (!hasGuard || state === undefined || state === 'enabled') return null;
  return state === 'disabled'
    ? {
        message: `the read-only guard on destination ${table} is disabled (ALTER TABLE ... DISABLE TRIGGER): writes by anyone but the worker are no longer refused`,
        hint: `apply this plan: its update of the table runs ALTER TABLE ${table} ENABLE TRIGGER mirrors_read_only; then find out who disabled it`,
      }
    : {
        message: `the read-only guard on destination ${table} is ENABLE ${state.toUpperCase()}: it fires for the worker's replica-role session too, so the stream's writes fail with MIRROR_READ_ONLY`,
        hint: `apply this plan: its update of the table runs ALTER TABLE ${table} ENABLE TRIGGER mirrors_read_only (fires for every session but the worker's)`,
      };
}
