/**
 * Markdown rendering of a plan for a pull-request comment (docs/ci.md). Reads the plan only.
 *
 * The summary and risk badges come first, then the diagnostics (with their mirrors.yaml line), the ordered actions,
 * and collapsed sections: each drifted table's diff, each changed object's attributes, and every statement the
 * plan runs, one section per mirror. A hidden marker names the plan's project and file, so a CI job updates its
 * comment in place. Documentation links are absolute (a relative `docs/...` link breaks in a comment). Past
 * GitHub's 65,536-character limit, sections are left out from the end, never the summary, and the comment says
 * where the whole plan is.
 */
import { basename } from 'node:path';
import { isDrift } from '../plan/diagnostics.js';
import type { Action, Plan, Risk, Severity } from '../plan/types.js';
import { attributeChanges } from './changes.js';
import { DEFAULT_DOCS_URL, docsLink } from './docs-url.js';
import { repeatedDiffs, SYMBOL, statements, summaryLine } from './text.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => '`' + s.replace(/`/g, "'") + '`';
const LABEL: Record<Severity, string> = { error: '❌ error', warning: '⚠️ warning', note: 'ℹ️ note' };
const BADGE: Record<Risk, string> = { safe: '🟢 safe', disruptive: '🟠 disruptive', irreversible: '🔴 irreversible' };

/** Under GitHub's 65,536-character limit on a comment or issue body, with room for what a workflow adds. */
export const MARKDOWN_LIMIT = 60_000;

/** A code fence longer than any run of backticks in `text` (a column default may hold some). */
const fence = (text: string) => '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));

export interface MarkdownOptions {
  /** Base of the documentation links (render/docs-url.ts). */
  docsUrl?: string;
  /** Where the whole plan is, said when sections are left out (e.g. "the plan.json artifact of this run"). */
  fullPlan?: string;
  /** The character budget (MARKDOWN_LIMIT). */
  limit?: number;
}

/** The hidden marker a CI job finds its comment by: one comment per project and config file. */
export const planMarker = (plan: Pick<Plan, 'project' | 'config_file'>) =>
  `<!-- mirrors:plan project=${plan.project} file=${basename(plan.config_file)} -->`;

/** The mirror an address belongs to, or its peer (`peer.x...`): the SQL is grouped by it. */
const owner = (address: string) => /^(mirror\.[^.]+|peer\.[^.]+)/.exec(address)?.[1] ?? address;

