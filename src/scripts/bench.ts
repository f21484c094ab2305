/**
 * `npm run bench`: measured in one run on this machine, against baselines run on the same clusters.
 *  1. snapshot: pgbench_accounts (scale 10, 1M rows) + a wide table (text, jsonb): mirrors apply vs a
 *     `psql COPY TO STDOUT | psql COPY FROM STDIN` pipe vs Postgres's own subscription (copy_data).
 *  2. plan: `mirrors plan` over 1,000 source tables vs `node -e ''` (process start-up).
 *  3. catchup: `mirrors run` catching up a backlog of 20,000 pgbench (TPC-B) transactions built while it was
 *     stopped (max_batch_size 1000 and 5000) vs Postgres's own subscription catching up the same backlog.
 *  4. steady: `mirrors run` following `pgbench -R 1000`: end-to-end lag of a probe row inserted every 100 ms
 *     (p50, p99, max) vs the same load and probe through Postgres's own subscription.
 *  5. sync: source commit latency (pgbench TPC-B p50/p99, tps) with no consumer, an async mirror, a sync mirror
 *     and Postgres's own subscription as synchronous standby, on clusters with durable settings.
 *  6. resync: `--replace` of pgbench_accounts (scale 2, 200,000 rows, 1% of them diverged on the destination) with
 *     resync_strategy truncate, swap and merge while the mirror streams, until the table equals its source again,
 *     vs a `psql COPY` pipe into an empty table with its key, on clusters with durable settings.
 *  7. verify: `mirrors verify` of a streaming mirror of pgbench_accounts (scale 5, 500,000 rows), in full and with
 *     --sample 0.01, vs `SELECT md5(string_agg(...))` of the same table on both sides at once, durable settings.
 * Prints medians and ratios. Options: --runs N (default 3), --only snapshot|plan|catchup|steady|sync|resync|verify,
 * --steady-seconds N (default 60). Env MIRRORS_BENCH_WORKER_NODE_ARGS: node flags for the worker (profiling).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { findPgBin, startCluster, type Cluster } from '../devtools/cluster.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 3;
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
const STEADY_SECONDS = args.includes('--steady-seconds') ? Number(args[args.indexOf('--steady-seconds') + 1]) : 60;
if (ONLY && !['snapshot', 'plan', 'catchup', 'steady', 'sync', 'resync', 'verify'].includes(ONLY))
  throw new Error(`--only ${ONLY}: expected snapshot, plan, catchup, steady, sync, resync or verify`);
if (!Number.isInteger(STEADY_SECONDS) || STEADY_SECONDS < 1)
  throw new Error('--steady-seconds expects a whole number of seconds >= 1');

/** As users run Postgres: every commit flushed (the sync, resync and verify sections). */
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', max_wal_size: '4GB' };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const secs = (ms: number) => (ms / 1000).toFixed(2) + ' s';

function sh(cmd: string, env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-o', 'pipefail', '-c', cmd], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}`)),
    );
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
  await src.query(
    `CREATE TABLE wide (id bigint PRIMARY KEY, title text, body text, tags text[], doc jsonb, created_at timestamptz);
    INSERT INTO wide SELECT g, 'title ' || g, repeat(md5(g::text), 12), ARRAY['a' || g % 10, 'b' || g % 7],
      jsonb_build_object('id', g, 'name', 'n' || g, 'attrs', jsonb_build_object('x', g % 100, 'y', md5(g::text))), now() - g * interval '1 second'
    FROM generate_series(1, 200000) g; ANALYZE;`,
    [],
    'bench',
  );
  const size = (
    await src.query(
      `SELECT pg_size_pretty(sum(pg_table_size(c))::bigint) AS s FROM unnest(ARRAY['pgbench_accounts'::regclass, 'wide'::regclass]) c`,
      [],
      'bench',
    )
  )[0].s;
  console.log(`source data: ${size}`);

  const times = {
    mirrors: [] as number[],
    snapshotAction: [] as number[],
    pipe: [] as number[],
    native: [] as number[],
  };
  for (let run = 1; run <= RUNS; run++) {
    // psql pipe, one table after the other
    const pipeDb = `pipe${run}`;
    await dst.createDatabase(pipeDb);
    await dst.query(TABLE_DDL, [], pipeDb);
    let pipe = 0;
    for (const t of ['pgbench_accounts', 'wide']) {
      pipe += await sh(
        `psql -X -q ${psqlUrl(src, 'bench')} -c "COPY ${t} TO STDOUT" | psql -X -q ${psqlUrl(dst, pipeDb)} -c "COPY ${t} FROM STDIN"`,
      );
    }
    times.pipe.push(pipe);

    // mirrors apply (whole command, and its snapshot action alone)
    const mDb = `mirrors${run}`;
    await dst.createDatabase(mDb);
    const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
    writeFileSync(
      join(dir, 'mirrors.yaml'),
      `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: bench, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: ${mDb}, user: postgres, password: postgres }
mirrors:
  bench${run}:
    source: src
    destination: dst
    replicate_indexes: false
    tables: [{ source_table: pgbench_accounts }, { source_table: wide }]
`,
    );
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [CLI, 'apply', '--auto-approve', '--format', 'json'], {
      cwd: dir,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    times.mirrors.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`mirrors apply failed: ${r.stderr}`);
    const events = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const snapEvent = events.find((e) => e.type === 'action_done' && e.action.kind === 'snapshot');
    // Where the rest of the command's time goes: every action's own time.
    const actions = events
      .filter((e) => e.type === 'action_done')
      .map((e) => `${e.action.kind} ${Math.round(e.ms)} ms`);
    console.log(`run ${run}: mirrors apply actions: ${actions.join(', ')}`);
    times.snapshotAction.push(snapEvent.ms);
    await src.query(`SELECT pg_drop_replication_slot('mirrors_bench${run}')`);
    rmSync(dir, { recursive: true, force: true });

    // Postgres's own subscription, initial sync only
    const nDb = `native${run}`;
    await dst.createDatabase(nDb);
    await dst.query(TABLE_DDL, [], nDb);
    await src.query(`CREATE PUBLICATION native${run} FOR TABLE pgbench_accounts, wide`, [], 'bench');
    const n0 = performance.now();
    await dst.query(
      `CREATE SUBSCRIPTION native${run} CONNECTION 'host=127.0.0.1 port=${src.port} dbname=bench user=postgres password=postgres' PUBLICATION native${run} WITH (copy_data = true)`,
      [],
      nDb,
    );
    for (;;) {
      const pending = await dst.query(
        `SELECT count(*)::int AS n FROM pg_subscription_rel WHERE srsubstate <> 'r'`,
        [],
        nDb,
      );
      const total = await dst.query(`SELECT count(*)::int AS n FROM pg_subscription_rel`, [], nDb);
      if (total[0].n === 2 && pending[0].n === 0) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    times.native.push(performance.now() - n0);
    await dst.query(`DROP SUBSCRIPTION native${run}`, [], nDb);
    await src.query(`DROP PUBLICATION native${run}`, [], 'bench');
    for (const db of [pipeDb, mDb, nDb]) await dst.query(`DROP DATABASE ${db}`);
    console.log(
      `run ${run}: pipe ${secs(pipe)}, mirrors apply ${secs(times.mirrors.at(-1)!)} (snapshot action ${secs(snapEvent.ms)}), native ${secs(times.native.at(-1)!)}`,
    );
  }
  const m = median(times.mirrors);
  const s = median(times.snapshotAction);
  const p = median(times.pipe);
  const n = median(times.native);
  console.log(
    `\nmedians over ${RUNS} runs: psql pipe ${secs(p)} | mirrors apply ${secs(m)} (snapshot action ${secs(s)}) | native subscription ${secs(n)}`,
  );
  console.log(
    `throughput vs psql pipe: whole apply ${(p / m).toFixed(2)}x, snapshot action ${(p / s).toFixed(2)}x   (target >= 0.9x)`,
  );
  console.log(
    `speed vs native initial sync: whole apply ${(n / m).toFixed(2)}x, snapshot action ${(n / s).toFixed(2)}x   (target > 1x)`,
  );
}

