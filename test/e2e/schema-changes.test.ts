/**
 * Source schema changes fitted where the stream reaches them (issue 11): under `schema_changes: auto` the worker
 * applies an added column (with and without a default), a rename and a drop itself, journaled; under `plan` it
 * stops there, records the DDL, and `mirrors plan` + `mirrors apply` run it; a type change or a volatile default
 * (a rewrite, which sends no row changes) is a copy of that table. Every check compares full table contents,
 * the rows copied before a column was added with a default included.
 */
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors, until } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'sc');
type Setup = Awaited<ReturnType<typeof mirrorSetup>>;

const TABLE_SQL = `CREATE TABLE t (id int PRIMARY KEY, v int, legacy text NOT NULL DEFAULT 'old');
  INSERT INTO t (id, v) SELECT g, g * 10 FROM generate_series(1, 50) g;`;

/** The mirror's status and error in the catalog, and the table's recorded schema change. */
async function state(m: Setup, name: string) {
  const [row] = await m.dst(
    `SELECT m.status, m.last_error ->> 'code' AS code, t.pending_schema_change AS pending, t.last_schema_change AS last,
            t.kept_columns AS kept
       FROM mirrors.mirrors m JOIN mirrors.tables t ON t.mirror = m.name WHERE m.name = $1`,
    [name],
  );
  return row as {
    status: string;
    code: string | null;
    pending: { lsn: string; copy: string | null; steps: { change: string; sql: string[] }[] } | null;
    last: { by: string; sql: string[]; summary: string[] } | null;
    kept: string[];
  };
}

const destinationDefaults = (m: Setup) =>
  m.dst(
    `SELECT column_name::text AS c FROM information_schema.columns
      WHERE table_name = 't' AND column_default IS NOT NULL ORDER BY 1`,
  );

