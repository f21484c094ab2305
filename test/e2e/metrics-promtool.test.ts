/**
 * What `mirrors run` serves on /metrics is accepted by Prometheus's own linter, `promtool check metrics`,
 * with every series populated (several mirrors, every status, error kind and wal_status, label values
 * that need escaping), and docs/metrics.md documents exactly the metric families it serves.
 *
 * promtool comes from Debian's `prometheus` package: .ci/run unpacks it without installing the service
 * and points MIRRORS_PROMTOOL at it. Without promtool the test fails (never skips): a metric Prometheus
 * rejects must not land.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ERROR_KINDS,
  METRIC_STATUSES,
  WAL_STATUSES,
  WorkerMetrics,
  startMetricsServer,
} from '../../src/worker/metrics.js';
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from '../../src/worker/metrics-address.js';
import { checkMetrics, PROMTOOL, runTool, withPromtool } from '../support/promtool.js';

/** Every WorkerMetrics API, over three mirrors, so that every family and label value appears. */
function populate(m: WorkerMetrics): void {
  const mirrors = ['prod_to_staging', 'billing', 'archive'];
  for (const [i, name] of mirrors.entries()) {
    // Every status, each mirror ending on a different one.
    for (const s of METRIC_STATUSES) m.setStatus(name, s);
    m.setStatus(name, METRIC_STATUSES[i]);
    for (const kind of ERROR_KINDS) m.error(name, kind);
    m.reconnect(name, 'source');
    m.reconnect(name, 'destination');
    m.batchApplied(name, 10 * (i + 1), i + 1, 0.003 * (i + 1), i);
    m.rowsApplied(name, 'public.users', 'insert', 5);
    m.rowsApplied(name, 'public.users', 'update', 3);
    m.rowsApplied(name, 'public.users', 'delete', 1);
    m.rowsApplied(name, 'public.users', 'truncate', 1);
    // A table name that needs escaping in a label value: quotes and a backslash.
    m.rowsApplied(name, 'public."odd \\ name"', 'insert', 2);
    m.setLastApplied(name, 0x16b374d848n + BigInt(i), 1_767_225_600_500 + i);
    m.setSnapshotProgress(name, 1024n * BigInt(i), 1_000_000n);
    m.setVerify(name, { finishedAtMs: 1_767_225_600_000 + i, tablesDiffering: i, holdMs: 3 + i });
  }
  m.trackLag('prod_to_staging', () => ({ seconds: 1.5, bytes: 4096n }));
  m.trackLag('billing', () => ({ seconds: null, bytes: 0n }));
  m.trackLag('archive', () => ({ seconds: 0.25, bytes: null }));
  // Every wal_status, a slot without one, and a missing slot.
  m.setSlot('prod_to_staging', { exists: true, retainedBytes: 123_456_789n, walStatus: WAL_STATUSES[0] });
  for (const w of WAL_STATUSES) m.setSlot('billing', { exists: true, retainedBytes: 1n, walStatus: w });
  m.setSlot('billing', { exists: true, retainedBytes: null, walStatus: null });
  m.setSlot('archive', { exists: false, retainedBytes: null, walStatus: null });
}

let server: { port: number; close(): Promise<void> };
let exposition: string;

beforeAll(async () => {
  const m = new WorkerMetrics();
  populate(m);
  server = await startMetricsServer(m, 0, '127.0.0.1', () => ({ ok: true, mirrors: {} }));
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  expect(res.status).toBe(200);
  exposition = await res.text();
});
afterAll(() => server?.close());

/** `# TYPE name type` lines: metric family name -> type. */
function families(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1], x[2]]));
}

describe('promtool check metrics', () => {
  withPromtool('reports a problem in an exposition Prometheus rejects (so a pass below means something)', async () => {
    const bad =
      '# HELP demo_lag_milliseconds Lag\n# TYPE demo_lag_milliseconds gauge\ndemo_lag_milliseconds 5\n' +
      '# HELP demo_items_total Items\n# TYPE demo_items_total gauge\ndemo_items_total 1\n';
    const r = await checkMetrics(bad);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/demo_lag_milliseconds use base unit "seconds"/);
    expect(r.output).toMatch(/demo_items_total non-counter metrics should not have "_total" suffix/);
  });

  withPromtool('accepts everything the worker serves on /metrics, every series populated', async () => {
    // The populated exposition really has every family and label value this test means to check.
    const f = families(exposition);
    for (const name of [
      'mirrors_build_info',
      'mirrors_status',
      'mirrors_lag_seconds',
      'mirrors_lag_bytes',
      'mirrors_errors_total',
      'mirrors_slot_wal_status',
      'mirrors_slot_retained_wal_bytes',
      'mirrors_snapshot_total_bytes',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(f.has(name), name).toBe(true);
    }
    for (const s of METRIC_STATUSES) expect(exposition).toContain(`status="${s}"}`);
    for (const k of ERROR_KINDS) expect(exposition).toContain(`kind="${k}"} 1`);
    for (const w of WAL_STATUSES) expect(exposition).toContain(`wal_status="${w}"`);
    expect(exposition).toContain('table="public.\\"odd \\\\ name\\""');

    const r = await checkMetrics(exposition);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('docs/metrics.md', () => {
  const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  /** Reference rows: | `name` | type | ... */
  const documented = new Map(
    [...doc.matchAll(/^\| `(mirrors_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((x) => [x[1], x[2]]),
  );

  it('documents every mirrors_ metric family served, with its type, and none that is not served', () => {
    const served = new Map([...families(exposition)].filter(([name]) => name.startsWith('mirrors_')));
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(served));
  });

  withPromtool('has example alerts that promtool check rules accepts', async () => {
    const yaml = /## Example alerts[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(yaml).toBeDefined();
    const alerts = yaml!.match(/^\s+- alert: /gm)?.length ?? 0;
    expect(alerts).toBeGreaterThanOrEqual(3);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mirrors-rules-'));
    try {
      const file = path.join(dir, 'alerts.yml');
      writeFileSync(file, yaml!);
      const r = await runTool(PROMTOOL, ['check', 'rules', file], '');
      expect(r.output).toContain(`SUCCESS: ${alerts} rules found`);
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the default port and host the code uses', () => {
    expect(doc).toContain(`\`${DEFAULT_METRICS_HOST}:${DEFAULT_METRICS_PORT}\``);
  });
});
