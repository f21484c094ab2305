/**
 * The apply pipeline of one session: every use of the destination connection goes through one ordered
 * chain (batches commit in the order they were dispatched), at most `maxInFlight` batches wait in it (the
 * stream stops reading the source beyond that: DESIGN.md invariant 8), and after a failure nothing else
 * runs (a later batch must never commit after a failed one).
 */
import type { SourceTransaction } from './changes.js';

export class ApplyPipeline {
  private chain: Promise<unknown> = Promise.resolve();
  /** Oldest commit time of each batch dispatched and not yet committed, in order. */
  private inFlight: number[] = [];
  private roomWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private dead = false;
  /** performance.now() when the job now running started, or null between jobs. */
  private jobStartedAt: number | null = null;

  constructor(
    private maxInFlight: number,
    private apply: (txns: SourceTransaction[]) => Promise<void>,
    private onFailure: (err: unknown) => void,
  ) {}

  /** Runs `fn` after everything queued before it; rejects without running it once the pipeline failed. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(async () => {
      if (this.dead) throw new PipelineStopped();
      this.jobStartedAt = performance.now();
      try {
        return await fn();
      } finally {
        this.jobStartedAt = null;
      }
    });
    this.chain = p.catch(() => {});
    return p;
  }

  /** Queues a batch and returns at once: the stream decodes the next batch while this one applies. */
  dispatch(txns: SourceTransaction[]): void {
    if (!txns.length) return;
    this.inFlight.push(txns[0].commitTimeMs);
    const done = () => {
      this.inFlight.shift();
      for (const wake of this.roomWaiters.splice(0)) wake();
      if (!this.inFlight.length) for (const wake of this.idleWaiters.splice(0)) wake();
    };
    this.serial(() => this.apply(txns)).then(done, (err) => {
      done();
      this.fail(err);
    });
  }

  /** Marks the pipeline failed: queued work is abandoned, uncommitted and unacknowledged. */
  fail(err: unknown): void {
    if (!(err instanceof PipelineStopped)) this.onFailure(err);
    this.dead = true;
  }

  get failed(): boolean {
    return this.dead;
  }

  /** Whether no batch is waiting for the destination. */
  get idle(): boolean {
    return this.inFlight.length === 0;
  }

  /** Backpressure: resolves once fewer than maxInFlight batches wait (undefined when there is room now). */
  room(): void | Promise<void> {
    if (this.inFlight.length < this.maxInFlight || this.dead) return;
    return new Promise<void>((wake) => this.roomWaiters.push(wake)).then(() => this.room());
  }

  /** Resolves when no batch waits any more (or the pipeline failed). */
  whenIdle(): Promise<void> {
    if (this.idle || this.dead) return Promise.resolve();
    return new Promise((wake) => this.idleWaiters.push(wake));
  }

  /** Commit time of the oldest batch not yet committed, or null. */
  oldestCommitMs(): number | null {
    return this.inFlight.length ? this.inFlight[0] : null;
  }

  /** How long the destination has been working on the current job (0 between jobs). */
  busyForMs(): number {
    return this.jobStartedAt === null ? 0 : performance.now() - this.jobStartedAt;
  }

  /** Waits for everything queued, at most `ms`: true when it all finished. */
  async drain(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const finished = this.chain.then(() => true as const);
    const r = await Promise.race([finished, timeout]);
    clearTimeout(timer);
    return r;
  }
}

/** What queued work gets once the pipeline has failed. */
class PipelineStopped extends Error {
  constructor() {
    super('the apply pipeline stopped');
  }
}
