/**
 * The catalog queries of inspection. Each returns every object of its family in one round trip, so the
 * number of queries per peer is constant whatever the number of tables (DESIGN.md, inspect/).
 * Raw rows (snake_case) are mapped to the public types of inspect/types.ts in peer.ts.
 */
import { leaseHeldSql } from '../worker/lease-key.js';

/** System schemas and the tool's own catalog are never mirrored. */
const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'mirrors')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

export const SERVER_SQL = `
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_database() AS database,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS database_oid,
       current_setting('wal_level') AS wal_level,
       current_setting('max_replication_slots')::int AS max_replication_slots,
       current_setting('max_wal_senders')::int AS max_wal_senders,
       (SELECT setting::int FROM pg_settings WHERE name = 'max_slot_wal_keep_size') AS max_slot_wal_keep_size,
       current_setting('synchronous_standby_names') AS synchronous_standby_names,
       r.rolname AS role, r.rolsuper AS superuser, r.rolreplication AS replication,
       has_database_privilege(current_database(), 'CREATE') AS can_create,
       (SELECT pg_has_role(datdba, 'USAGE') FROM pg_database WHERE datname = current_database()) AS owns_database,
       has_function_privilege('pg_catalog.pg_logical_emit_message(boolean, text, text)', 'EXECUTE') AS can_emit_message,
       (SELECT count(*) FROM pg_replication_slots)::int AS slots_in_use,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int AS wal_senders_in_use,
       to_regclass('mirrors.schema_migrations') IS NOT NULL AS has_catalog
FROM pg_roles r WHERE r.rolname = current_user`;

export const TABLES_SQL = `
SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       c.relreplident AS replident,
       has_table_privilege(c.oid, 'SELECT') AS can_select,
       c.relpersistence AS persistence, pg_get_userbyid(c.relowner) AS owner, pg_has_role(c.relowner, 'USAGE') AS owned,
       (SELECT o.rolsuper FROM pg_roles o WHERE o.oid = c.relowner) AS owner_superuser,
       ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER']) AS p
              WHERE NOT has_table_privilege(c.oid, p)) AS missing_privileges,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT json_agg(json_build_object('schema', ln.nspname, 'name', l.relname, 'kind', l.relkind,
                                                    'persistence', l.relpersistence, 'canSelect', has_table_privilege(l.oid, 'SELECT'))
                                  ORDER BY ln.nspname, l.relname)
                    FROM pg_partition_tree(c.oid) t
                    JOIN pg_class l ON l.oid = t.relid
                    JOIN pg_namespace ln ON ln.oid = l.relnamespace
                   WHERE t.isleaf AND (l.relkind = 'f' OR l.relpersistence <> 'p' OR NOT has_table_privilege(l.oid, 'SELECT'))) END AS leaf_problems,
       -- Every leaf, with the truncate relays (diff/truncate-relay.ts) whose trigger is on it.
       CASE WHEN c.relkind = 'p'
            THEN (SELECT json_agg(json_build_object('schema', ln.nspname, 'name', l.relname,
                                                    'canTrigger', has_table_privilege(l.oid, 'TRIGGER'),
                                                    'relays', ARRAY(SELECT g.tgname FROM pg_trigger g
                                                                     WHERE g.tgrelid = l.oid AND g.tgname LIKE 'mirrors\\_tr\\_%'
                                                                       AND g.tgenabled <> 'D' ORDER BY g.tgname))
                                  ORDER BY ln.nspname, l.relname)
                    FROM pg_partition_tree(c.oid) t
                    JOIN pg_class l ON l.oid = t.relid
                    JOIN pg_namespace ln ON ln.oid = l.relnamespace
                   WHERE t.isleaf) END AS leaves,
       -- The read-only guard: NULL when absent, else when it fires (O as created, D disabled, R replica, A always).
       (SELECT g.tgenabled::text FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'mirrors_read_only') AS guard_enabled,
       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attisdropped)::int AS dropped_columns,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint FROM pg_partition_tree(c.oid) t
                   JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf)
            ELSE c.reltuples::bigint END::text AS estimated_rows,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf)
            ELSE pg_total_relation_size(c.oid) END::text AS size_bytes,
       (SELECT json_agg(json_build_object(
                 'name', a.attname,
                 'attnum', a.attnum,
                 'type', format_type(a.atttypid, a.atttypmod),
                 'elem', (CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END)::text,
                 'notnull', a.attnotnull,
                 'default', pg_get_expr(d.adbin, d.adrelid),
                 'identity', a.attidentity,
                 'generated', a.attgenerated,
                 -- What rows older than an ADD COLUMN ... DEFAULT read without a rewrite (PostgreSQL 11+), as text.
                 -- An array column's value is a 2-D array whose [1] is NULL: 'has_missing' tells it from none.
                 'has_missing', a.atthasmissing,
                 'missing', CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END,
                 'collation', CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                                   THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                                           FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                          WHERE co.oid = a.attcollation) END)
               ORDER BY a.attnum)
          FROM pg_attribute a
          JOIN pg_type t ON t.oid = a.atttypid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${USER_SCHEMAS}`;

