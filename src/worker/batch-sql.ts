/**
 * Turns a batch of changes into SQL: set-based statements over coalesced rows (fast), or one statement
 * per change in exact source order (the fallback when set-based would violate a constraint, and the
 * only way for tables without a key). Pure: text and parameters, no I/O. Values stay text and are cast
 * to the destination column type in SQL. Set-based statements carry their values inline, as one quoted
 * text[] literal per column (the sink sends a whole batch as one multi-statement query, which takes no
 * parameters); exact-order statements use $n parameters (the sink prepares them).
 */
import { quoteIdent, quoteQualified, quoteText } from '../db/quote.js';
import type { Change, TargetTable } from './changes.js';
import type { TupleValue } from './decode.js';

export interface Statement {
  text: string;
  values: unknown[];
}

const tableSql = (t: TargetTable) => quoteQualified(t.schema, t.name);
const col = (t: TargetTable, i: number) => quoteIdent(t.columns[i]);
const cast = (t: TargetTable, i: number) => t.types[i];

/** Exact order: one statement per change. */
export function exactStatements(changes: Change[]): Statement[] {
  const out: Statement[] = [];
  for (const c of changes) {
    if (c.op === 'truncate') {
      if (c.tables.length) out.push({ text: `TRUNCATE ${c.tables.map(tableSql).join(', ')}`, values: [] });
      continue;
    }
    if (c.op === 'truncate_partition') {
      out.push({ text: `DELETE FROM ${tableSql(c.table)} WHERE ${c.bound}`, values: [] });
      continue;
    }
    if (c.op === 'defer') continue; // written by the sink (worker/deferred.ts)
    const t = c.table;
    if (c.op === 'insert') {
      const idx = present(c.row);
      out.push({
        text: `INSERT INTO ${tableSql(t)} (${idx.map((i) => col(t, i)).join(', ')}) VALUES (${idx.map((i, n) => `$${n + 1}::${cast(t, i)}`).join(', ')})`,
        values: idx.map((i) => c.row[i]),
      });
      continue;
    }
    const match = c.op === 'update' ? (c.old ?? c.row) : c.old;
    if (c.op === 'update') {
      const idx = present(c.row);
      const set = idx.map((i, n) => `${col(t, i)} = $${n + 1}::${cast(t, i)}`).join(', ');
      const w = whereClause(t, match, c.oldIsFull, idx.length);
      out.push({
        text: `UPDATE ${tableSql(t)} SET ${set} WHERE ${w.sql}`,
        values: [...idx.map((i) => c.row[i]), ...w.values],
      });
    } else {
      const w = whereClause(t, match, c.oldIsFull, 0);
      out.push({ text: `DELETE FROM ${tableSql(t)} WHERE ${w.sql}`, values: w.values });
    }
  }
  return out;
}

/** Indexes of values that were sent (unchanged TOAST values are undefined and left alone). */
function present(row: TupleValue[]): number[] {
  const idx: number[] = [];
  row.forEach((v, i) => {
    if (v !== undefined) idx.push(i);
  });
  return idx;
}

/**
 * Identifies the destination row: by key columns, or for REPLICA IDENTITY FULL without key by every sent
 * old value (compared as text, since json, point and friends have no equality), one row only. The source's
 * text goes through the column's type first, so both sides are the destination's own ::text of a value of
 * that type: a raw comparison misses rows whose ::text differs from the type's output (bool::text is 'true'
 * where pgoutput sends 't', bpchar::text drops the padding, inet::text adds /32, ...).
 */
function whereClause(
  t: TargetTable,
  match: TupleValue[],
  full: boolean,
  offset: number,
): { sql: string; values: unknown[] } {
  if (t.key.length && !(full && t.key.some((k) => match[k] === undefined))) {
    return {
      sql: t.key.map((k, n) => `${col(t, k)} = $${offset + n + 1}::${cast(t, k)}`).join(' AND '),
      values: t.key.map((k) => match[k]),
    };
  }
  const idx = present(match);
  const cond = idx
    .map((i, n) => `${col(t, i)}::text IS NOT DISTINCT FROM $${offset + n + 1}::text::${cast(t, i)}::text`)
    .join(' AND ');
  return {
    sql: `ctid = (SELECT ctid FROM ${tableSql(t)} WHERE ${cond || 'true'} LIMIT 1)`,
    values: idx.map((i) => match[i]),
  };
}

