/**
 * Privilege and publishability preflight (issue 7), against real clusters with limited roles: plan names
 * every grant apply would need and exits 1 before anything is created on either peer; with the grants its
 * hints give, plan is clean and apply succeeds. Also UNLOGGED tables, relations that cannot be published and
 * a wildcard that matches nothing are refused before a publication or slot exists.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { runCli } from '../support/cli.js';
import { peerYaml, tempProject } from '../support/project.js';

const pg = useClusters(['src', 'dst']);
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups) c();
});

const env = { PGPASS_TEST: 'postgres', SRC_PW: 'srcpw', DST_PW: 'dstpw' };
let n = 0;

async function databases(sourceSql: string, destSql = '') {
  const db = `priv${++n}`;
  await pg.src.createDatabase(db);
  await pg.dst.createDatabase(db);
  if (sourceSql) await pg.src.query(sourceSql, [], db);
  if (destSql) await pg.dst.query(destSql, [], db);
  return db;
}

/** A project whose source and/or destination peer connects as a limited role. */
function project(db: string, mirror: string, roles: { src?: string; dst?: string } = {}) {
  const p = tempProject(
    `version: 1\npeers:\n` +
      (roles.src ? peerYaml('prod', pg.src, db, 'SRC_PW', roles.src) : peerYaml('prod', pg.src, db)) +
      (roles.dst ? peerYaml('staging', pg.dst, db, 'DST_PW', roles.dst) : peerYaml('staging', pg.dst, db)) +
      `mirrors:\n${mirror}`,
  );
  cleanups.push(p.cleanup);
  return p;
}

const plan = (p: { dir: string }, ...args: string[]) => runCli(['plan', ...args], { cwd: p.dir, env });
const apply = (p: { dir: string }) => runCli(['apply', '--auto-approve'], { cwd: p.dir, env, timeoutMs: 120_000 });
const diagnostics = async (p: { dir: string }) =>
  JSON.parse((await plan(p, '--format', 'json')).stdout).diagnostics as {
    code: string;
    severity: string;
    message: string;
    hint: string;
  }[];

