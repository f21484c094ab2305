/**
 * Build step (`npm run build`, after tsc): writes the validating functions of the config schema and of
 * the plan file schema, compiled by ajv ahead of time, next to their modules in dist/. Every command
 * validates mirrors.yaml; compiling a schema at start-up cost about 100 ms (ajv's import and code generation).
 */
import { writeFileSync } from 'node:fs';
import { PRECOMPILED_VALIDATOR, validatorSource } from '../config/schema.js';
import { PRECOMPILED_PLAN_VALIDATOR, planValidatorSource } from '../plan/schema.js';

writeFileSync(new URL(`../config/${PRECOMPILED_VALIDATOR.slice(2)}`, import.meta.url), validatorSource());
writeFileSync(new URL(`../plan/${PRECOMPILED_PLAN_VALIDATOR.slice(2)}`, import.meta.url), planValidatorSource());
