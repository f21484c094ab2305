/**
 * A mirror's lag as the worker knows it, in the same terms as the catalog's mirrors.lag() (migration 5):
 * the age of the oldest source transaction received and not yet applied; when nothing is pending, the time
 * since the last source instant up to which everything is known applied (a keepalive's send time, or the last
 * applied commit), zero within CAUGHT_UP_GRACE_MS of it. So a stalled, silent or stopped stream shows a lag that keeps growing, and
 * a keepalive that waited behind a backlog (an old send time) never reads as "caught up".
 * Times are the source's clock (commit and keepalive times) against the local clock: skew adds to the lag.
 */

/** Keepalives answer the worker's pings every couple of seconds: silence shorter than this is not lag. */
export const CAUGHT_UP_GRACE_MS = 5_000;

export interface LagFacts {
  /** Source commit time (ms epoch) of the oldest transaction received and not yet applied; null when none. */
  pendingSinceMs: number | null;
  /**
   * The last source instant (ms epoch) up to which everything is known applied: a keepalive's send time, or the
   * commit time of the last applied transaction; null when none yet.
   */
  caughtUpAtMs: number | null;
}

/** Milliseconds behind the source, or null when the worker has never known (nothing received yet). */
export function lagMs(f: LagFacts, nowMs: number): number | null {
  if (f.pendingSinceMs !== null) return Math.max(0, nowMs - f.pendingSinceMs);
  if (f.caughtUpAtMs === null) return null;
  const quiet = Math.max(0, nowMs - f.caughtUpAtMs);
  return quiet <= CAUGHT_UP_GRACE_MS ? 0 : quiet;
}
