/**
 * Checks a plan file against schemas/plan.schema.json before anything trusts it: a truncated, hand-edited
 * or foreign file is refused with the first problems found, by JSON path. The validating function is
 * compiled by ajv ahead of time at build (src/scripts/compile-schema.ts), like the config schema's.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject, Options, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);
/** Written by `npm run build` next to the built schema.js. */
export const PRECOMPILED_PLAN_VALIDATOR = './plan-validator.cjs';
const AJV_OPTIONS: Options = { allErrors: false, strict: true, strictRequired: false, logger: false };

let validator: ValidateFunction | undefined;

function loadPlanSchema(): Record<string, unknown> {
  // The same relative path from src/plan and dist/plan: schemas/ ships with the package.
  return JSON.parse(readFileSync(new URL('../../schemas/plan.schema.json', import.meta.url), 'utf8'));
}

export function compilePlanValidator(): ValidateFunction {
  const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
  return new Ajv(AJV_OPTIONS).compile(loadPlanSchema());
}

export function planValidatorSource(): string {
  const { Ajv } = require('ajv') as { Ajv: typeof AjvClass };
  const standalone = require('ajv/dist/standalone').default as (ajv: AjvClass, fn: ValidateFunction) => string;
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  return standalone(ajv, ajv.compile(loadPlanSchema()));
}

function getValidator(): ValidateFunction {
  if (!validator) {
    try {
      validator = require(PRECOMPILED_PLAN_VALIDATOR) as ValidateFunction;
    } catch {
      validator = compilePlanValidator(); // running from src/ (tests)
    }
  }
  return validator;
}

/** The problems of a parsed plan file, as `path: message` lines; empty when it is a valid plan. */
export function planFileProblems(data: unknown): string[] {
  const validate = getValidator();
  if (validate(data)) return [];
  return (validate.errors ?? []).slice(0, 5).map(describe);
}

function describe(e: ErrorObject): string {
  const at = e.instancePath || '(top level)';
  const extra =
    e.keyword === 'additionalProperties' ? ` (${(e.params as { additionalProperty: string }).additionalProperty})` : '';
  return `${at}: ${e.message ?? e.keyword}${extra}`;
}
