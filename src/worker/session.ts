/**
 * One connected session of a mirror's worker: lease, catalog state, gap check, stream, apply pipeline,
 * heartbeat, until something ends it. Never throws: it returns why it ended (faults.ts) and the worker
 * decides what comes next. DESIGN.md invariants 2-9: nothing is acknowledged before the destination
 * committed it, position and rows commit together, one active session per mirror (the lease).
 */
import os from 'node:os';
import type pg from 'pg';
import * as V from '../catalog/verify-sql.js';
import * as W from '../catalog/worker-sql.js';
import { CATALOG_VERSION } from '../catalog/migrations.js';
import type { Config, Mirror, Peer } from '../config/types.js';
import { connectPeer } from '../db/connect.js';
import { GUARD_TRIGGER } from '../diff/ddl.js';
import { parseRelayRow } from '../diff/truncate-relay.js';
import { DeferredMismatch, encodeChange } from './deferred.js';
import { displayQualified } from '../config/names.js';
import { tableAddress } from '../plan/address.js';
import { bigIntToLsn, lsnToBigInt } from '../db/lsn.js';
import { Batcher } from './batcher.js';
import type { Change, SourceTransaction, TargetTable } from './changes.js';
import type { PgoutputMessage, TupleValue } from './decode.js';
import { Fault, classify, needsPerson } from './faults.js';
import { slotGap, sourceMismatch } from './gap.js';
import { type LagFacts, lagMs } from './lag.js';
import { MergeDriver } from './merge-driver.js';
import { LEASE_CLASS } from './lease-key.js';
import { ApplyPipeline } from './pipeline.js';
import { type RelationEntry, RelationCache } from './relations.js';
import { Sink } from './sink.js';
import { type SourceSlotReading, SourceMonitor } from './source-monitor.js';
import { SourceRecorder } from './source-record.js';
import { standbyName } from '../diff/sync-standbys.js';
import { ReplicationStream, TEXT_IO_OPTIONS } from './stream.js';
import { VerifyHold } from './verify-hold.js';
import type { WorkerEvents, WorkerStatus } from './mirror-worker.js';

/** Pings (a status update asking for a reply) keep keepalives coming even from an idle source. */
const PING_MS = 2_000;
/**
 * A source connection that delivers neither data nor keepalives for this long is dead even if no one closed
 * it (the walsender answers every ping within milliseconds): reconnect, like Postgres's wal_receiver_timeout.
 */
export const RECEIVE_TIMEOUT_MS = 15_000;
/**
 * A destination statement running longer than this gets checked from a second connection: is the worker's
 * session still there (it holds the lease)? A slow batch is; a cut-off worker's is gone (the server ended it,
 * see IDLE_LIMITS) or cannot be reached at all. Either way the worker must stop streaming at once, so the
 * standby that takes the lease can also take the slot.
 */
const PROBE_AFTER_MS = 5_000;
const PROBE_CONNECT_TIMEOUT_MS = 8_000;
/** A mirror that needs a person is retried this often, so a fix is picked up without restarting `run`. */
const FAILED_RETRY_MS = 5_000;
/** Heartbeat and orders (paused, phase, promoted): applying `paused: true` reaches the worker within ~1-2 s. */
const HEARTBEAT_MS = 1_000;
const POLL_MS = 1_000;
const MONITOR_MS = 5_000;
/** Logical decoding messages of a promotion's fence (apply/promotion.ts writes them). */
const FENCE_MESSAGE_PREFIX = 'mirrors.fence';
/** How often the read-only guards of the mirror's tables are checked (also at every session start). */
const GUARD_CHECK_MS = 10_000;
/** On SIGTERM, the batches in hand get this long to commit; then they are abandoned, unacknowledged. */
const SHUTDOWN_GRACE_MS = 2_000;
/** Batches handed to the destination and not yet committed: one applying, one waiting (invariant 8). */
const MAX_BATCHES_IN_FLIGHT = 2;
/**
 * Server-side limits on the worker's destination session. TCP keepalives end it if the worker's host
 * vanishes; the idle timeouts (PG 14+) also when a proxy or NAT keeps the TCP connection alive while the
 * worker is cut off: the worker runs a statement at least every second, so 15 s idle means it is gone, and
 * the lease goes to a standby.
 */
const LEASE_KEEPALIVES = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';
const IDLE_LIMITS = `SET idle_session_timeout = '15s'; SET idle_in_transaction_session_timeout = '15s'`;

export type SessionEnd =
  | { kind: 'stopped' }
  | {
      kind: 'fault';
      fault: Fault;
      streamed: boolean;
      peer: 'source' | 'destination';
      /** A Failed session already waited (holding the lease) before returning: retry at once. */
      waited: boolean;
    };

/** What survives from one session to the next (lag must keep counting across reconnects). */
export interface WorkerMemory {
  /** End of the last commit applied (catalog position). */
  appliedEnd: bigint;
  /** Commit time of the oldest transaction a previous session received and did not apply. */
  carriedPendingMs: number | null;
  caughtUpAtMs: number | null;
  /** The source's current WAL position, as last read. */
  sourceLsn: bigint | null;
  /** When (ms epoch) the worker last made progress (for /healthz's stall rule). */
  progressAt: number | null;
  /** Lag facts of the running session (set by it), or the carried ones between sessions. */
  lagFacts: () => LagFacts;
}

export interface SessionContext {
  config: Config;
  mirror: Mirror;
  events: WorkerEvents;
  signal: AbortSignal;
  memory: WorkerMemory;
  status(): WorkerStatus;
  setStatus(s: WorkerStatus): void;
  /** The mirror needs a person: status Failed and the error logged, before the session waits to retry. */
  failed(f: Fault): void;
  log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void;
}

