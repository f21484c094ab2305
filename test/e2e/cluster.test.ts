import fs from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startCluster } from '../../src/devtools/cluster.js';
import { useClusters } from '../support/clusters.js';

describe('devtools cluster', () => {
  const c = useClusters(['a', 'b'], { superuserPassword: "s3cret'pw" });

  it('runs with wal_level=logical and the test settings', async () => {
    const rows = await c.a.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
      [['wal_level', 'max_replication_slots', 'listen_addresses', 'fsync']],
    );
    expect(Object.fromEntries(rows.map((r) => [r.name, r.setting]))).toEqual({
      fsync: 'off',
      listen_addresses: '127.0.0.1',
      max_replication_slots: '20',
      wal_level: 'logical',
    });
  });

  it('accepts a scram password connection on 127.0.0.1 and rejects a wrong password', async () => {
    const client = new pg.Client({ connectionString: c.a.url() });
    await client.connect();
    const { rows } = await client.query(
      `SELECT current_user AS u, inet_server_addr()::text AS addr, a.auth_method
         FROM pg_hba_file_rules a WHERE a.type = 'host' AND 'all' = ANY(a.database) LIMIT 1`,
    );
    await client.end();
    expect(rows[0]).toEqual({ u: 'postgres', addr: '127.0.0.1/32', auth_method: 'scram-sha-256' });

    const bad = new pg.Client({
      host: '127.0.0.1',
      port: c.a.port,
      user: 'postgres',
      password: 'wrong',
      database: 'postgres',
    });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
  });

  it('gives two clusters different ports', () => {
    expect(c.a.port).toBeGreaterThan(0);
    expect(c.b.port).toBeGreaterThan(0);
    expect(c.a.port).not.toBe(c.b.port);
    expect(c.a.dataDir).not.toBe(c.b.dataDir);
  });

  it('creates databases', async () => {
    await c.b.createDatabase('Mixed Case');
    const rows = await c.b.query<{ db: string }>('SELECT current_database() AS db', [], 'Mixed Case');
    expect(rows).toEqual([{ db: 'Mixed Case' }]);
  });

  it('keeps data and port across restart and after an immediate kill', async () => {
    const x = await startCluster({ name: 'restart' });
    try {
      const port = x.port;
      await x.query('CREATE TABLE t (id int primary key, v text)');
      await x.query(`INSERT INTO t VALUES (1, 'one'), (2, 'two')`);
      await x.restart();
      expect(x.port).toBe(port);
      expect(await x.query('SELECT * FROM t ORDER BY id')).toEqual([
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
      ]);
      // synchronous_commit=off (the default here) could lose this commit to an immediate shutdown
      await x.query(`SET synchronous_commit = on; INSERT INTO t VALUES (3, 'three')`);
      await x.kill();
      await expect(x.query('SELECT 1')).rejects.toThrow();
      await x.start();
      expect(x.port).toBe(port);
      expect((await x.query('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 2, 3]);
    } finally {
      await x.stop();
    }
  });

  it('stop() shuts the server down and removes the data dir', async () => {
    const x = await startCluster({ name: 'stopme', settings: { work_mem: '8MB', max_wal_senders: 7 } });
    expect(await x.query('SHOW max_wal_senders')).toEqual([{ max_wal_senders: '7' }]);
    expect(fs.existsSync(x.dataDir)).toBe(true);
    await x.stop();
    expect(fs.existsSync(x.dataDir)).toBe(false);
    await expect(x.query('SELECT 1')).rejects.toThrow();
  });
});
