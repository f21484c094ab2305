/**
 * Inspection of every peer the selected mirrors use, in parallel, one connection per peer, a constant
 * number of queries per peer (see queries.ts). Never writes: each peer is read in a READ ONLY transaction.
 */
import type pg from 'pg';
import type { Config } from '../config/types.js';
import { tableKey } from '../config/names.js';
import { connectPeer, connectionError } from '../db/connect.js';
import { quoteQualified } from '../db/quote.js';
import { MirrorsError } from '../errors.js';
import { resolveMirrorTables } from './resolve.js';
import type { Queryable } from '../db/tx.js';
import { hasRowsSql, inspectPeer } from './peer.js';
import { CATALOG_SOURCE_FACTS_SQL } from './queries.js';
import type { Live, PeerLive } from './types.js';

export interface InspectResult {
  live: Live;
  /** Queries sent per peer (tests prove the count does not grow with the number of tables). */
  queries: Record<string, number>;
}

/** The peers a plan over `selected` mirrors (null = all) must read. */
export function peersFor(config: Config, selected: string[] | null): string[] {
  if (!selected) return Object.keys(config.peers).sort();
  const names = new Set<string>();
  for (const s of selected) {
    const m = config.mirrors[s];
    if (m) {
      names.add(m.source);
      names.add(m.destination);
    }
  }
  // A selected mirror absent from the config may be one to destroy: its destination is one of the peers.
  if (selected.some((s) => !config.mirrors[s])) for (const p of Object.keys(config.peers)) names.add(p);
  return [...names].sort();
}

export async function inspect(config: Config, selected: string[] | null): Promise<InspectResult> {
  const names = peersFor(config, selected);
  const queries: Record<string, number> = {};
  const clients: Record<string, pg.Client> = {};
  try {
    const settled = await Promise.allSettled(
      names.map(async (name) => {
        clients[name] = await connectPeer(config.peers[name], {
          applicationName: 'mirrors plan',
          options: '-c search_path=pg_catalog',
        });
      }),
    );
    const live: Live = { peers: {}, unreachable: {} };
    const failures: unknown[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') return;
      if (
        s.reason instanceof MirrorsError &&
        s.reason.code === 'PEER_UNREACHABLE' &&
        onlyPromotedFrom(config, selected, names[i])
      )
        live.unreachable![names[i]] = s.reason.message;
      else failures.push(s.reason);
    });
    if (failures.length) throw combine(failures);
    const reached = names.filter((n) => clients[n]);

    const counted: Record<string, Queryable> = {};
    for (const name of reached) {
      queries[name] = 0;
      counted[name] = {
        query: (sql: string, params?: unknown[]) => {
          queries[name]++;
          return clients[name].query(sql, params);
        },
      };
    }
    const peers = await Promise.all(
      reached.map((name) =>
        inspectPeer(name, counted[name]).catch((err) => {
          throw err instanceof MirrorsError ? err : connectionError(config.peers[name], err);
        }),
      ),
    );
    for (const p of peers) live.peers[p.peer] = p;
    await probeDestinationRows(config, selected, live, counted);
    await readSourceFacts(live, counted);
    return { live, queries };
  } finally {
    await Promise.all(Object.values(clients).map((c) => c.end().catch(() => {})));
  }
}

/**
 * Whether existing destination tables that are not yet recorded in the catalog hold rows (a snapshot
 * into them would mix data). One query per destination peer, whatever the number of tables.
 */
async function probeDestinationRows(
  config: Config,
  selected: string[] | null,
  live: Live,
  db: Record<string, Queryable>,
) {
  const perPeer = new Map<string, PeerLive['tables'][string][]>();
  for (const name of selected ?? Object.keys(config.mirrors)) {
    const m = config.mirrors[name];
    if (!m) continue;
    const src = live.peers[m.source];
    const dst = live.peers[m.destination];
    if (!src || !dst) continue;
    const recorded = new Set(dst.catalog.tables.filter((t) => t.mirror === name).map((t) => tableKey(t.destination)));
    for (const t of resolveMirrorTables(m, src).tables) {
      const k = tableKey(t.destination);
      const table = dst.tables[k];
      if (!table || recorded.has(k) || table.hasRows !== undefined) continue;
      // A table the role may not read cannot be probed; the plan reports the missing grant (MR127).
      if (table.missingPrivileges?.includes('SELECT') || dst.schemas?.[table.schema]?.usage === false) continue;
      table.hasRows = false;
      perPeer.set(m.destination, [...(perPeer.get(m.destination) ?? []), table]);
    }
  }
  for (const [peer, tables] of perPeer) {
    const rows = (await db[peer].query(hasRowsSql(tables.map((t) => quoteQualified(t.schema, t.name))))).rows;
    for (const r of rows) tables[r.i].hasRows = r.has_rows;
  }
}

/** For mirrors whose source cannot be reached: what their worker recorded of it. One query per destination. */
async function readSourceFacts(live: Live, db: Record<string, Queryable>) {
  const gone = new Set(Object.keys(live.unreachable ?? {}));
  if (!gone.size) return;
  for (const p of Object.values(live.peers)) {
    if (p.catalog.version < 7) continue;
    const mirrors = Object.values(p.catalog.mirrors).filter((m) => gone.has(m.sourcePeer));
    if (!mirrors.length) continue;
    const rows = (await db[p.peer].query(CATALOG_SOURCE_FACTS_SQL, [mirrors.map((m) => m.name)])).rows;
    for (const r of rows) {
      const m = p.catalog.mirrors[r.name];
      m.sourceRecord = { facts: r.source_facts, pulse: m.sourceRecord?.pulse ?? null };
    }
  }
}

/**
 * A peer that may be planned without (docs/promotion.md, "Disaster recovery"): the source of selected mirrors
 * that all declare `promote:`, and the destination of none. The plan then shows a promotion without the source;
 * any other peer that cannot be reached stops the plan.
 */
function onlyPromotedFrom(config: Config, selected: string[] | null, peer: string): boolean {
  const mirrors = (selected ?? Object.keys(config.mirrors))
    .map((n) => config.mirrors[n])
    .filter((m) => m !== undefined);
  const from = mirrors.filter((m) => m.source === peer);
  // A reverse mirror back to it is only declared, created by a promotion that cannot happen without the source.
  const into = mirrors.filter(
    (m) => m.destination === peer && !(m.reverseOf && config.mirrors[m.reverseOf]?.source === peer),
  );
  return from.length > 0 && from.every((m) => m.promote !== null) && into.length === 0;
}

function combine(errors: unknown[]): MirrorsError {
  const errs = errors.map((e) => (e instanceof MirrorsError ? e : new MirrorsError('PEER_ERROR', String(e))));
  if (errs.length === 1) return errs[0];
  return new MirrorsError(errs[0].code, errs.map((e) => e.message).join('\n'), { hint: errs[0].hint });
}
