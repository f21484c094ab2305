/**
 * `mirrors apply [PLANFILE]`: lock the mirrors, plan under the locks (or check that the saved plan is
 * exactly what would be planned now), get consent, execute, report. SIGINT/SIGTERM: the action in flight
 * finishes (a snapshot stops copying; its unfinished tables are copied again by the next apply), nothing
 * further starts, exit 130 with what is done and how to resume.
 */
import { createInterface } from 'node:readline/promises';
import kleur from 'kleur';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { hasErrors } from '../diff/build.js';
import { applyPlan } from '../apply/index.js';
import { compareWithFresh, readPlanFile, staleError } from '../apply/saved-plan.js';
import { LockedSession } from '../apply/session.js';
import { MirrorsError } from '../errors.js';
import type { Action, Plan } from '../plan/types.js';
import { renderPlanText } from '../render/text.js';
import { describeLoss } from '../diff/loss.js';
import { CREATED_BY, checkSelection, selection } from './plan.js';
import { jsonReporter, textReporter } from './progress.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export interface ApplyCliOptions {
  config?: string;
  mirror?: string[];
  autoApprove?: boolean;
  allowIrreversible?: boolean;
  allowDataLoss?: boolean;
  lockTimeout?: string;
  format?: 'text' | 'json';
  replace?: string[];
}

export async function applyCommand(planFile: string | undefined, opts: ApplyCliOptions, io: Io): Promise<number> {
  const json = opts.format === 'json';
  const reporter = json ? jsonReporter(io) : textReporter(io, io.stdoutIsTty);
  reporter({ type: 'version', createdBy: CREATED_BY }); // the stream's first line, whatever follows
  const lockTimeoutMs = parseLockTimeout(opts.lockTimeout ?? '0s');
  if (planFile && opts.mirror?.length) {
    throw new MirrorsError('USAGE', '--mirror cannot be combined with a PLANFILE', {
      hint: 'a saved plan applies the mirrors it was made for; make it with `mirrors plan --mirror NAME --out FILE`',
    });
  }
  if (json && !planFile && !opts.autoApprove) {
    // A prompt would interleave with the event stream, as Terraform's -json apply requires -auto-approve.
    throw new MirrorsError('USAGE', 'apply --format json needs --auto-approve or a PLANFILE', {
      hint: 'there is no prompt in a JSON stream: approve with --auto-approve, or apply a reviewed plan file',
    });
  }
  if (planFile && opts.replace?.length)
    throw new MirrorsError('USAGE', '--replace cannot be given with a saved plan', {
      hint: `the saved plan applies exactly what it was planned with: \`mirrors plan --replace ... --out ${planFile}\``,
    });
  const saved = planFile ? readPlanFile(planFile, VERSION) : null;
  const config = await loadConfig({
    // Found as every command finds it (-c, else in the working directory), not at the path of the machine that
    // planned: CI plans and applies in different workspaces.
    configPath: opts.config,
    cwd: process.cwd(),
    env: process.env,
  });
  const selected = saved ? saved.selected : selection(opts.mirror);
  const replace = saved ? (saved.replace ?? []) : (opts.replace ?? []);
  const command = ['mirrors', 'apply', ...(planFile ? [planFile] : [])].join(' ');
  const session = new LockedSession(config, {
    lockTimeoutMs,
    command,
    onLockWait: (mirror, holder) => reporter({ type: 'lock_wait', mirror, holder }),
  });
  const stopSignals = onInterrupt(io);
  try {
    // A saved plan's mirrors are locked with the declared ones before anything is inspected.
    const plan = await session.plan({ selected, createdBy: CREATED_BY, replace }, saved?.mirrors ?? []);
    if (saved) {
      const same = compareWithFresh(saved, plan);
      if (!same.same) throw staleError(planFile!, same.why);
    } else {
      checkSelection(config, plan, selected);
      if (json) reporter({ type: 'plan', plan });
      else io.out(renderPlanText(plan));
    }
    if (hasErrors(plan)) {
      throw new MirrorsError('PLAN_HAS_ERRORS', 'the plan has errors: nothing was changed', {
        hint: 'run `mirrors plan` to see them, fix them, and apply again',
      });
    }
    if (plan.actions.length === 0) {
      // The plan printed above already says "No changes"; a saved plan or a JSON stream says it here.
      if (json || saved) reporter({ type: 'apply_complete', done: 0, total: 0 });
      return 0;
    }
    refuseDataLoss(plan, !!opts.allowDataLoss);
    if (!(await consent(plan, opts, io, saved !== null, stopSignals.signal))) {
      io.out('Apply cancelled.\n');
      return 1;
    }
    if (!json) io.out('\n');
    const r = await applyPlan(config, plan, {
      reporter,
      command,
      signal: stopSignals.signal,
      afterCatalog: () => session.recordHolders(),
    });
    reporter({ type: 'apply_complete', done: r.done, total: r.total });
    return 0;
  } finally {
    stopSignals.dispose();
    reporter({ type: 'stop' });
    await session.release();
  }
}

