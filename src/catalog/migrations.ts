/**
 * The destination's catalog schema `mirrors`: numbered migrations, applied in order, each in its own
 * transaction together with its row in mirrors.schema_migrations (so re-running is a no-op).
 * Only the SQL lives here; apply/ runs it. The schema name is fixed: `mirrors`.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const CATALOG_SCHEMA = 'mirrors';

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'catalog: mirrors, tables, journal, locks',
    sql: `
CREATE SCHEMA IF NOT EXISTS mirrors;
COMMENT ON SCHEMA mirrors IS 'catalog of the mirrors tool: do not edit by hand';
CREATE TABLE IF NOT EXISTS mirrors.schema_migrations (
  version int PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE mirrors.mirrors (
  name text PRIMARY KEY,
  source_peer text NOT NULL,
  mode text NOT NULL,
  status text NOT NULL DEFAULT 'Bootstrapping',
  phase text NOT NULL DEFAULT 'created',
  paused boolean NOT NULL DEFAULT false,
  settings jsonb NOT NULL,
  config_hash text NOT NULL,
  slot_name text NOT NULL,
  publication_name text NOT NULL,
  consistent_lsn pg_lsn,
  last_applied_lsn pg_lsn,
  last_commit_time timestamptz,
  rows_applied bigint NOT NULL DEFAULT 0,
  last_apply_at timestamptz,
  bytes_done bigint NOT NULL DEFAULT 0,
  bytes_total bigint NOT NULL DEFAULT 0,
  last_error jsonb,
  origin text,
  promoted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE mirrors.tables (
  mirror text NOT NULL REFERENCES mirrors.mirrors(name) ON DELETE CASCADE,
  dest_schema text NOT NULL,
  dest_table text NOT NULL,
  source_schema text NOT NULL,
  source_table text NOT NULL,
  exclude_columns text[] NOT NULL DEFAULT '{}',
  partition_key text,
  state text NOT NULL DEFAULT 'pending',
  snapshot_lsn pg_lsn,
  rows_copied bigint NOT NULL DEFAULT 0,
  bytes_copied bigint NOT NULL DEFAULT 0,
  bytes_total bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (mirror, dest_schema, dest_table)
);
CREATE TABLE mirrors.journal (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  mirror text,
  action_id text NOT NULL,
  address text NOT NULL,
  kind text NOT NULL,
  op text NOT NULL,
  outcome text NOT NULL,
  error jsonb,
  host text,
  pid int,
  command text
);
CREATE TABLE mirrors.locks (
  mirror text PRIMARY KEY,
  host text NOT NULL,
  pid int NOT NULL,
  command text NOT NULL,
  since timestamptz NOT NULL DEFAULT now()
);
`,
  },
];

export const CATALOG_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
