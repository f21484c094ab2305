/**
 * Builds the typed Config from data that passed the schema and the rules: settings merged
 * built-in defaults < `defaults:` < mirror (by the table in settings.ts), tables parsed, peers split into
 * fields, the project defaulted, and the hash.
 * Assumes valid input; validation belongs to schema.ts and rules.ts.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonical.js';
import { parseTableRef } from './names.js';
import { DEFAULT_PORT, DEFAULT_SSLMODE, makePeer, parsePeerUrl, type PeerFields } from './peer.js';
import { resolveSettings } from './settings.js';
import type { Segment } from './positions.js';
import { parseDuration } from './duration.js';
import {
  PROMOTE_DEFAULTS,
  REVERSE_SUFFIX,
  type Config,
  type Mirror,
  type Peer,
  type PromoteSpec,
  type SourcePos,
  type SslMode,
  type TableMapping,
} from './types.js';

type Obj = Record<string, unknown>;

/** `project:` when the file does not set one. */
export const DEFAULT_PROJECT = 'default';

export type PosOf = (path: Segment[], at?: 'key' | 'value') => SourcePos;

export function normalize(data: Obj, file: string, posOf: PosOf): Config {
  const peers: Record<string, Peer> = {};
  for (const [name, raw] of Object.entries(data.peers as Obj)) peers[name] = normalizePeer(name, raw as Obj);
  const defaults = (data.defaults ?? {}) as Obj;
  const mirrors: Record<string, Mirror> = {};
  for (const [name, raw] of Object.entries(data.mirrors as Obj)) {
    mirrors[name] = normalizeMirror(name, raw as Obj, defaults, posOf);
  }
  for (const m of Object.values(mirrors)) {
    if (!m.promote?.reverse) continue;
    const name = `${m.name}${REVERSE_SUFFIX}`;
    // Declared (to change it, e.g. promote it back) or not, it never copies: rules.ts refuses an explicit copy.
    mirrors[name] = { ...(mirrors[name] ?? reverseMirror(m, name)), do_initial_snapshot: false, reverseOf: m.name };
  }
  const project = typeof data.project === 'string' ? data.project : DEFAULT_PROJECT;
  const projectDeclared = typeof data.project === 'string';
  const config: Omit<Config, 'hash'> = { file, version: 1, project, projectDeclared, peers, mirrors };
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

function normalizePromote(raw: unknown): PromoteSpec | null {
  if (raw === undefined || raw === false) return null;
  if (raw === true) return { ...PROMOTE_DEFAULTS };
  const o = raw as Obj;
  const wait = o.max_fence_wait === undefined ? null : parseDuration(String(o.max_fence_wait));
  if (wait && !wait.ok) throw new Error('internal: promote.max_fence_wait passed validation but does not parse');
  return {
    max_fence_wait_ms: wait ? wait.ms : PROMOTE_DEFAULTS.max_fence_wait_ms,
    sequence_margin: (o.sequence_margin as number | undefined) ?? PROMOTE_DEFAULTS.sequence_margin,
    verify: (o.verify as PromoteSpec['verify'] | undefined) ?? PROMOTE_DEFAULTS.verify,
    read_only_source: (o.read_only_source as boolean | undefined) ?? PROMOTE_DEFAULTS.read_only_source,
    reverse: (o.reverse as boolean | undefined) ?? PROMOTE_DEFAULTS.reverse,
  };
}

function normalizeMirror(name: string, raw: Obj, defaults: Obj, posOf: PosOf): Mirror {
  const base: Segment[] = ['mirrors', name];
  return {
    name,
    source: raw.source as string,
    destination: raw.destination as string,
    ...resolveSettings(raw, defaults),
    tables: (raw.tables as Obj[]).map((t, i) => normalizeTable(t, posOf([...base, 'tables', i]))),
    promote: normalizePromote(raw.promote),
    pos: posOf(base, 'key'),
  };
}

/**
 * The reverse mirror `promote: {reverse: true}` declares: the new primary back to the old source, the same
 * tables and settings, no initial copy (both sides are equal at the promotion; rules.ts refuses what would not
 * be: schema.* and excluded columns). Declared explicitly under its name, the declaration is used instead.
 */
export function reverseMirror(m: Mirror, name: string): Mirror {
  return {
    ...m,
    name,
    source: m.destination,
    destination: m.source,
    do_initial_snapshot: false,
    promote: null,
    tables: m.tables.flatMap((t) =>
      t.source.kind === 'table' && t.destination
        ? [
            {
              source: { kind: 'table' as const, ...t.destination },
              destination: { schema: t.source.schema, name: t.source.name },
              exclude_columns: [],
              pos: t.pos,
            },
          ]
        : [],
    ),
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

/**
 * sha256 of what the config means: the project, peers without passwords, mirrors with their merged settings, no file
 * name or positions, so moving the file, adding a comment or rotating a password keeps the hash.
 * Fields are copied by name rather than serialized wholesale, so a secret cannot slip in.
 */
export function configHash(config: Omit<Config, 'hash'>): string {
  return createHash('sha256').update(hashInput(config)).digest('hex');
}

/**
 * sha256 of one mirror's definition: its settings and tables, and where its peers are (host, port, database;
 * not users or passwords). Recorded with the mirror and carried by the plan, so a change elsewhere in the file
 * does not touch this mirror's actions.
 */
export function mirrorHash(config: Pick<Config, 'peers' | 'mirrors'>, name: string): string {
  const { pos: _pos, tables, ...rest } = config.mirrors[name];
  const where = (peer: string) => {
    const p = config.peers[peer];
    return p && { host: p.host, port: p.port, database: p.database };
  };
  const definition = {
    ...rest,
    tables: tables.map(({ pos: _p, ...t }) => t),
    at: [where(rest.source), where(rest.destination)],
  };
  return createHash('sha256').update(canonicalJson(definition)).digest('hex');
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
