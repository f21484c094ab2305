import { describe, expect, test } from 'vitest';
import { MirrorsError } from '../../src/errors.js';
import { ConfigInvalidError, parseConfigText, validateConfigText, type ConfigProblem } from '../../src/config/load.js';

/** Lines joined so that `lines[i]` is line i + 1 of the file: expected positions can be read off the test. */
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

const PEERS = [
  'peers:',
  '  prod: { host: db-a, database: app, user: u }',
  '  staging: { host: db-b, database: app, user: u }',
];

/** version + peers (lines 1-4) + `mirrors:` (line 5) + the given lines from line 6 on. */
const withMirrors = (...lines: string[]) => yaml('version: 1', ...PEERS, 'mirrors:', ...lines);

const MIRROR_HEAD = ['  m:', '    source: prod', '    destination: staging']; // lines 6-8

function problemsOf(text: string, env: Record<string, string | undefined> = {}): ConfigProblem[] {
  const r = validateConfigText(text, 'mirrors.yaml', env);
  expect(r.config).toBeUndefined();
  return r.problems;
}

/** [line:col, path, message, hint] of each problem: compact, and exact. */
function brief(text: string, env: Record<string, string | undefined> = {}) {
  return problemsOf(text, env).map((p) => [`${p.line}:${p.col}`, p.path, p.message, p.hint]);
}

