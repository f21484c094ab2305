/**
 * The batch SQL builder without a database: what set-based coalescing keeps, drops and refuses (returns null
 * so the sink uses exact order), and the exact-order statements' WHERE clauses. The generated SQL is also run
 * against a real Postgres in test/e2e/batch-sql-live.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  arrayLiteral,
  exactStatements,
  setBasedStatements,
  textArrayLiteral,
  type Statement,
} from '../../src/worker/batch-sql.js';
import type { Change, TargetTable } from '../../src/worker/changes.js';
import type { TupleValue } from '../../src/worker/decode.js';

function table(name: string, cols: [string, string][], key: number[]): TargetTable {
  return {
    schema: 'public',
    name,
    label: `public.${name}`,
    columns: cols.map((c) => c[0]),
    types: cols.map((c) => c[1]),
    key,
    snapshotLsn: '0/1',
  };
}

// id int PK, v text, doc text (a big TOASTed value: undefined when unchanged).
const T = table(
  't',
  [
    ['id', 'integer'],
    ['v', 'text'],
    ['doc', 'text'],
  ],
  [0],
);
const U = undefined;

const ins = (t: TargetTable, row: TupleValue[]): Change => ({ op: 'insert', table: t, row });
const upd = (t: TargetTable, row: TupleValue[], old?: TupleValue[]): Change => ({
  op: 'update',
  table: t,
  row,
  old,
  oldIsFull: false,
});
const del = (t: TargetTable, old: TupleValue[]): Change => ({ op: 'delete', table: t, old, oldIsFull: false });
const keyOf = (t: TargetTable, row: TupleValue[]) => row.map((v, i) => (t.key.includes(i) ? v : undefined));

const kinds = (s: Statement[]) => s.map((x) => x.text.split(' ')[0]);

/** A set-based statement's inline text[] values read back: SQL literal first, then the array's elements. */
function arrays(s: Statement): (string | null)[][] {
  expect(s.values).toEqual([]);
  return [...s.text.matchAll(/(E?)'((?:[^']|'')*)'::text\[\]/g)].map(([, e, body]) => {
    let lit = body.replace(/''/g, "'");
    if (e) lit = lit.replace(/\\\\/g, '\\');
    const out: (string | null)[] = [];
    for (const m of lit.slice(1, -1).matchAll(/"((?:[^"\\]|\\.)*)"|NULL/g))
      out.push(m[1] === undefined ? null : m[1].replace(/\\(.)/g, '$1'));
    return out;
  });
}

describe('arrayLiteral', () => {
  it('quotes every element, escapes quotes and backslashes, and writes NULL for null and unsent values', () => {
    const rows: TupleValue[][] = [['a'], [''], ['NULL'], ['x,"y"'], ['back\\slash'], [null], [undefined], ['{}']];
    expect(arrayLiteral(rows, 0)).toBe('{"a","","NULL","x,\\"y\\"","back\\\\slash",NULL,NULL,"{}"}');
  });

  it('inlines a text[] as a literal that survives quotes and backslashes whatever standard_conforming_strings says', () => {
    expect(textArrayLiteral(["it's", null])).toBe(`'{"it''s",NULL}'::text[]`);
    expect(textArrayLiteral(['a\\b'])).toBe(`E'{"a\\\\\\\\b"}'::text[]`);
  });
});

