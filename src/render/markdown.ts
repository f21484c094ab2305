/** Markdown rendering of a plan for a pull-request comment. Reads the plan only. */
import type { Plan, Severity } from '../plan/types.js';
import { docsAnchor } from '../plan/diagnostics.js';
import { attributeChanges } from './changes.js';
import { repeatedDiffs, SYMBOL, statements, summaryLine } from './text.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => '`' + s.replace(/`/g, "'") + '`';
const LABEL: Record<Severity, string> = { error: '❌ error', warning: '⚠️ warning', note: 'ℹ️ note' };

/** A code fence longer than any run of backticks in `text` (a column default may hold some). */
const fence = (text: string) => '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));

/** `sql`: every statement each action runs, for the approver of a saved plan (`mirrors show`). */
export function renderPlanMarkdown(plan: Plan, opts: { sql?: boolean } = {}): string {
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  const out: string[] = [];
  out.push(`### ${errors ? '❌' : plan.actions.length ? '📝' : '✅'} mirrors plan`, '');
  out.push(
    `**${summaryLine(plan)}**${errors ? ` ${errors} error${errors === 1 ? '' : 's'} must be fixed before apply.` : ''}`,
    '',
  );
  if (plan.diagnostics.length) {
    out.push('| | code | address | problem | fix |', '|---|---|---|---|---|');
    for (const d of plan.diagnostics) {
      out.push(
        `| ${LABEL[d.severity]} | [${d.code}](${docsAnchor(d.code)}) | ${code(d.address)} | ${cell(d.message)} | ${cell(d.hint)} |`,
      );
    }
    out.push('');
    // Drift: each table's diff once, under the codes that share it.
    const repeated = repeatedDiffs(plan.diagnostics);
    plan.diagnostics.forEach((d, i) => {
      if (!d.diff || repeated[i]) return;
      const codes = plan.diagnostics.filter((x) => x.address === d.address && x.diff === d.diff).map((x) => x.code);
      out.push(
        `<details><summary>${codes.join(', ')} ${code(d.address)}: source and destination</summary>`,
        '',
        `${fence(d.diff)}diff`,
        d.diff.replace(/\n$/, ''),
        fence(d.diff),
        '</details>',
        '',
      );
    });
  }
  if (plan.actions.length) {
    out.push('| # | | address | reason | risk |', '|---|---|---|---|---|');
    plan.actions.forEach((a, i) => {
      out.push(
        `| ${i + 1} | ${code(SYMBOL[a.op])} ${a.op} | ${code(a.address)} | ${cell(a.reason)} | ${a.risk === 'safe' ? '' : `**${a.risk}**`} |`,
      );
    });
    out.push('');
    for (const a of plan.actions.filter((x) => x.op === 'update' || x.op === 'replace')) {
      const lines = attributeChanges(a.before as Record<string, unknown>, a.after as Record<string, unknown>).map(
        (c) =>
          c.type === 'attribute'
            ? `~ ${c.key}: ${c.before} -> ${c.after}`
            : c.type === 'diff_header'
              ? `  ${c.key}:`
              : `${c.sign === '@' ? '' : c.sign} ${c.text}`,
      );
      out.push(
        `<details><summary>${code(a.address)} changes</summary>`,
        '',
        '```diff',
        ...lines,
        '```',
        '</details>',
        '',
      );
    }
    if (opts.sql || plan.actions.some((a) => a.kind === 'promotion')) {
      // A promotion's statements are always shown (it is irreversible); other actions' with --sql.
      for (const a of plan.actions) {
        if (!opts.sql && a.kind !== 'promotion') continue;
        const sql = statements(a);
        if (!sql.length) continue;
        out.push(
          `<details><summary>${code(a.address)} runs</summary>`,
          '',
          '```sql',
          ...sql.map((s) => `${s};`),
          '```',
          '</details>',
          '',
        );
      }
    }
  }
  out.push(
    `<sub>project ${plan.project} · config ${plan.config_hash.slice(0, 12)} · plan format ${plan.format_version}</sub>`,
  );
  return out.join('\n') + '\n';
}
