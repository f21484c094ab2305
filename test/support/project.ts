/** A temporary project directory holding a mirrors.yaml, for CLI tests. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from '../../src/devtools/cluster.js';

export function tempProject(yaml: string): { dir: string; file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-proj-'));
  const file = join(dir, 'mirrors.yaml');
  writeFileSync(file, yaml);
  return { dir, file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A peer block pointing at a cluster's database, password taken from the environment. */
export function peerYaml(
  name: string,
  c: Cluster,
  database: string,
  passwordEnv = 'PGPASS_TEST',
  user = 'postgres',
): string {
  return `  ${name}: { host: 127.0.0.1, port: ${c.port}, database: ${database}, user: ${user}, password: "\${env:${passwordEnv}}" }\n`;
}
