/**
 * Checks a plan file against schemas/plan.schema.json before anything trusts it: a truncated, hand-edited
 * or foreign file is refused with the first problems found, by JSON path. The validating function is
 * compiled by ajv ahead of time at build, like the config schema's (util/schema-validator.ts).
 */
import type { ErrorObject } from 'ajv';
import { schemaValidator } from '../util/schema-validator.js';

/** The same relative paths from src/plan and dist/plan: schemas/ ships with the package. */
export const PLAN_SCHEMA = schemaValidator(
  new URL('../../schemas/plan.schema.json', import.meta.url),
  new URL('./plan-validator.cjs', import.meta.url),
  { allErrors: false, strict: true, strictRequired: false, logger: false },
);

/** The problems of a parsed plan file, as `path: message` lines; empty when it is a valid plan. */
export function planFileProblems(data: unknown): string[] {
  const validate = PLAN_SCHEMA.get();
  if (validate(data)) return [];
  return (validate.errors ?? []).slice(0, 5).map(describe);
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '(top level)';
  const extra =
    e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : '';
  return `${at}: ${e.message ?? e.keyword}${extra}`;
}
