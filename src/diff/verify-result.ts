/**
 * What the last `mirrors verify` found, carried into the plan (MR165): a table it found different from its source
 * is reported, with the resync that repairs it, until a copy or a merge after that run.
 */
import type { CatalogTable } from '../inspect/types.js';
import { lsnToBigInt } from '../db/lsn.js';
import { displayQualified } from '../config/names.js';
import { diag } from '../plan/diagnostics.js';
import type { Diagnostic } from '../plan/types.js';
import { tableAddress } from '../plan/address.js';

export function verifyDiagnostic(mirror: string, rec: CatalogTable): Diagnostic | null {
  const v = rec.lastVerify;
  if (v?.outcome !== 'different') return null;
  // Copied again from a later snapshot, or merged since: the run's finding is out of date.
  if (rec.snapshotLsn && lsnToBigInt(rec.snapshotLsn) > lsnToBigInt(v.targetLsn)) return null;
  if (rec.lastMergeAt && Date.parse(rec.lastMergeAt) > Date.parse(v.finishedAt)) return null;
  const address = tableAddress(mirror, rec.destination);
  return diag(
    'MR165',
    address,
    `the last \`mirrors verify\` that compared it (run ${v.run}, ${v.finishedAt}) found ${displayQualified(rec.destination)} different from its source${rowCounts(v)}`,
    `copy it again with \`mirrors apply --replace ${address}\`, or repair it in place with resync_strategy: merge and the same --replace; then run \`mirrors verify\` again (docs/verify.md)`,
  );
}

/** `: rows 1 missing, 2 changed` (the kinds found), or '' when none is counted (a table without a key). */
export function rowCounts(c: { missing: number; extra: number; changed: number }): string {
  const kinds = (['missing', 'extra', 'changed'] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
  return kinds.length ? `: rows ${kinds.join(', ')}` : '';
}