/**
 * What a swap (diff/swap-plan.ts) carries from each plain table to its shadow, and what depends on it. Identifiers
 * the definitions name come quoted as the server's deparse quotes them (quote_ident), so that they can be found
 * in the definitions' text. Views are recreated from what is read here: `recreate` is their DDL.
 */
export const SWAP_FACTS_SQL = `
SELECT c.oid::text AS table_oid, pg_get_userbyid(c.relowner) AS owner, obj_description(c.oid, 'pg_class') AS comment,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS quoted,
       c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security, c.relreplident AS replica_identity,
       (SELECT ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = c.oid AND i.indisreplident) AS replica_identity_index,
       (SELECT coalesce(json_agg(g), '[]') FROM (
          SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
                 a.privilege_type AS privilege, a.is_grantable AS grantable, NULL::text AS "column"
            FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner
          UNION ALL
          SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type,
                 a.is_grantable, att.attname
            FROM pg_attribute att CROSS JOIN LATERAL aclexplode(att.attacl) a
           WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL) g) AS grants,
       (SELECT coalesce(json_agg(json_build_object('column', a.attname, 'comment', d.description) ORDER BY a.attnum), '[]')
          FROM pg_attribute a
          JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS column_comments,
       (SELECT coalesce(json_agg(json_build_object(
                 'name', p.polname, 'command', p.polcmd, 'permissive', p.polpermissive,
                 'roles', ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r),
                 'using', pg_get_expr(p.polqual, p.polrelid), 'check', pg_get_expr(p.polwithcheck, p.polrelid))
               ORDER BY p.polname), '[]')
          FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       (SELECT coalesce(json_agg(json_build_object('name', t.tgname, 'definition', pg_get_triggerdef(t.oid),
                                                   'enabled', t.tgenabled) ORDER BY t.tgname), '[]')
          FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgname <> 'mirrors_read_only') AS triggers,
       (SELECT coalesce(json_agg(json_build_object('name', ic.relname, 'quoted', quote_ident(ic.relname),
                                                   'definition', pg_get_indexdef(i.indexrelid)) ORDER BY ic.relname), '[]')
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE i.indrelid = c.oid
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid
                                                         AND k.contype IN ('p', 'u', 'x'))) AS indexes,
       (SELECT coalesce(json_agg(json_build_object('name', k.conname, 'type', k.contype,
                                                   'definition', pg_get_constraintdef(k.oid), 'validated', k.convalidated)
                                 ORDER BY k.contype, k.conname), '[]')
          FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x', 'c', 'f')) AS constraints,
       (SELECT coalesce(json_agg(json_build_object('schema', sn.nspname, 'name', s.stxname,
                                                   'quoted', quote_ident(sn.nspname) || '.' || quote_ident(s.stxname),
                                                   'definition', pg_get_statisticsobjdef(s.oid)) ORDER BY s.stxname), '[]')
          FROM pg_statistic_ext s JOIN pg_namespace sn ON sn.oid = s.stxnamespace WHERE s.stxrelid = c.oid) AS statistics,
       -- Sequences its columns own (identity, serial): the shadow's own take their names and positions.
       (SELECT coalesce(json_agg(json_build_object('column', a.attname, 'sequence', q.seq, 'name', sc.relname,
                                                   'identity', a.attidentity <> '')
                                 ORDER BY a.attnum), '[]')
          FROM pg_attribute a
          CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                                                            a.attname) AS seq) q
          JOIN pg_class sc ON sc.oid = q.seq::regclass
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND q.seq IS NOT NULL) AS sequences,
       -- Everything else that would go with the table or stop its DROP: views and other tables' foreign keys are
       -- carried; the rest is refused. A view is carried only when nothing depends on it in turn.
       (SELECT coalesce(json_agg(x ORDER BY x.description), '[]') FROM (
          SELECT DISTINCT
                 CASE WHEN v.relkind = 'v' AND NOT vdep.depended AND v.oid <> c.oid THEN 'view'
                      -- A partition's copy of its parent's foreign key goes with the parent's; a partitioned table's
                      -- cannot be re-added NOT VALID before PostgreSQL 18: refused.
                      WHEN k.contype = 'f' AND k.conparentid <> 0 THEN 'own'
                      WHEN k.contype = 'f' AND k.conrelid <> c.oid
                           AND (SELECT kr.relkind FROM pg_class kr WHERE kr.oid = k.conrelid) = 'r' THEN 'foreign_key'
                      WHEN k.conrelid = c.oid THEN 'own'
                      -- The table's own policies, triggers and statistics (carried) depend on its columns.
                      WHEN d.classid = 'pg_policy'::regclass
                           AND EXISTS (SELECT 1 FROM pg_policy po WHERE po.oid = d.objid AND po.polrelid = c.oid) THEN 'own'
                      WHEN d.classid = 'pg_trigger'::regclass
                           AND EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.oid = d.objid AND tg.tgrelid = c.oid) THEN 'own'
                      WHEN d.classid = 'pg_statistic_ext'::regclass
                           AND EXISTS (SELECT 1 FROM pg_statistic_ext st WHERE st.oid = d.objid AND st.stxrelid = c.oid) THEN 'own'
                      ELSE 'other' END AS kind,
                 CASE WHEN v.oid IS NOT NULL AND v.relkind = 'v' AND vdep.depended
                      THEN pg_describe_object('pg_class'::regclass, v.oid, 0) || ', which other objects depend on'
                      WHEN v.oid IS NOT NULL AND v.oid <> c.oid THEN pg_describe_object('pg_class'::regclass, v.oid, 0)
                      ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END AS description,
                 CASE WHEN v.oid IS NOT NULL THEN quote_ident(vn.nspname) || '.' || quote_ident(v.relname)
                      WHEN k.oid IS NOT NULL THEN (SELECT quote_ident(kn.nspname) || '.' || quote_ident(kc.relname)
                                                     FROM pg_class kc JOIN pg_namespace kn ON kn.oid = kc.relnamespace
                                                    WHERE kc.oid = k.conrelid) END AS "on",
                 CASE WHEN v.oid IS NOT NULL THEN vn.nspname || '.' || v.relname
                      WHEN k.oid IS NOT NULL THEN k.conrelid::regclass::text END AS on_display,
                 k.conname AS name, pg_get_constraintdef(k.oid) AS definition, k.convalidated AS validated,
                 CASE WHEN v.oid IS NOT NULL THEN pg_has_role(v.relowner, 'USAGE')
                      WHEN k.oid IS NOT NULL THEN (SELECT pg_has_role(kc.relowner, 'USAGE') FROM pg_class kc WHERE kc.oid = k.conrelid)
                 END AS owned,
                 CASE WHEN v.relkind = 'v' THEN
                   ARRAY['CREATE VIEW ' || quote_ident(vn.nspname) || '.' || quote_ident(v.relname)
                          || coalesce(' WITH (' || array_to_string(v.reloptions, ', ') || ')', '')
                          || ' AS ' || pg_get_viewdef(v.oid),
                         'ALTER VIEW ' || quote_ident(vn.nspname) || '.' || quote_ident(v.relname)
                          || ' OWNER TO ' || quote_ident(pg_get_userbyid(v.relowner))]
                   || ARRAY(SELECT 'GRANT ' || a.privilege_type || ' ON ' || quote_ident(vn.nspname) || '.' || quote_ident(v.relname)
                                   || ' TO ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
                                   || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
                              FROM aclexplode(v.relacl) a WHERE a.grantee <> v.relowner)
                   || ARRAY(SELECT 'COMMENT ON ' || CASE WHEN dd.objsubid = 0 THEN 'VIEW ' || quote_ident(vn.nspname) || '.' || quote_ident(v.relname)
                                                         ELSE 'COLUMN ' || quote_ident(vn.nspname) || '.' || quote_ident(v.relname) || '.'
                                                              || quote_ident((SELECT attname FROM pg_attribute WHERE attrelid = v.oid AND attnum = dd.objsubid)) END
                                   || ' IS ' || quote_literal(dd.description)
                              FROM pg_description dd WHERE dd.objoid = v.oid AND dd.classoid = 'pg_class'::regclass)
                 END AS recreate
            FROM pg_depend d
            LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
            LEFT JOIN pg_class v ON v.oid = rw.ev_class
            LEFT JOIN pg_namespace vn ON vn.oid = v.relnamespace
            -- Whether anything depends on the view in turn (then it is not carried).
            LEFT JOIN LATERAL (SELECT EXISTS (
                   SELECT 1 FROM pg_depend vd WHERE vd.deptype = 'n'
                      AND ((vd.refclassid = 'pg_class'::regclass AND vd.refobjid = v.oid)
                        OR (vd.refclassid = 'pg_type'::regclass AND vd.refobjid = v.reltype))
                      -- Before PostgreSQL 16 a view's own rule depends on the view (its OLD and NEW).
                      AND NOT (vd.classid = 'pg_rewrite'::regclass
                               AND vd.objid IN (SELECT r2.oid FROM pg_rewrite r2 WHERE r2.ev_class = v.oid))) AS depended) vdep ON true
            LEFT JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND k.oid = d.objid
           WHERE d.deptype = 'n'
             AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid)
               OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = c.reltype))
          UNION ALL
          SELECT 'other', 'inheritance child ' || i.inhrelid::regclass::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM pg_inherits i WHERE i.inhparent = c.oid
          UNION ALL
          SELECT 'other', 'inheritance parent ' || i.inhparent::regclass::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM pg_inherits i WHERE i.inhrelid = c.oid
          UNION ALL
          SELECT 'other', 'rule ' || rw.rulename || ' on ' || c.oid::regclass::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM pg_rewrite rw WHERE rw.ev_class = c.oid AND rw.rulename <> '_RETURN'
          UNION ALL
          SELECT 'other', 'publication ' || pb.pubname, NULL, NULL, NULL, NULL, NULL, NULL, NULL
            FROM pg_publication_rel pr JOIN pg_publication pb ON pb.oid = pr.prpubid WHERE pr.prrelid = c.oid) x
         WHERE x.kind <> 'own') AS dependents
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 -- Names are looked up (pg_get_serial_sequence): a schema the role may not use has none of its tables here.
 WHERE c.relkind = 'r' AND NOT c.relispartition AND ${USER_SCHEMAS} AND has_schema_privilege(n.oid, 'USAGE')`;

