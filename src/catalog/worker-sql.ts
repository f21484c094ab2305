/** Catalog statements of the streaming worker (positions, lease holder, heartbeat). */
import type { Queryable } from '../db/tx.js';
import type { PendingSchemaChange } from '../inspect/types.js';

type Db = Queryable;

export type TableCounts = Map<
  string,
  { schema: string; name: string; inserted: number; updated: number; deleted: number; truncated: number }
>;

export interface MirrorState {
  name: string;
  phase: string;
  paused: boolean;
  lastAppliedLsn: string | null;
  promoted: boolean;
  /** The source server and database the slot was created on (migration 6); null: not recorded. */
  sourceIdentity: { systemIdentifier: string; databaseOid: string } | null;
  /** Snapshot progress (bigint text). */
  bytesDone: string;
  bytesTotal: string;
  slot: string;
  publication: string;
  tables: {
    sourceSchema: string;
    sourceTable: string;
    destSchema: string;
    destTable: string;
    state: string;
    snapshotLsn: string | null;
    /** Destination columns (name -> format_type), in column order; generated ones left out (never sent). */
    types: Record<string, string>;
    excludeColumns: string[];
    /** Destination columns kept after a drop on the source (migration 9): the stream writes none of them. */
    keptColumns: string[];
    /** Whether a schema change the worker stopped at is recorded for the plan (migration 9). */
    schemaChangePending: boolean;
    /** The merge resync asked for or under way (migration 10), or null. */
    merge: MergeState | null;
  }[];
}

/** mirrors.tables.merge (migration 10): written by apply, advanced by the worker with each chunk. */
export interface MergeState {
  requested_at: string;
  key: string[];
  chunk_rows: number;
  /** The last key merged (text values, key order); absent before the first chunk. */
  cursor?: (string | null)[];
  started_at?: string;
  chunks?: number;
  rows?: number;
  inserted?: number;
  updated?: number;
  deleted?: number;
}

/** The mirror's tables that have changes deferred during their copy (worker/deferred.ts). */
export async function deferredTables(db: Db, mirror: string): Promise<MirrorState['tables']> {
  const state = await loadMirrorState(db, mirror);
  const r = await db.query('SELECT DISTINCT dest_schema, dest_table FROM mirrors.deferred_changes WHERE mirror = $1', [
    mirror,
  ]);
  const keys = new Set(
    r.rows.map((x: { dest_schema: string; dest_table: string }) => `${x.dest_schema}.${x.dest_table}`),
  );
  return (state?.tables ?? []).filter((t) => keys.has(`${t.destSchema}.${t.destTable}`));
}

export async function loadMirrorState(db: Db, mirror: string): Promise<MirrorState | null> {
  const m = (
    await db.query(
      `SELECT name, phase, paused, promoted_at IS NOT NULL AS promoted, last_applied_lsn::text AS last_applied_lsn, slot_name, publication_name,
              bytes_done::text AS bytes_done, bytes_total::text AS bytes_total,
              to_jsonb(m) ->> 'source_system_identifier' AS source_system_identifier,
              to_jsonb(m) ->> 'source_database_oid' AS source_database_oid
         FROM mirrors.mirrors m WHERE name = $1::text`,
      [mirror],
    )
  ).rows[0];
  if (!m) return null;
  const tables = (
    await db.query(
      `SELECT t.source_schema, t.source_table, t.dest_schema, t.dest_table, t.state, t.snapshot_lsn::text AS snapshot_lsn,
              t.exclude_columns, to_jsonb(t) -> 'kept_columns' AS kept_columns,
              coalesce(to_jsonb(t) -> 'pending_schema_change', 'null') <> 'null' AS schema_change_pending,
              to_jsonb(t) -> 'merge' AS merge,
              (SELECT json_object_agg(a.attname, format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                 FROM pg_attribute a
                WHERE a.attrelid = to_regclass(quote_ident(t.dest_schema) || '.' || quote_ident(t.dest_table))
                  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS types
         FROM mirrors.tables t WHERE t.mirror = $1::text`,
      [mirror],
    )
  ).rows;
  return {
    name: m.name,
    phase: m.phase,
    paused: m.paused,
    promoted: m.promoted,
    sourceIdentity:
      m.source_system_identifier === null
        ? null
        : { systemIdentifier: m.source_system_identifier, databaseOid: m.source_database_oid },
    bytesDone: m.bytes_done,
    bytesTotal: m.bytes_total,
    lastAppliedLsn: m.last_applied_lsn,
    slot: m.slot_name,
    publication: m.publication_name,
    tables: tables.map((t: any) => ({
      sourceSchema: t.source_schema,
      sourceTable: t.source_table,
      destSchema: t.dest_schema,
      destTable: t.dest_table,
      state: t.state,
      snapshotLsn: t.snapshot_lsn,
      types: t.types ?? {},
      excludeColumns: t.exclude_columns ?? [],
      keptColumns: t.kept_columns ?? [],
      schemaChangePending: t.schema_change_pending,
      merge: t.merge ?? null,
    })),
  };
}

