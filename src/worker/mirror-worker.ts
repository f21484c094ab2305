/**
 * One mirror's streaming worker: holds the lease, streams the slot from the catalog's position, decodes,
 * batches whole transactions, applies them with the new position in one destination transaction, and
 * only then acknowledges (DESIGN.md invariants 2-9). Reconnects with exponential backoff and jitter.
 */
import os from 'node:os';
import type pg from 'pg';
import type { Config, Mirror } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { lsnToBigInt, bigIntToLsn } from '../db/lsn.js';
import { pgFields } from '../errors.js';
import * as W from '../catalog/worker-sql.js';
import type { Change, SourceTransaction, TargetTable } from './changes.js';
import type { PgoutputMessage, TupleValue } from './decode.js';
import { LEASE_CLASS } from './lease-key.js';
import { Sink } from './sink.js';
import { ReplicationStream, TEXT_IO_OPTIONS } from './stream.js';

export type WorkerStatus =
  | 'Starting'
  | 'Standby'
  | 'Bootstrapping'
  | 'Following'
  | 'Degraded'
  | 'Disconnected'
  | 'Paused'
  | 'Failed'
  | 'Stopped';

export interface WorkerEvents {
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
  status?(mirror: string, status: WorkerStatus): void;
  batch?(
    mirror: string,
    r: {
      changes: number;
      transactions: number;
      seconds: number;
      lagMs: number;
      lagBytes: bigint;
      lsn: bigint;
      commitTimeMs: number;
      counts: W.TableCounts;
      exactOrder: boolean;
      missingRows: number;
    },
  ): void;
  caughtUp?(mirror: string, lsn: bigint): void;
  reconnect?(mirror: string, peer: 'source' | 'destination'): void;
}

/** Well under wal_sender_timeout (60 s by default): the walsender ends a stream that stays silent that long. */
const FEEDBACK_MS = 2_000;
const HEARTBEAT_MS = 5_000;
const POLL_MS = 1_000;
/**
 * Batches handed to the destination and not yet committed: one applying, one waiting. The stream decodes
 * the next batch meanwhile (decoding and applying overlap), and memory stays at about three batches.
 */
const MAX_BATCHES_IN_FLIGHT = 2;
/**
 * The lease is this session's advisory lock: if the worker's host vanishes without closing the connection
 * (a network partition, a frozen VM), the server must notice within seconds, end the session and free the
 * lease for a standby, not after the kernel's two-hour keepalive default. About 10 + 3 x 5 s here.
 */
const LEASE_KEEPALIVES = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

interface RelationEntry {
  target: TargetTable | null;
  table?: W.MirrorState['tables'][number];
  identity: 'd' | 'n' | 'f' | 'i';
  /** The table's snapshot LSN (0 when none): transactions committed before it are in its copy. */
  snapshotLsn: bigint;
}

interface OpenTxn {
  finalLsn: bigint;
  commitTime: string;
  commitTimeMs: number;
  changes: Change[];
  skip: boolean;
}

class SessionEnd extends Error {}

export class MirrorWorker {
  status: WorkerStatus = 'Starting';
  lagMs = 0;
  private lastAppliedEnd = 0n;

  constructor(
    private config: Config,
    readonly mirror: Mirror,
    private events: WorkerEvents,
    private signal: AbortSignal,
  ) {}

  private setStatus(s: WorkerStatus) {
    if (this.status === s) return;
    this.status = s;
    this.events.status?.(this.mirror.name, s);
  }

  /** Runs until the signal aborts. */
  async run(): Promise<void> {
    let attempt = 0;
    while (!this.signal.aborted) {
      try {
        await this.session();
        attempt = 0;
      } catch (err) {
        if (this.signal.aborted) break;
        const e = err as Error;
        this.setStatus('Disconnected');
        const delay = backoff(attempt++);
        this.events.log('warn', `mirror ${this.mirror.name}: ${e.message}; reconnecting in ${Math.round(delay)} ms`, {
          mirror: this.mirror.name,
          ...pgFields(err),
        });
        this.events.reconnect?.(this.mirror.name, (e as { peer?: 'source' | 'destination' }).peer ?? 'source');
        await sleep(delay, this.signal);
      }
    }
    this.setStatus('Stopped');
  }