describe('setBasedStatements', () => {
  it('merges an update with unchanged TOAST into the row inserted earlier in the batch', () => {
    const s = setBasedStatements([ins(T, ['1', 'a', 'big']), upd(T, ['1', 'b', U])])!;
    expect(kinds(s)).toEqual(['INSERT']);
    expect(arrays(s[0])).toEqual([['1'], ['b'], ['big']]);
  });

  it('turns delete + reinsert of one key into a single upsert (no delete of the new row)', () => {
    const s = setBasedStatements([del(T, keyOf(T, ['1', U, U])), ins(T, ['1', 'again', 'd'])])!;
    expect(kinds(s)).toEqual(['INSERT']);
    expect(s[0].text).toMatch(/ON CONFLICT \("id"\) DO UPDATE SET "v" = EXCLUDED\."v", "doc" = EXCLUDED\."doc"$/);
  });

  it('moves a fully sent row on a key change: delete of the old key, upsert of the new one', () => {
    const s = setBasedStatements([upd(T, ['2', 'x', 'y'], keyOf(T, ['1', U, U]))])!;
    expect(kinds(s)).toEqual(['DELETE', 'INSERT']);
    expect(arrays(s[0])).toEqual([['1']]);
    expect(arrays(s[1])).toEqual([['2'], ['x'], ['y']]);
  });

  it('refuses a key change whose unchanged TOAST value is only on the destination', () => {
    expect(setBasedStatements([upd(T, ['2', 'x', U], keyOf(T, ['1', U, U]))])).toBeNull();
  });

  it('refuses a key change with unchanged TOAST even after an earlier partial update of the same row', () => {
    // Row 1 exists on the destination with doc = <big>. Txn 1 sets v (doc unchanged), txn 2 moves the row to
    // key 10 (doc still unchanged). The merged row still lacks doc, so a DELETE of 1 + UPDATE of 10 would
    // delete the row and update nothing: the row would be lost.
    const changes = [upd(T, ['1', 'v2', U]), upd(T, ['10', 'v2', U], keyOf(T, ['1', U, U]))];
    const s = setBasedStatements(changes);
    if (s !== null) {
      // If coalesced at all, the new key must be written by an INSERT carrying doc, never by an UPDATE of a missing row.
      expect(kinds(s)).not.toContain('UPDATE');
    }
    expect(s).toBeNull();
  });

  it('keeps the partial update of an untouched row as an UPDATE of the sent columns only', () => {
    const s = setBasedStatements([upd(T, ['1', 'b', U])])!;
    expect(kinds(s)).toEqual(['UPDATE']);
    expect(s[0].text).toContain('SET "v" = mirrors_u."v"::text');
    expect(s[0].text).not.toContain('"doc" =');
    expect(arrays(s[0])).toEqual([['1'], ['b']]);
  });

  it('treats a truncate as a barrier: statements before it, the TRUNCATE, statements after it', () => {
    const s = setBasedStatements([ins(T, ['1', 'a', 'b']), { op: 'truncate', tables: [T] }, ins(T, ['1', 'c', 'd'])])!;
    expect(kinds(s)).toEqual(['INSERT', 'TRUNCATE', 'INSERT']);
    expect(arrays(s[2])).toEqual([['1'], ['c'], ['d']]);
  });

  it('uses exact order for a table without a key (REPLICA IDENTITY FULL or NOTHING)', () => {
    const F = table(
      'f',
      [
        ['a', 'integer'],
        ['b', 'text'],
      ],
      [],
    );
    expect(setBasedStatements([ins(T, ['1', 'a', 'b']), ins(F, ['1', 'x'])])).toBeNull();
  });

  it('a table whose columns are all key upserts with DO NOTHING', () => {
    const K = table(
      'k',
      [
        ['a', 'integer'],
        ['b', 'integer'],
      ],
      [0, 1],
    );
    const s = setBasedStatements([ins(K, ['1', '2'])])!;
    expect(s[0].text).toMatch(/ON CONFLICT \("a", "b"\) DO NOTHING$/);
  });

  it('keeps the source order of one table seen through two Relation messages (re-sent mid-batch)', () => {
    const T2 = { ...T }; // a new TargetTable object for the same destination table
    const s = setBasedStatements([ins(T, ['1', 'a', 'b']), del(T2, keyOf(T2, ['1', U, U]))])!;
    expect(kinds(s)).toEqual(['INSERT', 'DELETE']);
  });

  it('coalesces a row moved away and back into one upsert plus a delete of the temporary key', () => {
    const s = setBasedStatements([
      upd(T, ['2', 'a', 'b'], keyOf(T, ['1', U, U])),
      upd(T, ['1', 'a', 'b'], keyOf(T, ['2', U, U])),
    ])!;
    expect(kinds(s)).toEqual(['DELETE', 'INSERT']);
    expect(arrays(s[0])).toEqual([['2']]);
    expect(arrays(s[1])).toEqual([['1'], ['a'], ['b']]);
  });
});

describe('exactStatements', () => {
  it('matches a keyed row by its key, parameters after the SET values', () => {
    const [s] = exactStatements([upd(T, ['1', 'b', U])]);
    expect(s.text).toBe('UPDATE "public"."t" SET "id" = $1::integer, "v" = $2::text WHERE "id" = $3::integer');
    expect(s.values).toEqual(['1', 'b', '1']);
  });

  it('matches a moved row by its old key', () => {
    const [s] = exactStatements([upd(T, ['2', 'b', U], keyOf(T, ['1', U, U]))]);
    expect(s.text).toMatch(/WHERE "id" = \$3::integer$/);
    expect(s.values).toEqual(['2', 'b', '1']);
  });

  it('matches a REPLICA IDENTITY FULL row through the column type, so text forms that differ still match', () => {
    // bool::text is 'true' while pgoutput sends 't'; bpchar::text drops the padding pgoutput sends; inet::text
    // adds /32. Comparing the column's text with the raw source text would never match these rows.
    const F = table(
      'f',
      [
        ['b', 'boolean'],
        ['c', 'character(5)'],
        ['n', 'integer'],
      ],
      [],
    );
    const [s] = exactStatements([{ op: 'delete', table: F, old: ['t', 'ab   ', null], oldIsFull: true }]);
    expect(s.text).toContain('"b"::text IS NOT DISTINCT FROM $1::text::boolean::text');
    expect(s.text).toContain('"c"::text IS NOT DISTINCT FROM $2::text::character(5)::text');
    expect(s.values).toEqual(['t', 'ab   ', null]);
  });
});
