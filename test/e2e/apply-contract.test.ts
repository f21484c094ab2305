/**
 * The plan contract end to end: a saved plan runs only what the tool would plan now (tampered and foreign
 * files change nothing), `show` renders it, concurrent applies cannot both copy a table, irreversible actions
 * need consent, two projects on one destination leave each other alone, failures come as JSON when asked,
 * and an interrupted apply says how to resume.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useClusters } from '../support/clusters.js';
import { CLI, type CliResult } from '../support/cli.js';
import { mirrorProjects, PROJECT_ENV } from '../support/mirror-project.js';
import { startWorker } from '../support/worker.js';

const env = PROJECT_ENV;
const clusters = useClusters(['src', 'dst']);
const { databases, project, file: projectFile, cli, rows } = mirrorProjects(clusters, 'c');

const nothingCreated = async (db: string) => {
  expect(await clusters.dst.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'mirrors'`, [], db)).toEqual([]);
  expect(await clusters.src.query(`SELECT 1 FROM pg_publication`, [], db)).toEqual([]);
  expect(await clusters.src.query(`SELECT 1 FROM pg_replication_slots WHERE database = $1`, [db])).toEqual([]);
};

describe('a saved plan', () => {
  it('whose SQL was edited is refused and changes nothing', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(db, `  m1: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const file = join(p.dir, 'plan.json');
    expect((await cli(p, 'plan', '--out', file)).code).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8'));
    const table = plan.actions.find((a: { kind: string }) => a.kind === 'table');
    table.peer = 'prod';
    table.details.sql = ['CREATE TABLE public.evil (x int)'];
    writeFileSync(file, JSON.stringify(plan));
    const r = await cli(p, 'apply', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is stale or was edited: ${table.id} differs from what a plan made now says`);
    expect(await clusters.src.query(`SELECT 1 FROM pg_class WHERE relname = 'evil'`, [], db)).toEqual([]);
    await nothingCreated(db);
  });

  it('a foreign JSON file with an actions list, and a truncated plan, are refused and change nothing', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(db, `  m2: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const foreign = join(p.dir, 'foreign.json');
    writeFileSync(
      foreign,
      JSON.stringify({
        tool: 'mirrors',
        format_version: 2,
        actions: [{ id: 'x', kind: 'slot', op: 'create', peer: 'prod', details: { name: 'mirrors_m2' } }],
      }),
    );
    let r = await cli(p, 'apply', foreign);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a valid plan file (edited or truncated)');
    const file = join(p.dir, 'plan.json');
    expect((await cli(p, 'plan', '--out', file)).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, Math.floor(text.length * 0.6)));
    r = await cli(p, 'apply', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid JSON: truncated');
    await nothingCreated(db);
  });

  it('for one mirror stays valid when another mirror changes, and is applied from another workspace', async () => {
    const db = await databases('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)');
    const ma = `  m12a: { source: prod, destination: staging, tables: [{ source_table: a }] }\n`;
    const p = project(db, ma + `  m12b: { source: prod, destination: staging, tables: [{ source_table: b }] }\n`);
    const file = join(p.dir, 'plan.json');
    expect((await cli(p, 'plan', '--mirror', 'm12a', '--out', file)).code).toBe(0);
    // The deploy job checks the repository out elsewhere, where mb has meanwhile changed.
    const deploy = project(
      db,
      ma + `  m12b: { source: prod, destination: staging, max_batch_size: 7, tables: [{ source_table: b }] }\n`,
    );
    const r = await cli(deploy, 'apply', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await clusters.dst.query(`SELECT name FROM mirrors.mirrors`, [], db)).toEqual([{ name: 'm12a' }]);
  });

  it('is rendered by `mirrors show` with every statement it runs, in text, markdown and JSON', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(db, `  m3: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const file = join(p.dir, 'plan.json');
    expect((await cli(p, 'plan', '--out', file)).code).toBe(0);
    const text = await cli(p, 'show', file);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('mirrors: m3 (prod -> staging)');
    expect(text.stdout).toContain('+ mirror.m3.publication');
    expect(text.stdout).toContain('| CREATE PUBLICATION "mirrors_m3" FOR TABLE "public"."t"');
    expect(text.stdout).toContain('| CREATE TABLE "public"."t"');
    const md = (await cli(p, 'show', file, '--format', 'markdown')).stdout;
    expect(md).toContain('| 1 | `+` create | `peer.staging.catalog` |');
    // Every statement, collapsed per mirror, each action's under its address.
    expect(md).toContain('<details><summary>`mirror.m3` runs 6 actions: SQL</summary>');
    expect(md).toMatch(
      /-- create mirror\.m3\.publication\nCREATE PUBLICATION "mirrors_m3" FOR TABLE "public"\."t" WITH/,
    );
    expect(JSON.parse((await cli(p, 'show', file, '--format', 'json')).stdout).actions.length).toBeGreaterThan(5);
    writeFileSync(file, '{"tool":"mirrors","format_version":1,"actions":[]}');
    const old = await cli(p, 'show', file);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('re-run mirrors plan');
  });
});

describe('concurrent applies', () => {
  it('two applies started together copy the table once: the second finds nothing left to do', async () => {
    const db = await databases(`CREATE TABLE big (id bigint PRIMARY KEY, pad text);
      INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 300000) g; ANALYZE;`);
    const p = project(db, `  m4: { source: prod, destination: staging, tables: [{ source_table: big }] }\n`);
    const first = cli(p, 'apply', '--auto-approve', '--lock-timeout', '1m');
    await new Promise((r) => setTimeout(r, 300));
    const second = cli(p, 'apply', '--auto-approve', '--lock-timeout', '1m');
    const [a, b] = await Promise.all([first, second]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stdout + b.stdout).toContain('No changes. The mirrors match the configuration.');
    const snaps = await clusters.dst.query(
      `SELECT count(*)::int AS n FROM mirrors.journal WHERE action_id = 'create:mirror.m4.snapshot' AND outcome = 'done'`,
      [],
      db,
    );
    expect(snaps[0].n).toBe(1);
    expect(await rows(clusters.dst, db, 'SELECT count(*) FROM big')).toEqual(['(300000)']);
  });

  it('two applies adding the same table to a mirror `mirrors run` streams both succeed, and it ends Following', async () => {
    const db = await databases(`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE t5 (id int PRIMARY KEY, v text);
      INSERT INTO t5 SELECT g, md5(g::text) FROM generate_series(1, 100000) g; ANALYZE;`);
    const p = project(db, `  m5: { source: prod, destination: staging, tables: [{ source_table: a }] }\n`);
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    const worker = startWorker(p.dir, env);
    try {
      await worker.waitForLog(/mirror m5: Following/);
      p.rewrite(`  m5: { source: prod, destination: staging, tables: [{ source_table: a }, { source_table: t5 }] }\n`);
      const [x, y] = await Promise.all([
        cli(p, 'apply', '--auto-approve', '--lock-timeout', '1m'),
        cli(p, 'apply', '--auto-approve', '--lock-timeout', '1m'),
      ]);
      expect([x.code, y.code], x.stderr + y.stderr).toEqual([0, 0]);
      const snaps = await clusters.dst.query(
        `SELECT count(*)::int AS n FROM mirrors.journal WHERE action_id = 'create:mirror.m5.snapshot' AND outcome = 'done'`,
        [],
        db,
      );
      expect(snaps[0].n).toBe(2); // the first apply's bootstrap, and one copy of t5
      await clusters.src.query(`INSERT INTO t5 VALUES (100001, 'after'); INSERT INTO a VALUES (1)`, [], db);
      for (let i = 0; i < 200; i++) {
        const got = await clusters.dst.query(`SELECT 1 FROM t5 WHERE id = 100001`, [], db);
        if (got.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await rows(clusters.dst, db, 'SELECT * FROM t5')).toEqual(
        await rows(clusters.src, db, 'SELECT * FROM t5'),
      );
      const status = await cli(p, 'status', '--format', 'json');
      expect(status.code, status.stdout).toBe(0);
      expect(JSON.parse(status.stdout).mirrors[0].status.name).toBe('Following');
    } finally {
      expect(await worker.stop()).toBe(0);
    }
    expect((await cli(p, 'plan', '--detailed-exitcode')).code).toBe(0);
  });
});

describe('consent for irreversible actions', () => {
  it('a saved destroy plan needs --allow-irreversible; prevent_destroy blocks the plan itself', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    const p = project(
      db,
      `  m6: { source: prod, destination: staging, prevent_destroy: true, tables: [{ source_table: t }] }\n`,
      'project: default\n',
    );
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    p.rewrite('');
    const blocked = await cli(p, 'plan');
    expect(blocked.code).toBe(1);
    expect(blocked.stdout).toContain('error MR136');
    p.rewrite(`  m6: { source: prod, destination: staging, prevent_destroy: false, tables: [{ source_table: t }] }\n`);
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    p.rewrite('');
    expect((await cli(p, 'plan', '--fail-on', 'irreversible')).code).toBe(1);
    const file = join(p.dir, 'destroy.json');
    expect((await cli(p, 'plan', '--out', file)).code).toBe(0);
    const refused = await cli(p, 'apply', file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('irreversible');
    expect(await clusters.src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mirrors_m6'`)).toHaveLength(
      1,
    );
    const ok = await cli(p, 'apply', file, '--allow-irreversible');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(await clusters.src.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mirrors_m6'`)).toEqual([]);
  });
});

describe('ownership', () => {
  it("two projects on one destination never touch each other's mirrors", async () => {
    const db = await databases('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)');
    const teamA = project(
      db,
      `  ma: { source: prod, destination: staging, tables: [{ source_table: a }] }\n`,
      'project: team-a\n',
    );
    const teamB = project(
      db,
      `  mb: { source: prod, destination: staging, tables: [{ source_table: b }] }\n`,
      'project: team-b\n',
    );
    expect((await cli(teamA, 'apply', '--auto-approve')).code).toBe(0);
    const planB = await cli(teamB, 'plan');
    expect(planB.stdout).toContain('note MR146');
    expect(planB.stdout).not.toContain('mirror.ma.slot');
    expect((await cli(teamB, 'apply', '--auto-approve')).code).toBe(0);
    // Either file, moved anywhere, still owns only its own mirror.
    const moved = project(
      db,
      `  ma: { source: prod, destination: staging, tables: [{ source_table: a }] }\n`,
      'project: team-a\n',
    );
    expect((await cli(moved, 'plan', '--detailed-exitcode')).code).toBe(0);
    expect((await cli(teamB, 'plan', '--detailed-exitcode')).code).toBe(0);
    const owners = await clusters.dst.query(`SELECT name, project FROM mirrors.mirrors ORDER BY name`, [], db);
    expect(owners).toEqual([
      { name: 'ma', project: 'team-a' },
      { name: 'mb', project: 'team-b' },
    ]);
    const clash = project(
      db,
      `  ma: { source: prod, destination: staging, tables: [{ source_table: a }] }\n`,
      'project: team-b\n',
    );
    const r = await cli(clash, 'plan');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR145');
  });
});

describe('destination objects', () => {
  it('creates a type in a schema the destination does not have yet, before the table that needs it', async () => {
    const db = await databases(`CREATE SCHEMA types; CREATE TYPE types.mood AS ENUM ('ok', 'sad');
      CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, m types.mood); INSERT INTO app.t VALUES (1, 'sad');`);
    const p = project(db, `  m7: { source: prod, destination: staging, tables: [{ source_table: app.t }] }\n`);
    const r = await cli(p, 'apply', '--auto-approve');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await rows(clusters.dst, db, 'SELECT * FROM app.t')).toEqual(['(1,sad)']);
  });
});

describe('--format json never leaves stdout empty', () => {
  /** One JSON document (plan, status), or a stream of JSON lines (apply); either way every byte parses. */
  const parsesAsJson = (r: CliResult): any[] => {
    try {
      return [JSON.parse(r.stdout)];
    } catch {
      return r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    }
  };

  it('on a bad config, an unreachable peer and a plan with errors, for plan, apply and status', async () => {
    const bad = projectFile('version: 1\npeers: {}\nmirrors:\n  m: { source: nope }\n');
    for (const args of [
      ['plan', '--format', 'json'],
      ['apply', '--format', 'json', '--auto-approve'],
      ['status', '--format', 'json'],
    ]) {
      const r = await cli(bad, ...args);
      expect(r.code).toBe(1);
      const last = parsesAsJson(r).at(-1);
      expect(last.type).toBe('error');
      expect(last.error.code).toBe('CONFIG_INVALID');
      expect(last.error.problems[0]).toMatchObject({
        file: bad.file,
        line: expect.any(Number),
        col: expect.any(Number),
        path: expect.any(String),
      });
    }
    const down = projectFile(
      `version: 1\npeers:\n  prod: { host: 127.0.0.1, port: 1, database: x, user: u, password: p }\n  staging: { host: 127.0.0.1, port: 2, database: x, user: u, password: p }\nmirrors:\n  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`,
    );
    const unreachable = await cli(down, 'plan', '--format', 'json');
    expect(unreachable.code).toBe(1);
    expect(parsesAsJson(unreachable).at(-1).error.code).toBe('PEER_UNREACHABLE');

    const db = await databases('CREATE TABLE nokey (v int)');
    const p = project(db, `  m8: { source: prod, destination: staging, tables: [{ source_table: nokey }] }\n`);
    const planned = await cli(p, 'plan', '--format', 'json');
    expect(planned.code).toBe(1);
    expect(parsesAsJson(planned)[0].diagnostics[0].code).toBe('MR111');
    const applied = await cli(p, 'apply', '--format', 'json', '--auto-approve');
    expect(applied.code).toBe(1);
    const events = parsesAsJson(applied);
    expect(events.map((e) => e.type)).toEqual(['version', 'plan', 'error']);
    expect(events[0]).toMatchObject({ format_version: 1, tool: 'mirrors' });
    expect(events[2].error.code).toBe('PLAN_HAS_ERRORS');
    await nothingCreated(db);
  });

  it('apply streams snake_case events with bytes and rows as strings and integer milliseconds', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)');
    const p = project(db, `  m9: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`);
    const r = await cli(p, 'apply', '--format', 'json', '--auto-approve');
    expect(r.code).toBe(0);
    const events = parsesAsJson(r);
    expect(events[0].type).toBe('version');
    expect(events.at(-1)).toMatchObject({ type: 'apply_complete', done: expect.any(Number) });
    const progress = events.find((e) => e.type === 'snapshot_progress' && e.table_done);
    expect(progress).toMatchObject({
      rows_done: '1000',
      bytes_done: expect.stringMatching(/^\d+$/),
      table: 'public.t',
    });
    for (const e of events.filter((x) => x.type === 'action_done')) expect(Number.isInteger(e.ms)).toBe(true);
  });
});

