/**
 * The status of a mirror, computed from raw facts read by collect.ts (catalog rows, lease, slot). Pure:
 * no I/O, no `pg`, no clock (ages come from the destination's clock, in the facts). The StatusReport is
 * plain serializable data and IS the JSON output (docs/status-json.md); the text renderer reads it too.
 * 64-bit values (LSNs, bytes, rows) are strings; lag in milliseconds is a number.
 */
import type { QualifiedName } from '../config/names.js';

export const STATUS_FORMAT_VERSION = 1;
/** A worker whose heartbeat is older than this is presumed gone even if its session still holds the lease. */
export const HEARTBEAT_STALE_MS = 15_000;
/** As the catalog's mirrors.lag(): heartbeat silence beyond this grace counts as lag. */
export const HEARTBEAT_GRACE_MS = 5_000;
/** Used only when neither the config nor the catalog gives a threshold (DESIGN.md, Lifecycle). */
export const DEFAULT_LAG_THRESHOLD_MS: Record<string, number> = { async: 5000, sync: 100 };

export const STATUS_NAMES = [
  'NotCreated',
  'Bootstrapping',
  'Following',
  'Degraded',
  'Disconnected',
  'Paused',
  'Failed',
  'Promoted',
] as const;
export type StatusName = (typeof STATUS_NAMES)[number];

// ---------------------------------------------------------------------------------------------------
// Facts: what collect.ts read, mapped from raw rows. Nothing here is derived.

export interface PeerError {
  peer: string;
  role: 'source' | 'destination';
  /** A MirrorsError code (PEER_UNREACHABLE, PEER_AUTH_FAILED, PEER_ERROR, ...). */
  code: string;
  message: string;
  hint: string | null;
}

export type PeerRead<T> = { ok: true; value: T } | { ok: false; error: PeerError };

export interface CatalogMirrorFacts {
  mode: string;
  /** What the worker last wrote into mirrors.mirrors.status (informational only). */
  reportedStatus: string;
  phase: string;
  paused: boolean;
  settings: Record<string, unknown>;
  slotName: string;
  lastAppliedLsn: string | null;
  /** ISO 8601. */
  lastCommitTime: string | null;
  rowsApplied: string;
  lastApplyAt: string | null;
  bytesDone: string;
  bytesTotal: string;
  /** mirrors.mirrors.last_error as stored (jsonb), null when none. */
  lastError: unknown;
  promotedAt: string | null;
  /** Worker-reported lag (mirrors.mirrors.lag_ms). */
  lagMs: number | null;
  worker: {
    host: string | null;
    pid: number | null;
    since: string | null;
    heartbeatAt: string | null;
    /** Age of the heartbeat on the destination's clock, so client clock skew does not matter. */
    heartbeatAgeMs: number | null;
  };
}

export interface CatalogTableFacts {
  source: QualifiedName;
  destination: QualifiedName;
  state: string;
  snapshotLsn: string | null;
  rowsCopied: string;
  bytesCopied: string;
  bytesTotal: string;
  rowsInserted: string;
  rowsUpdated: string;
  rowsDeleted: string;
}

export interface SlotFacts {
  name: string;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  walStatus: string | null;
  /** pg_current_wal_lsn() - restart_lsn */
  retainedBytes: string | null;
  /** pg_current_wal_lsn() - confirmed_flush_lsn */
  lagBytes: string | null;
  currentLsn: string | null;
}

export interface DestinationFacts {
  /** null: the mirror is not in the catalog (or there is no catalog). */
  mirror: CatalogMirrorFacts | null;
  tables: CatalogTableFacts[];
  leaseHeld: boolean;
}

export interface SourceFacts {
  /** null: no slot of that name in the source database. */
  slot: SlotFacts | null;
}

export interface MirrorFacts {
  name: string;
  sourcePeer: string;
  destinationPeer: string;
  configured: { mode: string; paused: boolean; lagThresholdMs?: number };
  destination: PeerRead<DestinationFacts>;
  /** null when the source was not read: the mirror is not created, or it is promoted. */
  source: PeerRead<SourceFacts> | null;
}

// ---------------------------------------------------------------------------------------------------
// The report (the JSON output).

export type MirrorStatus =
  | { name: 'NotCreated'; reason: string }
  | { name: 'Promoted'; reason: string; promoted_at: string }
  | { name: 'Paused'; reason: string }
  | { name: 'Bootstrapping'; reason: string; bytes_done: string; bytes_total: string }
  | { name: 'Failed'; reason: string; error: string }
  | { name: 'Disconnected'; reason: string }
  | { name: 'Degraded'; reason: string; lag_ms: number; lag_threshold_ms: number }
  | { name: 'Following'; reason: string };

export interface TableReport {
  source: QualifiedName;
  destination: QualifiedName;
  state: string;
  snapshot_lsn: string | null;
  rows_copied: string;
  bytes_copied: string;
  bytes_total: string;
  rows_inserted: string;
  rows_updated: string;
  rows_deleted: string;
}

