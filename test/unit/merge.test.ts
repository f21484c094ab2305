import { describe, expect, it } from 'vitest';
import type { TargetTable } from '../../src/worker/changes.js';
import {
  type Chunk,
  type MergeTable,
  MergeTracker,
  chunkSql,
  chunkWrite,
  destExtraSql,
  keyId,
  parseSnapshot,
  sees,
  upsertSql,
} from '../../src/worker/merge.js';

const table: MergeTable = {
  dest: { schema: 'public', name: 'items' },
  source: { schema: 'public', name: 'items' },
  columns: ['id', 'name', 'big'],
  destTypes: ['integer', 'text', 'text'],
  sourceTypes: ['integer', 'text', 'text'],
  key: [0],
  chunkRows: 3,
};
/** The stream's view of the same table: columns in another order (the key found by name). */
const streamed: TargetTable = {
  schema: 'public',
  name: 'items',
  label: 'public.items',
  columns: ['name', 'id', 'big'],
  types: ['text', 'integer', 'text'],
  key: [1],
  snapshotLsn: null,
};
const other: TargetTable = { ...streamed, name: 'accounts', label: 'public.accounts' };

describe('merge: which transactions a chunk snapshot sees', () => {
  const s = parseSnapshot('100:105:101,103');
  it('sees what finished before xmin and what is below xmax and not in progress', () => {
    expect(sees(s, 99)).toBe(true);
    expect(sees(s, 100)).toBe(true);
    expect(sees(s, 102)).toBe(true);
    expect(sees(s, 104)).toBe(true);
  });
  it('does not see transactions in progress or started after it', () => {
    expect(sees(s, 101)).toBe(false);
    expect(sees(s, 103)).toBe(false);
    expect(sees(s, 105)).toBe(false);
    expect(sees(s, 4_000)).toBe(false);
  });
  it('places a 32-bit xid in the epoch nearest xmax, across a wraparound', () => {
    const e = 1n << 32n;
    const near = parseSnapshot(`${e + 10n}:${e + 20n}:${e + 15n}`);
    expect(sees(near, 4_294_967_290)).toBe(true); // epoch 0, just before the wrap
    expect(sees(near, 12)).toBe(true);
    expect(sees(near, 15)).toBe(false);
    expect(sees(near, 25)).toBe(false); // epoch 1, after the snapshot
    const before = parseSnapshot(`${e - 20n}:${e - 10n}:`);
    expect(sees(before, 5)).toBe(false); // epoch 1 already: after the snapshot
    expect(sees(before, 4_294_967_270)).toBe(true);
  });
});

describe('merge: what the stream applied that a chunk must leave alone', () => {
  const snap = parseSnapshot('100:105:103');
  it('remembers keys of transactions the snapshot does not see, whole or partly written, of its table only', () => {
    const t = new MergeTracker(table);
    t.note(103, { op: 'insert', table: streamed, row: ['a', '7', 'x'] });
    t.note(104, { op: 'delete', table: streamed, old: [undefined, '8', undefined], oldIsFull: false });
    t.note(106, { op: 'update', table: streamed, row: ['b', '9', undefined], oldIsFull: false });
    t.note(106, {
      op: 'update',
      table: streamed,
      row: ['c', '11', 'y'],
      old: [undefined, '10', undefined],
      oldIsFull: false,
    });
    t.note(107, { op: 'insert', table: other, row: ['z', '1', 'z'] });
    const u = t.unseenBy(snap);
    expect([...u.keys].sort()).toEqual([keyId(['10']), keyId(['11']), keyId(['7'])].sort());
    expect([...u.partial]).toEqual([keyId(['9'])]);
    expect(u.unknown).toBe(false);
  });
  it('cannot trust a chunk past a TRUNCATE of its table or a change without its key', () => {
    const t = new MergeTracker(table);
    t.note(110, { op: 'truncate', tables: [other] });
    expect(t.unseenBy(snap).unknown).toBe(false);
    t.note(111, { op: 'truncate', tables: [streamed] });
    expect(t.unseenBy(snap).unknown).toBe(true);
    const k = new MergeTracker(table);
    k.note(112, { op: 'update', table: streamed, row: ['a', undefined, 'b'], oldIsFull: false });
    expect(k.unseenBy(snap).unknown).toBe(true);
  });
  it('knows which committed, not yet visible transactions the stream handed over since the merge began', () => {
    const t = new MergeTracker(table);
    t.began(103);
    expect(t.handedOver([])).toBe(true);
    expect(t.handedOver([103n])).toBe(true);
    expect(t.handedOver([103n, 104n])).toBe(false); // 104 may have been applied before: its rows are unknown
    expect(t.handedOver([(1n << 32n) + 103n])).toBe(true); // the snapshot's 64-bit xid of the same transaction
  });

  it('forgets transactions a chunk saw, and ignores them from then on', () => {
    const t = new MergeTracker(table);
    t.note(103, { op: 'insert', table: streamed, row: ['a', '7', 'x'] });
    t.note(106, { op: 'insert', table: streamed, row: ['a', '8', 'x'] });
    const later = parseSnapshot('106:110:');
    t.forgetSeenBy(later);
    expect(t.size).toBe(0);
    t.note(104, { op: 'insert', table: streamed, row: ['a', '9', 'x'] });
    expect(t.size).toBe(0);
  });
});

