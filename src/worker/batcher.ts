/**
 * Groups decoded changes into whole source transactions and those into batches (DESIGN.md invariant 3: a
 * batch is applied in one destination transaction). Pure: no I/O, no timers; the session decides when a
 * batch goes (full, the source went quiet, or the destination is idle).
 */
import type { Change, SourceTransaction } from './changes.js';

interface OpenTxn {
  finalLsn: bigint;
  commitTime: string;
  commitTimeMs: number;
  changes: Change[];
  /** Already applied (its commit is before the mirror's position): decoded and dropped (invariant 5). */
  skip: boolean;
}

export class Batcher {
  private open: OpenTxn | null = null;
  private txns: SourceTransaction[] = [];
  private changes = 0;

  constructor(private maxBatchSize: number) {}

  /** A Begin: the transaction is skipped when its commit is before `appliedEnd` (already applied). */
  begin(finalLsn: bigint, commitTime: string, appliedEnd: bigint): void {
    this.open = {
      finalLsn,
      commitTime,
      commitTimeMs: Date.parse(commitTime),
      changes: [],
      skip: finalLsn < appliedEnd,
    };
  }

  /** The open transaction's commit LSN when its changes are to be kept, else null. */
  get openLsn(): bigint | null {
    return this.open && !this.open.skip ? this.open.finalLsn : null;
  }

  get inTransaction(): boolean {
    return this.open !== null;
  }

  add(change: Change): void {
    if (this.open && !this.open.skip) this.open.changes.push(change);
  }

  /** A Commit: the transaction joins the batch. Returns true when the batch is full. */
  commit(endLsn: bigint): boolean {
    const t = this.open;
    this.open = null;
    if (!t || t.skip) return false;
    this.txns.push({
      finalLsn: t.finalLsn,
      endLsn,
      commitTime: t.commitTime,
      commitTimeMs: t.commitTimeMs,
      changes: t.changes,
    });
    this.changes += t.changes.length;
    return this.changes >= this.maxBatchSize;
  }

  get size(): number {
    return this.txns.length;
  }

  /** Takes the whole transactions gathered so far (the open one stays). */
  take(): SourceTransaction[] {
    const out = this.txns;
    this.txns = [];
    this.changes = 0;
    return out;
  }

  /** Commit time of the oldest transaction held here (batch first, then the open one), or null. */
  oldestCommitMs(): number | null {
    if (this.txns.length) return this.txns[0].commitTimeMs;
    return this.open && !this.open.skip ? this.open.commitTimeMs : null;
  }

  /** Drops the open transaction (a session ending mid-transaction never applies part of one). */
  discardOpen(): void {
    this.open = null;
  }
}