describe('YAML syntax', () => {
  test('every syntax error is reported with its position, and alone', () => {
    const text = yaml('version: 1', 'peers:', '  prod: { host: a', 'mirrors:', '  m: [', 'version: 2');
    const ps = problemsOf(text);
    expect(ps.length).toBeGreaterThanOrEqual(2);
    expect(ps.every((p) => p.message.startsWith('YAML: '))).toBe(true);
    expect(ps[0]).toMatchObject({ file: 'mirrors.yaml', line: 4, col: 1, path: '' });
  });

  test('a duplicate key is a syntax error at the second occurrence, with its path', () => {
    const text = yaml('version: 1', 'version: 1', 'peers: {}', 'mirrors: {}');
    expect(brief(text)).toEqual([
      ['2:1', 'version', 'YAML: the key `version` is given twice in this map', 'each key may appear once in a map'],
    ]);
  });

  test('keys that become the same string clash too, in nested and flow maps', () => {
    const text = yaml('version: 1', 'peers: {}', 'mirrors: {}', 'defaults: { 1: a, "1": b }');
    expect(brief(text)).toEqual([
      ['4:19', 'defaults.1', 'YAML: the key `1` is given twice in this map', 'each key may appear once in a map'],
    ]);
  });

  test('an unknown tag is reported rather than silently read as a string', () => {
    const text = yaml('version: 1', 'peers: {}', 'mirrors: {}', 'defaults: { mode: !env MODE }');
    expect(brief(text)).toEqual([
      ['4:19', '', 'YAML: Unresolved tag: !env', undefined],
      ['4:24', 'defaults.mode', 'must be one of async, sync, found `MODE`', undefined],
    ]);
  });

  test('an alias bomb is refused', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 6; i++) {
      const prev = String.fromCharCode(97 + i);
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill('*' + prev)
          .join(', ')}]`,
      );
    }
    const ps = problemsOf(yaml(...bomb));
    expect(ps).toHaveLength(1);
    expect(ps[0].message).toMatch(/^YAML: Excessive alias count/);
  });

  test('an empty file says so', () => {
    expect(brief('# nothing yet\n')).toEqual([['1:1', '', 'the file is empty', 'start from examples/mirrors.yaml']]);
  });
});

describe('schema', () => {
  test('an unknown key points at the key and suggests the closest allowed key', () => {
    const text = withMirrors(...MIRROR_HEAD, '    max_batch_sise: 10', '    tables: [{ source_table: t }]');
    expect(brief(text)).toEqual([
      ['9:5', 'mirrors.m.max_batch_sise', 'unknown key `max_batch_sise`', 'did you mean `max_batch_size`?'],
    ]);
  });

  test('an unknown key with no close match lists the allowed keys', () => {
    const text = yaml('version: 1', 'peers: {}', 'mirrors: {}', 'colour: blue');
    expect(brief(text)).toEqual([
      ['4:1', 'colour', 'unknown key `colour`', 'allowed keys here: version, project, peers, defaults, mirrors'],
    ]);
  });

  test('a key valid elsewhere says where it belongs', () => {
    const text = yaml('version: 1', 'peers: {}', 'defaults:', '  source: prod', '  max_batch_size: 10', 'mirrors: {}');
    expect(brief(text)).toEqual([['4:3', 'defaults.source', 'unknown key `source`', '`source` is set in each mirror']]);
  });

  test('a value gets one problem even when it breaks several schema rules', () => {
    const text = yaml('version: 1', 'peers: {}', 'defaults: { mode: 1 }', 'mirrors: {}');
    expect(brief(text)).toEqual([
      ['3:19', 'defaults.mode', 'expected a string, found a whole number', 'quote the value to make it a string'],
    ]);
  });

  test('a missing key points at the map it is missing from', () => {
    const text = withMirrors('  m:', '    source: prod', '    tables: [{ source_table: t }]');
    expect(brief(text)).toEqual([['7:5', 'mirrors.m.destination', 'missing required key `destination`', undefined]]);
  });

  test('wrong types, enums and ranges point at the value', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    mode: asynch',
      '    paused: yes',
      '    max_batch_size: 0',
      '    snapshot_max_parallel_workers: 2.5',
      '    tables: [{ source_table: t }]',
    );
    expect(brief(text)).toEqual([
      ['9:11', 'mirrors.m.mode', 'must be one of async, sync, found `asynch`', 'did you mean `async`?'],
      [
        '10:13',
        'mirrors.m.paused',
        'expected true or false, found a string',
        'write true or false (YAML 1.2: yes/no/on/off are strings)',
      ],
      ['11:21', 'mirrors.m.max_batch_size', 'must be at least 1, found `0`', undefined],
      [
        '12:36',
        'mirrors.m.snapshot_max_parallel_workers',
        'expected a whole number, found a number with a fraction',
        undefined,
      ],
    ]);
  });

  test('version must be 1', () => {
    expect(brief(yaml('version: 2', 'peers: {}', 'mirrors: {}'))).toEqual([
      ['1:10', 'version', 'unsupported version `2`: this mirrors reads version 1', 'write `version: 1`'],
    ]);
  });

  test('port must be between 1 and 65535', () => {
    const text = yaml('version: 1', 'peers:', '  p: { host: h, port: 70000, database: d, user: u }', 'mirrors: {}');
    expect(brief(text)).toEqual([['3:23', 'peers.p.port', 'must be at most 65535, found `70000`', undefined]]);
  });

  test('a mirror needs at least one table, and tables are maps', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables: []',
      '  n:',
      '    source: prod',
      '    destination: staging',
      '    tables:',
      '      - public.t',
    );
    expect(brief(text)).toEqual([
      ['9:13', 'mirrors.m.tables', 'a mirror needs at least one table', 'add `- source_table: schema.table`'],
      [
        '14:9',
        'mirrors.n.tables[0]',
        'expected a map (key: value), found a string',
        'write `- source_table: public.t`',
      ],
    ]);
  });

  test('mirror names are lower-case words of at most 50 characters', () => {
    const long = 'm'.repeat(51);
    const text = withMirrors(
      '  Prod_Copy: { source: prod, destination: staging, tables: [{ source_table: t }] }',
      `  ${long}: { source: prod, destination: staging, tables: [{ source_table: u }] }`,
      `  ${'m'.repeat(50)}: { source: prod, destination: staging, tables: [{ source_table: v }] }`,
    );
    const hint =
      'use lower-case letters, digits and _, starting with a letter, at most 50 characters (the source publication and slot are named mirrors_NAME)';
    expect(brief(text)).toEqual([
      ['6:3', 'mirrors.Prod_Copy', 'invalid mirror name `Prod_Copy`', hint],
      ['7:3', `mirrors.${long}`, `invalid mirror name \`${long}\``, hint],
    ]);
  });

  test('peer names are lower-case words, dashes allowed', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  eu-west: { host: h, database: d, user: u }',
      '  "my peer": { host: h, database: d, user: u }',
      'mirrors: {}',
    );
    expect(brief(text)).toEqual([
      [
        '4:3',
        'peers["my peer"]',
        'invalid peer name `my peer`',
        'use lower-case letters, digits, _ and -, starting with a letter, at most 63 characters',
      ],
    ]);
  });

  test('exclude_columns entries must not be empty', () => {
    const text = withMirrors(...MIRROR_HEAD, '    tables:', '      - { source_table: t, exclude_columns: [a, ""] }');
    expect(brief(text)).toEqual([['10:49', 'mirrors.m.tables[0].exclude_columns[1]', 'must not be empty', undefined]]);
  });
});