export async function runSession(ctx: SessionContext): Promise<SessionEnd> {
  const s = new Session(ctx);
  try {
    return await s.run();
  } catch (err) {
    return { kind: 'fault', fault: classify(err), streamed: s.streamed, peer: s.endedBy, waited: false };
  }
}

class Stop extends Error {}

class Session {
  streamed = false;
  private dst: pg.Client | null = null;
  private stream: ReplicationStream | null = null;
  private monitor: SourceMonitor | null = null;
  private merges: MergeDriver | null = null;
  private timers: NodeJS.Timeout[] = [];
  private reject!: (e: unknown) => void;
  private readonly ended = new Promise<never>((_, r) => (this.reject = r));
  private stopping = false;
  private leaseHeld = false;
  /** The destination session's backend: it holds the lease. */
  private backendPid = 0;
  /**
   * A session that retries a Failed mirror stays Failed until it gets past the point that failed (a batch
   * commits, or a keepalive position is recorded): streaming again alone proves nothing.
   */
  private holdFailed: boolean;
  /** Which peer's connection ended the session first, for the reconnect metric. */
  endedBy: 'source' | 'destination' = 'destination';
  private endSeen = false;

  constructor(private ctx: SessionContext) {
    this.ended.catch(() => {});
    this.holdFailed = ctx.status() === 'Failed';
  }

  /** The session got past the mirror's position: it may report Following. */
  private progressed() {
    this.ctx.memory.progressAt = Date.now();
    this.holdFailed = false;
  }

  private get name() {
    return this.ctx.mirror.name;
  }

  /** Ends the session with `err` (the first reason wins; later ones are consequences). */
  private end(err: unknown, peer: 'source' | 'destination' = 'destination') {
    if (err instanceof Stop) this.stopping = true;
    if (!this.endSeen) {
      this.endSeen = true;
      this.endedBy = peer;
    }
    this.reject(err);
  }

  async run(): Promise<SessionEnd> {
    const { ctx } = this;
    const m = ctx.mirror;
    const onAbort = () => this.end(new Stop());
    if (ctx.signal.aborted) return { kind: 'stopped' };
    ctx.signal.addEventListener('abort', onAbort);
    try {
      const dst = await this.race(
        connectPeer(ctx.config.peers[m.destination], {
          applicationName: `mirrors run ${m.name}`,
          options: `${TEXT_IO_OPTIONS} -c session_replication_role=replica ${LEASE_KEEPALIVES}`,
        }),
      );
      this.dst = dst;
      dst.on('error', (e) => this.end(e));
      const who = (
        await dst.query(
          `SELECT pg_backend_pid() AS pid, current_setting('server_version_num')::int >= 140000 AS idle_limits`,
        )
      ).rows[0];
      this.backendPid = who.pid;
      if (who.idle_limits) await dst.query(IDLE_LIMITS);
      await this.race(this.acquireLease(dst));
      const state = await this.race(this.waitUntilStreamable(dst));
      // Not raced with the session's end: on a stop request stream_ finishes the batches in hand itself, and
      // the connections must stay open until it has.
      await this.stream_(dst, state);
      return { kind: 'stopped' };
    } catch (err) {
      if (err instanceof Stop || (this.stopping && !(err instanceof Fault))) return { kind: 'stopped' };
      const fault = classify(err);
      await this.recordFault(fault);
      if (needsPerson(fault.kind)) ctx.failed(fault);
      const waited = needsPerson(fault.kind) && (await this.waitAsFailed());
      return { kind: 'fault', fault, streamed: this.streamed, peer: this.endedBy, waited };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      for (const t of this.timers) clearInterval(t);
      // In parallel and bounded: a peer that does not answer must not hold up a shutdown (SIGTERM within seconds).
      await Promise.all([
        this.stream?.stop(1_000),
        this.monitor?.close(),
        this.merges?.close(),
        this.dst ? endClient(this.dst) : null,
      ]);
    }
  }

