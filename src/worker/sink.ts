/**
 * Applies a batch of whole source transactions to the destination in ONE destination transaction,
 * together with the mirror's new position (DESIGN.md invariant 3). Set-based first; if that breaks a
 * constraint, the batch is rolled back to a savepoint and replayed in exact source order.
 */
import type pg from 'pg';
import { recordApplied, type TableCounts } from '../catalog/worker-sql.js';
import { exactStatements, setBasedStatements, type Statement } from './batch-sql.js';
import type { SourceTransaction } from './changes.js';

/** Errors after which exact order may succeed where the coalesced statements failed. */
const ORDER_SENSITIVE = new Set(['23505', '23P01', '21000', '23503', '23514', '23502']);

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