describe('source schema changes', () => {
  it('schema_changes: auto: the worker adds, renames and drops columns where the stream reaches them, old rows reading the source default; a type change stops it for a copy', async () => {
    const m = await mirrorSetup('auto1', TABLE_SQL, '      - source_table: t\n', '    schema_changes: auto\n');
    const w = await m.start();
    await w.waitForLog(/auto1: Following/);
    let next = 51;
    const insert = () => m.src(`INSERT INTO t (id) VALUES (${next++})`);
    const step = async (ddl: string, after: () => Promise<unknown>) => {
      await m.src(ddl);
      await after();
      await m.caughtUp();
      await m.expectSame('SELECT * FROM t');
      expect((await state(m, 'auto1')).status).not.toBe('Failed');
    };

    await step('ALTER TABLE t ADD COLUMN note text', () => m.src(`UPDATE t SET note = 'n' || id WHERE id <= 5`));
    // Rows already there read 'new' on the source without any row change: so must they on the destination.
    await step(`ALTER TABLE t ADD COLUMN status text NOT NULL DEFAULT 'new'`, () => insert());
    expect(await m.dst(`SELECT count(*)::int AS n FROM t WHERE status = 'new'`)).toEqual([{ n: 51 }]);
    expect(await destinationDefaults(m)).toEqual([]); // the mirror stays default-free
    await step('ALTER TABLE t RENAME COLUMN v TO w', () => m.src('UPDATE t SET w = w + 1 WHERE id % 7 = 0'));
    await step('ALTER TABLE t DROP COLUMN legacy', () => m.src('DELETE FROM t WHERE id = 3'));

    const s = await state(m, 'auto1');
    expect(s.last).toMatchObject({ by: 'worker', sql: ['ALTER TABLE "public"."t" DROP COLUMN "legacy"'] });
    expect(s.pending).toBeNull();
    const journal = await m.dst(
      `SELECT count(*)::int AS n FROM mirrors.journal WHERE action_id = 'schema_change:mirror.auto1.table.public.t'`,
    );
    expect(journal).toEqual([{ n: 4 }]);
    expect(w.logs()).toMatch(
      /applied the source's schema change: add column status text NOT NULL; rows already there read 'new'/,
    );
    const status = JSON.parse((await m.cli('status', '--format', 'json')).stdout).mirrors[0];
    expect(status.tables[0].last_schema_change).toMatchObject({
      by: 'worker',
      summary: [expect.stringMatching(/drop column legacy/)],
    });

    // A type change rewrites the table on the source: no row changes tell the values, only a copy does.
    await m.src('ALTER TABLE t ALTER COLUMN w TYPE bigint');
    await m.src('UPDATE t SET w = w * 1000 WHERE id = 1');
    const failed = await until('MR153 recorded', async () => {
      const r = await state(m, 'auto1');
      return r.status === 'Failed' && r.code === 'MR153' && r.pending ? r : null;
    });
    expect(failed.pending!.copy).toMatch(/w changed type from integer to bigint/);
    const planned = await m.cli('plan');
    expect(planned.stdout).toContain('mirror.auto1.table.public.t.columns');
    expect(planned.stdout).toMatch(/then copy the table again/);
    const applied = await m.cli('apply', '--auto-approve');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    await insert();
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    expect(
      await m.dst(
        `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'w'`,
      ),
    ).toEqual([{ t: 'bigint' }]);
    expect(await w.stop()).toBe(0);
  });

  it('kill -9 right after the worker committed a schema change: the restarted worker applies the rows once, the change once', async () => {
    const m = await mirrorSetup('crash1', TABLE_SQL, '      - source_table: t\n', '    schema_changes: auto\n');
    const w = await m.start([], { MIRRORS_INJECT_KILL_AFTER: 'schema_change' });
    await w.waitForLog(/crash1: Following/);
    await m.src(`ALTER TABLE t ADD COLUMN status text DEFAULT 'new'`);
    await m.src(`INSERT INTO t (id, v, status) VALUES (51, 1, 'x'), (52, 2, DEFAULT)`);
    await m.src('UPDATE t SET v = -v WHERE id <= 10');
    await until('the worker killed itself after the DDL', async () => w.child.signalCode === 'SIGKILL');
    const [{ n }] = await m.dst(`SELECT count(*)::int AS n FROM t WHERE id > 50`);
    expect(n).toBe(0); // the DDL committed, none of the rows carrying it
    const again = await m.start();
    await m.caughtUp();
    await m.expectSame('SELECT * FROM t');
    const journal = await m.dst(
      `SELECT count(*)::int AS n FROM mirrors.journal WHERE action_id LIKE 'schema_change:%'`,
    );
    expect(journal).toEqual([{ n: 1 }]);
    expect(await again.stop()).toBe(0);
  });

  it('schema_changes: plan: the worker stops right before the first row with the change, the plan proposes its DDL, apply runs it and the stream resumes; dropped_columns: keep keeps the values; a volatile default is a copy', async () => {
    const m = await mirrorSetup('plan1', TABLE_SQL, '      - source_table: t\n', '    dropped_columns: keep\n');
    const w = await m.start();
    await w.waitForLog(/plan1: Following/);
    let next = 51;
    /** The change, then a write carrying it: Failed with `code`, the plan's columns update applied, caught up. */
    const step = async (ddl: string, code: string, expectInPlan: RegExp, write: string) => {
      await m.src(ddl);
      await m.src(write);
      const stopped = await until(`${code} with a recorded change`, async () => {
        const r = await state(m, 'plan1');
        return r.status === 'Failed' && r.code === code && r.pending ? r : null;
      });
      // Nothing of the transaction carrying the change is applied until the plan runs.
      expect(await m.dst(`SELECT count(*)::int AS n FROM t WHERE id = ${next - 1}`)).toEqual([{ n: 0 }]);
      const planned = await m.cli('plan', '--format', 'json');
      const action = JSON.parse(planned.stdout).actions.find((a: { kind: string }) => a.kind === 'columns');
      expect(action).toMatchObject({
        op: 'update',
        reason_code: 'schema_changed',
        details: { at_lsn: stopped.pending!.lsn },
      });
      expect(action.reason).toMatch(expectInPlan);
      const applied = await m.cli('apply', '--auto-approve');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      await m.caughtUp();
      return action;
    };

    const added = await step(
      'ALTER TABLE t ADD COLUMN c int DEFAULT 7',
      'MR150',
      /add column c integer; rows already there read '7'/,
      `INSERT INTO t (id, v) VALUES (${next++}, 1)`,
    );
    expect(added.details.sql).toEqual([
      `ALTER TABLE "public"."t" ADD COLUMN "c" integer DEFAULT '7'`,
      'ALTER TABLE "public"."t" ALTER COLUMN "c" DROP DEFAULT',
    ]);
    await m.expectSame('SELECT * FROM t');
    expect(await m.dst('SELECT count(*)::int AS n FROM t WHERE c = 7')).toEqual([{ n: 51 }]);

    await step(
      'ALTER TABLE t RENAME COLUMN v TO w',
      'MR152',
      /rename column v to w/,
      `INSERT INTO t (id, w) VALUES (${next++}, 0)`,
    );
    await m.expectSame('SELECT * FROM t');

    await step(
      'ALTER TABLE t DROP COLUMN legacy',
      'MR151',
      /keep column legacy/,
      `INSERT INTO t (id, w) VALUES (${next++}, 2)`,
    );
    await m.expectSame('SELECT id, w, c FROM t');
    expect(await m.dst(`SELECT legacy, count(*)::int AS n FROM t GROUP BY 1 ORDER BY 1`)).toEqual([
      { legacy: 'old', n: 52 },
      { legacy: null, n: 1 },
    ]);
    expect((await state(m, 'plan1')).kept).toEqual(['legacy']);
    // A kept column is no drift: the plan is clean.
    const clean = await m.cli('plan', '--detailed-exitcode');
    expect(clean.stdout).not.toMatch(/MR15[0-3]/);

    // A volatile default rewrites the source table (each row its own value, no row changes): a copy.
    const copied = await step(
      'ALTER TABLE t ADD COLUMN r double precision DEFAULT random()',
      'MR150',
      /then copy the table again/,
      `INSERT INTO t (id, w) VALUES (${next++}, 3)`,
    );
    expect(copied.details.sql[0]).toBe('TRUNCATE "public"."t"');
    await m.expectSame('SELECT id, w, c, r FROM t');
    expect(await w.stop()).toBe(0);
  });
});
