/**
 * Peers: connection URLs split into the fields of `Peer`, the password made non-enumerable, and the
 * identity of the database a peer points at. Pure.
 * Nothing here may put a URL or a password into a message: URLs carry passwords, so errors describe
 * what is wrong without quoting the input.
 */
import type { Peer, SslMode } from './types.js';

export const SSL_MODES: readonly SslMode[] = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'];
export const DEFAULT_PORT = 5432;
export const DEFAULT_SSLMODE: SslMode = 'prefer';

export interface PeerFields {
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: SslMode;
  password?: string;
}

export type UrlResult = { ok: true; fields: PeerFields } | { ok: false; message: string };

const SOCKET_MESSAGE = 'Unix-domain sockets are not supported: connect over TCP with a host name or IP address';

/**
 * Why a host (as libpq and node-postgres read it) is not one TCP host, or undefined when it is one. A host
 * starting with `/` is a socket directory to both, and `@` an abstract socket to libpq.
 */
export function hostProblem(host: string): string | undefined {
  if (host.startsWith('/') || host.startsWith('@')) return SOCKET_MESSAGE;
  if (host.includes(',')) return 'names several hosts; give exactly one';
  return undefined;
}

export function parsePeerUrl(url: string): UrlResult {
  const bad = (message: string): UrlResult => ({ ok: false, message });
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    return bad('url must start with postgres:// or postgresql://');
  }
  // Before parsing: `postgres://u@/db?host=/tmp` is not even a valid URL, and that message would mislead.
  const query = url.indexOf('?');
  const hostParam = query < 0 ? null : new URLSearchParams(url.slice(query + 1)).get('host');
  if (hostParam !== null && hostProblem(hostParam) === SOCKET_MESSAGE) return bad('url ' + SOCKET_MESSAGE);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The thrown error carries the input (and so the password): drop it.
    return bad(
      'url is not a valid URL (check the host and port, and percent-encode special characters in the user and password)',
    );
  }
  if (!url.slice(scheme.length + 1).startsWith('//'))
    return bad('url must be postgres://user:password@host:port/database');
  // Percent-decoded as libpq does: `%2Fvar%2Frun%2Fpostgresql` is the socket directory /var/run/postgresql.
  const host = decode(u.hostname.replace(/^\[(.*)\]$/, '$1'));
  if (host === undefined) return bad('url has an invalid percent-encoding (%XX) in its host');
  if (host === '') return bad('url has no host (Unix-domain sockets are not supported)');
  const notTcp = hostProblem(host);
  if (notTcp) return bad('url ' + notTcp);
  const port = u.port === '' ? DEFAULT_PORT : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return bad('url port must be between 1 and 65535');
  const user = decode(u.username);
  const password = decode(u.password);
  const database = decode(u.pathname.replace(/^\//, ''));
  if (user === undefined || password === undefined || database === undefined) {
    return bad('url has an invalid percent-encoding (%XX) in its user, password or database');
  }
  if (user === '') return bad('url has no user: write postgres://USER@host/database');
  if (database === '') return bad('url has no database: write postgres://user@host/DATABASE');
  if (database.includes('/')) return bad('url path must be just the database name');
  let sslmode: SslMode = DEFAULT_SSLMODE;
  for (const [key, value] of u.searchParams) {
    if (key !== 'sslmode') return bad(`url parameter \`${safeParamName(key)}\` is not supported (only sslmode)`);
    if (!(SSL_MODES as readonly string[]).includes(value)) {
      return bad(`url sslmode must be one of ${SSL_MODES.join(', ')}`);
    }
    sslmode = value as SslMode;
  }
  return { ok: true, fields: { host, port, database, user, sslmode, ...(u.password === '' ? {} : { password }) } };
}

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

// A parameter name is not a secret, but a malformed URL could put anything there; cap what is echoed.
function safeParamName(key: string): string {
  return /^[A-Za-z0-9_]{1,40}$/.test(key) ? key : '?';
}

/** Builds a Peer whose password is non-enumerable, so JSON, logs and plans never contain it. */
export function makePeer(name: string, f: PeerFields): Peer {
  const peer: Peer = { name, host: f.host, port: f.port, database: f.database, user: f.user, sslmode: f.sslmode };
  if (f.password !== undefined) {
    Object.defineProperty(peer, 'password', {
      value: f.password,
      enumerable: false,
      writable: false,
      configurable: false,
    });
  }
  return peer;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '0:0:0:0:0:0:0:1']);

/** A key equal for two peers that reach the same database, so a mirror onto itself can be caught. */
export function databaseIdentity(f: Pick<PeerFields, 'host' | 'port' | 'database'>): string {
  const h = f.host.toLowerCase().replace(/\.$/, '');
  const host = LOOPBACK.has(h) ? 'localhost' : h;
  return JSON.stringify([host, f.port, f.database]);
}