/** Whether a table of the mirror has a merge asked for or under way (a cheap poll). */
export async function anyMerge(db: Db, mirror: string): Promise<boolean> {
  const r = await db.query(
    'SELECT EXISTS (SELECT 1 FROM mirrors.tables WHERE mirror = $1::text AND merge IS NOT NULL) AS any',
    [mirror],
  );
  return r.rows[0].any;
}

/**
 * One merged chunk, in the transaction that wrote it: where the merge got to and what it changed; with `done`, the
 * merge is over (moved to last_merge). False when the merge is no longer the one requested at `requestedAt` (a
 * new --replace started it over, or the table is gone): the caller rolls back.
 */
export async function recordMergeChunk(
  db: Db,
  mirror: string,
  dest: { schema: string; name: string },
  requestedAt: string,
  chunk: { cursor: (string | null)[] | null; rows: number; inserted: number; updated: number; deleted: number },
  done: boolean,
): Promise<boolean> {
  const r = await db.query(
    `WITH next AS (
       SELECT t.merge || jsonb_build_object(
                'cursor', $5::jsonb, 'started_at', coalesce(t.merge -> 'started_at', to_jsonb(now())), 'at', now(),
                'chunks', coalesce((t.merge ->> 'chunks')::bigint, 0) + 1,
                'rows', coalesce((t.merge ->> 'rows')::bigint, 0) + $6::bigint,
                'inserted', coalesce((t.merge ->> 'inserted')::bigint, 0) + $7::bigint,
                'updated', coalesce((t.merge ->> 'updated')::bigint, 0) + $8::bigint,
                'deleted', coalesce((t.merge ->> 'deleted')::bigint, 0) + $9::bigint) AS m
         FROM mirrors.tables t
        WHERE t.mirror = $1::text AND t.dest_schema = $2::text AND t.dest_table = $3::text
          AND t.merge ->> 'requested_at' = $4::text
          FOR UPDATE)
     UPDATE mirrors.tables t
        SET merge = CASE WHEN $10::boolean THEN NULL ELSE next.m END,
            last_merge = CASE WHEN $10::boolean THEN next.m || jsonb_build_object('finished_at', now()) ELSE t.last_merge END,
            updated_at = now()
       FROM next
      WHERE t.mirror = $1::text AND t.dest_schema = $2::text AND t.dest_table = $3::text
     RETURNING 1`,
    [
      mirror,
      dest.schema,
      dest.name,
      requestedAt,
      JSON.stringify(chunk.cursor),
      chunk.rows,
      chunk.inserted,
      chunk.updated,
      chunk.deleted,
      done,
    ],
  );
  return r.rows.length > 0;
}

/** Caught up and idle: the position moves to what the source says it has sent (before it is acknowledged). */
export async function recordCaughtUp(db: Db, mirror: string, lsn: string, caughtUpAt: Date) {
  await db.query(`SELECT mirrors.record_caught_up($1::text, $2::pg_lsn, $3::timestamptz)`, [
    mirror,
    lsn,
    caughtUpAt.toISOString(),
  ]);
}

