/**
 * Inspection sends a constant number of queries per peer whatever the number of tables, and never writes.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { inspect } from '../../src/inspect/index.js';
import { buildPlan } from '../../src/diff/build.js';
import { useClusters } from '../support/clusters.js';

const pg = useClusters(['src', 'dst']);

function configFor(db: string, tables: number) {
  const yaml = `version: 1
peers:
  prod: { host: 127.0.0.1, port: ${pg.src.port}, database: ${db}, user: postgres, password: postgres }
  staging: { host: 127.0.0.1, port: ${pg.dst.port}, database: ${db}, user: postgres, password: postgres }
mirrors:
  m:
    source: prod
    destination: staging
    tables:
${Array.from({ length: tables }, (_, i) => `      - { source_table: public.t${i} }`).join('\n')}
`;
  return parseConfigText(yaml, '/virtual/mirrors.yaml', {});
}

async function makeTables(db: string, n: number) {
  await pg.src.createDatabase(db);
  await pg.dst.createDatabase(db);
  const ddl = Array.from(
    { length: n },
    (_, i) => `CREATE TABLE t${i} (id bigint PRIMARY KEY, a text, b int REFERENCES t0(id)); CREATE INDEX ON t${i} (b);`,
  ).join('\n');
  // t0 first: the others reference it.
  await pg.src.query(
    `CREATE TABLE t0 (id bigint PRIMARY KEY, a text, b int); ${ddl.split('\n').slice(1).join('\n')}`,
    [],
    db,
  );
  // Existing destination tables are probed for rows: make half of them exist.
  await pg.dst.query(
    Array.from(
      { length: Math.ceil(n / 2) },
      (_, i) => `CREATE TABLE t${i} (id bigint PRIMARY KEY, a text, b int);`,
    ).join('\n'),
    [],
    db,
  );
}

describe('inspection', () => {
  it('sends the same number of queries for 1 table and for 200 tables', async () => {
    await makeTables('one', 1);
    await makeTables('many', 200);
    const one = await inspect(configFor('one', 1), null);
    const many = await inspect(configFor('many', 200), null);
    expect(Object.keys(many.live.peers.prod.tables)).toHaveLength(200);
    expect(many.queries).toEqual(one.queries);
    // 13 (docs/design.md), and 2 for synchronous_standby_names (its facts, and pg_file_settings as a superuser).
    expect(many.queries.prod).toBeLessThanOrEqual(15);
  });

  it('plans 1,000 tables (printing its own time; the budget is checked by npm run bench)', async () => {
    await makeTables('thousand', 1000);
    const config = configFor('thousand', 1000);
    const t0 = performance.now();
    const { live } = await inspect(config, null);
    const t1 = performance.now();
    const plan = buildPlan(config, live, { selected: null, createdBy: 'test' });
    const t2 = performance.now();
    expect(plan.actions.filter((a) => a.kind === 'table')).toHaveLength(1000);
    console.log(`plan over 1000 tables: inspect ${Math.round(t1 - t0)} ms, diff+order ${Math.round(t2 - t1)} ms`);
  });
});
