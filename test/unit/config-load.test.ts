import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { MirrorsError } from '../../src/errors.js';
import { loadConfig } from '../../src/config/load.js';

const root = mkdtempSync(join(tmpdir(), 'mirrors-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function project(files: Record<string, string>): string {
  const dir = join(root, `p${n++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A valid config whose only mirror is named after where it was written, to tell files apart. */
const config = (mirror: string) => `version: 1
peers:
  a: { host: db-a, database: app, user: u }
  b: { host: db-b, database: app, user: u }
mirrors:
  ${mirror}: { source: a, destination: b, tables: [{ source_table: t }] }
`;

async function loadError(opts: Parameters<typeof loadConfig>[0]): Promise<MirrorsError> {
  const err = await loadConfig(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MirrorsError);
  return err as MirrorsError;
}

describe('discovery', () => {
  test('finds mirrors.yaml in the working directory and records its absolute path', async () => {
    const cwd = project({ 'mirrors.yaml': config('top') });
    const c = await loadConfig({ cwd, env: {} });
    expect(Object.keys(c.mirrors)).toEqual(['top']);
    expect(c.file).toBe(join(cwd, 'mirrors.yaml'));
  });

  test('finds .config/mirrors.yaml when there is no mirrors.yaml, and prefers mirrors.yaml', async () => {
    const hidden = project({ '.config/mirrors.yaml': config('hidden') });
    expect(Object.keys((await loadConfig({ cwd: hidden, env: {} })).mirrors)).toEqual(['hidden']);
    const both = project({ '.config/mirrors.yaml': config('hidden'), 'mirrors.yml': config('yml') });
    expect(Object.keys((await loadConfig({ cwd: both, env: {} })).mirrors)).toEqual(['yml']);
  });

  test('-c FILE wins over discovery and is relative to the working directory', async () => {
    const cwd = project({ 'mirrors.yaml': config('found'), 'conf/other.yaml': config('chosen') });
    const c = await loadConfig({ cwd, configPath: 'conf/other.yaml', env: {} });
    expect(Object.keys(c.mirrors)).toEqual(['chosen']);
    expect(c.file).toBe(join(cwd, 'conf/other.yaml'));
  });

  test('no config is CONFIG_NOT_FOUND with a hint, and parent directories are not searched', async () => {
    const parent = project({ 'mirrors.yaml': config('parent') });
    const cwd = join(parent, 'sub');
    mkdirSync(cwd);
    const err = await loadError({ cwd, env: {} });
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.hint).toBe('create mirrors.yaml (see examples/) or pass -c FILE');
  });

  test('-c naming a missing file is CONFIG_NOT_FOUND', async () => {
    const err = await loadError({ cwd: project({}), configPath: 'nope.yaml', env: {} });
    expect(err.code).toBe('CONFIG_NOT_FOUND');
    expect(err.message).toContain('nope.yaml');
  });

  test('an empty discovered file is reported as invalid, not skipped', async () => {
    const cwd = project({ 'mirrors.yaml': '' });
    const err = await loadError({ cwd, env: {} });
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.details).toEqual([
      `${join(cwd, 'mirrors.yaml')}:1:1  the file is empty (hint: start from examples/mirrors.yaml)`,
    ]);
  });
});

test('the shipped example is valid', async () => {
  const repo = resolve(fileURLToPath(import.meta.url), '../../..');
  const c = await loadConfig({
    cwd: repo,
    configPath: 'examples/mirrors.yaml',
    env: { PROD_PASSWORD: 'x', STAGING_URL: 'postgres://u:p@staging.internal/app' },
  });
  expect(Object.keys(c.mirrors)).toEqual(['prod_to_staging']);
  expect(c.mirrors.prod_to_staging.tables).toHaveLength(4);
});
