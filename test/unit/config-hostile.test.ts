/**
 * Hostile or mistaken files stay cheap to validate and produce short reports. The inputs are generated
 * here; the 1500 ms limits leave a wide margin for a slow shared 2-core machine (each case takes tens to a
 * few hundred milliseconds). Before these fixes, 10,000 unknown keys took 13 s and 100,000 took many
 * minutes (yaml's duplicate-key check, the position lookup and the rules' taint check were quadratic),
 * and a 10 MB value took about a minute (an edit-distance matrix over it) and could be echoed whole.
 */
import { describe, expect, test } from 'vitest';
import {
  type ConfigInvalidError,
  parseConfigText,
  validateConfigText,
  type ValidationResult,
} from '../../src/config/load.js';
import { MAX_FILE_BYTES, MAX_SCALAR_CHARS } from '../../src/config/yamldoc.js';

// A guard against blow-ups (quadratic work on hostile input), not a benchmark: generous, so a busy 2-core CI
// machine never fails it (1,785 ms was seen with the e2e suite running beside it), yet far below a blow-up.
const LIMIT_MS = 5000;
const HEAD = 'version: 1\npeers: {}\nmirrors: {}\n';

function timed(text: string): { r: ValidationResult; ms: number } {
  validateConfigText(HEAD, 'warm.yaml', {}); // the schema validator is compiled once, outside the measurement
  const start = performance.now();
  const r = validateConfigText(text, 'mirrors.yaml', {});
  return { r, ms: performance.now() - start };
}

const unknownKeys = (n: number) => HEAD + Array.from({ length: n }, (_, i) => `unknown_key_${i}: 1\n`).join('');

describe('size', () => {
  test('a file of 100,000 unknown keys is refused at once as larger than 1 MiB', () => {
    const text = unknownKeys(100_000);
    expect(text.length).toBeGreaterThan(MAX_FILE_BYTES);
    const { r, ms } = timed(text);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.problems).toEqual([
      {
        file: 'mirrors.yaml',
        line: 1,
        col: 1,
        path: '',
        message: `the file is ${text.length} bytes: mirrors.yaml may be at most 1048576 bytes (1 MiB)`,
        hint: 'check that this is the right file',
      },
    ]);
  });

  test('a 10 MB string value is refused at once, without being echoed', () => {
    const { r, ms } = timed(HEAD + `defaults:\n  mode: "${'x'.repeat(10 * 1024 * 1024)}"\n`);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.errorCount).toBe(1);
    expect(r.problems[0].message).toMatch(/^the file is \d+ bytes/);
  });

  test('a string over 65,536 characters in a file under 1 MiB is refused at the string, before yaml composes it', () => {
    const { r, ms } = timed(HEAD + `defaults:\n  mode: "${'x'.repeat(MAX_SCALAR_CHARS + 1)}"\n`);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.problems.map((p) => [`${p.line}:${p.col}`, p.message])).toEqual([
      [
        '5:9',
        `a string of ${MAX_SCALAR_CHARS + 3} characters: mirrors.yaml takes strings of at most ${MAX_SCALAR_CHARS}`,
      ],
    ]);
  });
});

describe('many problems', () => {
  test('10,000 unknown keys are all counted, the first 50 listed in file order, quickly', () => {
    const { r, ms } = timed(unknownKeys(10_000));
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.errorCount).toBe(10_000);
    expect(r.problems).toHaveLength(50);
    expect(r.problems[0]).toMatchObject({ line: 4, col: 1, path: 'unknown_key_0' });
    expect(r.problems[49]).toMatchObject({ line: 53, path: 'unknown_key_49' });
  });

  test('the CONFIG_INVALID error says how many problems there are and how many are not listed', () => {
    let err: unknown;
    try {
      parseConfigText(unknownKeys(1000), '/repo/mirrors.yaml', {});
    } catch (e) {
      err = e;
    }
    const e = err as ConfigInvalidError;
    expect(e.message).toBe('mirrors.yaml has 1000 problems');
    expect(e.total).toBe(1000);
    expect(e.details).toHaveLength(51);
    expect(e.details[50]).toBe('… and 950 more problems');
  });

  test('thousands of references to unknown peers among thousands of peers stay fast (suggestions only for those listed)', () => {
    const n = 1000;
    const peers = Array.from({ length: n }, (_, i) => `  peer_${i}: { host: h${i}, database: d, user: u }`);
    const mirrors = Array.from(
      { length: n },
      (_, i) => `  m${i}: { source: peer_${i}x, destination: peer_${i}, tables: [{ source_table: t }] }`,
    );
    const { r, ms } = timed(['version: 1', 'peers:', ...peers, 'mirrors:', ...mirrors, ''].join('\n'));
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.errorCount).toBe(n);
    expect(r.problems[0].hint).toBe('did you mean `peer_0`?');
  });
});

describe('echoed text', () => {
  const long = 'Q'.repeat(60_000);

  test('long values are quoted cut to 60 characters with an ellipsis, wherever they appear', () => {
    const text = [
      'version: 1',
      'peers:',
      '  a: { host: a, database: d, user: u }',
      '  b: { host: b, database: d, user: u }',
      'defaults:',
      `  resync_strategy: ${long}`,
      `  ? ${long}`, // an explicit key: YAML allows an implicit one of at most 1024 characters
      '  : 1',
      'mirrors:',
      '  m:',
      `    source: ${long}`,
      '    destination: b',
      '    tables:',
      `      - source_table: ${long} x`,
      `      - { source_table: t, exclude_columns: [${long}, ${long}] }`,
      `      - source_table: "${long}"`,
      '',
    ].join('\n');
    const { r, ms } = timed(text);
    expect(ms).toBeLessThan(LIMIT_MS);
    expect(r.errorCount).toBe(7);
    for (const p of r.problems) {
      expect(p.message.length + (p.hint ?? '').length + p.path.length, p.message).toBeLessThan(600);
      expect(`${p.message} ${p.hint ?? ''} ${p.path}`).not.toContain('Q'.repeat(61));
    }
    expect(r.problems.find((p) => p.path === 'mirrors.m.source')?.message).toBe(`unknown peer \`${'Q'.repeat(59)}…\``);
  });
});