export const INDEXES_SQL = `
SELECT i.indrelid::text AS table_oid, ic.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisreplident AS is_replident,
       i.indexprs IS NOT NULL OR i.indpred IS NOT NULL AS has_expressions,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE k.ord <= i.indnkeyatts) AS columns,
       con.conname AS constraint_name, coalesce(con.condeferrable, false) AS deferrable
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND ${USER_SCHEMAS}
 ORDER BY ic.relname`;

export const FOREIGN_KEYS_SQL = `
SELECT con.conrelid::text AS table_oid, con.conname AS name, pg_get_constraintdef(con.oid) AS definition,
       rn.nspname AS ref_schema, rc.relname AS ref_name
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_class rc ON rc.oid = con.confrelid
  JOIN pg_namespace rn ON rn.oid = rc.relnamespace
 WHERE con.contype = 'f' AND con.conparentid = 0 AND NOT c.relispartition AND ${USER_SCHEMAS}
 ORDER BY con.conname`;

/**
 * The sequences the tables use, one row per sequence with every use: owned by a column (pg_depend from the
 * sequence to the column: deptype 'a' for serial and OWNED BY, 'i' for identity) or named in a column default
 * (pg_depend from pg_attrdef to the sequence: `nextval('s'::regclass)`; a default naming it as text, late bound,
 * records no dependency and is not seen). `regclass` is how pg_get_expr writes the sequence in a default, since
 * both run under search_path = pg_catalog. Grouped by every selected column, not by the key alone: system
 * catalogs have no primary key before PostgreSQL 14 to infer the rest from.
 */
