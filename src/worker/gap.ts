/**
 * Never stream past a gap (issue 8, item 7). Before streaming, on every (re)connect: the slot must be the
 * mirror's and able to deliver everything after the mirror's position. The worker writes a position to the
 * catalog before acknowledging it to the slot, so a slot that confirms more than the catalog holds was
 * recreated or advanced by someone else: streaming from it would silently skip the transactions in between.
 * Pure: the session reads the slot, this decides.
 */
import { lsnToBigInt } from '../db/lsn.js';
import { Fault } from './faults.js';

export interface SlotState {
  exists: boolean;
  plugin: string | null;
  confirmedFlushLsn: string | null;
  walStatus: string | null;
}

const RESYNC_HINT =
  'the mirror must be copied again: run `mirrors plan` to see the slot replacement and full resync it proposes, then `mirrors apply`';

/**
 * The source must be the server and database the mirror's slot was created on (recorded in the catalog since
 * migration 6): a restored backup or another server with a slot of the same name would stream another history.
 */
export function sourceMismatch(
  sourcePeer: string,
  recorded: { systemIdentifier: string; databaseOid: string } | null,
  seen: { systemIdentifier: string; databaseOid: string },
): Fault | null {
  if (!recorded) return null;
  if (recorded.systemIdentifier === seen.systemIdentifier && recorded.databaseOid === seen.databaseOid) return null;
  return new Fault(
    'gap',
    `peer ${sourcePeer} is not the server and database the mirror was created from (system identifier ${seen.systemIdentifier}, database OID ${seen.databaseOid}; recorded ${recorded.systemIdentifier}, ${recorded.databaseOid})`,
    'MR163',
    "point the peer back at the mirror's source; if the source was restored or moved on purpose, the mirror must be copied again (remove it and declare it anew)",
  );
}

/** A gap Fault when streaming from this slot could lose transactions after `appliedLsn`, else null. */
export function slotGap(
  slotName: string,
  sourcePeer: string,
  slot: SlotState,
  appliedLsn: string | null,
): Fault | null {
  const where = `replication slot ${slotName} on peer ${sourcePeer}`;
  if (!slot.exists) return new Fault('gap', `${where} does not exist`, 'MR160', RESYNC_HINT);
  if (slot.plugin !== 'pgoutput')
    return new Fault('gap', `${where} uses plugin ${slot.plugin ?? 'none'}, not pgoutput`, 'MR160', RESYNC_HINT);
  if (slot.walStatus === 'lost')
    return new Fault('gap', `${where} lost WAL the mirror still needed (wal_status lost)`, 'MR161', RESYNC_HINT);
  if (appliedLsn && slot.confirmedFlushLsn && lsnToBigInt(slot.confirmedFlushLsn) > lsnToBigInt(appliedLsn)) {
    return new Fault(
      'gap',
      `${where} confirms ${slot.confirmedFlushLsn}, beyond the mirror's position ${appliedLsn}: it was recreated or advanced outside the mirror, and streaming from it would skip every transaction in between`,
      'MR162',
      RESYNC_HINT,
    );
  }
  return null;
}
