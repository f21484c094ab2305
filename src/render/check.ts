/**
 * Text, JSON and markdown rendering of `mirrors check` (check/findings.ts). The markdown is one section per mirror,
 * each fit for the body of that mirror's issue (the JSON carries it too, with a title and a hidden marker the
 * scheduled workflow finds the issue by). Reads the report only.
 */
import kleur from 'kleur';
import type { Finding, MirrorCheck } from '../check/findings.js';
import { docsLink } from './docs-url.js';

export interface CheckReport {
  format_version: 1;
  created_by: string;
  generated_at: string;
  config_file: string;
  /** clean: every mirror clean or being applied; attention: something to look at (exit 2). */
  outcome: 'clean' | 'attention';
  mirrors: (MirrorCheck & { issue: { marker: string; title: string; body: string } })[];
}

const LABEL: Record<Finding['kind'], string> = {
  plan_error: 'plan error',
  config_drift: 'config drift',
  schema_drift: 'schema drift',
  guard: 'read-only guard',
  data_drift: 'data differs',
  status: 'status',
  lag: 'lag',
  worker: 'worker',
  slot: 'slot',
  wal_retention: 'WAL retention',
  verify: 'verify',
};

/** The marker an issue of this mirror carries (and is found by). */
export const issueMarker = (mirror: string) => `<!-- mirrors:check mirror=${mirror} -->`;

const applyText = (a: NonNullable<MirrorCheck['apply']>) =>
  `${a.command ? `\`${a.command}\`` : 'an apply'}${a.pid === null ? '' : ` pid ${a.pid}`}${a.host ? ` on ${a.host}` : ''}${a.since ? ` since ${a.since}` : ''}`;

export function issueTitle(m: MirrorCheck): string {
  if (m.state !== 'attention') return `mirrors: ${m.mirror} is clean`;
  const kinds = [...new Set(m.findings.map((f) => LABEL[f.kind]))];
  return `mirrors: ${m.mirror} needs a look (${kinds.join(', ')})`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The markdown section of one mirror (an issue body). */
export function mirrorMarkdown(m: MirrorCheck, docs: string, generatedAt: string): string {
  const out = [
    issueMarker(m.mirror),
    `### ${m.state === 'attention' ? '⚠️' : m.state === 'clean' ? '✅' : '⏳'} mirror \`${m.mirror}\`: ${m.state === 'apply_in_progress' ? 'apply in progress' : m.state} (status ${m.status})`,
    '',
  ];
  if (m.state === 'apply_in_progress')
    out.push(`${applyText(m.apply!)} holds the mirror's apply lock: not checked this time.`, '');
  if (m.findings.length) {
    out.push('| | what | where | fix |', '|---|---|---|---|');
    for (const f of m.findings) {
      const what = f.code
        ? `[${f.code}](${docsLink(docs, `diagnostics.md#${f.code.toLowerCase()}`)}) ${LABEL[f.kind]}`
        : LABEL[f.kind];
      out.push(`| ${what} | ${cell(f.message)} | \`${f.address}\` | ${cell(f.hint ?? '')} |`);
    }
    out.push('');
  }
  out.push(`<sub>checked ${generatedAt} by \`mirrors check\` · [what it checks](${docsLink(docs, 'check.md')})</sub>`);
  return out.join('\n') + '\n';
}

export function renderCheckMarkdown(report: CheckReport): string {
  const attention = report.mirrors.filter((m) => m.state === 'attention').length;
  const head = `## mirrors check: ${countLine(attention, report.mirrors.length)}\n\n`;
  return head + report.mirrors.map((m) => m.issue.body).join('\n');
}

/** `1 of 3 mirrors need a look`, `the mirror is clean`, `all 3 mirrors clean`. */
function countLine(attention: number, n: number): string {
  if (attention) return n === 1 ? 'the mirror needs a look' : `${attention} of ${n} mirrors need a look`;
  return n === 1 ? 'the mirror is clean' : `all ${n} mirrors clean`;
}

export function renderCheckJson(report: CheckReport): string {
  return JSON.stringify(report, null, 2) + '\n';
}

export function renderCheckText(report: CheckReport): string {
  const out: string[] = [];
  for (const m of report.mirrors) {
    if (m.state === 'apply_in_progress') {
      out.push(`${kleur.cyan('…')} mirror ${m.mirror}: apply in progress (${applyText(m.apply!)}): not checked`);
      continue;
    }
    if (m.state === 'clean') {
      out.push(`${kleur.green('✓')} mirror ${m.mirror}: clean (${m.status})`);
      continue;
    }
    out.push(`${kleur.yellow('!')} mirror ${m.mirror}: ${m.findings.length} to look at (${m.status})`);
    for (const f of m.findings) {
      out.push(`    ${LABEL[f.kind]}${f.code ? ` ${f.code}` : ''}: ${f.message}`);
      if (f.hint) out.push(`      fix: ${f.hint}`);
    }
  }
  const attention = report.mirrors.filter((m) => m.state === 'attention').length;
  const line = countLine(attention, report.mirrors.length);
  out.push('', `${line[0].toUpperCase()}${line.slice(1)}.`);
  return out.join('\n') + '\n';
}
