import { tableAddress } from '../plan/address.js';
import { tableKey } from '../config/names.js';
import type {
  CatalogMirror,
  GuardState,
  CatalogTable,
  LiveColumn,
  LiveIndex,
  LiveOtherRelation,
  LiveSchema,
  LiveSequence,
  LiveTable,
  LiveType,
  PeerLive,
  SyncStandbysRecord,
} from './types.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import * as Q from './queries.js';
import { readStandbyNames } from './standby-names.js';

export async function inspectPeer(peerName: string, db: Queryable): Promise<PeerLive> {
  return inTransaction(db, () => readPeer(peerName, db), 'read-only snapshot');
}

async function readPeer(peerName: string, db: Queryable): Promise<PeerLive> {
  const server = (await db.query(Q.SERVER_SQL)).rows[0];
  if (!server) throw new Error(`current role not found in pg_roles`);
  const v: number = server.version_num;
  const [tablesRes, indexesRes, fksRes, typesRes, pubsRes, slotsRes, extRes, accessRes, sequencesRes, swapRes] = [
    await db.query(Q.TABLES_SQL),
    await db.query(Q.INDEXES_SQL),
    await db.query(Q.FOREIGN_KEYS_SQL),
    await db.query(Q.TYPES_SQL),
    await db.query(Q.publicationsSql(v)),
    await db.query(Q.slotsSql(v)),
    await db.query(Q.EXTENSIONS_SQL),
    await db.query(Q.accessSql(v)),
    await db.query(Q.SEQUENCES_SQL),
    await db.query(Q.SWAP_FACTS_SQL),
  ];
  const access = accessRes.rows[0] ?? {};
  const schemas: Record<string, LiveSchema> = {};
  for (const x of access.schemas ?? [])
    schemas[x.name] = { name: x.name, owner: x.owner, owned: x.owned, usage: x.usage, create: x.create };
  const otherRelations: Record<string, LiveOtherRelation> = {};
  for (const x of access.relations ?? []) {
    const o: LiveOtherRelation = { schema: x.schema, name: x.name, kind: x.kind };
    if (x.partitionOf) o.partitionOf = { schema: x.partitionOf.schema, name: x.partitionOf.name };
    otherRelations[tableKey(o)] = o;
  }

  const types: Record<string, LiveType> = {};
  const typeKeyByOid = new Map<string, string>();
  for (const r of typesRes.rows) typeKeyByOid.set(r.oid, tableKey(r));
  for (const r of typesRes.rows) {
    const t: LiveType = { schema: r.schema, name: r.name, kind: typeKind(r.kind), extension: r.extension ?? undefined };
    if (r.labels) t.labels = r.labels;
    if (r.kind === 'd') {
      t.baseType = r.base_type;
      t.baseUserType = typeKeyByOid.get(r.base_elem);
      t.notNull = r.not_null;
      t.default = r.default_expr;
      t.checks = r.checks ?? [];
    }
    if (r.attributes) {
      t.attributes = r.attributes.map((a: any) => ({ name: a.name, type: a.type, userType: typeKeyByOid.get(a.elem) }));
    }
    if (r.range_subtype) t.rangeSubtype = r.range_subtype;
    types[tableKey(r)] = t;
  }

  const tables: Record<string, LiveTable> = {};
  const byOid = new Map<string, LiveTable>();
  for (const r of tablesRes.rows) {
    const columns: LiveColumn[] = (r.columns ?? []).map((c: any) => {
      const col: LiveColumn = {
        name: c.name,
        attnum: c.attnum,
        type: c.type,
        notNull: c.notnull,
        hasDefault: c.default !== null,
        identity: c.identity,
        generated: c.generated,
      };
      if (c.default !== null) col.default = c.default;
      if (c.collation) col.collation = c.collation;
      if (c.has_missing) col.missing = c.missing ?? null;
      const ut = typeKeyByOid.get(c.elem);
      if (ut) col.userType = ut;
      return col;
    });
    const t: LiveTable = {
      schema: r.schema,
      name: r.name,
      oid: r.oid,
      kind: r.kind,
      isPartition: false,
      columns,
      primaryKey: null,
      replicaIdentity: r.replident,
      replicaIdentityColumns: [],
      indexes: [],
      foreignKeys: [],
      estimatedRows: r.estimated_rows,
      sizeBytes: r.size_bytes,
      canSelect: r.can_select,
      hasGuard: r.guard_enabled !== null,
      droppedColumns: r.dropped_columns,
      persistence: r.persistence,
      owner: r.owner,
      owned: r.owned,
      ownerIsSuperuser: r.owner_superuser,
      missingPrivileges: r.missing_privileges ?? [],
    };
    if (r.leaf_problems) t.leafProblems = r.leaf_problems;
    if (r.leaves) t.leaves = r.leaves;
    if (r.guard_enabled in GUARD_STATES) t.guardState = GUARD_STATES[r.guard_enabled];
    tables[tableKey(t)] = t;
    byOid.set(r.oid, t);
  }
  for (const r of swapRes.rows) {
    const t = byOid.get(r.table_oid);
    if (!t) continue;
    t.swap = {
      quoted: r.quoted,
      owner: r.owner,
      comment: r.comment,
      columnComments: r.column_comments,
      grants: r.grants,
      rowSecurity: r.row_security,
      forceRowSecurity: r.force_row_security,
      policies: r.policies,
      replicaIdentity: r.replica_identity,
      replicaIdentityIndex: r.replica_identity_index,
      triggers: r.triggers,
      indexes: r.indexes,
      constraints: r.constraints,
      statistics: r.statistics,
      sequences: r.sequences,
      dependents: r.dependents.map((d: any) => ({
        kind: d.kind,
        description: d.description,
        on: d.on,
        onDisplay: d.on_display,
        name: d.name,
        definition: d.definition,
        validated: d.validated,
        owned: d.owned,
        recreate: d.recreate,
      })),
    };
  }
  for (const r of indexesRes.rows) {
    const t = byOid.get(r.table_oid);
    if (!t) continue;
    const columns: string[] = r.has_expressions ? [] : (r.columns ?? []);
    const idx: LiveIndex = {
      name: r.name,
      definition: r.definition,
      unique: r.is_unique,
      primary: r.is_primary,
      columns,
    };
    t.indexes.push(idx);
    if (r.is_primary) t.primaryKey = { name: r.constraint_name ?? r.name, columns, deferrable: r.deferrable };
    if (r.is_replident) t.replicaIdentityColumns = columns;
  }
  for (const r of fksRes.rows) {
    const t = byOid.get(r.table_oid);
    if (!t) continue;
    t.foreignKeys.push({
      name: r.name,
      definition: r.definition,
      references: { schema: r.ref_schema, name: r.ref_name },
    });
  }

  const publications: PeerLive['publications'] = {};
  for (const r of pubsRes.rows) {
    publications[r.name] = {
      name: r.name,
      owner: r.owner,
      owned: r.owned,
      allTables: r.all_tables,
      viaRoot: r.via_root,
      comment: r.comment,
      tables: (r.tables ?? []).map((x: any) => ({
        schema: x.schema,
        name: x.name,
        columns: x.columns ?? null,
        rowFilter: x.rowFilter ?? null,
      })),
    };
  }
  const slots: PeerLive['slots'] = {};
  for (const r of slotsRes.rows) {
    slots[r.name] = {
      name: r.name,
      plugin: r.plugin,
      slotType: r.slot_type,
      database: r.database,
      active: r.active,
      activePid: r.active_pid,
      temporary: r.temporary,
      confirmedFlushLsn: r.confirmed_flush_lsn,
      restartLsn: r.restart_lsn,
      walStatus: r.wal_status,
      retainedBytes: r.retained_bytes,
    };
  }
  const installed: string[] = [];
  const available: string[] = [];
  for (const r of extRes.rows) {
    available.push(r.name);
    if (r.installed_version) installed.push(r.name);
  }

  const catalog = server.has_catalog ? await readCatalog(db) : { version: 0, mirrors: {}, tables: [] };
  const standbyNames = await readStandbyNames(db, v);

  return {
    peer: peerName,
    serverVersionNum: v,
    serverVersion: server.version,
    database: server.database,
    systemIdentifier: server.system_identifier,
    databaseOid: server.database_oid,
    standbyNames,
    settings: {
      wal_level: server.wal_level,
      max_replication_slots: server.max_replication_slots,
      max_wal_senders: server.max_wal_senders,
      max_slot_wal_keep_size: server.max_slot_wal_keep_size ?? -1,
      synchronous_standby_names: server.synchronous_standby_names,
    },
    role: {
      name: server.role,
      superuser: server.superuser,
      replication: server.replication,
      canCreateInDatabase: server.can_create,
      ownsDatabase: server.owns_database,
      canEmitMessage: server.can_emit_message,
      canSetReplicationRole: access.can_set_replication_role,
    },
    slotsInUse: server.slots_in_use,
    walSendersInUse: server.wal_senders_in_use,
    publications,
    slots,
    tables,
    types,
    schemas,
    otherRelations,
    sequences: sequencesOf(sequencesRes.rows),
    extensions: { installed: [...new Set(installed)].sort(), available: [...new Set(available)].sort() },
    catalog,
  };
}

