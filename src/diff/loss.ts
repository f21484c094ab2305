/**
 * The loss window of a promotion without the source (docs/promotion.md, "Disaster recovery"): what the
 * destination knows, from the worker's last record (catalog migrations 5 and 7), of the writes it may never
 * have received. Every instant is on the source's clock. Pure.
 *
 * Everything the source committed up to `applied_through` is on the destination: the last instant known applied,
 * the commit time of the last applied transaction (written with its rows) or a keepalive's send time. (Not
 * behind_since: it is only as fresh as the last heartbeat.) The source was last heard from at `source_last_seen`.
 * What it committed between the two never arrived or was not applied: `window_ms` of writes at the recent commit
 * rate is the estimate (an idle source lost nothing in it); what it committed after `source_last_seen` is known to
 * no one but the source.
 */
import { lsnToBigInt } from '../db/lsn.js';
import type { LossEstimate } from '../plan/types.js';
import type { CatalogMirror } from '../inspect/types.js';

export function lossEstimate(
  m: Pick<CatalogMirror, 'lastAppliedLsn' | 'appliedThrough' | 'sourceRecord'>,
  /** sync-standbys.ts syncGuarantee: why nothing acknowledged can be missing, or null. */
  synchronous: string | null = null,
): LossEstimate {
  const facts = m.appliedThrough;
  const pulse = m.sourceRecord?.pulse ?? null;
  const ms = (iso: string | null | undefined) => (iso ? Date.parse(iso) : null);
  const latest = (...xs: (number | null)[]) => {
    const known = xs.filter((x): x is number => x !== null && Number.isFinite(x));
    return known.length ? Math.max(...known) : null;
  };
  const appliedThrough = latest(ms(facts?.caughtUpAt), ms(facts?.lastCommitTime));
  const lastSeen = latest(ms(pulse?.at), ms(facts?.caughtUpAt), ms(facts?.lastCommitTime));
  const window = appliedThrough === null || lastSeen === null ? null : Math.max(0, lastSeen - appliedThrough);
  const rate = pulse?.commits_per_s ?? null;
  let unapplied: string | null = null;
  if (pulse?.lsn && m.lastAppliedLsn) {
    const d = lsnToBigInt(pulse.lsn) - lsnToBigInt(m.lastAppliedLsn);
    unapplied = (d > 0n ? d : 0n).toString();
  }
  if (synchronous !== null && appliedThrough !== null)
    return {
      applied_through: new Date(appliedThrough).toISOString(),
      source_last_seen: lastSeen === null ? null : new Date(lastSeen).toISOString(),
      window_ms: 0,
      unapplied_wal_bytes: unapplied,
      commits_per_s: rate,
      transactions: 0,
      synchronous,
    };
  return {
    applied_through: appliedThrough === null ? null : new Date(appliedThrough).toISOString(),
    source_last_seen: lastSeen === null ? null : new Date(lastSeen).toISOString(),
    window_ms: window,
    unapplied_wal_bytes: unapplied,
    commits_per_s: rate,
    transactions: window === null || rate === null ? null : Math.ceil((rate * window) / 1000),
    synchronous: null,
  };
}

/** One sentence for the plan: "about N transactions (S s of writes at R/s; B bytes of WAL unapplied) ...". */
export function describeLoss(e: LossEstimate, source: string): string {
  if (e.synchronous !== null)
    return `none that peer ${source} acknowledged: ${e.synchronous}${e.unapplied_wal_bytes && e.unapplied_wal_bytes !== '0' ? ` (${e.unapplied_wal_bytes} bytes of its WAL were not applied: other databases or tables, or commits no client was told of)` : ''}; whatever it committed after it was last heard from at ${e.source_last_seen} was never acknowledged to a client unless this mirror stopped being synchronous after that reading`;
  if (e.applied_through === null)
    return `the destination has no record of what it applied from peer ${source}: the loss cannot be estimated`;
  const parts: string[] = [];
  if (e.window_ms !== null) parts.push(`${(e.window_ms / 1000).toFixed(1)} s of writes`);
  if (e.commits_per_s !== null) parts.push(`at ${e.commits_per_s} transactions/s`);
  if (e.unapplied_wal_bytes !== null) parts.push(`${e.unapplied_wal_bytes} bytes of WAL not applied`);
  const n =
    e.transactions === null
      ? 'an unknown number of transactions'
      : `about ${e.transactions} transaction${e.transactions === 1 ? '' : 's'}`;
  return `${n} (${parts.join(', ') || 'no figures recorded'}) committed on peer ${source} after ${e.applied_through} may be lost, and whatever it committed after it was last heard from at ${e.source_last_seen}`;
}
