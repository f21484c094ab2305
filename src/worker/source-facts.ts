/**
 * What a promotion without the source needs to know of it (catalog migration 7; docs/promotion.md, "Disaster
 * recovery"), recorded on the destination while the source still answers: once it is gone nothing can be asked.
 *   facts: the mirrored source tables (columns, defaults, identity) and the sequences they use, so the new
 *     primary gets its defaults and sequences back; read again every FACTS_MS (schemas change).
 *   pulse: with each monitor reading (every 5 s): the source's clock and WAL position, the recent commit rate
 *     of the mirrored tables, and the sequences' values: the loss estimate and the new primary's sequences.
 */
import { tableKey, type QualifiedName } from '../config/names.js';
import type { PeerLive, SourceFacts } from '../inspect/types.js';

/** How often the definitions are read again (a peer-wide inspection: a few catalog queries). */
export const FACTS_MS = 60_000;
/** The commit rate is averaged over this window. */
const RATE_WINDOW_MS = 60_000;

/** The part of an inspected source a promotion of these tables needs: them, and the sequences they use. */
export function promotionFacts(peer: PeerLive, tables: QualifiedName[], at: string): SourceFacts {
  const wanted = new Set(tables.map(tableKey));
  const uses = (c: { schema: string; table: string } | null) =>
    c !== null && wanted.has(tableKey({ schema: c.schema, name: c.table }));
  return {
    at,
    server_version_num: peer.serverVersionNum,
    tables: [...wanted].flatMap((key) => (peer.tables[key] ? [peer.tables[key]] : [])),
    sequences: Object.values(peer.sequences ?? {}).filter((q) => uses(q.ownedBy) || q.defaultOf.some(uses)),
  };
}

/** Commits applied per second over a sliding window. */
export class CommitRate {
  private samples: { atMs: number; n: number }[] = [];
  constructor(private readonly startedAtMs: number) {}

  add(n: number, atMs: number) {
    this.samples.push({ atMs, n });
  }

  /** null until a few seconds have been watched: a rate from one batch says nothing. */
  perSecond(nowMs: number): number | null {
    this.samples = this.samples.filter((s) => nowMs - s.atMs <= RATE_WINDOW_MS);
    const watched = Math.min(RATE_WINDOW_MS, nowMs - this.startedAtMs);
    if (watched < 5_000) return null;
    const n = this.samples.reduce((sum, s) => sum + s.n, 0);
    return Math.round((n / (watched / 1000)) * 100) / 100;
  }
}