async function readCatalog(db: Queryable): Promise<PeerLive['catalog']> {
  const mirrorRows = (await db.query(Q.CATALOG_MIRRORS_SQL)).rows;
  const tableRows = (await db.query(Q.CATALOG_TABLES_SQL)).rows;
  const mirrors: Record<string, CatalogMirror> = {};
  let version = 0;
  for (const r of mirrorRows) {
    version = r.catalog_version ?? version;
    if (r.name === null) continue;
    mirrors[r.name] = {
      name: r.name,
      sourcePeer: r.source_peer,
      project: r.project,
      mode: r.mode,
      status: r.status,
      phase: r.phase,
      paused: r.paused,
      settings: r.settings,
      configHash: r.config_hash,
      consistentLsn: r.consistent_lsn,
      lastAppliedLsn: r.last_applied_lsn,
      bytesDone: r.bytes_done,
      bytesTotal: r.bytes_total,
      promotedAt: r.promoted_at,
      sourceIdentity:
        r.source_system_identifier === null
          ? null
          : { systemIdentifier: r.source_system_identifier, databaseOid: r.source_database_oid },
      promotion: r.promotion,
      // The facts are read only when a promotion without the source needs them (inspect/index.ts).
      sourceRecord: { facts: null, pulse: r.source_pulse },
      appliedThrough: {
        lastCommitTime: r.last_commit_time,
        caughtUpAt: r.caught_up_at,
        behindSince: r.behind_since,
      },
      heartbeatAgeMs: r.heartbeat_age_ms === null ? null : Number(r.heartbeat_age_ms),
      leaseHeld: r.lease_held,
    };
  }
  const tables: CatalogTable[] = tableRows.map((r: any) => ({
    mirror: r.mirror,
    source: { schema: r.source_schema, name: r.source_table },
    destination: { schema: r.dest_schema, name: r.dest_table },
    excludeColumns: r.exclude_columns ?? [],
    partitionKey: r.partition_key,
    state: r.state,
    snapshotLsn: r.snapshot_lsn,
    rowsCopied: r.rows_copied,
    bytesCopied: r.bytes_copied,
    keptColumns: r.kept_columns ?? [],
    pendingSchemaChange: r.pending_schema_change ?? null,
    lastSchemaChange: r.last_schema_change ?? null,
    lastMergeAt: r.last_merge_at ?? null,
    lastVerify: null,
  }));
  if (version >= 12) {
    const byAddress = new Map(tables.map((t) => [tableAddress(t.mirror, t.destination), t]));
    for (const r of (await db.query(Q.CATALOG_VERIFY_SQL)).rows) {
      const t = byAddress.get(r.address);
      if (t)
        t.lastVerify = {
          run: r.run,
          finishedAt: new Date(r.finished_at).toISOString(),
          targetLsn: r.target_lsn,
          outcome: r.outcome,
          missing: Number(r.missing),
          extra: Number(r.extra),
          changed: Number(r.changed),
        };
    }
  }
  // Migration 8: the synchronous_standby_names value mirrors last wrote, per source cluster.
  const syncStandbys: Record<string, SyncStandbysRecord> = {};
  if (version >= 8)
    for (const r of (await db.query(Q.CATALOG_SYNC_STANDBYS_SQL)).rows)
      syncStandbys[r.source_system_identifier] = { value: r.value, degraded: r.degraded };
  return { version, mirrors, tables, syncStandbys };
}

