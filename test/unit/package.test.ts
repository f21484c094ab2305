/**
 * What `npm publish` would ship: the CLI, its precompiled validators and the schemas; never the developer
 * tooling (cluster harness, bench, demo, build scripts) nor source maps. Reads `npm pack --dry-run` after the
 * build that `npm test` runs first.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('the published package', () => {
  const files = (): string[] => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return (JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  };

  it('ships the CLI, the precompiled validators and both schemas', () => {
    const f = files();
    for (const p of [
      'dist/cli/main.js',
      'dist/config/schema-validator.cjs',
      'dist/plan/plan-validator.cjs',
      'schemas/mirrors.schema.json',
      'schemas/plan.schema.json',
      'package.json',
    ]) {
      expect(f).toContain(p);
    }
  });

  it('leaves out the cluster harness, bench, demo, build scripts and source maps', () => {
    const leaked = files().filter(
      (p) =>
        /^dist\/(devtools|scripts)\//.test(p) || p.endsWith('.map') || p.startsWith('src/') || p.startsWith('test/'),
    );
    expect(leaked).toEqual([]);
  });
});
