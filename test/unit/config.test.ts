import { describe, expect, test } from 'vitest';
import { parseConfigText, validateConfigText } from '../../src/config/load.js';
import { hashInput } from '../../src/config/normalize.js';
import { peerPassword } from '../../src/config/types.js';

const PROD_PASSWORD = 'pw-Prod-8c1f0e';
const STAGING_PASSWORD = 'url-pass-77d2!';
const ENV = {
  PROD_PASSWORD,
  STAGING_URL: `postgres://stager:${encodeURIComponent(STAGING_PASSWORD)}@db.example.com:6543/stage?sslmode=require`,
};

const EXAMPLE = `version: 1
peers:
  prod:    { host: 127.0.0.1, port: 5432, database: app, user: mirrors, password: "\${env:PROD_PASSWORD}", sslmode: prefer }
  staging: { url: "\${env:STAGING_URL}" }
defaults: { max_batch_size: 1000 }
mirrors:
  prod_to_staging:
    source: prod
    destination: staging
    mode: async
    do_initial_snapshot: true
    snapshot_num_rows_per_partition: 250000
    snapshot_max_parallel_workers: 8
    snapshot_num_tables_in_parallel: 4
    max_batch_size: 1000
    idle_timeout_seconds: 60
    replicate_indexes: true
    replicate_foreign_keys: true
    resync_strategy: truncate
    lag_threshold: 5s
    paused: false
    tables:
      - source_table: public.users
      - { source_table: public.orders, partition_key: user_id, exclude_columns: [internal_notes] }
      - { source_table: analytics.events, destination_table: public.events }
      - { source_table: "reporting.*" }
`;

/** A small valid config whose mirror `m` takes extra YAML lines (indented 4 spaces). */
function minimal(mirrorLines: string[] = [], tables: string[] = ['      - source_table: public.users']): string {
  return [
    'version: 1',
    'peers:',
    '  a: { host: db-a, database: app, user: u }',
    '  b: { host: db-b, database: app, user: u }',
    'mirrors:',
    '  m:',
    '    source: a',
    '    destination: b',
    ...mirrorLines,
    '    tables:',
    ...tables,
    '',
  ].join('\n');
}

function parse(text: string, env: Record<string, string | undefined> = ENV) {
  return parseConfigText(text, 'mirrors.yaml', env);
}

