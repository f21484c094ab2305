/**
 * The closed set of preflight diagnostics. Each code is documented in docs/diagnostics.md (a unit test
 * keeps the two in step). Errors block `plan --out` and `apply`; warnings do not.
 */
import type { Diagnostic, Severity } from './types.js';

export const DIAGNOSTICS = {
  MR101: { severity: 'error', title: 'wal_level is not logical on the source' },
  MR102: { severity: 'error', title: 'not enough replication slots on the source' },
  MR103: { severity: 'error', title: 'not enough WAL senders on the source' },
  MR104: { severity: 'error', title: 'the source role has no REPLICATION privilege' },
  MR105: { severity: 'warning', title: 'max_slot_wal_keep_size is unlimited on the source' },
  MR106: { severity: 'warning', title: 'one sync mirror down would stop source commits' },
  MR107: { severity: 'error', title: 'the destination role cannot create schemas' },
  MR108: { severity: 'error', title: 'source server version not supported' },
  MR109: { severity: 'error', title: 'the source role cannot create publications' },
  MR110: { severity: 'error', title: 'source table missing' },
  MR111: { severity: 'error', title: 'table without primary key or usable replica identity' },
  MR112: { severity: 'error', title: 'excluded column is part of the replica identity' },
  MR113: { severity: 'error', title: 'column named in the mapping does not exist' },
  MR114: { severity: 'error', title: 'deferrable primary key' },
  MR115: { severity: 'error', title: 'excluded columns need PostgreSQL 15 on the source' },
  MR116: { severity: 'error', title: 'the source role cannot read the table' },
  MR117: { severity: 'error', title: 'the source role does not own a table or publication it must change' },
  MR118: { severity: 'error', title: 'UNLOGGED source table' },
  MR119: { severity: 'error', title: 'source relation cannot be published' },
  MR120: { severity: 'error', title: 'existing destination table does not fit' },
  MR121: { severity: 'error', title: 'excluded column is NOT NULL without default on the destination' },
  MR122: { severity: 'error', title: 'destination table already holds rows' },
  MR123: { severity: 'error', title: 'destination table has no key matching the source' },
  MR124: { severity: 'error', title: 'extension not available on the destination' },
  MR125: { severity: 'error', title: 'the destination role cannot use or create in a destination schema' },
  MR126: { severity: 'error', title: 'the destination role cannot set session_replication_role' },
  MR127: { severity: 'error', title: 'the destination role lacks privileges on an existing destination table' },
  MR128: { severity: 'error', title: 'the destination role does not own the catalog schema `mirrors`' },
  MR130: { severity: 'warning', title: "slot's WAL was removed: full resync" },
  MR131: { severity: 'error', title: 'publication exists but is not owned by this mirror' },
  MR132: { severity: 'error', title: 'replication slot exists but is not owned by this mirror' },
  MR134: { severity: 'warning', title: 'slot is in use by a running worker' },
  MR135: { severity: 'error', title: 'resync_strategy swap cannot resync this table' },
  MR136: { severity: 'error', title: 'the plan would destroy a mirror with prevent_destroy' },
  MR137: { severity: 'error', title: 'an action is riskier than --fail-on allows' },
  MR138: { severity: 'error', title: 'resync_strategy merge needs the same key on both peers' },
  MR139: { severity: 'error', title: '--replace names nothing to copy again' },
  MR140: { severity: 'error', title: 'two mirrors write the same destination table' },
  MR141: { severity: 'error', title: 'wildcard matches no table' },
  MR142: { severity: 'error', title: "removed mirror's source peer is no longer declared" },
  MR143: { severity: 'error', title: "mirror's source peer changed" },
  MR144: { severity: 'error', title: 'destination schema `mirrors` is reserved' },
  MR145: { severity: 'error', title: 'mirror belongs to another project' },
  MR146: { severity: 'note', title: "another project's mirror on the destination" },
  MR147: { severity: 'error', title: 'a file without a project would destroy a mirror' },
  MR148: { severity: 'error', title: 'the catalog is newer than this mirrors' },
  MR149: { severity: 'error', title: "mirror's destination changed" },
  MR170: { severity: 'error', title: 'promotion needs the mirror Following with a worker streaming it' },
  MR171: { severity: 'error', title: 'promotion needs every table copied' },
  MR172: { severity: 'error', title: 'promotion blocked by schema drift' },
  MR174: { severity: 'error', title: 'the source is not the server the mirror was created from' },
  MR175: { severity: 'error', title: 'promotion planned together with other changes of the mirror' },
  MR176: { severity: 'error', title: 'defaults and sequences cannot be restored on the destination' },
  MR177: { severity: 'error', title: 'the roles lack privileges the promotion needs' },
  MR179: { severity: 'warning', title: 'promotion planned by a later apply' },
  MR180: { severity: 'warning', title: 'promotion without the source: writes may be lost' },
  MR181: { severity: 'error', title: 'the source cannot be reached' },
  MR182: { severity: 'warning', title: "no record of the source's defaults and sequences" },
  MR183: { severity: 'warning', title: 'the old source of a promotion cannot be reached' },
  MR184: { severity: 'error', title: 'promoted without its reverse mirror' },
  MR185: { severity: 'note', title: 'the write pause a promotion imposes' },
  MR186: { severity: 'error', title: 'a reverse mirror needs the source' },
  MR187: { severity: 'warning', title: 'the old source of a promotion without it is back' },
  MR190: { severity: 'error', title: 'sync mirrors of one cluster ask for different quorums' },
  MR191: { severity: 'note', title: 'a sync mirror is not a synchronous standby now' },
  MR192: { severity: 'error', title: 'synchronous_standby_names is managed by someone else' },
  MR193: { severity: 'note', title: 'databases no sync mirror carries wait for the sync mirrors' },
  MR194: { severity: 'warning', title: 'commits of a mirrored database do not wait for its sync mirror' },
  // Schema drift of a streaming (`ready`) table: src/diff/drift.ts. Errors are drift the stream cannot apply through.
  MR150: { severity: 'warning', title: 'column added on the source' },
  MR151: { severity: 'warning', title: 'column dropped on the source' },
  MR152: { severity: 'warning', title: 'column renamed on the source' },
  MR153: { severity: 'warning', title: 'column type differs' },
  MR154: { severity: 'warning', title: 'NOT NULL differs' },
  MR155: { severity: 'warning', title: 'column default differs' },
  MR156: { severity: 'warning', title: "source column hidden by the publication's column list" },
  MR157: { severity: 'error', title: 'source table dropped or renamed' },
  MR158: { severity: 'error', title: 'destination table altered or missing' },
  MR159: { severity: 'warning', title: 'read-only guard missing or disabled' },
  // Data drift: what the last `mirrors verify` found (src/diff/verify-result.ts).
  MR165: { severity: 'warning', title: 'the last verify found the table different from its source' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type DiagnosticCode = keyof typeof DIAGNOSTICS;

export function diag(code: DiagnosticCode, address: string, message: string, hint: string): Diagnostic {
  return { code, severity: DIAGNOSTICS[code].severity, address, message, hint };
}

/**
 * Drift codes (schema, and data as verify found it): `plan --detailed-exitcode` exits 2 for them even without actions
 * (1 for the errors).
 */
const DRIFT_CODES: ReadonlySet<string> = new Set<DiagnosticCode>([
  'MR150',
  'MR151',
  'MR152',
  'MR153',
  'MR154',
  'MR155',
  'MR156',
  'MR157',
  'MR158',
  'MR159',
  'MR165',
]);

/** The data drift code: what the last `mirrors verify` found (the others are schema drift). */
export const DATA_DRIFT = 'MR165';

export function isDrift(d: Pick<Diagnostic, 'code'>): boolean {
  return DRIFT_CODES.has(d.code);
}

export function docsAnchor(code: string): string {
  return `docs/diagnostics.md#${code.toLowerCase()}`;
}
