/**
 * A plain (non-replication) connection to the source, beside the stream: the slot's state for the gap check
 * and the metrics (retained WAL, wal_status), the source's current WAL position for lag in bytes, and type
 * names for Relation messages. Statement timeout keeps a wedged source from holding the worker.
 */
import type pg from 'pg';
import type { Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import type { SlotState } from './gap.js';
import type { QualifiedName } from '../config/names.js';
import { sequenceStateSql, type SequenceStateRow } from '../diff/promotion-sql.js';
import { inspectPeer } from '../inspect/peer.js';
import type { PeerLive } from '../inspect/types.js';
import type { SequenceValue } from '../inspect/types.js';
import type { SourceColumn } from '../diff/schema-change.js';
import { quoteQualified } from '../db/quote.js';
import { relayName, relayTrigger, relayTriggerSql } from '../diff/truncate-relay.js';

export interface SourceSlotReading extends SlotState {
  /** pg_current_wal_lsn() */
  currentLsn: string;
  /** pg_current_wal_lsn() - restart_lsn, bigint text; null without a slot. */
  retainedBytes: string | null;
  /** Which server and database this is (pg_control_system().system_identifier, the database's OID). */
  systemIdentifier: string;
  databaseOid: string;
  /** The source's clock (clock_timestamp()), ISO. */
  sourceTime: string;
  /**
   * pg_stat_replication.sync_state of the walsender serving the slot (sync, quorum, potential, async), null when
   * none serves it; and synchronous_standby_names in effect.
   */
  syncState: string | null;
  standbyNames: string;
}

const SLOT_SQL = `
SELECT pg_current_wal_lsn()::text AS current_lsn, s.plugin, clock_timestamp() AS source_time,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS database_oid, s.confirmed_flush_lsn::text AS confirmed_flush_lsn, s.wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint::text AS retained_bytes,
       (SELECT r.sync_state FROM pg_stat_replication r WHERE r.pid = s.active_pid) AS sync_state,
       current_setting('synchronous_standby_names') AS standby_names
  FROM (SELECT 1) one
  LEFT JOIN pg_replication_slots s ON s.slot_name = $1::text AND s.database = current_database()`;

/** Leaves of the given partitioned roots without the relay trigger, when the relay's function exists. */
const RELAY_MISSING_SQL = `
SELECT ln.nspname AS schema, l.relname AS name
  FROM unnest($1::text[], $2::text[]) AS root(schema, name)
  JOIN pg_namespace rn ON rn.nspname = root.schema
  JOIN pg_class rc ON rc.relnamespace = rn.oid AND rc.relname = root.name AND rc.relkind = 'p'
 CROSS JOIN LATERAL pg_partition_tree(rc.oid) t
  JOIN pg_class l ON l.oid = t.relid
  JOIN pg_namespace ln ON ln.oid = l.relnamespace
 WHERE t.isleaf AND to_regprocedure($3::text) IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = l.oid AND g.tgname = $4::text)
 ORDER BY 1, 2`;

interface ColumnRow {
  name: string;
  attnum: number;
  type: string;
  notnull: boolean;
  default: string | null;
  identity: boolean;
  generated: boolean;
  has_missing: boolean;
  missing: string | null;
  collation: string | null;
  dropped: string;
}

/** One row per live column (or one with a NULL name for a table without any); NULL rows for a missing table. */
const TABLE_COLUMNS_SQL = `
SELECT a.attname AS name, a.attnum, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
       pg_get_expr(d.adbin, d.adrelid) AS default, a.attidentity <> '' AS identity, a.attgenerated <> '' AS generated,
       a.atthasmissing AS has_missing, CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END AS missing,
       CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
            THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                    FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation,
       (SELECT count(*) FROM pg_attribute x WHERE x.attrelid = c.oid AND x.attisdropped) AS dropped
  FROM pg_class c
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.oid = to_regclass($1::text)
 ORDER BY a.attnum`;

export class SourceMonitor {
  private constructor(private db: pg.Client) {}

  static async open(peer: Peer, applicationName: string): Promise<SourceMonitor> {
    const db = await connectPeer(peer, {
      applicationName,
      connectTimeoutMs: 10_000,
      // Never wait for a synchronous standby that may be this very mirror. lock_timeout: the truncate relay's
      // CREATE TRIGGER waits for a partition's writers, and holds this connection meanwhile: not for long.
      options: '-c statement_timeout=10000 -c synchronous_commit=local -c lock_timeout=1000',
    });
    return new SourceMonitor(db);
  }

  async slot(name: string): Promise<SourceSlotReading> {
    const r = (await this.db.query(SLOT_SQL, [name])).rows[0];
    return {
      exists: r.plugin !== null,
      plugin: r.plugin,
      confirmedFlushLsn: r.confirmed_flush_lsn,
      walStatus: r.wal_status,
      currentLsn: r.current_lsn,
      systemIdentifier: r.system_identifier,
      databaseOid: r.database_oid,
      retainedBytes: r.retained_bytes,
      sourceTime: new Date(r.source_time).toISOString(),
      syncState: r.sync_state,
      standbyNames: r.standby_names,
    };
  }

  /** format_type() of each (type OID, typmod) as the source names it. */
  async typeNames(cols: { typeOid: number; typmod: number }[]): Promise<string[]> {
    const r = await this.db.query(
      'SELECT format_type(t, m) AS type FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS u(t, m, i) ORDER BY i',
      [cols.map((c) => c.typeOid), cols.map((c) => c.typmod)],
    );
    return r.rows.map((x: { type: string }) => x.type);
  }

  /** The root of the partition tree `table` is a partition of; null when it is not a partition (or is gone). */
  async partitionRoot(table: QualifiedName): Promise<QualifiedName | null> {
    const r = await this.db.query(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = pg_partition_root(to_regclass($1::text)) AND c.oid <> to_regclass($1::text)`,
      [quoteQualified(table.schema, table.name)],
    );
    return r.rows[0] ?? null;
  }

  /**
   * The table's live columns as the source catalog has them now, in attnum order, with what decides how an added
   * one reaches the destination (diff/schema-change.ts), and how many columns it dropped; null when it is gone.
   */
  async tableColumns(table: QualifiedName): Promise<{ columns: SourceColumn[]; dropped: number } | null> {
    const r = await this.db.query(TABLE_COLUMNS_SQL, [quoteQualified(table.schema, table.name)]);
    if (!r.rows.length) return null;
    const dropped = Number(r.rows[0].dropped);
    const columns = r.rows
      .filter((c: ColumnRow) => c.name !== null)
      .map((c: ColumnRow): SourceColumn => {
        const col: SourceColumn = {
          name: c.name,
          attnum: c.attnum,
          type: c.type,
          notNull: c.notnull,
          default: c.default,
          generated: c.generated,
          identity: c.identity,
        };
        if (c.collation) col.collation = c.collation;
        if (c.has_missing) col.missing = c.missing;
        return col;
      });
    return { columns, dropped };
  }

  /**
   * Puts the mirror's relay trigger on the leaves of `roots` that lack it (a partition created since the last
   * apply), once the relay exists (the plan creates it): returns those it relays now. A leaf whose writers hold it
   * past the lock timeout, or that the role may not alter, waits for the next call.
   */
  async relayNewLeaves(
    mirror: string,
    roots: QualifiedName[],
    log: (leaf: QualifiedName, err: unknown) => void,
  ): Promise<QualifiedName[]> {
    if (!roots.length) return [];
    const relay = relayName(mirror);
    const r = await this.db.query(RELAY_MISSING_SQL, [
      roots.map((t) => t.schema),
      roots.map((t) => t.name),
      `${quoteQualified(relay.schema, relay.name)}()`,
      relayTrigger(mirror),
    ]);
    const done: QualifiedName[] = [];
    // One statement each, no transaction block: the connection is shared, and a query of another caller queued
    // between BEGIN and COMMIT would run inside it.
    for (const leaf of r.rows as QualifiedName[]) {
      try {
        await this.db.query(relayTriggerSql(mirror, leaf));
        done.push(leaf);
      } catch (err) {
        log(leaf, err);
      }
    }
    return done;
  }

  /** last_value and is_called of each sequence, in order. */
  async sequenceValues(sequences: QualifiedName[], serverVersionNum: number): Promise<SequenceValue[]> {
    const rows = (await this.db.query(sequenceStateSql(sequences, serverVersionNum))).rows as SequenceStateRow[];
    const byIndex = new Map(rows.map((r) => [Number(r.i), r]));
    return sequences.map((s, i) => ({
      schema: s.schema,
      name: s.name,
      last_value: byIndex.get(i)?.last_value ?? null,
      is_called: byIndex.get(i)?.is_called ?? null,
    }));
  }

  async close(): Promise<void> {
    const socket = (this.db as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    const timer = setTimeout(() => socket?.destroy(), 1_000);
    await this.db.end().catch(() => {});
    clearTimeout(timer);
  }
}

/**
 * The source as `mirrors plan` inspects it (read-only, search_path = pg_catalog, so defaults and sequence names
 * read as inspection's), on a connection of its own: what a promotion without the source needs (source-facts.ts).
 */
export async function inspectSource(peer: Peer, peerName: string, applicationName: string): Promise<PeerLive> {
  const db = await connectPeer(peer, {
    applicationName,
    connectTimeoutMs: 10_000,
    options: '-c search_path=pg_catalog -c statement_timeout=30000 -c synchronous_commit=local',
  });
  try {
    return await inspectPeer(peerName, db);
  } finally {
    await db.end().catch(() => {});
  }
}