describe('merge: what a chunk writes', () => {
  const chunk: Chunk = {
    snapshot: parseSnapshot('1:2:'),
    rows: [
      ['1', 'a', null],
      ['2', 'b', 'x'],
      ['3', 'c', null],
    ],
    reread: [['9', 'again', null]],
    absent: [['4'], ['5']],
    last: ['3'],
  };
  it('upserts rows the stream did not write since, deletes absent keys unless the stream wrote them, re-reads partial ones', () => {
    const w = chunkWrite(table, chunk, {
      keys: new Set([keyId(['2']), keyId(['5'])]),
      partial: new Set([keyId(['3'])]),
      unknown: false,
    });
    expect(w.upsert).toEqual([
      ['1', 'a', null],
      ['9', 'again', null],
    ]);
    expect(w.delete).toEqual([['4'], ['5']]);
    expect(w.keep.sort()).toEqual([['2'], ['3'], ['5']].sort());
    expect(w.reread).toEqual([['3']]);
  });
});

/** Identifiers are always quoted: compare without the quotes. */
const bare = (text: string) => text.replaceAll('"', '');

describe('merge: SQL', () => {
  it('reads the source in key order after the cursor, values as parameters', () => {
    const first = chunkSql(table, null);
    expect(bare(first.text)).toBe('SELECT s.id, s.name, s.big FROM public.items AS s  ORDER BY s.id LIMIT 3');
    const next = chunkSql({ ...table, key: [0, 1] }, ['3', "o'k"]);
    expect(bare(next.text)).toContain('WHERE (s.id, s.name) > ($1::integer, $2::text) ORDER BY s.id, s.name LIMIT 3');
    expect(next.values).toEqual(['3', "o'k"]);
  });
  it('finds destination keys of the range the chunk did not bring', () => {
    const s = destExtraSql(table, ['3'], ['6'], [['4'], ['6']]);
    expect(bare(s.text)).toBe(
      'SELECT d.id FROM public.items AS d WHERE (d.id) > ($1::integer) AND (d.id) <= ($2::integer) AND NOT EXISTS (SELECT 1 FROM unnest($3::text[]) AS u(id) WHERE d.id = u.id::integer)',
    );
    expect(s.values).toEqual(['3', '6', ['4', '6']]);
  });
  it('writes only rows that differ, compared as text, and says which it inserted', () => {
    const s = upsertSql(table, [['1', 'a', null]]);
    expect(bare(s.text)).toContain('ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, big = EXCLUDED.big');
    expect(bare(s.text)).toContain(
      'WHERE (mirrors_d.name::text, mirrors_d.big::text) IS DISTINCT FROM (EXCLUDED.name::text, EXCLUDED.big::text)',
    );
    expect(s.text).toContain('RETURNING (xmax = 0) AS inserted');
    expect(s.values).toEqual([['1'], ['a'], [null]]);
  });
});
