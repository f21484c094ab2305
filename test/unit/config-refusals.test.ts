/**
 * Input that Postgres or libpq would take differently from what the file says, refused before anything
 * connects: a second YAML document, Unix-domain sockets, identifiers over 63 bytes, reserved schemas.
 */
import { describe, expect, test } from 'vitest';
import { validateConfigText } from '../../src/config/load.js';
import { parsePeerUrl } from '../../src/config/peer.js';

const yaml = (...lines: string[]) => lines.join('\n') + '\n';
const EMPTY = ['version: 1', 'peers: {}', 'mirrors: {}'];
const PEERS = ['peers:', '  a: { host: db-a, database: app, user: u }', '  b: { host: db-b, database: app, user: u }'];
/** version + peers (lines 1-4), then mirror `m` from a to b whose tables are the given lines (from line 7). */
const withTables = (...tables: string[]) =>
  yaml('version: 1', ...PEERS, 'mirrors:', '  m:', '    source: a', '    destination: b', '    tables:', ...tables);

function brief(text: string) {
  const r = validateConfigText(text, 'mirrors.yaml', {});
  expect(r.config).toBeUndefined();
  return r.problems.map((p) => [`${p.line}:${p.col}`, p.path, p.message, p.hint]);
}
const ok = (text: string) => expect(validateConfigText(text, 'mirrors.yaml', {}).problems).toEqual([]);

describe('YAML documents', () => {
  const message = 'YAML: the file holds more than one document; mirrors.yaml must be a single document';
  const hint = 'remove the `---` line that starts a second document (and merge what follows into the first)';

  test('a second document is refused at its `---`, instead of being silently ignored', () => {
    expect(brief(yaml(...EMPTY, '---', 'version: 2'))).toEqual([['4:1', '', message, hint]]);
  });

  test('an empty second document counts too', () => {
    expect(brief(yaml(...EMPTY, '---'))).toEqual([['4:1', '', message, hint]]);
  });

  test('a `---` before the only document, or a `...` after it, is fine', () => {
    ok(yaml('---', ...EMPTY));
    ok(yaml(...EMPTY, '...'));
  });
});

describe('Unix-domain sockets', () => {
  const socket = 'url Unix-domain sockets are not supported: connect over TCP with a host name or IP address';

  test.each([
    ['a percent-encoded socket directory as host', 'postgres://u@%2Fvar%2Frun%2Fpostgresql/db'],
    ['a lower-case percent-encoding', 'postgresql://u@%2ftmp:5432/db'],
    ['a host parameter naming a directory', 'postgres://u@h/db?host=/tmp'],
    ['a host parameter with no host before it', 'postgres://u@/db?host=/tmp'],
    ['an abstract socket as host parameter', 'postgres://u@h/db?host=@pg'],
  ])('a url with %s is refused as a socket', (_what, url) => {
    expect(parsePeerUrl(url)).toEqual({ ok: false, message: socket });
  });

  test('a url without any host still says sockets are not supported', () => {
    expect(parsePeerUrl('postgres:///db?host=/tmp')).toEqual({ ok: false, message: socket });
    expect(parsePeerUrl('postgres:///db')).toEqual({
      ok: false,
      message: 'url has no host (Unix-domain sockets are not supported)',
    });
  });

  test('a percent-encoded TCP host is decoded, as libpq does', () => {
    expect(parsePeerUrl('postgres://u@db%2Dx.internal/app')).toMatchObject({
      ok: true,
      fields: { host: 'db-x.internal' },
    });
  });

  test('a host field naming a socket directory, or several hosts, is refused at the value', () => {
    const text = yaml(
      'version: 1',
      'peers:',
      '  a: { host: /var/run/postgresql, database: app, user: u }',
      '  b: { host: "@abstract", database: app, user: u }',
      '  c: { host: "h1,h2", database: app, user: u }',
      'mirrors: {}',
    );
    const hint = "give the server's host name or address, e.g. localhost";
    expect(brief(text)).toEqual([
      [
        '3:14',
        'peers.a.host',
        'host Unix-domain sockets are not supported: connect over TCP with a host name or IP address',
        hint,
      ],
      [
        '4:14',
        'peers.b.host',
        'host Unix-domain sockets are not supported: connect over TCP with a host name or IP address',
        hint,
      ],
      ['5:14', 'peers.c.host', 'host names several hosts; give exactly one', hint],
    ]);
  });
});

