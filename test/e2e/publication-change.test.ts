/**
 * A table added to a streaming mirror while a source transaction that writes it is open (issue 11): that
 * transaction must be either wholly in the table's copy or wholly applied from the stream, never in part (a
 * transaction spanning ALTER PUBLICATION ... ADD TABLE can be published only in part).
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
      const apply = m.cli('apply', '--auto-approve');
      // The transaction goes on writing once the publication has changed (apply is then copying the table).
      for (let i = 0; ; i++) {
        const [p] = await m.src(
          `SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = 'mirrors_pc' AND tablename = 'x'`,
        );
        if (p.n === 1) break;
        if (i > 300) throw new Error('the publication never included x');
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 300));
      await t.query('INSERT INTO x VALUES (3, 1)');
      await t.query('UPDATE x SET n = 2 WHERE id = 1');
      await t.query('COMMIT');
      const r = await apply;
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await m.src('INSERT INTO y VALUES (1)');
      await m.caughtUp();
      await m.expectSame('SELECT * FROM x');
      await m.expectSame('SELECT * FROM y');
    } finally {
      await t.end();
    }
    expect(await w.stop()).toBe(0);
  });
});
