/** The stable, versioned JSON form of a plan (docs/plan-json.md): the Plan object itself. */
import type { Plan } from '../plan/types.js';

export function renderPlanJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}
