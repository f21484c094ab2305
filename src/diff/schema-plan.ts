/**
 * What the plan does with a streaming table whose source schema changed (MR150-MR153): propose the DDL a
 * stopped worker recorded where the stream reached the change (a `columns` update, and a copy of the table when
 * the change was a rewrite), or, when no worker waits there yet, say what will happen when the stream gets
 * there and with which DDL. The DDL is never proposed for any other point of the stream (schema-change.ts says
 * why). Pure.
 */
import { displayIdent } from '../config/names.js';
import { quoteQualified } from '../db/quote.js';
import type { Mirror } from '../config/types.js';
import type { CatalogTable, LiveColumn, LiveTable } from '../inspect/types.js';
import { diag } from '../plan/diagnostics.js';
import * as addr from '../plan/address.js';
import type { ColumnsUpdate, Diagnostic, TableSpec } from '../plan/types.js';
import type { NewAction } from './actions.js';
import { facts as columnFacts } from './drift.js';
import { type SchemaChange, type SourceColumn, schemaChange } from './schema-change.js';

/** The drift codes a source schema change raises (the others are the destination's own). */
const SCHEMA_CODES = new Set(['MR150', 'MR151', 'MR152', 'MR153']);

export interface SchemaPlan {
  /** The columns update to run, with whether the table is copied again after it. */
  action: Omit<ColumnsUpdate, 'id'> | null;
  copy: boolean;
  diagnostics: Diagnostic[];
}

export function planSchemaChange(
  m: Mirror,
  rec: CatalogTable,
  source: LiveTable,
  dest: LiveTable | undefined,
  spec: TableSpec,
  drift: Diagnostic[],
  deps: string[],
): SchemaPlan {
  const schema = drift.filter((d) => SCHEMA_CODES.has(d.code));
  if (!schema.length || !dest) return { action: null, copy: false, diagnostics: drift };
  const others = drift.filter((d) => !SCHEMA_CODES.has(d.code));
  const address = addr.tableAddress(m.name, rec.destination);
  const pending = rec.pendingSchemaChange;
  if (!pending) {
    const change = liveSchemaChange(m, rec, source, dest);
    const hint = aheadHint(m, change);
    return { action: null, copy: false, diagnostics: [...schema.map((d) => ({ ...d, hint })), ...others] };
  }
  const copy = pending.copy !== null;
  const out: Diagnostic[] = [...others];
  if (copy && m.resync_strategy === 'swap')
    out.push(
      diag(
        'MR135',
        address,
        `${address} must be copied again (${pending.copy}) and mirror ${m.name} asks for resync_strategy swap, which does not copy a table for a schema change yet (its shadow would take the old columns)`,
        'set resync_strategy: truncate for this mirror to copy the table again now (readers see it empty while it is copied); nothing is changed until then',
      ),
    );
  const table = rec.destination;
  const sql = [
    ...(copy ? [`TRUNCATE ${quoteQualified(table.schema, table.name)}`] : []),
    ...pending.steps.flatMap((s) => s.sql),
  ];
  const kept = new Set(rec.keptColumns);
  const columnsOf = (cols: LiveColumn[]) =>
    cols.filter((c) => !kept.has(c.name)).map((c) => `${displayIdent(c.name)} ${c.type}`);
  const summaries = pending.steps.map((s) => s.summary);
  const irreversible = pending.steps.some((s) => s.change === 'drop');
  return {
    copy,
    diagnostics: out,
    action: {
      kind: 'columns',
      op: 'update',
      address: `${address}.columns`,
      peer: m.destination,
      mirror: m.name,
      reason_code: 'schema_changed',
      reason:
        `the source's schema change, where the stream stopped at it (commit ${pending.lsn}): ${summaries.join('; ')}` +
        (copy ? `; then copy the table again, since ${pending.copy} (readers see it empty until the copy ends)` : ''),
      risk: irreversible ? 'irreversible' : copy ? 'disruptive' : 'safe',
      before: { columns: columnsOf(dest.columns) },
      after: { columns: columnsAfter(columnsOf(dest.columns), pending.steps) },
      depends_on: deps,
      details: {
        table,
        sql,
        steps: pending.steps.map((s) => ({
          change: s.change as ColumnsUpdate['details']['steps'][number]['change'],
          column: s.column,
          summary: s.summary,
        })),
        kept_columns: pending.kept,
        at_lsn: pending.lsn,
        copy: pending.copy,
        spec,
      },
    } satisfies NewAction,
  };
}

/** The destination's `name type` lines after the steps (for the plan's before/after). */
function columnsAfter(before: string[], steps: NonNullable<CatalogTable['pendingSchemaChange']>['steps']): string[] {
  let cols = [...before];
  const at = (name: string) => cols.findIndex((l) => l.startsWith(`${displayIdent(name)} `));
  for (const s of steps) {
    if (s.change === 'drop') cols = cols.filter((_, i) => i !== at(s.column));
    else if (s.change === 'rename' && s.from) {
      const i = at(s.from);
      if (i >= 0) cols[i] = `${displayIdent(s.column)}${cols[i].slice(displayIdent(s.from).length)}`;
    } else if ((s.change === 'add' || s.change === 'retype') && s.type) {
      const line = `${displayIdent(s.column)} ${s.type}`;
      const i = at(s.column);
      if (i >= 0) cols[i] = line;
      else cols.push(line);
    }
  }
  return cols;
}

/** The change computed from the live tables (the plan's view, maybe ahead of the stream). */
function liveSchemaChange(m: Mirror, rec: CatalogTable, source: LiveTable, dest: LiveTable): SchemaChange | null {
  // What decides how an added column reaches the destination, besides what drift compares.
  const facts = (c: LiveColumn): SourceColumn => {
    const f: SourceColumn = { ...columnFacts(c), identity: c.identity !== '' };
    if (c.missing !== undefined) f.missing = c.missing;
    return f;
  };
  return schemaChange({
    table: rec.destination,
    source: source.columns.map(facts),
    destination: dest.columns.map(facts),
    excluded: rec.excludeColumns,
    kept: rec.keptColumns,
    sourceDropped: source.droppedColumns,
    droppedColumns: m.dropped_columns,
  });
}

/** The hint of a schema change the stream has not reached yet (or no worker runs to reach it). */
function aheadHint(m: Mirror, change: SchemaChange | null): string {
  const what = change?.steps.length ? change.steps.map((s) => s.summary).join('; ') : 'the change';
  const whenReached =
    change?.copy || m.schema_changes === 'plan'
      ? `the worker stops right before its first row and records the DDL (${what}${change?.copy ? ', then a copy of the table' : ''}), which the next \`mirrors plan\` proposes`
      : `the worker applies it there itself (schema_changes: auto): ${what}`;
  return `when the stream reaches this change, ${whenReached}. Do not alter the destination by hand: rows from before the change would meet the new layout`;
}
