/**
 * Statements on the destination's catalog schema `mirrors`, one function per statement family.
 * Values always travel as $n parameters with explicit casts.
 */
import type pg from 'pg';
import type { MirrorSettings } from '../config/types.js';
import type { TableSpec } from '../plan/types.js';
import type { AppliedSchemaChange } from '../inspect/types.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import { MIGRATIONS } from './migrations.js';

type Db = Pick<pg.Client, 'query'>;

/** Applies the migrations above `from`, each in its own transaction, serialized by an advisory lock. */
export async function migrateCatalog(db: Db): Promise<number> {
  let applied = 0;
  for (const m of MIGRATIONS) {
    await inTransaction(db, async () => {
      await db.query(`SELECT pg_advisory_xact_lock(hashtext('mirrors:catalog'))`);
      const exists = (await db.query(`SELECT to_regclass('mirrors.schema_migrations') IS NOT NULL AS ok`)).rows[0].ok;
      const done =
        exists &&
        (await db.query('SELECT 1 FROM mirrors.schema_migrations WHERE version = $1::int', [m.version])).rows.length >
          0;
      if (done) return;
      await db.query(m.sql);
      await db.query('INSERT INTO mirrors.schema_migrations (version, name) VALUES ($1::int, $2::text)', [
        m.version,
        m.name,
      ]);
      applied++;
    });
  }
  return applied;
}

export interface NewMirrorRow {
  name: string;
  sourcePeer: string;
  project: string;
  settings: MirrorSettings;
  configHash: string;
  slot: string;
  publication: string;
}

export async function insertMirror(db: Db, m: NewMirrorRow) {
  await db.query(
    `INSERT INTO mirrors.mirrors (name, source_peer, project, mode, paused, settings, config_hash, slot_name, publication_name)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::boolean, $6::jsonb, $7::text, $8::text, $9::text)`,
    [
      m.name,
      m.sourcePeer,
      m.project,
      m.settings.mode,
      m.settings.paused,
      JSON.stringify(m.settings),
      m.configHash,
      m.slot,
      m.publication,
    ],
  );
}

export async function updateMirrorSettings(db: Db, name: string, settings: MirrorSettings, configHash: string) {
  await db.query(
    `UPDATE mirrors.mirrors SET settings = $2::jsonb, mode = $3::text, paused = $4::boolean, config_hash = $5::text, updated_at = now() WHERE name = $1::text`,
    [name, JSON.stringify(settings), settings.mode, settings.paused, configHash],
  );
}

export async function deleteMirror(db: Db, name: string) {
  await db.query('DELETE FROM mirrors.deferred_changes WHERE mirror = $1::text', [name]);
  await db.query('DELETE FROM mirrors.verify_runs WHERE mirror = $1::text', [name]);
  await db.query('DELETE FROM mirrors.mirrors WHERE name = $1::text', [name]);
}

/** A new slot: the mirror resumes from its consistent point; the source it belongs to is recorded. */
export async function recordSlot(
  db: Db,
  name: string,
  slot: { consistentLsn: string; systemIdentifier: string; databaseOid: string },
) {
  await db.query(
    `UPDATE mirrors.mirrors SET consistent_lsn = $2::pg_lsn, last_applied_lsn = $2::pg_lsn, phase = 'snapshot', status = 'Bootstrapping',
            source_system_identifier = $3::text, source_database_oid = $4::oid, updated_at = now() WHERE name = $1::text`,
    [name, slot.consistentLsn, slot.systemIdentifier, slot.databaseOid],
  );
}

/**
 * Before a mirror gets a new slot: it stops streaming (phase snapshot) and every one of its tables must be
 * copied again (pending, no snapshot LSN), in one statement, so that whatever interrupts the resync (kill -9,
 * SIGINT, a failed copy) the next plan copies every table not finished since. The worker's batches wait for
 * this update (their fence holds these rows FOR SHARE) and then find the mirror no longer streaming.
 */
export async function startFullResync(db: Db, name: string, tables: 'copy' | 'merge') {
  // merge: the tables stay as they are; each one's merge action (requestMerge) follows the new slot.
  if (tables === 'merge') return setPhase(db, name, 'snapshot');
  await db.query(
    `WITH m AS (UPDATE mirrors.mirrors SET phase = 'snapshot', updated_at = now() WHERE name = $1::text RETURNING name)
     UPDATE mirrors.tables SET state = 'pending', snapshot_lsn = NULL, updated_at = now() WHERE mirror = $1::text`,
    [name],
  );
}

export async function setPhase(db: Db, name: string, phase: string) {
  await db.query(`UPDATE mirrors.mirrors SET phase = $2::text, updated_at = now() WHERE name = $1::text`, [
    name,
    phase,
  ]);
}

/** The position the mirror's slot was created at (recordSlot), or null. */
export async function consistentLsn(db: Db, name: string): Promise<string | null> {
  const r = await db.query(`SELECT consistent_lsn::text AS lsn FROM mirrors.mirrors WHERE name = $1::text`, [name]);
  return r.rows[0]?.lsn ?? null;
}

export async function setBootstrapProgress(db: Db, name: string, bytesDone: number, bytesTotal: number) {
  await db.query(
    `UPDATE mirrors.mirrors SET bytes_done = $2::bigint, bytes_total = $3::bigint, updated_at = now() WHERE name = $1::text`,
    [name, bytesDone, bytesTotal],
  );
}

