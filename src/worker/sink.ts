/**
 * Applies a batch of whole source transactions to the destination in ONE destination transaction,
 * together with the mirror's new position (DESIGN.md invariant 3). Set-based first; if that breaks a
 * constraint, the batch is rolled back to a savepoint and replayed in exact source order.
 */
import type pg from 'pg';
import { recordApplied, type TableCounts } from '../catalog/worker-sql.js';
import { exactStatements, setBasedStatements, type Statement } from './batch-sql.js';
import type { SourceTransaction } from './changes.js';

/**
 * Errors after which exact order may succeed where the coalesced statements failed: constraints that order
 * matters to, and ON CONFLICT finding no usable arbiter on the destination (42P10: no unique index on the
 * replica identity columns, e.g. REPLICA IDENTITY USING INDEX mirrored without that index; 55000: the only
 * one is deferrable). Exact order never uses ON CONFLICT.
 */
const ORDER_SENSITIVE = new Set(['23505', '23P01', '21000', '23503', '23514', '23502', '42P10', '55000']);

/** The catalog moved under the worker (a resync or slot replacement started): restart the session. */
export class CatalogChanged extends Error {}

export interface BatchResult {
  changes: number;
  transactions: number;
  counts: TableCounts;
  exactOrder: boolean;
}

export class Sink {
  private prepared = new Map<string, string>();

  constructor(
    private db: pg.Client,
    private mirror: string,
  ) {}

  async applyBatch(txns: SourceTransaction[], lagMs: number): Promise<BatchResult> {
    const changes = txns.flatMap((t) => t.changes);
    const last = txns[txns.length - 1];
    const counts = countChanges(txns);
    await this.db.query('BEGIN');
    try {
      await this.checkCatalog(txns);
      let exactOrder = false;
      const setBased = setBasedStatements(changes);
      if (setBased) {
        await this.db.query('SAVEPOINT mirrors_batch');
        try {
          await this.run(setBased, false);
          await this.db.query('RELEASE SAVEPOINT mirrors_batch');
        } catch (err) {
          if (!ORDER_SENSITIVE.has((err as { code?: string }).code ?? '')) throw err;
          await this.db.query('ROLLBACK TO SAVEPOINT mirrors_batch');
          exactOrder = true;
        }
      } else exactOrder = true;
      if (exactOrder) await this.run(exactStatements(changes), true);
      await recordApplied(this.db, this.mirror, { endLsn: last.endLsn, commitTime: last.commitTime, lagMs, rows: changes.length, counts });
      await this.db.query('COMMIT');
      return { changes: changes.length, transactions: txns.length, counts, exactOrder };
    } catch (err) {
      await this.db.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /**
   * Locks (FOR SHARE) and checks what the batch was decoded against: the mirror still streaming, every
   * touched table still ready with the same snapshot LSN. `mirrors apply` changes these before it resyncs a
   * table or replaces the slot, and waits for this lock: a batch either commits before that change, or sees
   * it and is abandoned unacknowledged, so the session restarts from the catalog.
   */
  private async checkCatalog(txns: SourceTransaction[]) {
    const phase = (await this.db.query(`SELECT phase FROM mirrors.mirrors WHERE name = $1::text FOR SHARE`, [this.mirror])).rows[0]?.phase;
    if (phase !== 'ready') throw new CatalogChanged(`mirror ${this.mirror} is no longer streaming (phase ${phase ?? 'gone'})`);
    const touched = new Map<string, { schema: string; name: string; snapshotLsn: string | null }>();
    for (const t of txns) {
      for (const c of t.changes) {
        for (const x of c.op === 'truncate' ? c.tables : [c.table]) touched.set(`${x.schema}\u0000${x.name}`, x);
      }
    }
    if (!touched.size) return;
    const list = [...touched.values()];
    const rows = (
      await this.db.query(
        `SELECT t.dest_schema, t.dest_table, t.state, t.snapshot_lsn::text AS snapshot_lsn FROM mirrors.tables t
          WHERE t.mirror = $1::text AND (t.dest_schema, t.dest_table) IN (SELECT s, n FROM unnest($2::text[], $3::text[]) AS u(s, n))
          FOR SHARE OF t`,
        [this.mirror, list.map((x) => x.schema), list.map((x) => x.name)],
      )
    ).rows;
    const now = new Map(rows.map((r: any) => [`${r.dest_schema}\u0000${r.dest_table}`, r]));
    for (const [k, x] of touched) {
      const r = now.get(k);
      if (!r || r.state !== 'ready' || r.snapshot_lsn !== x.snapshotLsn) {
        throw new CatalogChanged(`${x.schema}.${x.name} changed in the catalog (${r ? `state ${r.state}` : 'no longer mirrored'})`);
      }
    }
  }

  private async run(statements: Statement[], prepare: boolean) {
    for (const s of statements) {
      if (prepare) {
        // Exact order repeats few statement shapes many times: prepare each shape once per connection.
        let name = this.prepared.get(s.text);
        if (!name) {
          name = `mirrors_${this.prepared.size}`;
          this.prepared.set(s.text, name);
        }
        await this.db.query({ name, text: s.text, values: s.values });
      } else {
        await this.db.query(s.text, s.values);
      }
    }
  }
}

function countChanges(txns: SourceTransaction[]): TableCounts {
  const counts: TableCounts = new Map();
  const bump = (schema: string, name: string, op: 'inserted' | 'updated' | 'deleted' | 'truncated') => {
    const k = `${schema}\u0000${name}`;
    const c = counts.get(k) ?? { schema, name, inserted: 0, updated: 0, deleted: 0, truncated: 0 };
    c[op]++;
    counts.set(k, c);
  };
  for (const t of txns) {
    for (const c of t.changes) {
      if (c.op === 'truncate') c.tables.forEach((x) => bump(x.schema, x.name, 'truncated'));
      else bump(c.table.schema, c.table.name, c.op === 'insert' ? 'inserted' : c.op === 'update' ? 'updated' : 'deleted');
    }
  }
  return counts;
}
