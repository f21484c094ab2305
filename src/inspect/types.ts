/**
 * `Live`: what inspection found on the peers. Plain data (LSNs, OIDs and byte counts as strings), so the
 * pure stages (diff, plan) can be tested against constructed values.
 */

export interface LiveColumn {
  name: string;
  /** pg_attribute.attnum: kept by a rename, and above every other (live or dropped) attnum for an added column.
   *  Absent in constructed values; drift detection then goes by column order. */
  attnum?: number;
  /** format_type() text, e.g. `numeric(12,2)`, `mood`, `text[]` (qualified when not on the search_path). */
  type: string;
  /** Key (tableKey) of the user-defined element type in PeerLive.types, when it is one. */
  userType?: string;
  notNull: boolean;
  hasDefault: boolean;
  /** pg_get_expr of the default, if any. */
  default?: string;
  identity: '' | 'a' | 'd';
  generated: '' | 's';
  collation?: string;
  /**
   * The value rows older than the column read (pg_attribute.attmissingval, as text): set by ADD COLUMN with a
   * non-volatile default, which rewrites nothing and sends no row changes. Absent: none; null: there is one but it
   * could not be read as text (an array column's).
   */
  missing?: string | null;
}

export interface LiveIndex {
  name: string;
  /** pg_get_indexdef() */
  definition: string;
  unique: boolean;
  primary: boolean;
  /** Column names in key order; empty when the index has expressions. */
  columns: string[];
}

export interface LiveForeignKey {
  name: string;
  /** pg_get_constraintdef() */
  definition: string;
  references: { schema: string; name: string };
}

/** SWAP_FACTS_SQL's row for a table: identifiers in `quoted` fields are quoted as the server's deparse quotes them. */
export interface LiveSwapFacts {
  /** quote_ident(schema) || '.' || quote_ident(name), as definitions name the table. */
  quoted: string;
  owner: string;
  comment: string | null;
  columnComments: { column: string; comment: string }[];
  /** Table grants (column null) and column grants, the owner's own left out. */
  grants: { grantee: string; privilege: string; grantable: boolean; column: string | null }[];
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  policies: {
    name: string;
    /** r SELECT, a INSERT, w UPDATE, d DELETE, * ALL */
    command: string;
    permissive: boolean;
    roles: string[];
    using: string | null;
    check: string | null;
  }[];
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  replicaIdentityIndex: string | null;
  /** Triggers but internal ones and the read-only guard; enabled: pg_trigger.tgenabled. */
  triggers: { name: string; definition: string; enabled: string }[];
  /** Indexes that back no constraint of the table. */
  indexes: { name: string; quoted: string; definition: string }[];
  /** p, u, x, c, f constraints of the table. */
  constraints: { name: string; type: string; definition: string; validated: boolean }[];
  statistics: { schema: string; name: string; quoted: string; definition: string }[];
  /** Sequences owned by a column (identity, or serial): `sequence` qualified and quoted, `name` bare. */
  sequences: { column: string; sequence: string; name: string; identity: boolean }[];
  /** What depends on the table beyond its own parts: views and other tables' foreign keys, or `other`. */
  dependents: {
    kind: 'view' | 'foreign_key' | 'other';
    description: string;
    /** The view, or the table holding the foreign key: quoted, qualified. */
    on: string | null;
    onDisplay: string | null;
    name: string | null;
    definition: string | null;
    validated: boolean | null;
    /** Whether the connecting role owns the view, or the table holding the foreign key (null for `other`). */
    owned: boolean | null;
    /** A view's DDL: CREATE VIEW, owner, grants, comments. */
    recreate: string[] | null;
  }[];
}