export function renderPlanMarkdown(plan: Plan, opts: MarkdownOptions = {}): string {
  const docs = opts.docsUrl ?? DEFAULT_DOCS_URL;
  const limit = opts.limit ?? MARKDOWN_LIMIT;
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  const head: string[] = [
    planMarker(plan),
    `### ${errors ? '❌' : plan.actions.length ? '📝' : plan.diagnostics.some(isDrift) ? '⚠️' : '✅'} mirrors plan`,
    '',
  ];
  head.push(
    `**${summaryLine(plan, 'below')}**${errors ? ` ${errors} error${errors === 1 ? '' : 's'} must be fixed before apply.` : ''}`,
    '',
  );
  const risks = (['irreversible', 'disruptive', 'safe'] as const)
    .map((r) => [r, plan.actions.filter((a) => a.risk === r).length] as const)
    .filter(([, n]) => n > 0);
  if (risks.length) head.push(risks.map(([r, n]) => `${BADGE[r]} ${n}`).join(' · '), '');
  const irreversible = plan.actions.filter((a) => a.risk === 'irreversible');
  if (irreversible.length)
    head.push(
      `> [!CAUTION]\n> **Irreversible:** ${irreversible.map((a) => `${a.op} ${code(a.address)} (${cell(a.reason)})`).join('; ')}. Apply asks for \`--allow-irreversible\`.`,
      '',
    );
  if (plan.diagnostics.length) {
    head.push('| | code | address | line | problem | fix |', '|---|---|---|---|---|---|');
    for (const d of plan.diagnostics) {
      const line = d.position ? `${basename(plan.config_file)}:${d.position.line}` : '';
      head.push(
        `| ${LABEL[d.severity]} | [${d.code}](${docsLink(docs, `diagnostics.md#${d.code.toLowerCase()}`)}) | ${code(d.address)} | ${line} | ${cell(d.message)} | ${cell(d.hint)} |`,
      );
    }
    head.push('');
  }
  if (plan.actions.length) {
    head.push('| # | | address | reason | risk |', '|---|---|---|---|---|');
    plan.actions.forEach((a, i) => {
      head.push(
        `| ${i + 1} | ${code(SYMBOL[a.op])} ${a.op} | ${code(a.address)} | ${cell(a.reason)} | ${a.risk === 'safe' ? '' : `**${a.risk}**`} |`,
      );
    });
    head.push('');
  }
  const footer = `<sub>project ${plan.project} · config ${plan.config_hash.slice(0, 12)} · plan format ${plan.format_version} · [reading a plan](${docsLink(docs, 'ci.md')})</sub>`;

  // Collapsed sections, in the order they are kept when the comment must be shortened.
  const sections: string[] = [];
  const repeated = repeatedDiffs(plan.diagnostics);
  plan.diagnostics.forEach((d, i) => {
    if (!d.diff || repeated[i]) return;
    const codes = plan.diagnostics.filter((x) => x.address === d.address && x.diff === d.diff).map((x) => x.code);
    sections.push(
      details(`${codes.join(', ')} ${code(d.address)}: source and destination`, [
        `${fence(d.diff)}diff`,
        d.diff.replace(/\n$/, ''),
        fence(d.diff),
      ]),
    );
  });
  for (const a of plan.actions.filter((x) => x.op === 'update' || x.op === 'replace')) {
    const lines = attributeChanges(a.before as Record<string, unknown>, a.after as Record<string, unknown>).map((c) =>
      c.type === 'attribute'
        ? `~ ${c.key}: ${c.before} -> ${c.after}`
        : c.type === 'diff_header'
          ? `  ${c.key}:`
          : `${c.sign === '@' ? '' : c.sign} ${c.text}`,
    );
    sections.push(details(`${code(a.address)} changes`, ['```diff', ...lines, '```']));
  }
  const byOwner = new Map<string, Action[]>();
  for (const a of plan.actions) byOwner.set(owner(a.address), [...(byOwner.get(owner(a.address)) ?? []), a]);
  for (const [who, actions] of byOwner) {
    const sql = actions.flatMap((a) => {
      const s = statements(a);
      return s.length ? [`-- ${a.op} ${a.address}`, ...s.map((x) => `${x};`)] : [];
    });
    if (sql.length)
      sections.push(
        details(`${code(who)} runs ${actions.length} action${actions.length === 1 ? '' : 's'}: SQL`, [
          `${fence(sql.join('\n'))}sql`,
          ...sql,
          fence(sql.join('\n')),
        ]),
      );
  }

  return fit(head, sections, footer, limit, opts.fullPlan);
}

function details(summary: string, body: string[]): string {
  return [`<details><summary>${summary}</summary>`, '', ...body, '</details>', ''].join('\n');
}

/** The head, as many sections as fit, and a note saying what was left out and where the whole plan is. */
function fit(head: string[], sections: string[], footer: string, limit: number, fullPlan: string | undefined): string {
  const join = (parts: string[]) => parts.join('\n') + '\n';
  const whole = join([...head, ...sections, footer]);
  if (whole.length <= limit) return whole;
  const note = (left: number) =>
    `> [!NOTE]\n> Shortened to fit a comment: ${left} of ${sections.length} collapsed section${sections.length === 1 ? '' : 's'} left out. The whole plan: ${fullPlan ?? 'the saved plan file (`mirrors plan --out plan.json`), read with `mirrors show plan.json`'}.\n`;
  let budget = limit - join([...head, note(sections.length), footer]).length;
  let kept = 0;
  while (kept < sections.length && sections[kept].length + 1 <= budget) budget -= sections[kept++].length + 1;
  let out = join([...head, ...sections.slice(0, kept), note(sections.length - kept), footer]);
  // A head alone past the limit (thousands of actions): cut its table rows too.
  if (out.length > limit) {
    const tail = `\n\n…\n\n${note(sections.length)}\n${footer}\n`;
    out = out.slice(0, Math.max(0, limit - tail.length)) + tail;
  }
  return out;
}
