/**
 * A partitioned source table mirrored through its root (issue 11): a partition created on the source while the
 * mirror streams keeps flowing, with no plan or apply (the publication publishes via the root, so its changes
 * arrive as the root's); a TRUNCATE of one partition reaches the destination through the truncate relay
 * (diff/truncate-relay.ts), or stops the mirror with MR164 for a hash partition. Full contents compared.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors, until, waitForCatalogStatus } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'part');

describe('a partitioned table', () => {
  it('keeps flowing through a partition created on the source mid-stream, rows moving between partitions included', async () => {
    const m = await mirrorSetup(
      'parted',
      `CREATE TABLE pt (id int NOT NULL, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
       CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
       INSERT INTO pt SELECT g, 'v' || g FROM generate_series(0, 99) g;`,
      '      - source_table: pt\n',
    );
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'parted', 'Following');
    await m.src('CREATE TABLE pt_2 PARTITION OF pt FOR VALUES FROM (100) TO (200)');
    await m.src(`INSERT INTO pt SELECT g, 'w' || g FROM generate_series(100, 149) g`);
    // Rows moving across partitions (a delete from one leaf and an insert into the other on the source).
    await m.src(`UPDATE pt SET id = id + 100, v = 'moved' WHERE id BETWEEN 50 AND 59`);
    await m.src('DELETE FROM pt WHERE id BETWEEN 120 AND 129');
    await m.src(`UPDATE pt SET v = 'late' WHERE id >= 140`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM pt');
    expect(await m.dst('SELECT count(*)::int AS n FROM pt')).toEqual([{ n: 140 }]);
    expect(await w.stop()).toBe(0);
  });

  it('mirrors a TRUNCATE of one range, list or sub-partition where it happened, a new partition and the default one included', async () => {
    const m = await mirrorSetup(
      'truncated',
      `CREATE TABLE ev (id int NOT NULL, day date NOT NULL, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
       CREATE TABLE ev_01 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
       CREATE TABLE ev_02 PARTITION OF ev FOR VALUES FROM ('2026-02-01') TO ('2026-03-01') PARTITION BY RANGE (id);
       CREATE TABLE ev_02_low PARTITION OF ev_02 FOR VALUES FROM (MINVALUE) TO (300);
       CREATE TABLE ev_02_high PARTITION OF ev_02 FOR VALUES FROM (300) TO (MAXVALUE);
       INSERT INTO ev SELECT g, DATE '2026-01-01' + (g % 59), 'v' || g FROM generate_series(1, 590) g;
       CREATE TABLE kinds (id int PRIMARY KEY, kind text) PARTITION BY LIST (id);
       CREATE TABLE kinds_small PARTITION OF kinds FOR VALUES IN (1, 2, 3);
       CREATE TABLE kinds_rest PARTITION OF kinds DEFAULT;
       INSERT INTO kinds SELECT g, 'k' || g FROM generate_series(1, 20) g;`,
      '      - source_table: ev\n      - source_table: kinds\n',
    );
    const relayed = async () =>
      (
        await m.src(
          `SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgname = 'mirrors_tr_truncated' ORDER BY 1`,
        )
      ).map((r: { relname: string }) => r.relname);
    expect(await relayed()).toEqual(['ev_01', 'ev_02_high', 'ev_02_low', 'kinds_rest', 'kinds_small']);
    // The destination runs a relayed bound as SQL: no source role but the relay's function may write one.
    await m.src(`DROP ROLE IF EXISTS relay_intruder; CREATE ROLE relay_intruder;
      GRANT USAGE ON SCHEMA mirrors TO relay_intruder; GRANT SELECT, INSERT, TRUNCATE ON ev_02_high TO relay_intruder`);
    await expect(
      m.src(`SET ROLE relay_intruder; INSERT INTO mirrors.truncated_truncates (root_schema, root_name, partition_schema,
             partition_name, bound, hashed) VALUES ('public', 'ev', 'public', 'ev_02', 'true', false)`),
    ).rejects.toThrow(/permission denied/);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'truncated', 'Following');

    // Rows of the partition written before the TRUNCATE in its transaction go; those written after it stay.
    await m.src(`BEGIN;
      INSERT INTO ev VALUES (1000, '2026-01-15', 'before');
      TRUNCATE ev_01;
      INSERT INTO ev VALUES (1001, '2026-01-16', 'after');
      UPDATE ev SET v = 'kept' WHERE day = '2026-02-10';
      COMMIT`);
    await m.caughtUp();
    expect(await m.dst(`SELECT count(*)::int AS n FROM ev WHERE v = 'kept'`)).toEqual([{ n: 10 }]);
    await m.src('TRUNCATE kinds_rest');
    // A sub-partition: its bound includes its parent's. A role that may truncate a partition, and nothing more, has
    // it relayed all the same (SECURITY DEFINER).
    await m.src(
      `SET ROLE relay_intruder; INSERT INTO ev_02_high VALUES (1003, '2026-02-20', 'x'); TRUNCATE ev_02_high`,
    );
    await m.caughtUp();
    await m.expectSame('SELECT * FROM ev');
    await m.expectSame('SELECT * FROM kinds');
    expect(await m.dst(`SELECT count(*)::int AS n FROM ev WHERE day < '2026-02-01'`)).toEqual([{ n: 1 }]);
    // February: the ids below 300 stay, the others went with their sub-partition.
    expect(await m.dst(`SELECT count(*)::int AS n FROM ev WHERE day >= '2026-02-01' AND id >= 300`)).toEqual([
      { n: 0 },
    ]);
    expect(
      (await m.dst(`SELECT count(*)::int AS n FROM ev WHERE day >= '2026-02-01' AND id < 300`))[0].n,
    ).toBeGreaterThan(100);
    expect(await m.dst('SELECT array_agg(id ORDER BY id) AS ids FROM kinds')).toEqual([{ ids: [1, 2, 3] }]);

    // A partition created while the mirror streams gets the trigger from the worker, within seconds.
    await m.src(`CREATE TABLE ev_03 PARTITION OF ev FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')`);
    await until('the worker relays ev_03', async () => (await relayed()).includes('ev_03'), 20_000);
    await m.src(`INSERT INTO ev SELECT g, DATE '2026-03-01' + (g % 31), 'march' FROM generate_series(2000, 2099) g`);
    await m.src('TRUNCATE ev_03');
    // A TRUNCATE of the root fires every leaf's trigger too: the relay's rows then have nothing left to delete.
    await m.src(`BEGIN; TRUNCATE ev; INSERT INTO ev VALUES (3000, '2026-02-02', 'anew'); COMMIT`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM ev');
    expect(await m.dst('SELECT id FROM ev')).toEqual([{ id: 3000 }]);
    expect(await w.stop()).toBe(0);
    await m.src('DROP OWNED BY relay_intruder; DROP ROLE relay_intruder');
  });

  it('stops with MR164 at a TRUNCATE of one hash partition, and streams on once the table is copied again', async () => {
    const m = await mirrorSetup(
      'hashed',
      `CREATE TABLE hp (id int PRIMARY KEY, v text) PARTITION BY HASH (id);
       CREATE TABLE hp_0 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 0);
       CREATE TABLE hp_1 PARTITION OF hp FOR VALUES WITH (MODULUS 2, REMAINDER 1);
       INSERT INTO hp SELECT g, 'v' || g FROM generate_series(1, 100) g;`,
      '      - source_table: hp\n',
    );
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'hashed', 'Following');
    await m.src('TRUNCATE hp_0');
    await m.src(`INSERT INTO hp VALUES (1000, 'later')`);
    await waitForCatalogStatus(m.dst, 'hashed', 'Failed');
    const [err] = await m.dst(`SELECT last_error FROM mirrors.mirrors WHERE name = 'hashed'`);
    expect(err.last_error).toMatchObject({ kind: 'drift', code: 'MR164' });
    expect(err.last_error.hint).toContain('--replace mirror.hashed.table.public.hp');
    // Nothing of that transaction or after it was applied.
    expect(await m.dst('SELECT count(*)::int AS n FROM hp')).toEqual([{ n: 100 }]);

    const r = await m.cli('apply', '--replace', 'mirror.hashed.table.public.hp', '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await waitForCatalogStatus(m.dst, 'hashed', 'Following');
    await m.caughtUp();
    await m.expectSame('SELECT * FROM hp');
    expect(await w.stop()).toBe(0);
  });
});