describe('the full example', () => {
  const config = parse(EXAMPLE);
  const m = config.mirrors.prod_to_staging;

  test('parses into the normalized mirror with every setting', () => {
    expect(m).toMatchObject({
      name: 'prod_to_staging',
      source: 'prod',
      destination: 'staging',
      mode: 'async',
      do_initial_snapshot: true,
      snapshot_num_rows_per_partition: 250000,
      snapshot_max_parallel_workers: 8,
      snapshot_num_tables_in_parallel: 4,
      max_batch_size: 1000,
      idle_timeout_seconds: 60,
      replicate_indexes: true,
      replicate_foreign_keys: true,
      resync_strategy: 'truncate',
      lag_threshold_ms: 5000,
      paused: false,
    });
    expect(m.pos).toEqual({ file: 'mirrors.yaml', line: 7, col: 3, path: 'mirrors.prod_to_staging' });
  });

  test('defaults the destination to the source name, keeps wildcards and renames', () => {
    expect(m.tables.map(({ pos: _pos, ...t }) => t)).toEqual([
      {
        source: { kind: 'table', schema: 'public', name: 'users' },
        destination: { schema: 'public', name: 'users' },
        exclude_columns: [],
      },
      {
        source: { kind: 'table', schema: 'public', name: 'orders' },
        destination: { schema: 'public', name: 'orders' },
        partition_key: 'user_id',
        exclude_columns: ['internal_notes'],
      },
      {
        source: { kind: 'table', schema: 'analytics', name: 'events' },
        destination: { schema: 'public', name: 'events' },
        exclude_columns: [],
      },
      { source: { kind: 'schema', schema: 'reporting' }, exclude_columns: [] },
    ]);
    expect(m.tables[3].destination).toBeUndefined();
    expect(m.tables[1].pos).toEqual({
      file: 'mirrors.yaml',
      line: 24,
      col: 9,
      path: 'mirrors.prod_to_staging.tables[1]',
    });
  });

  test('splits a url peer into fields and defaults a host peer', () => {
    expect({ ...config.peers.staging }).toEqual({
      name: 'staging',
      host: 'db.example.com',
      port: 6543,
      database: 'stage',
      user: 'stager',
      sslmode: 'require',
    });
    expect(peerPassword(config.peers.staging)).toBe(STAGING_PASSWORD);
    expect(peerPassword(config.peers.prod)).toBe(PROD_PASSWORD);
    expect(config.peers.prod).toMatchObject({
      host: '127.0.0.1',
      port: 5432,
      database: 'app',
      user: 'mirrors',
      sslmode: 'prefer',
    });
  });

  test('records the file as an absolute path and a sha256 hash', () => {
    expect(config.file).toMatch(/^\/.*mirrors\.yaml$/);
    expect(config.version).toBe(1);
    expect(config.hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('settings', () => {
  test('built-in defaults apply to every setting a mirror leaves out', () => {
    const m = parse(minimal()).mirrors.m;
    expect(m).toMatchObject({
      mode: 'async',
      do_initial_snapshot: true,
      snapshot_num_rows_per_partition: 250000,
      snapshot_max_parallel_workers: 4,
      snapshot_num_tables_in_parallel: 4,
      max_batch_size: 1000,
      idle_timeout_seconds: 60,
      replicate_indexes: true,
      replicate_foreign_keys: true,
      resync_strategy: 'truncate',
      lag_threshold_ms: 5000,
      paused: false,
    });
  });

  test('a sync mirror without lag_threshold defaults to 100ms', () => {
    expect(parse(minimal(['    mode: sync'])).mirrors.m.lag_threshold_ms).toBe(100);
  });

  test('an explicit lag_threshold wins over the sync default', () => {
    expect(parse(minimal(['    mode: sync', '    lag_threshold: 1m30s'])).mirrors.m.lag_threshold_ms).toBe(90_000);
  });

  test('`defaults:` sits between the built-in defaults and the mirror', () => {
    const text = minimal(['    max_batch_size: 200']).replace(
      'mirrors:\n',
      'defaults: { max_batch_size: 500, paused: true, lag_threshold: 250ms }\nmirrors:\n',
    );
    const m = parse(text).mirrors.m;
    expect(m.max_batch_size).toBe(200);
    expect(m.paused).toBe(true);
    expect(m.lag_threshold_ms).toBe(250);
  });

  test('a url peer without port or sslmode gets 5432 and prefer', () => {
    const text = minimal().replace(
      '  b: { host: db-b, database: app, user: u }',
      '  b: { url: "postgresql://u@db-b/app" }',
    );
    expect({ ...parse(text).peers.b }).toEqual({
      name: 'b',
      host: 'db-b',
      port: 5432,
      database: 'app',
      user: 'u',
      sslmode: 'prefer',
    });
  });
});

describe('table names', () => {
  const tablesOf = (...tables: string[]) => parse(minimal([], tables)).mirrors.m.tables;

  test('quoted identifiers keep their case, spaces and dots', () => {
    const [t] = tablesOf(`      - source_table: '"Sales Dept"."Order Items"'`);
    expect(t.source).toEqual({ kind: 'table', schema: 'Sales Dept', name: 'Order Items' });
    expect(t.destination).toEqual({ schema: 'Sales Dept', name: 'Order Items' });
  });

  test('a quoted wildcard selects every table of the schema', () => {
    const [t] = tablesOf('      - source_table: "reporting.*"');
    expect(t.source).toEqual({ kind: 'schema', schema: 'reporting' });
  });

  test('unquoted names fold to lower case and a bare name means schema public', () => {
    const [t] = tablesOf('      - { source_table: Users, destination_table: Archive.Users }');
    expect(t.source).toEqual({ kind: 'table', schema: 'public', name: 'users' });
    expect(t.destination).toEqual({ schema: 'archive', name: 'users' });
  });

  test('a hostile quoted name parses into exactly that name, nothing more', () => {
    const [t] = tablesOf(`      - source_table: 'public."x""; drop table y; --"'`);
    expect(t.source).toEqual({ kind: 'table', schema: 'public', name: 'x"; drop table y; --' });
  });

  test('exclude_columns and partition_key are exact column names, not folded', () => {
    const [t] = tablesOf('      - { source_table: t, partition_key: UserId, exclude_columns: ["Notes", "a b"] }');
    expect(t.partition_key).toBe('UserId');
    expect(t.exclude_columns).toEqual(['Notes', 'a b']);
  });
});

describe('environment interpolation', () => {
  test('${env:NAME} works in any string and $${ is a literal ${', () => {
    const text = minimal([], ['      - { source_table: t, partition_key: "$${env:X}" }']).replace(
      'database: app, user: u }\n  b:',
      'database: "${env:DB}", user: u }\n  b:',
    );
    const config = parse(text, { DB: 'from_env' });
    expect(config.peers.a.database).toBe('from_env');
    expect(config.mirrors.m.tables[0].partition_key).toBe('${env:X}');
  });
});

describe('secrets', () => {
  test('passwords are non-enumerable and absent from JSON and from the hash input', () => {
    const config = parse(EXAMPLE);
    const json = JSON.stringify(config);
    const hashed = hashInput(config);
    for (const secret of [PROD_PASSWORD, STAGING_PASSWORD, encodeURIComponent(STAGING_PASSWORD), ENV.STAGING_URL]) {
      expect(json).not.toContain(secret);
      expect(hashed).not.toContain(secret);
    }
    expect(Object.keys(config.peers.prod)).not.toContain('password');
    expect(json).not.toContain('password');
  });

  test('no problem message echoes a password or a url, even a broken one', () => {
    const secretUrl = 'postgres://Usr9x:Hunter2-zz@bad host:99999/db?opt=1';
    const text = [
      'version: 1',
      'peers:',
      '  a: { url: "${env:URL}" }',
      '  b: { url: "postgres://u:Hunter2-zz@db-b/app", password: "Hunter2-zz" }',
      '  c: { host: h, database: d, user: u, password: 12345678 }',
      '  d: { url: "pg://u:Hunter2-zz@h/d" }',
      '  e: { url: "postgres://u:Hunter2-zz@h/d?sslmode=Hunter2-zz" }',
      '  f: { host: h, database: d, user: u, password: "Hunter2-zz${oops}" }',
      'mirrors: {}',
      '',
    ].join('\n');
    const { problems } = validateConfigText(text, 'mirrors.yaml', { URL: secretUrl });
    expect(problems.length).toBeGreaterThanOrEqual(6);
    const all = JSON.stringify(problems);
    expect(all).not.toContain('Hunter2');
    expect(all).not.toContain('12345678');
    expect(all).not.toContain('Usr9x');
    expect(all).not.toContain('oops');
  });
});

describe('hash', () => {
  const base = parse(EXAMPLE).hash;

  test('is stable when keys are reordered, comments added or passwords rotated', () => {
    const reordered = EXAMPLE.replace(
      '    source: prod\n    destination: staging\n    mode: async\n',
      '    mode: async # comment\n    destination: staging\n    source: prod\n',
    ).replace('port: 5432, database: app', 'database: app, port: 5432');
    expect(reordered).not.toBe(EXAMPLE);
    expect(parse(reordered).hash).toBe(base);
    expect(parse(EXAMPLE, { ...ENV, PROD_PASSWORD: 'rotated' }).hash).toBe(base);
  });

  test('is stable when a setting moves between defaults and the mirror', () => {
    const moved = EXAMPLE.replace('defaults: { max_batch_size: 1000 }\n', '').replace('    max_batch_size: 1000\n', '');
    expect(parse(moved).hash).toBe(base);
  });

  test('changes when a table is added or a setting changes', () => {
    const added = EXAMPLE + '      - source_table: public.extra\n';
    expect(parse(added).hash).not.toBe(base);
    expect(parse(EXAMPLE.replace('max_batch_size: 1000\n    idle', 'max_batch_size: 999\n    idle')).hash).not.toBe(
      base,
    );
  });
});
