/** WorkerMetrics and its HTTP server, scraped over real HTTP on a free port. */
import { afterEach, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/cli/version.js';
import type { HealthReport } from '../../src/worker/health.js';
import {
  ERROR_KINDS,
  METRIC_STATUSES,
  WAL_STATUSES,
  WorkerMetrics,
  startMetricsServer,
} from '../../src/worker/metrics.js';
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from '../../src/worker/metrics-address.js';
import type { WorkerStatus } from '../../src/worker/mirror-worker.js';

// Fails to compile when the worker gains a status the status gauge does not list.
const everyWorkerStatus: readonly (typeof METRIC_STATUSES)[number][] = [] as WorkerStatus[];
void everyWorkerStatus;

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const healthy = (): HealthReport => ({ ok: true, mirrors: {} });

async function serve(metrics: WorkerMetrics, health: () => HealthReport = healthy) {
  const s = await startMetricsServer(metrics, 0, '127.0.0.1', health);
  servers.push(s);
  return (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${s.port}${path}`, init);
}

/** The value of one series in a text exposition, e.g. series(text, 'mirrors_status{mirror="m",status="Following"}'). */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('WorkerMetrics over /metrics', () => {
  it('serves every series with its labels, in the registry content type', async () => {
    const m = new WorkerMetrics();
    const get = await serve(m);
    m.setStatus('m', 'Bootstrapping');
    m.setStatus('m', 'Following');
    m.setStatus('other', 'Standby');
    m.trackLag('m', () => ({ seconds: 1.25, bytes: 4096n }));
    m.rowsApplied('m', 'public.users', 'insert', 3);
    m.rowsApplied('m', 'public.users', 'insert', 2);
    m.rowsApplied('m', 'public.users', 'delete', 1);
    m.rowsApplied('m', 'public.users', 'update', 0);
    m.batchApplied('m', 6, 2, 0.004);
    m.batchApplied('m', 1, 1, 3, 2);
    m.reconnect('m', 'source');
    m.reconnect('m', 'source');
    m.reconnect('m', 'destination');
    m.setLastApplied('m', 0x16b374d848n, 1_767_225_600_500);
    m.setSnapshotProgress('m', 1024n, 1_000_000n);
    m.setVerify('m', { finishedAtMs: 1_767_225_600_000, tablesDiffering: 2, holdMs: 12.5 });

    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(m.registry.contentType);
    const text = await res.text();

    expect(series(text, 'mirrors_status{mirror="m",status="Following"}')).toBe(1);
    expect(series(text, 'mirrors_status{mirror="m",status="Bootstrapping"}')).toBe(0);
    for (const s of METRIC_STATUSES.filter((s) => s !== 'Following')) {
      expect(series(text, `mirrors_status{mirror="m",status="${s}"}`)).toBe(0);
    }
    expect(series(text, 'mirrors_status{mirror="other",status="Standby"}')).toBe(1);
    expect(series(text, 'mirrors_lag_seconds{mirror="m"}')).toBe(1.25);
    expect(series(text, 'mirrors_lag_bytes{mirror="m"}')).toBe(4096);
    expect(series(text, 'mirrors_rows_applied_total{mirror="m",table="public.users",op="insert"}')).toBe(5);
    expect(series(text, 'mirrors_rows_applied_total{mirror="m",table="public.users",op="delete"}')).toBe(1);
    expect(series(text, 'mirrors_rows_applied_total{mirror="m",table="public.users",op="update"}')).toBeUndefined();
    expect(series(text, 'mirrors_batches_total{mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_changes_applied_total{mirror="m"}')).toBe(7);
    expect(series(text, 'mirrors_transactions_applied_total{mirror="m"}')).toBe(3);
    expect(series(text, 'mirrors_apply_duration_seconds_count{mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_apply_duration_seconds_bucket{le="0.001",mirror="m"}')).toBe(0);
    expect(series(text, 'mirrors_apply_duration_seconds_bucket{le="0.005",mirror="m"}')).toBe(1);
    expect(series(text, 'mirrors_apply_duration_seconds_bucket{le="10",mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_apply_duration_seconds_sum{mirror="m"}')).toBeCloseTo(3.004);
    expect(series(text, 'mirrors_reconnects_total{mirror="m",peer="source"}')).toBe(2);
    expect(series(text, 'mirrors_missing_rows_total{mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_reconnects_total{mirror="m",peer="destination"}')).toBe(1);
    expect(series(text, 'mirrors_last_applied_lsn_bytes{mirror="m"}')).toBe(0x16b374d848);
    expect(series(text, 'mirrors_last_commit_timestamp_seconds{mirror="m"}')).toBe(1_767_225_600.5);
    expect(series(text, 'mirrors_snapshot_done_bytes{mirror="m"}')).toBe(1024);
    expect(series(text, 'mirrors_snapshot_total_bytes{mirror="m"}')).toBe(1_000_000);
    expect(series(text, 'mirrors_verify_last_run_timestamp_seconds{mirror="m"}')).toBe(1_767_225_600);
    expect(series(text, 'mirrors_verify_tables_differing{mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_verify_hold_seconds{mirror="m"}')).toBe(0.0125);
    expect(series(text, `mirrors_build_info{version="${VERSION}",node_version="${process.versions.node}"}`)).toBe(1);
  });

  it("serves Node's default metrics under their standard names, without the gauges misnamed *_total", async () => {
    const text = await new WorkerMetrics().registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^# TYPE nodejs_heap_size_used_bytes gauge$/m);
    expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
    expect(text).not.toMatch(/^mirrors_(process|nodejs)_/m);
    expect(text).not.toMatch(/^# TYPE nodejs_active_\w+_total /m);
  });

  it('reads the lag at every scrape, so a worker stalled between batches shows it growing', async () => {
    const m = new WorkerMetrics();
    let now = 10_000;
    const lastCommitAt = 4_000;
    m.trackLag('m', () => ({ seconds: (now - lastCommitAt) / 1000, bytes: 300n }));
    expect(series(await m.registry.metrics(), 'mirrors_lag_seconds{mirror="m"}')).toBe(6);
    now = 70_000;
    expect(series(await m.registry.metrics(), 'mirrors_lag_seconds{mirror="m"}')).toBe(66);
  });

  it('leaves a lag series out while its reading is null, and drops both once untracked', async () => {
    const m = new WorkerMetrics();
    let reading: { seconds: number | null; bytes: bigint | null } = { seconds: 2, bytes: null };
    m.trackLag('m', () => reading);
    let text = await m.registry.metrics();
    expect(series(text, 'mirrors_lag_seconds{mirror="m"}')).toBe(2);
    expect(series(text, 'mirrors_lag_bytes{mirror="m"}')).toBeUndefined();
    reading = { seconds: null, bytes: 7n };
    text = await m.registry.metrics();
    expect(series(text, 'mirrors_lag_seconds{mirror="m"}')).toBeUndefined();
    expect(series(text, 'mirrors_lag_bytes{mirror="m"}')).toBe(7);
    m.untrackLag('m');
    text = await m.registry.metrics();
    expect(series(text, 'mirrors_lag_bytes{mirror="m"}')).toBeUndefined();
  });

  it('drops only the series of a mirror whose lag reading throws, and the scrape still answers', async () => {
    const m = new WorkerMetrics();
    m.trackLag('broken', () => {
      throw new Error('boom');
    });
    m.trackLag('fine', () => ({ seconds: 0, bytes: 0n }));
    const text = await m.registry.metrics();
    expect(series(text, 'mirrors_lag_seconds{mirror="broken"}')).toBeUndefined();
    expect(series(text, 'mirrors_lag_seconds{mirror="fine"}')).toBe(0);
  });

  it('starts every error kind, reconnect peer and batch counter at 0 when a mirror is first seen', async () => {
    const m = new WorkerMetrics();
    m.setStatus('m', 'Starting');
    m.error('m', 'transient');
    m.error('m', 'transient');
    m.error('m', 'gap');
    const text = await m.registry.metrics();
    expect(series(text, 'mirrors_errors_total{mirror="m",kind="transient"}')).toBe(2);
    expect(series(text, 'mirrors_errors_total{mirror="m",kind="gap"}')).toBe(1);
    for (const kind of ERROR_KINDS.filter((k) => k !== 'transient' && k !== 'gap')) {
      expect(series(text, `mirrors_errors_total{mirror="m",kind="${kind}"}`)).toBe(0);
    }
    expect(series(text, 'mirrors_reconnects_total{mirror="m",peer="source"}')).toBe(0);
    expect(series(text, 'mirrors_reconnects_total{mirror="m",peer="destination"}')).toBe(0);
    for (const c of ['batches', 'changes_applied', 'transactions_applied', 'missing_rows']) {
      expect(series(text, `mirrors_${c}_total{mirror="m"}`)).toBe(0);
    }
  });

  it('zeroes a status outside the known list once the mirror moves on', async () => {
    const m = new WorkerMetrics();
    m.setStatus('m', 'Resyncing');
    expect(series(await m.registry.metrics(), 'mirrors_status{mirror="m",status="Resyncing"}')).toBe(1);
    m.setStatus('m', 'Following');
    const text = await m.registry.metrics();
    expect(series(text, 'mirrors_status{mirror="m",status="Resyncing"}')).toBe(0);
    expect(series(text, 'mirrors_status{mirror="m",status="Following"}')).toBe(1);
  });

  it("reports the slot's retained WAL and wal_status, all 0 and no retained bytes when it is missing", async () => {
    const m = new WorkerMetrics();
    m.setSlot('m', { exists: true, retainedBytes: 123_456n, walStatus: 'extended' });
    let text = await m.registry.metrics();
    expect(series(text, 'mirrors_slot_exists{mirror="m"}')).toBe(1);
    expect(series(text, 'mirrors_slot_retained_wal_bytes{mirror="m"}')).toBe(123_456);
    for (const w of WAL_STATUSES) {
      expect(series(text, `mirrors_slot_wal_status{mirror="m",wal_status="${w}"}`)).toBe(w === 'extended' ? 1 : 0);
    }

    m.setSlot('m', { exists: false, retainedBytes: null, walStatus: null });
    text = await m.registry.metrics();
    expect(series(text, 'mirrors_slot_exists{mirror="m"}')).toBe(0);
    expect(series(text, 'mirrors_slot_retained_wal_bytes{mirror="m"}')).toBeUndefined();
    for (const w of WAL_STATUSES) expect(series(text, `mirrors_slot_wal_status{mirror="m",wal_status="${w}"}`)).toBe(0);

    // A slot that exists but whose server reports no wal_status: all 0 too; its retained bytes are kept.
    m.setSlot('m', { exists: true, retainedBytes: 0n, walStatus: null });
    text = await m.registry.metrics();
    expect(series(text, 'mirrors_slot_retained_wal_bytes{mirror="m"}')).toBe(0);
    for (const w of WAL_STATUSES) expect(series(text, `mirrors_slot_wal_status{mirror="m",wal_status="${w}"}`)).toBe(0);
  });
});

describe('metrics server', () => {
  it('binds to loopback on a port no well-known exporter uses, unless told otherwise', () => {
    expect(DEFAULT_METRICS_HOST).toBe('127.0.0.1');
    expect(DEFAULT_METRICS_PORT).not.toBe(9187); // postgres_exporter's
    // Outside Prometheus's allocated exporter range and below Linux's ephemeral ports.
    expect(DEFAULT_METRICS_PORT < 9100 || DEFAULT_METRICS_PORT > 10999).toBe(true);
    expect(DEFAULT_METRICS_PORT).toBeLessThan(32768);
  });

  it('listens on the default host when none is given', async () => {
    const s = await startMetricsServer(new WorkerMetrics(), 0, undefined, healthy);
    servers.push(s);
    expect((await fetch(`http://127.0.0.1:${s.port}/metrics`)).status).toBe(200);
  });

  it('answers /healthz 200 with the health JSON when ok, 503 when not', async () => {
    let health: HealthReport = {
      ok: true,
      mirrors: { m: { status: 'Following', healthy: true, lag_seconds: 0 } },
    };
    const get = await serve(new WorkerMetrics(), () => health);
    let res = await get('/healthz');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(health);

    health = {
      ok: false,
      mirrors: { m: { status: 'Failed', healthy: false, lag_seconds: null, reason_code: 'failed', reason: 'x' } },
    };
    res = await get('/healthz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual(health);
  });

  it('answers 503 when the health callback throws', async () => {
    const get = await serve(new WorkerMetrics(), () => {
      throw new Error('boom');
    });
    const res = await get('/healthz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, mirrors: {}, error: 'boom' });
  });

  it('answers 404 to anything else, and /metrics with a query string still works', async () => {
    const get = await serve(new WorkerMetrics());
    expect((await get('/')).status).toBe(404);
    expect((await get('/metricsx')).status).toBe(404);
    expect((await get('/metrics', { method: 'POST' })).status).toBe(404);
    expect((await get('/metrics?name[]=x')).status).toBe(200);
  });

  it('picks a free port for port 0, and refuses a port in use with a clear error', async () => {
    const m = new WorkerMetrics();
    const first = await startMetricsServer(m, 0, '127.0.0.1', healthy);
    servers.push(first);
    expect(first.port).toBeGreaterThan(0);
    await expect(startMetricsServer(m, first.port, '127.0.0.1', healthy)).rejects.toThrow(
      `cannot serve metrics on 127.0.0.1:${first.port}: EADDRINUSE`,
    );
  });

  it('closes promptly even with a keep-alive connection open', async () => {
    const s = await startMetricsServer(new WorkerMetrics(), 0, '127.0.0.1', healthy);
    await (await fetch(`http://127.0.0.1:${s.port}/metrics`, { keepalive: true })).text();
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
