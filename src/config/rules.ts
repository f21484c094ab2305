/**
 * Semantic rules the schema cannot express: peer url-or-fields, TCP hosts only, references to peers, a
 * mirror onto its own database, table names (length, reserved schemas), one writer per destination table,
 * column lists, durations. Pure.
 * Works on the interpolated data even when the schema found problems, so it checks every value defensively
 * and skips what is already reported (`tainted`), so one mistake yields one problem.
 */
import { listNames, quote } from './echo.js';
import {
  displayIdent,
  displayQualified,
  identifierProblem,
  isReservedSchema,
  parseTableRef,
  tableKey,
  type ParsedTableRef,
  type QualifiedName,
} from './names.js';
import { databaseIdentity, DEFAULT_PORT, hostProblem, parsePeerUrl, type PeerFields } from './peer.js';
import { displayPath, type Segment } from './positions.js';
import type { Finding } from './problems.js';
import { didYouMean } from './suggest.js';
import { DURATION_HINT, parseDuration } from './duration.js';
import { REVERSE_SUFFIX } from './types.js';

type Obj = Record<string, unknown>;

const PEER_FIELDS = ['host', 'port', 'database', 'user', 'password', 'sslmode'];
const PEER_REQUIRED = ['host', 'database', 'user'];

type Tainted = (path: Segment[]) => boolean;

export interface RuleInput {
  data: unknown;
  /** Whether a problem is already reported at this path or under it: such a value is not trusted. */
  tainted: Tainted;
}

export function ruleFindings({ data, tainted }: RuleInput): Finding[] {
  const out: Finding[] = [];
  if (!isObj(data)) return out;
  const peers = isObj(data.peers) ? data.peers : undefined;
  const identities = peers ? peerRules(peers, out, tainted) : new Map<string, string>();
  if (isObj(data.defaults)) durationRule(data.defaults, ['defaults'], out);
  if (isObj(data.mirrors)) {
    mirrorRules(data.mirrors, peers, identities, out, tainted);
    const defaults = isObj(data.defaults) ? data.defaults : {};
    for (const [name, m] of Object.entries(data.mirrors))
      if (isObj(m)) syncOnlyRule(m, defaults, ['mirrors', name], out);
  }
  return out;
}

/** The string at `path` in `o`, unless it is not a string or something under it is already reported. */
function trustedString(o: Obj, key: string, path: Segment[], tainted: Tainted): string | undefined {
  const v = o[key];
  return typeof v === 'string' && !tainted([...path, key]) ? v : undefined;
}

/** Checks each peer's form and returns the database identity of every peer whose address is known. */
function peerRules(peers: Obj, out: Finding[], tainted: Tainted): Map<string, string> {
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
        if (!r.ok)
          out.push({
            path: [...base, 'url'],
            message: r.message,
            hint: 'postgres://user:password@host:port/database?sslmode=prefer',
          });
        else if (urlNameRule(r.fields, [...base, 'url'], out)) identities.set(name, databaseIdentity(r.fields));
      }
    } else {
      for (const k of PEER_REQUIRED) {
        if (!has(peer, k)) {
          out.push({
            path: [...base, k],
            message: `missing required key \`${k}\``,
            hint: 'or give the whole connection as `url`',
          });
        }
      }
      const host = trustedString(peer, 'host', base, tainted);
      const notTcp = host === undefined ? undefined : hostProblem(host);
      if (notTcp)
        out.push({
          path: [...base, 'host'],
          message: `host ${notTcp}`,
          hint: "give the server's host name or address, e.g. localhost",
        });
      let namesOk = true;
      for (const k of ['database', 'user']) {
        const v = trustedString(peer, k, base, tainted);
        const why = v === undefined ? undefined : identifierProblem(v);
        if (why) {
          out.push({
            path: [...base, k],
            message: why,
            hint: `use the ${k} name as the server spells it, at most 63 bytes`,
          });
          namesOk = false;
        }
      }
      const port = peer.port === undefined ? DEFAULT_PORT : peer.port;
      const database = trustedString(peer, 'database', base, tainted);
      if (
        host !== undefined &&
        !notTcp &&
        database !== undefined &&
        namesOk &&
        typeof port === 'number' &&
        !tainted([...base, 'port'])
      ) {
        identities.set(name, databaseIdentity({ host, port, database }));
      }
    }
  }
  return identities;
}

