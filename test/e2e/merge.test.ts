/**
 * resync_strategy merge (issue 11): `--replace` repairs a streaming table in place, chunk by chunk, while the source
 * keeps writing it and the mirror keeps streaming its other tables. Readers keep every row the source has.
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
const mirrorSetup = runningMirrors(clusters, 'mg');

/** 10 000 rows, one in ten with a TOASTed value (an UPDATE of another column leaves it out of the stream). */
const ITEMS_SQL = `${LOAD_TABLES_SQL}
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, doc jsonb, big text);
INSERT INTO items SELECT i, 'item ' || i, jsonb_build_object('n', i),
       CASE WHEN i % 10 = 0 THEN (SELECT string_agg(md5(random()::text || g), '') FROM generate_series(1, 200) g) END
  FROM generate_series(1, 10000) i;`;
const TABLES_YAML = `${LOAD_TABLES_YAML}      - source_table: items\n`;
const ITEMS = 'mirror.mg1.table.public.items';

/**
 * Writes to items' ids 1..2000 until stopped: updates of `name` only (their TOAST values unsent), inserts above
 * 20000, deletes; each its own transaction. Returns how many rows it deleted.
 */
function itemsLoad(url: string) {
  let stopping = false;
  let deleted = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    let next = 20_001;
    try {
      while (!stopping) {
        const id = 1 + Math.floor(Math.random() * 2000);
        const op = Math.random();
        if (op < 0.6) await c.query(`UPDATE items SET name = name || '.' WHERE id = $1`, [id]);
        else if (op < 0.85) await c.query(`INSERT INTO items VALUES ($1, 'new', '{}', NULL)`, [next++]);
        else deleted += (await c.query('DELETE FROM items WHERE id = $1', [id])).rowCount ?? 0;
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      stopping = true;
      await done;
      return deleted;
    },
    deleted: () => deleted,
  };
}

/** Someone wrote the destination past the guard: 50 rows gone, 50 changed, 30 the source never had. */
const DIVERGE_SQL = `SET session_replication_role = replica;
DELETE FROM items WHERE id BETWEEN 2001 AND 2050;
UPDATE items SET name = 'wrong', big = CASE WHEN big IS NULL THEN NULL ELSE 'wrong' END WHERE id BETWEEN 3001 AND 3050;
INSERT INTO items SELECT i, 'extra', NULL, NULL FROM generate_series(100001, 100030) i;`;

