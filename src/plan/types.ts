/**
 * The plan contract: what `plan --out` writes, what a reviewer approves and exactly what `apply` executes.
 * Plain serializable data (no Dates, no Maps, no BigInt; counts, bytes and LSNs are strings), snake_case
 * throughout. Every action is one member of a closed union keyed by (kind, op), each with typed details,
 * before and after; schemas/plan.schema.json describes the same shapes for the file on disk, and a unit
 * test keeps the two in step. Renderers read a Plan; they never compute anything from the peers.
 */
import type { QualifiedName } from '../config/names.js';
import type { MirrorSettings } from '../config/types.js';

export type { QualifiedName };

/** Format 2: typed, snake_case actions with reason codes. Format 1 files are refused. */
export const PLAN_FORMAT_VERSION = 2;

export type Op = 'create' | 'update' | 'delete' | 'replace';
export type Risk = 'safe' | 'disruptive' | 'irreversible';
/** `note`: information only (e.g. another project's mirror on the same destination). */
export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic {
  /** Stable code, documented in docs/diagnostics.md#mr101 */
  code: string;
  severity: Severity;
  /** Address of the object concerned (`mirror.m.table.public.users`) or a peer (`peer.prod`). */
  address: string;
  message: string;
  hint: string;
  /**
   * Schema drift (MR150-MR159): a unified diff (`---` source as the mirror expects it, `+++` destination) of the
   * two table definitions, one column per line; absent for other diagnostics.
   */
  diff?: string;
  /** Where in the config file (the plan's config_file) the object is declared, when it is: for CI annotations. */
  position?: { line: number; col: number };
}

/** Why an action is planned: a closed set a JSON consumer can branch on (the prose is in `reason`). */
export type ReasonCode =
  | 'catalog_missing'
  | 'catalog_outdated'
  | 'new_mirror'
  | 'setting_changed'
  | 'mirror_removed'
  | 'table_added'
  | 'table_removed'
  | 'table_changed'
  | 'table_source_changed'
  | 'replace_requested'
  | 'schema_changed'
  | 'table_not_copied'
  | 'schema_missing'
  | 'type_missing'
  | 'extension_missing'
  | 'publication_missing'
  | 'publication_changed'
  | 'slot_missing'
  | 'slot_lost'
  | 'promotion_declared'
  | 'promotion_without_source'
  | 'promotion_unfinished';

export interface TableSpec {
  source: QualifiedName;
  destination: QualifiedName;
  /** Columns copied, in source order, with their source types. */
  columns: { name: string; type: string; not_null: boolean }[];
  /** The columns that identify a row in the stream (replica identity). */
  primary_key: string[];
  exclude_columns: string[];
  partition_key: string | null;
  /** Estimates at plan time; they do not make a saved plan stale. */
  estimated_rows: string;
  size_bytes: string;
  /** Copied by resync_strategy swap: into this shadow table, then swapped in (diff/swap-plan.ts). */
  swap?: SwapPlan;
}

/**
 * A table's swap: the SQL apply runs around the copy into the shadow. `prepare` before it (the empty shadow),
 * `after_load` once it committed (indexes and constraints under temporary names, ANALYZE), `swap` in one transaction
 * with the catalog's record of the copy, `after_swap` once that committed (VALIDATE of the foreign keys).
 */
export interface SwapPlan {
  shadow: QualifiedName;
  prepare: string[];
  after_load: string[];
  swap: string[];
  after_swap: string[];
  /** What the swap carries over: `owner app`, `grant SELECT to reporting`, `view public.v`, ... */
  carried: string[];
}

export interface PublishedTable {
  schema: string;
  name: string;
  /** null: every column */
  columns: string[] | null;
}

export interface SnapshotParallelism {
  tables_in_parallel: number;
  max_workers: number;
  rows_per_partition: number;
}

