/**
 * The worker lease (DESIGN.md invariant 9) under a network partition. Worker A reaches the destination
 * through a proxy (test/support/proxy.ts), worker B directly; both run the same mirror. A black hole on A's
 * path keeps every socket open and the proxy's kernel answers TCP keepalives, so the destination's
 * tcp_keepalives_* cannot notice: only the worker's own session timeouts (idle_session_timeout and
 * idle_in_transaction_session_timeout, PG 14+) end A's session on the destination, and with it the lease.
 *
 * Specified here: A loses the lease within about 30 s, B takes over and streams, the two never commit for
 * the mirror at the same time (proved from a commit log written on the destination itself, not from the
 * workers' logs), A ends up a standby (or exits cleanly) once the network heals, and nothing is lost or
 * applied twice. Twice: once with A's session cut in the middle of a batch (left idle in transaction), once
 * between batches (left idle), since a different server timeout has to end each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { LEASE_CLASS } from '../../src/worker/lease-key.js';
import { runCli } from '../support/cli.js';
import { useClusters } from '../support/clusters.js';
import { peerYaml, tempProject } from '../support/project.js';
import { startProxy } from '../support/proxy.js';
import { startWorker, type RunningWorker } from '../support/worker.js';

const env = { PGPASS_TEST: 'postgres' };
// track_commit_timestamp: the commit log below is ordered by each transaction's real commit time, not by
// when a trigger ran inside it. synchronous_commit=on: the load's acknowledged commits are the reference.
const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on', track_commit_timestamp: 'on' } });
// After each case, not at the end of the file: a failed case must not leave its workers and load running.
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** "Within about 30 s", plus slack for a loaded 2-core machine. */
const LEASE_LOSS_MS = 35_000;
/** Blackhole to B's first commit: the lease, the slot (A must let go of it too), the first batch. */
const TAKEOVER_MS = 45_000;
/** How long we watch for a takeover before reporting what happened instead. */
const WATCH_MS = 60_000;
/** Between two source transactions of the load: steady, and light enough for 2 cores. */
const LOAD_PAUSE_MS = 5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The commit log on the destination. Its rows are written inside the transactions they describe, so only
 * committed ones exist (a batch rolled back, or whose session was ended before COMMIT, leaves none), and
 * each row's xmin names its transaction, whose commit time pg_xact_commit_timestamp gives. The worker runs
 * with session_replication_role=replica, where ordinary triggers do not fire: these are ENABLE ALWAYS.
 */
const PROBE_SQL = `
CREATE SCHEMA probe;
CREATE TABLE probe.commits (pid int NOT NULL, client_port int, what text NOT NULL);
CREATE FUNCTION probe.position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO probe.commits VALUES (pg_backend_pid(), inet_client_port(), 'position');
  RETURN NULL;
END $$;
CREATE FUNCTION probe.data() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO probe.commits VALUES (pg_backend_pid(), inet_client_port(), TG_OP || ' ' || TG_TABLE_NAME);
  RETURN NULL;
END $$;
-- A batch commit moves the position (record_batch), and so does an idle worker's record_caught_up.
CREATE TRIGGER probe_position AFTER UPDATE OF last_applied_lsn ON mirrors.mirrors FOR EACH ROW
  WHEN (OLD.last_applied_lsn IS DISTINCT FROM NEW.last_applied_lsn) EXECUTE FUNCTION probe.position();
ALTER TABLE mirrors.mirrors ENABLE ALWAYS TRIGGER probe_position;
CREATE TRIGGER probe_data AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.accounts
  FOR EACH STATEMENT EXECUTE FUNCTION probe.data();
ALTER TABLE public.accounts ENABLE ALWAYS TRIGGER probe_data;
CREATE TRIGGER probe_data AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ledger
  FOR EACH STATEMENT EXECUTE FUNCTION probe.data();
ALTER TABLE public.ledger ENABLE ALWAYS TRIGGER probe_data;
`;

/** One committed destination transaction that wrote the mirror's data or position. */
interface Commit {
  xid: string;
  pid: number;
  port: number | null;
  /** Commit time, ms since the epoch (same host clock as Date.now()). */
  at: number;
  what: string;
}

