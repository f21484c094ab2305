/**
 * SQL over a table that both peers hold, addressed by its key: the statements a merge resync (worker/merge.ts)
 * and a verify run (verify/) send to either side. Values travel as text arrays or text parameters (the output
 * functions' text under TEXT_IO_OPTIONS), cast to each side's own type.
 */
import type { QualifiedName } from '../config/names.js';
import { quoteIdent, quoteQualified } from './quote.js';
import type { Queryable } from './tx.js';

/** A key value as text (null for SQL NULL; undefined: not sent). */
type Value = string | null | undefined;

export interface KeyedTable {
  dest: QualifiedName;
  source: QualifiedName;
  /** The columns the source sends, as the destination has them (kept columns left out), attnum order. */
  columns: string[];
  destTypes: string[];
  sourceTypes: string[];
  /** Indexes into `columns` of the key (the destination's primary key). */
  key: number[];
}

export interface Sql {
  text: string;
  values: unknown[];
}

export class Params {
  values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

export const col = (t: KeyedTable, i: number) => quoteIdent(t.columns[i]);
export const keyCols = (t: KeyedTable, alias: string) => t.key.map((k) => `${alias}.${col(t, k)}`).join(', ');

/** unnest of the key columns of `keys` (one text[] parameter each) as `alias(k...)`. */
export function keysFrom(t: KeyedTable, p: Params, keys: Value[][], alias: string): string {
  const arrays = t.key.map((_, n) => `${p.add(keys.map((k) => k[n] ?? null))}::text[]`);
  return `unnest(${arrays.join(', ')}) AS ${alias}(${t.key.map((k) => col(t, k)).join(', ')})`;
}

export function keyEquals(t: KeyedTable, a: string, b: string, types: string[]): string {
  return t.key.map((k) => `${a}.${col(t, k)} = ${b}.${col(t, k)}::${types[k]}`).join(' AND ');
}

/** The row value `(k1, k2, ...)` of a key, as parameters cast to `types`. */
export function rowBound(t: KeyedTable, p: Params, values: Value[], types: string[]): string {
  return `(${t.key.map((k, n) => `${p.add(values[n])}::${types[k]}`).join(', ')})`;
}

/** A mirrored table as the catalog records it (catalog/worker-sql.ts MirrorState): what keyedColumns needs. */
export interface RecordedTable {
  sourceSchema: string;
  sourceTable: string;
  destSchema: string;
  destTable: string;
  /** Destination columns (name -> format_type), in column order. */
  types: Record<string, string>;
  excludeColumns: string[];
  keptColumns: string[];
}

/**
 * The table as both peers have it now, keyed by `key` (destination column names): the destination's columns the
 * source sends (excluded and kept columns left out), each side's types (read on `src`). `missing`: those columns
 * the source does not have (the caller refuses the table then).
 */
export async function keyedColumns(
  src: Queryable,
  t: RecordedTable,
  key: string[],
): Promise<{ table: KeyedTable; missing: string[] }> {
  const kept = new Set(t.keptColumns);
  const excluded = new Set(t.excludeColumns);
  const columns = Object.keys(t.types).filter((c) => !kept.has(c) && !excluded.has(c));
  const r = await src.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped`,
    [quoteQualified(t.sourceSchema, t.sourceTable)],
  );
  const sourceTypes = new Map<string, string>(r.rows.map((x: { name: string; type: string }) => [x.name, x.type]));
  return {
    table: {
      dest: { schema: t.destSchema, name: t.destTable },
      source: { schema: t.sourceSchema, name: t.sourceTable },
      columns,
      destTypes: columns.map((c) => t.types[c]),
      sourceTypes: columns.map((c) => sourceTypes.get(c) ?? ''),
      key: key.map((k) => columns.indexOf(k)),
    },
    missing: columns.filter((c) => !sourceTypes.has(c)),
  };
}
