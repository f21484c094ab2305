/**
 * Reads the facts `mirrors status` needs: on each destination the catalog rows and whether the worker lease
 * is held, on each source the mirrors' slots. A constant number of queries per peer whatever the number of
 * mirrors or tables, peers in parallel. Read-only (READ ONLY transactions). A peer that cannot be read does
 * not abort anything: its mirrors carry the error (model.ts turns it into Disconnected).
 * Raw rows (snake_case, private types) are mapped to the facts of model.ts here.
 */
import type pg from 'pg';
import type { Config, Mirror, Peer } from '../config/types.js';
import { connectPeer, connectionError } from '../db/connect.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import { MirrorsError } from '../errors.js';
import { slotName } from '../plan/address.js';
import { LEASE_CLASS } from '../worker/lease-key.js';
import type {
  CatalogMirrorFacts,
  CatalogTableFacts,
  DestinationFacts,
  MirrorFacts,
  PeerError,
  PeerRead,
  SlotFacts,
  SourceFacts,
} from './model.js';

/** Whether the catalog exists, and whether it has migration 2's worker columns (an older catalog reads as NULLs). */
export const CATALOG_PROBE_SQL = `
SELECT to_regclass('mirrors.mirrors') IS NOT NULL AS has_catalog,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('mirrors.mirrors') AND attname = 'worker_heartbeat_at' AND NOT attisdropped) AS has_worker_columns`;

function v2(has: boolean, expr: string, fallback: string): string {
  return has ? expr : fallback;
}

export function catalogMirrorsSql(hasWorkerColumns: boolean): string {
  const w = (expr: string, type: string, alias: string) => `${v2(hasWorkerColumns, expr, `NULL::${type}`)} AS ${alias}`;
  return `
SELECT m.name, m.mode, m.status, m.phase, m.paused, m.settings, m.slot_name,
       m.last_applied_lsn::text AS last_applied_lsn, m.last_commit_time, m.rows_applied::text AS rows_applied,
       m.last_apply_at, m.bytes_done::text AS bytes_done, m.bytes_total::text AS bytes_total, m.last_error, m.promoted_at,
       ${w('m.lag_ms::text', 'text', 'lag_ms')},
       ${w('m.worker_host', 'text', 'worker_host')},
       ${w('m.worker_pid', 'int', 'worker_pid')},
       ${w('m.worker_since', 'timestamptz', 'worker_since')},
       ${w('m.worker_heartbeat_at', 'timestamptz', 'worker_heartbeat_at')},
       ${w('(extract(epoch FROM clock_timestamp() - m.worker_heartbeat_at) * 1000)::bigint::text', 'text', 'heartbeat_age_ms')}
  FROM mirrors.mirrors m
 WHERE m.name = ANY ($1::text[])
 ORDER BY m.name`;
}

export function catalogTablesSql(hasWorkerColumns: boolean): string {
  const count = (col: string) => `${v2(hasWorkerColumns, `t.${col}::text`, `'0'::text`)} AS ${col}`;
  return `
SELECT t.mirror, t.source_schema, t.source_table, t.dest_schema, t.dest_table, t.state,
       t.snapshot_lsn::text AS snapshot_lsn, t.rows_copied::text AS rows_copied, t.bytes_copied::text AS bytes_copied,
       t.bytes_total::text AS bytes_total, ${count('rows_inserted')}, ${count('rows_updated')}, ${count('rows_deleted')}
  FROM mirrors.tables t
 WHERE t.mirror = ANY ($1::text[])
 ORDER BY t.mirror, t.dest_schema, t.dest_table`;
}

/**
 * Whether a session holds the worker lease (LEASE_CLASS, hashtext(mirror)) in THIS database: advisory locks
 * are per database but pg_locks shows the whole cluster, and two databases may hold mirrors of the same name.
 * objsubid = 2 is the two-int4 form of pg_advisory_lock.
 */
