/**
 * The scheduler of a copy: which table and which part runs when, on which worker, and what the first
 * failure stops. Tables take turns at the workers; a table runs at most its share of them at once.
 *
 * Owns: the run's abort controller (the first failure, or the caller's signal, closes every connection),
 * the table and part queues, progress reports and the order of the caller's hooks.
 * Must not: frame or look into COPY data (forward.ts and framer.ts do), or build SQL but TRUNCATE.
 */
import type pg from 'pg';
import { quoteQualified } from '../../db/quote.js';
import type { TableSpec } from '../../plan/types.js';
import { openDestination, openSource } from './connections.js';
import { binaryFormat, columnTypes } from './format.js';
import { CopyIn, CopyOut } from './forward.js';
import type { CopyOptions } from './index.js';
import { destinationSql, planTable, sourceSql, type Part } from './parts.js';
import { WorkerPool, type Worker } from './pool.js';

const PROGRESS_EVERY_MS = 250;
/**
 * Bytes queued on the destination socket before the source socket is paused (until they are all sent).
 * Larger than Node's 16 KiB default: fewer pause/resume cycles.
 */
const STREAM_HIGH_WATER_MARK = 1024 * 1024;

interface TableState {
  spec: TableSpec;
  /** COPY's binary format rather than text (see binaryFormat). */
  binary: boolean;
  partsTotal: number;
  partsDone: number;
  rows: number;
  bytes: number;
  bytesTotal: number;
  lastReport: number;
}

export class CopyRun {
  private readonly abort = new AbortController();
  private readonly pool: WorkerPool;
  private failure: { error: unknown } | undefined;
  /** Tables between their planning and their onTableDone. */
  private tablesInFlight = 0;
  /** Lanes waiting for their table's share to grow (see share()). */
  private shareWaiters: (() => void)[] = [];
  /** The tail of the hook chain (see hook()). */
  private hooks: Promise<void> = Promise.resolve();

  constructor(private readonly opts: CopyOptions) {
    this.pool = new WorkerPool(opts.maxWorkers, this.abort.signal);
    // Closing every connection is what stops streams stuck on backpressure or on a slow server.
    this.abort.signal.addEventListener('abort', () => {
      void this.pool.closeAll();
      this.shareChanged();
    });
  }

  /**
   * How many parts of one table may be copied at once: the workers shared out between the tables in flight.
   * Parts of one table copied side by side contend for its heap's extension lock and split its indexes'
   * pages mid-range; parts of different tables do not. A table's share grows as the others finish.
   */
  private share(): number {
    return Math.max(1, Math.ceil(this.opts.maxWorkers / Math.max(1, this.tablesInFlight)));
  }

  private shareChanged(): void {
    for (const wake of this.shareWaiters.splice(0)) wake();
  }

