/**
 * The truncate relay: how a TRUNCATE of one partition reaches the destination. A publication that publishes
 * through the partition root (as a mirror's does) never sends a TRUNCATE of a single leaf (PostgreSQL skips it in
 * pgoutput, and a second publication on the same slot cannot change that: the topmost published ancestor wins),
 * so native subscriptions silently keep those rows. Here a statement trigger on every leaf of a mirrored root
 * records the truncated partition and its bound in a table of the mirror's publication, in the truncating
 * transaction, right after the TRUNCATE: the worker applies that row as a DELETE of the partition's bound on the
 * destination table, at exactly that position in the stream.
 *
 * Only the relay's function (SECURITY DEFINER, EXECUTE revoked from PUBLIC) can write the table, so a row in it is
 * a deparsed catalog fact (pg_get_partition_constraintdef), never text a source user chose: the destination runs
 * it as SQL. A logical decoding message would be simpler but anyone can emit one. Pure: SQL text only.
 */
import { quoteIdent, quoteLiteral, quoteQualified } from '../db/quote.js';
import type { QualifiedName } from '../config/names.js';
import { PUBLICATION_LOCK_TIMEOUT } from './ddl.js';

/** The source schema holding each mirror's relay (the destination's catalog schema has the same name). */
export const RELAY_SCHEMA = 'mirrors';

/** The relay table and its trigger function share this name, in RELAY_SCHEMA (mirror names are ≤ 50 bytes). */
export const relayName = (mirror: string): QualifiedName => ({ schema: RELAY_SCHEMA, name: `${mirror}_truncates` });

/** The trigger's name on each leaf: one per mirror that relays it. */
export const relayTrigger = (mirror: string) => `mirrors_tr_${mirror}`;

const relaySql = (mirror: string) => quoteQualified(RELAY_SCHEMA, relayName(mirror).name);

/**
 * Creates (or completes) the relay: idempotent, so that a plan may run it over a relay missing one part.
 * search_path: pg_catalog first and pg_temp last, so that no temporary table a caller created stands in for a
 * catalog the function reads (pg_temp is otherwise searched first for relations). A DEFAULT partition that is its
 * root's only one has no constraint (NULL): its bound is every row. The table must be the role's own and granted to
 * no one (a table someone else created first, or default privileges, would let others write bounds the destination
 * runs): refused, or its grants revoked.
 */
export function createRelaySql(mirror: string): string[] {
  const t = relaySql(mirror);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(RELAY_SCHEMA)}`,
    `CREATE TABLE IF NOT EXISTS ${t} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  root_schema text NOT NULL,
  root_name text NOT NULL,
  partition_schema text NOT NULL,
  partition_name text NOT NULL,
  bound text NOT NULL,
  hashed boolean NOT NULL,
  truncated_at timestamptz NOT NULL DEFAULT now()
)`,
    `COMMENT ON TABLE ${t} IS ${quoteLiteral(`managed by mirrors: mirror ${mirror} (each TRUNCATE of a single partition, relayed to the destination)`)}`,
    `CREATE OR REPLACE FUNCTION ${t}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $relay$
BEGIN
  INSERT INTO ${t} (root_schema, root_name, partition_schema, partition_name, bound, hashed)
  SELECT rn.nspname, r.relname, ln.nspname, l.relname, coalesce(pg_catalog.pg_get_partition_constraintdef(l.oid), 'true'),
         EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(l.oid) a
                   JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = a.relid WHERE p.partstrat = 'h')
    FROM pg_catalog.pg_class l
    JOIN pg_catalog.pg_namespace ln ON ln.oid = l.relnamespace
    JOIN pg_catalog.pg_class r ON r.oid = pg_catalog.pg_partition_root(l.oid)
    JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
   WHERE l.oid = TG_RELID AND l.relispartition;
  RETURN NULL;
END
$relay$`,
    `REVOKE ALL ON FUNCTION ${t}() FROM PUBLIC`,
    `DO $relay$
