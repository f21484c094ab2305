/**
 * The snapshot copier (DESIGN.md "The data path" 1 and 2): copies tables from the source, as of one exported
 * snapshot, into the destination. Each table is split into parts (partition-key ranges, ctid block ranges,
 * leaf partitions); each part is a source `COPY ... TO STDOUT` piped into a destination `COPY ... FROM STDIN`,
 * streamed with backpressure, never held whole in memory: the source's CopyData messages are forwarded
 * unopened (see forward.ts), in COPY's binary format when both sides have the same built-in types.
 *
 * Tables in flight share the workers out: a table runs at most ceil(maxWorkers / tables in flight) parts
 * at once, and its share grows as the other tables finish.
 *
 * Owns: its connections — at most `maxWorkers` per peer, opened lazily by the worker that first needs one,
 * reused by that worker's later parts, and all closed before copyTables settles (on success, failure or abort).
 * Must not: write the mirrors catalog (the caller does, through the hooks), print, or put user data into SQL
 * text (bounds are numbers we computed or literals Postgres quoted itself).
 *
 * A source worker connection runs one REPEATABLE READ transaction on the exported snapshot for its whole
 * life: every part it copies and every planning query sees the same snapshot, and a part costs no extra
 * round trips. A destination COPY runs in autocommit, so each part is its own transaction.
 *
 * This module is the entry point: the options, and their checks before anything connects. The rest:
 * run.ts (the scheduler), pool.ts and connections.ts (workers and their sessions), parts.ts and format.ts
 * (what each part reads, in which format), forward.ts and framer.ts (streaming one part).
 */
import type { Peer } from '../../config/types.js';
import { MirrorsError } from '../../errors.js';
import type { TableSpec } from '../../plan/types.js';
import { CopyRun } from './run.js';

export { SNAPSHOT_APPLICATION_NAME } from './connections.js';

export interface CopyProgress {
  table: TableSpec;
  rowsDone: number;
  /** Bytes of COPY data (text or binary format) streamed so far. */
  bytesDone: number;
  /**
   * Estimate: the source's table size (heap + TOAST) at planning time, never below bytesDone. The last
   * report of a table (after its last part) has bytesTotal = bytesDone.
   */
  bytesTotal: number;
  partsDone: number;
  partsTotal: number;
}

export interface CopyOptions {
  source: Peer;
  destination: Peer;
  /** exported snapshot name from CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export'); every source read uses it */
  snapshotName: string;
  tables: TableSpec[];
  /** snapshot_num_tables_in_parallel */
  tablesInParallel: number;
  /** snapshot_max_parallel_workers: total concurrent COPY streams across all tables */
  maxWorkers: number;
  /** snapshot_num_rows_per_partition */
  rowsPerPartition: number;
  /** Awaited before the destination table is truncated and copied; partsTotal is the planned number of parts. */
  onTableStart?(t: TableSpec, partsTotal: number): Promise<void> | void;
  /** At most ~4 times a second per table, plus at the end of each part. */
  onProgress?(p: CopyProgress): void;
  /**
   * Awaited before the table counts as done. rows: from the COPY command tags; bytes: COPY data streamed.
   * onTableStart and onTableDone calls never overlap, whatever tablesInParallel.
   */
  onTableDone?(t: TableSpec, rows: number, bytes: number): Promise<void>;
  signal?: AbortSignal;
}

const SNAPSHOT_NAME = /^[0-9A-F]+-[0-9A-F]+-[0-9]+$/i;

export async function copyTables(opts: CopyOptions): Promise<void> {
  checkOptions(opts);
  opts.signal?.throwIfAborted();
  const run = new CopyRun(opts);
  await run.run();
}

function checkOptions(opts: CopyOptions): void {
  if (!SNAPSHOT_NAME.test(opts.snapshotName)) {
    throw new MirrorsError('INTERNAL', `not an exported snapshot name: ${JSON.stringify(opts.snapshotName)}`);
  }
  for (const k of ['tablesInParallel', 'maxWorkers', 'rowsPerPartition'] as const) {
    if (!Number.isInteger(opts[k]) || opts[k] < 1)
      throw new MirrorsError('INTERNAL', `copyTables: ${k} must be a positive integer, got ${opts[k]}`);
  }
}
