/**
 * Terraform-like text rendering of a Plan. Reads the plan only; computes nothing from the peers.
 * Colors through kleur; the CLI decides whether color is on (TTY, NO_COLOR, --no-color).
 */
import kleur from 'kleur';
import { describeLoss } from '../diff/loss.js';
import { VERIFY_SETTINGS } from '../diff/promotion-sql.js';
import type { Action, Diagnostic, Op, Plan } from '../plan/types.js';
import { DATA_DRIFT, docsAnchor, isDrift } from '../plan/diagnostics.js';
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

/** `where`: where the diagnostics are printed, relative to the summary (text: above it; markdown: below). */
export function summaryLine(plan: Plan, where: 'above' | 'below' = 'above'): string {
  const s = plan.summary;
  const drift = driftLine(plan);
  if (plan.actions.length === 0) {
    // Drifted tables do not match, whatever the actions: never "No changes" then.
    if (drift) return `${drift} No action is planned for it: see the diagnostics ${where}.`;
    // An error may be what keeps an action out of the plan (a blocked destroy): "match" would not be true then.
    return plan.diagnostics.some((d) => d.severity === 'error')
      ? 'No changes planned: the errors block them.'
      : 'No changes. The mirrors match the configuration.';
  }
  const actions = `Plan: ${s.create} to create, ${s.update} to update, ${s.replace} to replace, ${s.delete} to delete.`;
  return drift ? `${actions} ${drift}` : actions;
}

/** `Schema drift in 2 tables (MR150, MR159).`, `Data differs in 1 table (MR165).`, or '' without drift. */
function driftLine(plan: Plan): string {
  const line = (what: string, ds: Plan['diagnostics']) => {
    if (!ds.length) return '';
    const tables = new Set(ds.map((d) => d.address)).size;
    const codes = [...new Set(ds.map((d) => d.code))].sort();
    return `${what} in ${tables} table${tables === 1 ? '' : 's'} (${codes.join(', ')}).`;
  };
  const drift = plan.diagnostics.filter(isDrift);
  return [
    line(
      'Schema drift',
      drift.filter((d) => d.code !== DATA_DRIFT),
    ),
    line(
      'Data differs',
      drift.filter((d) => d.code === DATA_DRIFT),
    ),
  ]
    .filter(Boolean)
    .join(' ');
}

const SEVERITY_HEAD = {
  error: (code: string) => kleur.red().bold(`error ${code}`),
  warning: (code: string) => kleur.yellow().bold(`warning ${code}`),
  note: (code: string) => kleur.cyan().bold(`note ${code}`),
};

/** `shownAt`: the code of an earlier diagnostic of the same table that already showed this same diff. */
export function renderDiagnostic(d: Diagnostic, shownAt?: string): string {
  const lines = [
    `  ${SEVERITY_HEAD[d.severity](d.code)}  ${kleur.bold(d.address)}`,
    `      ${d.message}`,
    `      ${kleur.dim('fix:')} ${d.hint}  ${kleur.dim(`(${docsAnchor(d.code)})`)}`,
  ];
  if (d.diff && shownAt) lines.push(kleur.dim(`      diff: as shown above for ${shownAt}`));
  else if (d.diff) lines.push(...diffLines(d.diff).map((l) => `      ${l}`));
  return lines.join('\n');
}

function diffLines(diff: string): string[] {
  return diff
    .replace(/\n$/, '')
    .split('\n')
    .map((l, i) =>
      i < 2 // the file headers, `--- source` and `+++ destination`
        ? kleur.bold(l)
        : l.startsWith('@@')
          ? kleur.cyan(l)
          : l.startsWith('+')
            ? kleur.green(l)
            : l.startsWith('-')
              ? kleur.red(l)
              : l,
    );
}

/**
 * For each diagnostic, the code of the first earlier one with the same address and diff (the drift of one
 * table is one diff, shown once).
 */