type Final = { kind: 'upsert'; row: TupleValue[] } | { kind: 'delete'; key: TupleValue[] };

/**
 * Set-based: changes are coalesced per table and key to each row's final state, then written with one
 * DELETE, one INSERT ... ON CONFLICT and one UPDATE per set of sent columns, per table. Returns null when
 * a change cannot be coalesced (no key, or a key change that leaves unchanged TOAST values unknown):
 * the caller then uses exact order.
 */
export function setBasedStatements(changes: Change[]): Statement[] | null {
  // A partition's bound is SQL text from the source's catalog: it runs as a statement of its own (exact order uses
  // the extended protocol, one statement per message), never inside a multi-statement query.
  if (changes.some((c) => c.op === 'truncate_partition')) return null;
  const out: Statement[] = [];
  // Truncates are barriers: coalesce within the segments between them.
  let segment: Change[] = [];
  const flush = () => {
    const s = coalesceSegment(segment);
    segment = [];
    return s;
  };
  for (const c of changes) {
    if (c.op === 'truncate') {
      const s = flush();
      if (!s) return null;
      out.push(...s, ...exactStatements([c]));
    } else segment.push(c);
  }
  const s = flush();
  if (!s) return null;
  out.push(...s);
  return out;
}

function coalesceSegment(changes: Change[]): Statement[] | null {
  const perTable = new Map<TargetTable, Map<string, Final>>();
  for (const c of changes) {
    if (c.op === 'truncate' || c.op === 'truncate_partition' || c.op === 'defer') continue;
    const t = c.table;
    if (!t.key.length) return null;
    let rows = perTable.get(t);
    if (!rows) perTable.set(t, (rows = new Map()));
    const keyOf = (row: TupleValue[]) => rowKey(t.key, row);
    if (c.op === 'insert') {
      const k = keyOf(c.row);
      if (k === null) return null;
      rows.set(k, { kind: 'upsert', row: c.row });
    } else if (c.op === 'delete') {
      const k = keyOf(c.old);
      if (k === null) return null;
      rows.set(k, { kind: 'delete', key: t.key.map((i) => c.old[i]) });
    } else {
      const newKey = keyOf(c.row);
      const oldKey = c.old ? keyOf(c.old) : newKey;
      if (newKey === null || oldKey === null) return null;
      const prev = rows.get(oldKey);
      let row = c.row;
      if (row.some((v) => v === undefined) && prev?.kind === 'upsert')
        row = row.map((v, i) => (v === undefined ? prev.row[i] : v));
      // A moved row is written as delete(old key) + upsert(new key): its unchanged TOAST values, if still
      // unknown after merging with an earlier change in the batch, are only on the destination row under the
      // old key, which the delete removes. Only exact order (UPDATE ... WHERE key = old) keeps them.
      if (oldKey !== newKey && row.some((v) => v === undefined)) return null;
      if (oldKey !== newKey) rows.set(oldKey, { kind: 'delete', key: t.key.map((i) => c.old![i]) });
      rows.set(newKey, { kind: 'upsert', row });
    }
  }
  const out: Statement[] = [];
  for (const [t, rows] of perTable) {
    const deletes: TupleValue[][] = [];
    const fullRows: TupleValue[][] = [];
    const partial = new Map<string, TupleValue[][]>();
    for (const f of rows.values()) {
      if (f.kind === 'delete') deletes.push(f.key);
      else if (f.row.every((v) => v !== undefined)) fullRows.push(f.row);
      else {
        const sig = f.row.map((v) => (v === undefined ? '0' : '1')).join('');
        partial.set(sig, [...(partial.get(sig) ?? []), f.row]);
      }
    }
    if (deletes.length) out.push(deleteStatement(t, deletes));
    if (fullRows.length) out.push(upsertStatement(t, fullRows));
    for (const [sig, list] of partial) {
      const u = updateStatement(t, sig, list);
      if (u) out.push(u);
    }
  }
  return out;
}

