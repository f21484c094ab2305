/**
 * `mirrors apply` as a process against real clusters: consistent parallel snapshots while the source is
 * written to, idempotence, stale plans, locks, kill -9 and resume, destroy.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { useClusters } from '../support/clusters.js';
import { CLI } from '../support/cli.js';
import { mirrorProjects, PROJECT_ENV } from '../support/mirror-project.js';

const env = PROJECT_ENV;
const clusters = useClusters(['src', 'dst']);
const { databases, project, cli, rows } = mirrorProjects(clusters, 'a');

const RICH = `
CREATE TYPE mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE SCHEMA analytics;
CREATE TABLE analytics.events (id bigint PRIMARY KEY, kind text NOT NULL, at timestamptz, payload jsonb);
CREATE TABLE kinds (n numeric(20,6), r real, d double precision, j jsonb, js json, arr int[], tarr text[], b bytea,
                    ts timestamptz, t time, iv interval, u uuid, m mood, bool boolean, inet inet, id bigint PRIMARY KEY, secret text);
CREATE TABLE line_items (order_id bigint, line int, qty int NOT NULL, PRIMARY KEY (order_id, line));
CREATE TABLE measurements (city int NOT NULL, at date NOT NULL, v numeric, PRIMARY KEY (city, at)) PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order ""Items""" ("Id" int PRIMARY KEY, "Qty" int, "Note; DROP TABLE x" text);
CREATE TABLE feed (id bigint PRIMARY KEY, v text);

INSERT INTO analytics.events SELECT g, 'k' || (g % 7), '2026-01-01 00:00:00.123456+00'::timestamptz + g * interval '1.000001 second', jsonb_build_object('g', g) FROM generate_series(1, 60000) g;
INSERT INTO kinds SELECT 12345678901234.123456 + g, 1.5, 1e-300, '{"a": [1, 2, {"b": null}]}', '{"x":  1}', ARRAY[g, NULL, 3], ARRAY['a,b', 'c"d', NULL, ''],
                         decode('00ff10' || lpad(to_hex(g), 6, '0'), 'hex'), '2026-03-04 05:06:07.891011+00', '23:59:59.999999', '1 year 2 mons 3 days 04:05:06.789',
                         md5(g::text)::uuid, (ARRAY['happy','sad','it''s complicated']::mood[])[1 + g % 3], g % 2 = 0, '10.0.0.1/8', g, 'hush'
                    FROM generate_series(1, 3000) g;
INSERT INTO kinds (id) VALUES (1000000);
INSERT INTO line_items SELECT g / 3, g % 3, g FROM generate_series(1, 9000) g;
INSERT INTO measurements SELECT c, d::date, c * 1.5 FROM generate_series(1, 20) c, generate_series('2025-06-01'::date, '2026-06-01'::date, '7 days') d;
INSERT INTO "Sales Dept"."Order ""Items""" SELECT g, g * 2, 'n' || g FROM generate_series(1, 500) g;
ANALYZE;
`;

const RICH_MIRROR = `  m:
    source: prod
    destination: staging
    snapshot_num_rows_per_partition: 5000
    snapshot_max_parallel_workers: 4
    snapshot_num_tables_in_parallel: 3
    tables:
      - { source_table: analytics.events, destination_table: public.events, partition_key: id }
      - { source_table: public.kinds, exclude_columns: [secret] }
      - source_table: public.line_items
      - source_table: public.measurements
      - { source_table: '"Sales Dept"."Order ""Items"""' }
      - source_table: public.feed
`;

describe('mirrors apply', () => {
  it('bootstraps a mirror consistently while the source is written to; a second plan shows no changes', async () => {
    const db = await databases(RICH);
    const p = project(db, RICH_MIRROR);

    // A writer inserts into feed, one row per transaction, in id order, during the whole apply.
    const writer = new pg.Client({ connectionString: clusters.src.url(db) });
    await writer.connect();
    let stop = false;
    let written = 0;
    const writing = (async () => {
      while (!stop) {
        written++;
        await writer.query('INSERT INTO feed VALUES ($1, $2)', [written, `row ${written}`]);
      }
    })();
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      await new Promise((res) => setTimeout(res, 200));
      r = await cli(p, 'apply', '--auto-approve');
      await new Promise((res) => setTimeout(res, 200));
    } finally {
      stop = true;
      await writing;
      await writer.end();
    }
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Apply complete: ');

    // Every fully static table is identical.
    const same = async (srcSql: string, dstSql = srcSql) =>
      expect(await rows(clusters.dst, db, dstSql)).toEqual(await rows(clusters.src, db, srcSql));
    await same('SELECT * FROM analytics.events', 'SELECT * FROM public.events');
    await same(
      'SELECT n, r, d, j, js, arr, tarr, b, ts, t, iv, u, m, bool, inet, id FROM kinds',
      'SELECT * FROM kinds',
    );
    await same('SELECT * FROM line_items');
    await same('SELECT * FROM measurements');
    await same('SELECT * FROM "Sales Dept"."Order ""Items"""');
    // timestamptz microseconds survive.
    expect((await clusters.dst.query(`SELECT ts::text AS t FROM kinds WHERE id = 1`, [], db))[0].t).toBe(
      '2026-03-04 05:06:07.891011+00',
    );

    // feed: the destination holds exactly the commits before the consistent point: a prefix 1..K...
    const dstFeed = await clusters.dst.query(
      `SELECT count(*)::int AS k, coalesce(max(id), 0)::int AS mx FROM feed`,
      [],
      db,
    );
    const k = dstFeed[0].k;
    expect(dstFeed[0].mx).toBe(k);
    await same(`SELECT * FROM feed WHERE id <= ${k}`, 'SELECT * FROM feed');
    // ... and the slot holds every later insert (pgoutput 'I' messages), none before.
    const inSlot = await clusters.src.query(
      `SELECT count(*)::int AS n FROM pg_logical_slot_peek_binary_changes('mirrors_m', NULL, NULL, 'proto_version', '1', 'publication_names', 'mirrors_m') WHERE get_byte(data, 0) = 73`,
      [],
      db,
    );
    expect(k).toBeGreaterThan(0);
    expect(inSlot[0].n).toBe(written - k);
    expect(written - k).toBeGreaterThan(0);

    // The catalog records every table ready, with its snapshot LSN; the journal has every action.
    const tables = await clusters.dst.query(
      `SELECT state, snapshot_lsn::text AS lsn FROM mirrors.tables WHERE mirror = 'm'`,
      [],
      db,
    );
    expect(tables).toHaveLength(6);
    expect(new Set(tables.map((t: { state: string }) => t.state))).toEqual(new Set(['ready']));
    const journal = await clusters.dst.query(
      `SELECT count(*)::int AS n FROM mirrors.journal WHERE outcome = 'done'`,
      [],
      db,
    );
    expect(journal[0].n).toBeGreaterThan(10);
    // excluded column not created; destination enum, index and foreign keys as the source.
    expect(
      await clusters.dst.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'kinds' AND column_name = 'secret'`,
        [],
        db,
      ),
    ).toEqual([]);

    const again = await cli(p, 'plan', '--detailed-exitcode');
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
  });

  it('refuses without a terminal and without --auto-approve, changing nothing', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(db, `  m2: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const r = await cli(p, 'apply');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to apply without approval');
    expect(await clusters.dst.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'mirrors'`, [], db)).toEqual([]);
  });

  it('applies a saved plan, and refuses a stale one (config changed, databases changed, unknown format)', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int PRIMARY KEY)');
    const mirrorYaml = `  m3: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`;
    const p = project(db, mirrorYaml);
    const planFile = join(p.dir, 'plan.json');
    expect((await cli(p, 'plan', '--out', planFile)).code).toBe(0);

    await clusters.src.query('ALTER TABLE t ADD COLUMN extra int', [], db);
    let r = await cli(p, 'apply', planFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is stale or was edited: create:mirror.m3.table.public.t differs');
    expect(await clusters.dst.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'mirrors'`, [], db)).toEqual([]);

    expect((await cli(p, 'plan', '--out', planFile)).code).toBe(0);
    p.rewrite(`  m3: { source: prod, destination: staging, tables: [{ source_table: t }, { source_table: u }] }\n`);
    r = await cli(p, 'apply', planFile);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is stale or was edited: create:mirror.m3 differs');

    p.rewrite(mirrorYaml);
    const file = JSON.parse((await import('node:fs')).readFileSync(planFile, 'utf8'));
    writeFileSync(planFile + '.v99', JSON.stringify({ ...file, format_version: 99 }));
    r = await cli(p, 'apply', planFile + '.v99');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('plan format version 99');

    r = await cli(p, 'apply', planFile);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await cli(p, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('waits for a mirror locked by another apply, then fails naming the holder', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(db, `  m4: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const holder = new pg.Client({ connectionString: clusters.dst.url(db), application_name: 'other apply' });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(${0x6d690001}, hashtext('m4'))`);
      const t0 = Date.now();
      const r = await cli(p, 'apply', '--auto-approve', '--lock-timeout', '1s');
      expect(r.code).toBe(1);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(r.stderr).toMatch(/error: mirror m4 is locked by another session \(backend pid \d+, other apply\)/);
      expect(r.stderr).toContain('--lock-timeout');
    } finally {
      await holder.end();
    }
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
  });

  it('resumes a snapshot killed with kill -9: the next plan shows what remains, the next apply completes it exactly', async () => {
    const db = await databases(`
      CREATE TABLE big1 (id bigint PRIMARY KEY, pad text);
      CREATE TABLE big2 (id bigint PRIMARY KEY, pad text);
      CREATE TABLE small (id int PRIMARY KEY);
      INSERT INTO big1 SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g;
      INSERT INTO big2 SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 400000) g;
      INSERT INTO small SELECT generate_series(1, 10);
      ANALYZE;`);
    const p = project(
      db,
      `  m5:
    source: prod
    destination: staging
    snapshot_num_tables_in_parallel: 1
    snapshot_max_parallel_workers: 1
    snapshot_num_rows_per_partition: 20000
    tables: [{ source_table: small }, { source_table: big1 }, { source_table: big2 }]
`,
    );
    const child = spawn(process.execPath, [CLI, 'apply', '--auto-approve'], {
      cwd: p.dir,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: 'ignore',
    });
    // Kill it once the copy of big1 is under way.
    for (let i = 0; i < 600; i++) {
      await new Promise((res) => setTimeout(res, 50));
      const s = await clusters.dst
        .query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = 'mirrors snapshot' AND state = 'active' AND query ILIKE 'COPY%big%'`,
          [],
          'postgres',
        )
        .catch(() => []);
      if (s.length) break;
    }
    child.kill('SIGKILL');
    await new Promise((res) => child.once('exit', res));

    const plan = await cli(p, 'plan', '--format', 'json');
    const parsed = JSON.parse(plan.stdout);
    const snap = parsed.actions.find((a: any) => a.kind === 'snapshot');
    expect(snap).toBeDefined();
    const remaining = snap.details.tables.map((t: any) => t.destination.name);
    expect(remaining).toContain('big1');
    expect(remaining).not.toContain('small');

    const r = await cli(p, 'apply', '--auto-approve');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const t of ['small', 'big1', 'big2']) {
      expect(await rows(clusters.dst, db, `SELECT * FROM ${t}`)).toEqual(
        await rows(clusters.src, db, `SELECT * FROM ${t}`),
      );
    }
    expect((await cli(p, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('destroys a mirror removed from the config: slot, publication and catalog rows go, destination data stays', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);');
    const p = project(db, `  m6: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    // A file without `project:` destroys nothing: the mirror may be another file's.
    p.rewrite('');
    const unowned = await cli(p, 'plan');
    expect(unowned.code).toBe(1);
    expect(unowned.stdout).toContain('error MR147');
    p.rewrite('', 'project: default\n');
    const planned = await cli(p, 'plan');
    expect(planned.stdout).toContain('- mirror.m6.slot [irreversible]');
    expect(planned.stdout).toContain('and their rows are kept');
    const refused = await cli(p, 'apply', '--auto-approve');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the plan has 2 irreversible actions: nothing was changed');
    expect(refused.stderr).toContain('- mirror.m6.slot:');
    expect(await clusters.src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mirrors_m6'`)).toHaveLength(
      1,
    );
    const r = await cli(p, 'apply', '--auto-approve', '--allow-irreversible');
    expect(r.code).toBe(0);
    expect(await clusters.src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mirrors_m6'`)).toEqual([]);
    expect(await clusters.src.query(`SELECT 1 FROM pg_publication WHERE pubname = 'mirrors_m6'`, [], db)).toEqual([]);
    expect(await clusters.dst.query(`SELECT 1 FROM mirrors.mirrors`, [], db)).toEqual([]);
    expect((await clusters.dst.query(`SELECT count(*)::int AS n FROM t`, [], db))[0].n).toBe(100);
    expect((await cli(p, 'plan', '--detailed-exitcode')).code).toBe(0);
  });
});