/** The database and user of a parsed url are identifiers too; the url itself is never quoted (a secret). */
function urlNameRule(f: PeerFields, path: Segment[], out: Finding[]): boolean {
  for (const [what, value] of [
    ['database', f.database],
    ['user', f.user],
  ] as const) {
    const why = identifierProblem(value, `the url's ${what} name`);
    if (why) {
      out.push({ path, message: why, hint: `use the ${what} name as the server spells it` });
      return false;
    }
  }
  return true;
}

interface Written {
  mirror: string;
  index: number;
  at: Segment[];
}

function mirrorRules(
  mirrors: Obj,
  peers: Obj | undefined,
  identities: Map<string, string>,
  out: Finding[],
  tainted: Tainted,
): void {
  const peerNames = peers ? Object.keys(peers) : [];
  // Destination database (or peer name, when its address is unknown) + table -> first writer.
  const writers = new Map<string, Written>();
  for (const [mname, mirror] of Object.entries(mirrors)) {
    if (!isObj(mirror)) continue;
    const base: Segment[] = ['mirrors', mname];
    for (const role of ['source', 'destination'] as const) {
      const ref = trustedString(mirror, role, base, tainted);
      if (peers && ref !== undefined && ref !== '' && !has(peers, ref)) {
        out.push({
          path: [...base, role],
          message: `unknown peer ${quote(ref)}`,
          hint: () => unknownPeerHint(ref, peerNames),
        });
      }
    }
    const src = trustedString(mirror, 'source', base, tainted);
    const dst = trustedString(mirror, 'destination', base, tainted);
    if (src !== undefined && src === dst && peers && has(peers, src)) {
      out.push({
        path: [...base, 'destination'],
        message: `source and destination are the same peer ${quote(src)}`,
        hint: 'a mirror copies from one database to another',
      });
    } else if (src && dst && identities.has(src) && identities.get(src) === identities.get(dst)) {
      out.push({
        path: [...base, 'destination'],
        message: `peers ${quote(src)} and ${quote(dst)} are the same database`,
        hint: 'a mirror copies from one database to another (localhost, 127.0.0.1 and ::1 are the same host)',
      });
    }
    durationRule(mirror, base, out);
    reverseRule(mname, mirror, mirrors, base, out);
    if (Array.isArray(mirror.tables)) {
      const destKey =
        dst !== undefined && peers && has(peers, dst) ? (identities.get(dst) ?? 'peer:' + dst) : undefined;
      tableRules({ mname, destPeer: dst, destKey, writers, out, tainted }, mirror.tables, [...base, 'tables']);
    }
  }
}

/**
 * `promote: {reverse: true}`: the reverse mirror (REVERSE_SUFFIX, normalize.ts) takes every table back by name,
 * every column: no `schema.*` (the tables are named at promotion) and no exclude_columns (the old source's
 * columns the new primary lacks would go stale). A mirror declared under the reverse's name is the reverse
 * mirror itself (to promote it back): its peers must be the promoted mirror's, swapped.
 */
function reverseRule(mname: string, mirror: Obj, mirrors: Obj, base: Segment[], out: Finding[]): void {
  if (!isObj(mirror.promote) || mirror.promote.reverse !== true) return;
  const at = [...base, 'promote', 'reverse'];
  if (mirror.promote.read_only_source === true)
    out.push({
      path: [...base, 'promote', 'read_only_source'],
      message:
        "read_only_source makes the old source refuse every write, but with reverse it is the reverse mirror's destination",
      hint: "remove one of them: the reverse mirror's guard already refuses application writes to the mirrored tables",
    });
  for (const t of Array.isArray(mirror.tables) ? mirror.tables : []) {
    if (!isObj(t)) continue;
    if (typeof t.source_table === 'string' && /\.\*$/.test(t.source_table.trim()))
      out.push({
        path: at,
        message: `a reverse mirror needs every table named: ${quote(t.source_table)} selects a schema`,
        hint: 'list the tables of the schema one by one, or remove `reverse: true`',
      });
    if (Array.isArray(t.exclude_columns) && t.exclude_columns.length)
      out.push({
        path: at,
        message: `a reverse mirror needs every column: ${quote(String(t.source_table))} excludes ${listNames(t.exclude_columns.map(String))}`,
        hint: 'remove exclude_columns, or remove `reverse: true`',
      });
  }
  const declared = mirrors[`${mname}${REVERSE_SUFFIX}`];
  if (isObj(declared) && declared.do_initial_snapshot === true)
    out.push({
      path: ['mirrors', `${mname}${REVERSE_SUFFIX}`, 'do_initial_snapshot'],
      message: `mirror ${mname}${REVERSE_SUFFIX} is the reverse mirror of ${mname}: the promotion creates it without a copy`,
      hint: 'remove do_initial_snapshot',
    });
  if (isObj(declared) && (declared.source !== mirror.destination || declared.destination !== mirror.source))
    out.push({
      path: ['mirrors', `${mname}${REVERSE_SUFFIX}`],
      message: `mirror ${mname}${REVERSE_SUFFIX} is the reverse mirror of ${mname}: its source must be ${quote(String(mirror.destination))} and its destination ${quote(String(mirror.source))}`,
      hint: `rename it, or swap its peers (it is declared only to change it, e.g. to promote it back)`,
    });
}

