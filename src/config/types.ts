/**
 * The normalized, typed configuration every later stage works from. Produced by config/load.ts;
 * pure data except that a peer's password is a non-enumerable property (it never reaches JSON, logs or plans).
 */
import type { QualifiedName } from './names.js';

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
export type ResyncStrategy = 'truncate' | 'swap';

/** Every per-mirror setting that `defaults:` may also set. Names as in YAML, snake_case. */
export interface MirrorSettings {
  mode: MirrorMode;
  do_initial_snapshot: boolean;
  snapshot_num_rows_per_partition: number;
  snapshot_max_parallel_workers: number;
  snapshot_num_tables_in_parallel: number;
  max_batch_size: number;
  idle_timeout_seconds: number;
  replicate_indexes: boolean;
  replicate_foreign_keys: boolean;
  resync_strategy: ResyncStrategy;
  /** Milliseconds; YAML takes a duration like `5s` or `100ms`. */
  lag_threshold_ms: number;
  paused: boolean;
  /** Like Terraform's lifecycle.prevent_destroy: a plan that would destroy the mirror is an error. */
  prevent_destroy: boolean;
}

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

export interface Mirror extends MirrorSettings {
  name: string;
  source: string;
  destination: string;
  tables: TableMapping[];
  pos: SourcePos;
}

export interface Config {
  file: string;
  version: 1;
  /** `project:`, default "default": the owner recorded with each mirror this file creates. */
  project: string;
  peers: Record<string, Peer>;
  mirrors: Record<string, Mirror>;
  /** sha256 of the normalized config without secrets; a saved plan records it. */
  hash: string;
}

export function peerPassword(peer: Peer): string | undefined {
  return (peer as { password?: string }).password;
}
