/**
 * The e2e harness of the streaming tests: one mirror (prod -> staging) in a fresh database on both clusters,
 * applied, with `mirrors run` workers the test starts, SQL on either side, and content comparison. Call
 * `runningMirrors` at a test file's top level (it registers the clean-up).
 */
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, expect } from 'vitest';
import type { Cluster } from '../../src/devtools/cluster.js';
import { runCli } from './cli.js';
import { peerYaml, tempProject } from './project.js';
import { startWorker, type RunningWorker } from './worker.js';

export const RUN_ENV = { PGPASS_TEST: 'postgres' };

export function runningMirrors(clusters: { src: Cluster; dst: Cluster }, dbPrefix: string) {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  let n = 0;
  return async function mirrorSetup(
    name: string,
    sourceSql: string,
    tablesYaml: string,
    extra = '',
    destinationSql = '',
  ) {
    const db = `${dbPrefix}${++n}`;
    await clusters.src.createDatabase(db);
    await clusters.dst.createDatabase(db);
    await clusters.src.query(sourceSql, [], db);
    if (destinationSql) await clusters.dst.query(destinationSql, [], db);
    let tables = tablesYaml;
    const yaml = (more: string) =>
      `version: 1\npeers:\n${peerYaml('prod', clusters.src, db)}${peerYaml('staging', clusters.dst, db)}mirrors:\n  ${name}:\n    source: prod\n    destination: staging\n    idle_timeout_seconds: 1\n${more}    tables:\n${tables}`;
    let current = yaml(extra);
    const p = tempProject(current);
    cleanups.push(p.cleanup);
    const cli = (...args: string[]) => runCli(args, { cwd: p.dir, env: RUN_ENV, timeoutMs: 120_000 });
    const r = await cli('apply', '--auto-approve');
    if (r.code !== 0) throw new Error(`apply failed: ${r.stdout}\n${r.stderr}`);
    const workers: RunningWorker[] = [];
    const start = async (args: string[] = [], env: Record<string, string> = {}) => {
      const w = startWorker(p.dir, { ...RUN_ENV, ...env }, args);
      workers.push(w);
      cleanups.push(() => (w.child.exitCode === null ? w.kill9() : undefined));
      return w;
    };
    const src = (sql: string, params: unknown[] = []) => clusters.src.query(sql, params, db);
    const dst = (sql: string, params: unknown[] = []) => clusters.dst.query(sql, params, db);
    /** Waits until the mirror has applied everything committed on the source so far. */
    const caughtUp = async (timeout = '60 seconds') => {
      const [{ lsn }] = await src('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      await dst(`SELECT mirrors.wait_for_lsn($1, $2::pg_lsn, $3::interval)`, [name, lsn, timeout]);
    };
    const rows = async (side: 'src' | 'dst', sql: string) =>
      (await (side === 'src' ? src : dst)(`SELECT x::text AS r FROM (${sql}) x ORDER BY 1`)).map(
        (r: { r: string }) => r.r,
      );
    const expectSame = async (srcSql: string, dstSql = srcSql) =>
      expect(await rows('dst', dstSql)).toEqual(await rows('src', srcSql));
    /** Rewrites mirrors.yaml with other mirror settings (`extra`, indented like the harness's) and, given, tables. */
    const rewrite = (more: string, newTables = tables) => {
      tables = newTables;
      current = yaml(more);
      writeFileSync(p.file, current);
    };
    /** A worker that reaches the source and/or the destination through other ports (a proxy's). */
    const startThrough = async (ports: { src?: number; dst?: number }, args: string[] = []) => {
      let viaYaml = current;
      if (ports.src) viaYaml = viaYaml.replace(`port: ${clusters.src.port},`, `port: ${ports.src},`);
      if (ports.dst) viaYaml = viaYaml.replace(`port: ${clusters.dst.port},`, `port: ${ports.dst},`);
      const via = tempProject(viaYaml);
      cleanups.push(via.cleanup);
      const w = startWorker(via.dir, RUN_ENV, args);
      workers.push(w);
      cleanups.push(() => (w.child.exitCode === null ? w.kill9() : undefined));
      return w;
    };
    return { db, p, cli, start, startThrough, src, dst, caughtUp, rows, expectSame, workers, rewrite };
  };
}

/** The pgbench-like tables writeLoad writes: accounts (updated) and history (appended). */
export const LOAD_TABLES_SQL = `CREATE TABLE accounts (aid int PRIMARY KEY, abalance int NOT NULL DEFAULT 0);
CREATE TABLE history (id bigserial PRIMARY KEY, aid int, delta int, at timestamptz DEFAULT clock_timestamp());
INSERT INTO accounts SELECT generate_series(1, 1000);`;
export const LOAD_TABLES_YAML = `      - source_table: accounts\n      - source_table: history\n`;

/**
 * Small transactions against LOAD_TABLES_SQL's tables, one after another, until stopped (pgbench's shape:
 * an UPDATE and an INSERT each). `pauseMs` between transactions bounds the rate. stop() returns the count.
 */
export function writeLoad(url: string, pauseMs = 0): { stop(): Promise<number>; count(): number } {
  let stopping = false;
  let txns = 0;
  const done = (async () => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    try {
      while (!stopping) {
        const aid = 1 + Math.floor(Math.random() * 1000);
        const delta = Math.floor(Math.random() * 100) - 50;
        await client.query(
          `BEGIN; UPDATE accounts SET abalance = abalance + ${delta} WHERE aid = ${aid}; INSERT INTO history (aid, delta) VALUES (${aid}, ${delta}); COMMIT;`,
        );
        txns++;
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
    } finally {
      await client.end();
    }
  })();
  done.catch(() => {}); // a writer cut by a crash of the source: stop() still reports it
  return {
    count: () => txns,
    async stop() {
      stopping = true;
      await done;
      return txns;
    },
  };
}

type Sql = (sql: string, params?: unknown[]) => Promise<any[]>;

/**
 * Waits until the catalog (on `db`, the mirror's destination) says `status`: the heartbeat writes it about every
 * second, and a promotion's preflight reads it there, not the worker's log.
 */
export async function waitForCatalogStatus(db: Sql, mirror: string, status: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [row] = await db(`SELECT status FROM mirrors.mirrors WHERE name = $1`, [mirror]);
    if (row?.status === status) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mirror ${mirror} did not become ${status}`);
}

/** Polls `probe` every 100 ms until it returns something truthy, which it returns; throws after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