export const SEQUENCES_SQL = `
WITH uses AS (
  SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS attnum, d.deptype::text AS how
    FROM pg_depend d
   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
     AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
  UNION
  SELECT d.refobjid, ad.adrelid, ad.adnum, 'default'
    FROM pg_depend d
    JOIN pg_attrdef ad ON ad.oid = d.objid
   WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
)
SELECT sn.nspname AS schema, s.relname AS name, s.oid::regclass::text AS regclass,
       format_type(q.seqtypid, NULL) AS data_type, q.seqstart::text AS start, q.seqincrement::text AS increment,
       q.seqmin::text AS min, q.seqmax::text AS max, q.seqcache::text AS cache, q.seqcycle AS cycle,
       json_agg(json_build_object('schema', n.nspname, 'table', c.relname, 'column', a.attname, 'how', u.how)
                ORDER BY n.nspname, c.relname, a.attnum, u.how) AS uses
  FROM uses u
  JOIN pg_class s ON s.oid = u.seq AND s.relkind = 'S'
  JOIN pg_namespace sn ON sn.oid = s.relnamespace
  JOIN pg_sequence q ON q.seqrelid = s.oid
  JOIN pg_class c ON c.oid = u.rel AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum AND NOT a.attisdropped
 WHERE ${USER_SCHEMAS}
 GROUP BY s.oid, sn.nspname, s.relname, q.seqtypid, q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle
 ORDER BY sn.nspname, s.relname`;

