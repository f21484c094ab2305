/**
 * The settings table (src/config/settings.ts) is the one list of mirror settings; the JSON Schema and
 * docs/config.md are written by hand, so these tests hold them to it. Also the two newest keys: the
 * top-level `project` and the `prevent_destroy` setting.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseConfigText, validateConfigText } from '../../src/config/load.js';
import { hashInput } from '../../src/config/normalize.js';
import {
  builtinDefault,
  builtinSettings,
  DEFAULT_LAG_MS,
  SETTING_KEYS,
  SETTING_TABLE,
  SETTING_YAML_KEYS,
} from '../../src/config/settings.js';
import { settingsOf } from '../../src/diff/settings.js';
import { mirror } from '../support/fixtures.js';

type Obj = Record<string, any>;
const schema = JSON.parse(readFileSync(new URL('../../schemas/mirrors.schema.json', import.meta.url), 'utf8')) as Obj;
const docs = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');

/** A default as the docs and YAML write it: durations for lag_threshold, the plain value otherwise. */
function yamlText(yaml: string, value: unknown): string {
  if (yaml !== 'lag_threshold') return String(value);
  const ms = value as number;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The rows of the table under `## Mirror settings`: key -> default cell. */
function documentedSettings(): Map<string, string> {
  const section = docs.split('\n## Mirror settings')[1].split('\n## ')[0];
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const key = /^`([a-z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (key) rows.set(key, cells[3]);
  }
  return rows;
}

describe('the settings table', () => {
  test('defaults: and a mirror accept exactly the settings of the table, each through its setting_ definition', () => {
    expect(Object.keys(schema.properties.defaults.properties).sort()).toEqual([...SETTING_YAML_KEYS].sort());
    const mirrorKeys = Object.keys(schema.definitions.mirror.properties);
    // promote: is decided mirror by mirror, never under defaults:.
    expect(mirrorKeys.filter((k) => !['source', 'destination', 'tables', 'promote'].includes(k)).sort()).toEqual(
      [...SETTING_YAML_KEYS].sort(),
    );
    for (const yaml of SETTING_YAML_KEYS) {
      const ref = { $ref: `#/definitions/setting_${yaml}` };
      expect(schema.properties.defaults.properties[yaml], yaml).toEqual(ref);
      expect(schema.definitions.mirror.properties[yaml], yaml).toEqual(ref);
      expect(schema.definitions[`setting_${yaml}`], yaml).toBeDefined();
    }
  });

  test("the schema's default of each setting is the table's (none where it depends on the mode)", () => {
    for (const row of SETTING_TABLE) {
      const def = schema.definitions[`setting_${row.yaml}`];
      if (typeof row.default === 'function') expect(def.default, row.yaml).toBeUndefined();
      else expect(def.default, row.yaml).toEqual(row.default);
    }
  });

  test('docs/config.md documents every setting with its default, and no other', () => {
    const documented = documentedSettings();
    expect([...documented.keys()].sort()).toEqual([...SETTING_YAML_KEYS].sort());
    for (const row of SETTING_TABLE) {
      const cell = documented.get(row.yaml)!;
      for (const mode of ['async', 'sync'] as const) {
        expect(cell, row.yaml).toContain('`' + yamlText(row.yaml, builtinDefault(row, mode)) + '`');
      }
    }
  });

  test('a file that sets nothing gets the built-in default of every setting of the table', () => {
    const text = [
      'version: 1',
      'peers:',
      '  a: { host: a, database: d, user: u }',
      '  b: { host: b, database: d, user: u }',
      'mirrors:',
      '  m: { source: a, destination: b, tables: [{ source_table: t }] }',
      '',
    ].join('\n');
    const m = parseConfigText(text, 'mirrors.yaml', {}).mirrors.m;
    expect(settingsOf(m)).toEqual(builtinSettings('async'));
    expect(Object.keys(settingsOf(m))).toEqual([...SETTING_KEYS]);
  });

  test('the sync defaults differ only where the table says the default depends on the mode', () => {
    const a = builtinSettings('async');
    const s = builtinSettings('sync');
    const differing = SETTING_KEYS.filter((k) => a[k] !== s[k]);
    expect(differing).toEqual(['mode', 'lag_threshold_ms']);
    expect(s.lag_threshold_ms).toBe(DEFAULT_LAG_MS.sync);
  });

  test('the fixtures build mirrors from the same table', () => {
    expect(settingsOf(mirror('m', ['public.t']))).toEqual(builtinSettings());
  });
});