/** What every action carries; each member of `Action` fixes kind, op and the types of the rest. */
interface ActionOf<K extends string, O extends Op, D, B = null, A = null> {
  /** Position-independent id: `<op>:<address>`, unique in a plan. */
  id: string;
  kind: K;
  op: O;
  address: string;
  /** The peer the action changes. */
  peer: string;
  /** The mirror it belongs to; null for peer-wide objects (catalog, schemas, types, extensions). */
  mirror: string | null;
  reason: string;
  reason_code: ReasonCode;
  risk: Risk;
  before: B;
  after: A;
  /** Ids of actions that must run first. */
  depends_on: string[];
  /** Everything apply needs to carry the action out: it reads nothing else. */
  details: D;
}

type Sql = { sql: string[] };
type Version = { version: number };

/** The catalog migrations to run, by number and name (the SQL ships with this version of mirrors). */
type Migrations = { from_version: number; to_version: number; migrations: { version: number; name: string }[] };
export type CatalogCreate = ActionOf<'catalog', 'create', Migrations, null, Version>;
export type CatalogUpdate = ActionOf<'catalog', 'update', Migrations, Version, Version>;
export type SchemaCreate = ActionOf<'schema', 'create', Sql, null, { schema: string }>;
export type ExtensionCreate = ActionOf<'extension', 'create', Sql, null, { extension: string }>;
export type TypeCreate = ActionOf<'type', 'create', Sql, null, { kind: string; labels?: string[] }>;

export interface MirrorCreateDetails {
  source_peer: string;
  destination_peer: string;
  project: string;
  settings: MirrorSettings;
  /** sha256 of the mirror's definition (config/normalize.ts mirrorHash), recorded with it. */
  mirror_hash: string;
  slot: string;
  publication: string;
}
export type MirrorCreate = ActionOf<
  'mirror',
  'create',
  MirrorCreateDetails,
  null,
  { source: string; destination: string } & MirrorSettings
>;
export type MirrorUpdate = ActionOf<
  'mirror',
  'update',
  { settings: MirrorSettings; mirror_hash: string },
  Partial<MirrorSettings>,
  Partial<MirrorSettings>
>;
export type MirrorDelete = ActionOf<
  'mirror',
  'delete',
  Sql & { kept_tables: QualifiedName[] },
  { source: string; tables: number },
  null
>;

type PublicationDetails = Sql & { name: string; tables: PublishedTable[] };
/**
 * A mirror of partitioned tables: the leaf partitions whose TRUNCATE its relay sends to the destination
 * (diff/truncate-relay.ts); absent for a mirror without partitioned tables.
 */
type Relayed = { relayed_partitions?: string[] };
export type PublicationCreate = ActionOf<
  'publication',
  'create',
  PublicationDetails,
  null,
  { name: string; tables: string[] } & Relayed
>;
export type PublicationUpdate = ActionOf<
  'publication',
  'update',
  PublicationDetails,
  { tables: string[] } & Relayed,
  { tables: string[] } & Relayed
>;
export type PublicationDelete = ActionOf<'publication', 'delete', Sql & { name: string }, { name: string }, null>;

type SlotAfter = { name: string; plugin: 'pgoutput' };
/**
 * `create_command`: the replication command that creates it with an exported snapshot. `tables`: what a mirror
 * that had a slot does with its tables first: `copy` marks every one for a copy (resync_strategy truncate);
 * `merge` leaves them readable and streaming-ready, repaired in place afterwards by their merge actions.
 */
type SlotDetails = { name: string; create_command: string; tables: 'copy' | 'merge' };
export type SlotCreate = ActionOf<'slot', 'create', SlotDetails, null, SlotAfter>;
/** Drops the slot with `drop_sql` (refused while it is active), then creates a new one. */
export type SlotReplace = ActionOf<
  'slot',
  'replace',
  SlotDetails & { drop_sql: string },
  { wal_status: string },
  SlotAfter
>;
export type SlotDelete = ActionOf<
  'slot',
  'delete',
  { name: string; drop_sql: string },
  { name: string; retained_bytes: string | null },
  null
>;