// A function, called only for the problems shown: a did-you-mean over every peer costs per problem.
function unknownPeerHint(ref: string, peerNames: string[]): string {
  const guess = didYouMean(ref, peerNames);
  if (guess) return `did you mean ${quote(guess)}?`;
  return peerNames.length ? `declared peers: ${listNames(peerNames)}` : 'declare it under `peers:`';
}

interface TableContext {
  mname: string;
  destPeer: string | undefined;
  destKey: string | undefined;
  writers: Map<string, Written>;
  out: Finding[];
  tainted: Tainted;
}

function tableRules(ctx: TableContext, tables: unknown[], base: Segment[]): void {
  const { out, tainted } = ctx;
  const sources = new Map<string, number>();
  const destinations = new Map<string, number>();
  tables.forEach((t, i) => {
    if (!isObj(t)) return;
    const at = [...base, i];
    const sourceText = trustedString(t, 'source_table', at, tainted);
    const source = sourceText ? usableName(sourceText, [...at, 'source_table'], 'source_table', out) : undefined;
    let dest: QualifiedName | undefined = source?.kind === 'table' ? source : undefined;
    let destAt: Segment[] = [...at, 'source_table'];
    if (has(t, 'destination_table')) {
      destAt = [...at, 'destination_table'];
      // Not trusted (already reported): neither the source name nor this value is known to be written.
      const destText = trustedString(t, 'destination_table', at, tainted);
      dest = undefined;
      if (destText && source?.kind === 'schema') {
        out.push({
          path: destAt,
          message: `destination_table cannot be used with the wildcard source \`${displayIdent(source.schema)}.*\``,
          hint: 'each table of the schema keeps its name; list the table on its own to rename it',
        });
      } else if (destText) {
        const parsed = usableName(destText, destAt, 'destination_table', out);
        if (parsed?.kind === 'schema') {
          out.push({
            path: destAt,
            message: 'destination_table cannot be a wildcard',
            hint: 'name one table, or leave it out to keep the source name',
          });
        }
        dest = parsed?.kind === 'table' ? parsed : undefined;
      }
    }
    if (source) {
      const key = source.kind === 'schema' ? `schema\u0000${source.schema}` : `table\u0000${tableKey(source)}`;
      const first = sources.get(key);
      if (first !== undefined) {
        out.push({
          path: [...at, 'source_table'],
          message: `\`${showRef(source)}\` is already listed at tables[${first}]`,
          hint: 'list each source table once',
        });
        // Its destination clash, if any, is the same mistake.
        dest = undefined;
      } else sources.set(key, i);
    }
    if (dest) writerRule(ctx, dest, destAt, at, i, destinations);
    columnRules(t, at, out, tainted);
  });
}

/** One writer per destination table: within the mirror (`destinations`) and across mirrors (`ctx.writers`). */
function writerRule(
  ctx: TableContext,
  dest: QualifiedName,
  destAt: Segment[],
  at: Segment[],
  i: number,
  destinations: Map<string, number>,
): void {
  const key = tableKey(dest);
  const first = destinations.get(key);
  if (first !== undefined) {
    ctx.out.push({
      path: destAt,
      message: `destination table \`${displayQualified(dest)}\` is already written by tables[${first}]`,
      hint: 'give one of them another destination_table',
    });
    return;
  }
  destinations.set(key, i);
  if (ctx.destKey === undefined) return;
  const wkey = ctx.destKey + '\u0001' + key;
  const w = ctx.writers.get(wkey);
  if (w) {
    ctx.out.push({
      path: destAt,
      message: `destination table \`${displayQualified(dest)}\` on peer ${quote(ctx.destPeer ?? '')} is already written by mirror ${quote(w.mirror)} (${displayPath(w.at)})`,
      hint: 'a destination table has exactly one writer; give one of them another destination_table',
    });
  } else ctx.writers.set(wkey, { mirror: ctx.mname, index: i, at });
}

