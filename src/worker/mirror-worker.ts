/**
 * One mirror's streaming worker: runs sessions (session.ts) one after another and decides, from why each
 * ended (faults.ts), what comes next: reconnect with a short capped backoff, restart from the catalog, wait
 * while paused, report Failed and retry slowly, or stop for good once promoted. Owns the mirror's status and
 * the one log line per change of it.
 */
import type { TableCounts } from '../catalog/worker-sql.js';
import type { Config, Mirror } from '../config/types.js';
import { pgFields } from '../errors.js';
import { type Fault, type FaultKind, needsPerson } from './faults.js';
import { lagMs } from './lag.js';
import { runSession, sleep, type WorkerMemory } from './session.js';
import type { SlotReading } from './metrics.js';

export type WorkerStatus =
  | 'Starting'
  | 'Standby'
  | 'Bootstrapping'
  | 'Following'
  | 'Degraded'
  | 'Disconnected'
  | 'Paused'
  | 'Failed'
  | 'Promoted'
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
      lsn: bigint;
      commitTimeMs: number;
      counts: TableCounts;
      exactOrder: boolean;
      missingRows: number;
    },
  ): void;
  fault?(mirror: string, kind: FaultKind, peer: 'source' | 'destination'): void;
  slot?(mirror: string, s: SlotReading): void;
  /** Snapshot progress while `mirrors apply` copies the mirror's tables (from the catalog). */
  snapshot?(mirror: string, done: bigint, total: bigint): void;
  /** The last finished `mirrors verify` of the mirror, when the worker sees a new one (from the catalog). */
  verify?(mirror: string, v: { finishedAtMs: number; tablesDiffering: number; holdMs: number | null }): void;
}

/** Reconnect delays: 250 ms doubling to a cap of 3 s, with jitter; back to the start after a session streamed. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_CAP_MS = 3_000;
/** A mirror that needs a person and could not wait in its session (no lease) is retried this often. */
const FAILED_RETRY_MS = 5_000;
/** Following and Degraded may alternate every second under load: log such flips at most this often. */
const FLIP_LOG_MS = 30_000;
/** The same transient error, again and again: logged at most this often (with a count). */
const REPEAT_LOG_MS = 60_000;

export class MirrorWorker {
  status: WorkerStatus = 'Starting';
  private memory: WorkerMemory = {
    appliedEnd: 0n,
    carriedPendingMs: null,
    caughtUpAtMs: null,
    sourceLsn: null,
    progressAt: null,
    lagFacts: () => ({ pendingSinceMs: this.memory.carriedPendingMs, caughtUpAtMs: this.memory.caughtUpAtMs }),
  };
  private lastFlipLog = 0;
  /** The code of the failure the mirror is in, to say when it is over. */
  private failedWith: string | null = null;
  private flipsUnlogged = 0;
  private lastError = { text: '', at: 0, repeats: 0 };

  constructor(
    private config: Config,
    readonly mirror: Mirror,
    private events: WorkerEvents,
    private signal: AbortSignal,
  ) {}

  /** Milliseconds behind the source now (grows while nothing moves), null until anything was received. */
  lagMs(nowMs = Date.now()): number | null {
    return lagMs(this.memory.lagFacts(), nowMs);
  }

  /** WAL bytes between the source's current position (as last read) and the applied one; null if unknown. */
  lagBytes(): bigint | null {
    const src = this.memory.sourceLsn;
    if (src === null || this.memory.appliedEnd === 0n) return null;
    return src > this.memory.appliedEnd ? src - this.memory.appliedEnd : 0n;
  }

  /** When (ms epoch) the worker last made progress: streaming started, a batch committed, a position moved. */
  get lastProgressAt(): number | null {
    return this.memory.progressAt;
  }

  /** Whether anything received from the source waits to be applied. */
  pending(): boolean {
    return this.memory.lagFacts().pendingSinceMs !== null;
  }

