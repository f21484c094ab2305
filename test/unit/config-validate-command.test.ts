/** `mirrors validate`: text and JSON output, exit codes, and warnings for unset variables. In-process. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { validateCommand, type ValidateJson } from '../../src/cli/validate.js';
import { ConfigInvalidError } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'mirrors-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VAR = 'MIRRORS_TEST_NEVER_SET_URL';
const VALID = `version: 1
peers:
  a: { host: db-a, database: app, user: u }
  b: { url: "\${env:${VAR}}" }
mirrors:
  m: { source: a, destination: b, tables: [{ source_table: t }, { source_table: "s.*" }] }
`;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function run(opts: { config: string; format?: 'text' | 'json' }) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => void out.push(t), err: (t) => void err.push(t), stdoutIsTty: false, stdinIsTty: false };
  delete process.env[VAR];
  let code: number | undefined;
  let thrown: unknown;
  try {
    code = await validateCommand(opts, io);
  } catch (e) {
    thrown = e;
  }
  return { code, thrown, stdout: out.join(''), stderr: err.join('') };
}

describe('text', () => {
  test('an unset variable is printed as a warning and the file is still valid (exit 0)', async () => {
    const path = file('fork.yaml', VALID);
    const r = await run({ config: path });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `warning: ${path}:4:13  peers.b.url  environment variable \`${VAR}\` is not set: the checks that need its value were skipped (hint: export ${VAR}=... (plan, apply, run and status need it))\n`,
    );
    expect(r.stdout).toBe(
      `${path} is valid: 2 peer(s), 1 mirror(s), 2 table mapping(s). 1 warning(s): the checks that need unset variables were skipped.\n`,
    );
  });

  test('a valid file without warnings prints the same line as before', async () => {
    const path = file('plain.yaml', VALID.replace(`"\${env:${VAR}}"`, 'postgres://u@db-b/app'));
    const r = await run({ config: path });
    expect(r).toMatchObject({
      code: 0,
      stderr: '',
      stdout: `${path} is valid: 2 peer(s), 1 mirror(s), 2 table mapping(s).\n`,
    });
  });

  test('an invalid file is the CONFIG_INVALID error main prints, as before', async () => {
    const r = await run({ config: file('bad.yaml', VALID.replace('source: a', 'source: x')) });
    expect(r.thrown).toBeInstanceOf(ConfigInvalidError);
    expect((r.thrown as ConfigInvalidError).problems.map((p) => p.path)).toEqual(['mirrors.m.source']);
  });
});

describe('--format json', () => {
  const parse = (stdout: string) => JSON.parse(stdout) as ValidateJson;

  test('a valid file with a warning: valid, exit 0, the warning listed with its position', async () => {
    const path = file('fork.json.yaml', VALID);
    const r = await run({ config: path, format: 'json' });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(parse(r.stdout)).toEqual({
      format_version: 1,
      valid: true,
      file: path,
      problems: [
        {
          severity: 'warning',
          file: path,
          line: 4,
          col: 13,
          path: 'peers.b.url',
          message: `environment variable \`${VAR}\` is not set: the checks that need its value were skipped`,
          hint: `export ${VAR}=... (plan, apply, run and status need it)`,
        },
      ],
      summary: { errors: 0, warnings: 1, omitted: 0, peers: 2, mirrors: 1, table_mappings: 2 },
      error: null,
    });
  });

  test('an invalid file is one JSON document on stdout with errors before warnings, exit 1', async () => {
    const path = file(
      'bad.json.yaml',
      VALID.replace('source: a', 'source: x').replace('version: 1', 'version: 1\ncolour: red'),
    );
    const r = await run({ config: path, format: 'json' });
    expect(r.code).toBe(1);
    const doc = parse(r.stdout);
    expect(doc.valid).toBe(false);
    expect(doc.problems.map((p) => [p.severity, p.path, p.hint === null || typeof p.hint === 'string'])).toEqual([
      ['error', 'colour', true],
      ['error', 'mirrors.m.source', true],
      ['warning', 'peers.b.url', true],
    ]);
    expect(doc.summary).toEqual({
      errors: 2,
      warnings: 1,
      omitted: 0,
      peers: null,
      mirrors: null,
      table_mappings: null,
    });
  });

  test('more than 50 problems: 50 listed, the rest counted as omitted', async () => {
    const keys = Array.from({ length: 120 }, (_, i) => `k${i}: 1`).join('\n');
    const r = await run({ config: file('many.yaml', `version: 1\npeers: {}\nmirrors: {}\n${keys}\n`), format: 'json' });
    const doc = parse(r.stdout);
    expect(doc.problems).toHaveLength(50);
    expect(doc.summary).toMatchObject({ errors: 120, omitted: 70 });
  });

  test('a missing file is JSON too, with the error and exit 1', async () => {
    const r = await run({ config: join(dir, 'nope.yaml'), format: 'json' });
    expect(r.code).toBe(1);
    expect(parse(r.stdout)).toEqual({
      format_version: 1,
      valid: false,
      file: null,
      problems: [],
      summary: { errors: 0, warnings: 0, omitted: 0, peers: null, mirrors: null, table_mappings: null },
      error: {
        code: 'CONFIG_NOT_FOUND',
        message: `config file ${join(dir, 'nope.yaml')} not found`,
        hint: 'create mirrors.yaml (see examples/) or pass -c FILE',
      },
    });
  });
});