export const LEASE_SQL = `
SELECT n.name,
       EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = d.oid
                  AND l.classid = $1::int::oid AND l.objid = hashtext(n.name)::oid AND l.objsubid = 2 AND l.granted) AS held
  FROM unnest($2::text[]) AS n(name),
       (SELECT oid FROM pg_database WHERE datname = current_database()) d`;

/** The mirrors' slots in this database; positions as text, byte distances as bigint text (never JS numbers). */
export const SLOTS_SQL = `
SELECT s.slot_name AS name, s.active, s.active_pid, s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
       s.restart_lsn::text AS restart_lsn, s.wal_status, w.lsn::text AS current_lsn,
       pg_wal_lsn_diff(w.lsn, s.restart_lsn)::bigint::text AS retained_bytes,
       pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn)::bigint::text AS lag_bytes
  FROM pg_replication_slots s,
       (SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS lsn) w
 WHERE s.slot_name = ANY ($1::text[]) AND s.database = current_database()`;

const iso = (v: unknown): string | null =>
  v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v);
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function mapMirror(r: any): CatalogMirrorFacts {
  return {
    mode: r.mode,
    reportedStatus: r.status,
    phase: r.phase,
    paused: r.paused,
    settings: r.settings ?? {},
    slotName: r.slot_name,
    lastAppliedLsn: r.last_applied_lsn,
    lastCommitTime: iso(r.last_commit_time),
    rowsApplied: r.rows_applied,
    lastApplyAt: iso(r.last_apply_at),
    bytesDone: r.bytes_done,
    bytesTotal: r.bytes_total,
    lastError: r.last_error ?? null,
    promotedAt: iso(r.promoted_at),
    lagMs: num(r.lag_ms),
    worker: {
      host: r.worker_host,
      pid: r.worker_pid,
      since: iso(r.worker_since),
      heartbeatAt: iso(r.worker_heartbeat_at),
      heartbeatAgeMs: num(r.heartbeat_age_ms),
    },
  };
}

function mapTable(r: any): CatalogTableFacts {
  return {
    source: { schema: r.source_schema, name: r.source_table },
    destination: { schema: r.dest_schema, name: r.dest_table },
    state: r.state,
    snapshotLsn: r.snapshot_lsn,
    rowsCopied: r.rows_copied,
    bytesCopied: r.bytes_copied,
    bytesTotal: r.bytes_total,
    rowsInserted: r.rows_inserted,
    rowsUpdated: r.rows_updated,
    rowsDeleted: r.rows_deleted,
  };
}

function mapSlot(r: any): SlotFacts {
  return {
    name: r.name,
    active: r.active,
    activePid: r.active_pid,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    restartLsn: r.restart_lsn,
    walStatus: r.wal_status,
    retainedBytes: r.retained_bytes,
    lagBytes: r.lag_bytes,
    currentLsn: r.current_lsn,
  };
}

/** Catalog rows and lease of `mirrors` on one destination: 3 queries without a catalog, 4 with one. */
export async function readDestination(db: Queryable, mirrors: string[]): Promise<Map<string, DestinationFacts>> {
  return inTransaction(
    db,
    async () => {
      const probe = (await db.query(CATALOG_PROBE_SQL)).rows[0];
      const lease = (await db.query(LEASE_SQL, [LEASE_CLASS, mirrors])).rows;
      const out = new Map<string, DestinationFacts>();
      for (const name of mirrors) out.set(name, { mirror: null, tables: [], leaseHeld: false });
      for (const r of lease) out.get(r.name)!.leaseHeld = r.held;
      if (!probe.has_catalog) return out;
      const has = probe.has_worker_columns as boolean;
      const [rows, tables] = [
        (await db.query(catalogMirrorsSql(has), [mirrors])).rows,
        (await db.query(catalogTablesSql(has), [mirrors])).rows,
      ];
      for (const r of rows) out.get(r.name)!.mirror = mapMirror(r);
      for (const t of tables) out.get(t.mirror)?.tables.push(mapTable(t));
      return out;
    },
    'read-only snapshot',
  );
}