describe('an interrupted apply', () => {
  it('SIGINT during a snapshot exits 130 with what is done and how to resume; a second apply finishes it', async () => {
    const db = await databases(`CREATE TABLE big (id bigint PRIMARY KEY, pad text);
      INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 600000) g; ANALYZE;`);
    const p = project(
      db,
      `  m10: { source: prod, destination: staging, snapshot_max_parallel_workers: 1, tables: [{ source_table: big }] }\n`,
    );
    const child = spawn(process.execPath, [CLI, 'apply', '--auto-approve'], {
      cwd: p.dir,
      env: { ...process.env, ...env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    for (let i = 0; i < 600 && !stdout.includes('mirror.m10.snapshot: copy'); i++)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(
      /interrupted during mirror\.m10\.snapshot: \d+ of \d+ actions were applied; the copy stopped/,
    );
    expect(stderr).toContain('run `mirrors apply` again to finish');
    const r = await cli(p, 'apply', '--auto-approve');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('+ mirror.m10.snapshot');
    expect(await rows(clusters.dst, db, 'SELECT * FROM big')).toEqual(
      await rows(clusters.src, db, 'SELECT * FROM big'),
    );
  });
});

describe('an interrupted full resync', () => {
  it('after SIGINT copies again every table not copied for the new slot, with the rows written while the slot was gone', async () => {
    const db = await databases(`CREATE TABLE t1 (id int PRIMARY KEY); CREATE TABLE t2 (id bigint PRIMARY KEY, pad text);
      CREATE TABLE t3 (id int PRIMARY KEY);
      INSERT INTO t1 SELECT generate_series(1, 10); INSERT INTO t3 SELECT generate_series(1, 10);
      INSERT INTO t2 SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 500000) g; ANALYZE;`);
    const p = project(
      db,
      `  m11:\n    source: prod\n    destination: staging\n    snapshot_num_tables_in_parallel: 1\n    snapshot_max_parallel_workers: 1\n` +
        `    tables: [{ source_table: t1 }, { source_table: t2 }, { source_table: t3 }]\n`,
    );
    expect((await cli(p, 'apply', '--auto-approve')).code).toBe(0);
    // The slot is lost; meanwhile the source changes a table the resync reaches last.
    await clusters.src.query(`SELECT pg_drop_replication_slot('mirrors_m11')`);
    await clusters.src.query('INSERT INTO t3 SELECT generate_series(11, 20)', [], db);
    const child = spawn(process.execPath, [CLI, 'apply', '--auto-approve'], {
      cwd: p.dir,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: 'ignore',
    });
    for (let i = 0; i < 600; i++) {
      const s = await clusters.dst.query(
        `SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query ILIKE 'COPY%t2%FROM%'`,
        [],
        'postgres',
      );
      if (s.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    expect(await new Promise((res) => child.once('exit', (c) => res(c)))).toBe(130);
    const planned = JSON.parse((await cli(p, 'plan', '--format', 'json')).stdout);
    const snap = planned.actions.find((a: { kind: string }) => a.kind === 'snapshot');
    expect(snap.details.tables.map((t: { destination: { name: string } }) => t.destination.name)).toEqual(['t2', 't3']);
    const r = await cli(p, 'apply', '--auto-approve');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const t of ['t1', 't2', 't3']) {
      expect(await rows(clusters.dst, db, `SELECT * FROM ${t}`)).toEqual(
        await rows(clusters.src, db, `SELECT * FROM ${t}`),
      );
    }
  });
});
