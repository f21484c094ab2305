/**
 * Changes deferred while their table is being copied. A table that `mirrors apply` copies (a new table, a resync
 * with truncate or swap) has no snapshot LSN until its copy commits; the stream, in commit order, must not wait
 * for it, or every other table would wait too. Its changes are written to `mirrors.deferred_changes` in the batch
 * that passes them (with the position: exactly once), and replayed into the table once the copy is recorded,
 * those after its snapshot LSN only, before any later change of it is applied (DESIGN.md invariant 2).
 * Pure: encoding and SQL text.
 */
import { quoteText } from '../db/quote.js';
import { bigIntToLsn } from '../db/lsn.js';
import type { Change, TargetTable } from './changes.js';
import type { TupleValue } from './decode.js';

/** A value as stored: text, null, or false for an unchanged TOAST value the stream did not send. */
type Stored = string | null | false;

/** A deferred change as stored (jsonb): its table's columns and key as decoded, so that replay needs no Relation. */
export interface StoredChange {
  op: 'insert' | 'update' | 'delete' | 'truncate' | 'truncate_partition';
  columns: string[];
  key: number[];
  row?: Stored[];
  old?: Stored[];
  oldIsFull?: boolean;
  bound?: string;
  partition?: string;
}

const store = (row: TupleValue[]): Stored[] => row.map((v) => (v === undefined ? false : v));
const load = (row: Stored[]): TupleValue[] => row.map((v) => (v === false ? undefined : v));

/** `table`: the one table of a truncate that is deferred (a TRUNCATE of several is split per table). */
export function encodeChange(c: Change, table: TargetTable): StoredChange {
  const base = { columns: table.columns, key: table.key };
  switch (c.op) {
    case 'insert':
      return { op: 'insert', ...base, row: store(c.row) };
    case 'update':
      return {
        op: 'update',
        ...base,
        row: store(c.row),
        ...(c.old ? { old: store(c.old) } : {}),
        oldIsFull: c.oldIsFull,
      };
    case 'delete':
      return { op: 'delete', ...base, old: store(c.old), oldIsFull: c.oldIsFull };
    case 'truncate':
      return { op: 'truncate', ...base };
    case 'truncate_partition':
      return { op: 'truncate_partition', ...base, bound: c.bound, partition: c.partition };
    case 'defer':
      throw new Error('internal: a deferred change deferred again');
  }
}

/**
 * The change again, against the destination table as the catalog knows it now (`types`: its columns' types by
 * name). A column the table no longer has is an error: the copy changed the table under its deferred changes.
 */
export function decodeChange(
  s: StoredChange,
  dest: { schema: string; name: string; snapshotLsn: string | null },
  types: Record<string, string>,
): Change {
  const missing = s.columns.filter((c) => !(c in types));
  if (missing.length)
    throw new DeferredMismatch(
      `${dest.schema}.${dest.name} has no column ${missing.join(', ')}, which a change deferred while it was copied carries (the source's schema changed meanwhile)`,
    );
  const table: TargetTable = {
    schema: dest.schema,
    name: dest.name,
    label: `${dest.schema}.${dest.name}`,
    columns: s.columns,
    types: s.columns.map((c) => types[c]),
    key: s.key,
    snapshotLsn: dest.snapshotLsn,
  };
  switch (s.op) {
    case 'insert':
      return { op: 'insert', table, row: load(s.row!) };
    case 'update':
      return {
        op: 'update',
        table,
        row: load(s.row!),
        ...(s.old ? { old: load(s.old) } : {}),
        oldIsFull: !!s.oldIsFull,
      };
    case 'delete':
      return { op: 'delete', table, old: load(s.old!), oldIsFull: !!s.oldIsFull };
    case 'truncate':
      return { op: 'truncate', tables: [table] };
    case 'truncate_partition':
      return { op: 'truncate_partition', table, bound: s.bound!, partition: s.partition! };
  }
}

/** A deferred change that does not fit the table as it is now. */
export class DeferredMismatch extends Error {}

export interface DeferredRow {
  table: TargetTable;
  /** Commit LSN of the source transaction. */
  lsn: bigint;
  change: StoredChange;
}

/** One INSERT of a batch's deferred changes, values inline (the batch is one multi-statement query). */
export function deferSql(mirror: string, rows: DeferredRow[]): string {
  const values = rows.map(
    (r, i) =>
      `(${quoteText(mirror)}, ${quoteText(r.table.schema)}, ${quoteText(r.table.name)}, '${bigIntToLsn(r.lsn)}', ${i}, ${quoteText(JSON.stringify(r.change))}::jsonb)`,
  );
  return `INSERT INTO mirrors.deferred_changes (mirror, dest_schema, dest_table, lsn, ord, change) VALUES ${values.join(', ')}`;
}

/** How many deferred changes one replay transaction takes. */
export const REPLAY_ROWS = 5000;

/**
 * The next deferred changes of a table, in source order (a source transaction is never split across batches; a
 * replay of many may split one across its transactions, on a table that was just copied).
 */
export const NEXT_DEFERRED_SQL = `SELECT lsn::text AS lsn, ord, change FROM mirrors.deferred_changes
 WHERE mirror = $1 AND dest_schema = $2 AND dest_table = $3 ORDER BY lsn, ord LIMIT ${REPLAY_ROWS}`;

/** Those replayed, up to and including (lsn, ord), in the replay's transaction. */
export const DROP_DEFERRED_SQL = `DELETE FROM mirrors.deferred_changes
 WHERE mirror = $1 AND dest_schema = $2 AND dest_table = $3 AND (lsn, ord) <= ($4::pg_lsn, $5::int)`;
