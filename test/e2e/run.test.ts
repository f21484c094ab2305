/**
 * `mirrors run` against real clusters: every DML kind, big and interleaved transactions, crashes,
 * restarts, takeover, the read-only guard and wait-for-LSN. Every check compares full table contents.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { useClusters } from '../support/clusters.js';
import { checkMetrics, promtoolMissing } from '../support/promtool.js';
import { LOAD_TABLES_SQL, LOAD_TABLES_YAML, runningMirrors, writeLoad } from '../support/running-mirror.js';

// synchronous_commit=on: the crash tests must not lose acknowledged commits to the test harness itself.
const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'r');

describe('mirrors run', () => {
  it('applies every DML kind exactly: inserts, updates with key changes, deletes, truncates, FULL identity, renames, excluded columns, unchanged TOAST, types', async () => {
    const m = await mirrorSetup(
      'dml',
      `CREATE TYPE mood AS ENUM ('ok', 'meh');
       CREATE TABLE t (id int PRIMARY KEY, v text, big text, n numeric, j jsonb, a int[], b bytea, ts timestamptz, m mood, secret text);
       ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL; -- stored out of line: an update leaves it unchanged-TOAST
       CREATE TABLE nokey (a int, b text); ALTER TABLE nokey REPLICA IDENTITY FULL;
       CREATE SCHEMA src; CREATE TABLE src.renamed (id int PRIMARY KEY, v text);
       CREATE TABLE trunc (id int PRIMARY KEY);
       CREATE TABLE uniq (id int PRIMARY KEY, email text UNIQUE);
       INSERT INTO uniq VALUES (1, 'a@x'), (2, 'b@x');`,
      `      - { source_table: t, exclude_columns: [secret] }
      - source_table: nokey
      - { source_table: src.renamed, destination_table: public.renamed_dst }
      - source_table: trunc
      - source_table: uniq
`,
    );
    const w = await m.start();
    await w.waitForLog(/streaming from/);
    const bigValue = 'x'.repeat(100_000) + 'end';
    await m.src(
      `INSERT INTO t SELECT g, 'v' || g, CASE WHEN g = 1 THEN $1 END, 1.000000000000000000001 * g, '{"k": [1, {"z": null}]}', ARRAY[g, NULL], '\\x00ff', '2026-01-02 03:04:05.123456+00', 'meh', 'hush' FROM generate_series(1, 50) g`,
      [bigValue],
    );
    await m.src(`UPDATE t SET v = 'updated' WHERE id = 1`); // big unchanged: arrives as unchanged TOAST
    await m.src(`UPDATE t SET id = 1001 WHERE id = 2`); // key change
    await m.src(`DELETE FROM t WHERE id BETWEEN 10 AND 19`);
    await m.src(`INSERT INTO nokey VALUES (1, 'a'), (1, 'a'), (2, NULL)`);
    await m.src(`UPDATE nokey SET b = 'b' WHERE a = 2`);
    await m.src(`DELETE FROM nokey WHERE ctid = (SELECT ctid FROM nokey WHERE a = 1 LIMIT 1)`);
    await m.src(
      `INSERT INTO src.renamed SELECT g, 'r' FROM generate_series(1, 10) g; UPDATE src.renamed SET v = 'rr' WHERE id < 5`,
    );
    await m.src(`INSERT INTO trunc SELECT generate_series(1, 10)`);
    await m.src(`BEGIN; TRUNCATE trunc; INSERT INTO trunc VALUES (42); COMMIT`);
    // A unique value swapped between two rows in one transaction: set-based apply must fall back to source order.
    await m.src(
      `BEGIN; UPDATE uniq SET email = 'tmp' WHERE id = 1; UPDATE uniq SET email = 'a@x' WHERE id = 2; UPDATE uniq SET email = 'b@x' WHERE id = 1; COMMIT`,
    );
    await m.caughtUp();
    await m.expectSame('SELECT id, v, big, n, j, a, b, ts, m FROM t', 'SELECT * FROM t');
    await m.expectSame('SELECT * FROM nokey');
    await m.expectSame('SELECT * FROM src.renamed', 'SELECT * FROM renamed_dst');
    await m.expectSame('SELECT * FROM trunc');
    await m.expectSame('SELECT * FROM uniq');
    expect((await m.dst(`SELECT length(big) AS l FROM t WHERE id = 1`))[0].l).toBe(bigValue.length);
    expect((await m.dst(`SELECT ts::text AS ts FROM t WHERE id = 3`))[0].ts).toBe('2026-01-02 03:04:05.123456+00');
    expect(await w.stop()).toBe(0);
  });

  it('applies a 100,000-row transaction and interleaved long and short transactions', async () => {
    const m = await mirrorSetup(
      'big',
      `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);`,
      `      - source_table: a\n      - source_table: b\n`,
    );
    const w = await m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 100000) g`);
    // A long transaction open while short ones commit around it.
    const long = new pg.Client({ connectionString: clusters.src.url(m.db) });
    long.on('error', () => {});
    await long.connect();
    await long.query('BEGIN');
    await long.query(`INSERT INTO b SELECT g, 'long' FROM generate_series(1, 1000) g`);
    for (let i = 0; i < 50; i++) {
      await m.src(`INSERT INTO b VALUES ($1, 'short')`, [10_000 + i]);
      await m.src(`UPDATE a SET v = 'touched' WHERE id = $1`, [10_000 + i]);
    }
    await long.query(`UPDATE b SET v = 'long-updated' WHERE id = 10010`);
    await long.query('COMMIT');
    await long.end();
    await m.caughtUp();
    await m.expectSame('SELECT * FROM a');
    await m.expectSame('SELECT * FROM b');
    expect(await w.stop()).toBe(0);
  });

  it('round-trips every built-in type exactly, whatever DateStyle, IntervalStyle, TimeZone and output settings each database defaults to', async () => {
    // Each side's database has its own odd defaults: neither the copy nor the stream may depend on them.
    const oddDefaults = (settings: Record<string, string>) =>
      `DO $$ BEGIN ${Object.entries(settings)
        .map(([k, v]) => `EXECUTE format('ALTER DATABASE %I SET ${k} = %L', current_database(), '${v}');`)
        .join(' ')} END $$;`;
    const columns = `i2 smallint, i8 bigint, num numeric, r4 real, f8 float8, mon money, vc varchar(5), ch char(5), by bytea, bo boolean,
      d date, t time, ttz timetz, ts timestamp, tstz timestamptz, iv interval, u uuid, ip inet, cidr cidr, mac macaddr, mac8 macaddr8,
      pt point, ln line, ls lseg, bx box, pa path, pg polygon, ci circle, js json, jb jsonb, x xml, tv tsvector, tq tsquery,
      rg int4range, tr tstzrange, mr int4multirange, bt bit(3), vb varbit, o oid, lsn pg_lsn, ta text[], ma int[], e mood`;
    const values = [
      `(1, 1, 1, 0.1, 0.1, 0.1, 1234.56, 'abc', 'ab', '\\x00ff5c27', true, '2024-02-29', '23:59:59.999999', '12:00:00.5+05:30',
        '2000-02-29 12:34:56.789012', '1999-12-31 23:59:59.999999+14', '1 year 2 mons -3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        '::ffff:1.2.3.4/96', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05', '(1.5,-2)', '{1,2,3}', '[(0,0),(1,1)]', '(2,2),(0,0)',
        '((0,0),(1,1),(2,0))', '((0,0),(1,1),(1,0))', '<(1,1),2>', '{"b": 1,   "a": [1, 2]}', '{"b": 1, "a": [1, 2.50]}', '<a x="1">t &amp; u</a>',
        'a:1 b:2', 'a & !b', '[1,10)', '[2026-01-01 00:00:00.000001+00,infinity)', '{[1,3),[5,7)}', '101', '1', 4294967295, 'FFFFFFFF/FFFFFFFF',
        '{"a,b","c\\"d",NULL,"NULL",""}', '{{1,2},{3,4}}', 'meh')`,
      `(2, -32768, 9223372036854775807, 'NaN', 'Infinity', '4.9e-324', -92233720368547758.08, '', '', '', false, 'infinity', '00:00', '00:00-15:59',
        '-infinity', '0044-03-15 12:00:00+00 BC', '-178000000 years', '00000000-0000-0000-0000-000000000000', '0.0.0.0', '::/0', 'ff:ff:ff:ff:ff:ff',
        'ff:ff:ff:ff:ff:ff:ff:ff', '(1e-300,-1e300)', '{0,-1,0}', '[(0,0),(0,0)]', '(0,0),(0,0)', '[(0,0),(1,1)]', '((0,0))', '<(0,0),0>', '[]', '{}',
        '', '', '', 'empty', 'empty', '{}', '000', '', 0, '0/0', '{}', '{}', 'ok')`,
      `(3, NULL, NULL, NULL, '-Infinity', '-0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    ];
    const m = await mirrorSetup(
      'types',
      `CREATE TYPE mood AS ENUM ('ok', 'meh');
       CREATE TABLE every_type (id int PRIMARY KEY, ${columns});
       INSERT INTO every_type VALUES ${values.join(', ')};
       ${oddDefaults({ DateStyle: 'SQL, DMY', IntervalStyle: 'sql_standard', TimeZone: 'America/St_Johns', extra_float_digits: '-3', bytea_output: 'escape', xmloption: 'document' })}`,
      `      - source_table: every_type\n`,
      '',
      oddDefaults({
        DateStyle: 'German',
        IntervalStyle: 'iso_8601',
        TimeZone: 'Asia/Kathmandu',
        extra_float_digits: '0',
        bytea_output: 'escape',
        xmloption: 'document',
      }),
    );
    // The comparison itself reads both sides with the same explicit settings.
    const canonical = async (cluster: typeof clusters.src) => {
      const c = new pg.Client({
        connectionString: cluster.url(m.db),
        options:
          '-c DateStyle=ISO -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex',
      });
      await c.connect();
      try {
        return (await c.query(`SELECT id, x::text AS t FROM every_type x ORDER BY id`)).rows;
      } finally {
        await c.end();
      }
    };
    const same = async () => expect(await canonical(clusters.dst)).toEqual(await canonical(clusters.src));
    await same(); // the snapshot copy

    const w = await m.start();
    await w.waitForLog(/streaming from/);
    await m.src(
      `INSERT INTO every_type SELECT id + 10, ${columns
        .split(',')
        .map((c) => c.trim().split(' ')[0])
        .join(', ')} FROM every_type WHERE id <= 3`,
    );
    await m.src(`UPDATE every_type SET id = id + 100, vc = 'upd' WHERE id = 1`); // a key change (the old row goes)
    await m.src(`UPDATE every_type SET ts = ts, tstz = '2026-11-22 10:00:00.000001+00' WHERE id IN (2, 12)`); // set-based update
    await m.src(`DELETE FROM every_type WHERE id = 3`);
    await m.caughtUp();
    await same(); // the stream
    expect((await canonical(clusters.dst)).length).toBe(5);
    await w.stop();
  });

  it('rejects writes on the destination with MIRROR_READ_ONLY, and waits for an LSN (read-your-writes)', async () => {
    const m = await mirrorSetup('guard', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    for (const sql of ['INSERT INTO t VALUES (1)', 'UPDATE t SET id = 2', 'DELETE FROM t', 'TRUNCATE t']) {
      await expect(m.dst(sql)).rejects.toThrow(/^MIRROR_READ_ONLY: public\.t is a mirror of prod \(mirror guard\)/);
    }
    // Before a worker runs, wait_for_lsn times out with a clear error.
    await m.src(`INSERT INTO t VALUES (7)`);
    const [{ lsn }] = await m.src('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    await expect(m.dst(`SELECT mirrors.wait_for_lsn('guard', $1::pg_lsn, '200 milliseconds')`, [lsn])).rejects.toThrow(
      /MIRROR_WAIT_TIMEOUT/,
    );
    const w = await m.start(['--metrics-port', '0', '--metrics-host', '127.0.0.1']);
    expect((await m.dst(`SELECT mirrors.wait_for_lsn('guard', $1::pg_lsn, '30 seconds') AS ok`, [lsn]))[0].ok).toBe(
      true,
    );
    expect(await m.dst('SELECT id FROM t')).toEqual([{ id: 7 }]);
    // The metrics endpoint counts the applied row, and the health endpoint reports the mirror.
    await w.waitForLog(/metrics on http:\/\/127\.0\.0\.1:\d+/);
    const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(w.logs())![1];
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/mirrors_rows_applied_total\{[^}]*mirror="guard"[^}]*\} 1/);
    expect(metrics).toMatch(/mirrors_status\{[^}]*mirror="guard"[^}]*status="Following"[^}]*\} 1/);
    if (!promtoolMissing) {
      // What a real worker serves, not only what the metrics unit fills in, passes Prometheus's own check.
      const check = await checkMetrics(metrics);
      expect(check.output).toBe('');
      expect(check.code).toBe(0);
    }
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect((await health.json()).mirrors.guard).toMatchObject({ status: 'Following', healthy: true });
    // Fresh: lag is known and small.
    await m.dst(`SELECT mirrors.assert_fresh('guard', '1 minute')`);
    expect(await w.stop()).toBe(0);
    // A stopped worker's mirror is not fresh: no grace once nothing streams.
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(m.dst(`SELECT mirrors.assert_fresh('guard', '1 second')`)).rejects.toThrow(/MIRROR_STALE/);
    await expect(m.dst(`SELECT mirrors.lag('nosuch')`)).rejects.toThrow(/unknown mirror nosuch/);
  });

  it('loses and duplicates nothing when the worker is killed with kill -9 ten times during pgbench', async () => {
    const m = await mirrorSetup('crash', LOAD_TABLES_SQL, LOAD_TABLES_YAML, '    max_batch_size: 200\n');
    const load = writeLoad(clusters.src.url(m.db));
    let txns = 0;
    try {
      for (let i = 0; i < 10; i++) {
        const w = await m.start();
        await w.waitForLog(/streaming from/);
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
        await w.kill9();
      }
    } finally {
      txns = await load.stop();
    }
    const w = await m.start();
    await m.caughtUp();
    expect(txns).toBeGreaterThan(100);
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    expect(await w.stop()).toBe(0);
  });

  it('survives a restart of the source and of the destination during a run', async () => {
    const m = await mirrorSetup('restart', `CREATE TABLE t (id int PRIMARY KEY, v int)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g`);
    await clusters.src.restart();
    await m.src(`INSERT INTO t SELECT g, g FROM generate_series(1001, 2000) g`);
    await clusters.dst.restart();
    await m.src(`UPDATE t SET v = -v WHERE id % 3 = 0`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    expect(w.logs()).toMatch(/reconnecting in/);
    expect(await w.stop()).toBe(0);
  });

  it('keeps one active worker per mirror: a second waits as a standby and takes over when the first dies', async () => {
    const m = await mirrorSetup('lease', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    const first = await m.start();
    await first.waitForLog(/streaming from/);
    const second = await m.start();
    await second.waitForLog(/waiting as a standby/);
    await m.src(`INSERT INTO t SELECT generate_series(1, 100)`);
    await m.caughtUp();
    await first.kill9();
    const t0 = Date.now();
    await second.waitForLog(/streaming from/, 15_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await m.src(`INSERT INTO t SELECT generate_series(101, 200)`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    expect(await second.stop()).toBe(0);
  });
});
