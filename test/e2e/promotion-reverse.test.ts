/**
 * Reversible switchover end to end (issue 9): `promote: {reverse: true}` promotes the destination and, before it
 * takes a write, makes the old source a read-only mirror of it (mirror NAME_reverse, no copy). Writes on the new
 * primary reach the old source; promoting NAME_reverse (declared explicitly) switches back, guarded the same way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { peerYaml } from '../support/project.js';
import { RUN_ENV, runningMirrors, waitForCatalogStatus } from '../support/running-mirror.js';
import { runCli } from '../support/cli.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'rv');

const TABLES = `      - source_table: orders\n      - source_table: tickets\n`;

describe('reversible switchover', () => {
  it('promote with reverse: the old source follows the new primary, read-only; promoting the reverse mirror switches back', async () => {
    const m = await mirrorSetup(
      'rev',
      `CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL DEFAULT 'none');
       CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text);
       INSERT INTO orders (note) SELECT 'o' || g FROM generate_series(1, 20) g;
       INSERT INTO tickets (title) SELECT 't' || g FROM generate_series(1, 5) g;`,
      TABLES,
    );
    const w = await m.start();
    await w.waitForLog(/rev: Following/);
    await m.src(`INSERT INTO orders (note) VALUES ('before')`);
    await m.caughtUp();
    await waitForCatalogStatus(m.dst, 'rev', 'Following');

    m.rewrite('    promote:\n      reverse: true\n');
    const plan = await m.cli('plan');
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/\+ mirror\.rev_reverse\.slot/);
    expect(plan.stdout).toMatch(/~ mirror\.rev\.promotion \[irreversible\]\n\s+open: peer staging takes writes/);
    const applied = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--format', 'json');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const events = applied.stdout
      .split('\n')
      .filter((l) => l.includes('"promotion_step"'))
      .map((l) => JSON.parse(l) as { step: string; at: string });
    const steps = events.map((e) => e.step);
    const at = (step: string) => Date.parse(events.find((e) => e.step === step)!.at);
    // Neither side takes writes from the fence to the opening: the reverse mirror is created in between.
    console.log(
      `reverse: no writes for ${at('opened') - at('fence_acquired')} ms (fence acquired -> opened), of which ${at('opened') - at('point_of_no_return')} ms creating the reverse mirror`,
    );
    expect(steps).toEqual([
      'fence_acquired',
      'fence_reached',
      'fence_committed',
      'point_of_no_return',
      'opened',
      'promotion_complete',
    ]);

    // The old source is a guarded mirror of the new primary; the new primary takes application writes.
    await expect(m.src(`INSERT INTO orders (note) VALUES ('stale app')`)).rejects.toThrow(/MIRROR_READ_ONLY/);
    const w2 = await m.start(); // streams the reverse mirror, new in this configuration
    await w2.waitForLog(/rev_reverse: Following/, 30_000);
    await m.dst(`INSERT INTO orders DEFAULT VALUES`);
    await m.dst(`INSERT INTO tickets (title) VALUES ('on the new primary')`);
    await m.dst(`UPDATE orders SET note = 'changed on the new primary' WHERE id = 1`);
    await m.dst(`DELETE FROM orders WHERE id = 2`);
    await reverseCaughtUp(m);
    await m.expectSame('SELECT * FROM orders');
    await m.expectSame('SELECT * FROM tickets');
    const [{ n }] = await m.src(`SELECT count(*)::int AS n FROM orders WHERE note = 'changed on the new primary'`);
    expect(n).toBe(1);

    // Back: the reverse mirror, declared to change it, is promoted like any mirror.
    writeFileSync(
      m.p.file,
      `version: 1\npeers:\n${peerYaml('prod', clusters.src, m.db)}${peerYaml('staging', clusters.dst, m.db)}mirrors:
  rev:
    source: prod
    destination: staging
    idle_timeout_seconds: 1
    promote:
      reverse: true
    tables:\n${TABLES}  rev_reverse:
    source: staging
    destination: prod
    idle_timeout_seconds: 1
    promote: true
    tables:\n${TABLES}`,
    );
    await waitForCatalogStatus(m.src, 'rev_reverse', 'Following');
    const back = await m.cli('apply', '--auto-approve', '--allow-irreversible', '--format', 'json');
    expect(back.code, back.stdout + back.stderr).toBe(0);
    const backAt = (step: string) =>
      Date.parse(
        back.stdout
          .split('\n')
          .filter((l) => l.includes('"promotion_step"'))
          .map((l) => JSON.parse(l) as { step: string; at: string })
          .find((e) => e.step === step)!.at,
      );
    // The fence's transaction is applied at once (logical decoding messages, PostgreSQL 14+), not with the next
    // keepalive, up to a ping interval (2 s) later on an idle source.
    const pause = backAt('fence_committed') - backAt('fence_acquired');
    console.log(`switch back: write pause ${pause} ms (fence acquired -> committed)`);
    expect(pause).toBeLessThan(1_500);
    await w2.waitForLog(/rev_reverse: promoted/, 15_000);
    // The old source is the primary again: application inserts work (defaults, identity past every value handed
    // out on either side); the other side refuses writes.
    const [o] = await m.src(`INSERT INTO orders DEFAULT VALUES RETURNING id::int AS id, note`);
    expect(o.note).toBe('none');
    const [{ max }] = await m.dst('SELECT max(id)::int AS max FROM orders');
    expect(o.id).toBeGreaterThan(max);
    const [t] = await m.src(`INSERT INTO tickets (title) VALUES ('back home') RETURNING id`);
    const [{ tmax }] = await m.dst('SELECT max(id)::int AS tmax FROM tickets');
    expect(t.id).toBeGreaterThan(tmax);
    await expect(m.src(`INSERT INTO tickets (id, title) VALUES (9999, 'x')`)).rejects.toThrow(/non-DEFAULT value/);
    await expect(m.dst(`INSERT INTO orders (note) VALUES ('stale')`)).rejects.toThrow(/MIRROR_FENCED/);
    const again = await m.cli('plan', '--detailed-exitcode');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await w.stop()).toBe(0);
    expect(await w2.stop()).toBe(0);
  });
});

describe('leaving a reversible switchover', () => {
  it('removing reverse: true destroys the reverse mirror and fences the old source again: it never becomes writable beside the new primary', async () => {
    const m = await mirrorSetup('rdrop', `CREATE TABLE t (id bigserial PRIMARY KEY)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/rdrop: Following/);
    await m.src('INSERT INTO t SELECT FROM generate_series(1, 10)');
    await m.caughtUp();
    await waitForCatalogStatus(m.dst, 'rdrop', 'Following');
    m.rewrite('    promote:\n      reverse: true\n');
    const r = await m.cli('apply', '--auto-approve', '--allow-irreversible');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await w.stop()).toBe(0);

    m.rewrite('    promote: true\n');
    // A file without `project:` destroys no mirror at all (MR147); one that declares it destroys what it dropped.
    writeFileSync(m.p.file, readFileSync(m.p.file, 'utf8').replace('version: 1\n', 'version: 1\nproject: default\n'));
    const plan = await m.cli('plan');
    expect(plan.stdout).toMatch(/`reverse: true` left mirror rdrop.*get the promotion's fence back \(MIRROR_FENCED\)/);
    const destroyed = await m.cli('apply', '--auto-approve', '--allow-irreversible');
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    await expect(m.src('INSERT INTO t DEFAULT VALUES')).rejects.toThrow(/MIRROR_FENCED/);
    await m.dst('INSERT INTO t DEFAULT VALUES');
    expect(
      await m.dst(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'mirrors_rdrop_reverse'`),
    ).toEqual([{ n: 0 }]);
    expect((await m.cli('plan', '--detailed-exitcode')).code).toBe(0);
  });
});

describe('a promotion with reverse killed at every step', () => {
  // After the point of no return neither side takes writes until the opening: the old source is fenced, the new
  // primary guarded; the reverse mirror's actions come in between (its slot is the kill after an action).
  it.each(['point_of_no_return', 'slot', 'opened', 'promotion_complete'])(
    'kill -9 after %s: never two writable copies; the next apply finishes, and the old source follows the new primary',
    async (point) => {
      const name = `crev_${point}`;
      const m = await mirrorSetup(name, `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
      const w = await m.start();
      await w.waitForLog(new RegExp(`${name}: Following`));
      await m.src('INSERT INTO t SELECT generate_series(1, 50)');
      await m.caughtUp();
      await waitForCatalogStatus(m.dst, name, 'Following');
      m.rewrite('    promote:\n      reverse: true\n');
      const killed = await runCli(['apply', '--auto-approve', '--allow-irreversible'], {
        cwd: m.p.dir,
        env: { ...RUN_ENV, MIRRORS_INJECT_KILL_AFTER: point === 'slot' ? `mirror.${name}_reverse.slot` : point },
        timeoutMs: 60_000,
      });
      expect(killed.code, killed.stdout + killed.stderr).not.toBe(0);
      const writable = async (db: Sql) => {
        try {
          await db('INSERT INTO t VALUES (-1)');
          await db('DELETE FROM t WHERE id = -1');
          return true;
        } catch (err) {
          expect((err as Error).message).toMatch(/MIRROR_FENCED|MIRROR_READ_ONLY/);
          return false;
        }
      };
      expect(await writable(m.src)).toBe(false);
      expect(await writable(m.dst)).toBe(point === 'opened' || point === 'promotion_complete');

      const again = await m.cli('apply', '--auto-approve', '--allow-irreversible');
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(await writable(m.src)).toBe(false);
      const w2 = await m.start();
      await m.dst('INSERT INTO t VALUES (1000)');
      await reverseCaughtUp(m, `${name}_reverse`);
      await m.expectSame('SELECT * FROM t');
      expect((await m.cli('plan', '--detailed-exitcode')).code).toBe(0);
      expect(await w.stop()).toBe(0);
      expect(await w2.stop()).toBe(0);
    },
  );
});

type Sql = (sql: string, params?: unknown[]) => Promise<any[]>;

/** The reverse mirror (new primary -> old source) applied everything the new primary committed so far. */
async function reverseCaughtUp(m: { src: Sql; dst: Sql }, mirror = 'rev_reverse') {
  const [{ lsn }] = await m.dst('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  await m.src(`SELECT mirrors.wait_for_lsn($1, $2::pg_lsn, '60 seconds')`, [mirror, lsn]);
}