/** Rows of SEQUENCES_SQL: each use is `a`/`i` (the owning column, identity for `i`) or `default`. */
function sequencesOf(rows: any[]): Record<string, LiveSequence> {
  const sequences: Record<string, LiveSequence> = {};
  for (const r of rows) {
    const s: LiveSequence = {
      schema: r.schema,
      name: r.name,
      regclass: r.regclass,
      dataType: r.data_type,
      start: r.start,
      increment: r.increment,
      min: r.min,
      max: r.max,
      cache: r.cache,
      cycle: r.cycle,
      ownedBy: null,
      defaultOf: [],
    };
    for (const u of r.uses ?? []) {
      const column = { schema: u.schema, table: u.table, column: u.column };
      if (u.how === 'default') s.defaultOf.push(column);
      else s.ownedBy = { ...column, identity: u.how === 'i' };
    }
    sequences[tableKey(s)] = s;
  }
  return sequences;
}

/** pg_trigger.tgenabled. */
const GUARD_STATES: Record<string, GuardState> = { O: 'enabled', D: 'disabled', R: 'replica', A: 'always' };

function typeKind(k: string): LiveType['kind'] {
  return k === 'e' ? 'enum' : k === 'd' ? 'domain' : k === 'c' ? 'composite' : k === 'r' ? 'range' : 'base';
}

/** One query telling, for each given table, whether it holds a row. Identifiers are quoted by the caller's function. */
export function hasRowsSql(quotedTables: string[]): string {
  return quotedTables
    .map((q, i) => `SELECT ${i} AS i, EXISTS (SELECT 1 FROM ${q} LIMIT 1) AS has_rows`)
    .join('\nUNION ALL\n');
}
