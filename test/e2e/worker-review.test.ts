/**
 * Review findings on the streaming worker, as runnable checks against real clusters:
 * - a table added to a mirror while `mirrors run` is running must be streamed after its copy;
 * - a batch that takes longer than the source's wal_sender_timeout must still commit (the worker must keep
 *   answering the walsender while the batch runs, or the walsender cuts the stream and the batch is retried
 *   forever).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { useClusters } from '../support/clusters.js';
import { runCli } from '../support/cli.js';
import { peerYaml, tempProject } from '../support/project.js';
import { startWorker, type RunningWorker } from '../support/worker.js';

const env = { PGPASS_TEST: 'postgres' };
const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

let n = 0;
async function mirrorSetup(name: string, sourceSql: string, tablesYaml: string) {
  const db = `w${++n}`;
  await clusters.src.createDatabase(db);
  await clusters.dst.createDatabase(db);
  await clusters.src.query(sourceSql, [], db);
  const yaml = (tables: string) =>
    `version: 1\npeers:\n${peerYaml('prod', clusters.src, db)}${peerYaml('staging', clusters.dst, db)}mirrors:\n  ${name}:\n    source: prod\n    destination: staging\n    idle_timeout_seconds: 1\n    tables:\n${tables}`;
  const p = tempProject(yaml(tablesYaml));
  cleanups.push(p.cleanup);
  const apply = async (tables?: string) => {
    if (tables !== undefined) writeFileSync(p.file, yaml(tables));
    const r = await runCli(['apply', '--auto-approve'], { cwd: p.dir, env, timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`apply failed: ${r.stdout}\n${r.stderr}`);
  };
  await apply();
  const start = () => {
    const w: RunningWorker = startWorker(p.dir, env);
    cleanups.push(() => (w.child.exitCode === null ? w.kill9() : undefined));
    return w;
  };
  const src = (sql: string, params: unknown[] = []) => clusters.src.query(sql, params, db);
  const dst = (sql: string, params: unknown[] = []) => clusters.dst.query(sql, params, db);
  const caughtUp = async (timeout = '60 seconds') => {
    const [{ lsn }] = await src('SELECT pg_current_wal_lsn()::text AS lsn');
    await dst(`SELECT mirrors.wait_for_lsn($1, $2::pg_lsn, $3::interval)`, [name, lsn, timeout]);
  };
  const rows = async (side: 'src' | 'dst', sql: string) =>
    (await (side === 'src' ? src : dst)(`SELECT x::text AS r FROM (${sql}) x ORDER BY 1`)).map(
      (r: { r: string }) => r.r,
    );
  const expectSame = async (sql: string) => expect(await rows('dst', sql)).toEqual(await rows('src', sql));
  return { apply, start, src, dst, caughtUp, expectSame };
}

describe('mirrors run (review findings)', () => {
  it('streams a table added to the mirror while the worker is running', async () => {
    const m = await mirrorSetup(
      'added',
      `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b VALUES (1, 'copied')`,
      `      - source_table: a\n`,
    );
    const w = m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO a VALUES (1)`);
    await m.caughtUp();
    // Add b while the worker runs: apply copies it from a snapshot of its own, then the stream carries it.
    await m.apply(`      - source_table: a\n      - source_table: b\n`);
    await m.src(`INSERT INTO b VALUES (2, 'streamed'); UPDATE b SET v = 'updated' WHERE id = 1`);
    await m.src(`INSERT INTO a VALUES (2)`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM a');
    await m.expectSame('SELECT * FROM b');
    expect(await w.stop()).toBe(0);
  });

  it('commits a batch that takes longer than wal_sender_timeout', async () => {
    const m = await mirrorSetup('slow', `CREATE TABLE t (id int PRIMARY KEY, v text)`, `      - source_table: t\n`);
    await clusters.src.query(`ALTER SYSTEM SET wal_sender_timeout = '4s'`);
    await clusters.src.query(`SELECT pg_reload_conf()`);
    cleanups.push(async () => {
      await clusters.src.query(`ALTER SYSTEM RESET wal_sender_timeout`);
      await clusters.src.query(`SELECT pg_reload_conf()`);
    });
    // Slow destination: every applied row takes 2 s (an ALWAYS trigger fires under session_replication_role=replica).
    await m.dst(`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_sleep(2); RETURN NEW; END$$;
                 CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow();
                 ALTER TABLE t ENABLE ALWAYS TRIGGER slow;`);
    const w = m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO t SELECT g, 'x' FROM generate_series(1, 4) g`); // one transaction, ~8 s to apply
    await m.caughtUp('45 seconds');
    await m.expectSame('SELECT * FROM t');
    // The walsender must not have cut the stream while the batch ran (it did: "Connection terminated unexpectedly").
    expect(w.logs()).not.toMatch(/reconnecting in/);
    expect(await w.stop()).toBe(0);
  });
});
