/**
 * COPY's format for a table: binary where both sides have the very same built-in types, text otherwise.
 *
 * Owns: the catalog query for a table's column types and the rule that picks the format from them.
 * Must not: write SQL for the copy itself (parts.ts does) or run anything but its read-only catalog query.
 */
import type pg from 'pg';
import type { TableSpec } from '../../plan/types.js';

export interface ColumnType {
  oid: string;
  binary: boolean;
}

/**
 * A table's column types, and whether COPY's binary format carries each one between any two clusters: a
 * built-in base, range or multirange type (OIDs below 10000 are fixed across clusters and versions) with
 * binary I/O, whose array elements qualify too, and that is not a reg* type (those are sent as OIDs, which
 * mean other objects on another cluster). Composite types and arrays of user types embed OIDs: never binary.
 */
const COLUMN_TYPES_SQL = `
SELECT a.attname AS name, t.oid::text AS oid,
       (t.oid < 10000 AND t.typtype IN ('b', 'r', 'm') AND t.typsend::oid <> 0 AND t.typreceive::oid <> 0 AND t.typname !~ '^_?reg'
        AND (e.oid IS NULL OR (e.oid < 10000 AND e.typtype IN ('b', 'r', 'm') AND e.typsend::oid <> 0 AND e.typreceive::oid <> 0))) AS binary
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
WHERE a.attrelid = (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1::text AND c.relname = $2::text)
  AND a.attnum > 0 AND NOT a.attisdropped`;

export async function columnTypes(c: pg.Client, schema: string, name: string): Promise<Map<string, ColumnType>> {
  const { rows } = await c.query<ColumnType & { name: string }>(COLUMN_TYPES_SQL, [schema, name]);
  return new Map(rows.map((r) => [r.name, { oid: r.oid, binary: r.binary }]));
}

/**
 * Binary COPY when every copied column has the very same type on both sides and the type qualifies: it
 * costs both servers much less than text (no number, date or array formatting and parsing) and is exact by
 * construction. Otherwise text, whose input functions also convert between differing types.
 */
export function binaryFormat(
  spec: TableSpec,
  source: Map<string, ColumnType>,
  destination: Map<string, ColumnType>,
): boolean {
  return spec.columns.every((c) => {
    const s = source.get(c.name);
    const d = destination.get(c.name);
    return s !== undefined && d !== undefined && s.binary && d.binary && s.oid === d.oid;
  });
}