const COMMITS_SQL = `
SELECT xid, min(pid) AS pid, min(client_port) AS port, string_agg(DISTINCT what, ', ') AS what,
       (extract(epoch FROM min(ts)) * 1000)::float8 AS at
  FROM (SELECT xmin::text AS xid, pid, client_port, what, pg_xact_commit_timestamp(xmin) AS ts FROM probe.commits) c
 GROUP BY xid ORDER BY at, xid`;

/** The session holding the worker lease of mirror $2 in this database (see src/status/collect.ts LEASE_SQL). */
const HOLDER_SQL = `
SELECT a.pid, a.client_port AS port FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = $1::int::oid AND l.objid = hashtext($2::text)::oid AND l.objsubid = 2 AND l.granted`;

const tail = (text: string, lines = 25) => text.trimEnd().split('\n').slice(-lines).join('\n');

interface Case {
  title: string;
  /** The state A's destination session must be left in by the black hole. */
  cutIn: 'idle in transaction' | 'idle';
  /**
   * A keyless ledger (REPLICA IDENTITY FULL) makes every batch exact-order, one round trip per change, so
   * A's session spends most of its time idle in transaction; with keys only, a batch is one round trip
   * and the session is idle between batches. Either way a transaction applied twice shows: as a duplicate
   * row in the keyless ledger, as a gap or difference in the full comparison.
   */
  keyless: boolean;
}

const CASES: Case[] = [
  {
    title:
      'cut mid-batch (idle in transaction): A loses the lease within 30 s (measured ~15 s), B takes over, never two at once, nothing lost or doubled',
    cutIn: 'idle in transaction',
    keyless: true,
  },
  {
    title:
      'cut between batches (idle): A loses the lease within 30 s (measured ~15 s), B takes over, never two at once, nothing lost or doubled',
    cutIn: 'idle',
    keyless: false,
  },
];

/** Between tries at cutting A's session in the wanted state; far below every timeout involved. */
const TRY_CUT_MS = 300;

let n = 0;

