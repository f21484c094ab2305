/**
 * Reads the facts `mirrors status` needs: on each destination the catalog rows and whether the worker lease
 * and the apply lock are held, on each source its current WAL position and the mirrors' slots. A constant
 * number of queries per peer whatever the number of mirrors or tables, peers in parallel. Read-only (READ
 * ONLY transactions). A peer that cannot be read does not abort anything: its mirrors carry the error
 * (model.ts turns it into Disconnected). Raw rows (snake_case, private types) are mapped to the facts of
 * model.ts here.
 */
import type pg from 'pg';
import type { Config, Mirror, Peer } from '../config/types.js';
import { connectPeer, connectionError } from '../db/connect.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import { MirrorsError } from '../errors.js';
import { slotName } from '../plan/address.js';
import { LOCK_CLASS_APPLY } from '../apply/lock.js';
import { LEASE_CLASS } from '../worker/lease-key.js';
import type {
  ApplyLockRow,
  CatalogMirrorFacts,
  CatalogTableFacts,
  DestinationFacts,
  MirrorFacts,
  PeerError,
  PeerRead,
  SlotFacts,
  SourceFacts,
} from './model.js';
import { LIVE_HEARTBEAT_MS } from './lag.js';
import { toErrorHistory, toErrorRecord } from './stored-error.js';

/**
 * Whether the catalog exists, and which optional columns it has: migration 2's worker columns and migration
 * 5's lag facts and error history (behind_since stands for all of migration 5). Missing columns read as NULL.
 */
export const CATALOG_PROBE_SQL = `
SELECT to_regclass('mirrors.mirrors') IS NOT NULL AS has_catalog,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('mirrors.mirrors') AND attname = 'worker_heartbeat_at' AND NOT attisdropped) AS has_worker_columns,
       EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = to_regclass('mirrors.mirrors') AND attname = 'behind_since' AND NOT attisdropped) AS has_lag_facts,
       to_regclass('mirrors.sync_standbys') IS NOT NULL AS has_sync_standbys`;

/** Migration 8: the sync mirrors the degrade policy took out of synchronous_standby_names, and since when. */
export const SYNC_DEGRADED_SQL = `
SELECT d.key AS mirror, d.value AS since
  FROM mirrors.sync_standbys s, jsonb_each_text(s.degraded) d
 WHERE d.key = ANY ($1::text[])`;

/** The optional column groups a catalog has (CATALOG_PROBE_SQL). */
export interface CatalogColumns {
  /** migration 2 */
  worker: boolean;
  /** migration 5 */
  lagFacts: boolean;
}

/** Milliseconds since a timestamp, on the destination's clock (the client's clock may be skewed). */
const ageMs = (col: string) => `(extract(epoch FROM clock_timestamp() - ${col}) * 1000)::bigint::text`;

export function catalogMirrorsSql(has: CatalogColumns): string {
  const col = (present: boolean) => (expr: string, type: string, alias: string) =>
    `${present ? expr : `NULL::${type}`} AS ${alias}`;
  const w = col(has.worker);
  const v5 = col(has.lagFacts);
  // mirrors.locks exists since migration 1: its row names the apply that holds (or held) the lock.
  return `
SELECT m.name, m.mode, m.status, m.phase, m.paused, m.settings, m.slot_name,
       m.last_applied_lsn::text AS last_applied_lsn, m.last_commit_time, m.rows_applied::text AS rows_applied,
       m.last_apply_at, m.bytes_done::text AS bytes_done, m.bytes_total::text AS bytes_total, m.last_error, m.promoted_at,
       to_jsonb(m) -> 'promotion' AS promotion, to_jsonb(m) -> 'source_pulse' -> 'sync' AS sync_pulse,
       ${w('m.lag_ms::text', 'text', 'lag_ms')},
       ${w('m.worker_host', 'text', 'worker_host')},
       ${w('m.worker_pid', 'int', 'worker_pid')},
       ${w('m.worker_since', 'timestamptz', 'worker_since')},
       ${w('m.worker_heartbeat_at', 'timestamptz', 'worker_heartbeat_at')},
       ${w(ageMs('m.worker_heartbeat_at'), 'text', 'heartbeat_age_ms')},
       ${v5('m.error_history', 'jsonb', 'error_history')},
       ${v5('m.behind_since', 'timestamptz', 'behind_since')},
       ${v5('m.caught_up_at', 'timestamptz', 'caught_up_at')},
       ${v5(ageMs('m.behind_since'), 'text', 'behind_since_age_ms')},
       ${v5(ageMs('greatest(m.caught_up_at, m.last_commit_time)'), 'text', 'applied_through_age_ms')},
       l.host AS lock_host, l.pid AS lock_pid, l.command AS lock_command, l.since AS lock_since
  FROM mirrors.mirrors m
  LEFT JOIN mirrors.locks l ON l.mirror = m.name
 WHERE m.name = ANY ($1::text[])
 ORDER BY m.name`;
}

