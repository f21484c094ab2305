/**
 * The snapshot copier against real clusters: the copy equals the source as of the exported snapshot
 * (compared by content, never by counts alone), whatever the split, the identifiers or the types; a failure
 * stops everything and leaves no connection behind.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  copyTables,
  SNAPSHOT_APPLICATION_NAME,
  type CopyOptions,
  type CopyProgress,
} from '../../src/apply/copy/index.js';
import type { Peer } from '../../src/config/types.js';
import type { Cluster } from '../../src/devtools/cluster.js';
import { quoteQualified } from '../../src/db/quote.js';
import type { TableSpec } from '../../src/plan/types.js';
import { useClusters } from '../support/clusters.js';

const pgc = useClusters(['src', 'dst']);

// ---------------------------------------------------------------------------------------------------------
// Helpers

function peerOf(c: Cluster, database: string): Peer {
  const p: Peer = { name: c.name, host: '127.0.0.1', port: c.port, database, user: 'postgres', sslmode: 'disable' };
  Object.defineProperty(p, 'password', { value: 'postgres', enumerable: false });
  return p;
}

async function createDb(db: string, ddl: string): Promise<void> {
  await pgc.src.createDatabase(db);
  await pgc.dst.createDatabase(db);
  await pgc.src.query(ddl, [], db);
  await pgc.dst.query(ddl, [], db);
}

/** A TableSpec as the planner would make it, from the source catalog. */
async function specFor(db: string, schema: string, name: string, over: Partial<TableSpec> = {}): Promise<TableSpec> {
  const columns = await pgc.src.query<{ name: string; type: string; not_null: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [quoteQualified(schema, name)],
    db,
  );
  return {
    source: { schema, name },
    destination: { schema, name },
    columns,
    primary_key: [],
    exclude_columns: [],
    partition_key: null,
    estimated_rows: '-1',
    size_bytes: '0',
    ...over,
  };
}

let slotCounter = 0;

/** A temporary slot exporting a snapshot; the replication connection stays open until close(). */
async function exportSnapshot(db: string): Promise<{ name: string; close(): Promise<void> }> {
  const repl = new pg.Client({ connectionString: pgc.src.url(db), replication: 'database' } as pg.ClientConfig);
  repl.on('error', () => {});
  await repl.connect();
  const res = await repl.query(
    `CREATE_REPLICATION_SLOT copy_test_${++slotCounter} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')`,
  );
  return { name: res.rows[0].snapshot_name, close: () => repl.end() };
}

/** Every row's text, sorted: equal digests mean equal contents. */
async function digest(c: Cluster, db: string, schema: string, name: string): Promise<{ n: number; md5: string }> {
  const [row] = await c.query<{ n: number; md5: string }>(
    `SELECT count(*)::int AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS md5 FROM ${quoteQualified(schema, name)} x`,
    [],
    db,
  );
  return row;
}

async function expectSameContents(db: string, schema: string, name: string, expectedRows?: number): Promise<void> {
  const [a, b] = await Promise.all([digest(pgc.src, db, schema, name), digest(pgc.dst, db, schema, name)]);
  expect(b, `${schema}.${name}`).toEqual(a);
  if (expectedRows !== undefined) expect(a.n).toBe(expectedRows);
}