  async run(): Promise<void> {
    const onAbort = () => this.fail(this.opts.signal!.reason);
    this.opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const queue = [...this.opts.tables];
      const lanes = Math.min(this.opts.tablesInParallel, queue.length);
      await settleAll(
        Array.from({ length: lanes }, async () => {
          for (let spec = queue.shift(); spec && !this.abort.signal.aborted; spec = queue.shift()) {
            this.tablesInFlight++;
            try {
              await this.guard(() => this.copyTable(spec!));
            } finally {
              this.tablesInFlight--;
              this.shareChanged();
            }
          }
        }),
      ).catch((err) => this.fail(err));
    } finally {
      this.opts.signal?.removeEventListener('abort', onAbort);
      await this.pool.closeAll();
    }
    if (this.failure) throw this.failure.error;
  }

  /**
   * onTableStart and onTableDone run one at a time, whichever lanes call them: the caller's hooks may write
   * through one connection (pg would queue overlapping queries, with a deprecation warning on stderr).
   */
  private hook(fn: () => Promise<void> | void): Promise<void> {
    const run = this.hooks.then(fn);
    this.hooks = run.catch(() => undefined);
    return run;
  }

  /** The first failure wins and stops everything; later ones are its consequences. */
  private fail(error: unknown): void {
    if (this.failure) return;
    this.failure = { error };
    this.abort.abort(error);
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  private async withWorker<T>(fn: (w: Worker) => Promise<T>): Promise<T> {
    const w = await this.guard(() => this.pool.acquire());
    try {
      return await fn(w);
    } catch (err) {
      // Before the worker goes back to the pool: nobody may start on connections that are about to close.
      this.fail(err);
      throw err;
    } finally {
      this.pool.release(w);
    }
  }

  private source(w: Worker): Promise<pg.Client> {
    this.abort.signal.throwIfAborted();
    w.src ??= openSource(this.opts.source, this.opts.snapshotName);
    return w.src;
  }

  private destination(w: Worker): Promise<pg.Client> {
    this.abort.signal.throwIfAborted();
    w.dst ??= openDestination(this.opts.destination);
    return w.dst;
  }

  private async copyTable(spec: TableSpec): Promise<void> {
    const plan = await this.withWorker(async (w) => planTable(await this.source(w), spec, this.opts.rowsPerPartition));
    await this.hook(() => this.opts.onTableStart?.(spec, plan.parts.length));
    this.abort.signal.throwIfAborted();
    // A previous, interrupted attempt may have left rows.
    const binary = await this.withWorker(async (w) => {
      const dst = await this.destination(w);
      await dst.query(`TRUNCATE ${quoteQualified(spec.destination.schema, spec.destination.name)}`);
      return binaryFormat(spec, plan.types, await columnTypes(dst, spec.destination.schema, spec.destination.name));
    });
    const t: TableState = {
      spec,
      binary,
      partsTotal: plan.parts.length,
      partsDone: 0,
      rows: 0,
      bytes: 0,
      bytesTotal: plan.bytesTotal,
      lastReport: 0,
    };
    const parts = [...plan.parts];
    const lanes = Math.min(parts.length, this.opts.maxWorkers);
    let active = 0;
    await settleAll(
      Array.from({ length: lanes }, async () => {
        while (parts.length > 0 && !this.abort.signal.aborted) {
          if (active >= this.share()) {
            await new Promise<void>((wake) => this.shareWaiters.push(wake));
            continue;
          }
          active++;
          try {
            await this.withWorker(async (w) => {
              const part = parts.shift();
              if (part) await this.copyPart(w, t, part);
            });
          } finally {
            active--;
            this.shareChanged();
          }
        }
      }),
    );
    this.abort.signal.throwIfAborted();
    t.bytesTotal = t.bytes;
    this.report(t, true);
    await this.hook(() => this.opts.onTableDone?.(spec, t.rows, t.bytes));
  }

  private async copyPart(w: Worker, t: TableState, part: Part): Promise<void> {
    const [src, dst] = await Promise.all([this.source(w), this.destination(w)]);
    this.abort.signal.throwIfAborted();
    const writer = dst.query(new CopyIn(destinationSql(t.spec, t.binary)));
    const reader = src.query(
      new CopyOut(sourceSql(t.spec, part, t.binary), t.binary, STREAM_HIGH_WATER_MARK, (bytes, rows) => {
        t.bytes += bytes;
        t.rows += rows;
        this.report(t, false);
      }),
    );
    // The first failure on either side rejects at once; the other side is then stopped by closing its connection.
    const [, rowCount] = await Promise.all([
      (async () => {
        reader.forwardTo(await writer.ready);
        await reader.done;
        writer.end();
      })(),
      writer.done,
      reader.done,
    ]);
    // The command tag is authoritative; the message count is for progress while streaming.
    t.rows += rowCount - reader.rows;
    t.partsDone++;
    this.report(t, true);
  }

  private report(t: TableState, force: boolean): void {
    if (!this.opts.onProgress) return;
    const now = performance.now();
    if (!force && now - t.lastReport < PROGRESS_EVERY_MS) return;
    t.lastReport = now;
    this.opts.onProgress({
      table: t.spec,
      rowsDone: t.rows,
      bytesDone: t.bytes,
      bytesTotal: Math.max(t.bytesTotal, t.bytes),
      partsDone: t.partsDone,
      partsTotal: t.partsTotal,
    });
  }
}

/** Waits for every promise (nothing keeps running in the background), then rethrows the first rejection. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