  private setStatus = (s: WorkerStatus) => {
    if (this.status === s) return;
    const prev = this.status;
    this.status = s;
    this.events.status?.(this.mirror.name, s);
    const flip = (a: WorkerStatus, b: WorkerStatus) =>
      (a === 'Following' && b === 'Degraded') || (a === 'Degraded' && b === 'Following');
    if (flip(prev, s)) {
      if (Date.now() - this.lastFlipLog < FLIP_LOG_MS) {
        this.flipsUnlogged++;
        return;
      }
      this.lastFlipLog = Date.now();
    }
    let more = this.flipsUnlogged ? ` (${this.flipsUnlogged} Following/Degraded changes not logged)` : '';
    if (prev === 'Failed' && this.failedWith && (s === 'Following' || s === 'Degraded')) {
      more += `: ${this.failedWith} is resolved, streaming again`;
      this.failedWith = null;
    }
    this.flipsUnlogged = 0;
    const lag = this.lagMs();
    const detail = s === 'Degraded' && lag !== null ? `: lag ${(lag / 1000).toFixed(1)} s` : '';
    this.events.log('info', `mirror ${this.mirror.name}: ${s}${detail}${more}`, {
      mirror: this.mirror.name,
      status: s,
    });
  };

  private log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) =>
    this.events.log(level, msg, fields);

  /** Runs until the signal aborts or the mirror is promoted. */
  async run(): Promise<void> {
    let attempt = 0;
    while (!this.signal.aborted) {
      const end = await runSession({
        config: this.config,
        mirror: this.mirror,
        events: this.events,
        signal: this.signal,
        memory: this.memory,
        status: () => this.status,
        setStatus: this.setStatus,
        failed: (f) => this.markFailed(f),
        log: this.log,
      });
      if (end.kind === 'stopped' || this.signal.aborted) break;
      const f = end.fault;
      this.events.fault?.(this.mirror.name, f.kind, end.peer);
      if (f.kind === 'promoted') {
        this.setStatus('Promoted');
        this.log('info', `mirror ${this.mirror.name}: promoted; this worker stops streaming it`, {
          mirror: this.mirror.name,
        });
        return;
      }
      if (f.kind === 'catalog_changed') {
        this.log('info', `mirror ${this.mirror.name}: ${f.message}; restarting from the catalog`, {
          mirror: this.mirror.name,
        });
        attempt = 0;
        continue;
      }
      if (f.kind === 'paused') {
        attempt = 0;
        continue; // the next session waits, Paused, until the catalog says otherwise
      }
      if (needsPerson(f.kind)) {
        if (!end.waited) {
          this.markFailed(f);
          await sleep(FAILED_RETRY_MS, this.signal);
        }
        continue;
      }
      if (end.streamed) attempt = 0;
      this.setStatus('Disconnected');
      const delay = backoff(attempt++);
      this.report('warn', f, `reconnecting in ${Math.round(delay)} ms`);
      await sleep(delay, this.signal);
    }
    this.setStatus('Stopped');
  }

  private markFailed(f: Fault) {
    this.setStatus('Failed');
    this.failedWith = f.code ?? f.kind;
    this.report('error', f, `retrying every ${FAILED_RETRY_MS / 1000} s until it is fixed`);
  }

  /** Logs a fault, once per distinct message (repeats at most every REPEAT_LOG_MS, with their count). */
  private report(level: 'warn' | 'error', f: Fault, next: string) {
    const text = `${f.code ? `${f.code} ` : ''}${f.message}`;
    const now = Date.now();
    if (text === this.lastError.text && now - this.lastError.at < REPEAT_LOG_MS) {
      this.lastError.repeats++;
      return;
    }
    const again =
      text === this.lastError.text && this.lastError.repeats ? ` (${this.lastError.repeats} more times)` : '';
    this.lastError = { text, at: now, repeats: 0 };
    this.log(level, `mirror ${this.mirror.name}: ${text}${again}; ${next}`, {
      mirror: this.mirror.name,
      kind: f.kind,
      code: f.code,
      hint: f.hint,
      ...(f.diff ? { diff: f.diff } : {}),
      ...pgFields(f),
    });
    if (f.hint && level === 'error') this.log(level, `  hint: ${f.hint}`, { mirror: this.mirror.name });
  }
}

function backoff(attempt: number): number {
  const base = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}