describe('peers', () => {
  test('url cannot be combined with connection fields', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  p: { url: "postgres://u@h/d", host: h, sslmode: require }',
      'mirrors: {}',
    );
    const hint = 'give either url, or host/port/database/user/password/sslmode';
    expect(brief(text)).toEqual([
      ['3:33', 'peers.p.host', '`host` cannot be combined with `url`', hint],
      ['3:42', 'peers.p.sslmode', '`sslmode` cannot be combined with `url`', hint],
    ]);
  });

  test('without url, host, database and user are required', () => {
    const text = yaml('version: 1', 'peers:', '  p:', '    port: 5433', 'mirrors: {}');
    const hint = 'or give the whole connection as `url`';
    expect(brief(text)).toEqual([
      ['4:5', 'peers.p.database', 'missing required key `database`', hint],
      ['4:5', 'peers.p.host', 'missing required key `host`', hint],
      ['4:5', 'peers.p.user', 'missing required key `user`', hint],
    ]);
  });

  test('a url that is not postgres:// or lacks parts is reported without echoing it', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  a: { url: "mysql://u:pw@h/d" }',
      '  b: { url: "postgres://u:pw@h" }',
      '  c: { url: "postgres://h/d" }',
      '  d: { url: "postgres://u@h/d?application_name=x" }',
      'mirrors: {}',
    );
    const hint = 'postgres://user:password@host:port/database?sslmode=prefer';
    expect(brief(text)).toEqual([
      ['3:13', 'peers.a.url', 'url must start with postgres:// or postgresql://', hint],
      ['4:13', 'peers.b.url', 'url has no database: write postgres://user@host/DATABASE', hint],
      ['5:13', 'peers.c.url', 'url has no user: write postgres://USER@host/database', hint],
      ['6:13', 'peers.d.url', 'url parameter `application_name` is not supported (only sslmode)', hint],
    ]);
  });
});

