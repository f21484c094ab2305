/**
 * Guarded promotion end to end (issue 9): under a write load on the source, `promote: true` + apply fences the
 * source, waits exactly for the fence on the destination, and makes the destination the primary: every
 * transaction the source acknowledged before the fence is there, every write after it fails with
 * MIRROR_FENCED, and the mirror reads Promoted with nothing left to plan.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { findPgBin } from '../../src/devtools/cluster.js';
import { useClusters } from '../support/clusters.js';
import { runningMirrors, waitForCatalogStatus } from '../support/running-mirror.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'pr');

/** Writes until told to stop; counts acknowledged commits and writes refused by the fence. */
function fencedLoad(url: string) {
  let stopping = false;
  const acked: number[] = [];
  let fenced = 0;
  let firstFencedAt = 0;
  let lastAckedAt = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    let id = 0;
    try {
      while (!stopping) {
        id++;
        try {
          await c.query(`INSERT INTO orders (id, note) VALUES (${id}, 'n${id}')`);
          acked.push(id);
          lastAckedAt = Date.now();
        } catch (err) {
          if (!/MIRROR_FENCED/.test((err as Error).message)) throw err;
          fenced++;
          if (!firstFencedAt) firstFencedAt = Date.now();
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } finally {
      await c.end();
    }
  })();
  return {
    acked: () => acked.length,
    async stop() {
      stopping = true;
      await done;
      return { acked, fenced, firstFencedAt, lastAckedAt };
    },
  };
}