export type TableCreate = ActionOf<
  'table',
  'create',
  Sql & { spec: TableSpec; create_table: boolean },
  null,
  { source: string; columns: number; key: string[]; exclude_columns: string[] }
>;
/** Attributes of a recorded table that change without a copy; several merge into one update. */
export interface TableAttributes {
  partition_key?: string | null;
  read_only?: boolean;
}
export type TableUpdate = ActionOf<'table', 'update', Sql & { spec: TableSpec }, TableAttributes, TableAttributes>;
type TableSource = { source: string; exclude_columns: string[] };
/**
 * A source schema change applied where the stream stopped at it (diff/schema-change.ts): the DDL a worker
 * recorded, run with the catalog's record of it in one destination transaction; with `copy`, the table is
 * emptied first and copied again by the plan's snapshot (a rewrite on the source sent no row changes).
 */
export interface ColumnsDetails {
  table: QualifiedName;
  sql: string[];
  steps: { change: 'add' | 'rename' | 'drop' | 'keep' | 'retype'; column: string; summary: string }[];
  kept_columns: string[];
  /** Commit LSN of the first transaction with the new layout: where the worker stopped, and still must be. */
  at_lsn: string;
  /** Why the table is copied again afterwards, or null. */
  copy: string | null;
  spec: TableSpec;
}
/** before and after: the destination's columns, one `name type` each. */
export type ColumnsUpdate = ActionOf<'columns', 'update', ColumnsDetails, { columns: string[] }, { columns: string[] }>;
/**
 * A table resynced. truncate: emptied and copied again by the plan's snapshot (readers see it empty meanwhile).
 * swap: copied by the snapshot into the shadow table `spec.swap` names, which is then swapped in (readers see the
 * old rows until then).
 * merge: repaired in place by the running worker in key order, `chunk_rows` rows at a time (worker/merge.ts);
 * readers keep every row, the plan copies nothing.
 */
export type TableReplaceDetails =
  | { spec: TableSpec; strategy: 'truncate' | 'swap' }
  | { spec: TableSpec; strategy: 'merge'; key: string[]; chunk_rows: number };
export type TableReplace = ActionOf<'table', 'replace', TableReplaceDetails, TableSource, TableSource>;
export type TableDelete = ActionOf<'table', 'delete', Sql & { destination: QualifiedName }, { source: string }, null>;

export interface SnapshotDetails {
  /** initial: the mirror's first copy, from its own slot's export; full: every table again after a new
   *  slot; tables: some tables, from a temporary slot's export while the others keep streaming. */
  kind: 'initial' | 'full' | 'tables';
  /** false: do_initial_snapshot is off; tables start from the consistent point without a copy. */
  copy: boolean;
  tables: TableSpec[];
  parallelism: SnapshotParallelism;
}
export type SnapshotCreate = ActionOf<
  'snapshot',
  'create',
  SnapshotDetails,
  null,
  { tables: string[]; estimated_rows: string; estimated_bytes: string }
>;
export type IndexesCreate = ActionOf<'indexes', 'create', Sql, null, { count: number }>;
export type ForeignKeysCreate = ActionOf<'foreign_keys', 'create', Sql, null, { count: number }>;
export type StreamCreate = ActionOf<'stream', 'create', Record<string, never>, null, null>;