/** User-defined types a table column may need on the destination: enums, domains, composites, ranges, extension types. */
export const TYPES_SQL = `
SELECT t.oid::text AS oid, n.nspname AS schema, t.typname AS name, t.typtype AS kind,
       CASE WHEN t.typtype = 'e' THEN (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type,
       CASE WHEN t.typtype = 'd' THEN (SELECT (CASE WHEN bt.typcategory = 'A' AND bt.typelem <> 0 THEN bt.typelem ELSE bt.oid END)::text FROM pg_type bt WHERE bt.oid = t.typbasetype) END AS base_elem,
       t.typnotnull AS not_null, t.typdefault AS default_expr,
       (SELECT json_agg(pg_get_constraintdef(k.oid) ORDER BY k.conname) FROM pg_constraint k WHERE k.contypid = t.oid) AS checks,
       CASE WHEN t.typtype = 'c' THEN (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                 'elem', (SELECT (CASE WHEN at.typcategory = 'A' AND at.typelem <> 0 THEN at.typelem ELSE at.oid END)::text FROM pg_type at WHERE at.oid = a.atttypid)) ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END AS attributes,
       CASE WHEN t.typtype = 'r' THEN (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) END AS range_subtype,
       ext.extname AS extension
  FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
  LEFT JOIN pg_depend dep ON dep.classid = 'pg_type'::regclass AND dep.objid = t.oid AND dep.deptype = 'e'
  LEFT JOIN pg_extension ext ON ext.oid = dep.refobjid
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
   AND (t.typtype IN ('e', 'd', 'r')
        OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class tc WHERE tc.oid = t.typrelid AND tc.relkind = 'c'))
        OR (t.typtype = 'b' AND ext.oid IS NOT NULL AND t.typcategory <> 'A'))`;