async function planBench(src: Cluster, dst: Cluster) {
  console.log('\n# plan: 1,000 source tables');
  await src.createDatabase('plan1000');
  await dst.createDatabase('plan1000');
  const ddl = Array.from(
    { length: 1000 },
    (_, i) => `CREATE TABLE t${i} (id bigint PRIMARY KEY, a text, b int, c timestamptz); CREATE INDEX ON t${i} (b);`,
  ).join('\n');
  await src.query(ddl, [], 'plan1000');
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
  writeFileSync(
    join(dir, 'mirrors.yaml'),
    `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: plan1000, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: plan1000, user: postgres, password: postgres }
mirrors:
  many:
    source: src
    destination: dst
    tables: [{ source_table: "public.*" }]
`,
  );
  const wall: number[] = [];
  const cpu: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < Math.max(RUNS, 5); i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', ''], {});
    node.push(performance.now() - t0);
    const t1 = performance.now();
    const r = spawnSync(
      'bash',
      ['-c', `TIMEFORMAT='%U %S'; time ${process.execPath} ${CLI} plan --format json > /dev/null`],
      { cwd: dir, encoding: 'utf8' },
    );
    wall.push(performance.now() - t1);
    const [u, s] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
    cpu.push((u + s) * 1000);
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `mirrors plan over 1,000 tables: median wall ${Math.round(median(wall))} ms, median CPU (user+sys) ${Math.round(median(cpu))} ms; node start-up alone ${Math.round(median(node))} ms  (target < 1000 ms of its own time)`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Streaming: catch-up and steady state of `mirrors run`, against Postgres's own subscription.

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PGBENCH_TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];
/** The pgbench tables as `pgbench -i` creates them, plus the key every mirrored table needs (for the subscription's destination). */
const PGBENCH_DDL = `
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22), id bigint PRIMARY KEY);`;
const PROBE_DDL = `CREATE TABLE bench_probe (id int PRIMARY KEY, at timestamptz);`;
const BACKLOG_CLIENTS = 10;
const BACKLOG_PER_CLIENT = 2000;
const BACKLOG = BACKLOG_CLIENTS * BACKLOG_PER_CLIENT;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : NaN;
};
const mb = (kb: number) => `${Math.round(kb / 1024)} MB`;
const ms = (x: number) => `${Math.round(x)} ms`;

async function connect(url: string, options?: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, options });
  await c.connect();
  return c;
}

/** pgbench with its summary captured: wall time and the tps it reports. */
function pgbench(pgArgs: string[]): Promise<{ ms: number; tps: number; out: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(join(findPgBin(), 'pgbench'), pgArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0)
        return reject(new Error(`pgbench ${pgArgs.slice(0, -1).join(' ')} exited ${code}: ${err.slice(-2000)}`));
      const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? NaN);
      resolve({ ms: performance.now() - t0, tps, out });
    });
  });
}

/** CPU time (user + system) of a process so far, in ms; NaN once it is gone. */
function cpuMs(pid: number | null | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1000;
  } catch {
    return NaN;
  }
}

/** Peak resident set size (VmHWM) of a process, in kB. */
function peakRssKb(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** One value of a Prometheus text exposition (the first series of that name). */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

/** The LSN the source has inserted up to, once it is also flushed (so a walsender can send all of it). */
async function sourceEndLsn(src: pg.Client): Promise<string> {
  const lsn = (await src.query(`SELECT pg_current_wal_insert_lsn()::text AS l`)).rows[0].l as string;
  while (!(await src.query(`SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok`, [lsn])).rows[0].ok) await sleep(5);
  return lsn;
}

/** Extra node flags for the worker only, e.g. MIRRORS_BENCH_WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const WORKER_NODE_ARGS = (process.env.MIRRORS_BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const liveWorkers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveWorkers) c.kill('SIGKILL');
});

interface Worker {
  child: ChildProcess;
  pid: number;
  /** ms after spawn when the worker logged that it streams */
  streaming: Promise<number>;
  /** the worker's CPU ms at that moment (start-up: node, modules, config, connections) */
  startCpuMs: number;
  metricsPort: Promise<number>;
  /** rejects when the process exits (for racing against what waits for it) */
  died: Promise<never>;
  log(): string;
  stop(): Promise<void>;
}

/** `mirrors run -m <mirror>` as a child process, with JSON logs on stderr and metrics on a free port. */
function startWorker(dir: string, mirror: string): Worker {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...WORKER_NODE_ARGS,
      CLI,
      'run',
      '-m',
      mirror,
      '--log-format',
      'json',
      '--metrics-port',
      '0',
      '--metrics-host',
      '127.0.0.1',
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  liveWorkers.add(child);
  let log = '';
  let buf = '';
  let onStreaming!: (ms: number) => void;
  let onPort!: (p: number) => void;
  let fail!: (e: Error) => void;
  const failed = new Promise<never>((_, r) => (fail = r));
  failed.catch(() => {});
  const streaming = Promise.race([new Promise<number>((r) => (onStreaming = r)), failed]);
  const metricsPort = Promise.race([new Promise<number>((r) => (onPort = r)), failed]);
  streaming.catch(() => {});
  metricsPort.catch(() => {});
  child.stderr!.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-20000);
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const e = JSON.parse(line);
        if (typeof e.metricsPort === 'number') onPort(e.metricsPort);
        if (/streaming from/.test(e.msg)) {
          worker.startCpuMs = cpuMs(child.pid);
          onStreaming(performance.now() - t0);
        }
      } catch {
        // not a log line
      }
    }
  });
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      liveWorkers.delete(child);
      fail(new Error(`mirrors run exited ${code}:\n${log.slice(-3000)}`));
      r(code);
    }),
  );
  const worker: Worker = {
    child,
    pid: child.pid!,
    startCpuMs: NaN,
    streaming,
    metricsPort,
    died: failed,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(t);
      if (code !== 0) throw new Error(`mirrors run exited ${code} after SIGTERM:\n${log.slice(-3000)}`);
    },
  };
  return worker;
}

/**
 * Samples what the given backends are doing every 100 ms (pg_stat_activity: state and wait event), and
 * counts each answer: where a consumer's time goes, seen from the server side.
 */
