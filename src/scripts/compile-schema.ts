/**
 * Build step (`npm run build`, after tsc): writes the config schema's validating function, compiled by ajv
 * ahead of time, next to dist/config/schema.js. Every command validates mirrors.yaml; compiling the schema
 * at start-up cost about 100 ms of each one (ajv's import and code generation).
 */
import { writeFileSync } from 'node:fs';
import { PRECOMPILED_VALIDATOR, validatorSource } from '../config/schema.js';

const target = new URL(`../config/${PRECOMPILED_VALIDATOR.slice(2)}`, import.meta.url);
writeFileSync(target, validatorSource());