describe('guarded promotion', () => {
  it('under load: nothing acknowledged before the fence is lost, every write after it fails with MIRROR_FENCED, the destination is the primary', async () => {
    const m = await mirrorSetup(
      'promo',
      `CREATE TABLE orders (id int PRIMARY KEY, note text);
       CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), v int);
       CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text DEFAULT 'untitled');
       INSERT INTO events (v) SELECT g FROM generate_series(1, 50) g;
       INSERT INTO tickets (title) SELECT 't' || g FROM generate_series(1, 5) g;
       SELECT nextval('events_id_seq') FROM generate_series(1, 7); -- handed out, never stored`,
      `      - source_table: orders\n      - source_table: events\n      - source_table: tickets\n`,
    );
    const w = await m.start();
    await w.waitForLog(/promo: Following/);
    const load = fencedLoad(clusters.src.url(m.db));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(load.acked()).toBeGreaterThan(20);

    m.rewrite('    promote: true\n');
    const plan = await m.cli('plan', '--detailed-exitcode');
    expect(plan.stdout + plan.stderr).toMatch(/promotion/);
    expect(plan.stdout).toMatch(
      /LOCK TABLE "public"."orders", "public"."events", "public"."tickets" IN EXCLUSIVE MODE|LOCK TABLE .* IN EXCLUSIVE MODE/,
    );
    expect(plan.stdout).toMatch(/setval\('public\.events_id_seq'/);
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    // Reviewed as a saved plan, applied while the source keeps writing: the plan must not go stale with its WAL.
    const saved = await m.cli('plan', '--out', 'promote.plan.json');
    expect(saved.code, saved.stdout + saved.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    const applied = await m.cli('apply', 'promote.plan.json', '--allow-irreversible', '--format', 'json');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const steps = applied.stdout
      .split('\n')
      .filter((l) => l.includes('"promotion_step"'))
      .map((l) => JSON.parse(l) as { step: string; ms: number });
    const at = (s: string) => steps.find((x) => x.step === s)?.ms;
    expect(steps.map((s) => s.step)).toEqual([
      'fence_acquired',
      'fence_reached',
      'fence_committed',
      'point_of_no_return',
      'promotion_complete',
    ]);
    await new Promise((r) => setTimeout(r, 500));
    const r = await load.stop();
    console.log(
      `promotion: ${r.acked.length} writes acknowledged before the fence, ${r.fenced} refused after it; write pause (fence acquired -> committed) ${at('fence_committed')! - at('fence_acquired')!} ms; whole promotion ${at('promotion_complete')} ms`,
    );
    expect(r.fenced).toBeGreaterThan(0);
    // Everything the source acknowledged is on the new primary, and nothing else.
    const ids = (await m.dst('SELECT id FROM orders ORDER BY id')).map((x: { id: number }) => x.id);
    expect(ids).toEqual(r.acked);
    await m.expectSame('SELECT * FROM orders');
    // The new primary takes writes; the old source refuses them; the mirror is Promoted; nothing left to plan.
    await m.dst(`INSERT INTO orders (id, note) VALUES (-1, 'on the new primary')`);
    // An application insert works as it did on the source: defaults, serial and identity, past every value
    // the source handed out (57 from events_id_seq), GENERATED ALWAYS kept.
    const [ev] = await m.dst(`INSERT INTO events (v) VALUES (0) RETURNING id::int AS id, at IS NOT NULL AS has_at`);
    expect(ev.has_at).toBe(true);
    expect(ev.id).toBeGreaterThan(57);
    const [tk] = await m.dst(`INSERT INTO tickets DEFAULT VALUES RETURNING id, title`);
    expect(tk.id).toBeGreaterThan(5);
    expect(tk.title).toBe('untitled');
    await expect(m.dst(`INSERT INTO tickets (id) VALUES (1000)`)).rejects.toThrow(/non-DEFAULT value/);
    await expect(m.src(`INSERT INTO orders (id, note) VALUES (-2, 'stale app')`)).rejects.toThrow(/MIRROR_FENCED/);
    const status = JSON.parse((await m.cli('status', '--format', 'json')).stdout).mirrors[0];
    expect(status.status.name).toBe('Promoted');
    expect(
      await m.src(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'mirrors_promo'`),
    ).toEqual([{ n: 0 }]);
    const again = await m.cli('plan', '--detailed-exitcode');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    await w.waitForLog(/promo: Promoted/, 10_000);
    expect(await w.stop()).toBe(0);
  });

  it('verify: counts abandons a promotion whose destination differs, before anything changed', async () => {
    const m = await mirrorSetup('verified', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/verified: Following/);
    await m.src('INSERT INTO t SELECT generate_series(1, 100)');
    await m.caughtUp();
    // A row lost on the destination (the guard is bypassed as the worker does).
    await m.dst(`SET session_replication_role = replica; DELETE FROM t WHERE id = 7`);
    m.rewrite('    promote:\n      verify: counts\n');
    const r = await m.cli('apply', '--auto-approve', '--allow-irreversible');
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(
      /verify counts: public\.t has 100 rows on the source, public\.t 99 on the destination/,
    );
    // Nothing changed: the source takes writes, the mirror streams them.
    await m.src('INSERT INTO t VALUES (101)');
    await m.caughtUp();
    const [row] = await m.dst(`SELECT promoted_at, promotion FROM mirrors.mirrors WHERE name = 'verified'`);
    expect(row).toEqual({ promoted_at: null, promotion: null });
    expect(await w.stop()).toBe(0);
  });

  it('verify: checksums catches a changed row with equal counts, and passes on equal data whatever the sessions print', async () => {
    const m = await mirrorSetup(
      'summed',
      `CREATE TABLE v (id int PRIMARY KEY, at timestamptz, f float8, span interval, b bytea, note text)`,
      `      - source_table: v\n`,
    );
    // Sessions on the two sides print timestamps and intervals differently: the checksums must not care.
    await m.dst(`ALTER DATABASE ${m.db} SET TimeZone = 'Pacific/Auckland'`);
    await m.dst(`ALTER DATABASE ${m.db} SET IntervalStyle = 'iso_8601'`);
    const w = await m.start();
    await w.waitForLog(/summed: Following/);
    await m.src(
      `INSERT INTO v SELECT g, now() - g * interval '1 hour', g / 3.0, g * interval '90 minutes', decode(md5(g::text), 'hex'), 'n' || g FROM generate_series(1, 200) g`,
    );
    await m.caughtUp();
    await m.dst(`SET session_replication_role = replica; UPDATE v SET note = 'tampered' WHERE id = 42`);
    m.rewrite('    promote:\n      verify: checksums\n');
    await waitForCatalogStatus(m.dst, 'summed', 'Following');
    const bad = await m.cli('apply', '--auto-approve', '--allow-irreversible');
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toMatch(
      /verify checksums: public\.v has the same 200 rows on both sides, but their contents differ/,
    );
    await expect(m.src('INSERT INTO v (id) VALUES (1000)')).resolves.toBeDefined(); // nothing changed
    await m.caughtUp();
    // Repaired: equal data, printed differently by the two sessions, verifies.
    await m.dst(`SET session_replication_role = replica; UPDATE v SET note = 'n42' WHERE id = 42`);
    await waitForCatalogStatus(m.dst, 'summed', 'Following');
    const good = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--format', 'json');
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('"step":"verified"');
    expect(await w.stop()).toBe(0);
  });

  it('read_only_source: new sessions of the old source are read-only, so libpq clients with target_session_attrs=read-write and both hosts land on the new primary', async () => {
    const m = await mirrorSetup(
      'rosrc',
      `CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE unmirrored (id int)`,
      `      - source_table: t\n`,
    );
    const w = await m.start();
    await w.waitForLog(/rosrc: Following/);
    await m.src('INSERT INTO t VALUES (0)');
    await m.caughtUp();
    await waitForCatalogStatus(m.dst, 'rosrc', 'Following');
    m.rewrite('    promote:\n      read_only_source: true\n');
    const r = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--format', 'json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('"step":"source_read_only"');
    // Every new session of the old source's database, for tables not mirrored too; the new primary writes.
    await expect(m.src('INSERT INTO unmirrored VALUES (1)')).rejects.toThrow(/read-only transaction/);
    await m.dst('INSERT INTO t VALUES (1)');
    const psql = path.join(findPgBin(), 'psql');
    if (!existsSync(psql)) {
      console.log(`skipped the libpq check: no psql next to pg_ctl in ${findPgBin()}`);
    } else {
      // The old source first in the list: libpq skips it as read-only and connects to the new primary.
      const conninfo = `host=127.0.0.1,127.0.0.1 port=${clusters.src.port},${clusters.dst.port} dbname=${m.db} user=postgres target_session_attrs=read-write`;
      const out = execFileSync(psql, [conninfo, '-XAtc', 'SELECT inet_server_port()'], {
        env: { ...process.env, PGPASSWORD: 'postgres' },
      });
      expect(out.toString().trim()).toBe(String(clusters.dst.port));
    }
    // A later apply (e.g. after an interruption) still works on the read-only old source: nothing left to do.
    const again = await m.cli('plan', '--detailed-exitcode');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await w.stop()).toBe(0);
  });
});
