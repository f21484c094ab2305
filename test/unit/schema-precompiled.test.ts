/**
 * `npm run build` writes the schema's validating function compiled ahead of time (ajv standalone); the CLI
 * loads it instead of compiling at start-up. It must judge every document exactly as the runtime compile
 * does, including the verbose parts the findings use (parentSchema for did-you-mean).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { ValidateFunction } from 'ajv';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';

function loadSource(source: string): ValidateFunction {
  const module = { exports: {} as unknown };
  new Function('module', 'exports', 'require', source)(module, module.exports, createRequire(import.meta.url));
  return module.exports as ValidateFunction;
}

const DOCUMENTS: unknown[] = [
  {
    version: 1,
    peers: { a: { host: 'h', database: 'd', user: 'u' } },
    mirrors: { m: { source: 'a', destination: 'a', tables: [{ source_table: 'public.t' }] } },
  },
  { version: 2, peers: {}, mirrors: {} },
  { version: 1, peers: { a: { hots: 'h' } }, mirrors: { m: { source: 'a', destinaton: 'b', tables: [] } } },
  {
    version: 1,
    peers: { a: { url: 'postgres://x', host: 'h' } },
    mirrors: {
      m: {
        source: 'a',
        destination: 'b',
        mode: 'fast',
        max_batch_size: 0,
        lag_threshold: 'soon',
        tables: [{ source_table: '' }, 'x'],
      },
    },
  },
  { version: 1, peers: { a: { host: 'h', port: 'five' } }, defaults: { resync_strategy: 'copy' }, mirrors: [] },
  { version: 1, project: 'Team A', peers: {}, defaults: { prevent_destroy: 'yes' }, mirrors: {} },
  'not a document',
];

describe('the precompiled config validator', () => {
  it('returns the same verdict and the same errors as compiling the schema at start-up', () => {
    const runtime = CONFIG_SCHEMA.compile();
    const precompiled = loadSource(CONFIG_SCHEMA.source());
    for (const doc of DOCUMENTS) {
      const a = runtime(doc);
      const b = precompiled(doc);
      expect(b).toBe(a);
      const brief = (errors: typeof runtime.errors) =>
        (errors ?? []).map((e) => ({
          path: e.instancePath,
          schema: e.schemaPath,
          keyword: e.keyword,
          params: e.params,
          parent: Object.keys(e.parentSchema ?? {}),
        }));
      expect(brief(precompiled.errors)).toEqual(brief(runtime.errors));
    }
    expect(DOCUMENTS.filter((d) => !runtime(d)).length).toBe(DOCUMENTS.length - 1);
  });
});
