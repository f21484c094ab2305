/**
 * `npm run bench`: measured in one run on this machine, against baselines run on the same clusters.
 *  1. snapshot: pgbench_accounts (scale 10, 1M rows) + a wide table (text, jsonb): mirrors apply vs a
 *     `psql COPY TO STDOUT | psql COPY FROM STDIN` pipe vs Postgres's own subscription (copy_data).
 *  2. plan: `mirrors plan` over 1,000 source tables vs `node -e ''` (process start-up).
 * Prints medians and ratios. Options: --runs N (default 3), --only snapshot|plan.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findPgBin, startCluster, type Cluster } from '../devtools/cluster.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 3;
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const secs = (ms: number) => (ms / 1000).toFixed(2) + ' s';

function sh(cmd: string, env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

function psqlUrl(c: Cluster, db: string) {
  return `'${c.url(db)}'`;
}

const TABLE_DDL = `
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE wide (id bigint PRIMARY KEY, title text, body text, tags text[], doc jsonb, created_at timestamptz);`;

async function snapshotBench(src: Cluster, dst: Cluster) {
  console.log('\n# snapshot: pgbench_accounts (scale 10, 1,000,000 rows) + wide (200,000 rows, text + jsonb)');
  await src.createDatabase('bench');
  const pgbench = join(findPgBin(), 'pgbench');
  await sh(`${pgbench} -i -s 10 -q -I dtgp ${psqlUrl(src, 'bench')} >/dev/null 2>&1`);
  await src.query(`CREATE TABLE wide (id bigint PRIMARY KEY, title text, body text, tags text[], doc jsonb, created_at timestamptz);
    INSERT INTO wide SELECT g, 'title ' || g, repeat(md5(g::text), 12), ARRAY['a' || g % 10, 'b' || g % 7],
      jsonb_build_object('id', g, 'name', 'n' || g, 'attrs', jsonb_build_object('x', g % 100, 'y', md5(g::text))), now() - g * interval '1 second'
    FROM generate_series(1, 200000) g; ANALYZE;`, [], 'bench');
  const size = (await src.query(`SELECT pg_size_pretty(sum(pg_table_size(c))::bigint) AS s FROM unnest(ARRAY['pgbench_accounts'::regclass, 'wide'::regclass]) c`, [], 'bench'))[0].s;
  console.log(`source data: ${size}`);

  const times = { mirrors: [] as number[], snapshotAction: [] as number[], pipe: [] as number[], native: [] as number[] };
  for (let run = 1; run <= RUNS; run++) {
    // psql pipe, one table after the other
    const pipeDb = `pipe${run}`;
    await dst.createDatabase(pipeDb);
    await dst.query(TABLE_DDL, [], pipeDb);
    let pipe = 0;
    for (const t of ['pgbench_accounts', 'wide']) {
      pipe += await sh(`psql -X -q ${psqlUrl(src, 'bench')} -c "COPY ${t} TO STDOUT" | psql -X -q ${psqlUrl(dst, pipeDb)} -c "COPY ${t} FROM STDIN"`);
    }
    times.pipe.push(pipe);

    // mirrors apply (whole command, and its snapshot action alone)
    const mDb = `mirrors${run}`;
    await dst.createDatabase(mDb);
    const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
    writeFileSync(join(dir, 'mirrors.yaml'), `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: bench, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: ${mDb}, user: postgres, password: postgres }
mirrors:
  bench${run}:
    source: src
    destination: dst
    replicate_indexes: false
    tables: [{ source_table: pgbench_accounts }, { source_table: wide }]
`);
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'apply', '--auto-approve', '--format', 'json'], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
    times.mirrors.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`mirrors apply failed: ${r.stderr}`);
    const snapEvent = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.type === 'action_done' && e.action.kind === 'snapshot');
    times.snapshotAction.push(snapEvent.ms);
    await src.query(`SELECT pg_drop_replication_slot('mirrors_bench${run}')`);
    rmSync(dir, { recursive: true, force: true });

    // Postgres's own subscription, initial sync only
    const nDb = `native${run}`;
    await dst.createDatabase(nDb);
    await dst.query(TABLE_DDL, [], nDb);
    await src.query(`CREATE PUBLICATION native${run} FOR TABLE pgbench_accounts, wide`, [], 'bench');
    const n0 = performance.now();
    await dst.query(`CREATE SUBSCRIPTION native${run} CONNECTION 'host=127.0.0.1 port=${src.port} dbname=bench user=postgres password=postgres' PUBLICATION native${run} WITH (copy_data = true)`, [], nDb);
    for (;;) {
      const pending = await dst.query(`SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`, [], nDb);
      const total = await dst.query(`SELECT count(*)::int AS n FROM pg_subscription_rel`, [], nDb);
      if (total[0].n === 2 && pending[0].n === 0) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    times.native.push(performance.now() - n0);
    await dst.query(`DROP SUBSCRIPTION native${run}`, [], nDb);
    await src.query(`DROP PUBLICATION native${run}`, [], 'bench');
    for (const db of [pipeDb, mDb, nDb]) await dst.query(`DROP DATABASE ${db}`);
    console.log(`run ${run}: pipe ${secs(pipe)}, mirrors apply ${secs(times.mirrors.at(-1)!)} (snapshot action ${secs(snapEvent.ms)}), native ${secs(times.native.at(-1)!)}`);
  }
  const m = median(times.mirrors);
  const s = median(times.snapshotAction);
  const p = median(times.pipe);
  const n = median(times.native);
  console.log(`\nmedians over ${RUNS} runs: psql pipe ${secs(p)} | mirrors apply ${secs(m)} (snapshot action ${secs(s)}) | native subscription ${secs(n)}`);
  console.log(`throughput vs psql pipe: whole apply ${(p / m).toFixed(2)}x, snapshot action ${(p / s).toFixed(2)}x   (target >= 0.9x)`);
  console.log(`speed vs native initial sync: whole apply ${(n / m).toFixed(2)}x, snapshot action ${(n / s).toFixed(2)}x   (target > 1x)`);
}

async function planBench(src: Cluster, dst: Cluster) {
  console.log('\n# plan: 1,000 source tables');
  await src.createDatabase('plan1000');
  await dst.createDatabase('plan1000');
  const ddl = Array.from({ length: 1000 }, (_, i) => `CREATE TABLE t${i} (id bigint PRIMARY KEY, a text, b int, c timestamptz); CREATE INDEX ON t${i} (b);`).join('\n');
  await src.query(ddl, [], 'plan1000');
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
  writeFileSync(join(dir, 'mirrors.yaml'), `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: plan1000, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: plan1000, user: postgres, password: postgres }
mirrors:
  many:
    source: src
    destination: dst
    tables: [{ source_table: "public.*" }]
`);
  const wall: number[] = [];
  const cpu: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < Math.max(RUNS, 5); i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', ''], {});
    node.push(performance.now() - t0);
    const t1 = performance.now();
    const r = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time ${process.execPath} ${CLI} plan --format json > /dev/null`], { cwd: dir, encoding: 'utf8' });
    wall.push(performance.now() - t1);
    const [u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
    cpu.push((u + s) * 1000);
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`mirrors plan over 1,000 tables: median wall ${Math.round(median(wall))} ms, median CPU (user+sys) ${Math.round(median(cpu))} ms; node start-up alone ${Math.round(median(node))} ms  (target < 1000 ms of its own time)`);
}

async function main() {
  const [src, dst] = await Promise.all([startCluster({ name: 'bench-src', settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } }), startCluster({ name: 'bench-dst', settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } })]);
  try {
    console.log(`machine: ${(await import('node:os')).cpus().length} cores; PostgreSQL ${(await src.query('SHOW server_version'))[0].server_version}; node ${process.version}`);
    if (!ONLY || ONLY === 'plan') await planBench(src, dst);
    if (!ONLY || ONLY === 'snapshot') await snapshotBench(src, dst);
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
