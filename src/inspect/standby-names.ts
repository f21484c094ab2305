/**
 * What the source says about synchronous_standby_names (issue 10; diff/sync-standbys.ts decides who owns it):
 * the value and where it comes from, every file that sets it (pg_file_settings: superusers only, so read only
 * then), whether ALTER SYSTEM is allowed (17+) and whether the role may run it for this parameter (15+).
 */
import type { Queryable } from '../db/tx.js';
import type { StandbyNamesFacts } from './types.js';

export function standbyNamesSql(versionNum: number): string {
  const allow = versionNum >= 170000 ? `current_setting('allow_alter_system')::boolean` : 'NULL::boolean';
  const may =
    versionNum >= 150000 ? `has_parameter_privilege('synchronous_standby_names', 'ALTER SYSTEM')` : 'r.rolsuper';
  return `
SELECT s.setting, s.source, s.sourcefile, s.sourceline, r.rolsuper AS superuser,
       ${allow} AS allow_alter_system, ${may} AS may_alter_system, (${COMMIT_SCOPE_SQL}) AS commit_scope
  FROM pg_settings s, pg_roles r
 WHERE s.name = 'synchronous_standby_names' AND r.rolname = current_user`;
}

/**
 * synchronous_commit of the cluster, of each database and of each role (one JSON value). pg_db_role_setting is
 * readable by every role; setconfig entries read `synchronous_commit=VALUE`.
 */
const COMMIT_SCOPE_SQL = `
SELECT json_build_object(
         'setting', c.setting, 'source', c.source,
         'databases', (SELECT coalesce(json_agg(json_build_object('name', d.datname, 'setting',
                         (SELECT substr(e, 20) FROM pg_db_role_setting x, unnest(x.setconfig) e
                           WHERE x.setdatabase = d.oid AND x.setrole = 0 AND e LIKE 'synchronous\\_commit=%' LIMIT 1))
                       ORDER BY d.datname), '[]')
                         FROM pg_database d WHERE d.datallowconn AND NOT d.datistemplate),
         'roles', (SELECT coalesce(json_agg(json_build_object('role', ro.rolname, 'database', d.datname, 'setting', substr(e, 20))
                     ORDER BY ro.rolname, d.datname), '[]')
                     FROM pg_db_role_setting x JOIN pg_roles ro ON ro.oid = x.setrole
                     LEFT JOIN pg_database d ON d.oid = x.setdatabase, unnest(x.setconfig) e
                    WHERE e LIKE 'synchronous\\_commit=%'))
  FROM pg_settings c WHERE c.name = 'synchronous_commit'`;

export const FILE_SETTINGS_SQL = `
SELECT sourcefile, sourceline, setting, applied, error
  FROM pg_file_settings WHERE name = 'synchronous_standby_names' ORDER BY seqno`;

interface FileSettingRow {
  sourcefile: string;
  sourceline: number;
  setting: string;
  applied: boolean;
  error: string | null;
}

export async function readStandbyNames(db: Queryable, versionNum: number): Promise<StandbyNamesFacts> {
  const r = (await db.query(standbyNamesSql(versionNum))).rows[0];
  // A view only superusers may read by default: querying it otherwise is an error, not an empty answer.
  const files = r.superuser ? ((await db.query(FILE_SETTINGS_SQL)).rows as FileSettingRow[]) : null;
  return {
    setting: r.setting,
    source: r.source,
    sourcefile: r.sourcefile,
    sourceline: r.sourceline,
    fileSettings:
      files?.map((f) => ({
        sourcefile: f.sourcefile,
        sourceline: f.sourceline,
        setting: f.setting,
        applied: f.applied,
        error: f.error,
      })) ?? null,
    allowAlterSystem: r.allow_alter_system,
    mayAlterSystem: r.may_alter_system,
    commitScope: r.commit_scope,
  };
}
