/**
 * While `mirrors apply` copies a table again (--replace with truncate or swap), the worker defers that table's
 * changes and streams the others (worker/deferred.ts, issue 11): the other tables move on during the copy, and the
 * table's changes made meanwhile are replayed once the copy is recorded. Full contents compared; kill -9 while
 * changes are deferred loses and duplicates nothing.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import {
  LOAD_TABLES_SQL,
  LOAD_TABLES_YAML,
  runningMirrors,
  until,
  waitForCatalogStatus,
  writeLoad,
} from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'df');

const BIG_SQL = `${LOAD_TABLES_SQL}
CREATE TABLE big (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);
INSERT INTO big SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 400000) i;`;
const TABLES_YAML = `${LOAD_TABLES_YAML}      - source_table: big\n`;

/** Updates, inserts and deletes of big until stopped, one transaction each. */
function bigLoad(url: string) {
  let stopping = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    let next = 1_000_001;
    try {
      while (!stopping) {
        const id = 1 + Math.floor(Math.random() * 400000);
        const op = Math.random();
        if (op < 0.6) await c.query('UPDATE big SET n = n + 1 WHERE id = $1', [id]);
        else if (op < 0.8) await c.query(`INSERT INTO big (id, v) VALUES ($1, 'new')`, [next++]);
        else await c.query('DELETE FROM big WHERE id = $1', [id]);
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop() {
      stopping = true;
      return done;
    },
  };
}

/** Until the destination holds no deferred change (at most 10 s). */
const replayed = (m: { dst: (sql: string) => Promise<{ n: number }[]> }) =>
  until(
    'the deferred changes replayed',
    async () => (await m.dst('SELECT count(*)::int AS n FROM mirrors.deferred_changes'))[0].n === 0,
    10_000,
  );

describe.each(['truncate', 'swap'])('--replace with resync_strategy %s', (strategy) => {
  it('the other tables keep streaming while the table is copied, and its changes meanwhile are replayed', async () => {
    const name = `df_${strategy}`;
    const m = await mirrorSetup(name, BIG_SQL, TABLES_YAML, `    resync_strategy: ${strategy}\n`);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, name, 'Following');
    const load = writeLoad(clusters.src.url(m.db), 2);
    const big = bigLoad(clusters.src.url(m.db));
    await until('history streams', async () => (await m.dst('SELECT count(*)::int AS n FROM history'))[0].n > 20);

    // Samples of history on the destination taken while big's copy runs.
    const during: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [t] = await m.dst(`SELECT state FROM mirrors.tables WHERE mirror = $1 AND dest_table = 'big'`, [name]);
        const [h] = await m.dst('SELECT count(*)::int AS n FROM history');
        if (t?.state === 'copying') during.push(h.n);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = await m.cli('apply', '--replace', `mirror.${name}.table.public.big`, '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    sampling = false;
    await sampler;
    await big.stop();
    await load.stop();

    expect(during.length).toBeGreaterThan(3);
    expect(during.at(-1)!).toBeGreaterThan(during[0]);
    await m.caughtUp().catch((e) => {
      throw new Error(
        `${e.message}\n${w
          .logs()
          .split('\n')
          .filter((l) => !l.includes('cannot record what'))
          .join('\n')
          .slice(-5000)}`,
      );
    });
    // The copy is recorded: the changes deferred meanwhile are replayed within about a second, stream idle or not.
    await replayed(m);
    for (const t of ['big', 'accounts', 'history']) await m.expectSame(`SELECT * FROM ${t}`);
    expect(await w.stop()).toBe(0);
  });
});

describe('deferred changes', () => {
  it('kill -9 of the worker while changes are deferred: the next one replays them once, nothing lost', async () => {
    const m = await mirrorSetup('df_kill', BIG_SQL, TABLES_YAML, '    resync_strategy: truncate\n');
    const first = await m.start();
    await waitForCatalogStatus(m.dst, 'df_kill', 'Following');
    const big = bigLoad(clusters.src.url(m.db));
    const apply = m.cli('apply', '--replace', 'mirror.df_kill.table.public.big', '--auto-approve');
    await until(
      'changes deferred',
      async () => (await m.dst('SELECT count(*)::int AS n FROM mirrors.deferred_changes'))[0].n > 10,
      60_000,
    );
    await first.kill9();
    const r = await apply;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await big.stop();
    const second = await m.start();
    await waitForCatalogStatus(m.dst, 'df_kill', 'Following');
    await m.caughtUp();
    await replayed(m);
    await m.expectSame('SELECT * FROM big');
    expect(await second.stop()).toBe(0);
  });
});
