/**
 * `mirrors plan` as a process against real source and destination clusters (wal_level=logical):
 * stdout, stderr and exit codes; and that planning changes nothing on any database.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useClusters } from '../support/clusters.js';
import { runCli } from '../support/cli.js';
import { peerYaml, tempProject } from '../support/project.js';

const env = { PGPASS_TEST: 'postgres' };
const pg = useClusters(['src', 'dst']);
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups) c();
});

let dbCounter = 0;
/** A fresh source and destination database pair, with `sourceSql` run on the source. */
async function databases(sourceSql: string, destSql = '') {
  const db = `t${++dbCounter}`;
  await pg.src.createDatabase(db);
  await pg.dst.createDatabase(db);
  if (sourceSql) await pg.src.query(sourceSql, [], db);
  if (destSql) await pg.dst.query(destSql, [], db);
  return db;
}

function project(db: string, mirrorYaml: string, extraPeers = '') {
  const p = tempProject(
    `version: 1\npeers:\n${peerYaml('prod', pg.src, db)}${peerYaml('staging', pg.dst, db)}${extraPeers}mirrors:\n${mirrorYaml}`,
  );
  cleanups.push(p.cleanup);
  return p;
}

const plan = (p: { dir: string }, ...args: string[]) => runCli(['plan', ...args], { cwd: p.dir, env });

const SHOP = `
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, mood mood);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), internal_notes text, total numeric(12,2));
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order ""Items""" ("Id" int PRIMARY KEY, "Qty" int);
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (day date PRIMARY KEY, n int);
CREATE TABLE reporting.monthly (month date PRIMARY KEY, n int);
`;

