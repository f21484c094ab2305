/**
 * Prometheus metrics of `mirrors run`, in a registry of their own (never prom-client's global one, so two
 * workers in one process, or two tests, never share series), and the small HTTP server that exposes them:
 * GET /metrics (text exposition) and GET /healthz (JSON; 503 when unhealthy, rules in health.ts). Owns no
 * worker logic: the worker reports through the methods below. Must not print. Names follow Prometheus's
 * conventions (base units, `_total` only on counters) and are checked by `promtool check metrics` in
 * test/e2e/metrics-promtool.test.ts; docs/metrics.md is the reference, kept complete by a unit test.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
// The package's version, read in one place (a constant, not CLI behaviour).
import { VERSION } from '../cli/version.js';
import { MirrorsError } from '../errors.js';
import type { HealthReport } from './health.js';
import { DEFAULT_METRICS_HOST } from './metrics-address.js';

/** Every status a mirror may report; setStatus sets one of them to 1 and the others to 0. */
export const METRIC_STATUSES = [
  'Starting',
  'Standby',
  'Bootstrapping',
  'Following',
  'Degraded',
  'Disconnected',
  'Paused',
  'Failed',
  'Promoted',
  'Stopped',
] as const;

/** pg_replication_slots.wal_status values (PostgreSQL 13+). */
export const WAL_STATUSES = ['reserved', 'extended', 'unreserved', 'lost'] as const;
/** pg_stat_replication.sync_state, and `none` when no walsender serves the slot. */
export const SYNC_STATES = ['sync', 'quorum', 'potential', 'async', 'none'] as const;

/**
 * Why a worker session ended (docs/metrics.md says what each means). Promotion ends a worker too, but it
 * is not an error and is not counted.
 */