  /** Waits for `p` unless the session ends first. */
  private race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.ended]);
  }

  private sleep(ms: number): Promise<void> {
    return this.race(sleep(ms, this.ctx.signal));
  }

  /**
   * A mirror that needs a person keeps its lease while it waits for the next try (FAILED_RETRY_MS), so that
   * status shows the worker and a standby does not fail the same way; it heartbeats as Failed meanwhile and
   * tries again at once when `mirrors apply` changes its orders. False when it could not wait here.
   */
  private async waitAsFailed(): Promise<boolean> {
    const dst = this.dst;
    if (!dst || !this.leaseHeld) return false;
    // The slot is not needed while waiting: free it (a person may be about to drop or replace it).
    await Promise.all([this.stream?.stop(1_000), this.monitor?.close()]);
    this.stream = null;
    this.monitor = null;
    const facts = this.ctx.memory.lagFacts();
    const behind = facts.pendingSinceMs === null ? null : new Date(facts.pendingSinceMs);
    const caught = facts.caughtUpAtMs === null ? null : new Date(facts.caughtUpAtMs);
    for (let waited = 0; waited < FAILED_RETRY_MS && !this.ctx.signal.aborted; waited += POLL_MS) {
      const orders = await withTimeout(W.recordHeartbeat(dst, this.name, 'Failed', behind, caught), 5_000).catch(
        () => undefined,
      );
      if (orders === undefined) return false; // the destination is gone too: the worker backs off instead
      if (!orders || orders.paused || orders.promoted || orders.phase !== 'ready') break;
      await sleep(POLL_MS, this.ctx.signal);
    }
    return true;
  }

  /** Writes the error to the catalog while this session holds the lease (a standby must not overwrite it). */
  private async recordFault(f: Fault) {
    const { ctx } = this;
    if (!this.dst || !this.leaseHeld || f.kind === 'paused' || f.kind === 'promoted' || f.kind === 'catalog_changed')
      return;
    const status = needsPerson(f.kind) ? 'Failed' : 'Disconnected';
    const pending = ctx.memory.lagFacts().pendingSinceMs;
    const err: W.StoredError = {
      at: new Date().toISOString(),
      kind: f.kind,
      code: f.code,
      message: f.message,
      hint: f.hint,
      ...(f.diff ? { diff: f.diff } : {}),
    };
    await withTimeout(
      W.recordError(this.dst, this.name, status, err, pending === null ? null : new Date(pending)),
      2_000,
    ).catch(() => {});
  }

  /** One active worker per mirror (invariant 9): a standby waits here until the lease is free. */
  private async acquireLease(dst: pg.Client) {
    for (;;) {
      const ok = (
        await dst.query('SELECT pg_try_advisory_lock($1::int, hashtext($2::text)) AS ok', [LEASE_CLASS, this.name])
      ).rows[0].ok;
      if (ok) break;
      if (this.ctx.status() !== 'Standby')
        this.ctx.log('info', `mirror ${this.name}: another worker holds the lease; waiting as a standby`, {
          mirror: this.name,
        });
      this.ctx.setStatus('Standby');
      await this.sleep(POLL_MS);
    }
    this.leaseHeld = true;
    await W.recordWorker(dst, this.name, os.hostname(), process.pid).catch(() => {});
  }

  /** Waits while the mirror is not applied, bootstrapping or paused; heartbeats meanwhile. */
  private async waitUntilStreamable(dst: pg.Client): Promise<W.MirrorState> {
    const { ctx } = this;
    let said = '';
    for (;;) {
      const version = (
        await dst.query(
          `SELECT CASE WHEN to_regclass('mirrors.schema_migrations') IS NULL THEN 0 ELSE (SELECT max(version) FROM mirrors.schema_migrations) END AS v`,
        )
      ).rows[0].v as number | null;
      let wait = '';
      let state: W.MirrorState | null = null;
      if (!version) wait = 'not applied yet (run `mirrors apply`)';
      else if (version < CATALOG_VERSION)
        throw new Fault(
          'fatal',
          `the catalog on peer ${ctx.mirror.destination} is at version ${version}; this mirrors needs ${CATALOG_VERSION}`,
          null,
          'run `mirrors apply` with this version: it migrates the catalog first',
        );
      else {
        state = await W.loadMirrorState(dst, this.name);
        if (!state) wait = 'not applied yet (run `mirrors apply`)';
        else if (state.promoted) throw new Fault('promoted', `mirror ${this.name} is promoted`);
        else if (state.paused) wait = 'paused';
        else if (state.phase !== 'ready')
          wait = `bootstrapping (phase ${state.phase}): waiting for \`mirrors apply\` to finish`;
      }
      if (!wait) return state!;
      const status: WorkerStatus = wait === 'paused' ? 'Paused' : 'Bootstrapping';
      if (wait !== said) ctx.log('info', `mirror ${this.name}: ${wait}`, { mirror: this.name });
      if (state && status === 'Bootstrapping')
        ctx.events.snapshot?.(this.name, BigInt(state.bytesDone), BigInt(state.bytesTotal));
      said = wait;
      ctx.setStatus(status);
      if (state) await W.recordHeartbeat(dst, this.name, status, null, null);
      await this.sleep(POLL_MS);
    }
  }

  /** Streams until the session ends; resolves only on a stop request after the batches in hand committed. */
  private async stream_(dst: pg.Client, state: W.MirrorState): Promise<void> {
    const { ctx } = this;
    const m = ctx.mirror;
    const mem = ctx.memory;
    const source = ctx.config.peers[m.source];

    const monitor = await this.race(SourceMonitor.open(source, `mirrors run ${m.name} (monitor)`));
    this.monitor = monitor;
    const applied = state.lastAppliedLsn ? lsnToBigInt(state.lastAppliedLsn) : 0n;
    mem.appliedEnd = applied;
    const reading = await this.race(monitor.slot(state.slot));
    this.noteSlot(reading);
    const gap =
      sourceMismatch(m.source, state.sourceIdentity, reading) ??
      slotGap(state.slot, m.source, reading, state.lastAppliedLsn);
    if (gap) throw gap;
    await this.race(checkGuards(dst, m.name));

    const sink = new Sink(dst, m.name);
    let lastAcked = applied;
    let lastCaughtUpWrite = 0;
    const batcher = new Batcher(m.max_batch_size);
    const stream = new ReplicationStream(
      source,
      state.slot,
      state.publication,
      {
        onMessage: (msg) => onMessage(msg),
        onKeepalive: (walEnd, sentAt) => onKeepalive(walEnd, sentAt),
        // Answer now, not behind a long batch: the walsender cuts the stream after wal_sender_timeout without a
        // reply. lastAcked only ever holds positions committed in the catalog.
        onReplyRequested: () => void stream.feedback(lastAcked).catch((e) => this.end(e, 'source')),
        onError: (e) => this.end(e, 'source'),
      },
      // A sync mirror's walsender is the synchronous standby candidate named in synchronous_standby_names.
      m.mode === 'sync' ? standbyName(m.name) : `mirrors run ${m.name}`,
    );
    this.stream = stream;

    /** Applies a batch in one destination transaction, then acknowledges it. Runs inside the pipeline. */
    const applyTxns = async (txns: SourceTransaction[]) => {
      const last = txns[txns.length - 1];
      const t0 = performance.now();
      const lagNow = Math.max(0, Date.now() - txns[0].commitTimeMs);
      const r = await sink.applyBatch(txns, lagNow);
      if (last.endLsn > mem.appliedEnd) mem.appliedEnd = last.endLsn;
      // Everything the source committed up to this commit is applied (commits are applied in order).
      if (mem.caughtUpAtMs === null || last.commitTimeMs > mem.caughtUpAtMs) mem.caughtUpAtMs = last.commitTimeMs;
      mem.carriedPendingMs = null;
      this.progressed();
      recorder.applied(txns.length);
      await stream.feedback(mem.appliedEnd);
      lastAcked = mem.appliedEnd;
      if (r.missingRows > 0) {
        // Postgres's own apply worker logs the same ("did not find row to be updated"): the destination
        // differs from the source; a resync of the table repairs it.
        ctx.log(
          'warn',
          `mirror ${m.name}: ${r.missingRows} UPDATE or DELETE applied in exact order found no row on the destination: it differs from the source`,
          { mirror: m.name, missingRows: r.missingRows },
        );
      }
      ctx.events.batch?.(m.name, {
        changes: r.changes,
        transactions: r.transactions,
        seconds: (performance.now() - t0) / 1000,
        lsn: last.endLsn,
        commitTimeMs: last.commitTimeMs,
        counts: r.counts,
        exactOrder: r.exactOrder,
        missingRows: r.missingRows,
      });
    };
    const pipeline = new ApplyPipeline(MAX_BATCHES_IN_FLIGHT, applyTxns, (e) => this.end(e));
    // A stop request lets the batches in hand finish (below); any other ending abandons them.
    this.ended.catch((e) => {
      if (!(e instanceof Stop)) pipeline.fail(e);
    });
    const recorder = new SourceRecorder({
      mirror: m.name,
      peerName: m.source,
      peer: source,
      tables: state.tables.map((t) => ({ schema: t.sourceSchema, name: t.sourceTable })),
      monitor,
      sync: m.mode === 'sync',
      write: (column, value) => pipeline.serial(() => W.recordSourceFacts(dst, m.name, column, value)),
      warn: (msg) => ctx.log('warn', `mirror ${m.name}: ${msg}`, { mirror: m.name }),
    });
    mem.lagFacts = () => ({
      pendingSinceMs: minOf(mem.carriedPendingMs, pipeline.oldestCommitMs(), batcher.oldestCommitMs()),
      caughtUpAtMs: mem.caughtUpAtMs,
    });

    const relations = new RelationCache(m.name, dst, monitor, m, (level, msg, fields) =>
      ctx.log(level, `mirror ${m.name}: ${msg}`, { mirror: m.name, ...fields }),
    );
    // resync_strategy merge: tables repaired in place while this session streams (merge-driver.ts).
    const merges = new MergeDriver({
      mirror: m.name,
      source,
      dst,
      serial: (fn) => pipeline.serial(fn),
      flush: () => flush(),
      inTransaction: () => batcher.inTransaction,
      log: (level, msg, fields) => ctx.log(level, `mirror ${m.name}: ${msg}`, { mirror: m.name, ...fields }),
      sleep: (ms) => this.sleep(ms),
      stopped: () => this.endSeen,
    });
    this.merges = merges;
    // `mirrors verify`: the stream holds at the point the run compares at (verify-hold.ts).
    const verifyHold = new VerifyHold({
      mirror: m.name,
      dst,
      serial: (fn) => pipeline.serial(fn),
      flush: () => flush(),
      appliedEnd: () => mem.appliedEnd,
      sleep: (ms) => this.sleep(ms),
      log: (level, msg, fields) => ctx.log(level, `mirror ${m.name}: ${msg}`, { mirror: m.name, ...fields }),
    });
    // A run is announced on a channel, so the worker looks at once; it also looks at session start and every 10 s
    // (a run announced while no session listened).
    dst.on('notification', (n) => {
      if (n.channel === V.VERIFY_CHANNEL && n.payload === m.name)
        pipeline.serial(() => verifyHold.poll()).catch(() => {}); // the heartbeat reports a destination that is gone
    });
    await this.race(
      pipeline.serial(async () => {
        await dst.query(`LISTEN ${V.VERIFY_CHANNEL}`);
        await verifyHold.poll();
      }),
    );
    /** xid of the transaction being decoded (its Begin's): the merge tells by it what a chunk's snapshot saw. */
    let openXid = 0;

    // Keepalives say "everything up to walEnd is sent". The position may move there, and lag read zero, once
    // every transaction before it is committed. A keepalive seen while whole transactions wait in the batcher
    // belongs after them: it goes with that batch.
    let keepaliveAfterBatch: { walEnd: bigint; sentAt: number } | null = null;
    let flushWhenIdle = false;
    /** The caught-up job queued since the last dispatch, which later keepalives may still update. */
    let caughtUpJob: { walEnd: bigint; sentAt: number } | null = null;

    const caughtUp = (ka: { walEnd: bigint; sentAt: number }) => {
      if (caughtUpJob) {
        caughtUpJob.walEnd = ka.walEnd;
        caughtUpJob.sentAt = ka.sentAt;
        return;
      }
      const job = { ...ka };
      caughtUpJob = job;
      pipeline
        .serial(async () => {
          if (caughtUpJob === job) caughtUpJob = null;
          mem.carriedPendingMs = null;
          this.progressed();
          if (mem.caughtUpAtMs === null || job.sentAt > mem.caughtUpAtMs) mem.caughtUpAtMs = job.sentAt;
          // Catalog first, then the slot: the slot never confirms more than the catalog holds (gap.ts).
          // A sync mirror answers every keepalive that moves its position: the source may be holding a commit for
          // it (Postgres 15+ sends one for a transaction it skipped, a write to an unpublished table).
          if (job.walEnd > lastAcked && (m.mode === 'sync' || Date.now() - lastCaughtUpWrite >= POLL_MS)) {
            lastCaughtUpWrite = Date.now();
            await W.recordCaughtUp(dst, m.name, bigIntToLsn(job.walEnd), new Date(job.sentAt));
            if (job.walEnd > mem.appliedEnd) mem.appliedEnd = job.walEnd;
            lastAcked = job.walEnd;
            await stream.feedback(lastAcked);
          }
        })
        .catch((e) => pipeline.fail(e));
    };

    /** Hands the whole transactions gathered so far to the destination. */
    const flush = () => {
      const ka = keepaliveAfterBatch;
      keepaliveAfterBatch = null;
      flushWhenIdle = false;
      const txns = batcher.take();
      if (txns.length) {
        caughtUpJob = null;
        pipeline.dispatch(txns);
      }
      if (ka) caughtUp(ka);
    };

    /** Sends what is gathered the moment the destination is free (flush() disarms it). */
    const flushOnceIdle = () => {
      if (flushWhenIdle) return;
      flushWhenIdle = true;
      void pipeline.whenIdle().then(() => {
        if (flushWhenIdle && !this.stopping) flush();
      });
    };

    let idleTimer: NodeJS.Timeout | null = null;
    let lastCommitAt = 0;
    /** Quiet for idle_timeout_seconds (no commit received): apply what the batch holds, if there is room. */
    const armIdleTimer = () => {
      if (idleTimer) return;
      const timeoutMs = m.idle_timeout_seconds * 1000;
      const check = () => {
        idleTimer = null;
        if (!batcher.size || this.stopping) return;
        const quiet = Date.now() - lastCommitAt;
        if (quiet >= timeoutMs && pipeline.room() === undefined) flush();
        else idleTimer = setTimeout(check, Math.max(100, timeoutMs - quiet));
      };
      idleTimer = setTimeout(check, timeoutMs);
    };
    /**
     * Tables whose copy is running elsewhere (`mirrors apply`): their changes are deferred (worker/deferred.ts), so
     * that the stream goes on for the others, and replayed once the copy is recorded.
     */
    const copying = new Map<string, RelationEntry>();
    /** Set while `use` builds changes of a table being copied: add() defers them. */
    let deferring = false;
    let lastCopyCheck = 0;
    /** The check under way: a transaction that begins meanwhile waits for it. */
    let checking: Promise<void> | null = null;
    /**
     * At a transaction boundary (nothing of an open one is gathered): for each table being copied, whether its copy
     * is recorded now; if so, what came before is applied, then its deferred changes replayed, before any later
     * change of it is applied directly. At most once a second.
     */
    const copiesDone = (): void | Promise<void> => {
      if (checking) return checking;
      if (!copying.size || Date.now() - lastCopyCheck < POLL_MS) return;
      lastCopyCheck = Date.now();
      flush();
      checking = pipeline
        .serial(async () => {
          for (const [label, rel] of copying) {
            const r = await relations.refresh(rel);
            if (r === 'copying') continue;
            copying.delete(label);
            if (r !== 'ready') continue;
            // The source's schema may have changed while the table was copied: fitted (or stopped at) first, as
            // before any change of it (relations.ts).
            if (rel.msg) await relations.recheck(rel, lsnToBigInt(rel.table!.snapshotLsn!));
            await replay(rel);
          }
        })
        .finally(() => {
          // From the end: the message that waited for this check is handled next, not checked for again.
          lastCopyCheck = Date.now();
          checking = null;
        });
      return checking;
    };
    /** Runs inside the pipeline. */
    const replay = async (rel: RelationEntry): Promise<void> => {
      const t = rel.table!;
      let replayed = 0;
      for (;;) {
        const n = await sink
          .replayDeferred({ schema: t.destSchema, name: t.destTable, snapshotLsn: t.snapshotLsn!, types: t.types })
          .catch((err) => {
            if (!(err instanceof DeferredMismatch)) throw err;
            throw new Fault(
              'drift',
              err.message,
              'MR150',
              `run \`mirrors plan\`: it shows the source's column change on ${t.destSchema}.${t.destTable}; once the table has the column, the worker replays the changes and streams on`,
            );
          });
        if (!n) break;
        replayed += n;
      }
      if (replayed)
        ctx.log(
          'info',
          `mirror ${m.name}: ${t.destSchema}.${t.destTable} copied; replayed ${replayed} changes deferred meanwhile`,
          {
            mirror: m.name,
            table: `${t.destSchema}.${t.destTable}`,
            replayed,
          },
        );
    };

    /**
     * Calls `use` with the table a change to `oid` goes to, unless it is not mirrored or its copy already holds the
     * change; while its copy runs, what `use` adds is deferred.
     */
    const withTable = (oid: number, use: (t: TargetTable) => void): void | Promise<void> =>
      withEntry(relations.get(oid), use);
    const withEntry = (rel: RelationEntry | null | undefined, use: (t: TargetTable) => void): void | Promise<void> => {
      const lsn = batcher.openLsn;
      if (!rel?.target || !rel.table || lsn === null) return;
      if (rel.table.state !== 'ready') {
        copying.set(rel.target.label, rel);
        deferring = true;
        try {
          use(rel.target);
        } finally {
          deferring = false;
        }
        return;
      }
      if (lsn < rel.snapshotLsn) return;
      if (rel.unchecked) {
        // What came before commits first, as before any schema change (relations.ts).
        flush();
        return pipeline.serial(() => relations.recheck(rel, lsn)).then(() => withEntry(rel, use));
      }
      use(rel.target);
    };

    // Destination tables a TRUNCATE emptied in the open transaction with no change since: the relay's rows for
    // their partitions (a TRUNCATE of the root fires every leaf's trigger) have nothing left to delete.
    const emptied = new Set<string>();
    /** A row of the truncate relay: the TRUNCATE of one partition of a mirrored root, applied where it happened. */
    const relayed = (rel: RelationEntry, tuple: TupleValue[]): void | Promise<void> => {
      if (batcher.openLsn === null) return;
      const row = parseRelayRow(
        rel.msg!.columns.map((c) => c.name),
        tuple,
      );
      if (!row) return;
      return pipeline
        .serial(() => relations.bySource(row.root))
        .then((root) =>
          withEntry(root, (t) => {
            if (emptied.has(t.label)) return;
            const partition = displayQualified(row.partition);
            if (row.hashed)
              throw new Fault(
                'drift',
                `partition ${partition} of ${displayQualified(row.root)} was truncated on its own: its rows are still on ${t.label}, and a hash partition's rows cannot be told apart there`,
                'MR164',
                `copy ${t.label} again with \`mirrors apply --replace ${tableAddress(m.name, t)}\` under resync_strategy truncate (docs/diagnostics.md#mr164)`,
              );
            add({ op: 'truncate_partition', table: t, partition, bound: row.bound });
          }),
        );
    };

    const keyOnly = (t: TargetTable, tuple: TupleValue[]) => tuple.map((v, i) => (t.key.includes(i) ? v : undefined));
    /** A change to apply: the merge under way sees it first. */
    const add = (c: Change) => {
      if (c.op === 'truncate') for (const t of c.tables) emptied.add(t.label);
      else emptied.delete(c.table.label);
      if (deferring) {
        for (const t of c.op === 'truncate' ? c.tables : [c.table])
          batcher.add({ op: 'defer', table: t, change: encodeChange(c, t) });
        return;
      }
      merges.note(openXid, c);
      batcher.add(c);
    };

    /** Synchronous for every message but a Relation, a table still being copied, or a full pipeline. */
    /** The open transaction carries a promotion's fence message (apply/promotion.ts). */
    let fenceInTransaction = false;
    const onMessage = (msg: PgoutputMessage): void | Promise<void> => {
      if (this.stopping) return;
      if (!this.streamed) this.startedStreaming();
      switch (msg.tag) {
        case 'begin': {
          // Every transaction before this one is in hand: a merge chunk waiting for a watermark before it goes now.
          merges.passed(msg.finalLsn);
          const replayed = copiesDone();
          if (replayed) return replayed.then(() => onMessage(msg));
          const held = verifyHold.at(msg.finalLsn);
          if (held) return held.then(() => onMessage(msg));
          // Invariant 5: skip every transaction whose commit is before what the catalog says is applied.
          batcher.begin(msg.finalLsn, msg.commitTime, mem.appliedEnd);
          openXid = msg.xid;
          emptied.clear();
          if (batcher.openLsn !== null) merges.began(msg.xid);
          return;
        }
        case 'relation':
          // What came before commits first: a Relation that does not fit ends the session right here, before
          // the transaction that carries it.
          flush();
          return pipeline.serial(() => relations.learn(msg, batcher.openLsn));
        case 'insert': {
          const rel = relations.get(msg.relationOid);
          if (rel?.relay) return relayed(rel, msg.newTuple);
          return withTable(msg.relationOid, (t) => add({ op: 'insert', table: t, row: msg.newTuple }));
        }
        case 'update':
          return withTable(msg.relationOid, (t) => {
            const old = msg.oldTuple ?? (msg.keyTuple ? keyOnly(t, msg.keyTuple) : undefined);
            add({ op: 'update', table: t, row: msg.newTuple, old, oldIsFull: !!msg.oldTuple });
          });
        case 'delete':
          return withTable(msg.relationOid, (t) => {
            const old = msg.oldTuple ?? keyOnly(t, msg.keyTuple ?? []);
            add({ op: 'delete', table: t, old, oldIsFull: !!msg.oldTuple });
          });
        case 'truncate': {
          const tables: TargetTable[] = [];
          const collect = async () => {
            for (const oid of msg.relationOids)
              await withTable(oid, (t) => (deferring ? add({ op: 'truncate', tables: [t] }) : tables.push(t)));
            if (tables.length) add({ op: 'truncate', tables });
          };
          return collect();
        }
        case 'commit': {
          const full = batcher.commit(msg.endLsn);
          lastCommitAt = Date.now();
          // A promotion waits for this position (its fence marker): no batching delay.
          const awaited = fenceInTransaction;
          fenceInTransaction = false;
          if (full || awaited) {
            flush();
            return pipeline.room();
          }
          // A sync mirror holds up the source's commit until it applied it: each commit goes at once while the
          // destination is free; what commits while a batch applies goes together the moment it is done (no
          // batching delay beyond the queue, and one destination commit per source commit only when idle).
          if (m.mode === 'sync') {
            if (pipeline.idle) {
              flush();
              return pipeline.room();
            }
            flushOnceIdle();
            return;
          }
          if (batcher.size) armIdleTimer();
          return;
        }
        case 'message':
          if (msg.transactional && msg.prefix.startsWith(FENCE_MESSAGE_PREFIX)) fenceInTransaction = true;
          // A merge's watermark (or anyone's message outside a transaction): everything before it is in hand.
          if (msg.transactional) return;
          merges.passed(msg.lsn);
          return batcher.inTransaction ? undefined : verifyHold.at(msg.lsn);
        default:
          return; // origin, type: nothing to apply
      }
    };

    const onKeepalive = (walEnd: bigint, sentAt: number): void | Promise<void> => {
      if (!this.streamed) this.startedStreaming();
      if (walEnd > (mem.sourceLsn ?? 0n)) mem.sourceLsn = walEnd;
      // After a stop request onMessage ignores what arrives, so "everything before walEnd is handled" no
      // longer holds; inside a transaction it does not hold either.
      if (this.stopping || batcher.inTransaction) return;
      merges.passed(walEnd);
      // An idle stream: a table whose copy ended is brought up to date now, not at the next transaction.
      const replayed = copiesDone();
      if (replayed) return replayed.then(() => onKeepalive(walEnd, sentAt));
      const held = verifyHold.at(walEnd);
      if (held) return held.then(() => onKeepalive(walEnd, sentAt));
      const ka = { walEnd, sentAt };
      if (!batcher.size) {
        caughtUp(ka);
        return;
      }
      keepaliveAfterBatch = ka;
      if (pipeline.idle) {
        flush();
        return pipeline.room();
      }
      // The destination is busy: let the batch grow (to max_batch_size) instead of queueing a small one per
      // keepalive, and send it when the destination is free.
      flushOnceIdle();
    };

    let probing = false;
    // Not through the pipeline: pings and timeouts must keep working while a batch runs.
    this.timers.push(
      setInterval(() => {
        void stream.feedback(lastAcked, true).catch((e) => this.end(e, 'source'));
        if (stream.silentForMs() > RECEIVE_TIMEOUT_MS)
          this.end(
            new Fault(
              'transient',
              `the source sent nothing for ${RECEIVE_TIMEOUT_MS / 1000} s (no data, no keepalive): reconnecting`,
              'RECEIVE_TIMEOUT',
            ),
            'source',
          );
        if (pipeline.busyForMs() > PROBE_AFTER_MS && !probing) {
          probing = true;
          probeSession(ctx.config.peers[m.destination], this.backendPid)
            .then((lost) => {
              if (!lost) return;
              this.end(
                new Fault('transient', `the destination ${lost}: the lease is lost; reconnecting`, 'LEASE_LOST'),
              );
              destroyClient(dst);
            })
            .finally(() => (probing = false));
        }
      }, PING_MS),
    );
    let heartbeatBusy = false;
    this.timers.push(
      setInterval(() => {
        // Not once stopping: the shutdown writes the last status (Stopped), which a later beat must not undo.
        if (heartbeatBusy || pipeline.failed || this.stopping) return;
        heartbeatBusy = true;
        const facts = mem.lagFacts();
        if (this.streamed && !this.holdFailed) {
          const lag = lagMs(facts, Date.now());
          ctx.setStatus(lag !== null && lag > m.lag_threshold_ms ? 'Degraded' : 'Following');
        }
        const behind = facts.pendingSinceMs === null ? null : new Date(facts.pendingSinceMs);
        const caught = facts.caughtUpAtMs === null ? null : new Date(facts.caughtUpAtMs);
        pipeline
          .serial(() => W.recordHeartbeat(dst, m.name, ctx.status(), behind, caught))
          .then((orders) => {
            const why = ordersEnd(m.name, orders);
            if (why) this.end(why);
          })
          .catch((e) => this.end(e))
          .finally(() => (heartbeatBusy = false));
      }, HEARTBEAT_MS),
    );
    // The record a promotion without the source needs starts now, not a monitor tick later.
    let monitoring = true;
    void recorder.beat(reading).finally(() => (monitoring = false));
    this.timers.push(
      setInterval(() => {
        if (monitoring) return; // one at a time: a source that does not answer must not pile up queries
        monitoring = true;
        monitor
          .slot(state.slot)
          .then(
            (r) => {
              this.noteSlot(r);
              return recorder.beat(r);
            },
            () => {}, // the stream reports a source that is gone; this is only for figures
          )
          .finally(() => (monitoring = false));
      }, MONITOR_MS),
    );

    let verifySeen: string | null = null;
    this.timers.push(
      setInterval(() => {
        pipeline.serial(() => checkGuards(dst, m.name)).catch((e) => this.end(e));
        // A run announced while this session was not listening yet; the last `mirrors verify`, for the metrics.
        pipeline.serial(() => verifyHold.poll()).catch(() => {});
        pipeline
          .serial(() => V.lastVerify(dst, m.name))
          .then((v) => {
            if (!v || v.id === verifySeen) return;
            verifySeen = v.id;
            ctx.events.verify?.(m.name, {
              finishedAtMs: Date.parse(v.finishedAt),
              tablesDiffering: v.tablesDiffering,
              holdMs: v.holdMs,
            });
          })
          .catch(() => {}); // the heartbeat reports a destination that is gone
      }, GUARD_CHECK_MS),
    );
    // A copy recorded while the stream is idle (no transaction begins, keepalives are seconds apart): its deferred
    // changes are replayed within a second all the same, between transactions.
    this.timers.push(
      setInterval(() => {
        if (this.stopping || batcher.inTransaction || pipeline.failed) return;
        copiesDone()?.catch((e) => this.end(e));
      }, POLL_MS),
    );
    // A partition created on the source gets the truncate relay's trigger within seconds (diff/truncate-relay.ts).
    let relaying = false;
    this.timers.push(
      setInterval(() => {
        if (relaying || this.stopping) return;
        relaying = true;
        pipeline
          .serial(() => W.loadMirrorState(dst, m.name))
          .then((now) =>
            monitor.relayNewLeaves(
              m.name,
              (now?.tables ?? []).map((t) => ({ schema: t.sourceSchema, name: t.sourceTable })),
              (leaf, err) =>
                ctx.log(
                  'warn',
                  `mirror ${m.name}: cannot relay TRUNCATEs of new partition ${displayQualified(leaf)} yet: ${(err as Error).message}`,
                  { mirror: m.name },
                ),
            ),
          )
          .then((leaves) => {
            for (const leaf of leaves)
              ctx.log('info', `mirror ${m.name}: relaying TRUNCATEs of new partition ${displayQualified(leaf)}`, {
                mirror: m.name,
              });
          })
          .catch(() => {}) // the stream reports a source or destination that is gone
          .finally(() => (relaying = false));
      }, GUARD_CHECK_MS),
    );

    // Changes an earlier session deferred: replayed now for a table whose copy is recorded (a batch refuses to write
    // it before), watched for one still being copied.
    await this.race(
      pipeline.serial(async () => {
        for (const t of await W.deferredTables(dst, m.name)) {
          const rel = await relations.bySource({ schema: t.sourceSchema, name: t.sourceTable });
          if (!rel) continue;
          if (t.state === 'ready') await replay(rel);
          else copying.set(rel.target!.label, rel);
        }
      }),
    );

    const streaming = stream.start(applied).then(() => {
      throw new Fault('transient', 'the source ended the replication stream');
    });
    void merges.run().catch((e) => this.end(e, 'source'));
    try {
      await Promise.race([streaming, this.ended]);
    } catch (err) {
      if (!(err instanceof Stop)) throw err;
      // Shutdown: finish the batches in hand (whole transactions only), commit, acknowledge.
      if (idleTimer) clearTimeout(idleTimer);
      batcher.discardOpen();
      keepaliveAfterBatch = null;
      const txns = batcher.take();
      const finished = pipeline.failed ? false : await finishInHand(pipeline, txns, SHUTDOWN_GRACE_MS);
      if (finished) await stream.feedback(mem.appliedEnd).catch(() => {});
      // Say so: mirrors.lag() gives a stopped worker no grace (its lag counts from now on).
      if (finished) {
        const f = mem.lagFacts();
        await withTimeout(
          W.recordHeartbeat(
            dst,
            m.name,
            'Stopped',
            f.pendingSinceMs === null ? null : new Date(f.pendingSinceMs),
            f.caughtUpAtMs === null ? null : new Date(f.caughtUpAtMs),
          ),
          1_000,
        ).catch(() => {});
      }
      if (!finished)
        ctx.log(
          'warn',
          `mirror ${m.name}: the destination did not commit the last batch in time; it is not acknowledged`,
          {
            mirror: m.name,
          },
        );
      mem.carriedPendingMs = minOf(mem.carriedPendingMs, pipeline.oldestCommitMs());
    } finally {
      if (idleTimer) clearTimeout(idleTimer);
      const carried = mem.lagFacts();
      mem.carriedPendingMs = carried.pendingSinceMs;
      mem.lagFacts = () => ({ pendingSinceMs: mem.carriedPendingMs, caughtUpAtMs: mem.caughtUpAtMs });
    }
  }

  /** "Following" only once the source has sent something: both connections are up and streaming. */
  private startedStreaming() {
    this.streamed = true;
    if (this.holdFailed) return;
    this.ctx.memory.progressAt = Date.now();
    this.ctx.log('info', `mirror ${this.name}: streaming from ${bigIntToLsn(this.ctx.memory.appliedEnd)}`, {
      mirror: this.name,
    });
    this.ctx.setStatus('Following');
  }

  private noteSlot(r: SourceSlotReading) {
    this.ctx.memory.sourceLsn = lsnToBigInt(r.currentLsn);
    this.ctx.events.slot?.(this.name, {
      exists: r.exists,
      walStatus: r.walStatus,
      retainedBytes: r.retainedBytes === null ? null : BigInt(r.retainedBytes),
      syncState: this.ctx.mirror.mode === 'sync' ? r.syncState : undefined,
    });
  }
}

