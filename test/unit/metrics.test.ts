/** WorkerMetrics and its HTTP server, scraped over real HTTP on a free port. */
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerMetrics, startMetricsServer, type HealthReport } from '../../src/worker/metrics.js';

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(metrics: WorkerMetrics, health: () => HealthReport = () => ({ ok: true, mirrors: {} })) {
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
    m.setLag('m', 1250, 4096n);
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

    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(m.registry.contentType);
    const text = await res.text();

    expect(series(text, 'mirrors_status{mirror="m",status="Following"}')).toBe(1);
    expect(series(text, 'mirrors_status{mirror="m",status="Bootstrapping"}')).toBe(0);
    for (const s of ['Degraded', 'Disconnected', 'Paused', 'Failed', 'Promoted', 'Standby']) {
      expect(series(text, `mirrors_status{mirror="m",status="${s}"}`)).toBe(0);
    }
    expect(series(text, 'mirrors_status{mirror="other",status="Standby"}')).toBe(1);
    expect(series(text, 'mirrors_lag_milliseconds{mirror="m"}')).toBe(1250);
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
    expect(series(text, 'mirrors_last_applied_lsn{mirror="m"}')).toBe(0x16b374d848);
    expect(series(text, 'mirrors_last_commit_timestamp_seconds{mirror="m"}')).toBe(1_767_225_600.5);
    // Default process metrics, under the mirrors_ prefix.
    expect(text).toMatch(/^mirrors_process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^# TYPE mirrors_nodejs_heap_size_used_bytes gauge$/m);
    expect(text).not.toMatch(/^process_cpu/m);
  });

  it('removes the lag bytes series when the byte lag is unknown, and keeps registries apart', async () => {
    const a = new WorkerMetrics();
    const b = new WorkerMetrics();
    a.setLag('m', 10, 100n);
    a.setLag('m', 20, null);
    const text = await a.registry.metrics();
    expect(series(text, 'mirrors_lag_milliseconds{mirror="m"}')).toBe(20);
    expect(series(text, 'mirrors_lag_bytes{mirror="m"}')).toBeUndefined();
    expect(series(await b.registry.metrics(), 'mirrors_lag_milliseconds{mirror="m"}')).toBeUndefined();
  });
});

describe('metrics server', () => {
  it('answers /healthz 200 with the health JSON when ok, 503 when not', async () => {
    let health: HealthReport = { ok: true, mirrors: { m: 'Following' } };
    const get = await serve(new WorkerMetrics(), () => health);
    let res = await get('/healthz');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ ok: true, mirrors: { m: 'Following' } });

    health = { ok: false, mirrors: { m: 'Failed' } };
    res = await get('/healthz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, mirrors: { m: 'Failed' } });
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
    const first = await startMetricsServer(m, 0, '127.0.0.1', () => ({ ok: true, mirrors: {} }));
    servers.push(first);
    expect(first.port).toBeGreaterThan(0);
    await expect(startMetricsServer(m, first.port, '127.0.0.1', () => ({ ok: true, mirrors: {} }))).rejects.toThrow(
      `cannot serve metrics on 127.0.0.1:${first.port}: EADDRINUSE`,
    );
  });

  it('closes promptly even with a keep-alive connection open', async () => {
    const s = await startMetricsServer(new WorkerMetrics(), 0, '127.0.0.1', () => ({ ok: true, mirrors: {} }));
    await (await fetch(`http://127.0.0.1:${s.port}/metrics`, { keepalive: true })).text();
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
