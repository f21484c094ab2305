/** `mirrors apply [PLANFILE]`: plan (or read a saved plan), confirm, execute, report. */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { inspect } from '../inspect/index.js';
import { buildPlan, hasErrors } from '../plan/build.js';
import { PLAN_FORMAT_VERSION, type Plan } from '../plan/types.js';
import { applyPlan } from '../apply/index.js';
import { MirrorsError } from '../errors.js';
import { renderPlanText } from '../render/text.js';
import { makePlan } from './plan.js';
import { jsonReporter, textReporter } from './progress.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export interface ApplyCliOptions {
  config?: string;
  mirror?: string[];
  autoApprove?: boolean;
  lockTimeout?: string;
  format?: 'text' | 'json';
}

export async function applyCommand(planFile: string | undefined, opts: ApplyCliOptions, io: Io): Promise<number> {
  const lockTimeoutMs = parseLockTimeout(opts.lockTimeout ?? '0s');
  const json = opts.format === 'json';
  let config;
  let plan: Plan;
  if (planFile) {
    plan = readPlanFile(planFile);
    config = await loadConfig({ configPath: opts.config ?? plan.config_file, cwd: process.cwd(), env: process.env });
    if (config.hash !== plan.config_hash) {
      throw new MirrorsError('PLAN_STALE', `saved plan ${planFile} is stale: the configuration changed since it was made`, {
        hint: 'run `mirrors plan --out` again and review the new plan',
      });
    }
    const { live } = await inspect(config, plan.selected);
    const fresh = buildPlan(config, live, plan.selected, `mirrors ${VERSION}`);
    if (fresh.live_fingerprint !== plan.live_fingerprint) {
      throw new MirrorsError('PLAN_STALE', `saved plan ${planFile} is stale: the databases changed since it was made`, {
        hint: 'run `mirrors plan --out` again and review the new plan',
      });
    }
    if (hasErrors(fresh)) throw new MirrorsError('PLAN_HAS_ERRORS', 'the plan has errors', { hint: 'run `mirrors plan` to see them' });
  } else {
    const made = await makePlan(opts);
    config = made.config;
    plan = made.plan;
    if (!json) io.out(renderPlanText(plan));
    if (hasErrors(plan)) return 1;
    if (plan.actions.length === 0) return 0;
    if (!opts.autoApprove) {
      if (!io.stdinIsTty) {
        throw new MirrorsError('APPLY_NOT_APPROVED', 'refusing to apply without approval: no terminal to ask on', {
          hint: 'pass --auto-approve, or save the plan with `mirrors plan --out FILE` and run `mirrors apply FILE`',
        });
      }
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question('\nDo you want to perform these actions? Only `yes` will be accepted: ');
      rl.close();
      if (answer.trim() !== 'yes') {
        io.out('Apply cancelled.\n');
        return 1;
      }
    }
  }
  if (plan.actions.length === 0) {
    if (!json) io.out('No changes. The mirrors match the configuration.\n');
    return 0;
  }
  const reporter = json ? jsonReporter(io) : textReporter(io, io.stdoutIsTty);
  const command = ['mirrors', 'apply', ...(planFile ? [planFile] : [])].join(' ');
  if (!json) io.out('\n');
  try {
    const r = await applyPlan(config, plan, { reporter, lockTimeoutMs, command });
    if (!json) io.out(`\nApply complete: ${r.done} action${r.done === 1 ? '' : 's'} done.\n`);
    else io.out(JSON.stringify({ type: 'apply_complete', done: r.done, total: r.total }) + '\n');
    return 0;
  } finally {
    (reporter as { stop?: () => void }).stop?.();
  }
}

function parseLockTimeout(text: string): number {
  if (/^0+(ms|s|m|h)?$/.test(text.trim())) return 0;
  const r = parseDuration(text);
  if (!r.ok) throw new MirrorsError('USAGE', `--lock-timeout ${text}: ${r.message}`, { hint: 'use a duration such as 0s, 30s or 5m' });
  return r.ms;
}

export function readPlanFile(file: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MirrorsError('PLAN_FILE_INVALID', `cannot read plan file ${file}: ${(err as Error).message}`);
  }
  let plan: Plan;
  try {
    plan = JSON.parse(text);
  } catch {
    throw new MirrorsError('PLAN_FILE_INVALID', `${file} is not a plan file (invalid JSON)`, { hint: 'make one with `mirrors plan --out FILE`' });
  }
  if (plan?.tool !== 'mirrors' || !Array.isArray(plan.actions)) {
    throw new MirrorsError('PLAN_FILE_INVALID', `${file} is not a mirrors plan file`, { hint: 'make one with `mirrors plan --out FILE`' });
  }
  if (plan.format_version !== PLAN_FORMAT_VERSION) {
    throw new MirrorsError('PLAN_STALE', `${file} has plan format version ${plan.format_version}; this mirrors (${VERSION}) reads version ${PLAN_FORMAT_VERSION}`, {
      hint: 'make the plan again with this version: `mirrors plan --out FILE`',
    });
  }
  return plan;
}
