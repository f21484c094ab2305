/**
 * SQL over a table that both peers hold, addressed by its key: the statements a merge resync (worker/merge.ts)
 * and a verify run (verify/) send to either side. Values travel as text arrays or text parameters (the output
 * functions' text under TEXT_IO_OPTIONS), cast to each side's own type.
 */
import type { QualifiedName } from '../config/names.js';
import { quoteIdent } from './quote.js';

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