const base = (extra: string[] = [], mirrorExtra = '') =>
  [
    'version: 1',
    ...extra,
    'peers:',
    '  a: { host: a, database: d, user: u }',
    '  b: { host: b, database: d, user: u }',
    'mirrors:',
    `  m: { source: a, destination: b, ${mirrorExtra}tables: [{ source_table: t }] }`,
    '',
  ].join('\n');

const brief = (text: string) =>
  validateConfigText(text, 'mirrors.yaml', {}).problems.map((p) => [`${p.line}:${p.col}`, p.path, p.message, p.hint]);

describe('project', () => {
  test('is "default" when the file does not name one', () => {
    expect(parseConfigText(base(), 'mirrors.yaml', {}).project).toBe('default');
  });

  test('is read from the top level', () => {
    expect(parseConfigText(base(['project: team-billing_2']), 'mirrors.yaml', {}).project).toBe('team-billing_2');
  });

  test('is part of the config hash, so a plan made for another project is stale', () => {
    const plain = parseConfigText(base(), 'mirrors.yaml', {});
    const named = parseConfigText(base(['project: billing']), 'mirrors.yaml', {});
    const explicitDefault = parseConfigText(base(['project: default']), 'mirrors.yaml', {});
    expect(hashInput(named)).toContain('"project":"billing"');
    expect(named.hash).not.toBe(plain.hash);
    expect(explicitDefault.hash).toBe(plain.hash);
  });

  test.each([['Billing'], ['2fa'], ['team billing'], ['p'.repeat(64)], ['""']])(
    '`%s` is refused as a project name',
    (name) => {
      const problems = validateConfigText(base([`project: ${name}`]), 'mirrors.yaml', {}).problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({ line: 2, col: 10, path: 'project' });
      expect(problems[0].hint).toBe(
        'use lower-case letters, digits, _ and -, starting with a letter, at most 63 characters',
      );
    },
  );

  test('belongs at the top level: elsewhere it says so', () => {
    const text = base().replace('mirrors:\n', 'defaults: { project: x }\nmirrors:\n');
    expect(brief(text)).toEqual([
      ['5:13', 'defaults.project', 'unknown key `project`', '`project` belongs at the top level of the file'],
    ]);
  });
});

describe('prevent_destroy', () => {
  test('is false unless set', () => {
    expect(parseConfigText(base(), 'mirrors.yaml', {}).mirrors.m.prevent_destroy).toBe(false);
  });

  test('set under defaults reaches every mirror, and a mirror can turn it off', () => {
    const text =
      base().replace('mirrors:\n', 'defaults: { prevent_destroy: true }\nmirrors:\n') +
      '  n: { source: a, destination: b, prevent_destroy: false, tables: [{ source_table: u }] }\n';
    const c = parseConfigText(text, 'mirrors.yaml', {});
    expect(c.mirrors.m.prevent_destroy).toBe(true);
    expect(c.mirrors.n.prevent_destroy).toBe(false);
  });

  test('is one of the settings recorded in the catalog', () => {
    const m = parseConfigText(base([], 'prevent_destroy: true, '), 'mirrors.yaml', {}).mirrors.m;
    expect(settingsOf(m).prevent_destroy).toBe(true);
  });

  test('must be true or false', () => {
    expect(brief(base([], 'prevent_destroy: yes, '))).toEqual([
      [
        '6:52',
        'mirrors.m.prevent_destroy',
        'expected true or false, found a string',
        'write true or false (YAML 1.2: yes/no/on/off are strings)',
      ],
    ]);
  });
});
