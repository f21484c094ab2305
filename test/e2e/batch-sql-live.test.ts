/**
 * The batch SQL against a real Postgres: each case seeds a destination table, applies a batch through the
 * Sink (set-based, with its fallback to exact order) and, separately, through exactStatements alone, and
 * checks both against the state the source would have. Exact order is the reference semantics; set-based
 * must never end anywhere else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { useClusters } from '../support/clusters.js';
import { insertMirror, migrateCatalog } from '../../src/catalog/sql.js';
import { exactStatements } from '../../src/worker/batch-sql.js';
import type { Change, SourceTransaction, TargetTable } from '../../src/worker/changes.js';
import type { TupleValue } from '../../src/worker/decode.js';
import { Sink } from '../../src/worker/sink.js';
import { TEXT_IO_OPTIONS } from '../../src/worker/stream.js';

const clusters = useClusters(['pg']);
const DB = 'batchsql';
let db: pg.Client;
/** One Sink for the connection, as in the worker (its prepared statement names are per connection). */
let sink: Sink;

beforeAll(async () => {
  await clusters.pg.createDatabase(DB);
  db = new pg.Client({
    connectionString: clusters.pg.url(DB),
    options: `${TEXT_IO_OPTIONS} -c session_replication_role=replica`,
  });
  await db.connect();
  await migrateCatalog(db);
  sink = new Sink(db, 'm');
  await insertMirror(db, {
    name: 'm',
    sourcePeer: 'prod',
    project: 'default',
    settings: { mode: 'async', paused: false } as never,
    configHash: 'x',
    slot: 's',
    publication: 'p',
  });
  await db.query(`UPDATE mirrors.mirrors SET phase = 'ready' WHERE name = 'm'`);
});
afterAll(async () => {
  await db?.end();
});

const U = undefined;
let lsn = 0x1000n;

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
const ins = (t: TargetTable, row: TupleValue[]): Change => ({ op: 'insert', table: t, row });
const upd = (t: TargetTable, row: TupleValue[], old?: TupleValue[], oldIsFull = false): Change => ({
  op: 'update',
  table: t,
  row,
  old,
  oldIsFull,
});
const del = (t: TargetTable, old: TupleValue[], oldIsFull = false): Change => ({
  op: 'delete',
  table: t,
  old,
  oldIsFull,
});
const keyOf = (t: TargetTable, row: TupleValue[]) => row.map((v, i) => (t.key.includes(i) ? v : undefined));

function txns(...groups: Change[][]): SourceTransaction[] {
  return groups.map((changes) => {
    lsn += 0x100n;
    return {
      finalLsn: lsn,
      endLsn: lsn + 0x28n,
      commitTime: '2026-01-01T00:00:00.000000Z',
      commitTimeMs: Date.parse('2026-01-01T00:00:00Z'),
      changes,
    };
  });
}

/** `ddl` creates table NAME (the placeholder) and seeds it; returns the rows of `select` after the batch. */
async function viaSink(ddl: string, t: TargetTable, batch: (t: TargetTable) => SourceTransaction[], select: string) {
  await db.query(ddl.replaceAll('NAME', t.name));
  // The sink applies only to tables the catalog says are ready, with the snapshot LSN it was decoded against.
  await db.query(
    `INSERT INTO mirrors.tables (mirror, dest_schema, dest_table, source_schema, source_table, state, snapshot_lsn) VALUES ('m', 'public', $1, 'public', $1, 'ready', '0/1')
     ON CONFLICT DO NOTHING`,
    [t.name],
  );
  const r = await sink.applyBatch(batch(t), 0);
  return {
    rows: (await db.query(select.replaceAll('NAME', t.name))).rows,
    exactOrder: r.exactOrder,
    missingRows: r.missingRows,
  };
}
async function viaExact(ddl: string, t: TargetTable, batch: (t: TargetTable) => SourceTransaction[], select: string) {
  await db.query(ddl.replaceAll('NAME', t.name));
  await db.query('BEGIN');
  try {
    for (const s of exactStatements(batch(t).flatMap((x) => x.changes))) await db.query(s.text, s.values);
    await db.query('COMMIT');
  } catch (e) {
    await db.query('ROLLBACK');
    throw e;
  }
  return (await db.query(select.replaceAll('NAME', t.name))).rows;
}

const BIG = 'x'.repeat(200_000);
const TOAST_COLS: [string, string][] = [
  ['id', 'integer'],
  ['v', 'text'],
  ['doc', 'text'],
];
const TOAST_DDL = `CREATE TABLE NAME (id int PRIMARY KEY, v text, doc text); INSERT INTO NAME VALUES (1, 'v1', repeat('x', 200000))`;
const TOAST_SELECT = `SELECT id, v, length(doc) AS doc FROM NAME ORDER BY id`;

