/**
 * Review findings on the streaming worker, as runnable checks against real clusters:
 * - a table added to a mirror while `mirrors run` is running must be streamed after its copy;
 * - a batch that takes longer than the source's wal_sender_timeout must still commit (the worker must keep
 *   answering the walsender while the batch runs, or the walsender cuts the stream and the batch is retried
 *   forever).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'w');

describe('mirrors run (review findings)', () => {
  it('streams a table added to the mirror while the worker is running', async () => {
    const m = await mirrorSetup(
      'added',
      `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b VALUES (1, 'copied')`,
      `      - source_table: a\n`,
    );
    const w = await m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO a VALUES (1)`);
    await m.caughtUp();
    // Add b while the worker runs: apply copies it from a snapshot of its own, then the stream carries it.
    m.rewrite('', `      - source_table: a\n      - source_table: b\n`);
    const applied = await m.cli('apply', '--auto-approve');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
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
    onTestFinished(async () => {
      await clusters.src.query(`ALTER SYSTEM RESET wal_sender_timeout`);
      await clusters.src.query(`SELECT pg_reload_conf()`);
    });
    // Slow destination: every applied row takes 2 s (an ALWAYS trigger fires under session_replication_role=replica).
    await m.dst(`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_sleep(2); RETURN NEW; END$$;
                 CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow();
                 ALTER TABLE t ENABLE ALWAYS TRIGGER slow;`);
    const w = await m.start();
    await w.waitForLog(/streaming from/);
    await m.src(`INSERT INTO t SELECT g, 'x' FROM generate_series(1, 4) g`); // one transaction, ~8 s to apply
    await m.caughtUp('45 seconds');
    await m.expectSame('SELECT * FROM t');
    // The walsender must not have cut the stream while the batch ran (it did: "Connection terminated unexpectedly").
    expect(w.logs()).not.toMatch(/reconnecting in/);
    expect(await w.stop()).toBe(0);
  });
});
