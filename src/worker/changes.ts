/**
 * Decoded changes grouped as whole source transactions, mapped to destination tables. Pure data.
 */
import type { TupleValue } from './decode.js';
import type { StoredChange } from './deferred.js';

export interface TargetTable {
  /** Destination schema and name. */
  schema: string;
  name: string;
  /** Display name for logs and metrics. */
  label: string;
  /** Published column names, in the order pgoutput sends them (the Relation message). */
  columns: string[];
  /** Destination type of each column (format_type), used to cast text values. */
  types: string[];
  /** Indexes into `columns` of the replica identity key; empty for REPLICA IDENTITY FULL without key. */
  key: number[];
  /** The table's snapshot LSN as the worker knows it; each batch checks the catalog still says so. */
  snapshotLsn: string | null;
}

export type Change =
  | { op: 'insert'; table: TargetTable; row: TupleValue[] }
  | {
      op: 'update';
      table: TargetTable;
      row: TupleValue[] /** Old key or old full row when the key changed / identity FULL. */;
      old?: TupleValue[];
      oldIsFull: boolean;
    }
  | { op: 'delete'; table: TargetTable; old: TupleValue[]; oldIsFull: boolean }
  | { op: 'truncate'; tables: TargetTable[] }
  /**
   * A TRUNCATE of one source partition, from the truncate relay (diff/truncate-relay.ts): deletes the rows of the
   * destination table that fall in the partition's bound (`bound`: its constraint, SQL deparsed on the source).
   */
  | { op: 'truncate_partition'; table: TargetTable; partition: string; bound: string }
  /** A change of a table whose copy is running: stored for replay after it (worker/deferred.ts), not applied. */
  | { op: 'defer'; table: TargetTable; change: StoredChange };

export interface SourceTransaction {
  /** LSN of the commit record (Begin.final_lsn): decides what to skip. */
  finalLsn: bigint;
  /** End of the commit record: what is acknowledged once applied. */
  endLsn: bigint;
  commitTime: string;
  commitTimeMs: number;
  changes: Change[];
}
