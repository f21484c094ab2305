/**
 * The actions a diff plans, one change per address (id `<op>:<address>`). Adding an action whose id is
 * already planned either merges into it or throws: never a silent drop. Identical actions (a type two
 * tables need) are one action; two updates of one object merge their attributes, as Terraform shows one
 * change per resource; anything else is a bug in the diff and fails loudly. Pure.
 */
import type { Action, Risk } from '../plan/types.js';
import { canonicalJson } from '../util/canonical.js';

/** An action as the diff writes it: the id follows from op and address. */
export type NewAction = Action extends infer A ? (A extends Action ? Omit<A, 'id'> : never) : never;

const RISK_RANK: Record<Risk, number> = { safe: 0, disruptive: 1, irreversible: 2 };

export class ActionSet {
  private readonly byId = new Map<string, Action>();

  get list(): Action[] {
    return [...this.byId.values()];
  }

  get(id: string): Action | undefined {
    return this.byId.get(id);
  }

  add(next: NewAction): Action {
    const a = { id: `${next.op}:${next.address}`, ...next } as Action;
    const existing = this.byId.get(a.id);
    if (!existing) {
      this.byId.set(a.id, a);
      return a;
    }
    const merged = merge(existing, a);
    this.byId.set(a.id, merged);
    return merged;
  }

  /** Adds dependencies to an action already planned. */
  dependOn(id: string, ...deps: string[]) {
    const a = this.byId.get(id);
    if (!a) throw new Error(`internal: no planned action ${id}`);
    a.depends_on = union(a.depends_on, deps);
  }
}

function merge(a: Action, b: Action): Action {
  const sameBody = (x: Action) => canonicalJson({ ...x, depends_on: [] });
  if (sameBody(a) === sameBody(b)) return { ...a, depends_on: union(a.depends_on, b.depends_on) } as Action;
  if (a.op !== 'update' || b.op !== 'update' || a.kind !== b.kind || a.reason_code !== b.reason_code) {
    throw conflict(a, 'a different change');
  }
  const before = mergeAttributes(a, a.before, b.before);
  const after = mergeAttributes(a, a.after, b.after);
  const { sql: sqlA, ...restA } = a.details as { sql?: string[] };
  const { sql: sqlB, ...restB } = b.details as { sql?: string[] };
  if (canonicalJson(restA) !== canonicalJson(restB)) throw conflict(a, 'different details');
  const sql = sqlA || sqlB ? { sql: [...(sqlA ?? []), ...(sqlB ?? [])] } : {};
  return {
    ...a,
    reason: `${a.reason}; ${b.reason}`,
    risk: RISK_RANK[b.risk] > RISK_RANK[a.risk] ? b.risk : a.risk,
    before,
    after,
    details: { ...restA, ...sql },
    depends_on: union(a.depends_on, b.depends_on),
  } as Action;
}

function mergeAttributes(a: Action, x: unknown, y: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(x as Record<string, unknown>) };
  for (const [k, v] of Object.entries((y ?? {}) as Record<string, unknown>)) {
    if (k in out && canonicalJson(out[k]) !== canonicalJson(v)) throw conflict(a, `two values for ${k}`);
    out[k] = v;
  }
  return out;
}

function conflict(a: Action, what: string): Error {
  return new Error(`internal: two changes planned for ${a.address} (${a.op}) with ${what}; this is a bug in mirrors`);
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
