/**
 * apply: runs a plan's actions in order against the live peers; the caller holds the mirror locks
 * (session.ts). Journals each action's outcome in the catalog, stops at the first failure (everything
 * before it stays done and consistent; the next plan picks up from there) or when interrupted between
 * actions. Never prints: it reports events.
 */
import type { Config } from '../config/types.js';
import { MirrorsError, pgFields } from '../errors.js';
import type { Plan } from '../plan/types.js';
import { ApplyContext } from './context.js';
import { injectKill } from '../util/inject.js';
import { executeAction } from './executors.js';
import type { Reporter } from './events.js';

export interface ApplyOptions {
  reporter: Reporter;
  /** The command line, recorded with journal rows. */
  command: string;
  /** Aborted (SIGINT, SIGTERM): nothing further starts; a snapshot stops copying (its unfinished tables stay
   *  marked for a copy), any other action in flight finishes. */
  signal?: AbortSignal;
  /** Called once the catalog exists on every destination (lock holder rows can be written). */
  afterCatalog?: () => Promise<void>;
}

export interface ApplyResult {
  done: number;
  total: number;
}

export async function applyPlan(config: Config, plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const ctx = new ApplyContext(config, plan, opts.reporter, opts.command, opts.signal);
  const total = plan.actions.length;
  let done = 0;
  try {
    for (const [i, action] of plan.actions.entries()) {
      if (opts.signal?.aborted) throw interrupted(done, total);
      opts.reporter({ type: 'action_start', action, index: i, total });
      const t0 = performance.now();
      try {
        await executeAction(ctx, action);
      } catch (err) {
        if (opts.signal?.aborted) {
          await ctx.journal(action, 'failed', { message: 'interrupted' }).catch(() => {});
          throw interrupted(done, total, action.address);
        }
        const pg = pgFields(err);
        const message = err instanceof Error ? err.message : String(err);
        opts.reporter({ type: 'action_failed', action, index: i, total, message, pg });
        await ctx.journal(action, 'failed', { message, ...pg }).catch(() => {});
        throw new MirrorsError('APPLY_FAILED', `${action.address}: ${message}`, {
          hint:
            err instanceof MirrorsError && err.hint
              ? err.hint
              : `${done} of ${total} actions were applied; fix the cause and run \`mirrors plan\` to see what remains`,
          pg,
          cause: err,
        });
      }
      await ctx.journal(action, 'done');
      injectKill(action.address);
      if (action.kind === 'catalog') await opts.afterCatalog?.();
      done++;
      opts.reporter({ type: 'action_done', action, index: i, total, ms: performance.now() - t0 });
    }
    return { done, total };
  } finally {
    await ctx.close();
  }
}

function interrupted(done: number, total: number, during?: string): MirrorsError {
  return new MirrorsError(
    'INTERRUPTED',
    `interrupted${during ? ` during ${during}` : ''}: ${done} of ${total} actions were applied` +
      (during
        ? '; the copy stopped, and the tables it had not finished (readers may see them partly filled) are copied again by the next apply'
        : ''),
    {
      hint: 'everything applied is consistent; run `mirrors apply` again to finish (a snapshot resumes with the tables not yet copied)',
      exitCode: 130,
    },
  );
}
