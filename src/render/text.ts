/**
 * Terraform-like text rendering of a Plan. Reads the plan only; computes nothing from the peers.
 * Colors through kleur; the CLI decides whether color is on (TTY, NO_COLOR, --no-color).
 */
import kleur from 'kleur';
import type { Action, Diagnostic, Op, Plan } from '../plan/types.js';
import { docsAnchor } from '../plan/diagnostics.js';
import { formatBytes } from '../util/format.js';
import { attributeChanges, type ChangeLine } from './changes.js';

export const SYMBOL: Record<Op, string> = { create: '+', update: '~', delete: '-', replace: '-/+' };

const paint: Record<Op, (s: string) => string> = {
  create: (s) => kleur.green(s),
  update: (s) => kleur.yellow(s),
  delete: (s) => kleur.red(s),
  replace: (s) => kleur.magenta(s),
};

export interface TextOptions {
  /** Show every statement an action runs (`mirrors show`: the approver reads what will run). */
  sql?: boolean;
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  if (plan.actions.length === 0) {
    // An error may be what keeps an action out of the plan (a blocked destroy): "match" would not be true then.
    return plan.diagnostics.some((d) => d.severity === 'error')
      ? 'No changes planned: the errors block them.'
      : 'No changes. The mirrors match the configuration.';
  }
  return `Plan: ${s.create} to create, ${s.update} to update, ${s.replace} to replace, ${s.delete} to delete.`;
}

const SEVERITY_HEAD = {
  error: (code: string) => kleur.red().bold(`error ${code}`),
  warning: (code: string) => kleur.yellow().bold(`warning ${code}`),
  note: (code: string) => kleur.cyan().bold(`note ${code}`),
};

export function renderDiagnostic(d: Diagnostic): string {
  return [
    `  ${SEVERITY_HEAD[d.severity](d.code)}  ${kleur.bold(d.address)}`,
    `      ${d.message}`,
    `      ${kleur.dim('fix:')} ${d.hint}  ${kleur.dim(`(${docsAnchor(d.code)})`)}`,
  ].join('\n');
}

export function riskTag(a: Action): string {
  if (a.risk === 'safe') return '';
  return ' ' + (a.risk === 'irreversible' ? kleur.red().bold('[irreversible]') : kleur.yellow('[disruptive]'));
}

export function renderAction(a: Action, opts: TextOptions = {}): string {
  const lines = [`${paint[a.op](SYMBOL[a.op].padStart(3))} ${kleur.bold(a.address)}${riskTag(a)}`, `      ${a.reason}`];
  if (a.kind === 'snapshot' && a.details.copy) {
    // reltuples is -1 until a table is first analyzed: its row count is unknown, not zero.
    const unknown = a.details.tables.some((t) => t.estimated_rows === '-1');
    const rows = unknown ? 'rows unknown (a table was never analyzed)' : `about ${a.after.estimated_rows} rows`;
    lines.push(kleur.dim(`      ${rows}, ${formatBytes(a.after.estimated_bytes)}`));
  }
  if (a.op === 'update' || a.op === 'replace') {
    for (const c of attributeChanges(a.before as Record<string, unknown>, a.after as Record<string, unknown>)) {
      lines.push(`      ${changeLine(c)}`);
    }
  }
  if (opts.sql) for (const s of statements(a)) lines.push(kleur.dim(`      | ${s.replace(/\n/g, '\n      | ')}`));
  return lines.join('\n');
}

function changeLine(c: ChangeLine): string {
  switch (c.type) {
    case 'attribute':
      return `${kleur.dim(c.key + ':')} ${c.before} ${kleur.dim('->')} ${c.after}`;
    case 'diff_header':
      return kleur.dim(`${c.key}:`);
    case 'diff':
      return c.sign === '+'
        ? kleur.green(`  + ${c.text}`)
        : c.sign === '-'
          ? kleur.red(`  - ${c.text}`)
          : c.sign === '@'
            ? kleur.cyan(`  ${c.text}`)
            : `    ${c.text}`;
  }
}

/** The statements an action runs, as the plan carries them. */
export function statements(a: Action): string[] {
  if (a.kind === 'catalog') return a.details.migrations.map((m) => `-- catalog migration ${m.version}: ${m.name}`);
  const d = a.details as { sql?: string[]; drop_sql?: string; create_command?: string };
  return [...(d.drop_sql ? [d.drop_sql] : []), ...(d.create_command ? [d.create_command] : []), ...(d.sql ?? [])];
}

export function renderPlanText(plan: Plan, opts: TextOptions = {}): string {
  const out: string[] = [];
  if (plan.diagnostics.length) {
    out.push(kleur.bold('Diagnostics:'), '');
    for (const d of plan.diagnostics) out.push(renderDiagnostic(d), '');
  }
  if (plan.actions.length) {
    out.push(kleur.bold('mirrors will perform these actions, in this order:'), '');
    for (const a of plan.actions) out.push(renderAction(a, opts), '');
  }
  out.push(kleur.bold(summaryLine(plan)));
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  if (errors) {
    out.push(
      kleur.red(
        `${errors} error${errors === 1 ? '' : 's'} above: this plan cannot be saved or applied until ${errors === 1 ? 'it is' : 'they are'} fixed.`,
      ),
    );
  }
  return out.join('\n') + '\n';
}
