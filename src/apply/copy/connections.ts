/**
 * The copy's connections: how a worker's source and destination sessions are opened.
 *
 * Owns: the session settings both sides run with and the source's snapshot transaction.
 * Must not: keep or close connections (the worker pool holds them) or run anything on them but their setup.
 */
import type pg from 'pg';
import type { Peer } from '../../config/types.js';
import { connectPeer } from '../../db/connect.js';
import { quoteLiteral } from '../../db/quote.js';

export const SNAPSHOT_APPLICATION_NAME = 'mirrors snapshot';

/**
 * Settings that make the text COPY format mean the same thing on both sides whatever the servers' or roles'
 * defaults: unambiguous dates, exact floats, hex bytea, money and XML parsed as printed, no timeouts cutting
 * a long COPY. Sent in the startup packet: no extra round trip.
 */
const SESSION_SETTINGS = [
  'DateStyle=ISO',
  'IntervalStyle=postgres',
  'TimeZone=UTC',
  'extra_float_digits=3',
  'bytea_output=hex',
  'lc_monetary=C',
  'xmloption=content',
  'statement_timeout=0',
  'idle_in_transaction_session_timeout=0',
];
const SOURCE_OPTIONS = SESSION_SETTINGS.map((s) => `-c ${s}`).join(' ');
/** Like Postgres's own apply worker: user triggers (and the read-only guard) do not fire, FKs are not checked. */
const DESTINATION_OPTIONS = `${SOURCE_OPTIONS} -c session_replication_role=replica`;

/**
 * A source session in one REPEATABLE READ transaction on the exported snapshot, for its whole life: every
 * part it copies and every planning query sees the same snapshot, and a part costs no extra round trips.
 */
export async function openSource(peer: Peer, snapshotName: string): Promise<pg.Client> {
  const c = await connectPeer(peer, { applicationName: SNAPSHOT_APPLICATION_NAME, options: SOURCE_OPTIONS });
  try {
    await c.query(
      `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`,
    );
  } catch (err) {
    // e.g. 22023 invalid snapshot identifier: the exporting connection is gone.
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

/** A destination session: its COPYs run in autocommit, so each part is its own transaction. */
export function openDestination(peer: Peer): Promise<pg.Client> {
  return connectPeer(peer, { applicationName: SNAPSHOT_APPLICATION_NAME, options: DESTINATION_OPTIONS });
}
