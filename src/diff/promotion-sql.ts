/**
 * What promotion runs on the destination so that the first application INSERT works as it did on the source.
 * While mirroring, destination tables have no defaults and identity columns are BY DEFAULT (ddl.ts
 * createTableSql): values come from the source. At promotion the destination becomes the primary, so it gets
 * back the source's column defaults, its sequences (with the source's parameters, OWNED BY the same column),
 * GENERATED ALWAYS where the source has it, and every sequence set past what the source handed out.
 * Pure string building: no I/O, no `pg`.
 *
 * Naming of destination sequences: an identity column's sequence is the one the destination created with the
 * column (found by inspection, whatever its name there). Any other sequence keeps the source sequence's name, in
 * the destination schema of the table whose column owns it: OWNED BY requires the sequence and the table in one
 * schema, and a mirror may map a source schema to another destination schema. A sequence no mirrored column
 * owns (OWNED BY NONE, or owned by a column the mirror leaves out) goes to the destination schema of the first
 * mirrored column whose default calls it (by source schema, table and column position).
 *
 * Every statement is idempotent (IF NOT EXISTS, SET ...), so running the restore twice is harmless: the
 * sequences keep their values and their parameters are set again to the source's.
 */
import { displayQualified, tableKey, type QualifiedName } from '../config/names.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../db/quote.js';
import type { LiveColumn, LiveSequence, LiveTable, PeerLive, SequenceColumn } from '../inspect/types.js';

/** One mirrored table: the source as inspected, where it lives on the destination, the columns left out. */
export interface PromotedTable {
  source: LiveTable;
  destination: QualifiedName;
  excludeColumns: string[];
}

/** What the restore reads of a peer's inspection. */
export type PromotionPeer = Pick<PeerLive, 'tables' | 'sequences' | 'otherRelations'>;

/** A source sequence and the destination sequence that continues it, with the source's parameters. */
export interface RestoredSequence
  extends Pick<LiveSequence, 'dataType' | 'start' | 'increment' | 'min' | 'max' | 'cache' | 'cycle'> {
  source: QualifiedName;
  destination: QualifiedName;
  /** The destination column's identity sequence (exists with the column), else one the restore creates. */
  identity: boolean;
  /** Destination columns whose values come from it (its owner, columns whose default calls it), with their types. */
  usedBy: { table: QualifiedName; column: string; type: string }[];
}

export type PromotionProblemCode =
  | 'destination_table_missing'
  | 'destination_column_missing'
  | 'identity_sequence_missing'
  | 'sequence_name_clash'
  | 'sequence_name_taken';

export interface PromotionProblem {
  code: PromotionProblemCode;
  message: string;
}

/**
 * `sql` is the ordered destination DDL: sequences created or given the source's parameters, column defaults,
 * OWNED BY, GENERATED ALWAYS. It is complete only when `problems` is empty: a promotion must refuse otherwise.
 */
export interface PromotionRestore {
  sequences: RestoredSequence[];
  sql: string[];
  problems: PromotionProblem[];
}

/** A mirrored column: where it is on the destination. */
interface MirroredColumn {
  table: PromotedTable;
  column: LiveColumn;
}