const COLUMN_LENGTH_HINT = 'no column can have this name: write it as the catalog spells it';

function columnRules(t: Obj, at: Segment[], out: Finding[], tainted: Tainted): void {
  const partitionKey = trustedString(t, 'partition_key', at, tainted);
  const pkTooLong = partitionKey === undefined ? undefined : identifierProblem(partitionKey);
  if (pkTooLong) out.push({ path: [...at, 'partition_key'], message: pkTooLong, hint: COLUMN_LENGTH_HINT });
  if (!Array.isArray(t.exclude_columns)) return;
  const seen = new Map<string, number>();
  t.exclude_columns.forEach((col, j) => {
    const path = [...at, 'exclude_columns', j];
    if (typeof col !== 'string' || tainted(path)) return;
    const tooLong = identifierProblem(col);
    if (tooLong) {
      out.push({ path, message: tooLong, hint: COLUMN_LENGTH_HINT });
      return;
    }
    const first = seen.get(col);
    if (first !== undefined) {
      out.push({ path, message: `${quote(col)} is already listed at exclude_columns[${first}]` });
      return;
    }
    seen.set(col, j);
    if (col === partitionKey) {
      out.push({
        path,
        message: `${quote(col)} is the partition_key and cannot be excluded`,
        hint: 'remove it from exclude_columns or choose another partition_key',
      });
    }
  });
}

function durationRule(settings: Obj, base: Segment[], out: Finding[]): void {
  if (typeof settings.lag_threshold === 'string') {
    const r = parseDuration(settings.lag_threshold);
    if (!r.ok) out.push({ path: [...base, 'lag_threshold'], message: r.message, hint: DURATION_HINT });
  }
  const loss = settings.on_sync_loss;
  if (typeof loss === 'string' && loss !== 'block')
    out.push({
      path: [...base, 'on_sync_loss'],
      message: `must be block or { degrade_after: DURATION }, found ${quote(loss)}`,
      hint: 'block: commits wait for a mirror that is down; { degrade_after: 10s }: they wait at most that long',
    });
  if (isObj(loss) && typeof loss.degrade_after === 'string') {
    const r = parseDuration(loss.degrade_after);
    if (!r.ok) out.push({ path: [...base, 'on_sync_loss', 'degrade_after'], message: r.message, hint: DURATION_HINT });
  }
}

/** sync_quorum and on_sync_loss set on an async mirror would do nothing: refused (under `defaults:` they may stand). */
function syncOnlyRule(mirror: Obj, defaults: Obj, base: Segment[], out: Finding[]): void {
  const mode = mirror.mode ?? defaults.mode ?? 'async';
  if (mode !== 'async') return;
  for (const key of ['sync_quorum', 'on_sync_loss'])
    if (mirror[key] !== undefined)
      out.push({
        path: [...base, key],
        at: 'key',
        message: `${key} applies to mode: sync only, and this mirror is async`,
        hint: `remove ${key}, or set mode: sync`,
      });
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

/**
 * A table name Postgres will take as written: parsed, each part at most 63 bytes (a longer one would be
 * truncated into another name), and not in a schema Postgres reserves. Reports why not, else returns it.
 */
function usableName(text: string, path: Segment[], key: string, out: Finding[]): ParsedTableRef | undefined {
  const ref = parseName(text, path, key, out);
  if (!ref) return undefined;
  const tooLong = identifierProblem(ref.schema) ?? (ref.kind === 'table' ? identifierProblem(ref.name) : undefined);
  if (tooLong) {
    out.push({
      path,
      message: `invalid ${key}: ${tooLong}`,
      hint: 'no table can have this name: write it as the catalog spells it',
    });
    return undefined;
  }
  if (isReservedSchema(ref.schema)) {
    out.push({
      path,
      message: `invalid ${key}: schema ${quote(ref.schema)} is reserved by Postgres (pg_catalog, pg_toast, any pg_* and information_schema)`,
      hint:
        key === 'source_table'
          ? 'system catalogs cannot be mirrored: list tables of your own schemas'
          : 'write into a schema of your own (Postgres refuses to create pg_* schemas)',
    });
    return undefined;
  }
  return ref;
}

function showRef(r: ParsedTableRef): string {
  return r.kind === 'schema' ? `${displayIdent(r.schema)}.*` : displayQualified(r);
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function has(o: Obj, k: string): boolean {
  return Object.hasOwn(o, k);
}