  /** One connected session: lease, state, stream, until an error or the signal. */
  private async session(): Promise<void> {
    const m = this.mirror;
    const dst = await connectPeer(this.config.peers[m.destination], {
      applicationName: `mirrors run ${m.name}`,
      options: `${TEXT_IO_OPTIONS} -c session_replication_role=replica ${LEASE_KEEPALIVES}`,
    }).catch((e) => Promise.reject(Object.assign(e, { peer: 'destination' })));
    let stream: ReplicationStream | null = null;
    const timers: NodeJS.Timeout[] = [];
    let reject!: (e: Error) => void;
    const failed = new Promise<never>((_, r) => (reject = r));
    failed.catch(() => {});
    // After a failure nothing else may be applied (a later batch must never commit after a failed one);
    // after a stop request, only the batch already in hand is finished.
    let dead = false;
    let stopping = false;
    const fail = (e: Error) => {
      if (e instanceof SessionEnd) stopping = true;
      else dead = true;
      reject(e);
    };
    dst.on('error', (e) => fail(Object.assign(e, { peer: 'destination' })));
    const onAbort = () => fail(new SessionEnd('stopping'));
    this.signal.addEventListener('abort', onAbort);
    // Every use of the destination connection and of the batch goes through this chain, in order.
    let chain: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const p = chain.then(() => (dead ? Promise.reject(new SessionEnd('session failed')) : fn()));
      chain = p.catch(() => {});
      return p;
    };
    try {
      await this.acquireLease(dst, failed);
      const state = await this.waitUntilStreamable(dst, failed);
      const sink = new Sink(dst, m.name);
      this.lastAppliedEnd = state.lastAppliedLsn ? lsnToBigInt(state.lastAppliedLsn) : 0n;
      let lastAcked = this.lastAppliedEnd;
      let lastCaughtUpWrite = 0;
      /** The server's sent position from its last keepalive: how far behind the worker is, in bytes. */
      let serverWalEnd = 0n;
      const relations = new Map<number, RelationEntry>();
      let open: OpenTxn | null = null;
      /** Whole transactions received and not yet handed to the destination. */
      let batch: SourceTransaction[] = [];
      let batchChanges = 0;
      /** Batches handed to the destination chain and not yet committed (see `room`). */
      let inFlight = 0;
      const roomWaiters: (() => void)[] = [];
      let idleTimer: NodeJS.Timeout | null = null;
      let lastCommitAt = 0;

      /** Applies a batch in one destination transaction, then acknowledges it. Runs inside `serial`. */
      const applyTxns = async (txns: SourceTransaction[]) => {
        const last = txns[txns.length - 1];
        const t0 = performance.now();
        const lagMs = Math.max(0, Date.now() - last.commitTimeMs);
        const r = await sink.applyBatch(txns, lagMs);
        this.lastAppliedEnd = last.endLsn > this.lastAppliedEnd ? last.endLsn : this.lastAppliedEnd;
        this.lagMs = lagMs;
        this.setStatus(lagMs > m.lag_threshold_ms ? 'Degraded' : 'Following');
        await stream!.feedback(this.lastAppliedEnd);
        lastAcked = this.lastAppliedEnd;
        const lagBytes = serverWalEnd > this.lastAppliedEnd ? serverWalEnd - this.lastAppliedEnd : 0n;
        if (r.missingRows > 0) {
          // Postgres's own apply worker logs the same ("did not find row to be updated"): the destination
          // differs from the source; a resync of the table (`mirrors apply` after removing and re-adding it) repairs it.
          this.events.log(
            'warn',
            `mirror ${m.name}: ${r.missingRows} UPDATE or DELETE applied in exact order found no row on the destination: it differs from the source`,
            { mirror: m.name, missingRows: r.missingRows },
          );
        }
        this.events.batch?.(m.name, {
          changes: r.changes,
          transactions: r.transactions,
          seconds: (performance.now() - t0) / 1000,
          lagMs,
          lagBytes,
          lsn: last.endLsn,
          commitTimeMs: last.commitTimeMs,
          counts: r.counts,
          exactOrder: r.exactOrder,
          missingRows: r.missingRows,
        });
      };

      /**
       * Hands the batch to the destination chain and returns at once: the stream goes on decoding the next
       * batch while the destination applies this one. Batches commit in the order they are dispatched.
       */
      const dispatch = () => {
        if (!batch.length) return;
        const txns = batch;
        batch = [];
        batchChanges = 0;
        inFlight++;
        const done = () => {
          inFlight--;
          for (const wake of roomWaiters.splice(0)) wake();
        };
        serial(() => applyTxns(txns)).then(done, (e) => {
          done();
          fail(e);
        });
      };

      /** Backpressure: while MAX_BATCHES_IN_FLIGHT batches wait for the destination, the stream holds. */
      const room = (): void | Promise<void> => {
        if (inFlight < MAX_BATCHES_IN_FLIGHT) return;
        return new Promise<void>((wake) => roomWaiters.push(wake)).then(room);
      };

      /** Quiet for idle_timeout_seconds (no commit received): apply what the batch holds. */
      const armIdleTimer = () => {
        if (idleTimer) return;
        const timeoutMs = m.idle_timeout_seconds * 1000;
        const check = () => {
          idleTimer = null;
          if (!batch.length) return;
          const quiet = Date.now() - lastCommitAt;
          if (quiet >= timeoutMs) dispatch();
          else idleTimer = setTimeout(check, timeoutMs - quiet);
        };
        idleTimer = setTimeout(check, timeoutMs);
      };

      const tablesBySource = new Map(state.tables.map((t) => [`${t.sourceSchema}\u0000${t.sourceTable}`, t]));
      /** Runs inside `serial`: it reads the catalog through the destination connection. */
      const onRelation = async (msg: Extract<PgoutputMessage, { tag: 'relation' }>) => {
        // From the catalog as it is now, not as it was when the session started: `mirrors apply` records a
        // table added (or resynced) while we run before the publication carries it, so the Relation message
        // that precedes its first change finds it here (pending or copying: tableFor waits for its copy).
        const fresh = await W.loadMirrorState(dst, m.name);
        if (fresh) {
          tablesBySource.clear();
          for (const x of fresh.tables) tablesBySource.set(`${x.sourceSchema}\u0000${x.sourceTable}`, x);
        }
        const t = tablesBySource.get(`${msg.schema}\u0000${msg.name}`);
        if (!t) {
          this.events.log(
            'warn',
            `mirror ${m.name}: the publication sends ${msg.schema}.${msg.name}, which the mirror does not map; its changes are not applied`,
            { mirror: m.name },
          );
          relations.set(msg.relationOid, { target: null, identity: msg.replicaIdentity, snapshotLsn: 0n });
          return;
        }
        const missing = msg.columns.filter((c) => !t.types[c.name]).map((c) => c.name);
        if (missing.length)
          throw new Error(
            `destination table ${t.destSchema}.${t.destTable} has no column ${missing.join(', ')} that the source publishes`,
          );
        const target: TargetTable = {
          schema: t.destSchema,
          name: t.destTable,
          label: `${t.destSchema}.${t.destTable}`,
          columns: msg.columns.map((c) => c.name),
          types: msg.columns.map((c) => t.types[c.name]),
          // Under REPLICA IDENTITY FULL every column is flagged: rows are then matched by their old values.
          key: msg.replicaIdentity === 'f' ? [] : msg.columns.flatMap((c, i) => (c.isKey ? [i] : [])),
          snapshotLsn: t.snapshotLsn,
        };
        relations.set(msg.relationOid, {
          target,
          table: t,
          identity: msg.replicaIdentity,
          snapshotLsn: t.snapshotLsn ? lsnToBigInt(t.snapshotLsn) : 0n,
        });
      };

      /** A table whose copy is still running elsewhere: apply what came before, then wait for the copy. */
      const waitForCopy = async (rel: RelationEntry): Promise<void> => {
        dispatch();
        for (;;) {
          const fresh = await serial(() => W.loadMirrorState(dst, m.name));
          const t = fresh?.tables.find(
            (x) => x.destSchema === rel.table!.destSchema && x.destTable === rel.table!.destTable,
          );
          if (!t) {
            rel.target = null;
            return;
          }
          if (t.state === 'ready') {
            rel.table = t;
            rel.target!.snapshotLsn = t.snapshotLsn;
            rel.snapshotLsn = t.snapshotLsn ? lsnToBigInt(t.snapshotLsn) : 0n;
            return;
          }
          this.setStatus('Bootstrapping');
          await Promise.race([sleep(POLL_MS, this.signal), failed]);
        }
      };

      /**
       * Calls `use` with the destination table a change to `oid` goes to, unless it is not mirrored or its
       * copy already holds the open transaction (committed before the table's snapshot LSN).
       */
      const withTable = (oid: number, use: (t: TargetTable) => void): void | Promise<void> => {
        const rel = relations.get(oid);
        if (!rel?.target || !rel.table || !open) return;
        if (rel.table.state !== 'ready') return waitForCopy(rel).then(() => withTable(oid, use));
        if (open.finalLsn >= rel.snapshotLsn) use(rel.target);
      };

      const keyOnly = (t: TargetTable, tuple: TupleValue[]) => tuple.map((v, i) => (t.key.includes(i) ? v : undefined));

      /** Synchronous for every message but a Relation, a table still being copied, or a full pipeline. */
      const onMessage = (msg: PgoutputMessage): void | Promise<void> => {
        if (stopping) return;
        switch (msg.tag) {
          case 'begin':
            // Invariant 5: skip every transaction whose commit is before what the catalog says is applied.
            open = {
              finalLsn: msg.finalLsn,
              commitTime: msg.commitTime,
              commitTimeMs: isoToMs(msg.commitTime),
              changes: [],
              skip: msg.finalLsn < this.lastAppliedEnd,
            };
            return;
          case 'relation':
            return serial(() => onRelation(msg));
          case 'insert':
            if (!open || open.skip) return;
            return withTable(msg.relationOid, (t) => open!.changes.push({ op: 'insert', table: t, row: msg.newTuple }));
          case 'update':
            if (!open || open.skip) return;
            return withTable(msg.relationOid, (t) => {
              const old = msg.oldTuple ?? (msg.keyTuple ? keyOnly(t, msg.keyTuple) : undefined);
              open!.changes.push({ op: 'update', table: t, row: msg.newTuple, old, oldIsFull: !!msg.oldTuple });
            });
          case 'delete':
            if (!open || open.skip) return;
            return withTable(msg.relationOid, (t) => {
              const old = msg.oldTuple ?? keyOnly(t, msg.keyTuple ?? []);
              open!.changes.push({ op: 'delete', table: t, old, oldIsFull: !!msg.oldTuple });
            });
          case 'truncate': {
            if (!open || open.skip) return;
            const tables: TargetTable[] = [];
            const collect = async () => {
              for (const oid of msg.relationOids) await withTable(oid, (t) => tables.push(t));
              if (tables.length) open!.changes.push({ op: 'truncate', tables });
            };
            return collect();
          }
          case 'commit': {
            const txn = open;
            open = null;
            if (!txn || txn.skip) return;
            batch.push({
              finalLsn: txn.finalLsn,
              endLsn: msg.endLsn,
              commitTime: txn.commitTime,
              commitTimeMs: txn.commitTimeMs,
              changes: txn.changes,
            });
            batchChanges += txn.changes.length;
            lastCommitAt = Date.now();
            if (batchChanges >= m.max_batch_size) {
              dispatch();
              return room();
            }
            armIdleTimer();
            return;
          }
          default:
            return; // origin, type, message: nothing to apply
        }
      };

      /**
       * The server has sent everything up to walEnd, and every message before it is handled (the stream
       * delivers in order). Between transactions: apply the batch now rather than waiting for it to fill,
       * and report walEnd once it is committed (no transaction can still commit below it), so an idle
       * mirror's slot does not hold WAL and its lag reads zero.
       */
      const onKeepalive = (walEnd: bigint) => {
        if (walEnd > serverWalEnd) serverWalEnd = walEnd;
        // After a stop request onMessage ignores what arrives, so "everything before walEnd is handled" no
        // longer holds: acknowledging or recording walEnd would skip those transactions forever.
        if (stopping || open !== null) return;
        dispatch();
        serial(async () => {
          if (walEnd > lastAcked) {
            await stream!.feedback(walEnd);
            lastAcked = walEnd;
          }
          this.lagMs = 0;
          this.setStatus('Following');
          if (Date.now() - lastCaughtUpWrite >= POLL_MS) {
            lastCaughtUpWrite = Date.now();
            await W.recordCaughtUp(dst, m.name, bigIntToLsn(lastAcked), new Date());
            this.events.caughtUp?.(m.name, lastAcked);
          }
        }).catch((e) => fail(e));
      };

      stream = new ReplicationStream(
        this.config.peers[m.source],
        state.slot,
        state.publication,
        {
          onMessage,
          onKeepalive,
          // Answer now, not behind a long batch in the chain: the walsender cuts the stream after
          // wal_sender_timeout without a reply. lastAcked only ever holds committed positions.
          onReplyRequested: () => void stream!.feedback(lastAcked).catch((e) => fail(e)),
          onError: (e) => fail(e),
        },
        `mirrors run ${m.name}`,
      );

      // Not through `serial`: status updates must keep flowing while a batch or a wait for a table copy runs
      // (and while the library holds the socket paused, when incoming keepalives are not even read).
      timers.push(setInterval(() => void stream!.feedback(lastAcked).catch((e) => fail(e)), FEEDBACK_MS));
      timers.push(
        setInterval(
          () => void serial(() => W.recordHeartbeat(dst, m.name, this.status, null, null)).catch((e) => fail(e)),
          HEARTBEAT_MS,
        ),
      );

      const streaming = stream.start(this.lastAppliedEnd).then(() => {
        throw new Error('the source ended the replication stream');
      });
      this.setStatus('Following');
      this.events.log('info', `mirror ${m.name}: streaming from ${bigIntToLsn(this.lastAppliedEnd)}`, {
        mirror: m.name,
      });
      try {
        await Promise.race([streaming, failed]);
      } catch (err) {
        if (!(err instanceof SessionEnd)) throw err;
        // Shutdown: finish the batches in hand (whole transactions only), commit, acknowledge.
        if (idleTimer) clearTimeout(idleTimer);
        dispatch();
        await serial(async () => {});
        await stream.feedback(this.lastAppliedEnd);
      } finally {
        if (idleTimer) clearTimeout(idleTimer);
      }
    } finally {
      this.signal.removeEventListener('abort', onAbort);
      for (const t of timers) clearInterval(t);
      await stream?.stop();
      await dst.end().catch(() => {});
    }
  }

  /** One active worker per mirror (invariant 9): a standby waits here until the lease is free. */
  private async acquireLease(dst: pg.Client, failed: Promise<never>) {
    for (;;) {
      const ok = (
        await dst.query('SELECT pg_try_advisory_lock($1::int, hashtext($2::text)) AS ok', [
          LEASE_CLASS,
          this.mirror.name,
        ])
      ).rows[0].ok;
      if (ok) break;
      if (this.status !== 'Standby')
        this.events.log('info', `mirror ${this.mirror.name}: another worker holds the lease; waiting as a standby`, {
          mirror: this.mirror.name,
        });
      this.setStatus('Standby');
      await Promise.race([sleep(POLL_MS, this.signal), failed]);
    }
    await W.recordWorker(dst, this.mirror.name, os.hostname(), process.pid).catch(() => {});
  }

  /** Waits while the mirror is not applied, still bootstrapping, or paused. */
  private async waitUntilStreamable(dst: pg.Client, failed: Promise<never>): Promise<W.MirrorState> {
    let said = '';
    for (;;) {
      const exists = (await dst.query(`SELECT to_regclass('mirrors.mirrors') IS NOT NULL AS ok`)).rows[0].ok;
      const state = exists ? await W.loadMirrorState(dst, this.mirror.name) : null;
      let wait = '';
      if (!state) wait = 'not applied yet (run `mirrors apply`)';
      else if (state.paused || this.mirror.paused) wait = 'paused';
      else if (state.phase !== 'ready')
        wait = `bootstrapping (phase ${state.phase}): waiting for \`mirrors apply\` to finish`;
      if (!wait) return state!;
      if (wait !== said) this.events.log('info', `mirror ${this.mirror.name}: ${wait}`, { mirror: this.mirror.name });
      said = wait;
      this.setStatus(wait === 'paused' ? 'Paused' : 'Bootstrapping');
      await Promise.race([sleep(POLL_MS * 2, this.signal), failed]);
    }
  }
}

function backoff(attempt: number): number {
  const base = Math.min(30_000, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

function isoToMs(iso: string): number {
  return Date.parse(iso);
}
