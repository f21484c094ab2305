/**
 * Builds the typed Config from data that passed the schema and the rules: settings merged
 * built-in defaults < `defaults:` < mirror, tables parsed, peers split into fields, and the hash.
 * Assumes valid input; validation belongs to schema.ts and rules.ts.
 */
import { createHash } from 'node:crypto';
import { parseTableRef } from './names.js';
import { DEFAULT_PORT, DEFAULT_SSLMODE, makePeer, parsePeerUrl, type PeerFields } from './peer.js';
import { parseDuration } from './duration.js';
import type { Segment } from './positions.js';
import type { Config, Mirror, MirrorSettings, Peer, SourcePos, SslMode, TableMapping } from './types.js';

type Obj = Record<string, unknown>;

export const BUILTIN_DEFAULTS: Omit<MirrorSettings, 'lag_threshold_ms'> = {
  mode: 'async',
  do_initial_snapshot: true,
  snapshot_num_rows_per_partition: 250_000,
  snapshot_max_parallel_workers: 4,
  snapshot_num_tables_in_parallel: 4,
  max_batch_size: 1000,
  idle_timeout_seconds: 60,
  replicate_indexes: true,
  replicate_foreign_keys: true,
  resync_strategy: 'truncate',
  paused: false,
  prevent_destroy: false,
};

export const DEFAULT_LAG_MS = { async: 5_000, sync: 100 } as const;

export type PosOf = (path: Segment[], at?: 'key' | 'value') => SourcePos;

export function normalize(data: Obj, file: string, posOf: PosOf): Config {
  const peers: Record<string, Peer> = {};
  for (const [name, raw] of Object.entries(data.peers as Obj)) peers[name] = normalizePeer(name, raw as Obj);
  const defaults = (data.defaults ?? {}) as Obj;
  const mirrors: Record<string, Mirror> = {};
  for (const [name, raw] of Object.entries(data.mirrors as Obj)) {
    mirrors[name] = normalizeMirror(name, raw as Obj, defaults, posOf);
  }
  const project = typeof data.project === 'string' ? data.project : 'default';
  const config: Omit<Config, 'hash'> = { file, version: 1, project, peers, mirrors };
  return { ...config, hash: configHash(config) };
}

function normalizePeer(name: string, raw: Obj): Peer {
  if (typeof raw.url === 'string') {
    const r = parsePeerUrl(raw.url);
    if (!r.ok) throw new Error(`internal: peer ${name} url passed validation but does not parse`);
    return makePeer(name, r.fields);
  }
  const fields: PeerFields = {
    host: raw.host as string,
    port: (raw.port as number | undefined) ?? DEFAULT_PORT,
    database: raw.database as string,
    user: raw.user as string,
    sslmode: (raw.sslmode as SslMode | undefined) ?? DEFAULT_SSLMODE,
    ...(typeof raw.password === 'string' ? { password: raw.password } : {}),
  };
  return makePeer(name, fields);
}

function normalizeMirror(name: string, raw: Obj, defaults: Obj, posOf: PosOf): Mirror {
  const pick = <K extends keyof typeof BUILTIN_DEFAULTS>(k: K): MirrorSettings[K] =>
    (raw[k] ?? defaults[k] ?? BUILTIN_DEFAULTS[k]) as MirrorSettings[K];
  const mode = pick('mode');
  const lag = (raw.lag_threshold ?? defaults.lag_threshold) as string | undefined;
  const base: Segment[] = ['mirrors', name];
  return {
    name,
    source: raw.source as string,
    destination: raw.destination as string,
    mode,
    do_initial_snapshot: pick('do_initial_snapshot'),
    snapshot_num_rows_per_partition: pick('snapshot_num_rows_per_partition'),
    snapshot_max_parallel_workers: pick('snapshot_max_parallel_workers'),
    snapshot_num_tables_in_parallel: pick('snapshot_num_tables_in_parallel'),
    max_batch_size: pick('max_batch_size'),
    idle_timeout_seconds: pick('idle_timeout_seconds'),
    replicate_indexes: pick('replicate_indexes'),
    replicate_foreign_keys: pick('replicate_foreign_keys'),
    resync_strategy: pick('resync_strategy'),
    // A sync mirror holds up source commits, so "late" starts much sooner than for an async one.
    lag_threshold_ms: lag === undefined ? DEFAULT_LAG_MS[mode] : durationMs(lag),
    paused: pick('paused'),
    prevent_destroy: pick('prevent_destroy'),
    tables: (raw.tables as Obj[]).map((t, i) => normalizeTable(t, posOf([...base, 'tables', i]))),
    pos: posOf(base, 'key'),
  };
}

function normalizeTable(raw: Obj, pos: SourcePos): TableMapping {
  const source = parseTableRef(raw.source_table as string);
  const exclude_columns = [...((raw.exclude_columns as string[] | undefined) ?? [])];
  const partition = typeof raw.partition_key === 'string' ? { partition_key: raw.partition_key } : {};
  if (source.kind === 'schema') {
    return { source: { kind: 'schema', schema: source.schema }, ...partition, exclude_columns, pos };
  }
  const dest = typeof raw.destination_table === 'string' ? parseTableRef(raw.destination_table) : source;
  if (dest.kind !== 'table') throw new Error('internal: wildcard destination_table passed validation');
  return {
    source: { kind: 'table', schema: source.schema, name: source.name },
    destination: { schema: dest.schema, name: dest.name },
    ...partition,
    exclude_columns,
    pos,
  };
}

function durationMs(text: string): number {
  const r = parseDuration(text);
  if (!r.ok) throw new Error('internal: lag_threshold passed validation but does not parse');
  return r.ms;
}

/**
 * sha256 of what the config means: peers without passwords, mirrors with their merged settings, no file
 * name or positions, so moving the file, adding a comment or rotating a password keeps the hash.
 * Fields are copied by name rather than serialized wholesale, so a secret cannot slip in.
 */
export function configHash(config: Omit<Config, 'hash'>): string {
  return createHash('sha256').update(hashInput(config)).digest('hex');
}

export function hashInput(config: Omit<Config, 'hash'>): string {
  const peers: Obj = {};
  for (const [name, p] of Object.entries(config.peers)) {
    peers[name] = { host: p.host, port: p.port, database: p.database, user: p.user, sslmode: p.sslmode };
  }
  const mirrors: Obj = {};
  for (const [name, m] of Object.entries(config.mirrors)) {
    const { pos: _pos, tables, ...rest } = m;
    mirrors[name] = {
      ...rest,
      tables: tables.map(({ pos: _p, ...t }) => t),
    };
  }
  return canonicalJson({ version: config.version, project: config.project, peers, mirrors });
}

/** JSON with object keys sorted at every level, so the same config always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const entries = Object.entries(value as Obj)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + canonicalJson(v)).join(',') + '}';
}
