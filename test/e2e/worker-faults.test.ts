/**
 * `mirrors run` under faults of its peers (issue 8, item 7): it resumes within seconds after each restart
 * of the source or the destination, also after earlier faults in the same process (the backoff resets once a
 * session streams), notices a source that goes silent, and holds its memory flat through a destination outage.
 * Recovery times, memory and batch sizes are measured and printed.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useClusters } from '../support/clusters.js';
import { startProxy } from '../support/proxy.js';
import { LOAD_TABLES_SQL, LOAD_TABLES_YAML, runningMirrors, writeLoad } from '../support/running-mirror.js';
import type { RunningWorker } from '../support/worker.js';

const clusters = useClusters(['src', 'dst'], { settings: { synchronous_commit: 'on' } });
const mirrorSetup = runningMirrors(clusters, 'wf');

/** Resident memory of a process, in MB (Linux). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Number(kb) / 1024;
}

async function metricsOf(w: RunningWorker): Promise<(name: string) => number | undefined> {
  await w.waitForLog(/metrics on http:\/\/127\.0\.0\.1:\d+/);
  const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(w.logs())![1];
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mirrors run under faults', () => {
  it('notices a black-holed source within the receive timeout, shows a growing lag meanwhile, and catches up after', async () => {
    const m = await mirrorSetup('silent', LOAD_TABLES_SQL, LOAD_TABLES_YAML);
    const proxy = await startProxy(clusters.src.port);
    try {
      const w = await m.startThrough({ src: proxy.port });
      await w.waitForLog(/silent: Following/);
      const load = writeLoad(clusters.src.url(m.db), 20);
      await sleep(2_000);
      await m.caughtUp();
      proxy.blackhole();
      const cutAt = Date.now();
      const lag = async () =>
        Number((await m.dst(`SELECT extract(epoch FROM mirrors.lag('silent'))::float AS s`))[0].s);
      await sleep(8_000);
      const lag8 = await lag();
      const metric8 = (await metricsOf(w))('mirrors_lag_seconds{mirror="silent"}');
      await w.waitForLog(/RECEIVE_TIMEOUT|the source sent nothing/, 25_000);
      const noticed = Date.now() - cutAt;
      const lagLater = await lag();
      console.log(
        `black-holed source: noticed after ${noticed} ms; lag ${lag8.toFixed(1)} s at 8 s (metric ${metric8}), ${lagLater.toFixed(1)} s when noticed`,
      );
      expect(noticed).toBeLessThan(20_000);
      expect(lag8).toBeGreaterThan(5);
      expect(metric8).toBeGreaterThan(5);
      expect(lagLater).toBeGreaterThan(lag8);
      proxy.heal();
      await load.stop();
      await m.caughtUp('30 seconds');
      await m.expectSame('SELECT * FROM accounts');
      await m.expectSame('SELECT * FROM history');
      expect(await w.stop()).toBe(0);
    } finally {
      proxy.heal();
      await proxy.close();
    }
  });

  it('through a 60 s destination outage under load: memory flat, recovery in full batches, SIGTERM within 5 s', async () => {
    const batch = 500;
    const m = await mirrorSetup('outage', LOAD_TABLES_SQL, LOAD_TABLES_YAML, `    max_batch_size: ${batch}\n`);
    const proxy = await startProxy(clusters.dst.port);
    const load = writeLoad(clusters.src.url(m.db), 2);
    try {
      const w = await m.startThrough({ dst: proxy.port });
      await w.waitForLog(/outage: Following/);
      await sleep(5_000);
      const pid = w.child.pid!;
      const before = rssMb(pid);
      proxy.blackhole();
      const samples: number[] = [];
      for (let i = 0; i < 12; i++) {
        await sleep(5_000);
        samples.push(rssMb(pid));
      }
      const txnsDuringOutage = load.count();
      const m0 = await metricsOf(w);
      const batches0 = m0('mirrors_batches_total{mirror="outage"}') ?? 0;
      const changes0 = m0('mirrors_changes_applied_total{mirror="outage"}') ?? 0;
      proxy.heal();
      const healedAt = Date.now();
      await m.caughtUp('120 seconds');
      const recoveryMs = Date.now() - healedAt;
      const m1 = await metricsOf(w);
      const batches = (m1('mirrors_batches_total{mirror="outage"}') ?? 0) - batches0;
      const changes = (m1('mirrors_changes_applied_total{mirror="outage"}') ?? 0) - changes0;
      const growth = Math.max(...samples) - before;
      console.log(
        `60 s destination outage at ~${Math.round(txnsDuringOutage / 65)} tps: RSS ${before.toFixed(1)} MB before, max ${Math.max(...samples).toFixed(1)} MB during (+${growth.toFixed(1)} MB); caught up ${recoveryMs} ms after the heal in ${batches} batches of ${(changes / batches).toFixed(0)} changes on average (max_batch_size ${batch})`,
      );
      expect(growth).toBeLessThan(20);
      expect(changes / batches).toBeGreaterThan(batch / 2);

      // SIGTERM while the destination is gone again: out within 5 s, nothing unapplied acknowledged.
      await sleep(2_000);
      proxy.blackhole();
      await sleep(3_000);
      const t0 = Date.now();
      const code = await w.stop();
      const exitMs = Date.now() - t0;
      console.log(`SIGTERM during a destination outage: exited ${code} after ${exitMs} ms`);
      expect(exitMs).toBeLessThan(5_000);
      expect(code).toBe(0);
    } finally {
      await load.stop();
      proxy.heal();
      await proxy.close();
    }
    const w2 = await m.start();
    await m.caughtUp('60 seconds');
    await m.expectSame('SELECT * FROM accounts');
    await m.expectSame('SELECT * FROM history');
    expect(await w2.stop()).toBe(0);
  });

  it('resumes within 5 s of every source or destination restart, the sixth as fast as the first', async () => {
    const m = await mirrorSetup('recover', `CREATE TABLE t (id int PRIMARY KEY)`, `      - source_table: t\n`);
    const w = await m.start();
    await w.waitForLog(/recover: Following/);
    let id = 0;
    const times: { peer: string; ms: number }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const peer of ['src', 'dst'] as const) {
        // Down for a few seconds, so the worker's reconnect attempts fail a few times and its backoff grows.
        await clusters[peer].kill();
        await new Promise((r) => setTimeout(r, 3_000));
        await clusters[peer].start();
        const back = Date.now();
        await m.src(`INSERT INTO t VALUES (${++id})`);
        await m.caughtUp('20 seconds');
        times.push({ peer: peer === 'src' ? 'source' : 'destination', ms: Date.now() - back });
      }
    }
    console.log(`recovery after each restart (ms): ${times.map((t) => `${t.peer} ${t.ms}`).join(', ')}`);
    for (const t of times) expect(t.ms, `${t.peer}`).toBeLessThan(5_000);
    await m.expectSame('SELECT * FROM t');
    expect(await w.stop()).toBe(0);
  });
});
