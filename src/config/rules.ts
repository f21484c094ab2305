/**
 * Semantic rules the schema cannot express: peer url-or-fields, references to peers, a mirror onto its
 * own database, table names, one writer per destination table, column lists, durations. Pure.
 * Works on the interpolated data even when the schema found problems, so it checks every value defensively
 * and skips what is already reported (`reported`), so one mistake yields one problem.
 */
import { displayIdent, displayQualified, parseTableRef, tableKey, type ParsedTableRef, type QualifiedName } from './names.js';
import { databaseIdentity, DEFAULT_PORT, parsePeerUrl } from './peer.js';
import { formatPath, type Segment } from './positions.js';
import type { Finding } from './problems.js';
import { didYouMean } from './suggest.js';
import { DURATION_HINT, parseDuration } from './duration.js';

type Obj = Record<string, unknown>;

const PEER_FIELDS = ['host', 'port', 'database', 'user', 'password', 'sslmode'];
const PEER_REQUIRED = ['host', 'database', 'user'];

export interface RuleInput {
  data: unknown;
  /** Formatted paths that already have a problem; values under them are not trusted. */
  reported: ReadonlySet<string>;
}

export function ruleFindings({ data, reported }: RuleInput): Finding[] {
  const out: Finding[] = [];
  if (!isObj(data)) return out;
  const tainted = (path: Segment[]): boolean => {
    const base = formatPath(path);
    for (const p of reported) {
      if (p === base || p.startsWith(base + '.') || p.startsWith(base + '[')) return true;
    }
    return false;
  };
  const peers = isObj(data.peers) ? data.peers : undefined;
  const identities = peers ? peerRules(peers, out, tainted) : new Map<string, string>();
  if (isObj(data.defaults)) durationRule(data.defaults, ['defaults'], out);
  if (isObj(data.mirrors)) mirrorRules(data.mirrors, peers, identities, out);
  return out;
}

/** Checks each peer's form and returns the database identity of every peer whose address is known. */
function peerRules(peers: Obj, out: Finding[], tainted: (p: Segment[]) => boolean): Map<string, string> {
  const identities = new Map<string, string>();
  for (const [name, peer] of Object.entries(peers)) {
    if (!isObj(peer)) continue;
    const base = ['peers', name];
    if (has(peer, 'url')) {
      for (const k of PEER_FIELDS) {
        if (has(peer, k)) {
          out.push({
            path: [...base, k],
            at: 'key',
            message: `\`${k}\` cannot be combined with \`url\``,
            hint: 'give either url, or host/port/database/user/password/sslmode',
          });
        }
      }
      if (typeof peer.url === 'string' && !tainted([...base, 'url'])) {
        const r = parsePeerUrl(peer.url);
        if (!r.ok) out.push({ path: [...base, 'url'], message: r.message, hint: 'postgres://user:password@host:port/database?sslmode=prefer' });
        else identities.set(name, databaseIdentity(r.fields));
      }
    } else {
      for (const k of PEER_REQUIRED) {
        if (!has(peer, k)) {
          out.push({ path: [...base, k], message: `missing required key \`${k}\``, hint: 'or give the whole connection as `url`' });
        }
      }
      const port = peer.port === undefined ? DEFAULT_PORT : peer.port;
      const trusted = !['host', 'port', 'database'].some((k) => tainted([...base, k]));
      if (typeof peer.host === 'string' && typeof peer.database === 'string' && typeof port === 'number' && trusted) {
        identities.set(name, databaseIdentity({ host: peer.host, port, database: peer.database }));
      }
    }
  }
  return identities;
}

interface Written {
  mirror: string;
  index: number;
  at: Segment[];
}

function mirrorRules(mirrors: Obj, peers: Obj | undefined, identities: Map<string, string>, out: Finding[]): void {
  const peerNames = peers ? Object.keys(peers) : [];
  // Destination database (or peer name, when its address is unknown) + table -> first writer.
  const writers = new Map<string, Written>();
  for (const [mname, mirror] of Object.entries(mirrors)) {
    if (!isObj(mirror)) continue;
    const base: Segment[] = ['mirrors', mname];
    for (const role of ['source', 'destination'] as const) {
      const ref = mirror[role];
      if (peers && typeof ref === 'string' && ref !== '' && !has(peers, ref)) {
        const guess = didYouMean(ref, peerNames);
        out.push({
          path: [...base, role],
          message: `unknown peer \`${ref}\``,
          hint: guess
            ? `did you mean \`${guess}\`?`
            : peerNames.length
              ? `declared peers: ${peerNames.join(', ')}`
              : 'declare it under `peers:`',
        });
      }
    }
    const src = typeof mirror.source === 'string' ? mirror.source : undefined;
    const dst = typeof mirror.destination === 'string' ? mirror.destination : undefined;
    if (src !== undefined && src === dst && peers && has(peers, src)) {
      out.push({
        path: [...base, 'destination'],
        message: `source and destination are the same peer \`${src}\``,
        hint: 'a mirror copies from one database to another',
      });
    } else if (src && dst && identities.has(src) && identities.get(src) === identities.get(dst)) {
      out.push({
        path: [...base, 'destination'],
        message: `peers \`${src}\` and \`${dst}\` are the same database`,
        hint: 'a mirror copies from one database to another (localhost, 127.0.0.1 and ::1 are the same host)',
      });
    }
    durationRule(mirror, base, out);
    if (Array.isArray(mirror.tables)) {
      const destKey = dst !== undefined && peers && has(peers, dst) ? (identities.get(dst) ?? 'peer:' + dst) : undefined;
      tableRules(mname, dst, destKey, mirror.tables, [...base, 'tables'], writers, out);
    }
  }
}

