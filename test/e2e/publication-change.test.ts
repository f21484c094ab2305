/**
 * A table added to a streaming mirror while a source transaction that writes it is open (issue 11): that
 * transaction must be either wholly in the table's copy or wholly applied from the stream, never in part (a
 * transaction spanning ALTER PUBLICATION ... ADD TABLE can be published only in part). The publication change
 * takes a lock that waits out the table's open writers (and says so in the plan); readers are never blocked.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors, waitForCatalogStatus } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'pc');

describe('adding a table to a streaming mirror', () => {
  it('a source transaction open across the change is applied whole, never torn', async () => {
    const m = await mirrorSetup(
      'pc',
      'CREATE TABLE y (id int PRIMARY KEY); CREATE TABLE x (id int PRIMARY KEY, n int)',
      `      - source_table: y\n`,
    );
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'pc', 'Following');
    const t = new pg.Client({ connectionString: clusters.src.url(m.db) });
    t.on('error', () => {});
    await t.connect();
    try {
      await t.query('BEGIN');
      await t.query('INSERT INTO x VALUES (1, 1), (2, 1)');
      m.rewrite('', `      - source_table: y\n      - source_table: x\n`);
      const planned = await m.cli('plan');
      expect(planned.stdout).toContain('briefly blocks writers to public.x (never readers)');
      const apply = m.cli('apply', '--auto-approve');
      // The publication change waits for the open writer of x (the lock), readers of x are not blocked.
      await new Promise((r) => setTimeout(r, 1_500));
      const published = () =>
        m.src(`SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = 'mirrors_pc' AND tablename = 'x'`);
      expect(await published()).toEqual([{ n: 0 }]);
      expect(await m.src('SELECT count(*)::int AS n FROM x')).toEqual([{ n: 0 }]);
      await t.query('INSERT INTO x VALUES (3, 1)');
      await t.query('UPDATE x SET n = 2 WHERE id = 1');
      await t.query('COMMIT');
      const r = await apply;
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(await published()).toEqual([{ n: 1 }]);
      await m.src('INSERT INTO y VALUES (1)');
      await m.src('INSERT INTO x VALUES (4, 4)');
      await m.caughtUp();
      await m.expectSame('SELECT * FROM x');
      await m.expectSame('SELECT * FROM y');
    } finally {
      await t.end();
    }
    expect(await w.stop()).toBe(0);
  });

  it('a table removed from a mirror keeps its rows and becomes writable, or stays read-only under keep_read_only: true', async () => {
    const sql = 'CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1)';
    const both = '      - source_table: a\n      - source_table: b\n';
    const writable = await mirrorSetup('rm1', sql, both);
    writable.rewrite('', '      - source_table: a\n');
    expect((await writable.cli('plan')).stdout).toContain('and it becomes writable');
    expect((await writable.cli('apply', '--auto-approve')).code).toBe(0);
    await writable.dst('INSERT INTO b VALUES (2)');
    expect(await writable.dst('SELECT count(*)::int AS n FROM b')).toEqual([{ n: 2 }]);

    const guarded = await mirrorSetup('rm2', sql, both, '    keep_read_only: true\n');
    guarded.rewrite('    keep_read_only: true\n', '      - source_table: a\n');
    expect((await guarded.cli('plan')).stdout).toContain('stays read-only (keep_read_only: true)');
    expect((await guarded.cli('apply', '--auto-approve')).code).toBe(0);
    await expect(guarded.dst('INSERT INTO b VALUES (2)')).rejects.toThrow(/MIRROR_READ_ONLY/);
    expect(await guarded.dst('SELECT count(*)::int AS n FROM b')).toEqual([{ n: 1 }]);
    // No longer mirrored: the next plan has nothing to say about it.
    expect((await guarded.cli('plan', '--detailed-exitcode')).code).toBe(0);
  });
});