export interface LiveTable {
  schema: string;
  name: string;
  oid: string;
  /** r ordinary, p partitioned. Partitions of a partitioned table are not listed as tables of their own. */
  kind: 'r' | 'p';
  isPartition: boolean;
  columns: LiveColumn[];
  primaryKey: { name: string; columns: string[]; deferrable: boolean } | null;
  /** d default, n nothing, f full, i index */
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  /** Columns of the REPLICA IDENTITY USING INDEX index. */
  replicaIdentityColumns: string[];
  indexes: LiveIndex[];
  foreignKeys: LiveForeignKey[];
  /** reltuples estimate summed over partitions; -1 when never analyzed. String: may exceed 2^53. */
  estimatedRows: string;
  /** pg_total_relation_size summed over partitions. */
  sizeBytes: string;
  /** Whether the connecting role may SELECT it. */
  canSelect: boolean;
  /** Whether the MIRROR_READ_ONLY guard trigger is on it (destination tables). */
  hasGuard?: boolean;
  /**
   * When the guard exists, when it fires (pg_trigger.tgenabled): `enabled` (O: for every session but the
   * worker's replica-role one, as mirrors creates it), `disabled` (D: for no one), `replica` (R) or `always` (A),
   * which both fire for the worker too. Absent: not inspected.
   */
  guardState?: GuardState;
  /** Columns dropped from the table over its life (pg_attribute.attisdropped); absent: not inspected. */
  droppedColumns?: number;
  /** Whether it holds at least one row; only probed for destination tables a snapshot would write into. */
  hasRows?: boolean;
  // Access and persistence, for the privilege preflight. Optional so constructed values (unit tests) may
  // leave them out: absent means "not inspected", and the checks then assume the role may.
  /** p permanent, u UNLOGGED (logical decoding never sees its rows). */
  persistence?: 'p' | 'u';
  /** Owner role name. */
  owner?: string;
  /** Whether the owner role is a superuser (membership in it must not be suggested). */
  ownerIsSuperuser?: boolean;
  /** Whether the connecting role owns it: is the owner, a member of the owner role, or a superuser. */
  owned?: boolean;
  /** Of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER: those the connecting role does not hold. */
  missingPrivileges?: string[];
  /** Partitioned tables: leaf partitions that cannot be mirrored as they are (foreign, UNLOGGED, or not readable). */
  leafProblems?: { schema: string; name: string; kind: string; persistence: string; canSelect: boolean }[];
  /** Plain tables: what a swap carries to a shadow table, and what depends on the table (diff/swap-plan.ts). */
  swap?: LiveSwapFacts;
  /** Partitioned tables: every leaf partition, with the truncate relay triggers (`mirrors_tr_NAME`) enabled on it. */
  leaves?: { schema: string; name: string; relays: string[]; canTrigger?: boolean }[];
}

export type GuardState = 'enabled' | 'disabled' | 'replica' | 'always';

/** A column of a table, as a sequence's owner or user names it. */
export interface SequenceColumn {
  schema: string;
  table: string;
  column: string;
}

/**
 * A sequence that a table column uses: owned by it (serial, OWNED BY, identity) or named in its default.
 * Numbers are strings: they may exceed 2^53.
 */
export interface LiveSequence {
  schema: string;
  name: string;
  /**
   * The sequence as the server writes it in SQL text when search_path = pg_catalog (inspection's): `public.t_id_seq`,
   * `"My S"."it's"`. A column default calling it reads `nextval('<this as a literal>'::regclass)`.
   */
  regclass: string;
  /** format_type of pg_sequence.seqtypid: smallint, integer or bigint. */
  dataType: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  /** The owning column (pg_depend deptype 'a': serial, OWNED BY; 'i': identity), or null. */
  ownedBy: (SequenceColumn & { identity: boolean }) | null;
  /** Columns whose default names it (pg_depend from pg_attrdef), in schema, table, column order. */
  defaultOf: SequenceColumn[];
}

/** A schema and what the connecting role may do in it. */
export interface LiveSchema {
  name: string;
  owner: string;
  /** The role is the owner, a member of the owner role, or a superuser. */
  owned: boolean;
  usage: boolean;
  create: boolean;
}

/** A relation in a user schema that is not a mirrorable table: a view, materialized view, foreign table or partition. */
export interface LiveOtherRelation {
  schema: string;
  name: string;
  /** pg_class.relkind: v view, m materialized view, f foreign table, r/p a partition (see partitionOf). */
  kind: string;
  /** For a partition: its parent. */
  partitionOf?: { schema: string; name: string };
}

/** A user-defined type (or an extension's base type) that a column may depend on. */
export interface LiveType {
  schema: string;
  name: string;
  kind: 'enum' | 'domain' | 'composite' | 'range' | 'base';
  labels?: string[];
  baseType?: string;
  /** Key of the domain's base user type, when it is one. */
  baseUserType?: string;
  notNull?: boolean;
  default?: string | null;
  checks?: string[];
  attributes?: { name: string; type: string; userType?: string }[];
  rangeSubtype?: string;
  /** The extension that owns the type: the destination gets it with CREATE EXTENSION. */
  extension?: string;
}

export interface LivePublication {
  name: string;
  owner: string;
  /** Whether the connecting role owns it (or is a member of its owner, or a superuser); absent: not inspected. */
  owned?: boolean;
  allTables: boolean;
  viaRoot: boolean;
  /** Published tables, with their column list (null = all columns). */
  tables: { schema: string; name: string; columns: string[] | null; rowFilter: string | null }[];
  comment: string | null;
}

export interface LiveSlot {
  name: string;
  plugin: string | null;
  slotType: 'logical' | 'physical';
  database: string | null;
  active: boolean;
  activePid: number | null;
  temporary: boolean;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  /** reserved | extended | unreserved | lost | null */
  walStatus: string | null;
  retainedBytes: string | null;
}

