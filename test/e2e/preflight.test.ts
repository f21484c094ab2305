/**
 * Preflight diagnostics that need a source configured differently (wal_level, slots, WAL senders), a slot
 * that lost its WAL, and types a destination must get first (domain, composite, an extension's type).
 */
import { afterAll, describe, expect, it } from 'vitest';

import { useClusters } from '../support/clusters.js';
import { runCli } from '../support/cli.js';
import { peerYaml, tempProject } from '../support/project.js';

const env = { PGPASS_TEST: 'postgres' };
const pg = useClusters(['replica', 'src', 'dst']);
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups) c();
});

function project(srcCluster: (typeof pg)['src'], db: string, mirror: string) {
  const p = tempProject(
    `version: 1\npeers:\n${peerYaml('prod', srcCluster, db)}${peerYaml('staging', pg.dst, db)}mirrors:\n${mirror}`,
  );
  cleanups.push(p.cleanup);
  return p;
}

describe('source settings', () => {
  it('MR101, MR102, MR103: wal_level replica, no free slot, no free WAL sender', async () => {
    await pg.replica.query(`ALTER SYSTEM SET wal_level = replica`);
    await pg.replica.query(`ALTER SYSTEM SET max_replication_slots = 0`);
    await pg.replica.query(`ALTER SYSTEM SET max_wal_senders = 0`);
    await pg.replica.restart();
    await pg.replica.createDatabase('p1');
    await pg.dst.createDatabase('p1');
    await pg.replica.query('CREATE TABLE t (id int PRIMARY KEY)', [], 'p1');
    const p = project(pg.replica, 'p1', `  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const r = await runCli(['plan'], { cwd: p.dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR101');
    expect(r.stdout).toContain('wal_level is replica on peer prod');
    expect(r.stdout).toContain('error MR102');
    expect(r.stdout).toContain('error MR103');
    const json = JSON.parse((await runCli(['plan', '--format', 'json'], { cwd: p.dir, env })).stdout);
    expect(json.diagnostics.map((d: { code: string }) => d.code)).toEqual(['MR101', 'MR102', 'MR103', 'MR105']);
  });
});

describe('types the destination needs', () => {
  it('creates a domain, a composite type and an extension type before the table, and copies their values exactly', async () => {
    await pg.src.createDatabase('p2');
    await pg.dst.createDatabase('p2');
    await pg.src.query(
      `CREATE EXTENSION citext;
       CREATE DOMAIN posint AS int CHECK (VALUE > 0);
       CREATE TYPE addr AS (street text, zip text);
       CREATE TABLE people (id posint PRIMARY KEY, email citext UNIQUE, home addr);
       INSERT INTO people VALUES (1, 'A@X.org', ROW('Main St, 1', '0100')), (2, 'b@y.org', NULL);`,
      [],
      'p2',
    );
    const p = project(
      pg.src,
      'p2',
      `  types: { source: prod, destination: staging, tables: [{ source_table: people }] }\n`,
    );
    const planned = await runCli(['plan'], { cwd: p.dir, env });
    expect(planned.code).toBe(0);
    const order = planned.stdout
      .split('\n')
      .filter((l) => /^\s+\+ /.test(l))
      .map((l) => l.trim());
    expect(order.indexOf('+ peer.staging.extension.citext')).toBeLessThan(
      order.indexOf('+ mirror.types.table.public.people'),
    );
    expect(order.indexOf('+ peer.staging.type.public.posint')).toBeLessThan(
      order.indexOf('+ mirror.types.table.public.people'),
    );
    expect(order.indexOf('+ peer.staging.type.public.addr')).toBeLessThan(
      order.indexOf('+ mirror.types.table.public.people'),
    );
    const r = await runCli(['apply', '--auto-approve'], { cwd: p.dir, env, timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const q = `SELECT x::text AS r FROM (SELECT * FROM people) x ORDER BY 1`;
    expect(await pg.dst.query(q, [], 'p2')).toEqual(await pg.src.query(q, [], 'p2'));
    await expect(pg.dst.query(`SELECT 0::posint`, [], 'p2')).rejects.toThrow(/violates check constraint/);
  });
});

describe('a slot that lost its WAL', () => {
  it('MR130: plan replaces the slot and copies every table again; apply does it', async () => {
    await pg.src.createDatabase('p3');
    await pg.dst.createDatabase('p3');
    await pg.src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'a' FROM generate_series(1, 100) g;`,
      [],
      'p3',
    );
    const p = project(pg.src, 'p3', `  lossy: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    expect((await runCli(['apply', '--auto-approve'], { cwd: p.dir, env, timeoutMs: 120_000 })).code).toBe(0);
    // Changes the destination never receives, then WAL past the slot's limit, then a checkpoint removes it.
    await pg.src.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await pg.src.query(`SELECT pg_reload_conf()`);
    await pg.src.query(`UPDATE t SET v = 'b' WHERE id <= 50`, [], 'p3');
    for (let i = 0; i < 6; i++) {
      await pg.src.query(
        `CREATE TABLE IF NOT EXISTS filler (x text); INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000); SELECT pg_switch_wal();`,
        [],
        'p3',
      );
    }
    await pg.src.query('CHECKPOINT');
    const [{ wal_status }] = await pg.src.query(
      `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'mirrors_lossy'`,
    );
    expect(wal_status).toBe('lost');
    try {
      const planned = await runCli(['plan'], { cwd: p.dir, env });
      expect(planned.stdout).toContain('warning MR130');
      expect(planned.stdout).toContain('-/+ mirror.lossy.slot [disruptive]');
      expect(planned.code).toBe(0);
      const r = await runCli(['apply', '--auto-approve'], { cwd: p.dir, env, timeoutMs: 120_000 });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const q = `SELECT x::text AS r FROM (SELECT * FROM t) x ORDER BY 1`;
      expect(await pg.dst.query(q, [], 'p3')).toEqual(await pg.src.query(q, [], 'p3'));
      const [{ wal_status: after }] = await pg.src.query(
        `SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'mirrors_lossy'`,
      );
      expect(after).toBe('reserved');
    } finally {
      await pg.src.query(`ALTER SYSTEM RESET max_slot_wal_keep_size`);
      await pg.src.query(`SELECT pg_reload_conf()`);
    }
  });
});