export function promotionRestore(
  tables: PromotedTable[],
  source: PromotionPeer,
  destination: PromotionPeer,
): PromotionRestore {
  const problems: PromotionProblem[] = [];
  const columns = mirroredColumns(tables, destination, problems);
  const dst = indexDestination(destination);
  const mirrored = (c: SequenceColumn) => columns.get(columnKey(c));

  const sequences: RestoredSequence[] = [];
  /** Source regclass text -> destination sequence, for rewriting defaults. */
  const renamed = new Map<string, QualifiedName>();
  /** Destination sequence key -> the source sequence that took it. */
  const taken = new Map<string, QualifiedName>();
  /** Source columns whose default calls a sequence that could not be placed. */
  const unrestored = new Set<string>();
  /** Non-identity destination sequence key -> the destination column that will own it. */
  const owners = new Map<string, { sequence: QualifiedName; table: QualifiedName; column: string }>();

  for (const seq of sortedSequences(source)) {
    const owner = seq.ownedBy ? mirrored(seq.ownedBy) : undefined;
    const users = seq.defaultOf.map(mirrored).filter((c): c is MirroredColumn => c !== undefined && restorable(c));
    if (!owner && users.length === 0) continue;
    const placed = placeSequence(seq, owner, users, dst, taken);
    if ('problem' in placed) {
      problems.push(placed.problem);
      // Their defaults would call whatever the source's name means on the destination: left out.
      for (const u of users) unrestored.add(sourceColumnKey(u));
      continue;
    }
    const { dest, identity } = placed;
    taken.set(tableKey(dest), seq);
    renamed.set(seq.regclass, dest);
    if (owner && !identity)
      owners.set(tableKey(dest), { sequence: dest, table: owner.table.destination, column: owner.column.name });
    sequences.push({
      source: { schema: seq.schema, name: seq.name },
      destination: dest,
      identity,
      dataType: seq.dataType,
      start: seq.start,
      increment: seq.increment,
      min: seq.min,
      max: seq.max,
      cache: seq.cache,
      cycle: seq.cycle,
      usedBy: [...(owner ? [owner] : []), ...users.filter((u) => u !== owner)].map((c) => ({
        table: c.table.destination,
        column: c.column.name,
        type: c.column.type,
      })),
    });
  }

  const sql: string[] = [];
  for (const s of sequences) {
    const name = quoteQualified(s.destination.schema, s.destination.name);
    // ALTER after CREATE IF NOT EXISTS: a sequence left by an earlier run (or the identity sequence, created by
    // the destination with default parameters) gets the source's parameters too.
    if (!s.identity) sql.push(`CREATE SEQUENCE IF NOT EXISTS ${name} ${sequenceOptions(s)}`);
    sql.push(`ALTER SEQUENCE ${name} ${sequenceOptions(s)}`);
  }
  for (const [key, { table, column }] of columns) {
    if (!restorable({ table, column }) || unrestored.has(key)) continue;
    sql.push(
      `ALTER TABLE ${quoteQualified(table.destination.schema, table.destination.name)} ALTER COLUMN ${quoteIdent(column.name)} SET DEFAULT ${renameSequences(column.default ?? '', renamed)}`,
    );
  }
  for (const o of owners.values()) {
    sql.push(
      `ALTER SEQUENCE ${quoteQualified(o.sequence.schema, o.sequence.name)} OWNED BY ${quoteQualified(o.table.schema, o.table.name)}.${quoteIdent(o.column)}`,
    );
  }
  for (const { table, column } of columns.values()) {
    if (column.identity !== 'a') continue;
    sql.push(
      `ALTER TABLE ${quoteQualified(table.destination.schema, table.destination.name)} ALTER COLUMN ${quoteIdent(column.name)} SET GENERATED ALWAYS`,
    );
  }
  return { sequences, sql, problems };
}

/**
 * Where a source sequence continues on the destination (see the naming rule at the top), or why it cannot:
 * `taken` holds the destination sequences already given to other source sequences.
 */
function placeSequence(
  seq: LiveSequence,
  owner: MirroredColumn | undefined,
  users: MirroredColumn[],
  dst: DestinationIndex,
  taken: ReadonlyMap<string, QualifiedName>,
): { dest: QualifiedName; identity: boolean } | { problem: PromotionProblem } {
  const identity = owner !== undefined && seq.ownedBy?.identity === true;
  let dest: QualifiedName;
  if (identity) {
    const found = dst.identity.get(destinationColumnKey(owner));
    if (!found) {
      return {
        problem: {
          code: 'identity_sequence_missing',
          message: `${displayQualified(owner.table.destination)}.${owner.column.name} has no identity sequence on the destination (the source's is ${displayQualified(seq)})`,
        },
      };
    }
    dest = found;
  } else {
    dest = { schema: (owner ?? users[0]).table.destination.schema, name: seq.name };
    const why = nameTaken(dst, dest, owner, users);
    if (why) return { problem: { code: 'sequence_name_taken', message: `${displayQualified(dest)} ${why}` } };
  }
  const earlier = taken.get(tableKey(dest));
  if (earlier) {
    return {
      problem: {
        code: 'sequence_name_clash',
        message: `${displayQualified(seq)} and ${displayQualified(earlier)} would both become ${displayQualified(dest)} on the destination`,
      },
    };
  }
  return { dest, identity };
}

