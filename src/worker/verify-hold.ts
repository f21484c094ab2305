/**
 * The worker's side of `mirrors verify` (cli/verify.ts, catalog/verify-sql.ts): holding the stream at the one
 * point the run compares at.
 *
 * The run asks (requested); at its next transaction boundary the worker applies what it gathered and applies
 * nothing more (armed) while the run takes an exported snapshot of the source, whose consistent point L it then
 * names (target). Every transaction that committed before L is in that snapshot and none after (a transaction is
 * decoded by a slot exactly when its commit record is at or after the slot's consistent point), so the worker
 * applies the transactions whose commit is before L and holds again at the first boundary at or past L: a
 * Begin whose commit is at or past L, or, idle, a keepalive or a message from there (held). The run opens its
 * destination snapshot then and releases the worker; both sides are hashed at leisure afterwards.
 *
 * Holding before L is known is what makes L safe: were the worker streaming while the slot is made, it could
 * apply a transaction that commits after L before it learns L. Each hold lasts a few seconds at most: a run that
 * does not answer is abandoned and the stream goes on.
 */
import * as V from '../catalog/verify-sql.js';
import type { Queryable } from '../db/tx.js';
import { bigIntToLsn, lsnToBigInt } from '../db/lsn.js';

/** How often a hold looks for the run's next step (a hold at the point costs the destination this much). */
const ARMED_POLL_MS = 10;
const HELD_POLL_MS = 2;
/** A run that takes longer than this to answer is abandoned: the worker streams on (the run then fails). */
export const MAX_HOLD_MS = 10_000;

export interface HoldHooks {
  mirror: string;
  dst: Queryable;
  /** Runs `fn` on the destination connection after every batch handed over so far (the session's pipeline). */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** Hands everything gathered so far to the pipeline (the session's flush). */
  flush(): void;
  /** End of the last commit applied. */
  appliedEnd(): bigint;
  /** Rejects when the session ends. */
  sleep(ms: number): Promise<void>;
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void;
}

export class VerifyHold {
  private run: V.VerifyRun | null = null;

  constructor(private h: HoldHooks) {}

  /** Looks for a run waiting for this worker (the heartbeat calls it, on the destination connection). */
  async poll(): Promise<void> {
    if (!this.run) this.run = await V.pendingVerify(this.h.dst, this.h.mirror);
  }

  /**
   * At a transaction boundary: nothing of an open transaction is gathered, and every transaction that commits
   * before `lsn` is in hand. Returns a promise when the stream must wait here.
   */
  at(lsn: bigint): Promise<void> | undefined {
    const r = this.run;
    if (!r) return;
    if (r.state === 'requested') {
      this.h.flush();
      return this.h.serial(() => this.arm(r));
    }
    if (r.state === 'target' && r.targetLsn && lsn >= lsnToBigInt(r.targetLsn)) {
      this.h.flush();
      return this.h.serial(() => this.hold(r));
    }
  }

  /** Runs after every batch before it committed: applies nothing until the run names its point. */
  private async arm(r: V.VerifyRun): Promise<void> {
    const position = bigIntToLsn(this.h.appliedEnd());
    if (!(await V.advanceVerify(this.h.dst, r.id, 'requested', 'armed', { held_lsn: position }))) {
      this.run = null;
      return;
    }
    const next = await this.wait(r, 'armed', 'target', ARMED_POLL_MS);
    if (!next) return;
    await V.advanceVerify(this.h.dst, r.id, 'target', 'target', { arm_ms: next.ms });
    this.run = next.run;
  }

  /** Every transaction before the point is applied: holds until the run has its destination snapshot. */
  private async hold(r: V.VerifyRun): Promise<void> {
    this.run = null;
    const position = bigIntToLsn(this.h.appliedEnd());
    if (!(await V.advanceVerify(this.h.dst, r.id, 'target', 'held', { held_lsn: position }))) return;
    const next = await this.wait(r, 'held', 'released', HELD_POLL_MS);
    if (!next) return;
    await V.advanceVerify(this.h.dst, r.id, 'released', 'released', { hold_ms: next.ms });
    this.h.log('info', `verify run ${r.id}: held ${next.ms.toFixed(1)} ms at ${position}`, {
      mirror: this.h.mirror,
      verify: r.id,
      holdMs: next.ms,
      lsn: position,
    });
  }

  /**
   * Polls the run while it is in `state` until the run moves it to `to`: the run and how long that took; null (the
   * run abandoned) when it moved elsewhere or took longer than MAX_HOLD_MS.
   */
  private async wait(
    r: V.VerifyRun,
    state: V.VerifyState,
    to: V.VerifyState,
    everyMs: number,
  ): Promise<{ run: V.VerifyRun; ms: number } | null> {
    const t0 = performance.now();
    for (;;) {
      await this.h.sleep(everyMs);
      const now = await V.readVerify(this.h.dst, r.id);
      const ms = performance.now() - t0;
      if (now?.state === to) return { run: now, ms };
      if (now?.state !== state || ms > MAX_HOLD_MS) {
        await this.abandon(r, state, ms);
        return null;
      }
    }
  }

  private async abandon(r: V.VerifyRun, from: V.VerifyState, ms: number): Promise<void> {
    this.run = null;
    await V.advanceVerify(this.h.dst, r.id, from, 'abandoned');
    this.h.log('warn', `verify run ${r.id} did not answer within ${Math.round(ms)} ms: streaming on without it`, {
      mirror: this.h.mirror,
      verify: r.id,
    });
  }
}