DECLARE g record;
BEGIN
  IF NOT pg_catalog.pg_has_role((SELECT relowner FROM pg_catalog.pg_class WHERE oid = ${quoteLiteral(t)}::regclass), 'USAGE') THEN
    RAISE EXCEPTION 'table % belongs to another role: the truncate relay must be the mirrors role''s own', ${quoteLiteral(t)};
  END IF;
  FOR g IN SELECT DISTINCT a.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
            WHERE c.oid = ${quoteLiteral(t)}::regclass AND a.grantee <> c.relowner LOOP
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM %s', ${quoteLiteral(t)},
                              CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END);
  END LOOP;
END
$relay$`,
  ];
}

export function relayTriggerSql(mirror: string, leaf: QualifiedName): string {
  return `CREATE TRIGGER ${quoteIdent(relayTrigger(mirror))} AFTER TRUNCATE ON ${quoteQualified(leaf.schema, leaf.name)} FOR EACH STATEMENT EXECUTE FUNCTION ${relaySql(mirror)}()`;
}

/** The triggers go with the function (CASCADE). */
export function dropRelaySql(mirror: string): string[] {
  const t = relaySql(mirror);
  return [`DROP FUNCTION IF EXISTS ${t}() CASCADE`, `DROP TABLE IF EXISTS ${t}`];
}

/** A relay row as the stream sends it: text values, named by the Relation message's columns. */
export interface RelayedTruncate {
  root: QualifiedName;
  partition: QualifiedName;
  /** pg_get_partition_constraintdef of the partition when it was truncated: a boolean SQL expression. */
  bound: string;
  /** Under a hash-partitioned ancestor: the bound calls satisfies_hash_partition on the source's OIDs. */
  hashed: boolean;
}

export function parseRelayRow(columns: string[], values: (string | null | undefined)[]): RelayedTruncate | null {
  const v = (name: string) => {
    const i = columns.indexOf(name);
    return i < 0 ? null : (values[i] ?? null);
  };
  const rs = v('root_schema');
  const rn = v('root_name');
  const ps = v('partition_schema');
  const pn = v('partition_name');
  const bound = v('bound');
  if (rs === null || rn === null || ps === null || pn === null || bound === null) return null;
  return { root: { schema: rs, name: rn }, partition: { schema: ps, name: pn }, bound, hashed: v('hashed') === 't' };
}

/** The leaves of a mirror's partitioned sources, and those its relay trigger is not on; null: none partitioned. */
export interface RelayPlan {
  leaves: QualifiedName[];
  missing: (QualifiedName & { canTrigger?: boolean })[];
}

export function relayPlan(
  mirror: string,
  sources: { kind: string; leaves?: { schema: string; name: string; relays: string[]; canTrigger?: boolean }[] }[],
): RelayPlan | null {
  const partitioned = sources.filter((s) => s.kind === 'p');
  if (!partitioned.length) return null;
  const trigger = relayTrigger(mirror);
  const leaves = partitioned.flatMap((s) => s.leaves ?? []);
  return {
    leaves: leaves.map(({ schema, name }) => ({ schema, name })),
    missing: leaves
      .filter((l) => !l.relays.includes(trigger))
      .map(({ schema, name, canTrigger }) => ({ schema, name, canTrigger })),
  };
}

/**
 * What a publication change runs for the relay: its objects, then the triggers it lacks. CREATE TRIGGER takes
 * SHARE ROW EXCLUSIVE on the leaf, so it waits for the leaf's writers as a publication change does (ddl.ts).
 */
export function relaySetupSql(mirror: string, plan: RelayPlan): string[] {
  return [
    ...createRelaySql(mirror),
    ...(plan.missing.length ? [`SET LOCAL lock_timeout = '${PUBLICATION_LOCK_TIMEOUT}'`] : []),
    ...plan.missing.map((l) => relayTriggerSql(mirror, l)),
  ];
}