export interface CatalogMirror {
  name: string;
  sourcePeer: string;
  /** The project (mirrors.yaml `project:`) that created the mirror and alone may change or destroy it. */
  project: string;
  mode: string;
  status: string;
  phase: string;
  paused: boolean;
  /** The settings applied last (MirrorSettings as JSON). */
  settings: Record<string, unknown>;
  configHash: string;
  consistentLsn: string | null;
  lastAppliedLsn: string | null;
  bytesDone: string;
  bytesTotal: string;
  // Optional so constructed values (unit tests) may leave them out.
  /** The source server and database the mirror's slot was created on (migration 6); null: not recorded. */
  sourceIdentity?: { systemIdentifier: string; databaseOid: string } | null;
  /** Set once promoted (ISO text). */
  promotedAt?: string | null;
  /** The promotion record (catalog migration 6), e.g. {state: 'fenced', ...} after an interrupted apply. */
  promotion?: { state?: string; fence_lsn?: string; [k: string]: unknown } | null;
  /**
   * What the worker recorded of the source for a promotion without it (migration 7; worker/source-facts.ts). The
   * facts are read only for a mirror whose source cannot be reached (null otherwise).
   */
  sourceRecord?: { facts: SourceFacts | null; pulse: SourcePulse | null };
  /** The lag facts (migration 5), on the source's clock, ISO: see mirrors.lag(). */
  appliedThrough?: { lastCommitTime: string | null; caughtUpAt: string | null; behindSince: string | null };
  /** Age of the worker's heartbeat on the destination's clock; null: none. */
  heartbeatAgeMs?: number | null;
  /** Whether a worker holds the mirror's lease now. */
  leaseHeld?: boolean;
}

export interface CatalogTable {
  mirror: string;
  source: { schema: string; name: string };
  destination: { schema: string; name: string };
  excludeColumns: string[];
  partitionKey: string | null;
  /** pending | copying | copied | ready */
  state: string;
  snapshotLsn: string | null;
  rowsCopied: string;
  bytesCopied: string;
  /** Migration 9: destination columns kept after a drop on the source (dropped_columns: keep). */
  keptColumns: string[];
  /** Migration 9: the schema change a worker stopped at and recorded, waiting for the plan to apply it. */
  pendingSchemaChange: PendingSchemaChange | null;
  lastSchemaChange: AppliedSchemaChange | null;
  /** When its last merge resync finished (ISO), if any (migration 10). */
  lastMergeAt?: string | null;
  /** What the last `mirrors verify` that compared it found (migration 12), if any. */
  lastVerify?: TableVerify | null;
}

/** One table's result in a `mirrors verify` run (catalog: mirrors.verify_runs). */
export interface TableVerify {
  run: string;
  finishedAt: string;
  /** The source position the run compared at. */
  targetLsn: string;
  outcome: 'equal' | 'different';
  missing: number;
  extra: number;
  changed: number;
}

/** What a worker records where the stream reached a source schema change it did not apply itself. */
export interface PendingSchemaChange {
  /** ISO time the worker found it. */
  detected_at: string;
  /** Commit LSN of the first transaction that carries it. */
  lsn: string;
  steps: { change: string; column: string; from?: string; type?: string; sql: string[]; summary: string }[];
  /** Why the table must be copied afterwards, or null. */
  copy: string | null;
  kept: string[];
}

/** The last schema change applied to a table: what ran, who ran it, when. */
export interface AppliedSchemaChange {
  applied_at: string;
  /** `worker` (schema_changes: auto) or `apply` (a plan's table update). */
  by: 'worker' | 'apply';
  lsn: string | null;
  summary: string[];
  sql: string[];
}

export interface LiveCatalog {
  /** Highest applied migration, 0 when the schema does not exist. */
  version: number;
  mirrors: Record<string, CatalogMirror>;
  tables: CatalogTable[];
  /** Migration 8: by source system identifier, the synchronous_standby_names value mirrors last wrote there. */
  syncStandbys?: Record<string, SyncStandbysRecord>;
}

/** A row of mirrors.sync_standbys. */
export interface SyncStandbysRecord {
  value: string;
  /** The sync mirrors the degrade policy took out of the value, with since when (ISO). */
  degraded: Record<string, string>;
}

