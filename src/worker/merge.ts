/**
 * resync_strategy merge, the pure part: repairing a streaming table in place, chunk by chunk in key order, while
 * the stream keeps applying its changes (merge-driver.ts does the I/O). Like DBLog's watermarks, with one fix.
 *
 * A chunk is read on the source in one snapshot C. It is applied on the destination once the stream has passed a
 * watermark written after the read (a logical decoding message, flushed at once): every
 * transaction C sees commits before it, so by then the stream has applied all of them. What the chunk must not
 * overwrite are rows changed by transactions C does not see but the stream applied before the chunk: those rows
 * are left to the stream. DBLog tells those transactions by a low watermark written before the read; that is not
 * enough in Postgres, where a commit becomes visible after its WAL record (a synchronous standby's wait is in
 * between), so a transaction committed before the low watermark can still be unseen by C. Here it is told by its
 * xid against C itself (xmin, xmax, xip), which is exact.
 *
 * Rows changed in such a transaction by an UPDATE that left a TOAST value out are re-read in the next chunk (the
 * stream wrote only part of them). Destination rows a chunk's key range holds but the source does not, in C,
 * are deleted unless the stream touched them. Equal rows are not written.
 */
import { type KeyedTable, Params, type Sql, col, keyCols, keyEquals, keysFrom, rowBound } from '../db/keyed.js';
import { quoteQualified } from '../db/quote.js';
import type { Change } from './changes.js';
import type { TupleValue } from './decode.js';

export interface MergeTable extends KeyedTable {
  chunkRows: number;
}

/** A pg_snapshot (pg_current_snapshot()), 64-bit xids. */
export interface Snapshot {
  xmin: bigint;
  xmax: bigint;
  xip: Set<bigint>;
}

/** `xmin:xmax:xip,...` */
export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip] = text.split(':');
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    xip: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []),
  };
}

const EPOCH = 1n << 32n;
const HALF = 1n << 31n;

/**
 * Whether snapshot `s` sees the transaction with 32-bit xid `xid` (a Begin message's), which committed: its epoch
 * is the one that puts it within 2^31 of xmax (xids in use are never further apart).
 */
export function sees(s: Snapshot, xid: number): boolean {
  let full = (s.xmax & ~(EPOCH - 1n)) | BigInt(xid >>> 0);
  if (full > s.xmax + HALF) full -= EPOCH;
  else if (full < s.xmax - HALF) full += EPOCH;
  if (full >= s.xmax) return false;
  if (full < s.xmin) return true;
  return !s.xip.has(full);
}

/** A key's identity: its values' text as the source's output functions write them (the stream's and the read's). */
export const keyId = (values: TupleValue[]) => JSON.stringify(values);

export interface Touched {
  /** Keys written whole by transactions the snapshot does not see: the stream's rows win. */
  keys: Set<string>;
  /** Keys an UPDATE wrote only in part (a TOAST value left out): re-read later. */
  partial: Set<string>;
  /** A change whose key is not known (or a TRUNCATE): the chunk cannot be trusted; read it again. */
  unknown: boolean;
}

/**
 * The merged table's changes the stream applied, by transaction, for as long as a merge runs: enough to tell what a
 * chunk must leave alone. Transactions every later snapshot sees are forgotten (visibility only grows).
 */
export class MergeTracker {
  private byXid = new Map<number, Touched>();
  /** Every transaction the stream handed over since the merge began, until a chunk's snapshot sees it. */
  private decoded = new Set<number>();
  /** The last chunk's snapshot: what it sees, every later one sees. */
  private seen: Snapshot | null = null;

  constructor(private table: MergeTable) {}

  /** A transaction the stream hands over (its Begin): its changes, if any, follow through note(). */
  began(xid: number): void {
    if (!this.seen || !sees(this.seen, xid)) this.decoded.add(xid);
  }

  /**
   * Whether the stream handed over, since the merge began, each of these transactions (committed, not yet visible
   * to a chunk's snapshot): if so, what they wrote is known; if not, it may have been applied before the merge began.
   */
  handedOver(xids: bigint[]): boolean {
    return xids.every((x) => this.decoded.has(Number(x & 0xffffffffn)));
  }

