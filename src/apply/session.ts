/**
 * Lock first, then look: an apply takes the lock of every mirror it covers before it inspects the peers,
 * and plans (or checks a saved plan) with the locks held, so two applies can never both act on what either
 * saw before the other changed it. A plan that turns out to cover more mirrors (a destroy found in a catalog)
 * releases every lock and takes the whole set again, in name order, then plans again, until the plan and the
 * locks agree: locks are always taken in one global order, so two applies wait for each other, never on each other.
 */
import type { Config } from '../config/types.js';
import { buildPlan, type PlanOptions } from '../diff/build.js';
import { inspect } from '../inspect/index.js';
import type { Plan, PlannedMirror } from '../plan/types.js';
import { PeerLocks } from './lock.js';

export interface SessionOptions {
  lockTimeoutMs: number;
  /** The command line, recorded with each lock. */
  command: string;
  onLockWait?: (mirror: string, holder: string) => void;
}

type Lockable = Pick<PlannedMirror, 'name' | 'destination'>;

/** A plan still growing after this many rounds is a bug. */
const MAX_ROUNDS = 4;

export class LockedSession {
  /** One lock connection per destination peer. */
  private readonly peers = new Map<string, PeerLocks>();

  constructor(
    private readonly config: Config,
    private readonly opts: SessionOptions,
  ) {}

  private holds(m: Lockable): boolean {
    return this.peers.get(m.destination)?.has(m.name) ?? false;
  }

  /** Takes the locks of these mirrors, in name order, after releasing any held (one global order). */
  async lock(mirrors: Lockable[]) {
    await this.release();
    const unique = new Map(mirrors.map((m) => [`${m.name}\u0000${m.destination}`, m]));
    for (const m of [...unique.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const peer = this.config.peers[m.destination];
      if (!peer) continue; // a destination no longer declared: the plan reports it (MR142)
      let locks = this.peers.get(m.destination);
      if (!locks) {
        locks = await PeerLocks.open(peer, this.opts.command);
        this.peers.set(m.destination, locks);
      }
      await locks.acquire(m.name, this.opts.lockTimeoutMs, (holder) => this.opts.onLockWait?.(m.name, holder));
    }
  }

  /** Inspects and plans with every covered mirror's lock held. */
  async plan(opts: PlanOptions, alsoLock: Lockable[] = []): Promise<Plan> {
    let wanted: Lockable[] = [
      ...alsoLock,
      ...(opts.selected ?? Object.keys(this.config.mirrors))
        .map((name) => this.config.mirrors[name])
        .filter((m) => m !== undefined),
    ];
    if (wanted.some((m) => !this.holds(m) && this.config.peers[m.destination])) await this.lock(wanted);
    for (let round = 0; ; round++) {
      const { live } = await inspect(this.config, opts.selected);
      const plan = buildPlan(this.config, live, opts);
      const missing = plan.mirrors.filter((m) => !this.holds(m) && this.config.peers[m.destination]);
      if (missing.length === 0) return plan;
      if (round === MAX_ROUNDS) throw new Error('internal: the mirrors a plan covers keep changing');
      wanted = [...wanted, ...missing];
      await this.lock(wanted);
    }
  }

  /** Records the holders once the catalog exists (its first migration creates mirrors.locks). */
  async recordHolders() {
    for (const l of this.peers.values()) await l.recordHolders();
  }

  async release() {
    for (const l of this.peers.values()) await l.close();
    this.peers.clear();
  }
}
