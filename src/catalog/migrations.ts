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
  {
    version: 5,
    name: 'honest worker: typed errors with history, lag that grows while nothing moves, pause fence, readers',
    sql: `
-- What the worker knows about how far behind it is, both on the SOURCE's clock (commit and keepalive times):
--   behind_since: commit time of the oldest source transaction received and not yet applied (NULL: none known);
--   caught_up_at: send time of the last source keepalive up to which everything was applied.
-- Written by the worker's heartbeat (about every second). mirrors.lag() derives the lag from them, so a
-- stopped, stalled or failed worker shows a lag that keeps growing.
ALTER TABLE mirrors.mirrors
  ADD COLUMN behind_since timestamptz,
  ADD COLUMN caught_up_at timestamptz,
  ADD COLUMN error_history jsonb NOT NULL DEFAULT '[]';

-- The worker's last error: {at, kind, code, message, hint}; kind is transient, catalog_changed, drift, gap or
-- fatal. status 'Failed' means a person must act (the worker retries slowly and applies nothing past its
-- position meanwhile). The ten most recent errors are kept in error_history, newest first.
CREATE FUNCTION mirrors.record_error(mirror_name text, new_status text, err jsonb, behind timestamptz)
RETURNS void LANGUAGE sql AS $fn$
  UPDATE mirrors.mirrors
     SET status = new_status, last_error = err, worker_heartbeat_at = now(),
         behind_since = coalesce(behind, behind_since),
         error_history = (SELECT coalesce(jsonb_agg(e ORDER BY i), '[]')
                            FROM jsonb_array_elements(jsonb_build_array(err) || error_history) WITH ORDINALITY AS h(e, i)
                           WHERE i <= 10)
   WHERE name = mirror_name;
$fn$;

-- The heartbeat: the worker's status and what it knows about its lag. Returns what the worker must obey
-- between batches (paused, phase, promoted).
CREATE FUNCTION mirrors.heartbeat(mirror_name text, new_status text, behind timestamptz, caught_up timestamptz)
RETURNS TABLE (paused boolean, phase text, promoted boolean) LANGUAGE sql AS $fn$
  UPDATE mirrors.mirrors m
     SET worker_heartbeat_at = now(), status = new_status, behind_since = behind,
         caught_up_at = greatest(m.caught_up_at, caught_up),
         last_error = CASE WHEN new_status IN ('Following', 'Degraded') THEN NULL ELSE m.last_error END
   WHERE m.name = mirror_name
  RETURNING m.paused, m.phase, m.promoted_at IS NOT NULL;
$fn$;

-- Caught up and idle: the position moves to what the source says it has sent. Written BEFORE the worker
-- acknowledges that position to the slot, so the slot never confirms more than the catalog holds (the
-- worker's gap check relies on it).
CREATE FUNCTION mirrors.record_caught_up(mirror_name text, lsn pg_lsn, caught_up timestamptz)
RETURNS void LANGUAGE sql AS $fn$
  UPDATE mirrors.mirrors
     SET last_applied_lsn = greatest(last_applied_lsn, lsn), lag_ms = 0, behind_since = NULL,
         caught_up_at = greatest(caught_up_at, caught_up), worker_heartbeat_at = now()
   WHERE name = mirror_name;
$fn$;

-- The batch fence also refuses a paused mirror: applying \`paused: true\` stops a running worker at its next
-- batch, before the batch writes anything.
CREATE OR REPLACE FUNCTION mirrors.begin_batch(mirror_name text, dest_schemas text[], dest_tables text[], snapshot_lsns text[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  p text;
  is_paused boolean;
  bad record;
BEGIN
  SELECT phase, paused INTO p, is_paused FROM mirrors.mirrors WHERE name = mirror_name FOR SHARE;
  IF p IS DISTINCT FROM 'ready' THEN
    RAISE EXCEPTION 'mirror % is no longer streaming (phase %)', mirror_name, coalesce(p, 'gone') USING ERRCODE = 'MRCAT';
  END IF;
  IF is_paused THEN
    RAISE EXCEPTION 'mirror % is paused', mirror_name USING ERRCODE = 'MRPAU';
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

-- The lag, from what the worker last wrote: the age of the oldest unapplied source commit; else the time since
-- the last source instant up to which everything is known applied: a keepalive's send time (caught_up_at) or
-- the last applied commit (last_commit_time); zero within 5 seconds of it (the rhythm of keepalives), but only
-- while a worker is streaming (its heartbeat, every second, is at most 5 seconds old and says Following or
-- Degraded): a stopped, paused or failed worker's lag counts from that instant without grace.
-- NULL only while the mirror has never streamed. An unknown mirror is an error, not "no lag".
-- SECURITY DEFINER so that application readers need only USAGE on the schema (granted to PUBLIC below), not
-- access to the catalog tables.
CREATE OR REPLACE FUNCTION mirrors.lag(mirror_name text) RETURNS interval
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
  m record;
  quiet interval;
BEGIN
  SELECT behind_since, greatest(caught_up_at, last_commit_time) AS known_at,
         status IN ('Following', 'Degraded') AND clock_timestamp() - worker_heartbeat_at <= interval '5 seconds' AS live
    INTO m FROM mirrors.mirrors WHERE name = mirror_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown mirror %', mirror_name USING ERRCODE = 'undefined_object',
      HINT = 'check the name: mirrors status lists the mirrors of a mirrors.yaml';
  END IF;
  IF m.behind_since IS NOT NULL THEN
    RETURN greatest(clock_timestamp() - m.behind_since, interval '0');
  END IF;
  IF m.known_at IS NULL THEN
    RETURN NULL;
  END IF;
  quiet := greatest(clock_timestamp() - m.known_at, interval '0');
  RETURN CASE WHEN quiet <= interval '5 seconds' AND m.live THEN interval '0' ELSE quiet END;
END
$fn$;

CREATE OR REPLACE FUNCTION mirrors.assert_fresh(mirror_name text, max_lag interval) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE l interval := mirrors.lag(mirror_name);
BEGIN
  IF l IS NULL OR l > max_lag THEN
    RAISE EXCEPTION 'MIRROR_STALE: mirror % lags %, more than %', mirror_name, coalesce(l::text, 'an unknown time'), max_lag
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
END
$fn$;

ALTER FUNCTION mirrors.wait_for_lsn(text, pg_lsn, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Application readers call the freshness functions without any grant of their own. They see no catalog
-- table: those keep their default privileges (the owner only).
GRANT USAGE ON SCHEMA mirrors TO PUBLIC;
GRANT EXECUTE ON FUNCTION mirrors.lag(text), mirrors.assert_fresh(text, interval), mirrors.wait_for_lsn(text, pg_lsn, interval) TO PUBLIC;
`,
  },
  {
    version: 6,
    name: 'promotion: the source identity a mirror was created from, the promotion record, the fence position',
    sql: `
-- Recorded when the mirror's slot is created (IDENTIFY_SYSTEM on the same connection): promotion's preflight
-- and the worker refuse a source that is not the server and database the mirror was copied from.
ALTER TABLE mirrors.mirrors
  ADD COLUMN source_system_identifier text,
  ADD COLUMN source_database_oid oid,
-- The promotion as it goes (docs/promotion.md): {state: fenced | promoted, fence_id, fence_lsn, started_at,
-- sequences, unfenced, loss_estimate, ...}. 'fenced' is written before the source fence commits: a promotion
-- found in that state with the fence present on the source is finished by the next apply.
  ADD COLUMN promotion jsonb,
  ADD COLUMN fence_lsn pg_lsn;
`,
  },
  {
    version: 7,
    name: 'promotion without the source: what the destination must know of it beforehand',
    sql: `
-- Written by the worker while it streams, read by a promotion planned when the source is gone (docs/promotion.md,
-- "Disaster recovery"): nothing can be asked of the source then.
--   source_facts: {at, server_version_num, tables, sequences}: the mirrored source tables' columns (defaults,
--     identity) and the sequences they use, as inspection reads them; rewritten when they change.
--   source_pulse: {at, lsn, commits_per_s, sequences: [{schema, name, last_value, is_called}]}, about every
--     5 seconds: the source's clock and WAL position, the recent commit rate of the mirrored tables, and the
--     sequences' values, for the loss estimate and the sequence values of the new primary.
ALTER TABLE mirrors.mirrors
  ADD COLUMN source_facts jsonb,
  ADD COLUMN source_pulse jsonb;
`,
  },
  {
    version: 8,
    name: 'sync mode: the synchronous_standby_names value mirrors last wrote on each source cluster',
    sql: `
-- Written with every ALTER SYSTEM SET synchronous_standby_names mirrors runs on a source cluster (by system
-- identifier; every destination of that cluster's sync mirrors keeps a copy). The plan manages the setting only
-- while it is empty or still holds this value (diff/sync-standbys.ts): anything else belongs to someone else.
-- degraded: the sync mirrors the degrade policy (on_sync_loss: {degrade_after}) took out of the value, each with
-- the instant it did ({"mirror": "2026-...Z"}): a restarted guardian knows whom to add back, status says so.
CREATE TABLE mirrors.sync_standbys (
  source_system_identifier text PRIMARY KEY,
  value text NOT NULL,
  degraded jsonb NOT NULL DEFAULT '{}'::jsonb,
  written_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 9,
    name: 'schema changes: kept columns, the change a stopped worker waits on, the last one applied',
    sql: `
-- kept_columns: destination columns the source dropped and dropped_columns: keep kept (never compared).
-- pending_schema_change: written by a worker stopped at a source schema change (schema_changes: plan, or one
-- that needs a copy) with the DDL that fits the table to it there; the plan proposes it, apply clears it.
-- last_schema_change: the last one applied, by whom and when (status shows it).
ALTER TABLE mirrors.tables
  ADD COLUMN kept_columns text[] NOT NULL DEFAULT '{}',
  ADD COLUMN pending_schema_change jsonb,
  ADD COLUMN last_schema_change jsonb;
`,
  },
  {
    version: 10,
    name: 'merge resyncs: the one a table waits for or is in, and the last one finished',
    sql: `
-- merge: written by apply for a resync with resync_strategy merge ({requested_at, key, chunk_rows}); the worker
-- repairs the table in key order, chunk by chunk, and records in the same transaction as each chunk where it
-- got to (cursor: the last key merged, as text) and what it changed (chunks, rows, inserted, updated, deleted).
-- last_merge: the last one finished (the same, with finished_at); merge is then NULL.
ALTER TABLE mirrors.tables
  ADD COLUMN merge jsonb,
  ADD COLUMN last_merge jsonb;
`,
  },
  {
    version: 11,
    name: 'changes deferred while their table is copied',
    sql: `
-- The worker's changes of a table that apply is copying (worker/deferred.ts), written in the batch that passes them
-- and replayed into the table once its copy is recorded (those after its snapshot LSN), then deleted.
CREATE TABLE mirrors.deferred_changes (
  mirror text NOT NULL,
  dest_schema text NOT NULL,
  dest_table text NOT NULL,
  lsn pg_lsn NOT NULL,
  ord int NOT NULL,
  change jsonb NOT NULL,
  PRIMARY KEY (mirror, dest_schema, dest_table, lsn, ord)
);

-- A batch never writes a table that still has deferred changes: they come first (the worker replays them when the
-- copy is recorded, at a transaction boundary; this is the fence should it not have).
CREATE OR REPLACE FUNCTION mirrors.begin_batch(mirror_name text, dest_schemas text[], dest_tables text[], snapshot_lsns text[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  p text;
  is_paused boolean;
  bad record;
BEGIN
  SELECT phase, paused INTO p, is_paused FROM mirrors.mirrors WHERE name = mirror_name FOR SHARE;
  IF p IS DISTINCT FROM 'ready' THEN
    RAISE EXCEPTION 'mirror % is no longer streaming (phase %)', mirror_name, coalesce(p, 'gone') USING ERRCODE = 'MRCAT';
  END IF;
  IF is_paused THEN
    RAISE EXCEPTION 'mirror % is paused', mirror_name USING ERRCODE = 'MRPAU';
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
  SELECT d.dest_schema AS s, d.dest_table AS n INTO bad
    FROM mirrors.deferred_changes d
   WHERE d.mirror = mirror_name AND (d.dest_schema, d.dest_table) IN (SELECT s, n FROM unnest(dest_schemas, dest_tables) AS u(s, n))
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '%.% has changes deferred during its copy, not replayed yet', bad.s, bad.n USING ERRCODE = 'MRCAT';
  END IF;
END
$fn$;
`,
  },
  {
    version: 12,
    name: 'verify runs: the point the worker holds at, and what each run found',
    sql: `
-- One row per \`mirrors verify\` of a mirror (cli/verify.ts). The worker (worker/verify-hold.ts) holds its stream at
-- a transaction boundary while the run takes the source's snapshot (state armed), resumes until the point that
-- snapshot is at (target_lsn: every transaction committed before it is applied, none after), holds again (held)
-- while the run opens the destination's snapshot, and goes on once it is released. A run that does not answer
-- within seconds is abandoned by the worker, which streams on.
CREATE TABLE mirrors.verify_runs (
  id bigserial PRIMARY KEY,
  mirror text NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  state text NOT NULL DEFAULT 'requested'
    CHECK (state IN ('requested', 'armed', 'target', 'held', 'released', 'abandoned', 'finished')),
  target_lsn pg_lsn,
  held_lsn pg_lsn,
  -- How long the worker applied nothing: while the source's snapshot was taken, and at the point itself.
  arm_ms double precision,
  hold_ms double precision,
  finished_at timestamptz,
  -- equal | different | error; sample: the fraction of each table compared (1: all of it).
  outcome text CHECK (outcome IN ('equal', 'different', 'error')),
  sample double precision,
  tables_compared int,
  tables_differing int,
  rows_compared bigint,
  -- Per table: address, source/destination rows compared, missing/extra/changed counts, the first keys.
  result jsonb
);
CREATE INDEX ON mirrors.verify_runs (mirror, id DESC);
`,
  },
];

export const CATALOG_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