/** Source columns that exist on the destination, keyed by columnKey of the SOURCE column, in mapping order. */
function mirroredColumns(
  tables: PromotedTable[],
  destination: PromotionPeer,
  problems: PromotionProblem[],
): Map<string, MirroredColumn> {
  const columns = new Map<string, MirroredColumn>();
  for (const table of tables) {
    const dest = destination.tables[tableKey(table.destination)];
    if (!dest) {
      problems.push({
        code: 'destination_table_missing',
        message: `${displayQualified(table.destination)} (from ${displayQualified(table.source)}) does not exist on the destination`,
      });
      continue;
    }
    const present = new Set(dest.columns.map((c) => c.name));
    for (const column of table.source.columns) {
      if (table.excludeColumns.includes(column.name)) continue;
      if (!present.has(column.name)) {
        problems.push({
          code: 'destination_column_missing',
          message: `${displayQualified(table.destination)} has no column ${column.name}`,
        });
        continue;
      }
      columns.set(sourceColumnKey({ table, column }), { table, column });
    }
  }
  return columns;
}

/** A column whose source default the destination gets: generated columns keep their expression, identity has none. */
function restorable(c: MirroredColumn): boolean {
  return c.column.default !== undefined && c.column.generated === '' && c.column.identity === '';
}

function columnKey(c: SequenceColumn): string {
  return `${c.schema}\u0000${c.table}\u0000${c.column}`;
}

function sortedSequences(peer: PromotionPeer): LiveSequence[] {
  return Object.keys(peer.sequences ?? {})
    .sort()
    .map((k) => peer.sequences![k]);
}

/** What inspection found on the destination, indexed once: identity sequences by column, relation names by key. */
interface DestinationIndex {
  peer: PromotionPeer;
  identity: Map<string, QualifiedName>;
  /** Tables, other relations and indexes (which share the sequences' namespace), with what they are. */
  relations: Map<string, string>;
}

function indexDestination(peer: PromotionPeer): DestinationIndex {
  const identity = new Map<string, QualifiedName>();
  for (const s of Object.values(peer.sequences ?? {}))
    if (s.ownedBy?.identity) identity.set(columnKey(s.ownedBy), { schema: s.schema, name: s.name });
  const relations = new Map<string, string>();
  for (const t of Object.values(peer.tables)) {
    relations.set(tableKey(t), 'is a table');
    for (const i of t.indexes)
      relations.set(tableKey({ schema: t.schema, name: i.name }), `is an index of ${displayQualified(t)}`);
  }
  for (const [key, o] of Object.entries(peer.otherRelations ?? {}))
    relations.set(key, `is a relation of kind ${o.kind}`);
  return { peer, identity, relations };
}

function sourceColumnKey(c: MirroredColumn): string {
  return columnKey({ schema: c.table.source.schema, table: c.table.source.name, column: c.column.name });
}

function destinationColumnKey(c: MirroredColumn): string {
  return columnKey({ schema: c.table.destination.schema, table: c.table.destination.name, column: c.column.name });
}

/**
 * Why the destination cannot use `dest` for this sequence, or undefined. A sequence of that name is ours to adopt
 * (an earlier run's) only when no other column owns it and only our columns' defaults call it.
 */
function nameTaken(
  destination: DestinationIndex,
  dest: QualifiedName,
  owner: MirroredColumn | undefined,
  users: MirroredColumn[],
): string | undefined {
  const key = tableKey(dest);
  const relation = destination.relations.get(key);
  if (relation) return `${relation} on the destination`;
  const existing = destination.peer.sequences?.[key];
  if (!existing) return undefined;
  const o = existing.ownedBy;
  if (o && (!owner || columnKey(o) !== destinationColumnKey(owner)))
    return `is a sequence owned by ${displayQualified({ schema: o.schema, name: o.table })}.${o.column} on the destination`;
  const ours = new Set([...(owner ? [owner] : []), ...users].map(destinationColumnKey));
  const foreign = existing.defaultOf.find((c) => !ours.has(columnKey(c)));
  if (foreign)
    return `is a sequence the default of ${displayQualified({ schema: foreign.schema, name: foreign.table })}.${foreign.column} calls on the destination`;
  return undefined;
}

function sequenceOptions(s: RestoredSequence): string {
  return `AS ${s.dataType} INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START WITH ${s.start} CACHE ${s.cache} ${s.cycle ? 'CYCLE' : 'NO CYCLE'}`;
}

/**
 * The default expression with every `'<source sequence>'::regclass` constant naming its destination sequence.
 * pg_get_expr writes a sequence as a string literal cast to regclass (quotes doubled, never an E'' literal under
 * standard_conforming_strings); the scan skips double-quoted identifiers, so a quote inside one is not mistaken
 * for a literal. Everything else (now(), constants, casts) is copied as the source has it.
 */
