/**
 * The e2e harness of the apply tests: a fresh database on both clusters per test, a mirrors.yaml pointing at it
 * (prod -> staging) that a test can rewrite, the CLI run in its directory, and table contents as text to
 * compare across clusters. Call it at a test file's top level (it registers the clean-up).
 */
import { writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';
import type { Cluster } from '../../src/devtools/cluster.js';
import { runCli } from './cli.js';
import { peerYaml, tempProject } from './project.js';

export const PROJECT_ENV = { PGPASS_TEST: 'postgres' };

export function mirrorProjects(clusters: { src: Cluster; dst: Cluster }, dbPrefix: string) {
  const cleanups: (() => void)[] = [];
  afterAll(() => {
    for (const c of cleanups) c();
  });
  let n = 0;
  return {
    /** A new database of this name on both clusters, the source's filled by `sourceSql`. */
    async databases(sourceSql: string): Promise<string> {
      const db = `${dbPrefix}${++n}`;
      await clusters.src.createDatabase(db);
      await clusters.dst.createDatabase(db);
      await clusters.src.query(sourceSql, [], db);
      return db;
    },
    /** `head` goes before `peers:` (e.g. `project: x`); a rewrite keeps it unless given another. */
    project(db: string, mirrors: string, head = '') {
      const yaml = (m: string, h: string) =>
        `version: 1\n${h}peers:\n${peerYaml('prod', clusters.src, db)}${peerYaml('staging', clusters.dst, db)}mirrors:${m ? '\n' + m : ' {}\n'}`;
      const p = tempProject(yaml(mirrors, head));
      cleanups.push(p.cleanup);
      return { ...p, rewrite: (m: string, h = head) => writeFileSync(p.file, yaml(m, h)) };
    },
    /** A project directory holding exactly this mirrors.yaml (for configs the harness would not write). */
    file(yaml: string) {
      const p = tempProject(yaml);
      cleanups.push(p.cleanup);
      return p;
    },
    cli: (p: { dir: string }, ...args: string[]) => runCli(args, { cwd: p.dir, env: PROJECT_ENV, timeoutMs: 120_000 }),
    /** Rows of a query as canonical text, for comparing contents across clusters. */
    async rows(c: Cluster, db: string, sql: string): Promise<string[]> {
      return (await c.query(`SELECT x::text AS r FROM (${sql}) x ORDER BY 1`, [], db)).map((r: { r: string }) => r.r);
    },
  };
}