/** $1..$7 of the statements that write a mirrored table's row from its spec. */
function tableRowParams(mirror: string, spec: TableSpec) {
  const { destination: d, source: s } = spec;
  return [mirror, d.schema, d.name, s.schema, s.name, spec.exclude_columns, spec.partition_key];
}

export async function insertTable(db: Db, mirror: string, spec: TableSpec) {
  await db.query(
    `INSERT INTO mirrors.tables (mirror, dest_schema, dest_table, source_schema, source_table, exclude_columns, partition_key, state)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text[], $7::text, 'pending')`,
    tableRowParams(mirror, spec),
  );
}

export async function replaceTable(db: Db, mirror: string, spec: TableSpec) {
  await db.query(
    `UPDATE mirrors.tables SET source_schema = $4::text, source_table = $5::text, exclude_columns = $6::text[], partition_key = $7::text,
            state = 'pending', snapshot_lsn = NULL, rows_copied = 0, bytes_copied = 0, updated_at = now()
      WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    tableRowParams(mirror, spec),
  );
}

/**
 * Asks the worker to repair a streaming table in place (worker/merge.ts); a merge under way starts over. The
 * table stays ready: the stream keeps applying its changes meanwhile. After a new slot, its snapshot LSN moves to
 * the slot's consistent point (where the stream starts): the table counts as resynced since, and is not copied.
 */
export async function requestMerge(
  db: Db,
  mirror: string,
  dest: { schema: string; name: string },
  merge: { key: string[]; chunk_rows: number },
) {
  await db.query(
    `UPDATE mirrors.tables t SET merge = jsonb_build_object('requested_at', now(), 'key', $4::jsonb, 'chunk_rows', $5::int),
            snapshot_lsn = greatest(t.snapshot_lsn, m.consistent_lsn), updated_at = now()
       FROM mirrors.mirrors m
      WHERE m.name = t.mirror AND t.mirror = $1::text AND t.dest_schema = $2::text AND t.dest_table = $3::text`,
    [mirror, dest.schema, dest.name, JSON.stringify(merge.key), merge.chunk_rows],
  );
}

export async function setTablePartitionKey(db: Db, mirror: string, spec: TableSpec) {
  await db.query(
    `UPDATE mirrors.tables SET partition_key = $4::text, updated_at = now() WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [mirror, spec.destination.schema, spec.destination.name, spec.partition_key],
  );
}

export async function deleteTable(db: Db, mirror: string, dest: { schema: string; name: string }) {
  await db.query(
    `DELETE FROM mirrors.deferred_changes WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [mirror, dest.schema, dest.name],
  );
  await db.query(
    `DELETE FROM mirrors.tables WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [mirror, dest.schema, dest.name],
  );
}

export async function setTableState(
  db: Db,
  mirror: string,
  dest: { schema: string; name: string },
  state: 'pending' | 'copying' | 'ready',
  extra: { snapshotLsn?: string | null; rows?: number; bytes?: number; bytesTotal?: number } = {},
) {
  await db.query(
    `UPDATE mirrors.tables SET state = $4::text,
            snapshot_lsn = CASE WHEN $5::boolean THEN $6::pg_lsn ELSE snapshot_lsn END,
            rows_copied = coalesce($7::bigint, rows_copied), bytes_copied = coalesce($8::bigint, bytes_copied),
            bytes_total = coalesce($9::bigint, bytes_total), updated_at = now()
      WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [
      mirror,
      dest.schema,
      dest.name,
      state,
      extra.snapshotLsn !== undefined,
      extra.snapshotLsn ?? null,
      extra.rows ?? null,
      extra.bytes ?? null,
      extra.bytesTotal ?? null,
    ],
  );
}

export interface JournalEntry {
  mirror: string | null;
  actionId: string;
  address: string;
  kind: string;
  op: string;
  outcome: 'done' | 'failed';
  error?: Record<string, unknown>;
  host: string;
  pid: number;
  command: string;
}

export async function journal(db: Queryable, e: JournalEntry) {
  await db.query(
    `INSERT INTO mirrors.journal (mirror, action_id, address, kind, op, outcome, error, host, pid, command)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb, $8::text, $9::int, $10::text)`,
    [
      e.mirror,
      e.actionId,
      e.address,
      e.kind,
      e.op,
      e.outcome,
      e.error ? JSON.stringify(e.error) : null,
      e.host,
      e.pid,
      e.command,
    ],
  );
}

/**
 * A schema change applied to a destination table (its DDL ran in the same transaction): kept columns, the
 * change the worker waited on cleared, the last change recorded for status.
 */
export async function recordSchemaChange(
  db: Queryable,
  mirror: string,
  table: { schema: string; name: string },
  change: AppliedSchemaChange,
  kept: string[],
  /** The journal row, for a change the worker applied (apply journals its actions itself). */
  journalOf?: Pick<JournalEntry, 'actionId' | 'address' | 'host' | 'pid' | 'command'>,
) {
  await db.query(
    `UPDATE mirrors.tables SET kept_columns = $4::text[], pending_schema_change = NULL, last_schema_change = $5::jsonb, updated_at = now()
      WHERE mirror = $1::text AND dest_schema = $2::text AND dest_table = $3::text`,
    [mirror, table.schema, table.name, kept, JSON.stringify(change)],
  );
  if (journalOf) await journal(db, { ...journalOf, mirror, kind: 'columns', op: 'update', outcome: 'done' });
}