describe('environment variables', () => {
  test('a missing variable is reported at its scalar with an export hint', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  p: { host: h, database: d, user: u, password: "${env:PROD_PASSWORD}" }',
      'mirrors: {}',
    );
    expect(brief(text)).toEqual([
      ['3:49', 'peers.p.password', 'environment variable `PROD_PASSWORD` is not set', 'export PROD_PASSWORD=...'],
    ]);
    expect(validateConfigText(text, 'mirrors.yaml', { PROD_PASSWORD: 'x' }).problems).toEqual([]);
  });

  test('a url from a missing variable is one problem, not also a bad url', () => {
    const text = yaml('version: 1', 'peers:', '  p: { url: "${env:P_URL}" }', 'mirrors: {}');
    expect(brief(text)).toEqual([
      ['3:13', 'peers.p.url', 'environment variable `P_URL` is not set', 'export P_URL=...'],
    ]);
  });

  describe("under missingEnv 'warn' (mirrors validate without secrets)", () => {
    const FORK = yaml(
      'version: 1', // 1
      'peers:', // 2
      '  prod: { host: db-a, database: app, user: u, password: "${env:PROD_PASSWORD}" }', // 3
      '  staging: { url: "${env:STAGING_URL}" }', // 4
      'mirrors:', // 5
      '  m: { source: prod, destination: staging, tables: [{ source_table: "public.${env:TABLE}" }] }', // 6
    );
    const warn = (text: string, env: Record<string, string> = {}) =>
      validateConfigText(text, 'mirrors.yaml', env, { missingEnv: 'warn' });

    test('an unset variable is a warning, the file is valid, and nothing derived from its empty value is reported', () => {
      const r = warn(FORK);
      expect(r.problems).toEqual([]);
      expect(r.errorCount).toBe(0);
      expect(r.warnings.map((p) => [`${p.line}:${p.col}`, p.path, p.message, p.hint])).toEqual([
        [
          '3:57',
          'peers.prod.password',
          'environment variable `PROD_PASSWORD` is not set: the checks that need its value were skipped',
          'export PROD_PASSWORD=... (plan, apply, run and status need it)',
        ],
        [
          '4:19',
          'peers.staging.url',
          'environment variable `STAGING_URL` is not set: the checks that need its value were skipped',
          'export STAGING_URL=... (plan, apply, run and status need it)',
        ],
        [
          '6:69',
          'mirrors.m.tables[0].source_table',
          'environment variable `TABLE` is not set: the checks that need its value were skipped',
          'export TABLE=... (plan, apply, run and status need it)',
        ],
      ]);
      expect(r.warningCount).toBe(3);
      expect(r.counts).toEqual({ peers: 2, mirrors: 1, tableMappings: 1 });
    });

    test('no Config is produced while a variable is unset, since it would hold empty values', () => {
      expect(warn(FORK).config).toBeUndefined();
      const all = warn(FORK, { PROD_PASSWORD: 'x', STAGING_URL: 'postgres://u@db-b/app', TABLE: 't' });
      expect(all.warnings).toEqual([]);
      expect(all.config?.mirrors.m.tables[0].source).toEqual({ kind: 'table', schema: 'public', name: 't' });
    });

    test('real errors are still errors next to the warnings', () => {
      const r = warn(FORK.replace('source: prod', 'source: prd').replace('${env:PROD_PASSWORD}', '${PROD_PASSWORD}'));
      expect(r.problems.map((p) => p.path)).toEqual(['peers.prod.password', 'mirrors.m.source']);
      expect(r.warnings.map((p) => p.path)).toEqual(['peers.staging.url', 'mirrors.m.tables[0].source_table']);
    });

    test('every command that connects still refuses the unset variable (parseConfigText has no warn mode)', () => {
      expect(() => parseConfigText(FORK, 'mirrors.yaml', {})).toThrow('mirrors.yaml has 3 problems');
      expect(validateConfigText(FORK, 'mirrors.yaml', {}).errorCount).toBe(3);
    });
  });

  test('a placeholder other than ${env:NAME} is reported', () => {
    const text = yaml('version: 1', 'peers:', '  p: { host: "${HOST}", database: d, user: u }', 'mirrors: {}');
    expect(brief(text)).toEqual([
      [
        '3:14',
        'peers.p.host',
        'unsupported placeholder `${HOST}`: only `${env:NAME}` is understood',
        'write $${ for a literal ${',
      ],
    ]);
  });
});