export interface PeerLive {
  peer: string;
  serverVersionNum: number;
  serverVersion: string;
  /** pg_control_system().system_identifier and the database's OID: which server and database this is. */
  systemIdentifier?: string;
  databaseOid?: string;
  database: string;
  /** Who owns synchronous_standby_names (issue 10); absent in constructed values. */
  standbyNames?: StandbyNamesFacts;
  settings: {
    wal_level: string;
    max_replication_slots: number;
    max_wal_senders: number;
    /** MB; -1 = unlimited */
    max_slot_wal_keep_size: number;
    synchronous_standby_names: string;
  };
  role: {
    name: string;
    superuser: boolean;
    replication: boolean;
    canCreateInDatabase: boolean;
    /** Owns the database (member of its owner, or a superuser): ALTER DATABASE ... SET. Absent: not inspected. */
    ownsDatabase?: boolean;
    /** EXECUTE on pg_logical_emit_message (the promotion's fence marker). Absent: not inspected. */
    canEmitMessage?: boolean;
    /**
     * Whether it may set session_replication_role (the snapshot copy and the worker connect with
     * `-c session_replication_role=replica`): a superuser, or on 15+ GRANT SET ON PARAMETER. Absent: not inspected.
     */
    canSetReplicationRole?: boolean;
  };
  /** Slots in use on the whole cluster (every database), and WAL senders in use. */
  slotsInUse: number;
  walSendersInUse: number;
  /** Only publications and slots named mirrors_*, the only ones the tool could own. */
  publications: Record<string, LivePublication>;
  slots: Record<string, LiveSlot>;
  /** Keyed by tableKey(). Ordinary and partitioned tables outside system schemas. */
  tables: Record<string, LiveTable>;
  /** User-defined types keyed by tableKey({schema, name}). */
  types: Record<string, LiveType>;
  /** Schemas (user schemas and `mirrors`) keyed by name, with the role's privileges. A destination table or
   *  type in a schema not listed here needs a schema action first. */
  schemas: Record<string, LiveSchema>;
  /** Sequences the tables use (owned by a column or named in a default), keyed by tableKey(); absent: not inspected. */
  sequences?: Record<string, LiveSequence>;
  /** Views, materialized views, foreign tables and partitions keyed by tableKey(); absent: not inspected. */
  otherRelations?: Record<string, LiveOtherRelation>;
  /** Extensions installed, and those the server could install. */
  extensions: { installed: string[]; available: string[] };
  catalog: LiveCatalog;
}

export interface Live {
  peers: Record<string, PeerLive>;
  /**
   * Peers that could not be reached and were tolerated: the sources of mirrors that declare `promote:` only
   * (a promotion without the source), by name, with the connection's message.
   */
  unreachable?: Record<string, string>;
}

/** The worker's record of the source for a promotion without it (catalog migration 7; worker/source-facts.ts). */
export interface SourceFacts {
  /** The source's clock when read (ISO). */
  at: string;
  server_version_num: number;
  /** Lists, not PeerLive's maps: their keys hold a NUL, which jsonb refuses. */
  tables: LiveTable[];
  sequences: LiveSequence[];
}

export interface SequenceValue {
  schema: string;
  name: string;
  last_value: string | null;
  is_called: boolean | null;
}

export interface SourcePulse {
  /** The source's clock at the reading (ISO). */
  at: string;
  /** pg_current_wal_lsn() then. */
  lsn: string;
  /** Transactions of the mirrored tables applied per second over the last minute; null: not known yet. */
  commits_per_s: number | null;
  sequences: SequenceValue[];
  /**
   * Sync mirrors: the walsender's pg_stat_replication.sync_state (null: none streams), since when (source clock;
   * since the worker started when it did not change) and synchronous_standby_names then.
   */
  sync?: { state: string | null; since: string; standby_names: string };
}

/** What inspection reads of the source about the setting (pg_settings, pg_file_settings, privileges). */
export interface StandbyNamesFacts {
  /** The value in effect (pg_settings.setting). */
  setting: string;
  /** pg_settings.source: 'default', 'configuration file', 'command line', 'environment variable', ... */
  source: string;
  /** pg_settings.sourcefile and sourceline, when the source is a file (NULL without pg_read_all_settings). */
  sourcefile: string | null;
  sourceline: number | null;
  /**
   * pg_file_settings rows for the name (every file that sets it, applied or not); null when the role may not read
   * them (superuser or pg_read_all_settings).
   */
  fileSettings:
    | { sourcefile: string; sourceline: number; setting: string; applied: boolean; error: string | null }[]
    | null;
  /** allow_alter_system (PostgreSQL 17+); null before 17 (always allowed). */
  allowAlterSystem: boolean | null;
  /** Superuser, or on 15+ GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names. */
  mayAlterSystem: boolean;
  /** Which commits of the cluster wait for synchronous standbys (synchronous_commit, database by database). */
  commitScope: CommitScopeFacts;
}

/** synchronous_commit on a cluster: the cluster's value and every database and role setting that overrides it. */
export interface CommitScopeFacts {
  /** pg_settings for this session: the cluster's value unless the source is a database or role setting. */
  setting: string;
  source: string;
  /** Databases that accept connections, with their ALTER DATABASE ... SET synchronous_commit value, or null. */
  databases: { name: string; setting: string | null }[];
  /** ALTER ROLE ... [IN DATABASE ...] SET synchronous_commit: they win over the database's and the cluster's. */
  roles: { role: string; database: string | null; setting: string }[];
}