function waitSampler(client: pg.Client, where: string, params: unknown[]) {
  const counts = new Map<string, number>();
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      try {
        const rows = (
          await client.query(
            `SELECT backend_type, state, wait_event_type, wait_event FROM pg_stat_activity WHERE ${where}`,
            params,
          )
        ).rows;
        for (const r of rows) {
          const what =
            r.state === 'active' && !r.wait_event
              ? 'active, on CPU'
              : `${r.state ?? r.backend_type}${r.wait_event ? ` ${r.wait_event_type}:${r.wait_event}` : ''}`;
          counts.set(what, (counts.get(what) ?? 0) + 1);
        }
      } catch {
        // the sampler must never fail the bench
      }
      await sleep(100);
    }
  })();
  return {
    counts,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

function mergeCounts(into: Map<string, number>, from: Map<string, number>) {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

function topCounts(counts: Map<string, number>, n = 4): string {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (!total) return '(no samples)';
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k} ${Math.round((100 * v) / total)}%`)
    .join(', ');
}

function mirrorsYaml(
  src: Cluster,
  srcDb: string,
  dst: Cluster,
  mirrors: { name: string; db: string; maxBatch: number }[],
  tables: string[],
): string {
  return `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: ${srcDb}, user: postgres, password: postgres }
${mirrors.map((m) => `  d_${m.name}: { host: 127.0.0.1, port: ${dst.port}, database: ${m.db}, user: postgres, password: postgres }`).join('\n')}
mirrors:
${mirrors
  .map(
    (m) => `  ${m.name}:
    source: src
    destination: d_${m.name}
    idle_timeout_seconds: 1
    max_batch_size: ${m.maxBatch}
    tables: [${tables.map((t) => `{ source_table: ${t} }`).join(', ')}]`,
  )
  .join('\n')}
`;
}

function mirrorsApply(dir: string) {
  const r = spawnSync(process.execPath, [CLI, 'apply', '--auto-approve', '--format', 'json'], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`mirrors apply failed (exit ${r.status}): ${r.stderr}\n${r.stdout.slice(-3000)}`);
}

/** A subscription (copy_data = true) of `tables` into dstDb, once every table is synchronised ('r'). */
async function nativeSubscription(
  src: Cluster,
  srcDb: string,
  dst: Cluster,
  dstDb: string,
  name: string,
  tables: string[],
) {
  await src.query(`CREATE PUBLICATION ${name} FOR TABLE ${tables.join(', ')}`, [], srcDb);
  await dst.query(
    `CREATE SUBSCRIPTION ${name} CONNECTION 'host=127.0.0.1 port=${src.port} dbname=${srcDb} user=postgres password=postgres' PUBLICATION ${name} WITH (copy_data = true)`,
    [],
    dstDb,
  );
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const r = await dst.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE srsubstate = 'r')::int AS ready FROM pg_subscription_rel`,
      [],
      dstDb,
    );
    if (r[0].n === tables.length && r[0].ready === tables.length) break;
    if (Date.now() > deadline) throw new Error(`subscription ${name}: initial sync not done after 10 minutes`);
    await sleep(50);
  }
}