describe('batch SQL on a real Postgres', () => {
  it('a row updated (TOAST unchanged) and then moved to a new key in the same batch keeps its TOAST value', async () => {
    const batch = (t: TargetTable) => txns([upd(t, ['1', 'v2', U])], [upd(t, ['10', 'v2', U], keyOf(t, ['1', U, U]))]);
    const want = [{ id: 10, v: 'v2', doc: BIG.length }];
    expect(await viaExact(TOAST_DDL, table('toast_exact', TOAST_COLS, [0]), batch, TOAST_SELECT)).toEqual(want);
    // Set-based coalescing produced DELETE id=1 + UPDATE id=10: the row vanished.
    expect((await viaSink(TOAST_DDL, table('toast_sink', TOAST_COLS, [0]), batch, TOAST_SELECT)).rows).toEqual(want);
  });

  it('insert, partial update, delete and reinsert of keys coalesce to the source state', async () => {
    const batch = (t: TargetTable) =>
      txns(
        [ins(t, ['2', 'a', 'd2']), upd(t, ['2', 'b', U])],
        [del(t, keyOf(t, ['1', U, U])), ins(t, ['1', 'again', 'd1'])],
        [upd(t, ['3', 'b', U], keyOf(t, ['2', U, U]))],
        [ins(t, ['4', 'gone', 'x']), del(t, keyOf(t, ['4', U, U]))],
      );
    const want = [
      { id: 1, v: 'again', doc: 2 },
      { id: 3, v: 'b', doc: 2 },
    ];
    expect(await viaExact(TOAST_DDL, table('mix_exact', TOAST_COLS, [0]), batch, TOAST_SELECT)).toEqual(want);
    const r = await viaSink(TOAST_DDL, table('mix_sink', TOAST_COLS, [0]), batch, TOAST_SELECT);
    expect(r.rows).toEqual(want);
    expect(r.exactOrder).toBe(false);
  });

  it('a unique value swapped across rows falls back to exact order and ends like the source', async () => {
    const cols: [string, string][] = [
      ['id', 'integer'],
      ['email', 'text'],
    ];
    const ddl = `CREATE TABLE NAME (id int PRIMARY KEY, email text UNIQUE); INSERT INTO NAME VALUES (1, 'a'), (2, 'b')`;
    const batch = (t: TargetTable) => txns([upd(t, ['1', 'tmp']), upd(t, ['2', 'a']), upd(t, ['1', 'b'])]);
    const r = await viaSink(ddl, table('swap', cols, [0]), batch, 'SELECT * FROM NAME ORDER BY id');
    expect(r.rows).toEqual([
      { id: 1, email: 'b' },
      { id: 2, email: 'a' },
    ]);
    expect(r.exactOrder).toBe(true);
  });

  it('values that need quoting inside the text[] parameters arrive unchanged', async () => {
    const cols: [string, string][] = [
      ['id', 'integer'],
      ['v', 'text'],
      ['a', 'integer[]'],
      ['j', 'jsonb'],
    ];
    const ddl = `CREATE TABLE NAME (id int PRIMARY KEY, v text, a int[], j jsonb)`;
    const vals = ['NULL', '', 'a,b', '{x}', '"q"', '\\', "it's", 'ä€😀', ' lead', 'trail ', null];
    const batch = (t: TargetTable) => txns(vals.map((v, i) => ins(t, [String(i), v, '{1,2}', '{"k": "v"}'])));
    const r = await viaSink(
      ddl,
      table('quoting', cols, [0]),
      batch,
      'SELECT id, v, a::text AS a, j::text AS j FROM NAME ORDER BY id',
    );
    expect(r.rows.map((x) => x.v)).toEqual(vals);
    expect(r.rows.every((x) => x.a === '{1,2}' && x.j === '{"k": "v"}')).toBe(true);
  });

  it('inlined values arrive unchanged even in a session with standard_conforming_strings off', async () => {
    const vals = ['back\\slash', "it's", "\\'", "E'x'", '$$', '"q"', null];
    await db.query('SET standard_conforming_strings = off');
    try {
      const t = table(
        'nonconforming',
        [
          ['id', 'integer'],
          ['v', 'text'],
        ],
        [0],
      );
      const r = await viaSink(
        `CREATE TABLE NAME (id int PRIMARY KEY, v text)`,
        t,
        (t) => txns(vals.map((v, i) => ins(t, [String(i), v]))),
        'SELECT v FROM NAME ORDER BY id',
      );
      expect(r.exactOrder).toBe(false);
      expect(r.rows.map((x) => x.v)).toEqual(vals);
    } finally {
      await db.query('SET standard_conforming_strings = on');
    }
  });

  it('counts exact-order updates and deletes that find no row (the destination differs from the source)', async () => {
    const cols: [string, string][] = [
      ['a', 'integer'],
      ['v', 'text'],
    ];
    const ddl = `CREATE TABLE NAME (a int, v text); INSERT INTO NAME VALUES (1, 'x')`;
    const batch = (t: TargetTable) =>
      txns([
        upd(t, ['1', 'y'], ['1', 'x'], true),
        upd(t, ['2', 'y'], ['2', 'gone'], true),
        del(t, ['3', 'gone'], true),
      ]);
    const r = await viaSink(ddl, table('missing_rows', cols, []), batch, 'SELECT * FROM NAME');
    expect(r.rows).toEqual([{ a: 1, v: 'y' }]);
    expect(r.exactOrder).toBe(true);
    expect(r.missingRows).toBe(2);
  });

  it('a truncate between changes of one table is a barrier', async () => {
    const cols: [string, string][] = [
      ['id', 'integer'],
      ['v', 'text'],
    ];
    const ddl = `CREATE TABLE NAME (id int PRIMARY KEY, v text); INSERT INTO NAME VALUES (1, 'old'), (5, 'old')`;
    const batch = (t: TargetTable) =>
      txns([ins(t, ['2', 'x'])], [{ op: 'truncate', tables: [t] }, ins(t, ['1', 'new'])], [upd(t, ['1', 'newer'])]);
    const r = await viaSink(ddl, table('trunc', cols, [0]), batch, 'SELECT * FROM NAME ORDER BY id');
    expect(r.rows).toEqual([{ id: 1, v: 'newer' }]);
  });

  it('REPLICA IDENTITY FULL rows are found even when a column type prints differently through ::text', async () => {
    // pgoutput sends boolout ('t'), bpchar with its padding, inet without /32; on the destination bool::text is
    // 'true', bpchar::text is trimmed and inet::text has /32. A raw text comparison matches no row.
    const cols: [string, string][] = [
      ['b', 'boolean'],
      ['c', 'character(5)'],
      ['ip', 'inet'],
      ['n', 'integer'],
    ];
    const ddl = `CREATE TABLE NAME (b boolean, c char(5), ip inet, n int); INSERT INTO NAME VALUES (true, 'ab', '10.0.0.1', 1), (false, 'cd', '10.0.0.2', 2)`;
    const batch = (t: TargetTable) =>
      txns(
        [upd(t, ['t', 'ab   ', '10.0.0.1', '11'], ['t', 'ab   ', '10.0.0.1', '1'], true)],
        [del(t, ['f', 'cd   ', '10.0.0.2', '2'], true)],
      );
    const want = [{ b: true, c: 'ab   ', ip: '10.0.0.1', n: 11 }];
    const select = 'SELECT b, c, host(ip) AS ip, n FROM NAME ORDER BY n';
    expect(await viaExact(ddl, table('full_exact', cols, []), batch, select)).toEqual(want);
    const r = await viaSink(ddl, table('full_sink', cols, []), batch, select);
    expect(r.rows).toEqual(want);
    expect(r.exactOrder).toBe(true);
  });

  it('REPLICA IDENTITY FULL matching parses with every spelling format_type gives', async () => {
    const types: [string, string, string][] = [
      ['ts', 'timestamp(3) with time zone', '2026-01-02 03:04:05.123+00'],
      ['iv', 'interval year to month', '1 year 2 mons'],
      ['vb', 'bit varying(5)', '101'],
      ['ch', '"char"', 'x'],
      ['va', 'character varying(10)[]', '{a,"b c"}'],
      ['dp', 'double precision', '0.1'],
      ['tm', 'time(2) without time zone', '01:02:03.45'],
      ['nu', 'numeric(10,3)', '1.500'],
    ];
    const cols: [string, string][] = types.map(([c, t]) => [c, t]);
    // A FULL-identity delete matched through every type: the casts in the WHERE clause must parse and match.
    await db.query(`CREATE TABLE full_types (${types.map(([c, t]) => `${c} ${t}`).join(', ')})`);
    await db.query(
      `INSERT INTO full_types VALUES (${types.map((_, i) => `$${i + 1}`).join(', ')})`,
      types.map((x) => x[2]),
    );
    const t = table('full_types', cols, []);
    await db.query(
      `INSERT INTO mirrors.tables (mirror, dest_schema, dest_table, source_schema, source_table, state, snapshot_lsn) VALUES ('m', 'public', 'full_types', 'public', 'full_types', 'ready', '0/1')`,
    );
    await sink.applyBatch(
      txns([
        del(
          t,
          types.map((x) => x[2]),
          true,
        ),
      ]),
      0,
    );
    expect((await db.query('SELECT count(*)::int AS n FROM full_types')).rows[0].n).toBe(0);
  });

  it('REPLICA IDENTITY USING INDEX without a matching unique index on the destination still applies (exact order)', async () => {
    // What `mirrors apply` creates for a source with PRIMARY KEY (id) and REPLICA IDENTITY USING INDEX on
    // UNIQUE (code): createTableSql adds only the primary key, and postSnapshot skips the identity index.
    // ON CONFLICT (code) then fails with 42P10, which is not "order sensitive": the batch failed forever.
    const cols: [string, string][] = [
      ['id', 'integer'],
      ['code', 'text'],
      ['v', 'text'],
    ];
    const ddl = `CREATE TABLE NAME (id int PRIMARY KEY, code text NOT NULL, v text); INSERT INTO NAME VALUES (1, 'a', 'old')`;
    const batch = (t: TargetTable) => txns([ins(t, ['2', 'b', 'new'])], [upd(t, ['1', 'a', 'changed'])]);
    const r = await viaSink(ddl, table('ident_idx', cols, [1]), batch, 'SELECT * FROM NAME ORDER BY id');
    expect(r.rows).toEqual([
      { id: 1, code: 'a', v: 'changed' },
      { id: 2, code: 'b', v: 'new' },
    ]);
  });

  it('a destination whose key constraint is DEFERRABLE (no ON CONFLICT arbiter) still applies (exact order)', async () => {
    const cols: [string, string][] = [
      ['id', 'integer'],
      ['v', 'text'],
    ];
    const ddl = `CREATE TABLE NAME (id int PRIMARY KEY DEFERRABLE, v text); INSERT INTO NAME VALUES (1, 'old')`;
    const batch = (t: TargetTable) => txns([ins(t, ['2', 'new'])], [upd(t, ['1', 'changed'])]);
    const r = await viaSink(ddl, table('deferred_pk', cols, [0]), batch, 'SELECT * FROM NAME ORDER BY id');
    expect(r.rows).toEqual([
      { id: 1, v: 'changed' },
      { id: 2, v: 'new' },
    ]);
    expect(r.exactOrder).toBe(true);
  });

  it('the position commits with the batch', async () => {
    const cols: [string, string][] = [['id', 'integer']];
    await viaSink(
      'CREATE TABLE NAME (id int PRIMARY KEY)',
      table('pos', cols, [0]),
      (t) => txns([ins(t, ['1'])]),
      'SELECT 1',
    );
    const [{ l }] = (await db.query(`SELECT last_applied_lsn::text AS l FROM mirrors.mirrors WHERE name = 'm'`)).rows;
    expect(l).toBe(`0/${(lsn + 0x28n).toString(16).toUpperCase()}`);
  });
});