/** Nothing of the mirror exists on either peer: no publication, no slot, no catalog schema. */
async function expectNothingCreated(db: string) {
  expect(await pg.src.query(`SELECT pubname FROM pg_publication`, [], db)).toEqual([]);
  expect(await pg.src.query(`SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db])).toEqual([]);
  expect(await pg.dst.query(`SELECT nspname FROM pg_namespace WHERE nspname = 'mirrors'`, [], db)).toEqual([]);
}

const SHOP = `CREATE TABLE orders (id int PRIMARY KEY, total numeric); INSERT INTO orders SELECT g, g FROM generate_series(1, 50) g;
  CREATE TABLE items (id int PRIMARY KEY, sku text); INSERT INTO items VALUES (1, 'a'), (2, 'b');`;
const shopMirror = `  shop: { source: prod, destination: staging, tables: [{ source_table: orders }, { source_table: items }] }\n`;

describe('source role privileges', () => {
  it('a source role with only REPLICATION and SELECT (what the README used to say) is stopped by plan with MR109 and MR117, and nothing is created', async () => {
    const db = await databases(`${SHOP}
      CREATE ROLE src_lim LOGIN REPLICATION PASSWORD 'srcpw'; GRANT SELECT ON orders, items TO src_lim;`);
    const p = project(db, shopMirror, { src: 'src_lim' });
    const r = await plan(p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR109');
    expect(r.stdout).toContain(`GRANT CREATE ON DATABASE ${db} TO src_lim;`);
    expect(r.stdout).toContain('error MR117');
    // The tables belong to postgres, a superuser: membership in it is not offered as the fix.
    expect(r.stdout).toContain(
      'ALTER TABLE public.orders OWNER TO src_lim; ALTER TABLE public.items OWNER TO src_lim;  (docs/diagnostics.md#mr117)',
    );
    expect((await diagnostics(p)).map((d) => d.code)).toEqual(['MR109', 'MR117', 'MR105']);
    const a = await apply(p);
    expect(a.code).toBe(1);
    await expectNothingCreated(db);
  });

  it('with the grants the hints name, plan is clean and apply mirrors the tables as the limited role', async () => {
    const db = await databases(`${SHOP}
      CREATE ROLE src_ok LOGIN REPLICATION PASSWORD 'srcpw'; GRANT SELECT ON orders, items TO src_ok;`);
    const p = project(db, shopMirror, { src: 'src_ok' });
    expect((await plan(p)).code).toBe(1);
    await pg.src.query(
      `GRANT CREATE ON DATABASE ${db} TO src_ok; ALTER TABLE orders OWNER TO src_ok; ALTER TABLE items OWNER TO src_ok;`,
      [],
      db,
    );
    const r = await plan(p);
    expect(r.stdout).not.toContain('error MR');
    expect(r.code).toBe(0);
    const a = await apply(p);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const q = `SELECT x::text AS r FROM (SELECT * FROM orders) x ORDER BY 1`;
    expect(await pg.dst.query(q, [], db)).toEqual(await pg.src.query(q, [], db));
    expect(await pg.src.query(`SELECT pg_get_userbyid(pubowner) AS owner FROM pg_publication`, [], db)).toEqual([
      { owner: 'src_ok' },
    ]);
    await pg.src.query(`SELECT pg_drop_replication_slot('mirrors_shop')`);
  });

  it('MR116: a source role without USAGE on the table schema is told to grant it', async () => {
    const db = await databases(`CREATE SCHEMA hidden; CREATE TABLE hidden.t (id int PRIMARY KEY);
      CREATE ROLE src_nousage LOGIN REPLICATION PASSWORD 'srcpw'; GRANT SELECT ON hidden.t TO src_nousage;`);
    const p = project(db, `  m: { source: prod, destination: staging, tables: [{ source_table: hidden.t }] }\n`, {
      src: 'src_nousage',
    });
    const r = await plan(p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR116');
    expect(r.stdout).toContain('GRANT USAGE ON SCHEMA hidden TO src_nousage;');
  });
});

describe('destination role privileges', () => {
  it('a destination role without CREATE on the schema, SET on session_replication_role or grants on an adopted table gets MR125, MR126 and MR127; with those grants apply succeeds', async () => {
    const db = `priv${++n}`;
    await pg.src.createDatabase(db);
    await pg.dst.createDatabase(db);
    await pg.src.query(SHOP, [], db);
    // dst_lim may create the catalog (CREATE on the database) but not tables in public (PostgreSQL 15
    // grants PUBLIC only USAGE there); items already exists on the destination, owned by postgres.
    await pg.dst.query(
      `DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dst_lim') THEN CREATE ROLE dst_lim LOGIN PASSWORD 'dstpw'; END IF; END$$;
      GRANT CREATE ON DATABASE ${db} TO dst_lim; CREATE TABLE items (id int PRIMARY KEY, sku text);`,
      [],
      db,
    );
    const p = project(db, shopMirror, { dst: 'dst_lim' });
    const r = await plan(p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR125');
    expect(r.stdout).toContain('GRANT CREATE ON SCHEMA public TO dst_lim;');
    expect(r.stdout).toContain('error MR126');
    expect(r.stdout).toContain('GRANT SET ON PARAMETER session_replication_role TO dst_lim;');
    expect(r.stdout).toContain('error MR127');
    expect(r.stdout).toContain('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON public.items TO dst_lim;');
    expect((await diagnostics(p)).map((d) => d.code)).toEqual(['MR125', 'MR126', 'MR127', 'MR105']);
    expect((await apply(p)).code).toBe(1);
    await expectNothingCreated(db);

    await pg.dst.query(
      `GRANT CREATE ON SCHEMA public TO dst_lim; GRANT SET ON PARAMETER session_replication_role TO dst_lim;
      GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER ON public.items TO dst_lim;`,
      [],
      db,
    );
    const clean = await plan(p);
    expect(clean.stdout).not.toContain('error MR');
    expect(clean.code).toBe(0);
    const a = await apply(p);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    for (const t of ['orders', 'items']) {
      const q = `SELECT x::text AS r FROM (SELECT * FROM ${t}) x ORDER BY 1`;
      expect(await pg.dst.query(q, [], db)).toEqual(await pg.src.query(q, [], db));
    }
    // The adopted table got the read-only guard from a role that holds only TRIGGER on it.
    expect(
      await pg.dst.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.items'::regclass`, [], db),
    ).toEqual([{ tgname: 'mirrors_read_only' }]);
    await pg.src.query(`SELECT pg_drop_replication_slot('mirrors_shop')`);
    await pg.dst.query(`REVOKE SET ON PARAMETER session_replication_role FROM dst_lim`, [], db);
  });

  it('MR107: a destination role without CREATE on the database cannot create the catalog, nor run CREATE SCHEMA IF NOT EXISTS for an existing schema', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY)');
    await pg.dst.query(
      `DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dst_nodb') THEN CREATE ROLE dst_nodb LOGIN PASSWORD 'dstpw'; END IF; END$$;
      GRANT CREATE ON SCHEMA public TO dst_nodb; GRANT SET ON PARAMETER session_replication_role TO dst_nodb;`,
      [],
      db,
    );
    const p = project(db, `  m: { source: prod, destination: staging, tables: [{ source_table: t }] }\n`, {
      dst: 'dst_nodb',
    });
    const ds = await diagnostics(p);
    expect(ds.map((d) => d.code)).toEqual(['MR107', 'MR105']);
    expect(ds[0].hint).toBe(`GRANT CREATE ON DATABASE ${db} TO dst_nodb;`);
    expect((await plan(p)).code).toBe(1);
    await expectNothingCreated(db);
  });
});