/** Drops the logical slots of a source database that nobody dropped (the mirrors'), then the database. */
async function dropSourceDb(src: Cluster, db: string) {
  await src.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1::text`, [
    db,
  ]);
  await src.query(`DROP DATABASE ${db}`);
}

let pgbenchTemplate: Promise<void> | null = null;
/** Database cu_tpl on the source: pgbench -i -s 10, and a key on pgbench_history. Copied (FILE_COPY) per run. */
function ensurePgbenchTemplate(src: Cluster): Promise<void> {
  pgbenchTemplate ??= (async () => {
    await src.createDatabase('cu_tpl');
    await sh(`${join(findPgBin(), 'pgbench')} -i -s 10 -q ${psqlUrl(src, 'cu_tpl')} >/dev/null 2>&1`);
    await src.query(`ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY`, [], 'cu_tpl');
    await src.query(`VACUUM ANALYZE`, [], 'cu_tpl');
  })();
  return pgbenchTemplate;
}

interface CatchupRun {
  ms: number;
  /** mirrors only: ms from spawn to "streaming from" */
  startMs?: number;
  peakRssKb?: number;
  /** CPU ms spent during the catch-up by: the consumer (node worker / apply worker), its destination backend, the source walsender */
  cpu: { consumer: number; dstBackend: number; walsender: number };
  /** mirrors only: the node worker's CPU ms up to "streaming from" */
  startCpu?: number;
  /** mirrors only: apply_duration_seconds sum (ms) and batches */
  applyMs?: number;
  batches?: number;
  dstWaits: Map<string, number>;
  srcWaits: Map<string, number>;
}

async function catchupMirror(
  src: Cluster,
  dst: Cluster,
  dir: string,
  name: string,
  dstDb: string,
  target: string,
): Promise<CatchupRun> {
  const waiter = await connect(dst.url(dstDb));
  const dstMon = await connect(dst.url('postgres'));
  const srcMon = await connect(src.url('postgres'));
  const app = `mirrors run ${name}`;
  const dstSampler = waitSampler(dstMon, `datname = $1::text AND application_name = $2::text`, [dstDb, app]);
  const srcSampler = waitSampler(srcMon, `backend_type = 'walsender' AND application_name = $1::text`, [app]);
  let w: Worker | null = null;
  try {
    const t0 = performance.now();
    w = startWorker(dir, name);
    await Promise.race([
      waiter.query(`SELECT mirrors.wait_for_lsn($1::text, $2::pg_lsn, '10 minutes')`, [name, target]),
      w.died,
    ]);
    const wall = performance.now() - t0;
    const startMs = await w.streaming;
    const [dstPid, walsenderPid] = await Promise.all([
      dstMon
        .query(`SELECT pid FROM pg_stat_activity WHERE datname = $1::text AND application_name = $2::text`, [
          dstDb,
          app,
        ])
        .then((r) => r.rows[0]?.pid),
      srcMon
        .query(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1::text`, [
          app,
        ])
        .then((r) => r.rows[0]?.pid),
    ]);
    const cpu = { consumer: cpuMs(w.pid), dstBackend: cpuMs(dstPid), walsender: cpuMs(walsenderPid) };
    const rss = peakRssKb(w.pid);
    const metricsText = await fetch(`http://127.0.0.1:${await w.metricsPort}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    await Promise.all([dstSampler.stop(), srcSampler.stop()]);
    const startCpu = w.startCpuMs;
    await w.stop();
    w = null;
    return {
      ms: wall,
      startMs,
      startCpu,
      peakRssKb: rss,
      cpu,
      applyMs: metric(metricsText, 'mirrors_apply_duration_seconds_sum') * 1000,
      batches: metric(metricsText, 'mirrors_batches_total'),
      dstWaits: dstSampler.counts,
      srcWaits: srcSampler.counts,
    };
  } finally {
    await Promise.all([dstSampler.stop(), srcSampler.stop()]);
    await w?.stop().catch(() => {});
    await Promise.all([waiter.end(), dstMon.end(), srcMon.end()].map((p) => p.catch(() => {})));
  }
}

async function catchupNative(
  src: Cluster,
  dst: Cluster,
  name: string,
  dstDb: string,
  target: string,
): Promise<CatchupRun> {
  const sub = await connect(dst.url(dstDb));
  const srcMon = await connect(src.url('postgres'));
  const dstSampler = waitSampler(sub, `datname = $1::text AND backend_type = 'logical replication worker'`, [dstDb]);
  const srcSampler = waitSampler(srcMon, `backend_type = 'walsender' AND application_name = $1::text`, [name]);
  try {
    const t0 = performance.now();
    await sub.query(`ALTER SUBSCRIPTION ${name} ENABLE`);
    let applyPid: number | null = null;
    for (;;) {
      const r = (
        await sub.query(
          `SELECT pid, latest_end_lsn >= $2::pg_lsn AS done FROM pg_stat_subscription WHERE subname = $1::text AND relid IS NULL`,
          [name, target],
        )
      ).rows[0];
      applyPid = r?.pid ?? null;
      if (r?.done) break;
      if (performance.now() - t0 > 10 * 60_000) throw new Error(`subscription ${name} did not catch up in 10 minutes`);
      await sleep(10);
    }
    const wall = performance.now() - t0;
    const walsenderPid = (
      await srcMon.query(
        `SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND application_name = $1::text`,
        [name],
      )
    ).rows[0]?.pid;
    // The apply worker is both the consumer and the destination backend.
    const cpu = { consumer: cpuMs(applyPid), dstBackend: 0, walsender: cpuMs(walsenderPid) };
    await Promise.all([dstSampler.stop(), srcSampler.stop()]);
    return { ms: wall, cpu, dstWaits: dstSampler.counts, srcWaits: srcSampler.counts };
  } finally {
    await Promise.all([dstSampler.stop(), srcSampler.stop()]);
    await Promise.all([sub.end(), srcMon.end()]);
  }
}

/** Destination rows agree with the source after a catch-up: pgbench_history rows and the sum of balances. */
async function checkCaughtUp(src: Cluster, srcDb: string, dst: Cluster, dstDb: string, what: string) {
  const q = `SELECT (SELECT count(*) FROM pgbench_history)::int AS h, (SELECT sum(abalance) FROM pgbench_accounts)::bigint AS a, (SELECT sum(tbalance) FROM pgbench_tellers)::bigint AS t`;
  const [s, d] = await Promise.all([src.query(q, [], srcDb), dst.query(q, [], dstDb)]);
  if (s[0].h !== BACKLOG || JSON.stringify(s[0]) !== JSON.stringify(d[0])) {
    throw new Error(
      `${what}: destination ${JSON.stringify(d[0])} differs from source ${JSON.stringify(s[0])} after catching up`,
    );
  }
}

type Contender = 'native' | 'm1000' | 'm5000';
const LABEL: Record<Contender, string> = {
  native: 'native subscription',
  m1000: 'mirrors run (batch 1000)',
  m5000: 'mirrors run (batch 5000)',
};

async function catchupBench(src: Cluster, dst: Cluster) {
  console.log(
    `\n# catch-up: a backlog of ${BACKLOG.toLocaleString('en')} pgbench transactions (TPC-B, scale 10), built while the consumer is stopped`,
  );
  await ensurePgbenchTemplate(src);
  const results: Record<Contender, CatchupRun[]> = { native: [], m1000: [], m5000: [] };
  const backlogTps: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const srcDb = `cu_src${run}`;
    const dbs: Record<Contender, string> = {
      native: `cu_native${run}`,
      m1000: `cu_m1000_${run}`,
      m5000: `cu_m5000_${run}`,
    };
    const names = { m1000: `cu1000_r${run}`, m5000: `cu5000_r${run}`, native: `cu_native${run}` };
    await src.query(`CREATE DATABASE ${srcDb} TEMPLATE cu_tpl STRATEGY FILE_COPY`);
    for (const db of Object.values(dbs)) await dst.createDatabase(db);
    const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
    try {
      // Bootstrap both mirrors (max_batch_size 1000 and 5000) and the subscription, then stop every consumer.
      writeFileSync(
        join(dir, 'mirrors.yaml'),
        mirrorsYaml(
          src,
          srcDb,
          dst,
          [
            { name: names.m1000, db: dbs.m1000, maxBatch: 1000 },
            { name: names.m5000, db: dbs.m5000, maxBatch: 5000 },
          ],
          PGBENCH_TABLES,
        ),
      );
      mirrorsApply(dir);
      await dst.query(PGBENCH_DDL, [], dbs.native);
      await nativeSubscription(src, srcDb, dst, dbs.native, names.native, PGBENCH_TABLES);
      await dst.query(`ALTER SUBSCRIPTION ${names.native} DISABLE`, [], dbs.native);
      for (;;) {
        const w = await dst.query(
          `SELECT count(*)::int AS n FROM pg_stat_subscription WHERE subname = $1::text AND pid IS NOT NULL`,
          [names.native],
          dbs.native,
        );
        const s = await src.query(
          `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1::text AND active`,
          [srcDb],
        );
        if (w[0].n === 0 && s[0].n === 0) break;
        await sleep(50);
      }

      // The same backlog for all three consumers: every slot is behind it.
      const backlog = await pgbench([
        '-n',
        '-t',
        String(BACKLOG_PER_CLIENT),
        '-c',
        String(BACKLOG_CLIENTS),
        '-j',
        '2',
        src.url(srcDb),
      ]);
      backlogTps.push(backlog.tps);
      const srcClient = await connect(src.url(srcDb));
      const target = await sourceEndLsn(srcClient);
      const wal = (
        await srcClient.query(
          `SELECT pg_size_pretty($1::pg_lsn - min(confirmed_flush_lsn)) AS s FROM pg_replication_slots WHERE database = $2::text`,
          [target, srcDb],
        )
      ).rows[0].s;
      await srcClient.end();

      // Rotate the order, so no consumer always goes first.
      const order: Contender[][] = [
        ['native', 'm1000', 'm5000'],
        ['m1000', 'm5000', 'native'],
        ['m5000', 'native', 'm1000'],
      ];
      const line: string[] = [];
      for (const c of order[(run - 1) % 3]) {
        const r =
          c === 'native'
            ? await catchupNative(src, dst, names.native, dbs.native, target)
            : await catchupMirror(src, dst, dir, names[c], dbs[c], target);
        await checkCaughtUp(src, srcDb, dst, dbs[c], LABEL[c]);
        results[c].push(r);
        line.push(
          `${LABEL[c]} ${secs(r.ms)}` +
            (r.peakRssKb
              ? ` (streaming after ${secs(r.startMs!)}, peak RSS ${mb(r.peakRssKb)}, ${r.batches} batches)`
              : ''),
        );
      }
      console.log(
        `run ${run}: backlog ${secs(backlog.ms)} at ${Math.round(backlog.tps)} tps, ${wal} of WAL; ${line.join(', ')}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await dst
        .query(`DROP SUBSCRIPTION IF EXISTS ${names.native}`, [], dbs.native)
        .catch((e) => console.error(`drop subscription: ${e.message}`));
      for (const db of Object.values(dbs)) await dst.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await dropSourceDb(src, srcDb);
    }
  }

  const med = (c: Contender, f: (r: CatchupRun) => number) => median(results[c].map(f));
  const n = med('native', (r) => r.ms);
  const m1 = med('m1000', (r) => r.ms);
  const m5 = med('m5000', (r) => r.ms);
  const tps = (x: number) => `${Math.round(BACKLOG / (x / 1000)).toLocaleString('en')} tps`;
  console.log(
    `\nbacklog built at a median ${Math.round(median(backlogTps))} tps (pgbench -n -t ${BACKLOG_PER_CLIENT} -c ${BACKLOG_CLIENTS} -j 2; no consumer running)`,
  );
  console.log(
    `medians over ${RUNS} runs: native subscription ${secs(n)} (${tps(n)}) | mirrors run batch 1000 ${secs(m1)} (${tps(m1)}) | batch 5000 ${secs(m5)} (${tps(m5)})`,
  );
  console.log(
    `speed vs native (native time / mirrors time): batch 1000 ${(n / m1).toFixed(2)}x, batch 5000 ${(n / m5).toFixed(2)}x   (target >= 1.5x)`,
  );
  // Load from other processes varies between runs; the ratio within a run (same moment) is steadier.
  const perRun = (c: Contender) => median(results[c].map((r, i) => results.native[i].ms / r.ms));
  console.log(
    `  median of the per-run ratios: batch 1000 ${perRun('m1000').toFixed(2)}x, batch 5000 ${perRun('m5000').toFixed(2)}x`,
  );
  const s1 = med('m1000', (r) => r.ms - r.startMs!);
  const s5 = med('m5000', (r) => r.ms - r.startMs!);
  console.log(
    `  counting only from "streaming from" (process start-up and connections left out): batch 1000 ${secs(s1)} (${(n / s1).toFixed(2)}x), batch 5000 ${secs(s5)} (${(n / s5).toFixed(2)}x)`,
  );
  for (const c of ['m1000', 'm5000'] as const) {
    console.log(
      `${LABEL[c]}: median start-up to streaming ${secs(med(c, (r) => r.startMs!))}, peak RSS ${mb(med(c, (r) => r.peakRssKb!))} (max ${mb(Math.max(...results[c].map((r) => r.peakRssKb!)))}), ` +
        `${Math.round(med(c, (r) => r.batches!))} batches, time inside applyBatch ${secs(med(c, (r) => r.applyMs!))}`,
    );
  }
  console.log(
    'where the time goes (median CPU seconds during the catch-up, and what the backends were doing, sampled every 100 ms):',
  );
  for (const c of ['native', 'm1000', 'm5000'] as const) {
    const dstWaits = new Map<string, number>();
    const srcWaits = new Map<string, number>();
    for (const r of results[c]) {
      mergeCounts(dstWaits, r.dstWaits);
      mergeCounts(srcWaits, r.srcWaits);
    }
    const cpu =
      c === 'native'
        ? `apply worker ${secs(med(c, (r) => r.cpu.consumer))}, source walsender ${secs(med(c, (r) => r.cpu.walsender))}`
        : `node worker ${secs(med(c, (r) => r.cpu.consumer))} (${secs(med(c, (r) => r.startCpu!))} of it start-up, then ${((med(c, (r) => r.cpu.consumer - r.startCpu!) * 1000) / (BACKLOG * 4)).toFixed(1)} µs per row change), destination backend ${secs(med(c, (r) => r.cpu.dstBackend))}, source walsender ${secs(med(c, (r) => r.cpu.walsender))}`;
    console.log(`  ${LABEL[c]}: CPU ${cpu} (wall ${secs(med(c, (r) => r.ms))})`);
    console.log(`    destination: ${topCounts(dstWaits)}`);
    console.log(`    source walsender: ${topCounts(srcWaits)}`);
  }
}

interface ProbeResult {
  lags: number[];
  lost: number;
  tps: number;
}

/**
 * Inserts a row into bench_probe on the source every 100 ms (while `load` runs, or for idleMs) and polls
 * the destination every 5 ms for the highest id it sees: a probe's lag is the time from its INSERT
 * returning (committed) on the source to a destination query that sees it returning.
 */
async function probe(
  srcUrl: string,
  dstUrl: string,
  load: (() => Promise<{ tps: number }>) | { idleMs: number },
): Promise<ProbeResult> {
  // The bench clusters run with synchronous_commit = off, so WAL reaches a walsender only when the WAL writer
  // flushes it (wal_writer_delay, 200 ms). The probe commits as an application with default settings would:
  // its commit flushes, so its lag is the replication's, not the WAL writer's.
  const s = await connect(srcUrl, '-c synchronous_commit=on');
  const d = await connect(dstUrl);
  const pending = new Map<number, number>();
  const lags: number[] = [];
  let producing = true;
  let lost = 0;
  const poller = (async () => {
    let deadline = Infinity;
    for (;;) {
      const seen = (await d.query(`SELECT coalesce(max(id), 0)::int AS m FROM bench_probe`)).rows[0].m as number;
      const now = performance.now();
      for (const [id, t] of pending) {
        if (id <= seen) {
          lags.push(now - t);
          pending.delete(id);
        }
      }
      if (!producing) {
        if (deadline === Infinity) deadline = now + 30_000;
        if (!pending.size) break;
        if (now > deadline) {
          lost = pending.size;
          break;
        }
      }
      await sleep(5);
    }
  })();
  let done = false;
  let tps = NaN;
  const loadDone = typeof load === 'function' ? load().then((r) => (tps = r.tps)) : sleep(load.idleMs);
  loadDone.then(
    () => (done = true),
    () => (done = true),
  );
  const t0 = performance.now();
  for (let k = 1; !done; k++) {
    const id = (await s.query(`INSERT INTO bench_probe DEFAULT VALUES RETURNING id`)).rows[0].id as number;
    pending.set(id, performance.now());
    const wait = t0 + k * 100 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  producing = false;
  try {
    await poller;
    await loadDone;
  } finally {
    await Promise.all([s.end(), d.end()]);
  }
  return { lags, lost, tps };
}

function lagLine(r: ProbeResult) {
  return `${r.lags.length} probes: p50 ${ms(pct(r.lags, 50))}, p90 ${ms(pct(r.lags, 90))}, p99 ${ms(pct(r.lags, 99))}, max ${ms(Math.max(...r.lags))}${r.lost ? `, ${r.lost} NOT SEEN within 30 s` : ''}`;
}

async function steadyBench(src: Cluster, dst: Cluster) {
  const loadArgs = ['-n', '-R', '1000', '-T', String(STEADY_SECONDS), '-c', '4', '-j', '2'];
  console.log(
    `\n# steady: pgbench ${loadArgs.join(' ')} on the source (TPC-B, scale 10); end-to-end lag of a probe row inserted every 100 ms`,
  );
  await ensurePgbenchTemplate(src);
  const srcDb = 'steady_src';
  const tables = [...PGBENCH_TABLES, 'bench_probe'];
  await src.query(`CREATE DATABASE ${srcDb} TEMPLATE cu_tpl STRATEGY FILE_COPY`);
  await src.query(
    `CREATE TABLE bench_probe (id serial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())`,
    [],
    srcDb,
  );
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-'));
  const load = () => pgbench([...loadArgs, src.url(srcDb)]);
  try {
    // mirrors run
    await dst.createDatabase('steady_m');
    writeFileSync(
      join(dir, 'mirrors.yaml'),
      mirrorsYaml(src, srcDb, dst, [{ name: 'steady', db: 'steady_m', maxBatch: 1000 }], tables),
    );
    mirrorsApply(dir);
    const w = startWorker(dir, 'steady');
    let m: { idle: ProbeResult; busy: ProbeResult; cpu: number; backendCpu: number; rss: number; lagMaxMs: number };
    try {
      const c = await connect(src.url(srcDb));
      const target = await sourceEndLsn(c);
      await c.end();
      await Promise.race([
        dst.query(`SELECT mirrors.wait_for_lsn('steady', $1::pg_lsn, '5 minutes')`, [target], 'steady_m'),
        w.died,
      ]);
      const idle = await probe(src.url(srcDb), dst.url('steady_m'), { idleMs: 5000 });
      // The worker's own lag metric, sampled every 100 ms alongside the probe (for comparison only).
      const port = await w.metricsPort;
      let lagMaxMs = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const text = await fetch(`http://127.0.0.1:${port}/metrics`)
            .then((r) => r.text())
            .catch(() => '');
          const v = metric(text, 'mirrors_lag_seconds') * 1000;
          if (v > lagMaxMs) lagMaxMs = v;
          await sleep(100);
        }
      })();
      const backendPid = (
        await dst.query(
          `SELECT pid FROM pg_stat_activity WHERE datname = 'steady_m' AND application_name = 'mirrors run steady'`,
        )
      )[0]?.pid;
      const cpu0 = cpuMs(w.pid);
      const backendCpu0 = cpuMs(backendPid);
      const busy = await probe(src.url(srcDb), dst.url('steady_m'), load);
      const cpu = cpuMs(w.pid) - cpu0;
      const backendCpu = cpuMs(backendPid) - backendCpu0;
      sampling = false;
      await sampler;
      m = { idle, busy, cpu, backendCpu, rss: peakRssKb(w.pid), lagMaxMs };
    } finally {
      await w.stop();
    }
    await src.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1::text`, [
      srcDb,
    ]);
    console.log(`mirrors run (batch 1000, idle_timeout 1 s): idle ${lagLine(m.idle)}`);
    console.log(`  under load: ${lagLine(m.busy)}; pgbench achieved ${Math.round(m.busy.tps)} tps`);
    console.log(
      `  worker CPU ${secs(m.cpu)} over ${STEADY_SECONDS} s (${Math.round(m.cpu / (STEADY_SECONDS * 10))}% of a core) + its destination backend ${secs(m.backendCpu)}, peak RSS ${mb(m.rss)}, highest mirrors_lag_seconds seen ${ms(m.lagMaxMs)}`,
    );

    // Postgres's own subscription, same load and probe
    await dst.createDatabase('steady_native');
    await dst.query(PGBENCH_DDL + PROBE_DDL, [], 'steady_native');
    await nativeSubscription(src, srcDb, dst, 'steady_native', 'steady_native', tables);
    const idle = await probe(src.url(srcDb), dst.url('steady_native'), { idleMs: 5000 });
    const applyPid = (
      await dst.query(
        `SELECT pid FROM pg_stat_subscription WHERE subname = 'steady_native' AND relid IS NULL`,
        [],
        'steady_native',
      )
    )[0]?.pid;
    const cpu0 = cpuMs(applyPid);
    const busy = await probe(src.url(srcDb), dst.url('steady_native'), load);
    const cpu = cpuMs(applyPid) - cpu0;
    await dst.query(`DROP SUBSCRIPTION steady_native`, [], 'steady_native');
    console.log(`native subscription: idle ${lagLine(idle)}`);
    console.log(`  under load: ${lagLine(busy)}; pgbench achieved ${Math.round(busy.tps)} tps`);
    console.log(
      `  apply worker CPU ${secs(cpu)} over ${STEADY_SECONDS} s (${Math.round(cpu / (STEADY_SECONDS * 10))}% of a core)`,
    );
    console.log(
      `probe lag under load, mirrors vs native: p50 ${ms(pct(m.busy.lags, 50))} vs ${ms(pct(busy.lags, 50))}, p99 ${ms(pct(m.busy.lags, 99))} vs ${ms(pct(busy.lags, 99))}, max ${ms(Math.max(...m.busy.lags))} vs ${ms(Math.max(...busy.lags))}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await dst.query(`DROP DATABASE IF EXISTS steady_native WITH (FORCE)`);
    await dst.query(`DROP DATABASE IF EXISTS steady_m WITH (FORCE)`);
    await dropSourceDb(src, srcDb);
  }
}

