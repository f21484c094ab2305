/** `mirrors plan`: inspect, diff, print; optionally save the plan file. Read-only: takes no lock. */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { buildPlan, hasDrift, hasErrors } from '../diff/build.js';
import { inspect } from '../inspect/index.js';
import type { Plan, Risk } from '../plan/types.js';
import { renderPlanText } from '../render/text.js';
import { renderPlanJson } from '../render/json.js';
import { type MarkdownOptions, renderPlanMarkdown } from '../render/markdown.js';
import { docsBase } from '../render/docs-url.js';
import { MirrorsError } from '../errors.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export type PlanFormat = 'text' | 'json' | 'markdown';

export interface PlanCliOptions {
  config?: string;
  mirror?: string[];
  out?: string;
  format?: PlanFormat;
  detailedExitcode?: boolean;
  failOn?: Exclude<Risk, 'safe'>;
  replace?: string[];
  docsUrl?: string;
}

export const CREATED_BY = `mirrors ${VERSION}`;

/** --mirror names, deduplicated; null for every mirror. */
export function selection(mirror: string[] | undefined): string[] | null {
  return mirror?.length ? [...new Set(mirror)] : null;
}

/** A --mirror name that is neither declared nor recorded in an inspected catalog is a usage error. */
export function checkSelection(config: Config, plan: Plan, selected: string[] | null) {
  for (const name of selected ?? []) {
    if (!plan.mirrors.some((m) => m.name === name)) {
      throw new MirrorsError('USAGE', `unknown mirror ${name}`, {
        hint: `declared mirrors: ${Object.keys(config.mirrors).join(', ') || '(none)'}`,
      });
    }
  }
}

export function renderPlan(plan: Plan, format: PlanFormat, markdown: MarkdownOptions = {}): string {
  return format === 'json'
    ? renderPlanJson(plan)
    : format === 'markdown'
      ? renderPlanMarkdown(plan, markdown)
      : renderPlanText(plan);
}

export async function planCommand(opts: PlanCliOptions, io: Io): Promise<number> {
  const config = await loadConfig({ configPath: opts.config, cwd: process.cwd(), env: process.env });
  const selected = selection(opts.mirror);
  const { live } = await inspect(config, selected);
  const plan = buildPlan(config, live, { selected, createdBy: CREATED_BY, failOn: opts.failOn, replace: opts.replace });
  checkSelection(config, plan, selected);
  io.out(
    renderPlan(plan, opts.format ?? 'text', {
      docsUrl: docsBase(opts.docsUrl),
      fullPlan: opts.out
        ? `the saved plan \`${opts.out}\` (\`mirrors show ${opts.out}\`; CI keeps it with the run)`
        : undefined,
    }),
  );
  if (hasErrors(plan)) {
    if (opts.out) io.err(`error: not saving ${opts.out}: the plan has errors\n`);
    return planExitCode(plan, !!opts.detailedExitcode);
  }
  if (opts.out) {
    writeFileSync(opts.out, renderPlanJson(plan), { mode: 0o600 });
    if ((opts.format ?? 'text') === 'text')
      io.out(`\nSaved the plan to ${opts.out}. Apply it with: mirrors apply ${opts.out}\n`);
  }
  return planExitCode(plan, !!opts.detailedExitcode);
}

/**
 * 1 when a diagnostic is an error (drift the stream cannot apply through among them); under --detailed-exitcode 2
 * when there are actions or any schema drift: drift that is only warnings (MR154-MR156, MR159) may come with no
 * action, or with one that fixes only part of it, and a scheduled plan must still report it; else 0.
 */
export function planExitCode(plan: Plan, detailed: boolean): 0 | 1 | 2 {
  if (hasErrors(plan)) return 1;
  return detailed && (plan.actions.length > 0 || hasDrift(plan)) ? 2 : 0;
}
