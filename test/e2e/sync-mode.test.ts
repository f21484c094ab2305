/**
 * Sync mode end to end (issue 10, work in progress): a Following sync mirror becomes the source's synchronous
 * standby, every commit that returned is already on the destination, and commits wait while the mirror is down.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runningMirrors } from '../support/running-mirror.js';
import { startProxy } from '../support/proxy.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'sy');

async function waitForStatus(db: (sql: string, p?: unknown[]) => Promise<any[]>, mirror: string, status: string) {
  for (let i = 0; i < 100; i++) {
    const [row] = await db(`SELECT status FROM mirrors.mirrors WHERE name = $1`, [mirror]);
    if (row?.status === status) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mirror ${mirror} did not become ${status}`);
}

describe('sync mode', () => {
  it('a Following sync mirror is the synchronous standby: every returned commit is already applied; commits wait while it is down', async () => {
    const m = await mirrorSetup(
      'sm',
      `CREATE TABLE t (id int PRIMARY KEY)`,
      `      - source_table: t\n`,
      '    mode: sync\n',
    );
    const first = await m.cli('plan');
    expect(first.stdout).toMatch(/MR191/); // not Following yet: not a standby yet
    const w = await m.start();
    await w.waitForLog(/sm: Following/);
    await waitForStatus(m.dst, 'sm', 'Following');
    const plan = await m.cli('plan');
    expect(plan.stdout).toMatch(/~ peer\.prod\.synchronous_standby_names/);
    const applied = await m.cli('apply', '--auto-approve');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const [{ synchronous_standby_names: names }] = await m.src('SHOW synchronous_standby_names');
    expect(names).toBe('ANY 1 ("mirrors_sm")');
    const [rep] = await m.src(`SELECT sync_state FROM pg_stat_replication WHERE application_name = 'mirrors_sm'`);
    expect(rep.sync_state).toBe('quorum');

    // Every commit that returned is on the destination at that moment.
    const c = new pg.Client({ connectionString: clusters.src.url(m.db) });
    await c.connect();
    let missing = 0;
    for (let i = 1; i <= 50; i++) {
      await c.query('INSERT INTO t VALUES ($1)', [i]);
      const [row] = await m.dst('SELECT count(*)::int AS n FROM t WHERE id = $1', [i]);
      if (row.n !== 1) missing++;
    }
    expect(missing).toBe(0);

    // The mirror down: a commit waits; cancelled after 2 s, it is committed locally but not replicated (Postgres's
    // warning), and it reaches the mirror once it is back.
    await w.kill9();
    const [{ pid }] = (await c.query('SELECT pg_backend_pid() AS pid')).rows;
    const t0 = Date.now();
    const cancel = setTimeout(() => void clusters.src.query('SELECT pg_cancel_backend($1)', [pid]), 2_000);
    await c.query('INSERT INTO t VALUES (1000)').catch(() => {});
    clearTimeout(cancel);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_900);
    // on_sync_loss: block (the default): a plan made while it is down keeps it listed; commits keep waiting.
    const whileDown = await m.cli('plan');
    expect(whileDown.stdout).not.toMatch(/synchronous_standby_names/);
    const w2 = await m.start();
    await w2.waitForLog(/sm: Following/, 30_000);
    const t1 = Date.now();
    await c.query('INSERT INTO t VALUES (1001)');
    expect(Date.now() - t1).toBeLessThan(1_000);
    await c.end();
    await m.expectSame('SELECT * FROM t');
    await clusters.src.query('ALTER SYSTEM RESET synchronous_standby_names');
    await clusters.src.query('SELECT pg_reload_conf()');
    expect(await w2.stop()).toBe(0);
  });

  it('leaves a synchronous_standby_names set in postgresql.conf alone, naming the file and line (MR192)', async () => {
    const m = await mirrorSetup(
      'so',
      `CREATE TABLE t (id int PRIMARY KEY)`,
      `      - source_table: t\n`,
      '    mode: sync\n',
    );
    const conf = path.join(clusters.src.dataDir, 'postgresql.conf');
    const before = readFileSync(conf, 'utf8');
    appendFileSync(conf, `\nsynchronous_standby_names = 'patroni_node2'\n`);
    await clusters.src.query('SELECT pg_reload_conf()');
    try {
      const w = await m.start();
      await w.waitForLog(/so: Following/);
      await waitForStatus(m.dst, 'so', 'Following');
      const plan = await m.cli('plan');
      expect(plan.code).toBe(1);
      expect(plan.stdout).toMatch(/MR192/);
      expect(plan.stdout).toMatch(/postgresql\.conf:\d+/);
      const [{ synchronous_standby_names: names }] = await m.src('SHOW synchronous_standby_names');
      expect(names).toBe('patroni_node2');
      expect(await w.stop()).toBe(0);
    } finally {
      writeFileSync(conf, before);
      await clusters.src.query('SELECT pg_reload_conf()');
    }
  });

  it('on_sync_loss degrade_after: commits wait at most that long for a mirror that stopped confirming; it is synchronous again once back', async () => {
    const m = await mirrorSetup(
      'dg',
      `CREATE TABLE t (id int PRIMARY KEY)`,
      `      - source_table: t\n`,
      '    mode: sync\n    on_sync_loss: { degrade_after: 3s }\n',
    );
    const proxy = await startProxy(clusters.dst.port);
    try {
      const w = await m.startThrough({ dst: proxy.port });
      await w.waitForLog(/dg: Following/);
      await waitForStatus(m.dst, 'dg', 'Following');
      expect((await m.cli('apply', '--auto-approve')).code).toBe(0);
      expect((await m.src('SHOW synchronous_standby_names'))[0].synchronous_standby_names).toBe('ANY 1 ("mirrors_dg")');
      // The guardian learns the value mirrors recorded while the destination answers (it checks every second).
      await new Promise((r) => setTimeout(r, 2_500));
      // The destination partitioned away from the worker: its walsender stays connected but confirms nothing.
      proxy.blackhole();
      const c = new pg.Client({ connectionString: clusters.src.url(m.db) });
      await c.connect();
      const t0 = Date.now();
      await c.query('INSERT INTO t VALUES (1)');
      const waited = Date.now() - t0;
      console.log(`degrade: a commit waited ${waited} ms (degrade_after 3 s)`);
      expect(waited).toBeGreaterThanOrEqual(2_900);
      expect(waited).toBeLessThan(10_000);
      await w.waitForLog(/dg: degraded/, 5_000);
      expect((await m.src('SHOW synchronous_standby_names'))[0].synchronous_standby_names).toBe('');
      const t1 = Date.now();
      await c.query('INSERT INTO t VALUES (2)');
      expect(Date.now() - t1).toBeLessThan(1_000); // no longer waits
      proxy.heal();
      await w.waitForLog(/dg: synchronous again/, 60_000);
      expect((await m.src('SHOW synchronous_standby_names'))[0].synchronous_standby_names).toBe('ANY 1 ("mirrors_dg")');
      await c.end();
      await m.caughtUp();
      await m.expectSame('SELECT * FROM t');
      expect(await w.stop()).toBe(0);
    } finally {
      proxy.heal();
      await proxy.close();
      await clusters.src.query('ALTER SYSTEM RESET synchronous_standby_names');
      await clusters.src.query('SELECT pg_reload_conf()');
    }
  });
});
