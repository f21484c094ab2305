/**
 * `mirrors verify` (issue 12) against live mirrors: equal under write load (the worker's hold at the point is
 * measured and printed), destination rows changed, deleted and inserted behind the worker's back named by key,
 * a leaf partition emptied on the source without the relay caught, and a resync (--replace, merge) making
 * the mirror equal again.
 */
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
const mirrorSetup = runningMirrors(clusters, 'vf');

const ITEMS_SQL = `${LOAD_TABLES_SQL}
CREATE TABLE items (id int PRIMARY KEY, v text, n numeric, at timestamptz DEFAULT now(), tags text[]);
INSERT INTO items SELECT g, md5(g::text), g / 7.0, now(), ARRAY['a', g::text] FROM generate_series(1, 25000) g;`;
const ITEMS_YAML = `${LOAD_TABLES_YAML}      - source_table: items\n`;

const json = (stdout: string) => JSON.parse(stdout);
type Table = {
  address: string;
  outcome: string;
  rows: { source: number; destination: number };
  chunks: { compared: number; differing: number };
  missing: { keys: string[] };
  extra: { keys: string[] };
  changed: { keys: string[] };
  partitions?: { partition: string; source: number; destination: number }[];
};
const table = (report: any, name: string): Table =>
  report.mirrors[0].tables.find((t: Table) => t.address.endsWith(`.table.public.${name}`));

