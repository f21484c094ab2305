/**
 * `mirrors run`: streams every selected, bootstrapped mirror until SIGTERM/SIGINT, then finishes the
 * batch in flight, commits, acknowledges and exits 0. Logs go to stderr (text or JSON lines).
 */
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { type GuardianEvents, SyncGuardian } from '../worker/sync-guardian.js';
import { MirrorsError } from '../errors.js';
import { MirrorWorker, type WorkerEvents } from '../worker/mirror-worker.js';
import { evaluateHealth } from '../worker/health.js';
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from '../worker/metrics-address.js';
import { WorkerMetrics, startMetricsServer } from '../worker/metrics.js';
import type { Io } from './io.js';

export interface RunOptions {
  config?: string;
  mirror?: string[];
  metricsPort?: string;
  metricsHost?: string;
  /** false with --no-metrics. */
  metrics?: boolean;
  logFormat?: 'text' | 'json';
}

export async function runCommand(opts: RunOptions, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const names = opts.mirror?.length ? [...new Set(opts.mirror)] : Object.keys(config.mirrors).sort();
  for (const n of names) {
    if (!config.mirrors[n])
      throw new MirrorsError('USAGE', `unknown mirror ${n}`, {
        hint: `declared mirrors: ${Object.keys(config.mirrors).join(', ')}`,
      });
  }
  if (!names.length) throw new MirrorsError('USAGE', 'no mirrors to run', { hint: 'declare mirrors in mirrors.yaml' });

  const json = opts.logFormat === 'json';
  const log: WorkerEvents['log'] = (level, msg, fields = {}) => {
    io.err(
      json
        ? JSON.stringify({ at: new Date().toISOString(), level, msg, ...fields }) + '\n'
        : `${new Date().toISOString()} ${level.padEnd(5)} ${msg}\n`,
    );
  };
  const metrics = new WorkerMetrics();
  const events: WorkerEvents = {
    log,
    status: (mirror, status) => metrics.setStatus(mirror, status),
    batch: (mirror, r) => {
      metrics.batchApplied(mirror, r.changes, r.transactions, r.seconds, r.missingRows);
      metrics.setLastApplied(mirror, r.lsn, r.commitTimeMs);
      for (const c of r.counts.values()) {
        const table = `${c.schema}.${c.name}`;
        if (c.inserted) metrics.rowsApplied(mirror, table, 'insert', c.inserted);
        if (c.updated) metrics.rowsApplied(mirror, table, 'update', c.updated);
        if (c.deleted) metrics.rowsApplied(mirror, table, 'delete', c.deleted);
        if (c.truncated) metrics.rowsApplied(mirror, table, 'truncate', c.truncated);
      }
    },
    fault: (mirror, kind, peer) => {
      if (kind === 'promoted') return;
      metrics.error(mirror, kind);
      if (kind === 'transient') metrics.reconnect(mirror, peer);
    },
    slot: (mirror, s) => metrics.setSlot(mirror, s),
    snapshot: (mirror, done, total) => metrics.setSnapshotProgress(mirror, done, total),
    verify: (mirror, v) => metrics.setVerify(mirror, v),
  };

  const controller = new AbortController();
  const stop = (sig: string) => {
    if (controller.signal.aborted) return;
    log('info', `${sig}: finishing the batches in flight, then exiting`);
    controller.abort();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);

  // Every selected mirror gets a worker, paused ones too: the catalog (what `mirrors apply` made true) says
  // whether it streams, so applying `paused: false` resumes it without restarting `run`.
  const workers = names.map((n) => new MirrorWorker(config, config.mirrors[n], events, controller.signal));
  for (const w of workers) {
    metrics.trackLag(w.mirror.name, () => {
      const ms = w.lagMs();
      return { seconds: ms === null ? null : ms / 1000, bytes: w.lagBytes() };
    });
    if (w.mirror.paused)
      log(
        'info',
        `mirror ${w.mirror.name}: paused in the configuration; it streams once \`paused: false\` is applied`,
        {
          mirror: w.mirror.name,
        },
      );
  }

  let server: { port: number; close(): Promise<void> } | null = null;
  if (opts.metrics !== false) {
    const port = Number(opts.metricsPort ?? DEFAULT_METRICS_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new MirrorsError('USAGE', `--metrics-port ${opts.metricsPort} is not a port number`);
    const host = opts.metricsHost ?? DEFAULT_METRICS_HOST;
    const health = () =>
      evaluateHealth(
        workers.map((w) => ({
          name: w.mirror.name,
          status: w.status,
          lagSeconds: w.lagMs() === null ? null : w.lagMs()! / 1000,
          pending: w.pending(),
          lagThresholdSeconds: w.mirror.lag_threshold_ms / 1000,
          lastProgressAt: w.lastProgressAt,
        })),
        Date.now(),
      );
    server = await startMetricsServer(metrics, port, host, health);
    log('info', `metrics on http://${host}:${server.port}/metrics`, { metricsPort: server.port });
  }

  // The degrade policy of sync mirrors: one guardian per source with a mirror that may degrade (sync-guardian.ts).
  const guardians = guardiansFor(config, {
    log,
    degraded: (mirror, degraded) => metrics.setSyncDegraded(mirror, degraded),
    syncState: (mirror, state) => metrics.setSyncState(mirror, state),
  }).map((g) => g.run(controller.signal));
  try {
    await Promise.all(workers.map((w) => w.run()));
    // Promoted mirrors' workers end; keep serving status and metrics until stopped. A pending promise alone does
    // not keep Node alive (without the metrics server it would exit 0 at once): a service manager would restart it.
    if (!controller.signal.aborted) {
      log('info', 'every mirror is promoted: nothing left to stream; running until SIGTERM or SIGINT');
      const alive = setInterval(() => {}, 60_000);
      await new Promise((r) => controller.signal.addEventListener('abort', r));
      clearInterval(alive);
    }
  } finally {
    await Promise.all(guardians);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await server?.close();
  }
  log('info', 'stopped');
  // Everything is committed and acknowledged; a connection attempt to a peer that does not answer may still be
  // pending (until its connect timeout). It must not keep the process alive after SIGTERM.
  setTimeout(() => process.exit(), 500).unref();
  return 0;
}

/** Every sync mirror of a source counts for its value; only sources with a mirror that may degrade get one. */
function guardiansFor(config: Config, events: GuardianEvents): SyncGuardian[] {
  const sync = Object.values(config.mirrors).filter((m) => m.mode === 'sync');
  const sources = [...new Set(sync.filter((m) => m.on_sync_loss !== 'block').map((m) => m.source))];
  return sources.map(
    (src) =>
      new SyncGuardian(
        config,
        src,
        sync.filter((m) => m.source === src),
        events,
      ),
  );
}