async function partition({ cutIn, keyless }: Case) {
  // Slots are per cluster: each case has its own mirror (and database).
  const db = `part${++n}`;
  const mirror = db;
  await clusters.src.createDatabase(db);
  await clusters.dst.createDatabase(db);
  const src = (sql: string, params: unknown[] = []) => clusters.src.query(sql, params, db);
  const dst = (sql: string, params: unknown[] = []) => clusters.dst.query(sql, params, db);
  await src(`CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0, last_seq bigint);
             INSERT INTO accounts (id) SELECT generate_series(0, 99);
             CREATE TABLE ledger (seq bigint NOT NULL${keyless ? '' : ' PRIMARY KEY'}, at timestamptz NOT NULL);
             ${keyless ? 'ALTER TABLE ledger REPLICA IDENTITY FULL;' : ''}`);

  const proxy = await startProxy(clusters.dst.port);
  cleanups.push(() => proxy.close());
  const proxied = (port: number | null) => port !== null && proxy.upstreamPorts.has(port);

  // Two projects declaring the same mirror; only the destination's port differs. B's applies it.
  const project = (destinationPeer: string) =>
    tempProject(
      `version: 1\npeers:\n${peerYaml('prod', clusters.src, db)}${destinationPeer}mirrors:\n  ${mirror}:\n    source: prod\n    destination: staging\n    idle_timeout_seconds: 1\n    max_batch_size: 50\n    tables:\n      - source_table: accounts\n      - source_table: ledger\n`,
    );
  const direct = peerYaml('staging', clusters.dst, db);
  const viaProxy = direct.replace(`port: ${clusters.dst.port},`, `port: ${proxy.port},`);
  expect(viaProxy).not.toBe(direct);
  const projectA = project(viaProxy);
  const projectB = project(direct);
  cleanups.push(projectA.cleanup, projectB.cleanup);
  const applied = await runCli(['apply', '--auto-approve'], { cwd: projectB.dir, env, timeoutMs: 120_000 });
  if (applied.code !== 0) throw new Error(`apply failed: ${applied.stdout}\n${applied.stderr}`);
  await dst(PROBE_SQL);

  const start = (dir: string): RunningWorker => {
    const w = startWorker(dir, env);
    cleanups.push(() => (w.child.exitCode === null ? w.kill9() : undefined));
    return w;
  };
  const holder = async (): Promise<{ pid: number; port: number | null } | undefined> =>
    (await dst(HOLDER_SQL, [LEASE_CLASS, mirror]))[0];
  const commits = async (): Promise<Commit[]> => dst(COMMITS_SQL);

  const a = start(projectA.dir);
  await a.waitForLog(/streaming from/);
  const b = start(projectB.dir);
  await b.waitForLog(/waiting as a standby/);

  // The steady load: one transaction at a time, each a ledger row numbered seq and an account update.
  const load = new pg.Client({ connectionString: clusters.src.url(db) });
  load.on('error', () => {});
  await load.connect();
  cleanups.push(() => load.end().catch(() => {}));
  let stopLoad = false;
  let seq = 0;
  const loading = (async () => {
    while (!stopLoad) {
      const s = seq + 1;
      await load.query(
        `BEGIN; INSERT INTO ledger VALUES (${s}, clock_timestamp()); UPDATE accounts SET balance = balance + ${s}, last_seq = ${s} WHERE id = ${s % 100}; COMMIT;`,
      );
      seq = s;
      await sleep(LOAD_PAUSE_MS);
    }
  })();
  cleanups.push(async () => {
    stopLoad = true;
    await loading.catch(() => {});
  });

  // A streams through the proxy: it holds the lease from a proxied session and commits batches.
  const warmDeadline = Date.now() + 30_000;
  while ((await commits()).filter((c) => c.what.includes('position') && proxied(c.port)).length < 5) {
    if (Date.now() > warmDeadline) throw new Error(`A committed no batches:\n${tail(a.logs())}`);
    await sleep(200);
  }
  const aHolder = await holder();
  expect(aHolder && proxied(aHolder.port)).toBe(true);
  const aPid = aHolder!.pid;

  // The partition, at a moment A's session is left in the wanted state: a black hole, and if the session
  // turns out to be in another state once nothing moves any more, heal and try again a little later. A
  // hold of TRY_CUT_MS is harmless (every timeout involved is in seconds).
  const sessionState = async () =>
    (await dst(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [aPid]))[0]?.state ?? 'gone';
  let t0 = 0;
  const seen: string[] = [];
  for (let i = 0; i < 30 && !t0; i++) {
    const at = Date.now();
    proxy.blackhole();
    await sleep(TRY_CUT_MS);
    const state = await sessionState();
    if (state === cutIn) t0 = at;
    else {
      seen.push(state);
      proxy.heal();
      await sleep(50 + Math.random() * 500);
    }
  }
  if (!t0) throw new Error(`could not cut A's session while ${cutIn}: it was ${seen.join(', ')}`);
  let leaseLostMs: number | undefined;
  let bFirst: Commit | undefined;
  while (!bFirst) {
    const h = await holder();
    if (leaseLostMs === undefined && h?.pid !== aPid) leaseLostMs = Date.now() - t0;
    bFirst = (await commits()).find((c) => c.at >= t0 && !proxied(c.port));
    if (bFirst) break;
    if (Date.now() - t0 > WATCH_MS) {
      // What happened instead: where A's destination session is, and who holds the lease and the slot.
      const session = await dst(
        `SELECT state, wait_event_type, wait_event, round(extract(epoch FROM now() - state_change)) AS for_s, left(query, 60) AS query
           FROM pg_stat_activity WHERE pid = $1`,
        [aPid],
      );
      const slot = await src(
        `SELECT slot_name, active, active_pid FROM pg_replication_slots WHERE database = current_database()`,
      );
      throw new Error(
        `no takeover ${WATCH_MS / 1000} s after the black hole (A cut while ${cutIn}): ` +
          `lease ${leaseLostMs === undefined ? `still held by A's session ${aPid}` : `lost by A after ${leaseLostMs} ms, held now by ${JSON.stringify(h ?? null)}`}; ` +
          `A's destination session: ${JSON.stringify(session[0] ?? 'gone')}; source slot: ${JSON.stringify(slot)}\n` +
          `--- B since the black hole ---\n${tail(b.logs())}\n--- A ---\n${tail(a.logs(), 10)}`,
      );
    }
    await sleep(250);
  }
  const takeoverMs = bFirst.at - t0;
  console.log(
    `partition (A cut while ${cutIn}, after ${seen.length} other tries): ` +
      `A lost the lease ${((leaseLostMs ?? takeoverMs) / 1000).toFixed(1)} s after the black hole; ` +
      `B's first commit ${(takeoverMs / 1000).toFixed(1)} s after it`,
  );
  expect(leaseLostMs).toBeLessThanOrEqual(LEASE_LOSS_MS);
  expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_MS);

  // B streams on, still during the partition.
  const more = Date.now() + 20_000;
  while ((await commits()).filter((c) => c.at > bFirst.at && c.pid === bFirst.pid).length < 3) {
    if (Date.now() > more) throw new Error(`B stopped committing after its first batch:\n${tail(b.logs())}`);
    await sleep(200);
  }

  // Heal: A hears at last that its session was ended, and must come back as a standby (or exit cleanly).
  const healedAt = a.logs().length;
  proxy.heal();
  const standbyDeadline = Date.now() + 30_000;
  while (!/waiting as a standby/.test(a.logs().slice(healedAt))) {
    if (a.child.exitCode === 0) break;
    if (a.child.exitCode !== null) throw new Error(`A exited ${a.child.exitCode} after the heal:\n${tail(a.logs())}`);
    if (Date.now() > standbyDeadline) throw new Error(`A is not a standby 30 s after the heal:\n${tail(a.logs())}`);
    await sleep(100);
  }
  const h = await holder();
  expect(h && !proxied(h.port)).toBe(true); // B still holds the lease

  stopLoad = true;
  await loading;
  const [{ lsn }] = await src('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  await dst(`SELECT mirrors.wait_for_lsn($1, $2::pg_lsn, '60 seconds')`, [mirror, lsn]);

  // Nothing lost, nothing doubled: full contents, and each seq exactly once in the ledger (where a doubled
  // transaction can only show when it is keyless: a key would turn the second insert into an upsert).
  const rows = async (q: (sql: string) => Promise<{ r: string }[]>, table: string) =>
    (await q(`SELECT x::text AS r FROM ${table} x ORDER BY 1`)).map((r) => r.r);
  for (const table of ['accounts', 'ledger']) expect(await rows(dst, table)).toEqual(await rows(src, table));
  expect(seq).toBeGreaterThan(100);
  expect(
    (
      await dst(
        `SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d, min(seq)::int AS lo, max(seq)::int AS hi FROM ledger`,
      )
    )[0],
  ).toEqual({ n: seq, d: seq, lo: 1, hi: seq });

  // Never two at once: in commit order, each session's commits form one unbroken run. A's run ends before
  // B's first commit, and no session through the proxy commits anything after it.
  const log = await commits();
  const runs: Commit[][] = [];
  for (const c of log) {
    if (runs.at(-1)?.[0].pid === c.pid) runs.at(-1)!.push(c);
    else runs.push([c]);
  }
  const describeRuns = runs
    .map(
      (r) =>
        `${proxied(r[0].port) ? 'A' : 'B'} pid ${r[0].pid}: ${r.length} commits, ${((r[0].at - t0) / 1000).toFixed(2)} s .. ${((r.at(-1)!.at - t0) / 1000).toFixed(2)} s`,
    )
    .join('\n');
  expect(new Set(runs.map((r) => r[0].pid)).size, `sessions interleave:\n${describeRuns}`).toBe(runs.length);
  expect(runs[0][0].pid, describeRuns).toBe(aPid);
  expect(
    log.filter((c) => c.at >= bFirst.at && proxied(c.port)),
    describeRuns,
  ).toEqual([]);
  console.log(`partition: commit runs (times relative to the black hole)\n${describeRuns}`);

  expect(await b.stop()).toBe(0);
  if (a.child.exitCode === null) expect(await a.stop()).toBe(0);
}

describe('the worker lease under a network partition', () => {
  for (const c of CASES) it(c.title, () => partition(c), 150_000);
});
