/**
 * The status of a mirror, computed from raw facts read by collect.ts (catalog rows, locks, slot). Pure:
 * no I/O, no `pg`, no clock (ages come from the destination's clock, in the facts). The StatusReport is
 * plain serializable data and IS the JSON output (docs/status-json.md); the text renderer reads it too.
 * 64-bit values (LSNs, bytes, rows) are strings; lag in milliseconds is a number.
 */
import type { QualifiedName } from '../config/names.js';
import { type LagAges, lagMs, legacyLagMs, walBytesBehind } from './lag.js';
import { describeError, type ErrorRecord, errorSentence, isRetried } from './stored-error.js';
import { listedNames, standbyName } from '../diff/sync-standbys.js';
import type { AppliedSchemaChange, PendingSchemaChange } from '../inspect/types.js';

/**
 * Version of the JSON contract. Still 1: everything issue 8 changed is an addition (behind_since,
 * caught_up_at, apply_lock, error_history) or a field keeping its documented meaning more exactly (lag_ms is
 * still mirrors.lag(), lag_bytes still the WAL the destination is behind, last_error a narrower JSON).
 */
export const STATUS_FORMAT_VERSION = 1;
/** A worker whose heartbeat is older than this is presumed gone even if its session still holds the lease. */
export const HEARTBEAT_STALE_MS = 15_000;
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

/** A mirrors.locks row: who took the apply lock last (src/apply/lock.ts). */
export interface ApplyLockRow {
  host: string;
  pid: number;
  command: string;
  since: string;
}

/** Migration 5's lag facts: the timestamps (source clock) and their ages on the destination's clock. */
export interface LagFacts extends LagAges {
  behindSince: string | null;
  caughtUpAt: string | null;
}

export interface CatalogMirrorFacts {
  mode: string;
  /** What the worker last wrote into mirrors.mirrors.status ('Failed': a person must act). */
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
  lastError: ErrorRecord | null;
  /** Newest first, at most 10; null when the catalog predates migration 5 (it keeps no history). */
  errorHistory: ErrorRecord[] | null;
  promotedAt: string | null;
  /** Promoted without the source (disaster recovery): nothing was fenced. */
  promotedUnfenced?: boolean;
  /** Sync mirrors: the worker's last reading of its walsender's sync_state, and since when (source clock). */
  syncPulse?: { state: string | null; since: string } | null;
  /** Worker-reported lag (mirrors.mirrors.lag_ms): the lag of catalogs before migration 5 only. */
  lagMs: number | null;
  /** null when the catalog predates migration 5: the lag is then lag_ms plus heartbeat silence. */
  lagFacts: LagFacts | null;
  /** Its row in mirrors.locks, if any: the current holder, or one left by an apply that was killed. */
  applyLockRow: ApplyLockRow | null;
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
  /** Migration 9 (docs/schema-changes.md); null before it. */
  lastSchemaChange: AppliedSchemaChange | null;
  pendingSchemaChange: PendingSchemaChange | null;
  /** Migration 10 (docs/resync.md): the merge asked for or under way, and the last one finished; null before it. */
  merge: MergeProgress | null;
  lastMerge: MergeProgress | null;
}

/** mirrors.tables.merge / last_merge as status shows them. */
export interface MergeProgress {
  requested_at: string;
  key: string[];
  chunk_rows: number;
  started_at?: string;
  finished_at?: string;
  cursor?: (string | null)[] | null;
  chunks?: number;
  rows?: number;
  inserted?: number;
  updated?: number;
  deleted?: number;
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
  /** pg_stat_replication.sync_state of the walsender serving the slot; null when none does. */
  syncState?: string | null;
}

export interface DestinationFacts {
  /** null: the mirror is not in the catalog (or there is no catalog). */
  mirror: CatalogMirrorFacts | null;
  tables: CatalogTableFacts[];
  /** A session holds the worker lease in this database. */
  leaseHeld: boolean;
  /** A session holds the apply lock in this database (an apply is running). */
  applyLockHeld: boolean;
  /** Sync mirrors: since when the degrade policy keeps it out of synchronous_standby_names (ISO), or null. */
  syncDegradedSince?: string | null;
}

export interface SourceFacts {
  /** null: no slot of that name in the source database. */
  slot: SlotFacts | null;
  /** pg_current_wal_lsn(); null on a standby. */
  currentLsn: string | null;
  /** synchronous_standby_names in effect. */
  standbyNames?: string | null;
}