export interface MirrorReport {
  name: string;
  source: string;
  destination: string;
  mode: string;
  status: MirrorStatus;
  phase: string | null;
  paused: boolean;
  reported_status: string | null;
  promoted_at: string | null;
  last_applied_lsn: string | null;
  last_commit_time: string | null;
  last_apply_at: string | null;
  lag_ms: number | null;
  lag_bytes: string | null;
  lag_threshold_ms: number;
  rows_applied: string | null;
  rows: { inserted: string; updated: string; deleted: string; total: string };
  bootstrap: { bytes_done: string; bytes_total: string } | null;
  worker: {
    lease_held: boolean | null;
    host: string | null;
    pid: number | null;
    since: string | null;
    heartbeat_at: string | null;
    heartbeat_age_ms: number | null;
  };
  slot: {
    name: string;
    exists: boolean;
    active: boolean | null;
    active_pid: number | null;
    confirmed_flush_lsn: string | null;
    restart_lsn: string | null;
    wal_status: string | null;
    retained_bytes: string | null;
    current_lsn: string | null;
  } | null;
  last_error: unknown;
  errors: PeerError[];
  tables: TableReport[];
}

export interface StatusReport {
  format_version: typeof STATUS_FORMAT_VERSION;
  tool: 'mirrors';
  created_by: string;
  generated_at: string;
  config_file: string;
  /** true when every mirror is Following (exit code 0). */
  ok: boolean;
  /** Every status name, zeros included, in STATUS_NAMES order. */
  summary: { total: number; by_status: Record<StatusName, number> };
  mirrors: MirrorReport[];
}

// ---------------------------------------------------------------------------------------------------

export function lagThresholdMs(f: Pick<MirrorFacts, 'configured' | 'destination'>): number {
  if (f.configured.lagThresholdMs !== undefined) return f.configured.lagThresholdMs;
  const recorded = f.destination.ok ? f.destination.value.mirror?.settings.lag_threshold_ms : undefined;
  if (typeof recorded === 'number') return recorded;
  return DEFAULT_LAG_THRESHOLD_MS[f.configured.mode] ?? DEFAULT_LAG_THRESHOLD_MS.async;
}

/** Worker-reported lag plus heartbeat silence past the grace period, exactly as mirrors.lag() computes it. */
export function effectiveLagMs(m: CatalogMirrorFacts): number | null {
  if (m.lagMs === null) return null;
  const age = m.worker.heartbeatAgeMs;
  return m.lagMs + (age === null ? 0 : Math.max(0, age - HEARTBEAT_GRACE_MS));
}

/** One line for a stored last_error, whatever shape the worker gave it. */
export function describeError(e: unknown): string {
  if (e === null || e === undefined) return 'unknown error';
  if (typeof e === 'string') return e;
  if (typeof e === 'object') {
    const o = e as Record<string, unknown>;
    const msg = typeof o.message === 'string' ? o.message : null;
    const code = typeof o.code === 'string' ? o.code : null;
    if (msg) return code && !msg.includes(code) ? `${msg} (${code})` : msg;
  }
  return JSON.stringify(e);
}

export function mirrorStatus(f: MirrorFacts): MirrorStatus {
  if (!f.destination.ok) return { name: 'Disconnected', reason: f.destination.error.message };
  const d = f.destination.value;
  const m = d.mirror;
  if (!m) return { name: 'NotCreated', reason: `not in the catalog of peer ${f.destinationPeer}; run mirrors apply` };
  if (m.promotedAt) return { name: 'Promoted', reason: `promoted at ${m.promotedAt}`, promoted_at: m.promotedAt };
  if (f.configured.paused || m.paused) {
    return {
      name: 'Paused',
      reason: f.configured.paused
        ? 'paused in the configuration'
        : 'paused in the catalog (the configuration no longer says so: run mirrors apply)',
    };
  }
  if (m.phase !== 'ready') {
    return {
      name: 'Bootstrapping',
      reason: `snapshot not finished (phase ${m.phase}); run mirrors apply to complete it`,
      bytes_done: m.bytesDone,
      bytes_total: m.bytesTotal,
    };
  }
  if (m.lastError !== null && m.lastError !== undefined && !d.leaseHeld) {
    const error = describeError(m.lastError);
    return { name: 'Failed', reason: `the worker stopped: ${error}`, error };
  }
  // A missing or lost slot cannot be fixed by reconnecting: it needs a person (a new slot and a resync).
  if (f.source?.ok) {
    const slot = f.source.value.slot;
    if (!slot) {
      const error = `replication slot ${m.slotName} does not exist on peer ${f.sourcePeer}`;
      return {
        name: 'Failed',
        reason: `${error}; mirrors plan shows how to recreate it (the tables are copied again)`,
        error,
      };
    }
    if (slot.walStatus === 'lost') {
      const error = `replication slot ${slot.name} on peer ${f.sourcePeer} lost WAL it still needed`;
      return {
        name: 'Failed',
        reason: `${error}; mirrors plan shows how to recreate it (the tables are copied again)`,
        error,
      };
    }
  }
  if (f.source && !f.source.ok) return { name: 'Disconnected', reason: f.source.error.message };
  if (!d.leaseHeld) return { name: 'Disconnected', reason: 'no worker holds the lease (is mirrors run running?)' };
  const age = m.worker.heartbeatAgeMs;
  if (age === null || age > HEARTBEAT_STALE_MS) {
    return {
      name: 'Disconnected',
      reason:
        age === null
          ? 'the worker holding the lease has never sent a heartbeat'
          : `the worker's last heartbeat is ${Math.round(age / 1000)}s old`,
    };
  }
  const lag = effectiveLagMs(m);
  const threshold = lagThresholdMs(f);
  if (lag !== null && lag > threshold) {
    return {
      name: 'Degraded',
      reason: `lag ${lag} ms is over the threshold of ${threshold} ms`,
      lag_ms: lag,
      lag_threshold_ms: threshold,
    };
  }
  return { name: 'Following', reason: lag === null ? 'streaming' : `streaming, lag ${lag} ms` };
}