/** A mirrored table at promotion: fenced on the source, made an ordinary table on the destination. */
export interface PromotionTable {
  source: QualifiedName;
  destination: QualifiedName;
}
/** A source sequence and the destination one that continues it (set past the source's last value). */
export interface PromotionSequence {
  source: QualifiedName;
  destination: QualifiedName;
  increment: string;
  min: string;
  max: string;
}
/** The guarded promotion (docs/promotion.md): every statement of every step, in order. */
export interface PromotionDetails {
  source_peer: string;
  destination_peer: string;
  /** A fence id written into the source's WAL as the marker the destination must reach. */
  fence_id: string;
  tables: PromotionTable[];
  /** On the source, in one transaction kept open until the destination reached the marker. */
  fence_sql: string[];
  /** The LOCK of fence_sql waits this long at most (retried with a short lock_timeout), then nothing changed. */
  max_fence_wait_ms: number;
  verify: 'none' | 'counts' | 'checksums';
  /**
   * verify: counts or checksums, one per table: a statement for each side returning n (rows) and h (an
   * order-independent hash of every row's text, '' for counts), run while both sides are frozen, under VERIFY_SETTINGS.
   */
  verify_sql: { source: string; destination: string }[];
  sequence_margin: number;
  /** Sequences the tables use, read on the source inside the fence and set on the destination. */
  sequences: PromotionSequence[];
  /** server_version_num of the source: how its sequences are read (pg_get_sequence_data from 18). */
  source_version_num: number;
  /** On the destination, in the point-of-no-return transaction: defaults, identity, sequences, guards dropped. */
  restore_sql: string[];
  /** On the source, after the point of no return (promote.read_only_source): its database made read-only. */
  read_only_sql: string[];
  /** On the source, after the point of no return: the mirror's slot and publication. */
  cleanup_sql: string[];
  slot: string;
  /**
   * Set when the source could not be reached (disaster recovery): nothing is fenced, read or cleaned up there;
   * `mirrors apply` runs it only with --allow-data-loss. restore_sql then holds the sequences' setval too,
   * from the worker's last record and the destination's rows.
   */
  without_source: WithoutSource | null;
  /**
   * For a mirror promoted without its source that answers again: the fence is committed at once (nothing to
   * wait for: nothing of it is mirrored any more), so a stale application gets MIRROR_FENCED.
   */
  fence_after: boolean;
  /**
   * `promote: {reverse: true}`: the reverse mirror this promotion creates. The point of no return then keeps the
   * destination's guards; the opening (PromotionOpen) drops them once the reverse mirror exists.
   */
  reverse_mirror: string | null;
}
export interface WithoutSource {
  /** Why the source could not be reached, as the connection said. */
  unreachable: string;
  loss: LossEstimate;
  /** When the source's defaults and sequences were recorded (its clock); null: never, they are not restored. */
  facts_at: string | null;
}
/** What the destination knows of the writes it may never have received (diff/loss.ts). */
export interface LossEstimate {
  /** Everything the source committed up to this instant (its clock, ISO) is on the destination; null: unknown. */
  applied_through: string | null;
  /** When the source was last heard from (its clock, ISO). */
  source_last_seen: string | null;
  /** source_last_seen - applied_through: writes of this window are lost, and any made after it. */
  window_ms: number | null;
  /** The source's WAL position at the last reading minus the applied position (bigint text). */
  unapplied_wal_bytes: string | null;
  /** Transactions of the mirrored tables per second over the minute before (as applied). */
  commits_per_s: number | null;
  /** commits_per_s x window, rounded up: an estimate (an idle source lost nothing). */
  transactions: number | null;
  /**
   * Sync mirrors (mode: sync, on_sync_loss: block) the source counted synchronous: why nothing it acknowledged is
   * lost (window and transactions are then 0); null otherwise.
   */
  synchronous: string | null;
}
export type PromotionCreate = ActionOf<
  'promotion',
  'create',
  PromotionDetails,
  { status: string; lag_ms: number | null },
  { primary: string }
>;
/**
 * The last step of a promotion with a reverse mirror (`promote: {reverse: true}`), once the reverse mirror exists:
 * on the old source the fence triggers go (the reverse mirror's guard stays: writes fail with MIRROR_READ_ONLY,
 * the reverse worker writes), then the new primary's tables lose their guard and take writes.
 */
export interface PromotionOpenDetails {
  source_peer: string;
  destination_peer: string;
  reverse_mirror: string;
  /** On the old source, one transaction. */
  source_sql: string[];
  /** On the new primary, one transaction, after source_sql. */
  destination_sql: string[];
  /** Then on the old source: the promoted mirror's slot (once its worker let go) and publication. */
  slot: string;
  cleanup_sql: string[];
}
export type PromotionOpen = ActionOf<
  'promotion',
  'update',
  PromotionOpenDetails,
  { status: string },
  { primary: string; reverse_mirror: string }
