/**
 * A saved plan runs only what the tool itself would plan now. `apply PLANFILE` parses and schema-checks
 * the file, then (under the mirror locks) compares it with a plan made afresh from the same config and
 * selection: the saved one is carried out only when its actions are identical, in the same order, up to
 * the estimates that move on their own (row counts, sizes, retained WAL). Any edit, truncation or foreign
 * file is refused, never executed. Pure apart from reading the file.
 */
import { readFileSync } from 'node:fs';
import { MirrorsError } from '../errors.js';
import { planFileProblems } from '../plan/schema.js';
import { PLAN_FORMAT_VERSION, type Action, type Plan } from '../plan/types.js';
import { canonicalJson } from '../util/canonical.js';

const REMAKE = 'make the plan again with `mirrors plan --out FILE`, review it, and apply that file';

export function readPlanFile(file: string, version: string): Plan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MirrorsError('PLAN_FILE_INVALID', `cannot read plan file ${file}: ${(err as Error).message}`);
  }
  return parsePlanFile(text, file, version);
}

export function parsePlanFile(text: string, file: string, version: string): Plan {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new MirrorsError(
      'PLAN_FILE_INVALID',
      `${file} is not a plan file (invalid JSON: truncated or not JSON at all)`,
      {
        hint: REMAKE,
      },
    );
  }
  const head = data as { tool?: unknown; format_version?: unknown } | null;
  if (head?.tool !== 'mirrors') {
    throw new MirrorsError('PLAN_FILE_INVALID', `${file} is not a mirrors plan file`, { hint: REMAKE });
  }
  if (head.format_version !== PLAN_FORMAT_VERSION) {
    throw new MirrorsError(
      'PLAN_FILE_INVALID',
      `${file} has plan format version ${String(head.format_version)}; mirrors ${version} reads version ${PLAN_FORMAT_VERSION}`,
      { hint: 're-run mirrors plan with this version: `mirrors plan --out FILE`' },
    );
  }
  const problems = planFileProblems(data);
  if (problems.length) {
    throw new MirrorsError('PLAN_FILE_INVALID', `${file} is not a valid plan file (edited or truncated)`, {
      details: problems,
      hint: REMAKE,
    });
  }
  return data as Plan;
}

/** Keys whose values move while nothing is planned; they never make a saved plan stale. */
const ESTIMATES = new Set(['estimated_rows', 'estimated_bytes', 'size_bytes', 'retained_bytes']);

function withoutEstimates(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutEstimates);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => !ESTIMATES.has(k))
        .map(([k, x]) => [k, withoutEstimates(x)]),
    );
  }
  return v;
}

const identity = (a: Action) => canonicalJson(withoutEstimates(a));

export type Comparison = { same: true } | { same: false; why: string };

/** Whether `saved` is exactly what the tool plans now (`fresh`, made under the locks). */
export function compareWithFresh(saved: Plan, fresh: Plan): Comparison {
  // No whole-file hash: a change to a mirror the plan does not cover leaves its actions, and so the plan, valid.
  if (canonicalJson(saved.mirrors) !== canonicalJson(fresh.mirrors)) {
    return { same: false, why: 'it covers other mirrors than a plan made now' };
  }
  const n = Math.max(saved.actions.length, fresh.actions.length);
  for (let i = 0; i < n; i++) {
    const s = saved.actions[i];
    const f = fresh.actions[i];
    if (!s) return { same: false, why: `a plan made now has more actions (${f.id})` };
    if (!f) return { same: false, why: `a plan made now does not have ${s.id}` };
    if (identity(s) !== identity(f)) {
      return {
        same: false,
        why:
          s.id === f.id
            ? `${s.id} differs from what a plan made now says`
            : `action ${i + 1} is ${s.id}; a plan made now has ${f.id}`,
      };
    }
  }
  // What the approver was told must hold too: the same errors and warnings (notes may come and go).
  const told = (p: Plan) =>
    canonicalJson(p.diagnostics.filter((d) => d.severity !== 'note').map((d) => [d.code, d.address]));
  if (told(saved) !== told(fresh)) return { same: false, why: 'its diagnostics differ from what a plan made now says' };
  if (canonicalJson(saved.summary) !== canonicalJson(fresh.summary))
    return { same: false, why: 'its summary was edited' };
  return { same: true };
}

export function staleError(file: string, why: string): MirrorsError {
  return new MirrorsError('PLAN_STALE', `saved plan ${file} is stale or was edited: ${why}`, { hint: REMAKE });
}
