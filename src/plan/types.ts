/**
 * A Plan is plain serializable data (no Dates, no Maps, no BigInt): what `plan --out` writes and `apply`
 * reads. Renderers read it; they never compute anything from the peers.
 */

export const PLAN_FORMAT_VERSION = 1;

export type Op = 'create' | 'update' | 'delete' | 'replace' | 'read';
export type Risk = 'safe' | 'disruptive' | 'irreversible';
export type Severity = 'error' | 'warning';

/** The closed set of things an action can act on. */
export type ActionKind =
  | 'catalog' // the `mirrors` schema on a destination (migrations)
  | 'mirror' // the mirror's catalog row and settings
  | 'publication'
  | 'slot'
  | 'type' // an enum/domain/composite type a destination table needs
  | 'extension' // an extension a destination table needs
  | 'table' // a mapped table: its destination table and catalog row
  | 'snapshot' // the initial copy of some tables
  | 'indexes' // secondary indexes of a destination table
  | 'foreign_keys' // foreign keys among mirrored tables
  | 'stream'; // hand-over to `mirrors run`

export interface Diagnostic {
  /** Stable code, documented in docs/diagnostics.md#mr101 */
  code: string;
  severity: Severity;
  /** Address of the object concerned (`mirror.m.table.public.users`) or a peer (`peer.prod`). */
  address: string;
  message: string;
  hint: string;
}

export interface TableSpec {
  source: { schema: string; name: string };
  destination: { schema: string; name: string };
  /** Columns copied, in source order, with their source types. */
  columns: { name: string; type: string; notNull: boolean }[];
  primaryKey: string[];
  excludeColumns: string[];
  partitionKey: string | null;
  estimatedRows: string;
  sizeBytes: string;
}

export interface Action {
  /** Position-independent id: `<op>:<address>`. */
  id: string;
  kind: ActionKind;
  op: Op;
  address: string;
  /** The peer the action changes. */
  peer: string;
  mirror?: string;
  reason: string;
  risk: Risk;
  before?: unknown;
  after?: unknown;
  /** Ids of actions that must run first. */
  dependsOn: string[];
  /** What the apply step needs to carry the action out (DDL text, table specs, ...). */
  details?: Record<string, unknown>;
}

export interface Plan {
  format_version: number;
  tool: 'mirrors';
  created_by: string;
  config_file: string;
  config_hash: string;
  live_fingerprint: string;
  /** The --mirror selection the plan was made with (null: all); apply re-inspects with the same. */
  selected: string[] | null;
  /** Mirrors the plan covers (after --mirror selection). */
  mirrors: string[];
  diagnostics: Diagnostic[];
  actions: Action[];
  summary: { create: number; update: number; delete: number; replace: number; read: number };
}
