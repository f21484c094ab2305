/**
 * Applies a batch of whole source transactions to the destination in ONE destination transaction,
 * together with the mirror's new position (DESIGN.md invariant 3). Set-based first, sent as one
 * multi-statement query (one round trip per batch: the worker decodes the next batch meanwhile, and every
 * round trip waits for a gap in that work); if that breaks a constraint, the batch is rolled back and
 * applied again in exact source order, one prepared statement per change.
 */
import type pg from 'pg';
import type { TableCounts } from '../catalog/worker-sql.js';
import { bigIntToLsn, lsnToBigInt } from '../db/lsn.js';
import { quoteText } from '../db/quote.js';
import { exactStatements, setBasedStatements, textArrayLiteral, type Statement } from './batch-sql.js';
import type { SourceTransaction, TargetTable } from './changes.js';
import {
  decodeChange,
  type DeferredRow,
  DROP_DEFERRED_SQL,
  deferSql,
  NEXT_DEFERRED_SQL,
  type StoredChange,
} from './deferred.js';

type TableCount = TableCounts extends Map<string, infer V> ? V : never;

/**
 * Errors after which exact order may succeed where the coalesced statements failed: constraints that order
 * matters to, and ON CONFLICT finding no usable arbiter on the destination (42P10: no unique index on the
 * replica identity columns, e.g. REPLICA IDENTITY USING INDEX mirrored without that index; 55000: the only
 * one is deferrable). Exact order never uses ON CONFLICT.
 */
const ORDER_SENSITIVE = new Set(['23505', '23P01', '21000', '23503', '23514', '23502', '42P10', '55000']);
/** Raised by mirrors.begin_batch (catalog migration 3). */
const CATALOG_CHANGED = 'MRCAT';

/** The catalog moved under the worker (a resync or slot replacement started): restart the session. */
export class CatalogChanged extends Error {}

export interface BatchResult {
  changes: number;
  transactions: number;
  counts: TableCounts;
  exactOrder: boolean;
  /**
   * Exact order only: UPDATEs and DELETEs that found no row on the destination (it differs from the source,
   * e.g. someone wrote to it before the guard). Set-based upserts write such rows back; deletes of them are
   * no-ops either way.
   */
  missingRows: number;
}

export class Sink {
  private prepared = new Map<string, string>();

  constructor(
    private db: pg.Client,
    private mirror: string,
  ) {}

  async applyBatch(txns: SourceTransaction[], lagMs: number): Promise<BatchResult> {
    const all = txns.flatMap((t) => t.changes);
    const changes = all.filter((c) => c.op !== 'defer');
    const deferred: DeferredRow[] = txns.flatMap((t) =>
      t.changes.flatMap((c) => (c.op === 'defer' ? [{ table: c.table, lsn: t.finalLsn, change: c.change }] : [])),
    );
    const stored = deferred.length ? [deferSql(this.mirror, deferred)] : [];
    const last = txns[txns.length - 1];
    const { counts, touched } = countChanges(txns);
    const result = (exactOrder: boolean, missingRows = 0): BatchResult => ({
      changes: all.length,
      transactions: txns.length,
      counts,
      exactOrder,
      missingRows,
    });
    // Values are inlined as literals (a multi-statement query takes no parameters), each through quoteText.
    const begin = `BEGIN;\n${this.beginBatch(touched)}`;
    const record = `${this.recordBatch(last, lagMs, all.length, counts)};\nCOMMIT`;
    const setBased = setBasedStatements(changes);
    if (setBased) {
      try {
        await this.db.query([begin, ...setBased.map((s) => s.text), ...stored, record].join(';\n'));
        return result(false);
      } catch (err) {
        await this.rollback(err);
        if (!ORDER_SENSITIVE.has((err as { code?: string }).code ?? '')) throw err;
      }
    }
    try {
      await this.db.query(begin);
      const missing = await this.run(exactStatements(changes));
      for (const s of stored) await this.db.query(s);
      await this.db.query(record);
      return result(true, missing);
    } catch (err) {
      await this.rollback(err);
      throw err;
    }
  }