describe('resync_strategy merge', () => {
  it('repairs a diverged table in place under load: readers keep every row, equal rows are not written, contents equal', async () => {
    const m = await mirrorSetup('mg1', ITEMS_SQL, TABLES_YAML, '    resync_strategy: merge\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'mg1', 'Following');
    await m.caughtUp();
    await m.dst(DIVERGE_SQL);
    // xmin and xmax: not rewritten, and not even locked (ON CONFLICT DO UPDATE locks a row its WHERE skips).
    const [untouched] = await m.dst(`SELECT xmin::text AS x, xmax::text AS locked FROM items WHERE id = 9000`);

    const plan = await m.cli('plan', '--replace', ITEMS);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/repair it in place \(--replace, resync_strategy merge\)/);
    expect(plan.stdout).toMatch(/readers keep every row/);
    const json = JSON.parse((await m.cli('plan', '--replace', ITEMS, '--format', 'json')).stdout);
    const merge = json.actions.find((a: { address: string }) => a.address === ITEMS);
    expect(merge).toMatchObject({
      kind: 'table',
      op: 'replace',
      risk: 'safe',
      details: { strategy: 'merge', key: ['id'] },
    });
    expect(json.actions.some((a: { kind: string }) => a.kind === 'snapshot')).toBe(false);

    const load = writeLoad(clusters.src.url(m.db), 2);
    const items = itemsLoad(clusters.src.url(m.db));
    // A reader on the destination: the rows no one writes (ids 4001..10000) are all there at every look.
    let reading = true;
    const seen: number[] = [];
    const reader = (async () => {
      while (reading) {
        const [r] = await m.dst(`SELECT count(*)::int AS n FROM items WHERE id BETWEEN 4001 AND 10000`);
        seen.push(r.n);
      }
    })();
    try {
      const applied = await m.cli('apply', '--replace', ITEMS, '--auto-approve');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      const last = await until(
        'the merge to finish',
        async () => (await m.dst(`SELECT last_merge FROM mirrors.tables WHERE dest_table = 'items'`))[0]?.last_merge,
        90_000,
      );
      expect(last).toMatchObject({ inserted: 50, updated: 50, deleted: 30, key: ['id'] });
      expect(last.chunks).toBeGreaterThanOrEqual(5);
    } finally {
      reading = false;
      await reader;
      await items.stop();
      await load.stop();
    }
    expect(seen.length).toBeGreaterThan(3);
    expect(Math.min(...seen)).toBe(6000);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM items');
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    // Equal rows were compared, not written.
    const [after] = await m.dst(`SELECT xmin::text AS x, xmax::text AS locked FROM items WHERE id = 9000`);
    expect(after).toEqual(untouched);
    expect(w.child.exitCode).toBeNull();
    const journal = await m.dst(`SELECT count(*)::int AS n FROM mirrors.journal WHERE action_id = $1`, [
      `merge:${ITEMS}`,
    ]);
    expect(journal[0].n).toBe(1);
    const status = JSON.parse((await m.cli('status', '--format', 'json')).stdout);
    const t = status.mirrors[0].tables.find((x: { destination: { name: string } }) => x.destination.name === 'items');
    expect(t.last_merge).toMatchObject({ inserted: 50, updated: 50, deleted: 30 });
    expect(t.merge).toBeNull();
  }, 180_000);

  it('killed -9 right after a chunk committed, resumes from the next chunk: each row merged once', async () => {
    const m = await mirrorSetup('mg2', ITEMS_SQL, TABLES_YAML, '    resync_strategy: merge\n');
    const first = await m.start([], { MIRRORS_INJECT_KILL_AFTER: 'merge_chunk' });
    await waitForCatalogStatus(m.dst, 'mg2', 'Following');
    await m.caughtUp();
    await m.dst(DIVERGE_SQL.replace(/2001 AND 2050/, '1 AND 50'));
    const applied = await m.cli('apply', '--replace', 'mirror.mg2.table.public.items', '--auto-approve');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    await until(
      'the worker to kill itself after the first chunk',
      async () => first.child.exitCode !== null || first.child.signalCode !== null,
      60_000,
    );
    const [mid] = await m.dst(`SELECT merge FROM mirrors.tables WHERE dest_table = 'items'`);
    expect(mid.merge).toMatchObject({ chunks: 1, inserted: 50, cursor: ['2000'] });
    await m.start();
    const last = await until(
      'the merge to finish',
      async () => (await m.dst(`SELECT last_merge FROM mirrors.tables WHERE dest_table = 'items'`))[0]?.last_merge,
      90_000,
    );
    expect(last).toMatchObject({ inserted: 50, updated: 50, deleted: 30 });
    await m.caughtUp();
    await m.expectSame('SELECT * FROM items');
  }, 180_000);

  it('a slot lost while the source kept writing: the plan replaces it and every table is repaired in place, never emptied', async () => {
    const m = await mirrorSetup('mg3', ITEMS_SQL, TABLES_YAML, '    resync_strategy: merge\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'mg3', 'Following');
    await m.caughtUp();
    expect(await w.stop()).toBe(0);
    // Changes the mirror never receives: written before the slot goes and while it is gone.
    await m.src(`UPDATE items SET name = 'changed' WHERE id BETWEEN 1 AND 300`);
    await m.src(`SELECT pg_drop_replication_slot('mirrors_mg3')`);
    await m.src(`DELETE FROM items WHERE id BETWEEN 301 AND 340; INSERT INTO items VALUES (50000, 'late', NULL, NULL)`);
    await m.src(`UPDATE accounts SET abalance = abalance + 1 WHERE aid <= 10`);

    const json = JSON.parse((await m.cli('plan', '--format', 'json')).stdout);
    expect(json.actions.map((a: { op: string; address: string }) => `${a.op} ${a.address}`)).toEqual([
      'create mirror.mg3.slot',
      'replace mirror.mg3.table.public.accounts',
      'replace mirror.mg3.table.public.history',
      'replace mirror.mg3.table.public.items',
      'create mirror.mg3.stream',
    ]);
    let reading = true;
    const seen: number[] = [];
    const reader = (async () => {
      while (reading) seen.push((await m.dst(`SELECT count(*)::int AS n FROM items WHERE id > 400`))[0].n);
    })();
    try {
      const applied = await m.cli('apply', '--auto-approve');
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      await m.start();
      await until(
        'every merge to finish',
        async () =>
          (
            await m.dst(`SELECT count(*)::int AS n FROM mirrors.tables WHERE mirror = 'mg3' AND last_merge IS NOT NULL`)
          )[0].n === 3,
        90_000,
      );
      await m.src(`UPDATE items SET name = 'after' WHERE id = 9999`); // and it streams on
      await m.caughtUp();
    } finally {
      reading = false;
      await reader;
    }
    expect(Math.min(...seen)).toBe(9600);
    await m.expectSame('SELECT * FROM items');
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    const [items] = await m.dst(`SELECT last_merge FROM mirrors.tables WHERE dest_table = 'items'`);
    expect(items.last_merge).toMatchObject({ inserted: 1, updated: 300, deleted: 40 });
  }, 180_000);
});