describe('identifiers longer than 63 bytes', () => {
  const long = 't'.repeat(64);
  // 32 two-byte characters: 32 characters but 64 bytes, which Postgres would cut inside a character.
  const wide = 'é'.repeat(32);

  test('a table name of 63 bytes is accepted and one of 64 is refused, counted in UTF-8 bytes', () => {
    ok(withTables(`      - source_table: public.${'t'.repeat(63)}`));
    const hint = 'no table can have this name: write it as the catalog spells it';
    expect(brief(withTables(`      - source_table: public.${long}`, `      - source_table: '"${wide}".t'`))).toEqual([
      [
        '10:23',
        'mirrors.m.tables[0].source_table',
        `invalid source_table: \`${long.slice(0, 59)}…\` is 64 bytes long: Postgres names are at most 63 bytes (UTF-8), and it would cut this one into another name`,
        hint,
      ],
      [
        '11:23',
        'mirrors.m.tables[1].source_table',
        `invalid source_table: \`${wide}\` is 64 bytes long: Postgres names are at most 63 bytes (UTF-8), and it would cut this one into another name`,
        hint,
      ],
    ]);
  });

  test('destination tables, wildcard schemas and columns are held to the same limit', () => {
    const text = withTables(
      `      - { source_table: t1, destination_table: ${long}.t1 }`,
      `      - source_table: "${long}.*"`,
      `      - { source_table: t3, partition_key: ${long}, exclude_columns: [ok, ${wide}] }`,
    );
    expect(brief(text).map(([at, path]) => `${at} ${path}`)).toEqual([
      '10:48 mirrors.m.tables[0].destination_table',
      '11:23 mirrors.m.tables[1].source_table',
      '12:44 mirrors.m.tables[2].partition_key',
      '12:132 mirrors.m.tables[2].exclude_columns[1]',
    ]);
  });

  test("a peer's database and user are identifiers too, in the fields and in a url (which is not echoed)", () => {
    const text = yaml(
      'version: 1',
      'peers:',
      `  a: { host: h, database: ${wide}, user: u }`,
      `  b: { url: "postgres://${'u'.repeat(64)}:Secret-7@h2/app" }`,
      'mirrors: {}',
    );
    const problems = brief(text);
    expect(problems.map(([at, path, message]) => `${at} ${path} ${message}`)).toEqual([
      `3:27 peers.a.database \`${wide}\` is 64 bytes long: Postgres names are at most 63 bytes (UTF-8), and it would cut this one into another name`,
      "4:13 peers.b.url the url's user name is 64 bytes long: Postgres names are at most 63 bytes (UTF-8), and it would cut this one into another name",
    ]);
    expect(JSON.stringify(problems)).not.toContain('Secret-7');
  });
});

describe('reserved schemas', () => {
  const sourceHint = 'system catalogs cannot be mirrored: list tables of your own schemas';
  const reserved = (s: string) =>
    `schema \`${s}\` is reserved by Postgres (pg_catalog, pg_toast, any pg_* and information_schema)`;

  test('a source table in pg_catalog, information_schema, pg_toast or any pg_* schema is refused', () => {
    const text = withTables(
      '      - source_table: pg_catalog.pg_class',
      '      - source_table: information_schema.tables',
      '      - source_table: "pg_toast.*"',
      '      - source_table: PG_Custom.t',
    );
    expect(brief(text)).toEqual([
      ['10:23', 'mirrors.m.tables[0].source_table', `invalid source_table: ${reserved('pg_catalog')}`, sourceHint],
      [
        '11:23',
        'mirrors.m.tables[1].source_table',
        `invalid source_table: ${reserved('information_schema')}`,
        sourceHint,
      ],
      ['12:23', 'mirrors.m.tables[2].source_table', `invalid source_table: ${reserved('pg_toast')}`, sourceHint],
      ['13:23', 'mirrors.m.tables[3].source_table', `invalid source_table: ${reserved('pg_custom')}`, sourceHint],
    ]);
  });

  test('a destination table in a reserved schema is refused', () => {
    expect(brief(withTables('      - { source_table: t, destination_table: pg_temp.t }'))).toEqual([
      [
        '10:47',
        'mirrors.m.tables[0].destination_table',
        `invalid destination_table: ${reserved('pg_temp')}`,
        'write into a schema of your own (Postgres refuses to create pg_* schemas)',
      ],
    ]);
  });

  test('a quoted schema that only looks alike is an ordinary schema (Postgres compares case-sensitively)', () => {
    ok(withTables(`      - source_table: '"Pg_Sales".t'`, '      - source_table: pgsales.t'));
  });
});

describe('sync-only settings', () => {
  const mirrorWith = (...lines: string[]) =>
    yaml(
      'version: 1',
      ...PEERS,
      'mirrors:',
      '  m:',
      '    source: a',
      '    destination: b',
      ...lines,
      '    tables: [{ source_table: t }]',
    );

  test('on_sync_loss and sync_quorum on an async mirror would do nothing: refused at the key', () => {
    expect(brief(mirrorWith('    on_sync_loss: { degrade_after: 3s }', '    sync_quorum: 2'))).toEqual([
      [
        '9:5',
        'mirrors.m.on_sync_loss',
        'on_sync_loss applies to mode: sync only, and this mirror is async',
        'remove on_sync_loss, or set mode: sync',
      ],
      [
        '10:5',
        'mirrors.m.sync_quorum',
        'sync_quorum applies to mode: sync only, and this mirror is async',
        'remove sync_quorum, or set mode: sync',
      ],
    ]);
  });

  test("accepted on a sync mirror (its own mode or the defaults'), and under defaults for async mirrors", () => {
    ok(mirrorWith('    mode: sync', '    on_sync_loss: { degrade_after: 3s }', '    sync_quorum: 2'));
    ok(
      yaml(
        'version: 1',
        ...PEERS,
        'defaults: { mode: sync }',
        'mirrors:',
        '  m:',
        '    source: a',
        '    destination: b',
        '    sync_quorum: 2',
        '    tables: [{ source_table: t }]',
      ),
    );
    ok(
      yaml(
        'version: 1',
        ...PEERS,
        'defaults: { sync_quorum: 2 }',
        'mirrors:',
        '  m:',
        '    source: a',
        '    destination: b',
        '    tables: [{ source_table: t }]',
      ),
    );
  });
});