describe('mirrors and peers', () => {
  test('an unknown peer suggests the closest declared one', () => {
    const text = withMirrors(
      '  m:',
      '    source: prd',
      '    destination: stagign',
      '    tables: [{ source_table: t }]',
    );
    expect(brief(text)).toEqual([
      ['7:13', 'mirrors.m.source', 'unknown peer `prd`', 'did you mean `prod`?'],
      ['8:18', 'mirrors.m.destination', 'unknown peer `stagign`', 'did you mean `staging`?'],
    ]);
  });

  test('an unknown peer with no close match lists the declared peers', () => {
    const text = withMirrors(
      '  m:',
      '    source: prod',
      '    destination: analytics',
      '    tables: [{ source_table: t }]',
    );
    expect(brief(text)).toEqual([
      ['8:18', 'mirrors.m.destination', 'unknown peer `analytics`', 'declared peers: prod, staging'],
    ]);
  });

  test('a mirror from a peer to itself is refused', () => {
    const text = withMirrors('  m:', '    source: prod', '    destination: prod', '    tables: [{ source_table: t }]');
    expect(brief(text)).toEqual([
      [
        '8:18',
        'mirrors.m.destination',
        'source and destination are the same peer `prod`',
        'a mirror copies from one database to another',
      ],
    ]);
  });

  test('two peers reaching the same database are the same database (localhost = 127.0.0.1 = ::1, default port)', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  a: { host: localhost, database: app, user: u }',
      '  b: { url: "postgres://v@127.0.0.1:5432/app" }',
      '  c: { host: "::1", port: 5432, database: app, user: w }',
      '  d: { host: "127.0.0.1", port: 5433, database: app, user: w }',
      'mirrors:',
      '  m1: { source: a, destination: b, tables: [{ source_table: t }] }',
      '  m2: { source: b, destination: c, tables: [{ source_table: t2 }] }',
      '  m3: { source: a, destination: d, tables: [{ source_table: t3 }] }',
    );
    const hint = 'a mirror copies from one database to another (localhost, 127.0.0.1 and ::1 are the same host)';
    expect(brief(text)).toEqual([
      ['8:33', 'mirrors.m1.destination', 'peers `a` and `b` are the same database', hint],
      ['9:33', 'mirrors.m2.destination', 'peers `b` and `c` are the same database', hint],
    ]);
  });
});

describe('tables', () => {
  test('an invalid table name reports the parser message at the name', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables:',
      '      - source_table: Sales Dept.orders',
      '      - source_table: a.b.c',
    );
    const hint = 'write schema.table; double-quote names with capitals, spaces or dots ("Sales Dept"."Order Items")';
    expect(brief(text)).toEqual([
      [
        '10:23',
        'mirrors.m.tables[0].source_table',
        'invalid source_table: `Sales Dept` is not a plain identifier: double-quote it (e.g. "Sales Dept")',
        hint,
      ],
      [
        '11:23',
        'mirrors.m.tables[1].source_table',
        'invalid source_table: expected `table` or `schema.table`, found 3 dotted parts (quote a name containing a dot)',
        hint,
      ],
    ]);
  });

  test('destination_table is not allowed with a wildcard source, nor as a wildcard', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables:',
      '      - { source_table: "reporting.*", destination_table: archive.reports }',
      '      - { source_table: public.t, destination_table: "archive.*" }',
    );
    expect(brief(text)).toEqual([
      [
        '10:59',
        'mirrors.m.tables[0].destination_table',
        'destination_table cannot be used with the wildcard source `reporting.*`',
        'each table of the schema keeps its name; list the table on its own to rename it',
      ],
      [
        '11:54',
        'mirrors.m.tables[1].destination_table',
        'destination_table cannot be a wildcard',
        'name one table, or leave it out to keep the source name',
      ],
    ]);
  });

  test('two tables of one mirror cannot write the same destination table', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables:',
      '      - source_table: public.events',
      '      - { source_table: analytics.events, destination_table: Public.Events }',
    );
    expect(brief(text)).toEqual([
      [
        '11:62',
        'mirrors.m.tables[1].destination_table',
        'destination table `public.events` is already written by tables[0]',
        'give one of them another destination_table',
      ],
    ]);
  });

  test('the same source table listed twice is reported once', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables:',
      '      - source_table: public.t',
      '      - source_table: T',
    );
    expect(brief(text)).toEqual([
      [
        '11:23',
        'mirrors.m.tables[1].source_table',
        '`public.t` is already listed at tables[0]',
        'list each source table once',
      ],
    ]);
  });

  test('two mirrors cannot write the same destination table on the same database', () => {
    const text = yaml(
      'version: 1',
      ...PEERS,
      '  staging_alias: { url: "postgres://x@db-b/app" }',
      'mirrors:',
      '  one: { source: prod, destination: staging, tables: [{ source_table: public.users }] }',
      '  two: { source: prod, destination: staging_alias, tables: [{ source_table: other.u, destination_table: users }] }',
      '  three: { source: prod, destination: staging, tables: [{ source_table: "public.*" }] }',
    );
    expect(brief(text)).toEqual([
      [
        '8:105',
        'mirrors.two.tables[0].destination_table',
        'destination table `public.users` on peer `staging_alias` is already written by mirror `one` (mirrors.one.tables[0])',
        'a destination table has exactly one writer; give one of them another destination_table',
      ],
    ]);
  });

  test('columns: no duplicates, and the partition key cannot be excluded', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    tables:',
      '      - { source_table: t, partition_key: id, exclude_columns: [a, id, a] }',
    );
    expect(brief(text)).toEqual([
      [
        '10:68',
        'mirrors.m.tables[0].exclude_columns[1]',
        '`id` is the partition_key and cannot be excluded',
        'remove it from exclude_columns or choose another partition_key',
      ],
      ['10:72', 'mirrors.m.tables[0].exclude_columns[2]', '`a` is already listed at exclude_columns[0]', undefined],
    ]);
  });
});

