/** `mirrors plan`: inspect, diff, print; optionally save the plan file. */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { inspect } from '../inspect/index.js';
import { buildPlan, hasErrors } from '../plan/build.js';
import type { Plan } from '../plan/types.js';
import { renderPlanText } from '../render/text.js';
import { renderPlanJson } from '../render/json.js';
import { renderPlanMarkdown } from '../render/markdown.js';
import { MirrorsError } from '../errors.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export type PlanFormat = 'text' | 'json' | 'markdown';

export interface PlanOptions {
  config?: string;
  mirror?: string[];
  out?: string;
  format?: PlanFormat;
  detailedExitcode?: boolean;
}

/** Loads the config, inspects the peers and builds the plan; shared by plan and apply. */
export async function makePlan(opts: { config?: string; mirror?: string[] }): Promise<{ config: Config; plan: Plan }> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const selected = opts.mirror && opts.mirror.length ? [...new Set(opts.mirror)] : null;
  const { live } = await inspect(config, selected);
  const plan = buildPlan(config, live, selected, `mirrors ${VERSION}`);
  for (const name of selected ?? []) {
    if (!plan.mirrors.includes(name)) {
      throw new MirrorsError('USAGE', `unknown mirror ${name}`, {
        hint: `declared mirrors: ${Object.keys(config.mirrors).join(', ') || '(none)'}`,
      });
    }
  }
  return { config, plan };
}

export function renderPlan(plan: Plan, format: PlanFormat): string {
  return format === 'json' ? renderPlanJson(plan) : format === 'markdown' ? renderPlanMarkdown(plan) : renderPlanText(plan);
}

export async function planCommand(opts: PlanOptions, io: Io): Promise<number> {
  const { plan } = await makePlan(opts);
  io.out(renderPlan(plan, opts.format ?? 'text'));
  if (hasErrors(plan)) {
    if (opts.out) io.err(`error: not saving ${opts.out}: the plan has errors\n`);
    return 1;
  }
  if (opts.out) {
    writeFileSync(opts.out, renderPlanJson(plan), { mode: 0o600 });
    if ((opts.format ?? 'text') === 'text') io.out(`\nSaved the plan to ${opts.out}. Apply it with: mirrors apply ${opts.out}\n`);
  }
  return opts.detailedExitcode && plan.actions.length > 0 ? 2 : 0;
}