const sum = (xs: string[]) => xs.reduce((a, x) => a + BigInt(x), 0n).toString();

export function mirrorReport(f: MirrorFacts): MirrorReport {
  const d = f.destination.ok ? f.destination.value : null;
  const m = d?.mirror ?? null;
  const tables = d && m ? d.tables : [];
  const slotRead = f.source?.ok ? f.source.value : null;
  const slotName = m?.slotName ?? `mirrors_${f.name}`;
  const inserted = sum(tables.map((t) => t.rowsInserted));
  const updated = sum(tables.map((t) => t.rowsUpdated));
  const deleted = sum(tables.map((t) => t.rowsDeleted));
  const errors: PeerError[] = [];
  if (!f.destination.ok) errors.push(f.destination.error);
  if (f.source && !f.source.ok) errors.push(f.source.error);
  const s = slotRead?.slot ?? null;
  return {
    name: f.name,
    source: f.sourcePeer,
    destination: f.destinationPeer,
    mode: f.configured.mode,
    status: mirrorStatus(f),
    phase: m?.phase ?? null,
    paused: f.configured.paused || (m?.paused ?? false),
    reported_status: m?.reportedStatus ?? null,
    promoted_at: m?.promotedAt ?? null,
    last_applied_lsn: m?.lastAppliedLsn ?? null,
    last_commit_time: m?.lastCommitTime ?? null,
    last_apply_at: m?.lastApplyAt ?? null,
    lag_ms: m ? effectiveLagMs(m) : null,
    lag_bytes: s?.lagBytes ?? null,
    lag_threshold_ms: lagThresholdMs(f),
    rows_applied: m?.rowsApplied ?? null,
    rows: { inserted, updated, deleted, total: (BigInt(inserted) + BigInt(updated) + BigInt(deleted)).toString() },
    bootstrap: m ? { bytes_done: m.bytesDone, bytes_total: m.bytesTotal } : null,
    worker: {
      lease_held: d && m ? d.leaseHeld : null,
      host: m?.worker.host ?? null,
      pid: m?.worker.pid ?? null,
      since: m?.worker.since ?? null,
      heartbeat_at: m?.worker.heartbeatAt ?? null,
      heartbeat_age_ms: m?.worker.heartbeatAgeMs ?? null,
    },
    slot: slotRead
      ? {
          name: slotName,
          exists: s !== null,
          active: s?.active ?? null,
          active_pid: s?.activePid ?? null,
          confirmed_flush_lsn: s?.confirmedFlushLsn ?? null,
          restart_lsn: s?.restartLsn ?? null,
          wal_status: s?.walStatus ?? null,
          retained_bytes: s?.retainedBytes ?? null,
          current_lsn: s?.currentLsn ?? null,
        }
      : null,
    last_error: m?.lastError ?? null,
    errors,
    tables: tables.map((t) => ({
      source: t.source,
      destination: t.destination,
      state: t.state,
      snapshot_lsn: t.snapshotLsn,
      rows_copied: t.rowsCopied,
      bytes_copied: t.bytesCopied,
      bytes_total: t.bytesTotal,
      rows_inserted: t.rowsInserted,
      rows_updated: t.rowsUpdated,
      rows_deleted: t.rowsDeleted,
    })),
  };
}

export function statusReport(input: {
  configFile: string;
  createdBy: string;
  generatedAt: string;
  facts: MirrorFacts[];
}): StatusReport {
  const mirrors = [...input.facts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(mirrorReport);
  const byStatus = Object.fromEntries(STATUS_NAMES.map((n) => [n, 0])) as Record<StatusName, number>;
  for (const m of mirrors) byStatus[m.status.name]++;
  return {
    format_version: STATUS_FORMAT_VERSION,
    tool: 'mirrors',
    created_by: input.createdBy,
    generated_at: input.generatedAt,
    config_file: input.configFile,
    ok: mirrors.every((m) => m.status.name === 'Following'),
    summary: { total: mirrors.length, by_status: byStatus },
    mirrors,
  };
}

/** 0 when every mirror is Following, 2 otherwise (a cron job alerts on it); errors exit 1 elsewhere. */
export function statusExitCode(report: StatusReport): 0 | 2 {
  return report.ok ? 0 : 2;
}
