/** Changes deferred while their table is copied (worker/deferred.ts): stored and read back exactly. No database. */
import { describe, expect, it } from 'vitest';
import { decodeChange, deferSql, encodeChange } from '../../src/worker/deferred.js';
import type { Change, TargetTable } from '../../src/worker/changes.js';

const t: TargetTable = {
  schema: 'public',
  name: 'big',
  label: 'public.big',
  columns: ['id', 'v', 'doc'],
  types: ['integer', 'text', 'jsonb'],
  key: [0],
  snapshotLsn: null,
};
const dest = { schema: 'public', name: 'big', snapshotLsn: '0/5000' };
const types = { id: 'integer', v: 'text', doc: 'jsonb', added: 'text' };

describe('a deferred change', () => {
  it('reads back as it was: NULL, unchanged TOAST (not sent) and text kept apart, against the types of now', () => {
    const changes: Change[] = [
      { op: 'insert', table: t, row: ['1', null, '{"a": 1}'] },
      { op: 'update', table: t, row: ['1', 'x', undefined], old: ['1', undefined, undefined], oldIsFull: false },
      { op: 'delete', table: t, old: ['1', null, null], oldIsFull: true },
      { op: 'truncate', tables: [t] },
      { op: 'truncate_partition', table: t, partition: 'public.big_1', bound: '(id < 10)' },
    ];
    for (const c of changes) {
      const stored = JSON.parse(JSON.stringify(encodeChange(c, t)));
      const back = decodeChange(stored, dest, types);
      const expected =
        c.op === 'truncate'
          ? { ...c, tables: [{ ...t, snapshotLsn: '0/5000' }] }
          : { ...c, table: { ...t, snapshotLsn: '0/5000' } };
      expect(back).toEqual(expected);
    }
  });

  it('refuses a column the table no longer has', () => {
    const stored = encodeChange({ op: 'insert', table: t, row: ['1', 'a', null] }, t);
    expect(() => decodeChange(stored, dest, { id: 'integer', v: 'text' })).toThrow(/has no column doc/);
  });

  it('is stored with its commit LSN and its order in the batch, values quoted', () => {
    const sql = deferSql("it's", [
      { table: t, lsn: 0x16b374d848n, change: encodeChange({ op: 'insert', table: t, row: ["o'k", null, null] }, t) },
    ]);
    expect(sql).toBe(
      `INSERT INTO mirrors.deferred_changes (mirror, dest_schema, dest_table, lsn, ord, change) VALUES ('it''s', 'public', 'big', '16/B374D848', 0, '{"op":"insert","columns":["id","v","doc"],"key":[0],"row":["o''k",null,null]}'::jsonb)`,
    );
  });
});