/** The named slots on one source: 1 query. */
export async function readSource(db: Queryable, slots: string[]): Promise<Map<string, SlotFacts>> {
  const rows = (await db.query(SLOTS_SQL, [slots])).rows;
  return new Map(rows.map((r) => [r.name as string, mapSlot(r)]));
}

export interface CollectOptions {
  connectTimeoutMs?: number;
  /** Per-statement limit, so a wedged peer cannot hang the command. */
  statementTimeoutMs?: number;
}

function peerError(peer: Peer, role: PeerError['role'], err: unknown): PeerError {
  const e = err instanceof MirrorsError ? err : connectionError(peer, err);
  return { peer: peer.name, role, code: e.code, message: e.message, hint: e.hint ?? null };
}

async function withPeer<T>(
  peer: Peer,
  role: PeerError['role'],
  opts: CollectOptions,
  fn: (db: pg.Client) => Promise<T>,
): Promise<PeerRead<T>> {
  let client: pg.Client | undefined;
  try {
    client = await connectPeer(peer, {
      applicationName: 'mirrors status',
      connectTimeoutMs: opts.connectTimeoutMs,
      options: `-c search_path=pg_catalog -c statement_timeout=${opts.statementTimeoutMs ?? 15_000}`,
    });
    return { ok: true, value: await fn(client) };
  } catch (err) {
    return { ok: false, error: peerError(peer, role, err) };
  } finally {
    await client?.end().catch(() => {});
  }
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of xs) out.set(key(x), [...(out.get(key(x)) ?? []), x]);
  return out;
}

/**
 * The facts of each named mirror (names must be in config.mirrors). Destinations first, in parallel; then
 * the sources of the mirrors that exist and are not promoted (a promoted mirror's source may be gone for
 * good, and must not make status wait for a connection timeout), in parallel.
 */
export async function collectStatus(
  config: Config,
  names: string[],
  opts: CollectOptions = {},
): Promise<MirrorFacts[]> {
  const mirrors: Mirror[] = names.map((n) => config.mirrors[n]);

  const dest = new Map<string, PeerRead<Map<string, DestinationFacts>>>();
  await Promise.all(
    [...groupBy(mirrors, (m) => m.destination)].map(async ([peer, ms]) => {
      dest.set(
        peer,
        await withPeer(config.peers[peer], 'destination', opts, (db) =>
          readDestination(
            db,
            ms.map((m) => m.name),
          ),
        ),
      );
    }),
  );
  const destOf = (m: Mirror): PeerRead<DestinationFacts> => {
    const r = dest.get(m.destination)!;
    return r.ok ? { ok: true, value: r.value.get(m.name)! } : r;
  };
  const slotOf = (m: Mirror, d: PeerRead<DestinationFacts>) =>
    d.ok && d.value.mirror ? d.value.mirror.slotName : slotName(m.name);

  const needSource = mirrors.filter((m) => {
    const d = destOf(m);
    return !d.ok || (d.value.mirror !== null && d.value.mirror.promotedAt === null);
  });
  const src = new Map<string, PeerRead<Map<string, SlotFacts>>>();
  await Promise.all(
    [...groupBy(needSource, (m) => m.source)].map(async ([peer, ms]) => {
      src.set(
        peer,
        await withPeer(config.peers[peer], 'source', opts, (db) =>
          readSource(db, [...new Set(ms.map((m) => slotOf(m, destOf(m))))]),
        ),
      );
    }),
  );

  return mirrors.map((m) => {
    const d = destOf(m);
    const s = needSource.includes(m) ? src.get(m.source)! : null;
    const source: PeerRead<SourceFacts> | null =
      s === null ? null : s.ok ? { ok: true, value: { slot: s.value.get(slotOf(m, d)) ?? null } } : s;
    return {
      name: m.name,
      sourcePeer: m.source,
      destinationPeer: m.destination,
      configured: { mode: m.mode, paused: m.paused, lagThresholdMs: m.lag_threshold_ms },
      destination: d,
      source,
    };
  });
}
