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
  /** The source server (IDENTIFY_SYSTEM's systemid) and database the slot belongs to. */
  systemIdentifier: string;
  databaseOid: string;
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
    // Before the slot: the exported snapshot must come from CREATE_REPLICATION_SLOT itself.
    const identity = (await conn.query('IDENTIFY_SYSTEM')).rows[0];
    const db = (await conn.query('SELECT oid::text AS oid FROM pg_database WHERE datname = current_database()'))
      .rows[0];
    const res = await conn.query(command);
    const row = res.rows[0];
    return {
      slot,
      consistentLsn: row.consistent_point,
      snapshotName: row.snapshot_name,
      systemIdentifier: String(identity.systemid),
      databaseOid: db.oid,
      close: async () => {
        await conn.end().catch(() => {});
      },
    };
  } catch (err) {
    await conn.end().catch(() => {});
    throw err;
  }
}
