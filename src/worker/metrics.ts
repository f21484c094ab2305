/**
 * Prometheus metrics of `mirrors run`, in a registry of their own (never prom-client's global one, so two
 * workers in one process, or two tests, never share series), and the small HTTP server that exposes them:
 * GET /metrics (text exposition) and GET /healthz (JSON; 503 when unhealthy). Owns no worker logic: the
 * worker reports through the methods below. Must not print.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MirrorsError } from '../errors.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every status a mirror may report; setStatus sets one of them to 1 and the others to 0. */
export const METRIC_STATUSES = [
  'Bootstrapping',
  'Following',
  'Degraded',
  'Disconnected',
  'Paused',
  'Failed',
  'Promoted',
  'Standby',
];

/** 1 ms .. 10 s: a batch of one small transaction to a large batch under load. */
export const APPLY_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type RowOp = 'insert' | 'update' | 'delete' | 'truncate';

export class WorkerMetrics {
  readonly registry: Registry;
  private readonly status: Gauge<'mirror' | 'status'>;
  private readonly lagMs: Gauge<'mirror'>;
  private readonly lagBytes: Gauge<'mirror'>;
  private readonly rows: Counter<'mirror' | 'table' | 'op'>;
  private readonly batches: Counter<'mirror'>;
  private readonly changes: Counter<'mirror'>;
  private readonly transactions: Counter<'mirror'>;
  private readonly applySeconds: Histogram<'mirror'>;
  private readonly reconnects: Counter<'mirror' | 'peer'>;
  private readonly missingRows: Counter<'mirror'>;
  private readonly lastLsn: Gauge<'mirror'>;
  private readonly lastCommit: Gauge<'mirror'>;

  constructor() {
    this.registry = new Registry();
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mirrors_' });
    this.status = new Gauge({
      name: 'mirrors_status',
      help: 'Current status of the mirror: 1 for the status it is in, 0 for the others',
      labelNames: ['mirror', 'status'],
      registers,
    });
    this.lagMs = new Gauge({
      name: 'mirrors_lag_milliseconds',
      help: 'Replication lag: age of the last applied source commit when behind, 0 when caught up',
      labelNames: ['mirror'],
      registers,
    });
    this.lagBytes = new Gauge({
      name: 'mirrors_lag_bytes',
      help: 'WAL bytes between the source position and the last applied position',
      labelNames: ['mirror'],
      registers,
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
    this.lastLsn = new Gauge({
      name: 'mirrors_last_applied_lsn',
      help: 'Last applied source LSN as a number (precise to 2^53 only: for graphs and rates, not for positions)',
      labelNames: ['mirror'],
      registers,
    });
    this.lastCommit = new Gauge({
      name: 'mirrors_last_commit_timestamp_seconds',
      help: 'Source commit time of the last applied transaction (Unix seconds)',
      labelNames: ['mirror'],
      registers,
    });
  }

  setStatus(mirror: string, status: string): void {
    for (const s of new Set([...METRIC_STATUSES, status])) this.status.set({ mirror, status: s }, s === status ? 1 : 0);
  }

  /** A null lagBytes removes the series: no value is better than a stale one. */
  setLag(mirror: string, lagMs: number, lagBytes: bigint | null): void {
    this.lagMs.set({ mirror }, lagMs);
    if (lagBytes === null) this.lagBytes.remove({ mirror });
    else this.lagBytes.set({ mirror }, Number(lagBytes));
  }

  rowsApplied(mirror: string, table: string, op: RowOp, n: number): void {
    if (n > 0) this.rows.inc({ mirror, table, op }, n);
  }

  batchApplied(mirror: string, changes: number, transactions: number, seconds: number, missingRows = 0): void {
    this.batches.inc({ mirror });
    this.missingRows.inc({ mirror }, missingRows);
    if (changes > 0) this.changes.inc({ mirror }, changes);
    if (transactions > 0) this.transactions.inc({ mirror }, transactions);
    this.applySeconds.observe({ mirror }, Math.max(0, seconds));
  }

  reconnect(mirror: string, peer: 'source' | 'destination'): void {
    this.reconnects.inc({ mirror, peer });
  }

  setLastApplied(mirror: string, lsn: bigint, commitTimeMs: number): void {
    this.lastLsn.set({ mirror }, Number(lsn));
    this.lastCommit.set({ mirror }, commitTimeMs / 1000);
  }
}

export interface HealthReport {
  ok: boolean;
  mirrors: Record<string, string>;
}

/**
 * Serves GET /metrics and GET /healthz on host:port (port 0 picks a free port; the bound one is returned).
 * Anything else is 404. close() also drops idle keep-alive connections, so shutdown is not held up.
 */
export async function startMetricsServer(
  metrics: WorkerMetrics,
  port: number,
  host = '0.0.0.0',
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