describe('mirrors verify', () => {
  it('an equal mirror under write load: exit 0, every table equal, the worker held for milliseconds', async () => {
    const m = await mirrorSetup('vf_eq', ITEMS_SQL, ITEMS_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'vf_eq', 'Following');
    const load = writeLoad(clusters.src.url(m.db));
    await until('the load streams', async () => (await m.dst('SELECT count(*)::int AS n FROM history'))[0].n > 50);
    const holds: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await m.cli('verify', '--chunk-rows', '4000', '--format', 'json');
      expect(r.code, r.stdout + r.stderr + w.logs().slice(-3000)).toBe(0);
      const report = json(r.stdout);
      expect(report.outcome).toBe('equal');
      const mv = report.mirrors[0];
      expect(mv.tables.map((t: Table) => t.outcome)).toEqual(['equal', 'equal', 'equal']);
      expect(table(report, 'items').chunks).toMatchObject({ compared: 7, differing: 0 });
      expect(table(report, 'history').rows.source).toBeGreaterThan(50);
      holds.push(mv.holdMs);
    }
    // A sample compares part of each table, in chunks the seed picks; the same seed picks the same chunks.
    const sampled = async (seed: string) => {
      const r = await m.cli('verify', '--sample', '0.2', '--seed', seed, '--chunk-rows', '1000', '--format', 'json');
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return table(json(r.stdout), 'items');
    };
    const s1 = await sampled('1');
    expect(s1.rows.source).toBeGreaterThan(0);
    expect(s1.rows.source, JSON.stringify(s1)).toBeLessThan(25000 * 0.6);
    expect((await sampled('1')).rows.source).toBe(s1.rows.source);
    await load.stop();
    // The destination applies nothing while the run opens its snapshot: milliseconds, printed.
    expect(Math.max(...holds)).toBeLessThan(1000);
    console.log(`verify under load: the worker held ${holds.map((h) => h.toFixed(1)).join(', ')} ms`);
    const text = await m.cli('verify');
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toMatch(/= mirror vf_eq: equal, 3 tables/);
    expect(text.stdout).toMatch(/the worker applied nothing for [0-9.]+ ms at that point/);
    const [run] = await m.dst(
      `SELECT outcome, tables_differing, hold_ms FROM mirrors.verify_runs ORDER BY id DESC LIMIT 1`,
    );
    expect(run).toMatchObject({ outcome: 'equal', tables_differing: 0 });
    expect(await w.stop()).toBe(0);
  });

  it('rows changed, deleted and inserted on the destination behind the worker: exit 2 with their keys; --replace makes it equal', async () => {
    const m = await mirrorSetup('vf_tamper', ITEMS_SQL, ITEMS_YAML);
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'vf_tamper', 'Following');
    // The read-only guard is bypassed the only way it can be: a superuser as a replica.
    await m.dst(`SET session_replication_role = replica;
      UPDATE items SET v = 'tampered' WHERE id IN (17, 18000);
      DELETE FROM items WHERE id = 4242;
      INSERT INTO items (id, v) VALUES (99999, 'intruder');
      RESET session_replication_role`);
    const load = writeLoad(clusters.src.url(m.db));
    const r = await m.cli('verify', '--chunk-rows', '4000', '--format', 'json');
    await load.stop();
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const report = json(r.stdout);
    const items = table(report, 'items');
    expect(items.outcome).toBe('different');
    expect(items.changed.keys.sort()).toEqual(['id 17', 'id 18000']);
    expect(items.missing.keys).toEqual(['id 4242']);
    expect(items.extra.keys).toEqual(['id 99999']);
    expect(table(report, 'accounts').outcome).toBe('equal');
    const text = await m.cli('verify', '--table', 'mirror.vf_tamper.table.public.items');
    expect(text.code).toBe(2);
    expect(text.stdout).toContain('missing on the destination (1): id 4242');
    expect(text.stdout).toContain('fix: mirrors apply --replace mirror.vf_tamper.table.public.items');

    // The plan carries the finding (MR165) with the resync that repairs it: a scheduled plan exits 2.
    const plan = await m.cli('plan', '--detailed-exitcode', '--format', 'json');
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    const mr165 = json(plan.stdout).diagnostics.filter((d: { code: string }) => d.code === 'MR165');
    expect(mr165).toHaveLength(1);
    expect(mr165[0]).toMatchObject({ address: 'mirror.vf_tamper.table.public.items', severity: 'warning' });
    expect(mr165[0].message).toMatch(/different from its source: rows 1 missing, 1 extra, 2 changed/);
    expect(mr165[0].hint).toContain('mirrors apply --replace mirror.vf_tamper.table.public.items');
    // A sampled run that finds the table equal (it compares part of it) does not clear what the full run found.
    const sampledRun = await m.cli(
      'verify',
      '--sample',
      '0.01',
      '--chunk-rows',
      '100',
      '--seed',
      '3',
      '--format',
      'json',
    );
    if (table(json(sampledRun.stdout), 'items').outcome === 'equal') {
      const still = await m.cli('plan', '--detailed-exitcode', '--format', 'json');
      expect(json(still.stdout).diagnostics.filter((d: { code: string }) => d.code === 'MR165')).toHaveLength(1);
    }

    const replace = await m.cli('apply', '--replace', 'mirror.vf_tamper.table.public.items', '--auto-approve');
    expect(replace.code, replace.stdout + replace.stderr).toBe(0);
    await m.caughtUp();
    // Copied again after the run: the plan no longer reports it, even before the next verify.
    const after = await m.cli('plan', '--detailed-exitcode');
    expect(after.code, after.stdout + after.stderr).toBe(0);
    const again = await m.cli('verify', '--format', 'json');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await w.stop()).toBe(0);
  });

  it('a leaf partition emptied on the source without the relay: exit 2 with the leaf counted; a merge resync makes it equal', async () => {
    const m = await mirrorSetup(
      'vf_part',
      `CREATE TABLE ev (id int NOT NULL, day date NOT NULL, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
       CREATE TABLE ev_01 PARTITION OF ev FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
       CREATE TABLE ev_02 PARTITION OF ev FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
       INSERT INTO ev SELECT g, DATE '2026-01-01' + (g % 59), 'v' || g FROM generate_series(1, 5900) g;`,
      '      - source_table: ev\n',
      '    resync_strategy: merge\n',
    );
    const w = await m.start();
    await waitForCatalogStatus(m.dst, 'vf_part', 'Following');
    // As a replica the relay's trigger does not fire: the TRUNCATE never reaches the destination.
    await m.src('SET session_replication_role = replica; TRUNCATE ev_02; RESET session_replication_role');
    const r = await m.cli('verify', '--format', 'json');
    expect(r.code, r.stdout + r.stderr).toBe(2);
    const ev = table(json(r.stdout), 'ev');
    expect(ev.outcome).toBe('different');
    expect(ev.partitions).toEqual([
      { partition: 'ev_01', source: 3100, destination: 3100 },
      { partition: 'ev_02', source: 0, destination: 2800 },
    ]);
    const replace = await m.cli('apply', '--replace', 'mirror.vf_part.table.public.ev', '--auto-approve');
    expect(replace.code, replace.stdout + replace.stderr).toBe(0);
    await until(
      'the merge to finish',
      async () => (await m.dst(`SELECT last_merge FROM mirrors.tables WHERE dest_table = 'ev'`))[0]?.last_merge,
      60_000,
    );
    const again = await m.cli('verify', '--format', 'json');
    expect(again.code, again.stdout + again.stderr).toBe(0);
    // pgoutput sends each leaf's Relation after the root's: not a table the mirror fails to map.
    expect(w.logs()).not.toContain('which the mirror does not map');
    expect(await w.stop()).toBe(0);
  });

  it('a mirror no worker streams: exit 1 at once with the reason, no run asked for', async () => {
    const m = await mirrorSetup('vf_idle', ITEMS_SQL, ITEMS_YAML);
    const r = await m.cli('verify', '--timeout', '2s', '--format', 'json');
    expect(r.code).toBe(1);
    const report = json(r.stdout);
    expect(report.mirrors[0]).toMatchObject({ outcome: 'error', error: { code: 'VERIFY_FAILED' } });
    expect(report.mirrors[0].error.message).toMatch(/no worker streams it/);
    // Said at once, with no run asked for.
    expect(await m.dst(`SELECT state FROM mirrors.verify_runs`)).toEqual([]);
  });
});
