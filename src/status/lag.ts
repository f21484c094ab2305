/**
 * How far behind a mirror is, in time and in WAL bytes. Pure: the ages are measured in SQL on the
 * destination's clock (as mirrors.lag() measures them, so the client's clock never matters) and LSNs are the
 * text Postgres prints.
 */
import { lsnToBigInt } from '../db/lsn.js';

/** mirrors.lag() reads quiet time up to this after the last caught-up keepalive as zero (the heartbeat's rhythm). */
export const CAUGHT_UP_GRACE_MS = 5_000;
/** The pre-migration-5 mirrors.lag(): heartbeat silence beyond this grace counts as lag. */
export const HEARTBEAT_GRACE_MS = 5_000;

/** The lag facts of migration 5, as ages on the destination's clock (null where the columns are NULL). */
export interface LagAges {
  /** now − behind_since: age of the oldest source commit received and not applied. */
  behindSinceAgeMs: number | null;
  /**
   * now − greatest(caught_up_at, last_commit_time): time since the last source instant up to which everything
   * is known applied (a keepalive's send time, or the last applied commit).
   */
  appliedThroughAgeMs: number | null;
  /**
   * A worker is streaming: its heartbeat is at most 5 s old and it reports Following or Degraded. Only then is
   * quiet time within the grace zero (a stopped, paused or failed worker's lag counts without grace).
   */
  workerLive: boolean;
}

/**
 * mirrors.lag() of migration 5, in milliseconds: the age of the oldest unapplied commit when one is known,
 * else the time since the last instant up to which everything is known applied (0 within the grace period),
 * null when the mirror has never streamed. Both inputs keep growing when the worker stops writing them, so a stopped,
 * stalled or failed worker shows a lag that grows. Negative ages (source clock ahead) read as 0, as in SQL.
 */
export function lagMs(ages: LagAges): number | null {
  if (ages.behindSinceAgeMs !== null) return Math.max(0, ages.behindSinceAgeMs);
  if (ages.appliedThroughAgeMs === null) return null;
  const quiet = Math.max(0, ages.appliedThroughAgeMs);
  return quiet <= CAUGHT_UP_GRACE_MS && ages.workerLive ? 0 : quiet;
}

/** How old a heartbeat may be for its worker to count as streaming (mirrors.lag()'s rule). */
export const LIVE_HEARTBEAT_MS = 5_000;

/** mirrors.lag() of migrations 2-4: the worker-reported lag plus heartbeat silence beyond the grace period. */
export function legacyLagMs(reportedLagMs: number | null, heartbeatAgeMs: number | null): number | null {
  if (reportedLagMs === null) return null;
  return reportedLagMs + (heartbeatAgeMs === null ? 0 : Math.max(0, heartbeatAgeMs - HEARTBEAT_GRACE_MS));
}

/**
 * WAL bytes the destination has not applied: the source's current position minus the mirror's
 * last_applied_lsn (both 'X/Y' text), as a decimal string (64-bit). null when either is unknown (a standby
 * source has no current position; a mirror before its snapshot has no applied one). Never negative: an
 * applied position past the source's (a source restored from a backup) reads 0 — the worker reports it.
 */
export function walBytesBehind(currentLsn: string | null, appliedLsn: string | null): string | null {
  if (currentLsn === null || appliedLsn === null) return null;
  const behind = lsnToBigInt(currentLsn) - lsnToBigInt(appliedLsn);
  return (behind > 0n ? behind : 0n).toString();
}