  /** Whether `change` (at the stream's position, in transaction `xid`) is one to remember. */
  note(xid: number, change: Change): void {
    if (this.seen && sees(this.seen, xid)) return;
    const mine = (t: { schema: string; name: string }) =>
      t.schema === this.table.dest.schema && t.name === this.table.dest.name;
    let entry = this.byXid.get(xid);
    const get = () => {
      if (!entry) this.byXid.set(xid, (entry = { keys: new Set(), partial: new Set(), unknown: false }));
      return entry;
    };
    if (change.op === 'defer') return; // a table being copied is not being merged
    if (change.op === 'truncate' || change.op === 'truncate_partition') {
      if (change.op === 'truncate' ? change.tables.some(mine) : mine(change.table)) get().unknown = true;
      return;
    }
    if (!mine(change.table)) return;
    const t = change.table;
    const keyOf = (row: TupleValue[]) => {
      const values = this.table.key.map((k) => row[t.columns.indexOf(this.table.columns[k])]);
      return values.some((v) => v === undefined || v === null) ? null : keyId(values);
    };
    const e = get();
    const rows = change.op === 'insert' ? [change.row] : change.op === 'delete' ? [change.old] : [change.row];
    if (change.op === 'update' && change.old) rows.push(change.old);
    const partial = change.op === 'update' && change.row.some((v) => v === undefined);
    for (const row of rows) {
      const k = keyOf(row);
      if (k === null) e.unknown = true;
      else (partial ? e.partial : e.keys).add(k);
    }
  }

  /** What transactions `s` does not see wrote to the table (called when the chunk read in `s` is applied). */
  unseenBy(s: Snapshot): Touched {
    const out: Touched = { keys: new Set(), partial: new Set(), unknown: false };
    for (const [xid, e] of this.byXid) {
      if (sees(s, xid)) continue;
      for (const k of e.keys) out.keys.add(k);
      for (const k of e.partial) out.partial.add(k);
      out.unknown ||= e.unknown;
    }
    return out;
  }

  /** After a chunk read in `s`: forget what it sees. */
  forgetSeenBy(s: Snapshot): void {
    this.seen = s;
    for (const xid of this.byXid.keys()) if (sees(s, xid)) this.byXid.delete(xid);
    for (const xid of this.decoded) if (sees(s, xid)) this.decoded.delete(xid);
  }

  get size(): number {
    return this.byXid.size + this.decoded.size;
  }
}

/** A chunk as read on the source, in one snapshot. */
export interface Chunk {
  snapshot: Snapshot;
  /** Rows of the key range, in key order, values as the source's output functions write them. */
  rows: TupleValue[][];
  /** Rows re-read by key (partly written by the stream last time). */
  reread: TupleValue[][];
  /** Destination keys of the range (or re-read) the source does not hold in this snapshot. */
  absent: TupleValue[][];
  /** The last key read: where the next chunk starts. null when the range reached the end of the table. */
  last: TupleValue[] | null;
}

export interface ChunkWrite {
  upsert: TupleValue[][];
  /** Keys to delete, unless the stream wrote them (`keep`). */
  delete: TupleValue[][];
  keep: TupleValue[][];
  /** Keys to read again with the next chunk. */
  reread: TupleValue[][];
}

/** What a chunk writes, given what the stream applied meanwhile that the chunk's snapshot does not see. */
export function chunkWrite(t: MergeTable, chunk: Chunk, touched: Touched): ChunkWrite {
  const keyOf = (row: TupleValue[]) => t.key.map((k) => row[k]);
  const upsert: TupleValue[][] = [];
  for (const row of [...chunk.rows, ...chunk.reread]) {
    const id = keyId(keyOf(row));
    if (!touched.keys.has(id) && !touched.partial.has(id)) upsert.push(row);
  }
  return {
    upsert,
    delete: chunk.absent,
    keep: [...touched.keys, ...touched.partial].map((k) => JSON.parse(k) as TupleValue[]),
    reread: [...touched.partial].map((k) => JSON.parse(k) as TupleValue[]),
  };
}

// ---- SQL (db/keyed.ts).

/** The next `chunkRows` rows after `after` (null: from the start), in key order. */
export function chunkSql(t: MergeTable, after: TupleValue[] | null): Sql {
  const p = new Params();
  const where = after ? `WHERE (${keyCols(t, 's')}) > ${rowBound(t, p, after, t.sourceTypes)}` : '';
  return {
    text: `SELECT ${t.columns.map((_, i) => `s.${col(t, i)}`).join(', ')} FROM ${quoteQualified(t.source.schema, t.source.name)} AS s ${where} ORDER BY ${keyCols(t, 's')} LIMIT ${t.chunkRows}`,
    values: p.values,
  };
}

/** The source rows of these keys. */
export function rereadSql(t: MergeTable, keys: TupleValue[][]): Sql {
  const p = new Params();
  return {
    text: `SELECT ${t.columns.map((_, i) => `s.${col(t, i)}`).join(', ')} FROM ${quoteQualified(t.source.schema, t.source.name)} AS s, ${keysFrom(t, p, keys, 'u')} WHERE ${keyEquals(t, 's', 'u', t.sourceTypes)}`,
    values: p.values,
  };
}