/**
 * A mirror whose guard is gone can be written by anyone and silently differ from its source; one whose guard
 * fires for the worker cannot be applied: either way a person must act (`mirrors plan` shows the repair).
 */
async function checkGuards(dst: pg.Client, mirror: string) {
  const bad = await W.unguardedTables(dst, mirror, GUARD_TRIGGER);
  if (bad.length)
    throw new Fault(
      'drift',
      `the read-only guard of ${bad.join(', ')} is missing or not in its normal state`,
      'MR159',
      'run `mirrors plan` and `mirrors apply`: they put the guard back (or `ALTER TABLE ... ENABLE TRIGGER mirrors_read_only`)',
    );
}

/**
 * From a fresh connection: why the worker's destination session (backend `pid`) no longer holds the lease,
 * or null while it is alive (a slow statement is not a lost session).
 */
async function probeSession(peer: Peer, pid: number): Promise<string | null> {
  let c: pg.Client | undefined;
  try {
    c = await connectPeer(peer, {
      applicationName: 'mirrors run (probe)',
      connectTimeoutMs: PROBE_CONNECT_TIMEOUT_MS,
      options: '-c statement_timeout=5000',
    });
    const r = await c.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1::int', [pid]);
    return r.rows.length ? null : `ended the worker's session (pid ${pid})`;
  } catch (err) {
    return `cannot be reached (${err instanceof Error ? err.message : String(err)})`;
  } finally {
    if (c) await endClient(c);
  }
}