export interface MirrorFacts {
  name: string;
  sourcePeer: string;
  destinationPeer: string;
  configured: {
    mode: string;
    paused: boolean;
    lagThresholdMs?: number;
    /** A reverse mirror (promote.reverse): the mirror whose promotion creates it. */
    reverseOf?: string;
  };
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
  | { name: 'Degraded'; reason: string; lag_ms: number | null; lag_threshold_ms: number }
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
  /** The last source schema change applied to the table: when, by whom (worker or apply), its summary and SQL. */
  last_schema_change: AppliedSchemaChange | null;
  /** The schema change a stopped worker waits on, for `mirrors plan` to propose (schema_changes: plan). */
  pending_schema_change: { detected_at: string; lsn: string; summary: string[]; copy: string | null } | null;
  /** A merge resync asked for or under way (resync_strategy merge): where it got to and what it changed so far. */
  merge: MergeProgress | null;
  /** The last merge resync finished, with the same figures and finished_at. */
  last_merge: MergeProgress | null;
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
  behind_since: string | null;
  caught_up_at: string | null;
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
  apply_lock: {
    held: boolean;
    host: string | null;
    pid: number | null;
    command: string | null;
    since: string | null;
  } | null;
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
  last_error: ErrorRecord | null;
  error_history: ErrorRecord[] | null;
  errors: PeerError[];
  tables: TableReport[];
  /** Sync mirrors whose source was read: whether source commits wait for it now (null otherwise). */
  sync: SyncReport | null;
}

export interface SyncReport {
  /** pg_stat_replication.sync_state of its walsender (sync, quorum, potential, async); null: none streams. */
  state: string | null;
  /** Source commits wait for it now (sync_state sync or quorum). */
  synchronous: boolean;
  /** Since when it has been in this state, as the worker last recorded it (source clock); null: not known. */
  since: string | null;
  /** Named in the source's synchronous_standby_names. */
  listed: boolean;
  /** The source's synchronous_standby_names in effect. */
  synchronous_standby_names: string;
  /** The degrade policy (on_sync_loss) took it out of the value at this instant; null: it did not. */
  degraded_since: string | null;
}

