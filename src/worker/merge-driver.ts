/**
 * resync_strategy merge, the I/O (merge.ts says why it is correct): while the session streams, takes the tables
 * the catalog asks to merge one at a time, reads each chunk on its own source connection, writes a watermark,
 * and has the session apply the chunk through its pipeline once the stream passed the watermark, between the
 * transactions around it. Each chunk commits with the merge's progress in one destination transaction: killed
 * anywhere, the worker reads the chunk again from the last one committed.
 */
import os from 'node:os';
import type pg from 'pg';
import * as catalog from '../catalog/sql.js';
import * as W from '../catalog/worker-sql.js';
import type { Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { lsnToBigInt } from '../db/lsn.js';
import { type Sql, keyedColumns } from '../db/keyed.js';
import { SQLSTATE } from '../db/sqlstate.js';
import { inTransaction } from '../db/tx.js';
import { tableAddress } from '../plan/address.js';
import { injectKill } from '../util/inject.js';
import type { Change } from './changes.js';
import type { TupleValue } from './decode.js';
import { Fault } from './faults.js';
import {
  type Chunk,
  type MergeTable,
  MergeTracker,
  type Touched,
  chunkSql,
  chunkWrite,
  deleteSql,
  destExtraSql,
  parseSnapshot,
  presentSql,
  rereadSql,
  upsertSql,
} from './merge.js';
import { TEXT_IO_OPTIONS } from './stream.js';

/** Prefix of the watermark messages (PostgreSQL 14+ sends them to the worker; on 13 the stream's position tells). */
export const MERGE_MESSAGE_PREFIX = 'mirrors.merge';
const POLL_MS = 1_000;
/** A chunk whose snapshot misses a transaction that committed but is not visible yet is read again this soon. */
const RETRY_MS = 50;

/** Every value as the text the server sent: the same text the stream carries (both use TEXT_IO_OPTIONS). */
const RAW_TEXT = { getTypeParser: () => (v: string) => v };

export interface MergeHooks {
  mirror: string;
  source: Peer;
  /** Runs `fn` on the destination connection between batches (the session's pipeline). */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  dst: pg.Client;
  /** Hands everything gathered so far to the pipeline (the session's flush). */
  flush(): void;
  /** Whether the stream is inside a transaction (a chunk goes only between transactions). */
  inTransaction(): boolean;
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void;
  sleep(ms: number): Promise<void>;
  stopped(): boolean;
}

interface Waiting {
  lsn: bigint;
  chunk: Chunk;
  done: (touched: Touched) => Promise<void>;
}

export class MergeDriver {
  private src: pg.Client | null = null;
  private tracker: MergeTracker | null = null;
  private waiting: Waiting | null = null;
  /** The furthest position the stream is known to be past (the watermark may be passed before it is awaited). */
  private seen = 0n;

  constructor(private h: MergeHooks) {}

  /** A transaction the stream hands over (one it applies, not one it skips as already applied). */
  began(xid: number): void {
    this.tracker?.began(xid);
  }

  /** A change the stream is about to apply, in transaction `xid`. */
  note(xid: number, change: Change): void {
    this.tracker?.note(xid, change);
  }

  /**
   * The stream is past `lsn` (a Begin's commit LSN, a keepalive's or a message's position, never inside a
   * transaction): a chunk waiting for a watermark at or before it goes into the pipeline now, behind what the
   * stream handed over and ahead of what comes next.
   */
  passed(lsn: bigint): void {
    if (lsn > this.seen) this.seen = lsn;
    this.fire();
  }

  /** Hands the waiting chunk over if the stream is past its watermark, between transactions. */
  private fire(): void {
    const w = this.waiting;
    if (!w || this.seen < w.lsn || this.h.inTransaction()) return;
    this.waiting = null;
    // What the stream applied that the chunk's snapshot does not see, taken now: later changes come after it.
    const touched = this.tracker!.unseenBy(w.chunk.snapshot);
    this.h.flush();
    void w.done(touched);
  }

  /** Ends the merge's source connection (the session is over; a chunk in hand is read again next time). */
  async close(): Promise<void> {
    const c = this.src;
    this.src = null;
    this.waiting = null;
    if (c) await c.end().catch(() => {});
  }

  async run(): Promise<void> {
    try {
      while (!this.h.stopped()) {
        const any = await this.h.serial(() => W.anyMerge(this.h.dst, this.h.mirror));
        const state = any ? await this.h.serial(() => W.loadMirrorState(this.h.dst, this.h.mirror)) : null;
        const t = state?.tables.find((x) => x.merge && x.state === 'ready' && !x.schemaChangePending);
        if (!t) {
          await this.h.sleep(POLL_MS);
          continue;
        }
        await this.mergeTable(t, t.merge!);
      }
    } finally {
      this.tracker = null;
      await this.close();
    }
  }

  private async source(): Promise<pg.Client> {
    this.src ??= await connectPeer(this.h.source, {
      applicationName: `mirrors run ${this.h.mirror} (merge)`,
      options: `${TEXT_IO_OPTIONS} -c statement_timeout=300000 -c synchronous_commit=local`,
    });
    return this.src;
  }

  private async mergeTable(t: W.MirrorState['tables'][number], req: W.MergeState): Promise<void> {
    const dest = { schema: t.destSchema, name: t.destTable };
    const address = tableAddress(this.h.mirror, dest);
    const table = await this.describe(t, req);
    const tracker = new MergeTracker(table);
    this.tracker = tracker;
    const log = (msg: string, fields: Record<string, unknown> = {}) =>
      this.h.log('info', `${address}: ${msg}`, { table: `${dest.schema}.${dest.name}`, ...fields });
    log(
      req.cursor
        ? `merge resumed after key (${req.cursor.join(', ')})`
        : `merge started: reading the source by (${req.key.join(', ')}), ${req.chunk_rows} rows at a time`,
    );
    let after: TupleValue[] | null = req.cursor ?? null;
    let reread: TupleValue[][] = [];
    const totals = { rows: 0, inserted: 0, updated: 0, deleted: 0 };
    try {
      while (!this.h.stopped()) {
        const chunk = await this.read(table, tracker, after, reread);
        if (!chunk) {
          await this.h.sleep(RETRY_MS);
          continue;
        }
        const lsn = await this.watermark();
        const outcome = await new Promise<ChunkOutcome>((resolve, reject) => {
          this.waiting = {
            lsn,
            chunk,
            done: (touched) =>
              this.h
                .serial(() => this.apply(table, req, chunk, chunk.last ?? after, touched, address))
                .then(resolve, reject),
          };
          this.fire();
        });
        tracker.forgetSeenBy(chunk.snapshot);
        if (outcome === 'gone') return;
        if (outcome === 'again') continue;
        const w = outcome;
        totals.rows += chunk.rows.length + chunk.reread.length;
        totals.inserted += w.inserted;
        totals.updated += w.updated;
        totals.deleted += w.deleted;
        after = chunk.last ?? after;
        reread = w.reread;
        if (w.done) {
          log(
            `merge finished: ${totals.rows} rows compared, ${totals.inserted} inserted, ${totals.updated} updated, ${totals.deleted} deleted`,
            totals,
          );
          return;
        }
      }
    } finally {
      this.tracker = null;
      this.waiting = null;
    }
  }

  /** The table as both peers have it now: the destination's columns the source sends, each side's types. */
  private async describe(t: W.MirrorState['tables'][number], req: W.MergeState): Promise<MergeTable> {
    const { table, missing } = await keyedColumns(await this.source(), t, req.key);
    const label = `${t.destSchema}.${t.destTable}`;
    if (missing.length || table.key.includes(-1))
      throw new Fault(
        'drift',
        `cannot merge ${label}: the source ${t.sourceSchema}.${t.sourceTable} lacks ${missing.length ? `column(s) ${missing.join(', ')}` : `the key (${req.key.join(', ')})`}`,
        'MR138',
        'run `mirrors plan`: it shows what differs between the tables; once they fit, the merge goes on by itself',
      );
    return { ...table, chunkRows: req.chunk_rows };
  }

  /**
   * The next chunk, in one source snapshot; null when that snapshot misses a transaction that committed but is not
   * visible yet and that the stream did not hand over since the merge began (it may have been applied before, its
   * rows unknown to the tracker): read again shortly. (A sync mirror's source holds such transactions until the
   * worker applied them: those it handed over.)
   */
  private async read(
    t: MergeTable,
    tracker: MergeTracker,
    after: TupleValue[] | null,
    reread: TupleValue[][],
  ): Promise<Chunk | null> {
    const src = await this.source();
    const q = (s: Sql) => src.query({ text: s.text, values: s.values, rowMode: 'array', types: RAW_TEXT });
    return inTransaction(
      src,
      async () => {
        const snap = (
          await src.query(
            `SELECT pg_current_snapshot()::text AS snap,
                    ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) x WHERE pg_xact_status(x) = 'committed') AS unsettled`,
          )
        ).rows[0];
        if (!tracker.handedOver((snap.unsettled as string[]).map((x) => BigInt(x)))) return null;
        const rows = (await q(chunkSql(t, after))).rows as TupleValue[][];
        const again = reread.length ? ((await q(rereadSql(t, reread))).rows as TupleValue[][]) : [];
        const full = rows.length === t.chunkRows;
        const last = full ? t.key.map((k) => rows[rows.length - 1][k]) : null;
        const keys = [...rows, ...again].map((r) => t.key.map((k) => r[k]));
        // Destination keys of the range the chunk did not bring, and the re-read keys the source no longer has.
        const extra = (await this.h.serial(() => this.queryDest(destExtraSql(t, after, last, keys)))).rows;
        const candidates = [...extra, ...reread];
        const present = candidates.length ? (await q(presentSql(t, candidates))).rows : [];
        const held = new Set(present.map((k) => JSON.stringify(k)));
        const absent = candidates.filter((k) => !held.has(JSON.stringify(k)));
        return { snapshot: parseSnapshot(snap.snap), rows, reread: again, absent, last };
      },
      'read-only snapshot',
    );
  }

  private queryDest(s: Sql) {
    return this.h.dst.query({ text: s.text, values: s.values, rowMode: 'array', types: RAW_TEXT });
  }

  /**
   * A watermark behind the chunk's read: a logical decoding message (or, for a role that may not write one, the WAL
   * position). An empty transaction right after it flushes the WAL at once (synchronous_commit = local on this
   * connection): the walsender reads only flushed WAL, and the WAL writer alone takes up to wal_writer_delay. On
   * an idle source it also moves the stream past the position.
   */
  private async watermark(): Promise<bigint> {
    const src = await this.source();
    let lsn: string;
    try {
      lsn = (
        await src.query(`SELECT pg_logical_emit_message(false, $1::text, '')::text AS lsn`, [MERGE_MESSAGE_PREFIX])
      ).rows[0].lsn;
    } catch (err) {
      if ((err as { code?: string }).code !== SQLSTATE.insufficientPrivilege) throw err;
      lsn = (await src.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
    }
    await src.query('SELECT pg_current_xact_id()');
    return lsnToBigInt(lsn);
  }

  /** Writes the chunk and its progress in one destination transaction (inside the pipeline). */
  private async apply(
    t: MergeTable,
    req: W.MergeState,
    chunk: Chunk,
    cursor: TupleValue[] | null,
    touched: Touched,
    address: string,
  ): Promise<ChunkOutcome> {
    // A TRUNCATE or a key the stream did not send: nothing tells which rows the chunk must leave alone.
    if (touched.unknown) return 'again';
    const w = chunkWrite(t, chunk, touched);
    const dst = this.h.dst;
    const done = chunk.last === null && w.reread.length === 0;
    const out = await inTransaction(dst, async () => {
      let inserted = 0;
      let updated = 0;
      let deleted = 0;
      if (w.upsert.length) {
        const s = upsertSql(t, w.upsert);
        for (const r of (await dst.query(s.text, s.values)).rows) r.inserted ? inserted++ : updated++;
      }
      if (w.delete.length) {
        const s = deleteSql(t, w.delete, w.keep);
        deleted = (await dst.query(s.text, s.values)).rowCount ?? 0;
      }
      const recorded = await W.recordMergeChunk(
        dst,
        this.h.mirror,
        t.dest,
        req.requested_at,
        {
          cursor: cursor?.map((v) => v ?? null) ?? null,
          rows: chunk.rows.length + chunk.reread.length,
          inserted,
          updated,
          deleted,
        },
        done,
      );
      if (!recorded) throw new MergeGone();
      if (done)
        await catalog.journal(dst, {
          mirror: this.h.mirror,
          actionId: `merge:${address}`,
          address,
          kind: 'table',
          op: 'replace',
          outcome: 'done',
          host: os.hostname(),
          pid: process.pid,
          command: 'mirrors run (resync_strategy merge)',
        });
      return { inserted, updated, deleted };
    }).catch((e) => {
      if (e instanceof MergeGone) return null;
      throw e;
    });
    if (!out) return 'gone';
    injectKill('merge_chunk');
    return { ...out, reread: w.reread, done };
  }
}

class MergeGone extends Error {}

/** A chunk written (what it changed, the keys to read again, whether the merge is over), or why not. */
type ChunkOutcome =
  | 'again'
  | 'gone'
  | { inserted: number; updated: number; deleted: number; reread: TupleValue[][]; done: boolean };
