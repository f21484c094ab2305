/**
 * Replication slots created on a walsender connection with an exported snapshot (DESIGN.md invariant 1):
 * the connection must stay open while copy workers use the snapshot, so the caller closes it.
 */
import pg from 'pg';
import type { Peer } from '../config/types.js';
import { clientConfig, connectionError } from '../db/connect.js';
import { quoteIdent } from '../db/quote.js';

export interface ExportedSnapshot {
  slot: string;
  consistentLsn: string;
  snapshotName: string;
  /** Closing it ends the snapshot (and drops a temporary slot). */
  close(): Promise<void>;
}

export async function createSlotWithSnapshot(
  peer: Peer,
  slot: string,
  opts: { temporary: boolean; serverVersionNum?: number },
): Promise<ExportedSnapshot> {
  const conn = new pg.Client(clientConfig(peer, { replication: true, applicationName: `mirrors slot ${slot}` }));
  conn.on('error', () => {});
  try {
    await conn.connect();
  } catch (err) {
    throw connectionError(peer, err);
  }
  try {
    const version =
      opts.serverVersionNum ?? Number((await conn.query('SHOW server_version_num')).rows[0].server_version_num);
    // PostgreSQL 15 introduced the parenthesized option syntax; older servers take the keyword form.
    const options = version >= 150000 ? `(SNAPSHOT 'export')` : 'EXPORT_SNAPSHOT';
    const res = await conn.query(
      `CREATE_REPLICATION_SLOT ${quoteIdent(slot)}${opts.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput ${options}`,
    );
    const row = res.rows[0];
    return {
      slot,
      consistentLsn: row.consistent_point,
      snapshotName: row.snapshot_name,
      close: async () => {
        await conn.end().catch(() => {});
      },
    };
  } catch (err) {
    await conn.end().catch(() => {});
    throw err;
  }
}