/** What the heartbeat returns: what the worker must obey between batches. */
export interface CatalogOrders {
  paused: boolean;
  phase: string;
  promoted: boolean;
}

/**
 * The worker's status and lag facts (source clock: see migration 5); returns the mirror's orders, or null
 * when the mirror is gone from the catalog.
 */
export async function recordHeartbeat(
  db: Db,
  mirror: string,
  status: string,
  behindSince: Date | null,
  caughtUpAt: Date | null,
): Promise<CatalogOrders | null> {
  const r = await db.query(
    `SELECT paused, phase, promoted FROM mirrors.heartbeat($1::text, $2::text, $3::timestamptz, $4::timestamptz)`,
    [mirror, status, behindSince?.toISOString() ?? null, caughtUpAt?.toISOString() ?? null],
  );
  return r.rows[0] ?? null;
}

/** The error the catalog keeps (mirrors.mirrors.last_error and error_history): docs/status-json.md. */
export interface StoredError {
  at: string;
  kind: string;
  code: string | null;
  message: string;
  hint: string | null;
}

export async function recordError(db: Db, mirror: string, status: string, err: StoredError, behindSince: Date | null) {
  await db.query(`SELECT mirrors.record_error($1::text, $2::text, $3::jsonb, $4::timestamptz)`, [
    mirror,
    status,
    JSON.stringify(err),
    behindSince?.toISOString() ?? null,
  ]);
}

export async function recordWorker(db: Db, mirror: string, host: string, pid: number) {
  await db.query(
    `UPDATE mirrors.mirrors SET worker_host = $2::text, worker_pid = $3::int, worker_since = now(), worker_heartbeat_at = now() WHERE name = $1::text`,
    [mirror, host, pid],
  );
}

/**
 * Ready tables of the mirror whose read-only guard is missing or not in its normal state (tgenabled 'O':
 * fires for ordinary sessions, not for the worker's replica-role session). Disabled, anyone may write to the
 * mirror; ENABLE ALWAYS or REPLICA, the worker's own writes fail.
 */
export async function unguardedTables(db: Db, mirror: string, trigger: string): Promise<string[]> {
  const r = await db.query(
    `SELECT format('%I.%I', t.dest_schema, t.dest_table) AS name,
            (SELECT g.tgenabled FROM pg_trigger g
              WHERE g.tgrelid = to_regclass(quote_ident(t.dest_schema) || '.' || quote_ident(t.dest_table)) AND g.tgname = $2::text) AS enabled
       FROM mirrors.tables t
      WHERE t.mirror = $1::text AND t.state = 'ready'
      ORDER BY 1`,
    [mirror, trigger],
  );
  return r.rows
    .filter((x: { enabled: string | null }) => x.enabled !== 'O')
    .map((x) => `${x.name}${x.enabled === null ? ' (no guard)' : ` (guard state ${x.enabled})`}`);
}

/** What a promotion without the source needs (migration 7; worker/source-facts.ts). Never on a promoted mirror. */
export async function recordSourceFacts(
  db: Db,
  mirror: string,
  column: 'source_facts' | 'source_pulse',
  value: unknown,
) {
  await db.query(`UPDATE mirrors.mirrors SET ${column} = $2::jsonb WHERE name = $1::text AND promoted_at IS NULL`, [
    mirror,
    JSON.stringify(value),
  ]);
}

/** A schema change the worker stopped at (schema_changes: plan, or one needing a copy), for the plan to propose. */
export async function recordPendingSchemaChange(
  db: Db,
  mirror: string,
  table: { schema: string; name: string },
  pending: PendingSchemaChange | null,
) {
  await db.query(
    `UPDATE mirrors.tables SET pending_schema_change = $4::jsonb
      WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [mirror, table.schema, table.name, pending === null ? null : JSON.stringify(pending)],
  );
}
