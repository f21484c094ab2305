/**
 * resync_strategy swap (issue 11): the table is copied into a shadow and swapped in while the source keeps writing;
 * a reader sees the old rows or the new ones, never an empty table or an error, and what readers depend on (grants,
 * comments, views, indexes, other tables' foreign keys, triggers, the guard) is there after the swap.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runCli } from '../support/cli.js';
import {
  LOAD_TABLES_SQL,
  LOAD_TABLES_YAML,
  RUN_ENV,
  runningMirrors,
  waitForCatalogStatus,
  writeLoad,
} from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst']);
const mirrorSetup = runningMirrors(clusters, 'sw');

const ORDERS_SQL = `${LOAD_TABLES_SQL}
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL, amount int NOT NULL);
INSERT INTO orders (note, amount) SELECT 'order ' || i, i % 100 FROM generate_series(1, 20000) i;`;
const TABLES_YAML = `${LOAD_TABLES_YAML}      - source_table: orders\n`;

/** What readers and other tables built on the destination's orders, and rows someone wrote past the guard. */
const DESTINATION_SQL = `DROP ROLE IF EXISTS swap_reader; CREATE ROLE swap_reader;
GRANT SELECT ON orders TO swap_reader;
GRANT UPDATE (note) ON orders TO swap_reader;
COMMENT ON TABLE orders IS 'orders, mirrored';
COMMENT ON COLUMN orders.note IS 'free text';
CREATE INDEX orders_by_note ON orders (note);
CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 90;
GRANT SELECT ON big_orders TO swap_reader;
CREATE TABLE lines (id int PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id));
INSERT INTO lines SELECT i, i FROM generate_series(1, 100) i;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER touched BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE orders DISABLE TRIGGER touched;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY small_orders ON orders AS RESTRICTIVE FOR SELECT TO swap_reader USING (amount < 50);
CREATE POLICY everyone ON orders FOR ALL TO PUBLIC USING (true) WITH CHECK (amount >= 0);
CREATE STATISTICS orders_stats (ndistinct) ON note, amount FROM orders;
ALTER TABLE orders ADD CONSTRAINT amount_known CHECK (amount IS NOT NULL) NOT VALID;
ALTER TABLE orders REPLICA IDENTITY FULL;
SET session_replication_role = replica;
DELETE FROM orders WHERE id BETWEEN 5001 AND 5100;
UPDATE orders SET note = 'wrong' WHERE id BETWEEN 6001 AND 6100;`;

/** SELECT count(*) in a loop on its own connection: the counts it saw, and any error. */
function reader(url: string, sql: string) {
  let stopping = false;
  const counts = new Set<number>();
  const errors: string[] = [];
  let slowestMs = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      while (!stopping) {
        const began = performance.now();
        try {
          counts.add((await c.query(sql)).rows[0].n);
          slowestMs = Math.max(slowestMs, performance.now() - began);
        } catch (e) {
          errors.push((e as Error).message);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      stopping = true;
      await done;
      return { counts: [...counts].sort((a, b) => a - b), errors, slowestMs };
    },
  };
}

