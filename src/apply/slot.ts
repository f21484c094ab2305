/**
 * Replication slots created on a walsender connection with an exported snapshot (DESIGN.md invariant 1):
 * the connection must stay open while copy workers use the snapshot, so the caller closes it.
 */
import pg from 'pg';
import type { Peer } from '../config/types.js';
import { clientConfig, connectionError } from '../db/connect.js';
import { createSlotCommand } from '../diff/ddl.js';

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
  /** `command`: the plan's CREATE_REPLICATION_SLOT; else built for a temporary slot on the server's version. */
  opts: { temporary: true } | { temporary: false; command: string },
): Promise<ExportedSnapshot> {
  const conn = new pg.Client(clientConfig(peer, { replication: true, applicationName: `mirrors slot ${slot}` }));
  conn.on('error', () => {});
  try {
    await conn.connect();
  } catch (err) {
    throw connectionError(peer, err);
  }
  try {
    const command = opts.temporary
      ? createSlotCommand(slot, Number((await conn.query('SHOW server_version_num')).rows[0].server_version_num), true)
      : opts.command;
    const res = await conn.query(command);
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
