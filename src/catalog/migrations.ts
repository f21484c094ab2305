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
  {
    version: 2,
    name: 'streaming: worker lease and lag columns, read-only guard, freshness functions',
    sql: `
ALTER TABLE mirrors.mirrors
  ADD COLUMN worker_host text,
  ADD COLUMN worker_pid int,
  ADD COLUMN worker_since timestamptz,
  ADD COLUMN worker_heartbeat_at timestamptz,
  ADD COLUMN lag_ms bigint;
ALTER TABLE mirrors.tables
  ADD COLUMN rows_inserted bigint NOT NULL DEFAULT 0,
  ADD COLUMN rows_updated bigint NOT NULL DEFAULT 0,
  ADD COLUMN rows_deleted bigint NOT NULL DEFAULT 0;

-- Writes by anyone but the worker fail. The worker (and the snapshot copy) run with
-- session_replication_role = replica, under which ordinary triggers do not fire.
CREATE FUNCTION mirrors.read_only_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'MIRROR_READ_ONLY: %.% is a mirror of % (mirror %); it is read-only until the mirror is promoted',
    quote_ident(TG_TABLE_SCHEMA), quote_ident(TG_TABLE_NAME), TG_ARGV[1], TG_ARGV[0]
    USING ERRCODE = 'read_only_sql_transaction',
          HINT = 'write to the source, or promote the mirror';
END
$fn$;

-- The mirror's current lag: zero when the worker is caught up, else the age of the last applied commit.
CREATE FUNCTION mirrors.lag(mirror_name text) RETURNS interval LANGUAGE sql STABLE AS $fn$
  SELECT CASE WHEN m.lag_ms IS NULL THEN NULL
              ELSE make_interval(secs => m.lag_ms / 1000.0)
                   + CASE WHEN m.worker_heartbeat_at IS NULL THEN interval '0'
                          ELSE greatest(clock_timestamp() - m.worker_heartbeat_at - interval '5 seconds', interval '0') END
         END
    FROM mirrors.mirrors m WHERE m.name = mirror_name
$fn$;

-- Bounded staleness: raises when the mirror lags more than max_lag (or its lag is unknown).
CREATE FUNCTION mirrors.assert_fresh(mirror_name text, max_lag interval) RETURNS void LANGUAGE plpgsql STABLE AS $fn$
DECLARE l interval := mirrors.lag(mirror_name);
BEGIN
  IF l IS NULL OR l > max_lag THEN
    RAISE EXCEPTION 'MIRROR_STALE: mirror % lags %, more than %', mirror_name, coalesce(l::text, 'an unknown time'), max_lag
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
END
$fn$;

-- Read-your-writes: waits until the mirror has applied the source position target_lsn (e.g. the
-- application's pg_current_wal_lsn() after its commit). Returns true, or raises after timeout.
CREATE FUNCTION mirrors.wait_for_lsn(mirror_name text, target_lsn pg_lsn, timeout interval DEFAULT '10 seconds')
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  deadline timestamptz := clock_timestamp() + timeout;
  applied pg_lsn;
BEGIN
  LOOP
    SELECT last_applied_lsn INTO applied FROM mirrors.mirrors WHERE name = mirror_name;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no mirror named %', mirror_name USING ERRCODE = 'undefined_object';
    END IF;
    IF applied IS NOT NULL AND applied >= target_lsn THEN
      RETURN true;
    END IF;
    IF clock_timestamp() >= deadline THEN
      RAISE EXCEPTION 'MIRROR_WAIT_TIMEOUT: mirror % applied up to %, not yet %', mirror_name, applied, target_lsn
        USING ERRCODE = 'query_canceled';
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END
$fn$;
`,
  },
  {
    version: 3,
    name: 'streaming: a batch checks and records itself in one round trip',
    sql: `
-- First statement of every batch the worker applies. Locks (FOR SHARE) and checks what the batch was
-- decoded against: the mirror still streaming, every touched table still ready with the same snapshot LSN.
-- \`mirrors apply\` changes these rows before it resyncs a table or replaces the slot, and waits for this
-- lock: a batch either commits before that change, or sees it and is abandoned unacknowledged.
CREATE FUNCTION mirrors.begin_batch(mirror_name text, dest_schemas text[], dest_tables text[], snapshot_lsns text[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  p text;
  bad record;
BEGIN
  SELECT phase INTO p FROM mirrors.mirrors WHERE name = mirror_name FOR SHARE;
  IF p IS DISTINCT FROM 'ready' THEN
    RAISE EXCEPTION 'mirror % is no longer streaming (phase %)', mirror_name, coalesce(p, 'gone') USING ERRCODE = 'MRCAT';
  END IF;
  PERFORM 1 FROM mirrors.tables t
    WHERE t.mirror = mirror_name AND (t.dest_schema, t.dest_table) IN (SELECT s, n FROM unnest(dest_schemas, dest_tables) AS u(s, n))
    FOR SHARE OF t;
  SELECT u.s, u.n, t.state INTO bad
    FROM unnest(dest_schemas, dest_tables, snapshot_lsns) AS u(s, n, lsn)
    LEFT JOIN mirrors.tables t ON t.mirror = mirror_name AND t.dest_schema = u.s AND t.dest_table = u.n
   WHERE t.state IS DISTINCT FROM 'ready' OR t.snapshot_lsn IS DISTINCT FROM u.lsn::pg_lsn
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '%.% changed in the catalog (%)', bad.s, bad.n, coalesce('state ' || bad.state, 'no longer mirrored') USING ERRCODE = 'MRCAT';
  END IF;
END
$fn$;

-- Last statement of every batch before COMMIT: the new position, lag and row counts.
CREATE FUNCTION mirrors.record_batch(mirror_name text, end_lsn pg_lsn, commit_time timestamptz, row_count bigint, lag bigint,
                                     dest_schemas text[], dest_tables text[], inserted bigint[], updated bigint[], deleted bigint[])
RETURNS void LANGUAGE sql AS $fn$
  UPDATE mirrors.mirrors SET last_applied_lsn = greatest(last_applied_lsn, end_lsn), last_commit_time = commit_time,
         rows_applied = rows_applied + row_count, last_apply_at = now(), lag_ms = lag, worker_heartbeat_at = now(),
         status = 'Following', last_error = NULL
   WHERE name = mirror_name;
  UPDATE mirrors.tables t SET rows_inserted = t.rows_inserted + u.i, rows_updated = t.rows_updated + u.up,
         rows_deleted = t.rows_deleted + u.d, updated_at = now()
    FROM unnest(dest_schemas, dest_tables, inserted, updated, deleted) AS u(s, n, i, up, d)
   WHERE t.mirror = mirror_name AND t.dest_schema = u.s AND t.dest_table = u.n;
$fn$;
`,
  },
  {
    version: 4,
    name: 'ownership: the project that manages each mirror',
    sql: `
-- Which mirrors.yaml (its \`project:\`) owns a mirror: a plan never changes or destroys another project's.
-- Mirrors created before this migration belong to project default, which is every file without \`project:\`.
ALTER TABLE mirrors.mirrors ADD COLUMN project text NOT NULL DEFAULT 'default';
`,
  },
];

export const CATALOG_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
