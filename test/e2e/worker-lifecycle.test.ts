/**
 * `mirrors run` tells the truth about its lifecycle (issue 8): live pause and resume, a slot recreated by
 * hand (Failed, nothing skipped), schema drift stopping the mirror safely until fixed. Real clusters; every
 * check of data compares full table contents.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { LOAD_TABLES_SQL, LOAD_TABLES_YAML, runningMirrors, until, writeLoad } from '../support/running-mirror.js';
import type { RunningWorker } from '../support/worker.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'lc');

type Setup = Awaited<ReturnType<typeof mirrorSetup>>;

const catalogRow = async (m: Setup, name: string) =>
  (
    await m.dst(
      `SELECT status, last_error, jsonb_array_length(error_history) AS history,
              extract(epoch FROM mirrors.lag($1))::float AS lag_s FROM mirrors.mirrors WHERE name = $1`,
      [name],
    )
  )[0] as {
    status: string;
    last_error: { code: string; kind: string; message: string } | null;
    history: number;
    lag_s: number | null;
  };

async function healthz(w: RunningWorker) {
  await w.waitForLog(/metrics on http:\/\/127\.0\.0\.1:\d+/);
  const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(w.logs())![1];
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: await r.json() };
}

describe('mirrors run lifecycle', () => {
  it('pauses a running worker within 2 s of `mirrors apply` (paused: true) and resumes it without a restart, under load', async () => {
    const m = await mirrorSetup('pausing', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const w = await m.start();
    await w.waitForLog(/pausing: Following/);
    const load = writeLoad(clusters.src.url(m.db), 2);
    try {
      await m.caughtUp();
      m.rewrite('    paused: true\n');
      const applied = await m.cli('apply', '--auto-approve');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      const pausedAt = Date.now();
      await w.waitForLog(/pausing: Paused/, 10_000);
      const took = Date.now() - pausedAt;
      console.log(`paused ${took} ms after apply returned`);
      expect(took).toBeLessThan(2_500);
      const count = async () => Number((await m.dst('SELECT count(*) AS n FROM history'))[0].n);
      const before = await count();
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await count()).toBe(before); // nothing applied while paused, though the source kept writing
      expect((await catalogRow(m, 'pausing')).status).toBe('Paused');
      const status = await m.cli('status', '--format', 'json');
      expect(JSON.parse(status.stdout).mirrors[0].status.name).toBe('Paused');
      expect((await healthz(w)).status).toBe(200); // a person asked for it

      m.rewrite('');
      expect((await m.cli('apply', '--auto-approve')).code).toBe(0);
      await w.waitForLog(/pausing: Following[\s\S]*pausing: Paused[\s\S]*pausing: Following/, 15_000);
    } finally {
      await load.stop();
    }
    await m.caughtUp();
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    expect(await w.stop()).toBe(0);
  });

  it('a run started while the mirror is paused stays up and streams once it is resumed', async () => {
    const m = await mirrorSetup(
      'startpaused',
      `CREATE TABLE t (id int PRIMARY KEY)`,
      `      - source_table: t\n`,
      '    paused: true\n',
    );
    const w = await m.start();
    await w.waitForLog(/startpaused: paused/);
    await m.src('INSERT INTO t SELECT generate_series(1, 100)');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await m.dst('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 0 }]);
    m.rewrite('');
    expect((await m.cli('apply', '--auto-approve')).code).toBe(0);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    expect(await w.stop()).toBe(0);
  });

  it('refuses to stream from a slot recreated by hand: Failed with MR162, the gap is not skipped', async () => {
    const m = await mirrorSetup('regap', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/regap: Following/);
    await m.src('INSERT INTO t SELECT generate_series(1, 3000)');
    await m.caughtUp();
    await w.stop();
    // The gap: rows written while the slot is gone, which a new slot can never deliver.
    await m.src(`SELECT pg_drop_replication_slot('mirrors_regap')`);
    await m.src('INSERT INTO t SELECT generate_series(3001, 3100)');
    await m.src(`SELECT pg_create_logical_replication_slot('mirrors_regap', 'pgoutput')`);
    await m.src('INSERT INTO t SELECT generate_series(3101, 3200)');
    const w2 = await m.start();
    await w2.waitForLog(/MR162/);
    const row = await until('Failed in the catalog', async () => {
      const r = await catalogRow(m, 'regap');
      return r.status === 'Failed' ? r : null;
    });
    expect(row.last_error).toMatchObject({ kind: 'gap', code: 'MR162' });
    expect((await healthz(w2)).status).toBe(503);
    expect(await m.dst('SELECT max(id) AS max FROM t')).toEqual([{ max: 3000 }]);
    const status = JSON.parse((await m.cli('status', '--format', 'json')).stdout).mirrors[0];
    expect(status.status.name).toBe('Failed');
    expect(await w2.stop()).toBe(0);
  });

  it('stops at schema drift before the transaction that carries it, Failed with the code, lag growing, until fixed; nothing lost', async () => {
    const m = await mirrorSetup('drifty', `CREATE TABLE t (id int PRIMARY KEY, v int)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/drifty: Following/);
    let next = 1;
    const write = async () => {
      await m.src(`INSERT INTO t (id) VALUES (${next++})`);
    };
    await write();
    await m.caughtUp();

    const steps: { code: string; change: string; fix: () => Promise<unknown> }[] = [
      {
        code: 'MR150',
        change: 'ALTER TABLE t ADD COLUMN extra int DEFAULT 5',
        fix: () => m.dst('ALTER TABLE t ADD COLUMN extra int DEFAULT 5'),
      },
      { code: 'MR151', change: 'ALTER TABLE t DROP COLUMN extra', fix: () => m.dst('ALTER TABLE t DROP COLUMN extra') },
      {
        code: 'MR152',
        change: 'ALTER TABLE t RENAME COLUMN v TO w',
        fix: () => m.dst('ALTER TABLE t RENAME COLUMN v TO w'),
      },
      {
        code: 'MR153',
        change: 'ALTER TABLE t ALTER COLUMN w TYPE bigint',
        fix: () => m.dst('ALTER TABLE t ALTER COLUMN w TYPE bigint'),
      },
    ];
    for (const s of steps) {
      await m.src(s.change);
      await write(); // the first change after the DDL carries the new Relation message
      const failed = await until(`${s.code} in the catalog`, async () => {
        const r = await catalogRow(m, 'drifty');
        return r.status === 'Failed' && r.last_error?.code === s.code ? r : null;
      });
      expect(failed.last_error?.kind).toBe('drift');
      expect((await healthz(w)).status).toBe(503);
      // The row of the drifted transaction is not applied, and the lag keeps growing while it waits.
      expect(await m.dst(`SELECT count(*)::int AS n FROM t WHERE id = ${next - 1}`)).toEqual([{ n: 0 }]);
      const lag1 = (await catalogRow(m, 'drifty')).lag_s!;
      await new Promise((r) => setTimeout(r, 1_200));
      expect((await catalogRow(m, 'drifty')).lag_s!).toBeGreaterThan(lag1);
      await s.fix();
      await m.caughtUp();
      await m.expectSame('SELECT * FROM t');
    }

    // The guard dropped by hand: anyone could now write to the mirror. Failed until `mirrors apply` restores it.
    await m.dst('DROP TRIGGER mirrors_read_only ON t');
    await until(
      'MR159 in the catalog',
      async () => (await catalogRow(m, 'drifty')).last_error?.code === 'MR159',
      30_000,
    );
    expect((await healthz(w)).status).toBe(503);
    await write();
    expect((await m.cli('apply', '--auto-approve')).code).toBe(0);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    expect((await catalogRow(m, 'drifty')).history).toBeGreaterThanOrEqual(5);
    await expect(m.dst('INSERT INTO t (id) VALUES (-1)')).rejects.toThrow(/MIRROR_READ_ONLY/);
    expect(await w.stop()).toBe(0);
  });
});