export const ERROR_KINDS = ['transient', 'catalog_changed', 'paused', 'drift', 'gap', 'fatal'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** 1 ms .. 10 s: a batch of one small transaction to a large batch under load. */
export const APPLY_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type RowOp = 'insert' | 'update' | 'delete' | 'truncate';

/** A mirror's lag as the worker sees it at this instant; null: not known (the series is left out). */
export interface LagReading {
  seconds: number | null;
  bytes: bigint | null;
}

export interface SlotReading {
  /** pg_wal_lsn_diff(current WAL position, restart_lsn): WAL the slot keeps on the source's disk. */
  retainedBytes: bigint | null;
  /** pg_replication_slots.wal_status; null when the server does not say (no restart_lsn yet). */
  walStatus: string | null;
  exists: boolean;
  /** Sync mirrors: pg_stat_replication.sync_state of the walsender serving the slot, null when none does. */
  syncState?: string | null;
}

/**
 * Node's default metrics that prom-client names `*_total` although they are gauges: promtool rejects them
 * ("non-counter metrics should not have _total suffix"). Their values are `sum without (type)` of the
 * per-type gauges it also exports (nodejs_active_handles, ...), which stay.
 */
const MISNAMED_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export class WorkerMetrics {
  readonly registry: Registry;
  private readonly status: Gauge<'mirror' | 'status'>;
  private readonly rows: Counter<'mirror' | 'table' | 'op'>;
  private readonly batches: Counter<'mirror'>;
  private readonly changes: Counter<'mirror'>;
  private readonly transactions: Counter<'mirror'>;
  private readonly applySeconds: Histogram<'mirror'>;
  private readonly reconnects: Counter<'mirror' | 'peer'>;
  private readonly missingRows: Counter<'mirror'>;
  private readonly errors: Counter<'mirror' | 'kind'>;
  private readonly lastLsn: Gauge<'mirror'>;
  private readonly lastCommit: Gauge<'mirror'>;
  private readonly slotExists: Gauge<'mirror'>;
  private readonly slotRetained: Gauge<'mirror'>;
  private readonly slotWalStatus: Gauge<'mirror' | 'wal_status'>;
  private readonly snapshotDone: Gauge<'mirror'>;
  private readonly snapshotTotal: Gauge<'mirror'>;
  private readonly syncState: Gauge<'mirror' | 'sync_state'>;
  private readonly syncDegraded: Gauge<'mirror'>;
  private readonly verifyFinished: Gauge<'mirror'>;
  private readonly verifyDiffering: Gauge<'mirror'>;
  private readonly verifyHold: Gauge<'mirror'>;
  /** Read at every scrape, so a worker stuck between batches shows its lag growing. */
  private readonly lagReaders = new Map<string, () => LagReading>();
  /** Label values set per mirror beyond the known lists, so that a later value zeroes them too. */
  private readonly statusesSeen = new Map<string, Set<string>>();
  private readonly walStatusesSeen = new Map<string, Set<string>>();
  private readonly syncStatesSeen = new Map<string, Set<string>>();
  private readonly seen = new Set<string>();

  constructor() {
    this.registry = new Registry();
    const registers = [this.registry];
    // Standard names (process_*, nodejs_*), no prefix: dashboards and alerts written for any Node
    // service then work as they are.
    collectDefaultMetrics({ register: this.registry });
    for (const name of MISNAMED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);

    new Gauge({
      name: 'mirrors_build_info',
      help: 'Always 1; the labels say which mirrors and Node.js this worker runs',
      labelNames: ['version', 'node_version'],
      registers,
    }).set({ version: VERSION, node_version: process.versions.node }, 1);
    this.status = new Gauge({
      name: 'mirrors_status',
      help: 'Current status of the mirror: 1 for the status it is in, 0 for the others',
      labelNames: ['mirror', 'status'],
      registers,
    });
    const lagReaders = this.lagReaders;
    const readLag = (mirror: string): LagReading => {
      try {
        return lagReaders.get(mirror)?.() ?? { seconds: null, bytes: null };
      } catch {
        // One mirror's broken reading must not fail the whole scrape (Prometheus would mark every
        // mirror of this process down); its series are left out instead.
        return { seconds: null, bytes: null };
      }
    };
    // Both gauges read the same callback once each per scrape: they are collected one after the other,
    // and a reading is cheap (the worker keeps its positions in memory).
    new Gauge({
      name: 'mirrors_lag_seconds',
      help: 'Replication lag at scrape time: age of the last applied source commit while behind, 0 when caught up',
      labelNames: ['mirror'],
      registers,
      collect() {
        this.reset();
        for (const mirror of lagReaders.keys()) {
          const s = readLag(mirror).seconds;
          if (s !== null) this.set({ mirror }, s);
        }
      },
    });
    new Gauge({
      name: 'mirrors_lag_bytes',
      help: 'WAL bytes between the source position and the last applied position, at scrape time',
      labelNames: ['mirror'],
      registers,
      collect() {
        this.reset();
        for (const mirror of lagReaders.keys()) {
          const b = readLag(mirror).bytes;
          if (b !== null) this.set({ mirror }, Number(b));
        }
      },
    });
    this.rows = new Counter({
      name: 'mirrors_rows_applied_total',
      help: 'Rows applied to the destination, by table and operation',
      labelNames: ['mirror', 'table', 'op'],
      registers,
    });
    this.batches = new Counter({
      name: 'mirrors_batches_total',
      help: 'Destination transactions (batches) committed',
      labelNames: ['mirror'],
      registers,
    });
    this.changes = new Counter({
      name: 'mirrors_changes_applied_total',
      help: 'Row changes applied, all tables and operations',
      labelNames: ['mirror'],
      registers,
    });
    this.transactions = new Counter({
      name: 'mirrors_transactions_applied_total',
      help: 'Source transactions applied',
      labelNames: ['mirror'],
      registers,
    });
    this.applySeconds = new Histogram({
      name: 'mirrors_apply_duration_seconds',
      help: 'Time to apply and commit one batch',
      labelNames: ['mirror'],
      buckets: APPLY_DURATION_BUCKETS,
      registers,
    });
    this.reconnects = new Counter({
      name: 'mirrors_reconnects_total',
      help: 'Reconnections after a lost connection, by peer',
      labelNames: ['mirror', 'peer'],
      registers,
    });
    this.missingRows = new Counter({
      name: 'mirrors_missing_rows_total',
      help: 'Updates and deletes that found no row on the destination (it differs from the source)',
      labelNames: ['mirror'],
      registers,
    });
    this.errors = new Counter({
      name: 'mirrors_errors_total',
      help: 'Errors that ended a worker session, by kind (transient, catalog_changed, paused, drift, gap, fatal)',
      labelNames: ['mirror', 'kind'],
      registers,
    });
    this.lastLsn = new Gauge({
      name: 'mirrors_last_applied_lsn_bytes',
      help: 'Last applied source LSN as a WAL byte position (exact to 2^53 only: for graphs and rates, not for positions)',
      labelNames: ['mirror'],
      registers,
    });
    this.lastCommit = new Gauge({
      name: 'mirrors_last_commit_timestamp_seconds',
      help: 'Source commit time of the last applied transaction (Unix seconds)',
      labelNames: ['mirror'],
      registers,
    });
    this.slotExists = new Gauge({
      name: 'mirrors_slot_exists',
      help: "1 while the mirror's replication slot exists on the source, 0 when it is missing",
      labelNames: ['mirror'],
      registers,
    });
    this.slotRetained = new Gauge({
      name: 'mirrors_slot_retained_wal_bytes',
      help: "WAL the mirror's slot keeps on the source (current WAL position minus the slot's restart_lsn)",
      labelNames: ['mirror'],
      registers,
    });
    this.slotWalStatus = new Gauge({
      name: 'mirrors_slot_wal_status',
      help: "The slot's wal_status: 1 for the current one, 0 for the others; all 0 when the slot is missing",
      labelNames: ['mirror', 'wal_status'],
      registers,
    });
    this.snapshotDone = new Gauge({
      name: 'mirrors_snapshot_done_bytes',
      help: 'Bytes copied so far by the snapshot (initial copy or resync) of the mirror',
      labelNames: ['mirror'],
      registers,
    });
    this.syncState = new Gauge({
      name: 'mirrors_sync_state',
      help: "Sync mirrors: whether the source counts the mirror's walsender as synchronous (pg_stat_replication.sync_state: sync or quorum means source commits wait for it); 1 for the current state, none when no walsender serves it",
      labelNames: ['mirror', 'sync_state'],
      registers,
    });
    this.syncDegraded = new Gauge({
      name: 'mirrors_sync_degraded',
      help: 'Sync mirrors: 1 while the degrade policy (on_sync_loss: degrade_after) has taken the mirror out of synchronous_standby_names, so source commits do not wait for it',
      labelNames: ['mirror'],
      registers,
    });
    this.verifyFinished = new Gauge({
      name: 'mirrors_verify_last_run_timestamp_seconds',
      help: 'When the last `mirrors verify` of the mirror finished (Unix seconds)',
      labelNames: ['mirror'],
      registers,
    });
    this.verifyDiffering = new Gauge({
      name: 'mirrors_verify_tables_differing',
      help: 'Tables the last `mirrors verify` of the mirror found different from the source',
      labelNames: ['mirror'],
      registers,
    });
    this.verifyHold = new Gauge({
      name: 'mirrors_verify_hold_seconds',
      help: 'How long the worker applied nothing at the point of the last `mirrors verify` (while the run opened its destination snapshot)',
      labelNames: ['mirror'],
      registers,
    });
    this.snapshotTotal = new Gauge({
      name: 'mirrors_snapshot_total_bytes',
      help: 'Estimated bytes the snapshot of the mirror copies in all (the size of its tables when it started)',
      labelNames: ['mirror'],
      registers,
    });
  }

  /**
   * The first time a mirror appears, its counters start at 0 (every error kind, both peers), so rate()
   * and increase() see the first increment instead of a series that starts at 1.
   */
  private see(mirror: string): void {
    if (this.seen.has(mirror)) return;
    this.seen.add(mirror);
    for (const kind of ERROR_KINDS) this.errors.inc({ mirror, kind }, 0);
    for (const peer of ['source', 'destination']) this.reconnects.inc({ mirror, peer }, 0);
    for (const c of [this.batches, this.changes, this.transactions, this.missingRows]) c.inc({ mirror }, 0);
  }

  setStatus(mirror: string, status: string): void {
    this.see(mirror);
    setOneOf(this.status, mirror, 'status', status, METRIC_STATUSES, this.statusesSeen);
  }

  /**
   * Registers the worker's lag reading for scrapes. A reading with a null field leaves that series out:
   * no value is better than a stale one. A second call for the same mirror replaces the first.
   */
  trackLag(mirror: string, read: () => LagReading): void {
    this.see(mirror);
    this.lagReaders.set(mirror, read);
  }

  untrackLag(mirror: string): void {
    this.lagReaders.delete(mirror);
  }

  /**
   * The slot's state as last inspected. A missing slot keeps its wal_status series at 0 (so "no status
   * is 1" can be alerted on) and drops the retained-bytes series (nothing is retained, but 0 would read
   * as a healthy slot).
   */
  setSlot(mirror: string, s: SlotReading): void {
    this.see(mirror);
    this.slotExists.set({ mirror }, s.exists ? 1 : 0);
    if (s.exists && s.retainedBytes !== null) this.slotRetained.set({ mirror }, Number(s.retainedBytes));
    else this.slotRetained.remove({ mirror });
    setOneOf(
      this.slotWalStatus,
      mirror,
      'wal_status',
      s.exists ? s.walStatus : null,
      WAL_STATUSES,
      this.walStatusesSeen,
    );
    if (s.syncState !== undefined) this.setSyncState(mirror, s.syncState);
  }

  /** A sync mirror's walsender state (its worker's reading, or a guardian's: either may be the one still up). */
  setSyncState(mirror: string, state: string | null): void {
    setOneOf(this.syncState, mirror, 'sync_state', state ?? 'none', SYNC_STATES, this.syncStatesSeen);
  }

  /** The degrade policy's verdict on a sync mirror (worker/sync-guardian.ts). */
  setSyncDegraded(mirror: string, degraded: boolean): void {
    this.syncDegraded.set({ mirror }, degraded ? 1 : 0);
  }

  error(mirror: string, kind: ErrorKind): void {
    this.see(mirror);
    this.errors.inc({ mirror, kind });
  }

  setSnapshotProgress(mirror: string, done: bigint, total: bigint): void {
    this.see(mirror);
    this.snapshotDone.set({ mirror }, Number(done));
    this.snapshotTotal.set({ mirror }, Number(total));
  }

  /** The last finished `mirrors verify` (from the catalog). */
  setVerify(mirror: string, v: { finishedAtMs: number; tablesDiffering: number; holdMs: number | null }): void {
    this.see(mirror);
    this.verifyFinished.set({ mirror }, v.finishedAtMs / 1000);
    this.verifyDiffering.set({ mirror }, v.tablesDiffering);
    if (v.holdMs !== null) this.verifyHold.set({ mirror }, v.holdMs / 1000);
  }

  rowsApplied(mirror: string, table: string, op: RowOp, n: number): void {
    this.see(mirror);
    if (n > 0) this.rows.inc({ mirror, table, op }, n);
  }

  batchApplied(mirror: string, changes: number, transactions: number, seconds: number, missingRows = 0): void {
    this.see(mirror);
    this.batches.inc({ mirror });
    this.missingRows.inc({ mirror }, missingRows);
    if (changes > 0) this.changes.inc({ mirror }, changes);
    if (transactions > 0) this.transactions.inc({ mirror }, transactions);
    this.applySeconds.observe({ mirror }, Math.max(0, seconds));
  }

  reconnect(mirror: string, peer: 'source' | 'destination'): void {
    this.see(mirror);
    this.reconnects.inc({ mirror, peer });
  }

  setLastApplied(mirror: string, lsn: bigint, commitTimeMs: number): void {
    this.see(mirror);
    this.lastLsn.set({ mirror }, Number(lsn));
    this.lastCommit.set({ mirror }, commitTimeMs / 1000);
  }
}

/**
 * An enum as a gauge per value: 1 for `value`, 0 for every known value and every value this mirror has
 * had before (a value outside the list must not stay at 1 after the mirror moves on). A null value sets
 * them all to 0.
 */
function setOneOf<L extends string>(
  gauge: Gauge<'mirror' | L>,
  mirror: string,
  label: L,
  value: string | null,
  known: readonly string[],
  seen: Map<string, Set<string>>,
): void {
  let extra = seen.get(mirror);
  if (!extra) seen.set(mirror, (extra = new Set()));
  if (value !== null && !known.includes(value)) extra.add(value);
  for (const v of [...known, ...extra]) {
    gauge.set({ mirror, [label]: v } as Record<'mirror' | L, string>, v === value ? 1 : 0);
  }
}

/**
 * Serves GET /metrics and GET /healthz on host:port (port 0 picks a free port; the bound one is returned).
 * Anything else is 404. close() also drops idle keep-alive connections, so shutdown is not held up.
 */
export async function startMetricsServer(
  metrics: WorkerMetrics,
  port: number,
  host: string | undefined = DEFAULT_METRICS_HOST,
  health: () => HealthReport,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'GET' && path === '/metrics') {
      metrics.registry.metrics().then(
        (body) => send(200, metrics.registry.contentType, body),
        (err: unknown) =>
          send(
            500,
            'text/plain; charset=utf-8',
            `cannot collect metrics: ${err instanceof Error ? err.message : String(err)}\n`,
          ),
      );
      return;
    }
    if (req.method === 'GET' && path === '/healthz') {
      let h: HealthReport & { error?: string };
      try {
        h = health();
      } catch (err) {
        h = { ok: false, mirrors: {}, error: err instanceof Error ? err.message : String(err) };
      }
      send(h.ok ? 200 : 503, 'application/json', JSON.stringify(h) + '\n');
      return;
    }
    send(404, 'text/plain; charset=utf-8', 'not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MirrorsError('USAGE', `cannot serve metrics on ${host}:${port}: ${err.code ?? err.message}`, {
          hint:
            err.code === 'EADDRINUSE'
              ? 'another process uses this port: choose another one'
              : 'check the metrics host and port',
          cause: err,
        }),
      ),
    );
    server.listen(port, host, () => {
      // Later errors (e.g. accept failing under EMFILE) must not crash the worker the metrics describe.
      server.removeAllListeners('error');
      server.on('error', () => {});
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