async function snapshotBackends(c: Cluster): Promise<number> {
  const [row] = await c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`,
    [SNAPSHOT_APPLICATION_NAME],
  );
  return row.n;
}

/** Backends exit a moment after their socket closes: poll briefly. */
async function expectNoSnapshotBackends(): Promise<void> {
  const deadline = Date.now() + 5000;
  let counts: number[] = [];
  while (Date.now() < deadline) {
    counts = await Promise.all([snapshotBackends(pgc.src), snapshotBackends(pgc.dst)]);
    if (counts.every((n) => n === 0)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(counts).toEqual([0, 0]);
}

/** Rows of `sql` in a session first set up by `setup`. */
async function rowsWith(c: Cluster, db: string, setup: string, sql: string): Promise<any[]> {
  const client = new pg.Client({ connectionString: c.url(db) });
  await client.connect();
  try {
    await client.query(setup);
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

interface Recorded {
  starts: Map<string, number>;
  done: Map<string, { rows: number; bytes: number }>;
  progress: CopyProgress[];
}

async function copy(
  db: string,
  tables: TableSpec[],
  over: Partial<CopyOptions> & { snapshotName: string },
): Promise<Recorded> {
  const rec: Recorded = { starts: new Map(), done: new Map(), progress: [] };
  await copyTables({
    source: peerOf(pgc.src, db),
    destination: peerOf(pgc.dst, db),
    tables,
    tablesInParallel: 2,
    maxWorkers: 4,
    rowsPerPartition: 20_000,
    onTableStart: (t, parts) => void rec.starts.set(t.destination.name, parts),
    onProgress: (p) => void rec.progress.push(p),
    onTableDone: async (t, rows, bytes) => void rec.done.set(t.destination.name, { rows, bytes }),
    ...over,
  });
  return rec;
}

function lastProgress(rec: Recorded, table: string): CopyProgress | undefined {
  return rec.progress.filter((p) => p.table.destination.name === table).at(-1);
}

// ---------------------------------------------------------------------------------------------------------

describe('snapshot copy', () => {
  it('copies the source as of the exported snapshot while others write to it', async () => {
    const db = 'consistency';
    await createDb(
      db,
      `CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL, pad text);
       CREATE TABLE keyed (id bigint PRIMARY KEY, v int NOT NULL, pad text);`,
    );
    await pgc.src.query(
      `INSERT INTO big SELECT g, g, md5(g::text) FROM generate_series(1, 200000) g;
       INSERT INTO keyed SELECT g, g, md5(g::text) FROM generate_series(1, 200000) g;
       ANALYZE big; ANALYZE keyed;`,
      [],
      db,
    );
    const snap = await exportSnapshot(db);
    const expected = {
      big: await digest(pgc.src, db, 'public', 'big'),
      keyed: await digest(pgc.src, db, 'public', 'keyed'),
    };

    // Another session changes every part of both tables, before and during the copy.
    const writer = new pg.Client({ connectionString: pgc.src.url(db) });
    await writer.connect();
    let writing = true;
    let writes = 0;
    const write = async () => {
      const id = 1 + Math.floor(Math.random() * 200000);
      await writer.query(
        `BEGIN;
         UPDATE big SET v = -v, pad = 'changed' WHERE id = ${id};
         DELETE FROM big WHERE id = ${id + 1};
         INSERT INTO big VALUES (${1_000_000 + writes}, 0, 'new') ON CONFLICT DO NOTHING;
         UPDATE keyed SET v = -v WHERE id = ${id};
         DELETE FROM keyed WHERE id = ${id + 1};
         INSERT INTO keyed VALUES (${1_000_000 + writes}, 0, 'new'), (${-1 - writes}, 0, 'new') ON CONFLICT DO NOTHING;
         COMMIT`,
      );
      writes++;
    };
    for (let i = 0; i < 20; i++) await write();
    const writing$ = (async () => {
      while (writing) await write();
    })();
    let maxSeen = 0;
    /** Most destination COPYs of one table seen at once while the other table had one running too. */
    let maxSharing = 0;
    const sampling$ = (async () => {
      while (writing) {
        maxSeen = Math.max(maxSeen, await snapshotBackends(pgc.src));
        const [c] = await pgc.dst.query<{ big: number; keyed: number }>(
          `SELECT count(*) FILTER (WHERE query ~ '\\mbig\\M')::int AS big, count(*) FILTER (WHERE query ~ '\\mkeyed\\M')::int AS keyed
             FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'COPY %'`,
          [SNAPSHOT_APPLICATION_NAME],
        );
        if (c.big > 0 && c.keyed > 0) maxSharing = Math.max(maxSharing, c.big, c.keyed);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    let rec: Recorded;
    try {
      rec = await copy(
        db,
        [
          await specFor(db, 'public', 'big', { estimated_rows: '200000' }),
          await specFor(db, 'public', 'keyed', { estimated_rows: '200000', partition_key: 'id' }),
        ],
        {
          snapshotName: snap.name,
          rowsPerPartition: 20_000,
          maxWorkers: 4,
        },
      );
    } finally {
      writing = false;
      await writing$;
      await sampling$;
      await writer.end();
      await snap.close();
    }

    expect(writes).toBeGreaterThan(20);
    expect(await digest(pgc.dst, db, 'public', 'big')).toEqual(expected.big);
    expect(await digest(pgc.dst, db, 'public', 'keyed')).toEqual(expected.keyed);
    expect(await digest(pgc.src, db, 'public', 'big')).not.toEqual(expected.big);
    expect(await digest(pgc.src, db, 'public', 'keyed')).not.toEqual(expected.keyed);
    expect(expected.big.n).toBe(200000);

    expect(rec.starts.get('big')).toBeGreaterThanOrEqual(8); // ctid block ranges
    expect(rec.starts.get('keyed')).toBe(10); // id ranges, NOT NULL: no NULL part
    expect(rec.done.get('big')).toEqual({ rows: 200000, bytes: expect.any(Number) });
    expect(rec.done.get('keyed')?.rows).toBe(200000);
    const last = lastProgress(rec, 'big')!;
    expect(last).toMatchObject({
      rowsDone: 200000,
      partsDone: rec.starts.get('big'),
      partsTotal: rec.starts.get('big'),
    });
    expect(last.bytesDone).toBe(rec.done.get('big')!.bytes);
    expect(last.bytesTotal).toBe(last.bytesDone);
    expect(maxSeen).toBeLessThanOrEqual(4);
    // While both tables are being copied each gets half of the 4 workers (parts of one table contend).
    expect(maxSharing).toBeGreaterThan(0);
    expect(maxSharing).toBeLessThanOrEqual(2);
    await expectNoSnapshotBackends();
  });

  it('splits by bigint key (NULLs included), text key (ntile), ctid blocks and leaf partitions', async () => {
    const db = 'splits';
    await createDb(
      db,
      `CREATE TABLE nk (id int, k bigint, v text);
       CREATE TABLE tk (name text PRIMARY KEY, v int);
       CREATE TABLE dup (k text, v int);
       CREATE TABLE blocks (id int, v text);
       CREATE TABLE empty_t (id int PRIMARY KEY, v text);`,
    );
    await pgc.src.query(
      `CREATE TABLE pt (id bigint NOT NULL, region int NOT NULL, v text) PARTITION BY RANGE (id);
       CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (10000);
       CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (10000) TO (100000);
       CREATE TABLE pt_3 PARTITION OF pt FOR VALUES FROM (100000) TO (MAXVALUE) PARTITION BY LIST (region);
       CREATE TABLE pt_3_a PARTITION OF pt_3 DEFAULT;
       INSERT INTO pt SELECT g, g % 5, 'p' || g FROM generate_series(0, 100099) g;
       INSERT INTO nk SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE g * 3 - 1000 END, 'n' || g FROM generate_series(1, 50000) g;
       INSERT INTO tk SELECT md5(g::text), g FROM generate_series(1, 30000) g;
       INSERT INTO dup SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 3)::text END, g FROM generate_series(1, 30000) g;
       INSERT INTO blocks SELECT g, repeat('x', g % 50) FROM generate_series(1, 50000) g;
       ANALYZE;`,
      [],
      db,
    );
    await pgc.dst.query(
      `CREATE TABLE pt (id bigint NOT NULL, region int NOT NULL, v text); INSERT INTO empty_t VALUES (1, 'stale')`,
      [],
      db,
    );
    const snap = await exportSnapshot(db);
    let rec: Recorded;
    try {
      rec = await copy(
        db,
        [
          await specFor(db, 'public', 'nk', { estimated_rows: '50000', partition_key: 'k' }),
          await specFor(db, 'public', 'tk', { estimated_rows: '30000', partition_key: 'name' }),
          await specFor(db, 'public', 'dup', { estimated_rows: '30000', partition_key: 'k' }),
          await specFor(db, 'public', 'blocks', { estimated_rows: '50000' }),
          await specFor(db, 'public', 'empty_t', { estimated_rows: '0' }),
          await specFor(db, 'public', 'pt', { estimated_rows: '100100' }),
        ],
        { snapshotName: snap.name, rowsPerPartition: 5000, maxWorkers: 3, tablesInParallel: 3 },
      );
    } finally {
      await snap.close();
    }
    await expectSameContents(db, 'public', 'nk', 50000);
    await expectSameContents(db, 'public', 'tk', 30000);
    await expectSameContents(db, 'public', 'dup', 30000);
    await expectSameContents(db, 'public', 'blocks', 50000);
    await expectSameContents(db, 'public', 'empty_t', 0);
    await expectSameContents(db, 'public', 'pt', 100100);

    expect(rec.starts.get('nk')).toBe(11); // 10 key ranges + the NULL part
    expect(rec.starts.get('tk')).toBe(6);
    expect(rec.starts.get('dup')).toBe(5); // 3 distinct values: bounds '0','1','2' (deduplicated), 4 ranges + the NULL part
    expect(rec.starts.get('blocks')).toBeGreaterThanOrEqual(5);
    expect(rec.starts.get('empty_t')).toBe(1);
    // pt_1 (10,000 rows) ~2 parts, pt_2 (90,000) ~18, pt_3_a (100) 1.
    expect(rec.starts.get('pt')).toBeGreaterThanOrEqual(15);
    expect(rec.done.get('empty_t')).toEqual({ rows: 0, bytes: 0 });
    expect(rec.done.get('pt')?.rows).toBe(100100);
    await expectNoSnapshotBackends();
  });

  it('round-trips quoted identifiers and every kind of value exactly', async () => {
    const db = 'types';
    await createDb(
      db,
      `CREATE SCHEMA "Odd Schema";
       CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy ''quoted''');
       CREATE TABLE "Odd Schema"."Odd ""Name""" ("Mixed Case" int PRIMARY KEY, "select" text, "a,b" text);
       CREATE TABLE typed (id int PRIMARY KEY, n numeric, nn numeric(30,6), j jsonb, ia int[], ta text[], b bytea,
                           ts timestamptz, m mood, t text, f float8, r real, iv interval, u uuid, d date, x xml, mo money);`,
    );
    await pgc.src.query(
      `INSERT INTO "Odd Schema"."Odd ""Name""" SELECT g, 'row ' || g, E'tab\\there' FROM generate_series(1, 3000) g;
       INSERT INTO typed VALUES
        (1, 'NaN', 123456789012345678901234.123456, '{"a":[1,2,{"b":null}],"c":"\\u00e9\\t\\n","d":1.000000000000000000001}',
         '{1,NULL,3}', '{"a b","c,d","e\\"f",NULL,"NULL","\\\\back"}',
         (SELECT decode(string_agg(lpad(to_hex(g), 2, '0'), ''), 'hex') FROM generate_series(0, 255) g),
         '2024-02-29 23:59:59.123456+05:30', 'happy ''quoted''', E'tab\\tnl\\nbs\\\\cr\\r é 漢 \\x01', 1/3::float8, 0.1::real,
         '1 year 2 mons -3 days 04:05:06.789012', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '0044-03-15 BC', '<a>1</a>text', 1234.56),
        (2, '-0.000001', -1, '[]', '{}', '{}', '\\x', 'infinity', 'sad', '', '-0', 'Infinity', '-178000000 years', NULL, 'infinity', 'plain', -0.01),
        (3, '1e-300', NULL, 'null', '{{1,2},{3,4}}', '{""}', '\\x00', '1999-12-31 23:59:59.999999-12', 'ok', '\\N', 1e-300, 'NaN', '0', NULL, '2000-01-01', NULL, NULL),
        (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
       INSERT INTO typed SELECT g, g / 7.0, g, jsonb_build_object('g', g), ARRAY[g, -g], ARRAY[g::text], int4send(g), now() - g * interval '1.000001 s',
                                'ok', repeat('z', g), g / 3.0, g, g * interval '1 minute', gen_random_uuid(), current_date - g, NULL, g
         FROM generate_series(5, 40) g;
       ANALYZE;`,
      [],
      db,
    );
    await pgc.dst.query(`CREATE TABLE typed2 (LIKE typed); CREATE TABLE typed3 (LIKE typed)`, [], db);
    // Each side has its own odd defaults (dates printed day first and read month first, lossy floats,
    // escape-format bytea, intervals that only parse back under the same style): the copy must depend on neither.
    await pgc.src.query(
      `ALTER DATABASE types SET DateStyle = 'SQL, DMY'; ALTER DATABASE types SET TimeZone = 'Asia/Kolkata';
       ALTER DATABASE types SET IntervalStyle = 'sql_standard'; ALTER DATABASE types SET extra_float_digits = -3;
       ALTER DATABASE types SET bytea_output = 'escape'`,
    );
    await pgc.dst.query(
      `ALTER DATABASE types SET DateStyle = 'SQL, MDY'; ALTER DATABASE types SET TimeZone = 'America/Sao_Paulo';
       ALTER DATABASE types SET IntervalStyle = 'postgres'`,
    );
    const snap = await exportSnapshot(db);
    let rec: Recorded;
    try {
      rec = await copy(
        db,
        [
          await specFor(db, 'Odd Schema', 'Odd "Name"', { estimated_rows: '3000', partition_key: 'Mixed Case' }),
          await specFor(db, 'public', 'typed', { estimated_rows: '4000' }),
          await specFor(db, 'public', 'typed', { estimated_rows: '4000', partition_key: 'ts' }),
          // Without the enum column every type is built in: COPY's binary format.
          await specFor(db, 'public', 'typed', { estimated_rows: '4000', exclude_columns: ['m'] }),
        ].map((s, i) =>
          i === 2
            ? { ...s, destination: { schema: 'public', name: 'typed2' } }
            : i === 3
              ? {
                  ...s,
                  columns: s.columns.filter((c) => c.name !== 'm'),
                  destination: { schema: 'public', name: 'typed3' },
                }
              : s,
        ),
        { snapshotName: snap.name, rowsPerPartition: 1000, tablesInParallel: 1 },
      );
    } finally {
      await snap.close();
    }
    expect(rec.starts.get('Odd "Name"')).toBe(3);
    await expectSameContents(db, 'Odd Schema', 'Odd "Name"', 3000);
    // Compare in one session setting, value by value in their text form and binary-exact where it matters.
    // (Not `x`: an unqualified name is a column first, and typed has a column x.)
    const dump = `SELECT tbl::text AS row, md5(b) AS b, f::text AS f, ts::text AS ts FROM typed tbl ORDER BY id`;
    const reset = `SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 1; SET bytea_output = hex;`;
    const srcRows = await rowsWith(pgc.src, db, reset, dump);
    expect(srcRows).toHaveLength(40);
    expect(srcRows[0].ts).toBe('2024-02-29 18:29:59.123456+00');
    expect(srcRows[0].f).toBe('0.3333333333333333');
    expect(await rowsWith(pgc.dst, db, reset, dump)).toEqual(srcRows);
    expect(await rowsWith(pgc.dst, db, reset, dump.replace('FROM typed tbl', 'FROM typed2 tbl'))).toEqual(srcRows);
    expect(rec.starts.get('typed2')).toBe(5); // 4 timestamptz ranges + the NULL part
    expect(rec.done.get('typed2')?.rows).toBe(40);
    const noEnum = dump.replace(
      'tbl::text AS row',
      'ROW(id, n, nn, j, ia, ta, b, ts, t, f, r, iv, u, d, x, mo)::text AS row',
    );
    const srcNoEnum = await rowsWith(pgc.src, db, reset, noEnum);
    expect(srcNoEnum[0].row).toContain('漢');
    expect(await rowsWith(pgc.dst, db, reset, noEnum.replace('FROM typed tbl', 'FROM typed3 tbl'))).toEqual(srcNoEnum);
    // Binary and text COPY of the same values differ in size: each format was used where expected.
    expect(rec.done.get('typed3')?.rows).toBe(40);
    expect(rec.done.get('typed3')?.bytes).not.toBe(rec.done.get('typed')?.bytes);
  });

  it('uses the binary format only where both sides have the same built-in types', async () => {
    const db = 'formats';
    await pgc.src.createDatabase(db);
    await pgc.dst.createDatabase(db);
    const common = `CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN pos AS int CHECK (VALUE > 0);
       CREATE TABLE same (id int); CREATE TABLE reg (id int, r regclass); CREATE TABLE enums (id int, m mood[]); CREATE TABLE dom (id pos);`;
    await pgc.src.query(`${common} CREATE TABLE widened (id int);`, [], db);
    await pgc.dst.query(`${common} CREATE TABLE widened (id bigint);`, [], db);
    await pgc.src.query(
      `INSERT INTO same VALUES (1); INSERT INTO widened VALUES (1); INSERT INTO reg VALUES (1, 'same'); INSERT INTO enums VALUES (1, '{ok}'); INSERT INTO dom VALUES (1); ANALYZE;`,
      [],
      db,
    );
    const tables = ['same', 'widened', 'reg', 'enums', 'dom'];
    const snap = await exportSnapshot(db);
    let rec: Recorded;
    try {
      rec = await copy(db, await Promise.all(tables.map((t) => specFor(db, 'public', t, { estimated_rows: '1' }))), {
        snapshotName: snap.name,
      });
    } finally {
      await snap.close();
    }
    for (const t of tables) await expectSameContents(db, 'public', t, 1);
    // Bytes of COPY data tell the format: binary `1` is a field count, a length and 4 bytes; text is "1\n".
    // A regclass is sent as an OID in binary (another table's on another cluster), an enum array with its type's OID.
    expect(Object.fromEntries(tables.map((t) => [t, rec.done.get(t)]))).toEqual({
      same: { rows: 1, bytes: 10 },
      widened: { rows: 1, bytes: 2 },
      reg: { rows: 1, bytes: '1\tsame\n'.length },
      enums: { rows: 1, bytes: '1\t{ok}\n'.length },
      dom: { rows: 1, bytes: 2 },
    });
  });

  it('empties destination rows left by an interrupted attempt, after onTableStart', async () => {
    const db = 'garbage';
    await createDb(db, `CREATE TABLE g (id int PRIMARY KEY, v text);`);
    await pgc.src.query(`INSERT INTO g SELECT i, 'fresh ' || i FROM generate_series(1, 30000) i; ANALYZE g;`, [], db);
    await pgc.dst.query(
      `INSERT INTO g SELECT i, 'stale' FROM generate_series(1, 500) i UNION ALL SELECT i, 'stale' FROM generate_series(100000, 100100) i`,
      [],
      db,
    );
    const snap = await exportSnapshot(db);
    const seenAtStart: number[] = [];
    try {
      await copy(db, [await specFor(db, 'public', 'g', { estimated_rows: '30000', partition_key: 'id' })], {
        snapshotName: snap.name,
        rowsPerPartition: 5000,
        onTableStart: async () => {
          seenAtStart.push((await pgc.dst.query(`SELECT count(*)::int AS n FROM g`, [], db))[0].n);
        },
      });
    } finally {
      await snap.close();
    }
    expect(seenAtStart).toEqual([601]);
    await expectSameContents(db, 'public', 'g', 30000);
  });

  it('rejects with the original pg error on the first failure and leaves no connection open', async () => {
    const db = 'failure';
    await pgc.src.createDatabase(db);
    await pgc.dst.createDatabase(db);
    const ddl = (vType: string) =>
      `CREATE TABLE bad (id int PRIMARY KEY, v ${vType}); CREATE TABLE other (id int PRIMARY KEY, v text);`;
    await pgc.src.query(ddl('int'), [], db);
    await pgc.dst.query(ddl('smallint'), [], db);
    await pgc.src.query(
      `INSERT INTO bad SELECT g, CASE WHEN g = 20005 THEN 100000 ELSE g % 1000 END FROM generate_series(1, 100000) g;
       INSERT INTO other SELECT g, repeat('o', 200) FROM generate_series(1, 300000) g;
       ANALYZE;`,
      [],
      db,
    );
    const snap = await exportSnapshot(db);
    let error: any;
    try {
      await copy(
        db,
        [
          await specFor(db, 'public', 'other', { estimated_rows: '300000' }),
          await specFor(db, 'public', 'bad', { estimated_rows: '100000', partition_key: 'id' }),
        ],
        { snapshotName: snap.name, rowsPerPartition: 10_000, maxWorkers: 4, tablesInParallel: 2 },
      ).catch((e) => {
        error = e;
      });
    } finally {
      await snap.close();
    }
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect(error).toMatchObject({ code: '22003', where: expect.stringContaining('COPY bad') });
    await expectNoSnapshotBackends();

    // A snapshot whose exporting connection is gone.
    await expect(copy(db, [await specFor(db, 'public', 'other')], { snapshotName: snap.name })).rejects.toMatchObject({
      code: '22023',
    });
    await expectNoSnapshotBackends();
  });

  it('stops on the abort signal, rejecting with its reason, and leaves no connection open', async () => {
    const db = 'abort';
    await createDb(db, `CREATE TABLE a (id int PRIMARY KEY, v text);`);
    await pgc.src.query(
      `INSERT INTO a SELECT g, repeat('a', 300) FROM generate_series(1, 300000) g; ANALYZE a;`,
      [],
      db,
    );
    const snap = await exportSnapshot(db);
    const ac = new AbortController();
    let error: any;
    try {
      await copy(db, [await specFor(db, 'public', 'a', { estimated_rows: '300000' })], {
        snapshotName: snap.name,
        rowsPerPartition: 50_000,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.bytesDone > 1_000_000) ac.abort();
        },
      }).catch((e) => {
        error = e;
      });
    } finally {
      await snap.close();
    }
    expect(error).toBeDefined();
    expect(error.name, String(error?.stack)).toBe('AbortError');
    await expectNoSnapshotBackends();
  });

  it('refuses a malformed snapshot name before connecting', async () => {
    await expect(
      copyTables({
        source: peerOf(pgc.src, 'postgres'),
        destination: peerOf(pgc.dst, 'postgres'),
        snapshotName: "00000003-0000001B-1'; DROP TABLE x; --",
        tables: [],
        tablesInParallel: 1,
        maxWorkers: 1,
        rowsPerPartition: 1,
      }),
    ).rejects.toThrow(/not an exported snapshot name/);
  });

  it('prints its throughput on 1M pgbench_accounts rows next to a psql COPY pipe', async () => {
    const db = 'bench';
    await createDb(db, `CREATE TABLE pgbench_accounts (id int PRIMARY KEY, bid int, abalance int, filler char(84));`);
    await pgc.src.query(
      `INSERT INTO pgbench_accounts SELECT g, (g - 1) / 100000 + 1, 0, '' FROM generate_series(1, 1000000) g`,
      [],
      db,
    );
    await pgc.src.query(`VACUUM ANALYZE pgbench_accounts`, [], db);
    const [{ bytes }] = await pgc.src.query<{ bytes: string }>(
      `SELECT pg_table_size('pgbench_accounts')::text AS bytes`,
      [],
      db,
    );
    const spec = await specFor(db, 'public', 'pgbench_accounts', { estimated_rows: '1000000' });
    const fresh = async () => {
      await pgc.dst.query(`TRUNCATE pgbench_accounts`, [], db);
      await pgc.dst.query(`CHECKPOINT`, [], db);
      await pgc.src.query(`CHECKPOINT`, [], db);
    };
    /** Seconds; the contents are compared after the first run of each variant only (it costs a sort of 1M rows). */
    const timed = async (fn: () => Promise<unknown>, check: boolean) => {
      await fresh();
      const t0 = performance.now();
      await fn();
      const s = (performance.now() - t0) / 1000;
      if (check) await expectSameContents(db, 'public', 'pgbench_accounts', 1_000_000);
      return s;
    };
    const pipe = () =>
      new Promise<void>((resolve, reject) => {
        const sh = spawn(
          'bash',
          [
            '-o',
            'pipefail',
            '-c',
            `/usr/bin/psql "$SRC" -qX -c "COPY public.pgbench_accounts TO STDOUT" | /usr/bin/psql "$DST" -qX -v ON_ERROR_STOP=1 -c "COPY public.pgbench_accounts FROM STDIN"`,
          ],
          { env: { ...process.env, SRC: pgc.src.url(db), DST: pgc.dst.url(db) }, stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let err = '';
        sh.stderr.on('data', (d) => (err += d));
        sh.on('error', reject);
        sh.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql pipe exited ${code}: ${err}`))));
      });
    const mirrors = (maxWorkers: number, rowsPerPartition: number) => async () => {
      const snap = await exportSnapshot(db);
      try {
        await copyTables({
          source: peerOf(pgc.src, db),
          destination: peerOf(pgc.dst, db),
          snapshotName: snap.name,
          tables: [spec],
          tablesInParallel: 1,
          maxWorkers,
          rowsPerPartition,
        });
      } finally {
        await snap.close();
      }
    };
    const variants: [string, () => Promise<unknown>][] = [
      ['psql pipe', pipe],
      ['mirrors, 1 part, 1 worker', mirrors(1, 10_000_000)],
      ['mirrors, 4 parts, 2 workers', mirrors(2, 250_000)],
      ['mirrors, 4 parts, 4 workers', mirrors(4, 250_000)],
    ];
    // The first run pays for new WAL segments and cold caches: not timed. Then best of two interleaved rounds,
    // since other test files may share the machine.
    await timed(pipe, false);
    const results: Record<string, number[]> = {};
    for (let round = 0; round < 2; round++) {
      for (const [name, fn] of variants) (results[name] ??= []).push(await timed(fn, round === 0));
    }
    const mb = Number(bytes) / 1e6;
    console.log(
      `snapshot copy of 1,000,000 pgbench_accounts rows (${mb.toFixed(0)} MB on disk, destination with its primary key), best of 2:\n` +
        Object.entries(results)
          .map(([k, runs]) => [k, Math.min(...runs), runs] as const)
          .map(
            ([k, s, runs]) =>
              `  ${k.padEnd(30)} ${s.toFixed(2)} s  ${(1e6 / s / 1000).toFixed(0)}k rows/s  ${(mb / s).toFixed(0)} MB/s  (runs: ${runs.map((r) => r.toFixed(2)).join(', ')} s)`,
          )
          .join('\n'),
    );
  });
});