describe('the sink checks the catalog under a share lock', () => {
  it('abandons a batch for a table that is being copied again, and one decoded against an older snapshot', async () => {
    const t = table('guarded', [['id', 'integer']], [0]);
    await db.query(`CREATE TABLE guarded (id int PRIMARY KEY)`);
    await db.query(
      `INSERT INTO mirrors.tables (mirror, dest_schema, dest_table, source_schema, source_table, state, snapshot_lsn) VALUES ('m', 'public', 'guarded', 'public', 'guarded', 'copying', NULL)`,
    );
    await expect(sink.applyBatch(txns([ins(t, ['1'])]), 0)).rejects.toThrow(
      /public\.guarded changed in the catalog \(state copying\)/,
    );
    await db.query(`UPDATE mirrors.tables SET state = 'ready', snapshot_lsn = '0/2' WHERE dest_table = 'guarded'`);
    await expect(sink.applyBatch(txns([ins(t, ['1'])]), 0)).rejects.toThrow(/changed in the catalog \(state ready\)/);
    expect((await db.query('SELECT count(*)::int AS n FROM guarded')).rows[0].n).toBe(0);
    await db.query(`UPDATE mirrors.tables SET snapshot_lsn = '0/1' WHERE dest_table = 'guarded'`);
    await sink.applyBatch(txns([ins(t, ['1'])]), 0);
    expect((await db.query('SELECT count(*)::int AS n FROM guarded')).rows[0].n).toBe(1);
  });
});