export function repeatedDiffs(diagnostics: Diagnostic[]): (string | undefined)[] {
  const first = new Map<string, string>();
  return diagnostics.map((d) => {
    if (!d.diff) return undefined;
    const k = `${d.address}\u0000${d.diff}`;
    const seen = first.get(k);
    if (!seen) first.set(k, d.code);
    return seen;
  });
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
  if ((a.op === 'update' || a.op === 'replace') && a.kind !== 'promotion') {
    for (const c of attributeChanges(a.before as Record<string, unknown>, a.after as Record<string, unknown>)) {
      lines.push(`      ${changeLine(c)}`);
    }
  }
  if (a.kind === 'promotion' && a.op === 'create' && a.details.without_source)
    lines.push(
      kleur.red(`      writes may be lost: ${describeLoss(a.details.without_source.loss, a.details.source_peer)}`),
      kleur.red('      runs only with `mirrors apply --allow-data-loss`'),
    );
  // A promotion is irreversible: its statements are shown whatever the options, as a reviewer must read them.
  if (opts.sql || a.kind === 'promotion')
    for (const s of statements(a)) lines.push(kleur.dim(`      | ${s.replace(/\n/g, '\n      | ')}`));
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
  if (a.kind === 'promotion' && a.op === 'update') {
    const d = a.details;
    return [
      `-- on peer ${d.source_peer}, one transaction: the fence goes, the guard of mirror ${d.reverse_mirror} stays`,
      ...d.source_sql,
      `-- on peer ${d.destination_peer}, one transaction: its tables take writes`,
      ...d.destination_sql,
      `-- on peer ${d.source_peer}, once the worker let go of slot ${d.slot}:`,
      `SELECT pg_drop_replication_slot('${d.slot}')`,
      ...d.cleanup_sql,
    ];
  }
  if (a.kind === 'promotion') {
    const d = a.details;
    if (d.without_source)
      return [
        `-- peer ${d.source_peer} cannot be reached: nothing is fenced, read or dropped there`,
        `-- on peer ${d.destination_peer}, the point of no return, one transaction:`,
        ...d.restore_sql,
        `UPDATE mirrors.mirrors SET phase = 'promoted', status = 'Promoted', promoted_at = now(), fence_lsn = NULL WHERE name = '${a.mirror}'`,
        `-- once peer ${d.source_peer} answers again, \`mirrors plan\` fences it and drops slot ${d.slot} and its publication`,
      ];
    if (d.fence_after)
      return [
        `-- on peer ${d.source_peer} (promoted without it; it answers again), one transaction:`,
        'BEGIN',
        ...d.fence_sql,
        'COMMIT',
        ...d.read_only_sql,
        `SELECT pg_drop_replication_slot('${d.slot}') -- if it exists`,
        ...d.cleanup_sql,
      ];
    if (!d.fence_sql.length) return [`-- on peer ${d.source_peer}:`, ...d.read_only_sql, ...d.cleanup_sql];
    return [
      `-- on peer ${d.source_peer}, in one transaction held open until peer ${d.destination_peer} applied the marker (at most ${d.max_fence_wait_ms} ms):`,
      'BEGIN',
      ...d.fence_sql,
      `SELECT pg_logical_emit_message(false, 'mirrors.fence', '${d.fence_id.replaceAll("'", "''")}')`,
      ...(d.sequences.length
        ? [
            `-- read inside the fence: last_value of ${d.sequences.map((q) => `${q.source.schema}.${q.source.name}`).join(', ')}`,
          ]
        : []),
      ...(d.verify_sql.length
        ? [
            `-- verify ${d.verify} while both sides are frozen (the same statement on peer ${d.destination_peer}), under:`,
            ...VERIFY_SETTINGS,
            ...d.verify_sql.map((v) => v.source),
          ]
        : []),
      'COMMIT',
      `-- on peer ${d.destination_peer}, the point of no return, one transaction:`,
      ...d.restore_sql,
      ...d.sequences.map(
        (q) =>
          `SELECT setval('${q.destination.schema}.${q.destination.name}', <last_value read on the source + ${d.sequence_margin} x ${q.increment}>, true)`,
      ),
      `UPDATE mirrors.mirrors SET phase = 'promoted', status = 'Promoted', promoted_at = now(), fence_lsn = <marker> WHERE name = '${a.mirror}'`,
      ...(d.reverse_mirror
        ? [`-- its tables stay read-only until mirror ${d.reverse_mirror} exists (the opening, below)`]
        : []),
      ...(d.read_only_sql.length ? [`-- on peer ${d.source_peer}:`, ...d.read_only_sql] : []),
      ...(d.reverse_mirror
        ? []
        : [
            `-- on peer ${d.source_peer}, once the worker let go of slot ${d.slot}:`,
            `SELECT pg_drop_replication_slot('${d.slot}')`,
            ...d.cleanup_sql,
          ]),
    ];
  }
  const d = a.details as { sql?: string[]; drop_sql?: string; create_command?: string };
  return [...(d.drop_sql ? [d.drop_sql] : []), ...(d.create_command ? [d.create_command] : []), ...(d.sql ?? [])];
}

export function renderPlanText(plan: Plan, opts: TextOptions = {}): string {
  const out: string[] = [];
  if (plan.diagnostics.length) {
    out.push(kleur.bold('Diagnostics:'), '');
    const repeated = repeatedDiffs(plan.diagnostics);
    plan.diagnostics.forEach((d, i) => {
      out.push(renderDiagnostic(d, repeated[i]), '');
    });
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
