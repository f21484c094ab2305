/**
 * Terraform-like text rendering of a Plan. Reads the plan only; computes nothing from the peers.
 * Colors through kleur; the CLI decides whether color is on (TTY, NO_COLOR, --no-color).
 */
import kleur from 'kleur';
import type { Action, Diagnostic, Op, Plan } from '../plan/types.js';
import { docsAnchor } from '../plan/diagnostics.js';

export const SYMBOL: Record<Op, string> = { create: '+', update: '~', delete: '-', replace: '-/+', read: '<=' };

const paint: Record<Op, (s: string) => string> = {
  create: (s) => kleur.green(s),
  update: (s) => kleur.yellow(s),
  delete: (s) => kleur.red(s),
  replace: (s) => kleur.magenta(s),
  read: (s) => kleur.cyan(s),
};

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  if (plan.actions.length === 0) return 'No changes. The mirrors match the configuration.';
  return `Plan: ${s.create} to create, ${s.update} to update, ${s.replace} to replace, ${s.delete} to delete.`;
}

export function renderDiagnostic(d: Diagnostic): string {
  const head = d.severity === 'error' ? kleur.red().bold(`error ${d.code}`) : kleur.yellow().bold(`warning ${d.code}`);
  return [
    `  ${head}  ${kleur.bold(d.address)}`,
    `      ${d.message}`,
    `      ${kleur.dim('fix:')} ${d.hint}  ${kleur.dim(`(${docsAnchor(d.code)})`)}`,
  ].join('\n');
}

export function renderAction(a: Action): string {
  const sym = paint[a.op](SYMBOL[a.op].padStart(3));
  const risk = a.risk === 'safe' ? '' : ' ' + (a.risk === 'irreversible' ? kleur.red().bold('[irreversible]') : kleur.yellow('[disruptive]'));
  const lines = [`${sym} ${kleur.bold(a.address)}${risk}`, `      ${a.reason}`];
  if (a.op === 'update' || a.op === 'replace') {
    const before = (a.before ?? {}) as Record<string, unknown>;
    const after = (a.after ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(after)) {
      lines.push(`      ${kleur.dim(k + ':')} ${show(before[k])} ${kleur.dim('->')} ${show(after[k])}`);
    }
  }
  return lines.join('\n');
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '(none)';
  if (Array.isArray(v)) return v.length > 6 ? `[${v.slice(0, 6).join(', ')}, … ${v.length - 6} more]` : `[${v.join(', ')}]`;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function renderPlanText(plan: Plan): string {
  const out: string[] = [];
  if (plan.diagnostics.length) {
    out.push(kleur.bold('Diagnostics:'), '');
    for (const d of plan.diagnostics) out.push(renderDiagnostic(d), '');
  }
  if (plan.actions.length) {
    out.push(kleur.bold('mirrors will perform these actions, in this order:'), '');
    for (const a of plan.actions) out.push(renderAction(a), '');
  }
  out.push(kleur.bold(summaryLine(plan)));
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  if (errors) out.push(kleur.red(`${errors} error${errors === 1 ? '' : 's'} above: this plan cannot be saved or applied until ${errors === 1 ? 'it is' : 'they are'} fixed.`));
  return out.join('\n') + '\n';
}