>;

/**
 * synchronous_standby_names on a source cluster (mode sync; diff/sync-standbys.ts): ALTER SYSTEM and a reload,
 * then the value recorded in the catalogs of the destinations of that cluster's sync mirrors.
 */
export interface SyncStandbysDetails {
  source_system_identifier: string;
  value: string;
  /** On the source, outside a transaction (ALTER SYSTEM cannot run in one). */
  sql: string[];
  /** Destination peers whose catalog records the value (mirrors.sync_standbys). */
  record_on: string[];
  /** Databases of the cluster whose commits wait for these standbys (synchronous_commit), role settings aside. */
  waiting_databases: string[];
  /** ALTER ROLE ... SET synchronous_commit settings, which win over the database's. */
  role_overrides: { role: string; database: string | null; setting: string; waits: boolean }[];
}
export type SyncStandbysUpdate = ActionOf<
  'sync_standbys',
  'update',
  SyncStandbysDetails,
  { value: string; members: string[] },
  { value: string; members: string[] }
>;

export type Action =
  | CatalogCreate
  | CatalogUpdate
  | SchemaCreate
  | ExtensionCreate
  | TypeCreate
  | MirrorCreate
  | MirrorUpdate
  | MirrorDelete
  | PublicationCreate
  | PublicationUpdate
  | PublicationDelete
  | SlotCreate
  | SlotReplace
  | SlotDelete
  | TableCreate
  | TableUpdate
  | TableReplace
  | TableDelete
  | ColumnsUpdate
  | SnapshotCreate
  | IndexesCreate
  | ForeignKeysCreate
  | StreamCreate
  | PromotionCreate
  | PromotionOpen
  | SyncStandbysUpdate;

export type ActionKind = Action['kind'];
export type ActionOfKind<K extends ActionKind> = Extract<Action, { kind: K }>;

/** Every (kind, op) pair of the union, spelled once for the schema test and the renderers. */
export const ACTION_OPS = {
  catalog: ['create', 'update'],
  schema: ['create'],
  extension: ['create'],
  type: ['create'],
  mirror: ['create', 'update', 'delete'],
  publication: ['create', 'update', 'delete'],
  slot: ['create', 'replace', 'delete'],
  table: ['create', 'update', 'replace', 'delete'],
  columns: ['update'],
  snapshot: ['create'],
  indexes: ['create'],
  foreign_keys: ['create'],
  stream: ['create'],
  promotion: ['create', 'update'],
  sync_standbys: ['update'],
} as const satisfies { [K in ActionKind]: readonly ActionOfKind<K>['op'][] };

// Compile-time check that ACTION_OPS lists every op of every kind (an unlisted one fails the build here).
type UnlistedOps = { [K in ActionKind]: Exclude<ActionOfKind<K>['op'], (typeof ACTION_OPS)[K][number]> }[ActionKind];
const everyOpListed: [UnlistedOps] extends [never] ? true : never = true;
void everyOpListed;

/** A mirror the plan covers, and the peers apply needs for it. */
export interface PlannedMirror {
  name: string;
  source: string;
  destination: string;
}

export interface Plan {
  format_version: typeof PLAN_FORMAT_VERSION;
  tool: 'mirrors';
  created_by: string;
  config_file: string;
  config_hash: string;
  /** The project (mirrors.yaml `project:`) whose mirrors the plan manages. */
  project: string;
  /** The --mirror selection the plan was made with (null: all); apply re-plans with the same. */
  selected: string[] | null;
  /** The --replace addresses the plan was made with (absent in files of earlier versions: none); apply re-plans with the same. */
  replace?: string[];
  /** Mirrors the plan covers (after --mirror selection), sorted by name. */
  mirrors: PlannedMirror[];
  diagnostics: Diagnostic[];
  actions: Action[];
  summary: { create: number; update: number; delete: number; replace: number };
}