  /**
   * Replays a table's deferred changes (worker/deferred.ts) that come after its snapshot LSN, in source order, and
   * deletes them, in one transaction that finds the table still as the worker knows it (copied, this snapshot
   * LSN). The mirror's position does not move: they were passed when they were stored. Returns how many it read.
   */
  async replayDeferred(dest: { schema: string; name: string; snapshotLsn: string; types: Record<string, string> }) {
    await this.db.query('BEGIN');
    try {
      await this.db.query(`SELECT mirrors.begin_batch($1, '{}', '{}', '{}')`, [this.mirror]);
      const ready = await this.db.query(
        `SELECT 1 FROM mirrors.tables
          WHERE mirror = $1 AND dest_schema = $2 AND dest_table = $3 AND state = 'ready' AND snapshot_lsn = $4::pg_lsn
            FOR SHARE`,
        [this.mirror, dest.schema, dest.name, dest.snapshotLsn],
      );
      if (ready.rowCount !== 1)
        throw new CatalogChanged(
          `${dest.schema}.${dest.name} changed in the catalog while its deferred changes replayed`,
        );
      const rows = (await this.db.query(NEXT_DEFERRED_SQL, [this.mirror, dest.schema, dest.name])).rows;
      const snapshot = lsnToBigInt(dest.snapshotLsn);
      const changes = rows
        // As the stream does (session.ts): a transaction that committed before the snapshot LSN is in the copy.
        .filter((r: { lsn: string }) => lsnToBigInt(r.lsn) >= snapshot)
        .map((r: { change: StoredChange }) => decodeChange(r.change, dest, dest.types));
      // Set-based where it can (one round trip), exact order where it must, as a batch is applied.
      const setBased = setBasedStatements(changes);
      let applied = false;
      if (setBased?.length) {
        await this.db.query('SAVEPOINT mirrors_replay');
        try {
          await this.db.query(setBased.map((x) => x.text).join(';\n'));
          applied = true;
        } catch (err) {
          if (!ORDER_SENSITIVE.has((err as { code?: string }).code ?? '')) throw err;
          await this.db.query('ROLLBACK TO SAVEPOINT mirrors_replay');
        }
      }
      if (!applied) for (const x of exactStatements(changes)) await this.db.query({ text: x.text, values: x.values });
      if (rows.length) {
        const last = rows[rows.length - 1];
        await this.db.query(DROP_DEFERRED_SQL, [this.mirror, dest.schema, dest.name, last.lsn, last.ord]);
      }
      await this.db.query('COMMIT');
      return rows.length;
    } catch (err) {
      await this.rollback(err);
      throw err;
    }
  }

  /** Ends whatever transaction a failed query left (a warning, not an error, when none is open). */
  private async rollback(err: unknown) {
    await this.db.query('ROLLBACK').catch(() => {});
    if ((err as { code?: string }).code === CATALOG_CHANGED) throw new CatalogChanged((err as Error).message);
  }

  /**
   * mirrors.begin_batch: locks and checks the catalog rows of the mirror and of every table the batch
   * touches, with the snapshot LSN each change was decoded against.
   */
  private beginBatch(touched: TargetTable[]): string {
    const lsns = touched.map((x) => x.snapshotLsn);
    return `SELECT mirrors.begin_batch(${quoteText(this.mirror)}, ${textArrayLiteral(touched.map((x) => x.schema))}, ${textArrayLiteral(touched.map((x) => x.name))}, ${textArrayLiteral(lsns)})`;
  }

  /** mirrors.record_batch: the new position, lag and per-table counts, in the batch's transaction. */
  private recordBatch(last: SourceTransaction, lagMs: number, rows: number, counts: TableCounts): string {
    const c = [...counts.values()];
    const ints = (f: (x: TableCount) => number) => `'{${c.map(f).join(',')}}'::bigint[]`;
    return (
      `SELECT mirrors.record_batch(${quoteText(this.mirror)}, '${bigIntToLsn(last.endLsn)}'::pg_lsn, ${quoteText(last.commitTime)}::timestamptz, ` +
      `${rows}, ${Math.max(0, Math.round(lagMs))}, ${textArrayLiteral(c.map((x) => x.schema))}, ${textArrayLiteral(c.map((x) => x.name))}, ` +
      `${ints((x) => x.inserted)}, ${ints((x) => x.updated)}, ${ints((x) => x.deleted)})`
    );
  }

  /**
   * Exact order repeats few statement shapes many times: each shape is prepared once per connection.
   * Returns how many UPDATEs and DELETEs matched no row.
   */
  private async run(statements: Statement[]): Promise<number> {
    let missing = 0;
    for (const s of statements) {
      let name = this.prepared.get(s.text);
      if (!name) {
        name = `mirrors_${this.prepared.size}`;
        this.prepared.set(s.text, name);
      }
      const r = await this.db.query({ name, text: s.text, values: s.values });
      if (r.rowCount === 0 && (r.command === 'UPDATE' || r.command === 'DELETE')) missing++;
    }
    return missing;
  }
}

/** Rows per destination table and operation, and the table objects the batch's changes were decoded against. */
function countChanges(txns: SourceTransaction[]): { counts: TableCounts; touched: TargetTable[] } {
  // Per table object first (one map lookup per change, no string keys), then by name for the catalog.
  const perTable = new Map<TargetTable, TableCount>();
  const bump = (t: TargetTable, op: 'inserted' | 'updated' | 'deleted' | 'truncated') => {
    let c = perTable.get(t);
    if (!c)
      perTable.set(t, (c = { schema: t.schema, name: t.name, inserted: 0, updated: 0, deleted: 0, truncated: 0 }));
    c[op]++;
  };
  for (const t of txns) {
    for (const c of t.changes) {
      if (c.op === 'truncate') for (const x of c.tables) bump(x, 'truncated');
      else if (c.op === 'truncate_partition') bump(c.table, 'truncated');
      else if (c.op === 'defer')
        continue; // not applied: stored for its table's replay
      else bump(c.table, c.op === 'insert' ? 'inserted' : c.op === 'update' ? 'updated' : 'deleted');
    }
  }
  // A table's Relation message may come again mid-batch (a new TargetTable for the same destination).
  const counts: TableCounts = new Map();
  for (const c of perTable.values()) {
    const k = `${c.schema}\u0000${c.name}`;
    const prev = counts.get(k);
    if (!prev) counts.set(k, c);
    else for (const op of ['inserted', 'updated', 'deleted', 'truncated'] as const) prev[op] += c[op];
  }
  return { counts, touched: [...perTable.keys()] };
}
