/** Who owns synchronous_standby_names, read from a real server (issue 10, work in progress). */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { commitScope, standbyNamesOwnership } from '../../src/diff/sync-standbys.js';
import { readStandbyNames } from '../../src/inspect/standby-names.js';
import { useClusters } from '../support/clusters.js';

const clusters = useClusters(['src']);

async function facts(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const v = Number((await c.query('SHOW server_version_num')).rows[0].server_version_num);
    return await readStandbyNames(c, v);
  } finally {
    await c.end();
  }
}

describe('synchronous_standby_names ownership on a live server', () => {
  it('empty by default: ours; set by someone else with ALTER SYSTEM: not ours unless it is what mirrors wrote', async () => {
    const fresh = await facts(clusters.src.url());
    expect(fresh).toMatchObject({ setting: '', source: 'default', mayAlterSystem: true });
    expect(standbyNamesOwnership(fresh, null)).toEqual({ ours: true });
    // Which commits wait: the cluster's synchronous_commit (off on these test clusters), and database and role
    // settings that override it.
    await clusters.src.query(`CREATE DATABASE "loud db"`);
    await clusters.src.query(`ALTER DATABASE "loud db" SET synchronous_commit = on`);
    await clusters.src.query(`DO $$ BEGIN CREATE ROLE batch; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    await clusters.src.query(`ALTER ROLE batch SET synchronous_commit = off`);
    const scoped = (await facts(clusters.src.url())).commitScope;
    const [{ synchronous_commit: cluster }] = await clusters.src.query('SHOW synchronous_commit');
    expect(scoped).toMatchObject({ setting: cluster, source: 'configuration file' });
    expect(scoped.databases).toContainEqual({ name: 'loud db', setting: 'on' });
    expect(scoped.databases).toContainEqual({ name: 'postgres', setting: null });
    expect(scoped.roles).toEqual([{ role: 'batch', database: null, setting: 'off' }]);
    expect(commitScope(scoped, ['loud db'])).toMatchObject({ waiting: ['loud db'], mirroredNotWaiting: [] });
    expect(commitScope(scoped, ['postgres']).mirroredNotWaiting).toEqual(['postgres']);
    await clusters.src.query(`DROP DATABASE "loud db"`);
    await clusters.src.query(`ALTER ROLE batch RESET synchronous_commit`);

    await clusters.src.query(`ALTER SYSTEM SET synchronous_standby_names = 'node2'`);
    await clusters.src.query('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
    const set = await facts(clusters.src.url());
    expect(set.setting).toBe('node2');
    expect(set.sourcefile).toMatch(/postgresql\.auto\.conf$/);
    expect(standbyNamesOwnership(set, null).ours).toBe(false);
    expect(standbyNamesOwnership(set, 'node2').ours).toBe(true);
    await clusters.src.query('ALTER SYSTEM RESET synchronous_standby_names');
    await clusters.src.query('SELECT pg_reload_conf()');
  });

  it('a role without ALTER SYSTEM on the parameter may not manage it, and cannot read pg_file_settings', async () => {
    await clusters.src.query(`CREATE ROLE plain LOGIN PASSWORD 'plain'`);
    const url = clusters.src.url().replace(/\/\/[^@]*@/, '//plain:plain@');
    const f = await facts(url);
    expect(f.fileSettings).toBeNull();
    const o = standbyNamesOwnership(f, null);
    expect(o).toMatchObject({ ours: false, owner: 'privileges' });
  });
});