export function renameSequences(expression: string, renamed: ReadonlyMap<string, QualifiedName>): string {
  let out = '';
  let i = 0;
  while (i < expression.length) {
    const ch = expression[i];
    if (ch !== "'" && ch !== '"') {
      out += ch;
      i++;
      continue;
    }
    const end = closingQuote(expression, i);
    const token = expression.slice(i, end);
    i = end;
    const cast = '::regclass';
    if (ch === "'" && expression.startsWith(cast, i)) {
      const dest = renamed.get(token.slice(1, -1).replace(/''/g, "'"));
      if (dest) {
        out += quoteLiteral(quoteQualified(dest.schema, dest.name)) + cast;
        i += cast.length;
        continue;
      }
    }
    out += token;
  }
  return out;
}

/** The index just past the quoted token starting at `start` (a doubled quote stays inside). */
function closingQuote(s: string, start: number): number {
  const q = s[start];
  let i = start + 1;
  while (i < s.length) {
    if (s[i] === q) {
      if (s[i + 1] === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return s.length;
}

/** A source sequence's state (read by sequenceStateSql) and parameters, for setvalSql. */
export interface SourceSequenceState {
  lastValue: string | null;
  isCalled: boolean;
  increment: string;
  min: string;
  max: string;
}

/**
 * Sets a destination sequence past every value the source handed out, plus `margin` steps for nextval() calls
 * made after the read by sessions still connected to the source: the destination's next value is what the
 * source's would be after `margin` more calls. So v = last_value + increment × margin (increment is negative for a
 * descending sequence), with is_called as the source has it: a never-called source (is_called false) has handed
 * out nothing, and its next value is last_value itself. v is clamped to [min, max]; a clamped v counts as handed
 * out (is_called true), so an exhausted sequence fails on the destination rather than repeat a value (a CYCLE
 * sequence wraps, as it would on the source). BigInt throughout: values exceed 2^53.
 * A null last_value (pg_get_sequence_data without the privilege to read it) is unknown, not "never called": refused.
 */
export function setvalSql(seq: QualifiedName, source: SourceSequenceState, margin: number): string {
  if (!Number.isSafeInteger(margin) || margin < 0)
    throw new Error(`sequence margin must be a whole number >= 0, got ${margin}`);
  if (source.lastValue === null)
    throw new Error(
      `the source's value of the sequence for ${displayQualified(seq)} could not be read (no SELECT or USAGE privilege on it?)`,
    );
  const increment = BigInt(source.increment);
  if (increment === 0n) throw new Error(`sequence increment of ${displayQualified(seq)} is 0`);
  const min = BigInt(source.min);
  const max = BigInt(source.max);
  const wanted = BigInt(source.lastValue) + increment * BigInt(margin);
  const value = wanted > max ? max : wanted < min ? min : wanted;
  const called = value !== wanted || source.isCalled;
  return `SELECT pg_catalog.setval(${quoteLiteral(quoteQualified(seq.schema, seq.name))}::regclass, ${value}, ${called})`;
}

/** A row of sequenceStateSql: `i` is the sequence's index in the list it was given. */
export interface SequenceStateRow {
  i: number;
  last_value: string | null;
  is_called: boolean | null;
}

/**
 * One statement reading last_value and is_called of every given SOURCE sequence (run after the fence, so the
 * values are final). PostgreSQL 18 has pg_get_sequence_data(regclass) (what pg_dump uses); before it, a sequence
 * is read as the one-row relation it is, `SELECT last_value, is_called FROM seq`, combined with UNION ALL.
 */
export function sequenceStateSql(sequences: QualifiedName[], serverVersionNum: number): string {
  if (sequences.length === 0)
    return 'SELECT NULL::int AS i, NULL::text AS last_value, NULL::boolean AS is_called WHERE false';
  if (serverVersionNum >= 180000) {
    const list = sequences
      .map((s, i) => `(${i}, ${quoteLiteral(quoteQualified(s.schema, s.name))}::regclass)`)
      .join(', ');
    return `SELECT s.i, d.last_value::text AS last_value, d.is_called FROM (VALUES ${list}) AS s(i, seq), LATERAL pg_catalog.pg_get_sequence_data(s.seq) AS d ORDER BY s.i`;
  }
  return (
    sequences
      .map(
        (s, i) =>
          `SELECT ${i} AS i, last_value::text AS last_value, is_called FROM ${quoteQualified(s.schema, s.name)}`,
      )
      .join(' UNION ALL ') + ' ORDER BY i'
  );
}

/**
 * The setval of every restored sequence from the rows sequenceStateSql returned for their source sequences (in the
 * order of `sequences`). A sequence without its row is an error: it would be left where the mirror had it.
 */
export function setvalStatements(
  sequences: Pick<RestoredSequence, 'source' | 'destination' | 'increment' | 'min' | 'max'>[],
  rows: SequenceStateRow[],
  margin: number,
): string[] {
  const byIndex = new Map(rows.map((r) => [Number(r.i), r]));
  return sequences.map((s, i) => {
    const row = byIndex.get(i);
    if (!row) throw new Error(`no value was read for the source sequence ${displayQualified(s.source)}`);
    return setvalSql(
      s.destination,
      { lastValue: row.last_value, isCalled: row.is_called === true, increment: s.increment, min: s.min, max: s.max },
      margin,
    );
  });
}

/** Integer column types: their max() bounds what a sequence handed out. */
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);

/**
 * Without the source (a disaster-recovery promotion), the next value of a destination sequence is past both what
 * the worker last recorded of the source's sequence (worker/source-facts.ts, at most seconds old; null: never
 * recorded) and the highest value the destination's rows hold in the integer columns that use it (rows applied
 * after the last reading), plus `margin` steps for values handed out by transactions that were lost, which no one
 * but the dead source knows. The rows are only a floor beside the record; the fenced promotion reads the source.
 * With neither, the sequence starts where the source's started. Clamped to [min, max] (past max: exhausted).
 */
export function setvalWithoutSourceSql(
  s: Pick<RestoredSequence, 'destination' | 'increment' | 'min' | 'max' | 'start' | 'usedBy'>,
  recorded: { last_value: string | null; is_called: boolean | null } | null,
  margin: number,
): string {
  if (!Number.isSafeInteger(margin) || margin < 0)
    throw new Error(`sequence margin must be a whole number >= 0, got ${margin}`);
  const inc = BigInt(s.increment);
  if (inc === 0n) throw new Error(`sequence increment of ${displayQualified(s.destination)} is 0`);
  const up = inc > 0n;
  const next: string[] = [];
  if (recorded?.last_value != null)
    next.push(String(recorded.is_called === false ? BigInt(recorded.last_value) : BigInt(recorded.last_value) + inc));
  for (const u of s.usedBy.filter((c) => INTEGER_TYPES.has(c.type)))
    next.push(
      `(SELECT ${up ? 'max' : 'min'}(${quoteIdent(u.column)})::numeric + ${inc} FROM ${quoteQualified(u.table.schema, u.table.name)})`,
    );
  const seq = `${quoteLiteral(quoteQualified(s.destination.schema, s.destination.name))}::regclass`;
  // GREATEST and LEAST ignore NULLs (an empty table): NULL only when nothing is known.
  const v = next.length
    ? `coalesce(${up ? 'greatest' : 'least'}(${next.join(', ')}) + ${inc * BigInt(margin)}, ${s.start})`
    : s.start;
  return `SELECT CASE WHEN v > ${s.max} THEN pg_catalog.setval(${seq}, ${s.max}, true) WHEN v < ${s.min} THEN pg_catalog.setval(${seq}, ${s.min}, true) ELSE pg_catalog.setval(${seq}, v::bigint, false) END FROM (SELECT (${v})::numeric AS v) AS next`;
}

/**
 * Settings both sides read rows under when verifying, so that a row's text does not depend on a session's
 * TimeZone, DateStyle, IntervalStyle, float digits or bytea format. (money follows lc_monetary: not normalized.)
 */
export const VERIFY_SETTINGS = [
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL DateStyle = 'ISO, YMD'`,
  `SET LOCAL IntervalStyle = 'postgres'`,
  'SET LOCAL extra_float_digits = 1',
  `SET LOCAL bytea_output = 'hex'`,
];

/**
 * One side's verification of a table while both are frozen: the row count, and for checksums an order-independent
 * hash (the sum of the first 64 bits of each row's md5: no ORDER BY, so collations that sort differently on the
 * two servers do not matter) over the mirrored columns in source order.
 */
export function verifySql(kind: 'counts' | 'checksums', table: QualifiedName, columns: string[]): string {
  const from = quoteQualified(table.schema, table.name);
  if (kind === 'counts') return `SELECT count(*)::text AS n, '' AS h FROM ${from}`;
  const row = `ROW(${columns.map(quoteIdent).join(', ')})::text`;
  return `SELECT count(*)::text AS n, coalesce(sum(('x' || left(md5(${row}), 16))::bit(64)::bigint), 0)::text AS h FROM ${from}`;
}