/**
 * A row's identity within a batch: its key values, null when one is not known (unchanged TOAST). Text
 * values cannot contain NUL, so joining on it is unambiguous; key columns are never NULL.
 */
function rowKey(key: number[], row: TupleValue[]): string | null {
  if (key.length === 1) {
    const v = row[key[0]];
    return v === undefined ? null : `${v}`;
  }
  let k = '';
  for (let n = 0; n < key.length; n++) {
    const v = row[key[n]];
    if (v === undefined) return null;
    k += n === 0 ? `${v}` : `\u0000${v}`;
  }
  return k;
}

const NEEDS_ESCAPE = /["\\]/;

/** Column i of the rows as the text of a text[] value: `{"a","b",NULL}` (unsent values are NULL). */
export function arrayLiteral(rows: TupleValue[][], i: number): string {
  let out = '{';
  for (let r = 0; r < rows.length; r++) {
    const v = rows[r][i];
    if (r > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (NEEDS_ESCAPE.test(v)) out += `"${v.replace(/["\\]/g, '\\$&')}"`;
    else out += `"${v}"`;
  }
  return out + '}';
}

/** A text[] value in SQL text: the array's text, quoted as a string literal, cast. */
export function textArrayLiteral(values: (string | null)[]): string {
  return `${quoteText(
    arrayLiteral(
      values.map((v) => [v]),
      0,
    ),
  )}::text[]`;
}

function unnestFrom(t: TargetTable, idx: number[], rows: TupleValue[][]): string {
  const arrays = idx.map((i) => `${quoteText(arrayLiteral(rows, i))}::text[]`);
  return `unnest(${arrays.join(', ')}) AS mirrors_u(${idx.map((i) => col(t, i)).join(', ')})`;
}

function deleteStatement(t: TargetTable, keys: TupleValue[][]): Statement {
  const idx = t.key.map((_, n) => n);
  const keyTable: TargetTable = { ...t, columns: t.key.map((k) => t.columns[k]), types: t.key.map((k) => t.types[k]) };
  return {
    text: `DELETE FROM ${tableSql(t)} AS mirrors_d USING ${unnestFrom(keyTable, idx, keys)} WHERE ${idx.map((i) => `mirrors_d.${col(keyTable, i)} = mirrors_u.${col(keyTable, i)}::${cast(keyTable, i)}`).join(' AND ')}`,
    values: [],
  };
}

function upsertStatement(t: TargetTable, rows: TupleValue[][]): Statement {
  const idx = t.columns.map((_, i) => i);
  const nonKey = idx.filter((i) => !t.key.includes(i));
  const conflict = `ON CONFLICT (${t.key.map((k) => col(t, k)).join(', ')}) ${nonKey.length ? `DO UPDATE SET ${nonKey.map((i) => `${col(t, i)} = EXCLUDED.${col(t, i)}`).join(', ')}` : 'DO NOTHING'}`;
  return {
    text: `INSERT INTO ${tableSql(t)} (${idx.map((i) => col(t, i)).join(', ')}) SELECT ${idx.map((i) => `mirrors_u.${col(t, i)}::${cast(t, i)}`).join(', ')} FROM ${unnestFrom(t, idx, rows)} ${conflict}`,
    values: [],
  };
}

function updateStatement(t: TargetTable, sig: string, rows: TupleValue[][]): Statement | null {
  const idx = [...sig].flatMap((b, i) => (b === '1' ? [i] : []));
  const set = idx.filter((i) => !t.key.includes(i));
  if (!set.length) return null; // only the key was sent: the row is already as it should be
  return {
    text: `UPDATE ${tableSql(t)} AS mirrors_d SET ${set.map((i) => `${col(t, i)} = mirrors_u.${col(t, i)}::${cast(t, i)}`).join(', ')} FROM ${unnestFrom(t, idx, rows)} WHERE ${t.key.map((k) => `mirrors_d.${col(t, k)} = mirrors_u.${col(t, k)}::${cast(t, k)}`).join(' AND ')}`,
    values: [],
  };
}