/** Updates of orders on the source until stopped (its row count stays 20000). */
function ordersLoad(url: string) {
  let stopping = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      while (!stopping) {
        const id = 1 + Math.floor(Math.random() * 20000);
        await c.query('UPDATE orders SET amount = amount + 1 WHERE id = $1', [id]);
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

describe('resync_strategy swap', () => {
  it('--replace under load: readers see the old rows, then the new ones, never an empty table; what they depend on is carried', async () => {
    const m = await mirrorSetup('sw1', ORDERS_SQL, TABLES_YAML, '    resync_strategy: swap\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'sw1', 'Following');
    await m.caughtUp();
    await m.dst(DESTINATION_SQL);
    const before = await m.dst(`SELECT oid::int AS oid FROM pg_class WHERE relname = 'orders'`);

    const plan = await m.cli('plan', '--replace', 'mirror.sw1.table.public.orders');
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/swap that in/);
    expect(plan.stdout).toMatch(/view public\.big_orders/);

    const load = writeLoad(clusters.src.url(m.db));
    const orders = ordersLoad(clusters.src.url(m.db));
    const table = reader(clusters.dst.url(m.db), 'SELECT count(*)::int AS n FROM orders');
    const view = reader(clusters.dst.url(m.db), 'SELECT count(*)::int AS n FROM big_orders');
    const began = performance.now();
    const r = await m.cli('apply', '--replace', 'mirror.sw1.table.public.orders', '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const applyMs = performance.now() - began;
    await new Promise((res) => setTimeout(res, 300));
    const seen = await table.stop();
    const viewSeen = await view.stop();
    // What a reader waits at most, the swap's lock among it (a count(*) of 20000 rows takes a few ms itself).
    console.log(
      `swap: apply --replace ${Math.round(applyMs)} ms; slowest reader query ${Math.round(seen.slowestMs)} ms on the table, ${Math.round(viewSeen.slowestMs)} ms on its view`,
    );
    await orders.stop();
    await load.stop();

    // The old table held 19900 rows (and got back those the source updated meanwhile: the stream upserts), the new one
    // 20000: never fewer, as a partly loaded or emptied table would show, and no error.
    expect(seen.errors).toEqual([]);
    // Nor on its view: the swap locks the view before the table, as a query of the view does (no deadlock).
    expect(viewSeen.errors).toEqual([]);
    expect(seen.counts[0]).toBe(19900);
    expect(seen.counts.at(-1)).toBe(20000);
    await m.caughtUp();
    for (const t of ['orders', 'accounts', 'history']) await m.expectSame(`SELECT * FROM ${t}`);

    // A new table in the old one's place, with what readers and the tool depend on.
    const [after] = await m.dst(`SELECT oid::int AS oid FROM pg_class WHERE relname = 'orders'`);
    expect(after.oid).not.toBe(before[0].oid);
    const [carried] = await m.dst(`SELECT
        has_table_privilege('swap_reader', 'orders', 'SELECT') AS granted,
        has_column_privilege('swap_reader', 'orders', 'note', 'UPDATE') AS column_granted,
        obj_description('orders'::regclass, 'pg_class') AS comment,
        col_description('orders'::regclass, 2) AS note_comment,
        to_regclass('orders_by_note') IS NOT NULL AS indexed,
        (SELECT count(*)::int FROM big_orders) AS view_rows,
        has_table_privilege('swap_reader', 'big_orders', 'SELECT') AS view_granted,
        (SELECT convalidated FROM pg_constraint WHERE conname = 'lines_order_id_fkey') AS fk_valid,
        (SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'lines_order_id_fkey') AS fk_to,
        (SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'touched' AND tgrelid = 'orders'::regclass) AS trigger,
        (SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'mirrors_read_only' AND tgrelid = 'orders'::regclass) AS guard,
        (SELECT conname FROM pg_constraint WHERE contype = 'p' AND conrelid = 'orders'::regclass) AS pkey,
        pg_get_serial_sequence('orders', 'id') AS sequence,
        (SELECT relrowsecurity FROM pg_class WHERE oid = 'orders'::regclass) AS rls,
        (SELECT string_agg(polname || ':' || polpermissive || ':' || pg_get_expr(polqual, polrelid), ',' ORDER BY polname)
           FROM pg_policy WHERE polrelid = 'orders'::regclass) AS policies,
        (SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'orders'::regclass) AS statistics,
        (SELECT convalidated FROM pg_constraint WHERE conname = 'amount_known' AND conrelid = 'orders'::regclass) AS check_valid,
        (SELECT relreplident::text FROM pg_class WHERE oid = 'orders'::regclass) AS replica_identity,
        to_regclass('mirrors_swap_${before[0].oid}') IS NULL AS shadow_gone`);
    expect(carried).toEqual({
      granted: true,
      column_granted: true,
      comment: 'orders, mirrored',
      note_comment: 'free text',
      indexed: true,
      view_rows: (await m.src('SELECT count(*)::int AS n FROM orders WHERE amount > 90'))[0].n,
      view_granted: true,
      fk_valid: true,
      fk_to: 'orders',
      trigger: 'D',
      guard: 'O',
      pkey: 'orders_pkey',
      sequence: 'public.orders_id_seq',
      rls: true,
      policies: 'everyone:true:true,small_orders:false:(amount < 50)',
      statistics: 'orders_stats',
      check_valid: false,
      replica_identity: 'f',
      shadow_gone: true,
    });
    await expect(m.dst(`UPDATE orders SET note = 'x' WHERE id = 1`)).rejects.toThrow(/MIRROR_READ_ONLY/);
    expect(await w.stop()).toBe(0);
    await m.dst('DROP OWNED BY swap_reader; DROP ROLE swap_reader');
  });

  it('a lost slot under swap: every table copied again into a shadow and swapped in, readers never see one empty', async () => {
    const m = await mirrorSetup('sw2', ORDERS_SQL, TABLES_YAML, '    resync_strategy: swap\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'sw2', 'Following');
    await m.caughtUp();
    expect(await w.stop()).toBe(0);
    await m.src(`SELECT pg_drop_replication_slot('mirrors_sw2')`);
    await m.src(`UPDATE orders SET amount = -1 WHERE id <= 10`); // never streamed: the copy brings it

    const plan = await m.cli('plan', '--format', 'json');
    const p = JSON.parse(plan.stdout);
    const snapshot = p.actions.find((a: { kind: string }) => a.kind === 'snapshot');
    expect(snapshot.details.tables.map((t: { swap?: unknown }) => !!t.swap)).toEqual([true, true, true]);

    const table = reader(clusters.dst.url(m.db), 'SELECT count(*)::int AS n FROM accounts');
    const r = await m.cli('apply', '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const seen = await table.stop();
    expect(seen.errors).toEqual([]);
    expect(seen.counts).toEqual([1000]);
    const w2 = await m.start();
    await waitForCatalogStatus(m.dst, 'sw2', 'Following');
    await m.src(`UPDATE orders SET amount = -2 WHERE id = 11`);
    await m.caughtUp();
    for (const t of ['orders', 'accounts', 'history']) await m.expectSame(`SELECT * FROM ${t}`);
    expect(await w2.stop()).toBe(0);
  });

  it('kill -9 with the shadow loaded, before the swap: readers keep the old rows, and the next apply swaps again', async () => {
    const m = await mirrorSetup('sw3', ORDERS_SQL, TABLES_YAML, '    resync_strategy: swap\n');
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'sw3', 'Following');
    await m.caughtUp();
    await m.dst('SET session_replication_role = replica; DELETE FROM orders WHERE id <= 10');
    const killed = await runCli(['apply', '--replace', 'mirror.sw3.table.public.orders', '--auto-approve'], {
      cwd: m.p.dir,
      env: { ...RUN_ENV, MIRRORS_INJECT_KILL_AFTER: 'swap_loaded' },
      timeoutMs: 60_000,
    });
    expect(killed.code, killed.stdout + killed.stderr).not.toBe(0);
    expect(await m.dst('SELECT count(*)::int AS n FROM orders')).toEqual([{ n: 19990 }]);
    // The interrupted copy is planned again, as a swap, with no --replace.
    const plan = await m.cli('plan');
    expect(plan.stdout).toMatch(/mirror\.sw3\.snapshot/);
    const r = await m.cli('apply', '--auto-approve');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await m.src(`UPDATE orders SET amount = 7 WHERE id = 1`);
    await m.caughtUp();
    await m.expectSame('SELECT * FROM orders');
    expect(await m.dst(`SELECT count(*)::int AS n FROM pg_class WHERE relname LIKE 'mirrors_swap_%'`)).toEqual([
      { n: 0 },
    ]);
    expect(await w.stop()).toBe(0);
  });
});
