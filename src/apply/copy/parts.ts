/**
 * A table's parts, and the COPY statement each side runs for one. A part is a partition-key range, a ctid
 * block range, a leaf partition, or the whole table: sized so that each holds about rowsPerPartition rows,
 * as the planner would guess them from the table's current size.
 *
 * Owns: the planning queries (run on a source connection inside the snapshot transaction) and the SQL text
 * of the parts' COPY statements.
 * Must not: put user data into SQL text (bounds are numbers we computed or literals Postgres quoted itself),
 * or run anything on the source but read-only catalog and planning queries.
 */
import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../db/quote.js';
import { MirrorsError } from '../../errors.js';
import type { TableSpec } from '../../plan/types.js';
import { columnTypes, type ColumnType } from './format.js';

const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8']);

interface Relation {
  schema: string;
  name: string;
  relkind: string;
}

export interface Part {
  relation: Relation;
  /** null: the whole relation. */
  where: string | null;
}

export interface TablePlan {
  parts: Part[];
  bytesTotal: number;
  /** The source's copied columns' types (see format.ts), by column name. */
  types: Map<string, ColumnType>;
}

interface RelationRow {
  schema: string;
  name: string;
  relkind: string;
  root_kind: string;
  pages: string;
  relpages: number;
  reltuples: number;
  width: number;
  block_size: number;
  bytes: string;
}

/**
 * The relations to read for a table — the table itself, or the leaves of a partitioned table — with what
 * sizing needs. Run in the snapshot transaction; sizes are the current ones (a table only grows past
 * rows the snapshot can see: those rows' pages cannot be truncated while the snapshot holds them).
 */
const RELATIONS_SQL = `
WITH t AS (
  SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1::text AND c.relname = $2::text
), rels AS (
  SELECT t.oid FROM t WHERE t.relkind <> 'p'
  UNION ALL
  SELECT p.relid FROM t, pg_catalog.pg_partition_tree(t.oid) p WHERE t.relkind = 'p' AND p.isleaf
)
SELECT n.nspname AS schema, c.relname AS name, c.relkind, (SELECT relkind FROM t) AS root_kind,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint ELSE 0 END::text AS pages,
       c.relpages, c.reltuples::float8 AS reltuples,
       (SELECT coalesce(sum(CASE WHEN ty.typlen > 0 THEN ty.typlen ELSE 32 END), 0)::int
          FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS width,
       current_setting('block_size')::int AS block_size,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END::text AS bytes
FROM rels JOIN pg_catalog.pg_class c ON c.oid = rels.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY n.nspname, c.relname`;

/** Rows a relation holds, as the planner would guess them from its current size. */
function rowsFromPages(r: RelationRow): number {
  const pages = Number(r.pages);
  if (r.relpages > 0 && r.reltuples >= 0) return (r.reltuples / r.relpages) * pages;
  // Never analyzed: page header 24 bytes, tuple header 24 + line pointer 4, 32 bytes per variable-width value.
  return pages * Math.max(1, Math.floor((r.block_size - 24) / (r.width + 28)));
}

function partsWanted(rows: number, rowsPerPartition: number): number {
  return Math.max(1, Math.ceil(rows / rowsPerPartition));
}

export async function planTable(src: pg.Client, spec: TableSpec, rowsPerPartition: number): Promise<TablePlan> {
  const { rows } = await src.query<RelationRow>(RELATIONS_SQL, [spec.source.schema, spec.source.name]);
  if (rows.length === 0) {
    const exists = await src.query(
      `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1::text AND c.relname = $2::text`,
      [spec.source.schema, spec.source.name],
    );
    // A partitioned table without partitions holds no rows.
    if (exists.rowCount) return { parts: [], bytesTotal: 0, types: new Map() };
    throw new MirrorsError(
      'APPLY_FAILED',
      `source table ${quoteQualified(spec.source.schema, spec.source.name)} does not exist`,
      {
        hint: 'run `mirrors plan` again: the source changed since the plan was made',
      },
    );
  }
  const bytesTotal = rows.reduce((n, r) => n + Number(r.bytes), 0);
  const types = await columnTypes(src, spec.source.schema, spec.source.name);
  if (rows[0].root_kind === 'p') {
    const parts = rows.flatMap((r) => ctidParts(r, partsWanted(rowsFromPages(r), rowsPerPartition)));
    return { parts, bytesTotal, types };
  }
  const r = rows[0];
  const specRows = Number(spec.estimated_rows);
  // An estimate taken while the table was empty (relpages 0) says nothing about what was loaded since.
  const estimate = specRows >= 0 && (r.relpages > 0 || Number(r.pages) === 0) ? specRows : rowsFromPages(r);
  const wanted = partsWanted(estimate, rowsPerPartition);
  const relation: Relation = { schema: r.schema, name: r.name, relkind: r.relkind };
  if (wanted === 1) return { parts: [{ relation, where: null }], bytesTotal, types };
  if (spec.partition_key !== null) return { parts: await keyParts(src, spec, relation, wanted), bytesTotal, types };
  return { parts: ctidParts(r, wanted), bytesTotal, types };
}