describe('source tables that cannot be mirrored', () => {
  it('MR118: an UNLOGGED source table is refused (logical decoding never sees its rows), with ALTER TABLE ... SET LOGGED as the fix', async () => {
    const db = await databases('CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)');
    const p = project(db, `  m: { source: prod, destination: staging, tables: [{ source_table: scratch }] }\n`);
    const r = await plan(p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR118');
    expect(r.stdout).toContain('ALTER TABLE public.scratch SET LOGGED;');
    expect((await apply(p)).code).toBe(1);
    await expectNothingCreated(db);
  });

  it('MR118: a partitioned table with an UNLOGGED partition is refused', async () => {
    const db = await databases(`CREATE TABLE ev (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
      CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE UNLOGGED TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');`);
    const r = await plan(project(db, `  m: { source: prod, destination: staging, tables: [{ source_table: ev }] }\n`));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('partition public.ev_2025 of public.ev is UNLOGGED');
  });

  it('MR119: a view, a materialized view and a single partition are refused with why, instead of "does not exist"', async () => {
    const db = await databases(`CREATE TABLE base (id int PRIMARY KEY); CREATE VIEW v AS SELECT * FROM base;
      CREATE MATERIALIZED VIEW mv AS SELECT * FROM base;
      CREATE TABLE ev (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
      CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');`);
    const p = project(
      db,
      `  m: { source: prod, destination: staging, tables: [{ source_table: v }, { source_table: mv }, { source_table: ev_2024 }] }\n`,
    );
    const ds = await diagnostics(p);
    expect(ds.filter((d) => d.severity === 'error').map((d) => d.code)).toEqual(['MR119', 'MR119', 'MR119']);
    const text = ds.map((d) => d.message).join('\n');
    expect(text).toContain('public.v on peer prod is a view');
    expect(text).toContain('public.mv on peer prod is a materialized view');
    expect(text).toContain('public.ev_2024 is a partition of public.ev');
    expect(ds.find((d) => d.message.includes('ev_2024'))!.hint).toContain(`source_table: 'public.ev'`);
  });

  it('MR141: a wildcard that matches no table is an error, and apply creates no publication, slot or catalog', async () => {
    const db = await databases('CREATE TABLE t (id int PRIMARY KEY); CREATE SCHEMA empty;');
    const p = project(
      db,
      `  m: { source: prod, destination: staging, tables: [{ source_table: t }, { source_table: "empty.*" }] }\n`,
    );
    const r = await plan(p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error MR141');
    expect(r.stdout).toMatch(/this plan cannot be saved or applied/);
    expect((await apply(p)).code).toBe(1);
    await expectNothingCreated(db);
  });

  it('a wildcard whose every table is also mapped explicitly is not MR141', async () => {
    const db = await databases('CREATE SCHEMA rep; CREATE TABLE rep.daily (d date PRIMARY KEY);');
    const r = await plan(
      project(
        db,
        `  m: { source: prod, destination: staging, tables: [{ source_table: rep.daily, destination_table: public.daily }, { source_table: "rep.*" }] }\n`,
      ),
    );
    expect(r.stdout).not.toContain('MR141');
    expect(r.code).toBe(0);
  });
});
