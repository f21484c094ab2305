/** `mirrors show PLANFILE`: renders a saved plan (checked against the plan schema) for its approver. */
import { readPlanFile } from '../apply/saved-plan.js';
import { renderPlanJson } from '../render/json.js';
import { renderPlanMarkdown } from '../render/markdown.js';
import { docsBase } from '../render/docs-url.js';
import { renderPlanText } from '../render/text.js';
import type { Io } from './io.js';
import { VERSION } from './version.js';

export interface ShowOptions {
  format?: 'text' | 'json' | 'markdown';
  docsUrl?: string;
}

export async function showCommand(planFile: string, opts: ShowOptions, io: Io): Promise<number> {
  const plan = readPlanFile(planFile, VERSION);
  const format = opts.format ?? 'text';
  if (format === 'json') io.out(renderPlanJson(plan));
  else if (format === 'markdown')
    io.out(renderPlanMarkdown(plan, { docsUrl: docsBase(opts.docsUrl), fullPlan: `\`mirrors show ${planFile}\`` }));
  else {
    const mirrors = plan.mirrors.map((m) => `${m.name} (${m.source} -> ${m.destination})`).join(', ') || '(none)';
    io.out(
      `Plan ${planFile}: made by ${plan.created_by} from ${plan.config_file} (project ${plan.project}); mirrors: ${mirrors}\n\n`,
    );
    io.out(renderPlanText(plan, { sql: true }));
  }
  return 0;
}