/** What the catalog's answer to a heartbeat orders: nothing (null), or why the session must end. */
function ordersEnd(mirror: string, o: W.CatalogOrders | null): Fault | null {
  if (!o) return new Fault('catalog_changed', `mirror ${mirror} is no longer in the catalog`);
  if (o.promoted) return new Fault('promoted', `mirror ${mirror} is promoted`);
  if (o.phase !== 'ready')
    return new Fault('catalog_changed', `mirror ${mirror} is no longer streaming (phase ${o.phase})`);
  if (o.paused) return new Fault('paused', `mirror ${mirror} is paused`);
  return null;
}

async function finishInHand(pipeline: ApplyPipeline, txns: SourceTransaction[], ms: number): Promise<boolean> {
  pipeline.dispatch(txns);
  return pipeline.drain(ms);
}

function minOf(...xs: (number | null)[]): number | null {
  let out: number | null = null;
  for (const x of xs) if (x !== null && (out === null || x < out)) out = x;
  return out;
}

function destroyClient(c: pg.Client) {
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** Ends a client; one whose server does not answer (black-holed) is cut after a second. */
async function endClient(c: pg.Client) {
  const timer = setTimeout(() => destroyClient(c), 1_000);
  await c.end().catch(() => {});
  clearTimeout(timer);
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms))),
  ]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
