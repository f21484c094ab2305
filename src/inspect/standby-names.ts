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
       ${allow} AS allow_alter_system, ${may} AS may_alter_system
  FROM pg_settings s, pg_roles r
 WHERE s.name = 'synchronous_standby_names' AND r.rolname = current_user`;
}

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
  };
}