/** Block ranges: `ctid >= '(a,0)' AND ctid < '(b,0)'` run as TID Range Scans (Postgres 14+). */
function ctidParts(r: RelationRow, wanted: number): Part[] {
  const relation: Relation = { schema: r.schema, name: r.name, relkind: r.relkind };
  const pages = Number(r.pages);
  const n = Math.min(wanted, pages);
  if (!['r', 'm'].includes(r.relkind) || n <= 1) return [{ relation, where: null }];
  const per = Math.ceil(pages / n);
  const bounds: number[] = [];
  for (let b = per; b < pages; b += per) bounds.push(b);
  const tid = (block: number) => `'(${block},0)'::pg_catalog.tid`;
  // The first range is open below and the last open above: rows inserted after planning land past the end.
  return ranges(bounds).map(([lo, hi]) => ({
    relation,
    where: [lo === null ? null : `ctid >= ${tid(lo)}`, hi === null ? null : `ctid < ${tid(hi)}`]
      .filter(Boolean)
      .join(' AND '),
  }));
}

/** [null, b1], [b1, b2], ..., [bn, null] */
function ranges<T>(bounds: T[]): [T | null, T | null][] {
  const out: [T | null, T | null][] = [];
  for (let i = 0; i <= bounds.length; i++)
    out.push([i === 0 ? null : bounds[i - 1], i === bounds.length ? null : bounds[i]]);
  return out;
}

async function keyParts(src: pg.Client, spec: TableSpec, relation: Relation, wanted: number): Promise<Part[]> {
  const keyName = spec.partition_key!;
  const column = spec.columns.find((c) => c.name === keyName);
  if (!column) {
    throw new MirrorsError(
      'APPLY_FAILED',
      `partition_key ${quoteIdent(keyName)} is not a copied column of ${quoteQualified(spec.source.schema, spec.source.name)}`,
      {
        hint: 'choose a column that exists on the source and is not excluded',
      },
    );
  }
  const key = quoteIdent(keyName);
  const from = `ONLY ${quoteQualified(relation.schema, relation.name)}`;
  const whole: Part[] = [{ relation, where: null }];
  let conditions: string[];
  if (INTEGER_TYPES.has(column.type)) {
    const { rows } = await src.query<{ lo: string | null; hi: string | null }>(
      `SELECT min(${key})::text AS lo, max(${key})::text AS hi FROM ${from}`,
    );
    const { lo, hi } = rows[0];
    if (lo === null || hi === null) return whole;
    conditions = integerRanges(BigInt(lo), BigInt(hi), wanted).map(([a, b]) =>
      [a === null ? null : `${key} >= ${a}`, b === null ? null : `${key} < ${b}`].filter(Boolean).join(' AND '),
    );
  } else {
    // One sorted scan; each bucket's last value is an upper bound. Postgres quotes the values itself, and an
    // untyped literal compared with the column takes the column's type (and collation).
    const { rows } = await src.query<{ bound: string }>(
      `SELECT pg_catalog.quote_literal(k) AS bound
         FROM (SELECT k, b, lead(b) OVER (ORDER BY k) AS next_b
                 FROM (SELECT ${key} AS k, ntile($1::int) OVER (ORDER BY ${key}) AS b FROM ${from} WHERE ${key} IS NOT NULL) s) s
        WHERE next_b <> b
        ORDER BY b`,
      [wanted],
    );
    const bounds = [...new Set(rows.map((r) => r.bound))];
    if (bounds.length === 0) return whole;
    conditions = ranges(bounds).map(([a, b]) =>
      [a === null ? null : `${key} > ${a}`, b === null ? null : `${key} <= ${b}`].filter(Boolean).join(' AND '),
    );
  }
  // Ranges never match NULL: a nullable key gets a part of its own.
  if (!column.not_null) conditions.push(`${key} IS NULL`);
  return conditions.map((where) => ({ relation, where }));
}

/** Equal ranges over [lo, hi]: [null, b1), [b1, b2), ..., [bn, null). Digits only: safe in SQL text. */
export function integerRanges(lo: bigint, hi: bigint, wanted: number): [string | null, string | null][] {
  const span = hi - lo + 1n;
  const n = BigInt(wanted) < span ? BigInt(wanted) : span;
  const step = (span + n - 1n) / n;
  const bounds: string[] = [];
  for (let b = lo + step; b <= hi; b += step) bounds.push(b.toString());
  return ranges(bounds);
}

function columnList(spec: TableSpec): string {
  return spec.columns.map((c) => quoteIdent(c.name)).join(', ');
}

export function sourceSql(spec: TableSpec, part: Part, binary: boolean): string {
  const cols = columnList(spec);
  const rel = quoteQualified(part.relation.schema, part.relation.name);
  const format = binary ? ' (FORMAT binary)' : '';
  // Plain COPY of a table is cheaper than COPY (SELECT ...); it reads only that table, like ONLY.
  if (part.where === null && part.relation.relkind === 'r') return `COPY ${rel} (${cols}) TO STDOUT${format}`;
  const where = part.where === null ? '' : ` WHERE ${part.where}`;
  return `COPY (SELECT ${cols} FROM ONLY ${rel}${where}) TO STDOUT${format}`;
}

export function destinationSql(spec: TableSpec, binary: boolean): string {
  return `COPY ${quoteQualified(spec.destination.schema, spec.destination.name)} (${columnList(spec)}) FROM STDIN${binary ? ' (FORMAT binary)' : ''}`;
}