export interface StatusReport {
  format_version: typeof STATUS_FORMAT_VERSION;
  tool: 'mirrors';
  created_by: string;
  generated_at: string;
  config_file: string;
  /** true when every mirror is Following or Promoted (exit code 0). */
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

/** The lag exactly as the catalog's own mirrors.lag() computes it, for the catalog's version. */
export function mirrorLagMs(m: CatalogMirrorFacts): number | null {
  return m.lagFacts ? lagMs(m.lagFacts) : legacyLagMs(m.lagMs, m.worker.heartbeatAgeMs);
}

/** Sum of 64-bit decimal strings, exactly. */
const sum = (xs: string[]) => xs.reduce((a, x) => a + BigInt(x), 0n).toString();

/** Who holds (or last held) the apply lock, as apply names it when it waits (src/apply/lock.ts). */
function applyHolder(row: ApplyLockRow | null): string {
  return row ? `\`${row.command}\` (pid ${row.pid} on ${row.host}, since ${row.since})` : 'an apply';
}

/** phase is not ready: the snapshot belongs to `mirrors apply`, running now or to be run again. */
function snapshotStatus(d: DestinationFacts, m: CatalogMirrorFacts): MirrorStatus {
  const reason = d.applyLockHeld
    ? `snapshot in progress (phase ${m.phase}): ${applyHolder(m.applyLockRow)} holds the apply lock`
    : `snapshot not finished (phase ${m.phase}); run mirrors apply to complete it` +
      // The row outlives its lock only when that apply was killed: closing deletes it.
      (m.applyLockRow ? ` (the last apply, ${applyHolder(m.applyLockRow)}, was interrupted)` : '');
  return { name: 'Bootstrapping', reason, bytes_done: m.bytesDone, bytes_total: m.bytesTotal };
}

/**
 * The worker says Bootstrapping while the mirror's own phase is ready: it is starting (it waits for nothing else;
 * a table `mirrors apply` copies meanwhile has its changes deferred, and its state says so).
 */
function startingWorkerStatus(m: CatalogMirrorFacts): MirrorStatus {
  return {
    name: 'Bootstrapping',
    reason: 'the worker is starting',
    bytes_done: m.bytesDone,
    bytes_total: m.bytesTotal,
  };
}

function failedStatus(m: CatalogMirrorFacts): MirrorStatus {
  const e = m.lastError;
  if (!e) {
    const error = 'the worker marked the mirror Failed without recording an error';
    return { name: 'Failed', reason: error, error };
  }
  return {
    name: 'Failed',
    reason: `the worker cannot go on without a person${e.kind ? ` (${e.kind})` : ''}: ${errorSentence(e)}`,
    error: describeError(e),
  };
}

/** A missing or lost slot cannot be fixed by reconnecting: it needs a person (a new slot and a resync). */
function slotStatus(f: MirrorFacts, m: CatalogMirrorFacts): MirrorStatus | null {
  if (!f.source?.ok) return null;
  const slot = f.source.value.slot;
  const error = !slot
    ? `replication slot ${m.slotName} does not exist on peer ${f.sourcePeer}`
    : slot.walStatus === 'lost'
      ? `replication slot ${slot.name} on peer ${f.sourcePeer} lost WAL it still needed`
      : null;
  if (!error) return null;
  return {
    name: 'Failed',
    reason: `${error}; mirrors plan shows how to recreate it (the tables are copied again)`,
    error,
  };
}

/** Facts that make a streaming mirror not Following; null when the worker streams. */
function workerStatus(d: DestinationFacts, m: CatalogMirrorFacts): MirrorStatus | null {
  // The worker's own last error says why it is not streaming, as long as it is one it retries (a permanent
  // one makes the mirror Failed above; one left over from before a person fixed things must not mislead).
  const retried = m.lastError && isRetried(m.lastError) ? m.lastError : null;
  const lastError = retried ? `; last error ${errorSentence(retried)}` : '';
  if (!d.leaseHeld) {
    return { name: 'Disconnected', reason: `no worker holds the lease (is mirrors run running?)${lastError}` };
  }
  const age = m.worker.heartbeatAgeMs;
  if (age === null || age > HEARTBEAT_STALE_MS) {
    const silence =
      age === null
        ? 'the worker holding the lease has never sent a heartbeat'
        : `the worker's last heartbeat is ${Math.round(age / 1000)}s old`;
    return { name: 'Disconnected', reason: silence + lastError };
  }
  switch (m.reportedStatus) {
    case 'Following':
    case 'Degraded':
      return null;
    case 'Bootstrapping':
      return startingWorkerStatus(m);
    case 'Paused':
      // The catalog says streaming, the worker has not picked it up yet (it checks every second).
      return { name: 'Paused', reason: 'resuming: the worker has not picked up `paused: false` yet' };
    case 'Disconnected':
      return {
        name: 'Disconnected',
        reason: retried
          ? `the worker is reconnecting after an error ${errorSentence(retried)}`
          : 'the worker is reconnecting',
      };
    default:
      return {
        name: 'Disconnected',
        reason: `the worker holding the lease reports ${m.reportedStatus}, not streaming${lastError}`,
      };
  }
}

export function mirrorStatus(f: MirrorFacts): MirrorStatus {
  if (!f.destination.ok) return { name: 'Disconnected', reason: f.destination.error.message };
  const d = f.destination.value;
  const m = d.mirror;
  if (!m) {
    return {
      name: 'NotCreated',
      reason: d.applyLockHeld
        ? `not in the catalog of peer ${f.destinationPeer} yet: an apply holds its lock`
        : f.configured.reverseOf
          ? `created by the promotion of mirror ${f.configured.reverseOf} (promote.reverse)`
          : `not in the catalog of peer ${f.destinationPeer}; run mirrors apply`,
    };
  }
  if (m.promotedAt)
    return {
      name: 'Promoted',
      reason: m.promotedUnfenced
        ? `promoted at ${m.promotedAt} without a fence: its source could not be reached (once it answers, \`mirrors plan\` fences it)`
        : `promoted at ${m.promotedAt}`,
      promoted_at: m.promotedAt,
    };
  if (f.configured.paused || m.paused) {
    return {
      name: 'Paused',
      reason: f.configured.paused
        ? 'paused in the configuration'
        : 'paused in the catalog (the configuration no longer says so: run mirrors apply)',
    };
  }
  if (m.phase !== 'ready') return snapshotStatus(d, m);
  // The worker writes Failed when a person must act, and keeps retrying slowly meanwhile: Failed whether
  // or not it still holds the lease.
  if (m.reportedStatus === 'Failed') return failedStatus(m);
  const slot = slotStatus(f, m);
  if (slot) return slot;
  if (f.source && !f.source.ok) return { name: 'Disconnected', reason: f.source.error.message };
  const worker = workerStatus(d, m);
  if (worker) return worker;
  const lag = mirrorLagMs(m);
  const threshold = lagThresholdMs(f);
  const sync = syncReport(f);
  if (sync && !sync.synchronous)
    return { name: 'Degraded', reason: notSynchronous(sync), lag_ms: lag, lag_threshold_ms: threshold };
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

/** A sync mirror's standing on its source, when the source was read and the mirror streams there. */
export function syncReport(f: MirrorFacts): SyncReport | null {
  if (f.configured.mode !== 'sync' || !f.destination.ok || !f.source?.ok) return null;
  const m = f.destination.value.mirror;
  if (!m || m.promotedAt) return null;
  const state = f.source.value.slot?.syncState ?? null;
  const pulse = m.syncPulse ?? null;
  return {
    state,
    synchronous: state === 'sync' || state === 'quorum',
    since: pulse && pulse.state === state ? pulse.since : null,
    listed: listedNames(f.source.value.standbyNames ?? '').has(standbyName(f.name)),
    synchronous_standby_names: f.source.value.standbyNames ?? '',
    degraded_since: f.destination.value.syncDegradedSince ?? null,
  };
}

function notSynchronous(s: SyncReport): string {
  const what = 'sync mirror, but source commits do not wait for it';
  if (s.degraded_since)
    return `${what}: the degrade policy took it out of synchronous_standby_names at ${s.degraded_since} (on_sync_loss); \`mirrors run\` adds it back once it has caught up`;
  if (!s.listed) return `${what}: not in synchronous_standby_names (run mirrors plan)`;
  // Listed but not answering: commits wait for the quorum of the others, or for it (on_sync_loss: block).
  return `sync mirror not answering: ${s.state ? `its walsender is ${s.state}` : 'no walsender streams for it'}, and synchronous_standby_names = '${s.synchronous_standby_names}' still lists it: source commits that need it wait`;
}

export function mirrorReport(f: MirrorFacts): MirrorReport {
  const d = f.destination.ok ? f.destination.value : null;
  const m = d?.mirror ?? null;
  const tables = d && m ? d.tables : [];
  const sourceRead = f.source?.ok ? f.source.value : null;
  const slotName = m?.slotName ?? `mirrors_${f.name}`;
  const inserted = sum(tables.map((t) => t.rowsInserted));
  const updated = sum(tables.map((t) => t.rowsUpdated));
  const deleted = sum(tables.map((t) => t.rowsDeleted));
  const errors: PeerError[] = [];
  if (!f.destination.ok) errors.push(f.destination.error);
  if (f.source && !f.source.ok) errors.push(f.source.error);
  const s = sourceRead?.slot ?? null;
  const lock = m?.applyLockRow ?? null;
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
    // A promoted mirror streams nothing: no lag, and its last error belongs to the past (error_history keeps it).
    lag_ms: m && !m.promotedAt ? mirrorLagMs(m) : null,
    lag_bytes: m && !m.promotedAt && sourceRead ? walBytesBehind(sourceRead.currentLsn, m.lastAppliedLsn) : null,
    lag_threshold_ms: lagThresholdMs(f),
    behind_since: m?.lagFacts?.behindSince ?? null,
    caught_up_at: m?.lagFacts?.caughtUpAt ?? null,
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
    apply_lock: d
      ? {
          held: d.applyLockHeld,
          host: lock?.host ?? null,
          pid: lock?.pid ?? null,
          command: lock?.command ?? null,
          since: lock?.since ?? null,
        }
      : null,
    slot: sourceRead
      ? {
          name: slotName,
          exists: s !== null,
          active: s?.active ?? null,
          active_pid: s?.activePid ?? null,
          confirmed_flush_lsn: s?.confirmedFlushLsn ?? null,
          restart_lsn: s?.restartLsn ?? null,
          wal_status: s?.walStatus ?? null,
          retained_bytes: s?.retainedBytes ?? null,
          current_lsn: sourceRead.currentLsn,
        }
      : null,
    last_error: m && !m.promotedAt ? m.lastError : null,
    error_history: m?.errorHistory ?? null,
    errors,
    sync: syncReport(f),
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
      last_schema_change: t.lastSchemaChange,
      pending_schema_change: t.pendingSchemaChange && {
        detected_at: t.pendingSchemaChange.detected_at,
        lsn: t.pendingSchemaChange.lsn,
        summary: t.pendingSchemaChange.steps.map((x) => x.summary),
        copy: t.pendingSchemaChange.copy,
      },
      merge: t.merge,
      last_merge: t.lastMerge,
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
    // Promoted is done, not a problem: a cron job on `status` must not alert forever after a promotion.
    ok: mirrors.every((m) => m.status.name === 'Following' || m.status.name === 'Promoted'),
    summary: { total: mirrors.length, by_status: byStatus },
    mirrors,
  };
}

/** 0 when every mirror is Following, 2 otherwise (a cron job alerts on it); errors exit 1 elsewhere. */
export function statusExitCode(report: StatusReport): 0 | 2 {
  return report.ok ? 0 : 2;
}
