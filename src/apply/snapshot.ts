/**
 * The snapshot action: copies tables at a consistent point and records, per table, the LSN its copy is
 * consistent with (DESIGN.md invariant 2). The first snapshot uses the export of the mirror's own slot,
 * created earlier in the same run; tables added later or left unfinished by an interrupted apply get a
 * new export from a temporary slot, so the rest of the mirror is never copied again.
 */
import { displayQualified } from '../config/names.js';
import * as C from '../catalog/sql.js';
import type { SnapshotCreate } from '../plan/types.js';
import type { ApplyContext } from './context.js';
import { copyTables } from './copy/index.js';
import { createSlotWithSnapshot, type ExportedSnapshot } from './slot.js';
import { retryLockTimeouts } from './lock-retry.js';
import { injectKill } from '../util/inject.js';
import { inTransaction, type Queryable } from '../db/tx.js';
import type { SwapPlan, TableSpec } from '../plan/types.js';

const PROGRESS_WRITE_MS = 1000;

export async function runSnapshot(ctx: ApplyContext, a: SnapshotCreate): Promise<void> {
  const d = a.details;
  const mirror = ctx.mirrorOf(a);
  const sourcePeer = ctx.sourceOf(mirror);
  const destPeer = ctx.destinationOf(mirror);
  const dst = await ctx.db(destPeer);

  if (!d.copy) {
    // No copy: the tables start from the slot's consistent point, exported in this run or recorded with the slot.
    const lsn = ctx.exported.get(mirror)?.consistentLsn ?? (await C.consistentLsn(dst, mirror));
    if (!lsn) throw new Error(`internal: mirror ${mirror} has no consistent point to start its tables from`);
    await C.setPhase(dst, mirror, 'snapshot');
    for (const t of d.tables)
      await C.setTableState(dst, mirror, t.destination, 'ready', { snapshotLsn: lsn, rows: 0, bytes: 0 });
    return;
  }
  let snap = d.kind === 'tables' ? undefined : ctx.exported.get(mirror);
  let ownSnap: ExportedSnapshot | undefined;
  if (!snap) {
    // Before the new snapshot exists: a running worker commits no more changes to these tables (its batches
    // check their state under a share lock), so every change it did commit is older than the snapshot.
    for (const t of d.tables) await C.setTableState(dst, mirror, t.destination, 'pending', { snapshotLsn: null });
    ownSnap = await createSlotWithSnapshot(
      ctx.peer(sourcePeer),
      `mirrors_tmp_${process.pid}_${Date.now() % 1_000_000}`,
      { temporary: true },
    );
    snap = ownSnap;
  }
  try {
    // Tables added to a streaming mirror are copied while the others keep streaming.
    if (d.kind !== 'tables') await C.setPhase(dst, mirror, 'snapshot');
    const bytesTotal = d.tables.reduce((n, t) => n + Number(t.size_bytes), 0);
    const perTable = new Map<string, number>();
    let lastWrite = 0;
    // Every catalog write goes through dst, one at a time: progress writes fire from copy callbacks while
    // table-state writes are in flight, and pg must never be handed overlapping queries.
    let writing: Promise<unknown> = Promise.resolve();
    const serially = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = writing.then(fn);
      writing = run.catch(() => {});
      return run;
    };
    const mirrorBytesDone = () => [...perTable.values()].reduce((x, y) => x + y, 0);
    await C.setBootstrapProgress(dst, mirror, 0, bytesTotal);

    // resync_strategy swap: a table is copied into its shadow (created empty here) and swapped in once loaded.
    const asCopied = new Map<TableSpec, TableSpec>();
    const copied = d.tables.map((t) => {
      if (!t.swap) return t;
      const into = { ...t, destination: t.swap.shadow };
      asCopied.set(into, t);
      return into;
    });
    const planned = (t: TableSpec) => asCopied.get(t) ?? t;
    for (const t of d.tables) if (t.swap) await inTransaction(dst, () => runAll(dst, t.swap!.prepare));

    await copyTables({
      source: ctx.peer(sourcePeer),
      destination: ctx.peer(destPeer),
      snapshotName: snap.snapshotName,
      tables: copied,
      tablesInParallel: d.parallelism.tables_in_parallel,
      maxWorkers: d.parallelism.max_workers,
      rowsPerPartition: d.parallelism.rows_per_partition,
      // SIGINT: the parts in flight roll back; the tables not finished stay 'copying' and the next plan
      // copies them again, as after kill -9.
      signal: ctx.signal,
      onTableStart: async (shadowOrTable) => {
        const t = planned(shadowOrTable);
        await serially(() =>
          C.setTableState(dst, mirror, t.destination, 'copying', {
            snapshotLsn: null,
            rows: 0,
            bytes: 0,
            bytesTotal: Number(t.size_bytes),
          }),
        );
        // A first report at zero: the table's copy time and average rate count from its start.
        ctx.report({
          type: 'snapshot_progress',
          mirror,
          table: displayQualified(t.destination),
          rowsDone: 0,
          bytesDone: 0,
          bytesTotal: Number(t.size_bytes),
          tableDone: false,
          mirrorBytesDone: mirrorBytesDone(),
          mirrorBytesTotal: bytesTotal,
        });
      },
      onProgress: (p) => {
        const name = displayQualified(planned(p.table).destination);
        perTable.set(name, p.bytesDone);
        ctx.report({
          type: 'snapshot_progress',
          mirror,
          table: name,
          rowsDone: p.rowsDone,
          bytesDone: p.bytesDone,
          bytesTotal: p.bytesTotal,
          tableDone: false,
          mirrorBytesDone: mirrorBytesDone(),
          mirrorBytesTotal: bytesTotal,
        });
        const now = Date.now();
        if (now - lastWrite >= PROGRESS_WRITE_MS) {
          lastWrite = now;
          // Progress rows are best effort and must not stall the copy: one write in flight at a time.
          serially(() => C.setBootstrapProgress(dst, mirror, mirrorBytesDone(), bytesTotal)).catch(() => {});
        }
      },
      onTableDone: async (shadowOrTable, rows, bytes) => {
        const t = planned(shadowOrTable);
        const name = displayQualified(t.destination);
        perTable.set(name, bytes);
        const ready = () =>
          C.setTableState(dst, mirror, t.destination, 'ready', { snapshotLsn: snap!.consistentLsn, rows, bytes });
        if (t.swap) await serially(() => swapIn(dst, t.swap!, ready, `${a.address} ${name}`));
        else await serially(ready);
        ctx.report({
          type: 'snapshot_progress',
          mirror,
          table: name,
          rowsDone: rows,
          bytesDone: bytes,
          bytesTotal: bytes,
          tableDone: true,
          mirrorBytesDone: mirrorBytesDone(),
          mirrorBytesTotal: bytesTotal,
        });
      },
    });
    await serially(() => C.setBootstrapProgress(dst, mirror, mirrorBytesDone(), bytesTotal));
  } finally {
    if (ownSnap) await ownSnap.close();
    else if (snap) {
      await snap.close();
      ctx.exported.delete(mirror);
    }
  }
}

async function runAll(db: Queryable, statements: string[]): Promise<void> {
  for (const s of statements) await db.query(s);
}

/**
 * A loaded shadow swapped in: its indexes and constraints built, then in one transaction the old table gone and the
 * shadow in its place with what it carries, and the catalog's record of the copy (`ready`); then the foreign keys
 * re-added NOT VALID are validated. The swap waits for the table's readers at most lock_timeout, retried.
 */
async function swapIn(db: Queryable, swap: SwapPlan, ready: () => Promise<void>, address: string): Promise<void> {
  await runAll(db, swap.after_load);
  injectKill('swap_loaded');
  await retryLockTimeouts(
    () =>
      inTransaction(db, async () => {
        await runAll(db, swap.swap);
        await ready();
      }),
    address,
  );
  await runAll(db, swap.after_swap);
}