export function publicationsSql(versionNum: number): string {
  const viaRoot = versionNum >= 130000 ? 'p.pubviaroot' : 'false';
  const columns =
    versionNum >= 150000
      ? `(SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = pr.prrelid AND a.attnum = ANY (pr.prattrs::int2[]))`
      : 'NULL::json';
  const rowFilter = versionNum >= 150000 ? 'pg_get_expr(pr.prqual, pr.prrelid)' : 'NULL::text';
  return `
SELECT p.pubname AS name, pg_get_userbyid(p.pubowner) AS owner, pg_has_role(p.pubowner, 'USAGE') AS owned,
       p.puballtables AS all_tables, ${viaRoot} AS via_root,
       obj_description(p.oid, 'pg_publication') AS comment,
       (SELECT json_agg(json_build_object('schema', n.nspname, 'name', c.relname, 'columns', ${columns}, 'rowFilter', ${rowFilter})
                        ORDER BY n.nspname, c.relname)
          FROM pg_publication_rel pr
          JOIN pg_class c ON c.oid = pr.prrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE pr.prpubid = p.oid) AS tables
  FROM pg_publication p
 WHERE p.pubname LIKE 'mirrors\\_%'`;
}

export function slotsSql(versionNum: number): string {
  const walStatus = versionNum >= 130000 ? 'wal_status' : 'NULL::text';
  return `
SELECT slot_name AS name, plugin, slot_type, database, active, active_pid, temporary,
       confirmed_flush_lsn::text AS confirmed_flush_lsn, restart_lsn::text AS restart_lsn,
       ${walStatus} AS wal_status,
       CASE WHEN restart_lsn IS NOT NULL AND NOT pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text END AS retained_bytes
  FROM pg_replication_slots
 WHERE slot_name LIKE 'mirrors\\_%'`;
}

/**
 * What the connecting role may do beyond its attributes (one row): set session_replication_role, use and
 * create in each schema (user schemas and the catalog `mirrors`), and the relations of user schemas that are
 * not mirrorable tables (views, materialized views, foreign tables, partitions), so a mapping that names one
 * is told why. has_parameter_privilege exists from 15; before that only a superuser may set the parameter.
 * pg_has_role(owner, 'USAGE') is the ownership test Postgres applies: owner, member of it, or superuser.
 */
export function accessSql(versionNum: number): string {
  const setRole = versionNum >= 150000 ? `has_parameter_privilege('session_replication_role', 'SET')` : 'r.rolsuper';
  return `
SELECT ${setRole} AS can_set_replication_role,
       (SELECT json_agg(json_build_object('name', n.nspname, 'owner', pg_get_userbyid(n.nspowner),
                                          'owned', pg_has_role(n.nspowner, 'USAGE'),
                                          'usage', has_schema_privilege(n.oid, 'USAGE'), 'create', has_schema_privilege(n.oid, 'CREATE'))
                        ORDER BY n.nspname)
          FROM pg_namespace n
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%') AS schemas,
       (SELECT json_agg(json_build_object('schema', n.nspname, 'name', c.relname, 'kind', c.relkind,
                                          'partitionOf', (SELECT json_build_object('schema', pn.nspname, 'name', pc.relname)
                                                            FROM pg_inherits i
                                                            JOIN pg_class pc ON pc.oid = i.inhparent
                                                            JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                                                           WHERE i.inhrelid = c.oid AND c.relispartition)))
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE (c.relkind IN ('v', 'm', 'f') OR (c.relispartition AND c.relkind IN ('r', 'p'))) AND ${USER_SCHEMAS}) AS relations
  FROM pg_roles r WHERE r.rolname = current_user`;
}

export const EXTENSIONS_SQL = `SELECT name, installed_version FROM pg_available_extensions
UNION SELECT extname, extversion FROM pg_extension`;