const SYNC_SECONDS = 15;
type SyncContender = 'none' | 'async' | 'sync' | 'native';

/**
 * Source commit latency with a mirror as synchronous standby (issue 10), on clusters of its own with durable settings
 * (fsync, synchronous_commit, full_page_writes on: commit latency is what sync mode costs, and without durability it
 * would be mostly noise). Contenders, alternating per round: no consumer; an async mirror; a sync mirror
 * (synchronous_standby_names as `mirrors apply` wrote it); Postgres's own subscription as the synchronous standby
 * (its synchronous_commit = on, so it confirms what it applied and flushed, as the docs advise for synchronous
 * logical replication). pgbench TPC-B (scale 10, 4 clients) for SYNC_SECONDS; latency percentiles from its
 * per-transaction log.
 */
async function syncBench() {
  const [src, dst] = await Promise.all([
    startCluster({ name: 'bench-sync-src', settings: DURABLE }),
    startCluster({ name: 'bench-sync-dst', settings: DURABLE }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-sync-'));
  const logs = mkdtempSync(join(tmpdir(), 'mirrors-bench-sync-log-'));
  console.log(
    `\n# sync: source commit latency, pgbench TPC-B -c 4 -j 2 -T ${SYNC_SECONDS} (scale 10), durable settings, ${RUNS} alternating rounds`,
  );
  try {
    await src.createDatabase('sy');
    await sh(`${join(findPgBin(), 'pgbench')} -i -q -s 10 ${src.url('sy')}`);
    await src.query('ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY', [], 'sy');
    for (const db of ['sy_async', 'sy_sync', 'sy_native']) await dst.createDatabase(db);
    const peer = (c: Cluster, db: string) =>
      `{ host: 127.0.0.1, port: ${c.port}, database: ${db}, user: postgres, password: postgres }`;
    const tables = `[${PGBENCH_TABLES.map((t) => `{ source_table: ${t} }`).join(', ')}]`;
    writeFileSync(
      join(dir, 'mirrors.yaml'),
      `version: 1
peers:
  src: ${peer(src, 'sy')}
  d_async: ${peer(dst, 'sy_async')}
  d_sync: ${peer(dst, 'sy_sync')}
mirrors:
  basync: { source: src, destination: d_async, tables: ${tables} }
  bsync: { source: src, destination: d_sync, mode: sync, tables: ${tables} }
`,
    );
    mirrorsApply(dir);
    // The sync mirror joins synchronous_standby_names once Following: a second apply, as a user would run it.
    const first = startWorker(dir, 'bsync');
    await Promise.race([first.streaming, first.died]);
    const c = await connect(src.url('sy'));
    await Promise.race([
      dst.query(`SELECT mirrors.wait_for_lsn('bsync', $1::pg_lsn, '5 minutes')`, [await sourceEndLsn(c)], 'sy_sync'),
      first.died,
    ]);
    for (let i = 0; i < 50; i++) {
      const [r] = await dst.query(`SELECT status FROM mirrors.mirrors WHERE name = 'bsync'`, [], 'sy_sync');
      if (r.status === 'Following') break;
      await sleep(200);
    }
    mirrorsApply(dir);
    const [{ synchronous_standby_names: listed }] = await src.query('SHOW synchronous_standby_names');
    if (!listed) throw new Error('mirrors apply did not list the sync mirror in synchronous_standby_names');
    await first.stop();
    const setNames = async (value: string) => {
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${value.replaceAll("'", "''")}'`);
      await c.query('SELECT pg_reload_conf()');
      for (let i = 0; i < 100; i++) {
        if ((await c.query('SHOW synchronous_standby_names')).rows[0].synchronous_standby_names === value) return;
        await sleep(20);
      }
    };
    await setNames('');
    // Native: the subscription's walsender is named after it.
    await dst.query(PGBENCH_DDL, [], 'sy_native');
    await nativeSubscription(src, 'sy', dst, 'sy_native', 'bnative', PGBENCH_TABLES);
    await dst.query(`ALTER SUBSCRIPTION bnative SET (synchronous_commit = 'on')`, [], 'sy_native');
    await dst.query(`ALTER SUBSCRIPTION bnative DISABLE`, [], 'sy_native');

    const results = new Map<SyncContender, { p50: number[]; p99: number[]; tps: number[] }>();
    const order: SyncContender[] = ['none', 'async', 'sync', 'native'];
    for (let round = 0; round < RUNS; round++) {
      for (const who of round % 2 ? [...order].reverse() : order) {
        let worker: Worker | null = null;
        if (who === 'async' || who === 'sync') {
          worker = startWorker(dir, who === 'async' ? 'basync' : 'bsync');
          await Promise.race([worker.streaming, worker.died]);
          const name = who === 'async' ? 'basync' : 'bsync';
          await Promise.race([
            dst.query(
              `SELECT mirrors.wait_for_lsn($1, $2::pg_lsn, '5 minutes')`,
              [name, await sourceEndLsn(c)],
              `sy_${who}`,
            ),
            worker.died,
          ]);
        }
        if (who === 'native') {
          await dst.query(`ALTER SUBSCRIPTION bnative ENABLE`, [], 'sy_native');
          for (let i = 0; i < 600; i++) {
            const [r] = await c
              .query(
                `SELECT confirmed_flush_lsn >= pg_current_wal_lsn() AS ok FROM pg_replication_slots WHERE slot_name = 'bnative'`,
              )
              .then((x) => x.rows);
            if (r?.ok) break;
            await sleep(100);
          }
        }
        if (who === 'sync') await setNames(listed);
        if (who === 'native') await setNames('ANY 1 (bnative)');
        const [{ n: waiting }] = (
          await c.query(`SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')`)
        ).rows;
        if ((who === 'sync' || who === 'native') !== (waiting === 1))
          throw new Error(
            `${who}: ${waiting} synchronous standbys, expected ${who === 'sync' || who === 'native' ? 1 : 0}`,
          );
        for (const f of readdirSync(logs)) rmSync(join(logs, f));
        const commitsOn = async (db: string) =>
          Number((await dst.query(`SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, [db]))[0].xact_commit);
        const dstDb = `sy_${who}`;
        const commits0 = who === 'none' ? 0 : await commitsOn(dstDb);
        const r = await pgbench([
          '-n',
          '-c',
          '4',
          '-j',
          '2',
          '-T',
          String(SYNC_SECONDS),
          '-l',
          `--log-prefix=${join(logs, 'tx')}`,
          src.url('sy'),
        ]);
        await setNames('');
        if (who !== 'none') {
          // pg_stat_database is updated when a backend reports (about every second): a moment for the last one.
          await sleep(1_200);
          const n = (await commitsOn(dstDb)) - commits0;
          const txns = Number(/number of transactions actually processed: (\d+)/.exec(r.out)?.[1] ?? NaN);
          let applyMs = '';
          if (worker) {
            const text = await fetch(`http://127.0.0.1:${await worker.metricsPort}/metrics`).then((x) => x.text());
            const sum = metric(text, 'mirrors_apply_duration_seconds_sum');
            const count = metric(text, 'mirrors_apply_duration_seconds_count');
            applyMs = `, ${((sum / count) * 1000).toFixed(2)} ms per destination transaction (mirrors_apply_duration_seconds)`;
          }
          console.log(
            `  ${who} round ${round + 1}: ${(n / txns).toFixed(2)} destination commits per source transaction${applyMs}`,
          );
        }
        if (worker) await worker.stop();
        if (who === 'native') await dst.query(`ALTER SUBSCRIPTION bnative DISABLE`, [], 'sy_native');
        const lat = readdirSync(logs).flatMap((f) =>
          readFileSync(join(logs, f), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => Number(l.split(' ')[2]) / 1000),
        );
        const e = results.get(who) ?? { p50: [], p99: [], tps: [] };
        e.p50.push(pct(lat, 50));
        e.p99.push(pct(lat, 99));
        e.tps.push(r.tps);
        results.set(who, e);
      }
    }
    const fmt = (xs: number[]) =>
      `${median(xs).toFixed(2)} ms (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
    const label: Record<SyncContender, string> = {
      none: 'no consumer',
      async: 'async mirror',
      sync: 'sync mirror',
      native: 'native subscription as synchronous standby',
    };
    for (const who of order) {
      const e = results.get(who)!;
      console.log(
        `${label[who]}: p50 ${fmt(e.p50)}, p99 ${fmt(e.p99)}, ${Math.round(median(e.tps))} tps (median of ${RUNS})`,
      );
    }
    const m = (w: SyncContender, k: 'p50' | 'p99') => median(results.get(w)![k]);
    console.log(
      `sync mirror vs async mirror: +${(m('sync', 'p50') - m('async', 'p50')).toFixed(2)} ms p50, +${(m('sync', 'p99') - m('async', 'p99')).toFixed(2)} ms p99; vs native synchronous subscription: p50 ${(m('sync', 'p50') / m('native', 'p50')).toFixed(2)}x, p99 ${(m('sync', 'p99') / m('native', 'p99')).toFixed(2)}x, tps ${(median(results.get('sync')!.tps) / median(results.get('native')!.tps)).toFixed(2)}x`,
    );
    await c.end();
    await dst.query('DROP SUBSCRIPTION bnative', [], 'sy_native');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(logs, { recursive: true, force: true });
    await Promise.all([src.stop(), dst.stop()]);
  }
}

const RESYNC_SCALE = 2;

/**
 * `--replace` of one table with each resync_strategy (issue 11), measured from the command to the table equal to its
 * source again (truncate, swap: the apply; merge: the worker's last chunk), against a COPY pipe into an empty copy of
 * the table with its key, on the same clusters with durable settings, alternating rounds.
 */
async function resyncBench() {
  const [src, dst] = await Promise.all([
    startCluster({ name: 'bench-resync-src', settings: DURABLE }),
    startCluster({ name: 'bench-resync-dst', settings: DURABLE }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-resync-'));
  let worker: Worker | null = null;
  try {
    const rows = RESYNC_SCALE * 100_000;
    console.log(
      `\n# resync: --replace of pgbench_accounts (${rows.toLocaleString('en')} rows, 1% diverged) while the mirror streams, durable settings, ${RUNS} alternating rounds`,
    );
    await src.createDatabase('rs');
    await dst.createDatabase('rs');
    await dst.createDatabase('rs_pipe');
    await sh(`${join(findPgBin(), 'pgbench')} -i -s ${RESYNC_SCALE} -q -I dtgp ${psqlUrl(src, 'rs')} >/dev/null 2>&1`);
    const yaml = (strategy: string) => `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: rs, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: rs, user: postgres, password: postgres }
mirrors:
  rs:
    source: src
    destination: dst
    idle_timeout_seconds: 1
    resync_strategy: ${strategy}
    tables: [{ source_table: pgbench_accounts }]
`;
    writeFileSync(join(dir, 'mirrors.yaml'), yaml('truncate'));
    mirrorsApply(dir);
    worker = startWorker(dir, 'rs');
    await worker.streaming;
    const srcDb = await connect(src.url('rs'));
    const dstDb = await connect(dst.url('rs'));
    const equal = async () => {
      const q = "SELECT md5(string_agg(a::text, ',' ORDER BY aid)) AS h FROM pgbench_accounts a";
      const [s, d] = await Promise.all([srcDb.query(q), dstDb.query(q)]);
      return s.rows[0].h === d.rows[0].h;
    };
    const times: Record<string, number[]> = { pipe: [], truncate: [], swap: [], merge: [] };
    for (let run = 1; run <= RUNS; run++) {
      await dstDb.query(`SET session_replication_role = replica;
        UPDATE pgbench_accounts SET abalance = -1 WHERE aid % 100 = 0; RESET session_replication_role`);
      await dst.query('DROP TABLE IF EXISTS pgbench_accounts', [], 'rs_pipe');
      await dst.query(
        'CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler character(84))',
        [],
        'rs_pipe',
      );
      times.pipe.push(
        await sh(
          `psql -X -q ${psqlUrl(src, 'rs')} -c "COPY pgbench_accounts TO STDOUT" | psql -X -q ${psqlUrl(dst, 'rs_pipe')} -c "COPY pgbench_accounts FROM STDIN"`,
        ),
      );
      for (const strategy of ['truncate', 'swap', 'merge']) {
        await dstDb.query(`SET session_replication_role = replica;
          UPDATE pgbench_accounts SET abalance = -1 WHERE aid % 100 = 0; RESET session_replication_role`);
        writeFileSync(join(dir, 'mirrors.yaml'), yaml(strategy));
        const t0 = performance.now();
        const r = spawnSync(
          process.execPath,
          [CLI, 'apply', '--replace', 'mirror.rs.table.public.pgbench_accounts', '--auto-approve'],
          { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 },
        );
        if (r.status !== 0)
          throw new Error(`apply --replace (${strategy}) failed: ${r.stderr}\n${r.stdout.slice(-3000)}`);
        for (;;) {
          const [t] = (
            await dstDb.query(
              `SELECT state, merge IS NULL AS merged FROM mirrors.tables WHERE mirror = 'rs' AND dest_table = 'pgbench_accounts'`,
            )
          ).rows;
          if (t.state === 'ready' && t.merged) break;
          await new Promise((res) => setTimeout(res, 50));
        }
        times[strategy].push(performance.now() - t0);
        if (!(await equal())) throw new Error(`after --replace with ${strategy} the table differs from its source`);
      }
    }
    const pipe = median(times.pipe);
    console.log(
      `COPY pipe into an empty table with its key: ${secs(pipe)} (median; ${times.pipe.map(secs).join(', ')})`,
    );
    for (const strategy of ['truncate', 'swap', 'merge']) {
      const m = median(times[strategy]);
      console.log(
        `--replace, resync_strategy ${strategy}: ${secs(m)} (median; ${times[strategy].map(secs).join(', ')}); pipe / it = ${(pipe / m).toFixed(2)}; ${Math.round(rows / (m / 1000)).toLocaleString('en')} rows/s`,
      );
    }
    await srcDb.end();
    await dstDb.end();
  } finally {
    await worker?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([src.stop(), dst.stop()]);
  }
}

const VERIFY_SCALE = 5;

/**
 * `mirrors verify` of a streaming mirror, in full and sampled, against the obvious check: one md5 over every row in
 * key order, run on both sides at once (it needs no chunking, drill-down or point; it is right only when the
 * mirror is idle). Durable settings, alternating rounds.
 */
async function verifyBench() {
  const [src, dst] = await Promise.all([
    startCluster({ name: 'bench-verify-src', settings: DURABLE }),
    startCluster({ name: 'bench-verify-dst', settings: DURABLE }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'mirrors-bench-verify-'));
  let worker: Worker | null = null;
  try {
    const rows = VERIFY_SCALE * 100_000;
    console.log(
      `\n# verify: pgbench_accounts (${rows.toLocaleString('en')} rows) of a streaming mirror, durable settings, ${RUNS} alternating rounds`,
    );
    await src.createDatabase('vf');
    await dst.createDatabase('vf');
    await sh(`${join(findPgBin(), 'pgbench')} -i -s ${VERIFY_SCALE} -q -I dtgpv ${psqlUrl(src, 'vf')} >/dev/null 2>&1`);
    writeFileSync(
      join(dir, 'mirrors.yaml'),
      `version: 1
peers:
  src: { host: 127.0.0.1, port: ${src.port}, database: vf, user: postgres, password: postgres }
  dst: { host: 127.0.0.1, port: ${dst.port}, database: vf, user: postgres, password: postgres }
mirrors:
  vf:
    source: src
    destination: dst
    tables: [{ source_table: pgbench_accounts }]
`,
    );
    mirrorsApply(dir);
    worker = startWorker(dir, 'vf');
    await worker.streaming;
    await dst.query('VACUUM ANALYZE pgbench_accounts', [], 'vf');
    const srcDb = await connect(src.url('vf'));
    const dstDb = await connect(dst.url('vf'));
    const q = "SELECT md5(string_agg(a::text, ',' ORDER BY aid)) AS h FROM pgbench_accounts a";
    const times: Record<string, number[]> = { md5: [], full: [], sample: [] };
    const holds: number[] = [];
    const arms: number[] = [];
    /** The run as it measures itself: from its first connection to its result (no process start, no config). */
    const inside: Record<string, number[]> = { full: [], sample: [] };
    const verify = (extra: string[]) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [CLI, 'verify', '--format', 'json', ...extra], {
        cwd: dir,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      });
      if (r.status !== 0)
        throw new Error(`mirrors verify ${extra.join(' ')} exited ${r.status}: ${r.stderr}\n${r.stdout.slice(-3000)}`);
      const report = JSON.parse(r.stdout);
      const mv = report.mirrors[0];
      holds.push(mv.holdMs);
      inside[extra.length ? 'sample' : 'full'].push(mv.seconds * 1000);
      arms.push(mv.armMs);
      return { ms: performance.now() - t0, rows: mv.tables[0].rows.source as number };
    };
    let sampledRows = 0;
    for (let run = 1; run <= RUNS; run++) {
      const t0 = performance.now();
      const [a, b] = await Promise.all([srcDb.query(q), dstDb.query(q)]);
      times.md5.push(performance.now() - t0);
      if (a.rows[0].h !== b.rows[0].h) throw new Error('the mirror differs from its source');
      times.full.push(verify([]).ms);
      const s = verify(['--sample', '0.01']);
      times.sample.push(s.ms);
      sampledRows = s.rows;
    }
    const base = median(times.md5);
    console.log(`md5(string_agg) on both sides at once: ${secs(base)} (median; ${times.md5.map(secs).join(', ')})`);
    for (const [what, label] of [
      ['full', 'mirrors verify (the whole command)'],
      ['sample', `mirrors verify --sample 0.01 (${sampledRows.toLocaleString('en')} rows compared)`],
    ] as const) {
      const m = median(times[what]);
      console.log(
        `${label}: ${secs(m)} (median; ${times[what].map(secs).join(', ')}); md5 / it = ${(base / m).toFixed(2)}; ${Math.round(rows / (m / 1000)).toLocaleString('en')} table rows/s; the run itself ${secs(median(inside[what]))}`,
      );
    }
    console.log(
      `the worker applied nothing while the source's snapshot was taken: ${arms.map((a) => `${a.toFixed(0)} ms`).join(', ')} (median ${median(arms).toFixed(0)} ms)`,
    );
    console.log(
      `the worker held ${holds.map((h) => `${h.toFixed(1)} ms`).join(', ')} at the verify points (median ${median(holds).toFixed(1)} ms)`,
    );
    await srcDb.end();
    await dstDb.end();
  } finally {
    await worker?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([src.stop(), dst.stop()]);
  }
}

async function main() {
  if (!['sync', 'resync', 'verify'].includes(ONLY ?? '')) await benchOnFastClusters();
  if (!ONLY || ONLY === 'sync') await syncBench();
  if (!ONLY || ONLY === 'resync') await resyncBench();
  if (!ONLY || ONLY === 'verify') await verifyBench();
}

/** The sections that run on clusters with fsync, synchronous_commit and full_page_writes off (issue 14 changes that). */
async function benchOnFastClusters() {
  const [src, dst] = await Promise.all([
    startCluster({ name: 'bench-src', settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } }),
    startCluster({ name: 'bench-dst', settings: { max_wal_size: '4GB', checkpoint_timeout: '30min' } }),
  ]);
  try {
    console.log(
      `machine: ${(await import('node:os')).cpus().length} cores; PostgreSQL ${(await src.query('SHOW server_version'))[0].server_version}; node ${process.version}; load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at start`,
    );
    if (!ONLY || ONLY === 'plan') await planBench(src, dst);
    if (!ONLY || ONLY === 'snapshot') await snapshotBench(src, dst);
    if (!ONLY || ONLY === 'catchup') await catchupBench(src, dst);
    if (!ONLY || ONLY === 'steady') await steadyBench(src, dst);
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
}

main().catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
