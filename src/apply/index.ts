/**
 * apply: runs a plan's actions in order against the live peers. Takes every mirror's lock first,
 * journals each action's outcome in the catalog, stops at the first failure (everything before it stays
 * done and consistent; the next plan picks up from there). Never prints: it reports events.
 */
import type { Config } from '../config/types.js';
import { MirrorsError, pgFields } from '../errors.js';
import type { Plan } from '../plan/types.js';
import { ApplyContext } from './context.js';
import { executeAction } from './actions.js';
import { acquireMirrorLock, type MirrorLock } from './lock.js';
import type { Reporter } from './events.js';

export interface ApplyOptions {
  reporter: Reporter;
  lockTimeoutMs: number;
  /** The command line, recorded with locks and journal rows. */
  command: string;
}

export interface ApplyResult {
  done: number;
  total: number;
}

export async function applyPlan(config: Config, plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const ctx = new ApplyContext(config, plan, opts.reporter, opts.command);
  const locks: MirrorLock[] = [];
  let done = 0;
  try {
    for (const mirror of [...plan.mirrors].sort()) {
      locks.push(
        await acquireMirrorLock(ctx.peer(ctx.destinationOf(mirror)), mirror, opts.command, opts.lockTimeoutMs, (holder) =>
          opts.reporter({ type: 'lock_wait', mirror, holder }),
        ),
      );
    }
    const total = plan.actions.length;
    for (const [i, action] of plan.actions.entries()) {
      opts.reporter({ type: 'action_start', action, index: i, total });
      const t0 = performance.now();
      try {
        await executeAction(ctx, action);
      } catch (err) {
        const pg = pgFields(err);
        const message = err instanceof Error ? err.message : String(err);
        opts.reporter({ type: 'action_failed', action, index: i, total, message, pg });
        await ctx.journal(action, 'failed', { message, ...pg }).catch(() => {});
        throw new MirrorsError('APPLY_FAILED', `${action.address}: ${message}`, {
          hint: err instanceof MirrorsError && err.hint ? err.hint : `${done} of ${total} actions were applied; fix the cause and run \`mirrors plan\` to see what remains`,
          pg,
          cause: err,
        });
      }
      await ctx.journal(action, 'done');
      if (action.kind === 'catalog') for (const l of locks) await l.recordHolder().catch(() => {});
      done++;
      opts.reporter({ type: 'action_done', action, index: i, total, ms: performance.now() - t0 });
    }
    return { done, total };
  } finally {
    await ctx.close();
    for (const l of locks) await l.release();
  }
}