/**
 * Destination keys in (after, upTo] (null: unbounded) that are not among `rows`' keys: the candidates for deletion.
 * The range is compared in the destination's own order, which may differ from the source's (collations): keys it
 * puts in the wrong chunk are checked against the source all the same (presentSql), so none is deleted wrongly.
 */
export function destExtraSql(
  t: MergeTable,
  after: TupleValue[] | null,
  upTo: TupleValue[] | null,
  rowKeys: TupleValue[][],
): Sql {
  const p = new Params();
  const cond: string[] = [];
  if (after) cond.push(`(${keyCols(t, 'd')}) > ${rowBound(t, p, after, t.destTypes)}`);
  if (upTo) cond.push(`(${keyCols(t, 'd')}) <= ${rowBound(t, p, upTo, t.destTypes)}`);
  cond.push(`NOT EXISTS (SELECT 1 FROM ${keysFrom(t, p, rowKeys, 'u')} WHERE ${keyEquals(t, 'd', 'u', t.destTypes)})`);
  return {
    text: `SELECT ${keyCols(t, 'd')} FROM ${quoteQualified(t.dest.schema, t.dest.name)} AS d WHERE ${cond.join(' AND ')}`,
    values: p.values,
  };
}

/** Which of these keys the source holds. */
export function presentSql(t: MergeTable, keys: TupleValue[][]): Sql {
  const p = new Params();
  return {
    text: `SELECT ${keyCols(t, 'u')} FROM ${keysFrom(t, p, keys, 'u')} WHERE EXISTS (SELECT 1 FROM ${quoteQualified(t.source.schema, t.source.name)} AS s WHERE ${keyEquals(t, 's', 'u', t.sourceTypes)})`,
    values: p.values,
  };
}

/** Inserts missing rows and updates differing ones (compared as text: json has no equality); one row per insert. */
export function upsertSql(t: MergeTable, rows: TupleValue[][]): Sql {
  const p = new Params();
  const all = t.columns.map((_, i) => i);
  const nonKey = all.filter((i) => !t.key.includes(i));
  const arrays = all.map((i) => `${p.add(rows.map((r) => r[i] ?? null))}::text[]`);
  const cols = all.map((i) => col(t, i)).join(', ');
  const differs = `(${nonKey.map((i) => `mirrors_d.${col(t, i)}::text`).join(', ')}) IS DISTINCT FROM (${nonKey.map((i) => `EXCLUDED.${col(t, i)}::text`).join(', ')})`;
  const onConflict = nonKey.length
    ? `DO UPDATE SET ${nonKey.map((i) => `${col(t, i)} = EXCLUDED.${col(t, i)}`).join(', ')} WHERE ${differs}`
    : 'DO NOTHING';
  // Equal rows are filtered out first: ON CONFLICT DO UPDATE would lock each one even when its WHERE is false.
  const same = `EXISTS (SELECT 1 FROM ${quoteQualified(t.dest.schema, t.dest.name)} AS e WHERE ${t.key.map((k) => `e.${col(t, k)} = u.${col(t, k)}::${t.destTypes[k]}`).join(' AND ')}${nonKey.length ? ` AND (${nonKey.map((i) => `e.${col(t, i)}::text`).join(', ')}) IS NOT DISTINCT FROM (${nonKey.map((i) => `u.${col(t, i)}::${t.destTypes[i]}::text`).join(', ')})` : ''})`;
  return {
    text: `INSERT INTO ${quoteQualified(t.dest.schema, t.dest.name)} AS mirrors_d (${cols}) SELECT ${all.map((i) => `u.${col(t, i)}::${t.destTypes[i]}`).join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${cols}) WHERE NOT ${same} ON CONFLICT (${t.key.map((k) => col(t, k)).join(', ')}) ${onConflict} RETURNING (xmax = 0) AS inserted`,
    values: p.values,
  };
}

/** Deletes these keys, but not those in `keep` (the stream wrote them after the chunk's snapshot). */
export function deleteSql(t: MergeTable, keys: TupleValue[][], keep: TupleValue[][]): Sql {
  const p = new Params();
  return {
    text: `DELETE FROM ${quoteQualified(t.dest.schema, t.dest.name)} AS d USING ${keysFrom(t, p, keys, 'u')} WHERE ${keyEquals(t, 'd', 'u', t.destTypes)} AND NOT EXISTS (SELECT 1 FROM ${keysFrom(t, p, keep, 'k')} WHERE ${keyEquals(t, 'd', 'k', t.destTypes)})`,
    values: p.values,
  };
}