export function catalogTablesSql(has: CatalogColumns): string {
  const count = (col: string) => `${has.worker ? `t.${col}::text` : `'0'::text`} AS ${col}`;
  return `
SELECT t.mirror, t.source_schema, t.source_table, t.dest_schema, t.dest_table, t.state,
       t.snapshot_lsn::text AS snapshot_lsn, t.rows_copied::text AS rows_copied, t.bytes_copied::text AS bytes_copied,
       t.bytes_total::text AS bytes_total, ${count('rows_inserted')}, ${count('rows_updated')}, ${count('rows_deleted')},
       to_jsonb(t) -> 'last_schema_change' AS last_schema_change, to_jsonb(t) -> 'pending_schema_change' AS pending_schema_change,
       to_jsonb(t) -> 'merge' AS merge, to_jsonb(t) -> 'last_merge' AS last_merge
  FROM mirrors.tables t
 WHERE t.mirror = ANY ($1::text[])
 ORDER BY t.mirror, t.dest_schema, t.dest_table`;
}

/** Whether a session holds the advisory lock (class $n, hashtext(mirror)) in this database. */
const held = (classParam: string) => `EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = d.oid
                  AND l.classid = ${classParam}::int::oid AND l.objid = hashtext(n.name)::oid AND l.objsubid = 2 AND l.granted)`;

/**
 * Whether a session holds the worker lease (LEASE_CLASS) and the apply lock (LOCK_CLASS_APPLY), both keyed
 * by hashtext(mirror), in THIS database: advisory locks are per database but pg_locks shows the whole
 * cluster, and two databases may hold mirrors of the same name. objsubid = 2 is the two-int4 form of
 * pg_advisory_lock. Read from pg_locks, not from catalog rows: a lock dies with its session, a row does not.
 */
export const LOCKS_SQL = `
SELECT n.name,
       ${held('$1')} AS lease_held,
       ${held('$2')} AS apply_lock_held
  FROM unnest($3::text[]) AS n(name),
       (SELECT oid FROM pg_database WHERE datname = current_database()) d`;

/**
 * The source's current WAL position (NULL on a standby) and the mirrors' slots in this database: always one
 * row with the position, slot columns NULL when no slot matches. For sync mode, the sync_state of the walsender
 * serving each slot and synchronous_standby_names. Positions as text, byte distances as bigint
 * text (never JS numbers).
 */
export const SLOTS_SQL = `
SELECT s.slot_name AS name, s.active, s.active_pid, s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
       s.restart_lsn::text AS restart_lsn, s.wal_status, w.lsn::text AS current_lsn,
       pg_wal_lsn_diff(w.lsn, s.restart_lsn)::bigint::text AS retained_bytes,
       (SELECT r.sync_state FROM pg_stat_replication r WHERE r.pid = s.active_pid) AS sync_state,
       current_setting('synchronous_standby_names') AS standby_names
  FROM (SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn() END AS lsn) w
  LEFT JOIN pg_replication_slots s ON s.slot_name = ANY ($1::text[]) AND s.database = current_database()`;

const iso = (v: unknown): string | null =>
  v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v);
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function mapApplyLockRow(r: any): ApplyLockRow | null {
  return r.lock_host === null || r.lock_host === undefined
    ? null
    : { host: r.lock_host, pid: r.lock_pid, command: r.lock_command, since: iso(r.lock_since)! };
}

/** As mirrors.lag() decides it: a fresh heartbeat that says the worker streams. */
function workerLive(status: string, heartbeatAgeMs: number | null): boolean {
  return (
    (status === 'Following' || status === 'Degraded') && heartbeatAgeMs !== null && heartbeatAgeMs <= LIVE_HEARTBEAT_MS
  );
}