/**
 * Irreversible actions (a slot's position, a mirror's catalog) need explicit consent: on a terminal the
 * prompt lists them first, in red; without one (--auto-approve, or a saved plan in a pipeline) only
 * --allow-irreversible lets them run.
 */
async function consent(
  plan: Plan,
  opts: ApplyCliOptions,
  io: Io,
  savedPlan: boolean,
  signal: AbortSignal,
): Promise<boolean> {
  const irreversible = plan.actions.filter((a) => a.risk === 'irreversible');
  if (savedPlan || opts.autoApprove) {
    if (irreversible.length && !opts.allowIrreversible) {
      throw new MirrorsError(
        'IRREVERSIBLE_NOT_ALLOWED',
        `the plan has ${irreversible.length} irreversible action${irreversible.length === 1 ? '' : 's'}: nothing was changed`,
        {
          details: irreversible.map(describe),
          hint: 'review them; pass --allow-irreversible to carry them out without a prompt',
        },
      );
    }
    return true;
  }
  if (!io.stdinIsTty) {
    throw new MirrorsError('APPLY_NOT_APPROVED', 'refusing to apply without approval: no terminal to ask on', {
      hint: `pass --auto-approve, or save the plan with \`mirrors plan --out FILE\` and run \`mirrors apply FILE\`${irreversible.length ? ` (with --allow-irreversible: the plan has ${irreversible.length} irreversible action${irreversible.length === 1 ? '' : 's'})` : ''}`,
    });
  }
  if (irreversible.length) {
    io.out(`\n${kleur.red().bold('These actions cannot be undone:')}\n`);
    for (const a of irreversible) io.out(kleur.red(`  ${describe(a)}\n`));
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question('\nDo you want to perform these actions? Only `yes` will be accepted: ', {
      signal,
    });
    return answer.trim() === 'yes';
  } catch {
    return false; // interrupted at the prompt
  } finally {
    rl.close();
  }
}

/**
 * A promotion without its source (disaster recovery) may lose writes: it runs only when this apply says so,
 * whatever else approves the plan (a prompt, --auto-approve, --allow-irreversible or a saved plan).
 */
function refuseDataLoss(plan: Plan, allowed: boolean) {
  const lossy = plan.actions.flatMap((a) =>
    a.kind === 'promotion' && a.op === 'create' && a.details.without_source ? [{ a, w: a.details.without_source }] : [],
  );
  if (!lossy.length || allowed) return;
  throw new MirrorsError(
    'DATA_LOSS_NOT_ALLOWED',
    `the plan promotes ${lossy.map((x) => `mirror ${x.a.mirror}`).join(', ')} without ${lossy.length === 1 ? 'its source' : 'their sources'}, which cannot be reached: writes may be lost; nothing was changed`,
    {
      details: lossy.map((x) => `- ${x.a.address}: ${describeLoss(x.w.loss, x.a.details.source_peer)}`),
      hint: 'make sure the source is down for good, then pass --allow-data-loss (valid for that one apply)',
    },
  );
}

function describe(a: Action): string {
  return `- ${a.address}: ${a.reason}`;
}

/** First SIGINT/SIGTERM: stop after (or roll back) the action in flight. A second one exits at once. */
function onInterrupt(io: Io) {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      io.err(`\n${sig} again: exiting now; run \`mirrors apply\` again to finish\n`);
      process.exit(130);
    }
    io.err(
      `\n${sig}: stopping: nothing further starts, and a snapshot in flight stops copying (the next apply copies its unfinished tables again); ${sig} again exits at once\n`,
    );
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

function parseLockTimeout(text: string): number {
  if (/^0+(ms|s|m|h)?$/.test(text.trim())) return 0;
  const r = parseDuration(text);
  if (!r.ok)
    throw new MirrorsError('USAGE', `--lock-timeout ${text}: ${r.message}`, {
      hint: 'use a duration such as 0s, 30s or 5m',
    });
  return r.ms;
}
