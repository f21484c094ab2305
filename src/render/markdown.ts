/** Markdown rendering of a plan for a pull-request comment. Reads the plan only. */
import type { Plan } from '../plan/types.js';
import { docsAnchor } from '../plan/diagnostics.js';
import { SYMBOL, summaryLine } from './text.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => '`' + s.replace(/`/g, "'") + '`';

export function renderPlanMarkdown(plan: Plan): string {
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  const out: string[] = [];
  out.push(`### ${errors ? '❌' : plan.actions.length ? '📝' : '✅'} mirrors plan`, '');
  out.push(`**${summaryLine(plan)}**${errors ? ` ${errors} error${errors === 1 ? '' : 's'} must be fixed before apply.` : ''}`, '');
  if (plan.diagnostics.length) {
    out.push('| | code | address | problem | fix |', '|---|---|---|---|---|');
    for (const d of plan.diagnostics) {
      out.push(`| ${d.severity === 'error' ? '❌ error' : '⚠️ warning'} | [${d.code}](${docsAnchor(d.code)}) | ${code(d.address)} | ${cell(d.message)} | ${cell(d.hint)} |`);
    }
    out.push('');
  }
  if (plan.actions.length) {
    out.push('| # | | address | reason | risk |', '|---|---|---|---|---|');
    plan.actions.forEach((a, i) => {
      out.push(`| ${i + 1} | ${code(SYMBOL[a.op])} ${a.op} | ${code(a.address)} | ${cell(a.reason)} | ${a.risk === 'safe' ? '' : `**${a.risk}**`} |`);
    });
    out.push('');
  }
  out.push(`<sub>config ${plan.config_hash.slice(0, 12)} · live ${plan.live_fingerprint.slice(0, 12)} · plan format ${plan.format_version}</sub>`);
  return out.join('\n') + '\n';
}
