/**
 * Lock first, then look: an apply takes the lock of every mirror it covers before it inspects the peers,
 * and plans (or checks a saved plan) with the locks held, so two applies can never both act on what
 * either saw before the other changed it. A plan that turns out to cover more mirrors (a destroy found in
 * a catalog) takes their locks too and is made again, until the plan and the locks agree.
 */
import type { Config } from '../config/types.js';
import { buildPlan, type PlanOptions } from '../diff/build.js';
import { inspect } from '../inspect/index.js';
import type { Plan, PlannedMirror } from '../plan/types.js';
import { acquireMirrorLock, type MirrorLock } from './lock.js';

export interface SessionOptions {
  lockTimeoutMs: number;
  /** The command line, recorded with each lock. */
  command: string;
  onLockWait?: (mirror: string, holder: string) => void;
}

/** Re-plans after taking newly found locks; a plan still growing after this many rounds is refused. */
const MAX_ROUNDS = 4;

export class LockedSession {
  private readonly locks = new Map<string, MirrorLock>();

  constructor(
    private readonly config: Config,
    private readonly opts: SessionOptions,
  ) {}

  /** Takes the locks not yet held, in name order (two applies over the same mirrors wait, never deadlock). */
  async lock(mirrors: Pick<PlannedMirror, 'name' | 'destination'>[]) {
    for (const m of [...mirrors].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (this.locks.has(m.name)) continue;
      const peer = this.config.peers[m.destination];
      if (!peer) continue; // a destination no longer declared: the plan reports it (MR142)
      this.locks.set(
        m.name,
        await acquireMirrorLock(peer, m.name, this.opts.command, this.opts.lockTimeoutMs, (holder) =>
          this.opts.onLockWait?.(m.name, holder),
        ),
      );
    }
  }

  /** Inspects and plans with every covered mirror's lock held. */
  async plan(opts: PlanOptions): Promise<Plan> {
    const declared = (opts.selected ?? Object.keys(this.config.mirrors))
      .map((name) => this.config.mirrors[name])
      .filter((m) => m !== undefined);
    await this.lock(declared);
    for (let round = 0; ; round++) {
      const { live } = await inspect(this.config, opts.selected);
      const plan = buildPlan(this.config, live, opts);
      const missing = plan.mirrors.filter((m) => !this.locks.has(m.name) && this.config.peers[m.destination]);
      if (missing.length === 0) return plan;
      if (round === MAX_ROUNDS) throw new Error('internal: the mirrors a plan covers keep changing');
      await this.lock(missing);
    }
  }

  /** Records the holders once the catalog exists (its first migration creates mirrors.locks). */
  async recordHolders() {
    for (const l of this.locks.values()) await l.recordHolder().catch(() => {});
  }

  async release() {
    for (const l of this.locks.values()) await l.release();
    this.locks.clear();
  }
}