export const CATALOG_MIRRORS_SQL = `
SELECT name, source_peer, mode, status, phase, paused, settings, config_hash,
       coalesce(to_jsonb(m) ->> 'project', 'default') AS project,
       consistent_lsn::text AS consistent_lsn, last_applied_lsn::text AS last_applied_lsn,
       bytes_done::text AS bytes_done, bytes_total::text AS bytes_total,
       -- Columns of later migrations through to_jsonb, so an older catalog reads as NULLs.
       to_jsonb(m) ->> 'promoted_at' AS promoted_at, to_jsonb(m) -> 'promotion' AS promotion,
       to_jsonb(m) ->> 'source_system_identifier' AS source_system_identifier,
       to_jsonb(m) ->> 'source_database_oid' AS source_database_oid,
       to_jsonb(m) -> 'source_pulse' AS source_pulse,
       to_jsonb(m) ->> 'last_commit_time' AS last_commit_time, to_jsonb(m) ->> 'caught_up_at' AS caught_up_at,
       to_jsonb(m) ->> 'behind_since' AS behind_since,
       (extract(epoch FROM clock_timestamp() - (to_jsonb(m) ->> 'worker_heartbeat_at')::timestamptz) * 1000)::bigint AS heartbeat_age_ms,
       ${leaseHeldSql('m.name')} AS lease_held,
       (SELECT max(version) FROM mirrors.schema_migrations) AS catalog_version
  FROM mirrors.mirrors m
 UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL,
       (SELECT max(version) FROM mirrors.schema_migrations)
 ORDER BY 1 NULLS FIRST`;

export const CATALOG_SYNC_STANDBYS_SQL = `SELECT source_system_identifier, value, degraded FROM mirrors.sync_standbys`;

/**
 * What the worker recorded of the sources of these mirrors for a promotion without them (migration 7): read only
 * when a source cannot be reached, as it holds every mirrored table's inspection.
 */
export const CATALOG_SOURCE_FACTS_SQL = `
SELECT name, to_jsonb(m) -> 'source_facts' AS source_facts FROM mirrors.mirrors m WHERE name = ANY ($1::text[])`;

/**
 * Migration 12: each table's result in the last finished `mirrors verify` that compared it. A sampled run that found
 * it equal does not count: it compared part of the table, and cannot clear what a run found different.
 */
export const CATALOG_VERIFY_SQL = `
SELECT DISTINCT ON (v.mirror, e ->> 'address') v.mirror, e ->> 'address' AS address, v.id::text AS run,
       v.finished_at, v.target_lsn::text AS target_lsn, e ->> 'outcome' AS outcome,
       (e -> 'missing' ->> 'count')::bigint AS missing, (e -> 'extra' ->> 'count')::bigint AS extra,
       (e -> 'changed' ->> 'count')::bigint AS changed
  FROM mirrors.verify_runs v, jsonb_array_elements(v.result) e
 WHERE v.state = 'finished' AND jsonb_typeof(v.result) = 'array'
   AND (e ->> 'outcome' = 'different' OR (e ->> 'outcome' = 'equal' AND v.sample >= 1))
 ORDER BY v.mirror, e ->> 'address', v.id DESC`;

export const CATALOG_TABLES_SQL = `
SELECT mirror, source_schema, source_table, dest_schema, dest_table, exclude_columns, partition_key, state,
       snapshot_lsn::text AS snapshot_lsn, rows_copied::text AS rows_copied, bytes_copied::text AS bytes_copied,
       -- Migration 9 (to_jsonb: a catalog not yet migrated has no such columns).
       to_jsonb(t) -> 'kept_columns' AS kept_columns, to_jsonb(t) -> 'pending_schema_change' AS pending_schema_change,
       to_jsonb(t) -> 'last_schema_change' AS last_schema_change,
       to_jsonb(t) -> 'last_merge' ->> 'finished_at' AS last_merge_at
  FROM mirrors.tables t
 ORDER BY mirror, dest_schema, dest_table`;
