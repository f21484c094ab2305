/**
 * `mirrors verify`, the pure part: the statements that hash a table in key-range chunks on either side, and
 * the comparison of what they return. verify/run.ts does the I/O.
 *
 * A row's canonical form is its compared columns' text in one record, `ROW(c1, c2, ...)::text`: the source and the
 * destination write the same text for equal values, whatever their versions, under the same session settings
 * (TEXT_IO_OPTIONS: dates, floats, bytea, time zone). A row's hash is the 64-bit hashtextextended of that text (a
 * byte hash under COLLATE "C", stable across versions: hash partitioning relies on it), or the first 64 bits of its
 * md5 where the two servers' hashtextextended differ (another byte order). A chunk's digest is its row count and
 * the sum of its rows' hashes: independent of the order rows come in, so the destination may scan its range in its
 * own order. Chunks are cut on the source (the next `chunkRows` rows in key order); the destination counts the same key
 * range. Where the two orders differ (a text key under different collations) a key may fall in another range on
 * the destination: the drill-down looks each unmatched key up by equality on the other side, so it is never
 * reported wrongly, only found at the cost of a lookup.
 */
import { type KeyedTable, Params, type Sql, col, keyCols, keyEquals, keysFrom, rowBound } from '../db/keyed.js';
import { quoteQualified } from '../db/quote.js';

/** A key as the JSON array of its values' text (json_build_array of ::text): comparable as a string. */
export type KeyText = string;
export type KeyValues = (string | null)[];

export type Side = 'source' | 'dest';

/** How rows are hashed: hashtextextended when both servers compute it alike (verify/run.ts checks), else md5. */
export type RowHashFn = 'hashtext' | 'md5';

export interface HashedTable extends KeyedTable {
  hash: RowHashFn;
}

/** A value whose hashtextextended both servers must agree on for `hashtext` to be used. */
export const HASH_PROBE_SQL = `SELECT hashtextextended('mirrors verify: byte order probe', 0)::text AS h`;

/** One condition on the key: `(key) OP (bound)`. A chunk is the conjunction of its conditions. */
export interface KeyCondition {
  op: '>' | '>=' | '<=';
  key: KeyValues;
}

const relation = (t: KeyedTable, side: Side) =>
  side === 'source' ? quoteQualified(t.source.schema, t.source.name) : quoteQualified(t.dest.schema, t.dest.name);
const types = (t: KeyedTable, side: Side) => (side === 'source' ? t.sourceTypes : t.destTypes);

/** The row's canonical text, hashed to a bigint. */
const rowHash = (t: HashedTable, alias: string) => {
  const text = `ROW(${t.columns.map((_, i) => `${alias}.${col(t, i)}`).join(', ')})::text`;
  return t.hash === 'hashtext'
    ? `hashtextextended(${text} COLLATE "C", 0)`
    : `('x' || left(md5(${text}), 16))::bit(64)::bigint`;
};
/** Row hashes summed (sum of bigint is numeric: no overflow). */
const digest = (h: string) => `coalesce(sum(${h}), 0)::text`;
const keyJson = (t: KeyedTable, alias: string) =>
  `json_build_array(${t.key.map((k) => `${alias}.${col(t, k)}::text`).join(', ')})::text`;

function where(t: KeyedTable, side: Side, p: Params, alias: string, conds: KeyCondition[]): string {
  if (!conds.length) return '';
  return `WHERE ${conds.map((c) => `(${keyCols(t, alias)}) ${c.op} ${rowBound(t, p, c.key, types(t, side))}`).join(' AND ')}`;
}

/**
 * On the source: the next `rows` rows from the conditions on, in key order: their count, digest, and last key
 * (null when there are none).
 */
export function sourceChunkSql(t: HashedTable, conds: KeyCondition[], rows: number): Sql {
  const p = new Params();
  const order = keyCols(t, 's');
  const desc = t.key.map((k) => `c.${col(t, k)} DESC`).join(', ');
  const text = `WITH c AS MATERIALIZED (SELECT ${keyCols(t, 's')}, ${rowHash(t, 's')} AS mirrors_h FROM ${relation(t, 'source')} AS s ${where(t, 'source', p, 's', conds)} ORDER BY ${order} LIMIT ${rows})
SELECT count(*)::int AS n, ${digest('c.mirrors_h')} AS digest, (SELECT ${keyJson(t, 'c')} FROM c ORDER BY ${desc} LIMIT 1) AS last FROM c`;
  return { text, values: p.values };
}

/** On either side: the count and digest of the rows the conditions select. */
export function rangeDigestSql(t: HashedTable, side: Side, conds: KeyCondition[]): Sql {
  const p = new Params();
  return {
    text: `SELECT count(*)::int AS n, ${digest(rowHash(t, 'x'))} AS digest FROM ${relation(t, side)} AS x ${where(t, side, p, 'x', conds)}`,
    values: p.values,
  };
}

