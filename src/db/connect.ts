/**
 * Connections to peers. Turns connection failures into one clear MirrorsError naming the peer and host
 * (never the password), so the CLI prints one line and no stack trace.
 */
import pg from 'pg';
import { MirrorsError, pgFields } from '../errors.js';
import { peerPassword, type Peer } from '../config/types.js';
import { NETWORK_ERRNOS, SQLSTATE, sqlstateOf } from './sqlstate.js';

export interface ConnectOptions {
  /** Open a walsender connection (replication=database) instead of a normal one. */
  replication?: boolean;
  applicationName?: string;
  connectTimeoutMs?: number;
  /** Server options, e.g. `-c search_path=pg_catalog`. */
  options?: string;
}

export function clientConfig(peer: Peer, opts: ConnectOptions = {}): pg.ClientConfig {
  const ssl =
    peer.sslmode === 'disable' || peer.sslmode === 'prefer'
      ? false
      : peer.sslmode === 'require'
        ? { rejectUnauthorized: false }
        : { rejectUnauthorized: true };
  const cfg: pg.ClientConfig & { replication?: string } = {
    host: peer.host,
    port: peer.port,
    database: peer.database,
    user: peer.user,
    password: peerPassword(peer),
    ssl,
    application_name: opts.applicationName ?? 'mirrors',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    keepAlive: true,
  };
  if (opts.replication) cfg.replication = 'database';
  if (opts.options) cfg.options = opts.options;
  return cfg;
}

export function describePeer(peer: Peer): string {
  return `peer ${peer.name} (${peer.host}:${peer.port}/${peer.database} as ${peer.user})`;
}

export async function connectPeer(peer: Peer, opts: ConnectOptions = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(peer, opts));
  // An idle client whose server goes away emits 'error'; without a listener Node would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw connectionError(peer, err);
  }
  return client;
}

export function connectionError(peer: Peer, err: unknown): MirrorsError {
  const where = describePeer(peer);
  const state = sqlstateOf(err);
  const errno = (err as { code?: string } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  if (state === SQLSTATE.invalidPassword || state === SQLSTATE.invalidAuthorization) {
    return new MirrorsError('PEER_AUTH_FAILED', `${where}: authentication failed`, {
      hint: 'check the user and password (environment variable) declared for this peer',
      pg: pgFields(err),
    });
  }
  if (state === SQLSTATE.invalidCatalogName) {
    return new MirrorsError('PEER_DATABASE_MISSING', `${where}: database "${peer.database}" does not exist`, {
      hint: 'create the database or fix `database` in the peer',
      pg: pgFields(err),
    });
  }
  if ((errno && NETWORK_ERRNOS.has(errno)) || /timeout|terminated unexpectedly/i.test(msg)) {
    return new MirrorsError('PEER_UNREACHABLE', `${where}: cannot connect (${errno ?? msg})`, {
      hint: 'is the server running and reachable from here? check host, port and firewalls',
    });
  }
  return new MirrorsError('PEER_ERROR', `${where}: ${redact(msg, peer)}`, { pg: pgFields(err) });
}

/** Removes the peer's password from a message, in case a driver ever echoes it. */
export function redact(text: string, peer: Peer): string {
  const pw = peerPassword(peer);
  return pw ? text.split(pw).join('***') : text;
}