function mapMirror(r: any, has: CatalogColumns): CatalogMirrorFacts {
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
    lastError: toErrorRecord(r.last_error),
    errorHistory: toErrorHistory(r.error_history),
    promotedAt: iso(r.promoted_at),
    promotedUnfenced: r.promotion?.unfenced === true,
    syncPulse: r.sync_pulse ? { state: r.sync_pulse.state, since: r.sync_pulse.since } : null,
    lagMs: num(r.lag_ms),
    lagFacts: has.lagFacts
      ? {
          behindSince: iso(r.behind_since),
          caughtUpAt: iso(r.caught_up_at),
          behindSinceAgeMs: num(r.behind_since_age_ms),
          appliedThroughAgeMs: num(r.applied_through_age_ms),
          workerLive: workerLive(r.status, num(r.heartbeat_age_ms)),
        }
      : null,
    applyLockRow: mapApplyLockRow(r),
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
    lastSchemaChange: r.last_schema_change ?? null,
    pendingSchemaChange: r.pending_schema_change ?? null,
    merge: r.merge ?? null,
    lastMerge: r.last_merge ?? null,
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
    syncState: r.sync_state,
  };
}

/**
 * Catalog rows, lease and apply lock of `mirrors` on one destination, in one read-only snapshot: 2 queries
 * without a catalog, 4 with one, whatever the number of mirrors and tables.
 */
export async function readDestination(db: Queryable, mirrors: string[]): Promise<Map<string, DestinationFacts>> {
  return inTransaction(
    db,
    async () => {
      const probe = (await db.query(CATALOG_PROBE_SQL)).rows[0];
      const locks = (await db.query(LOCKS_SQL, [LEASE_CLASS, LOCK_CLASS_APPLY, mirrors])).rows;
      const out = new Map<string, DestinationFacts>();
      for (const name of mirrors)
        out.set(name, { mirror: null, tables: [], leaseHeld: false, applyLockHeld: false, syncDegradedSince: null });
      for (const r of locks)
        Object.assign(out.get(r.name)!, { leaseHeld: r.lease_held, applyLockHeld: r.apply_lock_held });
      if (!probe.has_catalog) return out;
      const has: CatalogColumns = { worker: probe.has_worker_columns, lagFacts: probe.has_lag_facts };
      const [rows, tables] = [
        (await db.query(catalogMirrorsSql(has), [mirrors])).rows,
        (await db.query(catalogTablesSql(has), [mirrors])).rows,
      ];
      for (const r of rows) out.get(r.name)!.mirror = mapMirror(r, has);
      for (const t of tables) out.get(t.mirror)?.tables.push(mapTable(t));
      if (probe.has_sync_standbys)
        for (const r of (await db.query(SYNC_DEGRADED_SQL, [mirrors])).rows)
          out.get(r.mirror)!.syncDegradedSince = r.since;
      return out;
    },
    'read-only snapshot',
  );
}

/** The source's current position and the named slots on one source: 1 query. */
export async function readSource(
  db: Queryable,
  slots: string[],
): Promise<{ currentLsn: string | null; standbyNames: string | null; slots: Map<string, SlotFacts> }> {
  const rows = (await db.query(SLOTS_SQL, [slots])).rows;
  return {
    currentLsn: rows[0]?.current_lsn ?? null,
    standbyNames: rows[0]?.standby_names ?? null,
    slots: new Map(rows.filter((r) => r.name !== null).map((r) => [r.name as string, mapSlot(r)])),
  };
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
  const src = new Map<string, PeerRead<Awaited<ReturnType<typeof readSource>>>>();
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
      s === null
        ? null
        : s.ok
          ? {
              ok: true,
              value: {
                slot: s.value.slots.get(slotOf(m, d)) ?? null,
                currentLsn: s.value.currentLsn,
                standbyNames: s.value.standbyNames,
              },
            }
          : s;
    return {
      name: m.name,
      sourcePeer: m.source,
      destinationPeer: m.destination,
      configured: {
        mode: m.mode,
        paused: m.paused,
        lagThresholdMs: m.lag_threshold_ms,
        ...(m.reverseOf ? { reverseOf: m.reverseOf } : {}),
      },
      destination: d,
      source,
    };
  });
}
