/**
 * Builds a Plan from Config and Live: diff, order, summary, config hash. Pure. The one orchestrator of
 * the diff; plan/ holds only the contract (types, addresses, diagnostics, order), so the folders form no
 * cycle.
 */
import { displayIdent } from '../config/names.js';
import type { Config, SourcePos } from '../config/types.js';
import { tableAddress } from '../plan/address.js';
import type { Live } from '../inspect/types.js';
import { diag, isDrift } from '../plan/diagnostics.js';
import { orderActions } from '../plan/order.js';
import { PLAN_FORMAT_VERSION, type Diagnostic, type Plan, type Risk } from '../plan/types.js';
import { diff } from './index.js';

export interface PlanOptions {
  /** --mirror names, or null for all. */
  selected: string[] | null;
  /** `mirrors VERSION` */
  createdBy: string;
  /** --fail-on: an action at least this risky is an error (MR137). */
  failOn?: Exclude<Risk, 'safe'>;
  /** --replace: addresses of tables (or whole mirrors) to copy again. */
  replace?: string[];
}

const SEVERITY_RANK = { error: 0, warning: 1, note: 2 } as const;
const RISK_RANK: Record<Risk, number> = { safe: 0, disruptive: 1, irreversible: 2 };

export function buildPlan(config: Config, live: Live, opts: PlanOptions): Plan {
  const replace = [...new Set(opts.replace ?? [])].sort();
  const d = diff(config, live, opts.selected, replace);
  const actions = orderActions(d.actions);
  const summary = { create: 0, update: 0, delete: 0, replace: 0 };
  for (const a of actions) summary[a.op]++;
  const diagnostics: Diagnostic[] = [...d.diagnostics];
  if (opts.failOn) {
    const limit = RISK_RANK[opts.failOn];
    for (const a of actions.filter((x) => RISK_RANK[x.risk] >= limit)) {
      diagnostics.push(
        diag(
          'MR137',
          a.address,
          `the plan ${a.op}s ${a.address}, which is ${a.risk} (--fail-on ${opts.failOn})`,
          `review it: ${a.reason}; run without --fail-on ${opts.failOn} to allow it`,
        ),
      );
    }
  }
  diagnostics.sort(
    (a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || cmp(a.code, b.code) || cmp(a.address, b.address),
  );
  for (const x of diagnostics) {
    const at = declaredAt(config, x.address);
    if (at) x.position = { line: at.line, col: at.col };
  }
  return {
    format_version: PLAN_FORMAT_VERSION,
    tool: 'mirrors',
    created_by: opts.createdBy,
    config_file: config.file,
    config_hash: config.hash,
    project: config.project,
    selected: opts.selected ? [...opts.selected].sort() : null,
    replace,
    mirrors: d.mirrors,
    diagnostics,
    actions,
    summary,
  };
}

/**
 * Where mirrors.yaml declares the object of an address: a table's mapping (the one naming it, else the wildcard
 * that matched its schema), else its mirror. Peers and the catalog have no position of their own.
 */
function declaredAt(config: Config, address: string): SourcePos | null {
  const m = /^mirror\.([^.]+)(?:\.table\.(.+))?/.exec(address);
  const mirror = m ? config.mirrors[m[1]] : undefined;
  if (!mirror) return null;
  if (m![2]) {
    const mapping =
      mirror.tables.find((t) => t.destination && tableAddress(mirror.name, t.destination) === address) ??
      mirror.tables.find(
        (t) =>
          t.source.kind === 'schema' &&
          address.startsWith(`mirror.${mirror.name}.table.${displayIdent(t.source.schema)}.`),
      );
    if (mapping) return mapping.pos;
  }
  return mirror.pos;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function hasErrors(plan: Pick<Plan, 'diagnostics'>): boolean {
  return plan.diagnostics.some((d) => d.severity === 'error');
}

/** Whether the plan reports schema drift (MR150-MR159), whatever its severity. */
export function hasDrift(plan: Pick<Plan, 'diagnostics'>): boolean {
  return plan.diagnostics.some(isDrift);
}