function tableRules(
  mname: string,
  destPeer: string | undefined,
  destKey: string | undefined,
  tables: unknown[],
  base: Segment[],
  writers: Map<string, Written>,
  out: Finding[],
): void {
  const sources = new Map<string, number>();
  const destinations = new Map<string, number>();
  tables.forEach((t, i) => {
    if (!isObj(t)) return;
    const at = [...base, i];
    const source = typeof t.source_table === 'string' && t.source_table !== '' ? parseName(t.source_table, [...at, 'source_table'], 'source_table', out) : undefined;
    let dest: QualifiedName | undefined = source?.kind === 'table' ? source : undefined;
    let destAt: Segment[] = [...at, 'source_table'];
    if (typeof t.destination_table === 'string' && t.destination_table !== '') {
      destAt = [...at, 'destination_table'];
      if (source?.kind === 'schema') {
        dest = undefined;
        out.push({
          path: destAt,
          message: `destination_table cannot be used with the wildcard source \`${displayIdent(source.schema)}.*\``,
          hint: 'each table of the schema keeps its name; list the table on its own to rename it',
        });
      } else {
        const parsed = parseName(t.destination_table, destAt, 'destination_table', out);
        if (parsed?.kind === 'schema') {
          out.push({ path: destAt, message: 'destination_table cannot be a wildcard', hint: 'name one table, or leave it out to keep the source name' });
        }
        dest = parsed?.kind === 'table' ? parsed : undefined;
      }
    }
    if (source) {
      const key = source.kind === 'schema' ? `schema\u0000${source.schema}` : `table\u0000${tableKey(source)}`;
      const first = sources.get(key);
      if (first !== undefined) {
        out.push({ path: [...at, 'source_table'], message: `\`${showRef(source)}\` is already listed at tables[${first}]`, hint: 'list each source table once' });
        // Its destination clash, if any, is the same mistake.
        dest = undefined;
      } else sources.set(key, i);
    }
    if (dest) {
      const key = tableKey(dest);
      const first = destinations.get(key);
      if (first !== undefined) {
        out.push({
          path: destAt,
          message: `destination table \`${displayQualified(dest)}\` is already written by tables[${first}]`,
          hint: 'give one of them another destination_table',
        });
      } else {
        destinations.set(key, i);
        if (destKey !== undefined) {
          const wkey = destKey + '\u0001' + key;
          const w = writers.get(wkey);
          if (w) {
            out.push({
              path: destAt,
              message: `destination table \`${displayQualified(dest)}\` on peer \`${destPeer}\` is already written by mirror \`${w.mirror}\` (${formatPath(w.at)})`,
              hint: 'a destination table has exactly one writer; give one of them another destination_table',
            });
          } else writers.set(wkey, { mirror: mname, index: i, at });
        }
      }
    }
    columnRules(t, at, out);
  });
}

function columnRules(t: Obj, at: Segment[], out: Finding[]): void {
  if (!Array.isArray(t.exclude_columns)) return;
  const seen = new Map<string, number>();
  t.exclude_columns.forEach((col, j) => {
    if (typeof col !== 'string') return;
    const first = seen.get(col);
    if (first !== undefined) {
      out.push({ path: [...at, 'exclude_columns', j], message: `\`${col}\` is already listed at exclude_columns[${first}]` });
      return;
    }
    seen.set(col, j);
    if (col === t.partition_key) {
      out.push({
        path: [...at, 'exclude_columns', j],
        message: `\`${col}\` is the partition_key and cannot be excluded`,
        hint: 'remove it from exclude_columns or choose another partition_key',
      });
    }
  });
}

function durationRule(settings: Obj, base: Segment[], out: Finding[]): void {
  if (typeof settings.lag_threshold !== 'string') return;
  const r = parseDuration(settings.lag_threshold);
  if (!r.ok) out.push({ path: [...base, 'lag_threshold'], message: r.message, hint: DURATION_HINT });
}

function parseName(text: string, path: Segment[], key: string, out: Finding[]): ParsedTableRef | undefined {
  try {
    return parseTableRef(text);
  } catch (err) {
    out.push({
      path,
      message: `invalid ${key}: ${(err as Error).message}`,
      hint: 'write schema.table; double-quote names with capitals, spaces or dots ("Sales Dept"."Order Items")',
    });
    return undefined;
  }
}

function showRef(r: ParsedTableRef): string {
  return r.kind === 'schema' ? `${displayIdent(r.schema)}.*` : displayQualified(r);
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function has(o: Obj, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}