/** On either side: every row the conditions select, as key and hash. */
export function rangeRowsSql(t: HashedTable, side: Side, conds: KeyCondition[]): Sql {
  const p = new Params();
  return {
    text: `SELECT ${keyJson(t, 'x')} AS k, ${rowHash(t, 'x')}::text AS h FROM ${relation(t, side)} AS x ${where(t, side, p, 'x', conds)}`,
    values: p.values,
  };
}

/** On either side: the rows of these keys, as key and hash. */
export function keyRowsSql(t: HashedTable, side: Side, keys: KeyValues[]): Sql {
  const p = new Params();
  return {
    text: `SELECT ${keyJson(t, 'x')} AS k, ${rowHash(t, 'x')}::text AS h FROM ${relation(t, side)} AS x, ${keysFrom(t, p, keys, 'u')} WHERE ${keyEquals(t, 'x', 'u', types(t, side))}`,
    values: p.values,
  };
}

/**
 * On the source, for --sample: the first key of each of about `blocks` pages picked by TABLESAMPLE SYSTEM (the
 * same pages for the same seed on the same table), in key order. Reads those pages only.
 */
export function sampleStartsSql(t: KeyedTable, percent: number, seed: number): Sql {
  const block = `s.tableoid, (s.ctid::text::point)[0]`;
  return {
    text: `SELECT ${keyJson(t, 'x')} AS k FROM (SELECT DISTINCT ON (${block}) ${keyCols(t, 's')} FROM ${relation(t, 'source')} AS s TABLESAMPLE SYSTEM (${percent}) REPEATABLE (${seed}) ORDER BY ${block}, ${keyCols(t, 's')}) AS x ORDER BY ${keyCols(t, 'x')}`,
    values: [],
  };
}

/** How many chunks of `chunkRows` hold `fraction` of `tuples` rows (at least one). */
export function sampleChunks(fraction: number, tuples: number, chunkRows: number): number {
  return Math.max(1, Math.ceil((fraction * tuples) / chunkRows));
}

/** The percentage of pages TABLESAMPLE SYSTEM must read for `fraction` of the rows in chunks of `chunkRows`. */
export function samplePercent(fraction: number, pages: number, tuples: number, chunkRows: number): number {
  return Math.min(100, (100 * sampleChunks(fraction, tuples, chunkRows)) / Math.max(1, pages));
}

export interface RowHash {
  k: KeyText;
  h: string;
}

export interface RowDiff {
  /** On the source, not on the destination. */
  missing: KeyText[];
  /** On the destination, not on the source. */
  extra: KeyText[];
  /** On both, with different contents. */
  changed: KeyText[];
}

/** The rows of one range on each side, compared by key. */
export function diffRows(source: RowHash[], dest: RowHash[]): RowDiff {
  const d = new Map(dest.map((r) => [r.k, r.h]));
  const out: RowDiff = { missing: [], extra: [], changed: [] };
  for (const r of source) {
    const h = d.get(r.k);
    if (h === undefined) out.missing.push(r.k);
    else if (h !== r.h) out.changed.push(r.k);
    d.delete(r.k);
  }
  out.extra = [...d.keys()];
  return out;
}

/**
 * The drill-down's unmatched keys settled by looking each up on the other side: a key found there with the same
 * hash was only in another range (the two sides order it differently); with another hash it changed.
 */
export function settle(
  diff: RowDiff,
  rows: { source: Map<KeyText, string>; dest: Map<KeyText, string> },
  found: { missingOnDest: RowHash[]; extraOnSource: RowHash[] },
): RowDiff {
  const out: RowDiff = { missing: [], extra: [], changed: [...diff.changed] };
  const onDest = new Map(found.missingOnDest.map((r) => [r.k, r.h]));
  const onSource = new Map(found.extraOnSource.map((r) => [r.k, r.h]));
  for (const k of diff.missing) {
    const h = onDest.get(k);
    if (h === undefined) out.missing.push(k);
    else if (h !== rows.source.get(k)) out.changed.push(k);
  }
  for (const k of diff.extra) {
    const h = onSource.get(k);
    if (h === undefined) out.extra.push(k);
    else if (h !== rows.dest.get(k)) out.changed.push(k);
  }
  return out;
}

/** `id 17` or `(a, b) (1, x)`: a key for people. */
export function showKey(t: KeyedTable, k: KeyText): string {
  const values = JSON.parse(k) as KeyValues;
  const names = t.key.map((i) => t.columns[i]);
  const v = values.map((x) => (x === null ? 'NULL' : x));
  return names.length === 1 ? `${names[0]} ${v[0]}` : `(${names.join(', ')}) (${v.join(', ')})`;
}