describe('mirrors plan for a new mirror', () => {
  it('prints the ordered actions, exits 0 (2 with --detailed-exitcode), and changes nothing', async () => {
    const db = await databases(SHOP);
    const p = project(
      db,
      `  shop:
    source: prod
    destination: staging
    tables:
      - source_table: public.users
      - { source_table: public.orders, exclude_columns: [internal_notes] }
      - { source_table: '"Sales Dept"."Order ""Items"""', destination_table: public.order_items }
      - { source_table: "reporting.*" }
`,
    );
    const r = await plan(p);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout
      .split('\n')
      .filter((l) => /^\s+(\+|~|-|-\/\+) /.test(l))
      .map((l) => l.trim());
    expect(lines).toEqual([
      '+ peer.staging.catalog',
      '+ mirror.shop',
      '+ peer.staging.type.public.mood',
      '+ mirror.shop.table.public.users',
      '+ mirror.shop.table.public.orders',
      '+ mirror.shop.table.public.order_items',
      '+ peer.staging.schema.reporting',
      '+ mirror.shop.table.reporting.daily',
      '+ mirror.shop.table.reporting.monthly',
      '+ mirror.shop.publication',
      '+ mirror.shop.slot',
      '+ mirror.shop.snapshot',
      '+ mirror.shop.table.public.users.indexes',
      '+ mirror.shop.table.public.orders.foreign_keys',
      '+ mirror.shop.stream',
    ]);
    expect(r.stdout).toContain('Plan: 15 to create, 0 to update, 0 to replace, 0 to delete.');
    // max_slot_wal_keep_size is unlimited by default: a warning, not an error.
    expect(r.stdout).toContain('warning MR105');

    expect((await plan(p, '--detailed-exitcode')).code).toBe(2);

    const json = await plan(p, '--format', 'json');
    const parsed = JSON.parse(json.stdout);
    expect(parsed.format_version).toBe(2);
    const pub = parsed.actions.find((a: any) => a.kind === 'publication');
    expect(pub.details.sql[0]).toBe(
      'CREATE PUBLICATION "mirrors_shop" FOR TABLE "public"."users", "public"."orders" ("id", "user_id", "total"), "Sales Dept"."Order ""Items""", "reporting"."daily", "reporting"."monthly" WITH (publish_via_partition_root = true)',
    );

    const md = await plan(p, '--format', 'markdown');
    expect(md.stdout).toContain('| 1 | `+` create | `peer.staging.catalog` |');

    const out = join(p.dir, 'plan.json');
    const saved = await plan(p, '--out', out);
    expect(saved.code).toBe(0);
    const file = JSON.parse(readFileSync(out, 'utf8'));
    expect(file.config_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(out, 'utf8')).not.toContain('postgres@');

    // Planning wrote nothing anywhere.
    expect(await pg.dst.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'mirrors'`, [], db)).toEqual([]);
    expect(await pg.src.query(`SELECT 1 FROM pg_publication`, [], db)).toEqual([]);
    expect(await pg.src.query(`SELECT 1 FROM pg_replication_slots`)).toEqual([]);
  });

  it('plans only the mirrors named with --mirror, and rejects an unknown one', async () => {
    const db = await databases('CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);');
    const p = project(
      db,
      `  ma: { source: prod, destination: staging, tables: [{ source_table: a }] }\n  mb: { source: prod, destination: staging, tables: [{ source_table: b }] }\n`,
    );
    const r = await plan(p, '--mirror', 'mb', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).mirrors).toEqual([{ name: 'mb', source: 'prod', destination: 'staging' }]);
    const bad = await plan(p, '--mirror', 'nope');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error: unknown mirror nope');
  });
});

describe('mirrors plan preflight diagnostics', () => {
  const oneTable = (table: string, extra = '') =>
    `  m:\n    source: prod\n    destination: staging\n    tables:\n      - { source_table: ${table}${extra} }\n`;

  async function expectDiagnostic(sourceSql: string, mirrorYaml: string, code: string, destSql = '', exit = 1) {
    const db = await databases(sourceSql, destSql);
    const r = await plan(project(db, mirrorYaml));
    expect(r.stdout).toContain(code);
    expect(r.code).toBe(exit);
    if (exit === 1) {
      expect(r.stdout).toMatch(/this plan cannot be saved or applied/);
      const out = await plan(project(db, mirrorYaml), '--out', '/tmp/never-written.json');
      expect(out.stderr).toContain('not saving');
    }
    return r;
  }

  it('MR110: a source table that does not exist', () => expectDiagnostic('', oneTable('public.ghost'), 'MR110'));
  it('MR111: a table without primary key and replica identity default', () =>
    expectDiagnostic('CREATE TABLE logs (line text)', oneTable('logs'), 'MR111'));
  it('accepts REPLICA IDENTITY FULL and USING INDEX', async () => {
    const db = await databases(`CREATE TABLE f (a int, b text); ALTER TABLE f REPLICA IDENTITY FULL;
      CREATE TABLE u (a int NOT NULL, b text); CREATE UNIQUE INDEX u_a ON u (a); ALTER TABLE u REPLICA IDENTITY USING INDEX u_a;`);
    const r = await plan(
      project(
        db,
        `  m:\n    source: prod\n    destination: staging\n    tables: [{ source_table: f }, { source_table: u }]\n`,
      ),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('error MR');
  });
  it('MR112: an excluded column that is part of the key', () =>
    expectDiagnostic('CREATE TABLE t (id int PRIMARY KEY, x text)', oneTable('t', ', exclude_columns: [id]'), 'MR112'));
  it('MR113: an excluded column that does not exist', () =>
    expectDiagnostic('CREATE TABLE t (id int PRIMARY KEY, x text)', oneTable('t', ', exclude_columns: [X]'), 'MR113'));
  it('MR114: a DEFERRABLE primary key', () =>
    expectDiagnostic('CREATE TABLE t (id int PRIMARY KEY DEFERRABLE)', oneTable('t'), 'MR114'));
  it('MR120: an existing destination table whose types do not fit', () =>
    expectDiagnostic(
      'CREATE TABLE t (id int PRIMARY KEY, x text)',
      oneTable('t'),
      'MR120',
      'CREATE TABLE t (id int PRIMARY KEY, x int)',
    ));
  it('MR121: an excluded column NOT NULL without default on an existing destination table', () =>
    expectDiagnostic(
      'CREATE TABLE t (id int PRIMARY KEY, secret text)',
      oneTable('t', ', exclude_columns: [secret]'),
      'MR121',
      'CREATE TABLE t (id int PRIMARY KEY, secret text NOT NULL)',
    ));
  it('MR122: an existing destination table that already holds rows', () =>
    expectDiagnostic(
      'CREATE TABLE t (id int PRIMARY KEY)',
      oneTable('t'),
      'MR122',
      'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)',
    ));
  it('an existing empty destination table that fits is used as is', async () => {
    const db = await databases(
      'CREATE TABLE t (id int PRIMARY KEY, x text)',
      'CREATE TABLE t (id int PRIMARY KEY, x text, extra int)',
    );
    const r = await plan(project(db, oneTable('t')));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('into the existing public.t (columns fit)');
  });
  it('MR131 and MR132: a publication and a slot of that name the tool does not own', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION mirrors_m FOR TABLE t;');
    await pg.src.query(`SELECT pg_create_logical_replication_slot('mirrors_m', 'pgoutput')`, [], db);
    try {
      const r2 = await plan(project(db, oneTable('t')));
      expect(r2.stdout).toContain('MR131');
      expect(r2.stdout).toContain('MR132');
      expect(r2.code).toBe(1);
    } finally {
      await pg.src.query(`SELECT pg_drop_replication_slot('mirrors_m')`);
    }
  });
  it('MR104: a source role without REPLICATION', async () => {
    const db = await databases(
      `CREATE TABLE t (id int PRIMARY KEY); CREATE ROLE app LOGIN PASSWORD 'app'; GRANT SELECT ON t TO app;`,
    );
    const p = tempProject(
      `version: 1\npeers:\n${peerYaml('prod', pg.src, db, 'APP_PW', 'app')}${peerYaml('staging', pg.dst, db)}mirrors:\n${oneTable('t')}`,
    );
    cleanups.push(p.cleanup);
    const r = await runCli(['plan'], { cwd: p.dir, env: { ...env, APP_PW: 'app' } });
    expect(r.stdout).toContain('error MR104');
    expect(r.stdout).toContain('ALTER ROLE app WITH REPLICATION');
    expect(r.code).toBe(1);
  });
  it('MR106: a lone sync mirror that blocks warns that it would stop the source commits while it is down', async () => {
    const yaml = `  m: { source: prod, destination: staging, mode: sync, tables: [{ source_table: t }] }\n`;
    const r = await expectDiagnostic('CREATE TABLE t (id int PRIMARY KEY)', yaml, 'warning MR106', '', 0);
    expect(r.stdout).toContain('degrade_after');
  });
});

describe('mirrors plan with identifiers that need quoting', () => {
  it('handles mixed case, spaces and quotes in schema, table and column names', async () => {
    const db = await databases(
      `CREATE SCHEMA "My ""Odd"" Schema"; CREATE TABLE "My ""Odd"" Schema"."Tbl; DROP TABLE x" ("Key Col" int PRIMARY KEY, "sEcret" text)`,
    );
    const p = project(
      db,
      `  m:\n    source: prod\n    destination: staging\n    tables:\n      - { source_table: '"My ""Odd"" Schema"."Tbl; DROP TABLE x"', exclude_columns: [sEcret] }\n`,
    );
    const r = await plan(p, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout);
    const table = parsed.actions.find((a: any) => a.kind === 'table');
    expect(table.address).toBe('mirror.m.table."My ""Odd"" Schema"."Tbl; DROP TABLE x"');
    expect(table.details.sql[0]).toBe(
      'CREATE TABLE "My ""Odd"" Schema"."Tbl; DROP TABLE x" (\n  "Key Col" integer NOT NULL,\n  PRIMARY KEY ("Key Col")\n)',
    );
  });
});

describe('mirrors plan when a peer cannot be used', () => {
  it('names the peer and host of an unreachable server in one line, exit 1, no stack trace', async () => {
    const p = tempProject(
      `version: 1\npeers:\n  prod: { host: 127.0.0.1, port: 1, database: app, user: postgres, password: x }\n${peerYaml('staging', pg.dst, 'postgres')}mirrors:\n  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`,
    );
    cleanups.push(p.cleanup);
    const r = await runCli(['plan'], { cwd: p.dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: peer prod \(127\.0\.0\.1:1\/app as postgres\): cannot connect \(ECONNREFUSED\)\n/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
  it('reports a wrong password without echoing it', async () => {
    const p = tempProject(
      `version: 1\npeers:\n${peerYaml('prod', pg.src, 'postgres', 'BAD')}${peerYaml('staging', pg.dst, 'postgres')}mirrors:\n  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`,
    );
    cleanups.push(p.cleanup);
    const r = await runCli(['plan'], { cwd: p.dir, env: { ...env, BAD: 'hunter2-wrong' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: peer prod (127.0.0.1:${pg.src.port}/postgres as postgres): authentication failed`,
    );
    expect(r.stderr + r.stdout).not.toContain('hunter2-wrong');
  });
  it('reports a missing database', async () => {
    const p = tempProject(
      `version: 1\npeers:\n${peerYaml('prod', pg.src, 'nosuchdb')}${peerYaml('staging', pg.dst, 'postgres')}mirrors:\n  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`,
    );
    cleanups.push(p.cleanup);
    const r = await runCli(['plan'], { cwd: p.dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('database "nosuchdb" does not exist');
  });
});
