/**
 * The normalized, typed configuration every later stage works from. Produced by config/load.ts;
 * pure data except that a peer's password is a non-enumerable property (it never reaches JSON, logs or plans).
 */
import type { QualifiedName } from './names.js';
import type { MirrorSettings } from './settings.js';

export type SslMode = 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface Peer {
  name: string;
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: SslMode;
  /** Non-enumerable: read it with peerPassword(). */
  readonly password?: string;
}

export type MirrorMode = 'async' | 'sync';
export type ResyncStrategy = 'truncate' | 'merge' | 'swap';
/** Who applies a source schema change the stream reaches (docs/schema-changes.md). */
export type SchemaChanges = 'plan' | 'auto';
/** What a column dropped on the source becomes on the destination. */
export type DroppedColumns = 'drop' | 'keep';

/** Every per-mirror setting that `defaults:` may also set: derived from the table in settings.ts. */
export type { MirrorSettings } from './settings.js';

/** Where a value came from in the YAML, for diagnostics. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
  /** Config path such as `mirrors.prod_to_staging.tables[1]`. */
  path: string;
}

export interface TableMapping {
  /** `schema.*` mappings are expanded at plan time, when the source's tables are known. */
  source: { kind: 'table'; schema: string; name: string } | { kind: 'schema'; schema: string };
  /** Absent for a wildcard (each table keeps its name) and defaulted to the source name otherwise. */
  destination?: QualifiedName;
  partition_key?: string;
  exclude_columns: string[];
  pos: SourcePos;
}

/** `promote:` of a mirror (docs/promotion.md): the destination becomes the primary, one way. */
export interface PromoteSpec {
  /** How long the source fence may wait for in-flight writers before the promotion gives up. */
  max_fence_wait_ms: number;
  /** Steps each sequence is set beyond the source's last value on the new primary. */
  sequence_margin: number;
  verify: 'none' | 'counts' | 'checksums';
  /** After the point of no return, default_transaction_read_only = on for the source database (ALTER DATABASE). */
  read_only_source: boolean;
  reverse: boolean;
}

export const PROMOTE_DEFAULTS: PromoteSpec = {
  max_fence_wait_ms: 10_000,
  sequence_margin: 1000,
  verify: 'none',
  read_only_source: false,
  reverse: false,
};

export interface Mirror extends MirrorSettings {
  name: string;
  source: string;
  destination: string;
  tables: TableMapping[];
  /** null: not to be promoted. Not a setting of `defaults:`: promoting is decided mirror by mirror. */
  promote: PromoteSpec | null;
  /**
   * The mirror whose promotion creates this one (`promote: {reverse: true}` on it): the old source becomes a
   * mirror of the new primary, without a copy. Absent for every other mirror.
   */
  reverseOf?: string;
  pos: SourcePos;
}

/** The reverse mirror of mirror M is named M + this (declared by `promote: {reverse: true}`, or explicitly). */
export const REVERSE_SUFFIX = '_reverse';

export interface Config {
  file: string;
  version: 1;
  /**
   * Which mirrors.yaml owns the mirrors it declares on a destination (`project:`, default `default`), so
   * that two files writing to one destination never touch each other's mirrors.
   */
  project: string;
  /** Whether the file says `project:` (a file that does not never destroys a mirror: see MR147). */
  projectDeclared: boolean;
  peers: Record<string, Peer>;
  mirrors: Record<string, Mirror>;
  /** sha256 of the normalized config without secrets; a saved plan records it. */
  hash: string;
}

export function peerPassword(peer: Peer): string | undefined {
  return (peer as { password?: string }).password;
}