describe('durations', () => {
  test('a malformed lag_threshold is one problem with a hint', () => {
    const text = withMirrors(...MIRROR_HEAD, '    lag_threshold: 5 seconds', '    tables: [{ source_table: t }]');
    expect(brief(text)).toEqual([
      [
        '9:20',
        'mirrors.m.lag_threshold',
        '`5 seconds` is not a duration',
        'write a duration such as 100ms, 5s, 2m or 1m30s',
      ],
    ]);
  });

  test('out-of-range durations are refused', () => {
    const text = yaml('version: 1', 'peers: {}', 'defaults: { lag_threshold: 25h }', 'mirrors: {}');
    expect(brief(text)).toEqual([
      [
        '3:28',
        'defaults.lag_threshold',
        'the duration must be at most 24h',
        'write a duration such as 100ms, 5s, 2m or 1m30s',
      ],
    ]);
  });
});

describe('reporting', () => {
  const BROKEN = withMirrors(
    '  m:', // 6
    '    source: prd', // 7
    '    destination: staging', // 8
    '    max_batch_sise: 10', // 9
    '    lag_threshold: soon', // 10
    '    tables:', // 11
    '      - { source_table: "reporting.*", destination_table: x }', // 12
  );

  test('every problem is reported at once, in document order', () => {
    expect(problemsOf(BROKEN).map((p) => `${p.line}:${p.col} ${p.path}`)).toEqual([
      '7:13 mirrors.m.source',
      '9:5 mirrors.m.max_batch_sise',
      '10:20 mirrors.m.lag_threshold',
      '12:59 mirrors.m.tables[0].destination_table',
    ]);
  });

  test('parseConfigText throws one CONFIG_INVALID error with a FILE:LINE:COL line per problem', () => {
    let err: unknown;
    try {
      parseConfigText(BROKEN, '/repo/mirrors.yaml', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MirrorsError);
    expect(err).toBeInstanceOf(ConfigInvalidError);
    const e = err as ConfigInvalidError;
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toBe('mirrors.yaml has 4 problems');
    expect(e.problems).toHaveLength(4);
    expect(e.details[0]).toBe(
      '/repo/mirrors.yaml:7:13  mirrors.m.source  unknown peer `prd` (hint: did you mean `prod`?)',
    );
    expect(e.details[2]).toBe(
      '/repo/mirrors.yaml:10:20  mirrors.m.lag_threshold  `soon` is not a duration (hint: write a duration such as 100ms, 5s, 2m or 1m30s)',
    );
  });

  test('a single problem is worded in the singular', () => {
    expect(() => parseConfigText(yaml('version: 2', 'peers: {}', 'mirrors: {}'), 'x/mirrors.yml', {})).toThrow(
      'mirrors.yml has 1 problem',
    );
  });
});

describe('promote', () => {
  const withPromote = (value: string) =>
    withMirrors(...MIRROR_HEAD, `    promote: ${value}`, '    tables:', '      - source_table: t');

  test('a bad promote: is refused with its position, not accepted (its true-or-map type must not hide errors)', () => {
    expect(brief(withPromote('yes please'))).toEqual([
      ['9:14', 'mirrors.m.promote', 'expected true or false or a map (key: value), found a string', undefined],
    ]);
    expect(brief(withPromote('{ verify: bogus }')).map((p) => p.slice(1, 3))).toEqual([
      ['mirrors.m.promote.verify', 'must be one of none, counts, checksums, found `bogus`'],
    ]);
    expect(brief(withPromote('{ verfy: counts }')).map((p) => p.slice(1, 4))).toEqual([
      ['mirrors.m.promote.verfy', 'unknown key `verfy`', 'did you mean `verify`?'],
    ]);
    expect(brief(withPromote('{ max_fence_wait: 1.5s }')).map((p) => p.slice(1, 3))).toEqual([
      ['mirrors.m.promote.max_fence_wait', '`1.5s` is not a duration'],
    ]);
  });

  test('reverse: true declares mirror NAME_reverse, the tables back, no copy; an explicit declaration is used instead', () => {
    const text = withMirrors(
      ...MIRROR_HEAD,
      '    promote: { reverse: true }',
      '    tables:',
      '      - source_table: t',
      '        destination_table: archive.t2',
    );
    const r = validateConfigText(text, 'mirrors.yaml', {});
    expect(r.problems).toEqual([]);
    const rev = r.config!.mirrors.m_reverse;
    expect(rev).toMatchObject({ source: 'staging', destination: 'prod', do_initial_snapshot: false, reverseOf: 'm' });
    expect(rev.promote).toBeNull();
    expect(rev.tables.map((t) => [t.source, t.destination])).toEqual([
      [
        { kind: 'table', schema: 'archive', name: 't2' },
        { schema: 'public', name: 't' },
      ],
    ]);
    const declared = validateConfigText(
      withMirrors(
        ...MIRROR_HEAD,
        '    promote: { reverse: true }',
        '    tables:',
        '      - source_table: t',
        '  m_reverse:',
        '    source: staging',
        '    destination: prod',
        '    promote: true',
        '    tables:',
        '      - source_table: t',
      ),
      'mirrors.yaml',
      {},
    );
    expect(declared.problems).toEqual([]);
    expect(declared.config!.mirrors.m_reverse).toMatchObject({ reverseOf: 'm', promote: { reverse: false } });
  });

  test('reverse: true refuses schema.* and exclude_columns, and a mirror of its name with other peers', () => {
    const wild = brief(
      withMirrors(...MIRROR_HEAD, '    promote: { reverse: true }', '    tables:', "      - source_table: 'app.*'"),
    );
    expect(wild.map((p) => p.slice(1, 3))).toEqual([
      ['mirrors.m.promote.reverse', 'a reverse mirror needs every table named: `app.*` selects a schema'],
    ]);
    const excl = brief(
      withMirrors(
        ...MIRROR_HEAD,
        '    promote: { reverse: true }',
        '    tables:',
        '      - source_table: t',
        '        exclude_columns: [secret]',
      ),
    );
    expect(excl.map((p) => p[2])).toEqual(['a reverse mirror needs every column: `t` excludes secret']);
    const clash = brief(
      withMirrors(
        ...MIRROR_HEAD,
        '    promote: { reverse: true }',
        '    tables:',
        '      - source_table: t',
        '  m_reverse:',
        '    source: prod',
        '    destination: staging2',
        '    tables:',
        '      - source_table: u',
      ),
    );
    expect(clash.map((p) => p[2])).toContain(
      'mirror m_reverse is the reverse mirror of m: its source must be `staging` and its destination `prod`',
    );
  });

  test('true and a map with its parameters are accepted and normalized', () => {
    const r = validateConfigText(
      withPromote('{ max_fence_wait: 1m30s, verify: counts, read_only_source: true }'),
      'mirrors.yaml',
      {},
    );
    expect(r.problems).toEqual([]);
    expect(r.config?.mirrors.m.promote).toEqual({
      max_fence_wait_ms: 90_000,
      sequence_margin: 1000,
      verify: 'counts',
      read_only_source: true,
      reverse: false,
    });
  });
});
