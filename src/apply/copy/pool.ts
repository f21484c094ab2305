/**
 * Workers: a fixed set of slots, each with its own (lazily opened) source and destination connection,
 * handed out first come, first served.
 *
 * Owns: the slots and every connection put in them, until closeAll() has ended each one.
 * Must not: open connections (connections.ts does, when the scheduler first needs one) or decide what runs on them.
 */
import type pg from 'pg';

export interface Worker {
  src?: Promise<pg.Client>;
  dst?: Promise<pg.Client>;
}

export class WorkerPool {
  private readonly all: Worker[];
  private readonly free: Worker[];
  private readonly waiters: { resolve(w: Worker): void; reject(e: unknown): void }[] = [];
  /** Every connection's end() so far: each closeAll() waits for all of them. */
  private readonly closing: Promise<unknown>[] = [];

  constructor(
    size: number,
    private readonly signal: AbortSignal,
  ) {
    this.all = Array.from({ length: size }, () => ({}));
    this.free = [...this.all].reverse();
    signal.addEventListener('abort', () => {
      for (const w of this.waiters.splice(0)) w.reject(signal.reason);
    });
  }

  /** FIFO: a lane that finished a part queues behind the others, so tables take turns. */
  acquire(): Promise<Worker> {
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    const w = this.free.pop();
    if (w) return Promise.resolve(w);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(w: Worker): void {
    const next = this.waiters.shift();
    if (next) next.resolve(w);
    else this.free.push(w);
  }

  /**
   * Ends every connection. With a query in flight pg destroys the socket (the server rolls back and, for a
   * source COPY, stops on the broken pipe); an idle one gets a polite Terminate.
   */
  closeAll(): Promise<void> {
    for (const w of this.all) {
      for (const p of [w.src, w.dst]) if (p) this.closing.push(p.then((c) => c.end()).catch(() => undefined));
      w.src = undefined;
      w.dst = undefined;
    }
    // Every call waits for all ends so far, including those started by an earlier call still in progress.
    return Promise.all(this.closing).then(() => undefined);
  }
}
